"""ProsumerSharing-v0 analysis helpers: where Algorithm 2 as printed settles
(:func:`algorithm2_fixed_point`, used to explain the residual distance to the optimum in the
docs) and the masked order statistics behind the KPIs of
:meth:`~prosumer_gym.envs.prosumer_sharing.feedback.SharingCommunities.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize

from prosumer_gym.envs.prosumer_sharing.costs import CostParams
from prosumer_gym.envs.prosumer_sharing.oracle import Optimum, _check_contracts, solve_optimum

__all__ = ["algorithm2_fixed_point"]


def algorithm2_fixed_point(costs: CostParams, contract_x: float, contract_y: float,
                           start: Optimum | None = None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Where Algorithm 2 as printed (Eq. 22) settles: ``x_i = sigma_x,i`` and ``y_i = sigma_y,i``
    with the sums on contract, i.e. ``x_i^2 = Omega_x g'_x,i(x_i, y_i)``, ``y_i^2 = Omega_y
    g'_y,i``, ``sum x = C_x``, ``sum y = C_y``. Not the KKT point of Problem III.2 (Eq. 18)
    unless all derivatives coincide; used to explain the residual distance (docs).
    Returns ``(x, y, Omega_x, Omega_y)``; ``scipy.optimize.root`` (hybr) with the exact Jacobian.
    """
    n = costs.n
    _check_contracts(n, contract_x, contract_y)
    if start is None:
        start = solve_optimum(costs, contract_x, contract_y)
    x0, y0 = start.x, start.y
    gx0, gy0 = costs.grad(x0, y0)
    z0 = np.concatenate([x0, y0, [np.mean(x0 * x0 / gx0), np.mean(y0 * y0 / gy0)]])

    def fun(z: np.ndarray) -> np.ndarray:
        x, y, ox, oy = z[:n], z[n:2 * n], z[-2], z[-1]
        gx, gy = costs.grad(x, y)
        return np.concatenate([x * x - ox * gx, y * y - oy * gy, [x.sum() - contract_x, y.sum() - contract_y]])

    def jac(z: np.ndarray) -> np.ndarray:
        x, y, ox, oy = z[:n], z[n:2 * n], z[-2], z[-1]
        gx, gy = costs.grad(x, y)
        hxx, hxy, hyy = costs.hess(x, y)
        j = np.zeros((2 * n + 2, 2 * n + 2))
        i = np.arange(n)
        j[i, i] = 2 * x - ox * hxx
        j[i, n + i] = -ox * hxy
        j[i, -2] = -gx
        j[n + i, i] = -oy * hxy
        j[n + i, n + i] = 2 * y - oy * hyy
        j[n + i, -1] = -gy
        j[-2, :n] = 1.0
        j[-1, n:2 * n] = 1.0
        return j

    sol = optimize.root(fun, z0, jac=jac, method="hybr", tol=1e-13)
    if not sol.success or np.max(np.abs(fun(sol.x))) > 1e-8:
        raise RuntimeError(f"algorithm2_fixed_point did not converge: {sol.message}")
    z = sol.x
    return z[:n].copy(), z[n:2 * n].copy(), float(z[-2]), float(z[-1])


def _sorted_stats(a: np.ndarray, valid: np.ndarray, qs: Sequence[float]) -> tuple[list[np.ndarray], np.ndarray,
                                                                                  np.ndarray]:
    """Row-wise quantiles ``qs`` (numpy's default linear interpolation), min and max over the
    ``valid`` entries, from one sort; NaN for rows without any valid entry."""
    b = np.sort(np.where(valid, a, np.inf), axis=1)
    n = valid.sum(axis=1)
    last = np.maximum(n - 1, 0)
    rows = np.arange(a.shape[0])
    quants = []
    for q in qs:
        pos = q * last
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        vlo, vhi = b[rows, lo], b[rows, hi]
        with np.errstate(invalid="ignore"):
            quants.append(np.where(n > 0, vlo + (vhi - vlo) * (pos - lo), np.nan))
    empty = n == 0
    return quants, np.where(empty, np.nan, b[:, 0]), np.where(empty, np.nan, b[rows, last])


def _masked_quantile(a: np.ndarray, valid: np.ndarray, q: float) -> np.ndarray:
    """Row-wise quantile over ``valid`` entries (NaN for empty rows)."""
    return _sorted_stats(a, valid, (q,))[0][0]


def _worst(rows: Any) -> np.ndarray:
    """Element-wise max over classes, ignoring NaN (NaN if every class is NaN)."""
    a = np.stack(list(rows))
    out = np.max(np.where(np.isnan(a), -np.inf, a), axis=0)
    return np.where(np.isfinite(out), out, np.nan)
