"""StorageSharing-v0 observations: component names, scales, spaces and the per-slot arrays.

Every component is normalised into [0, 1] (hour on the circle in [-1, 1]): prices by the
price range, storage by the largest maximum share, reluctance by its range's upper end,
requirement by ``n_sfcs x`` the requirement range's upper end (:class:`ObsScales` decodes).
The env card is in :mod:`prosumer_gym.envs.storage_sharing.env`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from prosumer_gym.core.spaces import NamedBox

if TYPE_CHECKING:
    from prosumer_gym.envs.storage_sharing.records import SlotRecord

__all__ = [
    "AUCTIONEER",
    "AUCTIONEER_OBS",
    "AUCTIONEER_RU_FIELDS",
    "RU_OBS",
    "HOURS",
    "ObsScales",
    "observation_spaces",
    "slot_observations",
    "step_observations",
]

AUCTIONEER = "auctioneer"
AUCTIONEER_OBS = (
    "phase", "market_open", "window_lo", "window_hi", "price_announced", "last_price", "requirement",
    "bid_mean", "sfcs_participating", "hour_sin", "hour_cos",
)
AUCTIONEER_RU_FIELDS = ("reservation", "reluctance", "available", "participating")
RU_OBS = (
    "phase", "market_open", "participating", "reservation", "reluctance", "available", "price_announced",
    "window_lo", "window_hi", "last_price", "last_shared", "last_burden", "requirement", "rus_participating",
    "hour_sin", "hour_cos",
)
HOURS = 24


@dataclass(frozen=True)
class ObsScales:
    """Normalisation of the observations (to decode them: value = obs x scale + offset)."""

    price_lo: float
    price_hi: float
    reluctance_scale: float
    storage_scale_kwh: float
    requirement_scale_kwh: float
    n_rus: int
    n_sfcs: int

    def price(self, v: float | np.ndarray) -> float | np.ndarray:
        return self.price_lo + np.asarray(v, dtype=np.float64) * (self.price_hi - self.price_lo)

    def norm_price(self, p: float | np.ndarray) -> float | np.ndarray:
        return (np.asarray(p, dtype=np.float64) - self.price_lo) / (self.price_hi - self.price_lo)


def observation_spaces(ru_agents: list[str]) -> dict[str, NamedBox]:
    """The ``NamedBox`` of every agent: the auctioneer's ``11 + 4 N`` components, each RU's 16."""
    n = len(ru_agents)
    auct_names = list(AUCTIONEER_OBS) + [f"{f}_{i}" for i in range(n) for f in AUCTIONEER_RU_FIELDS]
    auct_low = np.zeros(len(auct_names))
    auct_low[AUCTIONEER_OBS.index("hour_sin")] = auct_low[AUCTIONEER_OBS.index("hour_cos")] = -1.0
    ru_low = np.zeros(len(RU_OBS))
    ru_low[RU_OBS.index("hour_sin")] = ru_low[RU_OBS.index("hour_cos")] = -1.0
    out: dict[str, NamedBox] = {AUCTIONEER: NamedBox(auct_names, low=auct_low, high=1.0)}
    for a in ru_agents:
        out[a] = NamedBox(RU_OBS, low=ru_low, high=1.0)
    return out


def slot_observations(sc: ObsScales, rec: SlotRecord, ru_part: np.ndarray, hour_of_day: int,
                      last_price: float | None, last_shared: np.ndarray,
                      last_burden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slot-constant parts of the observations (phase 0, no price announced yet): the
    auctioneer's (``11 + 4 N``,) and the RUs' (N, 16) float32 arrays."""
    market, det = rec.market, rec.determination
    width = sc.price_hi - sc.price_lo
    n = sc.n_rus
    hour = 2.0 * np.pi * hour_of_day / HOURS
    hs, hc = np.sin(hour), np.cos(hour)
    if det.open:
        wlo = (det.window[0] - sc.price_lo) / width
        whi = (det.window[1] - sc.price_lo) / width
        req = det.requirement_kwh / sc.requirement_scale_kwh
        bid_n = (det.bid_mean - sc.price_lo) / width
        sfc_frac = det.sfcs.size / sc.n_sfcs
        ru_frac = det.rus.size / n
    else:
        wlo = whi = req = bid_n = sfc_frac = ru_frac = 0.0
    last = (last_price - sc.price_lo) / width if last_price is not None else 0.0
    r_n = (market.reservation - sc.price_lo) / width
    beta_n = market.reluctance / sc.reluctance_scale
    avail_n = market.offer_kwh / sc.storage_scale_kwh
    part = ru_part
    opened = 1.0 if det.open else 0.0
    auct = np.empty(len(AUCTIONEER_OBS) + 4 * n, dtype=np.float32)
    auct[: len(AUCTIONEER_OBS)] = (0.0, opened, wlo, whi, 0.0, last, req, bid_n, sfc_frac, hs, hc)
    per_ru = auct[len(AUCTIONEER_OBS):].reshape(n, 4)
    per_ru[:, 0], per_ru[:, 1], per_ru[:, 2], per_ru[:, 3] = r_n, beta_n, avail_n, part
    ru = np.empty((n, len(RU_OBS)), dtype=np.float32)
    ru[:] = (0.0, opened, 0.0, 0.0, 0.0, 0.0, 0.0, wlo, whi, last, 0.0, 0.0, req, ru_frac, hs, hc)
    ru[:, 2], ru[:, 3], ru[:, 4], ru[:, 5] = part, r_n, beta_n, avail_n
    ru[:, 10] = last_shared / sc.storage_scale_kwh
    ru[:, 11] = last_burden / sc.storage_scale_kwh
    np.clip(auct, -1.0, 1.0, out=auct)  # float-rounding guard only: every component is in range
    np.clip(ru, -1.0, 1.0, out=ru)
    return auct, ru


def step_observations(sc: ObsScales, auct_tmpl: np.ndarray, ru_tmpl: np.ndarray, phase: int,
                      price: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Copies of the slot's arrays for ``phase`` (0 price step next, 1 share step next, with
    the announced ``price``)."""
    auct, ru = auct_tmpl.copy(), ru_tmpl.copy()
    if phase == 1:
        announced = 0.0
        if price is not None:
            announced = min(max((price - sc.price_lo) / (sc.price_hi - sc.price_lo), 0.0), 1.0)
        auct[0] = ru[:, 0] = 1.0
        auct[4] = ru[:, 6] = announced
    return auct, ru
