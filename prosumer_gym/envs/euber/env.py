"""EUber-v0: EV ride- and energy-sharing crowdsourcing (recommendation + reverse auction).

Usage::

    import gymnasium as gym
    import prosumer_gym                          # registers the ids
    env = gym.make("EUber-v0")                      # Gymnasium view (one learner)
    # without the import: gym.make("prosumer_gym:EUber-v0")
    from prosumer_gym.envs import euber_v0
    penv = euber_v0.parallel_env()                 # PettingZoo ParallelEnv (all agents)

Dissertation ``001``, chapter 6 (Eqs. 6.1-6.9, Algs. 7-8, Section 6.4). Choices
and reproduction: ``docs/euber.md``.

Env card
--------
Agents
    ``worker_0 ... worker_{W-1}`` (``n_workers``, default 100): EVs drawn from the shipped EV
    specification table (``data.ev_specs(latest_per_model=True)``: battery kWh, consumption
    kWh/km, rated range km); minimum range ``r_min = min_range_frac x range`` (0.15), initial
    range ``U(init_range_frac) x range``, start at a real taxi pickup point. Hidden type
    preferences ``alpha[i, z] ~ U{alpha_levels}`` (default {0.1, 0.4, 0.5, 0.7, 0.9, 1.0}).
Platform (inside the env)
    ``recommender``: ``"cars"`` (default, Alg. 7), ``"pk"`` (true alpha), ``"random"``
    (:data:`RECOMMENDERS`, registered under ``"EUber.recommender"`` in
    ``prosumer_gym.DEFAULT_CO_PLAYERS``), or a factory ``factory(env, rng) -> recommender``
    called at every ``reset`` with this env and a generator spawned from the reset seed; the
    recommender (:class:`Recommender`) gives ``scores(task_type)`` (W, S) for the slot's tasks
    and learns in ``update(recommended, bid_placed, task_type)`` after every slot;
    ``projection``: ``"potr"`` (Eq. 6.1 as a min-cost flow by a network simplex, default; ties
    to nearer tasks), ``"potr-ortools"`` (the same flow by OR-Tools, the default of earlier
    releases: another optimum where several are optimal), ``"potr-highs"`` (the same as an LP by
    HiGHS) or ``"topk"`` (BG's top-K lists);
    winner selection ``mechanism``: ``"bmw"`` (default, Alg. 8), ``"opt"`` (MILP of Eq. 6.3),
    ``"bg"``; second-price payments (Section 6.2.2). ``fare_precision``: the fare MLP's
    layers in ``"float32"`` (default, the precision it was trained in) or ``"float64"`` (earlier
    releases; with ``projection="potr-ortools"`` it reproduces their trajectories bit for bit).
Literal switches (the paper's rules where the defaults deviate; docs/euber.md)
    ``potr_constraints="hard"`` (Eqs. 6.1b-c hard as printed; a slot where they are infeasible
    gets the soft lists, ``info["market"]["potr_fallback"]`` and ``totals["potr_fallback_slots"]``
    count it; both keys only in this mode), ``bmw_guard=False`` (Alg. 8 without our stop
    rule), ``charge_margin_km=0`` (charge only below ``r_min``). Defaults: ``"soft"``, ``True``, 15.
Step (one 15-min slot; ``n_slots`` alias ``max_cycles``, default 96 = one day)
    The observation shows each live worker its recommended list for this slot (at most
    ``K = 5`` tasks within ``lam_km = 10`` km, energy-feasible). Actions are bids; the
    platform selects winners, pays them, winners drive/discharge; workers below ``r_min +
    charge_margin_km`` (15 km; ``0`` = the paper's literal "below the minimum") go charging
    (``charger_kw`` = 50 kW until full); the next slot's tasks are drawn
    (ride/swap from real taxi trips of that 15-min slot of the day, ``n_ride_tasks`` = 25, half
    swaps; V2G from ``n_v2g_tasks`` = 25 real households, one hour of load each; E = their total).
Action (``Box(0, 3, (K,))`` float32, per worker)
    Entry ``k`` for the ``k``-th recommended task: ``0`` = no bid, ``m > 0`` = bid
    ``m x reference`` where ``reference`` is the fare model's price of the task for this worker
    (observation entry ``ref_bid``, $; the bid is at least ``min_bid_usd``). Entries of empty list
    positions are ignored. :meth:`raw_env.default_actions` gives the behavioural model
    (bid w.p. ``alpha[i, z]`` at the worker's markup ``U(0.9, 1.1)``).
Observation (``Box(4 + 8 K,)`` float32, per worker; ``OBS_NAMES``)
    own: ``range_frac``, ``spare_frac`` ((r - r_min) / range), ``x_km/50``, ``y_km/50``;
    per list position ``k``: ``present``, ``is_ride``, ``is_swap``, ``is_v2g``,
    ``approach_km / lam``, ``task_km / 100`` (trip km or the V2G energy's distance
    equivalent), ``need_frac`` (energy l_ij / spare energy), ``ref_bid / 100`` ($).
Rewards
    Payment received minus the energy used at ``energy_price_usd_per_kwh`` (0.15 $/kWh).
Agents leaving and returning (``absent_agents``)
    ``"mask"`` (default): every worker stays in ``env.agents`` for the whole episode; a worker
    that is charging or busy on a trip longer than the slot sees an empty candidate list, its
    action is ignored, its reward is 0 and ``info["status"]`` says ``"charging"``/``"busy"``.
    This is the PettingZoo contract (agents never come back after ``truncated=True``), so
    ``parallel_api_test``, SuperSuit and RLlib's wrapper work on the default.
    ``"revive"`` (opt-in; ``"leave"`` is accepted as its former name, the default of earlier
    releases): an absent worker leaves ``env.agents`` with ``truncated=True`` and re-enters
    under the same name when available again (an observation in that step's ``obs``,
    ``info["status"] == "returned"``). This breaks PettingZoo's "no revival" rule, so
    PettingZoo's own tests reject it; it has its own protocol test. If no worker at
    ``info["market"]["skipped_slots"]`` and in the totals) until one is back or the episode
    ends.
Infos (per agent; ``info["market"]`` shared)
    agent: ``status``, ``won_task`` (-1 none), ``payment_usd``, ``bid_usd``, ``energy_kwh``;
    market: ``slot``, ``cost_usd`` (Eq. 6.3 objective), ``tasks_served``, ``n_tasks``,
    ``n_bids``, ``v2g_delivered_kwh``, ``E_kwh``, ``feasible`` (Eq. 6.3a-e), ``unserved_ride``,
    ``payments_usd``, ``potr`` violation counts, cumulative ``totals``, ``mechanism``.
    No wall-clock numbers (``report_timing=True`` adds ``wibs_seconds``).
Inspection
    ``env.last_instance`` (:class:`SlotInstance`), ``env.last_selection`` (:class:`Selection`:
    ``q``, ``bids``, ``payments``, everything an Eq. 6.3 checker needs), ``env.market.alpha``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces
from numba import njit

from prosumer_gym.core.env_base import MarketParallelEnv, resolve_horizon
from prosumer_gym.core.policies import resolve_co_players
from prosumer_gym.core.pz import entry_points, figure_to_rgb
from prosumer_gym.core.seeding import reseed
from prosumer_gym.core.spaces import check_box_batch
from prosumer_gym.core.validation import check_bool, check_choice, check_float
from prosumer_gym.envs.euber.market import SLOTS_PER_DAY, EUberConfig, EUberMarket, SlotInstance
from prosumer_gym.envs.euber.potr import (
    POTR_CONSTRAINTS,
    potr_violations,
    solve_potr,
    solve_potr_literal,
    topk_recommend,
)
from prosumer_gym.envs.euber.wibs import Selection, select_winners

__all__ = ["raw_env", "env", "parallel_env", "OBS_NAMES", "RECOMMENDERS", "PROJECTIONS", "recommend",
           "recommend_lists", "slot_market_info"]

RECOMMENDERS = ("cars", "pk", "random")
#: "potr": Eq. 6.1 as a min-cost flow, network simplex (default); "potr-ortools": the same flow by
#: OR-Tools (the default before issue 17's third pass), "potr-highs": the same as an LP by HiGHS
#: (both: another optimum where several are optimal); "topk": BG's lists
PROJECTIONS = ("potr", "potr-ortools", "potr-highs", "topk")
_POTR_SOLVER = {"potr": "flow", "potr-ortools": "ortools", "potr-highs": "highs"}
ABSENT_MODES = ("mask", "revive")
#: former name of ``"revive"`` (the default before the PettingZoo-conforming ``"mask"``)
_ABSENT_ALIASES = {"leave": "revive"}
TASK_FEATURES = ("present", "is_ride", "is_swap", "is_v2g", "approach", "task_km", "need_frac", "ref_bid")
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(EUberConfig)}
_STATUS = ("available", "busy", "charging")


class Recommender(Protocol):
    """The platform's recommender inside EUber-v0 (``recommender=``; see the env card)."""

    def scores(self, task_type: np.ndarray) -> np.ndarray:
        """Score (W, S) of every (worker, task) pair of the slot, projected by ``projection``."""

    def update(self, recommended: np.ndarray, bid_placed: np.ndarray, task_type: np.ndarray) -> None:
        """Learn from the slot: the lists (W, S), where bids came (W, S) and the task types (S,)."""


#: ``factory(env, rng) -> Recommender``: the form of ``recommender=`` besides the names
RecommenderFactory = Callable[[Any, np.random.Generator], Recommender]


def fold_max_cycles(config: dict[str, Any], max_cycles: int | None) -> None:
    """Fold PettingZoo's ``max_cycles`` alias into ``config["n_slots"]`` (both views)."""
    if max_cycles is not None:
        config["n_slots"] = resolve_horizon("n_slots", config.get("n_slots"), max_cycles, SLOTS_PER_DAY)


def OBS_NAMES(K: int) -> tuple[str, ...]:  # noqa: N802 - a constant-like helper
    return ("range_frac", "spare_frac", "x", "y") + tuple(f"{n}_{k}" for k in range(K) for n in TASK_FEATURES)


def recommend(scores: np.ndarray, inst: SlotInstance, projection: str, time_limit: float = 20.0,
              constraints: str = "soft") -> np.ndarray:
    """Project a score matrix onto recommendation lists (:data:`PROJECTIONS`; ``constraints``:
    see :func:`recommend_lists`)."""
    return recommend_lists(scores, inst, projection, time_limit, constraints)[0]


def recommend_lists(scores: np.ndarray, inst: SlotInstance, projection: str, time_limit: float = 20.0,
                    constraints: str = "soft") -> tuple[np.ndarray, bool]:
    """Lists and whether the literal POTR was infeasible (``constraints="hard"`` only).

    ``constraints="hard"`` (POTR projections only; ``"topk"`` has no 6.1b-c): Eqs. 6.1a-f as
    printed (:func:`~prosumer_gym.envs.euber.potr.solve_potr_literal`); on a slot where they
    are infeasible the soft lists of ``projection`` are used and the flag is True."""
    check_choice("potr_constraints", constraints, POTR_CONSTRAINTS)
    if constraints == "hard" and projection != "topk":
        x = solve_potr_literal(scores, inst)
        if x is not None:
            return x, False
        return _recommend_soft(scores, inst, projection, time_limit), True
    return _recommend_soft(scores, inst, projection, time_limit), False


def _recommend_soft(scores: np.ndarray, inst: SlotInstance, projection: str, time_limit: float) -> np.ndarray:
    if projection in _POTR_SOLVER:
        return solve_potr(scores, inst, time_limit=time_limit, solver=_POTR_SOLVER[projection])
    return topk_recommend(scores, inst)


def count_potr_fallback(market: EUberMarket, config: EUberConfig, projection: str, fallback: bool) -> bool | None:
    """With ``potr_constraints="hard"`` on a POTR projection: count a slot whose literal POTR was
    infeasible in ``totals["potr_fallback_slots"]`` and return the flag; otherwise None (no key)."""
    if config.potr_constraints != "hard" or projection == "topk":
        return None
    market.totals["potr_fallback_slots"] = market.totals.get("potr_fallback_slots", 0) + int(fallback)
    return fallback


def slot_market_info(inst: SlotInstance, x: np.ndarray, sel: Selection, totals: dict, report_timing: bool,
                     potr_fallback: bool | None = None) -> dict:
    """The market KPIs of one slot (shared by both views). ``potr_fallback`` (only with
    ``potr_constraints="hard"``): the literal POTR was infeasible, the soft lists were used."""
    info = {
        "slot": int(inst.slot),
        "slot_of_day": int(inst.slot_of_day),
        "mechanism": sel.mechanism,
        "cost_usd": float(sel.cost),
        "tasks_served": int(sel.q.sum()),
        "n_tasks": int(inst.n_tasks),
        "n_bids": int(np.isfinite(sel.bids).sum()),
        "n_recommended": int(np.sum(x)),
        "v2g_delivered_kwh": float(sel.v2g_delivered_kwh),
        "E_kwh": float(inst.E),
        "feasible": bool(sel.feasible),
        "unserved_ride": int(sel.unserved_ride),
        "payments_usd": float(sel.payments.sum()),
        "available_workers": int(inst.worker_available.sum()),
        "potr": potr_violations(x, inst),
        "wibs_status": sel.status,
        "totals": dict(totals),
    }
    if report_timing:
        info["wibs_seconds"] = float(sel.seconds)
    if potr_fallback is not None:
        info["potr_fallback"] = bool(potr_fallback)
    return info


class raw_env(MarketParallelEnv):
    """PettingZoo parallel env for EUber-v0 (see the module docstring: the env card)."""

    metadata = {**MarketParallelEnv.metadata, "name": "euber_v0"}
    horizon_attr = "n_slots"

    def __init__(
        self,
        recommender: str | RecommenderFactory = "cars",
        projection: str = "potr",
        absent_agents: str = "mask",
        energy_price_usd_per_kwh: float = 0.15,
        max_bid_multiplier: float = 3.0,
        ucb_scale: float = 1.0,
        max_cycles: int | None = None,
        report_timing: bool = False,
        render_mode: str | None = None,
        **config: Any,
    ) -> None:
        unknown = set(config) - _CONFIG_FIELDS
        if unknown:
            raise ValueError(f"unknown keyword(s) {sorted(unknown)}; EUber-v0 accepts {sorted(_CONFIG_FIELDS)} and "
                             "recommender, projection, absent_agents, energy_price_usd_per_kwh, max_bid_multiplier, "
                             "ucb_scale, max_cycles, report_timing, render_mode")
        fold_max_cycles(config, max_cycles)
        self.config = EUberConfig(**config).validate()
        self._recommender = resolve_co_players("EUber.recommender", recommender, "recommender")
        check_choice("projection", projection, PROJECTIONS)
        absent_agents = _ABSENT_ALIASES.get(absent_agents, absent_agents) if isinstance(absent_agents, str) \
            else absent_agents
        check_choice("absent_agents ('leave' = 'revive')", absent_agents, ABSENT_MODES)
        self.recommender_name = recommender if isinstance(recommender, str) else getattr(
            recommender, "__name__", type(recommender).__name__)
        self.projection, self.absent_agents = projection, absent_agents
        self.energy_price = check_float("energy_price_usd_per_kwh", energy_price_usd_per_kwh, 0.0)
        mb = check_float("max_bid_multiplier", max_bid_multiplier, 0.0, 1e6, lo_open=True)  # float32 action bound
        self.max_bid_multiplier = mb
        self.ucb_scale = check_float("ucb_scale", ucb_scale, 0.0)
        self.report_timing = check_bool("report_timing", report_timing)
        self._init_render(render_mode)
        self.market = EUberMarket(self.config)
        W, K = self.config.n_workers, self.config.K
        self.possible_agents = [f"worker_{i}" for i in range(W)]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._all_rows = np.arange(W, dtype=np.int64)
        self.agents: list[str] = []
        names = OBS_NAMES(K)
        lo = np.zeros(len(names), dtype=np.float32)
        hi = np.ones(len(names), dtype=np.float32)
        lo[2:4], hi[2:4] = -10.0, 10.0
        hi[4:] = np.tile([1, 1, 1, 1, 1, 10, 1, 10], K)
        self.observation_spaces = dict.fromkeys(self.possible_agents, spaces.Box(lo, hi, dtype=np.float32))
        self.action_spaces = dict.fromkeys(self.possible_agents, spaces.Box(0.0, mb, shape=(K,), dtype=np.float32))
        self.obs_names = names
        self._rng: np.random.Generator | None = None
        self.last_instance: SlotInstance | None = None
        self.last_selection: Selection | None = None

    # ------------------------------------------------------------------ API
    @property
    def n_slots(self) -> int:
        """Episode length in slots (``config.n_slots``; alias ``max_cycles``)."""
        return self.config.n_slots

    @n_slots.setter
    def n_slots(self, value: int) -> None:
        self.config.n_slots = value
        self.config.validate()

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        self._rng = reseed(self._rng, seed)
        if options:
            warnings.warn(f"reset options {sorted(options)} are ignored (EUber-v0 takes none)", stacklevel=2)
        m_rng, rec_rng, self._policy_rng = self._rng.spawn(3)
        self.market.reset(m_rng)
        self.platform: Recommender = self._recommender(self, rec_rng)
        self.last_selection = None
        self._prepare_slot()
        self.agents = self._live()
        infos = {a: {"status": "available" if self._inst.worker_available[self._index[a]] else "absent"}
                 for a in self.possible_agents if a in self.agents}
        return self._observations(self.agents), infos

    def _prepare_slot(self) -> None:
        inst = self.market.instance()
        self._inst = inst
        self.last_instance = inst
        self._x, self._potr_fallback = recommend_lists(self.platform.scores(inst.task_type), inst, self.projection,
                                                       self.config.milp_time_limit, self.config.potr_constraints)
        self._ref = self.market.reference_bids(inst, self._x > 0)  # priced where recommended only
        # each worker's list: task indices in ascending order, padded with -1 (row-major nonzero:
        # a pair's position in its list is its rank within its row)
        K = self.config.K
        wi, tj = np.nonzero(self._x)
        k = np.arange(wi.size) - np.searchsorted(wi, wi)
        keep = k < K
        lists = np.full((inst.n_workers, K), -1, dtype=np.int64)
        lists[wi[keep], k[keep]] = tj[keep]
        self._lists = lists

    def _rows(self, agents: list[str]) -> np.ndarray:
        """Worker indices of ``agents`` (int64)."""
        if len(agents) == len(self.possible_agents):  # every worker, in order ("mask" mode)
            return self._all_rows
        return np.fromiter((self._index[a] for a in agents), dtype=np.int64, count=len(agents))

    def _live(self) -> list[str]:
        if self.absent_agents == "mask":
            return self.possible_agents[:]
        avail = self._inst.worker_available
        return [a for a in self.possible_agents if avail[self._index[a]]]

    def recommended_tasks(self, agent: str) -> np.ndarray:
        """Task indices of ``agent``'s current list (-1 = empty position)."""
        return self._lists[self._index[agent]].copy()

    def default_actions(self) -> dict[str, np.ndarray]:
        """Behavioural worker model for every live agent (bid w.p. alpha at the worker's markup)."""
        out = {}
        mk = self.market
        for a in self.agents:
            i = self._index[a]
            js = self._lists[i]
            u = self._policy_rng.random(js.size)
            z = self._inst.task_type[np.maximum(js, 0)]
            bid = (js >= 0) & (u < mk.alpha[i, z])
            out[a] = np.where(bid, min(mk.markup[i], self.max_bid_multiplier), 0.0).astype(np.float32)
        return out

    def step(self, actions: dict[str, Any]):
        self._check_action_dict(actions)
        inst, mk = self._inst, self.market
        W, S = inst.n_workers, inst.n_tasks
        bids = np.full((W, S), np.inf)
        if self.agents:
            act = check_box_batch(actions, self.agents, self.action_spaces[self.agents[0]])  # (n, K)
            rows = self._rows(self.agents)
            js = self._lists[rows]
            r, k = np.nonzero((js >= 0) & (act > 0))
            i, j = rows[r], js[r, k]
            bids[i, j] = np.maximum(act[r, k] * self._ref[i, j], self.config.min_bid_usd)
        sel = select_winners(self.config.mechanism, bids, inst, time_limit=self.config.milp_time_limit,
                             bmw_guard=self.config.bmw_guard)
        self.last_selection = sel
        self.platform.update(self._x, np.isfinite(bids), inst.task_type)
        mk.advance(inst, sel)
        fallback = count_potr_fallback(mk, self.config, self.projection, self._potr_fallback)
        market = slot_market_info(inst, self._x, sel, mk.totals, self.report_timing, fallback)
        acted = self.agents[:]
        won = np.full(W, -1)
        wi, tj = np.nonzero(sel.q)
        won[wi] = tj
        pay, en, bid = np.zeros(W), np.zeros(W), np.zeros(W)
        pay[wi], en[wi], bid[wi] = sel.payments[wi, tj], inst.need_kwh[wi, tj], bids[wi, tj]
        reward = pay - self.energy_price * en
        arow = self._rows(acted)
        # per-agent entries from Python lists (one .tolist() per array instead of a scalar
        # conversion per agent and field)
        rewards = dict(zip(acted, reward[arow].tolist()))
        infos = {a: {"won_task": w_, "payment_usd": p_, "bid_usd": b_, "energy_kwh": e_, "market": market}
                 for a, w_, p_, b_, e_ in zip(acted, won[arow].tolist(), pay[arow].tolist(), bid[arow].tolist(),
                                             en[arow].tolist())}
        done = mk.slot >= self.config.n_slots
        skipped = 0
        if not done:
            self._prepare_slot()
            while not self._live():  # "revive" mode, nobody available: the slot runs without workers
                empty = select_winners(self.config.mechanism, np.full((W, S), np.inf), self._inst,
                                       time_limit=self.config.milp_time_limit, bmw_guard=self.config.bmw_guard)
                self.platform.update(self._x, np.zeros((W, S), dtype=bool), self._inst.task_type)
                mk.advance(self._inst, empty)
                skipped += 1
                if mk.slot >= self.config.n_slots:
                    done = True
                    break
                self._prepare_slot()
        market["skipped_slots"] = skipped
        market["totals"] = dict(mk.totals)
        nxt = [] if done else self._live()
        terms = dict.fromkeys(acted, False)
        truncs = {}
        live = set(nxt)
        away = np.zeros(W, dtype=bool) if done else ~self._inst.worker_available
        code = (away * (1 + mk.charging))[arow].tolist()  # 0 available, 1 busy, 2 charging
        for a, c in zip(acted, code):
            infos[a]["status"] = _STATUS[c]
            truncs[a] = done or a not in live
        acted_set = set(acted)
        returning = [a for a in nxt if a not in acted_set]
        for a in returning:  # re-entering workers ("revive" mode)
            rewards[a] = 0.0
            terms[a] = False
            truncs[a] = False
            infos[a] = {"status": "returned", "won_task": -1, "payment_usd": 0.0, "bid_usd": 0.0, "energy_kwh": 0.0,
                        "market": market}
        self.agents = nxt
        obs = self._observations(list(acted) + returning)
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terms, truncs, infos

    def _observations(self, agents: list[str]) -> dict[str, np.ndarray]:
        """Every worker's observation (``OBS_NAMES``) in one compiled pass; rows for ``agents``."""
        inst, mk = self._inst, self.market
        o = _observation_rows(mk.range, mk.range_max, mk.rmin, mk.pos, mk.e, self._lists, inst.worker_available,
                              inst.task_type, inst.task_energy_kwh, inst.task_trip_km, inst.approach_km,
                              inst.need_kwh, self._ref, float(self.config.lam_km))
        if agents == self.possible_agents:  # every worker, in order: the rows as they come
            return dict(zip(agents, o))
        idx = self._index
        return {a: o[idx[a]] for a in agents}

    def state(self) -> np.ndarray:
        """Global view: every worker's observation, stacked (W, 4 + 8K) and flattened."""
        if self._rng is None:
            raise RuntimeError("state() called before reset()")
        return np.concatenate(list(self._observations(self.possible_agents).values()))

    # ------------------------------------------------------------------ rendering
    def _render_text(self) -> str:
        t = self.market.totals
        s = self.last_selection
        head = f"EUber-v0 slot {self.market.slot}/{self.config.n_slots} ({self.config.mechanism}, {self.recommender_name})"
        if s is None:
            return head + ": no auction yet"
        return (f"{head}: last slot cost ${s.cost:.2f}, served {int(s.q.sum())}, V2G {s.v2g_delivered_kwh:.1f}/"
                f"{s.E:.1f} kWh, feasible {s.feasible}; totals cost ${t['cost_usd']:.0f}, tasks {t['tasks_served']}")

    def _render_rgb(self) -> np.ndarray:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5, 5), dpi=80)
        ax = fig.subplots()
        mk = self.market
        inst = self._inst
        ax.scatter(mk.pos[:, 0], mk.pos[:, 1], s=8, c=np.where(mk.charging, "tab:red", "tab:blue"), label="workers")
        col = np.array(["tab:green", "tab:orange", "tab:purple"])[inst.task_type]
        ax.scatter(inst.task_start_km[:, 0], inst.task_start_km[:, 1], s=14, marker="x", c=col, label="tasks")
        ax.set_xlabel("x km")
        ax.set_ylabel("y km")
        ax.set_title(self._render_text()[:60])
        fig.tight_layout()
        return figure_to_rgb(fig)


@njit(cache=True)
def _observation_rows(rng_km: np.ndarray, range_max: np.ndarray, rmin: np.ndarray, pos: np.ndarray, e: np.ndarray,
                      lists: np.ndarray, avail: np.ndarray, task_type: np.ndarray, task_kwh: np.ndarray,
                      trip_km: np.ndarray, approach: np.ndarray, need: np.ndarray, ref: np.ndarray,
                      lam_km: float) -> np.ndarray:
    """Every worker's observation row (``OBS_NAMES``), (W, 4 + 8 K) float32: range shares,
    position / 50 km, then per list position a flag, the type one-hot, approach / lambda,
    trip km / 100 (V2G: energy / e_i), need / spare energy and reference bid / $100, each
    clipped to the space. Values are computed in float64 and rounded once to float32, as the
    NumPy expressions they replace."""
    W, K = lists.shape
    o = np.zeros((W, 4 + 8 * K), np.float32)
    for i in range(W):
        o[i, 0] = min(max(rng_km[i] / range_max[i], 0.0), 1.0)
        o[i, 1] = min(max((rng_km[i] - rmin[i]) / range_max[i], 0.0), 1.0)
        o[i, 2] = min(max(pos[i, 0] / 50.0, -10.0), 10.0)
        o[i, 3] = min(max(pos[i, 1] / 50.0, -10.0), 10.0)
        if not avail[i]:
            continue
        spare = max((rng_km[i] - rmin[i]) * e[i], 1e-9)
        for k in range(K):
            j = lists[i, k]
            if j < 0:
                continue
            z = task_type[j]
            tkm = task_kwh[j] / e[i] if z == 2 else trip_km[j]
            c = 4 + 8 * k
            o[i, c] = 1.0
            o[i, c + 1 + z] = 1.0
            o[i, c + 4] = min(approach[i, j] / lam_km, 1.0)
            o[i, c + 5] = min(tkm / 100.0, 10.0)
            o[i, c + 6] = min(need[i, j] / spare, 1.0)
            o[i, c + 7] = min(ref[i, j] / 100.0, 10.0)
    return o


parallel_env, env = entry_points(raw_env)
