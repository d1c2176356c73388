"""The EnergyCollective (community and P2P markets) market: market model and mechanisms (``market``), PettingZoo env (``env``),
Gymnasium view (``gym``). Public entry point: :mod:`prosumer_gym.envs.energy_collective_v0`."""
