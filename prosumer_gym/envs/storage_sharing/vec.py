"""Batched StorageSharing-v0 (SB3 ``VecEnv``): ``num_envs`` Gymnasium views in one process.

Usage::

    from prosumer_gym.envs.storage_sharing.vec import StorageSharingVecEnv
    venv = StorageSharingVecEnv(num_envs=16)          # keywords of StorageSharingGymEnv
    venv.seed(0)                                      # market i: reset(seed=0 + i)
    PPO("MlpPolicy", venv).learn(10_000)

Market ``i`` follows exactly the trajectory of ``gym.make("StorageSharing-v0", **kw)`` reset
with seed ``s + i`` and stepped with the same actions; auto-reset, ``terminal_observation``
and the seeding rule are :class:`~prosumer_gym.core.vec.MarketVecEnv`'s.

Not array-batched over markets: a slot runs the double auction's determination rule (sorted
offers and bids), the Stackelberg equilibrium of the leader's price (Theorems 1-2 of paper
``003``) and the co-players' per-RU policies, written for one market's own sizes, so the
markets are stepped one after the other (:class:`~prosumer_gym.core.vec.SequentialVecEnv`;
docs/training.md has the measured throughput).
"""

from __future__ import annotations

from typing import Any

from prosumer_gym.core.vec import SequentialVecEnv
from prosumer_gym.envs.storage_sharing.gym import StorageSharingGymEnv

__all__ = ["StorageSharingVecEnv"]


class StorageSharingVecEnv(SequentialVecEnv):
    """``num_envs`` ``StorageSharingGymEnv(**kwargs)`` as one SB3 ``VecEnv`` (module docstring)."""

    def __init__(self, num_envs: int = 8, **kwargs: Any) -> None:
        super().__init__(lambda: StorageSharingGymEnv(**kwargs), num_envs)
