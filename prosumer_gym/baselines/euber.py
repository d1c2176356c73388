"""EUber-v0 baselines: BG (Section 6.4.1) and random recommendations.

* **BG** = perfect-knowledge top-K recommendation (each worker gets its ``K`` eligible
  tasks of highest true ``alpha``, no POTR constraints) + the task-centric greedy winner
  selection of ref. [123] (``mechanism="bg"`` in the environment). :func:`bg_env_kwargs`
  gives the environment keywords; :class:`BGRecommender` the scores.
* **Random**: uniform random scores, projected by the environment (POTR by default).
"""

from __future__ import annotations

import numpy as np

from prosumer_gym.agents.euber import PKRecommender, scores_to_action

__all__ = ["BGRecommender", "RandomRecommender", "bg_env_kwargs"]


def bg_env_kwargs() -> dict:
    """Keywords that turn an EUber env into the BG setting (top-K lists, greedy winners)."""
    return {"projection": "topk", "mechanism": "bg"}


class BGRecommender(PKRecommender):
    """BG's recommendation side: perfect-knowledge scores, meant for ``projection="topk"``."""


class RandomRecommender:
    """Uniform random scores in [0, 1) from its own generator."""

    def __init__(self, seed: int | np.random.Generator | None = None) -> None:
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def scores(self, task_type: np.ndarray, n_workers: int) -> np.ndarray:
        return self.rng.random((n_workers, len(task_type)))

    def update(self, *args, **kwargs) -> None:
        pass

    def act(self, obs: dict) -> np.ndarray:
        w = np.asarray(obs["workers"]).shape[0]
        return scores_to_action(self.scores(np.asarray(obs["tasks"])[:, 0], w))

    def observe(self, info: dict) -> None:
        pass
