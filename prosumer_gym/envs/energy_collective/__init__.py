"""The EnergyCollective (community and P2P markets) market: data model (``players``,
``population``), mechanisms (``community``: ADMM community market and cost allocation;
``p2p``: P2P market with product differentiation; ``bau``: Business As Usual), all
re-exported by ``market``; PettingZoo env (``env``), Gymnasium view (``gym``). Public entry
point: :mod:`prosumer_gym.envs.energy_collective_v0`."""
