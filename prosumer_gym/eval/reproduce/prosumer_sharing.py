"""Reproduce Figs. 4-9 of paper ``000`` (Section VI) on ProsumerSharing-v0 and measure them.

    python -m prosumer_gym.eval.reproduce.prosumer_sharing --out runs/prosumer_sharing \\
        [--days 1000] [--seeds 20] [--seed 0] [--n-prosumers 99] [--quick]

1. Main run (one community, ``--seed``): the PettingZoo env with the paper's defaults, every
   prosumer an :class:`~prosumer_gym.agents.prosumer_sharing.Algorithm2Team` member acting
   through its own observation (Algorithm 2, Eq. 22), the platform's Algorithm 1 inside the
   env. Figures ``fig4.png`` ... ``fig9.png`` follow the paper's panels.
2. Statistics over ``--seeds`` communities for each scenario (``paper``, ``car_sharing``,
   ``community_storage``) and Algorithm 2 variant (``eq22`` = the paper, ``eq20`` = the
   consensus form), with the batched env: distance of the averages to the exact optimum of
   Problem III.2 after 200 days and at the end, ``|x_bar + y_bar - T_i|``, derivative
   consensus, tracking of C_x/C_y, convergence of Omega, stalled prosumers.
   ``fig_distance.png``: median distance to the optimum over time.
3. Where Eq. 22 settles: its fixed point (``x_i^2 = Omega g'_i``) against the optimum.

Everything is written atomically into ``--out``: the PNGs and ``measured.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.agents.prosumer_sharing import Algorithm2Team
from prosumer_gym.envs import prosumer_sharing_v0
from prosumer_gym.envs.prosumer_sharing.market import (
    RULES,
    SCENARIOS,
    algorithm2_fixed_point,
    default_omega0,
    default_tau,
    solve_optimum,
)
from prosumer_gym.envs.prosumer_sharing.vec import ProsumerSharingBatch

__all__ = ["main_run", "seed_statistics", "fixed_point_analysis", "main"]

CHECKPOINT = 200  # the paper's K = 200 (Figs. 4-7)


def _atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _rel(a: np.ndarray, b: np.ndarray, ax: np.ndarray, bx: np.ndarray) -> np.ndarray:
    """Per-prosumer relative distance of (a, b) to (ax, bx)."""
    return np.sqrt(((a - ax) ** 2 + (b - bx) ** 2) / (ax ** 2 + bx ** 2))


# ============================================================================ 1. main run
def main_run(days: int, seed: int, n: int) -> dict[str, Any]:
    """One community through the PettingZoo env with Algorithm 2 policies; full histories."""
    env = prosumer_sharing_v0.parallel_env(n_prosumers=n, n_days=days)
    obs, infos = env.reset(seed=seed)
    team = Algorithm2Team.from_infos(infos, seed=seed + 1)
    agents = list(env.agents)
    costs = env.community.costs
    opt = env.community.optimum
    xb = [np.ones(n)]
    yb = [np.ones(n)]
    gx0, gy0 = costs.grad(np.ones(n), np.ones(n))
    gx, gy = [gx0], [gy0]
    sums = [(float(n), float(n))]
    omega = [tuple(env.core.omega[0])]
    while env.agents:
        obs, _, _, _, infos = env.step(team.act(obs))
        xb.append(np.array([infos[a]["x_bar"] for a in agents]))
        yb.append(np.array([infos[a]["y_bar"] for a in agents]))
        gx.append(np.array([infos[a]["grad_x"] for a in agents]))
        gy.append(np.array([infos[a]["grad_y"] for a in agents]))
        com = infos[agents[0]]["community"]
        sums.append((com["sum_x"], com["sum_y"]))
        omega.append((com["omega_x"], com["omega_y"]))
    return {
        "costs": costs, "opt": opt, "contracts": env.community.contracts, "x_bar": np.array(xb), "y_bar": np.array(yb),
        "grad_x": np.array(gx), "grad_y": np.array(gy), "sums": np.array(sums), "omega": np.array(omega),
        "last_community": com,
    }


def summarise_main(run: dict[str, Any]) -> dict[str, Any]:
    xb, yb, opt, costs = run["x_bar"], run["y_bar"], run["opt"], run["costs"]
    days = xb.shape[0] - 1
    cx, cy = run["contracts"]
    stalled = (run["grad_x"][-1] <= 0) | (run["grad_y"][-1] <= 0)
    out: dict[str, Any] = {"days": days, "n_prosumers": int(xb.shape[1]), "n_stalled": int(stalled.sum()),
                           "stalled_prosumers": [int(i) for i in np.flatnonzero(stalled)],
                           "optimum": {"mu_x": opt.mu_x, "mu_y": opt.mu_y, "kkt_residual": opt.kkt_residual,
                                       "x_range": [float(opt.x.min()), float(opt.x.max())],
                                       "y_range": [float(opt.y.min()), float(opt.y.max())]}}
    for k in sorted({min(CHECKPOINT, days), days}):
        d = _rel(xb[k], yb[k], opt.x, opt.y)
        gap = np.abs(xb[k] + yb[k] - costs.target)
        rec: dict[str, Any] = {
            "rel_distance_median": float(np.median(d)), "rel_distance_p90": float(np.quantile(d, 0.9)),
            "rel_distance_median_not_stalled": float(np.median(d[~stalled])),
            "utilisation_gap_median": float(np.median(gap)),
            "share_gap_below_0.05": float(np.mean(gap < 0.05)),
            "sum_x_bar": float(xb[k].sum()), "sum_y_bar": float(yb[k].sum()),
        }
        for c in np.unique(costs.klass):
            sel = (costs.klass == c) & ~stalled
            for name, g in (("x", run["grad_x"][k]), ("y", run["grad_y"][k])):
                r = g[sel] / g[sel][0]
                rec[f"class_{c}_derivative_ratio_range_{name}"] = [float(r.min()), float(r.max())]
        out[f"day_{k}"] = rec
    tail = run["sums"][-min(200, days):]
    err = tail - [cx, cy]
    om = run["omega"][-min(200, days):]
    out["last_200_days"] = {
        "mean_error_x": float(err[:, 0].mean()), "mean_error_y": float(err[:, 1].mean()),
        "rms_error_x": float(np.sqrt((err[:, 0] ** 2).mean())), "rms_error_y": float(np.sqrt((err[:, 1] ** 2).mean())),
        "share_days_within_5pct_x": float(np.mean(np.abs(err[:, 0]) <= 0.05 * cx)),
        "share_days_within_5pct_y": float(np.mean(np.abs(err[:, 1]) <= 0.05 * cy)),
        "omega_mean": [float(om[:, 0].mean()), float(om[:, 1].mean())],
        "omega_rel_std": [float(om[:, 0].std() / abs(om[:, 0].mean())), float(om[:, 1].std() / abs(om[:, 1].mean()))],
    }
    return out


# ============================================================================ 2. statistics
def seed_statistics(scenario: str, rule: str, days: int, seeds: int, seed: int, n: int) -> dict[str, Any]:
    """``seeds`` communities of ``scenario`` under Algorithm 2 variant ``rule`` (batched)."""
    b = ProsumerSharingBatch(n_communities=seeds, n_days=days, autoreset=False, scenario=scenario, rule=rule,
                             n_prosumers=n)
    b.reset(seed=seed)
    core = b.core
    med = np.empty((days, seeds))
    err = np.empty((days, seeds, 2))
    omega = np.empty((days, seeds, 2))
    snaps: dict[int, dict[str, Any]] = {}
    for k in range(days):
        _, _, _, info = b.step(b.algorithm2_actions())
        med[k] = info["rel_distance_median"]
        err[k] = np.stack([info["error_x"], info["error_y"]], axis=1)
        omega[k] = np.stack([info["omega_x"], info["omega_y"]], axis=1)
        if k + 1 in (CHECKPOINT, days):
            gap = np.abs(core.x_bar + core.y_bar - core.costs.target)
            snaps[k + 1] = {
                "rel_distance_median": info["rel_distance_median"], "rel_distance_p90": info["rel_distance_p90"],
                "utilisation_gap_median": info["utilisation_gap_median"],
                "share_gap_below_0.05": np.where(core.mask, gap < 0.05, False).sum(axis=1) / core.n,
                "consensus_spread_x": info["consensus_spread_x"], "consensus_spread_y": info["consensus_spread_y"],
                "n_stalled": info["n_stalled"].astype(float),
                "abs_sum_x_bar_minus_C_x": np.abs(info["sum_x_bar"] - info["contract_x"]),
                "abs_sum_y_bar_minus_C_y": np.abs(info["sum_y_bar"] - info["contract_y"]),
            }
    tail = slice(max(0, days - 200), days)
    e, om = err[tail], omega[tail]
    c = core.contracts
    last = {
        "mean_error_x": e[..., 0].mean(axis=0), "rms_error_x": np.sqrt((e[..., 0] ** 2).mean(axis=0)),
        "mean_error_y": e[..., 1].mean(axis=0), "rms_error_y": np.sqrt((e[..., 1] ** 2).mean(axis=0)),
        "share_days_within_5pct_x": (np.abs(e[..., 0]) <= 0.05 * c[:, 0]).mean(axis=0),
        "share_days_within_5pct_y": (np.abs(e[..., 1]) <= 0.05 * c[:, 1]).mean(axis=0),
        "omega_rel_std_x": om[..., 0].std(axis=0) / np.abs(om[..., 0].mean(axis=0)),
        "omega_rel_std_y": om[..., 1].std(axis=0) / np.abs(om[..., 1].mean(axis=0)),
    }

    def stats(v: np.ndarray) -> dict[str, float]:
        v = np.asarray(v, dtype=float)
        return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}

    out: dict[str, Any] = {"scenario": scenario, "rule": rule, "communities": seeds, "days": days,
                           "tau": list(map(float, b.config.tau)), "omega0": list(map(float, b.config.omega0))}
    for k, snap in sorted(snaps.items()):
        out[f"day_{k}"] = {key: stats(v) for key, v in snap.items()}
    out["last_200_days"] = {key: stats(v) for key, v in last.items()}
    out["_median_distance_curve"] = med  # for the figure, dropped from the JSON
    return out


# ============================================================================ 3. fixed point
def fixed_point_analysis(run: dict[str, Any]) -> dict[str, Any]:
    """Eq. 22's rest point vs the optimum, for the main run's community (all prosumers, and
    the prosumers that did not stall, which then carry the whole contract)."""
    costs, opt = run["costs"], run["opt"]
    cx, cy = run["contracts"]
    x, y, ox, oy = algorithm2_fixed_point(costs, cx, cy, opt)
    stalled = (run["grad_x"][-1] <= 0) | (run["grad_y"][-1] <= 0)
    keep = np.flatnonzero(~stalled)
    sub = costs.take(keep)
    # stalled prosumers still contribute their (vanishing) averages; the others carry the rest
    cx_s = cx - run["x_bar"][-1][stalled].sum()
    cy_s = cy - run["y_bar"][-1][stalled].sum()
    opt_s = solve_optimum(sub, cx_s, cy_s)
    xs, ys, oxs, oys = algorithm2_fixed_point(sub, cx_s, cy_s, opt_s)
    xb, yb = run["x_bar"][-1][keep], run["y_bar"][-1][keep]
    gx, gy = costs.grad(x, y)
    return {
        "omega_fixed_point": [ox, oy],
        "fixed_point_vs_optimum_rel_distance_median": float(np.median(_rel(x, y, opt.x, opt.y))),
        "fixed_point_vs_optimum_rel_distance_max": float(np.max(_rel(x, y, opt.x, opt.y))),
        "fixed_point_derivative_spread_x": float(np.ptp(gx) / np.median(gx)),
        "optimum_derivative_spread_x": float(np.ptp(costs.grad(opt.x, opt.y)[0]) / opt.mu_x),
        "n_not_stalled": int(keep.size),
        "omega_fixed_point_not_stalled": [oxs, oys],
        "simulation_vs_fixed_point_not_stalled_rel_distance_median": float(np.median(_rel(xb, yb, xs, ys))),
        "simulation_vs_optimum_rel_distance_median_not_stalled": float(
            np.median(_rel(xb, yb, opt.x[keep], opt.y[keep]))),
    }


# ============================================================================ figures
def _figures(run: dict[str, Any], curves: dict[str, np.ndarray], out: Path) -> list[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written = []

    def save(fig: Figure, name: str) -> None:
        FigureCanvasAgg(fig)
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
        _atomic_bytes(out / name, buf.getvalue())
        written.append(name)

    costs, opt = run["costs"], run["opt"]
    xb, yb = run["x_bar"], run["y_bar"]
    days = xb.shape[0] - 1
    kk = min(CHECKPOINT, days)
    t = np.arange(days + 1)
    c1 = costs.klass == 1
    c2 = ~c1
    stalled = (run["grad_x"][-1] <= 0) | (run["grad_y"][-1] <= 0)
    idx = np.arange(costs.n)

    fig = Figure(figsize=(10, 3.6))
    for ax, v, o, name in zip(fig.subplots(1, 2), (xb, yb), (opt.x, opt.y), ("consumption", "production")):
        ax.plot(t[:kk + 1], v[:kk + 1, ~stalled], lw=0.5, alpha=0.6)
        if stalled.any():
            ax.plot(t[:kk + 1], v[:kk + 1, stalled], lw=0.8, color="k", ls=":")
        ax.hlines(o, kk - 5, kk, color="red", lw=0.6)
        ax.set_xlabel("day k")
        ax.set_ylabel(f"average {name}")
        ax.set_title(f"Fig. 4: average {name} (red: optimum; dotted: stalled)", fontsize=8)
    save(fig, "fig4.png")

    fig = Figure(figsize=(10, 6))
    axes = fig.subplots(2, 2).ravel()
    for ax, v, o, sel, title in zip(axes, (xb[kk], xb[kk], yb[kk], yb[kk]), (opt.x, opt.x, opt.y, opt.y),
                                    (c1, c2, c1, c2), ("x_bar class 1", "x_bar class 2", "y_bar class 1",
                                                       "y_bar class 2")):
        ax.bar(idx[sel], v[sel], color="tab:blue", label=f"day {kk}")
        ax.plot(idx[sel], o[sel], "r_", ms=8, label="optimum")
        ax.set_title(f"Fig. 5: {title} at K = {kk}", fontsize=8)
        ax.legend(fontsize=7)
    save(fig, "fig5.png")

    gap = np.abs(xb + yb - costs.target)
    fig = Figure(figsize=(12, 3.6))
    a, b, c = fig.subplots(1, 3)
    sel = [i for i in (0, 10, 25, 60, 75, 90) if i < costs.n]
    for i in sel:
        a.plot(t, gap[:, i], lw=0.8, label=f"prosumer {i + 1}")
    a.set_xlabel("day k")
    a.set_title("Fig. 6a: |x_bar + y_bar - T_i|", fontsize=8)
    a.legend(fontsize=6)
    for ax, s, name in ((b, c1, "class 1"), (c, c2, "class 2")):
        ax.bar(idx[s], gap[kk, s])
        ax.set_title(f"Fig. 6: |x_bar + y_bar - T_i| at K = {kk}, {name}", fontsize=8)
    save(fig, "fig6.png")

    gx = run["grad_x"]
    fig = Figure(figsize=(12, 3.6))
    a, b, c = fig.subplots(1, 3)
    for s, name in ((c1, "class 1"), (c2, "class 2")):
        members = idx[s & ~stalled]
        for i, j in zip(members[:3], members[3:6]):
            a.plot(t, gx[:, i] / gx[:, j], lw=0.8, label=f"{name}: g'_{i + 1} / g'_{j + 1}")
    a.axhline(1.0, color="grey", lw=0.6)
    a.set_title("Fig. 7a: ratio of derivatives w.r.t. x", fontsize=8)
    a.legend(fontsize=6)
    for ax, s, name in ((b, c1, "class 1"), (c, c2, "class 2")):
        g = gx[:, s & ~stalled]
        ax.fill_between(t, g.min(axis=1), g.max(axis=1), alpha=0.3)
        ax.plot(t, np.median(g, axis=1), lw=1)
        ax.axhline(opt.mu_x, color="red", lw=0.6)
        ax.set_title(f"Fig. 7: dg/dx, {name} (band = min..max, red = optimum)", fontsize=8)
        ax.set_xlabel("day k")
    save(fig, "fig7.png")

    sums, omega = run["sums"], run["omega"]
    cx, cy = run["contracts"]
    fig = Figure(figsize=(12, 3.6))
    a, b, c = fig.subplots(1, 3)
    last = t[-40:]
    a.plot(last, sums[-40:, 0], marker=".")
    a.axhline(cx, color="red")
    a.set_title("Fig. 8a: total consumption, last 40 days", fontsize=8)
    b.plot(last, sums[-40:, 1], marker=".")
    b.axhline(cy, color="red")
    b.set_title("Fig. 8b: total production, last 40 days", fontsize=8)
    c.plot(t, xb.sum(axis=1), label="sum_i x_bar_i")
    c.plot(t, yb.sum(axis=1), label="sum_i y_bar_i")
    c.axhline(cx, color="C0", ls="--", lw=0.7)
    c.axhline(cy, color="C1", ls="--", lw=0.7)
    c.set_title("Fig. 8c: sum of averages", fontsize=8)
    c.legend(fontsize=7)
    save(fig, "fig8.png")

    fig = Figure(figsize=(12, 3.6))
    a, b, c = fig.subplots(1, 3)
    tail = sums[-min(200, days):]
    a.hist(tail[:, 0], bins=np.arange(tail[:, 0].min() - 0.5, tail[:, 0].max() + 1.5))
    a.axvline(cx, color="red")
    a.set_title("Fig. 9a: total consumption, last 200 days", fontsize=8)
    b.hist(tail[:, 1], bins=np.arange(tail[:, 1].min() - 0.5, tail[:, 1].max() + 1.5))
    b.axvline(cy, color="red")
    b.set_title("Fig. 9b: total production, last 200 days", fontsize=8)
    c.plot(t, omega[:, 0], label="Omega_x")
    c.plot(t, omega[:, 1], label="Omega_y")
    c.set_title("Fig. 9c: feedback signals", fontsize=8)
    c.legend(fontsize=7)
    save(fig, "fig9.png")

    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for name, cur in curves.items():
        d = np.arange(1, cur.shape[0] + 1)
        ax.plot(d, np.median(cur, axis=1), label=name)
        ax.fill_between(d, cur.min(axis=1), cur.max(axis=1), alpha=0.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("day k")
    ax.set_ylabel("median_i relative distance to the optimum")
    ax.legend(fontsize=7)
    ax.set_title("Distance of the averages to Problem III.2's optimum (band: min..max over communities)",
                 fontsize=7)
    save(fig, "fig_distance.png")
    return written


# ============================================================================ CLI
def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else round(float(obj), 6)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    return obj


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="Reproduce Figs. 4-9 of the prosumer-sharing paper (Section VI).")
    p.add_argument("--out", required=True, help="output folder (PNGs + measured.json)")
    p.add_argument("--days", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=20, help="communities per scenario and rule for the statistics")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-prosumers", type=int, default=99)
    p.add_argument("--quick", action="store_true", help="300 days, 4 communities")
    a = p.parse_args(argv)
    if a.quick:
        a.days, a.seeds = 300, 4
    if a.days < 1 or a.seeds < 1:
        p.error("--days and --seeds must be >= 1")
    out = Path(a.out)

    run = main_run(a.days, a.seed, a.n_prosumers)
    result: dict[str, Any] = {
        "command": "python -m prosumer_gym.eval.reproduce.prosumer_sharing " + " ".join(sys.argv[1:] if argv is None
                                                                                          else argv),
        "settings": {"days": a.days, "seeds": a.seeds, "seed": a.seed, "n_prosumers": a.n_prosumers,
                     "tau": {r: default_tau(r) for r in RULES}, "omega0": {r: default_omega0(r) for r in RULES},
                     "contracts": list(map(float, run["contracts"]))},
        "main_run_eq22": summarise_main(run),
        "eq22_fixed_point": fixed_point_analysis(run),
        "statistics": {},
    }
    curves = {}
    for scenario in SCENARIOS:
        for rule in RULES:
            st = seed_statistics(scenario, rule, a.days, a.seeds, a.seed, a.n_prosumers)
            if scenario == "paper":
                curves[f"{scenario} / {rule}"] = st["_median_distance_curve"]
            result["statistics"][f"{scenario}/{rule}"] = st
    result["figures"] = _figures(run, curves, out)
    _atomic_bytes(out / "measured.json", json.dumps(_jsonable(result), indent=2).encode())
    return result


if __name__ == "__main__":
    res = main()
    main_eq22 = res["main_run_eq22"]
    for key, val in res["statistics"].items():
        d = [k for k in val if k.startswith("day_")]
        print(key, {k: round(val[k]["rel_distance_median"]["median"], 4) for k in d},
              "stalled", {k: val[k]["n_stalled"]["median"] for k in d})
    print("main run:", {k: v for k, v in main_eq22.items() if k.startswith("day_")})
