"""Versioned entry point of the StorageSharing (storage sharing) market, version 0 (PettingZoo).

The env card (agents, spaces, rewards, KPIs, defaults) is the docstring of
:mod:`prosumer_gym.envs.storage_sharing.env`, copied here so ``help(storage_sharing_v0)`` shows it. The
implementation lives in the folder ``prosumer_gym/envs/storage_sharing/``; a new version of the env
is a new thin module like this one (PettingZoo's convention).
"""

from prosumer_gym.envs.storage_sharing import env as _impl
from prosumer_gym.envs.storage_sharing.env import (  # noqa: F401 - re-exported
    raw_env,
    env,
    parallel_env,
    ObsScales,
    SlotRecord,
    AUCTIONEER_OBS,
    AUCTIONEER_RU_FIELDS,
    RU_OBS,
    AUCTIONEER,
)

__doc__ = _impl.__doc__
__all__ = ['raw_env', 'env', 'parallel_env', 'ObsScales', 'SlotRecord', 'AUCTIONEER_OBS', 'AUCTIONEER_RU_FIELDS', 'RU_OBS', 'AUCTIONEER']
