"""EnergyCollective-v0 P2P market with product differentiation (``market="p2p"``): the MBED,
its consensus+innovation solution and the centralised QP, and the slides' two-village example.

Source: slides ``002`` (Sorin, Bobo & Pinson, IEEE TPWRS 2019).

P2P market with product differentiation
---------------------------------------
Multi-bilateral economic dispatch (MBED) with reciprocity ``P_nm = -P_mn``, bounds on
``sum_m P_nm``, producers ``P_nm >= 0``, consumers ``P_nm <= 0``, and costs::

    C_n = 1/2 a_n (sum_m P_nm)^2 + b_n sum_m P_nm + sum_g c_n^g sum_m gamma_nm^g |P_nm|

(the slides write ``c gamma P_nm``, which for a consumer's ``P_nm <= 0`` would reward
distant trades; ``|P_nm|`` makes the preference a cost on both sides; literal switch
``MBEDInstance.preference="signed"``, env keyword ``p2p_preference="signed"``: the slides'
``c_n gamma_nm P_nm`` as printed), plus an optional
small trade curvature ``eps/2 sum_m P_nm^2`` (``MBEDInstance.trade_curvature``): without
it the MBED is degenerate (costs depend on the trades only through their sum and linear
terms) and the C+I price-and-quantity iteration oscillates along the degenerate
directions instead of converging. Solved by the consensus+innovation (C+I) updates of the
slides (:func:`solve_p2p_ci`) and by the centralised QP (:func:`solve_p2p_qp`).
:func:`two_villages` builds the slides' illustrative example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from prosumer_gym.core.qp import QPInfeasibleError, solve_qp
from prosumer_gym.core.validation import check_choice
from prosumer_gym.envs.energy_collective.players import Community
from prosumer_gym.envs.energy_collective.population import retail_prices, sample_population

__all__ = [
    "INNOVATIONS",
    "PREFERENCES",
    "MBEDInstance",
    "P2PResult",
    "mbed_from_community",
    "solve_p2p_ci",
    "solve_p2p_qp",
    "two_villages",
]


#: preference terms of the MBED: ``"abs"`` ``c_n gamma_nm |P_nm|`` (default, a cost on both
#: sides) and ``"signed"`` ``c_n gamma_nm P_nm`` (the slides' term as printed)
PREFERENCES = ("abs", "signed")


@dataclass(frozen=True)
class MBEDInstance:
    """One multi-bilateral economic dispatch (slides' MBED), agents split into producers
    ``P`` (``P_nm >= 0``) and consumers ``C`` (``P_nm <= 0``); only producer-consumer
    pairs can trade (a producer-producer trade would need ``P_nm >= 0`` and ``P_mn =
    -P_nm >= 0``).

    Per agent (arrays over all ``N`` agents): ``a`` (> 0, EUR/kWh^2), ``b`` (EUR/kWh),
    bounds ``lo <= sum_m P_nm <= hi`` (producers ``lo >= 0``, consumers ``hi <= 0``),
    ``is_producer``, preference ``pref`` (``c_n``, EUR/kWh per unit of ``gamma``) and the
    criterion ``gamma`` (N, N) (e.g. distance in km). ``const`` (N,) is an additive cost
    constant per agent (for reporting costs on the community's scale). ``preference``
    (:data:`PREFERENCES`): ``"abs"`` (default) prices ``c_n gamma_nm |P_nm|``; ``"signed"``
    is the slides' ``c_n gamma_nm P_nm`` as printed, under which a consumer (``P_nm <= 0``)
    earns ``c_n gamma_nm`` per kWh bought, so it prefers distant producers.
    """

    names: tuple[str, ...]
    a: NDArray[np.float64]
    b: NDArray[np.float64]
    lo: NDArray[np.float64]
    hi: NDArray[np.float64]
    is_producer: NDArray[np.bool_]
    gamma: NDArray[np.float64]
    pref: NDArray[np.float64]
    const: NDArray[np.float64] | None = None
    trade_curvature: float = 0.0
    preference: str = "abs"

    def __post_init__(self) -> None:
        n = len(self.names)
        check_choice("preference", self.preference, PREFERENCES)
        eps = float(self.trade_curvature)
        if not (np.isfinite(eps) and eps >= 0):
            raise ValueError(f"trade_curvature must be a finite number >= 0 EUR/kWh^2, got {self.trade_curvature!r}")
        object.__setattr__(self, "trade_curvature", eps)
        for fld in ("a", "b", "lo", "hi", "pref"):
            v = np.asarray(getattr(self, fld), dtype=np.float64)
            if v.shape != (n,):
                raise ValueError(f"{fld} must have shape ({n},), got {v.shape}")
            object.__setattr__(self, fld, v)
        isp = np.asarray(self.is_producer, dtype=bool)
        object.__setattr__(self, "is_producer", isp)
        g = np.asarray(self.gamma, dtype=np.float64)
        if g.shape != (n, n) or not np.all(np.isfinite(g)):
            raise ValueError(f"gamma must be a finite ({n}, {n}) matrix")
        object.__setattr__(self, "gamma", g)
        object.__setattr__(self, "const", np.zeros(n) if self.const is None else np.asarray(self.const, float))
        if not np.all(np.isfinite(self.a)) or np.any(self.a <= 0):
            raise ValueError("a must be > 0 for every P2P agent (the C+I update divides by a_n)")
        if not np.all(np.isfinite(self.b)) or np.any(np.isnan(self.lo)) or np.any(np.isnan(self.hi)):
            raise ValueError("b must be finite and the bounds not NaN")
        if np.any(self.pref < 0) or not np.all(np.isfinite(self.pref)):
            raise ValueError("preferences c_n must be finite and >= 0")
        bad = self.lo > self.hi + 1e-12
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"infeasible player bounds: agent {self.names[i]!r} has lower bound {self.lo[i]:.6g} > "
                             f"upper bound {self.hi[i]:.6g} kWh")
        if np.any(self.lo[isp] < -1e-12) or np.any(self.hi[~isp] > 1e-12):
            raise ValueError("producers need lo >= 0 and consumers hi <= 0")
        if not isp.any() or isp.all():
            raise ValueError("the MBED needs at least one producer and one consumer")
        # feasibility: some exchange must balance both sides
        p_lo, p_hi = self.lo[isp].sum(), self.hi[isp].sum()
        c_lo, c_hi = -self.hi[~isp].sum(), -self.lo[~isp].sum()
        if p_lo > c_hi + 1e-9 or c_lo > p_hi + 1e-9:
            raise ValueError(
                f"infeasible MBED: producers can supply [{p_lo:.4g}, {p_hi:.4g}] kWh, consumers absorb "
                f"[{c_lo:.4g}, {c_hi:.4g}] kWh"
            )

    @property
    def pref_abs(self) -> NDArray[np.float64]:
        """Per-agent coefficient of ``gamma_nm |P_nm|``: ``c_n`` (``"abs"``), or ``s_n c_n``
        with ``s_n = +1`` for producers and ``-1`` for consumers (``"signed"``, since
        ``P_nm = s_n |P_nm|``)."""
        if self.preference == "abs":
            return self.pref
        return np.where(self.is_producer, self.pref, -self.pref)

    @property
    def producers(self) -> NDArray[np.int64]:
        return np.flatnonzero(self.is_producer)

    @property
    def consumers(self) -> NDArray[np.int64]:
        return np.flatnonzero(~self.is_producer)

    def costs(self, trades: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
        """Per-agent energy cost ``1/2 a s^2 + b s + const`` and preference cost
        ``c_n sum_m gamma_nm |P_nm|`` for a full (N, N) trade matrix."""
        s = trades.sum(axis=1)
        energy = 0.5 * self.a * s * s + self.b * s + self.const
        prefc = self.pref_abs * np.sum(self.gamma * np.abs(trades), axis=1)
        friction = 0.5 * self.trade_curvature * np.sum(trades * trades, axis=1)
        return {"energy": energy, "preference": prefc, "friction": friction, "total": energy + prefc + friction}


@dataclass(frozen=True)
class P2PResult:
    """Solution of an MBED.

    ``trades`` (N, N): ``P_nm`` (row = the agent's own view); ``prices`` (N, N):
    ``lambda_nm`` (EUR/kWh, NaN off the producer-consumer pairs); ``net`` (N,) =
    ``sum_m P_nm``; ``objective`` total cost incl. preferences; ``iterations``;
    ``converged``; ``dual_criterion`` / ``primal_criterion`` (slides' sums of
    |lambda^{k+1} - lambda^k| and |P^{k+1} - P^k|) and ``reciprocity`` (max |P_nm + P_mn|).
    """

    trades: NDArray[np.float64]
    prices: NDArray[np.float64]
    net: NDArray[np.float64]
    objective: float
    iterations: int
    converged: bool
    dual_criterion: float
    primal_criterion: float
    reciprocity: float
    method: str


def _proj_rows(V: NDArray[np.float64], lo: NDArray[np.float64], hi: NDArray[np.float64]) -> NDArray[np.float64]:
    """Euclidean projection of each row of ``V`` onto ``{x >= 0, lo <= sum x <= hi}``."""
    X = np.maximum(V, 0.0)
    s = X.sum(axis=1)
    need = (s > hi + 0.0) | (s < lo)
    if not need.any():
        return X
    rows = np.flatnonzero(need)
    Vr = V[rows]
    target = np.where(s[rows] > hi[rows], hi[rows], lo[rows])
    # find tau with sum(max(V - tau, 0)) = target (target >= 0), by sorting (simplex projection)
    n = Vr.shape[1]
    U = -np.sort(-Vr, axis=1)  # descending
    css = np.cumsum(U, axis=1)
    k = np.arange(1, n + 1)
    taus = (css - target[:, None]) / k  # tau if the top-k entries are positive
    ok = U - taus > 0
    # largest k with U_k > tau_k
    kk = n - 1 - np.argmax(ok[:, ::-1], axis=1)
    tau = taus[np.arange(len(rows)), kk]
    tau = np.where(target <= 0, np.maximum(U[:, 0], 0.0), tau)  # target 0: everything to 0
    X[rows] = np.maximum(Vr - tau[:, None], 0.0)
    return X


def _best_response_rows(v: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64], eps: float,
                        lo: NDArray[np.float64], hi: NDArray[np.float64]) -> NDArray[np.float64]:
    """Exact solution, per row ``n``, of the agent's local problem in "seller" form::

        min_X  1/2 a_n S^2 + b_n S + sum_m (eps/2 X_m^2 - v_m X_m),  X >= 0,  lo_n <= S = sum X <= hi_n

    ``X_m = max(v_m - mu, 0) / eps`` with the marginal value ``mu`` the root of
    ``mu = a S(mu) + b`` clipped to the ``mu`` range where ``lo <= S(mu) <= hi``
    (``S`` is piecewise linear and decreasing in ``mu``; all breakpoints by one sort).
    """
    R, n = v.shape
    U = -np.sort(-v, axis=1)  # descending
    css = np.concatenate([np.zeros((R, 1)), np.cumsum(U, axis=1)], axis=1)  # sum of the top k, k = 0..n
    k = np.arange(n + 1)[None, :]
    upper = np.concatenate([np.full((R, 1), np.inf), U], axis=1)  # v_(k): mu must be below it
    lower = np.concatenate([U, np.full((R, 1), -np.inf)], axis=1)  # v_(k+1): mu must be at/above it

    def pick(mu_k: NDArray[np.float64]) -> NDArray[np.float64]:
        ok = (mu_k < upper) & (mu_k >= lower)
        # exactly one k is valid up to ties; take the largest valid (ties give equal mu)
        kk = n - np.argmax(ok[:, ::-1], axis=1)
        return mu_k[np.arange(R), kk]

    with np.errstate(divide="ignore", invalid="ignore"):
        mu_root = pick((a[:, None] * css + b[:, None] * eps) / (eps + a[:, None] * k))

        def mu_for_sum(T: NDArray[np.float64]) -> NDArray[np.float64]:
            m = pick(np.where(k > 0, (css - eps * T[:, None]) / np.maximum(k, 1), np.inf))
            return np.where(np.isfinite(T), m, np.nan)

        mu_hi = mu_for_sum(hi)  # S(mu) = hi  (smallest admissible mu)
        mu_lo = np.where(lo > 0, mu_for_sum(lo), np.inf)  # S(mu) = lo (largest admissible mu)
    mu = mu_root
    mu = np.where(np.isfinite(hi) & (mu < mu_hi), mu_hi, mu)
    mu = np.where(mu > mu_lo, mu_lo, mu)
    return np.maximum(v - mu[:, None], 0.0) / eps


INNOVATIONS = ("best_response", "slides")


def solve_p2p_ci(
    inst: MBEDInstance,
    alpha: float = 0.5,
    beta: float = 0.5,
    innovation: str = "best_response",
    eps_lambda: float = 1e-7,
    eps_p: float = 1e-7,
    max_iter: int = 20_000,
    price0: float | None = None,
    warm_start: P2PResult | None = None,
) -> P2PResult:
    """Consensus+innovation for the MBED (slides, "Solution approach")::

        lambda_nm^{k+1} = lambda_nm^k - beta (lambda_nm^k - lambda_mn^k) - alpha_nm (P_nm^k + P_mn^k)
        lambdahat_nm    = lambda_nm^{k+1} - s_n c_n gamma_nm          (s_n = +1 producer, -1 consumer)
        Pi_nm^{k+1}     = f_nm ((lambdahat_nm - eps P_nm^k - b_n)/a_n - sum_l P_nl^k) + P_nm^k
        P_n^{k+1}       = projection of Pi_n^{k+1} on agent n's set (sign, bounds on sum_m P_nm)

    ``innovation="slides"`` is this update with ``f_nm = a_n / (a_n |Omega_n| + eps)``
    (``1/|Omega_n|`` for ``eps = 0``: one Newton step along the agent's total) and
    ``alpha_nm = alpha / (f_n/a_n + f_m/a_m)``. ``innovation="best_response"`` (default)
    replaces the single step by the agent's exact local solution given its prices
    ``lambdahat`` (the problem the slides' step descends on; closed form by one sort per
    agent) with ``alpha_nm = alpha * eps``: it needs ``eps = inst.trade_curvature > 0``
    and converges in far fewer iterations (measured in the benchmark).

    ``beta`` is the consensus weight between ``lambda_nm`` and ``lambda_mn``; both start at
    ``price0`` (default: the median over agents of the marginal cost at their
    least-exchange point ``clip(0, lo, hi)``), so they stay equal and ``beta`` only matters
    for a user-supplied asymmetric start. Stopping: the slides' dual and primal criteria,
    per trade: ``sum |lambda^{k+1} - lambda^k| < eps_lambda * n_trades`` and ``sum
    |P^{k+1} - P^k| < eps_p * n_trades``, plus reciprocity ``max |P_nm + P_mn| <=
    sqrt(eps_p)`` as a safeguard against stalls. ``warm_start``: a previous result on the
    same agents (e.g. the previous market time unit) whose prices and trades start the
    iteration where the producer/consumer roles are unchanged.
    """
    if innovation not in INNOVATIONS:
        raise ValueError(f"innovation must be one of {INNOVATIONS}, got {innovation!r}")
    if not (np.isfinite(alpha) and 0 < alpha <= 2):
        raise ValueError(f"alpha must be in (0, 2], got {alpha}")
    if not (0 <= beta <= 1):
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    eps = inst.trade_curvature
    if innovation == "best_response" and eps <= 0:
        raise ValueError("innovation='best_response' needs trade_curvature > 0 (a unique local solution)")
    P, C = inst.producers, inst.consumers
    nP, nC = len(P), len(C)
    aP, aC = inst.a[P], inst.a[C]
    bP, bC = inst.b[P], inst.b[C]
    # criterion-adjusted price offsets: producers need +c gamma more, consumers pay c gamma less
    pref = inst.pref_abs
    offP = pref[P][:, None] * inst.gamma[np.ix_(P, C)]
    offC = pref[C][:, None] * inst.gamma[np.ix_(C, P)]
    fP = (aP / (aP * nC + eps))[:, None]
    fC = (aC / (aC * nP + eps))[:, None]
    if innovation == "slides":
        alpha_pc = alpha / (fP / aP[:, None] + (fC / aC[:, None]).T)  # (nP, nC)
    else:
        alpha_pc = np.full((nP, nC), alpha * eps)
    if price0 is None:  # median marginal cost at the agents' least-exchange point
        s0 = np.clip(0.0, inst.lo, inst.hi)
        lam0 = float(np.median(inst.a * np.where(np.isfinite(s0), s0, 0.0) + inst.b))
    else:
        lam0 = float(price0)
    lamP = np.full((nP, nC), lam0)
    lamC = np.full((nC, nP), lam0)
    XP = np.zeros((nP, nC))  # producers' view P_pc, >= 0
    XC = np.zeros((nC, nP))  # consumers' purchases -P_cp, >= 0
    loP, hiP = inst.lo[P], inst.hi[P]
    loC, hiC = -inst.hi[C], -inst.lo[C]  # bounds on the consumer's total purchase
    if warm_start is not None and warm_start.trades.shape == (len(inst.names),) * 2:
        wp = warm_start.prices
        pair = np.isfinite(wp[np.ix_(P, C)]) & np.isfinite(wp[np.ix_(C, P)].T)
        lamP = np.where(pair, wp[np.ix_(P, C)], lamP)
        lamC = np.where(pair.T, wp[np.ix_(C, P)], lamC)
        XP = _proj_rows(np.where(pair, warm_start.trades[np.ix_(P, C)], 0.0), loP, hiP)
        XC = _proj_rows(np.where(pair.T, -warm_start.trades[np.ix_(C, P)], 0.0), loC, hiC)
    n_trades = 2 * nP * nC
    it = 0
    crit_l = crit_p = np.inf
    recip = np.inf
    converged = False
    for it in range(1, max_iter + 1):
        mismatch = XP - XC.T  # P_pc + P_cp with P_cp = -XC
        lamP_new = lamP - beta * (lamP - lamC.T) - alpha_pc * mismatch
        lamC_new = lamC - beta * (lamC - lamP.T) - alpha_pc.T * mismatch.T
        if innovation == "slides":
            # producers: target total injection; consumers: target total purchase (= -sum P_cm)
            tgtP = (lamP_new - offP - eps * XP - bP[:, None]) / aP[:, None]
            PiP = fP * (tgtP - XP.sum(axis=1, keepdims=True)) + XP
            tgtC = -((lamC_new + offC + eps * XC) - bC[:, None]) / aC[:, None]
            PiC = fC * (tgtC - XC.sum(axis=1, keepdims=True)) + XC
            XP_new = _proj_rows(PiP, loP, hiP)
            XC_new = _proj_rows(PiC, loC, hiC)
        else:
            XP_new = _best_response_rows(lamP_new - offP, aP, bP, eps, loP, hiP)
            XC_new = _best_response_rows(-(lamC_new + offC), aC, -bC, eps, loC, hiC)
        crit_l = float(np.abs(lamP_new - lamP).sum() + np.abs(lamC_new - lamC).sum())
        crit_p = float(np.abs(XP_new - XP).sum() + np.abs(XC_new - XC).sum())
        lamP, lamC, XP, XC = lamP_new, lamC_new, XP_new, XC_new
        if crit_l < eps_lambda * n_trades and crit_p < eps_p * n_trades:
            recip = float(np.max(np.abs(XP - XC.T), initial=0.0))
            if recip <= np.sqrt(eps_p):
                converged = True
                break
    recip = float(np.max(np.abs(XP - XC.T), initial=0.0))
    N = len(inst.names)
    trades = np.zeros((N, N))
    trades[np.ix_(P, C)] = XP
    trades[np.ix_(C, P)] = -XC
    prices = np.full((N, N), np.nan)
    prices[np.ix_(P, C)] = lamP
    prices[np.ix_(C, P)] = lamC
    obj = float(inst.costs(trades)["total"].sum())
    return P2PResult(
        trades=trades, prices=prices, net=trades.sum(axis=1), objective=obj, iterations=it, converged=converged,
        dual_criterion=crit_l, primal_criterion=crit_p, reciprocity=recip, method=f"c+i/{innovation}",
    )


def solve_p2p_qp(inst: MBEDInstance, tol: float = 1e-10) -> P2PResult:
    """Centralised QP of the MBED (for checking C+I; dense, so for up to ~20 x 20 pairs).

    With reciprocity substituted, the variables are the producer-to-consumer quantities
    ``X_pc = P_pc = -P_cp >= 0`` and one total per agent ``s_n = sum_m P_nm`` (bounded);
    ``|P_nm| = X`` so the preference costs are linear. The trade prices are the
    multipliers of the agents' balance rows (``lambda_nm`` = the agent's marginal cost
    plus its preference term, equal on both sides of an active trade).
    """
    P, C = inst.producers, inst.consumers
    nP, nC = len(P), len(C)
    N = len(inst.names)
    nx = nP * nC
    nv = nx + N
    H = np.zeros(nv)
    H[:nx] = 2.0 * inst.trade_curvature  # eps/2 P_nm^2 on both sides of each trade
    H[nx:] = inst.a
    c = np.zeros(nv)
    pref = inst.pref_abs
    c[:nx] = (pref[P][:, None] * inst.gamma[np.ix_(P, C)]
              + pref[C][None, :] * inst.gamma[np.ix_(C, P)].T).ravel()
    c[nx:] = inst.b
    A = np.zeros((N, nv))
    # producer p: sum_c X_pc - s_p = 0 ; consumer c: -sum_p X_pc - s_c = 0
    for k, pi in enumerate(P):
        A[pi, k * nC:(k + 1) * nC] = 1.0
    for j, ci in enumerate(C):
        A[ci, j:nx:nC] = -1.0
    A[np.arange(N), nx + np.arange(N)] = -1.0
    lb = np.concatenate([np.zeros(nx), inst.lo])
    ub = np.concatenate([np.full(nx, np.inf), inst.hi])
    try:
        sol = solve_qp(H, c, A, np.zeros(N), lb, ub, tol=tol)
    except QPInfeasibleError as e:
        raise ValueError(f"MBED infeasible: {e}") from None
    X = sol.x[:nx].reshape(nP, nC)
    trades = np.zeros((N, N))
    trades[np.ix_(P, C)] = X
    trades[np.ix_(C, P)] = -X.T
    # balance multipliers y_n = marginal cost of agent n's total (a s + b)
    y = sol.y
    prices = np.full((N, N), np.nan)
    prices[np.ix_(P, C)] = y[P][:, None] + pref[P][:, None] * inst.gamma[np.ix_(P, C)]
    prices[np.ix_(C, P)] = y[C][:, None] - pref[C][:, None] * inst.gamma[np.ix_(C, P)]
    obj = float(inst.costs(trades)["total"].sum())
    return P2PResult(
        trades=trades, prices=prices, net=trades.sum(axis=1), objective=obj, iterations=sol.iterations,
        converged=sol.converged, dual_criterion=0.0, primal_criterion=0.0, reciprocity=0.0, method="qp",
    )


def mbed_from_community(
    comm: Community,
    t: int,
    distance_preference: float = 0.0,
    grid_curvature: float = 0.001,
    fixed_curvature: float | None = None,
    grid_position_km: Sequence[float] = (0.0, 0.0),
) -> MBEDInstance:
    """The MBED of slot ``t`` of a community: its players plus two grid agents.

    * A prosumer is a producer in the slot if its reference net injection ``r >= 0`` and
      a consumer otherwise; its bounds are intersected with that half-line (MBED needs
      fixed roles; the community market keeps the full range).
    * ``grid_import`` (producer, ``b = lambda_imp``) and ``grid_export`` (consumer,
      ``b = lambda_exp``) with curvature ``grid_curvature`` (EUR/kWh^2; C+I needs
      ``a > 0``) and no bounds, located at ``grid_position_km``.
    * Players without a decision (``lo = hi``) keep their fixed total; for the C+I
      routing step they get ``a = fixed_curvature`` (default: median ``a`` of the others).
    * ``gamma_nm`` = Euclidean distance in km; every player's preference ``c_n =
      distance_preference`` (EUR/kWh per km); the grid agents have no preference.
    The cost ``f_i(p) = 1/2 a p^2 + b p + const`` keeps the community's constants so the
    costs are comparable with the community market.
    """
    if comm.position_km is None:
        raise ValueError("the P2P market needs player positions (position_km)")
    if not (np.isfinite(grid_curvature) and grid_curvature > 0):
        raise ValueError(f"p2p_grid_curvature must be > 0 EUR/kWh^2, got {grid_curvature!r}")
    if not (np.isfinite(distance_preference) and distance_preference >= 0):
        raise ValueError(f"distance_preference must be >= 0 EUR/kWh per km, got {distance_preference!r}")
    a = comm.a[t].copy()
    b = comm.b[t].copy()
    r = comm.r[t]
    const = 0.5 * a * r**2 - comm.m[t] * r  # f_i = 1/2 a p^2 + b p + const
    lo, hi = comm.lo[t].copy(), comm.hi[t].copy()
    fixed = comm.fixed[t] | (a <= 0)
    is_prod = (r > 0) | (~fixed & (r >= 0))
    lo = np.where(is_prod, np.maximum(lo, 0.0), lo)
    hi = np.where(is_prod, hi, np.minimum(hi, 0.0))
    free = ~fixed
    fc = (float(np.median(a[free])) if free.any() else 1.0) if fixed_curvature is None else float(fixed_curvature)
    if not (np.isfinite(fc) and fc > 0):
        raise ValueError(f"fixed_curvature must be > 0, got {fixed_curvature!r}")
    # players without a decision: routing curvature fc, zero cost at their fixed total
    a = np.where(fixed, fc, a)
    b = np.where(fixed, 0.0, b)
    const = np.where(fixed, -0.5 * fc * lo**2, const)
    pos = np.vstack([comm.position_km, np.asarray(grid_position_km, float)[None, :].repeat(2, axis=0)])
    gamma = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(axis=2))
    names = comm.names + ("grid_import", "grid_export")
    pref = np.concatenate([np.full(comm.n_players, float(distance_preference)), [0.0, 0.0]])
    return MBEDInstance(
        names=names,
        a=np.concatenate([a, [grid_curvature, grid_curvature]]),
        b=np.concatenate([b, [comm.import_price[t], comm.export_price[t]]]),
        lo=np.concatenate([lo, [0.0, -np.inf]]),
        hi=np.concatenate([hi, [np.inf, 0.0]]),
        is_producer=np.concatenate([is_prod, [True, False]]),
        gamma=gamma,
        pref=pref,
        const=np.concatenate([const, [0.0, 0.0]]),
    )


def two_villages(
    preference: float,
    n_per_village: int = 8,
    distance_km: float = 20.0,
    village_radius_km: float = 0.5,
    seed: int = 0,
    hour: int = 12,
    day: int = 172,
    price_year: int = 2019,
    import_markup: float = 0.10,
    grid_curvature: float = 0.001,
) -> tuple[MBEDInstance, NDArray[np.int64]]:
    """The slides' illustrative example: two villages ``distance_km`` apart, distance as
    the criterion with one unitary cost ``c_n = preference`` (EUR/kWh per km) for all.

    Village 0 (sunny): PV prosumers (6 kWp) and flexible consumers; village 1: flexible
    and inflexible consumers, one mini-CHP and one peak unit. Players are built from the
    shipped data for ``hour`` of ``day``; the grid (import and export agents) is reachable
    from both villages at zero criterion value (each village's own connection), so trades
    that avoid the other village remain possible. Returns the instance and each agent's
    village (0, 1; -1 for the grid agents).
    """
    rng = np.random.default_rng(seed)
    n = int(n_per_village)
    if n < 2:
        raise ValueError(f"n_per_village must be >= 2, got {n_per_village}")
    half = n // 2
    popA = sample_population(rng, day, 1, n_prosumers=half, n_flexible=n - half, n_inflexible=0, n_chp=0, n_peak=0,
                             pv_kw=6.0)
    popB = sample_population(rng, day, 1, n_prosumers=0, n_flexible=half, n_inflexible=n - half - 2 if n - half > 2
                             else 0, n_chp=1, n_peak=1 if n - half > 2 else 0)
    w, imp, exp_ = retail_prices(price_year, import_markup, 0.0)
    comms = [pop.community(day, w, imp, exp_).slots([hour]) for pop in (popA, popB)]
    k = [c.n_players for c in comms]
    posA = rng.normal(0.0, village_radius_km, size=(k[0], 2))
    posB = rng.normal(0.0, village_radius_km, size=(k[1], 2)) + np.array([distance_km, 0.0])
    names = tuple(f"A_{s}" for s in comms[0].names) + tuple(f"B_{s}" for s in comms[1].names)
    cat = {f: np.concatenate([getattr(comms[0], f), getattr(comms[1], f)], axis=1) for f in ("a", "m", "r", "lo", "hi")}
    comm = Community(names=names, kind=np.concatenate([comms[0].kind, comms[1].kind]), **cat,
                     import_price=comms[0].import_price, export_price=comms[0].export_price,
                     position_km=np.vstack([posA, posB]), wholesale_price=comms[0].wholesale_price)
    inst = mbed_from_community(comm, 0, distance_preference=preference, grid_curvature=grid_curvature)
    # the grid is local to both villages: criterion 0 towards it
    g = inst.gamma.copy()
    g[:, -2:] = 0.0
    g[-2:, :] = 0.0
    inst = replace(inst, gamma=g)
    village = np.concatenate([np.zeros(k[0], int), np.ones(k[1], int), [-1, -1]])
    return inst, village
