"""ProsumerSharing-v0 oracle: Problem III.2 (Eqs. 8-12) solved exactly, and a sampled
:class:`Community` (costs, contracts, optimum).

:func:`solve_optimum`: the problem is strictly convex and separable with two coupling
equalities; the concave dual in ``(mu_x, mu_y)`` is maximised with
``scipy.optimize.minimize`` (``trust-exact``, exact gradient and Hessian); each prosumer's
best response is computed to machine precision by bisection on its total ``s = x + y``.
Bounds ``0 <= x, y <= 1`` (the averages of binary decisions; the paper assumes
``x*, y* in (0, 1]``). :func:`solve_optimum_primal` is the SLSQP reference used by the tests;
:func:`kkt_residual` checks Eq. 18.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from prosumer_gym.envs.prosumer_sharing.costs import _FLOOR, CostParams

__all__ = ["Optimum", "Community", "kkt_residual", "solve_optimum", "solve_optimum_primal"]


@dataclass(frozen=True, eq=False)
class Optimum:
    """Solution of Problem III.2: ``x``, ``y`` (N,), multipliers ``mu_x``, ``mu_y`` (the
    consensus values of Eq. 18), total cost, KKT residual and the number of prosumers at a
    bound of [0, 1]."""

    x: np.ndarray
    y: np.ndarray
    mu_x: float
    mu_y: float
    cost: float
    kkt_residual: float
    n_at_bounds: int
    method: str


def _best_response(costs: CostParams, mu_x: np.ndarray, mu_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """argmin over [0,1]^2 of g_i(x, y) - mu_x x - mu_y y, for every prosumer (vectorised).

    Reduced to the total s = x + y: for fixed s the inner problem is a 1-D quadratic in x
    (closed form, clipped to [max(0, s-1), min(1, s)]); its value F(s) is convex and F'(s) is
    found exactly (moving x or y, whichever is free), so bisection on s in [0, 2] converges
    to machine precision.
    """
    T = costs.target
    tx = costs.alpha * T
    ty = T - tx
    wx, wy = costs.weight_x, costs.weight_y
    wsum = np.maximum(wx + wy, _FLOOR)
    c, q, r = costs.linear, costs.quad, costs.quartic
    mx = np.broadcast_to(mu_x, T.shape)
    my = np.broadcast_to(mu_y, T.shape)
    base = (wx * tx - wy * ty + mx - my) / wsum
    slope = wy / wsum

    def xhat(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo = np.maximum(0.0, s - 1.0)
        hi = np.minimum(1.0, s)
        return np.clip(base + slope * s, lo, hi), lo, hi

    def dF(s: np.ndarray) -> np.ndarray:
        x, lo, hi = xhat(s)
        y = s - x
        u = s - T
        phi = c + u * (q + r * u * u)
        moving_x = ((x <= lo) & (s > 1.0)) | ((x >= hi) & (s < 1.0))
        return np.where(moving_x, phi + wx * (x - tx) - mx, phi + wy * (y - ty) - my)

    lo_s = np.zeros_like(T)
    hi_s = np.full_like(T, 2.0)
    for _ in range(64):
        mid = 0.5 * (lo_s + hi_s)
        pos = dF(mid) > 0
        hi_s = np.where(pos, mid, hi_s)
        lo_s = np.where(pos, lo_s, mid)
        if np.all(hi_s - lo_s <= 4e-16):
            break
    s = 0.5 * (lo_s + hi_s)
    x = xhat(s)[0]
    return x, np.clip(s - x, 0.0, 1.0)


def _jacobian_sum(costs: CostParams, x: np.ndarray, y: np.ndarray, eps: float = 1e-10) -> np.ndarray:
    """sum_i d(x_i, y_i)/d(mu_x, mu_y): inverse Hessian on each prosumer's free coordinates."""
    hxx, hxy, hyy = costs.hess(x, y)
    hxx = np.maximum(hxx, _FLOOR)
    hyy = np.maximum(hyy, _FLOOR)
    fx = (x > eps) & (x < 1 - eps)
    fy = (y > eps) & (y < 1 - eps)
    both = fx & fy
    det = np.maximum(hxx * hyy - hxy * hxy, _FLOOR)
    jxx = np.where(both, hyy / det, np.where(fx, 1.0 / hxx, 0.0))
    jyy = np.where(both, hxx / det, np.where(fy, 1.0 / hyy, 0.0))
    jxy = np.where(both, -hxy / det, 0.0)
    return np.array([[jxx.sum(), jxy.sum()], [jxy.sum(), jyy.sum()]])


def _check_contracts(n: int, contract_x: float, contract_y: float) -> None:
    for name, c in (("contract_x", contract_x), ("contract_y", contract_y)):
        if not (np.isfinite(c) and 0 < c < n):
            raise ValueError(
                f"{name} (C) must satisfy 0 < C < N = {n} so that Problem III.2 has an interior optimum "
                f"(the averages of binary decisions lie in [0, 1]), got {c!r}"
            )


def kkt_residual(costs: CostParams, x: np.ndarray, y: np.ndarray, contract_x: float, contract_y: float,
                 eps: float = 1e-9) -> tuple[float, float, float]:
    """Largest violation of the KKT conditions of Problem III.2 at (x, y), and the
    multipliers (median derivative of the prosumers strictly inside [0, 1]).

    Conditions: sums equal the contracts; interior prosumers share the derivative (Eq. 18);
    prosumers at 0 have derivative >= mu, at 1 <= mu.
    """
    gx, gy = costs.grad(x, y)
    res = max(abs(x.sum() - contract_x), abs(y.sum() - contract_y))
    res = max(res, float(np.max(np.maximum(-x, 0))), float(np.max(np.maximum(x - 1, 0))))
    res = max(res, float(np.max(np.maximum(-y, 0))), float(np.max(np.maximum(y - 1, 0))))
    mus = []
    for v, g in ((x, gx), (y, gy)):
        free = (v > eps) & (v < 1 - eps)
        mu = float(np.median(g[free])) if np.any(free) else float(np.median(g))
        mus.append(mu)
        if np.any(free):
            res = max(res, float(np.max(np.abs(g[free] - mu))))
        at0 = v <= eps
        at1 = v >= 1 - eps
        if np.any(at0):
            res = max(res, float(np.max(np.maximum(mu - g[at0], 0))))
        if np.any(at1):
            res = max(res, float(np.max(np.maximum(g[at1] - mu, 0))))
    return res, mus[0], mus[1]


def solve_optimum(costs: CostParams, contract_x: float, contract_y: float, tol: float = 1e-10) -> Optimum:
    """Problem III.2 (Eqs. 8-12, with x, y <= 1) solved exactly through its dual.

    The dual ``D(mu) = sum_i min_{[0,1]^2} [g_i - mu_x x - mu_y y] + mu_x C_x + mu_y C_y`` is
    concave and smooth (strict convexity); ``scipy.optimize.minimize(method="trust-exact")``
    maximises it with the exact gradient ``C - sum_i (x_i, y_i)(mu)`` and Hessian. The
    returned point satisfies the sums to ``tol`` and Eq. 18 to machine precision.
    """
    if costs.linear.ndim != 1:
        raise ValueError(f"solve_optimum takes one community (costs of shape (N,)), got shape {costs.shape}")
    n = costs.n
    _check_contracts(n, contract_x, contract_y)
    target = np.array([contract_x, contract_y], dtype=np.float64)
    gx0, gy0 = costs.grad(np.full(n, contract_x / n), np.full(n, contract_y / n))
    mu0 = np.array([gx0.mean(), gy0.mean()])

    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def br(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = np.asarray(mu, dtype=np.float64).tobytes()
        if key not in cache:
            if len(cache) > 8:
                cache.clear()
            cache[key] = _best_response(costs, mu[0], mu[1])
        return cache[key]

    def fun(mu: np.ndarray) -> float:
        x, y = br(mu)
        val = np.sum(costs.cost(x, y) - mu[0] * x - mu[1] * y) + mu @ target
        return -float(val)

    def jac(mu: np.ndarray) -> np.ndarray:
        x, y = br(mu)
        return np.array([x.sum(), y.sum()]) - target

    def hess(mu: np.ndarray) -> np.ndarray:
        x, y = br(mu)
        return _jacobian_sum(costs, x, y) + 1e-14 * np.eye(2)

    def gap_of(mu: np.ndarray) -> float:
        return float(np.max(np.abs(jac(mu))))

    # Stage 1: globally convergent trust region on the dual. Near the solution the dual's
    # changes fall below the float resolution of its value, so stage 2 polishes the
    # stationarity equations sum_i (x_i, y_i)(mu) = (C_x, C_y) directly (no function values).
    res = optimize.minimize(fun, mu0, jac=jac, hess=hess, method="trust-exact",
                            options={"gtol": tol, "maxiter": 200})
    mu = res.x
    if gap_of(mu) > tol:
        sol = optimize.root(jac, mu, jac=hess, method="hybr", options={"xtol": 1e-15})
        if gap_of(sol.x) < gap_of(mu):
            mu = sol.x
    x, y = br(mu)
    gap = gap_of(mu)
    if not np.isfinite(gap) or gap > max(1e3 * tol, 1e-7):
        raise RuntimeError(f"solve_optimum did not converge: constraint gap {gap:.3g} ({res.message})")
    kkt, _, _ = kkt_residual(costs, x, y, contract_x, contract_y)
    at_b = int(np.sum((x <= 1e-9) | (x >= 1 - 1e-9) | (y <= 1e-9) | (y >= 1 - 1e-9)))
    return Optimum(x=x, y=y, mu_x=float(mu[0]), mu_y=float(mu[1]), cost=float(costs.cost(x, y).sum()),
                   kkt_residual=float(kkt), n_at_bounds=at_b, method="dual-trust-exact")


def solve_optimum_primal(costs: CostParams, contract_x: float, contract_y: float) -> Optimum:
    """Reference solver: Problem III.2 on all 2N variables by SLSQP (slow; for checks)."""
    if costs.linear.ndim != 1:
        raise ValueError(f"solve_optimum_primal takes costs of shape (N,), got {costs.shape}")
    n = costs.n
    _check_contracts(n, contract_x, contract_y)
    a = np.zeros((2, 2 * n))
    a[0, :n] = 1.0
    a[1, n:] = 1.0
    b = np.array([contract_x, contract_y])

    def f(z: np.ndarray) -> float:
        return float(costs.cost(z[:n], z[n:]).sum())

    def df(z: np.ndarray) -> np.ndarray:
        return np.concatenate(costs.grad(z[:n], z[n:]))

    z0 = np.concatenate([np.full(n, contract_x / n), np.full(n, contract_y / n)])
    res = optimize.minimize(f, z0, jac=df, method="SLSQP", bounds=[(0.0, 1.0)] * (2 * n),
                            constraints=[{"type": "eq", "fun": lambda z: a @ z - b, "jac": lambda z: a}],
                            options={"ftol": 1e-15, "maxiter": 1000})
    x, y = res.x[:n], res.x[n:]
    kkt, mx, my = kkt_residual(costs, x, y, contract_x, contract_y, eps=1e-7)
    at_b = int(np.sum((x <= 1e-7) | (x >= 1 - 1e-7) | (y <= 1e-7) | (y >= 1 - 1e-7)))
    return Optimum(x=x, y=y, mu_x=mx, mu_y=my, cost=f(res.x), kkt_residual=float(kkt), n_at_bounds=at_b,
                   method="primal-slsqp")


@dataclass(frozen=True, eq=False)
class Community:
    """A sampled community: its costs (N,), contracts ``(C_x, C_y)`` and optimum (or None)."""

    costs: CostParams
    contracts: np.ndarray
    optimum: Optimum | None

    @property
    def n(self) -> int:
        return self.costs.n
