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
    Eq. 4.2, which exists for every pair whatever is recommended. A consumer missing from
    the action dict (or given ``None``) follows the default policy: the Bernoulli preference
    model. ``consumer_agents=False`` leaves only ``platform``.
Platform action (``Box(0, 1, (P, C))``, float64)
    ``a_ij``: fraction of ``w_j`` recommended from producer ``i``. Out-of-box, NaN or
    wrong-shape actions raise ``ValueError``; an in-box matrix is projected onto the
    feasible set of Eq. 4.1 by :func:`~prosumer_gym.envs.p2p_recommendation.market.project`
    (forbidden pairs -> demand scaling -> keep K largest -> capacity curtailment -> drop
    trades below alpha) and ``info["projection"]`` says what changed.
Observations
    platform (``Dict``, float64 so policies see the exact instance): ``capacity_kwh`` (P,), ``demand_kwh`` (C,) — today's
    forecasts; ``loss`` (P, C); ``last_recommendation`` (P, C) — yesterday's projected
    action; ``last_accepted`` (P, C) — 1 where yesterday's recommendation was accepted (a
    recommended pair with 0 was rejected); ``day_of_year`` (1,) in [0, 1).
    consumer ``j`` (``Box(1 + 3P)``): ``demand_kwh``, its loss column, yesterday's
    recommendation column and accepted column.
Rewards
    platform: energy exchanged today ``sum_ij w_j a_ij P_ij(d)`` (kWh, Eq. 4.2);
    consumer ``j``: the energy it received (kWh).
Infos
    platform: ``day``, ``data_day``, ``exchanged_kwh``, ``expected_kwh`` (Eq. 4.1 objective
    of the projected action with the true ``p``), ``oracle_kwh`` (perfect-knowledge optimum
    of Eq. 4.1 today, HiGHS MILP, if ``oracle=True``), ``oracle_status``, ``efficiency``
    (expected / oracle), ``satisfied_demand`` (exchanged / demand), ``losses_kwh``
    (``sum L_ij`` x exchanged), ``loss_pct``, ``regret_kwh`` (cumulative
    ``oracle - expected``, Eq. 4.3), ``cumulative_kwh``, ``demand_kwh``, ``capacity_kwh``,
    ``n_recommended``, ``violations`` (constraint -> largest violation of the *submitted*
    action), ``projection`` (what the projection changed). With ``report_timing=True`` also
    ``oracle_seconds``. consumers: ``demand_kwh``, ``received_kwh``, ``n_recommended``.
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
from prosumer_gym.core.validation import check_int as _int
from prosumer_gym.core.pz import entry_points, figure_to_rgb
from prosumer_gym.core.seeding import reseed, spawn
from prosumer_gym.core.spaces import NamedBox, check_box, check_multibinary
from prosumer_gym.envs.p2p_recommendation.market import (
    RecInstance,
    RecommendationMILP,
    expected_energy,
    project,
    violations,
)

__all__ = ["raw_env", "env", "parallel_env", "PLATFORM", "CAPACITY_MODES"]

PLATFORM = "platform"
CAPACITY_MODES = ("pv", "surplus")
DAYS_PER_YEAR = 365


def _levels(name: str, value: Sequence[float], lo: float, hi: float, hi_open: bool = False) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-empty list of numbers in [{lo}, {hi}], got {value!r}") from None
    ok = a.size > 0 and np.all(np.isfinite(a)) and np.all(a >= lo) and np.all(a < hi if hi_open else a <= hi)
    if not ok:
        rng = f"[{lo}, {hi})" if hi_open else f"[{lo}, {hi}]"
        raise ValueError(f"{name} must be a non-empty list of numbers in {rng}, got {value!r}")
    return a


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
        oracle: bool = True,
        oracle_time_limit: float = 30.0,
        oracle_gap: float = 1e-4,
        report_timing: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self.n_producers = _int("n_producers", n_producers, 1)
        self.n_consumers = _int("n_consumers", n_consumers, 1)
        self.n_days = resolve_horizon("n_days", n_days, max_cycles, DAYS_PER_YEAR)
        self.start_day = _int("start_day", start_day, 0, DAYS_PER_YEAR - 1)
        self.K = None if K is None else _int("K (None = unlimited)", K, 1)
        if not (isinstance(min_exchange_kwh, (int, float, np.floating, np.integer)) and np.isfinite(min_exchange_kwh)
                and min_exchange_kwh > 0):
            raise ValueError(f"min_exchange_kwh (alpha) must be a finite number > 0 kWh, got {min_exchange_kwh!r}")
        self.min_exchange_kwh = float(min_exchange_kwh)
        self.loss_levels = _levels("loss_levels", loss_levels, 0.0, 1.0, hi_open=True)
        if not (isinstance(loss_max, (int, float, np.floating)) and 0 <= float(loss_max) < 1):
            raise ValueError(f"loss_max must be a fraction in [0, 1), got {loss_max!r}")
        self.loss_max = float(loss_max)
        self.preference_levels = _levels("preference_levels", preference_levels, 0.0, 1.0)
        pv = np.atleast_1d(np.asarray(producer_pv_kw, dtype=np.float64)) if not isinstance(producer_pv_kw, str) else None
        if pv is None or pv.size == 0 or not np.all(np.isfinite(pv)) or np.any(pv <= 0):
            raise ValueError(f"producer_pv_kw must be > 0 kWp (a number or a list cycled over producers), got {producer_pv_kw!r}")
        self.producer_pv_kw = producer_pv_kw
        self._pv_kw = np.resize(pv, self.n_producers)
        if producer_capacity not in CAPACITY_MODES:
            raise ValueError(f"producer_capacity must be one of {CAPACITY_MODES}, got {producer_capacity!r}")
        self.producer_capacity = producer_capacity
        if split not in pgdata.SPLITS:
            raise ValueError(f"split must be one of {pgdata.SPLITS}, got {split!r}")
        self.split = split
        if not (isinstance(forecast_alpha, (int, float)) and 0 < float(forecast_alpha) <= 1):
            raise ValueError(f"forecast_alpha must be in (0, 1], got {forecast_alpha!r}")
        self.forecast_alpha = float(forecast_alpha)
        self.consumer_agents = bool(consumer_agents)
        self.oracle = bool(oracle)
        if not (oracle_time_limit > 0):
            raise ValueError(f"oracle_time_limit must be > 0 seconds, got {oracle_time_limit!r}")
        self.report_timing = bool(report_timing)
        self._init_render(render_mode)

        P, C = self.n_producers, self.n_consumers
        self._milp = RecommendationMILP(P, C, time_limit=float(oracle_time_limit), mip_rel_gap=float(oracle_gap))
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
        self.loss = market_rng.choice(self.loss_levels, size=(P, C))
        self._p = market_rng.choice(self.preference_levels, size=(P, C))
        self._t = 0
        self.agents = self.possible_agents[:]
        self.last_instance = None
        self._last_rec = np.zeros((P, C))
        self._last_acc = np.zeros((P, C))
        self._regret = 0.0
        self._cum = 0.0
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
        return RecInstance(self._cap_fc[d], self._dem_fc[d], self.loss, self.loss_max, self.min_exchange_kwh, self.K)

    def oracle_solution(self, inst: RecInstance | None = None) -> tuple[np.ndarray, Any]:
        """Perfect-knowledge optimum of Eq. 4.1 (HiGHS MILP) for ``inst`` (default: today)."""
        return self._milp.solve(self.instance() if inst is None else inst, self._p)

    def step(self, actions: dict[str, Any]):
        self._check_action_dict(actions, require_all=False)  # consumers may abstain (env card)
        if PLATFORM not in actions or actions[PLATFORM] is None:
            raise ValueError(f"actions must contain the {PLATFORM!r} recommendation matrix")
        x_sub = check_box(actions[PLATFORM], self._platform_act, f"actions[{PLATFORM!r}]")
        P, C = self.n_producers, self.n_consumers
        model = (self._accept_rng.random((P, C)) < self._p).astype(np.float64)  # P_ij(d), drawn every day
        accept = model
        for j, a in enumerate(self.consumers):
            act = actions.get(a) if self.consumer_agents else None
            if act is not None:
                accept[:, j] = check_multibinary(act, P, f"actions[{a!r}]")
        inst = self.instance()
        viol = violations(inst, x_sub)
        x, proj = project(inst, x_sub)
        return self._outputs(inst, x, accept, viol, proj)

    def _outputs(self, inst, x, accept, viol, proj):
        w = inst.demand_kwh
        energy = x * w[None, :] * accept  # (P, C) kWh delivered
        exchanged = float(energy.sum())
        expected = expected_energy(inst, x, self._p)
        losses = float((inst.loss * energy).sum())
        if self.oracle:
            t0 = time.perf_counter()
            _, res = self._milp.solve(inst, self._p)
            osec = time.perf_counter() - t0
            oracle_kwh = float(res.objective) if res.success else float("nan")
            status = res.status
        else:
            oracle_kwh, status, osec = float("nan"), "off", 0.0
        if np.isfinite(oracle_kwh):
            self._regret += oracle_kwh - expected
        self._cum += exchanged
        demand = float(w.sum())
        market = {
            "day": self._t,
            "data_day": self._data_day(self._t),
            "exchanged_kwh": exchanged,
            "expected_kwh": expected,
            "oracle_kwh": oracle_kwh,
            "oracle_status": status,
            "efficiency": (expected / oracle_kwh if oracle_kwh > 1e-9 else 1.0) if np.isfinite(oracle_kwh) else float("nan"),
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
        if self.report_timing:
            market["oracle_seconds"] = osec
        self.last_instance = inst
        self._last_rec = x
        self._last_acc = accept * (x > 0)
        self._t += 1
        done = self._t >= self.n_days
        obs = self._observations()
        rewards = {PLATFORM: exchanged}
        infos = {PLATFORM: market}
        recv = energy.sum(axis=0)
        nrec = (x > 0).sum(axis=0)
        if self.consumer_agents:
            for j, a in enumerate(self.consumers):
                rewards[a] = float(recv[j])
                infos[a] = {"demand_kwh": float(w[j]), "received_kwh": float(recv[j]), "n_recommended": int(nrec[j])}
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
        obs: dict[str, Any] = {PLATFORM: plat}
        if self.consumer_agents:
            w = self._dem_fc[d]
            mat = np.concatenate([w[None, :], self.loss, self._last_rec, self._last_acc], axis=0).T.astype(f32)
            np.minimum(mat[:, 1:], f32(1.0), out=mat[:, 1:])
            for j, a in enumerate(self.consumers):
                obs[a] = mat[j]
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
