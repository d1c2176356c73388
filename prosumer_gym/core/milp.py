"""Small helpers over :func:`scipy.optimize.milp` (HiGHS) shared by the markets' MILP references.

* :class:`SparsePattern` — a constraint matrix whose *sparsity pattern* is built once (for a
  market size) and whose coefficients are refilled for every solve (every trading day), so
  the per-day cost is a vector fill plus one CSR construction from a cached permutation.
* :func:`solve_milp` — one call to HiGHS with a time limit and a relative gap, returning a
  :class:`MilpResult` (status, whether optimality was *proven*, objective, dual bound, gap)
  in the caller's sense (``maximize=True`` flips signs for you).
* Piecewise-linear (PWL) helpers for separable non-linear objectives:
  :func:`adaptive_breakpoints` (breakpoints that equalise the chord error of a batch of
  1-D functions), :func:`chord_slopes` (the incremental/"delta" formulation's segment
  slopes) and :func:`tangent_cuts` (outer linearisation of a concave function).

  For a function ``f`` maximised in the objective:

  - on a *convex* piece, chords over-estimate ``f`` and need binaries (incremental
    formulation: ``d_k >= L_k y_k``, ``d_{k+1} <= L_{k+1} y_k``, so segment ``k+1`` is used
    only once segment ``k`` is full);
  - on a *concave* piece, tangent cuts ``t <= f(p) + f'(p) (u - p)`` over-estimate ``f``
    without binaries.

  Chords on the convex part plus tangents on the concave part therefore give an
  *over-estimating* model whose proven optimum is a valid upper bound on the true optimum.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = [
    "MilpResult",
    "SparsePattern",
    "solve_milp",
    "adaptive_breakpoints",
    "chord_slopes",
    "tangent_cuts",
]

_STATUS = {0: "optimal", 1: "time_limit", 2: "infeasible", 3: "unbounded", 4: "error"}


@dataclass(frozen=True)
class MilpResult:
    """Outcome of one HiGHS solve, in the caller's sense (max problems are not negated).

    ``x``: the incumbent (``None`` when HiGHS found no feasible point); ``status``: one of
    ``"optimal"``, ``"time_limit"`` (or another iteration limit), ``"infeasible"``,
    ``"unbounded"``, ``"error"``; ``proven_optimal``: HiGHS closed the gap to within
    ``mip_rel_gap``; ``objective``: incumbent objective; ``bound``: HiGHS' best (dual)
    bound (an upper bound for a max problem); ``mip_gap``: HiGHS' relative gap.
    """

    x: NDArray[np.float64] | None
    status: str
    proven_optimal: bool
    objective: float
    bound: float
    mip_gap: float
    seconds: float
    message: str = ""

    @property
    def success(self) -> bool:
        """A feasible incumbent is available."""
        return self.x is not None


class SparsePattern:
    """Sparsity pattern of a constraint matrix, built once, refilled per solve.

    >>> p = SparsePattern(n_cols=3)
    >>> r = p.add_rows(2)                       # two new rows, global indices
    >>> p.add("cap", rows=[r[0], r[0], r[1]], cols=[0, 1, 2])
    >>> p.freeze()
    >>> data = p.new_data(); data[p["cap"]] = [1.0, 2.0, 3.0]
    >>> p.matrix(data).toarray()
    array([[1., 2., 0.],
           [0., 0., 3.]])

    Entries keep the order in which they were added; ``p[name]`` is the slice of the data
    vector that holds block ``name``.  Duplicated (row, col) pairs are summed.
    """

    def __init__(self, n_cols: int) -> None:
        self.n_cols = int(n_cols)
        self.n_rows = 0
        self._rows: list[NDArray[np.int64]] = []
        self._cols: list[NDArray[np.int64]] = []
        self._blocks: dict[str, slice] = {}
        self._nnz = 0
        self._frozen = False

    def add_rows(self, n: int) -> NDArray[np.int64]:
        """Reserve ``n`` new rows; returns their global indices."""
        if self._frozen:
            raise RuntimeError("SparsePattern is frozen")
        idx = np.arange(self.n_rows, self.n_rows + int(n), dtype=np.int64)
        self.n_rows += int(n)
        return idx

    def add(self, name: str, rows: NDArray | list, cols: NDArray | list) -> slice:
        """Add a named block of entries at ``(rows[k], cols[k])``; returns its data slice."""
        if self._frozen:
            raise RuntimeError("SparsePattern is frozen")
        if name in self._blocks:
            raise ValueError(f"block {name!r} already exists")
        r = np.asarray(rows, dtype=np.int64).ravel()
        c = np.asarray(cols, dtype=np.int64).ravel()
        if r.shape != c.shape:
            raise ValueError(f"block {name!r}: rows and cols must have the same length")
        if r.size and (r.min() < 0 or r.max() >= self.n_rows or c.min() < 0 or c.max() >= self.n_cols):
            raise ValueError(f"block {name!r}: index out of range")
        self._rows.append(r)
        self._cols.append(c)
        sl = slice(self._nnz, self._nnz + r.size)
        self._blocks[name] = sl
        self._nnz += r.size
        return sl

    def __getitem__(self, name: str) -> slice:
        return self._blocks[name]

    @property
    def nnz(self) -> int:
        return self._nnz

    def freeze(self) -> None:
        """Compute the CSR structure once; afterwards only :meth:`matrix` is allowed."""
        rows = np.concatenate(self._rows) if self._rows else np.zeros(0, np.int64)
        cols = np.concatenate(self._cols) if self._cols else np.zeros(0, np.int64)
        order = np.lexsort((cols, rows))
        self._perm = order
        self._indices = cols[order].astype(np.int32)
        counts = np.bincount(rows, minlength=self.n_rows)
        self._indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        self._frozen = True

    def new_data(self) -> NDArray[np.float64]:
        return np.zeros(self._nnz)

    def matrix(self, data: NDArray[np.float64]) -> sparse.csr_array:
        """The CSR matrix with these coefficients (``data`` in insertion order)."""
        if not self._frozen:
            self.freeze()
        m = sparse.csr_array((data[self._perm], self._indices, self._indptr), shape=(self.n_rows, self.n_cols))
        m.sum_duplicates()
        return m


def solve_milp(
    c: NDArray[np.float64],
    A: sparse.sparray | NDArray[np.float64],
    row_lb: NDArray[np.float64],
    row_ub: NDArray[np.float64],
    lb: NDArray[np.float64],
    ub: NDArray[np.float64],
    integrality: NDArray[np.int_],
    *,
    maximize: bool = False,
    time_limit: float | None = None,
    mip_rel_gap: float | None = None,
    presolve: bool = True,
    disp: bool = False,
) -> MilpResult:
    """Solve ``min/max c @ x`` s.t. ``row_lb <= A x <= row_ub``, ``lb <= x <= ub`` with HiGHS.

    ``integrality[k] = 1`` marks an integer variable.  ``time_limit`` is in seconds.
    Objective and bound are returned in the caller's sense.
    """
    sign = -1.0 if maximize else 1.0
    options: dict = {"disp": disp, "presolve": presolve}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    if mip_rel_gap is not None:
        options["mip_rel_gap"] = float(mip_rel_gap)
    t0 = time.perf_counter()
    res = milp(
        sign * np.asarray(c, dtype=np.float64),
        constraints=LinearConstraint(A, row_lb, row_ub),
        bounds=Bounds(lb, ub),
        integrality=integrality,
        options=options,
    )
    secs = time.perf_counter() - t0
    status = _STATUS.get(int(res.status), "error")
    x = None if res.x is None else np.asarray(res.x, dtype=np.float64)
    obj = float(sign * res.fun) if (x is not None and res.fun is not None) else float("nan")
    dual = getattr(res, "mip_dual_bound", None)
    bound = float(sign * dual) if dual is not None and np.isfinite(dual) else float("nan")
    gap = getattr(res, "mip_gap", None)
    gap = float(gap) if gap is not None else float("nan")
    if int(integrality.sum() if hasattr(integrality, "sum") else 0) == 0 and status == "optimal":
        bound, gap = obj, 0.0
    if status == "optimal" and not np.isfinite(bound):
        bound = obj
    return MilpResult(
        x=x,
        status=status,
        proven_optimal=status == "optimal",
        objective=obj,
        bound=bound,
        mip_gap=gap,
        seconds=secs,
        message=str(res.message),
    )


def adaptive_breakpoints(
    f: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    n_segments: int,
    *,
    init: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Breakpoints for a batch of ``m`` 1-D functions, refined where the chord error is largest.

    ``f`` maps an ``(m, k)`` array of points (row ``i`` belongs to function ``i``) to their
    values.  Starting from ``init`` (fractions of ``[lo, hi]``, default ``[0, 1]``) the
    segment with the largest mid-point chord error is bisected until there are
    ``n_segments`` segments per function.  Returns ``(m, n_segments + 1)`` sorted points with
    ``bp[:, 0] = lo`` and ``bp[:, -1] = hi`` (degenerate intervals give repeated points).
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    m = lo.size
    frac = np.array([0.0, 1.0]) if init is None else np.unique(np.concatenate([[0.0, 1.0], np.asarray(init, float)]))
    if frac.size - 1 > n_segments:
        raise ValueError(f"n_segments={n_segments} is smaller than the initial grid ({frac.size - 1} segments)")
    bp = lo[:, None] + (hi - lo)[:, None] * frac[None, :]
    fv = f(bp)
    rows = np.arange(m)
    while bp.shape[1] - 1 < n_segments:
        a, b = bp[:, :-1], bp[:, 1:]
        fa, fb = fv[:, :-1], fv[:, 1:]
        mid = 0.5 * (a + b)
        fm = f(mid)
        err = np.abs(fm - 0.5 * (fa + fb))
        err = np.where(np.isfinite(err), err, np.inf)
        k = np.argmax(err, axis=1)
        new = mid[rows, k]
        newv = fm[rows, k]
        bp = np.concatenate([bp, new[:, None]], axis=1)
        fv = np.concatenate([fv, newv[:, None]], axis=1)
        order = np.argsort(bp, axis=1, kind="stable")
        bp = np.take_along_axis(bp, order, axis=1)
        fv = np.take_along_axis(fv, order, axis=1)
    return bp


def chord_slopes(bp: NDArray[np.float64], fv: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Segment lengths ``L`` and chord slopes ``m`` of PWL interpolants (row-wise).

    Zero-length segments get slope 0.  With increments ``0 <= d_k <= L_k`` the interpolant is
    ``f(bp_0) + sum_k m_k d_k`` (incremental formulation).
    """
    L = np.diff(bp, axis=1)
    df = np.diff(fv, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(L > 0, df / np.where(L > 0, L, 1.0), 0.0)
    return L, m


def tangent_cuts(
    f: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    df: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    points: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Tangent lines ``t <= slope * u + intercept`` of a concave ``f`` at ``points`` (row-wise)."""
    fp = f(points)
    sp = df(points)
    return sp, fp - sp * points
