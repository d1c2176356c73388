"""Speed of ProsumerSharing-v0 (one process, one core).

    python benchmarks/bench_prosumer_sharing.py [--days 1000] [--n 99] [--batch-sizes 16,64,256]
                                                [--repeats 3] [--out FILE.json]

1. A ``--days``-step run at N = ``--n`` prosumers (paper defaults), three ways:
   ``parallel_env``: the PettingZoo env driven by Algorithm 2 policies through observations
   and actions (``Algorithm2Team``), full infos every step; ``gym_view``: the Gymnasium view
   driven by ``Algorithm1Platform``; ``core``: the vectorised core running Algorithms 1-2
   itself (no infos). Reset (community sampling + exact oracle) is timed separately.
2. Batched throughput in prosumer-steps/s: ``ProsumerSharingBatch`` (prosumer view, Algorithm 2
   actions, full KPIs every step) and ``ProsumerSharingVecEnv`` (SB3 VecEnv, platform view) for
   each batch size, 200-day episodes with auto-reset.
Best and median of ``--repeats``; run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from prosumer_gym.agents.prosumer_sharing import Algorithm1Platform, Algorithm2Team
from prosumer_gym.envs import prosumer_sharing_v0
from prosumer_gym.envs.prosumer_sharing.gym import ProsumerSharingGymEnv
from prosumer_gym.envs.prosumer_sharing.market import SharingConfig, solve_optimum
from prosumer_gym.envs.prosumer_sharing.vec import ProsumerSharingBatch, ProsumerSharingVecEnv


def time_parallel_env(days: int, n: int, seed: int) -> tuple[float, float]:
    env = prosumer_sharing_v0.parallel_env(n_prosumers=n, n_days=days)
    t0 = time.perf_counter()
    obs, infos = env.reset(seed=seed)
    t_reset = time.perf_counter() - t0
    team = Algorithm2Team.from_infos(infos, seed=seed)
    t0 = time.perf_counter()
    while env.agents:
        obs, *_ = env.step(team.act(obs))
    return time.perf_counter() - t0, t_reset


def time_gym_view(days: int, n: int, seed: int) -> float:
    env = ProsumerSharingGymEnv(n_prosumers=n, n_days=days)
    obs, _ = env.reset(seed=seed)
    pol = Algorithm1Platform.for_env(env)
    t0 = time.perf_counter()
    done = False
    while not done:
        obs, _, term, trunc, _ = env.step(pol.act(obs))
        done = term or trunc
    return time.perf_counter() - t0


def time_core(days: int, n: int, seed: int) -> float:
    cfg = SharingConfig(n_prosumers=n)
    core = cfg.make_core(1)
    core.load(0, cfg.sample(np.random.default_rng(seed)))
    rng = np.random.default_rng(seed + 1)
    t0 = time.perf_counter()
    for _ in range(days):
        x, y = core.draw_algorithm2(rng)
        core.step(x, y)
    return time.perf_counter() - t0


def rate_batch(k: int, n: int, steps: int, seed: int) -> float:
    b = ProsumerSharingBatch(n_communities=k, n_prosumers=n, n_days=200)
    b.reset(seed=seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        b.step(b.algorithm2_actions())
    return k * n * steps / (time.perf_counter() - t0)


def rate_vecenv(k: int, n: int, steps: int, seed: int) -> float:
    v = ProsumerSharingVecEnv(num_envs=k, n_prosumers=n, n_days=200)
    v.seed(seed)
    obs = v.reset()
    pol = Algorithm1Platform()
    t0 = time.perf_counter()
    for _ in range(steps):
        obs, *_ = v.step(np.stack([pol.act(o) for o in obs]))
    return k * n * steps / (time.perf_counter() - t0)


def best_median(fn: Callable[[int], float], repeats: int, higher_is_better: bool) -> tuple[float, float]:
    vals = [fn(r) for r in range(repeats)]
    best = max(vals) if higher_is_better else min(vals)
    return best, statistics.median(vals)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--days", type=int, default=1000)
    p.add_argument("--n", type=int, default=99)
    p.add_argument("--batch-sizes", default="16,64,256")
    p.add_argument("--batch-steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    res: dict[str, object] = {"days": a.days, "n_prosumers": a.n, "repeats": a.repeats}

    time_parallel_env(20, a.n, 0)  # warm-up (imports, caches)
    runs = [time_parallel_env(a.days, a.n, r) for r in range(a.repeats)]
    steps = [t for t, _ in runs]
    resets = [r for _, r in runs]
    res["parallel_env_seconds"] = {"best": min(steps), "median": statistics.median(steps)}
    res["reset_seconds"] = {"best": min(resets), "median": statistics.median(resets)}
    res["gym_view_seconds"] = dict(zip(("best", "median"), best_median(
        lambda r: time_gym_view(a.days, a.n, r), a.repeats, False)))
    res["core_seconds"] = dict(zip(("best", "median"), best_median(
        lambda r: time_core(a.days, a.n, r), a.repeats, False)))
    costs = SharingConfig(n_prosumers=a.n).sample(np.random.default_rng(0)).costs
    cx, cy = 90 * a.n / 99, 80 * a.n / 99
    res["oracle_seconds"] = dict(zip(("best", "median"), best_median(
        lambda r: _timed(lambda: solve_optimum(costs, cx, cy)), a.repeats, False)))

    print(f"{a.days} steps at N = {a.n} (best / median of {a.repeats}):")
    for key in ("parallel_env_seconds", "gym_view_seconds", "core_seconds", "reset_seconds", "oracle_seconds"):
        v = res[key]
        print(f"  {key:22s} {v['best']:8.3f} s {v['median']:8.3f} s")

    batch: dict[str, dict[str, float]] = {}
    print("batched prosumer-steps/s (best / median):")
    for k in (int(s) for s in a.batch_sizes.split(",")):
        rb = best_median(lambda r: rate_batch(k, a.n, a.batch_steps, r), a.repeats, True)
        rv = best_median(lambda r: rate_vecenv(k, a.n, a.batch_steps, r), a.repeats, True)
        batch[str(k)] = {"batch_best": rb[0], "batch_median": rb[1], "vecenv_best": rv[0], "vecenv_median": rv[1]}
        print(f"  K = {k:4d}: ProsumerSharingBatch {rb[0]:12,.0f} {rb[1]:12,.0f}   "
              f"ProsumerSharingVecEnv {rv[0]:12,.0f} {rv[1]:12,.0f}")
    res["batched_prosumer_steps_per_s"] = batch
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(res, indent=2))
        os.replace(tmp, out)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
