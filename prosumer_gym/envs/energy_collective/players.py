"""EnergyCollective-v0 data model: the players of a community and their costs.

Source: slides ``002`` (Pinson et al.; Moret & Pinson, IEEE TPWRS 2019). Overview of the
market and its modules: :mod:`prosumer_gym.envs.energy_collective.market`; every modelling
choice: ``docs/energy_collective.md``.

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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["PLAYER_TYPES", "G_KINDS", "MIN_FLEX_KWH", "Community", "best_response"]

PLAYER_TYPES = ("prosumer", "flexible", "inflexible", "chp", "peak")
G_KINDS = ("market", "autonomy_l1", "autonomy_l2")
_FIXED_TOL = 1e-9  # kWh: players with hi - lo below this have no decision
MIN_FLEX_KWH = 1e-3  # kWh per slot: a flexible band narrower than 1 Wh makes the consumer inflexible
_SLOT_FIELDS = ("a", "m", "r", "lo", "hi", "import_price", "export_price")  # per-slot arrays


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
                f"but the grid connection allows only [-import_capacity, export_capacity] (the env's import_capacity_kw, "
                f"export_capacity_kw x slot hours) = "
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
        """The community restricted to some market time units.

        Not validated again: every check of :meth:`__post_init__` is per player and slot
        (or per slot), so any subset of the slots of a valid community is valid (this runs
        on every step of the env: the checks cost ~0.7 ms at 315 players)."""
        sel = np.atleast_1d(np.arange(self.n_slots)[idx])
        out = object.__new__(Community)
        for f in fields(self):
            object.__setattr__(out, f.name, getattr(self, f.name))
        for f in _SLOT_FIELDS:
            object.__setattr__(out, f, getattr(self, f)[sel])
        if self.wholesale_price is not None:
            object.__setattr__(out, "wholesale_price", self.wholesale_price[sel])
        return out

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
