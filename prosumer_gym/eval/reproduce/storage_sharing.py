"""Reproduce the shapes of paper ``003`` (Sec. V) on StorageSharing-v0's reconstructed mechanism.

    python -m prosumer_gym.eval.reproduce.storage_sharing --out runs/storage_sharing [--markets 300]
        [--ic-markets 100] [--quick]

Writes, each file atomically (temporary file + ``os.replace``), into ``--out``:

``convergence.png``
    Algorithm 1 on one paper-size market (8 RUs, 5 SFCs): the saving per proposal, the best
    so far and the SE; every RU's answer per iteration (low reservation prices enter first).
``reluctance.png``
    Table 1: average utility per RU, saving per SFC and storage shared vs reluctance.
``utility_vs_requirement.png``
    Average RU utility vs the SFCs' total requirement for low/high reluctance, with our
    default price window and with the spec's literal (Vickrey) window.
``schemes.png``
    Table 2: proposed vs equal distribution (ED) vs feed-in tariff (FIT).
``time_varying.png``
    The 4-slot example with 5 RUs: storage available at the start of each slot and shared.
``results.json``
    Every measured figure above plus the auction-property sweep (individual rationality,
    incentive compatibility by deviation search, budget balance) and a 24-slot episode of
    the env with the reference policies vs random play.

Random markets follow the spec's population (8 RUs, 5 SFCs, ``r_i, c_m ~ U[20, 70]`` c/kWh,
``beta_i ~ U[0.01, 0.1]``, offers 50 kWh x ``U[0.4, 0.8]``, ``Q_m ~ U[10, 40]`` kWh), seeded.
Averages are over all ``N`` RUs of a market (non-participants count as 0).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.agents.storage_sharing import BestResponseRU, SEAuctioneer
from prosumer_gym.baselines.storage_sharing import DEFAULT_FIT_PRICE, compare_schemes
from prosumer_gym.envs import storage_sharing_v0
from prosumer_gym.envs.storage_sharing.market import (
    StorageMarket,
    algorithm1,
    determine,
    deviation_gain,
    equilibrium,
    saving_curve,
    solve,
)

__all__ = [
    "random_markets",
    "convergence",
    "reluctance_table",
    "utility_vs_requirement",
    "scheme_comparison",
    "time_varying_example",
    "auction_properties",
    "env_episode",
    "main",
]

BETAS = (0.001, 0.01, 0.1, 1.0)
REQUIREMENT_SCALES = (0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
FOUR_SLOT = dict(
    reservation=[22.0, 26.0, 30.0, 34.0, 38.0],
    reluctance=[0.01] * 5,
    max_share_kwh=[10.0, 20.0, 30.0, 40.0, 50.0],
    bid=[66.0, 64.0, 62.0, 60.0],
    requirement_kwh=[[10.0] * 4, [10.0] * 4, [20.0] * 4, [30.0] * 4],
)
FOUR_SLOT_TOU = (1.0, 1.05, 1.1, 1.15)
# a market whose SE is interior (every participating RU strictly between 0 and its offer):
# the paper's closed form applies (RUs 0-2 and SFCs 0-1 trade; RU 3 / SFC 2 are marginal)
INTERIOR = dict(reservation=[20.0, 22.0, 24.0, 50.0], reluctance=[0.5, 0.4, 0.6, 0.5],
                offer_kwh=[100.0, 100.0, 100.0, 10.0], bid=[62.0, 61.0, 60.0], requirement_kwh=[100.0, 150.0, 500.0])


def _atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _save_fig(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _atomic_bytes(path, buf.getvalue())


def _figure(ncols: int = 1, width: float = 6.4):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, 4.0))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols)


def random_markets(count: int, seed: int = 0, beta: float | None = None, q_scale: float = 1.0,
                   n: int = 8, m: int = 5) -> list[StorageMarket]:
    """``count`` markets of the spec's population (``beta`` fixes every reluctance; the other
    draws do not depend on it, so the same seed gives the same markets for every ``beta``)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        b = rng.uniform(0.01, 0.1, n)
        if beta is not None:
            b = np.full(n, float(beta))
        out.append(StorageMarket(rng.uniform(20, 70, n), b, 50 * rng.uniform(0.4, 0.8, n), rng.uniform(20, 70, m),
                                 q_scale * rng.uniform(10, 40, m)))
    return out


# ----------------------------------------------------------------------------- experiments
def convergence(n_markets: int = 500, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Algorithm 1 vs the SE (closed form / exact search) vs a brute-force grid."""
    stats = {"iterations": [], "price_gap": [], "saving_gap_rel": [], "grid_excess_rel": [], "to_1e-3": []}
    methods = {"closed_form": 0, "search": 0}
    example = None
    for k, mk in enumerate(random_markets(n_markets, seed)):
        det = determine(mk)
        if not det.open:
            continue
        eq = equilibrium(mk, det)
        alg = algorithm1(mk, det, n_sweep=8)
        grid = np.linspace(*det.window, 2001)
        scale = max(1.0, eq.saving)
        methods[eq.method] += 1
        stats["iterations"].append(alg.iterations)
        stats["price_gap"].append(abs(alg.price - eq.price))
        stats["saving_gap_rel"].append((eq.saving - alg.saving) / scale)
        stats["grid_excess_rel"].append((float(saving_curve(mk, det, grid).max()) - eq.saving) / scale)
        stats["to_1e-3"].append(int(np.argmax(alg.best_savings >= eq.saving * (1 - 1e-3))) + 1)
        sweep = alg.offers_trace[:9]  # the upward sweep of the window
        entries = {int(np.argmax(sweep[:, i] > 0)) for i in det.rus if sweep[-1, i] > 0}
        score = (det.rus.size, len(entries), any(eq.offers_kwh[i] == 0 for i in det.rus))
        if example is None or score > example[0]:  # the most illustrative market for the plot
            example = (score, k, mk, det, eq, alg)
    _, k, mk, det, eq, alg = example
    entry = {f"ru_{i}": (int(np.argmax(alg.offers_trace[:, i] > 0)) + 1 if np.any(alg.offers_trace[:, i] > 0)
                         else None) for i in det.rus}
    ex = {
        "market_index": k,
        "participating_rus_by_reservation": [f"ru_{i}" for i in det.rus],
        "reservation": {f"ru_{i}": float(mk.reservation[i]) for i in det.rus},
        "window": list(det.window),
        "se_price": eq.price,
        "se_saving": eq.saving,
        "se_method": eq.method,
        "algorithm1_price": alg.price,
        "algorithm1_iterations": alg.iterations,
        "iterations_to_within_1e-3": int(np.argmax(alg.best_savings >= eq.saving * (1 - 1e-3))) + 1,
        "first_iteration_sharing": entry,
        "never_share": [f"ru_{i}" for i in det.rus if eq.offers_kwh[i] == 0],
    }
    mk_i = StorageMarket(**INTERIOR)
    det_i = determine(mk_i)
    eq_i, alg_i = equilibrium(mk_i, det_i), algorithm1(mk_i, det_i, n_sweep=8)
    grid_i = np.linspace(*det_i.window, 500_001)
    interior = {
        "market": INTERIOR,
        "se_method": eq_i.method,
        "closed_form_price": eq_i.price,
        "algorithm1_price": alg_i.price,
        "algorithm1_iterations": alg_i.iterations,
        "grid_argmax_price": float(grid_i[np.argmax(saving_curve(mk_i, det_i, grid_i))]),
        "grid_step": float(grid_i[1] - grid_i[0]),
    }
    summary = {
        "markets": len(stats["iterations"]),
        "se_method_counts": methods,
        "iterations_mean": float(np.mean(stats["iterations"])),
        "iterations_max": int(np.max(stats["iterations"])),
        "iterations_to_within_1e-3_mean": float(np.mean(stats["to_1e-3"])),
        "max_abs_price_gap_algorithm1_vs_se": float(np.max(stats["price_gap"])),
        "max_rel_saving_gap_algorithm1_vs_se": float(np.max(stats["saving_gap_rel"])),
        "max_rel_grid_excess_over_se": float(np.max(stats["grid_excess_rel"])),
        "example": ex,
        "interior_example": interior,
    }
    return summary, {"market": mk, "det": det, "eq": eq, "alg": alg}


def _plot_convergence(data: dict[str, Any], path: Path) -> None:
    mk, det, eq, alg = data["market"], data["det"], data["eq"], data["alg"]
    fig, (a1, a2) = _figure(2)
    it = np.arange(1, alg.iterations + 1)
    a1.plot(it, alg.savings, "o-", ms=3, label="J at the proposed price")
    a1.plot(it, alg.best_savings, "-", label="best so far (J*)")
    a1.axhline(eq.saving, color="k", ls="--", lw=1, label=f"SE ({eq.method})")
    a1.set_xlabel("iteration")
    a1.set_ylabel("average saving per SFC (cents)")
    a1.set_title("Algorithm 1: auctioneer")
    a1.legend(fontsize=8)
    for i in det.rus:
        a2.plot(it, alg.offers_trace[:, i], "-", label=f"RU {i} (r={mk.reservation[i]:.1f})")
    a2.set_xlabel("iteration")
    a2.set_ylabel("storage put into the market x_i (kWh)")
    a2.set_title("Algorithm 1: RUs' best responses")
    a2.legend(fontsize=7)
    fig.tight_layout()
    _save_fig(fig, path)


def reluctance_table(n_markets: int = 300, seed: int = 1, betas: Sequence[float] = BETAS,
                     windows: Sequence[str] = ("floor", "vickrey")) -> dict[str, Any]:
    """Average RU utility, SFC saving, storage shared for every reluctance (all RUs alike)."""
    out: dict[str, Any] = {"betas": list(betas)}
    for w in windows:
        rows = []
        for beta in betas:
            outs = [solve(mk, window=w)[2] for mk in random_markets(n_markets, seed, beta=beta)]
            rows.append({
                "beta": beta,
                "ru_utility": float(np.mean([o.ru_utility.sum() / o.ru_utility.size for o in outs])),
                "sfc_saving": float(np.mean([o.saving for o in outs])),
                "shared_kwh": float(np.mean([o.shared_kwh.sum() for o in outs])),
            })
        out[w] = rows
    return out


def utility_vs_requirement(n_markets: int = 300, seed: int = 2, scales: Sequence[float] = REQUIREMENT_SCALES,
                           betas: Sequence[float] = (0.01, 0.1),
                           windows: Sequence[str] = ("floor", "vickrey")) -> dict[str, Any]:
    """Average RU utility vs total SFC requirement (``scale`` x the default requirements)."""
    out: dict[str, Any] = {"scales": list(scales), "mean_total_requirement_kwh": [5 * 25.0 * s for s in scales],
                           "betas": list(betas)}
    closed = []
    for s in scales:
        dets = [determine(mk) for mk in random_markets(n_markets, seed, q_scale=s)]
        closed.append(float(np.mean([not d.open for d in dets])))
    out["closed_market_share"] = closed  # no trade (mostly: the top SFC alone exceeds all supply)
    for w in windows:
        curves = {}
        for beta in betas:
            curves[str(beta)] = [
                float(np.mean([solve(mk, window=w)[2].ru_utility.sum() / mk.n_rus
                               for mk in random_markets(n_markets, seed, beta=beta, q_scale=s)]))
                for s in scales
            ]
        lo, hi = np.array(curves[str(betas[0])]), np.array(curves[str(betas[1])])
        diff = lo - hi
        crossing = next((float(scales[k]) for k in range(1, len(scales)) if diff[k - 1] < 0 <= diff[k]), None)
        out[w] = {
            "ru_utility": curves,
            "high_reluctance_better_at_lowest_demand": bool(hi[0] > lo[0] or hi[1] > lo[1]),
            "low_reluctance_better_at_highest_demand": bool(lo[-1] > hi[-1]),
            "crossing_scale": crossing,
            "last_step_increase_over_mid_increase": {
                str(b): float((c[-1] - c[-2]) / max(c[len(c) // 2] - c[len(c) // 2 - 1], 1e-12))
                for b, c in curves.items()
            },
        }
    return out


def scheme_comparison(n_markets: int = 300, seed: int = 3, scales: Sequence[float] = (0.25, 0.5, 1.0, 1.5, 2.0),
                      fit_price: float = DEFAULT_FIT_PRICE) -> dict[str, Any]:
    """Average utility per RU: proposed vs ED vs FIT, for several total requirements."""
    rows = []
    for s in scales:
        res = [compare_schemes(mk, determine(mk), fit_price=fit_price)
               for mk in random_markets(n_markets, seed, q_scale=s)]
        p, e, f = (float(np.mean([r[k] for r in res])) for k in ("proposed", "ed", "fit"))
        rows.append({
            "scale": s,
            "mean_total_requirement_kwh": 125.0 * s,
            "proposed": p,
            "ed": e,
            "fit": f,
            "improvement_over_ed_pct": 100.0 * (p - e) / abs(e) if e else None,
            "proposed_minus_fit": p - f,
            "share_markets_proposed_ge_ed": float(np.mean([r["proposed"] >= r["ed"] - 1e-9 for r in res])),
        })
    return {"fit_price_cents_per_kwh": fit_price, "rows": rows}


def time_varying_example() -> dict[str, Any]:
    """The 4-slot example (5 RUs) in the env, SE auctioneer and best-responding RUs, paper update."""
    out: dict[str, Any] = {"scenario": FOUR_SLOT, "tou_multipliers": list(FOUR_SLOT_TOU),
                           "lease_slots": None, "burden_aversion": 0.0}
    for label, include in (("marginal_excluded", False), ("marginal_included", True)):
        env = storage_sharing_v0.parallel_env(n_rus=5, n_sfcs=4, n_slots=4, scenario=FOUR_SLOT, lease_slots=None,
                                              burden_aversion=0.0, tou_profile=FOUR_SLOT_TOU,
                                              include_marginal=include)
        auct, br = SEAuctioneer.from_env(env), BestResponseRU.from_env(env)
        obs, _ = env.reset(seed=0)
        slots = []
        while env.agents:
            record = env.current_slot  # the slot being played (its market: what each RU can offer)
            acts = {a: auct.act(obs[a]) if a == "auctioneer" else br.act(obs[a]) for a in env.agents}
            obs, _, _, _, infos = env.step(acts)
            m = infos["auctioneer"]["market"]
            if m["phase"] == "share":
                slots.append({
                    "slot": m["slot"] + 1,
                    "requirement_kwh": float(record.market.requirement_kwh.sum()),
                    "participating_requirement_kwh": m["requirement_kwh"],
                    "reason": m["reason"],
                    "price": m["price"],
                    "reservation": record.market.reservation.round(3).tolist(),
                    "available_kwh": record.market.offer_kwh.round(6).tolist(),
                    "shared_kwh": np.round(m["shared_kwh"], 6).tolist(),
                    "burden_kwh": np.round(m["burden_kwh"], 6).tolist(),
                    "participating_rus": list(m["participating_rus"]),
                })
        out[label] = slots
    return out


def _plot_time_varying(data: dict[str, Any], path: Path) -> None:
    fig, axes = _figure(2)
    for ax, label in zip(axes, ("marginal_excluded", "marginal_included")):
        slots = data[label]
        n = len(slots[0]["available_kwh"])
        width = 0.8 / n
        for i in range(n):
            xs = np.arange(len(slots)) + (i - (n - 1) / 2) * width
            ax.bar(xs, [s["available_kwh"][i] for s in slots], width, color=f"C{i}", alpha=0.3,
                   label=f"RU{i + 1} available")
            ax.bar(xs, [s["shared_kwh"][i] for s in slots], width, color=f"C{i}", label=f"RU{i + 1} shared")
        ax.set_xticks(np.arange(len(slots)), [f"slot {s['slot']}\nQ={s['requirement_kwh']:.0f}" for s in slots])
        ax.set_ylabel("storage (kWh)")
        ax.set_title(f"4-slot example, {label.replace('_', ' ')}")
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    _save_fig(fig, path)


def auction_properties(n_markets: int = 100, seed: int = 4) -> dict[str, Any]:
    """IR, IC (deviation search over reservation-price reports) and budget balance, per variant."""
    variants = {
        "default (floor window, marginal pair excluded, equal burden)": {},
        "proportional_reservation burden": {"burden": "proportional_reservation"},
        "vickrey window (spec's literal window)": {"window": "vickrey"},
        "vickrey window + proportional_reservation burden": {"window": "vickrey",
                                                              "burden": "proportional_reservation"},
        "marginal pair included": {"include_marginal": True},
        "default, RU also answers as its report ('consistent' lie)": {"response": "consistent"},
    }
    mks = random_markets(n_markets, seed)
    out: dict[str, Any] = {"markets": n_markets, "rus_per_market": 8}
    for name, kw in variants.items():
        mech = {k: v for k, v in kw.items() if k != "response"}
        gains, min_u, max_surplus, n_burden = [], np.inf, 0.0, 0
        for mk in mks:
            det, eq, cl = solve(mk, **mech)
            if det.open:
                min_u = min(min_u, float(cl.ru_utility[det.rus].min()))
                max_surplus = max(max_surplus, abs(cl.budget_surplus))
                n_burden += cl.burden_kwh.sum() > 1e-9  # ignore float crumbs at X = Q
            for i in range(mk.n_rus):
                gains.append(deviation_gain(mk, i, **kw)[0])
        g = np.array(gains)
        out[name] = {
            "ic_profitable_lies_share": float(np.mean(g > 1e-6)),
            "ic_max_gain_cents": float(g.max()),
            "ir_min_participant_utility_cents": min_u,
            "budget_max_abs_surplus_cents": max_surplus,
            "markets_with_burden_at_se": int(n_burden),
        }
    return out


def env_episode(seed: int = 0) -> dict[str, Any]:
    """One default episode (24 slots) with the reference policies, and with random play."""
    out: dict[str, Any] = {}
    for label in ("reference", "random"):
        env = storage_sharing_v0.parallel_env()
        auct, br = SEAuctioneer.from_env(env), BestResponseRU.from_env(env)
        rng = np.random.default_rng(seed)
        obs, _ = env.reset(seed=seed)
        regret, exploit, saving, ru_u, open_slots = {}, 0.0, 0.0, 0.0, 0
        while env.agents:
            if label == "reference":
                acts = {a: auct.act(obs[a]) if a == "auctioneer" else br.act(obs[a]) for a in env.agents}
            else:
                acts = {a: rng.uniform(0, 1, 1).astype(np.float32) for a in env.agents}
            obs, rewards, _, _, infos = env.step(acts)
            m = infos["auctioneer"]["market"]
            if m["phase"] != "share":
                continue
            open_slots += m["open"]
            exploit += m["exploitability"]
            saving += rewards["auctioneer"]
            ru_u += sum(v for a, v in rewards.items() if a != "auctioneer")
            for a, v in m["regret"].items():
                regret[a] = max(regret.get(a, 0.0), v)
        out[label] = {"open_slots": open_slots, "total_auctioneer_saving_cents": saving,
                      "total_ru_utility_cents": ru_u, "total_exploitability_cents": exploit,
                      "max_regret_cents": max(regret.values())}
    return out


# ----------------------------------------------------------------------------- plots
def _plot_reluctance(data: dict[str, Any], path: Path) -> None:
    fig, axes = _figure(3, width=4.2)
    labels = [str(b) for b in data["betas"]]
    for ax, key, ylabel in zip(axes, ("ru_utility", "sfc_saving", "shared_kwh"),
                               ("average utility per RU (cents)", "average saving per SFC (cents)",
                                "storage shared (kWh)")):
        for k, w in enumerate(("floor", "vickrey")):
            xs = np.arange(len(labels)) + (k - 0.5) * 0.38
            ax.bar(xs, [row[key] for row in data[w]], 0.38, label=f"{w} window")
        ax.set_xticks(np.arange(len(labels)), labels)
        ax.set_xlabel("reluctance beta")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save_fig(fig, path)


def _plot_requirement(data: dict[str, Any], path: Path) -> None:
    fig, axes = _figure(2)
    q = data["mean_total_requirement_kwh"]
    for ax, w in zip(axes, ("floor", "vickrey")):
        for beta, curve in data[w]["ru_utility"].items():
            ax.plot(q, curve, "o-", ms=3, label=f"beta = {beta}")
        ax.set_xlabel("mean total SFC requirement (kWh)")
        ax.set_ylabel("average utility per RU (cents)")
        ax.set_title(f"{w} window")
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save_fig(fig, path)


def _plot_schemes(data: dict[str, Any], path: Path) -> None:
    fig, ax = _figure(1)
    rows = data["rows"]
    xs = np.arange(len(rows))
    for k, key in enumerate(("proposed", "ed", "fit")):
        ax.bar(xs + (k - 1) * 0.27, [r[key] for r in rows], 0.27, label=key.upper() if key != "proposed" else key)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(xs, [f"{r['mean_total_requirement_kwh']:.0f}" for r in rows])
    ax.set_xlabel("mean total SFC requirement (kWh)")
    ax.set_ylabel("average utility per RU (cents)")
    ax.set_title(f"proposed vs ED vs FIT ({data['fit_price_cents_per_kwh']:g} c/kWh)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save_fig(fig, path)


# ----------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description="Reproduce paper 003's shapes on StorageSharing-v0.")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--markets", type=int, default=300, help="random markets per point of the sweeps")
    p.add_argument("--ic-markets", type=int, default=100, help="markets of the deviation search (x 8 RUs)")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run, not the reported figures)")
    a = p.parse_args(argv)
    if a.markets < 1 or a.ic_markets < 1:
        p.error("--markets and --ic-markets must be >= 1")
    n, n_ic = (12, 2) if a.quick else (a.markets, a.ic_markets)
    out = Path(a.out)
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "command": " ".join(["python -m prosumer_gym.eval.reproduce.storage_sharing", *(argv or sys.argv[1:])]),
        "markets_per_point": n,
        "note": "formulas RECONSTRUCTED (paper copy masked): see docs/storage_sharing.md",
    }
    conv, conv_data = convergence(max(n, 30))
    results["convergence"] = conv
    _plot_convergence(conv_data, out / "convergence.png")
    results["reluctance"] = reluctance_table(n)
    _plot_reluctance(results["reluctance"], out / "reluctance.png")
    results["utility_vs_requirement"] = utility_vs_requirement(n)
    _plot_requirement(results["utility_vs_requirement"], out / "utility_vs_requirement.png")
    results["schemes"] = scheme_comparison(n)
    _plot_schemes(results["schemes"], out / "schemes.png")
    results["time_varying_example"] = time_varying_example()
    _plot_time_varying(results["time_varying_example"], out / "time_varying.png")
    results["auction_properties"] = auction_properties(n_ic)
    results["env_episode"] = env_episode()
    results["seconds"] = round(time.perf_counter() - t0, 1)  # wall clock of this run (not an env info)
    _atomic_bytes(out / "results.json", json.dumps(results, indent=2).encode())
    print(f"wrote {out}/results.json and 5 plots in {results['seconds']} s")
    return results


if __name__ == "__main__":
    main()
