"""Benchmark the P2PTrading-v0 clearing mechanisms side by side (dissertation 001, ch. 5).

Example (the table in README.md and docs/p2p_trading_clearing.md):

    python benchmarks/bench_p2p_clearing.py --real --days 300 --sizes 5,15,20,30 --debate-days 3 \
        --debate-gmax 10000 --np 20 --bound-time-limit 10 --seed 0 --out runs/bench/clearing_real.json

Per size and day the default clearing is timed, then a certified upper bound ``UB`` on the
true optimum (valid for zeta <= 1) is computed: by default (``--bound bnb``) by
``clearing.bound.certified_bound`` (sigmoidal-programming branch and bound, stopped when
within 1e-5 of the attainable gain or at ``--bound-time-limit`` s), or (``--bound milp``) by
the ``milp`` reference's HiGHS bound (24 breakpoints, 24 tangents, ``--bound-time-limit``). A
bound is used even when its search did not close (such days are counted as "bound not
proven"; there the loss is over-estimated). The day's **share of attainable gain lost** is
``(UB - value) / (UB - value of clearing nothing)``. ``--prices learned`` takes the days of a
learning run (PQR sellers learning their prices over a year) instead of random price moves. DEbATE (``--np``, ``--debate-gmax``) runs
side by side on the first ``--debate-days`` days. Printed per size: days, mean/max share of
gain lost, days above 0.1%, days with the bound not proven, ms/day, DEbATE s/day and the
speed ratio. ``--default-options`` passes options to the default (JSON); ``--mechanism`` measures
another mechanism in the default's place (e.g. ``--mechanism bnb --default-options
'{"node_limit": 20}'``: the branch and bound with a node budget). ``--real`` uses P2PTrading-v0's own days (else ``random_instance``, ``--band``
for prices over the whole band). The JSON is written atomically (tmp file + os.replace).
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
from prosumer_gym.envs.p2p_trading.clearing import DEFAULT_MECHANISM, MECHANISMS, make_clearer  # noqa: E402
from prosumer_gym.envs.p2p_trading.clearing.bound import certified_bound  # noqa: E402
from prosumer_gym.envs.p2p_trading.clearing.milp import gain_lost_share, no_trade_value  # noqa: E402
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


def learned_days(n: int, days: int, seed: int, algo: str = "pqr") -> list:
    """``days`` trading days, evenly spread over a year, of a *learning run*: ``algo`` sellers
    (the paper's PQR by default, its packaged hyperparameters) learning their prices online
    from the first day, against the default clearing, as in ``prosumer-gym-main``."""
    from prosumer_gym.eval.main_job import _agent_kwargs
    from prosumer_gym.train.population import PopulationConfig, PopulationTrainer

    seen: list = []

    class _Collect(PopulationTrainer):
        def _record(self, t, acts, rewards, infos):
            seen.append(self.env.unwrapped.last_market.instance)
            return super()._record(t, acts, rewards, infos)

    cfg = PopulationConfig(env="P2PTrading-v0", algo=algo, seed=seed, total_steps=365,
                           env_kwargs=dict(n_sellers=n, n_buyers=n, n_days=365), agent_kwargs=_agent_kwargs(algo, {}))
    _Collect(cfg, None, tensorboard=False, progress=False).run()
    every = max(1, 365 // days)
    return [inst for d, inst in enumerate(seen[:365]) if d % every == every // 2][:days]


def _milp_bound(inst, milp) -> tuple[float, bool, float, float]:
    """``(UB, proven, objective of the MILP's clearing, seconds)`` from the ``milp`` reference."""
    r = milp(inst, None)
    return float(r.stats["upper_bound"]), bool(r.stats["proven_optimal"]), r.objective, r.stats["solver_seconds"]


def _bnb_bound(inst, al, time_limit: float) -> tuple[float, bool, float, float]:
    """``(UB, proven, objective of the best clearing known, seconds)`` from the branch and bound,
    warm-started with the default's objective ``al``."""
    r = certified_bound(inst, al.objective, time_limit=time_limit)
    return r.upper_bound, r.proven, r.lower_bound, r.seconds


def _stored_bounds(args) -> dict[tuple[int, int], tuple[float, bool, float, float]]:
    """``{(n, day): (UB, proven, reference objective, bound seconds)}`` from ``--bounds-from``,
    after checking that it measured the same days."""
    old = json.loads(Path(args.bounds_from).read_text())
    for k in ("real", "band", "seed", "prices"):
        was = old["args"].get(k, "random" if k == "prices" else None)  # files from before --prices
        if was != getattr(args, k):
            raise SystemExit(f"--bounds-from {args.bounds_from}: it was run with {k}={was!r}, "
                             f"this run has {k}={getattr(args, k)!r}")
    if old["args"].get("days") != args.days:
        raise SystemExit(f"--bounds-from {args.bounds_from}: it has {old['args'].get('days')} days per size, "
                         f"this run asks for {args.days} (the days are spread over the year by their number)")
    out = {}
    for n, v in old["sizes"].items():
        for d, r in enumerate(v["days"]):
            if "upper_bound" in r:
                out[int(n), d] = (r["upper_bound"], r["bound_proven"], r["reference_objective"], r["bound_seconds"])
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--sizes", type=str, default="5,15,20", help="comma-separated n (n sellers x n buyers)")
    ap.add_argument("--debate-gmax", type=int, default=10_000)
    ap.add_argument("--debate-days", type=int, default=3, help="DEbATE on the first this many days only")
    ap.add_argument("--np", type=int, default=20, dest="NP")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bound", choices=("bnb", "milp"), default="bnb",
                    help="certified upper bound: branch and bound (bnb, default) or the MILP's HiGHS bound")
    ap.add_argument("--bound-time-limit", "--milp-time-limit", type=float, default=10.0, dest="bound_time_limit")
    ap.add_argument("--bound-max-size", "--milp-max-size", type=int, default=30, dest="bound_max_size",
                    help="no bound above this n")
    ap.add_argument("--band", action="store_true", help="seller prices U[0.06, 0.12] instead of U[0.09, 0.12]")
    ap.add_argument("--real", action="store_true",
                    help="days of the real-data market (P2PTrading-v0's own instances: CityLearn loads, pvlib PV) "
                         "spread over the year, seller prices random-walked as learning sellers move them")
    ap.add_argument("--prices", choices=("random", "learned"), default="random",
                    help="with --real: sellers move their prices at random (default) or learn them (PQR, a year "
                         "of online learning against the default clearing)")
    ap.add_argument("--bounds-from", type=str, default=None,
                    help="reuse the certified bounds of an earlier run's JSON (same --real/--band, --seed and "
                         "--days; a bound does not depend on the clearing measured), e.g. to compare default options")
    ap.add_argument("--mechanism", type=str, default=DEFAULT_MECHANISM,
                    help=f"the mechanism measured in the default's place (default {DEFAULT_MECHANISM!r}), e.g. "
                         "bnb with a node budget; --default-options are its options")
    ap.add_argument("--default-options", type=str, default="{}",
                    help='JSON options of the default mechanism, e.g. \'{"lp_rounds": 0}\' (the kernel without its LP phase)')
    ap.add_argument("--out", type=str, default="results.json")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kw = {"seller_price": (0.06, 0.12)} if args.band else {}
    if args.mechanism not in MECHANISMS:
        raise SystemExit(f"--mechanism must be one of {sorted(MECHANISMS)}, got {args.mechanism!r}")
    report = {"args": vars(args), "default": DEFAULT_MECHANISM, "mechanism": args.mechanism, "sizes": {}}
    reuse = _stored_bounds(args) if args.bounds_from else {}
    for n in sizes:
        dflt = make_clearer(args.mechanism, n, n, **json.loads(args.default_options))
        deb = make_clearer("debate", n, n, NP=args.NP, G_max=args.debate_gmax)
        ref = None
        if n <= args.bound_max_size:
            ref = (lambda inst: _milp_bound(inst, milp)) if args.bound == "milp" else \
                (lambda inst, al: _bnb_bound(inst, al, args.bound_time_limit))
            milp = make_clearer("milp", n, n, time_limit=args.bound_time_limit, n_breakpoints=24, n_tangents=24) \
                if args.bound == "milp" else None
        days_of = learned_days if args.prices == "learned" else real_days
        insts = days_of(n, args.days, args.seed) if args.real else [
            random_instance(np.random.default_rng([args.seed, n, d]), n, n, **kw) for d in range(args.days)]
        dflt(insts[0], np.random.default_rng(0))  # warm-up: numba's compiled kernel
        days = []
        for d, inst in enumerate(insts):
            t0 = time.perf_counter()
            al = dflt(inst, np.random.default_rng([args.seed, n, d, 1]))
            row = {"objective": al.objective, "seconds": time.perf_counter() - t0}
            if d < args.debate_days:  # DEbATE side by side on a subsample (it takes seconds per day)
                t0 = time.perf_counter()
                row["debate_objective"] = deb(inst, np.random.default_rng([args.seed, n, d, 2])).objective
                row["debate_seconds"] = time.perf_counter() - t0
            if (n, d) in reuse or ref is not None:
                if (n, d) in reuse:
                    ub, proven, ref_obj, ref_s = reuse[n, d]
                else:
                    ub, proven, ref_obj, ref_s = ref(inst) if args.bound == "milp" else ref(inst, al)
                ub = max(ub, ref_obj, al.objective)
                base = no_trade_value(inst)
                row.update(upper_bound=ub, bound_proven=proven, reference_objective=ref_obj, bound_seconds=ref_s,
                           no_trade_value=base, gain_lost_share=gain_lost_share(al.objective, ub, base),
                           reference_gain_lost_share=gain_lost_share(ref_obj, ub, base))
            days.append(row)
            print(f"n={n} day={d} {args.mechanism}={row['objective']:.4f} ({row['seconds'] * 1e3:.2f} ms)"
                  + (f" lost={row['gain_lost_share'] * 100:.4f}% bound={row['bound_seconds']:.2f}s"
                     f" proven={row['bound_proven']}" if "upper_bound" in row else ""), flush=True)
        ms = 1e3 * float(np.mean([r["seconds"] for r in days]))
        dsub = [r for r in days if "debate_seconds" in r]
        deb_s = float(np.mean([r["debate_seconds"] for r in dsub])) if dsub else float("nan")
        summary = {"days": len(days), "savings_ms_per_day": ms, "debate_days": len(dsub),
                   "debate_s_per_day": deb_s, "speed_ratio": deb_s / (ms / 1e3),
                   "days_savings_ge_debate": int(sum(r["objective"] >= r["debate_objective"] - 1e-9 * abs(
                       r["debate_objective"]) for r in dsub))}
        if all("upper_bound" in r for r in days):
            lost = np.array([r["gain_lost_share"] for r in days])
            summary.update(mean_gain_lost=float(np.mean(lost)), max_gain_lost=float(np.max(lost)),
                           days_above_0p1pct=int(np.sum(lost > 1e-3)),
                           days_bound_not_proven=int(sum(not r["bound_proven"] for r in days)),
                           bound=f"from {args.bounds_from}" if reuse else args.bound,
                           reference_mean_gain_lost=float(np.mean([r["reference_gain_lost_share"] for r in days])),
                           bound_s_per_day=float(np.mean([r["bound_seconds"] for r in days])))
        report["sizes"][str(n)] = {"summary": summary, "days": days}
        print(json.dumps({n: summary}, indent=1), flush=True)
    print("| market | days | mean gain lost | max gain lost | days > 0.1% | bound not proven | ms/day | "
          "DEbATE s/day (days) | ratio |")
    for n, v in report["sizes"].items():
        s = v["summary"]
        g = (f"{s['mean_gain_lost'] * 100:.3f}% | {s['max_gain_lost'] * 100:.3f}% | {s['days_above_0p1pct']} | "
             f"{s['days_bound_not_proven']}") if "mean_gain_lost" in s else "- | - | - | -"
        print(f"| {n}x{n} | {s['days']} | {g} | {s['savings_ms_per_day']:.2f} | {s['debate_s_per_day']:.2f} "
              f"({s['debate_days']}) | {s['speed_ratio']:.0f}x |")
    atomic_write_text(args.out, json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
