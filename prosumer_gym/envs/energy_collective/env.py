"""EnergyCollective-v0: community-based market (ADMM, cost allocation) and P2P market.

Usage::

    import gymnasium as gym
    import prosumer_gym                          # registers the ids
    env = gym.make("EnergyCollective-v0")                      # Gymnasium view (one learner)
    # without the import: gym.make("prosumer_gym:EnergyCollective-v0")
    from prosumer_gym.envs import energy_collective_v0
    penv = energy_collective_v0.parallel_env()                 # PettingZoo ParallelEnv (all agents)

Slides ``002`` (energy collectives, problem (1)-(5), ADMM; P2P MBED with product
differentiation, consensus+innovation).
Mechanisms: :mod:`prosumer_gym.envs.energy_collective.market`; every choice and the
measured figures: ``docs/energy_collective.md``.

Env card
--------
Agents
    One agent per player of the community (defaults: the slides' 300 households and 15
    generators): ``prosumer_i`` (``n_prosumers=100``, household + ``pv_kw=4`` kWp PV,
    flexible share ``flexibility=0.2`` of its load), ``flexible_i`` (100),
    ``inflexible_i`` (100, fixed load: their action has no effect), ``chp_i`` (10
    mini-CHPs, 10 kW, ``b ~ U[0.07, 0.10]`` EUR/kWh) and ``peak_i`` (5 peak units, 5 kW,
    ``b ~ U[0.16, 0.22]``). Real CityLearn loads and pvlib PV (``prosumer_gym.data``,
    ``split="train"``), sampled with the reset seed; Dutch day-ahead prices of
    ``price_year=2019`` (EUR; the slides used Australian prices): import = wholesale +
    ``import_markup=0.10`` EUR/kWh, export = wholesale - ``export_markup=0.0``.
Step
    One step is one market time unit of ``slot_minutes`` (default 60; 30 and 15 split
    each hour evenly). (1) Before the step, the market clears the slot with every
    player's declared cost and bounds: ``market="community"`` (default) solves problem
    (1)-(5) (the manager's price ``lambda``): ``clearing="exact"`` (default) in closed form
    through its dual (the limit the slides' ADMM converges to, ~2 ms per day of 315
    players), ``clearing="admm"`` by the slides' distributed ADMM (~25-60 ms per day; its
    iterations and residuals are in the infos; the results of versions before the exact
    clearing);
    ``market="p2p"`` by consensus+innovation on the MBED (trades ``P_nm``, prices
    ``lambda_nm``). The clearing price is in the observation. (2) Each agent sets its net
    injection. (3) Settlement: community market, the grid absorbs the imbalance ``q = -sum
    p`` and its bill is allocated by ``allocation`` (``"none"``: pay the community price
    for your net withdrawal; ``"equal"``: bill / N; ``"proportional"``: import cost in
    proportion to consumption, export revenue in proportion to production; the last two
    with free internal exchanges). P2P market: each player pays/receives its planned
    trades at their prices and settles any deviation with the grid (import price for a
    shortfall, export price for a surplus).
Actions (``Box(1,)`` in [0, 1], float32)
    Position in the player's feasible range of this slot: ``p = p_min + a (p_max -
    p_min)`` (kWh per slot, > 0 injects). Out-of-range or non-finite actions raise
    ``ValueError`` (no projection).
Observation (``Box(10,)`` float32, per agent; see :data:`OBS_NAMES`)
    ``price`` (EUR/kWh; community: the ADMM price ``lambda`` of the slot; p2p: the
    player's marginal value of energy at the cleared trades), ``import_price``,
    ``export_price`` (EUR/kWh), ``p_min``, ``p_max``, ``p_ref`` (kWh per slot: bounds and
    the reference set-point ``r`` where the player's cost is 0), ``marginal_cost``
    (``m``, EUR/kWh at ``r``), ``curvature`` (``a``, EUR/kWh^2), ``hour_sin``,
    ``hour_cos``. The player's cost is ``f(p) = a/2 (p - r)^2 + m (p - r)``, so its best
    response to ``price`` is ``clip(r + (price - m)/a, p_min, p_max)`` (the reference
    policy :class:`prosumer_gym.agents.energy_collective.ADMMBestResponse`). Values are
    clipped to the Box bounds (prices +-10 EUR/kWh, energies +-1000 kWh, curvature
    [0, 1e4]); the defaults never reach them.
Rewards
    Minus the player's cost of the slot (EUR): ``f_i(p_i)`` plus its allocated grid
    cost (community) or its trade payments, preference cost and imbalance (p2p).
Infos (per agent)
    ``kind``, ``p_kwh``, ``planned_kwh`` (the mechanism's set-point), ``player_cost_eur``
    (``f_i``), ``grid_share_eur`` / ``trade_payment_eur``, ``cost_eur`` (= -reward),
    ``bau_cost_eur`` (the player alone with the grid, Business As Usual) and under
    ``"market"`` (one shared dict): ``slot``, ``day``, ``hour``, ``market``,
    ``allocation``, ``price``, ``import_price``, ``export_price``, ``q_import_kwh``,
    ``q_export_kwh``, ``community_cost_eur`` (sum of ``f_i`` + grid bill),
    ``planned_cost_eur`` (the same at the mechanism's dispatch), ``bau_cost_eur``,
    ``manager_balance_eur``, ``capacity_violation_kwh``, and the mechanism's
    ``iterations``, ``primal_residual``, ``dual_residual``, ``converged`` (ADMM; exact
    clearing: 0, ``|sum p + q|``, 0, True; p2p: the slides' dual/primal criteria and
    ``reciprocity``). With ``report_timing=True`` also ``clearing_seconds`` (wall clock,
    off by default so that a seed fixes the infos). Cost of the KPIs: BAU (closed form) and
    the planned costs are computed once per day with the clearing; every other KPI is a
    few array operations per step; nothing is solved only for a KPI.
Allocation mode and storage (off by default)
    ``allocation_mode="in_dispatch"`` makes the plan the members' Nash equilibrium with the
    rule in every objective (:mod:`~prosumer_gym.envs.energy_collective.noncoop`; the
    default ``"settlement"`` keeps the cooperative dispatch); ``allocation="worst"`` is the
    egalitarian rule (equal savings against BAU); ``n_storage`` batteries
    (``storage_*``) are dispatched by the manager with the players over the day
    (:mod:`~prosumer_gym.envs.energy_collective.storage`).
Episode
    ``n_steps`` (alias ``max_cycles``) slots, default one day (24 at 60 min), starting at
    hour 0 of ``day`` (0-364; default ``None``: drawn from the reset seed); longer
    episodes run into the next days. ``reset(options={"day": d})`` overrides the day.
    The last step truncates every agent.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from gymnasium import spaces

from prosumer_gym import data as pgdata
from prosumer_gym.core.env_base import MarketParallelEnv, resolve_horizon
from prosumer_gym.core.validation import check_bool, check_choice, check_float, check_size
from prosumer_gym.core.validation import check_int as _int
from prosumer_gym.core.pz import entry_points, figure_to_rgb
from prosumer_gym.core.seeding import reseed, spawn
from prosumer_gym.core.spaces import NamedBox, check_box_batch
from prosumer_gym.envs.energy_collective import market as mk
from prosumer_gym.envs.energy_collective.noncoop import nash_dispatch
from prosumer_gym.envs.energy_collective.population import footprint_bytes
from prosumer_gym.envs.energy_collective.storage import Storage, StorageProblem

__all__ = ["raw_env", "env", "parallel_env", "OBS_NAMES", "PRICE_BOUND", "ENERGY_BOUND"]

OBS_NAMES = ("price", "import_price", "export_price", "p_min", "p_max", "p_ref", "marginal_cost", "curvature",
             "hour_sin", "hour_cos")
PRICE_BOUND = 10.0  # EUR/kWh
ENERGY_BOUND = 1000.0  # kWh per slot
CURVATURE_BOUND = 1e4  # EUR/kWh^2
SLOT_MINUTES = (15, 30, 60)
CLEARINGS = ("exact", "admm")  # community market: the optimum of (1)-(5) in closed form, or the slides' ADMM
DAYS = 365
MAX_STORAGE = 10_000  # batteries (the day's QP has 3 x 24 variables each)


class raw_env(MarketParallelEnv):
    """PettingZoo parallel env for EnergyCollective-v0 (see the module docstring: the env card)."""

    metadata = {**MarketParallelEnv.metadata, "name": "energy_collective_v0"}
    horizon_attr = "n_steps"

    def __init__(
        self,
        market: str = "community",
        allocation: str = "none",
        g: str = "market",
        autonomy_weight: float = 0.05,
        n_prosumers: int = 100,
        n_flexible: int = 100,
        n_inflexible: int = 100,
        n_chp: int = 10,
        n_peak: int = 5,
        pv_kw: float | Sequence[float] = 4.0,
        flexibility: float = 0.2,
        value_range: tuple[float, float] = (0.8, 1.2),
        chp_capacity_kw: float = 10.0,
        chp_min_kw: float = 0.0,
        chp_cost_a: tuple[float, float] = (0.002, 0.004),
        chp_cost_b: tuple[float, float] = (0.07, 0.10),
        peak_capacity_kw: float = 5.0,
        peak_min_kw: float = 0.0,
        peak_cost_a: tuple[float, float] = (0.01, 0.02),
        peak_cost_b: tuple[float, float] = (0.16, 0.22),
        price_year: int = 2019,
        import_markup: float = 0.10,
        export_markup: float = 0.0,
        import_capacity_kw: float = np.inf,
        export_capacity_kw: float = np.inf,
        slot_minutes: int = 60,
        n_steps: int | None = None,
        max_cycles: int | None = None,
        day: int | None = None,
        split: str = "train",
        clearing: str = "exact",
        allocation_mode: str = "settlement",
        nash_tol: float = 1e-7,
        nash_max_iter: int = 3000,
        n_storage: int = 0,
        storage_capacity_kwh: float = 10.0,
        storage_power_kw: float = 5.0,
        storage_efficiency: float = 0.95,
        storage_soc_init: float = 0.5,
        storage_wear_cost: float = 0.0,
        admm_rho: float = 1.0,
        admm_penalty: str = "curvature",
        admm_eps: float = 1e-7,
        admm_max_iter: int = 20_000,
        distance_preference: float = 0.0,
        area_radius_km: float = 1.0,
        p2p_grid_curvature: float = 0.001,
        p2p_trade_curvature: float = 0.01,
        p2p_alpha: float = 0.5,
        p2p_innovation: str = "best_response",
        p2p_preference: str = "abs",
        p2p_eps: float = 1e-7,
        p2p_max_iter: int = 20_000,
        report_timing: bool = False,
        render_mode: str | None = None,
    ) -> None:
        if market not in mk.MARKETS:
            raise ValueError(f"market must be one of {mk.MARKETS}, got {market!r}")
        self.market = market
        if allocation not in mk.ALLOCATIONS:
            raise ValueError(f"allocation must be one of {mk.ALLOCATIONS}, got {allocation!r}")
        if market == "p2p" and allocation != "none":
            raise ValueError("allocation applies to market='community' only; the P2P market settles bilateral trades "
                             f"(use allocation='none' with market='p2p', got {allocation!r})")
        self.allocation = allocation
        if g not in mk.G_KINDS:
            raise ValueError(f"g must be one of {mk.G_KINDS}, got {g!r}")
        self.g = g
        self.autonomy_weight = check_float("autonomy_weight", autonomy_weight, 0.0)
        self.slot_minutes = int(check_choice("slot_minutes", slot_minutes, SLOT_MINUTES))
        self.slot_hours = self.slot_minutes / 60.0
        self.slots_per_day = 24 * 60 // self.slot_minutes
        self.n_steps = resolve_horizon("n_steps", n_steps, max_cycles, self.slots_per_day)
        self.day = None if day is None else _int("day", day, 0, DAYS - 1)
        if split not in pgdata.SPLITS:
            raise ValueError(f"split must be one of {pgdata.SPLITS}, got {split!r}")
        self.split = split
        valid_years = range(2015, 2025)
        if isinstance(price_year, bool) or not isinstance(price_year, (int, np.integer)) or price_year not in valid_years:
            raise ValueError(f"price_year must be an integer in [2015, 2024], got {price_year!r}")
        self.price_year = int(price_year)
        self.import_markup = check_float("import_markup", import_markup, 0.0)
        self.export_markup = check_float("export_markup", export_markup, 0.0)
        self.import_capacity_kw = check_float("import_capacity_kw", import_capacity_kw, 0.0, allow_inf=True)
        self.export_capacity_kw = check_float("export_capacity_kw", export_capacity_kw, 0.0, allow_inf=True)
        self.clearing = check_choice("clearing", clearing, CLEARINGS)
        self.allocation_mode = check_choice("allocation_mode", allocation_mode, mk.ALLOCATION_MODES)
        self.nash_tol = check_float("nash_tol", nash_tol, 0.0, lo_open=True)
        self.nash_max_iter = _int("nash_max_iter", nash_max_iter, 1)
        self.n_storage = _int("n_storage", n_storage, 0, MAX_STORAGE)
        self.storage = None
        if self.n_storage:
            self.storage = Storage.uniform(self.n_storage, storage_capacity_kwh, storage_power_kw, storage_efficiency,
                                           storage_soc_init, storage_wear_cost)
        if market == "p2p" and (self.allocation_mode != "settlement" or self.n_storage):
            raise ValueError("allocation_mode='in_dispatch' and n_storage > 0 apply to market='community' only "
                             f"(got allocation_mode={allocation_mode!r}, n_storage={n_storage!r} with market='p2p')")
        if self.allocation_mode == "in_dispatch" and g != "market":
            raise ValueError(f"allocation_mode='in_dispatch' needs g='market' (the rules split the grid bill), got g={g!r}")
        if self.clearing != "exact" and (self.allocation_mode != "settlement" or self.n_storage):
            raise ValueError("clearing='admm' applies to the cooperative dispatch without storage; with "
                             "allocation_mode='in_dispatch' or n_storage > 0 use clearing='exact' (got "
                             f"clearing={clearing!r})")
        # the default (cooperative, no storage) clearing path stays exactly the same
        self._custom_plan = self.allocation_mode != "settlement" or self.n_storage > 0
        self._storage_problem = None
        self.admm_rho = check_float("admm_rho", admm_rho, 0.0, lo_open=True)
        if admm_penalty not in ("curvature", "uniform"):
            raise ValueError(f"admm_penalty must be 'curvature' or 'uniform', got {admm_penalty!r}")
        self.admm_penalty = admm_penalty
        self.admm_eps = check_float("admm_eps", admm_eps, 0.0, lo_open=True)
        self.admm_max_iter = _int("admm_max_iter", admm_max_iter, 1)
        self.distance_preference = check_float("distance_preference", distance_preference, 0.0)
        self.p2p_grid_curvature = check_float("p2p_grid_curvature", p2p_grid_curvature, 0.0, lo_open=True)
        self.p2p_trade_curvature = check_float("p2p_trade_curvature", p2p_trade_curvature, 0.0)
        self.p2p_alpha = check_float("p2p_alpha", p2p_alpha, 0.0, lo_open=True)
        if p2p_innovation not in mk.INNOVATIONS:
            raise ValueError(f"p2p_innovation must be one of {mk.INNOVATIONS}, got {p2p_innovation!r}")
        if p2p_innovation == "best_response" and self.p2p_trade_curvature <= 0:
            raise ValueError("p2p_trade_curvature must be > 0 with p2p_innovation='best_response'")
        self.p2p_innovation = p2p_innovation
        self.p2p_preference = check_choice("p2p_preference", p2p_preference, mk.PREFERENCES)
        self.p2p_eps = check_float("p2p_eps", p2p_eps, 0.0, lo_open=True)
        self.p2p_max_iter = _int("p2p_max_iter", p2p_max_iter, 1)
        self.report_timing = check_bool("report_timing", report_timing)
        self._init_render(render_mode)
        self._pop_kwargs = dict(
            n_prosumers=n_prosumers, n_flexible=n_flexible, n_inflexible=n_inflexible, n_chp=n_chp, n_peak=n_peak,
            pv_kw=pv_kw, flexibility=flexibility, value_range=value_range, chp_capacity_kw=chp_capacity_kw,
            chp_min_kw=chp_min_kw, chp_cost_a=chp_cost_a, chp_cost_b=chp_cost_b, peak_capacity_kw=peak_capacity_kw,
            peak_min_kw=peak_min_kw, peak_cost_a=peak_cost_a, peak_cost_b=peak_cost_b,
            area_radius_km=area_radius_km, split=split,
        )
        # Validate the population keywords now (a tiny draw: one day, fixed generator).
        probe = mk.sample_population(np.random.default_rng(0), 0, 1, **self._pop_kwargs)
        n_days = -(-self.n_steps // self.slots_per_day)  # the days an episode covers (reset)
        n_households = n_prosumers + n_flexible + n_inflexible
        check_size("EnergyCollective-v0", f"{probe.n_players} players, n_steps (max_cycles)={self.n_steps} ({n_days} days)"
                   + (", market='p2p'" if market == "p2p" else ""),
                   footprint_bytes(probe.n_players, n_households, n_days, p2p=market == "p2p"))
        if max(chp_capacity_kw, peak_capacity_kw) * self.slot_hours > ENERGY_BOUND:
            raise ValueError(f"generator capacities chp_capacity_kw and peak_capacity_kw must stay below "
                             f"{ENERGY_BOUND} kWh per slot (observation bound), got {chp_capacity_kw} and "
                             f"{peak_capacity_kw} kW over {self.slot_hours:g} h slots")
        self.wholesale, self.import_price, self.export_price = mk.retail_prices(
            self.price_year, self.import_markup, self.export_markup)
        self.possible_agents = list(probe.names)
        self.kinds = dict(zip(probe.names, probe.kind.tolist()))
        self.agents: list[str] = []
        self._action_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        low = [-PRICE_BOUND] * 3 + [-ENERGY_BOUND] * 3 + [-PRICE_BOUND, 0.0, -1.0, -1.0]
        high = [PRICE_BOUND] * 3 + [ENERGY_BOUND] * 3 + [PRICE_BOUND, CURVATURE_BOUND, 1.0, 1.0]
        self._obs_space = NamedBox(OBS_NAMES, low=low, high=high)
        # one space object shared by every player (as before the base class)
        self.observation_spaces = dict.fromkeys(self.possible_agents, self._obs_space)
        self.action_spaces = dict.fromkeys(self.possible_agents, self._action_space)
        n = len(self.possible_agents)
        self.state_space = NamedBox(
            ["import_price", "export_price", "price", "hour_sin", "hour_cos"]
            + [f"{k}_{a}" for a in self.possible_agents for k in ("p_min", "p_max", "p_ref")],
            low=[-PRICE_BOUND] * 3 + [-1.0, -1.0] + [-ENERGY_BOUND] * (3 * n),
            high=[PRICE_BOUND] * 3 + [1.0, 1.0] + [ENERGY_BOUND] * (3 * n),
        )
        self._rng: np.random.Generator | None = None
        self.population: mk.Population | None = None
        self.community: mk.Community | None = None  # today's community (all slots)
        self.plan: mk.CommunityDispatch | None = None  # community market: today's ADMM dispatch
        self.last_p2p: mk.P2PResult | None = None
        self.last_settlement: dict[str, Any] | None = None
        self._t = 0

    # ------------------------------------------------------------------ PettingZoo API
    @property
    def n_players(self) -> int:
        return len(self.possible_agents)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """New episode: new players (from the seed) and a day. ``options`` may hold ``day``."""
        self._rng = reseed(self._rng, seed)
        pop_rng, day_rng = spawn(self._rng, 2)
        day = self.day
        if options:
            unknown = set(options) - {"day"}
            if unknown:
                warnings.warn(f"reset options {sorted(unknown)} are ignored; known options: ['day']", stacklevel=2)
            if options.get("day") is not None:
                day = _int("options['day']", options["day"], 0, DAYS - 1)
        if day is None:
            day = int(day_rng.integers(DAYS))
        self.start_day = day
        n_days = -(-self.n_steps // self.slots_per_day)
        self.population = mk.sample_population(pop_rng, day, n_days, **self._pop_kwargs)
        self._t = 0
        self._day_index = -1
        self.agents = self.possible_agents[:]
        self.last_p2p = None
        self.last_settlement = None
        self._prepare_slot()
        obs = self._observations()
        infos = {a: {"kind": self.kinds[a]} for a in self.agents}
        return obs, infos

    def step(self, actions: dict[str, Any]):
        self._check_action_dict(actions)
        settlement, terminations, truncations = self._step_array(self._action_vector(actions))
        rewards = dict(zip(self.possible_agents, (-settlement["cost"]).tolist()))
        infos = self._infos(settlement)
        obs = self._observations()
        return obs, rewards, terminations, truncations, infos

    def _action_vector(self, actions: dict[str, Any]) -> np.ndarray:
        """The checked actions as one (N,) float64 vector: exactly what
        :func:`~prosumer_gym.core.spaces.check_box_batch` accepts and returns, with one
        ``np.array`` over the values on the common path (arrays or lists of shape (1,) in
        [0, 1]; a third of the cost of its ``np.stack`` at 315 agents); anything else goes
        through ``check_box_batch``, whose ``ValueError`` names the first bad agent."""
        try:
            arr = np.array([actions[a] for a in self.possible_agents])
        except (TypeError, ValueError):
            arr = None
        if arr is not None and arr.shape == (self.n_players, 1) and arr.dtype.kind in "biuf":
            vec = arr[:, 0].astype(np.float64)
            if np.isfinite(vec).all() and (vec >= 0.0).all() and (vec <= 1.0).all():
                return vec
        return check_box_batch(actions, self.possible_agents, self._action_space)[:, 0]

    def _step_array(self, act: np.ndarray) -> tuple[dict[str, Any], dict[str, bool], dict[str, bool]]:
        """:meth:`step` on checked actions ``act`` (N,) in [0, 1], without the agents' dicts:
        ``(settlement, terminations, truncations)``; the next observations are then
        :meth:`_obs_matrix` (the Gymnasium view builds only its ego's reward and info)."""
        settlement, done = self._advance(act)
        terminations, truncations = self._end_step(self.possible_agents, done)
        return settlement, terminations, truncations

    def _advance(self, act: np.ndarray) -> tuple[dict[str, Any], bool]:
        """Settle the current slot at ``act``, move the clock and clear the next slot."""
        p = self._lo + act * (self._hi - self._lo)
        settlement = self._settle(p)
        settlement["planned"] = self._planned
        settlement["market_info"] = self._market_info(settlement)
        self.last_settlement = settlement
        self._t += 1
        done = self._t >= self.n_steps
        if not done:
            self._prepare_slot()
        return settlement, done

    # ------------------------------------------------------------------ mechanism
    def _community_of_day(self, d: int) -> mk.Community:
        """The community of the episode's ``d``-th day (data day ``(start_day + d) % 365``)."""
        h = self.slot_hours
        return self.population.community(
            self.start_day + d, self.wholesale, self.import_price, self.export_price, slot_minutes=self.slot_minutes,
            g_kind=self.g, autonomy_weight=self.autonomy_weight, import_capacity=self.import_capacity_kw * h,
            export_capacity=self.export_capacity_kw * h,
        )

    def _prepare_slot(self) -> None:
        """Build the current day's community if needed and clear the current slot."""
        d, s = divmod(self._t, self.slots_per_day)
        if d != self._day_index:
            self.community = self._community_of_day(d)
            self._day_index = d
            self._bau_p, self._bau_cost = mk.bau_dispatch(self.community)
            if self.market == "community" and self._custom_plan:
                t0 = time.perf_counter()
                self._plan_custom()
                self._clear_seconds_day = (time.perf_counter() - t0) / self.slots_per_day
            elif self.market == "community":
                t0 = time.perf_counter()
                if self.clearing == "exact":
                    self.plan = mk.solve_community_exact(self.community)
                else:
                    self.plan = mk.solve_community_admm(
                        self.community, rho=self.admm_rho, penalty=self.admm_penalty, eps_abs=self.admm_eps,
                        eps_rel=self.admm_eps, max_iter=self.admm_max_iter,
                    )
                self._clear_seconds_day = (time.perf_counter() - t0) / self.slots_per_day
                c = self.community
                # the day's planned costs (sum f_i + bill at the dispatch; row sums as each slot's own sum)
                self._planned_cost = (c.player_cost(self.plan.p).sum(axis=1) + mk.grid_bill(c, self.plan.q)).tolist()
                self._day_obs = self._obs_rows(np.broadcast_to(self.plan.price[:, None], c.lo.shape),
                                               np.arange(c.n_slots), c.lo, c.hi)
        self._slot = s
        c = self.community
        self._lo, self._hi = c.lo[s], c.hi[s]
        if self.market == "community":
            if self._custom_plan:
                self._price_signal = self._day_signal[s]
            else:
                self._price_signal = np.full(self.n_players, self.plan.price[s])
            self._planned = self.plan.p[s]
            self._clear_seconds = self._clear_seconds_day
        else:
            t0 = time.perf_counter()
            inst = mk.mbed_from_community(c, s, distance_preference=self.distance_preference,
                                          grid_curvature=self.p2p_grid_curvature)
            inst = replace(inst, trade_curvature=self.p2p_trade_curvature, preference=self.p2p_preference)
            warm = self.last_p2p if self._t > 0 else None  # the previous slot's prices and trades
            res = mk.solve_p2p_ci(inst, alpha=self.p2p_alpha, innovation=self.p2p_innovation,
                                  eps_lambda=self.p2p_eps, eps_p=self.p2p_eps, max_iter=self.p2p_max_iter,
                                  warm_start=warm)
            self._clear_seconds = time.perf_counter() - t0
            self.last_p2p = res
            self._p2p_inst = inst
            N = self.n_players
            self._planned = res.net[:N].copy()
            self._lo = inst.lo[:N]
            self._hi = inst.hi[:N]
            # the player's marginal value of energy at its cleared position (f_i'(p_i*))
            self._price_signal = c.m[s] + c.a[s] * (self._planned - c.r[s])

    def _settle(self, p: np.ndarray) -> dict[str, Any]:
        c, s = self.community, self._slot
        cs = c.slots([s])
        f = cs.player_cost(p[None, :])[0]
        bau = self._bau_cost[s]
        if self.market == "community":
            st = mk.settle_community(
                cs, self.allocation, p[None, :], [self.plan.price[s]],
                storage=None if self.storage is None else self._storage_net[s:s + 1], bau_cost=bau[None, :])
            share = st["allocated"][0]
            q = float(st["q"][0])
            planned_cost = self._planned_cost[s]
            out = {
                "p": p, "f": f, "share": share, "cost": f + share, "bau": bau, "q": q,
                "community_cost": float(st["community_cost"][0]), "planned_cost": planned_cost,
                "manager_balance": float(st["manager_balance"][0]),
                "capacity_violation": float(st["capacity_violation"][0]),
            }
            return out
        inst, res = self._p2p_inst, self.last_p2p
        N = self.n_players
        trades = res.trades[:N]  # (N, N+2): each player's planned trades
        prices = np.nan_to_num(res.prices[:N])
        pay = -(prices * trades).sum(axis=1)  # pays for purchases (P < 0), receives for sales
        pref = inst.pref[:N] * np.sum(inst.gamma[:N] * np.abs(trades), axis=1)
        dev = p - trades.sum(axis=1)
        imb = c.import_price[s] * np.maximum(-dev, 0.0) - c.export_price[s] * np.maximum(dev, 0.0)
        share = pay + imb
        # the community's outside payments: grid agents' trades at their prices + imbalances
        grid_trade = res.trades[N:]  # grid agents' view
        grid_revenue = float((np.nan_to_num(res.prices[N:]) * grid_trade).sum())  # paid by the community to the grid
        q = float(-p.sum())
        community_cost = float(f.sum() + grid_revenue + imb.sum())
        planned_cost = float(cs.player_cost(self._planned[None, :]).sum() + grid_revenue)
        return {
            "p": p, "f": f, "share": share, "pref": pref, "cost": f + share + pref, "bau": bau, "q": q,
            "community_cost": community_cost, "planned_cost": planned_cost, "manager_balance": 0.0,
            "capacity_violation": float(max(q - c.import_capacity, 0.0) + max(-q - c.export_capacity, 0.0)),
            "pay": pay, "imbalance": imb,
        }

    def _market_info(self, st: dict[str, Any]) -> dict[str, Any]:
        """The shared ``info["market"]`` of the slot being settled (before the clock moves)."""
        c, s = self.community, self._slot
        d = self.start_day + self._t // self.slots_per_day
        market: dict[str, Any] = {
            "slot": self._t,
            "day": int(d % DAYS),
            "hour": s * self.slot_minutes / 60.0,
            "market": self.market,
            "allocation": self.allocation,
            "import_price": float(c.import_price[s]),
            "export_price": float(c.export_price[s]),
            "q_import_kwh": max(st["q"], 0.0),
            "q_export_kwh": max(-st["q"], 0.0),
            "community_cost_eur": st["community_cost"],
            "planned_cost_eur": st["planned_cost"],
            "bau_cost_eur": float(st["bau"].sum()),
            "manager_balance_eur": st["manager_balance"],
            "capacity_violation_kwh": st["capacity_violation"],
        }
        if self.market == "community":
            plan = self.plan
            market.update(
                price=float(plan.price[s]), iterations=int(plan.iterations[s]),
                primal_residual=float(plan.primal_residual[s]), dual_residual=float(plan.dual_residual[s]),
                converged=bool(plan.converged[s]),
            )
        else:
            r = self.last_p2p
            N = self.n_players
            traded = float(np.maximum(r.trades[:N, :N], 0.0).sum())
            market.update(
                price=float("nan"), iterations=int(r.iterations), primal_residual=float(r.primal_criterion),
                dual_residual=float(r.dual_criterion), reciprocity=float(r.reciprocity), converged=bool(r.converged),
                peer_traded_kwh=traded, preference_cost_eur=float(st["pref"].sum()),
            )
        if self.market == "community" and self._custom_plan:
            market["allocation_mode"] = self.allocation_mode
            if self.storage is not None:
                market["storage_kwh"] = float(self._storage_net[s])
                market["storage_soc_kwh"] = float(self._storage_soc[s + 1].sum())
        if self.report_timing:
            market["clearing_seconds"] = float(self._clear_seconds)
        return market

    def _agent_info(self, st: dict[str, Any], i: int) -> dict[str, Any]:
        """Player ``i``'s info of a settled slot (what :meth:`_infos` gives every agent)."""
        info = {
            "kind": self.kinds[self.possible_agents[i]],
            "p_kwh": float(st["p"][i]),
            "planned_kwh": float(st["planned"][i]),
            "player_cost_eur": float(st["f"][i]),
            "cost_eur": float(st["cost"][i]),
            "bau_cost_eur": float(st["bau"][i]),
            "market": st["market_info"],
        }
        if self.market == "community":
            info["grid_share_eur"] = float(st["share"][i])
        else:
            info["trade_payment_eur"] = float(st["pay"][i])
            info["imbalance_eur"] = float(st["imbalance"][i])
            info["preference_cost_eur"] = float(st["pref"][i])
        return info

    def _infos(self, st: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Every agent's info of a settled slot (one pass over the arrays as Python floats)."""
        market = st["market_info"]
        cols = [st[k].tolist() for k in ("p", "planned", "f", "cost", "bau")]
        kinds = [self.kinds[a] for a in self.possible_agents]
        if self.market == "community":
            return {
                a: {"kind": k, "p_kwh": p, "planned_kwh": pl, "player_cost_eur": f, "cost_eur": c, "bau_cost_eur": b,
                    "market": market, "grid_share_eur": sh}
                for a, k, p, pl, f, c, b, sh in zip(self.possible_agents, kinds, *cols, st["share"].tolist())
            }
        return {
            a: {"kind": k, "p_kwh": p, "planned_kwh": pl, "player_cost_eur": f, "cost_eur": c, "bau_cost_eur": b,
                "market": market, "trade_payment_eur": pay, "imbalance_eur": imb, "preference_cost_eur": pr}
            for a, k, p, pl, f, c, b, pay, imb, pr in zip(
                self.possible_agents, kinds, *cols, st["pay"].tolist(), st["imbalance"].tolist(), st["pref"].tolist())
        }

    def _plan_custom(self) -> None:
        """The day's plan outside the default path: the manager's batteries (the day's QP,
        :mod:`~prosumer_gym.envs.energy_collective.storage`) and/or the members' Nash
        equilibrium with the allocation rule in their objectives
        (:mod:`~prosumer_gym.envs.energy_collective.noncoop`). Sets ``plan``, the
        per-member price signals and the planned costs and observations of the day."""
        c = self.community
        T = c.n_slots
        self._storage_net = None
        plan = None
        if self.storage is not None:
            if self._storage_problem is None:  # the constraint structure, built once
                self._storage_problem = StorageProblem(T, c.n_players, self.storage, c.slot_hours)
            sd = self._storage_problem.solve(c)
            self._storage_net, self._storage_soc = sd.storage, sd.soc
            plan = mk.CommunityDispatch(
                p=sd.p, q=sd.q, price=sd.price, objective=sd.objective, iterations=np.full(T, sd.iterations),
                primal_residual=np.abs(sd.p.sum(axis=1) + sd.storage + sd.q), dual_residual=np.zeros(T),
                converged=np.full(T, sd.converged), method="qp_storage")
            signal = np.repeat(sd.price[:, None], c.n_players, axis=1)
        if self.allocation_mode == "in_dispatch":
            nd = nash_dispatch(c, self.allocation, storage=self._storage_net, tol=self.nash_tol,
                               max_iter=self.nash_max_iter, bau_cost=self._bau_cost)
            plan = mk.CommunityDispatch(
                p=nd.p, q=nd.q, price=nd.price, objective=nd.objective, iterations=nd.iterations,
                primal_residual=nd.gap, dual_residual=nd.step, converged=nd.converged, method=f"nash_{nd.method}")
            signal = nd.signal
        self.plan = plan
        self._day_signal = signal
        self._planned_cost = (c.player_cost(plan.p).sum(axis=1) + mk.grid_bill(c, plan.q)).tolist()
        self._day_obs = self._obs_rows(signal, np.arange(T), c.lo, c.hi)

    # ------------------------------------------------------------------ observations
    def _obs_rows(self, price: np.ndarray, s: np.ndarray | int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Observation rows (float32, clipped to the Box) of slot(s) ``s`` with price signal
        ``price`` and bounds ``lo``/``hi`` of matching shapes ((N,) for one slot or (T, N))."""
        c = self.community
        ang = 2.0 * np.pi * (np.asarray(s) * self.slot_minutes / 60.0) / 24.0
        # one scalar sin/cos per slot, as the per-slot observation always took them
        sin = np.array([np.sin(float(x)) for x in np.atleast_1d(ang)]).reshape(np.shape(ang))
        cos = np.array([np.cos(float(x)) for x in np.atleast_1d(ang)]).reshape(np.shape(ang))
        r, m, a = c.r[s], c.m[s], c.a[s]
        mat = np.empty((*np.shape(lo), len(OBS_NAMES)))
        mat[..., 0] = price
        mat[..., 1] = c.import_price[s][..., None]
        mat[..., 2] = c.export_price[s][..., None]
        mat[..., 3] = lo
        mat[..., 4] = hi
        mat[..., 5] = np.clip(r, lo, hi)
        mat[..., 6] = m + a * (mat[..., 5] - r)  # marginal cost at p_ref
        mat[..., 7] = a
        mat[..., 8] = sin[..., None]
        mat[..., 9] = cos[..., None]
        return np.clip(mat, self._obs_space.low, self._obs_space.high).astype(np.float32)

    def _obs_matrix(self) -> np.ndarray:
        """(N, 10) observations of the current slot (community market: a copy of the day's
        rows, built once per day since they do not depend on the actions)."""
        if self.market == "community":
            return self._day_obs[self._slot].copy()
        return self._obs_rows(self._price_signal, self._slot, self._lo, self._hi)

    def _observations(self) -> dict[str, np.ndarray]:
        mat = self._obs_mat = self._obs_matrix()
        return dict(zip(self.possible_agents, mat))

    def state(self) -> np.ndarray:
        """Global view (see ``state_space.names``)."""
        if self.community is None:
            raise RuntimeError("state() called before reset()")
        c, s = self.community, self._slot
        ang = 2.0 * np.pi * (s * self.slot_minutes / 60.0) / 24.0
        head = [c.import_price[s], c.export_price[s], float(np.median(self._price_signal)), np.sin(ang), np.cos(ang)]
        body = np.stack([self._lo, self._hi, np.clip(c.r[s], self._lo, self._hi)], axis=1).ravel()
        v = np.concatenate([head, body])
        return np.clip(v, self.state_space.low, self.state_space.high).astype(np.float32)

    # ------------------------------------------------------------------ rendering
    def _render_text(self) -> str:
        if self.community is None:
            return "EnergyCollective-v0: call reset() first"
        st = self.last_settlement
        head = f"EnergyCollective-v0 ({self.market}, allocation {self.allocation}) day {self.start_day}, slot {self._t}"
        if st is None:
            return head + f": no slot settled yet; price signal {np.median(self._price_signal):.4f} EUR/kWh"
        lines = [
            head + f": community cost {st['community_cost']:.2f} EUR (planned {st['planned_cost']:.2f}, "
            f"BAU {st['bau'].sum():.2f}); net import {st['q']:.2f} kWh",
            " kind        n   sum p kWh   sum cost EUR",
        ]
        kinds = np.array([self.kinds[a] for a in self.possible_agents])
        for k in mk.PLAYER_TYPES:
            sel = kinds == k
            if sel.any():
                lines.append(f" {k:10s} {sel.sum():3d} {st['p'][sel].sum():11.2f} {st['cost'][sel].sum():14.3f}")
        return "\n".join(lines)

    def _render_rgb(self) -> np.ndarray:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 3.6), dpi=80)
        ax1, ax2 = fig.subplots(1, 2)
        c = self.community
        if c is not None:
            hours = np.arange(c.n_slots) * self.slot_hours
            ax1.step(hours, c.import_price, where="post", label="import")
            ax1.step(hours, c.export_price, where="post", label="export")
            if self.plan is not None and self.market == "community":
                ax1.step(hours, self.plan.price, where="post", label="community")
            ax1.axvline(self._slot * self.slot_hours, color="k", lw=0.8)
            ax1.set_xlabel("hour")
            ax1.set_ylabel("EUR/kWh")
            ax1.legend(fontsize=7)
            kinds = np.array([self.kinds[a] for a in self.possible_agents])
            vals = [self._planned[kinds == k].sum() for k in mk.PLAYER_TYPES]
            ax2.bar(range(len(vals)), vals, color="tab:green")
            ax2.set_xticks(range(len(vals)), mk.PLAYER_TYPES, fontsize=7)
            ax2.set_ylabel("planned net injection, kWh")
        fig.tight_layout()
        return figure_to_rgb(fig)


parallel_env, env = entry_points(raw_env)
