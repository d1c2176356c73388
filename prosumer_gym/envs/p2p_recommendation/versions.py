"""What P2PRecommendation-v1 adds to version 0's platform interface, in one place, so that
a v1 platform policy can also act on the v0 market (the v0 leaderboard track).

* :class:`AcceptanceStatistics`: the episode's per-pair counts of recommendations and
  acceptances and the two observation entries v1 derives from them (``accept_rate``
  ``(s + 1) / (n + 2)``, a Beta(1, 1) prior, and ``recommended_per_day`` ``n / days``).
  The env keeps one (``statistics=True``); :class:`V1OnV0` rebuilds the same counts from
  v0's ``last_recommendation`` / ``last_accepted`` entries, exactly.
* :class:`V1OnV0`: wraps a v1 platform predictor (``v1 observation -> (P, C) scores``) into
  a v0 one: it adds the statistics to v0's observation and decodes the scores with
  :func:`~prosumer_gym.envs.p2p_recommendation.market.decode_scores` on the day's instance,
  so v0 receives the feasible matrix v1 would have played (v0's projection leaves a
  feasible matrix unchanged; a test compares the two envs' trajectories exactly).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from prosumer_gym.envs.p2p_recommendation.market import decode_scores

__all__ = ["STATISTICS_KEYS", "AcceptanceStatistics", "V1OnV0", "v1_platform_space"]

#: the observation entries ``statistics=True`` adds to the platform's ``Dict``
STATISTICS_KEYS = ("accept_rate", "recommended_per_day")


class AcceptanceStatistics:
    """Per-pair counts over an episode: ``n`` recommendations, ``s`` acceptances."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.n_rec = np.zeros(shape)
        self.n_acc = np.zeros(shape)

    def update(self, recommended: np.ndarray, accepted: np.ndarray) -> None:
        """Count one day: ``recommended`` (bool or 0/1, the pairs recommended), ``accepted``
        (1 where a recommended pair was accepted)."""
        self.n_rec += recommended
        self.n_acc += accepted

    def observation(self, days: int) -> dict[str, np.ndarray]:
        """``accept_rate`` and ``recommended_per_day`` after ``days`` played days."""
        return {"accept_rate": (self.n_acc + 1.0) / (self.n_rec + 2.0),
                "recommended_per_day": self.n_rec / max(int(days), 1)}


def v1_platform_space(v0_space: spaces.Dict) -> spaces.Dict:
    """The v1 platform observation space from v0's (the statistics appended, in the env's order)."""
    shape = v0_space["loss"].shape
    extra = {k: spaces.Box(0.0, 1.0, shape, np.float64) for k in STATISTICS_KEYS}
    return spaces.Dict({**dict(v0_space.spaces), **extra})


class V1OnV0:
    """A v1 platform predictor acting on P2PRecommendation-v0 (see the module docstring).

    ``predict(obs_v1) -> scores``; :meth:`reset` takes the (raw or wrapped) v0 env at the
    start of each episode, then ``self(obs_v0)`` returns the day's feasible matrix."""

    def __init__(self, predict: Callable[[Mapping[str, Any]], np.ndarray]) -> None:
        self.predict = predict
        self._env: Any = None
        self._stats: AcceptanceStatistics | None = None
        self._t = 0

    def reset(self, env: Any, *args: Any) -> None:
        raw = getattr(env, "unwrapped", env)
        if not hasattr(raw, "instance") or getattr(raw, "action_mode", None) != "fractions":
            raise ValueError("V1OnV0 plays a v1 policy on P2PRecommendation-v0 (action_mode='fractions'); "
                             f"got {type(raw).__name__} with action_mode={getattr(raw, 'action_mode', None)!r}")
        self._env, self._t = raw, 0
        self._stats = AcceptanceStatistics((raw.n_producers, raw.n_consumers))

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        if self._stats is None:
            raise RuntimeError("V1OnV0 called before reset(env)")
        if self._t > 0:  # yesterday's recommendation and acceptances, as the env counts them
            self._stats.update(np.asarray(obs["last_recommendation"]) > 0, np.asarray(obs["last_accepted"]))
        scores = self.predict({**obs, **self._stats.observation(self._t)})
        self._t += 1
        return decode_scores(self._env.instance(), np.asarray(scores, dtype=np.float64))
