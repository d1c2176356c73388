"""EnergyCollective-v0 community market: problem (1)-(5) of the slides, its distributed ADMM
and centralised QP oracle, and the allocation of the grid cost among players.

Source: slides ``002`` (energy collectives; Moret & Pinson, IEEE TPWRS 2019).

Community market (problem (1)-(5) of the slides, cost convention)
------------------------------------------------------------------
::

    min   sum_i f_i(p_i) + g(q)                                      (1)
    s.t.  sum_i p_i + q = 0               (community price lambda)   (2)
          lo_i <= p_i <= hi_i                                        (3)-(4)
          -Q_exp <= q <= Q_imp            (grid connection)          (5)

``q`` is the community's net import (the slides write (2) with ``q_ext`` = export and
``-g``; we use ``q`` = import and ``+g`` so that ``g`` is a cost for every kind):

``g = "market"``       ``g(q) = lambda_imp q^+ - lambda_exp q^-`` (market-driven; the
                       retail mark-up makes ``lambda_imp > lambda_exp``),
``g = "autonomy_l1"``  market cost ``+ theta |q|``,
``g = "autonomy_l2"``  market cost ``+ theta/2 q^2`` (for a scalar ``q`` the 2-norm equals
                       the 1-norm; we use the squared norm, which penalises large exchanges
                       more and is smooth).

:func:`solve_community_admm` is the distributed ADMM of the slides (players' x-updates,
the community manager's update of ``q`` and of the price, primal/dual stopping; the core
iteration is :func:`prosumer_gym.core.admm.exchange_admm`, vectorised over players and
over the market time units); :func:`solve_community_qp` is the centralised QP oracle.
:func:`allocate_grid_cost` splits the community's grid bill among players with the rules
of the slides (none / equal / proportional / "worst" player); :func:`settle_community` settles set-points.
Business As Usual (each player alone facing the retail import price and the wholesale
export price) is in :mod:`prosumer_gym.envs.energy_collective.bau`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from prosumer_gym.core.admm import exchange_admm
from prosumer_gym.core.qp import QPInfeasibleError, solve_qp
from prosumer_gym.envs.energy_collective.bau import bau_dispatch
from prosumer_gym.envs.energy_collective.players import Community

__all__ = [
    "ALLOCATIONS",
    "ALLOCATION_MODES",
    "grid_bill",
    "community_g",
    "manager_prox",
    "CommunityDispatch",
    "community_objective",
    "admm_penalties",
    "solve_community_admm",
    "solve_community_qp",
    "solve_community_exact",
    "allocate_grid_cost",
    "settle_community",
]

ALLOCATIONS = ("none", "equal", "proportional", "worst")
#: ``allocation_mode`` of the env: the rule only splits the bill of the cooperative dispatch
#: (``"settlement"``), or it enters every member's objective and the dispatch is the members'
#: Nash equilibrium (``"in_dispatch"``, :mod:`prosumer_gym.envs.energy_collective.noncoop`).
ALLOCATION_MODES = ("settlement", "in_dispatch")


def grid_bill(comm: Community, q: ArrayLike) -> NDArray[np.float64]:
    """Monetary grid cost of the community, ``lambda_imp q^+ - lambda_exp q^-`` (EUR), (T,)."""
    q = np.asarray(q, dtype=np.float64)
    return comm.import_price * np.maximum(q, 0.0) - comm.export_price * np.maximum(-q, 0.0)


def community_g(comm: Community, q: ArrayLike) -> NDArray[np.float64]:
    """Perceived ``g(q)`` of problem (1): the grid bill plus the autonomy term, (T,)."""
    q = np.asarray(q, dtype=np.float64)
    g = grid_bill(comm, q)
    if comm.g_kind == "autonomy_l1":
        g = g + comm.autonomy_weight * np.abs(q)
    elif comm.g_kind == "autonomy_l2":
        g = g + 0.5 * comm.autonomy_weight * q * q
    return g


def _theta(comm: Community) -> tuple[float, float]:
    th = float(comm.autonomy_weight)
    return (th if comm.g_kind == "autonomy_l1" else 0.0), (th if comm.g_kind == "autonomy_l2" else 0.0)


def manager_prox(comm: Community):
    """The community manager's update: ``argmin_q g(q) + rho/2 (q - v)^2`` over
    ``[-Q_exp, Q_imp]`` (closed form, vectorised over slots)."""
    th1, th2 = _theta(comm)
    imp, exp_ = comm.import_price, comm.export_price
    qmin, qmax = -comm.export_capacity, comm.import_capacity

    def prox(v: NDArray[np.float64], rho: NDArray[np.float64], active: NDArray[np.bool_]) -> NDArray[np.float64]:
        q_pos = (rho * v - imp - th1) / (rho + th2)
        q_neg = (rho * v - exp_ + th1) / (rho + th2)
        q = np.where(q_pos > 0, q_pos, np.where(q_neg < 0, q_neg, 0.0))
        return np.clip(q, qmin, qmax)

    return prox


@dataclass(frozen=True)
class CommunityDispatch:
    """Solution of the community market over ``T`` slots.

    ``p`` (T, N) kWh, ``q`` (T,) net import kWh, ``price`` (T,) community price EUR/kWh
    (dual of (2): the marginal value of energy in the community), ``objective`` (T,) value
    of (1) in EUR, ``iterations`` / residuals / ``converged`` per slot (ADMM; the QP
    oracle reports its interior-point iterations), ``method``.
    """

    p: NDArray[np.float64]
    q: NDArray[np.float64]
    price: NDArray[np.float64]
    objective: NDArray[np.float64]
    iterations: NDArray[np.int64]
    primal_residual: NDArray[np.float64]
    dual_residual: NDArray[np.float64]
    converged: NDArray[np.bool_]
    method: str
    rho: NDArray[np.float64] | None = None
    history: tuple[NDArray[np.float64], NDArray[np.float64]] | None = field(default=None, repr=False)


def community_objective(comm: Community, p: ArrayLike, q: ArrayLike) -> NDArray[np.float64]:
    """Objective (1) per slot: ``sum_i f_i(p_i) + g(q)`` (EUR), (T,)."""
    return comm.player_cost(p).sum(axis=1) + community_g(comm, q)


def admm_penalties(comm: Community, floor: float = 0.1, manager: float = 1.0) -> NDArray[np.float64]:
    """Per-agent ADMM penalties (EUR/kWh^2), shape (T, N + 1), last column the manager.

    Player ``i``: ``max(a_i, floor * a_med)``, where ``a_med`` is the slot's median
    curvature of the players with a decision (each player's x-update is damped in
    proportion to its own cost curvature: a diagonal scaling of the augmented
    Lagrangian); players without a decision (``lo == hi``) are frozen (``inf``). Manager:
    ``max(theta_2, manager / sum_i 1/rho_i)``, i.e. as stiff as the players together
    (``theta_2`` the curvature of an ``autonomy_l2`` ``g``). Tuned on the shipped data
    and random communities (see the benchmark and docs).
    """
    a = np.where(comm.fixed | (comm.a <= 0), np.nan, comm.a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(a, axis=1)
    med = np.where(np.isfinite(med), med, 0.1)[:, None]
    players = np.where(comm.fixed, np.inf, np.maximum(comm.a, floor * med))
    agg = np.sum(1.0 / players, axis=1, keepdims=True)
    _, th2 = _theta(comm)
    mgr = np.maximum(th2, manager / np.where(agg > 0, agg, 1.0 / med))
    return np.concatenate([players, mgr], axis=1)


def solve_community_admm(
    comm: Community,
    rho: float | ArrayLike = 1.0,
    penalty: str = "curvature",
    eps_abs: float = 1e-7,
    eps_rel: float = 1e-7,
    max_iter: int = 20_000,
    adaptive_rho: bool = True,
    warm_start: CommunityDispatch | None = None,
    record_history: bool = False,
) -> CommunityDispatch:
    """Distributed ADMM for problem (1)-(5), every slot of ``comm`` at once.

    x-update: every player solves its own problem ``min f_i(p) + lambda p + rho_i/2 (p -
    ...)^2`` on its bounds (closed form, vectorised over players and slots); manager
    update: the import ``q`` (prox of ``g``, closed form) and the community price
    ``lambda``; stopping on the primal and dual residuals (see
    :mod:`prosumer_gym.core.admm`).

    ``penalty="curvature"`` (default) uses per-agent penalties ``rho * rho_i`` from
    :func:`admm_penalties`; ``penalty="uniform"`` the textbook single ``rho`` (EUR/kWh^2)
    for every agent. Players start at their reference set-points and the price at the
    mid-point of the import and export prices unless ``warm_start`` is given.
    """
    if penalty not in ("curvature", "uniform"):
        raise ValueError(f"penalty must be 'curvature' or 'uniform', got {penalty!r}")
    weights = admm_penalties(comm) if penalty == "curvature" else None
    if warm_start is not None:
        x0, price0 = warm_start.p, warm_start.price
    else:
        x0, price0 = np.clip(comm.r, comm.lo, comm.hi), 0.5 * (comm.import_price + comm.export_price)
    res = exchange_admm(
        comm.a, comm.b, comm.lo, comm.hi, manager_prox(comm), rho=rho, rho_weights=weights, eps_abs=eps_abs,
        eps_rel=eps_rel, max_iter=max_iter, x0=x0, price0=price0, adaptive_rho=adaptive_rho,
        record_history=record_history,
    )
    return CommunityDispatch(
        p=res.x, q=res.z, price=res.price, objective=community_objective(comm, res.x, res.z),
        iterations=res.iterations, primal_residual=res.primal_residual, dual_residual=res.dual_residual,
        converged=res.converged, method="admm", rho=res.rho, history=res.history,
    )


def _manager_range(comm: Community, lam: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The manager's best responses ``argmin_q g(q) - lam q`` over ``[-Q_exp, Q_imp]`` at
    prices ``lam`` (T,): ``(lowest, highest)`` (a set at the kinks of a piecewise-linear ``g``)."""
    th1, th2 = _theta(comm)
    imp, exp_ = comm.import_price + th1, comm.export_price - th1
    qmin, qmax = -comm.export_capacity, comm.import_capacity
    if th2 > 0:  # autonomy_l2: continuous, slope 1/theta_2 outside [exp, imp]
        with np.errstate(invalid="ignore"):
            q = np.where(lam > imp, (lam - imp) / th2, np.where(lam < exp_, (lam - exp_) / th2, 0.0))
        q = np.clip(q, qmin, qmax)
        return q, q
    high = np.where(lam >= imp, qmax, np.where(lam >= exp_, 0.0, qmin))
    low = np.where(lam > imp, qmax, np.where(lam > exp_, 0.0, qmin))
    return low, high


def solve_community_exact(comm: Community) -> CommunityDispatch:
    """Problem (1)-(5) solved exactly through its dual, every slot at once (closed form).

    The optimum is where the community price ``lambda`` (the multiplier of (2), the ADMM's
    limit) balances the players' best responses and the manager's (the ADMM x-update and
    manager update at convergence): ``sum_i p_i(lambda) + q(lambda) = 0`` with
    ``p_i(lambda) = clip(r_i + (lambda - m_i)/a_i, lo_i, hi_i)`` and ``q(lambda) =
    argmin g(q) - lambda q`` on (5). The excess ``E(lambda)`` is nondecreasing and piecewise
    affine between the breakpoints (players reaching a bound, the kinks of ``g``): a binary
    search over the sorted breakpoints (vectorised over slots) finds the segment, where
    ``E`` is affine and ``lambda`` follows in closed form; at a jump (a kink of ``g``, a
    linear-cost player) the jumping agents take the remainder (the manager first, then the
    linear-cost players in proportion to their ranges). A flat solution interval (every
    player at a bound) gets its lowest price. ``q = -sum_i p_i`` exactly. Players without a
    decision stay at ``clip(r, lo, hi)`` (as in the ADMM). ``iterations`` = 0,
    ``primal_residual`` = ``|sum p + q|`` (0), ``dual_residual`` = 0, ``converged`` True.
    """
    a, m, r, lo, hi = comm.a, comm.m, comm.r, comm.lo, comm.hi
    T, N = a.shape
    fixed = comm.fixed
    cont = ~fixed & (a > 0)
    lin = ~fixed & (a <= 0)
    p_fixed = np.clip(r, lo, hi)
    a_safe = np.where(cont, a, 1.0)
    bp_lo = np.where(cont, m + a * (lo - r), np.where(lin, m, np.inf))  # price where p_i leaves lo
    bp_hi = np.where(cont, m + a * (hi - r), np.inf)  # price where p_i reaches hi
    th1, th2 = _theta(comm)
    mgr = [comm.import_price + th1, comm.export_price - th1]
    if th2 > 0:
        mgr += [comm.import_price + th2 * comm.import_capacity, comm.export_price - th2 * comm.export_capacity]
    bps = np.concatenate([bp_lo, bp_hi, np.stack(mgr, axis=1)], axis=1)
    bps = np.where(np.isfinite(bps), bps, np.inf)
    bps.sort(axis=1)
    n_fin = np.isfinite(bps).sum(axis=1)
    rows = np.arange(T)

    any_lin = bool(lin.any())
    # the search's excess: players without a decision enter as constants (r' = p_fixed, 1/a' = 0)
    r_s, m_s = np.where(cont, r, p_fixed), np.where(cont, m, 0.0)
    inv_a = np.where(cont, 1.0 / a_safe, 0.0)

    def players(lam: NDArray[np.float64], high: bool) -> NDArray[np.float64]:
        lam2 = lam[:, None]
        p_c = np.clip(r + (lam2 - m) / a_safe, lo, hi)
        p_l = np.where(lam2 > m, hi, np.where(lam2 < m, lo, hi if high else lo))
        return np.where(cont, p_c, np.where(lin, p_l, p_fixed))

    def excess(lam: NDArray[np.float64], high: bool) -> NDArray[np.float64]:
        q_lo, q_hi = _manager_range(comm, lam)
        if any_lin:
            tot = players(lam, high).sum(axis=1)
        else:
            tot = np.clip(r_s + (lam[:, None] - m_s) * inv_a, lo, hi).sum(axis=1)
        return tot + (q_hi if high else q_lo)

    # smallest j with E_high(bps[j]) >= 0 (j = n_fin: beyond the last breakpoint)
    left = np.zeros(T, dtype=np.int64)
    right = n_fin.copy()
    while np.any(left < right):
        mid = (left + right) // 2
        go = left < right
        lam = bps[rows, np.minimum(mid, bps.shape[1] - 1)]
        ok = excess(np.where(go & np.isfinite(lam), lam, 0.0), True) >= 0
        right = np.where(go & ok, mid, right)
        left = np.where(go & ~ok, mid + 1, left)
    j = left
    b_j = np.where(j < n_fin, bps[rows, np.minimum(j, bps.shape[1] - 1)], np.inf)
    b_prev = np.where(j > 0, bps[rows, np.maximum(j - 1, 0)], -np.inf)
    at_bp = np.isfinite(b_j) & (excess(np.where(np.isfinite(b_j), b_j, 0.0), False) <= 0)
    # inside the segment (b_prev, b_j): E is affine; probe it at an interior point
    probe = np.where(np.isfinite(b_prev) & np.isfinite(b_j), 0.5 * (b_prev + b_j),
                     np.where(np.isfinite(b_j), b_j - 1.0, b_prev + 1.0))
    e_probe = excess(probe, True)
    pr2 = probe[:, None]
    slope = np.sum(np.where(cont & (bp_lo < pr2) & (pr2 < bp_hi), 1.0 / a_safe, 0.0), axis=1)
    if th2 > 0:
        q_probe = _manager_range(comm, probe)[0]
        outside = (probe > mgr[0]) | (probe < mgr[1])
        slope = slope + np.where(outside & (q_probe > -comm.export_capacity) & (q_probe < comm.import_capacity),
                                 1.0 / th2, 0.0)
    if np.any(~at_bp & ~(slope > 0)):
        t = int(np.flatnonzero(~at_bp & ~(slope > 0))[0])
        raise ValueError(f"community problem infeasible at slot {t}: no price balances the players and the grid")
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(at_bp, b_j, probe - e_probe / slope)
    # dispatch at lam; jumping agents (manager at a kink, linear players with m = lam) share the rest
    lam2 = lam[:, None]
    jump = lin & (m == lam2)
    p = np.where(jump, 0.0, players(lam, True))
    rest = -p.sum(axis=1)
    q_lo, q_hi = _manager_range(comm, lam)
    j_lo = np.sum(np.where(jump, lo, 0.0), axis=1)
    j_w = np.sum(np.where(jump, hi - lo, 0.0), axis=1)
    q = np.clip(rest - j_lo, q_lo, q_hi)
    w = np.clip(np.divide(rest - q - j_lo, j_w, out=np.zeros(T), where=j_w > 0), 0.0, 1.0)
    p = np.where(jump, lo + w[:, None] * (hi - lo), p)
    q = -p.sum(axis=1)
    zeros = np.zeros(T)
    return CommunityDispatch(
        p=p, q=q, price=lam, objective=community_objective(comm, p, q), iterations=np.zeros(T, dtype=np.int64),
        primal_residual=np.abs(p.sum(axis=1) + q), dual_residual=zeros, converged=np.ones(T, dtype=bool),
        method="exact",
    )


def solve_community_qp(comm: Community, tol: float = 1e-10) -> CommunityDispatch:
    """Centralised QP oracle of problem (1)-(5), one dense interior-point solve per slot.

    Variables ``(p_1..p_N, q_imp, q_exp)``; ``q = q_imp - q_exp``; the price is the
    multiplier of (2). Raises ``ValueError`` if a slot is infeasible.
    """
    T, N = comm.n_slots, comm.n_players
    th1, th2 = _theta(comm)
    p = np.zeros((T, N))
    q = np.zeros(T)
    price = np.zeros(T)
    its = np.zeros(T, dtype=np.int64)
    conv = np.zeros(T, dtype=bool)
    pres = np.zeros(T)
    dres = np.zeros(T)
    b = comm.b
    for t in range(T):
        H = np.zeros((N + 2, N + 2))
        H[np.arange(N), np.arange(N)] = comm.a[t]
        if th2 > 0:
            H[N:, N:] = th2 * np.array([[1.0, -1.0], [-1.0, 1.0]])
        c = np.concatenate([b[t], [comm.import_price[t] + th1, -comm.export_price[t] + th1]])
        A = np.concatenate([np.ones(N), [1.0, -1.0]])[None, :]
        lb = np.concatenate([comm.lo[t], [0.0, 0.0]])
        ub = np.concatenate([comm.hi[t], [comm.import_capacity, comm.export_capacity]])
        try:
            sol = solve_qp(H, c, A, [0.0], lb, ub, tol=tol)
        except QPInfeasibleError as e:
            raise ValueError(f"community problem infeasible at slot {t}: {e}") from None
        p[t] = sol.x[:N]
        q[t] = sol.x[N] - sol.x[N + 1]
        price[t] = sol.y[0]
        its[t], conv[t] = sol.iterations, sol.converged
        pres[t], dres[t] = sol.primal_residual, sol.dual_residual
    return CommunityDispatch(
        p=p, q=q, price=price, objective=community_objective(comm, p, q), iterations=its, primal_residual=pres,
        dual_residual=dres, converged=conv, method="qp",
    )



def allocate_grid_cost(
    comm: Community, rule: str, p: ArrayLike, q: ArrayLike, price: ArrayLike,
    bau_cost: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Each player's share of the community's grid cost (EUR, positive = pays), (T, N).

    ``"none"``          no allocation of ``g``: players pay the community price for their
                        net withdrawal, ``-price * p_i`` (an internal market; the manager
                        pays the grid bill from it and keeps any residual).
    ``"equal"``         the grid bill is divided equally, ``bill / N``; internal
                        exchanges are free.
    ``"proportional"``  the import cost is shared in proportion to each player's
                        consumption ``p_i^-`` and the export revenue in proportion to its
                        production ``p_i^+``; internal exchanges are free.
    ``"worst"``         the slides' "worst" player, read as the egalitarian (Rawlsian,
                        leximin) rule: the shares maximise the smallest saving against
                        Business As Usual, ``min_i (BAU_i - f_i(p_i) - s_i)``, subject to
                        ``sum_i s_i = bill``. With unrestricted transfers the max-min is
                        attained only when every saving is equal, so
                        ``s_i = BAU_i - f_i(p_i) - (sum_j BAU_j - sum_j f_j - bill) / N``:
                        every member saves the same ``1/N`` of the community's saving
                        (each slot separately). ``bau_cost`` (T, N): the players' BAU costs
                        (default: :func:`~prosumer_gym.envs.energy_collective.bau.bau_dispatch`).

    ``equal``, ``proportional`` and ``worst`` sum to the grid bill exactly; ``none`` sums to
    ``price * q`` (equal to the bill at the optimum of a market-driven ``g``). ``q`` is the
    community's net import (with storage: ``-sum p - storage``; the manager's batteries get
    no share, their effect is in the bill).
    """
    if rule not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {rule!r}")
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    price = np.atleast_1d(np.asarray(price, dtype=np.float64))
    N = p.shape[1]
    if rule == "none":
        return -price[:, None] * p
    bill = grid_bill(comm, q)
    if rule == "equal":
        return np.repeat(bill[:, None] / N, N, axis=1)
    if rule == "worst":
        bau = bau_dispatch(comm)[1] if bau_cost is None else np.asarray(bau_cost, dtype=np.float64)
        f = comm.player_cost(p)
        saving = (bau.sum(axis=1) - f.sum(axis=1) - bill) / N
        return bau - f - saving[:, None]
    cons = np.maximum(-p, 0.0)
    prod = np.maximum(p, 0.0)
    c_tot = cons.sum(axis=1, keepdims=True)
    g_tot = prod.sum(axis=1, keepdims=True)
    imp_cost = (comm.import_price * np.maximum(q, 0.0))[:, None]
    exp_rev = (comm.export_price * np.maximum(-q, 0.0))[:, None]
    w_c = np.divide(cons, c_tot, out=np.full_like(cons, 1.0 / N), where=c_tot > 0)
    w_g = np.divide(prod, g_tot, out=np.full_like(prod, 1.0 / N), where=g_tot > 0)
    return imp_cost * w_c - exp_rev * w_g


def settle_community(
    comm: Community, rule: str, p: ArrayLike, price: ArrayLike, storage: ArrayLike | None = None,
    bau_cost: ArrayLike | None = None,
) -> dict[str, NDArray[np.float64]]:
    """Settle set-points ``p`` (T, N) of the community market: the grid absorbs the
    imbalance, ``q = -sum_i p_i`` (``- storage``: the manager's batteries' net injection
    (T,), if any; clipped to the connection only in the report ``capacity_violation``).
    ``bau_cost``: the players' BAU costs for the ``"worst"`` rule (computed if omitted).

    Returns per-player ``player_cost`` (``f_i``), ``allocated`` (grid share, see
    :func:`allocate_grid_cost`) and ``total`` (their sum), and per-slot ``q``,
    ``grid_bill``, ``perceived_g``, ``community_cost`` (``sum f_i + bill``),
    ``manager_balance`` (allocated payments received minus the bill) and
    ``capacity_violation`` (kWh beyond the connection).
    """
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    q = -p.sum(axis=1)
    if storage is not None:
        q = q - np.atleast_1d(np.asarray(storage, dtype=np.float64))
    f = comm.player_cost(p)
    alloc = allocate_grid_cost(comm, rule, p, q, price, bau_cost=bau_cost)
    bill = grid_bill(comm, q)
    viol = np.maximum(q - comm.import_capacity, 0.0) + np.maximum(-q - comm.export_capacity, 0.0)
    return {
        "player_cost": f,
        "allocated": alloc,
        "total": f + alloc,
        "q": q,
        "grid_bill": bill,
        "perceived_g": community_g(comm, q),
        "community_cost": f.sum(axis=1) + bill,
        "manager_balance": alloc.sum(axis=1) - bill,
        "capacity_violation": viol,
    }

