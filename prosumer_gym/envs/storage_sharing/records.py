"""StorageSharing-v0 slot records: what the env keeps and reports about one slot.

:class:`SlotRecord` (``env.current_slot`` / ``env.last_slot``), the slot's clearing at its
Stackelberg equilibrium (:func:`se_clearing`) and the plain-dict summaries that go into the
infos (:func:`se_summary`, :func:`determination_summary`; plain floats and tuples, no
wall-clock values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from prosumer_gym.envs.storage_sharing.auction import Clearing, Determination, clear
from prosumer_gym.envs.storage_sharing.model import StorageMarket
from prosumer_gym.envs.storage_sharing.stackelberg import Equilibrium, ru_utility

__all__ = ["SlotRecord", "se_clearing", "se_summary", "determination_summary"]


@dataclass(frozen=True)
class SlotRecord:
    """One slot: the market, the auction's determination, the SE, the price and the clearing."""

    slot: int
    market: StorageMarket
    determination: Determination
    equilibrium: Equilibrium
    se_clearing: Clearing
    price: float | None = None
    clearing: Clearing | None = None


def se_clearing(market: StorageMarket, det: Determination, eq: Equilibrium, burden: str) -> Clearing:
    """The slot cleared at its SE ``(p*, x*(p*))``; without an oversupply in closed form (every
    SFC gets the fraction ``X / Q``, the saving is ``eq.saving``), else by :func:`clear`."""
    if det.open and float(eq.offers_kwh.sum()) <= det.requirement_kwh:  # no oversupply at the SE
        n, m = market.n_rus, market.n_sfcs
        se_util = ru_utility(eq.offers_kwh, eq.price, market.reservation, market.reluctance)
        q = np.zeros(m)
        q[det.sfcs] = market.requirement_kwh[det.sfcs] * (float(eq.offers_kwh.sum()) / det.requirement_kwh)
        s = np.zeros(m)
        s[det.sfcs] = (market.bid[det.sfcs] - eq.price) * q[det.sfcs]
        return Clearing(eq.price, eq.offers_kwh, np.zeros(n), eq.offers_kwh, q, se_util, s, eq.saving,
                        float(eq.price * eq.offers_kwh.sum()), float(eq.price * q.sum()))
    return clear(market, det, eq.price, eq.offers_kwh, burden)


def se_summary(det: Determination, eq: Equilibrium, se_clear: Clearing) -> dict[str, Any]:
    """The SE of the slot as reported under ``info["se"]``."""
    return {
        "price": float(eq.price) if det.open else None,
        "offers_kwh": tuple(eq.offers_kwh.tolist()),
        "shared_kwh": tuple(se_clear.shared_kwh.tolist()),
        "saving": float(eq.saving),
        "ru_utilities": tuple(se_clear.ru_utility.tolist()),
        "method": eq.method,
    }


def determination_summary(market: StorageMarket, det: Determination, slot: int, hour: int) -> dict[str, Any]:
    """The determination of the slot as reported in every step's market info."""
    return {
        "slot": slot,
        "hour": hour,
        "open": bool(det.open),
        "reason": det.reason,
        "window": (float(det.window[0]), float(det.window[1])) if det.open else None,
        "r_vickrey": float(det.r_vickrey) if det.open else None,
        "r_max": float(det.r_max) if det.open else None,
        "participating_rus": tuple(det.rus.tolist()),
        "participating_sfcs": tuple(det.sfcs.tolist()),
        "requirement_kwh": float(market.requirement_kwh[det.sfcs].sum()) if det.open else 0.0,
    }
