"""Batched P2PTrading-v0 (SB3 ``VecEnv``): ``num_envs`` Gymnasium views in one process.

Usage::

    from prosumer_gym.envs.p2p_trading.vec import P2PTradingVecEnv
    venv = P2PTradingVecEnv(num_envs=8)               # keywords of P2PTradingGymEnv
    venv.seed(0)                                      # market i: reset(seed=0 + i)

Market ``i`` follows exactly the trajectory of ``gym.make("P2PTrading-v0", **kw)`` reset with
seed ``s + i`` and stepped with the same actions; auto-reset, ``terminal_observation`` and
the seeding rule are :class:`~prosumer_gym.core.vec.MarketVecEnv`'s.

Not array-batched over markets: a day is cleared by the ``savings`` heuristic (a compiled
combinatorial search over one market's sellers and buyers, ``docs/p2p_trading_clearing.md``),
which has no array form across markets, so the markets are stepped one after the other
(:class:`~prosumer_gym.core.vec.SequentialVecEnv`).
"""

from __future__ import annotations

from typing import Any

from prosumer_gym.core.vec import SequentialVecEnv
from prosumer_gym.envs.p2p_trading.gym import P2PTradingGymEnv

__all__ = ["P2PTradingVecEnv"]


class P2PTradingVecEnv(SequentialVecEnv):
    """``num_envs`` ``P2PTradingGymEnv(**kwargs)`` as one SB3 ``VecEnv`` (module docstring)."""

    def __init__(self, num_envs: int = 8, **kwargs: Any) -> None:
        super().__init__(lambda: P2PTradingGymEnv(**kwargs), num_envs)
