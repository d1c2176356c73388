"""Comparison schemes of StorageSharing-v0: equal distribution (ED) and feed-in tariff (FIT).

Paper ``003``, Sec. V (Table "proposed vs ED vs FIT"); the paper's numbers are masked in
our copy, the rules below follow its prose (our reading documented in
``docs/storage_sharing.md``).

* ED: the participating SFCs' total requirement ``Q`` is split equally among the ``K``
  participating RUs; an RU whose equal part ``Q / K`` exceeds what it puts into the market
  shares its full offer (no redistribution). Evaluated at the same auction price (the SE
  price) so that only the allocation differs: :func:`ed_clearing`; as an RU policy acting
  through observations: :class:`EqualDistributionRU`.
* FIT: each RU sells the same amount of stored energy to the grid at the feed-in tariff
  ``fit_price`` instead of sharing that storage with the SFCs: its utility is the
  reconstructed ``U_i`` at price ``fit_price``, ``(fit - r_i) a_i - beta_i a_i^2``
  (:func:`fit_utilities`). ``DEFAULT_FIT_PRICE`` (10 cents/kWh) is our choice: the paper's
  value is masked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prosumer_gym.agents.storage_sharing import observation_scales, decode_ru_obs
from prosumer_gym.envs.storage_sharing.market import (
    Clearing,
    Determination,
    StorageMarket,
    clear,
    equilibrium,
    ru_best_response,
    ru_utility,
)
from prosumer_gym.envs.storage_sharing_v0 import ObsScales

__all__ = ["DEFAULT_FIT_PRICE", "ed_offers", "ed_clearing", "fit_utilities", "compare_schemes", "EqualDistributionRU"]

DEFAULT_FIT_PRICE = 10.0  # cents/kWh (our choice; masked in the paper copy)


def ed_offers(market: StorageMarket, det: Determination, price: float) -> np.ndarray:
    """ED offers (N,) kWh: ``min(Q / K, x_i*(p))`` for the ``K`` participating RUs, 0 otherwise."""
    x = np.zeros(market.n_rus)
    if not det.open:
        return x
    ri = det.rus
    br = ru_best_response(price, market.reservation[ri], market.reluctance[ri], market.offer_kwh[ri])
    x[ri] = np.minimum(det.requirement_kwh / ri.size, br)
    return x


def ed_clearing(market: StorageMarket, det: Determination, price: float, burden: str = "equal") -> Clearing:
    """Clear the slot at ``price`` with the ED offers (their sum never exceeds ``Q``: no burden)."""
    return clear(market, det, price, ed_offers(market, det, price), burden)


def fit_utilities(market: StorageMarket, shared_kwh: np.ndarray, fit_price: float = DEFAULT_FIT_PRICE) -> np.ndarray:
    """Each RU's utility (cents) if it sold ``shared_kwh`` to the grid at ``fit_price`` instead."""
    if not (np.isfinite(fit_price) and fit_price >= 0):
        raise ValueError(f"fit_price must be a finite number >= 0 cents/kWh, got {fit_price}")
    a = np.asarray(shared_kwh, dtype=np.float64)
    return np.where(a > 0, ru_utility(a, fit_price, market.reservation, market.reluctance), 0.0)


def compare_schemes(market: StorageMarket, det: Determination, burden: str = "equal",
                    fit_price: float = DEFAULT_FIT_PRICE) -> dict[str, float]:
    """Average utility per RU (cents, over all ``N`` RUs) under the proposed scheme, ED and FIT."""
    eq = equilibrium(market, det)
    if not det.open:
        return {"proposed": 0.0, "ed": 0.0, "fit": 0.0, "price": float("nan")}
    prop = clear(market, det, eq.price, eq.offers_kwh, burden)
    ed = ed_clearing(market, det, eq.price, burden)
    fit = fit_utilities(market, prop.shared_kwh, fit_price)
    n = market.n_rus
    return {
        "proposed": float(prop.ru_utility.sum() / n),
        "ed": float(ed.ru_utility.sum() / n),
        "fit": float(fit.sum() / n),
        "price": float(eq.price),
    }


class EqualDistributionRU:
    """ED as an RU policy: at a share step, offer ``min(Q / K, x*(p))`` (as a fraction of ``b_i(t)``)."""

    def __init__(self, scales: ObsScales) -> None:
        self.scales = scales

    @classmethod
    def from_env(cls, env: Any) -> EqualDistributionRU:
        return cls(observation_scales(env)[0])

    def act(self, obs: np.ndarray) -> np.ndarray:
        d = decode_ru_obs(obs, self.scales)
        if d["phase"] != 1 or not d["open"] or not d["participating"] or d["available_kwh"] <= 0:
            return np.zeros(1, dtype=np.float32)
        k = max(d["n_participating"], 1)
        br = float(ru_best_response(d["price"], d["reservation"], d["reluctance"], d["available_kwh"]))
        x = min(d["requirement_kwh"] / k, br)
        return np.array([min(max(x / d["available_kwh"], 0.0), 1.0)], dtype=np.float32)
