"""Comparison platform policies of P2PRecommendation-v0 (dissertation 001, Section 4.5.2).

* :class:`ZhuP` — Zhu_P: Zhu's greedy matching with the loss criterion replaced by the
  (perfectly known) preference ``p_ij``: consumers in decreasing demand, each takes as much
  as possible from its most preferred allowed producer, then the next, until its demand is
  met or it has ``K`` producers. Trades below ``alpha`` are skipped. Ties: lower loss, then
  lower producer index.
* :class:`OPT` — perfect knowledge, exact: the MILP of Eq. 4.1 with the true ``p_ij``.
* :class:`RandomFeasible` — random feasible recommendations.

``ZhuP`` and ``OPT`` receive the true preferences at construction (``env.preference``);
like every policy they act through ``act(obs)`` on the platform observation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from prosumer_gym.agents.p2p_recommendation import random_recommendation
from prosumer_gym.envs.p2p_recommendation.market import RecInstance, RecommendationMILP, project

__all__ = ["ZhuP", "OPT", "RandomFeasible", "zhu_p_match", "make_baseline", "BASELINE_NAMES"]

BASELINE_NAMES = ("zhu_p", "opt", "random")


def zhu_p_match(inst: RecInstance, p: NDArray) -> NDArray[np.float64]:
    """Zhu_P's greedy matching for one day (see the module docstring)."""
    r = inst.capacity_kwh.copy()
    w, L, K, a = inst.demand_kwh, inst.loss, inst.k_eff, inst.alpha_kwh
    P, C = L.shape
    E = np.zeros((P, C))
    for j in np.argsort(-w, kind="stable"):
        need, n = w[j], 0
        for i in np.lexsort((np.arange(P), L[:, j], -p[:, j])):
            if n >= K or need < a:
                break
            if not inst.allowed[i, j] or p[i, j] <= 0:
                continue
            amt = min(need, r[i] / (1.0 + L[i, j]) * (1.0 - 1e-12))
            if amt < a:
                continue
            E[i, j] = amt
            r[i] -= (1.0 + L[i, j]) * amt
            need -= amt
            n += 1
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(w[None, :] > 0, E / np.where(w > 0, w, 1.0)[None, :], 0.0)
    return project(inst, np.clip(x, 0.0, 1.0))[0]


class _Base:
    def __init__(self, n_producers: int, n_consumers: int, K: int | None = 5, alpha_kwh: float = 0.05,
                 loss_max: float = 0.025) -> None:
        self.P, self.C, self.K, self.alpha_kwh, self.loss_max = int(n_producers), int(n_consumers), K, float(alpha_kwh), float(loss_max)

    def _instance(self, obs: dict) -> RecInstance:
        return RecInstance(np.asarray(obs["capacity_kwh"], np.float64), np.asarray(obs["demand_kwh"], np.float64),
                           np.asarray(obs["loss"], np.float64), self.loss_max, self.alpha_kwh, self.K)

    @staticmethod
    def _market(env: Any):
        u = getattr(env, "unwrapped", env)
        return getattr(u, "market", u)


class ZhuP(_Base):
    name = "Zhu_P"

    def __init__(self, n_producers: int, n_consumers: int, preference: NDArray, **kw: Any) -> None:
        super().__init__(n_producers, n_consumers, **kw)
        self.p = np.asarray(preference, dtype=np.float64)

    @classmethod
    def from_env(cls, env: Any) -> ZhuP:
        m = cls._market(env)
        return cls(m.n_producers, m.n_consumers, m.preference, K=m.K, alpha_kwh=m.min_exchange_kwh, loss_max=m.loss_max)

    def act(self, obs: dict) -> NDArray[np.float64]:
        return zhu_p_match(self._instance(obs), self.p)


class OPT(_Base):
    name = "OPT"

    def __init__(self, n_producers: int, n_consumers: int, preference: NDArray, time_limit: float = 30.0,
                 mip_rel_gap: float = 1e-4, **kw: Any) -> None:
        super().__init__(n_producers, n_consumers, **kw)
        self.p = np.asarray(preference, dtype=np.float64)
        self._milp = RecommendationMILP(n_producers, n_consumers, time_limit=time_limit, mip_rel_gap=mip_rel_gap)

    @classmethod
    def from_env(cls, env: Any, **kw: Any) -> OPT:
        m = cls._market(env)
        return cls(m.n_producers, m.n_consumers, m.preference, K=m.K, alpha_kwh=m.min_exchange_kwh,
                   loss_max=m.loss_max, **kw)

    def act(self, obs: dict) -> NDArray[np.float64]:
        return self._milp.solve(self._instance(obs), self.p)[0]


class RandomFeasible(_Base):
    name = "random"

    def __init__(self, n_producers: int, n_consumers: int, seed: int | np.random.Generator | None = None, **kw: Any) -> None:
        super().__init__(n_producers, n_consumers, **kw)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    @classmethod
    def from_env(cls, env: Any, seed: int | None = None) -> RandomFeasible:
        m = cls._market(env)
        return cls(m.n_producers, m.n_consumers, seed=seed, K=m.K, alpha_kwh=m.min_exchange_kwh, loss_max=m.loss_max)

    def act(self, obs: dict) -> NDArray[np.float64]:
        return random_recommendation(self._instance(obs), self.rng)


def make_baseline(name: str, env: Any, **kw: Any):
    if name == "zhu_p":
        return ZhuP.from_env(env)
    if name == "opt":
        return OPT.from_env(env, **kw)
    if name == "random":
        return RandomFeasible.from_env(env, **kw)
    raise ValueError(f"baseline name must be one of {BASELINE_NAMES}, got {name!r}")
