"""Validate P2PTrading-v0's certified clearing bound against MILP-proven optima.

On synthetic days (``random_instance``, sizes ``--sizes``, seeds ``[99, n, k, band]`` for
``k < --seeds``, paper prices and prices over the whole band) the ``milp`` reference (HiGHS,
24 breakpoints, 24 tangents, ``--milp-time-limit``) is solved; on the days it proves optimal,
``clearing.bound.certified_bound`` must lie above the MILP's optimum and its own clearing must
be at least as good (to rounding). Prints the counts and writes a JSON atomically. The figures
in docs/p2p_trading_clearing.md:

    python benchmarks/validate_p2p_bound.py --sizes 4,5,6,7 --seeds 12 --out runs/bench/validate_bound.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prosumer_gym.core.io import atomic_write_text  # noqa: E402
from prosumer_gym.envs.p2p_trading.clearing import clear  # noqa: E402
from prosumer_gym.envs.p2p_trading.clearing.bound import certified_bound  # noqa: E402
from prosumer_gym.envs.p2p_trading.market import random_instance  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4,5,6,7", help="comma-separated n (n sellers x n buyers)")
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--milp-time-limit", type=float, default=30.0)
    ap.add_argument("--out", default="runs/bench/validate_bound.json")
    args = ap.parse_args(argv)
    rows = []
    for n in (int(v) for v in args.sizes.split(",") if v):
        for k in range(args.seeds):
            for band in (0, 1):
                kw = {"seller_price": (0.06, 0.12)} if band else {}
                inst = random_instance(np.random.default_rng([99, n, k, band]), n, n, **kw)
                t0 = time.perf_counter()
                m = clear(inst, "milp", time_limit=args.milp_time_limit, n_breakpoints=24, n_tangents=24)
                t_milp = time.perf_counter() - t0
                if not m.stats["proven_optimal"]:
                    continue
                r = certified_bound(inst)
                span = max(r.upper_bound - r.no_trade_value, 1e-12)
                rows.append({"n": n, "seed": k, "band": bool(band), "milp_objective": m.objective,
                             "upper_bound": r.upper_bound, "lower_bound": r.lower_bound, "proven": r.proven,
                             "valid": bool(r.upper_bound >= m.objective - 1e-9),
                             "lb_below_milp_share": (m.objective - r.lower_bound) / span,
                             "bound_seconds": r.seconds, "milp_seconds": t_milp})
    summary = {"days": len(rows), "invalid": sum(not r["valid"] for r in rows),
               "unproven": sum(not r["proven"] for r in rows),
               "worst_lb_below_milp_share": max((r["lb_below_milp_share"] for r in rows), default=0.0),
               "bound_seconds": sum(r["bound_seconds"] for r in rows),
               "milp_seconds": sum(r["milp_seconds"] for r in rows)}
    print(json.dumps(summary, indent=1))
    atomic_write_text(args.out, json.dumps({"args": vars(args), "summary": summary, "days": rows}, indent=1))
    return summary


if __name__ == "__main__":
    main()
