"""Benchmark the P2PTrading-v0 clearing mechanisms side by side (dissertation 001, ch. 5).

Example (the table in docs/p2p_trading_clearing.md):

    python benchmarks/bench_p2p_clearing.py --days 20 --sizes 5,15,20 --debate-gmax 10000 --np 20 \
        --seed 0 --out results.json

For every size and day a random instance with the paper's distributions (Section 5.3.1; see
``random_instance``; ``--band`` draws seller prices from the whole band [0.06, 0.12]) is
cleared by every mechanism. Reported per size: mean wall-clock seconds per day per
mechanism, the default's speed-up over DEbATE, the number of days with default >= DEbATE
(up to 1e-9 relative), and the largest relative gap of the default to the MILP where HiGHS
proved optimality (relative to |MILP objective|; negative = default better than the MILP's
PWL optimum). The JSON is written atomically (tmp file + os.replace).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prosumer_gym.envs.p2p_trading.clearing import DEFAULT_MECHANISM, make_clearer  # noqa: E402
from prosumer_gym.envs.p2p_trading.market import random_instance  # noqa: E402


def real_days(n: int, days: int, seed: int) -> list:
    """``days`` trading days of the real-data env, evenly spread over the year; sellers move
    their prices at random (so prices cover the band as learning agents' prices do)."""
    from prosumer_gym.envs import p2p_trading_v0

    env = p2p_trading_v0.parallel_env(n_sellers=n, n_buyers=n, n_days=365, mechanism="zhu")
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    every = max(1, 365 // days)
    out = []
    for d in range(365):
        env.step({a: int(rng.integers(3)) for a in env.agents})
        if d % every == every // 2 and len(out) < days:
            out.append(env.last_market.instance)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--sizes", type=str, default="5,15,20", help="comma-separated n (n sellers x n buyers)")
    ap.add_argument("--debate-gmax", type=int, default=10_000)
    ap.add_argument("--np", type=int, default=20, dest="NP")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--milp-time-limit", type=float, default=10.0)
    ap.add_argument("--milp-max-size", type=int, default=15, help="skip the MILP above this n")
    ap.add_argument("--band", action="store_true", help="seller prices U[0.06, 0.12] instead of U[0.09, 0.12]")
    ap.add_argument("--real", action="store_true",
                    help="days of the real-data market (P2PTrading-v0's own instances: CityLearn loads, pvlib PV) "
                         "spread over the year, seller prices random-walked as learning sellers move them")
    ap.add_argument("--out", type=str, default="results.json")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kw = {"seller_price": (0.06, 0.12)} if args.band else {}
    report = {"args": vars(args), "default": DEFAULT_MECHANISM, "sizes": {}}
    for n in sizes:
        mechs = {
            DEFAULT_MECHANISM: make_clearer(DEFAULT_MECHANISM, n, n),
            "debate": make_clearer("debate", n, n, NP=args.NP, G_max=args.debate_gmax),
            "rule": make_clearer("rule", n, n),
            "zhu": make_clearer("zhu", n, n),
        }
        if n <= args.milp_max_size:
            mechs["milp"] = make_clearer("milp", n, n, time_limit=args.milp_time_limit, n_breakpoints=24,
                                         n_tangents=12)
        days = []
        insts = real_days(n, args.days, args.seed) if args.real else [
            random_instance(np.random.default_rng([args.seed, n, d]), n, n, **kw) for d in range(args.days)]
        for clr in mechs.values():  # warm-up: numba's compiled kernel, imports, HiGHS
            clr(insts[0], np.random.default_rng(0)) if clr is not mechs.get("milp") else None
        for d, inst in enumerate(insts):
            row = {}
            for name, clr in mechs.items():
                t0 = time.perf_counter()
                al = clr(inst, np.random.default_rng([args.seed, n, d, 1]))
                row[name] = {"objective": al.objective, "seconds": time.perf_counter() - t0}
                if name == "milp":
                    row[name]["proven_optimal"] = bool(al.stats["proven_optimal"])
                    row[name]["upper_bound"] = al.stats["upper_bound"]
            days.append(row)
            print(f"n={n} day={d} " + " ".join(f"{k}={v['objective']:.4f}({v['seconds'] * 1e3:.1f}ms)"
                                               for k, v in row.items()), flush=True)
        t = {k: float(np.mean([r[k]["seconds"] for r in days])) for k in mechs}
        dflt = np.array([r[DEFAULT_MECHANISM]["objective"] for r in days])
        deb = np.array([r["debate"]["objective"] for r in days])
        summary = {
            "mean_seconds": t,
            "speedup_default_vs_debate": t["debate"] / t[DEFAULT_MECHANISM],
            "days_default_ge_debate": int(np.sum(dflt >= deb - 1e-9 * np.abs(deb))),
            "days": len(days),
            "mean_rel_gain_default_vs_debate": float(np.mean((dflt - deb) / np.abs(deb))),
        }
        if "milp" in mechs:
            prov = [r for r in days if r["milp"]["proven_optimal"]]
            gaps = [(r["milp"]["objective"] - r[DEFAULT_MECHANISM]["objective"]) / abs(r["milp"]["objective"])
                    for r in prov]
            ubg = [(r["milp"]["upper_bound"] - r[DEFAULT_MECHANISM]["objective"]) / abs(r["milp"]["upper_bound"])
                   for r in prov]
            summary.update(milp_proven_days=len(prov),
                           max_rel_gap_default_vs_milp=float(max(gaps)) if gaps else None,
                           max_rel_gap_default_vs_upper_bound=float(max(ubg)) if ubg else None)
        report["sizes"][str(n)] = {"summary": summary, "days": days}
        print(json.dumps({n: summary}, indent=1), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(report, f, indent=1)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return report


if __name__ == "__main__":
    main()
