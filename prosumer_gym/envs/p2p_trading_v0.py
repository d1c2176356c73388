"""Versioned entry point of the P2PTrading (P2P energy trading) market, version 0 (PettingZoo).

The env card (agents, spaces, rewards, KPIs, defaults) is the docstring of
:mod:`prosumer_gym.envs.p2p_trading.env`, copied here so ``help(p2p_trading_v0)`` shows it. The
implementation lives in the folder ``prosumer_gym/envs/p2p_trading/``; a new version of the env
is a new thin module like this one (PettingZoo's convention).
"""

from prosumer_gym.envs.p2p_trading import env as _impl
from prosumer_gym.envs.p2p_trading.env import (  # noqa: F401 - re-exported
    raw_env,
    env,
    parallel_env,
    MarketRecord,
    OBS_NAMES,
)

__doc__ = _impl.__doc__
__all__ = ['raw_env', 'env', 'parallel_env', 'MarketRecord', 'OBS_NAMES']
