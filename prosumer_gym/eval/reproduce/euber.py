"""Reproduce dissertation 001, chapter 6 (Section 6.4.2) on EUber-v0.

    python -m prosumer_gym.eval.reproduce.euber --out runs/euber [--seed 0] [--quick]

Approaches (platform recommender + winner selection): ``PK-OPT``, ``CARS-OPT``, ``PK-BMW``,
``CARS-BMW`` (POTR lists, Eq. 6.1) and ``BG`` (perfect-knowledge top-K lists + task-centric
greedy). Each runs the Gymnasium view with the same seed (same workers, alphas, task draws);
trajectories then diverge as in the paper (different winners move differently).

Writes, each file atomically (temporary file + ``os.replace``), into ``--out``:

``day.png`` (Figs. 6.5-6.7)
    per-slot objective (total winning bids, $) and matches; cumulative cost and tasks;
    cumulative V2G energy delivered vs the requirement E.
``price_scaling.png`` (Figs. 6.8-6.9)
    average final price per task (second-price payments / tasks served) vs task volume
    (32/64/100 % of both task types) and vs V2G share (32/64/100 % of the V2G tasks).
``mae.png`` (Figs. 6.10-6.11)
    CARS's preference MAE over slots and its cumulative reward (bids received).
``k_sensitivity.png`` (Fig. 6.12)
    objective per task over the run vs K.
``day_literal.png``
    experiment 1 again under the paper's literal rules (:data:`LITERAL`).
``results.json``
    every number plotted, the paper's reference values and the sizes used.

Settings: ``ours`` (the env's defaults) and ``literal`` (:data:`LITERAL`: charging only below
``r_min``, Eqs. 6.1b-c hard as printed with the soft lists on infeasible slots, Alg. 8 without
our guard); ``--settings`` picks which run experiment 1 (default both). With ``literal``,
experiment 1 also runs with each literal switch alone (``day_switches`` in ``results.json``;
not with ``--quick``). Experiments 2-4 use ``ours`` only.

Sizes: experiment 1 is the paper's (one day, 96 slots, 100 workers, 25 ride/swap + 25 V2G
tasks per slot). To finish in minutes on 2 cores, experiments 2 and 4 run 24 slots (6 h from
midnight) per point, and experiment 3 runs 500 slots of CARS-BMW and 250 of CARS-OPT.
``--quick`` shrinks everything (used by a smoke test).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.agents.euber import CARSRecommender, PKRecommender
from prosumer_gym.baselines.euber import bg_env_kwargs
from prosumer_gym.envs.euber.gym import EUberGymEnv

__all__ = ["APPROACHES", "SETTINGS", "LITERAL", "run_approach", "main"]

APPROACHES = ("PK-OPT", "CARS-OPT", "PK-BMW", "CARS-BMW", "BG")
#: the paper's literal rules where EUber-v0 deviates (docs/euber.md, "Choices and deviations"):
#: charging only below r_min (item 7), hard Eqs. 6.1b-c (item 2), Alg. 8 without our guard (item 3)
LITERAL: dict[str, Any] = {"charge_margin_km": 0.0, "potr_constraints": "hard", "bmw_guard": False}
#: experiment-1 settings: our defaults and the literal rules
SETTINGS: dict[str, dict[str, Any]] = {"ours": {}, "literal": LITERAL}
PAPER = {
    "fig_6_7": "proposed approaches serve > 850 more tasks than BG in 24 h; BG mostly violates the V2G requirement",
    "fig_6_6": "cumulative cost: PK-OPT < CARS-OPT < PK-BMW < CARS-BMW (BG lower but infeasible)",
    "fig_6_8": "price per task rises with task volume; BMW up to ~$2 above OPT at 100 %",
    "fig_6_10": {"mae_start": 0.28, "mae_250": "< 0.05", "mae_500": 0.03},
    "fig_6_12": "objective per task decreases with K, more for BMW",
}


def _env_kwargs(name: str) -> dict[str, Any]:
    if name == "BG":
        return bg_env_kwargs()
    return {"mechanism": "opt" if name.endswith("OPT") else "bmw"}


def run_approach(name: str, seed: int = 0, **config: Any) -> dict[str, Any]:
    """One episode of ``name``; per-slot records (and CARS's MAE per slot)."""
    if name not in APPROACHES:
        raise ValueError(f"name must be one of {APPROACHES}, got {name!r}")
    env = EUberGymEnv(**_env_kwargs(name), **config)
    obs, _ = env.reset(seed=seed)
    alpha = env.market.alpha
    agent = CARSRecommender(env.config.n_workers) if name.startswith("CARS") else PKRecommender(alpha)
    rec: dict[str, list] = {k: [] for k in ("cost", "served", "v2g", "E", "feasible", "payments", "bids", "mae",
                                            "n_tasks", "charging", "potr_fallback")}
    if isinstance(agent, CARSRecommender):
        rec["mae"].append(agent.mae(alpha))  # mae[k] = MAE after k slots (k = 0: the prior)
    done = False
    t0 = time.perf_counter()
    while not done:
        obs, r, _, done, info = env.step(agent.act(obs))
        agent.observe(info)
        rec["cost"].append(info["cost_usd"])
        rec["served"].append(info["tasks_served"])
        rec["v2g"].append(info["v2g_delivered_kwh"])
        rec["E"].append(info["E_kwh"])
        rec["feasible"].append(bool(info["feasible"]))
        rec["payments"].append(info["payments_usd"])
        rec["bids"].append(info["n_bids"])
        rec["n_tasks"].append(info["n_tasks"])
        rec["charging"].append(int(env.market.charging.sum()))  # workers charging after the slot
        if "potr_fallback" in info:
            rec["potr_fallback"].append(bool(info["potr_fallback"]))
        if isinstance(agent, CARSRecommender):
            rec["mae"].append(agent.mae(alpha))
    rec["seconds"] = time.perf_counter() - t0
    tot = env.market.totals
    rec["totals"] = dict(tot)
    rec["price_per_task"] = tot["payments_usd"] / max(tot["tasks_served"], 1)
    rec["cost_per_task"] = tot["cost_usd"] / max(tot["tasks_served"], 1)
    if isinstance(agent, CARSRecommender):
        rec["mae_start"] = float(np.mean(np.abs(0.5 - alpha)))
    return rec


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _save_fig(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _atomic_bytes(path, buf.getvalue())


def _fig():
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure

    return Figure


def experiment_day(seed: int, sizes: dict, setting: str = "ours") -> dict:
    """Experiment 1 for every approach under ``setting`` (:data:`SETTINGS`)."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {tuple(SETTINGS)}, got {setting!r}")
    return {name: run_approach(name, seed, **sizes, **SETTINGS[setting]) for name in APPROACHES}


def experiment_switches(seed: int, sizes: dict) -> dict:
    """Experiment 1 with each literal switch of :data:`LITERAL` alone (summaries per approach).
    BMW's guard only acts in the BMW approaches and hard POTR not in BG (top-K lists), so those
    runs equal ``ours`` and are skipped."""
    out: dict[str, dict] = {}
    for key, value in LITERAL.items():
        names = [n for n in APPROACHES if not (key == "bmw_guard" and not n.endswith("BMW"))
                 and not (key == "potr_constraints" and n == "BG")]
        runs = {n: run_approach(n, seed, **sizes, **{key: value}) for n in names}
        out[f"{key}={value!r}"] = {n: _summary_one(r) for n, r in runs.items()}
    return out


def plot_day(day: dict, out: Path, filename: str = "day.png") -> None:
    Figure = _fig()
    fig = Figure(figsize=(13, 7))
    axs = fig.subplots(2, 3)
    for name, r in day.items():
        t = np.arange(1, len(r["cost"]) + 1)
        axs[0, 0].plot(t, r["cost"], label=name, lw=1)
        axs[0, 1].plot(t, r["served"], label=name, lw=1)
        axs[0, 2].plot(t, np.cumsum(r["v2g"]), label=name, lw=1)
        axs[1, 0].plot(t, np.cumsum(r["cost"]), label=name)
        axs[1, 1].plot(t, np.cumsum(r["served"]), label=name)
        axs[1, 2].bar(name, sum(r["feasible"]))
    first = next(iter(day.values()))
    axs[0, 2].plot(np.arange(1, len(first["E"]) + 1), np.cumsum(first["E"]), "k--", label="E")
    titles = ["objective per slot ($)", "matches per slot", "cumulative V2G kWh vs E", "cumulative cost ($)",
              "cumulative tasks", "feasible slots (Eq. 6.3)"]
    for ax, ti in zip(axs.ravel(), titles):
        ax.set_title(ti, fontsize=9)
    axs[0, 0].legend(fontsize=7)
    axs[1, 2].tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    _save_fig(fig, out / filename)


def experiment_scaling(seed: int, sizes: dict, levels=(0.32, 0.64, 1.0)) -> dict:
    names = ("PK-OPT", "CARS-OPT", "PK-BMW", "CARS-BMW")
    out: dict[str, dict] = {"task_volume": {}, "v2g_share": {}, "levels": list(levels)}
    for name in names:
        out["task_volume"][name] = [run_approach(name, seed, task_scale=lv, **sizes)["price_per_task"] for lv in levels]
        out["v2g_share"][name] = [run_approach(name, seed, v2g_scale=lv, **sizes)["price_per_task"] for lv in levels]
    return out


def plot_scaling(sc: dict, out: Path) -> None:
    Figure = _fig()
    fig = Figure(figsize=(10, 4))
    axs = fig.subplots(1, 2)
    x = np.asarray(sc["levels"]) * 100
    for k, ax in zip(("task_volume", "v2g_share"), axs):
        for name, v in sc[k].items():
            ax.plot(x, v, "o-", label=name)
        ax.set_xlabel("tasks (%)" if k == "task_volume" else "V2G tasks (%)")
        ax.set_ylabel("avg. final price per task ($)")
    axs[0].legend(fontsize=8)
    fig.tight_layout()
    _save_fig(fig, out / "price_scaling.png")


def experiment_mae(seed: int, sizes: dict, slots_bmw: int, slots_opt: int) -> dict:
    res = {}
    for name, n in (("CARS-BMW", slots_bmw), ("CARS-OPT", slots_opt)):
        r = run_approach(name, seed, **{**sizes, "n_slots": n})
        mae = np.asarray(r["mae"])
        res[name] = {
            "mae": r["mae"],
            "cum_reward": np.cumsum(r["bids"]).tolist(),
            "mae_start": r["mae_start"],
            "mae_at": {str(k): float(mae[k]) for k in (0, 50, 100, 250, 500) if k < len(mae)},
            "first_slot_below_0.05": int(np.argmax(mae < 0.05)) if np.any(mae < 0.05) else None,
            "seconds": r["seconds"],
        }
    return res


def plot_mae(mae: dict, out: Path) -> None:
    Figure = _fig()
    fig = Figure(figsize=(10, 4))
    axs = fig.subplots(1, 2)
    for name, r in mae.items():
        axs[0].plot(np.arange(len(r["mae"])), r["mae"], label=name)
        axs[1].plot(np.arange(1, len(r["cum_reward"]) + 1), r["cum_reward"], label=name)
    axs[0].axhline(0.05, color="k", ls=":", lw=0.8)
    axs[0].set_xlabel("slot")
    axs[0].set_ylabel("MAE of alpha")
    axs[1].set_xlabel("slot")
    axs[1].set_ylabel("cumulative reward (bids)")
    axs[0].legend()
    fig.tight_layout()
    _save_fig(fig, out / "mae.png")


def experiment_k(seed: int, sizes: dict, ks=(3, 5, 7, 10)) -> dict:
    names = ("PK-OPT", "CARS-OPT", "PK-BMW", "CARS-BMW")
    res: dict[str, Any] = {"K": list(ks)}
    for name in names:
        rs = [run_approach(name, seed, K=k, **sizes) for k in ks]
        res[name] = {"cost_per_task": [r["cost_per_task"] for r in rs],
                     "tasks_served": [r["totals"]["tasks_served"] for r in rs]}
    return res


def plot_k(kres: dict, out: Path) -> None:
    Figure = _fig()
    fig = Figure(figsize=(10, 4))
    axs = fig.subplots(1, 2)
    for name, v in kres.items():
        if name == "K":
            continue
        axs[0].plot(kres["K"], v["cost_per_task"], "o-", label=name)
        axs[1].plot(kres["K"], v["tasks_served"], "o-", label=name)
    axs[0].set_xlabel("K")
    axs[0].set_ylabel("objective per task ($)")
    axs[1].set_xlabel("K")
    axs[1].set_ylabel("tasks served")
    axs[0].legend(fontsize=8)
    fig.tight_layout()
    _save_fig(fig, out / "k_sensitivity.png")


def _summary_one(r: dict) -> dict:
    """Totals of one run of :func:`run_approach`."""
    out = {
        "total_cost_usd": round(float(np.sum(r["cost"])), 2),
        "tasks_served": int(np.sum(r["served"])),
        "v2g_delivered_kwh": round(float(np.sum(r["v2g"])), 2),
        "E_total_kwh": round(float(np.sum(r["E"])), 2),
        "feasible_slots": int(np.sum(r["feasible"])),
        "price_per_task_usd": round(r["price_per_task"], 3),
        "cost_per_task_usd": round(r["cost_per_task"], 3),
        "mean_workers_charging": round(float(np.mean(r["charging"])), 2),
        "seconds": round(r["seconds"], 2),
    }
    if r["potr_fallback"]:  # literal POTR: slots where Eqs. 6.1a-f were infeasible
        out["potr_infeasible_slots"] = int(np.sum(r["potr_fallback"]))
    return out


def _summary_day(day: dict) -> dict:
    out = {}
    for name, r in day.items():
        out[name] = _summary_one(r)
    best = max(v["tasks_served"] for k, v in out.items() if k != "BG")
    out["tasks_vs_BG"] = {k: out[k]["tasks_served"] - out["BG"]["tasks_served"] for k in APPROACHES if k != "BG"}
    out["best_proposed_tasks"] = best
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Reproduce dissertation 001 ch. 6 on EUber-v0.")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--settings", default="ours,literal",
                   help="experiment-1 settings, comma-separated from ours, literal (default both)")
    a = p.parse_args(argv)
    settings = [x.strip() for x in a.settings.split(",") if x.strip()]
    bad = [x for x in settings if x not in SETTINGS]
    if bad or not settings:
        p.error(f"--settings must be a comma-separated subset of {', '.join(SETTINGS)}, got {a.settings!r}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.quick:
        day_sizes = dict(n_workers=30, n_ride_tasks=8, n_v2g_tasks=6, n_slots=12)
        short = dict(n_workers=30, n_ride_tasks=8, n_v2g_tasks=6, n_slots=6)
        mae_bmw, mae_opt = 40, 20
        mae_sizes = dict(n_workers=30, n_ride_tasks=8, n_v2g_tasks=6)
        ks = (3, 5)
    else:
        day_sizes = dict(n_slots=96)
        short = dict(n_slots=24)
        mae_bmw, mae_opt = 500, 250
        mae_sizes = {}
        ks = (3, 5, 7, 10)
    t0 = time.perf_counter()
    results: dict[str, Any] = {"seed": a.seed, "quick": a.quick, "paper": PAPER,
                               "sizes": {"day": day_sizes, "scaling_and_K": short,
                                         "mae_slots": {"CARS-BMW": mae_bmw, "CARS-OPT": mae_opt}}}
    results["settings"] = {k: SETTINGS[k] for k in settings}
    for setting in settings:
        day = experiment_day(a.seed, day_sizes, setting)
        key = "day" if setting == "ours" else f"day_{setting}"
        plot_day(day, out, f"{key}.png")
        results[key] = _summary_day(day)
        results[f"{key}_per_slot"] = {k: {m: v[m] for m in ("cost", "served", "v2g", "E", "feasible", "charging")}
                                      for k, v in day.items()}
        print(f"{key}:", json.dumps(results[key], indent=1), flush=True)
    if "literal" in settings and not a.quick:  # each switch alone (skipped by --quick to stay fast)
        results["day_switches"] = experiment_switches(a.seed, day_sizes)
        print("day, one literal switch at a time:", json.dumps(results["day_switches"]), flush=True)
    sc = experiment_scaling(a.seed, short)
    plot_scaling(sc, out)
    results["price_scaling"] = sc
    print("price scaling:", json.dumps(sc), flush=True)
    mae = experiment_mae(a.seed, mae_sizes, mae_bmw, mae_opt)
    plot_mae(mae, out)
    results["mae"] = {k: {m: v[m] for m in ("mae_start", "mae_at", "first_slot_below_0.05", "seconds")}
                      for k, v in mae.items()}
    results["mae_curves"] = {k: v["mae"] for k, v in mae.items()}
    print("mae:", json.dumps(results["mae"]), flush=True)
    kres = experiment_k(a.seed, short, ks)
    plot_k(kres, out)
    results["k_sensitivity"] = kres
    print("K:", json.dumps(kres), flush=True)
    results["seconds_total"] = round(time.perf_counter() - t0, 1)
    _atomic_bytes(out / "results.json", (json.dumps(results, indent=1, default=float) + "\n").encode())
    print(f"wrote {out}/results.json and {3 + len(settings)} PNGs in {results['seconds_total']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
