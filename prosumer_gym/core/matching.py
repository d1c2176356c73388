"""Maximum-weight bipartite matching on a *disaggregated* (unit) graph, market-independent.

A bipartite graph of suppliers ``i`` and demanders ``j`` is disaggregated into ``s_i`` unit
nodes per supplier and ``d_j`` unit nodes per demander; every unit of ``i`` is joined to
every unit of ``j`` by an edge of weight ``W[i, j]`` when ``mask[i, j]``.  A maximum-weight
bipartite matching (MWBM) of the unit graph is a one-to-one assignment of units.

:func:`unit_matching` returns ``N[i, j]`` = number of matched unit pairs between ``i`` and
``j`` (only edges of positive weight are used). Two exact methods:

* ``"lsa"`` — the literal construction: the unit cost matrix is built and solved with
  :func:`scipy.optimize.linear_sum_assignment` (Hungarian / Jonker-Volgenant), then edges of
  non-positive weight are dropped.
* ``"lp"`` — the same optimum from the aggregated graph: since all units of a pair carry the
  same weight, a MWBM of the unit graph is an integral optimum of the transportation problem
  ``max sum W N  s.t.  sum_j N_ij <= s_i, sum_i N_ij <= d_j, N >= 0`` (totally unimodular,
  so HiGHS' simplex vertex is integral). Much faster when there are thousands of units.

``"auto"`` uses ``"lsa"`` while the unit matrix has at most ``lsa_max_cells`` cells.
Both give the same optimal *value*; when the optimum is not unique they may return
different (equally good) matchings.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import linear_sum_assignment, linprog

__all__ = ["unit_matching", "matching_value", "METHODS"]

METHODS = ("auto", "lsa", "lp")


def _check(weight, supply, demand, mask):
    W = np.asarray(weight, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"weight must be a 2-D array (suppliers x demanders), got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("weight must be finite")
    s = np.asarray(supply)
    d = np.asarray(demand)
    for name, v, n in (("supply", s, W.shape[0]), ("demand", d, W.shape[1])):
        if v.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {v.shape}")
        if v.dtype.kind not in "iu" or np.any(v < 0):
            raise ValueError(f"{name} must hold non-negative integers (unit counts), got {v!r}")
    M = np.ones(W.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if M.shape != W.shape:
        raise ValueError(f"mask must have shape {W.shape}, got {M.shape}")
    return W, s.astype(np.int64), d.astype(np.int64), M & (W > 0)


def matching_value(weight: NDArray, counts: NDArray) -> float:
    """Total weight ``sum W * N`` of a unit matching."""
    return float((np.asarray(weight, float) * np.asarray(counts, float)).sum())


def unit_matching(
    weight: NDArray,
    supply: NDArray,
    demand: NDArray,
    mask: NDArray | None = None,
    method: str = "auto",
    lsa_max_cells: int = 400_000,
) -> NDArray[np.int64]:
    """MWBM of the disaggregated graph; returns the ``(n_sup, n_dem)`` matched-unit counts."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    W, s, d, M = _check(weight, supply, demand, mask)
    n_sup, n_dem = W.shape
    out = np.zeros((n_sup, n_dem), dtype=np.int64)
    rows = np.flatnonzero((s > 0) & M.any(axis=1))
    cols = np.flatnonzero((d > 0) & M.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return out
    # A supplier can never use more units than its neighbours demand (and vice versa):
    # trimming these unusable units changes no matching's value.
    s_eff = np.minimum(s[rows], (M[np.ix_(rows, cols)] * d[cols][None, :]).sum(axis=1))
    d_eff = np.minimum(d[cols], (M[np.ix_(rows, cols)] * s[rows][:, None]).sum(axis=0))
    if method == "auto":
        method = "lsa" if int(s_eff.sum()) * int(d_eff.sum()) <= lsa_max_cells else "lp"
    Wr = np.where(M[np.ix_(rows, cols)], W[np.ix_(rows, cols)], 0.0)
    if method == "lsa":
        su = np.repeat(np.arange(rows.size), s_eff)
        du = np.repeat(np.arange(cols.size), d_eff)
        if su.size == 0 or du.size == 0:
            return out
        cost = Wr[su][:, du]
        r, c = linear_sum_assignment(cost, maximize=True)
        keep = cost[r, c] > 0
        np.add.at(out, (rows[su[r[keep]]], cols[du[c[keep]]]), 1)
        return out
    # transportation LP on the aggregated graph (edges with positive weight only)
    ei, ej = np.nonzero(Wr > 0)
    if ei.size == 0:
        return out
    m = ei.size
    A = sparse.vstack(
        [
            sparse.csr_array((np.ones(m), (ei, np.arange(m))), shape=(rows.size, m)),
            sparse.csr_array((np.ones(m), (ej, np.arange(m))), shape=(cols.size, m)),
        ]
    ).tocsr()
    b = np.concatenate([s_eff, d_eff]).astype(np.float64)
    res = linprog(-Wr[ei, ej], A_ub=A, b_ub=b, bounds=(0, None), method="highs-ds")
    if res.status != 0:  # pragma: no cover - a bounded feasible LP always solves
        raise RuntimeError(f"transportation LP failed: {res.message}")
    n = np.rint(res.x).astype(np.int64)
    if np.abs(res.x - n).max() > 1e-6:  # pragma: no cover - TU vertex is integral
        raise RuntimeError("transportation LP returned a fractional vertex")
    out[rows[ei], cols[ej]] = n
    return out
