"""StorageSharing-v0 Stackelberg game: the payment rule, its equilibrium and Algorithm 1.

Paper ``003`` (Tushar et al., IEEE Trans. Smart Grid 7(3), 2016), Sec. IV "payment rule",
Theorems 1-2 and Algorithm 1. The auctioneer (leader) sets the price, the RUs (followers)
best-respond. The RU utility, the best response, the auctioneer's saving, the closed-form
price and Algorithm 1's proposal rule are a **RECONSTRUCTION** (the paper's formulas are
masked in our copy; ``docs/storage_sharing.md``). Units: prices in cents/kWh, storage in
kWh, utilities and savings in cents.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from prosumer_gym.envs.storage_sharing.model import StorageMarket

if TYPE_CHECKING:  # the determination rule's result; auction.py imports this module
    from prosumer_gym.envs.storage_sharing.auction import Determination

__all__ = [
    "Equilibrium",
    "Algorithm1Result",
    "ru_utility",
    "ru_best_response",
    "supply",
    "average_saving",
    "saving_curve",
    "closed_form_price",
    "se_price",
    "equilibrium",
    "algorithm1",
]


# ----------------------------------------------------------------------------- payment rule
def ru_utility(share_kwh: np.ndarray | float, price: float, reservation: np.ndarray | float,
               reluctance: np.ndarray | float) -> np.ndarray:
    """RU utility ``U_i(x, p) = (p - r_i) x - beta_i x^2`` (cents). RECONSTRUCTION.

    Sec. IV "payment rule", the utility of each RU (masked in our copy): revenue above the
    reservation price minus the reluctance ("liability") term, strictly concave in ``x``.
    The realised utility of a slot is this function at the *allocated* share (after the
    burden), see :func:`clear`.
    """
    x = np.asarray(share_kwh, dtype=np.float64)
    return (price - np.asarray(reservation)) * x - np.asarray(reluctance) * x * x + 0.0  # + 0.0: no -0.0


def ru_best_response(price: float | np.ndarray, reservation: np.ndarray, reluctance: np.ndarray,
                     offer_kwh: np.ndarray) -> np.ndarray:
    """Best response ``x_i*(p) = clip((p - r_i) / (2 beta_i), 0, b_i)`` (kWh). RECONSTRUCTION.

    The maximiser of :func:`ru_utility` over ``[0, b_i]`` (Sec. IV, proof of Theorem 1).
    ``price`` may be an array of shape ``(P, 1)`` to get a ``(P, N)`` table.
    """
    return np.minimum(np.maximum((price - reservation) / (2.0 * reluctance), 0.0), offer_kwh)


def supply(price: float | np.ndarray, reservation: np.ndarray, reluctance: np.ndarray,
           offer_kwh: np.ndarray) -> np.ndarray:
    """Total storage ``X(p) = sum_i x_i*(p)`` offered by best-responding RUs (kWh)."""
    p = np.asarray(price, dtype=np.float64)
    return ru_best_response(p[..., None], reservation, reluctance, offer_kwh).sum(axis=-1)


def average_saving(price: float | np.ndarray, supply_kwh: float | np.ndarray, bid: np.ndarray,
                   requirement_kwh: np.ndarray) -> np.ndarray:
    """Average cost saving per participating SFC, ``J = (1/M) sum_m (c_m - p) q_m`` (cents).

    RECONSTRUCTION of Sec. IV "payment rule" (the auctioneer's objective). ``q_m`` is SFC
    ``m``'s allocated storage: ``q_m = Q_m min(1, X / Q)`` with ``Q = sum_m Q_m`` (our choice
    where the spec is silent: a shortage is rationed in proportion to the requirements).
    Hence ``J = min(X, Q) (c_w - p) / M`` with ``c_w`` the requirement-weighted mean bid.
    """
    Q = float(np.sum(requirement_kwh))
    M = len(bid)
    if Q <= 0 or M == 0:
        return np.zeros_like(np.asarray(price, dtype=np.float64))
    c_w = float(np.dot(bid, requirement_kwh)) / Q
    return np.minimum(supply_kwh, Q) * (c_w - np.asarray(price, dtype=np.float64)) / M


def _participants(market: StorageMarket, det: Determination):
    ri, si = det.rus, det.sfcs
    return (market.reservation[ri], market.reluctance[ri], market.offer_kwh[ri], market.bid[si],
            market.requirement_kwh[si])


def saving_curve(market: StorageMarket, det: Determination, prices: np.ndarray | float) -> np.ndarray:
    """``J(p)`` with best-responding participating RUs, vectorised over ``prices``."""
    p = np.asarray(prices, dtype=np.float64)
    if not det.open:
        return np.zeros_like(p)
    r, beta, b, c, q = _participants(market, det)
    return average_saving(p, supply(p, r, beta, b), c, q)


def closed_form_price(reservation: np.ndarray, reluctance: np.ndarray, bid_mean: float) -> float:
    """Interior SE price ``p* = (c_w + sum_i(r_i/beta_i) / sum_i(1/beta_i)) / 2``. RECONSTRUCTION.

    Sec. IV, proof of Theorem 1 ("replacing x_i* ... the auction price which maximises the
    average cost savings can be found as ..."): the stationary point of
    ``(c_w - p) sum_i (p - r_i)/(2 beta_i)`` when every RU is strictly between 0 and its
    offer and the SFCs are not yet saturated. It is the SE price only when those conditions
    hold *and* it beats the other local maxima (see :func:`se_price`).
    """
    w = 1.0 / np.asarray(reluctance, dtype=np.float64)
    return 0.5 * (float(bid_mean) + float(np.dot(w, reservation) / w.sum()))


def se_price(reservation: np.ndarray, reluctance: np.ndarray, offer_kwh: np.ndarray, bid_mean: float,
             requirement_kwh: float, window: tuple[float, float]) -> tuple[float, str]:
    """The leader's SE price on ``window``: closed form where interior, exact 1-D search otherwise.

    ``J(p) = min(X(p), Q) (c_w - p)`` (up to ``1/M``) is, between consecutive breakpoints
    (each ``r_i``, each saturation price ``r_i + 2 beta_i b_i``), a concave quadratic (or a
    decreasing line once ``X >= Q``): on such a piece ``X(p) = a p - g``. Its global maximum
    is therefore among the pieces' ends, their vertices ``(a c_w + g) / (2a)`` and their
    saturation prices ``X(p) = Q``; the search sweeps the breakpoints once, evaluates every
    candidate, and keeps the best (ties: the lowest price). Returns ``(price, method)``:
    ``"closed_form"`` when the winner is the all-interior vertex -- the returned price is
    then :func:`closed_form_price` -- and ``"search"`` otherwise. Plain Python on purpose:
    for the paper's 8 RUs it is several times faster than small-array numpy.
    """
    lo, hi = float(window[0]), float(window[1])
    Q = float(requirement_kwh)
    r = np.asarray(reservation, dtype=np.float64).tolist()
    beta = np.asarray(reluctance, dtype=np.float64).tolist()
    b = np.asarray(offer_kwh, dtype=np.float64).tolist()
    if not r or Q <= 0 or hi <= lo:
        return lo, "search"
    c = float(bid_mean)
    # events: (price, d_slope, d_intercept) of X(p) = a p - g
    events = []
    a = g = 0.0
    all_interior_cf = True
    inv_sum = r_inv_sum = 0.0
    for ri, bi, bei in zip(r, beta, b):
        inv = 0.5 / bi
        sat = ri + bei / inv
        inv_sum += inv
        r_inv_sum += ri * inv
        if sat <= lo:  # saturated on the whole window
            g -= bei
        elif ri < lo:  # already sharing at the low end
            a += inv
            g += ri * inv
            events.append((sat, -inv, -(ri * inv + bei)))
        else:
            events.append((ri, inv, ri * inv))
            events.append((sat, -inv, -(ri * inv + bei)))
    events.sort()
    best_J, best_p = -np.inf, lo
    tol_rel = 1e-12

    def consider(p: float, X: float) -> None:
        nonlocal best_J, best_p
        J = (X if X < Q else Q) * (c - p)
        tol = tol_rel * max(1.0, abs(best_J) if best_J > -np.inf else 1.0)
        if J > best_J + tol or (J >= best_J - tol and p < best_p):
            if J > best_J:
                best_J = J
            best_p = p

    u = lo
    k = 0
    n_ev = len(events)
    while True:
        while k < n_ev and events[k][0] <= u:  # events at or below the piece's start apply to it
            a += events[k][1]
            g += events[k][2]
            k += 1
        v = min(events[k][0], hi) if k < n_ev else hi
        consider(u, a * u - g)
        if v > u:
            if a > 0:
                pv = (a * c + g) / (2.0 * a)
                if u < pv < v:
                    consider(pv, a * pv - g)
                ps = (Q + g) / a
                if u < ps < v:
                    consider(ps, a * ps - g)
            consider(v, a * v - g)
        if v >= hi:
            break
        u = v
    # is the winner the all-interior stationary point of the paper's closed form?
    p_cf = 0.5 * (c + r_inv_sum / inv_sum)
    if lo <= p_cf <= hi and all(ri < p_cf < ri + 2.0 * bi * bei for ri, bi, bei in zip(r, beta, b)):
        X_cf = p_cf * inv_sum - r_inv_sum
        if X_cf <= Q and X_cf * (c - p_cf) >= best_J - tol_rel * max(1.0, abs(best_J)):
            return p_cf, "closed_form"
    return best_p, "search"


@dataclass(frozen=True)
class Equilibrium:
    """Stackelberg equilibrium of one slot (Theorem 1): price ``p*``, offers ``x*(p*)`` (N,),
    saving ``J*`` (cents per participating SFC), and how ``p*`` was found (``"closed_form"``,
    ``"search"``, or ``"no_trade"`` when the determination closed the market)."""

    price: float
    offers_kwh: np.ndarray
    saving: float
    method: str


def _bid_mean(c: np.ndarray, q: np.ndarray) -> float:
    return float(np.dot(c, q) / q.sum())


def equilibrium(market: StorageMarket, det: Determination) -> Equilibrium:
    """The slot's SE ``(p*, x*(p*))`` among the participants of ``det``."""
    n = market.n_rus
    if not det.open:
        return Equilibrium(float("nan"), np.zeros(n), 0.0, "no_trade")
    ri = det.rus
    r, beta, b = market.reservation[ri], market.reluctance[ri], market.offer_kwh[ri]
    Q, c_w = det.requirement_kwh, det.bid_mean
    p, method = se_price(r, beta, b, c_w, Q, det.window)
    x = np.zeros(n)
    xr = ru_best_response(p, r, beta, b)
    x[ri] = xr
    J = min(float(xr.sum()), Q) * (c_w - p) / det.sfcs.size
    return Equilibrium(p, x, J, method)


# ----------------------------------------------------------------------------- Algorithm 1
@dataclass(frozen=True)
class Algorithm1Result:
    """Trace of :func:`algorithm1`: per iteration the proposed price, the RUs' responses
    (iterations x N, kWh), the saving ``J`` and the best saving so far; the final price,
    responses and saving; ``iterations`` = number of price proposals."""

    price: float
    offers_kwh: np.ndarray
    saving: float
    iterations: int
    prices: np.ndarray
    offers_trace: np.ndarray
    savings: np.ndarray
    best_savings: np.ndarray


def _interval_bound(u: float, v: float, xu: np.ndarray, xv: np.ndarray, b: np.ndarray, Q: float,
                    c_w: float) -> tuple[float, float, bool]:
    """Upper bound of ``min(X(p), Q) (c_w - p)`` on ``[u, v]`` from the RUs' answers at ``u`` and ``v``.

    Every answer is ``clip(linear, 0, b_i)``: an RU positive at ``u`` and below its offer at
    ``v`` answers linearly in between (exact chord); one that starts sharing inside is below
    its chord; one that reaches its offer inside is below ``b_i``. The resulting linear
    envelope ``X(p) <= X0 + A (p - u)`` gives the bound in closed form. Returns
    ``(bound, argmax, exact)`` -- ``exact`` when no answer has a kink inside.
    """
    w = v - u
    lin = (xu > 0) & (xv < b)
    entry = (xu <= 0) & (xv > 0) & (xv < b)
    kink = ((xu > 0) & (xu < b) & (xv >= b)) | ((xu <= 0) & (xv >= b))
    chord = lin | entry
    slope = np.where(chord, (xv - xu) / w, 0.0)
    A = float(slope.sum())
    X0 = float(np.where(chord, xu, xv).sum())
    cand = [u, v]
    if A > 0:
        cand.append(min(max((A * (c_w + u) - X0) / (2.0 * A), u), v))
        cand.append(min(max(u + (Q - X0) / A, u), v))
    best_val, best_p = -np.inf, u
    for p in cand:
        val = min(X0 + A * (p - u), Q) * (c_w - p)
        if val > best_val:
            best_val, best_p = val, p
    return best_val, best_p, not (bool(entry.any()) or bool(kink.any()))


def algorithm1(market: StorageMarket, det: Determination, n_sweep: int = 8, tol: float = 1e-9,
               max_iter: int = 10_000) -> Algorithm1Result:
    """Algorithm 1: the auctioneer proposes prices, RUs best-respond, the best saving is kept.

    Sec. IV "algorithm" and Theorem 2; the proposal rule is masked in our copy and is
    RECONSTRUCTED as follows. Initialise with the window's low end and ``J* = 0`` (the
    paper starts at ``r_V`` with ``J* = 0``). (1) Sweep the window upward in ``n_sweep``
    equal steps (RUs with a low reservation price start sharing first). (2) Refine by
    branch and bound on the sweep's intervals: every RU's answer is ``clip(linear, 0, b_i)``
    in the price, so from the answers at an interval's ends the auctioneer bounds the
    saving inside it (:func:`_interval_bound`, no ``beta_i`` needed). The interval with the
    highest bound is split at the bound's maximiser when no answer has a kink inside (the
    bound is then exact and the proposal is the interval's best price), at its midpoint
    otherwise; intervals whose bound cannot beat ``J*`` are dropped. It stops when no
    interval can improve ``J*`` by more than ``tol * max(1, J*)``, i.e. the SE conditions hold
    to within ``tol`` (Theorem 2: the algorithm always reaches the SE). Every proposal is one
    iteration; the auctioneer uses the answers, the bids and the requirements only.
    """
    if n_sweep < 1:
        raise ValueError(f"n_sweep must be >= 1, got {n_sweep}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    n = market.n_rus
    if not det.open:
        z = np.zeros((0, n))
        return Algorithm1Result(float("nan"), np.zeros(n), 0.0, 0, np.zeros(0), z, np.zeros(0), np.zeros(0))
    r, beta, b, c, q = _participants(market, det)
    Q = float(q.sum())
    c_w = _bid_mean(c, q)
    M = c.size
    lo, hi = det.window
    prices: list[float] = []
    offers: list[np.ndarray] = []
    savings: list[float] = []
    best_trace: list[float] = []
    best = [lo, 0.0]  # paper: p <- r_V (here the window's low end), J* <- 0

    def propose(p: float) -> np.ndarray:
        x = ru_best_response(p, r, beta, b)  # the RUs' answers
        J = min(float(x.sum()), Q) * (c_w - p) / M
        full = np.zeros(n)
        full[det.rus] = x
        prices.append(p)
        offers.append(full)
        savings.append(J)
        if J > best[1]:
            best[0], best[1] = p, J
        best_trace.append(best[1])
        return x

    def push(heap: list, u: float, v: float, xu: np.ndarray, xv: np.ndarray) -> None:
        if v - u <= 1e-13 * max(1.0, abs(v)):
            return
        ub, arg, exact = _interval_bound(u, v, xu, xv, b, Q, c_w)
        heapq.heappush(heap, (-ub / M, len(prices), u, v, xu, xv, arg, exact))

    width = hi - lo
    if width <= 0:
        propose(lo)
    else:
        grid = [lo + width * k / n_sweep for k in range(n_sweep)] + [hi]
        xs = [propose(p) for p in grid]
        heap: list = []
        for k in range(n_sweep):
            push(heap, grid[k], grid[k + 1], xs[k], xs[k + 1])
        while heap and len(prices) < max_iter:
            neg_ub, _, u, v, xu, xv, arg, exact = heapq.heappop(heap)
            if -neg_ub <= best[1] + tol * max(1.0, best[1]):
                break  # the heap is ordered by bound: nothing left can improve J*
            m = arg if exact and u < arg < v else 0.5 * (u + v)
            xm = propose(m)
            if not exact or not (u < arg < v):
                push(heap, u, m, xu, xm)
                push(heap, m, v, xm, xv)
    x = np.zeros(n)
    x[det.rus] = ru_best_response(best[0], r, beta, b)
    return Algorithm1Result(best[0], x, best[1], len(prices), np.array(prices), np.array(offers),
                            np.array(savings), np.array(best_trace))

