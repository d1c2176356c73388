"""EUber-v0 market core: workers, tasks, POTR, bids, WiBS (``opt``/``bmw``/``bg``), payments.

Dissertation ``001``, chapter 6 (Eqs. 6.1-6.3, Alg. 8, Section 6.4.1). Spec:
``shared/spec/euber.md``; choices: ``docs/euber.md``. Both views (PettingZoo
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

Eq. 6.3 with ``E`` = the total of the slot's V2G tasks can be infeasible (a task receives
no bid). ``"opt"`` then solves the *lexicographic* relaxation: first minimise the V2G
shortfall, then the number of unserved ride/swap tasks, then the cost; the selection
reports ``feasible=False`` with the shortfall and unserved counts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment

from prosumer_gym import data as pgdata
from prosumer_gym.core.validation import check_int as _int
from prosumer_gym.core.milp import solve_milp

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

MECHANISMS = ("opt", "bmw", "bg")
TASK_TYPES = ("ride", "swap", "v2g")
SLOTS_PER_DAY = 96
SLOT_SECONDS = 900.0
FARE_FEATURES = ("distance_km", "pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon", "hour_sin", "hour_cos",
                 "weekend")
KM_PER_MILE = 1.609344
LAT0, LON0 = 41.88, -87.63  # projection centre (Chicago Loop), km grid for distances
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON = 111.320 * math.cos(math.radians(LAT0))
DEFAULT_ALPHA_LEVELS = (0.1, 0.4, 0.5, 0.7, 0.9, 1.0)


# ----------------------------------------------------------------------------- fare model
def _features(dist_km, plat, plon, dlat, dlon, hour, weekend) -> np.ndarray:
    ang = 2.0 * np.pi * np.asarray(hour, dtype=np.float64) / 24.0
    cols = np.broadcast_arrays(
        np.asarray(dist_km, float), np.asarray(plat, float), np.asarray(plon, float), np.asarray(dlat, float),
        np.asarray(dlon, float), np.sin(ang), np.cos(ang), np.asarray(weekend, float),
    )
    return np.stack(cols, axis=-1)


def fare_features_from_trips(trips: dict[str, np.ndarray]) -> np.ndarray:
    """The fare model's 8 features (``FARE_FEATURES``) for real trips (n, 8)."""
    hour = (np.asarray(trips["start_slot_15min"]) + 0.5) / 4.0
    weekend = np.isin(np.asarray(trips["day_of_week"]), (5, 6))
    return _features(np.asarray(trips["trip_miles"]) * KM_PER_MILE, trips["pickup_lat"], trips["pickup_lon"],
                     trips["dropoff_lat"], trips["dropoff_lon"], hour, weekend)


@dataclass(frozen=True)
class FareModel:
    """The shipped MLP (ReLU) as numpy arrays; :meth:`predict` maps features (..., 8) to $."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    meta: dict = field(compare=False, repr=False)

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != len(FARE_FEATURES):
            raise ValueError(f"fare features must have last dimension {len(FARE_FEATURES)}, got {x.shape}")
        h = ((x - self.x_mean) / self.x_std).reshape(-1, x.shape[-1])
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w.T + b
            if k < len(self.weights) - 1:
                np.maximum(h, 0.0, out=h)
        return (h[:, 0] * self.y_std + self.y_mean).reshape(x.shape[:-1])


@lru_cache(maxsize=1)
def load_fare_model() -> FareModel:
    """Load ``prosumer_gym/data/fare_model.pt`` (``torch.load(weights_only=True)``) + its JSON."""
    import hashlib

    import torch

    root = resources.files("prosumer_gym.data")
    meta = json.loads((root / "fare_model.json").read_text())
    raw = (root / "fare_model.pt").read_bytes()
    if hashlib.sha256(raw).hexdigest() != meta["weights_sha256"]:
        raise RuntimeError("fare_model.pt does not match the sha256 in fare_model.json; rebuild it with "
                           "scripts/build_fare_model.py")
    with resources.as_file(root / "fare_model.pt") as p:
        state = torch.load(p, weights_only=True, map_location="cpu")
    keys = meta["state_dict_keys"]
    ws = tuple(state[k].double().numpy().copy() for k in keys if k.endswith("weight"))
    bs = tuple(state[k].double().numpy().copy() for k in keys if k.endswith("bias"))
    return FareModel(ws, bs, np.asarray(meta["feature_mean"]), np.asarray(meta["feature_std"]),
                     float(meta["target_mean"]), float(meta["target_std"]), meta)


# ----------------------------------------------------------------------------- config
def _num(name: str, v: Any, lo: float, hi: float = math.inf, lo_open: bool = False) -> float:
    if isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number in {'(' if lo_open else '['}{lo}, {hi}], got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in {'(' if lo_open else '['}{lo}, {hi}], got {v!r}") from None
    if not math.isfinite(f) or f < lo or f > hi or (lo_open and f == lo):
        raise ValueError(f"{name} must be a finite number in {'(' if lo_open else '['}{lo}, {hi}], got {v!r}")
    return f


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
    charge_margin_km: float = 15.0  # go charging when range < r_min + margin (no task fits any more)
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
        lv = tuple(self.alpha_levels) if not isinstance(self.alpha_levels, (str, bytes)) else ()
        if not lv or any(isinstance(a, (bool, np.bool_)) for a in lv):
            raise ValueError(f"alpha_levels must be a non-empty list of probabilities in [0, 1], got "
                             f"{self.alpha_levels!r}")
        self.alpha_levels = tuple(_num("alpha_levels[]", a, 0.0, 1.0) for a in lv)
        self.swap_fraction = _num("swap_fraction", self.swap_fraction, 0.0, 1.0)
        self.v2g_hours = _num("v2g_hours", self.v2g_hours, 0.0, 24.0, lo_open=True)
        self.v2g_min_kwh = _num("v2g_min_kwh", self.v2g_min_kwh, 0.0)
        self.min_range_frac = _num("min_range_frac", self.min_range_frac, 0.0, 0.9)
        self.init_range_frac = _pair("init_range_frac", self.init_range_frac, self.min_range_frac, 1.0)
        self.charger_kw = _num("charger_kw", self.charger_kw, 0.0, lo_open=True)
        self.charge_margin_km = _num("charge_margin_km", self.charge_margin_km, 0.0)
        self.speed_kmh = _num("speed_kmh", self.speed_kmh, 0.0, lo_open=True)
        self.markup_range = _pair("markup_range", self.markup_range, 0.0, 100.0)
        self.min_bid_usd = _num("min_bid_usd", self.min_bid_usd, 0.0, lo_open=True)
        self.start_day = _int("start_day", self.start_day, 0, 364)
        self.n_slots = _int("n_slots", self.n_slots, 1)
        self.start_slot = _int("start_slot", self.start_slot, 0, SLOTS_PER_DAY - 1)
        if self.split not in pgdata.SPLITS:
            raise ValueError(f"split must be one of {pgdata.SPLITS}, got {self.split!r}")
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"mechanism must be one of {MECHANISMS}, got {self.mechanism!r}")
        self.milp_time_limit = _num("milp_time_limit", self.milp_time_limit, 0.0, lo_open=True)
        return self

    @property
    def n_ride(self) -> int:
        return int(round(self.n_ride_tasks * self.task_scale))

    @property
    def n_v2g(self) -> int:
        return int(round(self.n_v2g_tasks * self.task_scale * self.v2g_scale))

    @property
    def n_tasks(self) -> int:
        return self.n_ride + self.n_v2g


def _pair(name: str, v: Any, lo: float, hi: float) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {v!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)) or a > b or a < lo - 1e-12 or b > hi + 1e-12:
        raise ValueError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {(a, b)}")
    return a, b


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


# ----------------------------------------------------------------------------- POTR
def potr_rhs(n_avail: int, n_tasks: int, n_v2g: int, K: int, psi: int | None, share: float | None) -> tuple[int, float]:
    """``psi = floor(|W| K / |S|)`` and ``v2g_min = |V2G| K / |S|`` (Eqs. 6.1b-c) unless given."""
    if psi is None:
        psi = (n_avail * K) // n_tasks if n_tasks else 0
    if share is None:
        share = n_v2g / n_tasks if n_tasks else 0.0
    return int(psi), float(share * K)


def solve_potr(score: np.ndarray, inst: SlotInstance, *, time_limit: float = 20.0) -> np.ndarray:
    """Recommendation lists maximising ``sum score_ij x_ij`` under Eqs. 6.1a-f (HiGHS).

    Eqs. 6.1a, 6.1d, 6.1e, 6.1f are hard. Eq. 6.1b (each task to at least ``psi`` workers)
    and Eq. 6.1c (at least ``v2g_min`` V2G tasks per list) may be impossible (few eligible
    workers nearby); they are made *soft*: the requirement is first capped at what the
    eligibility allows (``min(psi, #eligible workers of j)``, ``min(ceil(v2g_min), K,
    #eligible V2G tasks of i)``) and any remaining shortfall is penalised with a weight larger
    than any score gain, so a shortfall only remains when the constraints conflict; a larger
    penalty on the *first* recommendation of each task spreads unavoidable shortfalls (every
    task with an eligible worker is recommended at least once whenever possible).
    Returns ``x`` (W, S) int8. Rows of unavailable workers are zero.
    """
    W, S = inst.n_workers, inst.n_tasks
    score = np.asarray(score, dtype=np.float64)
    elig = inst.eligible
    ii, jj = np.nonzero(elig)
    n = ii.size
    x = np.zeros((W, S), dtype=np.int8)
    if n == 0:
        return x
    K = inst.K
    v2g = inst.is_v2g
    psi_j = np.minimum(inst.psi, elig.sum(axis=0))
    need_v = np.minimum(np.minimum(math.ceil(inst.v2g_min - 1e-9), K), (elig & v2g[None, :]).sum(axis=1))
    workers = np.flatnonzero(elig.any(axis=1))
    tasks_c = np.flatnonzero(psi_j > 0)
    workers_v = np.flatnonzero(need_v > 0)
    nu, nv = tasks_c.size, workers_v.size
    nvar = n + nu + nv + nu
    sc = score[ii, jj]
    smax = float(np.max(np.abs(sc))) if sc.size else 1.0
    pen = 2.0 * K * smax + 1.0
    pen1 = pen * (float(psi_j.max(initial=0)) + 1.0) * 2.0  # first recommendation of a task first
    c = np.concatenate([sc, -pen * np.ones(nu + nv), -pen1 * np.ones(nu)])
    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0
    # 6.1a: sum_j x_ij <= K
    wrow = -np.ones(W, dtype=np.int64)
    wrow[workers] = np.arange(workers.size)
    rows.append(wrow[ii]); cols.append(np.arange(n)); vals.append(np.ones(n))
    lo.append(np.full(workers.size, -np.inf)); hi.append(np.full(workers.size, float(K)))
    r += workers.size
    # 6.1b: sum_i x_ij + u_j >= psi_j
    r0_b = r
    trow = -np.ones(S, dtype=np.int64)
    trow[tasks_c] = r + np.arange(nu)
    m = trow[jj] >= 0
    rows += [trow[jj][m], r + np.arange(nu)]; cols += [np.flatnonzero(m), n + np.arange(nu)]
    vals += [np.ones(int(m.sum())), np.ones(nu)]
    lo.append(psi_j[tasks_c].astype(float)); hi.append(np.full(nu, np.inf))
    r += nu
    # 6.1c: sum_{j in V2G} x_ij + v_i >= need_v_i
    vrow = -np.ones(W, dtype=np.int64)
    vrow[workers_v] = r + np.arange(nv)
    m = (vrow[ii] >= 0) & v2g[jj]
    rows += [vrow[ii][m], r + np.arange(nv)]; cols += [np.flatnonzero(m), n + nu + np.arange(nv)]
    vals += [np.ones(int(m.sum())), np.ones(nv)]
    lo.append(need_v[workers_v].astype(float)); hi.append(np.full(nv, np.inf))
    r += nv
    # coverage of at least one worker per task (tiered penalty, so shortfalls are spread out)
    rows += [trow[jj][trow[jj] >= 0] - r0_b + r, r + np.arange(nu)]
    cols += [np.flatnonzero(trow[jj] >= 0), n + nu + nv + np.arange(nu)]
    vals += [np.ones(int((trow[jj] >= 0).sum())), np.ones(nu)]
    lo.append(np.ones(nu)); hi.append(np.full(nu, np.inf))
    r += nu
    A = sparse.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, nvar))
    ub = np.concatenate([np.ones(n), psi_j[tasks_c].astype(float), need_v[workers_v].astype(float), np.ones(nu)])
    integ = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(nu + nv + nu, dtype=np.int64)])
    # The constraint matrix is totally unimodular (laminar row families on the worker side -
    # 6.1a and 6.1c - and on the task side - 6.1b and the coverage row), so the LP has integral
    # vertices: solve the LP (2-3x faster) and fall back to the MILP only if the returned point
    # is fractional.
    lo_a, hi_a = np.concatenate(lo), np.concatenate(hi)
    res = solve_milp(c, A, lo_a, hi_a, np.zeros(nvar), ub, np.zeros(nvar, dtype=np.int64), maximize=True,
                     time_limit=time_limit)
    if res.success and np.max(np.abs(res.x[:n] - np.round(res.x[:n]))) > 1e-6:
        res = solve_milp(c, A, lo_a, hi_a, np.zeros(nvar), ub, integ, maximize=True, time_limit=time_limit,
                         mip_rel_gap=1e-6)
    if not res.success:  # cannot happen (x = 0 with full slack is feasible); keep a safe fallback
        return topk_recommend(score, inst)
    x[ii, jj] = (res.x[:n] > 0.5).astype(np.int8)
    return x


def topk_recommend(score: np.ndarray, inst: SlotInstance) -> np.ndarray:
    """Per worker, the ``K`` eligible tasks with the highest score (ties: nearer, then lower index)."""
    W, S = inst.n_workers, inst.n_tasks
    x = np.zeros((W, S), dtype=np.int8)
    s = np.where(inst.eligible, np.asarray(score, dtype=np.float64), -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(S), (W, S)), inst.approach_km, -s), axis=1)
    top = order[:, : inst.K]
    rows = np.repeat(np.arange(W), top.shape[1])
    sel = top.ravel()
    ok = np.isfinite(s[rows, sel])
    x[rows[ok], sel[ok]] = 1
    return x


def potr_violations(x: np.ndarray, inst: SlotInstance) -> dict[str, int]:
    """Counts of hard POTR violations (6.1a, 6.1d/e/availability) and of soft shortfalls (6.1b/c)."""
    x = np.asarray(x)
    elig = inst.eligible
    return {
        "list_too_long": int(np.sum(x.sum(axis=1) > inst.K)),
        "ineligible_pairs": int(np.sum((x > 0) & ~elig)),
        "psi_shortfall_tasks": int(np.sum(x.sum(axis=0) < np.minimum(inst.psi, elig.sum(axis=0)))),
        "v2g_share_shortfall_workers": int(np.sum(
            (x[:, inst.is_v2g].sum(axis=1) < inst.v2g_min - 1e-9) & (x.sum(axis=1) > 0))),
    }


# ----------------------------------------------------------------------------- WiBS
@dataclass(frozen=True)
class Selection:
    """Winners of one slot. ``q`` (W, S) int8; ``bids`` (W, S) with ``inf`` = no bid.

    Everything an independent checker of Eq. 6.3 needs is here: ``bids``, ``task_type``,
    ``v2g_kwh`` (S,), ``E``; plus ``payments`` (W, S) (second price, 0 off the winners).
    """

    mechanism: str
    q: np.ndarray
    bids: np.ndarray
    task_type: np.ndarray
    v2g_kwh: np.ndarray
    E: float
    payments: np.ndarray
    cost: float  # sum of winning bids (Eq. 6.3 objective)
    v2g_delivered_kwh: float
    unserved_ride: int  # ride/swap tasks left unassigned
    ride_with_bids_unserved: int
    feasible: bool  # Eq. 6.3a-e all hold (6.3b for every ride/swap task, 6.3d with E)
    status: str
    seconds: float = field(default=0.0, compare=False)


def _lsa_min_weight_max_card(cost: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """Minimum-weight matching among *maximum-cardinality* matchings (LSA on shifted costs)."""
    W, S = cost.shape
    q = np.zeros((W, S), dtype=np.int8)
    if not edge.any():
        return q
    rows = np.flatnonzero(edge.any(axis=1))
    cols = np.flatnonzero(edge.any(axis=0))
    sub = edge[np.ix_(rows, cols)]
    c = cost[np.ix_(rows, cols)]
    big = float(np.sum(np.where(sub, c, 0.0))) + 1.0
    m = np.where(sub, c - big, 0.0)
    r, k = linear_sum_assignment(m)
    keep = sub[r, k]
    q[rows[r[keep]], cols[k[keep]]] = 1
    return q


def _bmw(bids: np.ndarray, v2g: np.ndarray, ekwh: np.ndarray, need: np.ndarray, E: float) -> tuple[np.ndarray, str]:
    """Alg. 8 (BMW). Edges = finite bids. Repeat: min-weight full matching; if the V2G energy
    is below ``E``, remove from G the smallest set Z of the highest-weight matched ride/swap
    edges with ``V2G + sum_Z l_ij >= E`` (all of them if none suffices) and match again; stop
    when the budget is met or Z is empty (line 13). At most |S| rounds (Theorem 8)."""
    edge = np.isfinite(bids)
    cost = np.where(edge, bids, 0.0)
    tol = 1e-9
    q = _lsa_min_weight_max_card(cost, edge)
    got = float(np.sum(q[:, v2g] * ekwh[None, v2g]))
    for _ in range(bids.shape[1] + 1):
        if got >= E - tol:
            return q, "ok"
        wi, tj = np.nonzero((q > 0) & ~v2g[None, :])
        if wi.size == 0:
            return q, "budget_not_met"
        order = np.argsort(-bids[wi, tj], kind="stable")
        l = need[wi[order], tj[order]]
        csum = got + np.cumsum(l)
        hit = np.flatnonzero(csum >= E - tol)
        z = order[: hit[0] + 1] if hit.size else order
        edge[wi[z], tj[z]] = False
        q_new = _lsa_min_weight_max_card(cost, edge)
        got_new = float(np.sum(q_new[:, v2g] * ekwh[None, v2g]))
        if got_new <= got + tol:
            # Guard (our addition): removing Z did not raise the V2G energy (the budget is
            # out of reach with these bids); keep the previous, larger matching.
            return q, "budget_not_met"
        q, got = q_new, got_new
    return q, "budget_not_met"


def _bg(bids: np.ndarray) -> np.ndarray:
    """Task-centric greedy (ref. [123] of ch. 6): tasks in index order, each takes its lowest
    bid from a still-free worker; no V2G awareness."""
    W, S = bids.shape
    q = np.zeros((W, S), dtype=np.int8)
    free = np.ones(W, dtype=bool)
    for j in range(S):
        b = np.where(free, bids[:, j], np.inf)
        i = int(np.argmin(b))
        if np.isfinite(b[i]):
            q[i, j] = 1
            free[i] = False
    return q


def _opt(bids: np.ndarray, v2g: np.ndarray, ekwh: np.ndarray, E: float, time_limit: float) -> tuple[np.ndarray, str]:
    """Eq. 6.3 by HiGHS; lexicographic relaxation when Eq. 6.3 is infeasible (module docstring)."""
    W, S = bids.shape
    q = np.zeros((W, S), dtype=np.int8)
    ii, jj = np.nonzero(np.isfinite(bids))
    n = ii.size
    ride = np.flatnonzero(~v2g)
    nr = ride.size
    # variables: q (n), u_j unserved ride (nr), s V2G shortfall (1)
    b = bids[ii, jj]
    B = float(b.sum()) + 1.0  # any cost difference < B
    Mr = B
    emin = float(np.min(ekwh[v2g])) if v2g.any() else 1.0
    Ms = (Mr * (nr + 1) + B) / max(min(emin, 1.0), 1e-3)
    c = np.concatenate([b, np.full(nr, Mr), [Ms]])
    nvar = n + nr + 1
    rows, cols, vals, lo, hi = [], [], [], [], []
    # 6.3a
    rows.append(ii); cols.append(np.arange(n)); vals.append(np.ones(n))
    lo.append(np.full(W, -np.inf)); hi.append(np.ones(W))
    r = W
    # 6.3b / 6.3c: per task
    rows.append(r + jj); cols.append(np.arange(n)); vals.append(np.ones(n))
    rmap = np.full(S, -1); rmap[ride] = np.arange(nr)
    rows.append(r + ride); cols.append(n + np.arange(nr)); vals.append(np.ones(nr))
    lo.append(np.where(v2g, -np.inf, 1.0)); hi.append(np.ones(S))
    r += S
    # 6.3d: sum g l q + s >= E
    mv = v2g[jj]
    rows += [np.full(int(mv.sum()), r), [r]]; cols += [np.flatnonzero(mv), [nvar - 1]]
    vals += [ekwh[jj[mv]], [1.0]]
    lo.append([E]); hi.append([np.inf])
    r += 1
    A = sparse.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, nvar))
    ub = np.concatenate([np.ones(n + nr), [max(E, 0.0)]])
    integ = np.concatenate([np.ones(n + nr, dtype=np.int64), [0]])
    res = solve_milp(c, A, np.concatenate([np.asarray(x, float) for x in lo]),
                     np.concatenate([np.asarray(x, float) for x in hi]), np.zeros(nvar), ub, integ,
                     time_limit=time_limit, mip_rel_gap=1e-9)
    if not res.success:
        raise RuntimeError(f"WiBS MILP failed: {res.status} {res.message}")
    q[ii, jj] = (res.x[:n] > 0.5).astype(np.int8)
    return q, res.status


def second_price_payments(q: np.ndarray, bids: np.ndarray) -> np.ndarray:
    """Section 6.2.2: the winner of task j is paid the next bid on j above its own (the
    second price; ties count); with no higher bid it is paid its own bid."""
    pay = np.zeros(bids.shape)
    for i, j in zip(*np.nonzero(q)):
        col = bids[:, j]
        others = np.delete(col, i)
        higher = others[np.isfinite(others) & (others >= bids[i, j])]
        pay[i, j] = float(higher.min()) if higher.size else float(bids[i, j])
    return pay


def eq63_report(q: np.ndarray, bids: np.ndarray, task_type: np.ndarray, v2g_kwh: np.ndarray, E: float,
                tol: float = 1e-7) -> dict[str, Any]:
    """Vectorised Eq. 6.3 check (the environment's own; the tests use an independent loop)."""
    q = np.asarray(q)
    v2g = task_type == 2
    per_task = q.sum(axis=0)
    got = float(np.sum(q[:, v2g] * v2g_kwh[None, v2g]))
    out = {
        "worker_multi": int(np.sum(q.sum(axis=1) > 1)),
        "ride_unserved": int(np.sum(per_task[~v2g] < 1)),
        "ride_multi": int(np.sum(per_task[~v2g] > 1)),
        "v2g_multi": int(np.sum(per_task[v2g] > 1)),
        "no_bid_winner": int(np.sum((q > 0) & ~np.isfinite(bids))),
        "v2g_shortfall_kwh": max(E - got, 0.0),
        "v2g_delivered_kwh": got,
    }
    out["feasible"] = bool(out["worker_multi"] == 0 and out["ride_unserved"] == 0 and out["ride_multi"] == 0
                           and out["v2g_multi"] == 0 and out["no_bid_winner"] == 0
                           and out["v2g_shortfall_kwh"] <= tol * max(1.0, E))
    return out


def select_winners(mechanism: str, bids: np.ndarray, inst: SlotInstance, *, time_limit: float = 20.0) -> Selection:
    """Winning bids (``"opt"``, ``"bmw"``, ``"bg"``) and second-price payments for one slot."""
    import time

    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
    bids = np.asarray(bids, dtype=np.float64)
    if bids.shape != (inst.n_workers, inst.n_tasks):
        raise ValueError(f"bids must have shape {(inst.n_workers, inst.n_tasks)}, got {bids.shape}")
    if np.any(np.isnan(bids)) or np.any(bids <= 0) or np.any(bids == -np.inf):
        raise ValueError("bids must be > 0 or +inf (no bid); got NaN, non-positive or -inf entries")
    v2g = inst.is_v2g
    ekwh = np.where(v2g, inst.task_energy_kwh, 0.0)
    t0 = time.perf_counter()
    if mechanism == "opt":
        q, status = _opt(bids, v2g, ekwh, inst.E, time_limit)
    elif mechanism == "bmw":
        q, status = _bmw(bids, v2g, ekwh, inst.need_kwh, inst.E)
    else:
        q, status = _bg(bids), "ok"
    secs = time.perf_counter() - t0
    pay = second_price_payments(q, bids)
    rep = eq63_report(q, bids, inst.task_type, ekwh, inst.E)
    has_bid = np.isfinite(bids).any(axis=0)
    return Selection(
        mechanism=mechanism, q=q, bids=bids, task_type=inst.task_type.copy(), v2g_kwh=ekwh, E=float(inst.E),
        payments=pay, cost=float(np.sum(np.where(q > 0, bids, 0.0))), v2g_delivered_kwh=rep["v2g_delivered_kwh"],
        unserved_ride=rep["ride_unserved"],
        ride_with_bids_unserved=int(np.sum((q.sum(axis=0) < 1) & ~v2g & has_bid)),
        feasible=rep["feasible"], status=status, seconds=secs,
    )


# ----------------------------------------------------------------------------- the market
class EUberMarket:
    """State of the EUber world (workers, data) for one episode; views call its methods."""

    def __init__(self, config: EUberConfig) -> None:
        self.cfg = config.validate()
        self.fare = load_fare_model()
        trips = pgdata.taxi_trips()
        self._trips = trips
        self._trip_slot = np.asarray(trips["start_slot_15min"])
        self._by_slot = [np.flatnonzero(self._trip_slot == s) for s in range(SLOTS_PER_DAY)]
        self._all_latlon = np.stack([trips["pickup_lat"], trips["pickup_lon"]], axis=1)
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
        tr = self._trips
        ttype = np.zeros(self.n_tasks, dtype=np.int64)
        n_swap = int(round(cfg.swap_fraction * nr))
        ttype[rng.permutation(nr)[:n_swap]] = 1
        ttype[nr:] = 2
        p_ll = np.stack([tr["pickup_lat"][idx], tr["pickup_lon"][idx]], axis=1)
        d_ll = np.stack([tr["dropoff_lat"][idx], tr["dropoff_lon"][idx]], axis=1)
        latlon = np.concatenate([np.concatenate([p_ll, d_ll], axis=1),
                                 np.concatenate([self.hh_latlon, self.hh_latlon], axis=1)], axis=0)
        start = _to_km(latlon[:, :2])
        end = _to_km(latlon[:, 2:])
        trip_km = np.concatenate([tr["trip_miles"][idx] * KM_PER_MILE, np.zeros(self.n_v2g)])
        secs = np.concatenate([tr["trip_seconds"][idx].astype(float), np.full(self.n_v2g, SLOT_SECONDS)])
        hour = (day * 24 + sod // 4) % 8760
        energy = np.concatenate([np.zeros(nr), np.maximum(self.hh_load[:, hour] * cfg.v2g_hours, cfg.v2g_min_kwh)])
        avail = self.available()
        appr = np.sqrt(((self.pos[:, None, :] - start[None, :, :]) ** 2).sum(-1))
        v2g = ttype == 2
        need = np.where(v2g[None, :], appr * self.e[:, None] + energy[None, :],
                        (appr + trip_km[None, :]) * self.e[:, None])
        spare = (self.range - self.rmin) * self.e  # Eq. 6.1d right-hand side, kWh
        elig = avail[:, None] & (appr <= cfg.lam_km) & (need <= spare[:, None] + 1e-12)
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

    def reference_bids(self, inst: SlotInstance) -> np.ndarray:
        """The fare model's price of every (worker, task) pair, $ (W, S), before markup.

        Distance = approach + trip (ride/swap) or approach + V2G energy / e_i (its
        driving-distance equivalent, Section 6.4.2)."""
        v2g = inst.is_v2g
        dist = inst.approach_km + np.where(v2g[None, :], inst.task_energy_kwh[None, :] / inst.worker_e[:, None],
                                           inst.task_trip_km[None, :])
        ll = inst.task_latlon
        hour = (inst.slot_of_day + 0.5) / 4.0
        feats = _features(dist, ll[None, :, 0], ll[None, :, 1], ll[None, :, 2], ll[None, :, 3], hour, inst.weekend)
        fare = self.fare.predict(feats)
        return np.maximum(fare, self.cfg.min_bid_usd)

    def behavioural_bids(self, inst: SlotInstance, x: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
        """Default worker model: bid on recommended task j w.p. ``alpha[i, z_j]`` at
        ``markup_i x reference bid``. Returns (W, S) with ``inf`` = no bid."""
        ref = self.reference_bids(inst) if ref is None else ref
        u = self.bid_rng.random(x.shape)
        bid = (x > 0) & (u < self.alpha[:, inst.task_type])
        return np.where(bid, np.maximum(self.markup[:, None] * ref, self.cfg.min_bid_usd), np.inf)

    def advance(self, inst: SlotInstance, sel: Selection) -> dict[str, np.ndarray]:
        """Winners move and spend energy; low-range workers charge; the slot counter moves on."""
        cfg = self.cfg
        t = self.slot
        wi, tj = np.nonzero(sel.q)
        appr = inst.approach_km[wi, tj]
        v2g = inst.is_v2g[tj]
        km = np.where(v2g, appr + inst.task_energy_kwh[tj] / self.e[wi], appr + inst.task_trip_km[tj])
        self.range[wi] -= km
        self.pos[wi] = inst.task_end_km[tj]
        dur = appr / cfg.speed_kmh * 3600.0 + np.where(v2g, SLOT_SECONDS, inst.task_seconds[tj])
        self.busy_until[wi] = t + np.maximum(1, np.ceil(dur / SLOT_SECONDS - 1e-9)).astype(np.int64)
        # charging: finishes charging workers first, then sends new low-range ones
        done = self.charging & (self.busy_until <= t + 1)
        self.charging[done] = False
        low = (self.range < self.rmin + cfg.charge_margin_km) & ~self.charging
        deficit = (self.range_max[low] - self.range[low]) * self.e[low]
        slots = np.maximum(1, np.ceil(deficit / (cfg.charger_kw * SLOT_SECONDS / 3600.0))).astype(np.int64)
        self.busy_until[low] = np.maximum(self.busy_until[low], t + 1) + slots
        self.range[low] = self.range_max[low]  # full when it comes back
        self.charging[low] = True
        self.slot += 1
        tot = self.totals
        tot["cost_usd"] += sel.cost
        tot["payments_usd"] += float(sel.payments.sum())
        tot["tasks_served"] += int(sel.q.sum())
        tot["v2g_kwh"] += sel.v2g_delivered_kwh
        tot["E_kwh"] += sel.E
        tot["infeasible_slots"] += int(not sel.feasible)
        return {"moved": wi, "went_charging": np.flatnonzero(low)}


def _to_km(latlon: np.ndarray) -> np.ndarray:
    ll = np.asarray(latlon, dtype=np.float64)
    return np.stack([(ll[..., 1] - LON0) * KM_PER_DEG_LON, (ll[..., 0] - LAT0) * KM_PER_DEG_LAT], axis=-1)
