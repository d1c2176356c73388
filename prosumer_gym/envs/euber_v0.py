"""Versioned entry point of the EUber (EV ride- and energy-sharing) market, version 0 (PettingZoo).

The env card (agents, spaces, rewards, KPIs, defaults) is the docstring of
:mod:`prosumer_gym.envs.euber.env`, copied here so ``help(euber_v0)`` shows it. The
implementation lives in the folder ``prosumer_gym/envs/euber/``; a new version of the env
is a new thin module like this one (PettingZoo's convention).
"""

from prosumer_gym.envs.euber import env as _impl
from prosumer_gym.envs.euber.env import (  # noqa: F401 - re-exported
    raw_env,
    env,
    parallel_env,
    OBS_NAMES,
    RECOMMENDERS,
    PROJECTIONS,
    recommend,
    slot_market_info,
)

__doc__ = _impl.__doc__
__all__ = ['raw_env', 'env', 'parallel_env', 'OBS_NAMES', 'RECOMMENDERS', 'PROJECTIONS', 'recommend', 'slot_market_info']
