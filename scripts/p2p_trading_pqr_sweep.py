"""Why PQR's prices barely move in a year: a sweep of its learning rate and exploration.

    python scripts/p2p_trading_pqr_sweep.py --out runs/pqr_sweep [--seeds 10] [--days 365] [--n 15]
        [--configs paper,lr1e-3,lr1e-2,lr1e-1,lr1e-2-eps0.99] [--quick]

Every run is one year of P2PTrading-v0 at ``n x n`` with the default clearing, PQR sellers
learning online (Alg. 5; the YAML's paper values unless the config overrides them), on the
community of training seed ``s`` (``s = 0 .. seeds-1``); Rule (mid-market prices, reference
prices) and Zhu run on the same communities. Per config and seed it records the buyers' PT
value and the sellers' revenue relative to Rule on the same seed (the ratios of Table 5.1),
how far the mean price moved over the year, and on what share of (seller, day) pairs after
day 100 (when epsilon has reached its floor) a seller's price changed at all. Means over the
seeds with 95% percentile-bootstrap CIs (rliable, 2,000 replicates). Writes
``results.json`` and ``results.md`` (atomically) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.core.io import atomic_write_text
from prosumer_gym.eval.leaderboard.stats import seeded
from prosumer_gym.eval.main_job import RunSpec, run_one, summarise

#: name -> PQR agent_kwargs overriding the paper's (train/hyperparams/P2PTrading-v0.yml)
CONFIGS: dict[str, dict[str, float]] = {
    "paper": {},
    "lr1e-3": {"lr": 1e-3},
    "lr1e-2": {"lr": 1e-2},
    "lr1e-1": {"lr": 1e-1},
    "lr1e-2-eps0.99": {"lr": 1e-2, "eps_decay": 0.99},
}
SETTLE_DAY = 100  # 0.965 ** 100 < 0.05: epsilon is at its floor from here on


def _price_moves(rows: list[dict], n: int) -> tuple[float, float]:
    """(mean |end - start| price over sellers in $/kWh, share of seller-days after SETTLE_DAY
    with a price change)."""
    p = np.array([[r[f"price_{i}"] for i in range(n)] for r in rows], dtype=float)
    moved = np.abs(np.diff(p[SETTLE_DAY:], axis=0)) > 1e-12 if len(p) > SETTLE_DAY + 1 else np.zeros((0, n))
    return float(np.mean(np.abs(p[-1] - p[0]))), float(moved.mean()) if moved.size else math.nan


def _ci(values: list[float]) -> dict[str, Any]:
    """Mean over seeds with rliable's percentile bootstrap CI (runs = seeds, one task)."""
    from rliable import library, metrics

    x = np.asarray(values, dtype=float)[:, None]
    with seeded(0, "pqr_sweep", str(len(values))):
        point, ci = library.get_interval_estimates({"x": x}, lambda s: np.array([metrics.aggregate_mean(s)]),
                                                   reps=2000, confidence_interval_size=0.95)
    return {"mean": float(point["x"][0]), "ci": [float(ci["x"][0, 0]), float(ci["x"][1, 0])], "n": len(values)}


def run(out: Path, seeds: int, days: int, n: int, configs: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    base: dict[str, dict[int, dict]] = {"rule": {}, "zhu": {}}
    for s in range(seeds):
        for mech in base:
            spec = RunSpec(mech, mechanism=mech, algo="constant", n_sellers=n, n_buyers=n, days=days, seed=s)
            base[mech][s] = summarise(mech, run_one(spec, progress=False)["runs"][mech])
    res: dict[str, Any] = {"seeds": list(range(seeds)), "days": days, "size": f"{n}x{n}", "configs": {}}
    per_seed_all: dict[str, list[dict]] = {}
    for name in ["zhu"] + configs:
        rows_out = []
        for s in range(seeds):
            if name == "zhu":
                summ, moved = base["zhu"][s], (0.0, 0.0)
            else:
                spec = RunSpec(name, algo="pqr", n_sellers=n, n_buyers=n, days=days, seed=s,
                               agent_kwargs=dict(CONFIGS[name]))
                rows = run_one(spec, progress=False)["runs"][name]
                summ, moved = summarise(name, rows), _price_moves(rows, n)
            rule = base["rule"][s]
            rows_out.append({
                "seed": s,
                "buyers_vs_rule": (summ["buyers_pt_value_mean"] - rule["buyers_pt_value_mean"])
                / abs(rule["buyers_pt_value_mean"]),
                "sellers_vs_rule": summ["sellers_revenue_mean"] / rule["sellers_revenue_mean"] - 1.0,
                "price_start": summ["seller_price_start"], "price_end": summ["seller_price_end"],
                "price_moved_usd": moved[0], "share_days_price_changed": moved[1],
            })
        per_seed_all[name] = rows_out
        res["configs"][name] = {
            "agent_kwargs": CONFIGS.get(name, {}),
            **{k: _ci([r[k] for r in rows_out]) for k in ("buyers_vs_rule", "sellers_vs_rule", "price_moved_usd",
                                                          "share_days_price_changed")},
        }
        print(name, json.dumps({k: round(v["mean"], 4) for k, v in res["configs"][name].items()
                                if isinstance(v, dict) and "mean" in v}), flush=True)
    res["per_seed"] = per_seed_all
    res["seconds"] = round(time.perf_counter() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(res, indent=1) + "\n")
    atomic_write_text(out / "results.md", markdown(res))
    return res


def markdown(res: dict[str, Any]) -> str:
    def f(e: dict, pct: bool = True) -> str:
        k = 100.0 if pct else 1.0
        return f"{k * e['mean']:+.1f} [{k * e['ci'][0]:+.1f}, {k * e['ci'][1]:+.1f}]" if pct else \
            f"{e['mean']:.4f} [{e['ci'][0]:.4f}, {e['ci'][1]:.4f}]"

    lines = [f"PQR sweep, {res['size']}, {res['days']} days, seeds {res['seeds'][0]}-{res['seeds'][-1]} "
             f"({res['seconds']} s). Means over seeds [95% bootstrap CI].", "",
             "| config | agent_kwargs | buyers vs Rule % | sellers vs Rule % | mean price moved $/kWh "
             f"| seller-days with a price change after day {SETTLE_DAY} |", "|---|---|---|---|---|---|"]
    for name, c in res["configs"].items():
        lines.append(f"| {name} | {json.dumps(c['agent_kwargs'])} | {f(c['buyers_vs_rule'])} | "
                     f"{f(c['sellers_vs_rule'])} | {f(c['price_moved_usd'], False)} | "
                     f"{f(c['share_days_price_changed'], False)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--n", type=int, default=15)
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--quick", action="store_true", help="2 seeds, 120 days, 5x5, two configs (a smoke run)")
    a = p.parse_args(argv)
    configs = [c for c in a.configs.split(",") if c]
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        raise SystemExit(f"--configs: unknown {unknown}; known: {sorted(CONFIGS)}")
    if a.quick:
        a.seeds, a.days, a.n, configs = 2, 120, 5, ["paper", "lr1e-1"]
    res = run(Path(a.out), a.seeds, a.days, a.n, configs)
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
