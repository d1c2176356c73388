"""The EUber (EV ride- and energy-sharing) market: market model and mechanisms (``market``, re-exporting
``fare``, ``potr`` and ``wibs``), PettingZoo env (``env``), Gymnasium view (``gym``). Public entry
point: :mod:`prosumer_gym.envs.euber_v0`."""
