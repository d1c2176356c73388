"""Throughput of StorageSharing-v0 at paper size (8 RUs, 5 SFCs; steps per second, one core).

    python benchmarks/bench_storage_sharing.py [--rus 8] [--sfcs 5] [--episodes 40] [--repeats 5]
        [--clock wall|cpu] [--out FILE.json]

Measures, best and median of ``--repeats``:

* ``parallel_env``: PettingZoo steps/s (one slot = 2 steps) with pre-drawn random actions
  (action sampling is not timed); every step runs the mechanism and fills the infos,
  including the slot's Stackelberg equilibrium and each agent's regret;
* ``parallel_env_reference``: the same with the SE auctioneer and best-responding RUs
  deciding from the observations (policy time included);
* ``gym_auctioneer``: Gymnasium steps/s (one step = one slot, best-responding RUs inside);
* ``slot_solve``: determination + SE (closed form / exact 1-D search) + allocation per second;
* ``algorithm1``: Algorithm 1 runs per second (mean iterations reported).

Single process. ``--clock wall`` (default) divides by elapsed time; ``--clock cpu`` by the
process's CPU time (``time.process_time``), which is less sensitive to other jobs on a
shared machine (it still includes cache and frequency effects of contention).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from prosumer_gym.agents.storage_sharing import BestResponseRU, SEAuctioneer
from prosumer_gym.envs import storage_sharing_v0
from prosumer_gym.envs.storage_sharing.gym import StorageSharingGymEnv
from prosumer_gym.envs.storage_sharing.market import StorageMarket, algorithm1, determine, solve

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def _use_clock(name: str) -> None:
    global _clock
    _clock = CLOCKS[name]


def env_rate(n: int, m: int, episodes: int, seed: int, reference: bool) -> float:
    env = storage_sharing_v0.parallel_env(n_rus=n, n_sfcs=m)
    rng = np.random.default_rng(seed)
    steps = env.max_cycles
    acts = rng.uniform(0, 1, size=(episodes, steps, n + 1, 1)).astype(np.float32)
    agents = env.possible_agents
    auct, br = SEAuctioneer.from_env(env), BestResponseRU.from_env(env)
    total = 0
    t0 = _clock()
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        for k in range(steps):
            if reference:
                actions = {a: auct.act(obs[a]) if a == "auctioneer" else br.act(obs[a]) for a in agents}
            else:
                actions = dict(zip(agents, acts[e, k]))
            obs, *_ = env.step(actions)
            total += 1
    return total / (_clock() - t0)


def gym_rate(n: int, m: int, episodes: int, seed: int) -> float:
    env = StorageSharingGymEnv(n_rus=n, n_sfcs=m)
    rng = np.random.default_rng(seed)
    acts = rng.uniform(0, 1, size=(episodes, env.market.n_slots, 1)).astype(np.float32)
    total = 0
    t0 = _clock()
    for e in range(episodes):
        env.reset(seed=seed + e)
        for k in range(env.market.n_slots):
            env.step(acts[e, k])
            total += 1
    return total / (_clock() - t0)


def _markets(n: int, m: int, count: int, seed: int) -> list[StorageMarket]:
    rng = np.random.default_rng(seed)
    return [StorageMarket(rng.uniform(20, 70, n), rng.uniform(0.01, 0.1, n), 50 * rng.uniform(0.4, 0.8, n),
                          rng.uniform(20, 70, m), rng.uniform(10, 40, m)) for _ in range(count)]


def solve_rate(mks: list[StorageMarket]) -> float:
    t0 = _clock()
    for mk in mks:
        solve(mk)
    return len(mks) / (_clock() - t0)


def alg1_rate(mks: list[StorageMarket]) -> tuple[float, float]:
    dets = [determine(mk) for mk in mks]
    iters = []
    t0 = _clock()
    for mk, det in zip(mks, dets):
        iters.append(algorithm1(mk, det).iterations)
    return len(mks) / (_clock() - t0), float(np.mean(iters))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rus", type=int, default=8)
    p.add_argument("--sfcs", type=int, default=5)
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    _use_clock(a.clock)
    n, m = a.rus, a.sfcs
    env_rate(n, m, 2, 0, False)  # warm-up (imports, caches)
    mks = _markets(n, m, 500, 0)
    results: dict[str, dict[str, float]] = {}
    runs = {
        "parallel_env": lambda r: env_rate(n, m, a.episodes, 1000 * r, False),
        "parallel_env_reference": lambda r: env_rate(n, m, a.episodes // 2 or 1, 1000 * r, True),
        "gym_auctioneer": lambda r: gym_rate(n, m, a.episodes, 1000 * r),
        "slot_solve": lambda r: solve_rate(mks),
    }
    unit = {"parallel_env": "steps/s", "parallel_env_reference": "steps/s", "gym_auctioneer": "steps/s",
            "slot_solve": "slots/s"}
    print(f"StorageSharing-v0, {n} RUs x {m} SFCs, best/median of {a.repeats}, {a.clock} clock")
    for name, fn in runs.items():
        rates = [fn(r) for r in range(a.repeats)]
        results[name] = {"best": max(rates), "median": statistics.median(rates), "unit": unit[name]}
        print(f"  {name:24s} best {max(rates):9.0f}  median {statistics.median(rates):9.0f}  {unit[name]}")
    rates, its = zip(*(alg1_rate(mks[:200]) for _ in range(a.repeats)))
    results["algorithm1"] = {"best": max(rates), "median": statistics.median(rates), "unit": "runs/s",
                             "mean_iterations": float(np.mean(its))}
    print(f"  {'algorithm1':24s} best {max(rates):9.0f}  median {statistics.median(rates):9.0f}  runs/s "
          f"(mean {np.mean(its):.1f} iterations)")
    results["_meta"] = {"rus": n, "sfcs": m, "episodes": a.episodes, "repeats": a.repeats, "clock": a.clock,
                        "python": platform.python_version(), "machine": platform.machine(),
                        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        os.replace(tmp, out)


if __name__ == "__main__":
    main()
