"""StorageSharing-v0 data model: one slot's declared inputs and the inter-slot update.

Paper ``003`` (Tushar et al., IEEE Trans. Smart Grid 7(3), 2016), Sec. III (system model)
and Sec. IV "time-varying case". :class:`StorageMarket` holds what the RUs and SFCs declare
for one slot, validated; :class:`AvailabilityTracker` and :func:`tou_multipliers` carry the
market from one slot to the next (RECONSTRUCTED inter-slot update, see
``docs/storage_sharing.md``). Units: prices in cents/kWh, storage in kWh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BURDEN_RULES", "WINDOWS", "DEFAULT_TOU", "StorageMarket", "AvailabilityTracker", "tou_multipliers"]

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
