"""Exchange ADMM for quadratic players and one coordinator, vectorised over players and batches.

The *exchange problem* (Boyd et al., "Distributed Optimization and Statistical Learning via
the ADMM", 2011, Section 7.3.2) with ``N`` players and a coordinator::

    min   sum_i f_i(x_i) + g(z)
    s.t.  sum_i x_i + z = 0
          lo_i <= x_i <= hi_i,       f_i(x) = 1/2 a_i x^2 + b_i x   (a_i >= 0)

``x_i`` is player ``i``'s net injection and ``z`` the coordinator's net intake (for an
energy community: the import from the grid, ``g`` its cost). In consensus form
(``x_i = z_i``, ``sum_i z_i = 0``) with one penalty ``rho_i`` per agent (a diagonal scaling
of the augmented Lagrangian; ``rho_i = rho`` for all agents is the textbook algorithm), the
dual variable ``y`` is common to all agents and each iteration is::

    s   = (sum_i x_i + z) / sum_i (1 / rho_i)                                   (imbalance)
    x_i <- argmin f_i(x) + rho_i/2 (x - x_i + (s + y)/rho_i)^2  over [lo_i, hi_i]  (x-update)
    z   <- argmin g(z)   + rho_0/2 (z - z   + (s + y)/rho_0)^2                  (coordinator)
    y   <- y + (sum_i x_i + z) / sum_i (1 / rho_i)                              (price update)

With a uniform ``rho`` this is Boyd's ``x_i - xbar - u`` update (``y = rho u``). The
x-update of a quadratic player with box bounds is closed form (a clip), so one iteration
is a handful of NumPy operations on ``(B, N)`` arrays: ``B`` independent problems (e.g.
the market time units of a day) are solved together; each stops when its own residuals
are small (converged problems are frozen). The price of energy, i.e. the marginal value
of one more unit injected, is ``price = -y`` (at the optimum ``f_i'(x_i) = price`` for
every player inside its bounds and ``g'(z) = price``).

Stopping (Boyd Section 3.3.1): primal residual ``r = ||x_i - z_i||`` and dual residual
``s = ||rho_i (z_i - z_i_prev)||`` over the ``N + 1`` agents, against
``eps_pri = sqrt(N+1) eps_abs + eps_rel ||x||`` and ``eps_dual = sqrt(N+1) eps_abs +
eps_rel sqrt(N+1) |y|``. Optional residual balancing (Boyd Section 3.4.1: factor 2 when
one residual exceeds 10 times the other) scales every penalty alike, every
``adapt_every`` iterations during the first ``adapt_until`` iterations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ADMMResult", "exchange_admm", "quadratic_box_prox"]

CoordinatorProx = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]], NDArray[np.float64]]


@dataclass(frozen=True)
class ADMMResult:
    """Outcome of :func:`exchange_admm` for ``B`` problems of ``N`` players.

    Attributes
    ----------
    x : (B, N) players' set-points.
    z : (B,) coordinator's variable.
    price : (B,) ``-rho * u``, the marginal value of injected energy.
    iterations : (B,) iterations until each problem met its stopping criteria (or ``max_iter``).
    primal_residual, dual_residual : (B,) final residual norms.
    converged : (B,) stopping criteria met.
    rho : (B,) final penalty parameter.
    history : per-iteration ``(r, s)`` arrays of shape (iterations_max, B) when requested, else None.
    """

    x: NDArray[np.float64]
    z: NDArray[np.float64]
    price: NDArray[np.float64]
    iterations: NDArray[np.int64]
    primal_residual: NDArray[np.float64]
    dual_residual: NDArray[np.float64]
    converged: NDArray[np.bool_]
    rho: NDArray[np.float64]
    history: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None


def quadratic_box_prox(
    v: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64], lo: NDArray[np.float64],
    hi: NDArray[np.float64], rho: NDArray[np.float64] | float,
) -> NDArray[np.float64]:
    """``argmin_x 1/2 a x^2 + b x + rho/2 (x - v)^2`` over ``[lo, hi]`` (elementwise, ``a >= 0``)."""
    return np.clip((rho * v - b) / (a + rho), lo, hi)


def exchange_admm(
    a: ArrayLike,
    b: ArrayLike,
    lo: ArrayLike,
    hi: ArrayLike,
    coordinator_prox: CoordinatorProx,
    rho: ArrayLike = 1.0,
    rho_weights: ArrayLike | None = None,
    eps_abs: float = 1e-6,
    eps_rel: float = 1e-6,
    max_iter: int = 10_000,
    x0: ArrayLike | None = None,
    price0: ArrayLike | None = None,
    adaptive_rho: bool = True,
    adapt_until: int = 2_000,
    adapt_every: int = 10,
    record_history: bool = False,
) -> ADMMResult:
    """Solve ``B`` exchange problems by ADMM (see the module docstring).

    Parameters
    ----------
    a, b, lo, hi : players' cost coefficients and bounds, broadcastable to ``(B, N)``
        (a 1-D input is one problem, ``B = 1``).
    coordinator_prox : ``f(v, rho, active) -> z`` returning, for each problem ``k`` (of
        shape ``(B,)``), ``argmin_z g_k(z) + rho_k/2 (z - v_k)^2``. ``active`` marks the
        problems still iterating; rows that are not active may return anything.
    rho : initial penalty (scalar or ``(B,)``), in cost units per squared energy unit.
    rho_weights : optional per-agent multipliers of ``rho``, broadcastable to
        ``(B, N + 1)`` (last column: the coordinator). ``inf`` freezes an agent (use it for
        players with ``lo == hi``). Default: all ones (the textbook uniform penalty).
    eps_abs, eps_rel : stopping tolerances (energy units / relative).
    x0, price0 : warm start (default: players at the projection of 0, price 0).
    adaptive_rho : residual balancing (mu = 10, tau = 2) every ``adapt_every`` iterations
        during the first ``adapt_until`` iterations (scales every agent's penalty alike).
    """
    a_ = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b_ = np.atleast_2d(np.asarray(b, dtype=np.float64))
    lo_ = np.atleast_2d(np.asarray(lo, dtype=np.float64))
    hi_ = np.atleast_2d(np.asarray(hi, dtype=np.float64))
    shape = np.broadcast_shapes(a_.shape, b_.shape, lo_.shape, hi_.shape)
    a_, b_, lo_, hi_ = (np.broadcast_to(v, shape) for v in (a_, b_, lo_, hi_))
    B, N = shape
    if np.any(a_ < 0) or not np.all(np.isfinite(a_)) or not np.all(np.isfinite(b_)):
        raise ValueError("a must be finite and >= 0, b finite")
    if np.any(lo_ > hi_):
        raise ValueError("every player needs lo <= hi")
    n_agents = N + 1
    sq = np.sqrt(n_agents)
    rho_v = np.broadcast_to(np.asarray(rho, dtype=np.float64), (B,)).copy()
    if np.any(rho_v <= 0) or not np.all(np.isfinite(rho_v)):
        raise ValueError(f"rho must be finite and > 0, got {rho!r}")
    wts = np.ones((B, n_agents)) if rho_weights is None else \
        np.broadcast_to(np.asarray(rho_weights, dtype=np.float64), (B, n_agents)).copy()
    if np.any(~(wts > 0)):
        raise ValueError("rho_weights must be > 0 (inf allowed to freeze an agent)")
    frozen = np.isinf(wts)
    if np.any(frozen[:, -1]):
        raise ValueError("the coordinator cannot be frozen (rho_weights[..., -1] must be finite)")
    wfin = np.where(frozen, 1.0, wts)
    inv_w = np.where(frozen, 0.0, 1.0 / wfin)  # 1 / weight, 0 for frozen agents
    x = np.clip(np.zeros(shape) if x0 is None else np.broadcast_to(np.asarray(x0, dtype=np.float64), shape), lo_, hi_)
    x = np.array(x, dtype=np.float64)
    z = -x.sum(axis=1)
    y = -(np.zeros(B) if price0 is None else np.broadcast_to(np.asarray(price0, dtype=np.float64), (B,)).copy())

    def imbalance(x, z, rho_v):
        # s = (sum x + z) / sum_i (1 / rho_i): the consensus correction, in price units
        return (x.sum(axis=1) + z) / (inv_w.sum(axis=1) / rho_v)

    s = imbalance(x, z, rho_v)
    cons_prev = np.concatenate([x, z[:, None]], axis=1) - s[:, None] * inv_w / rho_v[:, None]

    iters = np.zeros(B, dtype=np.int64)
    r_norm = np.full(B, np.inf)
    s_norm = np.full(B, np.inf)
    done = np.zeros(B, dtype=bool)
    hist_r: list[NDArray[np.float64]] = []
    hist_s: list[NDArray[np.float64]] = []
    for k in range(1, max_iter + 1):
        act = ~done
        if not act.any():
            break
        rho_i = rho_v[:, None] * wfin  # (B, N+1)
        shift = ((s + y)[:, None]) / rho_i  # (s + y) / rho_i
        x_new = quadratic_box_prox(x - shift[:, :N], a_, b_, lo_, hi_, rho_i[:, :N])
        x_new = np.where(frozen[:, :N], x, x_new)
        z_new = coordinator_prox(z - shift[:, N], rho_i[:, N], act)
        x = np.where(act[:, None], x_new, x)
        z = np.where(act, z_new, z)
        s_new = imbalance(x, z, rho_v)
        y = np.where(act, y + s_new, y)
        s = np.where(act, s_new, s)
        cons = np.concatenate([x, z[:, None]], axis=1) - s[:, None] * inv_w / rho_v[:, None]
        r = np.abs(s) * np.sqrt(np.sum((inv_w / rho_v[:, None]) ** 2, axis=1))
        d = np.where(frozen, 0.0, rho_i * (cons - cons_prev))
        sd = np.linalg.norm(d, axis=1)
        cons_prev = cons
        r_norm = np.where(act, r, r_norm)
        s_norm = np.where(act, sd, s_norm)
        iters = np.where(act, k, iters)
        xnorm = np.sqrt(np.sum(x * x, axis=1) + z * z)
        eps_pri = sq * eps_abs + eps_rel * xnorm
        eps_dual = sq * eps_abs + eps_rel * np.abs(y) * sq
        if record_history:
            hist_r.append(r_norm.copy())
            hist_s.append(s_norm.copy())
        done = done | (act & (r <= eps_pri) & (sd <= eps_dual))
        if adaptive_rho and k <= adapt_until and k % adapt_every == 0:
            up = act & ~done & (r > 10.0 * sd)
            down = act & ~done & (sd > 10.0 * r)
            rho_v = rho_v * np.where(up, 2.0, np.where(down, 0.5, 1.0))
            s = imbalance(x, z, rho_v)  # same consensus point, expressed with the new penalty
    history = (np.asarray(hist_r), np.asarray(hist_s)) if record_history else None
    return ADMMResult(
        x=x, z=z, price=-y, iterations=iters, primal_residual=r_norm, dual_residual=s_norm,
        converged=done, rho=rho_v, history=history,
    )
