"""Mechanisms of EnergyCollective-v0: the community-based market (ADMM) and the P2P market.

Source: slides ``002`` (Pinson et al., "Prosumer-centric electricity markets: energy
collectives and peer-to-peer exchanges"; Moret & Pinson, IEEE TPWRS 2019; Sorin, Bobo &
Pinson, IEEE TPWRS 2019). Env card and every modelling choice: ``docs/energy_collective.md``.

This module is the market's public face: it re-exports every name of the modules below, so
``from prosumer_gym.envs.energy_collective.market import ...`` (and the legacy
``prosumer_gym.envs.energy_collective_market``) keeps working.

:mod:`~prosumer_gym.envs.energy_collective.players`
    The data model: :class:`Community` (players' quadratic costs ``f_i``, bounds (3)-(4),
    grid tariff, validation) and the players' :func:`best_response` to a price.
:mod:`~prosumer_gym.envs.energy_collective.population`
    Players drawn from the shipped data (:func:`sample_population`, :class:`Population`),
    :func:`retail_prices`, synthetic :func:`random_community`.
:mod:`~prosumer_gym.envs.energy_collective.community`
    Community market, problem (1)-(5): distributed ADMM (:func:`solve_community_admm`),
    QP oracle (:func:`solve_community_qp`), grid-cost allocation and settlement.
:mod:`~prosumer_gym.envs.energy_collective.bau`
    Business As Usual (:func:`bau_dispatch`): each player alone with the grid.
:mod:`~prosumer_gym.envs.energy_collective.p2p`
    P2P market with product differentiation (MBED): consensus+innovation
    (:func:`solve_p2p_ci`), QP (:func:`solve_p2p_qp`), :func:`two_villages`.
"""

from __future__ import annotations

from prosumer_gym.envs.energy_collective.bau import bau_dispatch
from prosumer_gym.envs.energy_collective.community import (
    ALLOCATIONS,
    ALLOCATION_MODES,
    CommunityDispatch,
    admm_penalties,
    allocate_grid_cost,
    community_g,
    community_objective,
    grid_bill,
    manager_prox,
    settle_community,
    solve_community_admm,
    solve_community_qp,
    solve_community_exact,
)
from prosumer_gym.envs.energy_collective.p2p import (
    INNOVATIONS,
    PREFERENCES,
    MBEDInstance,
    P2PResult,
    mbed_from_community,
    solve_p2p_ci,
    solve_p2p_qp,
    two_villages,
)
from prosumer_gym.envs.energy_collective.players import (
    G_KINDS,
    MIN_FLEX_KWH,
    PLAYER_TYPES,
    Community,
    best_response,
)
from prosumer_gym.envs.energy_collective.population import (
    Population,
    random_community,
    retail_prices,
    sample_population,
)

__all__ = [
    "PLAYER_TYPES",
    "ALLOCATIONS",
    "ALLOCATION_MODES",
    "G_KINDS",
    "MARKETS",
    "Community",
    "Population",
    "sample_population",
    "retail_prices",
    "CommunityDispatch",
    "community_g",
    "grid_bill",
    "solve_community_admm",
    "solve_community_qp",
    "solve_community_exact",
    "bau_dispatch",
    "allocate_grid_cost",
    "settle_community",
    "MBEDInstance",
    "P2PResult",
    "mbed_from_community",
    "solve_p2p_ci",
    "solve_p2p_qp",
    "two_villages",
    "random_community",
    # public helpers that were importable from here without being in __all__
    "MIN_FLEX_KWH",
    "INNOVATIONS",
    "PREFERENCES",
    "best_response",
    "manager_prox",
    "community_objective",
    "admm_penalties",
]

#: The env's clearing mechanisms (``market=`` of ``energy_collective_v0``).
MARKETS = ("community", "p2p")
