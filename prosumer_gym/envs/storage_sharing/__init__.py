"""The StorageSharing (storage sharing) market: market model and mechanisms (``market``, re-exporting
``model``, ``auction`` and ``stackelberg``), PettingZoo env (``env``, with ``observations`` and
``records``), Gymnasium view (``gym``). Public entry point: :mod:`prosumer_gym.envs.storage_sharing_v0`."""
