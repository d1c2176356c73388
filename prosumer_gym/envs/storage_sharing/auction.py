"""StorageSharing-v0 modified auction: the determination and allocation rules (Sec. IV).

Paper ``003`` (Tushar et al., IEEE Trans. Smart Grid 7(3), 2016). The auction's price comes
from the Stackelberg game (:mod:`.stackelberg`); this module decides who trades and in which
price window (:func:`determine`), how a slot clears at a price (:func:`clear`, with the
burden of an oversupply: :func:`burden_split`), the whole mechanism on one slot
(:func:`solve`) and its incentive compatibility (:func:`deviation_gain`, Theorem 3).

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
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from prosumer_gym.core.rationing import capped_weighted_split
from prosumer_gym.envs.storage_sharing.model import _EPS_KWH, BURDEN_RULES, WINDOWS, StorageMarket
from prosumer_gym.envs.storage_sharing.stackelberg import Equilibrium, equilibrium, ru_utility

__all__ = ["Determination", "Clearing", "determine", "burden_split", "clear", "solve", "deviation_gain"]


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

