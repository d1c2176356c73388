"""Reproduce chapter 4's experimental scenarios 1-4 (Section 4.5.3) on P2PRecommendation-v0.

    python -m prosumer_gym.eval.reproduce.p2p_recommendation --out runs/p2p_recommendation [--full]
        [--seed 0] [--scenarios 1,2,3,4]
    python -m prosumer_gym.eval.reproduce.p2p_recommendation --out runs/p2p_paper_size --paper-size
        [--paper-seeds 0,1,2] [--days 365] [--start-day 0]

Writes ``scenario{1..4}.png`` and ``figures.json`` (every measured number) into ``--out``;
files are written to a temporary name and renamed (atomic). The default run uses a year
per point (as the paper) but reduced sizes (consumers 10, 30, 50; K/T sweeps at 16x10 and
16x50) so that it finishes in about 15-20 minutes on two busy cores; ``--full`` adds the
paper's larger sizes (up to 16x150 and 45x150), which takes hours because of the per-day
MILPs at 45 x 150. ``--days``/``--consumers`` shrink it further; ``--quick`` is a smoke run
in seconds (20 days, 5 consumers, a 30-day scenario 2, K in 1, 3, 5, T in 1, 3), not the
reported figures.

``--paper-size`` runs only the paper's largest point, Fig. 4.3's 45 producers x 150
consumers (K = 5, T = 1 kWh), for each of ``--paper-seeds`` over ``--days`` days from
``--start-day``: OPT, UPL, BPT-K and Zhu_P, with the mean over seeds and 95% bootstrap CIs
(rliable), into ``paper_size.json`` and ``paper_size.md`` (with ``--quick``: 3 x 10, at most
10 days).

Measures (all policies see the same market and the same Bernoulli realisations, since the
env draws ``P_ij(d)`` for every pair every day from its seed):

* efficiency = sum of the policy's expected exchanged energy (Eq. 4.1 objective with the
  true ``p``) / the same for OPT (perfect knowledge, exact MILP), over the period;
* satisfied demand = realised exchanged energy / demand;
* preference-learning error = mean ``|p_hat - p| / p`` (%) over allowed pairs (UPL);
* initialisation length (days until every allowed pair has been recommended once) and
  initialisation efficiency (energy exchanged during it / OPT's over the same days).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from prosumer_gym.agents.p2p_recommendation import make_agent
from prosumer_gym.baselines.p2p_recommendation import make_baseline
from prosumer_gym.envs import p2p_recommendation_v0

POLICIES = ("opt", "upl", "bpt-k", "zhu_p")


def run(name: str, P: int, C: int, days: int, start: int, seed: int, K: int | None = 5, T: float = 1.0,
        until_init: bool = False, track_error: bool = False, exploration: float | None = None) -> dict:
    """Play ``days`` days of a ``P x C`` market (community ``seed``) with policy ``name``;
    per-day arrays ``expected`` (Eq. 4.1 objective with the true ``p``), ``exchanged``,
    ``demand``, ``losses`` (kWh) and ``err`` (UPL's preference error, with ``track_error``).
    ``exploration`` is the learners' ``c`` of Eq. 4.4 (``None``: the agents' default)."""
    env = p2p_recommendation_v0.parallel_env(n_producers=P, n_consumers=C, n_days=days, start_day=start, K=K,
                                             consumer_agents=False, oracle=False)
    obs, _ = env.reset(seed=seed)
    if name in ("opt", "zhu_p", "random"):
        pol = make_baseline(name, env)
    else:
        kw: dict = {"T": T} if name == "bpt-k" else {}
        if exploration is not None:
            kw["exploration"] = exploration
        pol = make_agent(name, env, seed=seed, **kw)
    allowed = env.loss <= env.loss_max
    p = env.preference
    out = {k: [] for k in ("expected", "exchanged", "demand", "losses", "err", "supply")}
    while env.agents:
        supply = float(np.sum(obs["platform"]["capacity_kwh"]))
        x = pol.act(obs["platform"])
        if until_init and not getattr(pol, "in_init", False):
            break
        obs, _, _, _, info = env.step({"platform": x})
        i = info["platform"]
        out["expected"].append(i["expected_kwh"])
        out["exchanged"].append(i["exchanged_kwh"])
        out["demand"].append(i["demand_kwh"])
        out["losses"].append(i["losses_kwh"])
        out["supply"].append(supply)
        if track_error:
            out["err"].append(float(np.mean(np.abs(pol.p_hat - p)[allowed] / p[allowed]) * 100.0))
    res = {k: np.asarray(v) for k, v in out.items()}
    res["init_days"] = int(getattr(pol, "init_days", 0))
    res["init_done"] = not getattr(pol, "in_init", False)
    return res


def _eff(a: dict, opt: dict) -> float:
    n = min(len(a["expected"]), len(opt["expected"]))
    o = opt["expected"][:n].sum()
    return float(a["expected"][:n].sum() / o) if o > 0 else float("nan")


def _sat(a: dict) -> float:
    return float(a["exchanged"].sum() / a["demand"].sum())


def scenario1(args, fig) -> dict:
    out: dict = {"fixed": {}, "scaled": {}}
    for mode, sizes in (("fixed", [(16, c) for c in args.consumers]),
                        ("scaled", [(max(1, round(0.3 * c)), c) for c in args.consumers])):
        for P, C in sizes:
            rs = {n: run(n, P, C, args.days, args.start_day, args.seed) for n in POLICIES}
            out[mode][f"{P}x{C}"] = {n: {"efficiency": _eff(rs[n], rs["opt"]), "satisfied_demand": _sat(rs[n])}
                                     for n in POLICIES}
            print(f"[s1] {mode} {P}x{C}: " + ", ".join(f"{n} eff {out[mode][f'{P}x{C}'][n]['efficiency']:.3f} "
                                                       f"sat {out[mode][f'{P}x{C}'][n]['satisfied_demand']:.3f}"
                                                       for n in POLICIES), flush=True)
    axs = fig.subplots(2, 2)
    for r, mode in enumerate(("fixed", "scaled")):
        keys = list(out[mode])
        xs = [int(k.split("x")[1]) for k in keys]
        for n in POLICIES:
            axs[r, 0].plot(xs, [100 * out[mode][k][n]["efficiency"] for k in keys], "o-", label=n)
            axs[r, 1].plot(xs, [100 * out[mode][k][n]["satisfied_demand"] for k in keys], "o-", label=n)
        axs[r, 0].set_ylabel(f"efficiency % ({'16 producers' if mode == 'fixed' else 'P = 0.3 C'})")
        axs[r, 1].set_ylabel("satisfied demand %")
        for c in (0, 1):
            axs[r, c].set_xlabel("consumers")
    axs[0, 0].legend()
    fig.suptitle(f"Scenario 1 (Figs. 4.2-4.3): {args.days} days from day {args.start_day}")
    return out


def scenario2(args, fig) -> dict:
    P, C = 16, 10
    rs = {n: run(n, P, C, args.year_days, 0, args.seed, track_error=(n == "upl")) for n in POLICIES}
    out: dict = {"size": f"{P}x{C}", "days": args.year_days}
    d = np.arange(1, args.year_days + 1)
    axs = fig.subplots(1, 3)
    for n in POLICIES:
        cum = np.cumsum(rs[n]["exchanged"]) / d
        axs[0].plot(d, cum, label=n)
        axs[1].plot(d, 100 * np.cumsum(rs[n]["losses"]) / np.maximum(np.cumsum(rs[n]["exchanged"]), 1e-9), label=n)
        out[n] = {"total_exchanged_kwh": float(rs[n]["exchanged"].sum()), "efficiency": _eff(rs[n], rs["opt"]),
                  "loss_pct": float(100 * rs[n]["losses"].sum() / max(rs[n]["exchanged"].sum(), 1e-9)),
                  "init_days": rs[n]["init_days"]}
    # days after which the 30-day running expected energy stays within 5% of OPT's
    for n in ("upl", "bpt-k"):
        ratio = np.convolve(rs[n]["expected"], np.ones(30), "valid") / np.maximum(
            np.convolve(rs["opt"]["expected"], np.ones(30), "valid"), 1e-9)
        ok = np.flatnonzero(ratio < 0.95)
        out[n]["days_to_within_5pct_of_opt_30d_window"] = int(ok[-1] + 30 + 1) if ok.size else 30
        out[n]["gain_vs_zhu_p_pct"] = float(100 * (rs[n]["exchanged"].sum() / rs["zhu_p"]["exchanged"].sum() - 1))
    axs[2].plot(d, rs["upl"]["err"])
    out["upl"]["learning_error_pct_end"] = float(rs["upl"]["err"][-1])
    out["upl"]["learning_error_pct_day30"] = float(rs["upl"]["err"][min(29, len(d) - 1)])
    axs[0].set_ylabel("cumulative exchanged / day (kWh)")
    axs[1].set_ylabel("losses % of exchanged")
    axs[2].set_ylabel("UPL mean |p_hat - p| / p (%)")
    for ax in axs:
        ax.set_xlabel("day")
    axs[0].legend()
    fig.suptitle(f"Scenario 2 (Figs. 4.4-4.6): {P}x{C}, {args.year_days} days")
    print(f"[s2] " + ", ".join(f"{n} eff {out[n]['efficiency']:.3f}" for n in POLICIES), flush=True)
    return out


def scenario3(args, fig) -> dict:
    cap = args.init_cap
    out: dict = {"vs_K": {}, "vs_size": {"fixed": {}, "scaled": {}}}
    inits = ("upl", "m-upl")  # FIA is UPL's default initialisation; M-UPL; original = |P||C|
    for K in args.K_values:
        Kv = None if K == 0 else K
        r = {n: run(n, 16, 10, cap, args.start_day, args.seed, K=Kv, until_init=True) for n in inits}
        out["vs_K"]["inf" if K == 0 else str(K)] = {"FIA": r["upl"]["init_days"], "M-UPL": r["m-upl"]["init_days"],
                                                   "UPL": 160, "completed": [r[n]["init_done"] for n in inits]}
    for mode in ("fixed", "scaled"):
        for c in args.consumers:
            P = 16 if mode == "fixed" else max(1, round(0.3 * c))
            r = {n: run(n, P, c, cap, args.start_day, args.seed, until_init=True) for n in inits}
            n_days = max(len(r[n]["expected"]) for n in inits)
            opt = run("opt", P, c, max(n_days, 1), args.start_day, args.seed)
            orig = run("upl-orig", P, c, P * c, args.start_day, args.seed)
            out["vs_size"][mode][f"{P}x{c}"] = {
                "FIA": r["upl"]["init_days"], "M-UPL": r["m-upl"]["init_days"], "UPL": P * c,
                "eff_FIA": _eff(r["upl"], opt), "eff_M-UPL": _eff(r["m-upl"], opt),
                "eff_UPL": _eff(orig, run("opt", P, c, P * c, args.start_day, args.seed)),
            }
            print(f"[s3] {mode} {P}x{c}: {out['vs_size'][mode][f'{P}x{c}']}", flush=True)
    ratios = [v["M-UPL"] / max(v["FIA"], 1) for v in out["vs_K"].values()]
    out["mean_ratio_MUPL_over_FIA_vs_K"] = float(np.mean(ratios))
    axs = fig.subplots(1, 3)
    ks = list(out["vs_K"])
    for n in ("FIA", "M-UPL", "UPL"):
        axs[0].plot(ks, [out["vs_K"][k][n] for k in ks], "o-", label=n)
    axs[0].set_yscale("log")
    axs[0].set_xlabel("K")
    axs[0].set_ylabel("initialisation days (16x10)")
    axs[0].legend()
    for mode, ls in (("fixed", "-"), ("scaled", "--")):
        keys = list(out["vs_size"][mode])
        xs = [int(k.split("x")[1]) for k in keys]
        for n in ("FIA", "M-UPL", "UPL"):
            axs[1].plot(xs, [out["vs_size"][mode][k][n] for k in keys], "o" + ls, label=f"{n} {mode}")
            axs[2].plot(xs, [100 * out["vs_size"][mode][k][f"eff_{n}"] for k in keys], "o" + ls, label=f"{n} {mode}")
    axs[1].set_yscale("log")
    axs[1].set_ylabel("initialisation days")
    axs[2].set_ylabel("efficiency during initialisation %")
    for ax in axs[1:]:
        ax.set_xlabel("consumers")
    axs[2].legend(fontsize=6)
    fig.suptitle("Scenario 3 (Figs. 4.7-4.9): initialisation length and efficiency")
    print(f"[s3] M-UPL / FIA days vs K: {out['mean_ratio_MUPL_over_FIA_vs_K']:.2f}", flush=True)
    return out


def scenario4(args, fig) -> dict:
    out: dict = {"vs_K": {}, "vs_T": {}}
    for K in args.K_values:
        Kv = None if K == 0 else K
        rs = {n: run(n, 16, 10, args.days, args.start_day, args.seed, K=Kv) for n in POLICIES}
        out["vs_K"]["inf" if K == 0 else str(K)] = {n: float(rs[n]["expected"].sum()) for n in POLICIES}
        print(f"[s4] K={K or 'inf'}: {out['vs_K']['inf' if K == 0 else str(K)]}", flush=True)
    opt = run("opt", 16, 50, args.days, args.start_day, args.seed)
    out["vs_T"]["OPT"] = float(opt["expected"].sum())
    for T in args.T_values:
        r = run("bpt-k", 16, 50, args.days, args.start_day, args.seed, T=T)
        out["vs_T"][str(T)] = float(r["expected"].sum())
    ks = list(out["vs_K"])
    k5 = out["vs_K"].get("5")
    if k5:
        out["at_K5_pct_of_opt"] = {n: 100 * k5[n] / k5["opt"] for n in POLICIES}
    axs = fig.subplots(1, 2)
    for n in POLICIES:
        axs[0].plot(ks, [out["vs_K"][k][n] for k in ks], "o-", label=n)
    axs[0].set_xlabel("K")
    axs[0].set_ylabel(f"expected energy over {args.days} days (kWh), 16x10")
    axs[0].legend()
    ts = [str(t) for t in args.T_values]
    axs[1].plot(args.T_values, [out["vs_T"][t] for t in ts], "o-", label="BPT-K")
    axs[1].axhline(out["vs_T"]["OPT"], color="k", ls="--", label="OPT")
    axs[1].set_xlabel("T (kWh)")
    axs[1].set_ylabel("expected energy (kWh), 16x50, K=5")
    axs[1].legend()
    fig.suptitle("Scenario 4 (Figs. 4.10-4.11): sensitivity to K and T")
    return out


PAPER_SIZE = (45, 150)  # Fig. 4.3's largest point (P = 0.3 C, from 3x10 to 45x150)


def _daily_eff(a: dict, opt: dict) -> float:
    """Section 4.5.3's reading: efficiency computed every day, then averaged (days with OPT > 0)."""
    n = min(len(a["expected"]), len(opt["expected"]))
    o = opt["expected"][:n]
    ok = o > 1e-9
    return float(np.mean(a["expected"][:n][ok] / o[ok])) if ok.any() else float("nan")


def _paper_seed_runs(job: tuple[int, int, int, int, int, float | None]) -> tuple[dict, dict]:
    """Every policy of :data:`POLICIES` on one seed of the paper-size point, with wall seconds
    (the learners with exploration scale ``c``, ``None``: their default)."""
    P, C, days, start_day, s, c = job
    rs, secs = {}, {}
    for n in POLICIES:
        t0 = time.perf_counter()
        rs[n] = run(n, P, C, days, start_day, s, exploration=c)  # run() gives c to the learners only
        secs[n] = round(time.perf_counter() - t0, 1)
    return rs, secs


def paper_size(args) -> dict:
    """Fig. 4.3 at the paper's size (45 producers x 150 consumers, K = 5, T = 1 kWh) for every
    seed of ``args.paper_seeds``: efficiency (sum of expected energy / OPT's, the daily ratio
    averaged, and the sum ratio over the days after both learners' FIA initialisation),
    satisfied demand, supply / demand, FIA days, wall time per policy; mean
    and IQM over seeds with 95% bootstrap CIs (rliable, ``seed_estimate``)."""
    from prosumer_gym.eval.leaderboard.stats import seed_estimate

    P, C = args.paper_dims
    workers = int(getattr(args, "workers", 1) or 1)
    c = getattr(args, "exploration", None)
    jobs = [(P, C, args.days, args.start_day, s, c) for s in args.paper_seeds]
    if workers > 1 and len(jobs) > 1:  # one process per seed: the seeds are independent
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            done = list(pool.map(_paper_seed_runs, jobs))
    else:
        done = [_paper_seed_runs(j) for j in jobs]
    per: dict = {}
    for s, (rs, secs) in zip(args.paper_seeds, done):
        per[str(s)] = {n: {"efficiency_pct": 100 * _eff(rs[n], rs["opt"]),
                           "daily_efficiency_pct": 100 * _daily_eff(rs[n], rs["opt"]),
                           "satisfied_demand_pct": 100 * _sat(rs[n]), "init_days": rs[n]["init_days"],
                           "init_done": rs[n]["init_done"], "seconds": secs[n]} for n in POLICIES}
        start = max(rs["upl"]["init_days"], rs["bpt-k"]["init_days"])  # both learners out of FIA
        post = {n: {k: v[start:] for k, v in rs[n].items() if isinstance(v, np.ndarray)} for n in POLICIES}
        for n in POLICIES:
            per[str(s)][n]["post_init_efficiency_pct"] = 100 * _eff(post[n], post["opt"]) if start < args.days \
                else float("nan")
        per[str(s)]["post_init_from_day"] = int(start)
        per[str(s)]["supply_over_demand_pct"] = float(100 * rs["opt"]["supply"].sum() / rs["opt"]["demand"].sum())
        for n in ("upl", "bpt-k"):
            per[str(s)][n]["gain_vs_zhu_p_pct"] = float(
                100 * (rs[n]["expected"].sum() / rs["zhu_p"]["expected"].sum() - 1))
        print(f"[paper-size] {P}x{C} seed {s}: " + ", ".join(
            f"{n} eff {per[str(s)][n]['efficiency_pct']:.2f}% ({secs[n]} s)" for n in POLICIES), flush=True)
    seeds = [str(s) for s in args.paper_seeds]
    summary: dict = {}
    keys = [(n, k) for n in POLICIES for k in ("efficiency_pct", "daily_efficiency_pct", "post_init_efficiency_pct",
                                               "satisfied_demand_pct")]
    keys += [(n, "gain_vs_zhu_p_pct") for n in ("upl", "bpt-k")] + [(None, "supply_over_demand_pct"),
                                                                     (None, "post_init_from_day")]
    for n, k in keys:
        vals = [per[s][n][k] if n else per[s][k] for s in seeds]
        e = seed_estimate(vals, f"paper-size {n} {k}")
        summary[f"{n} {k}" if n else k] = {"mean": e.mean, "mean_ci": list(e.mean_ci), "iqm": e.iqm,
                                           "iqm_ci": list(e.iqm_ci), "n": e.n_seeds, "values": vals}
    return {"size": f"{P}x{C}", "days": args.days, "start_day": args.start_day, "K": 5, "T": 1.0,
            "exploration": c,
            "seeds": args.paper_seeds, "per_seed": per, "summary": summary,
            "paper": {"upl": "close to 100% from ~50 consumers on (Fig. 4.3a)", "bpt-k": "close to 100%",
                      "zhu_p": "saturates around 75%", "satisfied_demand": "approaches 65% (supply ~60% of demand)"}}


def paper_size_markdown(res: dict) -> str:
    """The paper-size table: per policy mean [95% CI] over seeds."""
    sm = res["summary"]

    def f(key: str) -> str:
        e = sm[key]
        return f"{e['mean']:.1f} [{e['mean_ci'][0]:.1f}, {e['mean_ci'][1]:.1f}]"

    c = res.get("exploration")
    lines = [f"Fig. 4.3 at {res['size']}, {res['days']} days from day {res['start_day']}, K = 5, T = 1 kWh, "
             f"exploration c = {'default' if c is None else c}, "
             f"seeds {res['seeds']} (mean [95% bootstrap CI] over seeds, %)", "",
             "| policy | efficiency (sum / OPT's sum) | daily efficiency averaged | after FIA | satisfied demand "
             "| expected energy over Zhu_P |", "|---|---:|---:|---:|---:|---:|"]
    for n in POLICIES:
        g = f(f"{n} gain_vs_zhu_p_pct") if n in ("upl", "bpt-k") else ""
        lines.append(f"| {n} | {f(f'{n} efficiency_pct')} | {f(f'{n} daily_efficiency_pct')} | "
                     f"{f(f'{n} post_init_efficiency_pct')} | {f(f'{n} satisfied_demand_pct')} | {g} |")
    fia = ", ".join(f"{res['per_seed'][str(s)]['upl']['init_days']}" for s in res["seeds"])
    lines += ["", f"Supply / demand: {f('supply_over_demand_pct')}%. FIA initialisation days per seed: {fia}; "
              f"'after FIA' starts at day {f('post_init_from_day')} (mean over seeds)."]
    return "\n".join(lines) + "\n"


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scenarios", default="1,2,3,4")
    p.add_argument("--full", action="store_true", help="paper sizes and a year per point (hours)")
    p.add_argument("--days", type=int, default=365, help="days per point in scenarios 1 and 4 (default 365)")
    p.add_argument("--start-day", type=int, default=0)
    p.add_argument("--consumers", default=None, help="consumer counts (default 10,30,50; full 10,30,...,150)")
    p.add_argument("--quick", action="store_true",
                   help="smoke sizes in seconds: 20 days, 5 consumers, 30-day scenario 2, K 1,3,5, T 1,3")
    p.add_argument("--paper-size", action="store_true",
                   help="only Fig. 4.3's 45x150 point, for --paper-seeds and --days days (paper_size.json/.md)")
    p.add_argument("--paper-seeds", default="0,1,2", help="seeds of --paper-size (default 0,1,2)")
    p.add_argument("--exploration", type=float, default=None,
                   help="--paper-size: the learners' c of Eq. 4.4 (default: their default, 0.01)")
    p.add_argument("--workers", type=int, default=1,
                   help="--paper-size: processes, one seed each (default 1; the results do not depend on it)")
    a = p.parse_args(argv)
    if a.quick and a.full:
        p.error("--quick and --full exclude each other")
    if a.paper_size:
        return _paper_size_main(a)
    a.year_days = 30 if a.quick else 365
    if a.quick:
        a.days = min(a.days, 20)
    default_consumers = [5] if a.quick else ([10, 30, 50, 70, 90, 110, 130, 150] if a.full else [10, 30, 50])
    a.consumers = _ints(a.consumers) if a.consumers else default_consumers
    a.K_values = [1, 3, 5] if a.quick else [1, 2, 3, 4, 5, 6, 7, 8, 0]  # 0 = unlimited
    a.T_values = [1.0, 3.0] if a.quick else [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    a.init_cap = 200 if a.quick else (5000 if a.full else 1500)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict = {"seed": a.seed, "full": a.full, "quick": a.quick, "days": a.days, "start_day": a.start_day,
                     "consumers": a.consumers}
    fns = {"1": scenario1, "2": scenario2, "3": scenario3, "4": scenario4}
    for s in a.scenarios.split(","):
        t0 = time.perf_counter()
        fig = Figure(figsize=(13, 7 if s == "1" else 4))
        FigureCanvasAgg(fig)
        figures[f"scenario{s}"] = fns[s](a, fig)
        figures[f"scenario{s}"]["seconds"] = time.perf_counter() - t0
        fig.tight_layout()
        tmp = out / f".scenario{s}.tmp.png"
        fig.savefig(tmp, dpi=90)
        os.replace(tmp, out / f"scenario{s}.png")
    tmp = out / ".figures.tmp.json"
    tmp.write_text(json.dumps(figures, indent=2))
    os.replace(tmp, out / "figures.json")
    return figures


def _paper_size_main(a) -> dict:
    """``--paper-size``: run :func:`paper_size` and write ``paper_size.json``/``.md`` atomically."""
    from prosumer_gym.core.io import atomic_write_text
    from prosumer_gym.core.validation import check_float, check_int

    check_int("days", a.days, 1, 365)
    check_int("workers", a.workers, 1)
    if a.exploration is not None:
        check_float("exploration", a.exploration, 0.0)
    a.paper_seeds = _ints(a.paper_seeds)
    if not a.paper_seeds:
        raise ValueError(f"paper_seeds must name at least one seed, got {a.paper_seeds!r}")
    a.paper_dims = (3, 10) if a.quick else PAPER_SIZE
    if a.quick:
        a.days = min(a.days, 10)
    t0 = time.perf_counter()
    res = paper_size(a)
    res["quick"], res["seconds"] = a.quick, round(time.perf_counter() - t0, 1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "paper_size.json", json.dumps(res, indent=1) + "\n")
    atomic_write_text(out / "paper_size.md", paper_size_markdown(res))
    print(paper_size_markdown(res))
    return res


if __name__ == "__main__":
    main()
