"""The P2PTrading (P2P energy trading) market: data model, objective and accounting (``market``),
clearing mechanisms (``clearing/``), PettingZoo env (``env``), Gymnasium view (``gym``).
Public entry point: :mod:`prosumer_gym.envs.p2p_trading_v0`."""
