"""Reference optimum of a piecewise-linear model of Eq. 5.2, solved by HiGHS (``"milp"``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from prosumer_gym.core.milp import SparsePattern, adaptive_breakpoints, chord_slopes, solve_milp
from prosumer_gym.core.prospect import pt_value
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
from prosumer_gym.envs.p2p_trading.market import Allocation, FloatArray, MarketInstance, objective

__all__ = ["make_milp", "max_saving", "no_trade_value", "gain_lost_share"]


def max_saving(inst: MarketInstance, a: FloatArray | None = None) -> FloatArray:
    """Largest saving each buyer could get alone, ``s_j^max`` (B,).

    Fractional knapsack: fill ``w_j`` from the allowed sellers in decreasing saving per kWh
    ``a_ij = rho_gs - p_ij``, each up to ``r_i / (1 + l_ij)``. An upper bound on ``s_j`` in
    any feasible allocation (Eq. 5.2a-c), used to size the PWL models.
    """
    S, B = inst.n_sellers, inst.n_buyers
    if a is None:
        a = np.broadcast_to((inst.grid_sell_price - inst.seller_price)[:, None], (S, B))
    cap = np.where(inst.allowed & (a > 0), inst.surplus_kwh[:, None] / (1.0 + inst.loss), 0.0)
    order = np.argsort(-a, axis=0, kind="stable")
    cap_s = np.take_along_axis(cap, order, axis=0)
    a_s = np.take_along_axis(a, order, axis=0)
    before = np.cumsum(cap_s, axis=0) - cap_s
    take = np.clip(np.minimum(cap_s, inst.demand_kwh[None, :] - before), 0.0, None)
    return (take * a_s).sum(axis=0)


def no_trade_value(inst: MarketInstance) -> float:
    """Objective of clearing nothing: every buyer at zero saving, ``sum_j v(-c_j)`` (Eq. 5.1)."""
    kp, kn, zp, zn = inst.pt_args()
    return float(np.sum(pt_value(-inst.ref_gap, kp, kn, zp, zn)))


def gain_lost_share(value: float, upper_bound: float, base: float) -> float:
    """Share of the attainable gain lost, ``(UB - value) / (UB - base)``.

    ``base`` is :func:`no_trade_value`, ``UB`` a certified upper bound on the optimum (e.g.
    ``stats["upper_bound"]`` of ``milp``). 0 when nothing can be gained (``UB <= base``);
    ``nan`` when the bound is not finite. Unlike the % of the objective, it does not hide
    a loss behind the fixed loss of buyers who get nothing.
    """
    if not np.isfinite(upper_bound):
        return float("nan")
    span = upper_bound - base
    if span <= 1e-12 * max(1.0, abs(upper_bound)):
        return 0.0
    return float((upper_bound - value) / span)


def _make_feasible(inst: MarketInstance, e: FloatArray) -> FloatArray:
    """Project an almost-feasible energy matrix (e.g. a MILP solution with solver tolerances)
    onto Eqs. 5.2a-g: zero forbidden pairs and negatives, snap pieces within 1e-6 (relative)
    below ``mu`` up to ``mu`` and drop the other pieces below ``mu``, then scale rows and
    columns down where capacity or demand are exceeded (which moves pieces by ~1e-9)."""
    e = np.where(inst.allowed, np.maximum(np.asarray(e, dtype=np.float64), 0.0), 0.0)
    mu = inst.min_trade_kwh
    small = (e > 0) & (e < mu)
    e = np.where(small & (e >= mu * (1 - 1e-6)), mu, np.where(small, 0.0, e))
    w = inst.demand_kwh
    e = np.minimum(e, w[None, :])
    load = ((1.0 + inst.loss) * e).sum(axis=1)
    over = load > inst.surplus_kwh
    if over.any():
        e[over] *= (inst.surplus_kwh[over] / load[over])[:, None]
    tot = e.sum(axis=0)
    over = tot > w
    if over.any():
        e[:, over] *= (w[over] / tot[over])[None, :]
    return e


def make_milp(S: int, B: int, **options: Any) -> Clearer:
    """Reference optimum of a piecewise-linear (PWL) model of Eq. 5.2, solved by HiGHS.

    Variables (all pairs, forbidden ones get upper bound 0 so the structure is fixed for a
    market size): ``e_ij`` kWh and binaries ``z_ij`` (Eqs. 5.2e-f), per buyer the saving
    split ``s_j = sum_k d_jk + u_j``: increments ``d_jk`` over ``K = n_breakpoints``
    segments of the *convex* loss part ``[0, min(c_j, s_j^max)]`` with binaries ``y_jk``
    (incremental formulation), the *concave* gain part ``u_j in [0, s_j^max - c_j]``
    allowed only when the convex part is full (``u_j <= U_j y_jK``) and valued by
    ``t_j <= `` ``n_tangents`` tangent cuts of ``k+ u^zeta+``. Objective: ``sum_j`` (chord
    interpolation of the convex part + ``t_j``), i.e. chords on the convex part and tangents
    on the concave part: an **over-estimate** of the PT value when ``zeta+-  <= 1``. Hence
    HiGHS' bound is a valid upper bound on the true optimum (``stats["upper_bound"]``), and
    the true objective of the returned allocation (``Allocation.objective``, re-evaluated
    with the exact PT function) is a lower bound.

    Options: ``time_limit`` (s, default 10), ``n_breakpoints`` (default 16),
    ``n_tangents`` (default 8), ``mip_rel_gap`` (default 1e-6). If HiGHS finds no feasible
    point within the time limit the empty allocation is returned (``stats["status"]``).
    """
    spec = {
        "time_limit": (lambda v: is_num(v) and v > 0, "a number of seconds > 0"),
        "n_breakpoints": (lambda v: is_int(v) and 1 <= v <= 256, "an integer in [1, 256]"),
        "n_tangents": (lambda v: is_int(v) and 1 <= v <= 256, "an integer in [1, 256]"),
        "mip_rel_gap": (lambda v: is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
    }
    check_options("milp", options, spec)
    time_limit = float(options.get("time_limit", 10.0))
    K = int(options.get("n_breakpoints", 16))
    M = int(options.get("n_tangents", 8))
    gap = float(options.get("mip_rel_gap", 1e-6))
    P = S * B
    # variable layout
    o_e, o_z, o_d = 0, P, 2 * P
    o_y = o_d + B * K
    o_u = o_y + B * K
    o_t = o_u + B
    n = o_t + B
    pi, pj = np.divmod(np.arange(P), B)  # pair p = i * B + j
    pat = SparsePattern(n)
    r_cap, r_dem = pat.add_rows(S), pat.add_rows(B)
    r_ub, r_mu = pat.add_rows(P), pat.add_rows(P)
    r_sav = pat.add_rows(B)
    r_in1, r_in2 = pat.add_rows(B * K), pat.add_rows(B * (K - 1))
    r_conc, r_tan, r_tcap = pat.add_rows(B), pat.add_rows(B * M), pat.add_rows(B)
    ar = np.arange
    pat.add("cap", r_cap[pi], o_e + ar(P))
    pat.add("dem", r_dem[pj], o_e + ar(P))
    pat.add("ub_e", r_ub, o_e + ar(P))
    pat.add("ub_z", r_ub, o_z + ar(P))
    pat.add("mu_e", r_mu, o_e + ar(P))
    pat.add("mu_z", r_mu, o_z + ar(P))
    pat.add("sav_e", r_sav[pj], o_e + ar(P))
    jk = ar(B * K)
    pat.add("sav_d", r_sav[jk // K], o_d + jk)
    pat.add("sav_u", r_sav, o_u + ar(B))
    pat.add("in1_d", r_in1, o_d + jk)
    pat.add("in1_y", r_in1, o_y + jk)
    jk1 = (ar(B)[:, None] * K + ar(K - 1)[None, :]).ravel()  # (j, k) for k < K-1
    pat.add("in2_d", r_in2, o_d + jk1 + 1)
    pat.add("in2_y", r_in2, o_y + jk1)
    pat.add("conc_u", r_conc, o_u + ar(B))
    pat.add("conc_y", r_conc, o_y + ar(B) * K + K - 1)
    jm = ar(B * M)
    pat.add("tan_t", r_tan, o_t + jm // M)
    pat.add("tan_u", r_tan, o_u + jm // M)
    pat.add("tcap_t", r_tcap, o_t + ar(B))
    pat.add("tcap_y", r_tcap, o_y + ar(B) * K + K - 1)
    pat.freeze()
    data = pat.new_data()
    # constant coefficients
    data[pat["dem"]] = 1.0
    data[pat["ub_e"]] = 1.0
    data[pat["mu_e"]] = 1.0
    data[pat["sav_d"]] = -1.0
    data[pat["sav_u"]] = -1.0
    data[pat["in1_d"]] = 1.0
    data[pat["in2_d"]] = 1.0
    data[pat["conc_u"]] = 1.0
    data[pat["tan_t"]] = 1.0
    data[pat["tcap_t"]] = 1.0
    integrality = np.zeros(n, dtype=np.int64)
    integrality[o_z:o_d] = 1
    integrality[o_y:o_u] = 1
    row_lb = np.full(pat.n_rows, -np.inf)
    row_ub = np.full(pat.n_rows, np.inf)
    row_lb[r_mu] = 0.0
    row_ub[r_ub] = 0.0
    row_lb[r_sav] = row_ub[r_sav] = 0.0
    row_lb[r_in1] = 0.0
    row_ub[r_in2] = 0.0
    row_ub[r_conc] = 0.0
    row_ub[r_tcap] = 0.0
    tan_frac = np.logspace(-4, 0, M) if M > 1 else np.ones(1)

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        check_size(inst, S, B, "milp")
        if P == 0:
            return finish(inst, np.zeros((S, B)), seller_price_matrix(inst), "milp", t0,
                           {"status": "optimal", "proven_optimal": True, "upper_bound": objective(inst, np.zeros((S, B))),
                            "upper_bound_valid": True})
        w, r, mu = inst.demand_kwh, inst.surplus_kwh, inst.min_trade_kwh
        lossf = 1.0 + inst.loss
        a = inst.grid_sell_price - inst.seller_price
        kp, kn, zp, zn = (np.broadcast_to(v, (B,)) for v in inst.pt_args())
        c = inst.ref_gap
        smax = max_saving(inst)
        C = np.minimum(c, smax)
        U = np.maximum(smax - c, 0.0)

        def f_loss(u: FloatArray) -> FloatArray:  # PT value along the convex part, u in [0, C_j]
            return pt_value(u - c[:, None], kp[:, None], kn[:, None], zp[:, None], zn[:, None])

        bp = adaptive_breakpoints(f_loss, np.zeros(B), C, K)
        L, slope = chord_slopes(bp, f_loss(bp))
        tp = np.maximum(U[:, None] * tan_frac[None, :], 1e-12)
        t_slope = kp[:, None] * zp[:, None] * tp ** (zp[:, None] - 1.0)
        t_icpt = kp[:, None] * tp ** zp[:, None] - t_slope * tp
        t_slope = np.where(U[:, None] > 0, t_slope, 0.0)
        t_icpt = np.where(U[:, None] > 0, t_icpt, 0.0)
        t_cap = kp * U ** zp
        base = no_trade_value(inst)  # every buyer at zero saving

        # per-day coefficients
        emax = np.where(inst.allowed & (w[None, :] >= mu), np.minimum(w[None, :], r[:, None] / lossf), 0.0)
        emax = np.where(emax >= mu, emax, 0.0).ravel()
        data[pat["cap"]] = lossf.ravel()
        data[pat["ub_z"]] = -emax
        data[pat["mu_z"]] = -mu
        data[pat["sav_e"]] = np.repeat(a, B)
        data[pat["in1_y"]] = -L.ravel()
        data[pat["in2_y"]] = -L[:, 1:].ravel()
        data[pat["conc_y"]] = -U
        data[pat["tan_u"]] = -t_slope.ravel()
        data[pat["tcap_y"]] = -t_cap
        A = pat.matrix(data)
        row_ub[r_cap] = r
        row_ub[r_dem] = w
        row_ub[r_tan] = t_icpt.ravel()
        lb = np.zeros(n)
        ub = np.zeros(n)
        ub[o_e:o_z] = emax
        ub[o_z:o_d] = (emax > 0).astype(float)
        ub[o_d:o_y] = L.ravel()
        lb[o_y:o_u] = (L.ravel() <= 0).astype(float)  # empty segments count as full
        ub[o_y:o_u] = 1.0
        ub[o_u:o_t] = U
        ub[o_t:n] = t_cap
        cost = np.zeros(n)
        cost[o_d:o_y] = slope.ravel()
        cost[o_t:n] = 1.0
        res = solve_milp(cost, A, row_lb, row_ub, lb, ub, integrality, maximize=True,
                         time_limit=time_limit, mip_rel_gap=gap)
        valid = bool(np.all(zn <= 1.0) and np.all(zp <= 1.0))
        stats = {
            "status": res.status,
            "proven_optimal": res.proven_optimal,
            "mip_gap": res.mip_gap,
            "model_objective": res.objective + base if res.success else float("nan"),
            "upper_bound": res.bound + base if (valid and np.isfinite(res.bound)) else float("nan"),
            "upper_bound_valid": valid,
            "no_trade_value": base,
            "solver_seconds": res.seconds,
            "n_breakpoints": K,
            "n_tangents": M,
        }
        if res.success:
            e = _make_feasible(inst, res.x[o_e:o_z].reshape(S, B))
        else:
            e = np.zeros((S, B))
        return finish(inst, x_from_energy(inst, e), seller_price_matrix(inst), "milp", t0, stats)

    return clearer
