"""StorageSharing-v0 mechanism: the modified auction, the Stackelberg game, Algorithm 1.

Paper ``003`` (Tushar, Chai, Yuen, Huang, Smith, Poor, Yang: "Energy storage sharing in
smart grid: a modified auction-based approach", IEEE Trans. Smart Grid 7(3), 2016).
Spec: ``shared/spec/storage_sharing.md``. Every formula of the paper is masked (``@xmath``)
in our copy: the utilities, the best response, the saving, the closed-form price and the
inter-slot update below are a **RECONSTRUCTION** consistent with the paper's prose and the
spec, each behind one small documented function so that it can be replaced once the real
equations are at hand. Units: prices in cents/kWh, storage in kWh, utilities and savings
in cents.

Contents
--------
:class:`StorageMarket`
    One slot's declared inputs (RUs: reservation price ``r_i``, reluctance ``beta_i``,
    offered storage ``b_i``; SFCs: bid ``c_m``, requirement ``Q_m``; the admissible price
    band), validated.
:func:`determine` (Sec. IV "determination rule")
    Supply curve (RUs by increasing ``r_i``) against demand curve (SFCs by decreasing
    ``c_m``); the marginal pair at their intersection is excluded (``include_marginal``
    keeps it); returns the participants and the price window.
:func:`ru_utility`, :func:`ru_best_response`, :func:`average_saving` (Sec. IV "payment
    rule", RECONSTRUCTED) and :func:`equilibrium` / :func:`se_price` (Theorem 1): the
    Stackelberg equilibrium, exactly, by enumerating the pieces on which the saving is a
    quadratic in the price; :func:`closed_form_price` is the paper's interior solution.
:func:`algorithm1` (Algorithm 1, RECONSTRUCTED proposal rule): the iterative SE search.
:func:`clear` (Sec. IV "allocation rule"): burden of an oversupply, equal (default) or
    proportional to ``r_i`` or to the offer; payments, utilities, savings.
:class:`AvailabilityTracker`, :func:`tou_multipliers` (Sec. IV "time-varying case",
    RECONSTRUCTED inter-slot update).
:func:`deviation_gain` (Theorem 3): incentive-compatibility check of one RU by deviation
    search over reservation-price reports.

The price window (our choice, see ``docs/storage_sharing.md``)
----------------------------------------------------------------
With RUs sorted by ``r`` and the intersection in RU ``K``'s segment of the supply curve:
``r_max`` = the lowest reservation price among the RUs that do not trade (with the marginal
RU excluded, the marginal RU's own ``r_K``: the highest reservation price "at the
intersection"), additionally capped by the lowest bid among trading SFCs (binding only
with ``include_marginal=True``); ``r_V`` (Vickrey price) = the highest reservation price among
trading RUs (``r_{K-1}``, the second-highest reservation price at the intersection).
``window="floor"`` (default): ``[price_band[0], r_max]`` (the admissible band's low end,
20 cents/kWh by default); ``window="vickrey"``: ``[r_V, r_max]``, the spec's literal window. Only ``"floor"`` is incentive compatible: with ``"vickrey"`` the
lowest admissible price is the top trading RU's own report, which it can raise (the
deviation search of the tests and of ``prosumer_gym.eval.reproduce.storage_sharing`` finds
such profitable lies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np

from prosumer_gym.core.rationing import capped_weighted_split

__all__ = [
    "BURDEN_RULES",
    "WINDOWS",
    "DEFAULT_TOU",
    "StorageMarket",
    "Determination",
    "Equilibrium",
    "Clearing",
    "Algorithm1Result",
    "AvailabilityTracker",
    "determine",
    "ru_utility",
    "ru_best_response",
    "supply",
    "average_saving",
    "saving_curve",
    "closed_form_price",
    "se_price",
    "equilibrium",
    "algorithm1",
    "burden_split",
    "clear",
    "solve",
    "deviation_gain",
    "tou_multipliers",
]

BURDEN_RULES = ("equal", "proportional_reservation", "proportional_share")
WINDOWS = ("floor", "vickrey")
_EPS_KWH = 1e-3  # kWh: offers / requirements below 1 Wh are treated as zero (float32 actions leave crumbs)

# Time-of-use multiplier of the reservation prices per hour of the day (our choice; the
# paper only says "a predefined time-of-use price scheme"): off-peak 22:00-07:00 x0.8,
# shoulder 07:00-14:00 and 20:00-22:00 x1.0, peak 14:00-20:00 x1.2.
DEFAULT_TOU: tuple[float, ...] = (0.8,) * 7 + (1.0,) * 7 + (1.2,) * 6 + (1.0,) * 2 + (0.8,) * 2


def _vector(name: str, value: object) -> np.ndarray:
    arr = np.array(value, dtype=np.float64, ndmin=1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr!r}")
    return arr


@dataclass(frozen=True)
class StorageMarket:
    """One slot of the storage-sharing market (Sec. III, system model).

    ``reservation`` (N,) cents/kWh: each RU's declared reservation price ``r_i``;
    ``reluctance`` (N,) ``beta_i > 0`` (cents/kWh^2); ``offer_kwh`` (N,) ``b_i >= 0``: the most
    storage RU ``i`` is willing to share this slot; ``bid`` (M,) cents/kWh: SFC ``m``'s
    reservation bid ``c_m``; ``requirement_kwh`` (M,) ``Q_m >= 0``; ``price_band``
    ``(low, high)``: the admissible prices (all reservation prices and bids must lie in it;
    ``low`` is the floor of the default price window).
    """

    reservation: np.ndarray
    reluctance: np.ndarray
    offer_kwh: np.ndarray
    bid: np.ndarray
    requirement_kwh: np.ndarray
    price_band: tuple[float, float] = (20.0, 70.0)

    def __post_init__(self) -> None:
        r = _vector("reservation", self.reservation)
        beta = _vector("reluctance", self.reluctance)
        b = _vector("offer_kwh", self.offer_kwh)
        c = _vector("bid", self.bid)
        q = _vector("requirement_kwh", self.requirement_kwh)
        if r.size == 0 or c.size == 0:
            raise ValueError(
                f"empty market: need at least one RU and one SFC, got {r.size} reservation prices and {c.size} bids"
            )
        if beta.size != r.size or b.size != r.size:
            raise ValueError(
                f"reservation, reluctance and offer_kwh must have one entry per RU, got sizes "
                f"{r.size}, {beta.size}, {b.size}"
            )
        if q.size != c.size:
            raise ValueError(f"bid and requirement_kwh must have one entry per SFC, got sizes {c.size}, {q.size}")
        try:
            lo, hi = (float(v) for v in self.price_band)
        except (TypeError, ValueError):
            raise ValueError(f"price_band must be a (low, high) pair, got {self.price_band!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and 0.0 <= lo < hi):
            raise ValueError(f"price_band must satisfy 0 <= low < high, got {(lo, hi)}")
        if np.any(b < 0):
            raise ValueError(f"offer_kwh must be >= 0 kWh (negative storage capacities are invalid), got {b!r}")
        if np.any(q < 0):
            raise ValueError(f"requirement_kwh must be >= 0 kWh, got {q!r}")
        if np.any(beta <= 0):
            raise ValueError(f"reluctance must be > 0, got {beta!r}")
        for name, arr in (("reservation", r), ("bid", c)):
            if np.any(arr < lo) or np.any(arr > hi):
                raise ValueError(f"{name} must lie in the price band [{lo}, {hi}] cents/kWh, got {arr!r}")
        for name, arr in (("reservation", r), ("reluctance", beta), ("offer_kwh", b), ("bid", c), ("requirement_kwh", q)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "price_band", (lo, hi))

    @classmethod
    def trusted(cls, reservation: np.ndarray, reluctance: np.ndarray, offer_kwh: np.ndarray, bid: np.ndarray,
                requirement_kwh: np.ndarray, price_band: tuple[float, float]) -> StorageMarket:
        """Build without validation: for callers (the env) whose inputs are valid by construction.

        Arrays must be 1-D float64 of consistent sizes, inside the band, ``offer_kwh >= 0``,
        ``requirement_kwh >= 0``, ``reluctance > 0``; nothing is checked or copied.
        """
        obj = object.__new__(cls)
        for name, val in (("reservation", reservation), ("reluctance", reluctance), ("offer_kwh", offer_kwh),
                          ("bid", bid), ("requirement_kwh", requirement_kwh), ("price_band", price_band)):
            object.__setattr__(obj, name, val)
        return obj

    @property
    def n_rus(self) -> int:
        return int(self.reservation.size)

    @property
    def n_sfcs(self) -> int:
        return int(self.bid.size)

    def with_reservation(self, i: int, value: float) -> StorageMarket:
        """The same market with RU ``i`` declaring ``value`` (used by deviation searches)."""
        r = self.reservation.copy()
        r[i] = value
        return StorageMarket(r, self.reluctance, self.offer_kwh, self.bid, self.requirement_kwh, self.price_band)


# ----------------------------------------------------------------------------- determination
@dataclass(frozen=True)
class Determination:
    """Result of the determination rule (Sec. IV "determination rule").

    ``open`` is False for the documented no-trade outcome, with ``reason`` one of
    ``"no_supply"`` (no RU offers storage), ``"no_demand"`` (no SFC requires any),
    ``"no_intersection"`` (the cheapest RU's reservation price exceeds the highest bid: the
    supply and demand curves do not cross) or ``"marginal_only"`` (the only RU or the only
    SFC at the intersection is the excluded marginal one). ``rus``/``sfcs``: indices of the
    participating (trading) RUs, by increasing ``r``, and SFCs, by decreasing ``c``.
    ``marginal_ru``/``marginal_sfc``: the RU and SFC whose segments contain the
    intersection (-1 if none). ``intersection_kwh``: quantity where the curves cross.
    ``window``: the auctioneer's price window ``(low, high)`` (``(nan, nan)`` if closed).
    ``requirement_kwh``: total requirement ``Q`` of the participating SFCs; ``bid_mean``: their
    requirement-weighted mean bid ``c_w`` (cents/kWh).
    """

    open: bool
    reason: str
    rus: np.ndarray
    sfcs: np.ndarray
    marginal_ru: int
    marginal_sfc: int
    intersection_kwh: float
    r_vickrey: float
    r_max: float
    window: tuple[float, float]
    include_marginal: bool = False
    requirement_kwh: float = 0.0
    bid_mean: float = 0.0

    def ru_mask(self, n: int) -> np.ndarray:
        m = np.zeros(n, dtype=bool)
        m[self.rus] = True
        return m

    def sfc_mask(self, n: int) -> np.ndarray:
        m = np.zeros(n, dtype=bool)
        m[self.sfcs] = True
        return m


def _closed(reason: str, ru: int = -1, sfc: int = -1, q: float = 0.0, include: bool = False) -> Determination:
    empty = np.zeros(0, dtype=np.int64)
    nan = float("nan")
    return Determination(False, reason, empty, empty, ru, sfc, q, nan, nan, (nan, nan), include)


def determine(market: StorageMarket, include_marginal: bool = False, window: str = "floor") -> Determination:
    """Determination rule: participants and price window (Sec. IV, Fig. "double auction").

    RUs with a positive offer are sorted by increasing declared reservation price (ties by
    index) into the aggregated supply curve, SFCs with a positive requirement by
    decreasing bid into the demand curve. The curves cross at the largest quantity ``q*``
    up to which the supply price does not exceed the demand price; the RU ``K`` and SFC
    ``L`` whose segments contain ``q*`` form the marginal pair, excluded by default to keep
    the auction truthful (the paper's "K-1 RUs and L-1 SFCs"); ``include_marginal=True``
    keeps them. The window is described in the module docstring.
    """
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    rl, cl = market.reservation.tolist(), market.bid.tolist()
    bl, ql = market.offer_kwh.tolist(), market.requirement_kwh.tolist()
    ru_idx = [i for i, v in enumerate(bl) if v > _EPS_KWH]
    sfc_idx = [j for j, v in enumerate(ql) if v > _EPS_KWH]
    if not ru_idx:
        return _closed("no_supply", include=include_marginal)
    if not sfc_idx:
        return _closed("no_demand", include=include_marginal)
    ru_order = sorted(ru_idx, key=lambda i: (rl[i], i))
    sfc_order = sorted(sfc_idx, key=lambda j: (-cl[j], j))
    rs = [rl[i] for i in ru_order]
    cs = [cl[j] for j in sfc_order]
    S = list(accumulate(bl[i] for i in ru_order))
    D = list(accumulate(ql[j] for j in sfc_order))
    n, m = len(rs), len(cs)
    i = j = 0
    q = 0.0
    while i < n and j < m and rs[i] <= cs[j]:
        q = min(S[i], D[j])
        if S[i] <= q:
            i += 1
        if D[j] <= q:
            j += 1
    if q <= 0.0:
        return _closed("no_intersection", include=include_marginal)
    K = next(k for k in range(n) if S[k] >= q)
    L = next(k for k in range(m) if D[k] >= q)
    k_end, l_end = (K + 1, L + 1) if include_marginal else (K, L)
    mru, msfc = ru_order[K], sfc_order[L]
    if k_end == 0 or l_end == 0:
        return _closed("marginal_only", mru, msfc, float(q), include_marginal)
    first_out = rs[k_end] if k_end < n else np.inf
    r_max = float(min(first_out, cs[l_end - 1]))
    r_v = float(rs[k_end - 1])
    lo = market.price_band[0] if window == "floor" else r_v
    Q = D[l_end - 1]
    c_w = sum(cs[k] * ql[sfc_order[k]] for k in range(l_end)) / Q
    return Determination(True, "ok", np.array(ru_order[:k_end], dtype=np.int64),
                         np.array(sfc_order[:l_end], dtype=np.int64), mru, msfc, float(q), r_v, r_max,
                         (float(lo), r_max), include_marginal, float(Q), float(c_w))


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
    import heapq

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


# ----------------------------------------------------------------------------- allocation rule
def burden_split(offers_kwh: np.ndarray, oversupply_kwh: float, rule: str = "equal",
                 reservation: np.ndarray | None = None) -> np.ndarray:
    """Each RU's burden ``d_i`` of an oversupply ``B = sum x - Q`` (Sec. IV "allocation rule").

    ``"equal"`` (default, strategy-proof): ``d_i = min(x_i, lambda)`` -- an equal share,
    water-filled so that no RU carries more than it offered; ``"proportional_reservation"``:
    ``d_i = min(x_i, mu r_i)``; ``"proportional_share"``: ``d_i = B x_i / sum x``. Only RUs with
    a positive offer carry burden; ``sum d = B``.
    """
    x = np.asarray(offers_kwh, dtype=np.float64)
    if oversupply_kwh <= 0:
        return np.zeros_like(x)
    if rule == "equal":
        w = (x > 0).astype(np.float64)
    elif rule == "proportional_reservation":
        if reservation is None:
            raise ValueError("rule='proportional_reservation' needs the reservation prices")
        w = np.where(x > 0, np.asarray(reservation, dtype=np.float64), 0.0)
    elif rule == "proportional_share":
        w = x
    else:
        raise ValueError(f"burden rule must be one of {BURDEN_RULES}, got {rule!r}")
    return capped_weighted_split(oversupply_kwh, w, x)


@dataclass(frozen=True)
class Clearing:
    """One cleared slot (all arrays full-size, zeros for non-participants).

    ``offers_kwh`` x_i put into the market; ``burden_kwh`` d_i; ``shared_kwh`` a_i = x_i - d_i
    actually shared with the SFCs; ``sfc_kwh`` q_m allocated; ``ru_utility`` U_i(a_i, p) and
    ``sfc_saving`` (c_m - p) q_m (cents); ``saving`` = J (mean over participating SFCs);
    ``ru_receipts`` = p sum a_i and ``sfc_payments`` = p sum q_m (cents).
    """

    price: float
    offers_kwh: np.ndarray
    burden_kwh: np.ndarray
    shared_kwh: np.ndarray
    sfc_kwh: np.ndarray
    ru_utility: np.ndarray
    sfc_saving: np.ndarray
    saving: float
    ru_receipts: float
    sfc_payments: float

    @property
    def budget_surplus(self) -> float:
        """Auctioneer's surplus ``sfc_payments - ru_receipts`` (0: strong budget balance)."""
        return self.sfc_payments - self.ru_receipts


def clear(market: StorageMarket, det: Determination, price: float, offers_kwh: np.ndarray,
          burden: str = "equal", declared_reservation: np.ndarray | None = None) -> Clearing:
    """Allocation rule: clear the slot at ``price`` with the RUs' offers (Sec. IV).

    Offers of non-participating RUs, and of RUs whose reservation price is not below the
    price (the paper's "the RU removes its storage from the market"), are set to 0; offers
    are capped at ``offer_kwh``. If the offers exceed the participating SFCs' requirement
    ``Q``, the oversupply is the burden (:func:`burden_split`); otherwise every SFC gets the
    same fraction ``X / Q`` of its requirement. Payments: SFC ``m`` pays ``p q_m``, RU ``i``
    receives ``p a_i``. ``declared_reservation`` (default: ``market.reservation``) is what the
    auctioneer knows, used by ``burden="proportional_reservation"`` (deviation analyses pass
    the declared prices while ``market`` holds the true ones).
    """
    if burden not in BURDEN_RULES:
        raise ValueError(f"burden must be one of {BURDEN_RULES}, got {burden!r}")
    n, m = market.n_rus, market.n_sfcs
    if not det.open:
        z = np.zeros(n)
        return Clearing(float("nan"), z, z, z, np.zeros(m), z, np.zeros(m), 0.0, 0.0, 0.0)
    r = market.reservation
    rus, sfc = det.rus, det.sfcs
    xr = np.minimum(np.maximum(np.asarray(offers_kwh, dtype=np.float64)[rus], 0.0), market.offer_kwh[rus])
    xr[r[rus] >= price] = 0.0  # an RU removes its storage when the price does not exceed its reservation price
    x = np.zeros(n)
    x[rus] = xr
    X = float(xr.sum())
    Q = det.requirement_kwh
    if X > Q:
        d = burden_split(x, X - Q, burden, r if declared_reservation is None else declared_reservation)
        a = x - d
    else:
        d = np.zeros(n)
        a = x
    q = np.zeros(m)
    q[sfc] = market.requirement_kwh[sfc] * min(1.0, X / Q)
    U = ru_utility(a, price, r, market.reluctance)  # 0 wherever a = 0
    s = np.zeros(m)
    s[sfc] = (market.bid[sfc] - price) * q[sfc]
    J = float(s.sum()) / sfc.size
    return Clearing(float(price), x, d, a, q, U, s, J, float(price * a.sum()), float(price * q.sum()))


def solve(market: StorageMarket, include_marginal: bool = False, window: str = "floor",
          burden: str = "equal") -> tuple[Determination, Equilibrium, Clearing]:
    """The whole mechanism on one slot: determination, SE, allocation at the SE."""
    det = determine(market, include_marginal=include_marginal, window=window)
    eq = equilibrium(market, det)
    return det, eq, clear(market, det, eq.price, eq.offers_kwh, burden)


# ----------------------------------------------------------------------------- incentive compatibility
def _utility_of(market: StorageMarket, i: int, report: float, include_marginal: bool, window: str, burden: str,
                response: str) -> float:
    declared = market.with_reservation(i, report) if report != market.reservation[i] else market
    det = determine(declared, include_marginal=include_marginal, window=window)
    if not det.open or i not in det.rus:
        return 0.0
    if response == "truthful":  # responses follow the true types; the report only enters the auction
        eq = equilibrium(market, det)
        cl = clear(market, det, eq.price, eq.offers_kwh, burden, declared_reservation=declared.reservation)
        return float(cl.ru_utility[i])
    eq = equilibrium(declared, det)  # "consistent": RU i also answers as if its price were the report
    cl = clear(declared, det, eq.price, eq.offers_kwh, burden)
    return float(ru_utility(cl.shared_kwh[i], eq.price, market.reservation[i], market.reluctance[i]))


def deviation_gain(market: StorageMarket, i: int, reports: Sequence[float] | None = None, *,
                   include_marginal: bool = False, window: str = "floor", burden: str = "equal",
                   response: str = "truthful") -> tuple[float, float]:
    """Incentive-compatibility check: RU ``i``'s best gain from misreporting its reservation price.

    ``market`` holds the true types. For every candidate report (default: a 41-point grid
    over the price band plus each other RU's price and each bid +- 1e-6, where the ranking
    and the intersection can change) the whole mechanism is run -- determination and price
    window from the declared prices -- and RU ``i``'s *true* utility compared with truthful
    reporting. ``response="truthful"`` (the Stackelberg solution concept: followers
    best-respond with their true utility; the report only enters the auction rules) or
    ``"consistent"`` (RU ``i`` also answers the prices as if its reservation price were the
    report). Returns ``(max gain in cents, the report achieving it)``; a gain ``<= 0`` means
    no profitable lie was found (Theorem 3, incentive compatibility).
    """
    if response not in ("truthful", "consistent"):
        raise ValueError(f"response must be 'truthful' or 'consistent', got {response!r}")
    lo, hi = market.price_band
    if reports is None:
        others = np.concatenate((np.delete(market.reservation, i), market.bid))
        cand = np.concatenate((np.linspace(lo, hi, 41), others - 1e-6, others + 1e-6))
        reports = np.unique(np.clip(cand, lo, hi))
    truth = _utility_of(market, i, float(market.reservation[i]), include_marginal, window, burden, response)
    best_gain, best_report = 0.0, float(market.reservation[i])
    for rep in reports:
        u = _utility_of(market, i, float(rep), include_marginal, window, burden, response)
        if u - truth > best_gain:
            best_gain, best_report = u - truth, float(rep)
    return best_gain, best_report


# ----------------------------------------------------------------------------- time-varying case
def tou_multipliers(n_slots: int, profile: Sequence[float] = DEFAULT_TOU, start: int = 0) -> np.ndarray:
    """Reservation-price multipliers of slots ``start .. start+n_slots-1`` (profile cycled)."""
    prof = np.asarray(profile, dtype=np.float64)
    return prof[(start + np.arange(n_slots)) % prof.size]


@dataclass
class AvailabilityTracker:
    """Inter-slot update of what each RU can offer (Sec. IV "time-varying case"). RECONSTRUCTION.

    ``b_i(t) = clip(b_i - sum_{s=t-L}^{t-1} a_i(s) - kappa d_i(t-1), 0, b_i)``: storage
    shared in the last ``L = lease_slots`` slots is still committed to the SFCs, and a
    burden carried in the previous slot (storage offered but not used) reduces the
    willingness by ``kappa = burden_aversion`` kWh per kWh. ``lease_slots=None`` keeps
    shared storage committed for the rest of the episode; with ``burden_aversion=0`` this is
    the paper's 4-slot example ("once an RU shares its total available ES it cannot share
    it in the remaining slots"; "the ES to share in slot 4 stems from the burden of slot 3").
    """

    max_share_kwh: np.ndarray
    lease_slots: int | None = 1
    burden_aversion: float = 1.0
    _history: list[np.ndarray] = field(default_factory=list)
    _committed: np.ndarray | None = None
    _last_burden: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.max_share_kwh = np.asarray(self.max_share_kwh, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        self._history = []
        self._committed = np.zeros_like(self.max_share_kwh)
        self._last_burden = np.zeros_like(self.max_share_kwh)

    @property
    def available_kwh(self) -> np.ndarray:
        avail = self.max_share_kwh - self._committed - self.burden_aversion * self._last_burden
        return np.clip(avail, 0.0, self.max_share_kwh)

    def update(self, shared_kwh: np.ndarray, burden_kwh: np.ndarray) -> None:
        """Record slot ``t``'s shares ``a_i(t)`` and burdens ``d_i(t)`` (kWh)."""
        a = np.array(shared_kwh, dtype=np.float64)
        self._last_burden = np.array(burden_kwh, dtype=np.float64)
        if self.lease_slots is None:
            self._committed = self._committed + a
            return
        if self.lease_slots == 0:
            return
        self._history.append(a)
        self._committed = self._committed + a
        if len(self._history) > self.lease_slots:
            self._committed = np.maximum(self._committed - self._history.pop(0), 0.0)
