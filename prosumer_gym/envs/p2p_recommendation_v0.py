"""Versioned entry point of the P2PRecommendation (preference-aware P2P recommendation) market, version 0 (PettingZoo).

The env card (agents, spaces, rewards, KPIs, defaults) is the docstring of
:mod:`prosumer_gym.envs.p2p_recommendation.env`, copied here so ``help(p2p_recommendation_v0)`` shows it. The
implementation lives in the folder ``prosumer_gym/envs/p2p_recommendation/``; a new version of the env
is a new thin module like this one (PettingZoo's convention).
"""

from prosumer_gym.envs.p2p_recommendation import env as _impl
from prosumer_gym.envs.p2p_recommendation.env import (  # noqa: F401 - re-exported
    raw_env,
    env,
    parallel_env,
    PLATFORM,
    CAPACITY_MODES,
    FOLLOW_MODEL,
)

__doc__ = _impl.__doc__
__all__ = ['raw_env', 'env', 'parallel_env', 'PLATFORM', 'CAPACITY_MODES', 'FOLLOW_MODEL']
