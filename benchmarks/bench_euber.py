"""EUber-v0 timing at paper size (100 workers, 25 ride/swap + 25 V2G tasks per 15-min slot).

    python benchmarks/bench_euber.py [--slots 96] [--sample-slots 24] [--clock wall|cpu] [--out FILE.json]

Measures (single process):

* ``day``: one full simulated day (``--slots`` slots) of CARS-BMW through the Gymnasium view,
  recommender (POTR by HiGHS) + behavioural bids + BMW + movement/charging, total seconds;
  also PK-OPT for comparison;
* ``per_slot``: on ``--sample-slots`` slots of a PK trajectory, the time of each winner
  selection (``opt`` HiGHS MILP, ``bmw`` Alg. 8, ``bg``) on the *same* bids, of the POTR
  projection (``potr``: the default min-cost flow; ``potr_highs``: the LP by HiGHS) and of
  the fare model's prices of the recommended pairs (``fare``); mean / median / max in
  milliseconds, plus the mean number of bids and OPT's cost advantage over BMW (%).

``--clock cpu`` divides by process CPU time (less sensitive to other jobs on a shared machine).
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

from prosumer_gym.agents.euber import CARSRecommender, PKRecommender
from prosumer_gym.envs.euber.gym import EUberGymEnv
from prosumer_gym.envs.euber.market import EUberConfig, EUberMarket, select_winners, solve_potr

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def full_day(name: str, slots: int, clock) -> dict:
    mech = "opt" if name.endswith("OPT") else "bmw"
    env = EUberGymEnv(mechanism=mech, n_slots=slots)
    obs, _ = env.reset(seed=0)
    agent = CARSRecommender(env.config.n_workers) if name.startswith("CARS") else PKRecommender(env.market.alpha)
    t0 = clock()
    done = False
    while not done:
        obs, _, _, done, info = env.step(agent.act(obs))
        agent.observe(info)
    secs = clock() - t0
    return {"approach": name, "slots": slots, "seconds": round(secs, 3), "ms_per_slot": round(1e3 * secs / slots, 2),
            "tasks_served": env.market.totals["tasks_served"]}


def per_slot(n: int, clock) -> dict:
    m = EUberMarket(EUberConfig())
    m.reset(np.random.default_rng(0))
    pk = PKRecommender(m.alpha)
    times: dict[str, list[float]] = {"potr": [], "potr_highs": [], "fare": [], "opt": [], "bmw": [], "bg": []}
    nb, gap = [], []
    for _ in range(n):
        inst = m.instance()
        t0 = clock()
        x = solve_potr(pk.scores(inst.task_type), inst)
        times["potr"].append(clock() - t0)
        t0 = clock()
        solve_potr(pk.scores(inst.task_type), inst, solver="highs")
        times["potr_highs"].append(clock() - t0)
        t0 = clock()
        ref = m.reference_bids(inst, x > 0)
        times["fare"].append(clock() - t0)
        bids = m.behavioural_bids(inst, x, ref)
        nb.append(int(np.isfinite(bids).sum()))
        sels = {}
        for mech in ("opt", "bmw", "bg"):
            t0 = clock()
            sels[mech] = select_winners(mech, bids, inst)
            times[mech].append(clock() - t0)
        o, b = sels["opt"], sels["bmw"]
        same = (o.unserved_ride == b.unserved_ride and abs(o.v2g_delivered_kwh - b.v2g_delivered_kwh) < 1e-9
                and o.q.sum() == b.q.sum())
        if same and o.cost > 0:  # comparable: same V2G energy and same rides served
            gap.append(100.0 * (b.cost - o.cost) / o.cost)
        m.advance(inst, o)
    stats = {k: {"mean_ms": round(1e3 * statistics.mean(v), 2), "median_ms": round(1e3 * statistics.median(v), 2),
                 "max_ms": round(1e3 * max(v), 2)} for k, v in times.items()}
    return {"slots": n, "comparable_slots": len(gap), "mean_bids": round(statistics.mean(nb), 1), "times": stats,
            "bmw_cost_above_opt_pct_comparable_slots": round(statistics.mean(gap), 3) if gap else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--slots", type=int, default=96)
    p.add_argument("--sample-slots", type=int, default=24)
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    clock = CLOCKS[a.clock]
    res = {"clock": a.clock, "python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count()}
    res["per_slot"] = per_slot(a.sample_slots, clock)
    print(json.dumps(res["per_slot"], indent=1), flush=True)
    res["day"] = [full_day("CARS-BMW", a.slots, clock), full_day("PK-OPT", a.slots, clock)]
    print(json.dumps(res["day"], indent=1), flush=True)
    if a.out:
        path = Path(a.out)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(res, indent=1) + "\n")
        os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
