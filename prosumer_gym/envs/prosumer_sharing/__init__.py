"""The ProsumerSharing (binary prosumption) market: private costs (``costs``), scenarios
(``scenarios``), the exact oracle (``oracle``), Algorithms 1-2 and the vectorised core
(``feedback``), analysis helpers (``analysis``), all re-exported by ``market`` with the
shared configuration; PettingZoo env (``env``), Gymnasium view (``gym``), batched views
(``vec``). Public entry point: :mod:`prosumer_gym.envs.prosumer_sharing_v0`."""
