"""One module per env, each defining ``TRACK`` (:class:`prosumer_gym.eval.leaderboard.core.Track`)."""
