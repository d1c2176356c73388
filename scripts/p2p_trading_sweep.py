"""Why chapter 5's ordering does not appear: sweeps of PQR, ProDQN and the sellers' price level.

    python scripts/p2p_trading_sweep.py --out runs/pqr_sweep [--sweep pqr] [--seeds 10] [--days 365] [--n 15]
        [--configs NAME,...] [--quick]
    python scripts/p2p_trading_sweep.py --out runs/prodqn_sweep --sweep prodqn
    python scripts/p2p_trading_sweep.py --out runs/price_level_sweep --sweep price-level

Every run is one year of P2PTrading-v0 at ``n x n`` with the default clearing on the
community of training seed ``s`` (``s = 0 .. seeds-1``); Rule (mid-market prices, the
sellers' reference prices) and Zhu run on the same communities and are the references.

* ``--sweep pqr``: PQR sellers learning online (Alg. 5) with the YAML's paper values, or with
  a larger learning rate / longer exploration (``CONFIGS["pqr"]``).
* ``--sweep prodqn``: ProDQN sellers (Alg. 6) with the paper's values, a neutral PT loss
  (``k = zeta = 1``), plain SGD (Eq. 5.8's step), the full observation, longer exploration.
* ``--sweep price-level``: no learning; every seller keeps a static price drawn from
  ``U[c - 0.01, c + 0.01]`` $/kWh (``initial_price_range``; the same uniform draws as the
  default ``U[0.09, 0.12]``, so the community is the same) for price levels ``c``. It traces
  the buyers/sellers frontier any pricing policy moves along: the paper's ordering needs a
  point with *both* sides above Rule.

Per config and seed: the buyers' PT value and the sellers' revenue relative to Rule on the
same seed (Table 5.1's ratios), the paper's ordering (buyers above Rule and Zhu *and* sellers
above Rule), the mean price's drift over the year, how far prices moved, on what share of
(seller, day) pairs after day 100 (epsilon at its floor) a price changed, and on what share
of seller-days of the first 100 a seller sat at the grid price (the zero-revenue cliff).
Means over the seeds with 95% percentile-bootstrap CIs (rliable, 2,000 replicates, through
``prosumer_gym.eval.leaderboard.stats.seed_estimate``). Writes
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
from prosumer_gym.eval.leaderboard.stats import seed_estimate
from prosumer_gym.eval.main_job import RunSpec, run_one, summarise

#: the learner of each sweep ("constant": static prices, no learning)
ALGOS = {"pqr": "pqr", "prodqn": "prodqn", "price-level": "constant"}
_NEUTRAL_PT = {"k_pos": 1.0, "k_neg": 1.0, "zeta_pos": 1.0, "zeta_neg": 1.0}
#: sweep -> config name -> {"agent_kwargs": overrides of the paper's (YAML), "env": P2PTrading-v0 keywords}
CONFIGS: dict[str, dict[str, dict[str, dict]]] = {
    "pqr": {
        "paper": {},
        "lr1e-3": {"agent_kwargs": {"lr": 1e-3}},
        "lr1e-2": {"agent_kwargs": {"lr": 1e-2}},
        "lr1e-1": {"agent_kwargs": {"lr": 1e-1}},
        "lr1e-2-eps0.99": {"agent_kwargs": {"lr": 1e-2, "eps_decay": 0.99}},
    },
    "prodqn": {
        "paper": {},
        "neutral-pt": {"agent_kwargs": _NEUTRAL_PT},
        "sgd": {"agent_kwargs": {"optimizer": "sgd"}},
        "full-obs": {"agent_kwargs": {"obs_mode": "full"}},
        "eps0.99": {"agent_kwargs": {"eps_decay": 0.99}},
    },
    "price-level": {f"{c:g}": {"env": {"initial_price_range": (round(c - 0.01, 4), round(c + 0.01, 4))}}
                    for c in (0.07, 0.08, 0.09, 0.0925, 0.095, 0.0975, 0.10, 0.11)},
}
QUICK = {"pqr": ["paper", "lr1e-1"], "prodqn": ["paper", "neutral-pt"], "price-level": ["0.07", "0.11"]}
SETTLE_DAY = 100  # 0.965 ** 100 < 0.05: epsilon is at its floor from here on
GRID_SELL_PRICE = 0.12  # P2PTrading-v0's default rho_gs: a seller at it saves buyers nothing
METRICS = ("buyers_vs_rule", "sellers_vs_rule", "paper_ordering", "price_drift_usd", "price_moved_usd",
           "share_days_price_changed", "share_cliff_days_early")


def price_stats(rows: list[dict], n: int) -> dict[str, float]:
    """Price-path statistics of one run (module docstring): drift and |move| of the mean price in
    $/kWh, the share of seller-days after SETTLE_DAY with a price change, and the share of
    seller-days before it at the grid price."""
    p = np.array([[r[f"price_{i}"] for i in range(n)] for r in rows], dtype=float)
    moved = np.abs(np.diff(p[SETTLE_DAY:], axis=0)) > 1e-12 if len(p) > SETTLE_DAY + 1 else np.zeros((0, n))
    early = p[:SETTLE_DAY]
    return {
        "price_drift_usd": float(np.mean(p[-1] - p[0])),
        "price_moved_usd": float(np.mean(np.abs(p[-1] - p[0]))),
        "share_days_price_changed": float(moved.mean()) if moved.size else math.nan,
        "share_cliff_days_early": float(np.mean(early >= GRID_SELL_PRICE - 1e-9)),
    }


def _ci(values: list[float], name: str) -> dict[str, Any]:
    """Mean over seeds with its 95% bootstrap CI (rliable, seeds resampled: ``seed_estimate``)."""
    e = seed_estimate(values, name)
    return {"mean": e.mean, "ci": list(e.mean_ci), "n": e.n_seeds}


def _vs(summ: dict, ref: dict) -> tuple[float, float]:
    """(buyers, sellers) relative to ``ref``: Table 5.1's ratios."""
    return ((summ["buyers_pt_value_mean"] - ref["buyers_pt_value_mean"]) / abs(ref["buyers_pt_value_mean"]),
            summ["sellers_revenue_mean"] / ref["sellers_revenue_mean"] - 1.0)


def run(out: Path, seeds: int, days: int, n: int, configs: list[str], sweep: str = "pqr") -> dict[str, Any]:
    t0 = time.perf_counter()
    algo = ALGOS[sweep]
    base: dict[str, dict[int, dict]] = {"rule": {}, "zhu": {}}
    for s in range(seeds):
        for mech in base:
            spec = RunSpec(mech, mechanism=mech, algo="constant", n_sellers=n, n_buyers=n, days=days, seed=s)
            base[mech][s] = summarise(mech, run_one(spec, progress=False)["runs"][mech])
    res: dict[str, Any] = {"sweep": sweep, "algo": algo, "seeds": list(range(seeds)), "days": days,
                           "size": f"{n}x{n}", "configs": {}}
    per_seed_all: dict[str, list[dict]] = {}
    for name in ["zhu"] + configs:
        rows_out = []
        for s in range(seeds):
            if name == "zhu":
                summ, stats = base["zhu"][s], {k: 0.0 for k in METRICS[3:]}
                stats["share_cliff_days_early"] = math.nan  # Zhu's prices are the reference prices
            else:
                cfg = CONFIGS[sweep][name]
                spec = RunSpec(name, algo=algo, n_sellers=n, n_buyers=n, days=days, seed=s,
                               agent_kwargs=dict(cfg.get("agent_kwargs", {})), env_extra=dict(cfg.get("env", {})))
                rows = run_one(spec, progress=False)["runs"][name]
                summ, stats = summarise(name, rows), price_stats(rows, n)
            b, sl = _vs(summ, base["rule"][s])
            bz = _vs(summ, base["zhu"][s])[0]
            rows_out.append({"seed": s, "buyers_vs_rule": b, "sellers_vs_rule": sl,
                             "paper_ordering": float(b > 0 and bz > 0 and sl > 0),
                             "price_start": summ["seller_price_start"], "price_end": summ["seller_price_end"], **stats})
        per_seed_all[name] = rows_out
        res["configs"][name] = {
            **{k: v for k, v in CONFIGS[sweep].get(name, {}).items()},
            **{k: _ci([r[k] for r in rows_out], f"{sweep} {name} {k}") for k in METRICS
               if not any(math.isnan(r[k]) for r in rows_out)},
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
    def f(c: dict, key: str, pct: bool = True) -> str:
        if key not in c:
            return "–"
        e, k = c[key], (100.0 if pct else 1.0)
        return f"{k * e['mean']:+.1f} [{k * e['ci'][0]:+.1f}, {k * e['ci'][1]:+.1f}]" if pct else \
            f"{e['mean']:+.4f} [{e['ci'][0]:+.4f}, {e['ci'][1]:+.4f}]"

    def setting(c: dict) -> str:
        return json.dumps({**c.get("agent_kwargs", {}), **c.get("env", {})})

    lines = [f"{res['sweep']} sweep ({res['algo']}), {res['size']}, {res['days']} days, seeds "
             f"{res['seeds'][0]}-{res['seeds'][-1]} ({res['seconds']} s). Means over seeds [95% bootstrap CI].", "",
             "| config | setting | buyers vs Rule % | sellers vs Rule % | seeds with the paper's ordering | "
             "mean price drift $/kWh | mean price moved $/kWh "
             f"| seller-days with a price change after day {SETTLE_DAY} | seller-days at the grid price, "
             f"days 0-{SETTLE_DAY - 1} |", "|---|---|---|---|---|---|---|---|---|"]
    n = len(res["seeds"])
    for name, c in res["configs"].items():
        k = int(round(c["paper_ordering"]["mean"] * n))
        lines.append(f"| {name} | {setting(c)} | {f(c, 'buyers_vs_rule')} | {f(c, 'sellers_vs_rule')} | {k}/{n} | "
                     f"{f(c, 'price_drift_usd', False)} | {f(c, 'price_moved_usd', False)} | "
                     f"{f(c, 'share_days_price_changed', False)} | {f(c, 'share_cliff_days_early', False)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--sweep", default="pqr", choices=sorted(CONFIGS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--n", type=int, default=15)
    p.add_argument("--configs", default=None, help="comma-separated config names (default: all of the sweep)")
    p.add_argument("--quick", action="store_true", help="2 seeds, 120 days, 5x5, two configs (a smoke run)")
    a = p.parse_args(argv)
    known = CONFIGS[a.sweep]
    configs = [c for c in (a.configs or ",".join(known)).split(",") if c]
    unknown = sorted(set(configs) - set(known))
    if unknown:
        p.error(f"--configs: unknown {unknown} for --sweep {a.sweep}; known: {sorted(known)}")
    if a.quick:
        a.seeds, a.days, a.n, configs = 2, 120, 5, QUICK[a.sweep]
    res = run(Path(a.out), a.seeds, a.days, a.n, configs, a.sweep)
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
