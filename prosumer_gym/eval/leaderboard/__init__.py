"""Leaderboard evaluation: held-out scenarios, normalised scores, safe submissions, a results page.

``python -m prosumer_gym.eval.leaderboard --help`` (also ``prosumer-gym-leaderboard``); see
``docs/leaderboard.md``.
"""

from prosumer_gym.eval.leaderboard.core import (  # noqa: F401
    HELD_OUT_SEED_BASE,
    EpisodeLog,
    JointPolicy,
    Metric,
    PerAgentPolicy,
    Reference,
    Track,
    mean_ci95,
    run_episode,
    track,
    track_ids,
)
