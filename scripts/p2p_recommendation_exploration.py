"""Held-out choice of the exploration scale ``c`` of Eq. 4.4 (chapter 4, UPL and BPT-K), then
a report on separate seeds with bootstrap CIs.

    python scripts/p2p_recommendation_exploration.py --out runs/p2p_exploration [--size 16x30]
        [--days 365] [--grid 0,0.005,0.01,0.02,0.05,0.1,1] [--tune-seeds 100,101,102,103,104]
        [--report-seeds 0,1,...,9] [--phase both|tune|report] [--literal] [--quick]

1. **Tuning** (seeds ``--tune-seeds``, never reported as results): for every ``c`` of the
   grid, UPL (FIA initialisation) and BPT-K play ``--days`` days of P2PRecommendation-v0 at
   ``--size`` (K = 5, T = 1 kWh); the score is the expected energy as a share of OPT's (the
   perfect-knowledge MILP of Eq. 4.1 every day). ``c`` is chosen per policy and jointly
   (the highest mean over tuning seeds of the two policies' mean, one default serves both);
   ties go to the smaller ``c``.
2. **Report** (seeds ``--report-seeds``, disjoint from the tuning seeds, else ``ValueError``):
   OPT, Zhu_P, and UPL and BPT-K at the joint choice and at the agents' default
   (``DEFAULT_EXPLORATION = 0.01``); with ``--literal`` also at ``c = 1`` (Eq. 4.4 verbatim, which the
   tuning table always has on the tuning seeds). Efficiency in % of OPT
   with its mean and IQM over seeds and 95% percentile-bootstrap CIs (rliable, through
   ``prosumer_gym.eval.leaderboard.stats.interval_estimates``, seeds resampled), plus paired
   per-seed differences (the chosen ``c`` minus 0.01; UPL / BPT-K minus Zhu_P).

``--phase tune`` writes ``tuning.json`` only; ``--phase report`` reads the choice from
``--out/tuning.json`` (same size and days, else ``ValueError``) and reports; ``both`` (default)
does the two in one process. The report phase writes ``results.json`` and ``results.md``
(atomically, as every file). ``--quick`` is a smoke run (6x4, 10 days, grid 0, 0.01, 1, two
tuning and two reported seeds), not a result.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.agents.p2p_recommendation import DEFAULT_EXPLORATION
from prosumer_gym.core.io import atomic_write_text
from prosumer_gym.core.validation import check_choice, check_floats, check_int
from prosumer_gym.eval.leaderboard.stats import seed_estimate
from prosumer_gym.eval.reproduce import p2p_recommendation as rec

LEARNERS = ("upl", "bpt-k")
LITERAL_C = 1.0  # Eq. 4.4 verbatim


def ci(values: list[float], name: str) -> dict[str, Any]:
    """Mean and IQM over seeds with 95% bootstrap CIs (rliable; seeds resampled)."""
    e = seed_estimate(values, name)
    return {"mean": e.mean, "mean_ci": list(e.mean_ci), "iqm": e.iqm, "iqm_ci": list(e.iqm_ci), "n": e.n_seeds,
            "values": [float(v) for v in values]}


def efficiency(name: str, size: tuple[int, int], days: int, seed: int, opt: dict, c: float | None = None) -> float:
    """Policy ``name``'s expected energy over the period in % of OPT's (``opt``: its run)."""
    return 100.0 * rec._eff(rec.run(name, size[0], size[1], days, 0, seed, exploration=c), opt)


def tune(size: tuple[int, int], days: int, grid: list[float], seeds: list[int]) -> dict[str, Any]:
    """Efficiency of UPL and BPT-K for every ``c`` and tuning seed, and the choices."""
    eff: dict[str, dict[str, list[float]]] = {n: {str(c): [] for c in grid} for n in LEARNERS}
    for s in seeds:
        opt = rec.run("opt", size[0], size[1], days, 0, s)
        for c in grid:
            for n in LEARNERS:
                eff[n][str(c)].append(efficiency(n, size, days, s, opt, c))
            print(f"[tune] seed {s} c={c}: " + ", ".join(f"{n} {eff[n][str(c)][-1]:.2f}%" for n in LEARNERS),
                  flush=True)

    def best(score) -> float:  # grid is sorted ascending, so max() keeps the smaller c on ties
        return max(grid, key=lambda c: (round(score(c), 9), -c))

    mean = {n: {str(c): float(np.mean(eff[n][str(c)])) for c in grid} for n in LEARNERS}
    chosen = {n: best(lambda c, n=n: mean[n][str(c)]) for n in LEARNERS}
    chosen["joint"] = best(lambda c: float(np.mean([mean[n][str(c)] for n in LEARNERS])))
    return {"seeds": seeds, "efficiency_pct": eff, "mean_pct": mean, "chosen": chosen}


def report(size: tuple[int, int], days: int, seeds: list[int], c_star: float, literal: bool = False
           ) -> dict[str, Any]:
    """OPT / Zhu_P and the learners at ``c_star`` and 0.01 (and 1 with ``literal``) on the
    reported seeds."""
    cs = sorted({c_star, DEFAULT_EXPLORATION} | ({LITERAL_C} if literal else set()))
    cols = ["zhu_p"] + [f"{n}@c={c}" for n in LEARNERS for c in cs]
    per: dict[str, list[float]] = {k: [] for k in cols}
    for s in seeds:
        opt = rec.run("opt", size[0], size[1], days, 0, s)
        per["zhu_p"].append(efficiency("zhu_p", size, days, s, opt))
        for n in LEARNERS:
            for c in cs:
                per[f"{n}@c={c}"].append(efficiency(n, size, days, s, opt, c))
        print(f"[report] seed {s}: " + ", ".join(f"{k} {v[-1]:.2f}%" for k, v in per.items()), flush=True)
    stats = {k: ci(v, k) for k, v in per.items()}
    diffs: dict[str, dict[str, Any]] = {}
    for n in LEARNERS:
        a = np.asarray(per[f"{n}@c={c_star}"])
        if c_star != DEFAULT_EXPLORATION:
            dflt = np.asarray(per[f"{n}@c={DEFAULT_EXPLORATION}"])
            diffs[f"{n}: c={c_star} minus c={DEFAULT_EXPLORATION} (pp)"] = ci(list(a - dflt), f"{n}-dc")
        for c in sorted({c_star, DEFAULT_EXPLORATION}):
            diffs[f"{n}@c={c} minus zhu_p (pp)"] = ci(list(np.asarray(per[f"{n}@c={c}"]) - np.asarray(per["zhu_p"])),
                                                      f"{n}@{c}-zhu")
    return {"seeds": seeds, "c_values": cs, "efficiency_pct": stats, "paired_differences": diffs}


def _fmt(e: dict[str, Any]) -> str:
    lo, hi = e["mean_ci"]
    return f"{e['mean']:.2f} [{lo:.2f}, {hi:.2f}] (IQM {e['iqm']:.2f})"


def markdown(res: dict[str, Any]) -> str:
    t, r = res["tuning"], res["report"]
    lines = [f"Exploration scale of Eq. 4.4 at {res['size']}, {res['days']} days, K = 5 ({res['seconds']} s).", "",
             f"Tuning seeds {t['seeds']}: mean efficiency (% of OPT) per c", "",
             "| c | " + " | ".join(LEARNERS) + " |", "|---|" + "---:|" * len(LEARNERS)]
    for c in t["mean_pct"][LEARNERS[0]]:
        lines.append(f"| {c} | " + " | ".join(f"{t['mean_pct'][n][c]:.2f}" for n in LEARNERS) + " |")
    lines += ["", "Chosen: " + ", ".join(f"{k} c = {v}" for k, v in t["chosen"].items()), "",
              f"Reported seeds {r['seeds']}: efficiency % of OPT, mean [95% bootstrap CI] (IQM)", "",
              "| policy | efficiency |", "|---|---|"]
    lines += [f"| {k} | {_fmt(e)} |" for k, e in r["efficiency_pct"].items()]
    lines += ["", "| paired difference | mean [95% CI] |", "|---|---|"]
    lines += [f"| {k} | {_fmt(e)} |" for k, e in r["paired_differences"].items()]
    return "\n".join(lines) + "\n"


def _floats(s: str) -> list[float]:
    return [float(v) for v in s.split(",") if v]


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--size", default="16x30", help="P x C (default 16x30)")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--grid", default="0,0.005,0.01,0.02,0.05,0.1,1")
    p.add_argument("--tune-seeds", default="100,101,102,103,104")
    p.add_argument("--report-seeds", default=",".join(str(s) for s in range(10)))
    p.add_argument("--phase", default="both", help="both (default), tune (writes tuning.json) or report "
                                                   "(reads tuning.json)")
    p.add_argument("--literal", action="store_true", help="also report c = 1 (Eq. 4.4 verbatim)")
    p.add_argument("--quick", action="store_true", help="smoke run: 6x4, 10 days, grid 0,0.01,1, 2+2 seeds, "
                                                        "with --literal")
    a = p.parse_args(argv)
    check_choice("phase", a.phase, ("both", "tune", "report"))
    if a.quick:
        a.size, a.days, a.grid, a.tune_seeds, a.report_seeds = "6x4", 10, "0,0.01,1", "100,101", "0,1"
        a.literal = True
    parts = a.size.lower().split("x")
    if len(parts) != 2 or not all(v.strip().isdigit() for v in parts):
        raise ValueError(f"size must be 'PxC' with integers P, C >= 1, got {a.size!r}")
    size = (check_int("size P", int(parts[0]), 1), check_int("size C", int(parts[1]), 1))
    grid = sorted(check_floats("grid", _floats(a.grid), 0.0).tolist())
    tune_seeds, report_seeds = _ints(a.tune_seeds), _ints(a.report_seeds)
    if not tune_seeds or not report_seeds or set(tune_seeds) & set(report_seeds):
        raise ValueError(f"tune_seeds must be non-empty and disjoint from report_seeds (no tuning on a reported "
                         f"seed), got {tune_seeds} and {report_seeds}")
    check_int("days", a.days, 1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    key = {"size": f"{size[0]}x{size[1]}", "days": a.days, "K": 5, "quick": a.quick}
    t0 = time.perf_counter()
    if a.phase == "report":
        prev = json.loads((out / "tuning.json").read_text())
        if {k: prev.get(k) for k in key} != key:
            raise ValueError(f"tuning.json in --out must match size/days/quick {key}, got "
                             f"{ {k: prev.get(k) for k in key} }")
        t = prev["tuning"]
        if set(t["seeds"]) & set(report_seeds):
            raise ValueError(f"report_seeds must be disjoint from the tuning seeds {t['seeds']}, got {report_seeds}")
        tune_seconds = prev["seconds"]
    else:
        t = tune(size, a.days, grid, tune_seeds)
        tune_seconds = round(time.perf_counter() - t0, 1)
        atomic_write_text(out / "tuning.json", json.dumps({**key, "grid": grid, "tuning": t,
                                                           "seconds": tune_seconds}, indent=1) + "\n")
        if a.phase == "tune":
            return 0
        t0 = time.perf_counter()
    r = report(size, a.days, report_seeds, t["chosen"]["joint"], a.literal)
    res = {**key, "grid": sorted(float(c) for c in t["mean_pct"][LEARNERS[0]]), "tuning": t, "report": r,
           "seconds": round(tune_seconds + time.perf_counter() - t0, 1), "tune_seconds": tune_seconds}
    atomic_write_text(out / "results.json", json.dumps(res, indent=1) + "\n")
    atomic_write_text(out / "results.md", markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
