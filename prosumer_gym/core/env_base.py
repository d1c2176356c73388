"""The PettingZoo plumbing every market's ``raw_env`` repeats, once: render-mode checks and
dispatch, the ``max_cycles`` alias of the episode length, space accessors with a clear error
for unknown agents, and ``close``. It holds no dynamics: ``reset``/``step``/observations stay
in each market's ``env.py``.

A market's env subclasses :class:`MarketParallelEnv`, sets ``metadata["name"]`` and
``horizon_attr`` (the attribute holding its episode length: ``n_days``, ``n_slots``, ...),
calls :meth:`_init_render` in ``__init__``, fills ``self.observation_spaces`` /
``self.action_spaces`` (PettingZoo's dicts) and implements ``_render_text`` and
``_render_rgb``.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from prosumer_gym.core.validation import check_int

__all__ = ["MarketParallelEnv", "RENDER_MODES", "resolve_horizon"]

RENDER_MODES = ("human", "rgb_array")


def resolve_horizon(name: str, value: int | None, max_cycles: int | None, default: int) -> int:
    """The episode length from the env's own keyword ``name`` (``value``, ``None`` = not
    given) and PettingZoo's ``max_cycles`` alias; both given and different is an error."""
    if max_cycles is not None:
        max_cycles = check_int("max_cycles", max_cycles, 1)
        if value is not None and value != default and value != max_cycles:
            raise ValueError(f"{name} ({value}) and max_cycles ({max_cycles}) disagree; give one of them")
        value = max_cycles
    return check_int(name, default if value is None else value, 1)


class MarketParallelEnv(ParallelEnv):
    """Base of every market's PettingZoo parallel env (see the module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "market",
        "render_modes": list(RENDER_MODES),
        "is_parallelizable": True,
        "render_fps": 4,
    }
    #: attribute holding the episode length in env steps (aliased as ``max_cycles``)
    horizon_attr: ClassVar[str] = "n_days"

    observation_spaces: dict[str, spaces.Space]
    action_spaces: dict[str, spaces.Space]
    render_mode: str | None

    # ------------------------------------------------------------------ set-up
    def _init_render(self, render_mode: str | None) -> None:
        modes = self.metadata["render_modes"]
        if render_mode is not None and render_mode not in modes:
            raise ValueError(f"render_mode must be None or one of {modes}, got {render_mode!r}")
        self.render_mode = render_mode

    # ------------------------------------------------------------------ PettingZoo API
    @property
    def max_cycles(self) -> int:
        """Episode length in env steps (alias of the market's own ``horizon_attr``)."""
        return getattr(self, self.horizon_attr)

    @max_cycles.setter
    def max_cycles(self, value: int) -> None:
        setattr(self, self.horizon_attr, check_int("max_cycles", value, 1))

    def _space(self, table: dict[str, spaces.Space], agent: str) -> spaces.Space:
        try:
            return table[agent]
        except (KeyError, TypeError):
            raise ValueError(f"unknown agent {agent!r}; agents are {self.possible_agents}") from None

    def observation_space(self, agent: str) -> spaces.Space:
        return self._space(self.observation_spaces, agent)

    def action_space(self, agent: str) -> spaces.Space:
        return self._space(self.action_spaces, agent)

    def _check_action_dict(self, actions: object, require_all: bool = True) -> dict[str, Any]:
        """The step's action dict: a ``dict`` keyed by live agents only, every live agent
        present unless ``require_all`` is false; ``RuntimeError`` after the episode ended."""
        if not self.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict {{agent: action}} for the live agents, got {type(actions).__name__}")
        live = self.agents
        if len(actions) == len(live) and all(a in actions for a in live):
            return actions
        live_set = set(live)
        unknown = sorted(str(a) for a in actions if a not in live_set)
        if unknown:
            shown = live if len(live) <= 10 else f"{live[0]}..{live[-1]} ({len(live)})"
            raise ValueError(f"actions has unknown agents {unknown[:5]} (not among the live ones: unknown or absent); "
                             f"live agents are {shown}")
        if require_all:
            missing = [a for a in live if a not in actions]
            raise ValueError(f"actions is missing agents {missing[:5]}; every live agent must act")
        return actions

    def _end_step(self, agents: list[str], done: bool) -> tuple[dict[str, bool], dict[str, bool]]:
        """``(terminations, truncations)`` of ``agents`` for a step after which the episode is
        truncated iff ``done`` (the markets never terminate); clears ``agents`` when done and
        renders in ``human`` mode."""
        terminations = dict.fromkeys(agents, False)
        truncations = dict.fromkeys(agents, done)
        if done:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return terminations, truncations

    def render(self) -> np.ndarray | None:
        """``human``: print the text summary; ``rgb_array``: an ``(H, W, 3)`` uint8 figure."""
        if self.render_mode is None:
            warnings.warn("render() called without a render_mode; pass render_mode='human' or 'rgb_array'", stacklevel=2)
            return None
        if self.render_mode == "human":
            print(self._render_text())
            return None
        return self._render_rgb()

    def _render_text(self) -> str:  # pragma: no cover - every market overrides
        raise NotImplementedError

    def _render_rgb(self) -> np.ndarray:  # pragma: no cover - every market overrides
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release (figures are rendered off-screen and closed at once)."""
