"""``make run``: PQR and ProDQN sellers learn their prices for a year on P2PTrading-v0 and
are compared with Rule and Zhu (dissertation 001, Section 5.3, Table 5.1).

Runs (same seed: same households, PV systems, buyers, losses, PT parameters):

* ``savings + PQR`` / ``savings + ProDQN``: every seller learns online for ``--days`` days
  (the paper's protocol: Table 5.1 is the learning year), the market cleared by our default
  mechanism; then a second pass over the year with the learned policies frozen and greedy
  (``... greedy``) shows what they learned.
* ``rule`` / ``zhu``: the comparison methods of Section 5.3.2 with the sellers' static
  reference prices; ``savings + constant``: our clearing with the same static prices.
* ``--debate-gmax G`` adds ``debate + PQR`` / ``debate + ProDQN`` (DEbATE with ``NP=20``,
  ``G_max=G``; the paper's 10 000 takes ~3 s per day at 15x15, so it is off by default:
  see ``prosumer_gym.eval.reproduce.p2p_trading`` for the paper's pairing).

Output in ``--out`` (written atomically): ``comparison.md`` / ``comparison.csv`` (one row per
run: buyers' PT value and sellers' revenue per day, mean ± std, ratios to Rule, next to
the paper's Table 5.1), ``daily.csv`` (one row per run and day, with every seller's
price), ``buyers_sellers.png`` (10-day moving averages, Figs. 5.9-5.10), ``prices.png``
(every seller's price, Figs. 5.11-5.12), ``tb/<run>/`` TensorBoard logs
(``tensorboard --logdir <out>/tb``) and ``runs/<run>/`` (config, checkpoints, agents).

    python -m prosumer_gym.eval.main_job --out runs/main
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.core.io import atomic_write_bytes, atomic_write_text

__all__ = ["RunSpec", "run_one", "summarise", "markdown_table", "PAPER_TABLE_5_1", "main"]

# Table 5.1 of the dissertation (15 sellers x 15 buyers, 365 days): per-day buyers' objective
# and sellers' reward, mean and standard deviation.
PAPER_TABLE_5_1 = {
    "DEbATE-PQR": {"buyers_mean": -83.182, "buyers_std": 34.738, "sellers_mean": 197.9, "sellers_std": 79.778},
    "DEbATE-DQN": {"buyers_mean": -97.818, "buyers_std": 37.800, "sellers_mean": 202.3, "sellers_std": 82.963},
    "Rule": {"buyers_mean": -128.599, "buyers_std": 60.288, "sellers_mean": 191.8, "sellers_std": 79.916},
    "Zhu": {"buyers_mean": -155.312, "buyers_std": 61.983, "sellers_mean": 215.8, "sellers_std": 90.198},
}

DAILY_KEYS = ("buyers_pt_value", "sellers_revenue_usd", "mean_price", "traded_kwh", "grid_import_kwh", "demand_kwh",
              "surplus_kwh", "epsilon", "loss")


@dataclass(frozen=True)
class RunSpec:
    """One year of the market: ``mechanism`` clears, ``algo`` prices (pqr, prodqn, constant,
    random). ``greedy_year``: after learning, replay the year with frozen greedy agents."""

    label: str
    mechanism: str = "savings"
    algo: str = "constant"
    n_sellers: int = 15
    n_buyers: int = 15
    days: int = 365
    seed: int = 0
    split: str = "train"
    mechanism_kwargs: dict = field(default_factory=dict)
    agent_kwargs: dict = field(default_factory=dict)
    greedy_year: bool = False
    env_extra: dict = field(default_factory=dict)  #: further P2PTrading-v0 keywords (e.g. initial_price_range)

    def env_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = dict(n_sellers=self.n_sellers, n_buyers=self.n_buyers, n_days=self.days,
                                  mechanism=self.mechanism, split=self.split)
        if self.mechanism_kwargs:
            kw["mechanism_kwargs"] = dict(self.mechanism_kwargs)
        kw.update(self.env_extra)
        return kw


def _agent_kwargs(algo: str, extra: dict) -> dict:
    """The paper's hyperparameters (the packaged YAML) plus ``extra``."""
    if algo not in ("pqr", "prodqn"):
        return {}
    from prosumer_gym.train.common import deep_update, load_hyperparams, resolve_env

    _, section, _ = load_hyperparams(resolve_env("P2PTrading-v0"), algo)
    return deep_update(section.get("agent_kwargs") or {}, extra)


def _rows(label: str, history: list[dict], n_sellers: int) -> list[dict]:
    out = []
    for r in history:
        row: dict[str, Any] = {"run": label, "day": int(r["t"])}
        for k in DAILY_KEYS:
            row[k] = r.get(k, math.nan)
        for i in range(n_sellers):
            row[f"price_{i}"] = r.get(f"price/seller_{i}", math.nan)
        out.append(row)
    return out


def run_one(spec: RunSpec, out: Path | None = None, progress: bool = True, torch_threads: int | None = 1) -> dict:
    """Run ``spec`` (and its greedy year); returns ``{label: rows}`` plus timing.

    With ``out``, TensorBoard logs go to ``out/tb/<label>`` and the run folder (config,
    checkpoints, agents) to ``out/runs/<label>``.
    """
    if torch_threads is not None and spec.algo == "prodqn":
        import torch

        torch.set_num_threads(torch_threads)  # a worker process of this script
    from prosumer_gym.train.population import PopulationConfig, PopulationTrainer

    t0 = time.perf_counter()
    cfg = PopulationConfig(env="P2PTrading-v0", algo=spec.algo, seed=spec.seed, env_kwargs=spec.env_kwargs(),
                           agent_kwargs=_agent_kwargs(spec.algo, spec.agent_kwargs), total_steps=spec.days)
    safe = spec.label.replace(" ", "_").replace("+", "").replace("__", "_")
    run_dir = out / "runs" / safe if out is not None else None
    if run_dir is not None and run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    tr = PopulationTrainer(cfg, run_dir, tensorboard=out is not None, progress=progress, desc=f"{spec.label:>24s}",
                           tb_dir=out / "tb" / safe if out is not None else None)
    res = tr.run()
    result = {"runs": {spec.label: _rows(spec.label, res.history, spec.n_sellers)}, "seconds": {}}
    result["seconds"][spec.label] = time.perf_counter() - t0
    if spec.greedy_year and spec.algo in ("pqr", "prodqn"):
        t1 = time.perf_counter()
        label = f"{spec.label} greedy"
        gcfg = PopulationConfig(env="P2PTrading-v0", algo=spec.algo, seed=spec.seed, env_kwargs=spec.env_kwargs(),
                                agent_kwargs=cfg.agent_kwargs, total_steps=spec.days, learn=False, explore=False)
        gdir = out / "runs" / f"{safe}_greedy" if out is not None else None
        if gdir is not None and gdir.exists():
            import shutil

            shutil.rmtree(gdir)
        states = {a: ag.state_dict() for a, ag in res.agents.items()}
        gtr = PopulationTrainer(gcfg, gdir, tensorboard=out is not None, progress=progress, desc=f"{label:>24s}",
                                agents_state=states, tb_dir=out / "tb" / f"{safe}_greedy" if out is not None else None)
        gres = gtr.run()
        result["runs"][label] = _rows(label, gres.history, spec.n_sellers)
        result["seconds"][label] = time.perf_counter() - t1
    return result


def summarise(label: str, rows: Sequence[dict]) -> dict[str, Any]:
    col = {k: np.array([r[k] for r in rows], dtype=float) for k in ("buyers_pt_value", "sellers_revenue_usd",
                                                                     "traded_kwh", "demand_kwh")}
    prices = np.array([[v for k, v in r.items() if k.startswith("price_")] for r in rows], dtype=float)
    traded = col["traded_kwh"].sum()
    return {
        "run": label,
        "days": len(rows),
        "buyers_pt_value_mean": float(col["buyers_pt_value"].mean()),
        "buyers_pt_value_std": float(col["buyers_pt_value"].std()),
        "sellers_revenue_mean": float(col["sellers_revenue_usd"].mean()),
        "sellers_revenue_std": float(col["sellers_revenue_usd"].std()),
        "buyers_pt_value_total": float(col["buyers_pt_value"].sum()),
        "sellers_revenue_total": float(col["sellers_revenue_usd"].sum()),
        "mean_price": float(col["sellers_revenue_usd"].sum() / traded) if traded > 0 else math.nan,
        "seller_price_start": float(np.nanmean(prices[0])) if prices.size else math.nan,
        "seller_price_end": float(np.nanmean(prices[-1])) if prices.size else math.nan,
        "traded_kwh_per_day": float(col["traded_kwh"].mean()),
        "traded_share_of_demand": float(traded / max(col["demand_kwh"].sum(), 1e-12)),
    }


def add_ratios(summaries: list[dict], ref: str) -> None:
    """``buyers_vs_ref`` = (V - V_ref) / |V_ref| (positive = buyers better off),
    ``sellers_vs_ref`` = R / R_ref - 1 (Section 5.3.3's "+26% buyers' value, +7% profit")."""
    base = next((s for s in summaries if s["run"] == ref), None)
    for s in summaries:
        if base is None:
            s["buyers_vs_ref"] = s["sellers_vs_ref"] = math.nan
            continue
        vb, rb = base["buyers_pt_value_mean"], base["sellers_revenue_mean"]
        s["buyers_vs_ref"] = (s["buyers_pt_value_mean"] - vb) / abs(vb) if vb else math.nan
        s["sellers_vs_ref"] = s["sellers_revenue_mean"] / rb - 1 if rb else math.nan


def markdown_table(summaries: Sequence[dict], ref: str = "rule") -> str:
    lines = [f"| run | buyers' PT value / day (mean ± std) | vs {ref} | sellers' revenue $ / day (mean ± std) | vs {ref} "
             f"| mean price $/kWh | seller price start → end | traded kWh / day |", "|" + "---|" * 8]
    for s in summaries:
        lines.append(
            f"| {s['run']} | {s['buyers_pt_value_mean']:.3f} ± {s['buyers_pt_value_std']:.3f} | "
            f"{100 * s['buyers_vs_ref']:+.1f}% | {s['sellers_revenue_mean']:.3f} ± {s['sellers_revenue_std']:.3f} | "
            f"{100 * s['sellers_vs_ref']:+.1f}% | {s['mean_price']:.4f} | "
            f"{s['seller_price_start']:.4f} → {s['seller_price_end']:.4f} | {s['traded_kwh_per_day']:.1f} |")
    return "\n".join(lines)


def paper_table() -> str:
    rule = PAPER_TABLE_5_1["Rule"]
    lines = ["| paper (Table 5.1) | buyers' objective / day (mean ± std) | vs Rule | sellers' reward / day (mean ± std) "
             "| vs Rule |", "|" + "---|" * 5]
    for name, v in PAPER_TABLE_5_1.items():
        b = (v["buyers_mean"] - rule["buyers_mean"]) / abs(rule["buyers_mean"])
        s = v["sellers_mean"] / rule["sellers_mean"] - 1
        lines.append(f"| {name} | {v['buyers_mean']:.3f} ± {v['buyers_std']:.3f} | {100 * b:+.1f}% | "
                     f"{v['sellers_mean']:.1f} ± {v['sellers_std']:.3f} | {100 * s:+.1f}% |")
    return "\n".join(lines)


def _png(fig) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_buyers_sellers(runs: dict[str, list[dict]], path: Path, k: int = 10, title: str = "") -> None:
    """Figs. 5.9-5.10: buyers' PT value and sellers' revenue per day (``k``-day moving averages);
    every run has its own colour, linestyle and marker so runs that coincide stay visible."""
    plt = _mpl()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    styles = ["-", "--", "-.", ":"]
    markers = ["o", "s", "^", "v", "D", "x", "+", "*"]
    for n, (label, rows) in enumerate(runs.items()):
        for ax, key in zip(axes, ("buyers_pt_value", "sellers_revenue_usd")):
            y = np.array([r[key] for r in rows], dtype=float)
            if len(y) >= k:
                y = np.convolve(y, np.ones(k) / k, mode="valid")
            ax.plot(np.arange(len(y)), y, label=label, lw=1.2, color=f"C{n % 10}", ls=styles[n % len(styles)],
                    marker=markers[n % len(markers)], markevery=max(1, len(y) // 12) + 3 * n, ms=4)
    axes[0].set_title(f"buyers' total PT value per day ({k}-day MA) (Fig. 5.9)", fontsize=10)
    axes[1].set_title(f"sellers' revenue per day ({k}-day MA) (Fig. 5.10)", fontsize=10)
    axes[0].set_ylabel("buyers' PT value per day (prospect-theory value of savings, higher is better)", fontsize=8)
    axes[1].set_ylabel("sellers' revenue per day ($)", fontsize=8)
    for ax in axes:
        ax.set_xlabel(f"day (end of the {k}-day window)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    if title:
        fig.suptitle(title + " (runs that coincide share a line: see the markers)", fontsize=9)
    fig.tight_layout()
    atomic_write_bytes(path, _png(fig))


def plot_prices(runs: dict[str, list[dict]], path: Path, title: str = "") -> None:
    plt = _mpl()
    labels = list(runs)
    fig, axes = plt.subplots(1, len(labels), figsize=(6 * len(labels), 4.2), squeeze=False)
    for ax, label in zip(axes[0], labels):
        rows = runs[label]
        cols = sorted((k for k in rows[0] if k.startswith("price_")), key=lambda c: int(c.split("_")[1]))
        P = np.array([[r[c] for c in cols] for r in rows], dtype=float)
        for i in range(P.shape[1]):
            ax.plot(P[:, i], lw=0.9, label=f"seller {i}" if P.shape[1] <= 8 else None)
        ax.plot(P.mean(axis=1), color="k", lw=2, label="mean")
        ax.set_title(f"{label}: sellers' prices")
        ax.set_xlabel("day")
        ax.set_ylabel("$/kWh")
        ax.set_ylim(0.059, 0.121)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write_bytes(path, _png(fig))


def run_all(specs: Sequence[RunSpec], out: Path | None, workers: int, progress: bool) -> tuple[dict, dict]:
    """Run ``specs`` (in ``workers`` processes); returns ``(runs, seconds)`` in spec order."""
    results: list[dict] = []
    order = sorted(range(len(specs)), key=lambda i: {"prodqn": 0, "pqr": 1}.get(specs[i].algo, 2)
                   + (0 if specs[i].mechanism == "debate" else 3))
    if workers > 1 and len(specs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futs = {i: pool.submit(run_one, specs[i], out, progress) for i in order}
            results = [futs[i].result() for i in range(len(specs))]
    else:
        results = [run_one(s, out, progress) for s in specs]
    runs: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {}
    for r in results:
        runs.update(r["runs"])
        seconds.update(r["seconds"])
    return runs, seconds


def write_outputs(out: Path, runs: dict[str, list[dict]], summaries: list[dict], header: str, ref: str) -> str:
    from prosumer_gym.train.common import csv_text

    table = markdown_table(summaries, ref)
    text = (f"{header}\n\n{table}\n\nThe paper's Table 5.1 (its data, DEbATE clearing; ratios computed here):\n\n"
            f"{paper_table()}\n")
    atomic_write_text(out / "comparison.md", text)
    atomic_write_text(out / "comparison.csv", csv_text(summaries))
    atomic_write_text(out / "daily.csv", csv_text([r for rows in runs.values() for r in rows]))
    return text


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/main", help="output folder")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--sellers", type=int, default=15)
    p.add_argument("--buyers", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train", choices=("train", "test", "all"))
    p.add_argument("--debate-gmax", type=int, default=0,
                   help="also run DEbATE-PQR/ProDQN with this many generations (0: skip; paper 10000)")
    p.add_argument("--debate-np", type=int, default=20)
    p.add_argument("--no-greedy-year", action="store_true", help="skip the frozen-greedy second pass")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for name in ("days", "sellers", "buyers", "workers", "debate_np"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.seed < 0 or args.debate_gmax < 0:
        p.error("--seed and --debate-gmax must be >= 0")
    out = Path(args.out)
    t0 = time.perf_counter()
    common = dict(n_sellers=args.sellers, n_buyers=args.buyers, days=args.days, seed=args.seed, split=args.split)
    greedy = not args.no_greedy_year
    specs = [
        RunSpec("savings + PQR", "savings", "pqr", greedy_year=greedy, **common),
        RunSpec("savings + ProDQN", "savings", "prodqn", greedy_year=greedy, **common),
        RunSpec("savings + constant", "savings", "constant", **common),
        RunSpec("rule", "rule", "constant", **common),
        RunSpec("zhu", "zhu", "constant", **common),
    ]
    if args.debate_gmax:
        mk = {"NP": args.debate_np, "G_max": args.debate_gmax}
        specs[:0] = [RunSpec("debate + PQR", "debate", "pqr", mechanism_kwargs=mk, **common),
                     RunSpec("debate + ProDQN", "debate", "prodqn", mechanism_kwargs=mk, **common)]
    if not args.no_progress:  # the numba compile is its own step, not a bar's first (bogus-ETA) step
        from prosumer_gym.eval.leaderboard.runner import warm_clearing_kernel

        warm_clearing_kernel()
    runs, seconds = run_all(specs, out, args.workers, not args.no_progress)
    summaries = [summarise(label, rows) for label, rows in runs.items()]
    add_ratios(summaries, "rule")
    for s in summaries:
        s["seconds"] = seconds.get(s["run"], math.nan)
    header = (f"P2PTrading-v0, {args.sellers} sellers x {args.buyers} buyers, {args.days} days, seed {args.seed}, "
              f"split {args.split}. Learners (PQR, ProDQN: the paper's hyperparameters, Section 5.3.1) learn online "
              f"during the year (the paper's protocol); '... greedy' rows replay the year with the learned policies "
              f"frozen and greedy. rule / zhu / 'savings + constant': sellers hold their reference prices. "
              f"Ratios: buyers (V - V_rule)/|V_rule|, sellers R/R_rule - 1."
              + (f" DEbATE: NP={args.debate_np}, G_max={args.debate_gmax}." if args.debate_gmax else ""))
    text = write_outputs(out, runs, summaries, header, "rule")
    title = f"P2PTrading-v0 {args.sellers}x{args.buyers}, seed {args.seed}"
    plot_buyers_sellers(runs, out / "buyers_sellers.png", title=title)
    learners = {k: v for k, v in runs.items() if ("PQR" in k or "ProDQN" in k) and "greedy" not in k}
    plot_prices(learners, out / "prices.png", title=title)
    print(text)
    print(f"wrote comparison.md, comparison.csv, daily.csv, buyers_sellers.png, prices.png, tb/ and runs/ "
          f"in {time.perf_counter() - t0:.0f} s")
    print(f"output folder: {out.resolve()}   (tensorboard --logdir {out / 'tb'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
