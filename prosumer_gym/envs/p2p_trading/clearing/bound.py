"""Certified upper bound on the P2PTrading-v0 clearing optimum (Eq. 5.2): sigmoidal-programming
branch and bound over the buyers' savings.

The objective of Eq. 5.2 is ``sum_j phi_j(s_j)`` with ``s_j = sum_i a_i e_ij`` the saving of
buyer ``j`` and ``phi_j(s) = v(s - c_j)`` S-shaped (convex below ``c_j``, concave above; the PT
value of Eq. 5.1, ``zeta <= 1``). Replacing every ``phi_j`` on an interval ``[l_j, u_j]`` of its
saving by its *concave envelope* gives a concave maximisation over the transport polytope of
Eqs. 5.2a-c, an LP once the envelope is written as the minimum of its supporting lines; its
optimum is an upper bound on the optimum of Eq. 5.2 (the minimum trade of Eqs. 5.2e-g is
relaxed, which only raises it). Branching on the buyer whose envelope over-estimates most at
the LP point, splitting its interval between that point and the interval's middle, tightens
the bound (Udell & Boyd, "Maximizing a sum of sigmoids", Optim. Eng. 2016); where the envelope
is exact at the LP point, a pair with a piece in ``(0, mu)`` is branched on (no trade, or at
least ``mu``: Eqs. 5.2e-f). Every LP point, with the pieces below ``mu`` dropped, is a feasible
clearing and a lower bound; each child's point is scored as soon as its LP is solved (not only
when the child is expanded), which finds good clearings earlier and so prunes more (``bnb`` on
50 real 20x20 days: mean 566 -> 78 ms per day, median 47 -> 49 ms;
docs/p2p_trading_clearing.md). ``polish_incumbents`` runs the default kernel's local search on
each such point (:func:`~.savings.polish`): better clearings per node, more time per node.

The envelope of an S-shaped ``phi`` on ``[l, u]``: the tangent from ``(l, phi(l))`` touching the
concave part at ``t(l)`` (``phi'(t) (t - l) = phi(t) - phi(l)``), then ``phi`` on ``[t, u]``; the
chord from ``l`` to ``u`` when no such ``t <= u`` exists. Its supporting lines are tangents of
``phi`` at points ``p >= t(l)``, which is all the LP carries (a tangent pool refined by
cutting planes at the LP point). Each cut over-estimates the envelope, so the LP value is a
valid bound whenever the LP is solved, however few cuts it has.

The LPs are solved by HiGHS (``highspy``), one model per day: per node only the savings'
bounds and the cut rows change, and HiGHS re-solves from the previous basis.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from prosumer_gym.core.prospect import pt_derivative, pt_value
from prosumer_gym.envs.p2p_trading.clearing._common import (
    Clearer,
    check_options,
    check_size,
    finish,
    is_int,
    is_num,
    seller_price_matrix,
    x_from_energy,
)
from prosumer_gym.envs.p2p_trading.clearing.milp import _make_feasible, gain_lost_share, max_saving, no_trade_value
from prosumer_gym.envs.p2p_trading.market import Allocation, FloatArray, MarketInstance, objective

__all__ = ["BoundResult", "CERTIFICATE_KEYS", "certificate", "certified_bound", "make_bnb"]

#: the certificate entries a clearing's ``stats`` (and P2PTrading-v0's ``info["market"]``) carry
CERTIFICATE_KEYS = ("gain_lost_share", "upper_bound", "upper_bound_proven", "no_trade_value")


@dataclass(frozen=True)
class BoundResult:
    """:func:`certified_bound`'s answer. ``upper_bound``: certified upper bound on the optimum of
    Eq. 5.2; ``lower_bound``: the best feasible objective known (the given incumbent or a
    clearing the search found, ``energy``); ``proven``: the two are within ``rel_gap`` of the
    attainable gain ``upper_bound - no_trade_value``; ``nodes``: LPs' branch-and-bound nodes."""

    upper_bound: float
    lower_bound: float
    no_trade_value: float
    proven: bool
    nodes: int
    lp_solves: int
    seconds: float
    energy: FloatArray | None  # (S, B) kWh of the best clearing the search found, if better than the incumbent

    @property
    def gap_share(self) -> float:
        """``(UB - LB) / (UB - no_trade_value)``: the share of the attainable gain left open."""
        span = self.upper_bound - self.no_trade_value
        return 0.0 if span <= 1e-12 * max(1.0, abs(self.upper_bound)) else (self.upper_bound - self.lower_bound) / span


def certificate(res: BoundResult, value: float) -> dict[str, Any]:
    """The :data:`CERTIFICATE_KEYS` of a clearing of objective ``value`` against ``res``."""
    return {"gain_lost_share": gain_lost_share(value, res.upper_bound, res.no_trade_value),
            "upper_bound": res.upper_bound, "upper_bound_proven": res.proven, "no_trade_value": res.no_trade_value}


class _Sigmoids:
    """The buyers' ``phi_j(s) = v(s - c_j)`` (B,), their slopes and envelope tangent points."""

    def __init__(self, c: FloatArray, kp: FloatArray, kn: FloatArray, zp: FloatArray, zn: FloatArray) -> None:
        self.c, self.kp, self.kn, self.zp, self.zn = c, kp, kn, zp, zn

    def f(self, s: FloatArray, j: np.ndarray | slice = slice(None)) -> FloatArray:
        return pt_value(s - self.c[j], self.kp[j], self.kn[j], self.zp[j], self.zn[j])

    def df_gain(self, s: FloatArray, j: np.ndarray | slice = slice(None)) -> FloatArray:
        """``phi'`` on the concave part ``s > c`` (where the cuts touch)."""
        return pt_derivative(s - self.c[j], self.kp[j], self.kn[j], self.zp[j], self.zn[j], eps=1e-300)

    def tangent_point(self, j: int, lo: float, hi: float) -> float:
        """``t(l)`` of buyer ``j``'s envelope on ``[lo, hi]``: ``lo`` itself where ``lo >= c``
        (the envelope is ``phi``), the touching point of the tangent from ``lo`` where it lies in
        ``(c, hi]``, else ``inf`` (the envelope is the chord ``lo -> hi``). Bisection on
        ``g(t) = phi'(t) (t - l) - (phi(t) - phi(l))``, which decreases on the concave part."""
        c = float(self.c[j])
        if lo >= c:
            return lo
        if hi <= c:
            return math.inf
        kp, zp = float(self.kp[j]), float(self.zp[j])
        fl = -float(self.kn[j]) * (c - lo) ** float(self.zn[j])

        def g(x: float) -> float:
            d = x - c
            return kp * zp * d ** (zp - 1.0) * (x - lo) - (kp * d ** zp - fl)

        if g(hi) > 0.0:
            return math.inf
        a, b = c, hi
        for _ in range(64):
            mid = 0.5 * (a + b)
            if mid <= a or mid >= b:
                break
            if g(mid) > 0.0:
                a = mid
            else:
                b = mid
        return b


def certified_bound(inst: MarketInstance, incumbent: float = -np.inf, *, rel_gap: float = 1e-5,
                    node_limit: int = 5_000, time_limit: float | None = None, cut_rounds: int = 8,
                    polish_incumbents: bool = False) -> BoundResult:
    """Certified upper bound on the optimum of Eq. 5.2 for ``inst`` by sigmoidal-programming
    branch and bound (module docstring), at the sellers' prices (``rho_i``, as the default
    clearing).

    ``incumbent``: the objective of a known feasible clearing (e.g. the default's), used to
    prune (it must be attained: a value above the optimum would prune valid nodes). The search stops when ``UB - LB <= rel_gap (UB - no_trade_value)`` (``proven``), or
    at ``node_limit`` nodes (deterministic) or ``time_limit`` seconds (then the result depends on
    the machine's speed); ``upper_bound`` is valid in every case (the largest bound among the
    open nodes and the closed ones), up to the LP solver's tolerances (about 1e-7 absolute).
    Valid for ``zeta+, zeta- <= 1`` (else ``ValueError``), where every ``phi_j`` is S-shaped.
    ``polish_incumbents``: run the default kernel's local search on every clearing found (the
    lower bound rises faster; the upper bound's validity does not depend on it).
    """
    import highspy

    kp, kn, zp, zn = (np.ascontiguousarray(np.broadcast_to(v, (inst.n_buyers,)), dtype=np.float64)
                      for v in inst.pt_args())
    if np.any(zp > 1.0) or np.any(zn > 1.0):
        raise ValueError("certified_bound needs zeta_pos, zeta_neg <= 1 (S-shaped PT values)")
    if not (is_num(rel_gap) and 0 < rel_gap < 1):
        raise ValueError(f"rel_gap must be a number in (0, 1), got {rel_gap!r}")
    if time_limit is not None and not (is_num(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit must be None or a number of seconds > 0, got {time_limit!r}")
    deadline = math.inf if time_limit is None else float(time_limit)
    if not (is_int(node_limit) and node_limit >= 1):
        raise ValueError(f"node_limit must be an integer >= 1, got {node_limit!r}")
    t0 = time.perf_counter()
    S, B = inst.n_sellers, inst.n_buyers
    base = no_trade_value(inst)
    sig = _Sigmoids(inst.ref_gap, kp, kn, zp, zn)
    w, r, mu = inst.demand_kwh, inst.surplus_kwh, inst.min_trade_kwh
    lossf = 1.0 + inst.loss
    a = inst.grid_sell_price - inst.seller_price
    emax = np.where(inst.allowed & (a[:, None] > 0) & (w[None, :] >= mu), np.minimum(w[None, :], r[:, None] / lossf), 0.0)
    pi, pj = np.nonzero(emax >= mu)  # the pairs that can carry a trade (5.2c, 5.2e)
    P = pi.size
    smax = np.minimum(max_saving(inst), np.bincount(pj, weights=a[pi] * emax[pi, pj], minlength=B))
    best_lb = float(incumbent)
    if P == 0:
        return BoundResult(max(base, best_lb), max(base, best_lb), base, True, 0, 0, time.perf_counter() - t0, None)
    # columns: e_p (P), s_j (B), h_j (B); rows: capacity (S), demand (B), saving (B), then cuts
    o_s, o_h = P, P + B
    n = P + 2 * B
    cols_e = np.arange(P)
    A_rows = np.concatenate([pi, S + pj, S + B + pj, S + B + np.arange(B)])
    A_cols = np.concatenate([cols_e, cols_e, cols_e, o_s + np.arange(B)])
    A_vals = np.concatenate([lossf[pi, pj], np.ones(P), a[pi], -np.ones(B)])
    order = np.lexsort((A_rows, A_cols))
    A_rows, A_cols, A_vals = A_rows[order], A_cols[order], A_vals[order]
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, S + 2 * B
    cost = np.zeros(n)
    cost[o_h:] = 1.0
    lp.col_cost_ = cost
    lo0 = np.zeros(B)
    hi0 = smax.copy()
    lp.col_lower_ = np.concatenate([np.zeros(P), lo0, np.full(B, -highspy.kHighsInf)])
    lp.col_upper_ = np.concatenate([emax[pi, pj], hi0, sig.f(hi0)])
    lp.row_lower_ = np.concatenate([np.full(S + B, -highspy.kHighsInf), np.zeros(B)])
    lp.row_upper_ = np.concatenate([r, w, np.zeros(B)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.searchsorted(A_cols, np.arange(n + 1)).astype(np.int32)
    lp.a_matrix_.index_ = A_rows.astype(np.int32)
    lp.a_matrix_.value_ = A_vals
    lp.sense_ = highspy.ObjSense.kMaximize
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)
    n_fixed_rows = S + 2 * B
    # tangent pool per buyer (points on the concave part); a tangent at p is a valid cut at a
    # node iff p >= t(l_j) there (module docstring)
    pool: list[list[float]] = [[] for _ in range(B)]
    for j in range(B):
        if smax[j] > sig.c[j]:
            span = smax[j] - sig.c[j]
            pool[j] = list(sig.c[j] + span * np.array([1e-3, 1e-2, 0.05, 0.2, 0.5, 1.0]))
    best_e: FloatArray | None = None
    nodes = solves = 0
    scale = max(1.0, abs(base))
    tol = 1e-10 * scale

    polish_day = None
    if polish_incumbents:  # the kernel's local search on every LP point made feasible
        from prosumer_gym.envs.p2p_trading.clearing.savings import polish, problem_of

        polish_day = problem_of(inst)

    def lower_value(x: np.ndarray) -> tuple[float, FloatArray]:
        """The objective of the LP point ``x`` made feasible (pieces below ``mu`` dropped: 5.2e)."""
        e = np.zeros((S, B))
        e[pi, pj] = x[:P]
        e = _make_feasible(inst, e)
        if polish_day is not None:
            e = polish(inst, e, polish_day)
        return objective(inst, x_from_energy(inst, e)), e

    emax_p = emax[pi, pj]
    cur_fix: dict[int, int] = {}  # the pairs whose bounds the model currently has changed

    def set_pairs(fix: dict[int, int]) -> None:
        """Pair bounds of a node: ``fix[p] = 0`` no trade (5.2f), ``1`` at least ``mu`` (5.2e)."""
        ch = [p for p in cur_fix if fix.get(p) != cur_fix[p]] + [p for p in fix if p not in cur_fix]
        if not ch:
            return
        idx = np.array(ch, dtype=np.int32)
        k = np.array([fix.get(p, -1) for p in ch])
        h.changeColsBounds(idx.size, idx, np.where(k == 1, mu, 0.0), np.where(k == 0, 0.0, emax_p[idx]))
        cur_fix.clear()
        cur_fix.update(fix)

    def solve_node(lo: FloatArray, hi: FloatArray, t: FloatArray, fix: dict[int, int]) -> tuple[float, np.ndarray | None]:
        """The LP bound of the box ``[lo, hi]`` of the savings (envelope tangent points ``t``;
        cutting planes refine the envelope) with the pair fixings ``fix``, and its point;
        ``-inf`` and ``None`` if infeasible."""
        nonlocal solves
        set_pairs(fix)
        k = h.getNumRow() - n_fixed_rows
        if k:
            h.deleteRows(k, np.arange(n_fixed_rows, n_fixed_rows + k, dtype=np.int32))
        h.changeColsBounds(B, (o_s + np.arange(B)).astype(np.int32), lo, hi)
        flo, fhi = sig.f(lo), sig.f(hi)
        h.changeColsBounds(B, (o_h + np.arange(B)).astype(np.int32), np.full(B, -highspy.kHighsInf), fhi)
        chord = ~np.isfinite(t)
        cut_j, cut_p = [], []
        for j in range(B):
            if chord[j] or hi[j] <= lo[j]:
                continue
            pts = [p for p in pool[j] if t[j] <= p <= hi[j]]
            if t[j] > sig.c[j]:
                pts.append(float(t[j]))
            if hi[j] > t[j] and hi[j] > sig.c[j]:
                pts.append(float(hi[j]))
            cut_j += [j] * len(pts)
            cut_p += pts
        # chords: h_j - slope s_j <= f(l) - slope l
        cj = np.flatnonzero(chord & (hi > lo))
        slope = (fhi[cj] - flo[cj]) / (hi[cj] - lo[cj])
        rows_j = list(cj)
        rows_slope = list(slope)
        rows_icpt = list(flo[cj] - slope * lo[cj])
        if cut_j:
            jj = np.array(cut_j)
            pp = np.array(cut_p)
            ds = sig.df_gain(pp, jj)
            rows_j += list(jj)
            rows_slope += list(ds)
            rows_icpt += list(sig.f(pp, jj) - ds * pp)
        for rnd in range(cut_rounds + 1):
            if rows_j:
                _add_cuts(h, np.array(rows_j), np.array(rows_slope), np.array(rows_icpt), o_s, o_h)
            h.run()
            solves += 1
            st = h.getModelStatus()
            if st == highspy.HighsModelStatus.kInfeasible:
                return -np.inf, None
            if st != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError(f"certified_bound: HiGHS ended with {h.modelStatusToString(st)}")
            x = np.asarray(h.getSolution().col_value)
            val = float(h.getInfo().objective_function_value)
            s, hv = x[o_s:o_h], x[o_h:]
            # violated envelope cuts: h_j above phi_j at a point s_j on the concave part; stop
            # when together they over-state the bound by less than a tenth of the target gap
            over = np.where((s > t + 1e-12) & np.isfinite(t), hv - sig.f(s), 0.0)
            viol = np.flatnonzero(over > tol)
            if rnd == cut_rounds or viol.size == 0 or over[viol].sum() <= 0.1 * rel_gap * max(val - base, 0.0):
                return val, x
            ds = sig.df_gain(s[viol], viol)
            for j, p in zip(viol, s[viol]):
                pool[j].append(float(p))
            rows_j = list(viol)
            rows_slope = list(ds)
            rows_icpt = list(sig.f(s[viol], viol) - ds * s[viol])
        return val, x  # pragma: no cover

    # best-first search over boxes of the savings
    t0_pts = np.array([sig.tangent_point(j, lo0[j], hi0[j]) for j in range(B)])
    ub0, x0 = solve_node(lo0, hi0, t0_pts, {})
    nodes = 1
    heap: list[tuple[float, int, FloatArray, FloatArray, FloatArray, dict[int, int], np.ndarray]] = []
    tick = 0
    if x0 is not None:
        heapq.heappush(heap, (-ub0, tick, lo0, hi0, t0_pts, {}, x0))
    # bounds of the nodes closed without children: leaves (feasible, exact) and pruned ones
    # (within the target gap of the incumbent); the final bound covers them too
    leaf_ub = -np.inf
    while heap:
        ub_open = -heap[0][0]
        glob = max(ub_open, leaf_ub)
        if glob - best_lb <= rel_gap * max(glob - base, 0.0) + tol:
            break
        if nodes >= node_limit or time.perf_counter() - t0 > deadline:
            break
        negub, _, lo, hi, t, fix, x = heapq.heappop(heap)
        ub = -negub
        if ub <= best_lb + rel_gap * max(ub - base, 0.0) + tol:
            leaf_ub = max(leaf_ub, ub)
            continue
        val, e = lower_value(x)
        if val > best_lb:
            best_lb, best_e = val, e
        s, hv = x[o_s:o_h], x[o_h:]
        over = hv - sig.f(s)
        inner = (s > lo + 1e-9 * (hi - lo + 1e-12)) & (s < hi - 1e-9 * (hi - lo + 1e-12))
        over = np.where(inner, over, -np.inf)
        j = int(np.argmax(over))
        children = []
        if np.isfinite(over[j]) and over[j] > tol:  # branch on buyer j's saving at the LP point
            # the split point pulled halfway from the LP point towards the box's middle (as
            # spatial branch and bound codes do, e.g. SCIP's branching/midpull): splitting at
            # the point itself (Udell & Boyd) left 8 of 12 hard 15x15-30x30 real days
            # unproven at 5,000 nodes, halfway 4 (docs/p2p_trading_clearing.md)
            cut = 0.5 * s[j] + 0.25 * (lo[j] + hi[j])
            for side in (0, 1):
                clo, chi, ct = lo.copy(), hi.copy(), t.copy()
                if side == 0:
                    chi[j] = cut
                else:
                    clo[j] = cut
                ct[j] = sig.tangent_point(j, clo[j], chi[j])
                children.append((clo, chi, ct, fix))
        else:
            # the envelope is exact at the LP point: only the minimum trade (5.2e) is relaxed;
            # branch on the pair whose piece is furthest inside (0, mu): no trade, or >= mu
            ep = x[:P]
            small = np.flatnonzero((ep > 1e-9 * mu) & (ep < mu * (1 - 1e-9)))
            if small.size == 0:
                leaf_ub = max(leaf_ub, ub)  # feasible and exact up to the cut tolerance
                continue
            q = int(small[np.argmin(np.abs(ep[small] - 0.5 * mu))])
            children = [(lo, hi, t, {**fix, q: 0}), (lo, hi, t, {**fix, q: 1})]
        for clo, chi, ct, cfix in children:
            cub, cx = solve_node(clo, chi, ct, cfix)
            nodes += 1
            if cx is None:
                continue
            cub = min(cub, ub)  # a child's bound never exceeds its parent's
            if cub > best_lb:  # its LP point made feasible may be a better clearing: take it now
                cval, ce = lower_value(cx)
                if cval > best_lb:
                    best_lb, best_e = cval, ce
            if cub > best_lb + rel_gap * max(cub - base, 0.0) + tol:
                tick += 1
                heapq.heappush(heap, (-cub, tick, clo, chi, ct, cfix, cx))
            else:
                leaf_ub = max(leaf_ub, cub)
    glob = max(-heap[0][0] if heap else -np.inf, leaf_ub)
    glob = max(glob, best_lb) if np.isfinite(glob) else max(best_lb, base)
    proven = glob - best_lb <= rel_gap * max(glob - base, 0.0) + tol
    better = best_e if (best_e is not None and best_lb > incumbent) else None
    return BoundResult(float(glob), float(best_lb), float(base), bool(proven), nodes, solves,
                       time.perf_counter() - t0, better)


def make_bnb(S: int, B: int, **options: Any) -> Clearer:
    """Near-exact clearing (``"bnb"``): the default ``savings`` kernel with its LP phase gives an
    incumbent, then :func:`certified_bound`'s branch and bound improves it until it is within
    ``rel_gap`` (default 1e-5) of the attainable gain of a certified upper bound, or
    ``node_limit`` nodes (default 5,000) are spent; ``time_limit`` (s, default none) stops it
    earlier at the cost of determinism across machines. Prices ``rho_i``. ``stats``:
    ``upper_bound``, ``upper_bound_proven`` (the gap closed), ``no_trade_value``,
    ``gain_lost_share``, ``nodes``, ``lp_solves``, ``incumbent`` (``"savings"`` or ``"bnb"``).
    ``polish`` (default False): the kernel's local search on every clearing the search finds
    (better with a small ``node_limit``; slower to prove, since each node costs more).
    Tens of ms per day at 15x15 and 20x20, up to seconds at 30x30 (docs/p2p_trading_clearing.md):
    a reference and an evaluation tool, far slower than the default."""
    from prosumer_gym.envs.p2p_trading.clearing.savings import make_savings

    spec = {"rel_gap": (lambda v: is_num(v) and 0 < v < 1, "a number in (0, 1)"),
            "node_limit": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
            "time_limit": (lambda v: v is None or (is_num(v) and v > 0), "None or a number of seconds > 0"),
            "polish": (lambda v: isinstance(v, (bool, np.bool_)), "True or False")}
    check_options("bnb", options, spec)
    polish_inc = bool(options.get("polish", False))
    rel_gap = float(options.get("rel_gap", 1e-5))
    node_limit = int(options.get("node_limit", 5_000))
    time_limit = options.get("time_limit")
    warm = make_savings(S, B, lp_rounds=20)

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        check_size(inst, S, B, "bnb")
        al = warm(inst, rng)
        res = certified_bound(inst, al.objective, rel_gap=rel_gap, node_limit=node_limit, time_limit=time_limit,
                              polish_incumbents=polish_inc)
        x = al.x if res.energy is None else x_from_energy(inst, res.energy)
        stats = {"nodes": res.nodes, "lp_solves": res.lp_solves, "incumbent": "savings" if res.energy is None else "bnb"}
        out = finish(inst, x, seller_price_matrix(inst), "bnb", t0, stats)
        stats.update(certificate(res, out.objective))  # needs the objective finish() evaluates
        return out

    return clearer


def _add_cuts(h, j: np.ndarray, slope: np.ndarray, icpt: np.ndarray, o_s: int, o_h: int) -> None:
    """Rows ``h_j - slope s_j <= icpt`` (supporting lines of buyer ``j``'s envelope)."""
    import highspy

    k = j.size
    idx = np.empty(2 * k, dtype=np.int32)
    idx[0::2] = o_s + j
    idx[1::2] = o_h + j
    val = np.empty(2 * k)
    val[0::2] = -slope
    val[1::2] = 1.0
    h.addRows(k, np.full(k, -highspy.kHighsInf), icpt.astype(float), 2 * k, np.arange(0, 2 * k, 2, dtype=np.int32),
              idx, val)
