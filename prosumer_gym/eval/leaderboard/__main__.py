import sys

from prosumer_gym.eval.leaderboard.cli import main

sys.exit(main())
