"""Mechanisms of EnergyCollective-v0: the community-based market (ADMM) and the P2P market.

Source: slides ``002`` (Pinson et al., "Prosumer-centric electricity markets: energy
collectives and peer-to-peer exchanges"; Moret & Pinson, IEEE TPWRS 2019; Sorin, Bobo &
Pinson, IEEE TPWRS 2019). Env card and every modelling choice: ``docs/energy_collective.md``.

Players (one market time unit of ``slot_hours``; energies in kWh per slot)
--------------------------------------------------------------------------
Every player ``i`` has a net injection ``p_i`` (> 0 produces, < 0 consumes; the slides'
``p_j`` of generators and ``-c_i`` of consumers) with bounds ``lo_i <= p_i <= hi_i``
(slides Eqs. (3)-(4)) and a quadratic cost (Fig. 1 of the slides; problem (1))::

    f_i(p) = 1/2 a_i (p - r_i)^2 + m_i (p - r_i)          [EUR]

``r_i`` is the player's reference set-point (``f_i(r_i) = 0``) and ``m_i`` its marginal
cost there (EUR/kWh). Kinds (:data:`PLAYER_TYPES`):

``prosumer``   household load ``L`` with rooftop PV ``s`` (not curtailed): ``r = s - L``,
               a flexible share ``phi`` of the load: ``p in [s-(1+phi)L, s-(1-phi)L]``.
``flexible``   household without PV, ``r = -L``, ``p in [-(1+phi)L, -(1-phi)L]``.
               For both: ``m = v`` (value of energy, EUR/kWh) and ``a = v / (phi L)``,
               so the consumer moves to a bound of its band when the price reaches 0 or
               ``2 v`` (linear demand curve through ``(v, L)``).
``inflexible`` household without PV, ``p = -L`` (``lo = hi``, zero cost).
``chp`` / ``peak``  mini-CHP and peak units: ``r = 0``, ``p in [0, P_max h]``,
               ``f(p) = h (1/2 a_P P^2 + b P)`` with ``P = p/h`` kW, i.e. ``a = a_P/h``, ``m = b``.

Community market (problem (1)-(5) of the slides, cost convention)
------------------------------------------------------------------
::

    min   sum_i f_i(p_i) + g(q)                                      (1)
    s.t.  sum_i p_i + q = 0               (community price lambda)   (2)
          lo_i <= p_i <= hi_i                                        (3)-(4)
          -Q_exp <= q <= Q_imp            (grid connection)          (5)

``q`` is the community's net import (the slides write (2) with ``q_ext`` = export and
``-g``; we use ``q`` = import and ``+g`` so that ``g`` is a cost for every kind):

``g = "market"``       ``g(q) = lambda_imp q^+ - lambda_exp q^-`` (market-driven; the
                       retail mark-up makes ``lambda_imp > lambda_exp``),
``g = "autonomy_l1"``  market cost ``+ theta |q|``,
``g = "autonomy_l2"``  market cost ``+ theta/2 q^2`` (for a scalar ``q`` the 2-norm equals
                       the 1-norm; we use the squared norm, which penalises large exchanges
                       more and is smooth).

:func:`solve_community_admm` is the distributed ADMM of the slides (players' x-updates,
the community manager's update of ``q`` and of the price, primal/dual stopping; the core
iteration is :func:`prosumer_gym.core.admm.exchange_admm`, vectorised over players and
over the market time units); :func:`solve_community_qp` is the centralised QP oracle.
:func:`bau_dispatch` is Business As Usual (each player alone facing the retail import
price and the wholesale export price). :func:`allocate_grid_cost` splits the community's
grid bill among players with the rules of the slides (none / equal / proportional).

P2P market with product differentiation (``market="p2p"``)
-----------------------------------------------------------
Multi-bilateral economic dispatch (MBED) with reciprocity ``P_nm = -P_mn``, bounds on
``sum_m P_nm``, producers ``P_nm >= 0``, consumers ``P_nm <= 0``, and costs::

    C_n = 1/2 a_n (sum_m P_nm)^2 + b_n sum_m P_nm + sum_g c_n^g sum_m gamma_nm^g |P_nm|

(the slides write ``c gamma P_nm``, which for a consumer's ``P_nm <= 0`` would reward
distant trades; ``|P_nm|`` makes the preference a cost on both sides), plus an optional
small trade curvature ``eps/2 sum_m P_nm^2`` (``MBEDInstance.trade_curvature``): without
it the MBED is degenerate (costs depend on the trades only through their sum and linear
terms) and the C+I price-and-quantity iteration oscillates along the degenerate
directions instead of converging. Solved by the consensus+innovation (C+I) updates of the
slides (:func:`solve_p2p_ci`) and by the centralised QP (:func:`solve_p2p_qp`).
:func:`two_villages` builds the slides' illustrative example.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from prosumer_gym import data as pgdata
from prosumer_gym.core.admm import exchange_admm
from prosumer_gym.core.qp import QPInfeasibleError, solve_qp

__all__ = [
    "PLAYER_TYPES",
    "ALLOCATIONS",
    "G_KINDS",
    "MARKETS",
    "Community",
    "Population",
    "sample_population",
    "retail_prices",
    "CommunityDispatch",
    "community_g",
    "grid_bill",
    "solve_community_admm",
    "solve_community_qp",
    "bau_dispatch",
    "allocate_grid_cost",
    "settle_community",
    "MBEDInstance",
    "P2PResult",
    "mbed_from_community",
    "solve_p2p_ci",
    "solve_p2p_qp",
    "two_villages",
    "random_community",
]

PLAYER_TYPES = ("prosumer", "flexible", "inflexible", "chp", "peak")
ALLOCATIONS = ("none", "equal", "proportional")
G_KINDS = ("market", "autonomy_l1", "autonomy_l2")
MARKETS = ("community", "p2p")
_FIXED_TOL = 1e-9  # kWh: players with hi - lo below this have no decision
MIN_FLEX_KWH = 1e-3  # kWh per slot: a flexible band narrower than 1 Wh makes the consumer inflexible


# =============================================================================== players
@dataclass(frozen=True)
class Community:
    """Players and grid tariff of one community over ``T`` market time units.

    Arrays of shape ``(T, N)`` (players) or ``(T,)`` (slots); energies in kWh per slot,
    prices in EUR/kWh, ``a`` in EUR/kWh^2. Validated on construction: infeasible bounds
    raise ``ValueError`` naming the player and the slot.
    """

    names: tuple[str, ...]
    kind: NDArray[np.str_]
    a: NDArray[np.float64]
    m: NDArray[np.float64]
    r: NDArray[np.float64]
    lo: NDArray[np.float64]
    hi: NDArray[np.float64]
    import_price: NDArray[np.float64]
    export_price: NDArray[np.float64]
    g_kind: str = "market"
    autonomy_weight: float = 0.0
    import_capacity: float = np.inf
    export_capacity: float = np.inf
    position_km: NDArray[np.float64] | None = None
    slot_hours: float = 1.0
    wholesale_price: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        arrs = {}
        for fld in ("a", "m", "r", "lo", "hi"):
            v = np.atleast_2d(np.asarray(getattr(self, fld), dtype=np.float64))
            if v.ndim != 2 or v.shape[1] != n:
                raise ValueError(f"{fld} must have shape (T, {n}) (one column per player), got {v.shape}")
            arrs[fld] = v
        T = arrs["a"].shape[0]
        for fld, v in arrs.items():
            if v.shape[0] != T:
                raise ValueError(f"{fld} has {v.shape[0]} slots, a has {T}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{fld} must be finite, got NaN/inf")
            object.__setattr__(self, fld, v)
        if np.any(arrs["a"] < 0):
            t, i = np.argwhere(arrs["a"] < 0)[0]
            raise ValueError(f"cost curvature a must be >= 0 (convex costs); player {self.names[i]!r} at slot {t} "
                             f"has a = {arrs['a'][t, i]}")
        bad = arrs["lo"] > arrs["hi"] + 1e-12
        if np.any(bad):
            t, i = np.argwhere(bad)[0]
            raise ValueError(
                f"infeasible player bounds: player {self.names[i]!r} at slot {t} has p_min = {arrs['lo'][t, i]:.6g} > "
                f"p_max = {arrs['hi'][t, i]:.6g} kWh"
            )
        object.__setattr__(self, "kind", np.asarray(self.kind, dtype=str))
        if self.kind.shape != (n,):
            raise ValueError(f"kind must have one entry per player ({n}), got shape {self.kind.shape}")
        for fld in ("import_price", "export_price"):
            v = np.broadcast_to(np.asarray(getattr(self, fld), dtype=np.float64), (T,)).copy()
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{fld} must be finite")
            object.__setattr__(self, fld, v)
        if self.wholesale_price is not None:
            object.__setattr__(self, "wholesale_price",
                               np.broadcast_to(np.asarray(self.wholesale_price, dtype=np.float64), (T,)).copy())
        if self.g_kind not in G_KINDS:
            raise ValueError(f"g must be one of {G_KINDS}, got {self.g_kind!r}")
        th = float(self.autonomy_weight)
        if not (np.isfinite(th) and th >= 0):
            raise ValueError(f"autonomy_weight must be a finite number >= 0, got {self.autonomy_weight!r}")
        theta1 = th if self.g_kind == "autonomy_l1" else 0.0
        if np.any(self.import_price + theta1 < self.export_price - theta1 - 1e-12):
            t = int(np.argmax(self.export_price - self.import_price))
            raise ValueError(
                f"import_price must be >= export_price (else g is not convex and the community would arbitrage the "
                f"grid); slot {t}: import {self.import_price[t]:.4f} < export {self.export_price[t]:.4f} EUR/kWh"
            )
        for fld in ("import_capacity", "export_capacity"):
            v = float(getattr(self, fld))
            if not v >= 0:
                raise ValueError(f"{fld} must be >= 0 kWh per slot (inf for none), got {v}")
            object.__setattr__(self, fld, v)
        # Community feasibility (5): the players' aggregate range must meet the connection.
        s_lo, s_hi = arrs["lo"].sum(axis=1), arrs["hi"].sum(axis=1)
        bad_t = np.flatnonzero((s_lo > self.export_capacity + 1e-9) | (s_hi < -self.import_capacity - 1e-9))
        if bad_t.size:
            t = int(bad_t[0])
            raise ValueError(
                f"infeasible community at slot {t}: players' net injection ranges over [{s_lo[t]:.4g}, {s_hi[t]:.4g}] kWh "
                f"but the grid connection allows only [-import_capacity, export_capacity] = "
                f"[{-self.import_capacity:.4g}, {self.export_capacity:.4g}] kWh"
            )
        if self.position_km is not None:
            pos = np.asarray(self.position_km, dtype=np.float64)
            if pos.shape != (n, 2):
                raise ValueError(f"position_km must have shape ({n}, 2), got {pos.shape}")
            object.__setattr__(self, "position_km", pos)

    # ------------------------------------------------------------------ shapes / helpers
    @property
    def n_players(self) -> int:
        return len(self.names)

    @property
    def n_slots(self) -> int:
        return int(self.a.shape[0])

    @property
    def b(self) -> NDArray[np.float64]:
        """Linear coefficient of ``f_i`` written as ``1/2 a p^2 + b p + const``."""
        return self.m - self.a * self.r

    @property
    def fixed(self) -> NDArray[np.bool_]:
        """(T, N) players without a decision (``lo == hi``)."""
        return self.hi - self.lo <= _FIXED_TOL

    def slots(self, idx: int | slice | Sequence[int]) -> "Community":
        """The community restricted to some market time units."""
        sel = np.atleast_1d(np.arange(self.n_slots)[idx])
        kw = {f: getattr(self, f)[sel] for f in ("a", "m", "r", "lo", "hi", "import_price", "export_price")}
        if self.wholesale_price is not None:
            kw["wholesale_price"] = self.wholesale_price[sel]
        return replace(self, **kw)

    def player_cost(self, p: ArrayLike) -> NDArray[np.float64]:
        """``f_i(p_i)`` (EUR), same shape as ``p`` ((T, N))."""
        d = np.asarray(p, dtype=np.float64) - self.r
        return 0.5 * self.a * d * d + self.m * d

    def marginal_cost(self, p: ArrayLike) -> NDArray[np.float64]:
        """``f_i'(p_i)`` (EUR/kWh)."""
        return self.a * (np.asarray(p, dtype=np.float64) - self.r) + self.m

    def best_response(self, price: ArrayLike) -> NDArray[np.float64]:
        """Each player's ``argmin f_i(p) - price * p`` over its bounds (the ADMM x-update at
        convergence): ``clip(r + (price - m) / a, lo, hi)``; ``price`` of shape (T,) or (T, N)."""
        pr = np.asarray(price, dtype=np.float64)
        if pr.ndim == 1:
            pr = pr[:, None]
        return best_response(self.a, self.m, self.r, self.lo, self.hi, pr)


def best_response(a: NDArray, m: NDArray, r: NDArray, lo: NDArray, hi: NDArray, price: NDArray) -> NDArray:
    """``argmin 1/2 a (p-r)^2 + m (p-r) - price p`` over ``[lo, hi]`` (elementwise; ``a = 0``
    players go to the bound that the sign of ``price - m`` favours, or stay at ``r`` if equal)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = r + (price - m) / a
    lin = np.where(price > m, hi, np.where(price < m, lo, np.clip(r, lo, hi)))
    return np.clip(np.where(a > 0, interior, lin), lo, hi)


# =============================================================================== data
def retail_prices(
    year: int, import_markup: float, export_markup: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Hourly (8760,) wholesale, import and export prices (EUR/kWh) of ``year`` on the local
    clock of the other data (CET = UTC+1, no daylight saving; see docs).

    Import = wholesale + ``import_markup``; export = wholesale - ``export_markup``
    (Dutch ENTSO-E day-ahead prices shipped by ``prosumer_gym.data``; the slides used
    Australian wholesale prices).
    """
    allp = pgdata.day_ahead_prices()
    ts = allp["timestamp"]
    price = allp["price_eur_per_mwh"] / 1000.0
    start = np.datetime64(f"{int(year)}-01-01T00", "h") - np.timedelta64(1, "h")  # 00:00 CET
    idx = int((start - ts[0]).astype(np.int64))
    take = np.clip(np.arange(idx, idx + pgdata.HOURS_PER_YEAR), 0, len(price) - 1)
    w = price[take].copy()
    return w, w + float(import_markup), w - float(export_markup)


@dataclass(frozen=True)
class Population:
    """A sampled community population (the players, independent of the day).

    Hourly series ``load_kwh`` and ``pv_kwh`` are ``(N, H)`` for the ``H`` hours of the
    days covered (``first_day`` ... ), kWh per hour; generator and consumer parameters are
    per player. :meth:`community` builds the :class:`Community` of one day.
    """

    names: tuple[str, ...]
    kind: NDArray[np.str_]
    first_day: int
    load_kwh: NDArray[np.float64]
    pv_kwh: NDArray[np.float64]
    value_mult: NDArray[np.float64]
    gen_capacity_kw: NDArray[np.float64]
    gen_min_kw: NDArray[np.float64]
    gen_a: NDArray[np.float64]
    gen_b: NDArray[np.float64]
    position_km: NDArray[np.float64]
    flexibility: float
    source_home: NDArray[np.int64]
    pv_kw: NDArray[np.float64]

    @property
    def n_players(self) -> int:
        return len(self.names)

    def community(
        self,
        day: int,
        wholesale: NDArray[np.float64],
        import_price: NDArray[np.float64],
        export_price: NDArray[np.float64],
        slot_minutes: int = 60,
        g_kind: str = "market",
        autonomy_weight: float = 0.0,
        import_capacity: float = np.inf,
        export_capacity: float = np.inf,
    ) -> Community:
        """The community of day ``day`` (``first_day <= day < first_day + n_days``; days past
        364 continue into the data year's start, ``day % 365``), with hourly ``(8760,)``
        price series and ``slot_minutes`` in {15, 30, 60}: a sub-hourly slot gets its
        hour's energy divided evenly and its hour's prices."""
        k = 60 // slot_minutes
        h = slot_minutes / 60.0
        off = (day - self.first_day) * pgdata.HOURS_PER_DAY
        if off < 0 or off + pgdata.HOURS_PER_DAY > self.load_kwh.shape[1]:
            raise ValueError(f"day {day} is not covered by this population (days {self.first_day}..)")
        hrs = slice(off, off + pgdata.HOURS_PER_DAY)
        L = np.repeat(self.load_kwh[:, hrs].T, k, axis=0) / k  # (T, N) kWh per slot
        S = np.repeat(self.pv_kwh[:, hrs].T, k, axis=0) / k
        dd = day % pgdata.N_DAYS
        ph = slice(dd * pgdata.HOURS_PER_DAY, (dd + 1) * pgdata.HOURS_PER_DAY)
        imp = np.repeat(import_price[ph], k)
        exp_ = np.repeat(export_price[ph], k)
        whole = np.repeat(wholesale[ph], k)
        T, N = L.shape
        kind = self.kind
        phi = self.flexibility
        value = np.maximum(self.value_mult[None, :] * float(np.mean(imp)), 0.01) * np.ones((T, 1))
        a = np.zeros((T, N))
        m = np.zeros((T, N))
        r = np.zeros((T, N))
        lo = np.zeros((T, N))
        hi = np.zeros((T, N))
        cons = np.isin(kind, ("prosumer", "flexible", "inflexible"))
        r[:, cons] = S[:, cons] - L[:, cons]
        flex = np.isin(kind, ("prosumer", "flexible"))[None, :] & (phi * L >= MIN_FLEX_KWH)
        band = phi * L
        lo[:, cons] = r[:, cons]
        hi[:, cons] = r[:, cons]
        lo = np.where(flex, r - band, lo)
        hi = np.where(flex, r + band, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(flex, value / np.where(flex, band, 1.0), a)
        m = np.where(flex, value, m)
        gen = np.isin(kind, ("chp", "peak"))
        lo[:, gen] = self.gen_min_kw[gen] * h
        hi[:, gen] = self.gen_capacity_kw[gen] * h
        a[:, gen] = self.gen_a[gen] / h
        m[:, gen] = self.gen_b[gen]
        # r = 0 for generators; a minimum output makes the reference the minimum output
        r[:, gen] = lo[:, gen]
        m[:, gen] = self.gen_b[gen] + self.gen_a[gen] * self.gen_min_kw[gen]
        return Community(
            names=self.names, kind=kind, a=a, m=m, r=r, lo=lo, hi=hi, import_price=imp, export_price=exp_,
            g_kind=g_kind, autonomy_weight=autonomy_weight, import_capacity=import_capacity,
            export_capacity=export_capacity, position_km=self.position_km, slot_hours=h, wholesale_price=whole,
        )


def _pair(name: str, v: Sequence[float], lo: float = 0.0) -> tuple[float, float]:
    try:
        x, y = (float(t) for t in v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {v!r}") from None
    if not (np.isfinite(x) and np.isfinite(y)) or x > y or x < lo:
        raise ValueError(f"{name} must satisfy {lo} <= low <= high < inf, got {(x, y)}")
    return x, y


def sample_population(
    rng: np.random.Generator,
    first_day: int,
    n_days: int,
    n_prosumers: int = 100,
    n_flexible: int = 100,
    n_inflexible: int = 100,
    n_chp: int = 10,
    n_peak: int = 5,
    pv_kw: float | Sequence[float] = 4.0,
    flexibility: float = 0.2,
    value_range: tuple[float, float] = (0.8, 1.2),
    chp_capacity_kw: float = 10.0,
    chp_min_kw: float = 0.0,
    chp_cost_a: tuple[float, float] = (0.002, 0.004),
    chp_cost_b: tuple[float, float] = (0.07, 0.10),
    peak_capacity_kw: float = 5.0,
    peak_min_kw: float = 0.0,
    peak_cost_a: tuple[float, float] = (0.01, 0.02),
    peak_cost_b: tuple[float, float] = (0.16, 0.22),
    area_radius_km: float = 1.0,
    split: str = "train",
) -> Population:
    """Draw the players of a community from the shipped data (all randomness from ``rng``).

    Order of draws (fixed): prosumers (``data.sample_prosumers``: loads then PV
    orientations), consumers (``data.sample_households``, flexible first), consumers'
    value multipliers, generator cost coefficients (CHP then peak), positions.
    Generator costs ``a_P`` are EUR/kW^2/h, ``b`` EUR/kWh.
    """
    counts = {"prosumer": n_prosumers, "flexible": n_flexible, "inflexible": n_inflexible, "chp": n_chp, "peak": n_peak}
    for k, v in counts.items():
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"n_{k if k != 'prosumer' else 'prosumers'} must be an integer >= 0, got {v!r}")
    if sum(counts.values()) < 1:
        raise ValueError("the community needs at least one player")
    if not (isinstance(flexibility, numbers.Real) and 0.0 <= float(flexibility) < 1.0):
        raise ValueError(f"flexibility must be a share in [0, 1) of the household load, got {flexibility!r} "
                         "(a share >= 1 would let a consumer produce)")
    vr = _pair("value_range", value_range, 0.0)
    for name, cap, pmin in (("chp", chp_capacity_kw, chp_min_kw), ("peak", peak_capacity_kw, peak_min_kw)):
        if not (np.isfinite(cap) and cap > 0):
            raise ValueError(f"{name}_capacity_kw must be a finite number > 0, got {cap!r}")
        if not (np.isfinite(pmin) and pmin >= 0):
            raise ValueError(f"{name}_min_kw must be a finite number >= 0, got {pmin!r}")
        if pmin > cap:
            raise ValueError(f"infeasible generator bounds: {name}_min_kw = {pmin} > {name}_capacity_kw = {cap}")
    ca, cb = _pair("chp_cost_a", chp_cost_a), _pair("chp_cost_b", chp_cost_b)
    pa, pb = _pair("peak_cost_a", peak_cost_a), _pair("peak_cost_b", peak_cost_b)
    if not (np.isfinite(area_radius_km) and area_radius_km >= 0):
        raise ValueError(f"area_radius_km must be >= 0, got {area_radius_km!r}")
    cols = np.arange(first_day * pgdata.HOURS_PER_DAY, (first_day + n_days) * pgdata.HOURS_PER_DAY) % pgdata.HOURS_PER_YEAR
    loads, pvs, homes, pvk = [], [], [], []
    if n_prosumers:
        pro = pgdata.sample_prosumers(rng, n_prosumers, pv_kw=pv_kw, split=split)
        loads.append(pro.load_kwh[:, cols])
        pvs.append(pro.pv_kwh[:, cols])
        homes.append(pro.source_home)
        pvk.append(pro.pv_kw)
    n_cons = n_flexible + n_inflexible
    if n_cons:
        hh = pgdata.sample_households(rng, n_cons, split=split)
        loads.append(hh.hourly_load_kwh[:, cols])
        pvs.append(np.zeros((n_cons, len(cols))))
        homes.append(hh.source_home)
        pvk.append(np.zeros(n_cons))
    n_gen = n_chp + n_peak
    H = len(cols)
    loads.append(np.zeros((n_gen, H)))
    pvs.append(np.zeros((n_gen, H)))
    homes.append(np.zeros(n_gen, dtype=np.int64))
    pvk.append(np.zeros(n_gen))
    kind = np.array(sum(([k] * v for k, v in counts.items()), []), dtype=str)
    names = tuple(f"{k}_{j}" for k, v in counts.items() for j in range(v))
    N = len(names)
    n_hh = n_prosumers + n_cons
    value_mult = np.zeros(N)
    value_mult[:n_hh] = rng.uniform(*vr, size=n_hh)
    cap = np.zeros(N)
    pmin = np.zeros(N)
    ga = np.zeros(N)
    gb = np.zeros(N)
    sl_chp = slice(n_hh, n_hh + n_chp)
    sl_peak = slice(n_hh + n_chp, N)
    cap[sl_chp], pmin[sl_chp] = chp_capacity_kw, chp_min_kw
    cap[sl_peak], pmin[sl_peak] = peak_capacity_kw, peak_min_kw
    ga[sl_chp] = rng.uniform(*ca, size=n_chp)
    gb[sl_chp] = rng.uniform(*cb, size=n_chp)
    ga[sl_peak] = rng.uniform(*pa, size=n_peak)
    gb[sl_peak] = rng.uniform(*pb, size=n_peak)
    rad = area_radius_km * np.sqrt(rng.uniform(size=N))
    ang = rng.uniform(0, 2 * np.pi, size=N)
    pos = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)
    return Population(
        names=names, kind=kind, first_day=int(first_day), load_kwh=np.concatenate(loads), pv_kwh=np.concatenate(pvs),
        value_mult=value_mult, gen_capacity_kw=cap, gen_min_kw=pmin, gen_a=ga, gen_b=gb, position_km=pos,
        flexibility=float(flexibility), source_home=np.concatenate(homes).astype(np.int64),
        pv_kw=np.concatenate(pvk),
    )


# =============================================================================== community market
def grid_bill(comm: Community, q: ArrayLike) -> NDArray[np.float64]:
    """Monetary grid cost of the community, ``lambda_imp q^+ - lambda_exp q^-`` (EUR), (T,)."""
    q = np.asarray(q, dtype=np.float64)
    return comm.import_price * np.maximum(q, 0.0) - comm.export_price * np.maximum(-q, 0.0)


def community_g(comm: Community, q: ArrayLike) -> NDArray[np.float64]:
    """Perceived ``g(q)`` of problem (1): the grid bill plus the autonomy term, (T,)."""
    q = np.asarray(q, dtype=np.float64)
    g = grid_bill(comm, q)
    if comm.g_kind == "autonomy_l1":
        g = g + comm.autonomy_weight * np.abs(q)
    elif comm.g_kind == "autonomy_l2":
        g = g + 0.5 * comm.autonomy_weight * q * q
    return g


def _theta(comm: Community) -> tuple[float, float]:
    th = float(comm.autonomy_weight)
    return (th if comm.g_kind == "autonomy_l1" else 0.0), (th if comm.g_kind == "autonomy_l2" else 0.0)


def manager_prox(comm: Community):
    """The community manager's update: ``argmin_q g(q) + rho/2 (q - v)^2`` over
    ``[-Q_exp, Q_imp]`` (closed form, vectorised over slots)."""
    th1, th2 = _theta(comm)
    imp, exp_ = comm.import_price, comm.export_price
    qmin, qmax = -comm.export_capacity, comm.import_capacity

    def prox(v: NDArray[np.float64], rho: NDArray[np.float64], active: NDArray[np.bool_]) -> NDArray[np.float64]:
        q_pos = (rho * v - imp - th1) / (rho + th2)
        q_neg = (rho * v - exp_ + th1) / (rho + th2)
        q = np.where(q_pos > 0, q_pos, np.where(q_neg < 0, q_neg, 0.0))
        return np.clip(q, qmin, qmax)

    return prox


@dataclass(frozen=True)
class CommunityDispatch:
    """Solution of the community market over ``T`` slots.

    ``p`` (T, N) kWh, ``q`` (T,) net import kWh, ``price`` (T,) community price EUR/kWh
    (dual of (2): the marginal value of energy in the community), ``objective`` (T,) value
    of (1) in EUR, ``iterations`` / residuals / ``converged`` per slot (ADMM; the QP
    oracle reports its interior-point iterations), ``method``.
    """

    p: NDArray[np.float64]
    q: NDArray[np.float64]
    price: NDArray[np.float64]
    objective: NDArray[np.float64]
    iterations: NDArray[np.int64]
    primal_residual: NDArray[np.float64]
    dual_residual: NDArray[np.float64]
    converged: NDArray[np.bool_]
    method: str
    rho: NDArray[np.float64] | None = None
    history: tuple[NDArray[np.float64], NDArray[np.float64]] | None = field(default=None, repr=False)


def community_objective(comm: Community, p: ArrayLike, q: ArrayLike) -> NDArray[np.float64]:
    """Objective (1) per slot: ``sum_i f_i(p_i) + g(q)`` (EUR), (T,)."""
    return comm.player_cost(p).sum(axis=1) + community_g(comm, q)


def admm_penalties(comm: Community, floor: float = 0.1, manager: float = 1.0) -> NDArray[np.float64]:
    """Per-agent ADMM penalties (EUR/kWh^2), shape (T, N + 1), last column the manager.

    Player ``i``: ``max(a_i, floor * a_med)``, where ``a_med`` is the slot's median
    curvature of the players with a decision (each player's x-update is damped in
    proportion to its own cost curvature: a diagonal scaling of the augmented
    Lagrangian); players without a decision (``lo == hi``) are frozen (``inf``). Manager:
    ``max(theta_2, manager / sum_i 1/rho_i)``, i.e. as stiff as the players together
    (``theta_2`` the curvature of an ``autonomy_l2`` ``g``). Tuned on the shipped data
    and random communities (see the benchmark and docs).
    """
    a = np.where(comm.fixed | (comm.a <= 0), np.nan, comm.a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(a, axis=1)
    med = np.where(np.isfinite(med), med, 0.1)[:, None]
    players = np.where(comm.fixed, np.inf, np.maximum(comm.a, floor * med))
    agg = np.sum(1.0 / players, axis=1, keepdims=True)
    _, th2 = _theta(comm)
    mgr = np.maximum(th2, manager / np.where(agg > 0, agg, 1.0 / med))
    return np.concatenate([players, mgr], axis=1)


def solve_community_admm(
    comm: Community,
    rho: float | ArrayLike = 1.0,
    penalty: str = "curvature",
    eps_abs: float = 1e-7,
    eps_rel: float = 1e-7,
    max_iter: int = 20_000,
    adaptive_rho: bool = True,
    warm_start: CommunityDispatch | None = None,
    record_history: bool = False,
) -> CommunityDispatch:
    """Distributed ADMM for problem (1)-(5), every slot of ``comm`` at once.

    x-update: every player solves its own problem ``min f_i(p) + lambda p + rho_i/2 (p -
    ...)^2`` on its bounds (closed form, vectorised over players and slots); manager
    update: the import ``q`` (prox of ``g``, closed form) and the community price
    ``lambda``; stopping on the primal and dual residuals (see
    :mod:`prosumer_gym.core.admm`).

    ``penalty="curvature"`` (default) uses per-agent penalties ``rho * rho_i`` from
    :func:`admm_penalties`; ``penalty="uniform"`` the textbook single ``rho`` (EUR/kWh^2)
    for every agent. Players start at their reference set-points and the price at the
    mid-point of the import and export prices unless ``warm_start`` is given.
    """
    if penalty not in ("curvature", "uniform"):
        raise ValueError(f"penalty must be 'curvature' or 'uniform', got {penalty!r}")
    weights = admm_penalties(comm) if penalty == "curvature" else None
    if warm_start is not None:
        x0, price0 = warm_start.p, warm_start.price
    else:
        x0, price0 = np.clip(comm.r, comm.lo, comm.hi), 0.5 * (comm.import_price + comm.export_price)
    res = exchange_admm(
        comm.a, comm.b, comm.lo, comm.hi, manager_prox(comm), rho=rho, rho_weights=weights, eps_abs=eps_abs,
        eps_rel=eps_rel, max_iter=max_iter, x0=x0, price0=price0, adaptive_rho=adaptive_rho,
        record_history=record_history,
    )
    return CommunityDispatch(
        p=res.x, q=res.z, price=res.price, objective=community_objective(comm, res.x, res.z),
        iterations=res.iterations, primal_residual=res.primal_residual, dual_residual=res.dual_residual,
        converged=res.converged, method="admm", rho=res.rho, history=res.history,
    )


def solve_community_qp(comm: Community, tol: float = 1e-10) -> CommunityDispatch:
    """Centralised QP oracle of problem (1)-(5), one dense interior-point solve per slot.

    Variables ``(p_1..p_N, q_imp, q_exp)``; ``q = q_imp - q_exp``; the price is the
    multiplier of (2). Raises ``ValueError`` if a slot is infeasible.
    """
    T, N = comm.n_slots, comm.n_players
    th1, th2 = _theta(comm)
    p = np.zeros((T, N))
    q = np.zeros(T)
    price = np.zeros(T)
    its = np.zeros(T, dtype=np.int64)
    conv = np.zeros(T, dtype=bool)
    pres = np.zeros(T)
    dres = np.zeros(T)
    b = comm.b
    for t in range(T):
        H = np.zeros((N + 2, N + 2))
        H[np.arange(N), np.arange(N)] = comm.a[t]
        if th2 > 0:
            H[N:, N:] = th2 * np.array([[1.0, -1.0], [-1.0, 1.0]])
        c = np.concatenate([b[t], [comm.import_price[t] + th1, -comm.export_price[t] + th1]])
        A = np.concatenate([np.ones(N), [1.0, -1.0]])[None, :]
        lb = np.concatenate([comm.lo[t], [0.0, 0.0]])
        ub = np.concatenate([comm.hi[t], [comm.import_capacity, comm.export_capacity]])
        try:
            sol = solve_qp(H, c, A, [0.0], lb, ub, tol=tol)
        except QPInfeasibleError as e:
            raise ValueError(f"community problem infeasible at slot {t}: {e}") from None
        p[t] = sol.x[:N]
        q[t] = sol.x[N] - sol.x[N + 1]
        price[t] = sol.y[0]
        its[t], conv[t] = sol.iterations, sol.converged
        pres[t], dres[t] = sol.primal_residual, sol.dual_residual
    return CommunityDispatch(
        p=p, q=q, price=price, objective=community_objective(comm, p, q), iterations=its, primal_residual=pres,
        dual_residual=dres, converged=conv, method="qp",
    )


def bau_dispatch(comm: Community) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Business As Usual: every player trades alone with the grid, buying at the import
    price and selling at the export price (no autonomy term, no community).

    Returns ``(p, cost)``: set-points (T, N) and each player's cost ``f_i(p_i) +
    lambda_imp p_i^- - lambda_exp p_i^+`` (T, N), EUR. Closed form per player: the best
    response to the export price if that is a net injection, else to the import price if
    that is a net withdrawal, else 0, clipped to the bounds.
    """
    imp = comm.import_price[:, None]
    exp_ = comm.export_price[:, None]
    free_lo, free_hi = np.full_like(comm.lo, -np.inf), np.full_like(comm.hi, np.inf)
    p_sell = best_response(comm.a, comm.m, comm.r, free_lo, free_hi, np.broadcast_to(exp_, comm.a.shape))
    p_buy = best_response(comm.a, comm.m, comm.r, free_lo, free_hi, np.broadcast_to(imp, comm.a.shape))
    p = np.where(p_sell > 0, p_sell, np.where(p_buy < 0, p_buy, 0.0))
    p = np.clip(p, comm.lo, comm.hi)
    cost = comm.player_cost(p) + imp * np.maximum(-p, 0.0) - exp_ * np.maximum(p, 0.0)
    return p, cost


def allocate_grid_cost(
    comm: Community, rule: str, p: ArrayLike, q: ArrayLike, price: ArrayLike
) -> NDArray[np.float64]:
    """Each player's share of the community's grid cost (EUR, positive = pays), (T, N).

    ``"none"``          no allocation of ``g``: players pay the community price for their
                        net withdrawal, ``-price * p_i`` (an internal market; the manager
                        pays the grid bill from it and keeps any residual).
    ``"equal"``         the grid bill is divided equally, ``bill / N``; internal
                        exchanges are free.
    ``"proportional"``  the import cost is shared in proportion to each player's
                        consumption ``p_i^-`` and the export revenue in proportion to its
                        production ``p_i^+``; internal exchanges are free.

    ``equal`` and ``proportional`` sum to the grid bill exactly; ``none`` sums to
    ``price * q`` (equal to the bill at the optimum of a market-driven ``g``).
    """
    if rule not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {rule!r}")
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    price = np.atleast_1d(np.asarray(price, dtype=np.float64))
    N = p.shape[1]
    if rule == "none":
        return -price[:, None] * p
    bill = grid_bill(comm, q)
    if rule == "equal":
        return np.repeat(bill[:, None] / N, N, axis=1)
    cons = np.maximum(-p, 0.0)
    prod = np.maximum(p, 0.0)
    c_tot = cons.sum(axis=1, keepdims=True)
    g_tot = prod.sum(axis=1, keepdims=True)
    imp_cost = (comm.import_price * np.maximum(q, 0.0))[:, None]
    exp_rev = (comm.export_price * np.maximum(-q, 0.0))[:, None]
    w_c = np.divide(cons, c_tot, out=np.full_like(cons, 1.0 / N), where=c_tot > 0)
    w_g = np.divide(prod, g_tot, out=np.full_like(prod, 1.0 / N), where=g_tot > 0)
    return imp_cost * w_c - exp_rev * w_g


def settle_community(
    comm: Community, rule: str, p: ArrayLike, price: ArrayLike
) -> dict[str, NDArray[np.float64]]:
    """Settle set-points ``p`` (T, N) of the community market: the grid absorbs the
    imbalance, ``q = -sum_i p_i`` (clipped to the connection only in the report
    ``capacity_violation``).

    Returns per-player ``player_cost`` (``f_i``), ``allocated`` (grid share, see
    :func:`allocate_grid_cost`) and ``total`` (their sum), and per-slot ``q``,
    ``grid_bill``, ``perceived_g``, ``community_cost`` (``sum f_i + bill``),
    ``manager_balance`` (allocated payments received minus the bill) and
    ``capacity_violation`` (kWh beyond the connection).
    """
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    q = -p.sum(axis=1)
    f = comm.player_cost(p)
    alloc = allocate_grid_cost(comm, rule, p, q, price)
    bill = grid_bill(comm, q)
    viol = np.maximum(q - comm.import_capacity, 0.0) + np.maximum(-q - comm.export_capacity, 0.0)
    return {
        "player_cost": f,
        "allocated": alloc,
        "total": f + alloc,
        "q": q,
        "grid_bill": bill,
        "perceived_g": community_g(comm, q),
        "community_cost": f.sum(axis=1) + bill,
        "manager_balance": alloc.sum(axis=1) - bill,
        "capacity_violation": viol,
    }


# =============================================================================== P2P market
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
    constant per agent (for reporting costs on the community's scale).
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

    def __post_init__(self) -> None:
        n = len(self.names)
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
        prefc = self.pref * np.sum(self.gamma * np.abs(trades), axis=1)
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
    offP = inst.pref[P][:, None] * inst.gamma[np.ix_(P, C)]
    offC = inst.pref[C][:, None] * inst.gamma[np.ix_(C, P)]
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
    c[:nx] = (inst.pref[P][:, None] * inst.gamma[np.ix_(P, C)]
              + inst.pref[C][None, :] * inst.gamma[np.ix_(C, P)].T).ravel()
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
    prices[np.ix_(P, C)] = y[P][:, None] + inst.pref[P][:, None] * inst.gamma[np.ix_(P, C)]
    prices[np.ix_(C, P)] = y[C][:, None] - inst.pref[C][:, None] * inst.gamma[np.ix_(C, P)]
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


# =============================================================================== examples
def random_community(
    rng: np.random.Generator, n_players: int, n_slots: int = 1, g_kind: str = "market", autonomy_weight: float = 0.0,
    capacity: float = np.inf,
) -> Community:
    """A synthetic community with random quadratic players (for tests and benchmarks):
    a third generators, a third flexible consumers, the rest prosumers or fixed loads."""
    N, T = n_players, n_slots
    kind = rng.choice(np.array(["chp", "flexible", "prosumer", "inflexible"]), size=N, p=[0.25, 0.35, 0.3, 0.1])
    a = rng.uniform(0.01, 2.0, size=(T, N))
    m = rng.uniform(0.02, 0.3, size=(T, N))
    load = rng.uniform(0.1, 3.0, size=(T, N))
    pv = rng.uniform(0.0, 4.0, size=(T, N))
    cap = rng.uniform(2.0, 10.0, size=(T, N))
    r = np.where(kind == "chp", 0.0, np.where(kind == "prosumer", pv - load, -load))
    band = 0.3 * load
    lo = np.where(kind == "chp", 0.0, r - band)
    hi = np.where(kind == "chp", cap, r + band)
    fixed = kind == "inflexible"
    lo = np.where(fixed, r, lo)
    hi = np.where(fixed, r, hi)
    a = np.where(fixed, 0.0, a)
    m = np.where(fixed, 0.0, m)
    w = rng.uniform(-0.05, 0.2, size=T)
    imp = w + rng.uniform(0.0, 0.15, size=T)
    names = tuple(f"{k}_{i}" for i, k in enumerate(kind))
    return Community(names=names, kind=kind, a=a, m=m, r=r, lo=lo, hi=hi, import_price=imp, export_price=w,
                     g_kind=g_kind, autonomy_weight=autonomy_weight, import_capacity=capacity,
                     export_capacity=capacity, position_km=rng.uniform(-1, 1, size=(N, 2)), wholesale_price=w)


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
