"""Versioned entry point of the ProsumerSharing (binary prosumption) market, version 0 (PettingZoo).

The env card (agents, spaces, rewards, KPIs, defaults) is the docstring of
:mod:`prosumer_gym.envs.prosumer_sharing.env`, copied here so ``help(prosumer_sharing_v0)`` shows it. The
implementation lives in the folder ``prosumer_gym/envs/prosumer_sharing/``; a new version of the env
is a new thin module like this one (PettingZoo's convention).
"""

from prosumer_gym.envs.prosumer_sharing import env as _impl
from prosumer_gym.envs.prosumer_sharing.env import (  # noqa: F401 - re-exported
    raw_env,
    env,
    parallel_env,
    OBS_NAMES,
    DEFAULT_DAYS,
)

__doc__ = _impl.__doc__
__all__ = ['raw_env', 'env', 'parallel_env', 'OBS_NAMES', 'DEFAULT_DAYS']
