"""Per-day cost of UPL's MILP oracle and of BPT-K in P2PRecommendation-v0, plus a full year.

    python benchmarks/bench_p2p_recommendation.py [--sizes 16x10,16x50,45x150] [--days 60]
        [--start-day 120] [--year-size 16x50] [--out FILE.json]

For each size ``PxC``: the UPL and BPT-K agents (FIA initialisation) run ``--days`` days
from ``--start-day`` (consumers follow the preference model, env oracle off); the wall time
of ``act()`` is recorded on every optimisation-phase day (UPL: one HiGHS MILP of Eq. 4.1
with Eq. 4.4 weights, structure built once per size; BPT-K: Alg. 3's iterative MWBM) and
reported as median / p90 / max ms per day. Then one full year (365 days) at
``--year-size`` with BPT-K: env + policy wall time, with the env's per-day OPT oracle off
and on. Single process; the numbers depend on machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from prosumer_gym.agents.p2p_recommendation import make_agent
from prosumer_gym.envs import p2p_recommendation_v0


def per_day(P: int, C: int, name: str, days: int, start: int, seed: int = 0) -> dict:
    env = p2p_recommendation_v0.parallel_env(n_producers=P, n_consumers=C, n_days=days, start_day=start,
                                             consumer_agents=False, oracle=False)
    obs, _ = env.reset(seed=seed)
    pol = make_agent(name, env, seed=seed)
    ts = []
    while env.agents:
        t0 = time.perf_counter()
        x = pol.act(obs["platform"])
        dt = time.perf_counter() - t0
        if not pol.in_init:  # act() ran the optimisation phase today
            ts.append(dt)
        obs, *_ = env.step({"platform": x})
    a = np.asarray(ts) * 1e3
    return {"days_timed": int(a.size), "init_days": int(pol.init_days),
            "median_ms": float(np.median(a)) if a.size else float("nan"),
            "p90_ms": float(np.percentile(a, 90)) if a.size else float("nan"),
            "max_ms": float(a.max()) if a.size else float("nan")}


def year(P: int, C: int, oracle: bool, seed: int = 0) -> float:
    env = p2p_recommendation_v0.parallel_env(n_producers=P, n_consumers=C, consumer_agents=False, oracle=oracle)
    obs, _ = env.reset(seed=seed)
    pol = make_agent("bpt-k", env, seed=seed)
    t0 = time.perf_counter()
    while env.agents:
        obs, *_ = env.step({"platform": pol.act(obs["platform"])})
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="16x10,16x50,45x150")
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--start-day", type=int, default=120)
    p.add_argument("--year-size", default="16x50")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    res: dict = {"per_day": {}, "year": {}}
    print(f"{a.days} days from day {a.start_day}; act() wall time on optimisation-phase days")
    print(f"{'size':>7s} {'policy':>6s} {'days':>5s} {'init':>5s} {'median ms':>10s} {'p90 ms':>8s} {'max ms':>8s}")
    for size in a.sizes.split(","):
        P, C = (int(v) for v in size.split("x"))
        for name in ("upl", "bpt-k"):
            r = per_day(P, C, name, a.days, a.start_day)
            res["per_day"][f"{size}/{name}"] = r
            print(f"{size:>7s} {name:>6s} {r['days_timed']:5d} {r['init_days']:5d} {r['median_ms']:10.1f} "
                  f"{r['p90_ms']:8.1f} {r['max_ms']:8.1f}")
    P, C = (int(v) for v in a.year_size.split("x"))
    for oracle in (False, True):
        s = year(P, C, oracle)
        res["year"][f"{a.year_size}/bpt-k/oracle={oracle}"] = s
        print(f"year (365 days) {a.year_size} BPT-K, env oracle {'on ' if oracle else 'off'}: {s:.1f} s")
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(res, indent=2))
        os.replace(tmp, out)


if __name__ == "__main__":
    main()
