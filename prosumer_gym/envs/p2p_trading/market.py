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

Mechanisms (:data:`MECHANISMS`, in the package :mod:`.clearing`; see
``docs/p2p_trading_clearing.md``):

``"savings"`` (default, ours; ``clearing/savings.py``)
    S-shaped knapsack greedy in saving space + local search + LNS, compiled with numba,
    no solver.
``"debate"`` (``clearing/debate.py``)
    Alg. 4 (DEbATE), differential evolution vectorised over the population.
``"rule"`` (``clearing/rules.py``)
    Section 5.3.2 / ref. [34]: buyers in registration order, cheapest sellers first,
    mid-market price.
``"zhu"`` (``clearing/rules.py``)
    Section 5.3.2 / ref. [35]: buyers by decreasing demand, least-loss sellers first,
    seller's price.
``"milp"`` (``clearing/milp.py``)
    Reference optimum of a piecewise-linear model with HiGHS (``scipy.optimize.milp``).
``"bnb"`` (``clearing/bound.py``)
    Near-exact: sigmoidal-programming branch and bound over the buyers' savings (concave-
    envelope LPs, HiGHS), within 1e-5 of the attainable gain of a certified upper bound.

This module holds the data model (:class:`MarketInstance`, :class:`Allocation`), the
objective and accounting, and the feasibility checker; it re-exports the mechanisms'
public names, so ``from prosumer_gym.envs.p2p_trading.market import make_clearer`` works.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from prosumer_gym.core.prospect import PTParams, pt_value, sample_pt_params

__all__ = [
    "MarketInstance",
    "Allocation",
    "FloatArray",
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
    "debate_repair",
    "max_saving",
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
# Mechanisms: re-exported lazily (PEP 562). They live in the package ``clearing``, whose
# modules import the data model above; resolving these names on first use keeps the imports
# acyclic in either order (and ``import market`` free of numba/HiGHS until a clearer is asked for).
# --------------------------------------------------------------------------------------
_CLEARING = "prosumer_gym.envs.p2p_trading.clearing"
_REEXPORTS = {
    "MECHANISMS": _CLEARING,
    "DEFAULT_MECHANISM": _CLEARING,
    "make_clearer": _CLEARING,
    "clear": _CLEARING,
    "debate_repair": f"{_CLEARING}.debate",
    "max_saving": f"{_CLEARING}.milp",
}


def __getattr__(name: str) -> Any:
    module = _REEXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_REEXPORTS})
