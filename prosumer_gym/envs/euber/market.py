"""EUber-v0 market core: workers, tasks, POTR, bids, WiBS (``opt``/``bmw``/``bg``), payments.

Dissertation ``001``, chapter 6 (Eqs. 6.1-6.3, Alg. 8, Section 6.4.1). Choices:
``docs/euber.md``. Both views (PettingZoo
``euber_v0``, Gymnasium ``euber_gym``) drive one :class:`EUberMarket`.

One slot (15 min) of the market:

1. :meth:`EUberMarket.instance` — the slot's :class:`SlotInstance`: tasks (ride z=0 and
   battery-swap z=1 from the real taxi trips that started in that 15-min slot of the day,
   half of them relabelled as swaps; V2G z=2 at fixed household locations, sized from the
   real hourly household load), the workers' state, the eligibility of every pair
   (Eqs. 6.1d, 6.1e and availability) and the energy ``need_kwh[i, j]`` (l_ij).
2. :func:`solve_potr` (Eq. 6.1 with any score matrix as objective) or :func:`topk_recommend`.
3. :meth:`EUberMarket.behavioural_bids` — worker i bids on a recommended task of type z
   with probability ``alpha[i, z]``; the amount is ``markup_i x`` the fare model's fare
   for the distance (V2G: energy converted to its driving-distance equivalent).
4. :func:`select_winners` (``"opt"`` HiGHS MILP of Eq. 6.3, ``"bmw"`` Alg. 8, ``"bg"``
   the task-centric greedy baseline) and :func:`second_price_payments`.
5. :meth:`EUberMarket.advance` — winners move, spend energy and are busy for the trip's
   duration; a worker whose range is below its minimum range plus ``charge_margin_km``
   (Eq. 6.1d lets no task take it below ``r_min``, so "below the minimum" is reached only in
   the limit) charges (unavailable) at ``charger_kw`` until full.

This module holds the data model (:class:`EUberConfig`, :class:`SlotInstance`, the fleet and
task state :class:`EUberMarket`) and re-exports the mechanisms: the fare model
(:mod:`.fare`), POTR recommendation (:mod:`.potr`) and the reverse auction (:mod:`.wibs`,
also the lexicographic relaxation of an infeasible Eq. 6.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from prosumer_gym import data as pgdata
from prosumer_gym.core.validation import check_int as _int
from prosumer_gym.core.validation import check_bool, check_choice, check_floats, check_size
from prosumer_gym.core.validation import check_float as _num
from prosumer_gym.core.validation import check_range as _pair
from prosumer_gym.envs.euber.fare import (  # noqa: F401 - re-exported
    FARE_FEATURES,
    FARE_PRECISIONS,
    KM_PER_MILE,
    FareModel,
    fare_features,
    fare_features_from_trips,
    load_fare_model,
)
from prosumer_gym.envs.euber.potr import (  # noqa: F401 - re-exported
    POTR_CONSTRAINTS,
    potr_rhs,
    potr_violations,
    solve_potr,
    solve_potr_literal,
    topk_recommend,
)
from prosumer_gym.envs.euber.wibs import (  # noqa: F401 - re-exported
    MECHANISMS,
    Selection,
    eq63_report,
    second_price_payments,
    select_winners,
)

__all__ = [
    "MECHANISMS",
    "FARE_FEATURES",
    "EUberConfig",
    "SlotInstance",
    "Selection",
    "EUberMarket",
    "FareModel",
    "load_fare_model",
    "fare_features_from_trips",
    "solve_potr",
    "topk_recommend",
    "potr_violations",
    "select_winners",
    "second_price_payments",
    "eq63_report",
]

TASK_TYPES = ("ride", "swap", "v2g")
SLOTS_PER_DAY = 96
SLOT_SECONDS = 900.0
LAT0, LON0 = 41.88, -87.63  # projection centre (Chicago Loop), km grid for distances
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON = 111.320 * math.cos(math.radians(LAT0))
DEFAULT_ALPHA_LEVELS = (0.1, 0.4, 0.5, 0.7, 0.9, 1.0)


# ----------------------------------------------------------------------------- config
@dataclass
class EUberConfig:
    """Every paper parameter of EUber-v0 (defaults: Section 6.4.1 where the paper gives one).

    Units: km, kWh, kW, $; one slot = 15 min. See the env card in ``euber_v0``.
    """

    n_workers: int = 100
    n_ride_tasks: int = 25  # ride + swap tasks per slot (half relabelled swaps)
    n_v2g_tasks: int = 25  # paper: 25 V2G tasks (households)
    task_scale: float = 1.0  # scales both task counts (Fig. 6.8: 0.32, 0.64, 1.0)
    v2g_scale: float = 1.0  # scales the V2G task count only (Fig. 6.9)
    K: int = 5
    lam_km: float = 10.0
    psi: int | None = None  # None: floor(|W| K / |S|) (Eq. 6.1b)
    v2g_min_share: float | None = None  # None: |V2G| / |S| (Eq. 6.1c)
    energy_requirement_frac: float = 1.0  # E = frac x total V2G task energy of the slot
    alpha_levels: tuple[float, ...] = DEFAULT_ALPHA_LEVELS
    swap_fraction: float = 0.5
    v2g_hours: float = 1.0  # a V2G task supplies the household's load of this many hours
    v2g_min_kwh: float = 0.2
    min_range_frac: float = 0.15  # r_min = frac x rated range
    init_range_frac: tuple[float, float] = (0.5, 1.0)
    charger_kw: float = 50.0
    charge_margin_km: float = 15.0  # go charging when range < r_min + margin; 0 = the paper's literal r < r_min
    potr_constraints: str = "soft"  # Eqs. 6.1b-c: "soft" (default) or "hard" (as printed; see solve_potr_literal)
    bmw_guard: bool = True  # BMW stops when a removal round adds no V2G energy; False = Alg. 8 as printed
    fare_precision: str = "float32"  # fare MLP layers: "float32" (trained precision) or "float64" (before 2026-12-04)
    speed_kmh: float = 30.0  # approach speed (urban)
    markup_range: tuple[float, float] = (0.9, 1.1)
    min_bid_usd: float = 1.0
    start_day: int = 0
    n_slots: int = SLOTS_PER_DAY
    start_slot: int = 0
    split: str = "train"
    mechanism: str = "bmw"
    milp_time_limit: float = 20.0

    def validate(self) -> "EUberConfig":
        self.n_workers = _int("n_workers", self.n_workers, 1)
        self.n_ride_tasks = _int("n_ride_tasks", self.n_ride_tasks, 0)
        self.n_v2g_tasks = _int("n_v2g_tasks", self.n_v2g_tasks, 0)
        self.task_scale = _num("task_scale", self.task_scale, 0.0, 10.0, lo_open=True)
        self.v2g_scale = _num("v2g_scale", self.v2g_scale, 0.0, 10.0)
        if self.n_tasks < 1:
            raise ValueError(f"n_ride_tasks + n_v2g_tasks (after task_scale/v2g_scale) must be >= 1, got "
                             f"{self.n_ride} + {self.n_v2g}")
        self.K = _int("K", self.K, 1)
        self.lam_km = _num("lam_km", self.lam_km, 0.0, lo_open=True)
        if self.psi is not None:
            self.psi = _int("psi", self.psi, 0)
        if self.v2g_min_share is not None:
            self.v2g_min_share = _num("v2g_min_share", self.v2g_min_share, 0.0, 1.0)
        self.energy_requirement_frac = _num("energy_requirement_frac", self.energy_requirement_frac, 0.0, 1.0)
        self.alpha_levels = tuple(float(a) for a in check_floats("alpha_levels", self.alpha_levels, 0.0, 1.0))
        self.swap_fraction = _num("swap_fraction", self.swap_fraction, 0.0, 1.0)
        self.v2g_hours = _num("v2g_hours", self.v2g_hours, 0.0, 24.0, lo_open=True)
        self.v2g_min_kwh = _num("v2g_min_kwh", self.v2g_min_kwh, 0.0)
        self.min_range_frac = _num("min_range_frac", self.min_range_frac, 0.0, 0.9)
        self.init_range_frac = _pair("init_range_frac", self.init_range_frac, self.min_range_frac, 1.0)
        self.charger_kw = _num("charger_kw", self.charger_kw, 0.0, lo_open=True)
        self.charge_margin_km = _num("charge_margin_km", self.charge_margin_km, 0.0)
        self.potr_constraints = check_choice("potr_constraints", self.potr_constraints, POTR_CONSTRAINTS)
        self.fare_precision = check_choice("fare_precision", self.fare_precision, FARE_PRECISIONS)
        self.bmw_guard = check_bool("bmw_guard", self.bmw_guard)
        self.speed_kmh = _num("speed_kmh", self.speed_kmh, 0.0, lo_open=True)
        self.markup_range = _pair("markup_range", self.markup_range, 0.0, 100.0)
        self.min_bid_usd = _num("min_bid_usd", self.min_bid_usd, 0.0, lo_open=True)
        self.start_day = _int("start_day", self.start_day, 0, 364)
        self.n_slots = _int("n_slots", self.n_slots, 1)
        self.start_slot = _int("start_slot", self.start_slot, 0, SLOTS_PER_DAY - 1)
        self.split = check_choice("split", self.split, pgdata.SPLITS)
        self.mechanism = check_choice("mechanism", self.mechanism, MECHANISMS)
        self.milp_time_limit = _num("milp_time_limit", self.milp_time_limit, 0.0, lo_open=True)
        check_size("EUber-v0", f"n_workers={self.n_workers} x {self.n_tasks} tasks per slot, K={self.K} "
                   f"(n_ride_tasks={self.n_ride_tasks}, n_v2g_tasks={self.n_v2g_tasks}, task_scale, v2g_scale)",
                   self.footprint_bytes())
        return self

    def footprint_bytes(self) -> float:
        """Estimate (bytes) of the largest arrays of one slot, checked against
        :data:`~prosumer_gym.core.validation.MAX_ENV_BYTES` before anything is allocated:
        the (W, S) worker x task arrays of the instance, the recommender and the projection
        (measured ~3.3 kB per pair at W = 200, S = 80; 4 kB taken), the V2G households'
        hourly year (~4 float64 series of 8760 h each), the (W, 8 K) observations with their
        8 K feature names (~100 B each) and ~1 kB of Python objects per worker."""
        W, S, K = self.n_workers, self.n_tasks, self.K
        return 4096.0 * W * S + 8.0 * 4 * 8760 * self.n_v2g + 32.0 * W * K + 800.0 * K + 1024.0 * W

    @property
    def n_ride(self) -> int:
        return int(round(self.n_ride_tasks * self.task_scale))

    @property
    def n_v2g(self) -> int:
        return int(round(self.n_v2g_tasks * self.task_scale * self.v2g_scale))

    @property
    def n_tasks(self) -> int:
        return self.n_ride + self.n_v2g


# ----------------------------------------------------------------------------- instance
@dataclass(frozen=True)
class SlotInstance:
    """One slot's tasks and workers. Arrays: W workers x S tasks; km, kWh, $."""

    slot: int  # episode slot index
    slot_of_day: int
    task_type: np.ndarray  # (S,) 0 ride, 1 swap, 2 V2G
    task_start_km: np.ndarray  # (S, 2)
    task_end_km: np.ndarray  # (S, 2)
    task_trip_km: np.ndarray  # (S,) trip distance (0 for V2G)
    task_seconds: np.ndarray  # (S,) trip duration (V2G: one slot)
    task_energy_kwh: np.ndarray  # (S,) V2G energy to deliver (0 for ride/swap)
    task_latlon: np.ndarray  # (S, 4) pickup lat/lon, dropoff lat/lon
    worker_pos_km: np.ndarray  # (W, 2)
    worker_e: np.ndarray  # (W,) kWh/km
    worker_range_km: np.ndarray  # (W,)
    worker_rmin_km: np.ndarray  # (W,)
    worker_available: np.ndarray  # (W,) bool
    approach_km: np.ndarray  # (W, S)
    need_kwh: np.ndarray  # (W, S) l_ij: energy the task costs worker i (approach + trip or + V2G energy)
    eligible: np.ndarray  # (W, S) bool: available, Eq. 6.1d and Eq. 6.1e
    E: float  # V2G energy requirement, kWh
    K: int
    psi: int
    v2g_min: float  # Eq. 6.1c right-hand side (per worker)
    weekend: bool

    @property
    def n_workers(self) -> int:
        return int(self.worker_e.size)

    @property
    def n_tasks(self) -> int:
        return int(self.task_type.size)

    @property
    def is_v2g(self) -> np.ndarray:
        return self.task_type == 2



# ----------------------------------------------------------------------------- the market
class EUberMarket:
    """State of the EUber world (workers, data) for one episode; views call its methods."""

    def __init__(self, config: EUberConfig) -> None:
        self.cfg = config.validate()
        self.fare = load_fare_model()
        trips = pgdata.taxi_trips()
        self._trip_slot = np.asarray(trips["start_slot_15min"])
        self._by_slot = [np.flatnonzero(self._trip_slot == s) for s in range(SLOTS_PER_DAY)]
        # per-trip columns of a slot's ride/swap tasks, computed once (instance() gathers them;
        # elementwise, so the same values as converting each slot's draw)
        self._trip_latlon = np.stack([trips["pickup_lat"], trips["pickup_lon"], trips["dropoff_lat"],
                                      trips["dropoff_lon"]], axis=1)
        self._all_latlon = self._trip_latlon[:, :2]  # pickup points: workers' starts, V2G homes
        self._trip_start_km = _to_km(self._trip_latlon[:, :2])
        self._trip_end_km = _to_km(self._trip_latlon[:, 2:])
        self._trip_km = np.asarray(trips["trip_miles"]) * KM_PER_MILE
        self._trip_secs = np.asarray(trips["trip_seconds"]).astype(float)
        specs = pgdata.ev_specs(latest_per_model=True)
        self._specs = specs
        self.n_workers = self.cfg.n_workers
        self.n_tasks = self.cfg.n_tasks
        self.n_ride = self.cfg.n_ride
        self.n_v2g = self.cfg.n_v2g

    # -- episode ----------------------------------------------------------------
    def reset(self, rng: np.random.Generator) -> None:
        cfg = self.cfg
        w_rng, t_rng, h_rng, self.bid_rng = rng.spawn(4)
        self.task_rng = t_rng
        W = self.n_workers
        pick = w_rng.integers(0, len(self._specs["model"]), size=W)
        self.worker_model = self._specs["model"][pick]
        self.battery_kwh = self._specs["battery_kwh"][pick].astype(float)
        self.e = self._specs["consumption_kwh_per_km"][pick].astype(float)
        self.range_max = self._specs["range_km"][pick].astype(float)
        self.rmin = cfg.min_range_frac * self.range_max
        lo, hi = cfg.init_range_frac
        self.range = self.range_max * w_rng.uniform(lo, hi, size=W)
        start = w_rng.integers(0, len(self._all_latlon), size=W)
        self.pos = _to_km(self._all_latlon[start])
        self.alpha = w_rng.choice(np.asarray(cfg.alpha_levels), size=(W, 3))
        self.markup = w_rng.uniform(*cfg.markup_range, size=W)
        self.busy_until = np.zeros(W, dtype=np.int64)  # available when slot >= busy_until
        self.charging = np.zeros(W, dtype=bool)
        # V2G households: fixed locations (real trip pickup points) and real loads
        hh = pgdata.sample_households(h_rng, max(self.n_v2g, 1), split=cfg.split)
        self.hh_load = hh.hourly_load_kwh[: self.n_v2g]
        loc = h_rng.integers(0, len(self._all_latlon), size=self.n_v2g)
        self.hh_latlon = self._all_latlon[loc]
        self.hh_km = _to_km(self.hh_latlon)
        self.slot = 0
        self.totals = {"cost_usd": 0.0, "payments_usd": 0.0, "tasks_served": 0, "v2g_kwh": 0.0, "E_kwh": 0.0,
                       "infeasible_slots": 0}

    def available(self) -> np.ndarray:
        return (self.busy_until <= self.slot) & ~self.charging

    def instance(self) -> SlotInstance:
        """Draw this slot's tasks (deterministic given the reset seed) and build the instance."""
        cfg = self.cfg
        abs_slot = cfg.start_slot + self.slot
        sod = abs_slot % SLOTS_PER_DAY
        day = (cfg.start_day + abs_slot // SLOTS_PER_DAY) % 365
        rng = self.task_rng
        pool = self._by_slot[sod]
        nr = self.n_ride
        idx = rng.choice(pool, size=nr, replace=len(pool) < nr) if nr else np.zeros(0, dtype=np.int64)
        ttype = np.zeros(self.n_tasks, dtype=np.int64)
        n_swap = int(round(cfg.swap_fraction * nr))
        ttype[rng.permutation(nr)[:n_swap]] = 1
        ttype[nr:] = 2
        latlon = np.concatenate([self._trip_latlon[idx], np.concatenate([self.hh_latlon, self.hh_latlon], axis=1)])
        start = np.concatenate([self._trip_start_km[idx], self.hh_km])
        end = np.concatenate([self._trip_end_km[idx], self.hh_km])
        trip_km = np.concatenate([self._trip_km[idx], np.zeros(self.n_v2g)])
        secs = np.concatenate([self._trip_secs[idx], np.full(self.n_v2g, SLOT_SECONDS)])
        hour = (day * 24 + sod // 4) % 8760
        energy = np.concatenate([np.zeros(nr), np.maximum(self.hh_load[:, hour] * cfg.v2g_hours, cfg.v2g_min_kwh)])
        avail = self.available()
        v2g = ttype == 2
        spare = (self.range - self.rmin) * self.e  # Eq. 6.1d right-hand side, kWh
        appr, need, elig = _slot_pairs(self.pos, start, self.e, spare, avail, v2g, energy, trip_km, float(cfg.lam_km))
        psi, vmin = potr_rhs(int(avail.sum()), self.n_tasks, self.n_v2g, cfg.K, cfg.psi, cfg.v2g_min_share)
        E = cfg.energy_requirement_frac * float(energy[v2g].sum())
        weekend = (day + 1) % 7 in (5, 6)  # data day 0 = a Tuesday-like weekday (documented approximation)
        return SlotInstance(
            slot=self.slot, slot_of_day=sod, task_type=ttype, task_start_km=start, task_end_km=end,
            task_trip_km=trip_km, task_seconds=secs, task_energy_kwh=energy, task_latlon=latlon,
            worker_pos_km=self.pos.copy(), worker_e=self.e.copy(), worker_range_km=self.range.copy(),
            worker_rmin_km=self.rmin.copy(), worker_available=avail, approach_km=appr, need_kwh=need,
            eligible=elig, E=E, K=cfg.K, psi=psi, v2g_min=vmin, weekend=bool(weekend),
        )

    def reference_bids(self, inst: SlotInstance, pairs: np.ndarray | None = None) -> np.ndarray:
        """The fare model's price of (worker, task) pairs, $ (W, S), before markup.

        Distance = approach + trip (ride/swap) or approach + V2G energy / e_i (its
        driving-distance equivalent, Section 6.4.2). ``pairs`` (W, S) bool limits the fare
        model's forward pass to those pairs (the recommended ones: at most ``K`` per worker
        instead of all ``W x S``); the other entries are NaN. A pair's price depends on which
        other pairs are priced with it only in the last bit (BLAS blocking: measured, 16 of 42,083
        pairs differ by at most 4.3e-16 relative between a full and a half batch)."""
        if pairs is None:
            wi, tj = np.indices((inst.n_workers, inst.n_tasks)).reshape(2, -1)
        else:
            wi, tj = np.nonzero(pairs)
        v2g = inst.is_v2g[tj]
        dist = inst.approach_km[wi, tj] + np.where(v2g, inst.task_energy_kwh[tj] / inst.worker_e[wi],
                                                   inst.task_trip_km[tj])
        ll = inst.task_latlon[tj]
        hour = (inst.slot_of_day + 0.5) / 4.0
        feats = fare_features(dist, ll[:, 0], ll[:, 1], ll[:, 2], ll[:, 3], hour, inst.weekend)
        out = np.full((inst.n_workers, inst.n_tasks), np.nan)
        out[wi, tj] = np.maximum(self.fare.predict(feats, self.cfg.fare_precision), self.cfg.min_bid_usd)
        return out

    def behavioural_bids(self, inst: SlotInstance, x: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
        """Default worker model: bid on recommended task j w.p. ``alpha[i, z_j]`` at
        ``markup_i x reference bid``. Returns (W, S) with ``inf`` = no bid. Without ``ref`` only
        the pairs that bid are priced (~40% fewer forward rows than all recommended pairs; the
        prices agree with those of a full batch up to the last bit, :meth:`reference_bids`)."""
        u = self.bid_rng.random(x.shape)
        bid = (x > 0) & (u < self.alpha[:, inst.task_type])
        ref = self.reference_bids(inst, bid) if ref is None else ref
        out = np.full(x.shape, np.inf)
        out[bid] = np.maximum(self.markup[:, None] * ref, self.cfg.min_bid_usd)[bid]
        return out

    def advance(self, inst: SlotInstance, sel: Selection) -> dict[str, np.ndarray]:
        """Winners move and spend energy; low-range workers charge; the slot counter moves on."""
        cfg = self.cfg
        t = self.slot
        q = np.ascontiguousarray(sel.q)
        low = _advance_workers(q, inst.approach_km, inst.is_v2g, inst.task_energy_kwh, inst.task_trip_km,
                               inst.task_seconds, inst.task_end_km, self.e, self.range, self.range_max, self.rmin,
                               self.pos, self.busy_until, self.charging, t, float(cfg.speed_kmh), float(SLOT_SECONDS),
                               float(cfg.charge_margin_km), cfg.charger_kw * SLOT_SECONDS / 3600.0)
        wi = np.flatnonzero(q.any(axis=1))
        self.slot += 1
        tot = self.totals
        tot["cost_usd"] += sel.cost
        tot["payments_usd"] += float(sel.payments.sum())
        tot["tasks_served"] += int(sel.q.sum())
        tot["v2g_kwh"] += sel.v2g_delivered_kwh
        tot["E_kwh"] += sel.E
        tot["infeasible_slots"] += int(not sel.feasible)
        return {"moved": wi, "went_charging": low}


@njit(cache=True)
def _advance_workers(q: np.ndarray, approach: np.ndarray, v2g: np.ndarray, task_kwh: np.ndarray, trip_km: np.ndarray,
                     task_secs: np.ndarray, task_end: np.ndarray, e: np.ndarray, rng_km: np.ndarray,
                     range_max: np.ndarray, rmin: np.ndarray, pos: np.ndarray, busy_until: np.ndarray,
                     charging: np.ndarray, t: int, speed_kmh: float, slot_s: float, margin_km: float,
                     kwh_per_slot: float) -> np.ndarray:
    """:meth:`EUberMarket.advance`'s worker update in place (compiled; the arithmetic of the
    NumPy expressions it replaced, in their order): each winner drives its approach plus the
    trip (or the V2G energy's distance equivalent), ends at the task's end point and is busy
    for the whole slots the job takes (at least one); then charging workers whose time is up
    return, and workers below ``rmin + margin_km`` go charging until full. Returns the
    indices of the workers sent charging."""
    W, S = q.shape
    for i in range(W):
        for j in range(S):
            if q[i, j] == 0:
                continue
            a = approach[i, j]
            km = a + task_kwh[j] / e[i] if v2g[j] else a + trip_km[j]
            rng_km[i] -= km
            pos[i, 0] = task_end[j, 0]
            pos[i, 1] = task_end[j, 1]
            dur = a / speed_kmh * 3600.0 + (slot_s if v2g[j] else task_secs[j])
            busy_until[i] = t + np.int64(max(1.0, np.ceil(dur / slot_s - 1e-9)))
    for i in range(W):
        if charging[i] and busy_until[i] <= t + 1:
            charging[i] = False
    low = np.empty(W, np.int64)
    n = 0
    for i in range(W):
        if rng_km[i] < rmin[i] + margin_km and not charging[i]:
            deficit = (range_max[i] - rng_km[i]) * e[i]
            slots = np.int64(max(1.0, np.ceil(deficit / kwh_per_slot)))
            busy_until[i] = max(busy_until[i], t + 1) + slots
            rng_km[i] = range_max[i]
            charging[i] = True
            low[n] = i
            n += 1
    return low[:n]


@njit(cache=True)
def _slot_pairs(pos: np.ndarray, start: np.ndarray, e: np.ndarray, spare: np.ndarray, avail: np.ndarray,
                v2g: np.ndarray, energy: np.ndarray, trip_km: np.ndarray,
                lam_km: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (worker, task) pair's approach distance (km), energy need (kWh, Eq. 6.1d's left
    side: approach plus trip, or approach plus the V2G energy) and eligibility (available,
    within ``lam_km``, enough spare energy), in one compiled pass (W, S) each. The arithmetic
    is NumPy's elementwise one, in the same order: the same bits."""
    W, S = pos.shape[0], start.shape[0]
    appr = np.empty((W, S))
    need = np.empty((W, S))
    elig = np.empty((W, S), np.bool_)
    for i in range(W):
        for j in range(S):
            dx = pos[i, 0] - start[j, 0]
            dy = pos[i, 1] - start[j, 1]
            a = np.sqrt(dx * dx + dy * dy)
            l = a * e[i] + energy[j] if v2g[j] else (a + trip_km[j]) * e[i]
            appr[i, j] = a
            need[i, j] = l
            elig[i, j] = avail[i] and a <= lam_km and l <= spare[i] + 1e-12
    return appr, need, elig


def _to_km(latlon: np.ndarray) -> np.ndarray:
    ll = np.asarray(latlon, dtype=np.float64)
    return np.stack([(ll[..., 1] - LON0) * KM_PER_DEG_LON, (ll[..., 0] - LAT0) * KM_PER_DEG_LAT], axis=-1)
