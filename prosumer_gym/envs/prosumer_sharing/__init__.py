"""The ProsumerSharing (binary prosumption) market: market model and mechanisms (``market``), PettingZoo env (``env``),
Gymnasium view (``gym``). Public entry point: :mod:`prosumer_gym.envs.prosumer_sharing_v0`."""
