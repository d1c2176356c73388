"""Static seller pricing baselines for P2PTrading-v0 (spec: baselines/).

They act through the env's observation/action interface only, like any RL agent:

* :class:`ConstantPriceSeller` holds its initial (reference) price: the static-price
  seller that Rule and Zhu assume (Section 5.3.2);
* :class:`RandomPriceSeller` moves its price uniformly at random.

Co-player factories of P2PTrading-v0's Gymnasium view (protocol
:mod:`prosumer_gym.core.policies`): :func:`constant_co_players` (``"constant"``) and
:func:`random_co_players` (``"random"``); both policies are frozen (``observe`` is a no-op).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from prosumer_gym.core.seeding import spawn

__all__ = ["ConstantPriceSeller", "RandomPriceSeller", "hold_action", "constant_co_players", "random_co_players"]


def hold_action(price_steps: Sequence[int]) -> int:
    """Index of the 'no change' move in a step-mode action set."""
    steps = list(price_steps)
    if 0 not in steps:
        raise ValueError(f"price_steps must contain 0 for a price-holding policy, got {steps}")
    return steps.index(0)


class ConstantPriceSeller:
    """Always keeps its price (step action mode)."""

    def __init__(self, price_steps: Sequence[int] = (-1, 0, 1)) -> None:
        self._hold = hold_action(price_steps)

    def act(self, obs: np.ndarray, explore: bool = True) -> int:
        return self._hold

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any) -> None:
        """Frozen policy (co-player protocol): nothing to learn."""


class RandomPriceSeller:
    """Uniformly random action from ``n_actions``; seeded by its own generator."""

    def __init__(self, n_actions: int = 3, seed: int | np.random.Generator | None = None) -> None:
        if n_actions < 1:
            raise ValueError(f"n_actions must be >= 1, got {n_actions}")
        self.n_actions = int(n_actions)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def act(self, obs: np.ndarray, explore: bool = True) -> int:
        return int(self.rng.integers(self.n_actions))

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any) -> None:
        """Frozen policy (co-player protocol): nothing to learn."""


def constant_co_players(
    env: Any, agents: Sequence[str], infos: Mapping[str, Any], rng: np.random.Generator
) -> dict[str, ConstantPriceSeller]:
    """Co-player factory ``"constant"`` of P2PTrading-v0: every seller in ``agents`` holds
    its price (needs the env's ``action_mode="step"``); deterministic, ``rng`` is not used."""
    if getattr(env, "action_mode", "step") != "step":
        raise ValueError("constant co-players need action_mode='step'")
    return {a: ConstantPriceSeller(env.price_steps) for a in agents}


def random_co_players(
    env: Any, agents: Sequence[str], infos: Mapping[str, Any], rng: np.random.Generator
) -> dict[str, RandomPriceSeller]:
    """Co-player factory ``"random"`` of P2PTrading-v0: every seller in ``agents`` moves its
    price uniformly at random over the env's actions, with generators ``spawn(rng, len(agents))``."""
    n_actions = env.action_space(env.possible_agents[0]).n
    return {a: RandomPriceSeller(n_actions, seed=g) for a, g in zip(agents, spawn(rng, len(agents)))}
