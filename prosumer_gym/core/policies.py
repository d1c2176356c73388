"""The protocol between an env's Gymnasium view and the policies of the agents it does not
hand to the learner (its *co-players*: the other sellers, the followers, the platform's
recommender, ...), and the registry that names the defaults.

The ``envs`` layer knows only this protocol: a view takes ``co_players`` (a name or a
:class:`CoPlayerFactory`) and asks the factory for one :class:`CoPlayer` per agent at every
``reset``. The papers' reference agents live in ``prosumer_gym.agents`` (and comparison
methods in ``prosumer_gym.baselines``); they are wired in as the defaults by *name* in the
package's composition root (``prosumer_gym/__init__.py``, :data:`DEFAULT_CO_PLAYERS`), as
``"module:attribute"`` strings resolved on first use, the way Gymnasium's registry names its
entry points. So the arrow of imports runs one way: agents -> envs -> core.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "CoPlayer",
    "CoPlayerFactory",
    "register_co_players",
    "co_player_names",
    "resolve_co_players",
]


@runtime_checkable
class CoPlayer(Protocol):
    """One co-player's policy for an episode: ``act`` maps its observation to its action;
    ``observe`` sees its own transition after each step (online learners update there,
    frozen policies do nothing)."""

    def act(self, obs: Any) -> Any: ...

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any) -> None: ...


class CoPlayerFactory(Protocol):
    """Builds the co-players of one episode, after the PettingZoo env's ``reset``:
    ``factory(env, agents, infos, rng) -> {agent: CoPlayer}``. ``env`` is the PettingZoo
    ``raw_env`` (for its configuration), ``infos`` the reset infos, ``rng`` a generator
    spawned from the view's reset seed (all randomness must come from it)."""

    def __call__(
        self, env: Any, agents: Sequence[str], infos: Mapping[str, Any], rng: np.random.Generator
    ) -> Mapping[str, CoPlayer]: ...


# env name (the Gymnasium id without version, e.g. "P2PTrading") -> co-player name -> factory
_REGISTRY: dict[str, dict[str, str | CoPlayerFactory]] = {}


def register_co_players(env: str, name: str, factory: str | CoPlayerFactory) -> None:
    """Name a co-player factory for ``env``: a callable, or ``"module:attribute"`` imported on
    first use."""
    _REGISTRY.setdefault(env, {})[name] = factory


def co_player_names(env: str) -> tuple[str, ...]:
    """The registered co-player names of ``env``."""
    return tuple(_REGISTRY.get(env, {}))


def resolve_co_players(env: str, spec: str | CoPlayerFactory, field: str = "co_players") -> CoPlayerFactory:
    """The factory for ``spec``: a registered name of ``env`` or a factory itself."""
    if callable(spec) and not isinstance(spec, str):
        return spec
    table = _REGISTRY.get(env, {})
    if not isinstance(spec, str) or spec not in table:
        raise ValueError(f"{field} must be one of {tuple(table)} or a co-player factory, got {spec!r}")
    factory = table[spec]
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        table[spec] = factory
    return factory  # type: ignore[return-value]

