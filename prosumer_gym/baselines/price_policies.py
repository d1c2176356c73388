"""Static seller pricing baselines for P2PTrading-v0 (spec: baselines/).

They act through the env's observation/action interface only, like any RL agent:

* :class:`ConstantPriceSeller` holds its initial (reference) price: the static-price
  seller that Rule and Zhu assume (Section 5.3.2);
* :class:`RandomPriceSeller` moves its price uniformly at random.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ConstantPriceSeller", "RandomPriceSeller", "hold_action"]


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


class RandomPriceSeller:
    """Uniformly random action from ``n_actions``; seeded by its own generator."""

    def __init__(self, n_actions: int = 3, seed: int | np.random.Generator | None = None) -> None:
        if n_actions < 1:
            raise ValueError(f"n_actions must be >= 1, got {n_actions}")
        self.n_actions = int(n_actions)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def act(self, obs: np.ndarray, explore: bool = True) -> int:
        return int(self.rng.integers(self.n_actions))
