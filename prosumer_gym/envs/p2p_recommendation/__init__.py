"""The P2PRecommendation (preference-aware P2P recommendation) market: market model and mechanisms (``market``), PettingZoo env (``env``),
Gymnasium view (``gym``). Public entry point: :mod:`prosumer_gym.envs.p2p_recommendation_v0`."""
