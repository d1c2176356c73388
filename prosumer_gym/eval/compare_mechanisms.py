"""Compare P2PTrading-v0's clearing mechanisms over a simulated year (``make run``).

Every mechanism clears the same market (same seed: same households, PV systems, losses,
buyers' reference prices and PT parameters) with sellers holding their reference
(initial) prices all year. Output, written atomically into ``--out``:
``comparison.md`` / ``comparison.csv`` (one row per mechanism), ``daily.csv`` (one row
per mechanism and day) and ``comparison.png`` (10-day moving averages).

    python -m prosumer_gym.eval.compare_mechanisms --out runs/main --days 365
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from prosumer_gym.core.io import atomic_write_bytes, atomic_write_text  # noqa: F401 - re-exported
from prosumer_gym.envs.p2p_trading.market import DEFAULT_MECHANISM, MECHANISMS

__all__ = ["simulate", "summarise", "main"]

DAILY_FIELDS = ("mechanism", "day", "buyers_pt_value", "sellers_revenue_usd", "traded_kwh", "grid_import_kwh",
                "demand_kwh", "surplus_kwh", "mean_price", "clearing_seconds", "max_violation")


def simulate(
    mechanism: str,
    days: int = 365,
    n_sellers: int = 15,
    n_buyers: int = 15,
    seed: int = 0,
    split: str = "train",
    mechanism_kwargs: dict | None = None,
    progress: bool = True,
) -> list[dict]:
    """One year of the market under ``mechanism`` with sellers holding their prices."""
    from prosumer_gym.baselines.price_policies import ConstantPriceSeller
    from prosumer_gym.envs import p2p_trading_v0

    env = p2p_trading_v0.parallel_env(
        n_sellers=n_sellers, n_buyers=n_buyers, n_days=days, mechanism=mechanism,
        mechanism_kwargs=mechanism_kwargs or {}, split=split, report_timing=True,
    )
    obs, _ = env.reset(seed=seed)
    seller = ConstantPriceSeller(env.price_steps)
    rows: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=days, desc=f"{mechanism:>8s}", unit="day", leave=True, file=sys.stderr)
    while env.agents:
        actions = {a: seller.act(obs[a]) for a in env.agents}
        obs, _, _, _, infos = env.step(actions)
        m = infos[env.possible_agents[0]]["market"]
        rows.append({"mechanism": mechanism, **{k: m[k] for k in DAILY_FIELDS if k in m and k != "mechanism"}})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return rows


def summarise(rows: Sequence[dict]) -> dict:
    """Per-mechanism statistics of the daily rows."""
    col = {k: np.array([r[k] for r in rows], dtype=float) for k in DAILY_FIELDS[2:]}
    return {
        "mechanism": rows[0]["mechanism"],
        "days": len(rows),
        "buyers_pt_value_mean": col["buyers_pt_value"].mean(),
        "buyers_pt_value_std": col["buyers_pt_value"].std(),
        "sellers_revenue_mean": col["sellers_revenue_usd"].mean(),
        "sellers_revenue_std": col["sellers_revenue_usd"].std(),
        "traded_kwh_per_day": col["traded_kwh"].mean(),
        "grid_import_kwh_per_day": col["grid_import_kwh"].mean(),
        "traded_share_of_demand": col["traded_kwh"].sum() / max(col["demand_kwh"].sum(), 1e-12),
        "clearing_ms_mean": 1e3 * col["clearing_seconds"].mean(),
        "clearing_ms_max": 1e3 * col["clearing_seconds"].max(),
        "infeasible_days": int((col["max_violation"] > 1e-6).sum()),
    }


def markdown_table(summaries: Sequence[dict]) -> str:
    head = ("| mechanism | buyers' PT value / day (mean ± std) | sellers' revenue $ / day (mean ± std) | "
            "traded kWh / day | share of demand | clearing ms / day (mean, max) | infeasible days |")
    lines = [head, "|" + "---|" * 7]
    for s in summaries:
        lines.append(
            f"| {s['mechanism']} | {s['buyers_pt_value_mean']:.3f} ± {s['buyers_pt_value_std']:.3f} | "
            f"{s['sellers_revenue_mean']:.3f} ± {s['sellers_revenue_std']:.3f} | {s['traded_kwh_per_day']:.1f} | "
            f"{100 * s['traded_share_of_demand']:.1f}% | {s['clearing_ms_mean']:.3g}, {s['clearing_ms_max']:.3g} | "
            f"{s['infeasible_days']} |"
        )
    return "\n".join(lines)


def _csv(rows: Sequence[dict], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def plot(daily: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    k = 10
    for mech, rows in daily.items():
        for ax, key in zip(axes, ("buyers_pt_value", "sellers_revenue_usd")):
            y = np.array([r[key] for r in rows], dtype=float)
            if len(y) >= k:
                y = np.convolve(y, np.ones(k) / k, mode="valid")
            ax.plot(np.arange(len(y)), y, label=mech)
    axes[0].set_title("buyers' total PT value per day (10-day MA)")
    axes[1].set_title("sellers' revenue per day, $ (10-day MA)")
    for ax in axes:
        ax.set_xlabel("day")
        ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/main", help="output folder")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--sellers", type=int, default=15)
    p.add_argument("--buyers", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train", choices=("train", "test", "all"))
    p.add_argument("--mechanisms", default=",".join(MECHANISMS),
                   help=f"comma-separated subset of {', '.join(MECHANISMS)}")
    p.add_argument("--debate-gmax", type=int, default=10_000, help="DEbATE generations (paper: 10,000)")
    p.add_argument("--debate-np", type=int, default=20, help="DEbATE population (paper: 20)")
    p.add_argument("--milp-time-limit", type=float, default=2.0, help="HiGHS time limit per day, s")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    mechs = [m.strip() for m in args.mechanisms.split(",") if m.strip()]
    bad = [m for m in mechs if m not in MECHANISMS]
    if bad or not mechs:
        p.error(f"--mechanisms must be a comma-separated subset of {MECHANISMS}, got {args.mechanisms!r}")
    for name in ("days", "sellers", "buyers", "debate_gmax", "debate_np", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    kwargs = {"debate": {"NP": args.debate_np, "G_max": args.debate_gmax},
              "milp": {"time_limit": args.milp_time_limit}}
    out = Path(args.out)
    t0 = time.perf_counter()
    jobs = {m: dict(mechanism=m, days=args.days, n_sellers=args.sellers, n_buyers=args.buyers, seed=args.seed,
                    split=args.split, mechanism_kwargs=kwargs.get(m), progress=not args.no_progress) for m in mechs}
    daily: dict[str, list[dict]] = {}
    if args.workers > 1 and len(mechs) > 1:
        # slowest first, so the pool stays busy
        order = sorted(mechs, key=lambda m: {"milp": 0, "debate": 1}.get(m, 2))
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futs = {m: pool.submit(simulate, **jobs[m]) for m in order}
            for m in mechs:
                daily[m] = futs[m].result()
    else:
        for m in mechs:
            daily[m] = simulate(**jobs[m])
    summaries = [summarise(daily[m]) for m in mechs]
    table = markdown_table(summaries)
    header = (f"P2PTrading-v0, {args.sellers} sellers x {args.buyers} buyers, {args.days} days, seed {args.seed}, "
              f"split {args.split}; sellers hold their reference prices; default mechanism: {DEFAULT_MECHANISM}; "
              f"DEbATE NP={args.debate_np}, G_max={args.debate_gmax}; MILP time limit {args.milp_time_limit:g} s/day.")
    atomic_write_text(out / "comparison.md", header + "\n\n" + table + "\n")
    atomic_write_text(out / "comparison.csv", _csv(summaries, list(summaries[0])))
    atomic_write_text(out / "daily.csv", _csv([r for m in mechs for r in daily[m]], DAILY_FIELDS))
    plot(daily, out / "comparison.png")
    print(header)
    print()
    print(table)
    print(f"\nwrote {out / 'comparison.md'}, comparison.csv, daily.csv, comparison.png "
          f"in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
