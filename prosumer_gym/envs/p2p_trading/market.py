"""Market clearing for P2PTrading-v0: the prospect-theory allocation problem of Eq. 5.2.

Dissertation ``001``, chapter 5. One :class:`MarketInstance` is one trading day: sellers
``i`` with surplus ``r_i`` (kWh) and price ``rho_i``, buyers ``j`` with demand ``w_j``
(kWh), reference price ``rho_j`` and prospect-theory (PT) parameters, line losses
``l_ij``. A clearing *mechanism* chooses ``x_ij``, the fraction of ``w_j`` bought from
``i``, and returns an :class:`Allocation`.

Objective (Eqs. 5.1-5.2), generalised to a transaction price ``p_ij`` (``p_ij = rho_i``
in the paper; mid-market for ``"rule"``)::

    y_j  = sum_i p_ij x_ij w_j + rho_gs (1 - sum_i x_ij) w_j          (Eq. 5.1, cost)
    v_j  = PT value of the gain rho_j w_j - y_j                       (Eq. 5.1)
    f(x) = sum_j v_j                                                  (Eq. 5.2)

Equivalently, with the buyer's *saving* against the grid
``s_j = sum_i (rho_gs - p_ij) x_ij w_j`` and the reference gap
``c_j = (rho_gs - rho_j) w_j >= 0``, the gain is ``s_j - c_j``: every buyer starts in the
loss domain (convex part of the S-curve) and reaches the gain domain (concave part) only
if its saving exceeds ``c_j``. The default mechanism exploits this structure.

Constraints (checked by :func:`feasibility_report`)::

    5.2a  sum_j (1 + l_ij) x_ij w_j <= r_i            seller capacity, losses included
    5.2b  sum_i x_ij <= 1                             buyer demand
    5.2c  x_ij = 0 if l_ij >= l_max                   forbidden pairs
    5.2d  rho_gb <= rho_i, rho_j <= rho_gs            price band (validated on input)
    5.2e  mu z_ij <= x_ij w_j <= w_j z_ij             minimum trade mu = 50 Wh
    5.2f  z_ij >= x_ij
    5.2g  x_ij in [0, 1], z_ij in {0, 1}

with ``z_ij = 1`` iff ``x_ij > 0``: a positive trade below ``mu`` kWh violates 5.2e.

Mechanisms (:data:`MECHANISMS`; see ``docs/p2p_trading_clearing.md``):

``"savings"`` (default, ours)
    S-shaped knapsack greedy in saving space + local search + LNS, compiled with numba,
    no solver.
``"debate"``
    Alg. 4 (DEbATE), differential evolution vectorised over the population.
``"rule"``
    Section 5.3.2 / ref. [34]: buyers in registration order, cheapest sellers first,
    mid-market price.
``"zhu"``
    Section 5.3.2 / ref. [35]: buyers by decreasing demand, least-loss sellers first,
    seller's price.
``"milp"``
    Reference optimum of a piecewise-linear model with HiGHS (``scipy.optimize.milp``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from prosumer_gym.core.de import differential_evolution
from prosumer_gym.core.milp import SparsePattern, adaptive_breakpoints, chord_slopes, solve_milp
from prosumer_gym.core.prospect import PTParams, pt_value, sample_pt_params

__all__ = [
    "MarketInstance",
    "Allocation",
    "energy_kwh",
    "buyer_cost",
    "buyer_values",
    "objective",
    "seller_sold_kwh",
    "seller_revenue",
    "feasibility_report",
    "CONSTRAINTS",
    "MECHANISMS",
    "DEFAULT_MECHANISM",
    "make_clearer",
    "clear",
    "random_instance",
]

CONSTRAINTS = ("5.2a", "5.2b", "5.2c", "5.2d", "5.2e", "5.2f", "5.2g")
_PRICE_TOL = 1e-9  # prices may sit on the band edge up to float noise (e.g. 0.06 + 60 * 0.001)

FloatArray = NDArray[np.float64]


# --------------------------------------------------------------------------------------
# Instance and allocation
# --------------------------------------------------------------------------------------
def _vector(name: str, value: Any, n: int | None = None) -> FloatArray:
    try:
        arr = np.array(value, dtype=np.float64)  # a private copy
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of numbers, got {value!r}") from None
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "1-D"
        raise ValueError(f"{name} must have shape {want}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN/inf), got {arr!r}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class MarketInstance:
    """One trading day of the P2P market (inputs of Eq. 5.2), validated on construction.

    ``surplus_kwh`` ``r_i`` (S,) >= 0; ``demand_kwh`` ``w_j`` (B,) >= 0;
    ``seller_price`` ``rho_i`` (S,) and ``buyer_ref_price`` ``rho_j`` (B,) in
    ``[grid_buy_price, grid_sell_price]`` (Eq. 5.2d); ``loss`` ``l_ij`` (S, B) in ``[0, 1)``;
    ``pt``: the buyers' PT parameters (each array of length B, or a scalar);
    ``grid_sell_price`` ``rho_gs`` (what the grid charges buyers) >= ``grid_buy_price``
    ``rho_gb`` (what it pays sellers) >= 0; pairs with ``loss >= loss_max`` cannot trade
    (Eq. 5.2c); ``min_trade_kwh`` ``mu`` (Eq. 5.2e, 50 Wh in the paper).

    Arrays are copied and made read-only. Invalid input raises ``ValueError`` naming the
    field and its allowed range.
    """

    surplus_kwh: FloatArray
    demand_kwh: FloatArray
    seller_price: FloatArray
    buyer_ref_price: FloatArray
    loss: FloatArray
    pt: PTParams
    grid_sell_price: float = 0.12
    grid_buy_price: float = 0.06
    loss_max: float = 0.025
    min_trade_kwh: float = 0.05

    def __post_init__(self) -> None:
        for name in ("grid_sell_price", "grid_buy_price", "loss_max", "min_trade_kwh"):
            v = getattr(self, name)
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number, got {v!r}") from None
            object.__setattr__(self, name, fv)
        gs, gb = self.grid_sell_price, self.grid_buy_price
        if not (np.isfinite(gb) and gb >= 0):
            raise ValueError(f"grid_buy_price must be finite and >= 0, got {gb}")
        if not (np.isfinite(gs) and gs >= gb):
            raise ValueError(f"grid_sell_price must be finite and >= grid_buy_price={gb}, got {gs}")
        if not (0 < self.loss_max <= 1):
            raise ValueError(f"loss_max must be in (0, 1], got {self.loss_max}")
        if not (np.isfinite(self.min_trade_kwh) and self.min_trade_kwh >= 0):
            raise ValueError(f"min_trade_kwh must be finite and >= 0, got {self.min_trade_kwh}")

        r = _vector("surplus_kwh", self.surplus_kwh)
        w = _vector("demand_kwh", self.demand_kwh)
        S, B = r.shape[0], w.shape[0]
        if (r < 0).any():
            raise ValueError(f"surplus_kwh must be >= 0 kWh, got min {r.min()}")
        if (w < 0).any():
            raise ValueError(f"demand_kwh must be >= 0 kWh, got min {w.min()}")
        rho_s = _vector("seller_price", self.seller_price, S)
        rho_b = _vector("buyer_ref_price", self.buyer_ref_price, B)
        for name, p in (("seller_price", rho_s), ("buyer_ref_price", rho_b)):
            if p.size and (p.min() < gb - _PRICE_TOL or p.max() > gs + _PRICE_TOL):
                raise ValueError(
                    f"{name} must lie in [grid_buy_price, grid_sell_price] = [{gb}, {gs}] $/kWh "
                    f"(Eq. 5.2d), got range [{p.min()}, {p.max()}]"
                )
        try:
            loss = np.array(self.loss, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"loss must be an (S, B) array of numbers, got {self.loss!r}") from None
        if loss.shape != (S, B):
            raise ValueError(f"loss must have shape (n_sellers, n_buyers) = {(S, B)}, got {loss.shape}")
        if not np.isfinite(loss).all() or (loss.size and (loss.min() < 0 or loss.max() >= 1)):
            raise ValueError("loss must be finite fractions in [0, 1)")
        loss.setflags(write=False)
        if not isinstance(self.pt, PTParams):
            raise ValueError(f"pt must be a PTParams, got {type(self.pt).__name__}")
        for name in ("k_pos", "k_neg", "zeta_pos", "zeta_neg"):
            a = getattr(self.pt, name)
            if a.ndim > 1 or (a.ndim == 1 and a.shape[0] not in (1, B)):
                raise ValueError(f"pt.{name} must have length n_buyers={B} (or be a scalar), got shape {a.shape}")
        object.__setattr__(self, "surplus_kwh", r)
        object.__setattr__(self, "demand_kwh", w)
        object.__setattr__(self, "seller_price", rho_s)
        object.__setattr__(self, "buyer_ref_price", rho_b)
        object.__setattr__(self, "loss", loss)
        allowed = loss < self.loss_max
        allowed.setflags(write=False)
        object.__setattr__(self, "_allowed", allowed)

    @property
    def n_sellers(self) -> int:
        return int(self.surplus_kwh.shape[0])

    @property
    def n_buyers(self) -> int:
        return int(self.demand_kwh.shape[0])

    @property
    def allowed(self) -> NDArray[np.bool_]:
        """(S, B) mask of pairs allowed to trade, ``l_ij < loss_max`` (Eq. 5.2c)."""
        return self._allowed  # type: ignore[attr-defined]

    @property
    def ref_gap(self) -> FloatArray:
        """``c_j = (rho_gs - rho_j) w_j``: the saving buyer ``j`` needs to break even (B,)."""
        return (self.grid_sell_price - self.buyer_ref_price) * self.demand_kwh

    def pt_args(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        p = self.pt
        return p.k_pos, p.k_neg, p.zeta_pos, p.zeta_neg


@dataclass(frozen=True)
class Allocation:
    """Result of clearing one day.

    ``x`` (S, B): fraction of ``w_j`` bought from ``i`` (the paper's ``x_ij``); ``price``
    (S, B): transaction price in $/kWh (``rho_i`` except for ``"rule"``, mid-market);
    ``objective``: ``sum_j v(y_j)`` (Eq. 5.2) with ``price``; ``seconds``: wall clock of the
    clearing; ``stats``: mechanism-specific details.
    """

    x: FloatArray
    price: FloatArray
    mechanism: str
    objective: float
    seconds: float
    stats: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Objective (Eqs. 5.1-5.2) and bookkeeping
# --------------------------------------------------------------------------------------
def _price(inst: MarketInstance, price: FloatArray | None) -> FloatArray:
    if price is None:
        return np.broadcast_to(inst.seller_price[:, None], (inst.n_sellers, inst.n_buyers))
    return np.asarray(price, dtype=np.float64)


def energy_kwh(inst: MarketInstance, x: FloatArray) -> FloatArray:
    """(S, B) energy delivered to buyers, ``x_ij w_j`` kWh."""
    return np.asarray(x, dtype=np.float64) * inst.demand_kwh[None, :]


def buyer_cost(inst: MarketInstance, x: FloatArray, price: FloatArray | None = None) -> FloatArray:
    """``y_j`` (B,), Eq. 5.1: P2P purchases at ``price`` plus the rest from the grid at ``rho_gs``."""
    x = np.asarray(x, dtype=np.float64)
    w = inst.demand_kwh
    p = _price(inst, price)
    return (p * x).sum(axis=0) * w + inst.grid_sell_price * (1.0 - x.sum(axis=0)) * w


def buyer_values(inst: MarketInstance, x: FloatArray, price: FloatArray | None = None) -> FloatArray:
    """``v(y_j)`` (B,), Eq. 5.1: PT value of the gain ``rho_j w_j - y_j``."""
    gain = inst.buyer_ref_price * inst.demand_kwh - buyer_cost(inst, x, price)
    return pt_value(gain, *inst.pt_args())


def objective(inst: MarketInstance, x: FloatArray, price: FloatArray | None = None) -> float:
    """``f = sum_j v(y_j)``, Eq. 5.2 (``price=None``: the sellers' prices, as in the paper)."""
    return float(buyer_values(inst, x, price).sum())


def seller_sold_kwh(inst: MarketInstance, x: FloatArray) -> FloatArray:
    """(S,) energy delivered to buyers, ``sum_j x_ij w_j`` (line losses not included)."""
    return energy_kwh(inst, x).sum(axis=1)


def seller_revenue(inst: MarketInstance, x: FloatArray, price: FloatArray | None = None) -> FloatArray:
    """(S,) revenue in $, ``sum_j p_ij x_ij w_j``."""
    return (_price(inst, price) * energy_kwh(inst, x)).sum(axis=1)


def feasibility_report(inst: MarketInstance, x: FloatArray, tol: float = 1e-7) -> dict[str, float]:
    """Largest violation of each constraint 5.2a-5.2g (0 when satisfied up to ``tol``).

    Units: 5.2a kWh (capacity overshoot incl. losses); 5.2b fraction (``sum_i x_ij - 1``);
    5.2c fraction traded on a forbidden pair; 5.2d $/kWh outside the band; 5.2e kWh (a
    positive trade below ``mu`` or above ``w_j``); 5.2f/5.2g fraction outside ``[0, 1]``
    (``z_ij`` is taken as 1 iff ``x_ij > 0``). Non-finite ``x`` gives ``inf``.
    """
    x = np.asarray(x, dtype=np.float64)
    S, B = inst.n_sellers, inst.n_buyers
    if x.shape != (S, B):
        raise ValueError(f"x must have shape (n_sellers, n_buyers) = {(S, B)}, got {x.shape}")
    if not np.isfinite(x).all():
        return {k: float("inf") for k in CONSTRAINTS}
    if x.size == 0:
        return {k: 0.0 for k in CONSTRAINTS}
    w = inst.demand_kwh
    e = x * w[None, :]
    out = {}
    out["5.2a"] = float(np.max(((1.0 + inst.loss) * e).sum(axis=1) - inst.surplus_kwh))
    out["5.2b"] = float(np.max(x.sum(axis=0) - 1.0))
    forbidden = ~inst.allowed
    out["5.2c"] = float(np.abs(x[forbidden]).max()) if forbidden.any() else 0.0
    gs, gb = inst.grid_sell_price, inst.grid_buy_price
    prices = np.concatenate([inst.seller_price, inst.buyer_ref_price])
    out["5.2d"] = float(max(np.max(prices - gs), np.max(gb - prices))) if prices.size else 0.0
    pos = x > 0
    if pos.any():
        wb = np.broadcast_to(w[None, :], (S, B))
        out["5.2e"] = float(max(np.max(inst.min_trade_kwh - e[pos]), np.max(e[pos] - wb[pos])))
    else:
        out["5.2e"] = 0.0
    out["5.2f"] = float(np.max(x - 1.0))  # z = 1 >= x for positive x; z = 0 >= x otherwise
    out["5.2g"] = float(max(np.max(-x), np.max(x - 1.0)))
    return {k: (v if v > tol else 0.0) for k, v in out.items()}


# --------------------------------------------------------------------------------------
# Random instances with the paper's distributions (Section 5.3.1)
# --------------------------------------------------------------------------------------
def random_instance(
    rng: np.random.Generator,
    n_sellers: int = 15,
    n_buyers: int = 15,
    *,
    seller_price: tuple[float, float] = (0.09, 0.12),
    buyer_ref_price: tuple[float, float] = (0.06, 0.10),
    surplus_kwh: tuple[float, float] = (0.0, 20.0),
    demand_kwh: tuple[float, float] = (2.0, 40.0),
    loss_levels: tuple[float, ...] = (0.01, 0.02, 0.03, 0.04),
    grid_sell_price: float = 0.12,
    grid_buy_price: float = 0.06,
    loss_max: float = 0.025,
    min_trade_kwh: float = 0.05,
    **pt_kwargs: Any,
) -> MarketInstance:
    """A random trading day with the distributions of Section 5.3.1.

    Seller prices ``U[0.09, 0.12]`` (pass ``seller_price=(0.06, 0.12)`` for the full band
    learning agents can reach), buyers' reference prices ``U[0.06, 0.10]``, PT parameters
    from :func:`~prosumer_gym.core.prospect.sample_pt_params` (``pt_kwargs`` forwarded),
    losses uniform on ``{1, 2, 3, 4}%``, surplus ``U[0, 20]`` kWh (a 4 kWp rooftop's daily
    surplus), demand ``U[2, 40]`` kWh. Change the ranges for surplus- or demand-heavy days.
    """
    S, B = int(n_sellers), int(n_buyers)
    if S < 0 or B < 0:
        raise ValueError(f"n_sellers and n_buyers must be >= 0, got {(S, B)}")
    return MarketInstance(
        surplus_kwh=rng.uniform(*surplus_kwh, size=S),
        demand_kwh=rng.uniform(*demand_kwh, size=B),
        seller_price=rng.uniform(*seller_price, size=S),
        buyer_ref_price=rng.uniform(*buyer_ref_price, size=B),
        loss=rng.choice(np.asarray(loss_levels, dtype=np.float64), size=(S, B)),
        pt=sample_pt_params(rng, B, **pt_kwargs),
        grid_sell_price=grid_sell_price,
        grid_buy_price=grid_buy_price,
        loss_max=loss_max,
        min_trade_kwh=min_trade_kwh,
    )


# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------
def _check_size(inst: MarketInstance, S: int, B: int, mechanism: str) -> None:
    if not isinstance(inst, MarketInstance):
        raise ValueError(f"expected a MarketInstance, got {type(inst).__name__}")
    if inst.n_sellers != S or inst.n_buyers != B:
        raise ValueError(
            f"{mechanism!r} clearer was built for {S} sellers x {B} buyers, "
            f"got an instance with {inst.n_sellers} x {inst.n_buyers}"
        )


def _x_from_energy(inst: MarketInstance, e: FloatArray) -> FloatArray:
    """``x_ij = e_ij / w_j`` (0 where ``w_j = 0``), clipped into [0, 1]."""
    w = inst.demand_kwh
    safe = np.where(w > 0, w, 1.0)
    x = np.where(w[None, :] > 0, e / safe[None, :], 0.0)
    return np.clip(x, 0.0, 1.0)


def _make_feasible(inst: MarketInstance, e: FloatArray) -> FloatArray:
    """Project an almost-feasible energy matrix (e.g. a MILP solution with solver tolerances)
    onto Eqs. 5.2a-g: zero forbidden pairs and negatives, snap pieces within 1e-6 (relative)
    below ``mu`` up to ``mu`` and drop the other pieces below ``mu``, then scale rows and
    columns down where capacity or demand are exceeded (which moves pieces by ~1e-9)."""
    e = np.where(inst.allowed, np.maximum(np.asarray(e, dtype=np.float64), 0.0), 0.0)
    mu = inst.min_trade_kwh
    small = (e > 0) & (e < mu)
    e = np.where(small & (e >= mu * (1 - 1e-6)), mu, np.where(small, 0.0, e))
    w = inst.demand_kwh
    e = np.minimum(e, w[None, :])
    load = ((1.0 + inst.loss) * e).sum(axis=1)
    over = load > inst.surplus_kwh
    if over.any():
        e[over] *= (inst.surplus_kwh[over] / load[over])[:, None]
    tot = e.sum(axis=0)
    over = tot > w
    if over.any():
        e[:, over] *= (w[over] / tot[over])[None, :]
    return e


def _finish(
    inst: MarketInstance, x: FloatArray, price: FloatArray, mechanism: str, t0: float, stats: dict
) -> Allocation:
    x = np.ascontiguousarray(x, dtype=np.float64)
    x.setflags(write=False)
    price = np.array(np.broadcast_to(price, x.shape), dtype=np.float64)
    price.setflags(write=False)
    obj = objective(inst, x, price)
    return Allocation(x=x, price=price, mechanism=mechanism, objective=obj,
                      seconds=time.perf_counter() - t0, stats=stats)


def _seller_price_matrix(inst: MarketInstance) -> FloatArray:
    return np.broadcast_to(inst.seller_price[:, None], (inst.n_sellers, inst.n_buyers))


def _check_options(mechanism: str, options: dict, allowed: dict[str, Callable[[Any], bool]],
                   descr: dict[str, str]) -> None:
    for k, v in options.items():
        if k not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise ValueError(f"unknown option {k!r} for mechanism {mechanism!r}; allowed options: {names}")
        ok = False
        try:
            ok = bool(allowed[k](v))
        except Exception:  # noqa: BLE001 - any failure to check means invalid
            ok = False
        if not ok:
            raise ValueError(f"invalid value {v!r} for option {k!r} of mechanism {mechanism!r}: {descr[k]}")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) \
        and bool(np.isfinite(v))


# --------------------------------------------------------------------------------------
# Greedy baselines of Section 5.3.2: Rule [34] and Zhu [35]
# --------------------------------------------------------------------------------------
def _sequential_fill(
    inst: MarketInstance, buyer_order: list[int], seller_orders: list[list[int]]
) -> FloatArray:
    """Fill buyers one after the other, each from its seller list in order.

    A buyer takes ``min(remaining demand, remaining capacity / (1 + l_ij))`` from each
    allowed seller; a piece smaller than ``mu`` is skipped (Eq. 5.2e) and the buyer stops
    once its remaining demand is below ``mu`` (it cannot be bought in a legal trade).
    """
    S, B = inst.n_sellers, inst.n_buyers
    e = np.zeros((S, B))
    rem = inst.surplus_kwh.tolist()
    lossf = (1.0 + inst.loss).tolist()
    allowed = inst.allowed.tolist()
    w = inst.demand_kwh.tolist()
    mu = inst.min_trade_kwh
    for j in buyer_order:
        need = w[j]
        if need <= 0 or need < mu:
            continue
        for i in seller_orders[j]:
            if not allowed[i][j] or rem[i] <= 0:
                continue
            lf = lossf[i][j]
            q = min(need, rem[i] / lf)
            if q < mu or q <= 0:
                continue
            e[i, j] = q
            rem[i] = max(rem[i] - q * lf, 0.0)
            need -= q
            if need < mu or need <= 0:
                break
    return e


def _make_rule(S: int, B: int, **options: Any) -> Callable[[MarketInstance, np.random.Generator], Allocation]:
    """Rule (ref. [34], Section 5.3.2).

    Buyers are served in registration order (their index ``j``); each buyer is filled
    greedily from the cheapest allowed sellers (increasing ``rho_i``, ties by seller
    index) with remaining capacity. The transaction price is mid-market,
    ``(rho_i + rho_j) / 2``. Pieces below ``mu`` are skipped (Eq. 5.2e).
    """
    _check_options("rule", options, {}, {})
    buyers = list(range(B))

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        _check_size(inst, S, B, "rule")
        order = np.argsort(inst.seller_price, kind="stable").tolist()
        e = _sequential_fill(inst, buyers, [order] * B)
        price = 0.5 * (inst.seller_price[:, None] + inst.buyer_ref_price[None, :])
        return _finish(inst, _x_from_energy(inst, e), price, "rule", t0, {"buyer_order": buyers})

    return clearer


def _make_zhu(S: int, B: int, **options: Any) -> Callable[[MarketInstance, np.random.Generator], Allocation]:
    """Zhu (ref. [35], Section 5.3.2).

    Buyers in decreasing order of demand (ties by index); each buyer is filled from its
    allowed sellers in increasing order of loss ``l_ij`` (ties by seller index) until its
    demand is met. The transaction price is the seller's price. Pieces below ``mu`` are
    skipped (Eq. 5.2e).
    """
    _check_options("zhu", options, {}, {})

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        _check_size(inst, S, B, "zhu")
        border = np.argsort(-inst.demand_kwh, kind="stable").tolist()
        sorders = np.argsort(inst.loss, axis=0, kind="stable").T.tolist()
        e = _sequential_fill(inst, border, sorders)
        return _finish(inst, _x_from_energy(inst, e), _seller_price_matrix(inst), "zhu", t0,
                       {"buyer_order": border})

    return clearer


# --------------------------------------------------------------------------------------
# DEbATE (Alg. 4)
# --------------------------------------------------------------------------------------
def debate_repair(inst: MarketInstance, pop: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """Alg. 4 lines 13-15 on a population ``(NP, S*B)`` of ``x`` matrices, plus a 5.2e fix.

    * line 13: ``x_ij = 0`` where ``l_ij >= l_max`` (Eq. 5.2c);
    * line 14: if seller ``i``'s load ``sum_j (1 + l_ij) x_ij w_j`` exceeds ``r_i``, scale its
      row by ``r_i / load`` (the printed formula multiplies the *unmutated* ``x_ij``; that
      is a typo: scaling the trial's row is what makes Eq. 5.2a hold);
    * line 15: if ``sum_i x_ij > 1``, divide buyer ``j``'s column by the sum (Eq. 5.2b);
    * **added** (Alg. 4 as printed never enforces Eq. 5.2e): trades with
      ``0 < x_ij w_j < mu`` are set to 0. Every step only decreases entries, so the result
      satisfies Eqs. 5.2a-g.
    """
    S, B = inst.n_sellers, inst.n_buyers
    X = pop.reshape(pop.shape[0], S, B)
    X *= inst.allowed  # line 13
    w = inst.demand_kwh
    load = np.einsum("kij,ij->ki", X, (1.0 + inst.loss) * w[None, :])
    r = inst.surplus_kwh
    over = load > r[None, :]
    if over.any():  # line 14 (typo fixed)
        scale = np.where(over, r[None, :] / np.where(over, load, 1.0), 1.0)
        X *= scale[:, :, None]
    tot = X.sum(axis=1)
    over = tot > 1.0
    if over.any():  # line 15
        X /= np.where(over, tot, 1.0)[:, None, :]
    X[(X > 0) & (X * w[None, None, :] < inst.min_trade_kwh)] = 0.0  # 5.2e fix
    return pop


def _make_debate(S: int, B: int, **options: Any) -> Callable[[MarketInstance, np.random.Generator], Allocation]:
    """DEbATE, Alg. 4: differential evolution on ``x`` with fitness Eq. 5.2.

    Options: ``NP`` (population, default 20), ``G_max`` (generations, default 10 000),
    ``CR`` (crossover probability, default 0.9), ``F`` (differential weight, default 0.8),
    ``record_history`` (default False: keep the best fitness of every generation in
    ``stats["history"]``). The paper gives neither ``CR`` nor ``F``; 0.9 / 0.8 are Storn &
    Price's recommendation for non-separable problems (the capacity and demand constraints
    couple all components) and lie in the ``F in [0, 2]`` range the paper states.

    Initial population: ``U[0, 1]`` components, repaired (Alg. 4 line 2 + lines 13-15).
    Deviations: synchronous generation update (see :mod:`prosumer_gym.core.de`), the
    5.2e repair (see :func:`debate_repair`).
    """
    spec = {
        "NP": (lambda v: _is_int(v) and v >= 4, "an integer >= 4"),
        "G_max": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        "CR": (lambda v: _is_num(v) and 0 <= v <= 1, "a number in [0, 1]"),
        "F": (lambda v: _is_num(v) and 0 <= v <= 2, "a number in [0, 2]"),
        "record_history": (lambda v: isinstance(v, (bool, np.bool_)), "a bool"),
    }
    _check_options("debate", options, {k: s[0] for k, s in spec.items()}, {k: s[1] for k, s in spec.items()})
    NP = int(options.get("NP", 20))
    G_max = int(options.get("G_max", 10_000))
    CR = float(options.get("CR", 0.9))
    F = float(options.get("F", 0.8))
    record = bool(options.get("record_history", False))
    D = S * B

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        _check_size(inst, S, B, "debate")
        rng = np.random.default_rng(0) if rng is None else rng
        w = inst.demand_kwh
        a = inst.grid_sell_price - inst.seller_price  # saving per kWh from seller i
        c = inst.ref_gap
        kp, kn, zp, zn = inst.pt_args()

        def fitness(pop: FloatArray) -> FloatArray:
            X = pop.reshape(pop.shape[0], S, B)
            s = np.matmul(a, X) * w  # (NP, B) savings against the grid
            return pt_value(s - c, kp, kn, zp, zn).sum(axis=1)

        def repair(pop: FloatArray) -> FloatArray:
            return debate_repair(inst, pop)

        if D == 0:
            x = np.zeros((S, B))
            return _finish(inst, x, _seller_price_matrix(inst), "debate", t0, {"generations": 0})
        res = differential_evolution(fitness, repair, rng.random((NP, D)), 0.0, 1.0, rng,
                                     G_max=G_max, CR=CR, F=F, record_history=record)
        stats = {
            "NP": NP, "G_max": G_max, "CR": CR, "F": F,
            "generations": res.generations, "evaluations": res.evaluations,
            "replacements": res.replacements, "initial_best": res.initial_best, "best_fitness": res.fitness,
        }
        if record:
            stats["history"] = res.history
        return _finish(inst, res.x.reshape(S, B), _seller_price_matrix(inst), "debate", t0, stats)

    return clearer


# --------------------------------------------------------------------------------------
# MILP reference (HiGHS)
# --------------------------------------------------------------------------------------
def max_saving(inst: MarketInstance, a: FloatArray | None = None) -> FloatArray:
    """Largest saving each buyer could get alone, ``s_j^max`` (B,).

    Fractional knapsack: fill ``w_j`` from the allowed sellers in decreasing saving per kWh
    ``a_ij = rho_gs - p_ij``, each up to ``r_i / (1 + l_ij)``. An upper bound on ``s_j`` in
    any feasible allocation (Eq. 5.2a-c), used to size the PWL models.
    """
    S, B = inst.n_sellers, inst.n_buyers
    if a is None:
        a = np.broadcast_to((inst.grid_sell_price - inst.seller_price)[:, None], (S, B))
    cap = np.where(inst.allowed & (a > 0), inst.surplus_kwh[:, None] / (1.0 + inst.loss), 0.0)
    order = np.argsort(-a, axis=0, kind="stable")
    cap_s = np.take_along_axis(cap, order, axis=0)
    a_s = np.take_along_axis(a, order, axis=0)
    before = np.cumsum(cap_s, axis=0) - cap_s
    take = np.clip(np.minimum(cap_s, inst.demand_kwh[None, :] - before), 0.0, None)
    return (take * a_s).sum(axis=0)


def _make_milp(S: int, B: int, **options: Any) -> Callable[[MarketInstance, np.random.Generator], Allocation]:
    """Reference optimum of a piecewise-linear (PWL) model of Eq. 5.2, solved by HiGHS.

    Variables (all pairs, forbidden ones get upper bound 0 so the structure is fixed for a
    market size): ``e_ij`` kWh and binaries ``z_ij`` (Eqs. 5.2e-f), per buyer the saving
    split ``s_j = sum_k d_jk + u_j``: increments ``d_jk`` over ``K = n_breakpoints``
    segments of the *convex* loss part ``[0, min(c_j, s_j^max)]`` with binaries ``y_jk``
    (incremental formulation), the *concave* gain part ``u_j in [0, s_j^max - c_j]``
    allowed only when the convex part is full (``u_j <= U_j y_jK``) and valued by
    ``t_j <= `` ``n_tangents`` tangent cuts of ``k+ u^zeta+``. Objective: ``sum_j`` (chord
    interpolation of the convex part + ``t_j``), i.e. chords on the convex part and tangents
    on the concave part: an **over-estimate** of the PT value when ``zeta+-  <= 1``. Hence
    HiGHS' bound is a valid upper bound on the true optimum (``stats["upper_bound"]``), and
    the true objective of the returned allocation (``Allocation.objective``, re-evaluated
    with the exact PT function) is a lower bound.

    Options: ``time_limit`` (s, default 10), ``n_breakpoints`` (default 16),
    ``n_tangents`` (default 8), ``mip_rel_gap`` (default 1e-6). If HiGHS finds no feasible
    point within the time limit the empty allocation is returned (``stats["status"]``).
    """
    spec = {
        "time_limit": (lambda v: _is_num(v) and v > 0, "a number of seconds > 0"),
        "n_breakpoints": (lambda v: _is_int(v) and 1 <= v <= 256, "an integer in [1, 256]"),
        "n_tangents": (lambda v: _is_int(v) and 1 <= v <= 256, "an integer in [1, 256]"),
        "mip_rel_gap": (lambda v: _is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
    }
    _check_options("milp", options, {k: s[0] for k, s in spec.items()}, {k: s[1] for k, s in spec.items()})
    time_limit = float(options.get("time_limit", 10.0))
    K = int(options.get("n_breakpoints", 16))
    M = int(options.get("n_tangents", 8))
    gap = float(options.get("mip_rel_gap", 1e-6))
    P = S * B
    # variable layout
    o_e, o_z, o_d = 0, P, 2 * P
    o_y = o_d + B * K
    o_u = o_y + B * K
    o_t = o_u + B
    n = o_t + B
    pi, pj = np.divmod(np.arange(P), B)  # pair p = i * B + j
    pat = SparsePattern(n)
    r_cap, r_dem = pat.add_rows(S), pat.add_rows(B)
    r_ub, r_mu = pat.add_rows(P), pat.add_rows(P)
    r_sav = pat.add_rows(B)
    r_in1, r_in2 = pat.add_rows(B * K), pat.add_rows(B * (K - 1))
    r_conc, r_tan, r_tcap = pat.add_rows(B), pat.add_rows(B * M), pat.add_rows(B)
    ar = np.arange
    pat.add("cap", r_cap[pi], o_e + ar(P))
    pat.add("dem", r_dem[pj], o_e + ar(P))
    pat.add("ub_e", r_ub, o_e + ar(P))
    pat.add("ub_z", r_ub, o_z + ar(P))
    pat.add("mu_e", r_mu, o_e + ar(P))
    pat.add("mu_z", r_mu, o_z + ar(P))
    pat.add("sav_e", r_sav[pj], o_e + ar(P))
    jk = ar(B * K)
    pat.add("sav_d", r_sav[jk // K], o_d + jk)
    pat.add("sav_u", r_sav, o_u + ar(B))
    pat.add("in1_d", r_in1, o_d + jk)
    pat.add("in1_y", r_in1, o_y + jk)
    jk1 = (ar(B)[:, None] * K + ar(K - 1)[None, :]).ravel()  # (j, k) for k < K-1
    pat.add("in2_d", r_in2, o_d + jk1 + 1)
    pat.add("in2_y", r_in2, o_y + jk1)
    pat.add("conc_u", r_conc, o_u + ar(B))
    pat.add("conc_y", r_conc, o_y + ar(B) * K + K - 1)
    jm = ar(B * M)
    pat.add("tan_t", r_tan, o_t + jm // M)
    pat.add("tan_u", r_tan, o_u + jm // M)
    pat.add("tcap_t", r_tcap, o_t + ar(B))
    pat.add("tcap_y", r_tcap, o_y + ar(B) * K + K - 1)
    pat.freeze()
    data = pat.new_data()
    # constant coefficients
    data[pat["dem"]] = 1.0
    data[pat["ub_e"]] = 1.0
    data[pat["mu_e"]] = 1.0
    data[pat["sav_d"]] = -1.0
    data[pat["sav_u"]] = -1.0
    data[pat["in1_d"]] = 1.0
    data[pat["in2_d"]] = 1.0
    data[pat["conc_u"]] = 1.0
    data[pat["tan_t"]] = 1.0
    data[pat["tcap_t"]] = 1.0
    integrality = np.zeros(n, dtype=np.int64)
    integrality[o_z:o_d] = 1
    integrality[o_y:o_u] = 1
    row_lb = np.full(pat.n_rows, -np.inf)
    row_ub = np.full(pat.n_rows, np.inf)
    row_lb[r_mu] = 0.0
    row_ub[r_ub] = 0.0
    row_lb[r_sav] = row_ub[r_sav] = 0.0
    row_lb[r_in1] = 0.0
    row_ub[r_in2] = 0.0
    row_ub[r_conc] = 0.0
    row_ub[r_tcap] = 0.0
    tan_frac = np.logspace(-4, 0, M) if M > 1 else np.ones(1)

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        _check_size(inst, S, B, "milp")
        if P == 0:
            return _finish(inst, np.zeros((S, B)), _seller_price_matrix(inst), "milp", t0,
                           {"status": "optimal", "proven_optimal": True, "upper_bound": objective(inst, np.zeros((S, B))),
                            "upper_bound_valid": True})
        w, r, mu = inst.demand_kwh, inst.surplus_kwh, inst.min_trade_kwh
        lossf = 1.0 + inst.loss
        a = inst.grid_sell_price - inst.seller_price
        kp, kn, zp, zn = (np.broadcast_to(v, (B,)) for v in inst.pt_args())
        c = inst.ref_gap
        smax = max_saving(inst)
        C = np.minimum(c, smax)
        U = np.maximum(smax - c, 0.0)

        def f_loss(u: FloatArray) -> FloatArray:  # PT value along the convex part, u in [0, C_j]
            return pt_value(u - c[:, None], kp[:, None], kn[:, None], zp[:, None], zn[:, None])

        bp = adaptive_breakpoints(f_loss, np.zeros(B), C, K)
        L, slope = chord_slopes(bp, f_loss(bp))
        tp = np.maximum(U[:, None] * tan_frac[None, :], 1e-12)
        t_slope = kp[:, None] * zp[:, None] * tp ** (zp[:, None] - 1.0)
        t_icpt = kp[:, None] * tp ** zp[:, None] - t_slope * tp
        t_slope = np.where(U[:, None] > 0, t_slope, 0.0)
        t_icpt = np.where(U[:, None] > 0, t_icpt, 0.0)
        t_cap = kp * U ** zp
        base = float(pt_value(-c, kp, kn, zp, zn).sum())  # every buyer at zero saving

        # per-day coefficients
        emax = np.where(inst.allowed & (w[None, :] >= mu), np.minimum(w[None, :], r[:, None] / lossf), 0.0)
        emax = np.where(emax >= mu, emax, 0.0).ravel()
        data[pat["cap"]] = lossf.ravel()
        data[pat["ub_z"]] = -emax
        data[pat["mu_z"]] = -mu
        data[pat["sav_e"]] = np.repeat(a, B)
        data[pat["in1_y"]] = -L.ravel()
        data[pat["in2_y"]] = -L[:, 1:].ravel()
        data[pat["conc_y"]] = -U
        data[pat["tan_u"]] = -t_slope.ravel()
        data[pat["tcap_y"]] = -t_cap
        A = pat.matrix(data)
        row_ub[r_cap] = r
        row_ub[r_dem] = w
        row_ub[r_tan] = t_icpt.ravel()
        lb = np.zeros(n)
        ub = np.zeros(n)
        ub[o_e:o_z] = emax
        ub[o_z:o_d] = (emax > 0).astype(float)
        ub[o_d:o_y] = L.ravel()
        lb[o_y:o_u] = (L.ravel() <= 0).astype(float)  # empty segments count as full
        ub[o_y:o_u] = 1.0
        ub[o_u:o_t] = U
        ub[o_t:n] = t_cap
        cost = np.zeros(n)
        cost[o_d:o_y] = slope.ravel()
        cost[o_t:n] = 1.0
        res = solve_milp(cost, A, row_lb, row_ub, lb, ub, integrality, maximize=True,
                         time_limit=time_limit, mip_rel_gap=gap)
        valid = bool(np.all(zn <= 1.0) and np.all(zp <= 1.0))
        stats = {
            "status": res.status,
            "proven_optimal": res.proven_optimal,
            "mip_gap": res.mip_gap,
            "model_objective": res.objective + base if res.success else float("nan"),
            "upper_bound": res.bound + base if (valid and np.isfinite(res.bound)) else float("nan"),
            "upper_bound_valid": valid,
            "solver_seconds": res.seconds,
            "n_breakpoints": K,
            "n_tangents": M,
        }
        if res.success:
            e = _make_feasible(inst, res.x[o_e:o_z].reshape(S, B))
        else:
            e = np.zeros((S, B))
        return _finish(inst, _x_from_energy(inst, e), _seller_price_matrix(inst), "milp", t0, stats)

    return clearer


# --------------------------------------------------------------------------------------
# Default mechanism: "savings" (ours)
# --------------------------------------------------------------------------------------
# The kernel below is compiled by numba (cache=True: compiled once per machine).
# Notation: e[i, j] kWh delivered, used[i] = sum_j (1 + l_ij) e_ij, got[j] = sum_i e_ij,
# sav[j] = sum_i a_i e_ij with a_i = rho_gs - rho_i, phi_j(s) = v_j(s - c_j) (Eq. 5.1).
@njit(cache=True, inline="always")
def _phi(s, c, kp, kn, zp, zn):
    g = s - c
    if g >= 0.0:
        return kp * g ** zp
    return -kn * (-g) ** zn


@njit(cache=True)
def _rand(state):
    # xorshift64*; state is a 1-element uint64 array
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return ((x * np.uint64(2685821657736338717)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _dphi(s, c, kp, kn, zp, zn):
    g = s - c
    if g > 0.0:
        return kp * zp * g ** (zp - 1.0)
    if g < 0.0:
        return kn * zn * (-g) ** (zn - 1.0)
    return 1e300


@njit(cache=True)
def _best_fill(j, order, n_ord, e, used, got, sav, r, w, a, lf, mu, c, kp, kn, zp, zn):
    """Max over capacity C of the chord slope (phi(s(C)) - phi(s0)) / C when buyer j is
    filled cheapest-first with C kWh of sellers' capacity. Returns (slope, C*)."""
    cj, kpj, knj, zpj, znj = c[j], kp[j], kn[j], zp[j], zn[j]
    s0 = sav[j]
    phi0 = _phi(s0, cj, kpj, knj, zpj, znj)
    room = w[j] - got[j]
    C = 0.0
    s = s0
    best = 0.0
    bestC = 0.0
    for t in range(n_ord[j]):
        if room <= 1e-12:
            break
        i = order[j, t]
        left = r[i] - used[i]
        if left <= 1e-12:
            continue
        amt = left / lf[i, j]
        if amt > room:
            amt = room
        need = mu - e[i, j]  # smallest admissible amount on this pair
        if need < 0.0:
            need = 0.0
        if amt < need - 1e-12:
            continue
        beta = a[i] / lf[i, j]
        Ca = C
        sa = s
        Cb = C + amt * lf[i, j]
        sb = s + a[i] * amt
        sl = (_phi(sb, cj, kpj, knj, zpj, znj) - phi0) / Cb
        if sl > best:
            best = sl
            bestC = Cb
        if sb > cj and beta > 0.0:
            # tangent point inside the gain part of this piece: h(C) = phi'(s) beta C - (phi(s) - phi0)
            lo = Ca + need * lf[i, j]
            if sa < cj:
                lo2 = Ca + (cj - sa) / beta
                if lo2 > lo:
                    lo = lo2
            hi = Cb
            if lo < hi:
                for _ in range(14):
                    mid = 0.5 * (lo + hi)
                    sm = sa + beta * (mid - Ca)
                    h = _dphi(sm, cj, kpj, knj, zpj, znj) * beta * mid - (_phi(sm, cj, kpj, knj, zpj, znj) - phi0)
                    if h > 0.0:
                        lo = mid
                    else:
                        hi = mid
                sm = sa + beta * (lo - Ca)
                sl = (_phi(sm, cj, kpj, knj, zpj, znj) - phi0) / lo if lo > 1e-12 else 0.0
                if sl > best:
                    best = sl
                    bestC = lo
        C = Cb
        s = sb
        room -= amt
    return best, bestC


@njit(cache=True)
def _fill_cap(j, capC, order, n_ord, e, used, got, sav, r, w, a, lf, mu):
    """Fill buyer j cheapest-first using at most capC kWh of sellers' capacity."""
    room = w[j] - got[j]
    C = capC
    for t in range(n_ord[j]):
        if room <= 1e-12 or C <= 1e-12:
            break
        i = order[j, t]
        left = r[i] - used[i]
        if left <= 1e-12:
            continue
        amt = left / lf[i, j]
        if amt > room:
            amt = room
        if amt * lf[i, j] > C:
            amt = C / lf[i, j]
        if e[i, j] + amt < mu - 1e-12:
            continue
        e[i, j] += amt
        used[i] += amt * lf[i, j]
        got[j] += amt
        sav[j] += a[i] * amt
        room -= amt
        C -= amt * lf[i, j]


@njit(cache=True)
def _clear_buyer(j, e, used, got, sav, lf, S):
    for i in range(S):
        if e[i, j] > 0.0:
            used[i] -= e[i, j] * lf[i, j]
            if used[i] < 0.0:
                used[i] = 0.0
            e[i, j] = 0.0
    got[j] = 0.0
    sav[j] = 0.0


@njit(cache=True)
def _greedy_repair(cand, n_cand, order, n_ord, e, used, got, sav, r, w, a, lf, mu, c, kp, kn, zp, zn,
                   state, noise):
    """S-shaped knapsack greedy: repeatedly fill the buyer whose best chord slope (value per
    kWh of capacity, Eq. 5.1 through the saving) is largest, up to its tangent point."""
    for _ in range(4 * n_cand + 4):
        best = -1
        best_sc = 0.0
        best_C = 0.0
        for q in range(n_cand):
            j = cand[q]
            sc, Cst = _best_fill(j, order, n_ord, e, used, got, sav, r, w, a, lf, mu, c, kp, kn, zp, zn)
            if sc <= 0.0 or Cst <= 1e-12:
                continue
            if noise > 0.0:
                sc *= 1.0 + noise * (_rand(state) - 0.5)
            if best < 0 or sc > best_sc:
                best = q
                best_sc = sc
                best_C = Cst
        if best < 0:
            return
        _fill_cap(cand[best], best_C, order, n_ord, e, used, got, sav, r, w, a, lf, mu)


@njit(cache=True)
def _total(sav, c, kp, kn, zp, zn, B):
    t = 0.0
    for j in range(B):
        t += _phi(sav[j], c[j], kp[j], kn[j], zp[j], zn[j])
    return t


@njit(cache=True)
def _transfer_pass(e, used, got, sav, r, w, a, lf, allowed, mu, c, kp, kn, zp, zn, S, B):
    """Best-improvement transfers of one seller's energy between two buyers (or from its
    unused capacity). Returns True if something improved."""
    improved = False
    for i in range(S):
        for j in range(-1, B):  # -1: the seller's unused capacity
            if j >= 0:
                if e[i, j] <= 0.0:
                    continue
                src_cap = e[i, j] * lf[i, j]
            else:
                src_cap = r[i] - used[i]
                if src_cap <= 1e-9:
                    continue
            for k in range(-1, B):
                if k == j:
                    continue
                if k >= 0 and not allowed[i, k]:
                    continue
                if k < 0 and j < 0:
                    continue
                # candidate amounts of capacity to move: all, and what fills k
                for variant in range(6):
                    if j >= 0:
                        src_cap = e[i, j] * lf[i, j]
                    else:
                        src_cap = r[i] - used[i]
                    if src_cap <= 1e-12:
                        break
                    if k >= 0:
                        room_cap = (w[k] - got[k]) * lf[i, k]
                        if room_cap <= 1e-12:
                            break
                    else:
                        room_cap = 1e300
                    if variant == 0:
                        mv = src_cap
                    elif variant == 1:
                        mv = room_cap
                    elif variant == 2:
                        mv = 0.5 * src_cap
                    elif variant == 3:
                        # bring k exactly to its reference (the kink of Eq. 5.1)
                        if k < 0 or sav[k] >= c[k]:
                            continue
                        mv = (c[k] - sav[k]) * lf[i, k] / a[i] * (1.0 + 1e-9)
                    elif variant == 4:
                        # give away only j's saving beyond its reference
                        if j < 0 or sav[j] <= c[j]:
                            continue
                        mv = (sav[j] - c[j]) * lf[i, j] / a[i]
                    else:
                        # the exact 1-D optimum when the move helps at the margin
                        if j < 0 or k < 0:
                            continue
                        gj = _dphi(sav[j], c[j], kp[j], kn[j], zp[j], zn[j]) / lf[i, j]
                        gk = _dphi(sav[k], c[k], kp[k], kn[k], zp[k], zn[k]) / lf[i, k]
                        if gk <= gj:
                            continue
                        lo_ = 0.0
                        hi_ = min(src_cap, room_cap)
                        for _ in range(20):
                            m1 = lo_ + (hi_ - lo_) / 3.0
                            m2 = hi_ - (hi_ - lo_) / 3.0
                            v1 = (_phi(sav[j] - a[i] * m1 / lf[i, j], c[j], kp[j], kn[j], zp[j], zn[j])
                                  + _phi(sav[k] + a[i] * m1 / lf[i, k], c[k], kp[k], kn[k], zp[k], zn[k]))
                            v2 = (_phi(sav[j] - a[i] * m2 / lf[i, j], c[j], kp[j], kn[j], zp[j], zn[j])
                                  + _phi(sav[k] + a[i] * m2 / lf[i, k], c[k], kp[k], kn[k], zp[k], zn[k]))
                            if v1 < v2:
                                lo_ = m1
                            else:
                                hi_ = m2
                        mv = 0.5 * (lo_ + hi_)
                    if mv > src_cap:
                        mv = src_cap
                    if mv > room_cap:
                        mv = room_cap
                    if mv <= 1e-12:
                        continue
                    # min-trade feasibility
                    if j >= 0:
                        rem = e[i, j] - mv / lf[i, j]
                        if rem < 1e-12:
                            rem = 0.0
                        if rem > 0.0 and rem < mu - 1e-12:
                            continue
                    if k >= 0:
                        if e[i, k] + mv / lf[i, k] < mu - 1e-12:
                            continue
                    d = 0.0
                    if j >= 0:
                        sj = sav[j] - a[i] * mv / lf[i, j]
                        d += _phi(sj, c[j], kp[j], kn[j], zp[j], zn[j]) - _phi(sav[j], c[j], kp[j], kn[j], zp[j], zn[j])
                    if k >= 0:
                        sk = sav[k] + a[i] * mv / lf[i, k]
                        d += _phi(sk, c[k], kp[k], kn[k], zp[k], zn[k]) - _phi(sav[k], c[k], kp[k], kn[k], zp[k], zn[k])
                    if d > 1e-12:
                        if j >= 0:
                            de = mv / lf[i, j]
                            if e[i, j] - de < 1e-12:
                                de = e[i, j]
                            e[i, j] -= de
                            got[j] -= de
                            sav[j] -= a[i] * de
                            used[i] -= de * lf[i, j]
                        if k >= 0:
                            de = mv / lf[i, k]
                            e[i, k] += de
                            got[k] += de
                            sav[k] += a[i] * de
                            used[i] += de * lf[i, k]
                        improved = True
    return improved



@njit(cache=True, inline="always")
def _pair_val(dl, sj, sk, cj, ck, j, k, kp, kn, zp, zn):
    return (_phi(sj + dl, cj, kp[j], kn[j], zp[j], zn[j]) + _phi(sk - dl, ck, kp[k], kn[k], zp[k], zn[k]))


@njit(cache=True)
def _exchange_pass(e, used, got, sav, r, a, lf, allowed, mu, c, kp, kn, zp, zn, S, B):
    """Two buyers swap equal energy of two sellers: j gives seller i's energy to k and
    receives seller i2's energy from k. Demands are unchanged; saving moves between j and k
    along a line, optimised exactly in 1-D (endpoints, reference crossings, stationary point)."""
    improved = False
    der = np.empty(B)
    for j in range(B):
        der[j] = _dphi(sav[j], c[j], kp[j], kn[j], zp[j], zn[j])
    for j in range(B):
        for k in range(B):
            if k == j:
                continue
            for i in range(S):
                if e[i, j] <= 0.0 or not allowed[i, k]:
                    continue
                for i2 in range(S):
                    if i2 == i or e[i2, k] <= 0.0 or not allowed[i2, j]:
                        continue
                    da = a[i2] - a[i]  # saving gained by j per kWh exchanged
                    if da == 0.0:
                        continue
                    # first-order filter or a possible reference crossing
                    if da * (der[j] - der[k]) <= 0.0 and not (da > 0.0 and sav[j] < c[j]) and not (da < 0.0 and sav[k] < c[k]):
                        continue
                    hi = min(e[i, j], e[i2, k])
                    gi = lf[i, k] - lf[i, j]
                    if gi > 0.0:
                        sl = (r[i] - used[i]) / gi
                        if sl < hi:
                            hi = sl
                    gi2 = lf[i2, j] - lf[i2, k]
                    if gi2 > 0.0:
                        sl = (r[i2] - used[i2]) / gi2
                        if sl < hi:
                            hi = sl
                    lo = 0.0
                    need = max(mu - e[i, k], mu - e[i2, j], 0.0)
                    if need > lo:
                        lo = need
                    if hi <= lo + 1e-12:
                        continue
                    sj = sav[j]
                    sk = sav[k]
                    base = _pair_val(0.0, sj, sk, c[j], c[k], j, k, kp, kn, zp, zn)
                    bestv = base
                    bestd = 0.0
                    # candidates: lo, hi, crossings, stationary point (bisection on derivative)
                    cands = np.empty(4)
                    cands[0] = lo
                    cands[1] = hi
                    cands[2] = (c[j] - sj) / da * (1.0 + 1e-9)
                    cands[3] = (sk - c[k]) / da
                    for q in range(4):
                        d = cands[q]
                        if d < lo or d > hi:
                            continue
                        v = _pair_val(da * d, sj, sk, c[j], c[k], j, k, kp, kn, zp, zn)
                        if v > bestv:
                            bestv = v
                            bestd = d
                    a_ = lo
                    b_ = hi
                    for _ in range(12):
                        m1 = a_ + (b_ - a_) / 3.0
                        m2 = b_ - (b_ - a_) / 3.0
                        if _pair_val(da * m1, sj, sk, c[j], c[k], j, k, kp, kn, zp, zn) < _pair_val(da * m2, sj, sk, c[j], c[k], j, k, kp, kn, zp, zn):
                            a_ = m1
                        else:
                            b_ = m2
                    d = 0.5 * (a_ + b_)
                    v = _pair_val(da * d, sj, sk, c[j], c[k], j, k, kp, kn, zp, zn)
                    if v > bestv:
                        bestv = v
                        bestd = d
                    if bestv > base + 1e-12 and bestd > 0.0:
                        d = bestd
                        # remaining pieces must be 0 or >= mu
                        if e[i, j] - d > 0.0 and e[i, j] - d < mu:
                            d = e[i, j] if e[i, j] <= e[i2, k] else e[i, j] - mu
                        if e[i2, k] - d > 0.0 and e[i2, k] - d < mu:
                            continue
                        if d <= lo - 1e-12 or d > hi + 1e-12:
                            continue
                        if _pair_val(da * d, sj, sk, c[j], c[k], j, k, kp, kn, zp, zn) <= base + 1e-12:
                            continue
                        e[i, j] -= d
                        e[i, k] += d
                        e[i2, k] -= d
                        e[i2, j] += d
                        if e[i, j] < 1e-12:
                            e[i, j] = 0.0
                        if e[i2, k] < 1e-12:
                            e[i2, k] = 0.0
                        used[i] += d * (lf[i, k] - lf[i, j])
                        used[i2] += d * (lf[i2, j] - lf[i2, k])
                        sav[j] += da * d
                        sav[k] -= da * d
                        der[j] = _dphi(sav[j], c[j], kp[j], kn[j], zp[j], zn[j])
                        der[k] = _dphi(sav[k], c[k], kp[k], kn[k], zp[k], zn[k])
                        improved = True
    return improved



@njit(cache=True)
def _pull_pass(e, used, got, sav, r, w, a, lf, allowed, mu, c, kp, kn, zp, zn, S, B):
    """Bring a buyer below its reference up to it by pulling energy from several sources at
    once (sellers' unused capacity first, then the buyers that lose the least value per $ of
    saving moved, first order), kept only if the total PT value improves."""
    improved = False
    src_i = np.empty(S * (B + 1), dtype=np.int64)
    src_j = np.empty(S * (B + 1), dtype=np.int64)
    cost = np.empty(S * (B + 1))
    old_e = e.copy()
    old_used = used.copy()
    old_got = got.copy()
    old_sav = sav.copy()
    for k in range(B):
        if sav[k] >= c[k] or got[k] >= w[k] - 1e-12:
            continue
        n = 0
        for i in range(S):
            if not allowed[i, k]:
                continue
            if r[i] - used[i] > 1e-9:
                src_i[n] = i
                src_j[n] = -1
                cost[n] = 0.0
                n += 1
            for j in range(B):
                if j != k and e[i, j] > 0.0:
                    src_i[n] = i
                    src_j[n] = j
                    cost[n] = _dphi(sav[j], c[j], kp[j], kn[j], zp[j], zn[j]) * lf[i, k] / lf[i, j]
                    n += 1
        if n == 0:
            continue
        ordr = np.argsort(cost[:n])
        before = 0.0
        for j in range(B):
            before += _phi(sav[j], c[j], kp[j], kn[j], zp[j], zn[j])
        old_e[:] = e
        old_used[:] = used
        old_got[:] = got
        old_sav[:] = sav
        target = c[k] * (1.0 + 1e-9) + 1e-12
        for t in range(n):
            need_s = target - sav[k]
            room = w[k] - got[k]
            if need_s <= 0.0 or room <= 1e-12:
                break
            q = ordr[t]
            i = src_i[q]
            j = src_j[q]
            if j < 0:
                cap = r[i] - used[i]
            else:
                cap = e[i, j] * lf[i, j]
            amt_k = cap / lf[i, k]
            want = need_s / a[i]
            if amt_k > want:
                amt_k = want
            if amt_k > room:
                amt_k = room
            if e[i, k] + amt_k < mu:
                amt_k = mu - e[i, k]
                if amt_k * lf[i, k] > cap + 1e-12 or amt_k > room + 1e-12:
                    continue
            capm = amt_k * lf[i, k]
            if j >= 0:
                de = capm / lf[i, j]
                rem = e[i, j] - de
                if rem < 1e-12:
                    de = e[i, j]
                elif rem < mu:
                    # leave mu behind or take all of it
                    de = e[i, j]
                    capm = de * lf[i, j]
                    amt_k = capm / lf[i, k]
                    if amt_k > room:
                        continue
                e[i, j] -= de
                got[j] -= de
                sav[j] -= a[i] * de
                used[i] -= de * lf[i, j]
            e[i, k] += amt_k
            got[k] += amt_k
            sav[k] += a[i] * amt_k
            used[i] += amt_k * lf[i, k]
        after = 0.0
        for j in range(B):
            after += _phi(sav[j], c[j], kp[j], kn[j], zp[j], zn[j])
        if after > before + 1e-12:
            improved = True
        else:
            e[:] = old_e
            used[:] = old_used
            got[:] = old_got
            sav[:] = old_sav
    return improved


@njit(cache=True)
def _seller_orders(order, n_ord, a, lf, allowed, S, B, noise, state):
    """Each buyer's allowed sellers by decreasing saving per kWh (then smaller loss); with
    ``noise > 0`` the keys are perturbed multiplicatively (randomised repairs in the LNS)."""
    key = np.empty(S)
    for j in range(B):
        for i in range(S):
            key[i] = -a[i] + 1e-6 * lf[i, j]
            if noise > 0.0:
                key[i] *= 1.0 + noise * (_rand(state) - 0.5)
        idx = np.argsort(key)
        n = 0
        for t in range(S):
            i = idx[t]
            if allowed[i, j]:
                order[j, n] = i
                n += 1
        n_ord[j] = n


@njit(cache=True)
def _savings_kernel(r, w, a, lf, allowed, c, kp, kn, zp, zn, mu, seed, n_iter, stall):
    """Construction (S-shaped knapsack greedy) + local search + ``n_iter`` LNS rounds."""
    S = r.shape[0]
    B = w.shape[0]
    # per-buyer allowed sellers, cheapest (largest saving a_i) first, then smaller loss
    order = np.zeros((B, S), dtype=np.int64)
    n_ord = np.zeros(B, dtype=np.int64)
    _seller_orders(order, n_ord, a, lf, allowed, S, B, 0.0, np.zeros(1, dtype=np.uint64))
    base_order = order.copy()
    state = np.empty(1, dtype=np.uint64)
    state[0] = np.uint64(seed) | np.uint64(1)
    e = np.zeros((S, B))
    used = np.zeros(S)
    got = np.zeros(B)
    sav = np.zeros(B)
    allb = np.arange(B)
    _greedy_repair(allb, B, order, n_ord, e, used, got, sav, r, w, a, lf, mu, c, kp, kn, zp, zn, state, 0.0)
    for _ in range(100):
        t1 = _transfer_pass(e, used, got, sav, r, w, a, lf, allowed, mu, c, kp, kn, zp, zn, S, B)
        t2 = False
        if S * B <= 625:
            t2 = _exchange_pass(e, used, got, sav, r, a, lf, allowed, mu, c, kp, kn, zp, zn, S, B)
        t3 = False
        if not (t1 or t2):
            t3 = _pull_pass(e, used, got, sav, r, w, a, lf, allowed, mu, c, kp, kn, zp, zn, S, B)
        if not (t1 or t2 or t3):
            break
    best = _total(sav, c, kp, kn, zp, zn, B)
    be = e.copy(); bu = used.copy(); bg = got.copy(); bs = sav.copy()
    rm = np.empty(B, dtype=np.int64)
    since = 0
    for it in range(n_iter):
        if since >= stall:
            break
        since += 1
        # destroy: 1-3 random buyers and, sometimes, one seller
        nrm = 1 + int(_rand(state) * 3.0)
        cnt = 0
        for q in range(nrm):
            j = int(_rand(state) * B)
            dup = False
            for t in range(cnt):
                if rm[t] == j:
                    dup = True
            if not dup:
                rm[cnt] = j
                cnt += 1
        for t in range(cnt):
            _clear_buyer(rm[t], e, used, got, sav, lf, S)
        if _rand(state) < 0.3:
            i = int(_rand(state) * S)
            for j in range(B):
                if e[i, j] > 0.0:
                    got[j] -= e[i, j]
                    sav[j] -= a[i] * e[i, j]
                    e[i, j] = 0.0
            used[i] = 0.0
        if _rand(state) < 0.5:
            _seller_orders(order, n_ord, a, lf, allowed, S, B, 0.6, state)
        _greedy_repair(allb, B, order, n_ord, e, used, got, sav, r, w, a, lf, mu, c, kp, kn, zp, zn, state, 0.3)
        order[:] = base_order
        for _ in range(20):
            t1 = _transfer_pass(e, used, got, sav, r, w, a, lf, allowed, mu, c, kp, kn, zp, zn, S, B)
            t2 = False
            if S * B <= 625:
                t2 = _exchange_pass(e, used, got, sav, r, a, lf, allowed, mu, c, kp, kn, zp, zn, S, B)
            if not (t1 or t2):
                break
        tot = _total(sav, c, kp, kn, zp, zn, B)
        if tot > best + 1e-12:
            best = tot
            since = 0
            be[:] = e; bu[:] = used; bg[:] = got; bs[:] = sav
        else:
            e[:] = be; used[:] = bu; got[:] = bg; sav[:] = bs
    return be, best


def _make_savings(S: int, B: int, **options: Any) -> Callable[[MarketInstance, np.random.Generator], Allocation]:
    """Our default: the S-shaped structure of Eq. 5.2 in *saving* space, compiled (numba).

    The objective depends on ``x`` only through each buyer's saving against the grid
    ``s_j = sum_i a_i e_ij`` (``a_i = rho_gs - rho_i``, ``e_ij = x_ij w_j`` kWh) via
    ``phi_j(s) = v(s - c_j)``, ``c_j = (rho_gs - rho_j) w_j``: convex below ``c_j`` (every
    buyer starts there), concave above, with an infinite slope at ``c_j`` when
    ``zeta < 1``. So the optimum pushes a few buyers just past their reference rather than
    spreading supply. The kernel:

    1. **Construction: an S-shaped knapsack greedy.** For every buyer, filling it
       cheapest-first (largest ``a_i``, capacity counted with ``1 + l_ij``, pieces of at
       least ``mu``) gives a piecewise-linear saving ``s(C)`` in the capacity ``C`` used;
       the best chord slope ``max_C (phi(s(C)) - phi(s0)) / C`` (value per kWh of capacity)
       is found exactly: piece ends, plus the tangent point inside gain pieces (bisection
       on ``phi'(s) beta C = phi(s) - phi(s0)``). The buyer with the steepest chord is
       filled up to its tangent point; repeat until no chord is positive.
    2. **Local search** to a local optimum: *transfer* (a seller's energy from one buyer,
       or from its unused capacity, to another: all, what fills the receiver, half, what
       brings the receiver exactly to its reference, what the giver holds beyond its
       reference), *exchange* (two buyers swap equal energy of two sellers; the saving
       moved is optimised in 1-D), *pull* (bring a buyer up to its reference with energy
       from several sources at once, cheapest first-order loss first).
    3. **Large-neighbourhood search**, at most ``lns_iters`` rounds, stopping after
       ``lns_stall`` rounds without improvement: clear 1-3 random buyers (and sometimes a
       seller), repair with the randomised greedy, local search, keep if better.

    Every move keeps Eqs. 5.2a-g (pieces 0 or ``>= mu``, capacity with losses, demand,
    forbidden pairs). Deterministic given ``rng`` (one 64-bit draw seeds the kernel's own
    xorshift generator; no global state). Options: ``lns_iters`` (default ``clip(2000 // (S B), 8, 100)``:
    80 at 5x5, 8 at 15x15 and above), ``lns_stall`` (default ``max(2, lns_iters // 8)``). The exchange move (O(S^2 B^2)) runs only for
    ``S * B <= 625``.
    """
    spec = {"lns_iters": (lambda v: _is_int(v) and 0 <= v <= 100_000, "an integer in [0, 100000]"),
            "lns_stall": (lambda v: _is_int(v) and 1 <= v <= 100_000, "an integer in [1, 100000]")}
    _check_options("savings", options, {k: s_[0] for k, s_ in spec.items()}, {k: s_[1] for k, s_ in spec.items()})
    # LNS budget: a roughly constant amount of work per day (small markets get more rounds)
    n_iter = int(options.get("lns_iters", max(8, min(100, 2000 // max(S * B, 1)))))
    stall = int(options.get("lns_stall", max(2, n_iter // 8)))

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        _check_size(inst, S, B, "savings")
        if rng is None:
            rng = np.random.default_rng(0)
        seed = int(rng.integers(1, 2**62))
        if S == 0 or B == 0:
            return _finish(inst, np.zeros((S, B)), _seller_price_matrix(inst), "savings", t0, {"lns_iters": n_iter, "lns_stall": stall})
        a = inst.grid_sell_price - inst.seller_price
        w, mu = inst.demand_kwh, inst.min_trade_kwh
        allowed = inst.allowed & (a[:, None] > 0.0) & (w[None, :] >= mu) & (w[None, :] > 0.0)
        kp, kn, zp, zn = (np.ascontiguousarray(np.broadcast_to(v, (B,)), dtype=np.float64) for v in inst.pt_args())
        e, _ = _savings_kernel(inst.surplus_kwh, w, a, 1.0 + inst.loss, allowed, inst.ref_gap,
                               kp, kn, zp, zn, float(mu), seed, n_iter, stall)
        return _finish(inst, _x_from_energy(inst, e), _seller_price_matrix(inst), "savings", t0,
                       {"lns_iters": n_iter, "lns_stall": stall})

    return clearer


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------
_FACTORIES: dict[str, Callable[..., Callable[[MarketInstance, np.random.Generator], Allocation]]] = {
    "savings": _make_savings,
    "debate": _make_debate,
    "rule": _make_rule,
    "zhu": _make_zhu,
    "milp": _make_milp,
}
MECHANISMS: tuple[str, ...] = ("savings", "debate", "rule", "zhu", "milp")
DEFAULT_MECHANISM = "savings"


def make_clearer(mechanism: str, n_sellers: int, n_buyers: int, **options: Any
                 ) -> Callable[[MarketInstance, np.random.Generator], Allocation]:
    """Build a reusable clearer for a market of ``n_sellers x n_buyers``.

    The returned callable ``clearer(inst, rng) -> Allocation`` reuses the structure built
    here (index arrays, sort buffers, the MILP's sparse pattern). Unknown mechanisms or
    options raise ``ValueError`` naming the allowed values.
    """
    if mechanism not in _FACTORIES:
        raise ValueError(f"unknown mechanism {mechanism!r}; allowed: {', '.join(MECHANISMS)}")
    for name, v in (("n_sellers", n_sellers), ("n_buyers", n_buyers)):
        if not _is_int(v) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    return _FACTORIES[mechanism](int(n_sellers), int(n_buyers), **options)


def clear(inst: MarketInstance, mechanism: str = DEFAULT_MECHANISM, rng: np.random.Generator | None = None,
          **options: Any) -> Allocation:
    """Clear one day with ``mechanism`` (convenience: builds a clearer and calls it once)."""
    if not isinstance(inst, MarketInstance):
        raise ValueError(f"inst must be a MarketInstance, got {type(inst).__name__}")
    return make_clearer(mechanism, inst.n_sellers, inst.n_buyers, **options)(inst, rng)
