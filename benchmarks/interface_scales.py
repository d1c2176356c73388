"""Scales of what a learner sees on each leaderboard track's market: per-step reward and
observation magnitudes under uniformly random actions, on the interface each deep-RL
baseline trains on (the Gymnasium view's learner, or one agent of the track's role in the
PettingZoo env). docs/baselines.md reports the output; VecNormalize is used where these
scales are far from 1.

    .venv/bin/python benchmarks/interface_scales.py --steps 2000
"""

from __future__ import annotations

import argparse
import importlib

import gymnasium as gym
import numpy as np

import prosumer_gym
from prosumer_gym.eval.leaderboard.core import track
from prosumer_gym.train.baselines import _train_env_kwargs

ROLE_AGENT = {"P2PTrading-v0": "seller_0", "ProsumerSharing-v0": "prosumer_0", "EUber-v0": "worker_0",
              "EnergyCollective-v0": "flexible_0", "StorageSharing-v0": "ru_0", "P2PRecommendation-v0": "platform"}


def _flat(o) -> np.ndarray:
    if isinstance(o, dict):
        return np.concatenate([np.asarray(v, float).ravel() for v in o.values()])
    return np.asarray(o, float).ravel()


def gym_view(env_id: str, steps: int, seed: int) -> dict[str, float]:
    kw = _train_env_kwargs(env_id)
    kw.pop("absent_agents", None)
    env = gym.make(env_id, **kw)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rs, os_ = [], []
    for _ in range(steps):
        obs, r, te, tu, _ = env.step(env.action_space.sample())
        rs.append(r)
        os_.append(_flat(obs))
        if te or tu:
            obs, _ = env.reset()
    o = np.asarray(os_)
    return {"reward_mean": float(np.mean(rs)), "reward_std": float(np.std(rs)),
            "obs_absmax": float(np.abs(o).max()), "obs_std_max": float(o.std(axis=0).max())}


def pettingzoo(env_id: str, steps: int, seed: int) -> dict[str, float]:
    env = importlib.import_module(prosumer_gym.PETTINGZOO_MODULES[env_id]).parallel_env(
        **_train_env_kwargs(env_id))
    agent = ROLE_AGENT[env_id]
    obs, _ = env.reset(seed=seed)
    for i, a in enumerate(env.possible_agents):
        env.action_space(a).seed(seed + i)
    rs, os_ = [], []
    for _ in range(steps):
        obs, r, _, _, _ = env.step({a: env.action_space(a).sample() for a in env.agents})
        if agent in r:
            rs.append(r[agent])
            os_.append(_flat(obs[agent]))
        if not env.agents:
            obs, _ = env.reset()
    o = np.asarray(os_)
    return {"reward_mean": float(np.mean(rs)), "reward_std": float(np.std(rs)),
            "obs_absmax": float(np.abs(o).max()), "obs_std_max": float(o.std(axis=0).max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| env | interface | agent | reward mean | reward std | max abs(obs) | max std(obs) |")
    print("|---|---|---|---|---|---|---|")
    for env_id in prosumer_gym.REGISTERED:
        track(env_id)
        for name, fn in (("gym", gym_view), ("pettingzoo", pettingzoo)):
            steps = args.steps if env_id not in ("P2PRecommendation-v0", "EUber-v0") else max(args.steps // 10, 50)
            s = fn(env_id, steps, args.seed)
            agent = "learner" if name == "gym" else ROLE_AGENT[env_id]
            print(f"| {env_id} | {name} | {agent} | {s['reward_mean']:.3g} | {s['reward_std']:.3g} | "
                  f"{s['obs_absmax']:.3g} | {s['obs_std_max']:.3g} |", flush=True)


if __name__ == "__main__":
    main()
