"""Env throughput of P2PTrading-v0 (steps = trading days per second, one core).

    python benchmarks/bench_p2p_env.py [--sizes 5,15,20,50] [--days 365] [--mechanism NAME] [--out FILE.json]

Each size: one warm-up episode, then ``--repeats`` timed episodes of ``--days`` steps with
random price moves; reports the best and median steps/s. Single process, so run it on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from prosumer_gym.envs import p2p_trading_v0
from prosumer_gym.envs.p2p_trading.clearing import DEFAULT_MECHANISM


def episode_rate(n: int, days: int, mechanism: str, seed: int) -> float:
    env = p2p_trading_v0.parallel_env(n_sellers=n, n_buyers=n, n_days=days, mechanism=mechanism)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    acts = rng.integers(3, size=(days, n))
    agents = env.possible_agents
    t0 = time.perf_counter()
    for d in range(days):
        env.step(dict(zip(agents, acts[d].tolist())))
    return days / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="5,15,20,50")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mechanism", default=DEFAULT_MECHANISM)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    results = {}
    print(f"mechanism {a.mechanism}, {a.days} days per episode, best/median of {a.repeats}")
    print(f"{'size':>7s} {'best steps/s':>13s} {'median steps/s':>15s} {'ms/step':>8s}")
    for n in (int(s) for s in a.sizes.split(",")):
        episode_rate(n, min(a.days, 30), a.mechanism, 0)  # warm-up
        rates = [episode_rate(n, a.days, a.mechanism, r) for r in range(a.repeats)]
        best, med = max(rates), statistics.median(rates)
        results[f"{n}x{n}"] = {"best_steps_per_s": best, "median_steps_per_s": med}
        print(f"{n:>3d}x{n:<3d} {best:13.0f} {med:15.0f} {1e3 / best:8.3f}")
    if a.out:
        tmp = Path(a.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
