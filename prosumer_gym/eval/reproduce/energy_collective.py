"""Reproduce the slides' energy-collective figures on the shipped data (slides ``002``).

    python -m prosumer_gym.eval.reproduce.energy_collective --out runs/energy_collective [--day 120] [--seed 0]

1. **One day, community vs BAU** (slides' table: BAU 55.38 > community 47.12 / 45.27 /
   46.81 for no / equal / proportional allocation). The default community (100 PV
   prosumers, 100 flexible and 100 inflexible households, 10 mini-CHPs, 5 peak units;
   Dutch 2019 day-ahead prices + 0.10 EUR/kWh import mark-up) for one data day, hourly:
   BAU (every player alone with the grid) against the community market cleared by ADMM
   (checked against the QP oracle), the community's total cost under each allocation
   rule, the individual costs by player kind, and each rule's incentive to deviate
   (the mean gain of a player's best unilateral deviation from the dispatch, others
   fixed). Also the saving over 12 days (the 15th of each month).
   **Allocation inside the dispatch** (``allocation_comparison``): the slides' table next to
   BAU, the cooperative total (the rule only splits the bill: the same for every rule) and
   the members' Nash equilibrium with each rule in their objectives (none / equal /
   proportional / "worst"), without and with the manager's batteries (``--storage`` of
   them, 10 kWh / 5 kW / 95 % each way), with a verdict on the slides' ordering.
2. **Distance preference, two villages** (slides' illustrative example): P2P market
   (MBED, consensus+innovation) with distance as the criterion and one unitary cost
   ``c_n^g`` in {0, 0.5, 1.5} EUR/MWh per km (plus a sweep), villages 10 km apart:
   the energy exchanged between the villages.

Writes, atomically, into ``--out``: ``energy_collective_figures.json`` (every measured
number), ``community_costs.png``, ``community_day.png`` and ``distance_example.png``.
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from prosumer_gym.core.io import atomic_write_bytes
from prosumer_gym.envs.energy_collective import market as mk
from prosumer_gym.envs.energy_collective.noncoop import nash_dispatch
from prosumer_gym.envs.energy_collective.storage import Storage, solve_community_storage

__all__ = ["one_day", "days_summary", "deviation_gains", "allocation_comparison", "distance_example", "main"]

#: The slides' one-day table (AUD, 30-min slots, Ausgrid data).
SLIDES_TOTALS = {"BAU": 55.38, "none": 47.12, "equal": 45.27, "proportional": 46.81}

DEFAULT = dict(n_prosumers=100, n_flexible=100, n_inflexible=100, n_chp=10, n_peak=5)


def build(day: int, seed: int = 0, price_year: int = 2019, import_markup: float = 0.10,
          export_markup: float = 0.0, **kw) -> mk.Community:
    w, imp, exp_ = mk.retail_prices(price_year, import_markup, export_markup)
    pop = mk.sample_population(np.random.default_rng(seed), day, 1, **{**DEFAULT, **kw})
    return pop.community(day, w, imp, exp_)


def deviation_gains(comm: mk.Community, rule: str, p: np.ndarray, price: np.ndarray,
                    players: np.ndarray | None = None, n_grid: int = 201) -> np.ndarray:
    """For each player in ``players`` (default: all), the cost reduction (EUR over the
    slots) of its best unilateral deviation from ``p`` (others fixed, the grid absorbing the
    difference) under allocation ``rule``, searched on ``n_grid`` points of its range in
    each slot (price-taking for ``"none"``: the announced community price stays)."""
    idx = np.arange(comm.n_players) if players is None else np.asarray(players)
    base = mk.settle_community(comm, rule, p, price)["total"]  # (T, N)
    gains = np.zeros(len(idx))
    frac = np.linspace(0.0, 1.0, n_grid)
    for j, i in enumerate(idx):
        cand = comm.lo[:, i:i + 1] + frac[None, :] * (comm.hi[:, i:i + 1] - comm.lo[:, i:i + 1])  # (T, G)
        best = base[:, i].copy()
        for g in range(n_grid):
            pp = p.copy()
            pp[:, i] = cand[:, g]
            best = np.minimum(best, mk.settle_community(comm, rule, pp, price)["total"][:, i])
        gains[j] = float((base[:, i] - best).sum())
    return gains


def one_day(day: int = 120, seed: int = 0, deviation_players: int = 40) -> dict:
    """Figures of the one-day case (see the module docstring)."""
    comm = build(day, seed)
    admm = mk.solve_community_admm(comm)
    qp = mk.solve_community_qp(comm)
    bau_p, bau_cost = mk.bau_dispatch(comm)
    kinds = comm.kind
    out: dict = {
        "day": day, "seed": seed, "players": comm.n_players, "slots": comm.n_slots,
        "admm": {
            "iterations_mean": float(admm.iterations.mean()), "iterations_max": int(admm.iterations.max()),
            "converged": bool(admm.converged.all()),
            "max_abs_p_vs_qp_kwh": float(np.abs(admm.p - qp.p).max()),
            "max_abs_price_vs_qp_eur_per_kwh": float(np.abs(admm.price - qp.price).max()),
            "objective_gap_eur": float(np.abs(admm.objective - qp.objective).sum()),
        },
        "bau_total_eur": float(bau_cost.sum()),
        "bau_grid_import_kwh": float(np.maximum(-bau_p, 0).sum()),
        "bau_grid_export_kwh": float(np.maximum(bau_p, 0).sum()),
        "community_grid_import_kwh": float(np.maximum(admm.q, 0).sum()),
        "community_grid_export_kwh": float(np.maximum(-admm.q, 0).sum()),
        "community_price_eur_per_kwh": admm.price.tolist(),
        "import_price_eur_per_kwh": comm.import_price.tolist(),
        "export_price_eur_per_kwh": comm.export_price.tolist(),
        "community_net_import_kwh": admm.q.tolist(),
        "bau_net_import_kwh": (-bau_p.sum(axis=1)).tolist(),
        "totals_eur": {"BAU": float(bau_cost.sum())},
        "mean_cost_by_kind_eur": {"BAU": {k: float(bau_cost[:, kinds == k].sum(0).mean())
                                          for k in mk.PLAYER_TYPES if (kinds == k).any()}},
        "players_cheaper_than_bau": {},
        "max_individual_change_vs_none_eur": {},
        "deviation_gain_eur": {},
    }
    per_rule = {}
    sample = np.linspace(0, comm.n_players - 1, min(deviation_players, comm.n_players)).astype(int)
    for rule in mk.ALLOCATIONS:
        st = mk.settle_community(comm, rule, admm.p, admm.price)
        tot = st["total"].sum(axis=0)
        per_rule[rule] = tot
        out["totals_eur"][rule] = float(tot.sum())
        out["mean_cost_by_kind_eur"][rule] = {k: float(tot[kinds == k].mean()) for k in mk.PLAYER_TYPES
                                              if (kinds == k).any()}
        out["players_cheaper_than_bau"][rule] = int((tot < bau_cost.sum(0) - 1e-9).sum())
        if deviation_players:
            g = deviation_gains(comm, rule, admm.p, admm.price, players=sample)
            out["deviation_gain_eur"][rule] = {"players_checked": int(len(sample)), "mean": float(g.mean()),
                                               "max": float(g.max()), "share_above_1ct": float((g > 0.01).mean())}
    for rule in ("equal", "proportional"):
        out["max_individual_change_vs_none_eur"][rule] = float(np.abs(per_rule[rule] - per_rule["none"]).max())
    out["saving_vs_bau_percent"] = {r: 100.0 * (1 - out["totals_eur"][r] / out["bau_total_eur"]) for r in mk.ALLOCATIONS}
    out["_per_rule"] = {r: v.tolist() for r, v in per_rule.items()}
    out["_bau_per_player"] = bau_cost.sum(0).tolist()
    out["_kinds"] = kinds.tolist()
    return out


def allocation_comparison(day: int = 120, seed: int = 0, n_storage: int = 10, selection: bool = True) -> dict:
    """The slides' comparison: BAU, the cooperative dispatch (settlement: every rule gives
    its total) and the members' Nash equilibrium under each rule (in-dispatch), without and
    with ``n_storage`` manager-dispatched batteries; totals in EUR over the day. ``selection``:
    also the proportional equilibrium reached from the BAU dispatch (another start)."""
    comm = build(day, seed)
    _, bau = mk.bau_dispatch(comm)
    coop = mk.solve_community_exact(comm)
    rows = {"BAU": float(bau.sum()), "cooperative": float(coop.objective.sum())}
    nash: dict = {}
    for rule in mk.ALLOCATIONS:
        d = nash_dispatch(comm, rule, bau_cost=bau)
        nash[rule] = {"total_eur": float(d.objective.sum()), "method": d.method, "converged": bool(d.converged.all()),
                      "iterations_max": int(d.iterations.max()), "gap_max_eur": float(d.gap.max()),
                      "grid_import_kwh": float(np.maximum(d.q, 0).sum()),
                      "grid_export_kwh": float(np.maximum(-d.q, 0).sum())}
    # the selection among equilibria (at q = 0 they form a set): proportional started from BAU
    if selection:
        d_bau = nash_dispatch(comm, "proportional", bau_cost=bau, p0=mk.bau_dispatch(comm)[0])
        nash["proportional"]["total_from_bau_start_eur"] = float(d_bau.objective.sum())
    out = {"day": day, "seed": seed, "totals_eur": rows, "in_dispatch": nash}
    if n_storage:
        st = Storage.uniform(n_storage)
        sd = solve_community_storage(comm, st)
        ws: dict = {"n_storage": n_storage, "capacity_kwh_each": 10.0, "power_kw_each": 5.0, "efficiency": 0.95,
                    "cooperative_eur": float(sd.objective.sum()), "qp_converged": bool(sd.converged),
                    "throughput_kwh": float(sd.discharge.sum()), "in_dispatch_eur": {}}
        for rule in mk.ALLOCATIONS:
            d = nash_dispatch(comm, rule, storage=sd.storage, bau_cost=bau)
            ws["in_dispatch_eur"][rule] = float(d.objective.sum())
        out["with_storage"] = ws
    tot = {r: nash[r]["total_eur"] for r in ("none", "equal", "proportional")}
    slides_order = sorted(("none", "equal", "proportional"), key=SLIDES_TOTALS.get)
    ours_order = sorted(tot, key=tot.get)
    out["slides_order_low_to_high"] = slides_order
    out["in_dispatch_order_low_to_high"] = ours_order
    out["verdict"] = (
        "ordering matches the slides" if ours_order == slides_order else
        f"ordering does not match: slides {' < '.join(slides_order)}, ours {' < '.join(ours_order)} (under 'none' "
        "the members take the community price, so their equilibrium is the cooperative optimum, the cheapest "
        "dispatch; any rule that changes the dispatch can only cost the community more)"
    )
    out["community_cheaper_than_bau"] = {r: tot[r] < rows["BAU"] for r in tot}
    return out


def days_summary(days: list[int], seed: int = 0) -> dict:
    rows = []
    for d in days:
        comm = build(d, seed)
        res = mk.solve_community_admm(comm)
        _, bau = mk.bau_dispatch(comm)
        cost = float((comm.player_cost(res.p).sum(1) + mk.grid_bill(comm, res.q)).sum())
        rows.append({"day": d, "bau_eur": float(bau.sum()), "community_eur": cost,
                     "saving_percent": 100.0 * (1 - cost / float(bau.sum())),
                     "admm_iterations_mean": float(res.iterations.mean())})
    s = np.array([r["saving_percent"] for r in rows])
    return {"days": rows, "saving_percent_mean": float(s.mean()), "saving_percent_min": float(s.min()),
            "saving_percent_max": float(s.max())}


def distance_example(prefs_eur_mwh_km: list[float], distance_km: float = 10.0, trade_curvature: float = 0.01,
                     preference: str = "abs") -> dict:
    """The slides' two villages over distance preferences; ``preference="signed"``: the
    slides' ``c_n gamma_nm P_nm`` as printed instead of our ``|P_nm|``."""
    rows = []
    mats = {}
    for c in prefs_eur_mwh_km:
        inst, village = mk.two_villages(c / 1000.0, distance_km=distance_km)
        inst = replace(inst, trade_curvature=trade_curvature, preference=preference)
        ci = mk.solve_p2p_ci(inst)
        qp = mk.solve_p2p_qp(inst)
        T = ci.trades
        inter = float(np.maximum(T[np.ix_(village == 0, village == 1)], 0).sum()
                      + np.maximum(T[np.ix_(village == 1, village == 0)], 0).sum())
        intra = float(sum(np.maximum(T[np.ix_(village == v, village == v)], 0).sum() for v in (0, 1)))
        grid = float(np.abs(T[:, village == -1]).sum())
        peers = village >= 0
        rows.append({
            "preference_eur_per_mwh_km": c, "inter_village_kwh": inter, "intra_village_kwh": intra,
            "with_grid_kwh": grid, "ci_iterations": int(ci.iterations), "ci_converged": bool(ci.converged),
            "reciprocity_kwh": float(ci.reciprocity), "objective_eur": float(ci.objective),
            "qp_objective_eur": float(qp.objective), "max_abs_net_vs_qp_kwh": float(np.abs(ci.net - qp.net).max()),
            "preference_cost_eur": float(inst.costs(T)["preference"].sum()),
            "net_kwh": {n: float(v) for n, v in zip(inst.names, ci.net)},
        })
        mats[c] = (T[np.ix_(peers, peers)], [n for n, p in zip(inst.names, peers) if p], village[peers])
    return {"distance_km": distance_km, "trade_curvature_eur_per_kwh2": trade_curvature, "preference": preference,
            "rows": rows, "_mats": mats}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def plots(day: dict, dist: dict) -> dict[str, bytes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = {}
    # --- totals and individual costs
    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    labels = ["BAU", "none", "equal", "proportional"]
    vals = [day["totals_eur"][k] for k in labels]
    bars = ax1.bar(range(4), vals, color=["tab:gray", "tab:blue", "tab:orange", "tab:green"])
    for b, v in zip(bars, vals):
        ax1.text(b.get_x() + b.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    ax1.set_xticks(range(4), ["BAU", "community\nno alloc.", "community\nequal", "community\nproportional"],
                   fontsize=8)
    ax1.set_ylabel("total cost of the day, EUR")
    ax1.set_title(f"day {day['day']}: community vs BAU", fontsize=10)
    kinds = [k for k in mk.PLAYER_TYPES if k in day["mean_cost_by_kind_eur"]["BAU"]]
    w = 0.2
    for j, k in enumerate(labels):
        ax2.bar(np.arange(len(kinds)) + (j - 1.5) * w, [day["mean_cost_by_kind_eur"][k][t] for t in kinds], w,
                label=k if k == "BAU" else f"community, {k}")
    ax2.axhline(0, color="k", lw=0.6)
    ax2.set_xticks(range(len(kinds)), kinds)
    ax2.set_ylabel("mean cost per player, EUR/day")
    ax2.set_title("individual costs move with the allocation rule", fontsize=10)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    out["community_costs.png"] = _png(fig)
    # --- the day's profile
    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    h = np.arange(len(day["import_price_eur_per_kwh"]))
    ax1.step(h, day["import_price_eur_per_kwh"], where="post", label="import (wholesale + mark-up)")
    ax1.step(h, day["export_price_eur_per_kwh"], where="post", label="export (wholesale)")
    ax1.step(h, day["community_price_eur_per_kwh"], where="post", label="community price (ADMM)", lw=2, ls="--")
    ax1.set_xlabel("hour")
    ax1.set_ylabel("EUR/kWh")
    ax1.legend(fontsize=7)
    ax2.step(h, day["bau_net_import_kwh"], where="post", label="BAU: sum of net imports")
    ax2.step(h, day["community_net_import_kwh"], where="post", label="community: net import q")
    ax2.axhline(0, color="k", lw=0.6)
    ax2.set_xlabel("hour")
    ax2.set_ylabel("kWh")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    out["community_day.png"] = _png(fig)
    # --- distance example
    fig = Figure(figsize=(14, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 4, gridspec_kw={"wspace": 0.45})
    show = [0.0, 0.5, 1.5]
    vmax = max(np.abs(dist["_mats"][c][0]).max() for c in show if c in dist["_mats"])
    for ax, c in zip(axes[:3], show):
        if c not in dist["_mats"]:
            continue
        T, names, vil = dist["_mats"][c]
        im = ax.imshow(np.maximum(T, 0), cmap="viridis", vmin=0, vmax=vmax)
        k = int((vil == 0).sum())
        ax.axhline(k - 0.5, color="w", lw=0.8)
        ax.axvline(k - 0.5, color="w", lw=0.8)
        ax.set_title(f"c = {c} EUR/MWh/km", fontsize=9)
        ax.set_xlabel("buyer (A | B)", fontsize=8)
        ax.set_ylabel("seller (A | B)", fontsize=8)
    fig.colorbar(im, ax=axes[:3], label="kWh", shrink=0.8)
    rows = dist["rows"]
    axes[3].plot([r["preference_eur_per_mwh_km"] for r in rows], [r["inter_village_kwh"] for r in rows], "o-")
    axes[3].set_xlabel("distance preference c, EUR/MWh per km")
    axes[3].set_ylabel("energy between the villages, kWh")
    axes[3].set_title(f"villages {dist['distance_km']:.0f} km apart", fontsize=9)
    out["distance_example.png"] = _png(fig)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="Reproduce the energy-collective slides' figures")
    p.add_argument("--out", required=True)
    p.add_argument("--day", type=int, default=120, help="data day 0-364 (default 120 = 1 May)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deviation-players", type=int, default=40,
                   help="players (evenly spaced) whose best unilateral deviation is searched; 0 to skip")
    p.add_argument("--prefs", default="0,0.25,0.5,1,1.5,3", help="distance preferences, EUR/MWh per km")
    p.add_argument("--storage", type=int, default=10, help="manager-dispatched batteries in the comparison (0: none)")
    p.add_argument("--quick", action="store_true", help="smoke run: 4 deviation players, preferences 0, 0.5, 1.5")
    p.add_argument("--preference-literal", action="store_true",
                   help="also run the two villages with the slides' preference term c gamma P as printed "
                        "(p2p_preference='signed'), beside ours (c gamma |P|)")
    a = p.parse_args(argv)
    if a.quick:
        a.deviation_players, a.prefs, a.storage = min(a.deviation_players, 4), "0,0.5,1.5", 0
    if not 0 <= a.day <= 364:
        raise SystemExit(f"--day must be in [0, 364], got {a.day}")
    day = one_day(a.day, a.seed, a.deviation_players)
    summary = days_summary([14 + 30 * k for k in range(12)], a.seed)
    prefs = sorted({float(x) for x in a.prefs.split(",")} | {0.0, 0.5, 1.5})
    dist = distance_example(prefs)
    comparison = allocation_comparison(a.day, a.seed, a.storage, selection=not a.quick)
    files = plots(day, dist)
    figures = {
        "command": f"python -m prosumer_gym.eval.reproduce.energy_collective --out {a.out} --day {a.day} "
                   f"--seed {a.seed} --storage {a.storage}",
        "one_day": {k: v for k, v in day.items() if not k.startswith("_")},
        "days_summary": summary,
        "allocation_comparison": comparison,
        "distance_example": {k: v for k, v in dist.items() if not k.startswith("_")},
    }
    if a.preference_literal:
        lit = distance_example(prefs, preference="signed")
        figures["distance_example_signed"] = {k: v for k, v in lit.items() if not k.startswith("_")}
    out = Path(a.out)
    atomic_write_bytes(out / "energy_collective_figures.json", json.dumps(figures, indent=2).encode())
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    t = day["totals_eur"]
    print(f"day {a.day}: BAU {t['BAU']:.2f} EUR; community none {t['none']:.2f}, equal {t['equal']:.2f}, "
          f"proportional {t['proportional']:.2f} (saving {day['saving_vs_bau_percent']['none']:.1f}%)")
    c = comparison
    print(f"slides (AUD): BAU {SLIDES_TOTALS['BAU']}, none {SLIDES_TOTALS['none']}, equal {SLIDES_TOTALS['equal']}, "
          f"proportional {SLIDES_TOTALS['proportional']}")
    print(f"in-dispatch (Nash) totals, EUR: " + ", ".join(f"{r} {v['total_eur']:.2f}" for r, v in c["in_dispatch"].items())
          + f"; cooperative {c['totals_eur']['cooperative']:.2f}")
    if "with_storage" in c:
        w = c["with_storage"]
        print(f"with {w['n_storage']} batteries: cooperative {w['cooperative_eur']:.2f}; in-dispatch "
              + ", ".join(f"{r} {v:.2f}" for r, v in w["in_dispatch_eur"].items()))
    print(f"verdict: {c['verdict']}")
    print(f"12 days: saving {summary['saving_percent_mean']:.1f}% (min {summary['saving_percent_min']:.1f}, "
          f"max {summary['saving_percent_max']:.1f})")
    print("inter-village energy: " + ", ".join(f"c={r['preference_eur_per_mwh_km']:g}: {r['inter_village_kwh']:.2f} kWh"
                                               for r in dist["rows"]))
    if a.preference_literal:
        print("inter-village energy, c gamma P as printed: "
              + ", ".join(f"c={r['preference_eur_per_mwh_km']:g}: {r['inter_village_kwh']:.2f} kWh"
                          for r in figures["distance_example_signed"]["rows"]))
    print(f"wrote {', '.join(sorted(['energy_collective_figures.json', *files]))} to {out}")
    return figures


if __name__ == "__main__":
    main()
