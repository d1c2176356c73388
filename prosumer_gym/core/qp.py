"""Small dense convex QP solver (primal-dual interior point), used as a centralised oracle.

Solves::

    min_x  1/2 x' H x + c' x
    s.t.   A x = b
           lb <= x <= ub          (entries may be -inf / +inf)

with ``H`` symmetric positive semidefinite, by Mehrotra's predictor-corrector
interior-point method on the bound constraints (the iterate stays strictly inside the
finite bounds; the equalities are reached along the path). Each iteration solves one dense
KKT system with ``numpy.linalg.solve``, so the solver is meant for oracles up to a few
hundred variables (``energy_collective_market`` uses it for the community QP and the
multi-bilateral economic dispatch). A *structured* large QP -- diagonal ``H`` given as a
vector and a ``scipy.sparse`` equality matrix with few rows -- never forms an ``(n, n)``
matrix: each iteration factors only the ``(m, m)`` Schur complement ``A D^-1 A'`` (the
community's day-ahead dispatch with storage uses this path). SciPy does not expose HiGHS's QP solver, hence this
module; the tests check it against ``scipy.optimize.minimize`` and the KKT conditions.

Everything is deterministic (no randomness, no threads beyond NumPy's BLAS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from numpy.typing import ArrayLike, NDArray

__all__ = ["QPResult", "solve_qp", "QPInfeasibleError"]


class QPInfeasibleError(ValueError):
    """The QP has no feasible point (inconsistent bounds or equalities)."""


@dataclass(frozen=True)
class QPResult:
    """Solution of :func:`solve_qp`.

    Attributes
    ----------
    x : primal solution.
    y : multipliers of ``A x = b`` (sign convention ``H x + c = A' y + z_lb - z_ub``).
    z_lb, z_ub : multipliers of the lower / upper bounds (0 where the bound is infinite).
    objective : ``1/2 x' H x + c' x``.
    iterations : interior-point iterations.
    converged : residuals and complementarity below ``tol``.
    primal_residual, dual_residual, gap : final infinity norms / mean complementarity.
    """

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    z_lb: NDArray[np.float64]
    z_ub: NDArray[np.float64]
    objective: float
    iterations: int
    converged: bool
    primal_residual: float
    dual_residual: float
    gap: float


def _cho_or_lu(S: NDArray[np.float64]):
    try:
        return ("cho", scipy.linalg.cho_factor(S, check_finite=False))
    except np.linalg.LinAlgError:
        return ("lu", scipy.linalg.lu_factor(S, check_finite=False))


def _solve_f(fac, rhs: NDArray[np.float64]) -> NDArray[np.float64]:
    kind, f = fac
    if kind == "cho":
        return scipy.linalg.cho_solve(f, rhs, check_finite=False)
    if kind == "splu":
        return f.solve(rhs)
    return scipy.linalg.lu_solve(f, rhs, check_finite=False)


def _as2d(A: ArrayLike | None, n: int) -> NDArray[np.float64]:
    if A is None:
        return np.zeros((0, n))
    A = np.asarray(A, dtype=np.float64)
    if A.ndim == 1:
        A = A[None, :]
    if A.ndim != 2 or A.shape[1] != n:
        raise ValueError(f"A_eq must have shape (m, {n}), got {A.shape}")
    return A


def _check_vectors(H: NDArray, c: NDArray, b_eq: ArrayLike | None, lb: ArrayLike | None, ub: ArrayLike | None,
                   n: int, m: int) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(b, lo, hi)`` checked: ``b_eq`` of ``m`` entries, bounds broadcast to ``n`` (default
    unbounded), no NaN anywhere and ``lb <= ub`` (else :class:`QPInfeasibleError`)."""
    b = np.zeros(0) if b_eq is None else np.asarray(b_eq, dtype=np.float64).ravel()
    if b.size != m:
        raise ValueError(f"b_eq must have {m} entries, got {b.size}")
    lo = np.full(n, -np.inf) if lb is None else np.broadcast_to(np.asarray(lb, dtype=np.float64), (n,)).copy()
    hi = np.full(n, np.inf) if ub is None else np.broadcast_to(np.asarray(ub, dtype=np.float64), (n,)).copy()
    if np.any(np.isnan(lo)) or np.any(np.isnan(hi)) or not np.all(np.isfinite(c)) or not np.all(np.isfinite(H)):
        raise ValueError("H, c, lb and ub must not contain NaN (bounds may be +-inf)")
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        i = int(bad[0])
        raise QPInfeasibleError(f"lb[{i}] = {lo[i]} exceeds ub[{i}] = {hi[i]}: the QP is infeasible")
    return b, lo, hi

def _check_rows(b: NDArray[np.float64], row_lo: NDArray[np.float64], row_hi: NDArray[np.float64]) -> None:
    """Each equality row must be reachable within the box: ``row_lo <= b <= row_hi``, the
    range of ``A x`` row by row over the bounds (exact test for a single row)."""
    bad_rows = np.flatnonzero((b < row_lo - 1e-9 * (1 + np.abs(b))) | (b > row_hi + 1e-9 * (1 + np.abs(b))))
    if bad_rows.size:
        k = int(bad_rows[0])
        raise QPInfeasibleError(
            f"the QP is infeasible: equality row {k} needs {b[k]:.6g} but the bounds allow only "
            f"[{row_lo[k]:.6g}, {row_hi[k]:.6g}]"
        )


def _with_fixed(x: NDArray[np.float64], y: NDArray[np.float64], zl: NDArray[np.float64], zu: NDArray[np.float64],
                fixed: NDArray[np.bool_], g: NDArray[np.float64], obj: float, sub: QPResult | None) -> QPResult:
    """The result once variables fixed by equal bounds were substituted out: their bound
    multipliers are whatever makes stationarity hold (``g`` = the gradient of the Lagrangian
    without them); iterations and residuals are those of the reduced problem ``sub``."""
    zl[fixed] = np.maximum(g[fixed], 0.0)
    zu[fixed] = np.maximum(-g[fixed], 0.0)
    if sub is None:
        return QPResult(x, y, zl, zu, obj, 0, True, 0.0, 0.0, 0.0)
    return QPResult(x, y, zl, zu, obj, sub.iterations, sub.converged, sub.primal_residual, sub.dual_residual, sub.gap)


def solve_qp(
    H: ArrayLike,
    c: ArrayLike,
    A_eq: ArrayLike | None = None,
    b_eq: ArrayLike | None = None,
    lb: ArrayLike | None = None,
    ub: ArrayLike | None = None,
    tol: float = 1e-9,
    max_iter: int = 200,
) -> QPResult:
    """Solve a convex QP with equalities and bounds (see the module docstring).

    ``H`` may be a full ``(n, n)`` matrix or a length-``n`` vector (diagonal ``H``). With
    a ``scipy.sparse`` ``A_eq``, ``H`` must be a vector (diagonal) and no dense ``(n, n)``
    or ``(m, n)`` array is built (see the module docstring).
    Raises :class:`QPInfeasibleError` (a ``ValueError``) when a lower bound exceeds its
    upper bound or the equalities cannot be met within the bounds (detected as
    non-convergence with a persistent primal residual).
    """
    c = np.asarray(c, dtype=np.float64).ravel()
    n = c.size
    if scipy.sparse.issparse(A_eq):
        return _solve_qp_sparse(H, c, A_eq, b_eq, lb, ub, tol, max_iter)
    Hm = np.asarray(H, dtype=np.float64)
    if Hm.ndim == 1:
        if Hm.size != n:
            raise ValueError(f"H must have {n} diagonal entries, got {Hm.size}")
        Hm = np.diag(Hm)
    if Hm.shape != (n, n):
        raise ValueError(f"H must have shape ({n}, {n}), got {Hm.shape}")
    A = _as2d(A_eq, n)
    m = A.shape[0]
    b, lo, hi = _check_vectors(Hm, c, b_eq, lb, ub, n, m)

    # Each equality row must be reachable within the box (exact test for a single row).
    if m:
        with np.errstate(invalid="ignore"):
            row_lo = np.where(A > 0, A * lo, A * hi)
            row_hi = np.where(A > 0, A * hi, A * lo)
        _check_rows(b, np.where(A == 0, 0.0, row_lo).sum(axis=1), np.where(A == 0, 0.0, row_hi).sum(axis=1))

    # Variables fixed by equal bounds are substituted out (they have no interior).
    fixed = lo == hi
    if np.any(fixed):
        free = ~fixed
        xf = lo[fixed]
        c_red = c[free] + Hm[np.ix_(free, fixed)] @ xf
        b_red = b - A[:, fixed] @ xf
        A_red = A[:, free]
        keep = np.any(A_red != 0, axis=1)
        if np.any(np.abs(b_red[~keep]) > tol * (1 + np.abs(b[~keep]))):
            raise QPInfeasibleError("the equalities cannot be met: all their variables are fixed by the bounds")
        sub = solve_qp(Hm[np.ix_(free, free)], c_red, A_red[keep], b_red[keep], lo[free], hi[free], tol, max_iter) \
            if free.any() else None
        x = lo.copy()
        y = np.zeros(m)
        zl = np.zeros(n)
        zu = np.zeros(n)
        if sub is not None:
            x[free] = sub.x
            y[keep] = sub.y
            zl[free], zu[free] = sub.z_lb, sub.z_ub
        return _with_fixed(x, y, zl, zu, fixed, Hm @ x + c - A.T @ y, float(0.5 * x @ Hm @ x + c @ x), sub)

    h_diag = np.diag(Hm).copy()
    diagonal = bool(np.count_nonzero(Hm - np.diag(h_diag)) == 0)
    return _ipm(Hm, h_diag, diagonal, c, A, b, lo, hi, tol, max_iter)


def _ipm(Hm, h_diag, diagonal, c, A, b, lo, hi, tol, max_iter) -> QPResult:
    """The interior-point iteration of :func:`solve_qp` (no fixed variables left). ``Hm``
    is the dense Hessian, or ``None`` on the structured path (diagonal ``h_diag``, sparse
    ``A``)."""
    n, m = c.size, A.shape[0]
    has_l = np.isfinite(lo)
    has_u = np.isfinite(hi)
    # strictly interior starting point
    x = np.zeros(n)
    both = has_l & has_u
    x[both] = 0.5 * (lo[both] + hi[both])
    only_l = has_l & ~has_u
    x[only_l] = lo[only_l] + 1.0
    only_u = has_u & ~has_l
    x[only_u] = hi[only_u] - 1.0
    scale = max(1.0, float(np.max(np.abs(c), initial=0.0)))
    zl = np.where(has_l, scale, 0.0)
    zu = np.where(has_u, scale, 0.0)
    y = np.zeros(m)
    n_comp = int(has_l.sum() + has_u.sum())
    reg = 1e-12 * (1.0 + float(np.max(np.abs(h_diag), initial=0.0)))
    bnorm = 1.0 + float(np.max(np.abs(b), initial=0.0))
    cnorm = 1.0 + float(np.max(np.abs(c), initial=0.0))

    def residuals(x, y, zl, zu):
        rd = (Hm @ x if Hm is not None else h_diag * x) + c - A.T @ y - zl + zu
        rp = A @ x - b
        return rd, rp

    it = 0
    converged = False
    rd, rp = residuals(x, y, zl, zu)
    mu = 0.0
    for it in range(1, max_iter + 1):
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise QPInfeasibleError(f"the interior-point iteration broke down at iteration {it} "
                                    "(infeasible or badly scaled QP)")
        sl = np.where(has_l, x - lo, 1.0)
        su = np.where(has_u, hi - x, 1.0)
        mu = float((np.sum(sl[has_l] * zl[has_l]) + np.sum(su[has_u] * zu[has_u])) / max(n_comp, 1))
        d = np.where(has_l, zl / sl, 0.0) + np.where(has_u, zu / su, 0.0)
        if diagonal:
            # Schur complement on the equalities: (A Dg^-1 A') dy = r2 - A Dg^-1 r1
            Dg = h_diag + d + reg
            if Hm is not None:
                S = (A / Dg) @ A.T + reg * np.eye(m)
                S_f = _cho_or_lu(S) if m else None
            else:  # sparse Schur complement, sparse LU
                S = (A.multiply(1.0 / Dg[None, :]).tocsr() @ A.T + reg * scipy.sparse.identity(m)).tocsc()
                S_f = ("splu", scipy.sparse.linalg.splu(S)) if m else None
        else:
            K = np.zeros((n + m, n + m))
            K[:n, :n] = Hm + np.diag(d + reg)
            K[:n, n:] = -A.T
            K[n:, :n] = A
            K[n:, n:] = -reg * np.eye(m)
            K_f = scipy.linalg.lu_factor(K, check_finite=False)

        def solve(cl, cu):
            # complementarity targets: sl*zl = cl, su*zu = cu (componentwise, before dx terms)
            rhs1 = -rd + np.where(has_l, cl / sl - zl, 0.0) - np.where(has_u, cu / su - zu, 0.0)
            if diagonal:
                if m:
                    dy = _solve_f(S_f, -rp - A @ (rhs1 / Dg))
                else:
                    dy = np.zeros(0)
                dx = (rhs1 + A.T @ dy) / Dg
            else:
                sol = scipy.linalg.lu_solve(K_f, np.concatenate([rhs1, -rp]), check_finite=False)
                dx, dy = sol[:n], sol[n:]
            dzl = np.where(has_l, cl / sl - zl - zl / sl * dx, 0.0)
            dzu = np.where(has_u, cu / su - zu + zu / su * dx, 0.0)
            return dx, dy, dzl, dzu

        def step_len(dx, dzl, dzu, frac=1.0):
            a = 1.0
            with np.errstate(divide="ignore", invalid="ignore"):
                for s, ds in ((sl, np.where(has_l, dx, 0.0)), (su, np.where(has_u, -dx, 0.0)),
                              (zl, dzl), (zu, dzu)):
                    neg = ds < 0
                    if np.any(neg):
                        a = min(a, float(np.min(-s[neg] / ds[neg])))
            return min(1.0, frac * a)

        # predictor (affine scaling)
        zero = np.zeros(n)
        dx_a, dy_a, dzl_a, dzu_a = solve(zero, zero)
        a_aff = step_len(dx_a, dzl_a, dzu_a)
        sl_a = sl + a_aff * dx_a
        su_a = su - a_aff * dx_a
        mu_aff = float((np.sum((sl_a * (zl + a_aff * dzl_a))[has_l]) + np.sum((su_a * (zu + a_aff * dzu_a))[has_u]))
                       / max(n_comp, 1))
        sigma = (mu_aff / mu) ** 3 if mu > 0 else 0.0
        # corrector: targets sigma*mu - dx_aff*dz_aff
        cl = np.where(has_l, sigma * mu - dx_a * dzl_a, 0.0)
        cu = np.where(has_u, sigma * mu + dx_a * dzu_a, 0.0)
        dx, dy, dzl, dzu = solve(cl, cu)
        a = step_len(dx, dzl, dzu, frac=0.995)

        def mu_after(a):
            s_l = (sl + a * dx)[has_l] * (zl + a * dzl)[has_l]
            s_u = (su - a * dx)[has_u] * (zu + a * dzu)[has_u]
            return float((s_l.sum() + s_u.sum()) / max(n_comp, 1))

        if mu_after(a) > 0.9 * mu or a < 1e-3:
            # safeguard: Mehrotra's corrector can cycle on degenerate problems; fall back to a
            # plain path-following step towards the central path (sigma = 0.3)
            t = np.where(has_l, 0.3 * mu, 0.0), np.where(has_u, 0.3 * mu, 0.0)
            dx, dy, dzl, dzu = solve(*t)
            a = step_len(dx, dzl, dzu, frac=0.995)
        x = x + a * dx
        y = y + a * dy
        zl = zl + a * dzl
        zu = zu + a * dzu
        rd, rp = residuals(x, y, zl, zu)
        sl = np.where(has_l, x - lo, 1.0)
        su = np.where(has_u, hi - x, 1.0)
        mu = float((np.sum(sl[has_l] * zl[has_l]) + np.sum(su[has_u] * zu[has_u])) / max(n_comp, 1))
        if (np.max(np.abs(rp), initial=0.0) <= tol * bnorm and np.max(np.abs(rd), initial=0.0) <= tol * cnorm
                and mu <= tol):
            converged = True
            break
    pres = float(np.max(np.abs(rp), initial=0.0))
    if not converged and pres > 1e-6 * bnorm:
        raise QPInfeasibleError(
            f"the QP appears infeasible: equality residual {pres:.3g} after {it} interior-point iterations"
        )
    obj = float(0.5 * x @ (Hm @ x if Hm is not None else h_diag * x) + c @ x)
    return QPResult(x, y, np.where(has_l, zl, 0.0), np.where(has_u, zu, 0.0), obj, it, converged, pres,
                    float(np.max(np.abs(rd), initial=0.0)), mu)


def _solve_qp_sparse(H, c, A_eq, b_eq, lb, ub, tol: float, max_iter: int) -> QPResult:
    """:func:`solve_qp` for a diagonal ``H`` (vector) and a ``scipy.sparse`` ``A_eq``:
    the same checks, fixed variables substituted, then :func:`_ipm` without dense
    ``(n, n)`` / ``(m, n)`` arrays."""
    n = c.size
    h = np.asarray(H, dtype=np.float64)
    if h.ndim != 1 or h.size != n:
        raise ValueError(f"with a sparse A_eq, H must be a vector of {n} diagonal entries, got shape {h.shape}")
    A = scipy.sparse.csc_matrix(A_eq, dtype=np.float64)
    if A.shape[1] != n:
        raise ValueError(f"A_eq must have {n} columns, got {A.shape[1]}")
    m = A.shape[0]
    b, lo, hi = _check_vectors(h, c, b_eq, lb, ub, n, m)
    coo = A.tocoo()
    with np.errstate(invalid="ignore"):
        v_lo = np.where(coo.data > 0, coo.data * lo[coo.col], coo.data * hi[coo.col])
        v_hi = np.where(coo.data > 0, coo.data * hi[coo.col], coo.data * lo[coo.col])
    v_lo = np.where(coo.data == 0, 0.0, v_lo)
    v_hi = np.where(coo.data == 0, 0.0, v_hi)
    if m:
        _check_rows(b, np.bincount(coo.row, weights=v_lo, minlength=m), np.bincount(coo.row, weights=v_hi, minlength=m))
    fixed = lo == hi
    free = ~fixed
    x = lo.copy()
    y = np.zeros(m)
    zl, zu = np.zeros(n), np.zeros(n)
    b_red = b - A[:, fixed] @ lo[fixed] if fixed.any() else b
    A_red = A[:, free]
    keep = np.diff(A_red.tocsr().indptr) > 0
    if np.any(np.abs(b_red[~keep]) > tol * (1 + np.abs(b[~keep]))):
        raise QPInfeasibleError("the equalities cannot be met: all their variables are fixed by the bounds")
    sub = None
    if free.any():
        sub = _ipm(None, h[free].copy(), True, c[free], A_red.tocsr()[keep].tocsc(), b_red[keep], lo[free], hi[free],
                   tol, max_iter)
        x[free] = sub.x
        y[keep] = sub.y
        zl[free], zu[free] = sub.z_lb, sub.z_ub
    return _with_fixed(x, y, zl, zu, fixed, h * x + c - A.T @ y, float(0.5 * x @ (h * x) + c @ x), sub)
