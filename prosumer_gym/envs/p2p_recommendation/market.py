"""The day's instance of Eq. 4.1 (dissertation 001, chapter 4) and everything computed on it.

* :class:`RecInstance` — one day: forecast capacities ``r_i`` and demands ``w_j`` (kWh),
  losses ``L_ij``, ``L_max``, minimum exchange ``alpha`` (kWh) and list length ``K``.
* :func:`violations` — how much a recommendation matrix ``x`` violates each constraint of
  Eq. 4.1 (4.1a capacity incl. loss, 4.1b demand, 4.1c list length, 4.1d minimum exchange,
  the ``L_ij <= L_max`` pair rule and the ``[0, 1]`` domain).
* :func:`project` — the environment's documented, deterministic projection onto the
  feasible set (see :func:`project` for the rule) and a report of what it changed.
* :class:`RecommendationMILP` — Eq. 4.1 with arbitrary per-pair weights (``p_ij`` for the
  oracle, ``p_hat + bonus`` for UPL's Eq. 4.4), solved by HiGHS. The constraint matrix's
  sparsity pattern is built once per market size; every day only coefficients, row bounds,
  variable bounds and the objective are refilled.
* :func:`decode_scores` — P2PRecommendation-v1's action decoder: per-pair scores to a
  feasible recommendation by a greedy fill in decreasing score.
* :func:`expected_energy`, :func:`realised_energy` — Eq. 4.1's objective and Eq. 4.2.

A feasible ``x`` satisfies, up to ``FEAS_TOL`` (kWh or fraction):
``sum_j (1+L_ij) w_j x_ij <= r_i``; ``sum_i x_ij <= 1``; ``#{i: x_ij > 0} <= K``;
``w_j x_ij >= alpha`` whenever ``x_ij > 0``; ``x_ij = 0`` whenever ``L_ij > L_max``;
``0 <= x_ij <= 1``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from prosumer_gym.core.milp import MilpResult, SparsePattern, solve_milp

__all__ = [
    "FEAS_TOL",
    "RecInstance",
    "violations",
    "is_feasible",
    "project",
    "decode_scores",
    "RecommendationMILP",
    "expected_energy",
    "realised_energy",
]

FEAS_TOL = 1e-9
CONSTRAINTS = ("domain", "forbidden_pair", "capacity", "demand", "list_length", "min_exchange")


@dataclass(frozen=True)
class RecInstance:
    """One day of Eq. 4.1. ``K=None`` means no limit on the list length."""

    capacity_kwh: NDArray[np.float64]  # r_i, (P,)
    demand_kwh: NDArray[np.float64]  # w_j, (C,)
    loss: NDArray[np.float64]  # L_ij, (P, C) fractions
    loss_max: float = 0.025
    alpha_kwh: float = 0.05
    K: int | None = 5
    allowed: NDArray[np.bool_] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        r = np.asarray(self.capacity_kwh, dtype=np.float64)
        w = np.asarray(self.demand_kwh, dtype=np.float64)
        L = np.asarray(self.loss, dtype=np.float64)
        if r.ndim != 1 or w.ndim != 1 or L.shape != (r.size, w.size):
            raise ValueError(f"capacity (P,), demand (C,) and loss (P, C) disagree: {r.shape}, {w.shape}, {L.shape}")
        for name, v in (("capacity_kwh", r), ("demand_kwh", w), ("loss", L)):
            if not np.all(np.isfinite(v)) or np.any(v < 0):
                raise ValueError(f"{name} must be finite and >= 0")
        object.__setattr__(self, "capacity_kwh", r)
        object.__setattr__(self, "demand_kwh", w)
        object.__setattr__(self, "loss", L)
        object.__setattr__(self, "allowed", L <= self.loss_max + 1e-12)

    @classmethod
    def trusted(cls, capacity_kwh: NDArray[np.float64], demand_kwh: NDArray[np.float64], loss: NDArray[np.float64],
                loss_max: float, alpha_kwh: float, K: int | None, allowed: NDArray[np.bool_]) -> RecInstance:
        """An instance from float64 arrays the caller has already validated (the env checks its
        whole year of forecasts once at ``reset``); skips the per-day checks of ``__init__``.
        ``allowed`` must equal ``loss <= loss_max + 1e-12``."""
        inst = object.__new__(cls)
        for name, v in (("capacity_kwh", capacity_kwh), ("demand_kwh", demand_kwh), ("loss", loss),
                        ("loss_max", loss_max), ("alpha_kwh", alpha_kwh), ("K", K), ("allowed", allowed)):
            object.__setattr__(inst, name, v)
        return inst

    @property
    def n_producers(self) -> int:
        return self.capacity_kwh.size

    @property
    def n_consumers(self) -> int:
        return self.demand_kwh.size

    @property
    def k_eff(self) -> int:
        """``K`` as a number (``P`` when unlimited)."""
        return self.n_producers if self.K is None else min(int(self.K), self.n_producers)


def violations(inst: RecInstance, x: NDArray) -> dict[str, float]:
    """Largest violation of each constraint (0 = satisfied); units: kWh for capacity and
    minimum exchange, fraction for demand/domain/forbidden pairs, count for list length."""
    x = np.asarray(x, dtype=np.float64)
    w, r, L = inst.demand_kwh, inst.capacity_kwh, inst.loss
    pos = x > 0
    out = {
        "domain": float(max(0.0, -x.min(), x.max() - 1.0)),
        "forbidden_pair": float(np.max(np.where(inst.allowed, 0.0, np.abs(x)), initial=0.0)),
        "capacity": float(np.max(((1.0 + L) * x * w[None, :]).sum(axis=1) - r, initial=0.0)),
        "demand": float(np.max(x.sum(axis=0) - 1.0, initial=0.0)),
        "list_length": float(np.max(pos.sum(axis=0) - inst.k_eff, initial=0)),
        "min_exchange": float(np.max(np.where(pos, inst.alpha_kwh - x * w[None, :], 0.0), initial=0.0)),
    }
    return {k: max(v, 0.0) for k, v in out.items()}


def is_feasible(inst: RecInstance, x: NDArray, tol: float = 1e-7) -> bool:
    return all(v <= tol for v in violations(inst, x).values())


def project(inst: RecInstance, x: NDArray) -> tuple[NDArray[np.float64], dict[str, int | float | bool]]:
    """Deterministic projection of ``x`` in ``[0, 1]^(P x C)`` onto the feasible set of Eq. 4.1.

    Rule, applied in this order (each step never breaks what an earlier step fixed):

    1. ``forbidden``: ``x_ij = 0`` where ``L_ij > L_max``.
    2. ``demand``: a consumer with ``sum_i x_ij > 1`` has its column divided by that sum.
    3. ``list_length``: a consumer with more than ``K`` non-zero entries keeps its ``K``
       largest (ties: lower producer index first); the others become 0.
    4. ``capacity``: a producer whose shipped energy ``sum_j (1+L_ij) w_j x_ij`` exceeds
       ``r_i`` has its row multiplied by ``r_i / shipped`` (proportional curtailment).
    5. ``min_exchange``: entries with ``0 < w_j x_ij < alpha`` (within ``FEAS_TOL``)
       become 0. This only lowers loads, counts and sums, so steps 1-4 stay satisfied.

    Returns the projected matrix and a report: how many entries/consumers/producers each
    step changed, ``changed`` and ``max_abs_change``.
    """
    x0 = np.asarray(x, dtype=np.float64)
    if x0.shape != inst.loss.shape:
        raise ValueError(f"recommendation must have shape {inst.loss.shape}, got {x0.shape}")
    if not np.all(np.isfinite(x0)) or x0.min(initial=0.0) < 0 or x0.max(initial=0.0) > 1:
        raise ValueError("recommendation must hold finite fractions in [0, 1]")
    # Whole-matrix NumPy throughout (no per-row/column loops or fancy-indexed copies); every
    # step gives bit for bit what the rule says: multiplying or dividing by 1.0 is exact.
    y = x0.copy()
    w, r, L = inst.demand_kwh, inst.capacity_kwh, inst.loss
    rep: dict[str, int | float | bool] = {}
    bad = (~inst.allowed) & (y > 0)
    rep["forbidden_zeroed"] = int(np.count_nonzero(bad))
    np.copyto(y, 0.0, where=bad)
    col = y.sum(axis=0)
    over = col > 1.0
    rep["demand_scaled"] = int(np.count_nonzero(over))
    if rep["demand_scaled"]:
        y /= np.where(over, col, 1.0)[None, :]
        np.minimum(y, 1.0, out=y)  # only over-full columns can exceed 1 (by rounding)
    k = inst.k_eff
    cnt = np.count_nonzero(y, axis=0)  # y >= 0 here, so non-zero = positive
    long = np.flatnonzero(cnt > k)
    trunc = 0
    if long.size:
        # Keep, per long column, the K largest (ties: lower producer index first) without a
        # sort: every entry above the column's K-th largest value, then the first entries
        # equal to it (by index) until K are kept. The K-th largest is > 0 (cnt > K).
        sub = y[:, long] if long.size < y.shape[1] else y
        kth = -np.partition(-sub, k - 1, axis=0)[k - 1]
        above = sub > kth
        tie = sub == kth
        keep = above | tie
        excess = np.flatnonzero(np.count_nonzero(keep, axis=0) > k)  # more ties than places left
        if excess.size:
            t = tie[:, excess]
            room = k - np.count_nonzero(above[:, excess], axis=0)
            keep[:, excess] = above[:, excess] | (t & (np.cumsum(t, axis=0) <= room))
        drop = ~keep
        trunc = int(np.count_nonzero(sub * drop))
        np.copyto(sub, 0.0, where=drop)
        if sub is not y:
            y[:, long] = sub
    rep["list_truncated"] = trunc
    shipped = ((1.0 + L) * y * w[None, :]).sum(axis=1)
    hot = shipped > r  # r >= 0, so shipped > 0 on these rows
    rep["capacity_scaled"] = int(np.count_nonzero(hot))
    if rep["capacity_scaled"]:
        f = np.where(shipped[hot] > 0, r[hot] / np.where(shipped[hot] > 0, shipped[hot], 1.0), 0.0)
        g = np.ones(y.shape[0])
        g[hot] = f * (1.0 - 1e-12)
        y *= g[:, None]
    small = (y > 0) & (y * w[None, :] < inst.alpha_kwh - FEAS_TOL)
    rep["min_exchange_zeroed"] = int(np.count_nonzero(small))
    np.copyto(y, 0.0, where=small)
    change = float(np.abs(y - x0).max(initial=0.0))
    rep["max_abs_change"] = change
    rep["changed"] = bool(change > 0)
    return y, rep


def decode_scores(inst: RecInstance, score: NDArray) -> NDArray[np.float64]:
    """A feasible recommendation of Eq. 4.1 from per-pair scores ``score`` in ``[0, 1]^(P x C)``
    (P2PRecommendation-v1's action; ours, the chapter has no such interface).

    Greedy in decreasing score (ties: lower flat index ``i * C + j`` first) over the allowed
    pairs with ``score > 0``: pair ``(i, j)`` gets ``E = min(res_w_j, res_r_i / (1 + L_ij))``
    kWh, the most it can carry, unless consumer ``j`` already has ``K`` producers or
    ``E < alpha``; then ``x_ij = E / w_j``. A score of 0 never recommends the pair. With
    scores equal to the true ``p_ij`` this is a greedy for Eq. 4.1's objective
    ``sum w_j p_ij x_ij``; a policy that scores pairs by estimated preference (plus an
    exploration bonus) acts as a bandit does, with this greedy in place of its MILP or
    matching. Feasible by construction (every constraint of Eq. 4.1 is kept at each fill).
    """
    s = np.asarray(score, dtype=np.float64)
    L = inst.loss
    if s.shape != L.shape:
        raise ValueError(f"scores must have shape {L.shape}, got {s.shape}")
    if not np.all(np.isfinite(s)) or s.min(initial=0.0) < 0 or s.max(initial=0.0) > 1:
        raise ValueError("scores must be finite and in [0, 1]")
    P, C = L.shape
    w = inst.demand_kwh
    res_r = inst.capacity_kwh.astype(np.float64).copy()
    res_w = w.astype(np.float64).copy()
    deg = np.zeros(C, dtype=np.int64)
    k = inst.k_eff
    alpha = inst.alpha_kwh
    E = np.zeros((P, C))
    flat = np.flatnonzero((inst.allowed & (s > 0)).ravel())
    order = flat[np.argsort(-s.ravel()[flat], kind="stable")]  # stable: ties by flat index
    for f in order.tolist():
        i, j = divmod(f, C)
        if deg[j] >= k:
            continue
        e = min(res_w[j], res_r[i] / (1.0 + L[i, j]))
        if e < alpha:
            continue
        E[i, j] = e
        deg[j] += 1
        res_w[j] -= e
        res_r[i] -= (1.0 + L[i, j]) * e
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(w[None, :] > 0, E / np.where(w > 0, w, 1.0)[None, :], 0.0)
    # rounding guard only: E / w * w can exceed E by an ulp; the projection then changes nothing
    return project(inst, np.clip(x, 0.0, 1.0))[0]


def expected_energy(inst: RecInstance, x: NDArray, p: NDArray) -> float:
    """Objective of Eq. 4.1: ``sum_ij w_j p_ij x_ij`` (kWh)."""
    return float((np.asarray(x) * np.asarray(p) * inst.demand_kwh[None, :]).sum())


def realised_energy(inst: RecInstance, x: NDArray, accept: NDArray) -> float:
    """Eq. 4.2: ``sum_ij w_j x_ij P_ij(d)`` (kWh)."""
    return expected_energy(inst, x, accept)


class RecommendationMILP:
    """Eq. 4.1 as a MILP for one market size; ``solve(inst, weight)`` maximises
    ``sum_ij w_j weight_ij x_ij`` over the feasible set.

    Variables ``x_ij in [0, 1]`` then ``z_ij in {0, 1}`` (pair-major, ``k = i * C + j``).
    Rows: 4.1a capacity (P), 4.1b demand (C), 4.1c list length (C), the linking row
    ``x_ij <= u_ij z_ij`` with ``u_ij = min(1, r_i / ((1+L_ij) w_j))`` (4.1d's upper half,
    4.1e, tightened by the capacity so the LP relaxation is stronger), and 4.1d's lower half
    ``alpha z_ij <= w_j x_ij``. Pairs that can never trade today (``L_ij > L_max`` or
    ``u_ij w_j < alpha``) get ``ub = 0``. The pattern is built once; per day only numbers
    change. The solution is cleaned (``z`` rounded, ``x = 0`` where ``z = 0``) and passed
    through :func:`project` so that solver tolerances never leak into a recommendation.
    """

    def __init__(self, n_producers: int, n_consumers: int, time_limit: float | None = 30.0,
                 mip_rel_gap: float = 1e-4) -> None:
        P, C = int(n_producers), int(n_consumers)
        self.P, self.C = P, C
        self.time_limit = time_limit
        self.mip_rel_gap = float(mip_rel_gap)
        n = P * C
        pat = SparsePattern(n_cols=2 * n)
        ii, jj = np.divmod(np.arange(n), C)
        cap = pat.add_rows(P)
        dem = pat.add_rows(C)
        kk = pat.add_rows(C)
        link = pat.add_rows(n)
        minx = pat.add_rows(n)
        pat.add("cap", rows=cap[ii], cols=np.arange(n))
        pat.add("dem", rows=dem[jj], cols=np.arange(n))
        pat.add("k", rows=kk[jj], cols=n + np.arange(n))
        pat.add("link_x", rows=link, cols=np.arange(n))
        pat.add("link_z", rows=link, cols=n + np.arange(n))
        pat.add("min_z", rows=minx, cols=n + np.arange(n))
        pat.add("min_x", rows=minx, cols=np.arange(n))
        pat.freeze()
        self.pattern = pat
        self._data = pat.new_data()
        self._data[pat["dem"]] = 1.0
        self._data[pat["k"]] = 1.0
        self._data[pat["link_x"]] = 1.0
        self._rows = (cap, dem, kk, link, minx)
        self._row_lb = np.full(pat.n_rows, -np.inf)
        self._row_ub = np.zeros(pat.n_rows)
        self._row_ub[dem] = 1.0
        self._integrality = np.concatenate([np.zeros(n, np.int8), np.ones(n, np.int8)])
        self.last_result: MilpResult | None = None

    def solve(self, inst: RecInstance, weight: NDArray) -> tuple[NDArray[np.float64], MilpResult]:
        P, C = self.P, self.C
        if inst.loss.shape != (P, C):
            raise ValueError(f"instance is {inst.loss.shape}, this MILP was built for {(P, C)}")
        Wt = np.asarray(weight, dtype=np.float64)
        if Wt.shape != (P, C) or not np.all(np.isfinite(Wt)):
            raise ValueError(f"weight must be a finite ({P}, {C}) array")
        t0 = time.perf_counter()
        r, w, L, a = inst.capacity_kwh, inst.demand_kwh, inst.loss, inst.alpha_kwh
        wl = (1.0 + L) * w[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(wl > 0, np.minimum(1.0, r[:, None] / np.where(wl > 0, wl, 1.0)), 0.0)
        usable = inst.allowed & (u * w[None, :] >= a) & (w[None, :] > 0) & (Wt > 0)
        pat, data = self.pattern, self._data
        data[pat["cap"]] = wl.ravel()
        data[pat["link_z"]] = -u.ravel()
        data[pat["min_z"]] = a
        data[pat["min_x"]] = -np.repeat(w[None, :], P, axis=0).ravel()
        cap, dem, kk, link, minx = self._rows
        self._row_ub[cap] = r
        self._row_ub[kk] = inst.k_eff
        ub = np.concatenate([usable.ravel(), usable.ravel()]).astype(np.float64)
        c = np.concatenate([(Wt * w[None, :]).ravel(), np.zeros(P * C)])
        x = np.zeros((P, C))
        if not usable.any():
            res = MilpResult(x=np.zeros(2 * P * C), status="optimal", proven_optimal=True, objective=0.0,
                             bound=0.0, mip_gap=0.0, seconds=time.perf_counter() - t0, message="empty")
        else:
            res = solve_milp(c, pat.matrix(data), self._row_lb, self._row_ub, np.zeros(2 * P * C), ub,
                             self._integrality, maximize=True, time_limit=self.time_limit,
                             mip_rel_gap=self.mip_rel_gap)
            if res.x is not None:
                xv = np.clip(res.x[: P * C].reshape(P, C), 0.0, 1.0)
                zv = res.x[P * C:].reshape(P, C) > 0.5
                x = np.where(zv, xv, 0.0)
        x, _ = project(inst, x)
        self.last_result = res
        return x, res
