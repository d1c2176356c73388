"""Versioned entry point of the EnergyCollective (community and P2P markets) market, version 0 (PettingZoo).

The env card (agents, spaces, rewards, KPIs, defaults) is the docstring of
:mod:`prosumer_gym.envs.energy_collective.env`, copied here so ``help(energy_collective_v0)`` shows it. The
implementation lives in the folder ``prosumer_gym/envs/energy_collective/``; a new version of the env
is a new thin module like this one (PettingZoo's convention).
"""

from prosumer_gym.envs.energy_collective import env as _impl
from prosumer_gym.envs.energy_collective.env import (  # noqa: F401 - re-exported
    raw_env,
    env,
    parallel_env,
    OBS_NAMES,
    PRICE_BOUND,
    ENERGY_BOUND,
)

__doc__ = _impl.__doc__
__all__ = ['raw_env', 'env', 'parallel_env', 'OBS_NAMES', 'PRICE_BOUND', 'ENERGY_BOUND']
