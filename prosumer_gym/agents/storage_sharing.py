"""Reference policies of StorageSharing-v0: the SE auctioneer and best-responding RUs.

Paper ``003``, Sec. IV "payment rule" (Theorem 1, Algorithm 1). Both act only through the
env's observations and actions (``prosumer_gym.envs.storage_sharing_v0``), so any RL agent
can replace them; they read the constant observation scales (``env.obs_scales``) once.

* :class:`SEAuctioneer`: at a price step, decodes the window, the SFCs' total requirement
  and mean bid, and each participating RU's declared reservation price, reluctance and
  available storage, and posts the Stackelberg-equilibrium price (closed form where
  interior, exact 1-D search otherwise: :func:`~prosumer_gym.envs.storage_sharing.stackelberg.se_price`);
  with a discrete price action it posts the best admissible level. Its regret in the
  env's infos is ~0 (float32 observations: ~1e-6 cents/kWh price error).
* :class:`BestResponseRU`: at a share step, offers ``x_i*(p) = clip((p - r_i)/(2 beta_i), 0, b_i(t))``
  (RECONSTRUCTED best response) as a fraction of its available storage.

At the other phase (and in a closed market, or when not participating) both return the
no-op action. Both are frozen co-players (:class:`~prosumer_gym.core.policies.CoPlayer`:
``observe`` does nothing); :func:`se_co_players` is the ``"se"`` co-player factory of the
Gymnasium view (``StorageSharing-v0``'s ``co_players`` keyword).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from prosumer_gym.envs.storage_sharing.market import se_price, supply
from prosumer_gym.envs.storage_sharing_v0 import AUCTIONEER, AUCTIONEER_OBS, AUCTIONEER_RU_FIELDS, RU_OBS, ObsScales

__all__ = ["SEAuctioneer", "BestResponseRU", "decode_auctioneer_obs", "decode_ru_obs", "observation_scales",
           "se_co_players"]

_A = {name: k for k, name in enumerate(AUCTIONEER_OBS)}
_R = {name: k for k, name in enumerate(RU_OBS)}


def observation_scales(env: Any) -> tuple[ObsScales, int | None]:
    """``(obs_scales, price_levels)`` of a StorageSharing env (PettingZoo, AEC or Gymnasium view)."""
    base = getattr(env, "unwrapped", env)
    market = getattr(base, "market", base)  # the Gymnasium view wraps the PettingZoo env
    market = getattr(market, "unwrapped", market)
    return market.obs_scales, market.price_levels


def decode_auctioneer_obs(obs: np.ndarray, scales: ObsScales) -> dict[str, Any]:
    """The auctioneer observation in physical units (cents/kWh, kWh)."""
    o = np.asarray(obs, dtype=np.float64)
    n = scales.n_rus
    per_ru = o[len(AUCTIONEER_OBS):].reshape(n, len(AUCTIONEER_RU_FIELDS))
    return {
        "phase": int(round(o[_A["phase"]])),
        "open": bool(o[_A["market_open"]] > 0.5),
        "window": (float(scales.price(o[_A["window_lo"]])), float(scales.price(o[_A["window_hi"]]))),
        "requirement_kwh": float(o[_A["requirement"]] * scales.requirement_scale_kwh),
        "bid_mean": float(scales.price(o[_A["bid_mean"]])),
        "reservation": scales.price(per_ru[:, 0]),
        "reluctance": per_ru[:, 1] * scales.reluctance_scale,
        "available_kwh": per_ru[:, 2] * scales.storage_scale_kwh,
        "participating": per_ru[:, 3] > 0.5,
    }


def decode_ru_obs(obs: np.ndarray, scales: ObsScales) -> dict[str, Any]:
    """An RU observation in physical units (cents/kWh, kWh)."""
    o = np.asarray(obs, dtype=np.float64)
    return {
        "phase": int(round(o[_R["phase"]])),
        "open": bool(o[_R["market_open"]] > 0.5),
        "participating": bool(o[_R["participating"]] > 0.5),
        "reservation": float(scales.price(o[_R["reservation"]])),
        "reluctance": float(o[_R["reluctance"]] * scales.reluctance_scale),
        "available_kwh": float(o[_R["available"]] * scales.storage_scale_kwh),
        "price": float(scales.price(o[_R["price_announced"]])),
        "requirement_kwh": float(o[_R["requirement"]] * scales.requirement_scale_kwh),
        "n_participating": int(round(o[_R["rus_participating"]] * scales.n_rus)),
    }


class SEAuctioneer:
    """Posts the slot's Stackelberg-equilibrium price (see the module docstring)."""

    def __init__(self, scales: ObsScales, price_levels: int | None = None) -> None:
        self.scales = scales
        self.price_levels = price_levels

    @classmethod
    def from_env(cls, env: Any) -> SEAuctioneer:
        """Read the observation scales and the price action type of a StorageSharing env."""
        scales, levels = observation_scales(env)
        return cls(scales, levels)

    def noop(self) -> np.ndarray | int:
        return 0 if self.price_levels is not None else np.zeros(1, dtype=np.float32)

    def price(self, obs: np.ndarray) -> float | None:
        """The SE price (cents/kWh) for the slot in ``obs``; ``None`` if the market is closed."""
        d = decode_auctioneer_obs(obs, self.scales)
        if not d["open"]:
            return None
        part = d["participating"]
        r, beta, b = d["reservation"][part], d["reluctance"][part], d["available_kwh"][part]
        lo, hi = d["window"]
        if self.price_levels is None:
            return se_price(r, beta, b, d["bid_mean"], d["requirement_kwh"], (lo, hi))[0]
        levels = lo + (hi - lo) * np.arange(self.price_levels) / (self.price_levels - 1)
        J = np.minimum(supply(levels, r, beta, b), d["requirement_kwh"]) * (d["bid_mean"] - levels)
        return float(levels[int(np.argmax(J))])

    def act(self, obs: np.ndarray) -> np.ndarray | int:
        if int(round(float(obs[_A["phase"]]))) != 0:
            return self.noop()
        p = self.price(obs)
        if p is None:
            return self.noop()
        lo, hi = self.scales.price(obs[_A["window_lo"]]), self.scales.price(obs[_A["window_hi"]])
        pos = 0.0 if hi <= lo else float(np.clip((p - lo) / (hi - lo), 0.0, 1.0))
        if self.price_levels is not None:
            return int(round(pos * (self.price_levels - 1)))
        return np.array([pos], dtype=np.float32)

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any) -> None:
        """Frozen policy: nothing to learn."""


class BestResponseRU:
    """Offers its best response to the announced price (see the module docstring)."""

    def __init__(self, scales: ObsScales) -> None:
        self.scales = scales

    @classmethod
    def from_env(cls, env: Any) -> BestResponseRU:
        return cls(observation_scales(env)[0])

    def act(self, obs: np.ndarray) -> np.ndarray:
        o = np.asarray(obs).tolist()  # plain floats: this runs for every RU at every step
        sc = self.scales
        avail = o[_R["available"]] * sc.storage_scale_kwh
        if o[_R["phase"]] < 0.5 or o[_R["market_open"]] < 0.5 or o[_R["participating"]] < 0.5 or avail <= 0:
            return np.zeros(1, dtype=np.float32)
        width = sc.price_hi - sc.price_lo
        p = sc.price_lo + o[_R["price_announced"]] * width
        r = sc.price_lo + o[_R["reservation"]] * width
        beta = o[_R["reluctance"]] * sc.reluctance_scale
        x = min(max((p - r) / (2.0 * beta), 0.0), avail)  # ru_best_response, scalar form
        return np.array([min(max(x / avail, 0.0), 1.0)], dtype=np.float32)

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any) -> None:
        """Frozen policy: nothing to learn."""


def se_co_players(env: Any, agents: Sequence[str], infos: Mapping[str, Any],
                  rng: np.random.Generator) -> dict[str, SEAuctioneer | BestResponseRU]:
    """The ``"se"`` co-players of StorageSharing-v0 (a :class:`~prosumer_gym.core.policies.CoPlayerFactory`):
    the SE auctioneer if ``"auctioneer"`` is among ``agents``, a best-responding RU for every
    ``ru_i`` among them. Deterministic (``infos`` and ``rng`` are not used)."""
    ru_policy = BestResponseRU.from_env(env)  # stateless: one instance serves every RU
    return {a: SEAuctioneer.from_env(env) if a == AUCTIONEER else ru_policy for a in agents}
