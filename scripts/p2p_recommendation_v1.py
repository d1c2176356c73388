"""What P2PRecommendation-v1's learning interface allows (docs/p2p_recommendation.md,
"Version 1"): hand policies through the score action on the leaderboard track's market.

Per seed, the efficiency (expected energy / OPT's, the per-day MILP oracle) of scoring pairs
by the observed ``accept_rate`` (a greedy bandit without bonus), by the true preferences
(perfect knowledge through the greedy decoder) and by uniformly random scores.

    .venv/bin/python scripts/p2p_recommendation_v1.py --seeds 0,1

With ``--model RUN`` (a ``prosumer-gym-train --env P2PRecommendation-v1 --algo ppo`` run
folder: ``model.zip`` + ``vecnormalize.pkl``; MLP on the flattened observation or the pair
scorer of ``prosumer_gym/train/pair_policy.py`` on the Dict) it also evaluates that policy,
deterministically, on the same seeds (use the held-out homes, ``--split test``, and seeds
``1000000,...``, the track's scenario seeds).
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np

import prosumer_gym  # noqa: F401 - registers the ids
from prosumer_gym.eval.leaderboard.tracks.p2p_recommendation import ENV_KWARGS

POLICIES = {
    "accept_rate": lambda env, obs, rng: obs["accept_rate"],
    "true_preference": lambda env, obs, rng: env.preference,
    "random_scores": lambda env, obs, rng: rng.random(obs["loss"].shape),
}


def sb3_policy(run_dir: str, kw: dict):
    """The deterministic policy of an SB3 PPO run trained on the flattened, normalised view."""
    from gymnasium.wrappers import FlattenObservation
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    model = PPO.load(f"{run_dir}/model.zip", device="cpu")
    flat = not isinstance(model.observation_space, gym.spaces.Dict)  # flatten_obs (MLP) or the Dict (pair scorer)
    wrap = FlattenObservation if flat else (lambda e: e)
    norm = VecNormalize.load(f"{run_dir}/vecnormalize.pkl",
                             DummyVecEnv([lambda: wrap(gym.make("P2PRecommendation-v1", **kw))]))
    norm.training = False
    space = gym.make("P2PRecommendation-v1", **kw).observation_space

    def act(env, obs, rng):
        o = gym.spaces.flatten(space, obs)[None, :] if flat else {k: v[None] for k, v in obs.items()}
        return model.predict(norm.normalize_obs(o), deterministic=True)[0][0]

    return act


def run(seed: int, split: str = "train", model: str | None = None) -> dict[str, float]:
    """Efficiency of each hand policy (and of ``model``) on one seed of the track's market."""
    kw = {**ENV_KWARGS, "split": split, "oracle": False}
    expected, env = {}, None
    policies = dict(POLICIES)
    if model is not None:
        policies["model"] = sb3_policy(model, kw)
    for name, pol in policies.items():
        env = gym.make("P2PRecommendation-v1", **kw).unwrapped
        rng = np.random.default_rng(seed)
        obs, _ = env.reset(seed=seed)
        tot, done = 0.0, False
        while not done:
            obs, _, term, trunc, info = env.step(pol(env, obs, rng))
            tot += info["expected_kwh"]
            done = term or trunc
        expected[name] = tot
    opt = sum(d["oracle_kwh"] for d in env.oracle_kpis())  # the days do not depend on the policy
    return {name: v / opt for name, v in expected.items()} | {"opt_kwh_per_day": opt / kw["n_days"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1", help="comma-separated reset seeds")
    p.add_argument("--split", default="train", choices=("train", "test"))
    p.add_argument("--model", default=None, help="an SB3 PPO run folder to evaluate too")
    a = p.parse_args(argv)
    for s in (int(x) for x in a.seeds.split(",")):
        print(json.dumps({"seed": s, **{k: round(v, 3) for k, v in run(s, a.split, a.model).items()}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
