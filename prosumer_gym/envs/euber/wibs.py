"""EUber-v0 reverse auction: winner selection (WiBS: ``opt``/``bmw``/``bg``) and payments.

Dissertation ``001``, chapter 6: Eq. 6.3 (winner selection), Alg. 8 (BMW), Section 6.2.2
(second-price payments); ``bg`` is the task-centric greedy baseline of ref. [123].

Eq. 6.3 with ``E`` = the total of the slot's V2G tasks can be infeasible (a task receives
no bid). ``"opt"`` then solves the *lexicographic* relaxation: first minimise the V2G
shortfall, then the number of unserved ride/swap tasks, then the cost; the selection
reports ``feasible=False`` with the shortfall and unserved counts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit
from scipy import sparse
from scipy.optimize import linear_sum_assignment

from prosumer_gym.core.milp import solve_milp

if TYPE_CHECKING:  # market.py imports this module
    from prosumer_gym.envs.euber.market import SlotInstance

__all__ = ["MECHANISMS", "Selection", "select_winners", "second_price_payments", "eq63_report"]

MECHANISMS = ("opt", "bmw", "bg")


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
    rows, cols, c, sub = _lsa_block(cost, edge)
    if rows.size == 0:
        return q
    big = float(np.sum(c)) + 1.0
    r, k = linear_sum_assignment(c - big * sub)  # c - big on the edges, 0 elsewhere
    keep = sub[r, k]
    q[rows[r[keep]], cols[k[keep]]] = 1
    return q


@njit(cache=True)
def _lsa_block(cost: np.ndarray, edge: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows with an edge, the columns with an edge in those rows, and on that block the
    costs (0 off the edges) and the edge mask (compiled: one pass instead of ~10 NumPy calls)."""
    W, S = edge.shape
    rows = np.empty(W, np.int64)
    colmask = np.zeros(S, np.bool_)
    nr = 0
    for i in range(W):
        hit = False
        for j in range(S):
            if edge[i, j]:
                hit = True
                colmask[j] = True
        if hit:
            rows[nr] = i
            nr += 1
    cols = np.flatnonzero(colmask)
    nc = cols.size
    c = np.zeros((nr, nc))
    sub = np.zeros((nr, nc), np.bool_)
    for a in range(nr):
        i = rows[a]
        for b in range(nc):
            j = cols[b]
            if edge[i, j]:
                sub[a, b] = True
                c[a, b] = cost[i, j]
    return rows[:nr], cols, c, sub


def _bmw(bids: np.ndarray, v2g: np.ndarray, ekwh: np.ndarray, need: np.ndarray, E: float,
         guard: bool = True) -> tuple[np.ndarray, str]:
    """Alg. 8 (BMW). Edges = finite bids. Repeat: min-weight full matching; if the V2G energy
    is below ``E``, remove from G the smallest set Z of the highest-weight matched ride/swap
    edges with ``V2G + sum_Z l_ij >= E`` (all of them if none suffices) and match again; stop
    when the budget is met or Z is empty (line 13). At most |S| rounds (Theorem 8).

    ``guard=True`` (default, our addition): stop with the previous matching as soon as a round
    does not raise the V2G energy; ``guard=False`` is Alg. 8 as printed (keeps removing ride
    edges until the budget is met or no ride edge is matched)."""
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
        if guard and got_new <= got + tol:
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
    return _second_price(np.ascontiguousarray(q), np.ascontiguousarray(bids, dtype=np.float64))


@njit(cache=True)
def _second_price(q: np.ndarray, bids: np.ndarray) -> np.ndarray:
    """:func:`second_price_payments` compiled: per winner one pass over its task's column
    (the payment is a minimum, so the same bits as any other order)."""
    W, S = bids.shape
    pay = np.zeros((W, S))
    for i in range(W):
        for j in range(S):
            if q[i, j] == 0:
                continue
            own = bids[i, j]
            best = np.inf
            for k in range(W):
                b = bids[k, j]
                if k != i and b >= own and b < best:  # b < inf: finite
                    best = b
            pay[i, j] = best if best < np.inf else own
    return pay


def eq63_report(q: np.ndarray, bids: np.ndarray, task_type: np.ndarray, v2g_kwh: np.ndarray, E: float,
                tol: float = 1e-7) -> dict[str, Any]:
    """Eq. 6.3 check (the environment's own, compiled counts; the tests use an independent loop)."""
    q = np.ascontiguousarray(q)
    v2g = task_type == 2
    got = float(np.sum(q[:, v2g] * v2g_kwh[None, v2g]))
    worker_multi, ride_unserved, ride_multi, v2g_multi, no_bid, bid_unserved = _eq63_counts(
        q, np.ascontiguousarray(bids, dtype=np.float64), v2g)
    out = {
        "worker_multi": worker_multi,
        "ride_unserved": ride_unserved,
        "ride_multi": ride_multi,
        "v2g_multi": v2g_multi,
        "no_bid_winner": no_bid,
        "v2g_shortfall_kwh": max(E - got, 0.0),
        "v2g_delivered_kwh": got,
        "ride_with_bids_unserved": bid_unserved,  # not part of feasibility: a KPI of the selection
    }
    out["feasible"] = bool(out["worker_multi"] == 0 and out["ride_unserved"] == 0 and out["ride_multi"] == 0
                           and out["v2g_multi"] == 0 and out["no_bid_winner"] == 0
                           and out["v2g_shortfall_kwh"] <= tol * max(1.0, E))
    return out


def select_winners(mechanism: str, bids: np.ndarray, inst: SlotInstance, *, time_limit: float = 20.0,
                   bmw_guard: bool = True) -> Selection:
    """Winning bids (``"opt"``, ``"bmw"``, ``"bg"``) and second-price payments for one slot
    (``bmw_guard``: see :func:`_bmw`; False = Alg. 8 as printed)."""
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
    bids = np.asarray(bids, dtype=np.float64)
    if bids.shape != (inst.n_workers, inst.n_tasks):
        raise ValueError(f"bids must have shape {(inst.n_workers, inst.n_tasks)}, got {bids.shape}")
    if not np.all(bids > 0):  # one pass: NaN, non-positive and -inf all fail ``> 0``
        raise ValueError("bids must be > 0 or +inf (no bid); got NaN, non-positive or -inf entries")
    v2g = inst.is_v2g
    ekwh = np.where(v2g, inst.task_energy_kwh, 0.0)
    t0 = time.perf_counter()
    if mechanism == "opt":
        q, status = _opt(bids, v2g, ekwh, inst.E, time_limit)
    elif mechanism == "bmw":
        q, status = _bmw(bids, v2g, ekwh, inst.need_kwh, inst.E, guard=bmw_guard)
    else:
        q, status = _bg(bids), "ok"
    secs = time.perf_counter() - t0
    pay = second_price_payments(q, bids)
    rep = eq63_report(q, bids, inst.task_type, ekwh, inst.E)
    return Selection(
        mechanism=mechanism, q=q, bids=bids, task_type=inst.task_type.copy(), v2g_kwh=ekwh, E=float(inst.E),
        payments=pay, cost=float(np.sum(np.where(q > 0, bids, 0.0))), v2g_delivered_kwh=rep["v2g_delivered_kwh"],
        unserved_ride=rep["ride_unserved"],
        ride_with_bids_unserved=rep["ride_with_bids_unserved"],
        feasible=rep["feasible"], status=status, seconds=secs,
    )


@njit(cache=True)
def _eq63_counts(q: np.ndarray, bids: np.ndarray, v2g: np.ndarray) -> tuple[int, int, int, int, int, int]:
    """The integer counts of :func:`eq63_report` in one pass: workers with several tasks,
    ride/swap tasks unserved and served twice, V2G tasks served twice, winners without a bid,
    and ride/swap tasks that had a bid but are unserved."""
    W, S = q.shape
    per_task = np.zeros(S, np.int64)
    has_bid = np.zeros(S, np.bool_)
    worker_multi = 0
    no_bid = 0
    for i in range(W):
        n = 0
        for j in range(S):
            if q[i, j] != 0:
                n += q[i, j]
                per_task[j] += q[i, j]
                if not np.isfinite(bids[i, j]):
                    no_bid += 1
            if np.isfinite(bids[i, j]):
                has_bid[j] = True
        if n > 1:
            worker_multi += 1
    ride_unserved = ride_multi = v2g_multi = bid_unserved = 0
    for j in range(S):
        if v2g[j]:
            v2g_multi += per_task[j] > 1
        else:
            ride_unserved += per_task[j] < 1
            ride_multi += per_task[j] > 1
            bid_unserved += (per_task[j] < 1) and has_bid[j]
    return worker_multi, ride_unserved, ride_multi, v2g_multi, no_bid, bid_unserved
