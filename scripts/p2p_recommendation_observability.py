"""Why does PPO not learn P2PRecommendation-v0's platform? An experiment on partial
observability (docs/baselines.md).

The consumers' preferences ``p_ij`` are hidden and drawn per episode; the platform's
observation holds only *yesterday's* recommendation and acceptances, while the papers'
bandits (UPL, BPT-K) keep per-pair counts over the whole episode. This script trains the
track's PPO recipe (``prosumer_gym/train/hyperparams/P2PRecommendation-v0.yml``, section
``ppo``) twice per training seed, on the plain observation and with the episode's
sufficient statistic of the Bernoulli preferences added (per pair: acceptances / times
recommended, with a Beta(1, 1) prior, and the number of times recommended / day), and
evaluates both deterministically on the track's held-out homes and first scenario seeds
with the MILP oracle on (efficiency = expected energy / OPT, the track's metric).

    .venv/bin/python scripts/p2p_recommendation_observability.py --seeds 2 --steps 120000 --eval-seeds 5
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import prosumer_gym  # noqa: F401 - registers the ids
from prosumer_gym.eval.leaderboard.core import HELD_OUT_SEED_BASE, track


class AcceptanceStatistics(gym.ObservationWrapper):
    """Adds ``accept_rate`` ((s + 1) / (n + 2) per pair) and ``recommended_per_day``
    (n / days so far) to the platform's Dict observation, counted over the episode."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        shape = env.observation_space["loss"].shape
        self.observation_space = spaces.Dict({**env.observation_space.spaces,
                                              "accept_rate": spaces.Box(0.0, 1.0, shape, np.float64),
                                              "recommended_per_day": spaces.Box(0.0, 1.0, shape, np.float64)})
        self._n = np.zeros(shape)
        self._s = np.zeros(shape)
        self._days = 0

    def reset(self, **kwargs: Any):
        self._n[:] = 0.0
        self._s[:] = 0.0
        self._days = 0
        return super().reset(**kwargs)

    def observation(self, obs: dict) -> dict:
        if self._days > 0 or np.any(obs["last_recommendation"] > 0):
            rec = obs["last_recommendation"] > 0
            self._n += rec
            self._s += rec & (obs["last_accepted"] > 0)
            self._days += 1
        return {**obs, "accept_rate": (self._s + 1.0) / (self._n + 2.0),
                "recommended_per_day": self._n / max(self._days, 1)}


def _recipe() -> tuple[dict, dict, int]:
    from prosumer_gym.train.baselines import _yaml, baseline_groups
    from prosumer_gym.train.sb3 import split_hyperparams

    hp, _ = _yaml("P2PRecommendation-v0")
    control, algo_kwargs = split_hyperparams(hp["ppo"], "gym")
    return control, algo_kwargs, int(baseline_groups("P2PRecommendation-v0")["ppo"]["total_steps"])


def run(stats: bool, seed: int, steps: int, eval_seeds: int) -> dict[str, float]:
    from gymnasium.wrappers import FlattenObservation
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    control, algo_kwargs, _ = _recipe()
    kw = {**dict(track("P2PRecommendation-v0").env_kwargs), "split": "train", **control.get("env_kwargs", {})}

    def make(**k: Any) -> gym.Env:
        env = gym.make("P2PRecommendation-v0", **k)
        return FlattenObservation(AcceptanceStatistics(env) if stats else env)

    venv = VecNormalize(make_vec_env(make, n_envs=1, seed=seed, env_kwargs=kw), gamma=float(algo_kwargs.get("gamma", 0.99)))
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", **algo_kwargs)
    model.learn(steps)
    venv.training = False
    eff = []
    ev_kw = {**dict(track("P2PRecommendation-v0").env_kwargs), "oracle": True}
    for k in range(eval_seeds):
        env = make(**ev_kw)
        obs, _ = env.reset(seed=HELD_OUT_SEED_BASE + k)
        vals, done = [], False
        while not done:
            a, _ = model.predict(venv.normalize_obs(obs[None])[0], deterministic=True)
            obs, _, te, tu, info = env.step(a)
            vals.append(info["efficiency"])
            done = te or tu
        eff.append(float(np.nanmean(vals)))
    return {"stats": stats, "seed": seed, "efficiency": float(np.mean(eff)), "per_seed": eff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="default: the recipe's budget")
    ap.add_argument("--eval-seeds", type=int, default=5)
    args = ap.parse_args()
    steps = args.steps or _recipe()[2]
    out = [run(st, s, steps, args.eval_seeds) for s in range(args.seeds) for st in (False, True)]
    for r in out:
        print(json.dumps(r))
    for st in (False, True):
        e = [r["efficiency"] for r in out if r["stats"] == st]
        print(f"{'with' if st else 'without'} acceptance statistics: efficiency {np.mean(e):.3f} "
              f"(training seeds {[round(x, 3) for x in e]}), {steps} steps each")


if __name__ == "__main__":
    main()
