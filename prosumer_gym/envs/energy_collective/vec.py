"""Batched EnergyCollective-v0 (SB3 ``VecEnv``): ``num_envs`` Gymnasium views in one process.

Usage::

    from prosumer_gym.envs.energy_collective.vec import EnergyCollectiveVecEnv
    venv = EnergyCollectiveVecEnv(num_envs=8)         # keywords of EnergyCollectiveGymEnv
    venv.seed(0)                                      # community i: reset(seed=0 + i)
    PPO("MlpPolicy", venv).learn(10_000)

Community ``i`` follows exactly the trajectory of ``gym.make("EnergyCollective-v0", **kw)``
reset with seed ``s + i`` and stepped with the same actions; auto-reset,
``terminal_observation`` and the seeding rule are :class:`~prosumer_gym.core.vec.MarketVecEnv`'s.

Not array-batched over communities: a step is already one vectorised pass over a community's
~315 players, but the day's dispatch (the closed-form community clearing, or its ADMM), the
draw of each day's community from the population and the allocation rules are written for
one community; batching K of them needs those rewritten with a leading community axis. So
the communities are stepped one after the other (:class:`~prosumer_gym.core.vec.SequentialVecEnv`;
docs/training.md has the measured throughput).
"""

from __future__ import annotations

from typing import Any

from prosumer_gym.core.vec import SequentialVecEnv
from prosumer_gym.envs.energy_collective.gym import EnergyCollectiveGymEnv

__all__ = ["EnergyCollectiveVecEnv"]


class EnergyCollectiveVecEnv(SequentialVecEnv):
    """``num_envs`` ``EnergyCollectiveGymEnv(**kwargs)`` as one SB3 ``VecEnv`` (module docstring)."""

    def __init__(self, num_envs: int = 8, **kwargs: Any) -> None:
        super().__init__(lambda: EnergyCollectiveGymEnv(**kwargs), num_envs)
