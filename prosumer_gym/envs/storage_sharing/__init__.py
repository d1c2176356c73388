"""The StorageSharing (storage sharing) market: market model and mechanisms (``market``), PettingZoo env (``env``),
Gymnasium view (``gym``). Public entry point: :mod:`prosumer_gym.envs.storage_sharing_v0`."""
