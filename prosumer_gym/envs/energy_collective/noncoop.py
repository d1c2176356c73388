"""EnergyCollective-v0, non-cooperative community: the cost-allocation rule inside the dispatch.

Source: slides ``002`` ("the coordination node may allocate import costs (/export
revenues) following various principles (yielding modified x-updates), e.g. equal share,
proportional sharing, 'worst' player"). Every choice: ``docs/energy_collective.md``.

In the cooperative community (problem (1)-(5), :mod:`.community`) the rule only splits the
bill of the optimal dispatch, so the community's total cannot depend on it. Here every
member ``i`` minimises its *own* cost given the others' set-points ``p_-i``::

    J_i(p_i; p_-i) = f_i(p_i) + s_i(p_i, p_-i)                     (f_i of problem (1))

with ``s_i`` its share of the grid bill under the rule (exactly
:func:`~prosumer_gym.envs.energy_collective.community.allocate_grid_cost`, the grid taking
``q = -sum_j p_j - storage``), and the dispatch is the Nash equilibrium of these best
responses. Per rule:

``none``          the member pays the announced community price for its net withdrawal,
                  ``s_i = -lambda p_i``, and takes ``lambda`` as given (price-taking): the
                  equilibrium with the manager clearing (2) is the competitive equilibrium,
                  i.e. the cooperative optimum (closed form: the exact clearing).
``equal``         ``s_i = bill(q) / N``: an exact potential game with potential
                  ``sum_j f_j + bill(q)/N``, so the equilibrium is the cooperative
                  dispatch of a community whose grid prices are divided by ``N`` (closed
                  form: the exact clearing of that community). Members see ``1/N`` of the
                  grid price: consumers free-ride, generators stop producing.
``proportional``  import cost shared by consumption, export revenue by production: no
                  potential; the equilibrium is found by damped simultaneous best responses.
``worst``         the egalitarian rule: ``J_i = BAU_i - (sum_j BAU_j - sum_j f_j - bill)/N``,
                  every member's objective is the community total over ``N`` (a team game):
                  the equilibrium is the cooperative optimum (closed form).

The iterative solver (:func:`nash_dispatch` with ``method="iterative"``, the only one for
``proportional``) is damped Jacobi on the best responses: each member's exact best response
is found on its own range (a grid of ``n_grid`` points plus the kinks of ``s_i`` at
``p_i = 0`` and at ``q = 0``, then golden-section refinement between the neighbours of the
best point; every piece of ``J_i`` is smooth), and ``p <- p + alpha (BR(p) - p)`` with a
per-slot step ``alpha`` halved whenever the slot's equilibrium gap grows. Convergence: the
largest gain of a member's best response, ``max_i J_i(p_i) - J_i(BR_i)``, below ``tol``
(EUR per member and slot) in every slot; otherwise ``converged`` is False for that slot and
a ``RuntimeWarning`` names the slots.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from prosumer_gym.core.validation import check_choice, check_float, check_int
from prosumer_gym.envs.energy_collective.bau import bau_dispatch
from prosumer_gym.envs.energy_collective.community import ALLOCATIONS, grid_bill, solve_community_exact
from prosumer_gym.envs.energy_collective.players import Community

__all__ = ["NASH_METHODS", "NashDispatch", "member_costs", "nash_best_response", "nash_dispatch", "with_injection"]

NASH_METHODS = ("auto", "iterative")
_GOLDEN = 0.5 * (np.sqrt(5.0) - 1.0)


@dataclass(frozen=True)
class NashDispatch:
    """Nash equilibrium of the members under an allocation rule, ``T`` slots.

    ``p`` (T, N) kWh; ``q`` (T,) net import; ``price`` (T,) the rule's price of energy
    (``none``/``worst``: the community price of the cooperative optimum; ``equal``: the
    common marginal price ``bill'(q)/N``; ``proportional``: the grid cost per kWh consumed
    when importing, ``lambda_imp q / sum p^-``, or the revenue per kWh produced when
    exporting, 0 at ``q = 0``); ``signal`` (T, N) the price whose best response
    ``clip(r + (signal - m)/a, lo, hi)`` is the member's equilibrium set-point (the
    observation of the env); ``objective`` (T,) the community's monetary cost
    ``sum f_i + bill``; ``iterations``, ``gap`` (largest gain of a best response, EUR),
    ``step`` (largest ``|BR - p|``, kWh), ``converged`` per slot; ``method``
    (``"closed_form"`` or ``"iterative"``).
    """

    rule: str
    p: NDArray[np.float64]
    q: NDArray[np.float64]
    price: NDArray[np.float64]
    signal: NDArray[np.float64]
    objective: NDArray[np.float64]
    iterations: NDArray[np.int64]
    gap: NDArray[np.float64]
    step: NDArray[np.float64]
    converged: NDArray[np.bool_]
    method: str


def with_injection(comm: Community, storage: ArrayLike) -> Community:
    """``comm`` plus one fixed pseudo-player injecting ``storage`` (T,) kWh at zero cost (the
    manager's batteries in the balance (2)); it is the last column."""
    y = np.atleast_1d(np.asarray(storage, dtype=np.float64))[:, None]
    z = np.zeros_like(y)
    return replace(
        comm, names=(*comm.names, "_storage"), kind=np.append(comm.kind, "storage"),
        a=np.hstack([comm.a, z]), m=np.hstack([comm.m, z]), r=np.hstack([comm.r, y]),
        lo=np.hstack([comm.lo, y]), hi=np.hstack([comm.hi, y]),
        position_km=None if comm.position_km is None else np.vstack([comm.position_km, [[0.0, 0.0]]]),
    )


def _cooperative(comm: Community, storage: NDArray[np.float64] | None):
    """Exact clearing of ``comm`` (with the batteries as a fixed pseudo-player): ``(p, price)``."""
    if storage is None:
        d = solve_community_exact(comm)
        return d.p, d.price
    d = solve_community_exact(with_injection(comm, storage))
    return d.p[:, :-1], d.price


def member_costs(
    comm: Community, rule: str, x: NDArray[np.float64], ctx: dict[str, NDArray[np.float64]]
) -> NDArray[np.float64]:
    """``J_i(x)`` for candidate set-points ``x`` (T, N, K) of every member, the others fixed.

    ``ctx`` (from the current dispatch, each (T, N) unless noted): ``s_other`` the others'
    net injection plus the storage's, ``c_other`` / ``g_other`` the others' consumption /
    production, ``f_other`` their costs ``f_j``, ``bau`` the members' BAU costs, ``price``
    (T,) the announced price (``none``). Same shares as ``allocate_grid_cost``.
    """
    N = comm.n_players
    a, m, r = comm.a[..., None], comm.m[..., None], comm.r[..., None]
    d = x - r
    f = 0.5 * a * d * d + m * d
    if rule == "none":
        return f - ctx["price"][:, None, None] * x
    q = -(ctx["s_other"][..., None] + x)
    imp, exp_ = comm.import_price[:, None, None], comm.export_price[:, None, None]
    bill = imp * np.maximum(q, 0.0) - exp_ * np.maximum(-q, 0.0)
    if rule == "equal":
        return f + bill / N
    if rule == "worst":
        bau = ctx["bau"]
        return bau[..., None] - (bau.sum(axis=1)[:, None, None] - ctx["f_other"][..., None] - f - bill) / N
    cons, prod = np.maximum(-x, 0.0), np.maximum(x, 0.0)
    c_tot, g_tot = ctx["c_other"][..., None] + cons, ctx["g_other"][..., None] + prod
    with np.errstate(divide="ignore", invalid="ignore"):
        w_c = np.where(c_tot > 0, cons / c_tot, 1.0 / N)
        w_g = np.where(g_tot > 0, prod / g_tot, 1.0 / N)
    return f + imp * np.maximum(q, 0.0) * w_c - exp_ * np.maximum(-q, 0.0) * w_g


def _context(comm: Community, p: NDArray[np.float64], storage: NDArray[np.float64] | None,
             bau: NDArray[np.float64] | None, price: NDArray[np.float64] | None) -> dict[str, NDArray[np.float64]]:
    y = 0.0 if storage is None else storage[:, None]
    cons, prod = np.maximum(-p, 0.0), np.maximum(p, 0.0)
    f = comm.player_cost(p)
    ctx = {
        "s_other": p.sum(axis=1, keepdims=True) - p + y,
        "c_other": cons.sum(axis=1, keepdims=True) - cons,
        "g_other": prod.sum(axis=1, keepdims=True) - prod,
        "f_other": f.sum(axis=1, keepdims=True) - f,
    }
    if bau is not None:
        ctx["bau"] = bau
    if price is not None:
        ctx["price"] = price
    return ctx


def nash_best_response(
    comm: Community, rule: str, p: ArrayLike, storage: ArrayLike | None = None, *, n_grid: int = 33,
    bau_cost: ArrayLike | None = None, price: ArrayLike | None = None, golden_iter: int = 40,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Every member's best response to the others' set-points ``p`` (T, N) under ``rule``.

    Returns ``(br, J(br), J(p))`` (each (T, N)): candidates on an ``n_grid``-point grid of
    the member's range plus the kinks of its share (``x = 0``, and ``q = 0`` at
    ``x = -s_other``), then golden-section search between the best candidate's neighbours
    (``golden_iter`` steps, the bracket shrinks by 0.618 per step)."""
    check_choice("rule", rule, ALLOCATIONS)
    p = np.asarray(p, dtype=np.float64)
    y = None if storage is None else np.atleast_1d(np.asarray(storage, dtype=np.float64))
    bau = None
    if rule == "worst":
        bau = bau_dispatch(comm)[1] if bau_cost is None else np.asarray(bau_cost, dtype=np.float64)
    pr = None if price is None else np.atleast_1d(np.asarray(price, dtype=np.float64))
    if rule == "none" and pr is None:
        raise ValueError("price is required for rule 'none' (the announced community price, shape (T,))")
    ctx = _context(comm, p, y, bau, pr)
    lo, hi = comm.lo[..., None], comm.hi[..., None]
    grid = lo + np.linspace(0.0, 1.0, n_grid) * (hi - lo)
    kinks = np.clip(np.stack([np.zeros_like(p), -ctx["s_other"]], axis=-1), lo, hi)
    cand = np.sort(np.concatenate([grid, kinks], axis=-1), axis=-1)
    vals = member_costs(comm, rule, cand, ctx)
    k = np.argmin(vals, axis=-1)[..., None]
    best = np.take_along_axis(cand, k, axis=-1)[..., 0]
    best_v = np.take_along_axis(vals, k, axis=-1)[..., 0]
    # the neighbours of the best candidate (distinct points: a kink may coincide with a grid point)
    b3 = best[..., None]
    left = np.max(np.where(cand < b3, cand, -np.inf), axis=-1)
    right = np.min(np.where(cand > b3, cand, np.inf), axis=-1)
    left = np.where(np.isfinite(left), left, best)
    right = np.where(np.isfinite(right), right, best)
    x1 = right - _GOLDEN * (right - left)
    x2 = left + _GOLDEN * (right - left)
    v1 = member_costs(comm, rule, x1[..., None], ctx)[..., 0]
    v2 = member_costs(comm, rule, x2[..., None], ctx)[..., 0]
    for _ in range(golden_iter):
        lower = v1 <= v2  # the minimum is in [left, x2]
        right = np.where(lower, x2, right)
        left = np.where(lower, left, x1)
        x2n = np.where(lower, x1, left + _GOLDEN * (right - left))
        x1n = np.where(lower, right - _GOLDEN * (right - left), x2)
        v2n = np.where(lower, v1, np.nan)
        v1n = np.where(lower, np.nan, v2)
        x1, x2 = x1n, x2n
        new = np.where(lower, x1, x2)
        v_new = member_costs(comm, rule, new[..., None], ctx)[..., 0]
        v1 = np.where(lower, v_new, v1n)
        v2 = np.where(lower, v2n, v_new)
    gx = np.where(v1 <= v2, x1, x2)
    gv = np.minimum(v1, v2)
    br = np.where(gv < best_v, gx, best)
    br_v = np.minimum(gv, best_v)
    fixed = comm.fixed
    br = np.where(fixed, p, br)
    here = member_costs(comm, rule, p[..., None], ctx)[..., 0]
    br_v = np.where(fixed, here, br_v)
    return br, br_v, here


def nash_dispatch(
    comm: Community, rule: str, storage: ArrayLike | None = None, *, method: str = "auto", tol: float = 1e-7,
    max_iter: int = 3000, damping: float = 0.5, n_grid: int = 33, bau_cost: ArrayLike | None = None,
    p0: ArrayLike | None = None, warn: bool = True,
) -> NashDispatch:
    """The members' Nash equilibrium under allocation ``rule`` (see the module docstring).

    ``method="auto"``: the closed form where the rule has one (``none``, ``equal``,
    ``worst``), damped best responses for ``proportional``; ``"iterative"``: damped best
    responses for every rule but ``none`` (which needs the manager's price: closed form only).
    ``storage`` (T,): the manager's batteries' fixed net injection. The iteration starts at
    ``p0`` (default: the cooperative dispatch) with step ``damping`` and stops when every
    slot's equilibrium gap is below ``tol`` EUR or after ``max_iter`` iterations (then
    ``converged`` is False there and, with ``warn``, a ``RuntimeWarning`` is raised).
    """
    check_choice("allocation", rule, ALLOCATIONS)
    check_choice("method", method, NASH_METHODS)
    tol = check_float("tol", tol, 0.0, lo_open=True)
    damping = check_float("damping", damping, 0.0, 1.0, lo_open=True)
    max_iter = check_int("max_iter", max_iter, 1)
    n_grid = check_int("n_grid", n_grid, 3)
    if comm.g_kind != "market":
        raise ValueError(f"allocation_mode 'in_dispatch' needs g='market' (the rules split the grid bill), "
                         f"got g={comm.g_kind!r}")
    y = None if storage is None else np.atleast_1d(np.asarray(storage, dtype=np.float64))
    T, N = comm.n_slots, comm.n_players
    bau = None
    if rule == "worst":
        bau = bau_dispatch(comm)[1] if bau_cost is None else np.asarray(bau_cost, dtype=np.float64)
    zeros_i, zeros = np.zeros(T, dtype=np.int64), np.zeros(T)
    if rule == "none" and method == "iterative":
        raise ValueError("method='iterative' needs a rule without an announced price: 'equal', 'proportional' or "
                         "'worst' (under 'none' the members take the manager's price: use method='auto')")
    if method == "auto" and rule != "proportional":
        if rule == "equal":
            scaled = replace(comm, import_price=comm.import_price / N, export_price=comm.export_price / N)
            p, price = _cooperative(scaled, y)
        else:
            p, price = _cooperative(comm, y)
        q = -p.sum(axis=1) - (0.0 if y is None else y)
        gaps = np.zeros(T)
        return NashDispatch(rule, p, q, price, np.repeat(price[:, None], N, axis=1),
                            comm.player_cost(p).sum(axis=1) + grid_bill(comm, q), zeros_i, gaps, zeros,
                            np.ones(T, dtype=bool), "closed_form")
    p = _cooperative(comm, y)[0] if p0 is None else np.array(p0, dtype=np.float64)
    alpha = np.full(T, damping)
    prev_gap = np.full(T, np.inf)
    its = np.zeros(T, dtype=np.int64)
    gap = np.full(T, np.inf)
    step = np.full(T, np.inf)
    done = np.zeros(T, dtype=bool)
    for _ in range(max_iter):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        sub = comm.slots(act)
        br, br_v, here = nash_best_response(sub, rule, p[act], None if y is None else y[act], n_grid=n_grid,
                                            bau_cost=None if bau is None else bau[act])
        g = np.max(here - br_v, axis=1)
        st = np.max(np.abs(br - p[act]), axis=1)
        gap[act], step[act] = g, st
        ok = g <= tol
        done[act[ok]] = True
        mov = ~ok
        grow = g > prev_gap[act]
        alpha[act] = np.where(mov & grow, np.maximum(alpha[act] * 0.5, 1e-3), alpha[act])
        prev_gap[act] = g
        upd = act[mov]
        p[upd] = p[upd] + alpha[upd, None] * (br[mov] - p[upd])
        its[upd] += 1
    if warn and not done.all():
        bad = np.flatnonzero(~done)
        warnings.warn(f"nash_dispatch ({rule!r}) did not converge in {max_iter} iterations at slots "
                      f"{bad.tolist()[:10]} (largest best-response gain {gap[bad].max():.3g} EUR > tol {tol:g})",
                      RuntimeWarning, stacklevel=2)
    q = -p.sum(axis=1) - (0.0 if y is None else y)
    if rule == "proportional":
        cons, prod = np.maximum(-p, 0.0).sum(axis=1), np.maximum(p, 0.0).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            price = np.where(q > 0, comm.import_price * q / cons,
                             np.where(q < 0, comm.export_price * (-q) / prod, 0.0))
        price = np.nan_to_num(price)
    else:  # equal / worst, iterated: the marginal grid price each member sees
        price = np.where(q > 0, comm.import_price, comm.export_price) / (N if rule == "equal" else 1.0)
    signal = comm.marginal_cost(p)
    return NashDispatch(rule, p, q, price, signal, comm.player_cost(p).sum(axis=1) + grid_bill(comm, q), its, gap,
                        step, done, "iterative")
