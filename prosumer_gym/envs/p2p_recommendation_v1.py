"""Versioned entry point of the P2PRecommendation market, version 1 (PettingZoo).

Version 1 changes the platform's learning interface only; the market (Eq. 4.1-4.2, data,
preferences, rewards, infos) is version 0's, and ``p2p_recommendation_v0`` stays as it was.

* **Action** ``Box(0, 1, (P, C))`` of per-pair *scores* (``action_mode="scores"``), turned
  into a feasible recommendation by
  :func:`~prosumer_gym.envs.p2p_recommendation.market.decode_scores` (greedy fill in
  decreasing score; a score of 0 never recommends the pair). v0's action is the matrix of
  fractions itself, projected onto Eq. 4.1: a policy had to shape 160 fractions so that the
  projection kept the few pairs worth recommending; here it only ranks pairs, as the
  chapter's bandits do with their estimates.
* **Observation** adds the episode's sufficient statistic of the hidden Bernoulli
  preferences (``statistics=True``): ``accept_rate`` ``(s + 1) / (n + 2)`` and
  ``recommended_per_day`` per pair, what UPL and BPT-K keep as counts.

Both are keywords of the same ``raw_env`` (``p2p_recommendation_v0.raw_env(action_mode=
"scores", statistics=True)`` is this env); passing them here overrides v1's defaults.
Gymnasium: ``gym.make("P2PRecommendation-v1")``. The full env card follows.

Usage::

    import gymnasium as gym
    import prosumer_gym                          # registers the ids
    env = gym.make("P2PRecommendation-v1")                      # Gymnasium view (one learner)
    # without the import: gym.make("prosumer_gym:P2PRecommendation-v1")
    from prosumer_gym.envs import p2p_recommendation_v1
    penv = p2p_recommendation_v1.parallel_env()                 # PettingZoo ParallelEnv (all agents)
"""

from __future__ import annotations

from typing import Any

from prosumer_gym import ENV_VERSIONS
from prosumer_gym.core.pz import entry_points
from prosumer_gym.envs.p2p_recommendation import env as _impl
from prosumer_gym.envs.p2p_recommendation.env import ACTION_MODES, CAPACITY_MODES, FOLLOW_MODEL, PLATFORM

#: what version 1 sets on top of version 0's raw_env (one definition: the Gymnasium registration's)
V1_DEFAULTS: dict[str, Any] = dict(ENV_VERSIONS["P2PRecommendation-v1"][2])


class raw_env(_impl.raw_env):
    """P2PRecommendation-v1: version 0's market with the score action and the statistics
    observation (see the module docstring)."""

    metadata = {**_impl.raw_env.metadata, "name": "p2p_recommendation_v1"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**V1_DEFAULTS, **kwargs})


parallel_env, env = entry_points(raw_env)

__doc__ = __doc__ + "\n" + _impl.__doc__.split("Env card\n--------", 1)[1].join(("Env card\n--------", ""))
__all__ = ["raw_env", "env", "parallel_env", "PLATFORM", "CAPACITY_MODES", "ACTION_MODES", "FOLLOW_MODEL",
           "V1_DEFAULTS"]
