"""The P2PTrading (P2P energy trading) market: market model and mechanisms (``market``), PettingZoo env (``env``),
Gymnasium view (``gym``). Public entry point: :mod:`prosumer_gym.envs.p2p_trading_v0`."""
