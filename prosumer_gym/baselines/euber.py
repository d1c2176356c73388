"""EUber-v0 baselines: BG (Section 6.4.1) and random recommendations.

* **BG** = perfect-knowledge top-K recommendation (each worker gets its ``K`` eligible
  tasks of highest true ``alpha``, no POTR constraints) + the task-centric greedy winner
  selection of ref. [123] (``mechanism="bg"`` in the environment). :func:`bg_env_kwargs`
  gives the environment keywords; :class:`BGRecommender` the scores.
* **Random**: uniform random scores, projected by the environment (POTR by default);
  :func:`random_recommender` is the PettingZoo env's ``recommender="random"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prosumer_gym.agents.euber import PKRecommender, scores_to_action

__all__ = ["BGRecommender", "RandomRecommender", "bg_env_kwargs", "random_recommender"]


def bg_env_kwargs() -> dict:
    """Keywords that turn an EUber env into the BG setting (top-K lists, greedy winners)."""
    return {"projection": "topk", "mechanism": "bg"}


class BGRecommender(PKRecommender):
    """BG's recommendation side: perfect-knowledge scores, meant for ``projection="topk"``."""


class RandomRecommender:
    """Uniform random scores in [0, 1) from its own generator, for ``n_workers`` workers
    (given here or to :meth:`scores`)."""

    def __init__(self, seed: int | np.random.Generator | None = None, n_workers: int | None = None) -> None:
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.n_workers = n_workers

    def scores(self, task_type: np.ndarray, n_workers: int | None = None) -> np.ndarray:
        n = self.n_workers if n_workers is None else n_workers
        if n is None:
            raise ValueError("RandomRecommender.scores needs n_workers (here or at construction)")
        return self.rng.random((n, len(task_type)))

    def update(self, *args, **kwargs) -> None:
        pass

    def act(self, obs: dict) -> np.ndarray:
        w = np.asarray(obs["workers"]).shape[0]
        return scores_to_action(self.scores(np.asarray(obs["tasks"])[:, 0], w))

    def observe(self, info: dict) -> None:
        pass


def random_recommender(env: Any, rng: np.random.Generator) -> RandomRecommender:
    """EUber-v0's ``recommender="random"``: ``factory(env, rng)``, scores for
    ``env.config.n_workers`` workers drawn from ``rng`` (the env's recommender stream)."""
    return RandomRecommender(rng, n_workers=env.config.n_workers)
