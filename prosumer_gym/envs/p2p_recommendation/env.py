"""P2PRecommendation-v0: preference-aware P2P energy recommendation as a combinatorial bandit.

Usage::

    import gymnasium as gym
    import prosumer_gym                          # registers the ids
    env = gym.make("P2PRecommendation-v0")                      # Gymnasium view (one learner)
    # without the import: gym.make("prosumer_gym:P2PRecommendation-v0")
    from prosumer_gym.envs import p2p_recommendation_v0
    penv = p2p_recommendation_v0.parallel_env()                 # PettingZoo ParallelEnv (all agents)

Dissertation ``001``, chapter 4 (Eq. 4.1-4.7, Algs. 1-3, Section 4.5). Docs:
``docs/p2p_recommendation.md``.

Env card
--------
Market (one step = one day)
    Producers ``i`` (``n_producers``, default 16 rooftop PV plants, ``producer_pv_kw``
    cycled ``(8, 4)`` kWp) with forecast capacity ``r_i`` and consumers ``j``
    (``n_consumers``, default 10, real CityLearn homes, augmented beyond the 12 train homes)
    with forecast demand ``w_j`` (kWh/day, EWMA(``forecast_alpha`` = 0.5) of the real
    series). ``producer_capacity="pv"`` (default: the plant's daily PV energy, the paper's
    pure producers) or ``"surplus"`` (the prosumer's daily PV surplus over its own load).
    Static losses ``L_ij ~ U(loss_levels)`` = U{1, 2, 3, 4}%, pairs with
    ``L_ij > loss_max`` (2.5%) may not trade; each trade >= ``min_exchange_kwh`` (alpha,
    50 Wh); at most ``K`` (default 5; ``None`` = unlimited) producers per consumer.
    Preferences ``p_ij ~ U(preference_levels)`` = U{0.1, 0.5, 1}, hidden from the
    platform (``env.preference`` for perfect-knowledge baselines). Each day every pair has
    an i.i.d. Bernoulli(``p_ij``) realisation ``P_ij(d)``; a recommended trade is executed
    iff accepted. Rejected energy comes from the grid.
Agents
    ``platform`` (the learner) and, with ``consumer_agents=True`` (default),
    ``consumer_0 .. consumer_{C-1}``. A consumer's action is its accept vector for the day
    (``MultiBinary(P)``: 1 = accepts a recommendation from producer ``i`` if it gets one).
    It is chosen simultaneously with the platform's list, exactly like ``P_ij(d)`` in
    Eq. 4.2, which exists for every pair whatever is recommended. Like every agent of the
    other markets, each live consumer must act: a consumer missing from the action dict, or
    given ``None``, is refused (``ValueError``). A consumer that should follow the default
    policy, the Bernoulli preference model, sends the explicit sentinel ``FOLLOW_MODEL``
    (the string ``"model"``, exported by ``p2p_recommendation_v0``).
    ``consumer_agents=False`` leaves only ``platform`` (every consumer follows the model).
Platform action (``Box(0, 1, (P, C))``, float64)
    ``a_ij``: fraction of ``w_j`` recommended from producer ``i``. Out-of-box, NaN or
    wrong-shape actions raise ``ValueError``; an in-box matrix is projected onto the
    feasible set of Eq. 4.1 by :func:`~prosumer_gym.envs.p2p_recommendation.market.project`
    (forbidden pairs -> demand scaling -> keep K largest -> capacity curtailment -> drop
    trades below alpha) and ``info["projection"]`` says what changed.
    ``action_mode="scores"`` (P2PRecommendation-v1's default): the same ``Box`` holds
    per-pair *scores*; :func:`~prosumer_gym.envs.p2p_recommendation.market.decode_scores`
    turns them into a feasible matrix (greedy fill in decreasing score, score 0 = never),
    so a policy only ranks pairs, as the bandits do, instead of shaping fractions.
Observations
    platform (``Dict``, float64 so policies see the exact instance): ``capacity_kwh`` (P,), ``demand_kwh`` (C,) — today's
    forecasts; ``loss`` (P, C); ``last_recommendation`` (P, C) — yesterday's projected
    action; ``last_accepted`` (P, C) — 1 where yesterday's recommendation was accepted (a
    recommended pair with 0 was rejected); ``day_of_year`` (1,) in [0, 1). With
    ``statistics=True`` (v1's default) also the episode's sufficient statistic of the
    Bernoulli preferences, what the bandits keep: ``accept_rate`` (P, C) ``(s + 1) / (n + 2)``
    (acceptances ``s`` of ``n`` recommendations so far, a Beta(1, 1) prior) and
    ``recommended_per_day`` (P, C) ``n / days played``.
    consumer ``j`` (``Box(1 + 3P)``): ``demand_kwh``, its loss column, yesterday's
    recommendation column and accepted column.
Rewards
    platform: energy exchanged today ``sum_ij w_j a_ij P_ij(d)`` (kWh, Eq. 4.2);
    consumer ``j``: the energy it received (kWh).
Infos
    platform: ``day``, ``data_day``, ``exchanged_kwh``, ``expected_kwh`` (Eq. 4.1 objective
    of the projected action with the true ``p``), ``oracle_status``, ``satisfied_demand``
    (exchanged / demand), ``losses_kwh`` (``sum L_ij`` x exchanged), ``loss_pct``,
    ``cumulative_kwh``, ``demand_kwh``, ``capacity_kwh``, ``n_recommended``, ``violations``
    (constraint -> largest violation of the *submitted* action), ``projection`` (what the
    projection changed); with ``oracle=True`` also ``oracle_kwh`` (perfect-knowledge optimum
    of Eq. 4.1 today, HiGHS MILP; NaN if HiGHS returned none), ``efficiency`` (expected /
    oracle) and ``regret_kwh`` (cumulative ``oracle - expected``, Eq. 4.3), and with
    ``report_timing=True`` ``oracle_seconds``. consumers: ``demand_kwh``, ``received_kwh``,
    ``n_recommended``.
KPI cost
    Every info entry but the oracle ones is a few NumPy reductions on the day's ``(P, C)``
    matrices (the whole step takes well under a millisecond at 16x10 and a few at 150x150,
    see ``benchmarks/bench_envs.py``). The oracle KPIs (``oracle_kwh``, ``efficiency``,
    ``regret_kwh``) need one HiGHS MILP of Eq. 4.1 per day (tens of milliseconds at 16x10,
    seconds at 150x150), so they are off by default: with ``oracle=False`` the info has
    ``oracle_status="off"`` and no oracle numbers (absent rather than NaN, so that infos
    compare equal under ``==`` as the Gymnasium and PettingZoo determinism checks require).
    Get them eagerly in every step's info (``oracle=True``, what the leaderboard track
    uses) or lazily: the env records each played day's instance and expected energy, and
    :meth:`raw_env.oracle_kpis` solves the days not solved yet and returns, per day, exactly
    the values the eager path puts in ``info`` (same MILP, same inputs; tested). Call it at
    episode end (before the next ``reset``) or at any time for the days played so far.
Inspection
    ``env.last_instance`` (:class:`RecInstance` of the day just played),
    ``env.instance()`` (today's, i.e. the one the next action is for), ``env.preference``.
Episode
    ``n_days`` (alias ``max_cycles``) = 365 days, from ``start_day``; the last step
    truncates every agent.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from prosumer_gym import data as pgdata
from prosumer_gym.core.env_base import MarketParallelEnv, resolve_horizon
from prosumer_gym.core.validation import check_bool, check_choice, check_float, check_floats, check_size
from prosumer_gym.core.validation import check_int as _int
from prosumer_gym.core.pz import entry_points, figure_to_rgb
from prosumer_gym.core.seeding import reseed, spawn
from prosumer_gym.core.spaces import NamedBox, check_box, check_multibinary
from prosumer_gym.envs.p2p_recommendation.versions import AcceptanceStatistics, v1_platform_space
from prosumer_gym.envs.p2p_recommendation.market import (
    RecInstance,
    CONSTRAINTS,
    RecommendationMILP,
    decode_scores,
    expected_energy,
    project,
    violations,
)

__all__ = ["raw_env", "env", "parallel_env", "PLATFORM", "CAPACITY_MODES", "ACTION_MODES", "FOLLOW_MODEL"]

PLATFORM = "platform"
#: a consumer's action meaning "accept as the preference model draws" (Bernoulli ``p_ij``, Eq. 4.2)
FOLLOW_MODEL = "model"
CAPACITY_MODES = ("pv", "surplus")
#: the platform's action: recommended fractions projected onto Eq. 4.1 (v0), or per-pair scores decoded greedily (v1)
ACTION_MODES = ("fractions", "scores")
ORACLE_NUMBERS = ("oracle_kwh", "efficiency", "regret_kwh")  # info entries that need the daily MILP
DAYS_PER_YEAR = 365


def footprint_bytes(n_producers: int, n_consumers: int) -> float:
    """Estimate (bytes) of the largest arrays of a market of this size, checked against
    :data:`~prosumer_gym.core.validation.MAX_ENV_BYTES` before anything is allocated: the
    sampled households' hourly year (~4 float64 series of 8760 h each, measured ~0.25 MB per
    household at reset), the MILP's pattern and the (P, C) observation/instance arrays
    (~32 8-byte entries per pair) and ~1 kB of Python objects per agent."""
    P, C = n_producers, n_consumers
    return 8.0 * (4 * 8760 * (P + C) + 32 * P * C) + 1024.0 * C


def _oracle_fields(expected: float, oracle_kwh: float, regret: float) -> tuple[float, float]:
    """``(efficiency, cumulative regret)`` of a day with oracle value ``oracle_kwh`` (NaN when
    HiGHS returned none: efficiency NaN, the regret of Eq. 4.3 is carried over unchanged)."""
    if not np.isfinite(oracle_kwh):
        return float("nan"), regret
    return (expected / oracle_kwh if oracle_kwh > 1e-9 else 1.0), regret + (oracle_kwh - expected)


class raw_env(MarketParallelEnv):
    """PettingZoo parallel env for P2PRecommendation-v0 (see the module docstring: the env card)."""

    metadata = {**MarketParallelEnv.metadata, "name": "p2p_recommendation_v0"}
    horizon_attr = "n_days"

    def __init__(
        self,
        n_producers: int = 16,
        n_consumers: int = 10,
        n_days: int = DAYS_PER_YEAR,
        max_cycles: int | None = None,
        start_day: int = 0,
        K: int | None = 5,
        min_exchange_kwh: float = 0.05,
        loss_levels: Sequence[float] = (0.01, 0.02, 0.03, 0.04),
        loss_max: float = 0.025,
        preference_levels: Sequence[float] = (0.1, 0.5, 1.0),
        producer_pv_kw: float | Sequence[float] = (8.0, 4.0),
        producer_capacity: str = "pv",
        split: str = "train",
        forecast_alpha: float = 0.5,
        consumer_agents: bool = True,
        oracle: bool = False,
        oracle_time_limit: float = 30.0,
        oracle_gap: float = 1e-4,
        report_timing: bool = False,
        action_mode: str = "fractions",
        statistics: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self.n_producers = _int("n_producers", n_producers, 1)
        self.n_consumers = _int("n_consumers", n_consumers, 1)
        check_size("P2PRecommendation-v0", f"n_producers={self.n_producers}, n_consumers={self.n_consumers}",
                   footprint_bytes(self.n_producers, self.n_consumers))
        self.n_days = resolve_horizon("n_days", n_days, max_cycles, DAYS_PER_YEAR)
        self.start_day = _int("start_day", start_day, 0, DAYS_PER_YEAR - 1)
        self.K = None if K is None else _int("K (None = unlimited)", K, 1)
        self.min_exchange_kwh = check_float("min_exchange_kwh (alpha)", min_exchange_kwh, 0.0, lo_open=True)
        self.loss_levels = check_floats("loss_levels", loss_levels, 0.0, 1.0, hi_open=True, scalar_ok=True)
        self.loss_max = check_float("loss_max", loss_max, 0.0, 1.0, hi_open=True)
        self.preference_levels = check_floats("preference_levels", preference_levels, 0.0, 1.0, scalar_ok=True)
        pv = check_floats("producer_pv_kw", producer_pv_kw, 0.0, lo_open=True, scalar_ok=True)
        self.producer_pv_kw = producer_pv_kw
        self._pv_kw = np.resize(pv, self.n_producers)
        self.producer_capacity = check_choice("producer_capacity", producer_capacity, CAPACITY_MODES)
        self.split = check_choice("split", split, pgdata.SPLITS)
        self.forecast_alpha = check_float("forecast_alpha", forecast_alpha, 0.0, 1.0, lo_open=True)
        self.consumer_agents = check_bool("consumer_agents", consumer_agents)
        self.oracle = check_bool("oracle", oracle)
        oracle_time_limit = check_float("oracle_time_limit (seconds)", oracle_time_limit, 0.0, lo_open=True,
                                        allow_inf=True)
        oracle_gap = check_float("oracle_gap", oracle_gap, 0.0, 1.0)
        self.report_timing = check_bool("report_timing", report_timing)
        self.action_mode = check_choice("action_mode", action_mode, ACTION_MODES)
        self.statistics = check_bool("statistics", statistics)
        self._init_render(render_mode)

        P, C = self.n_producers, self.n_consumers
        self._oracle_time_limit = float(oracle_time_limit)
        self._oracle_gap = float(oracle_gap)
        self._milp_obj: RecommendationMILP | None = None  # built on first use (eager step, oracle_kpis, OPT)
        self.consumers = [f"consumer_{j}" for j in range(C)]
        self.possible_agents = [PLATFORM] + (self.consumers if self.consumer_agents else [])
        self.agents: list[str] = []
        f64 = np.float64
        platform_obs = spaces.Dict(
            {
                "capacity_kwh": spaces.Box(0.0, np.inf, (P,), f64),
                "demand_kwh": spaces.Box(0.0, np.inf, (C,), f64),
                "loss": spaces.Box(0.0, 1.0, (P, C), f64),
                "last_recommendation": spaces.Box(0.0, 1.0, (P, C), f64),
                "last_accepted": spaces.Box(0.0, 1.0, (P, C), f64),
                "day_of_year": spaces.Box(0.0, 1.0, (1,), f64),
            }
        )
        if self.statistics:
            platform_obs = v1_platform_space(platform_obs)
        self._platform_act = spaces.Box(0.0, 1.0, (P, C), f64)
        self.observation_spaces: dict[str, spaces.Space] = {PLATFORM: platform_obs}
        self.action_spaces: dict[str, spaces.Space] = {PLATFORM: self._platform_act}
        if self.consumer_agents:
            cnames = ["demand_kwh"] + [f"{k}_{i}" for k in ("loss", "recommended", "accepted") for i in range(P)]
            consumer_obs = NamedBox(cnames, low=0.0, high=[np.inf] + [1.0] * (3 * P))
            consumer_act = spaces.MultiBinary(P)
            self.observation_spaces.update(dict.fromkeys(self.consumers, consumer_obs))
            self.action_spaces.update(dict.fromkeys(self.consumers, consumer_act))
        self._rng: np.random.Generator | None = None
        self.last_instance: RecInstance | None = None
        self._t = 0

    # ------------------------------------------------------------------ PettingZoo API
    @property
    def _milp(self) -> RecommendationMILP:
        """The oracle's MILP of Eq. 4.1 for this market size (its sparsity pattern is built
        on first use, so an env that never asks for the oracle never pays for it)."""
        if self._milp_obj is None:
            self._milp_obj = RecommendationMILP(self.n_producers, self.n_consumers, time_limit=self._oracle_time_limit,
                                                mip_rel_gap=self._oracle_gap)
        return self._milp_obj

    @property
    def preference(self) -> np.ndarray:
        """True acceptance probabilities ``p_ij`` (P, C): hidden from the platform's
        observation, for perfect-knowledge baselines (Zhu_P, OPT) and evaluation only."""
        if self._rng is None:
            raise RuntimeError("preference is drawn at reset(); call reset() first")
        return self._p.copy()

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start a new year. ``options`` may hold ``start_day`` (0-364) for this episode."""
        self._rng = reseed(self._rng, seed)
        start_day = self.start_day
        if options:
            unknown = set(options) - {"start_day"}
            if unknown:
                warnings.warn(f"reset options {sorted(unknown)} are ignored; known options: ['start_day']", stacklevel=2)
            if "start_day" in options:
                start_day = _int("options['start_day']", options["start_day"], 0, DAYS_PER_YEAR - 1)
        self._episode_start = start_day
        data_rng, market_rng, self._accept_rng = spawn(self._rng, 3)
        P, C = self.n_producers, self.n_consumers
        prod = pgdata.sample_prosumers(data_rng, P, pv_kw=list(self._pv_kw), split=self.split)
        cons = pgdata.sample_households(data_rng, C, split=self.split)
        cap_h = prod.pv_kwh if self.producer_capacity == "pv" else prod.surplus_kwh
        cap = pgdata.daily_sum(cap_h).T.copy()  # (365, P)
        dem = pgdata.daily_sum(cons.hourly_load_kwh).T.copy()  # (365, C)
        self._cap_fc = pgdata.ewma_forecast(cap, self.forecast_alpha, axis=0)
        self._dem_fc = pgdata.ewma_forecast(dem, self.forecast_alpha, axis=0)
        for name, fc in (("producer capacity forecast", self._cap_fc), ("consumer demand forecast", self._dem_fc)):
            if not (np.all(np.isfinite(fc)) and fc.min(initial=0.0) >= 0):  # checked once: days use RecInstance.trusted
                raise ValueError(f"the {name} must be finite and >= 0 kWh; check the data")
        self.loss = market_rng.choice(self.loss_levels, size=(P, C))
        self._allowed = self.loss <= self.loss_max + 1e-12
        self._loss_t32 = self.loss.T.astype(np.float32)  # the consumers' loss columns (observations)
        self._p = market_rng.choice(self.preference_levels, size=(P, C))
        self._t = 0
        self.agents = self.possible_agents[:]
        self.last_instance = None
        self._last_rec = np.zeros((P, C))
        self._last_acc = np.zeros((P, C))
        self._stats = AcceptanceStatistics((P, C))  # recommendations and acceptances per pair (statistics)
        self._regret = 0.0
        self._cum = 0.0
        self._played: list[tuple[RecInstance, float]] = []  # (instance, expected kWh) per played day
        self._oracle_days: dict[int, tuple[float, str, float]] = {}  # day -> (oracle kWh, status, seconds)
        obs = self._observations()
        infos = {a: {} for a in self.agents}
        infos[PLATFORM] = {"data_day": self._data_day(0), "n_allowed_pairs": int((self.loss <= self.loss_max + 1e-12).sum())}
        return obs, infos

    def _data_day(self, t: int) -> int:
        return (self._episode_start + t) % DAYS_PER_YEAR

    def instance(self, t: int | None = None) -> RecInstance:
        """The Eq. 4.1 instance of episode day ``t`` (default: the day the next action is for)."""
        if self._rng is None:
            raise RuntimeError("instance() called before reset()")
        d = self._data_day(self._t if t is None else t)
        return RecInstance.trusted(self._cap_fc[d], self._dem_fc[d], self.loss, self.loss_max, self.min_exchange_kwh,
                                   self.K, self._allowed)

    def oracle_solution(self, inst: RecInstance | None = None) -> tuple[np.ndarray, Any]:
        """Perfect-knowledge optimum of Eq. 4.1 (HiGHS MILP) for ``inst`` (default: today)."""
        return self._milp.solve(self.instance() if inst is None else inst, self._p)

    def _solve_oracle_day(self, inst: RecInstance) -> tuple[float, str, float]:
        """``(oracle_kwh, status, seconds)`` of one day: the HiGHS MILP of Eq. 4.1 with the true ``p``."""
        t0 = time.perf_counter()
        _, res = self._milp.solve(inst, self._p)
        return (float(res.objective) if res.success else float("nan")), res.status, time.perf_counter() - t0

    def oracle_kpis(self) -> list[dict[str, Any]]:
        """The oracle KPIs of every day played since ``reset()``, computed lazily.

        Solves the perfect-knowledge MILP of Eq. 4.1 for each recorded day not solved yet
        (none with ``oracle=True``) and returns one dict per day, in order: ``day``,
        ``oracle_kwh``, ``oracle_status``, ``efficiency`` (expected / oracle) and
        ``regret_kwh`` (cumulative, Eq. 4.3) -- exactly the values ``oracle=True`` puts in
        that day's ``info["platform"]`` -- plus ``expected_kwh`` and ``oracle_seconds``.
        Solved days are kept, so calling it again (or every step) solves only the new days.
        """
        if self._rng is None:
            raise RuntimeError("oracle_kpis() called before reset()")
        out, regret = [], 0.0
        for t, (inst, expected) in enumerate(self._played):
            if t not in self._oracle_days:
                self._oracle_days[t] = self._solve_oracle_day(inst)
            oracle_kwh, status, osec = self._oracle_days[t]
            efficiency, regret = _oracle_fields(expected, oracle_kwh, regret)
            out.append({"day": t, "oracle_kwh": oracle_kwh, "oracle_status": status, "efficiency": efficiency,
                        "regret_kwh": regret, "expected_kwh": expected, "oracle_seconds": osec})
        return out

    def step(self, actions: dict[str, Any]):
        self._check_action_dict(actions)  # every live agent acts; a consumer may send FOLLOW_MODEL
        if actions[PLATFORM] is None:
            raise ValueError(f"actions[{PLATFORM!r}] must be the (P, C) recommendation matrix, got None")
        x_sub = check_box(actions[PLATFORM], self._platform_act, f"actions[{PLATFORM!r}]")
        P, C = self.n_producers, self.n_consumers
        # every action is checked before anything is drawn (a refused step changes nothing)
        cols, chosen = self._consumer_accepts(actions) if self.consumer_agents else ([], None)
        accept = (self._accept_rng.random((P, C)) < self._p).astype(np.float64)  # P_ij(d), drawn every day
        if cols:
            accept[:, cols] = chosen
        inst = self.instance()
        if self.action_mode == "scores":  # v1: scores -> a feasible matrix by construction
            x = decode_scores(inst, x_sub)
            viol = dict.fromkeys(CONSTRAINTS, 0.0)  # the decoded matrix is feasible by construction
            proj = {"decoded_from_scores": True, "changed": False}
        else:
            viol = violations(inst, x_sub)
            x, proj = project(inst, x_sub)
        return self._outputs(inst, x, accept, viol, proj)

    def _consumer_accepts(self, actions: dict[str, Any]) -> tuple[list[int], np.ndarray | None]:
        """The consumers' accept vectors, checked: the columns ``cols`` of the consumers that
        sent one and their ``(P, len(cols))`` matrix (consumers sending ``FOLLOW_MODEL`` are
        left to the preference model). Integer/bool arrays of shape ``(P,)`` (what
        ``MultiBinary.sample`` gives) are checked in one NumPy call; anything else, or a batch
        with a bad entry, goes through :func:`check_multibinary` one consumer at a time, which
        names the offending agent."""
        P = self.n_producers
        cols, acts = [], []
        for j, a in enumerate(self.consumers):
            act = actions[a]
            if isinstance(act, str) and act == FOLLOW_MODEL:
                continue
            cols.append(j)
            acts.append(act)
        if not cols:
            return cols, None
        if all(isinstance(v, np.ndarray) and v.shape == (P,) and v.dtype.kind in "biu" for v in acts):
            m = np.stack(acts, axis=1)
            if m.dtype.kind == "b" or not np.any((m != 0) & (m != 1)):
                return cols, m
        out = np.empty((P, len(cols)))
        for k, (j, act) in enumerate(zip(cols, acts)):
            try:
                out[:, k] = check_multibinary(act, P, f"actions[{self.consumers[j]!r}]")
            except ValueError as e:
                raise ValueError(f"{e}; or {FOLLOW_MODEL!r} to follow the preference model") from None
        return cols, out

    def _outputs(self, inst, x, accept, viol, proj):
        w = inst.demand_kwh
        energy = x * w[None, :] * accept  # (P, C) kWh delivered
        exchanged = float(energy.sum())
        expected = expected_energy(inst, x, self._p)
        losses = float((inst.loss * energy).sum())
        self._played.append((inst, expected))
        if self.oracle:
            oracle_kwh, status, osec = self._solve_oracle_day(inst)
            self._oracle_days[self._t] = (oracle_kwh, status, osec)
            efficiency, self._regret = _oracle_fields(expected, oracle_kwh, self._regret)
        else:
            oracle_kwh, status, osec, efficiency = float("nan"), "off", 0.0, float("nan")  # not reported
        self._cum += exchanged
        demand = float(w.sum())
        market = {
            "day": self._t,
            "data_day": self._data_day(self._t),
            "exchanged_kwh": exchanged,
            "expected_kwh": expected,
            "oracle_kwh": oracle_kwh,
            "oracle_status": status,
            "efficiency": efficiency,
            "satisfied_demand": exchanged / demand if demand > 0 else 0.0,
            "losses_kwh": losses,
            "loss_pct": 100.0 * losses / exchanged if exchanged > 0 else 0.0,
            "regret_kwh": self._regret if self.oracle else float("nan"),
            "cumulative_kwh": self._cum,
            "demand_kwh": demand,
            "capacity_kwh": float(inst.capacity_kwh.sum()),
            "n_recommended": int((x > 0).sum()),
            "violations": viol,
            "feasible_submitted": bool(all(v <= 1e-7 for v in viol.values())),
            "projection": proj,
        }
        if not self.oracle:  # absent, not NaN: infos stay ==-comparable (Gymnasium/PettingZoo seed checks)
            for key in ORACLE_NUMBERS:
                del market[key]
        elif self.report_timing:
            market["oracle_seconds"] = osec
        self.last_instance = inst
        self._last_rec = x
        self._last_acc = accept * (x > 0)
        if self.statistics:
            self._stats.update(x > 0, self._last_acc)
        self._t += 1
        done = self._t >= self.n_days
        obs = self._observations()
        rewards = {PLATFORM: exchanged}
        infos = {PLATFORM: market}
        if self.consumer_agents:
            recv = energy.sum(axis=0).tolist()
            nrec = (x > 0).sum(axis=0).tolist()
            for a, wj, rj, nj in zip(self.consumers, w.tolist(), recv, nrec):
                rewards[a] = rj
                infos[a] = {"demand_kwh": wj, "received_kwh": rj, "n_recommended": nj}
        terms, truncs = self._end_step(self.possible_agents, done)
        return obs, rewards, terms, truncs, infos

    def _observations(self) -> dict[str, np.ndarray | dict]:
        d = self._data_day(self._t)
        f32 = np.float32
        plat = {  # float64: policies must see the exact instance the env checks
            "capacity_kwh": self._cap_fc[d].copy(),
            "demand_kwh": self._dem_fc[d].copy(),
            "loss": self.loss.copy(),
            "last_recommendation": self._last_rec.copy(),
            "last_accepted": self._last_acc.copy(),
            "day_of_year": np.array([d / DAYS_PER_YEAR], dtype=np.float64),
        }
        if self.statistics:
            plat.update(self._stats.observation(self._t))
        obs: dict[str, Any] = {PLATFORM: plat}
        if self.consumer_agents:
            # one (C, 1 + 3P) float32 block, row j = consumer j's observation; the loss block
            # is the episode's constant, cast once at reset. Entries other than the demand are
            # fractions <= 1, and a float64 <= 1 cast to float32 stays <= 1.
            P = self.n_producers
            mat = np.empty((self.n_consumers, 1 + 3 * P), dtype=f32)
            mat[:, 0] = self._dem_fc[d]
            mat[:, 1:1 + P] = self._loss_t32
            mat[:, 1 + P:1 + 2 * P] = self._last_rec.T
            mat[:, 1 + 2 * P:] = self._last_acc.T
            for a, row in zip(self.consumers, mat):
                obs[a] = row
        return obs

    # ------------------------------------------------------------------ rendering
    def _render_text(self) -> str:
        if self.last_instance is None:
            return f"P2PRecommendation-v0 day 0 (data day {self._data_day(0)}): no recommendation sent yet"
        inst, x = self.last_instance, self._last_rec
        got = (x * inst.demand_kwh[None, :] * self._last_acc).sum()
        lines = [f"P2PRecommendation-v0 day {self._t - 1}: recommended {(x * inst.demand_kwh).sum():.1f} kWh in "
                 f"{int((x > 0).sum())} trades, accepted {got:.1f} kWh of {inst.demand_kwh.sum():.1f} kWh demanded "
                 f"({inst.capacity_kwh.sum():.1f} kWh capacity)"]
        for j in range(inst.n_consumers):
            items = ", ".join(f"p{i}:{x[i, j] * inst.demand_kwh[j]:.1f}{'+' if self._last_acc[i, j] else '-'}"
                              for i in np.flatnonzero(x[:, j] > 0))
            lines.append(f" consumer {j}: {items or '-'}")
        return "\n".join(lines)

    def _render_rgb(self) -> np.ndarray:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.6), dpi=80)
        ax = fig.subplots()
        if self.last_instance is not None:
            e = self._last_rec * self.last_instance.demand_kwh[None, :]
            im = ax.imshow(e, aspect="auto", cmap="viridis")
            fig.colorbar(im, ax=ax, label="recommended kWh")
            ax.set_title(f"day {self._t - 1}: recommendations (producer x consumer)")
        else:
            ax.set_title("no recommendation yet")
        ax.set_xlabel("consumer")
        ax.set_ylabel("producer")
        fig.tight_layout()
        return figure_to_rgb(fig)


parallel_env, env = entry_points(raw_env)
