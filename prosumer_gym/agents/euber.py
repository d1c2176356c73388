"""EUber-v0 platform recommenders: CARS (Alg. 7) and PK (perfect knowledge).

A recommender maps the slot to a *score matrix* (W workers x S tasks); the environment
projects it onto POTR's constraints (Eqs. 6.1a-f, :func:`prosumer_gym.envs.euber.potr.solve_potr`).

* :class:`CARSRecommender` — CMAB with the UCB objective of Eq. 6.6,
  ``alpha_hat[i, z] + sqrt(ucb_scale * (Q + 1) ln t / m[i, z])`` with ``Q = |W| x 3``, and the
  running-mean updates of Eqs. 6.7-6.8 on every recommended (worker, task): a bid is a 1, no bid
  a 0 (Section 6.3.1: "recommendations that do not receive bids as negative reinforcement").
  Prior: ``alpha_hat = alpha0 = 0.5`` with ``m0 = 1`` pseudo-observation (so the index is
  finite); with the paper's level set {0.1, 0.4, 0.5, 0.7, 0.9, 1.0} this gives the paper's
  initial MAE (0.27 expected vs. 0.28 in Fig. 6.10).
* :class:`PKRecommender` — the true ``alpha`` (perfect knowledge; PK-OPT, PK-BMW, and BG's
  top-K lists).

Both work with the Gymnasium view (``act(obs)`` returns the action, ``observe(info)``
learns) and directly with the market core (``scores(task_type)`` / ``update(...)``).
:func:`cars_recommender` and :func:`pk_recommender` are the factories behind the PettingZoo
env's ``recommender="cars"`` / ``"pk"`` (registered under ``"EUber.recommender"``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

__all__ = ["CARSRecommender", "PKRecommender", "scores_to_action", "task_types_from_obs", "cars_recommender",
           "pk_recommender"]

N_TYPES = 3


def task_types_from_obs(obs: dict) -> np.ndarray:
    """Task types (S,) from the Gymnasium observation (one-hot in ``obs["tasks"][:, :3]``)."""
    return np.argmax(np.asarray(obs["tasks"])[:, :N_TYPES], axis=1)


def scores_to_action(scores: np.ndarray) -> np.ndarray:
    """Scale a non-negative score matrix into the Gymnasium action box [0, 1] (POTR's argmax
    is invariant to a positive scale)."""
    s = np.asarray(scores, dtype=np.float64)
    top = float(np.max(s)) if s.size else 0.0
    return (s / top if top > 0 else s).astype(np.float32)


class CARSRecommender:
    """Alg. 7 (CARS). ``n_workers`` rows of ``alpha_hat`` / ``m`` (3 task types)."""

    def __init__(self, n_workers: int, *, alpha0: float = 0.5, m0: float = 1.0, ucb_scale: float = 1.0) -> None:
        if isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
            raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        if not (0.0 <= alpha0 <= 1.0):
            raise ValueError(f"alpha0 must be in [0, 1], got {alpha0}")
        if not (m0 > 0 and math.isfinite(m0)):
            raise ValueError(f"m0 must be a finite number > 0, got {m0}")
        if not (ucb_scale >= 0 and math.isfinite(ucb_scale)):
            raise ValueError(f"ucb_scale must be a finite number >= 0, got {ucb_scale}")
        self.n_workers = int(n_workers)
        self.alpha0, self.m0, self.ucb_scale = float(alpha0), float(m0), float(ucb_scale)
        self.reset()

    def reset(self) -> None:
        self.alpha_hat = np.full((self.n_workers, N_TYPES), self.alpha0)
        self.m = np.full((self.n_workers, N_TYPES), self.m0)
        self.t = 1
        self.cum_reward = 0.0

    def index(self) -> np.ndarray:
        """UCB index of Eq. 6.6 per (worker, type)."""
        Q = self.n_workers * N_TYPES
        return self.alpha_hat + np.sqrt(self.ucb_scale * (Q + 1) * math.log(max(self.t, 1)) / self.m)

    def scores(self, task_type: np.ndarray) -> np.ndarray:
        return self.index()[:, np.asarray(task_type)]

    def update(self, recommended: np.ndarray, bid_placed: np.ndarray, task_type: np.ndarray) -> None:
        """Eqs. 6.7-6.8 for every recommended pair (bid = 1, no bid = 0)."""
        rec = np.ascontiguousarray(np.asarray(recommended) > 0)
        bid = np.ascontiguousarray(np.asarray(bid_placed) > 0)
        tt = np.ascontiguousarray(task_type, dtype=np.int64)
        self.cum_reward += _running_means(self.alpha_hat, self.m, rec, bid, tt)
        self.t += 1

    def mae(self, alpha: np.ndarray) -> float:
        """Mean ``|alpha_hat[i, z] - alpha[i, z]|`` over workers and types (Figs. 6.10-6.11)."""
        return float(np.mean(np.abs(self.alpha_hat - np.asarray(alpha))))

    def state_dict(self) -> dict[str, Any]:
        """Everything that changes while learning (Eqs. 6.7-6.8): ``alpha_hat``, ``m``, ``t``."""
        return {"alpha_hat": self.alpha_hat.copy(), "m": self.m.copy(), "t": self.t, "cum_reward": self.cum_reward}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (numpy arrays or torch tensors)."""
        arrs = {}
        for k in ("alpha_hat", "m"):
            v = state[k]
            v = np.array(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float64)
            if v.shape != (self.n_workers, N_TYPES):
                raise ValueError(f"{k} must have shape {(self.n_workers, N_TYPES)}, got {v.shape}")
            arrs[k] = v
        self.alpha_hat, self.m = arrs["alpha_hat"], arrs["m"]
        self.t, self.cum_reward = int(state["t"]), float(state["cum_reward"])

    # Gymnasium-view helpers
    def act(self, obs: dict, explore: bool = True) -> np.ndarray:
        """Scores for the Gymnasium view: the UCB index (Eq. 6.6), or ``alpha_hat`` alone
        with ``explore=False`` (greedy evaluation)."""
        tt = task_types_from_obs(obs)
        return scores_to_action(self.scores(tt) if explore else self.alpha_hat[:, tt])

    def observe(self, info: dict) -> None:
        self.update(info["recommended"], info["bid_placed"], info["task_type"])


class PKRecommender:
    """Perfect knowledge: scores = the true ``alpha[i, z_j]``."""

    def __init__(self, alpha: np.ndarray) -> None:
        a = np.asarray(alpha, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != N_TYPES or not np.all((a >= 0) & (a <= 1)):
            raise ValueError(f"alpha must be a (n_workers, 3) array of probabilities, got shape {a.shape}")
        self.alpha = a

    def scores(self, task_type: np.ndarray) -> np.ndarray:
        return self.alpha[:, np.asarray(task_type)]

    def update(self, *args, **kwargs) -> None:  # nothing to learn
        pass

    def act(self, obs: dict, explore: bool = True) -> np.ndarray:
        return scores_to_action(self.scores(task_types_from_obs(obs)))

    def observe(self, info: dict) -> None:
        pass

    def mae(self, alpha: np.ndarray) -> float:
        """Its preference error against ``alpha`` (0 on the episode it was built for)."""
        return float(np.mean(np.abs(self.alpha - np.asarray(alpha))))

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        a = state["alpha"]
        self.__init__(a.detach().cpu().numpy() if hasattr(a, "detach") else a)


def cars_recommender(env: Any, rng: np.random.Generator) -> CARSRecommender:
    """EUber-v0's ``recommender="cars"``: ``factory(env, rng)`` with the PettingZoo ``raw_env``
    after its market's reset (``env.config.n_workers``, ``env.ucb_scale``); ``rng`` unused."""
    return CARSRecommender(env.config.n_workers, ucb_scale=env.ucb_scale)


def pk_recommender(env: Any, rng: np.random.Generator) -> PKRecommender:
    """EUber-v0's ``recommender="pk"``: the episode's true ``env.market.alpha``; ``rng`` unused."""
    return PKRecommender(env.market.alpha)


@njit(cache=True)
def _running_means(alpha_hat: np.ndarray, m: np.ndarray, rec: np.ndarray, bid: np.ndarray, tt: np.ndarray) -> float:
    """Eqs. 6.7-6.8 in place: per (worker, type) the counts of recommendations ``n`` and of
    those with a bid ``k``, then ``alpha_hat <- (alpha_hat m + k) / (m + n)``, ``m <- m + n``
    (compiled; counts are exact, the update is the elementwise formula: the same bits as the
    NumPy pass). Returns the number of recommended pairs with a bid (the CMAB reward)."""
    W, S = rec.shape
    n = np.zeros((W, N_TYPES))
    k = np.zeros((W, N_TYPES))
    total = 0
    for i in range(W):
        for j in range(S):
            z = tt[j]
            if rec[i, j] and 0 <= z < N_TYPES:
                n[i, z] += 1.0
                if bid[i, j]:
                    k[i, z] += 1.0
                    total += 1
    for i in range(W):
        for z in range(N_TYPES):
            tot = m[i, z] + n[i, z]
            alpha_hat[i, z] = (alpha_hat[i, z] * m[i, z] + k[i, z]) / tot
            m[i, z] = tot
    return float(total)
