"""``prosumer-gym-reproduce``: one command per source document (issue 16).

    prosumer-gym-reproduce PAPER_OR_CHAPTER [--quick] [--out DIR] [--seeds N]

``PAPER_OR_CHAPTER`` is one of :data:`PARTS` (``ch4``, ``ch5``, ``ch6``, ``storage-sharing``,
``prosumer-sharing``, ``energy-collective``) or a group of :data:`GROUPS` (``dissertation`` =
ch4 + ch5 + ch6, ``all``). Each part

1. runs its reproduction module's own ``main()`` (``--quick`` passed through), which writes
   the module's figures and JSON into ``DIR/<part>/``;
2. re-runs the module's headline experiments over ``--seeds`` seeds (0 .. N-1) where they
   are cheap, through the module's own functions (no logic is duplicated here);
3. writes ``DIR/<part>/table.md`` and ``table.json``: one row per experiment, columns
   "experiment | paper value | ours (mean [95% CI] over seeds) | same shape?". CIs are
   percentile bootstraps of the mean (``scipy.stats.bootstrap``, 2,000 resamples, fixed
   generator). A row measured once (one seed, one run, a deterministic example) says so
   instead of showing a CI; "same shape?" states its criterion and how many seeds meet it.

``DIR/summary.md`` and ``DIR/summary.json`` collect every part that was run. Every file is
written atomically (:mod:`prosumer_gym.core.io`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.core.io import atomic_write_text

__all__ = ["PARTS", "GROUPS", "COLUMNS", "Row", "summarise_values", "reproduce", "main"]

COLUMNS = ("experiment", "paper value", "ours (mean [95% CI] over seeds)", "same shape?")
BOOTSTRAP_RESAMPLES = 2000


# ============================================================================ rows and statistics
@dataclass
class Row:
    """One experiment: the paper's value (text), our value per seed and, per seed, whether the
    paper's qualitative claim (``criterion``) holds (``shape=None``: nothing to compare)."""

    experiment: str
    paper: str
    values: Sequence[float]
    shape: Sequence[bool] | None
    criterion: str = ""
    unit: str = ""
    kind: str = "seeds"  # "seeds" (one value per seed) or "single" (one run / one seed only)
    note: str = ""
    digits: int = 3
    extra: dict[str, Any] = field(default_factory=dict)


def summarise_values(values: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """Mean and percentile-bootstrap 95% CI of the mean (``ci_*`` = None for fewer than 2 values)."""
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("values must hold at least one number, got none")
    out: dict[str, Any] = {"n": int(x.size), "mean": float(x.mean()), "values": x.tolist(),
                           "ci_low": None, "ci_high": None}
    if x.size >= 2 and np.all(np.isfinite(x)):
        if np.ptp(x) == 0.0:
            out["ci_low"] = out["ci_high"] = float(x[0])
        else:
            from scipy.stats import bootstrap

            res = bootstrap((x,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95,
                            method="percentile", rng=np.random.default_rng(seed))
            out["ci_low"], out["ci_high"] = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return out


def _num(v: float, digits: int) -> str:
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) >= 10 ** 5 or abs(v) < 10 ** -(digits - 1)):
        return f"{v:.{digits}g}"
    return f"{v:,.{digits}f}" if abs(v) < 100 else f"{v:,.{max(digits - 2, 0)}f}"


def _ours_text(row: Row, st: dict[str, Any]) -> str:
    u = f" {row.unit}" if row.unit else ""
    m = _num(st["mean"], row.digits)
    if row.kind == "single" or st["n"] == 1:
        return f"{m}{u} (one {'seed' if row.kind == 'seeds' else 'run'}: no CI)"
    return f"{m}{u} [{_num(st['ci_low'], row.digits)}, {_num(st['ci_high'], row.digits)}] (n = {st['n']})"


def _shape_text(row: Row) -> str:
    if row.shape is None:
        return "n/a (no paper value to compare)"
    k, n = int(sum(bool(s) for s in row.shape)), len(row.shape)
    verdict = "yes" if k == n else ("no" if k == 0 else "partly")
    crit = f": {row.criterion}" if row.criterion else ""
    return f"{verdict} ({k}/{n}{crit})"


def row_record(row: Row) -> dict[str, Any]:
    st = summarise_values(row.values)
    return {"experiment": row.experiment, "paper_value": row.paper, "ours": st, "ours_text": _ours_text(row, st),
            "unit": row.unit, "kind": row.kind, "criterion": row.criterion,
            "same_shape_per_seed": None if row.shape is None else [bool(s) for s in row.shape],
            "same_shape": _shape_text(row), "note": row.note, **({"extra": row.extra} if row.extra else {})}


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(records: Sequence[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in records:
        exp = r["experiment"] + (f" — {r['note']}" if r["note"] else "")
        lines.append("| " + " | ".join(_cell(c) for c in (exp, r["paper_value"], r["ours_text"], r["same_shape"]))
                     + " |")
    return "\n".join(lines)


def _pct(x: float) -> float:
    return 100.0 * float(x)


# ============================================================================ parts
@dataclass(frozen=True)
class Part:
    name: str
    document: str
    module: str
    run: Callable[[Path, bool, int], tuple[list[Row], list[str]]]
    doc: str


def _ch4(out: Path, quick: bool, n_seeds: int) -> tuple[list[Row], list[str]]:
    """Chapter 4 (P2PRecommendation-v0): efficiency vs OPT, gain over Zhu_P, K sensitivity."""
    from prosumer_gym.eval.reproduce import p2p_recommendation as m

    argv = ["--out", str(out)] + (["--quick"] if quick else [])
    fig = m.main(argv)
    days = 20 if quick else 365
    sizes = [(16, 10)] if quick else [(16, 10), (16, 30)]
    seeds = range(n_seeds)
    rows: list[Row] = []
    for P, C in sizes:
        eff: dict[str, list[float]] = {n: [] for n in ("upl", "bpt-k", "zhu_p")}
        gain: list[float] = []
        for s in seeds:
            rs = {n: m.run(n, P, C, days, 0, s) for n in m.POLICIES}
            for n in eff:
                eff[n].append(m._eff(rs[n], rs["opt"]))
            gain.append(_pct(rs["upl"]["exchanged"].sum() / rs["zhu_p"]["exchanged"].sum() - 1))
        both = [min(u, b) for u, b in zip(eff["upl"], eff["bpt-k"])]
        rows += [
            Row(f"Figs. 4.2/4.10: UPL efficiency vs OPT, {P}x{C}, {days} days", "≈ 99%",
                [_pct(v) for v in eff["upl"]], [v >= 0.95 for v in eff["upl"]], ">= 95%", "%", digits=1),
            Row(f"Figs. 4.2/4.10: BPT-K efficiency vs OPT, {P}x{C}, {days} days", "≈ 98%",
                [_pct(v) for v in eff["bpt-k"]], [v >= 0.95 for v in eff["bpt-k"]], ">= 95%", "%", digits=1),
            Row(f"Figs. 4.2/4.10: Zhu_P efficiency vs OPT, {P}x{C}, {days} days", "≈ 75%, below UPL and BPT-K",
                [_pct(v) for v in eff["zhu_p"]], [z < b for z, b in zip(eff["zhu_p"], both)],
                "below UPL and BPT-K", "%", digits=1),
            Row(f"Fig. 4.4: UPL exchanged energy over Zhu_P, {P}x{C}, {days} days", "+27% (16x10)", gain,
                [g > 0 for g in gain], "> 0", "%", digits=2),
        ]
    for K in (1, 2, 3) if not quick else (1, 3):
        d: list[float] = []
        for s in seeds:
            b = m.run("bpt-k", 16, 10, days, 0, s, K=K)["expected"].sum()
            z = m.run("zhu_p", 16, 10, days, 0, s, K=K)["expected"].sum()
            d.append(_pct(b / z - 1))
        rows.append(Row(f"Fig. 4.10: BPT-K expected energy over Zhu_P at K = {K}, 16x10, {days} days",
                        "> 0 (BPT-K above Zhu_P for every K)", d, [v > 0 for v in d], "> 0", "%", digits=2))
    s3, s4 = fig.get("scenario3", {}), fig.get("scenario4", {})
    if "mean_ratio_MUPL_over_FIA_vs_K" in s3:
        r = s3["mean_ratio_MUPL_over_FIA_vs_K"]
        rows.append(Row("Fig. 4.7: initialisation days M-UPL / FIA (mean over K), 16x10", "≈ 7x", [r], [r > 1],
                        "> 1 (FIA shorter)", "x", kind="single", digits=2))
    vt = {k: v for k, v in s4.get("vs_T", {}).items() if k != "OPT"}
    if len(vt) >= 2 and s4["vs_T"].get("OPT"):
        ts = sorted(vt, key=float)
        lo, hi = vt[ts[0]] / s4["vs_T"]["OPT"], vt[ts[-1]] / s4["vs_T"]["OPT"]
        rows.append(Row(f"Fig. 4.11: BPT-K % of OPT, T = {ts[0]} → {ts[-1]} kWh, 16x50 (change)",
                        "close to OPT at T = 1, small decrease with T", [_pct(hi - lo)], [hi <= lo], "<= 0", "pp",
                        kind="single", digits=2))
    return rows, sorted(p.name for p in out.glob("*.png"))


def _ch5(out: Path, quick: bool, n_seeds: int) -> tuple[list[Row], list[str]]:
    """Chapter 5 (P2PTrading-v0): Table 5.1's ratios to Rule and the chapter's orderings."""
    from prosumer_gym.eval.main_job import PAPER_TABLE_5_1
    from prosumer_gym.eval.reproduce import p2p_trading as m

    argv = ["--out", str(out), "--seeds", ",".join(str(s) for s in range(n_seeds)), "--no-progress"]
    m.main(argv + (["--quick"] if quick else []))
    data = json.loads((out / "scenario2.json").read_text())
    per_seed = data["per_seed"]
    rule = PAPER_TABLE_5_1["Rule"]

    def paper(name: str) -> tuple[str, str]:
        v = PAPER_TABLE_5_1[name]
        b = 100 * (v["buyers_mean"] - rule["buyers_mean"]) / abs(rule["buyers_mean"])
        return f"{b:+.1f}% ({name})", f"{100 * (v['sellers_mean'] / rule['sellers_mean'] - 1):+.1f}% ({name})"

    def field_(label: str, key: str) -> list[float]:
        return [_pct(next(r for r in rows if r["run"] == label)[key]) for rows in per_seed]

    ords = [m.orderings(rows) for rows in per_seed]
    labels = {r["run"] for r in per_seed[0]}
    size = "5x5" if quick else "15x15"
    days = 20 if quick else 365
    out_rows: list[Row] = []
    for learner, pname in (("PQR", "DEbATE-PQR"), ("ProDQN", "DEbATE-DQN")):
        pb, ps = paper(pname)
        for clearing in ("debate", "savings"):
            label = f"{clearing} + {learner}"
            if label not in labels:
                continue
            kb, ks = f"{label}: buyers better than Rule and Zhu", f"{label}: sellers better than Rule"
            out_rows += [
                Row(f"Table 5.1: {label} buyers' PT value vs Rule, {size}, {days} days", pb,
                    field_(label, "buyers_vs_ref"), [o[kb] for o in ords], "above Rule and Zhu", "%", digits=2),
                Row(f"Table 5.1: {label} sellers' revenue vs Rule, {size}, {days} days", ps,
                    field_(label, "sellers_vs_ref"), [o[ks] for o in ords], "above Rule", "%", digits=2),
            ]
            if clearing == "savings":
                out_rows[-2].note = out_rows[-1].note = "our default clearing, not DEbATE"
    pb, ps = paper("Zhu")
    out_rows += [
        Row(f"Table 5.1: Zhu sellers' revenue vs Rule, {size}, {days} days", ps + "; the highest",
            field_("zhu", "sellers_vs_ref"), [o["Zhu: highest sellers' revenue"] for o in ords],
            "highest of all runs", "%", digits=2),
        Row(f"Table 5.1: Zhu buyers' PT value vs Rule, {size}, {days} days", pb + "; the lowest",
            field_("zhu", "buyers_vs_ref"), [o["Zhu: lowest buyers' value"] for o in ords],
            "lowest of all runs", "%", digits=2),
    ]
    s1 = out / "scenario1.json"
    if s1.exists():
        by_np = json.loads(s1.read_text())["by_np"]
        k = str(max(int(v) for v in by_np))
        out_rows.append(Row(f"Fig. 5.5: DEbATE objective at G_max, 5x5, NP = {k} (share of our clearing's gain)",
                            "converges (NP = 20, G_max = 10 000)", [by_np[k]["norm_final_mean"]],
                            [by_np[k]["norm_final_mean"] >= 0.95], ">= 0.95", kind="single",
                            note=f"mean of {by_np[k]['runs']} market days"))
    return out_rows, sorted(p.name for p in out.glob("*.png"))


def _ch6(out: Path, quick: bool, n_seeds: int) -> tuple[list[Row], list[str]]:
    """Chapter 6 (EUber-v0): one day of the five approaches over seeds under our rules (rows
    "ours") and under the paper's literal ones (rows "literal": ``euber.LITERAL``, charging only
    below r_min, Eqs. 6.1b-c hard, Alg. 8 without our guard), plus the module's figures."""
    from prosumer_gym.eval.reproduce import euber as m

    m.main(["--out", str(out)] + (["--quick"] if quick else []))
    res = json.loads((out / "results.json").read_text())
    sizes = res["sizes"]["day"]
    n_slots = sizes.get("n_slots", 96)
    tag = f"{n_slots} slots" + (", small market" if quick else ", paper size")
    proposed = [a for a in m.APPROACHES if a != "BG"]
    by_setting = {st: [m._summary_day(m.experiment_day(s, sizes, st)) for s in range(n_seeds)] for st in m.SETTINGS}
    rows: list[Row] = []
    for st, days in by_setting.items():
        rows += [Row(f"Fig. 6.7: tasks served {a} − BG, {tag}, {st}", "> 850 more tasks than BG in 24 h",
                     [d["tasks_vs_BG"][a] for d in days], [d["tasks_vs_BG"][a] > 0 for d in days], "> 0", "tasks",
                     digits=1) for a in proposed]
        bg = [100 * d["BG"]["feasible_slots"] / n_slots for d in days]
        prop = [min(100 * d[a]["feasible_slots"] / n_slots for a in proposed) for d in days]
        rows.append(Row(f"Fig. 6.7: BG's slots meeting the V2G requirement (Eq. 6.3), {tag}, {st}",
                        "BG mostly violates the V2G requirement", bg, [b < p for b, p in zip(bg, prop)],
                        "fewer than every proposed approach", "%", digits=1))
        diff = [d["PK-OPT"]["total_cost_usd"] - d["CARS-BMW"]["total_cost_usd"] for d in days]
        order = [d["PK-OPT"]["total_cost_usd"] < d["CARS-OPT"]["total_cost_usd"] < d["PK-BMW"]["total_cost_usd"]
                 < d["CARS-BMW"]["total_cost_usd"] for d in days]
        rows.append(Row(f"Fig. 6.6: total cost PK-OPT − CARS-BMW, {tag}, {st}",
                        "< 0 (PK-OPT < CARS-OPT < PK-BMW < CARS-BMW)", diff, order,
                        "PK-OPT < CARS-OPT < PK-BMW < CARS-BMW", "$", digits=1))
    lit, ours = by_setting["literal"], by_setting["ours"]
    infeas = [100 * np.mean([d[a]["potr_infeasible_slots"] for a in proposed]) / n_slots for d in lit]
    rows.append(Row(f"Eq. 6.1 as printed (6.1b-c hard): slots where POTR is infeasible, {tag}, literal",
                    "solved every slot", infeas, [v == 0 for v in infeas], "= 0 (always feasible)", "%", digits=1,
                    note="mean over the four POTR approaches; such a slot gets the soft lists"))
    for a in m.APPROACHES:
        dl = [d_l[a]["tasks_served"] - d_o[a]["tasks_served"] for d_l, d_o in zip(lit, ours)]
        rows.append(Row(f"tasks served {a}, literal − ours, {tag}", "no value (the paper runs its rules only)", dl,
                        None, unit="tasks", digits=1))
    sc = res["price_scaling"]["task_volume"]
    rise = sc["PK-OPT"][-1] - sc["PK-OPT"][0]
    rows.append(Row("Fig. 6.8: PK-OPT price per task, 100% − 32% task volume", "rises with task volume", [rise],
                    [rise > 0], "> 0", "$", kind="single", digits=2))
    gap = sc["PK-BMW"][-1] - sc["PK-OPT"][-1]
    rows.append(Row("Fig. 6.8: price per task PK-BMW − PK-OPT at 100% volume", "up to ≈ +$2", [gap], [gap > 0],
                    "> 0", "$", kind="single", digits=2))
    curve = res["mae_curves"]["CARS-BMW"]  # curve[k] = MAE after k slots
    start = res["mae"]["CARS-BMW"]["mae_start"]
    rows.append(Row(f"Fig. 6.10: CARS-BMW preference MAE after {len(curve) - 1} slots",
                    "0.28 → < 0.05 (250 slots) → 0.03 (500)", [curve[-1]], [curve[-1] < start],
                    "below the prior's MAE", kind="single", note=f"prior's MAE {start:.3f}"))
    k = res["k_sensitivity"]
    dk = k["PK-OPT"]["cost_per_task"][-1] - k["PK-OPT"]["cost_per_task"][0]
    rows.append(Row(f"Fig. 6.12: PK-OPT objective per task, K = {k['K'][-1]} − K = {k['K'][0]}",
                    "decreases with K", [dk], [dk < 0], "< 0", "$", kind="single", digits=2))
    return rows, sorted(p.name for p in out.glob("*.png"))


def _storage(out: Path, quick: bool, n_seeds: int) -> tuple[list[Row], list[str]]:
    """Storage-sharing paper: Table 1, the utility-vs-requirement crossing, Table 2, over market seeds."""
    from prosumer_gym.eval.reproduce import storage_sharing as m

    res = m.main(["--out", str(out)] + (["--quick"] if quick else []))
    n = res["markets_per_point"]
    rel, uvr, sch = [], [], []
    for s in range(n_seeds):  # seed 0 = the module's own seeds (1, 2, 3)
        rel.append(m.reluctance_table(n, seed=1 + 1000 * s, windows=("floor",)))
        uvr.append(m.utility_vs_requirement(n, seed=2 + 1000 * s))
        sch.append(m.scheme_comparison(n, seed=3 + 1000 * s))

    def dec(vals: list[float]) -> bool:
        return bool(np.all(np.diff(vals) < 0))

    masked = " (values masked in our copy: shape only)"
    rows: list[Row] = []
    for key, label in (("shared_kwh", "storage shared"), ("sfc_saving", "saving per SFC"),
                       ("ru_utility", "utility per RU")):
        curves = [[r[key] for r in t["floor"]] for t in rel]
        rows.append(Row(f"Table 1: {label}, β = 1.0 minus β = 0.001 ({n} markets)", "falls with β" + masked,
                        [c[-1] - c[0] for c in curves], [dec(c) for c in curves], "decreasing in β",
                        "kWh" if key == "shared_kwh" else "cents", digits=1))
    for w in ("floor", "vickrey"):
        lo = [u[w]["ru_utility"]["0.01"] for u in uvr]
        hi = [u[w]["ru_utility"]["0.1"] for u in uvr]
        rows.append(Row(f"Fig. utility vs requirement ({w} window): β 0.01 − β 0.1 at the highest demand",
                        "> 0, with high reluctance better at low demand (a crossing)" + masked,
                        [a[-1] - b[-1] for a, b in zip(lo, hi)],
                        [u[w]["high_reluctance_better_at_lowest_demand"] and u[w]["low_reluctance_better_at_highest_demand"]
                         for u in uvr], "curves cross", "cents", digits=1,
                        note="default window" if w == "floor" else "the spec's literal window"))
    imp = [t["rows"][-1]["improvement_over_ed_pct"] for t in sch]
    rows.append(Row(f"Table 2: proposed over ED at the largest requirement ({sch[0]['rows'][-1]['mean_total_requirement_kwh']:.0f} kWh)",
                    "proposed > ED > FIT, advantage grows with demand" + masked, imp,
                    [all(r["proposed"] >= r["ed"] - 1e-9 and r["proposed"] > r["fit"] for r in t["rows"])
                     and t["rows"][-1]["improvement_over_ed_pct"] >= t["rows"][0]["improvement_over_ed_pct"]
                     for t in sch], "proposed >= ED > FIT everywhere, gap grows", "%", digits=2))
    conv = res["convergence"]
    rows.append(Row(f"Algorithm 1 vs the SE: max price gap ({conv['markets']} markets)", "converges to the SE",
                    [conv["max_abs_price_gap_algorithm1_vs_se"]], [conv["max_abs_price_gap_algorithm1_vs_se"] < 1e-3],
                    "< 1e-3 c/kWh", "c/kWh", kind="single"))
    ic = res["auction_properties"]["default (floor window, marginal pair excluded, equal burden)"]
    rows.append(Row("Theorem 3: share of profitable reservation-price lies (default mechanism)", "0 (truthful)",
                    [_pct(ic["ic_profitable_lies_share"])], [ic["ic_profitable_lies_share"] == 0], "= 0", "%",
                    kind="single", note=f"{res['auction_properties']['markets']} markets x 8 RUs"))
    return rows, sorted(p.name for p in out.glob("*.png"))


def _prosumer(out: Path, quick: bool, n_seeds: int) -> tuple[list[Row], list[str]]:
    """Prosumer-sharing paper (Figs. 4-9): distance to Problem III.2's optimum over communities."""
    from prosumer_gym.eval.reproduce import prosumer_sharing as m

    # the module's --quick is 300 days and 4 communities; here the communities follow --seeds
    res = m.main(["--out", str(out), "--seeds", str(n_seeds)] + (["--days", "300"] if quick else []))
    days = res["settings"]["days"]
    k200 = min(m.CHECKPOINT, days)
    rows: list[Row] = []
    for key, st in res["statistics"].items():
        cur = np.asarray(st["_median_distance_curve"])  # (days, communities)
        for day in sorted({k200, days}):
            if key != "paper/eq22" and day != days:
                continue
            v = cur[day - 1].tolist()
            rows.append(Row(f"Figs. 4-5: median relative distance to the optimum, {key}, day {day}",
                            "→ 0 (the averages converge to the optimum)" if key.startswith("paper") else
                            "no figure (Section V scenario): → 0 expected", v, [x < 0.1 for x in v], "< 0.1",
                            digits=3, note="Eq. 22 as printed" if key.endswith("eq22") else "Eq. 20 consensus form"))
    last = res["main_run_eq22"]["last_200_days"]
    rows.append(Row(f"Fig. 8-9: days with total consumption within 5% of C_x (last {min(200, days)} days)",
                    "tracks C_x", [_pct(last["share_days_within_5pct_x"])],
                    [last["share_days_within_5pct_x"] >= 0.9], ">= 90%", "%", kind="single", digits=1))
    rows.append(Row("Fig. 9c: relative std of Omega_x (last 200 days)", "converges",
                    [_pct(last["omega_rel_std"][0])], [last["omega_rel_std"][0] < 0.05], "< 5%", "%",
                    kind="single", digits=2))
    return rows, sorted(p.name for p in out.glob("*.png"))


SLIDES = {"BAU": 55.38, "none": 47.12, "equal": 45.27, "proportional": 46.81}


def _collective(out: Path, quick: bool, n_seeds: int) -> tuple[list[Row], list[str]]:
    """Energy-collective slides: community vs BAU for one day and over 12 days, over population seeds."""
    from prosumer_gym.eval.reproduce import energy_collective as m

    fig = m.main(["--out", str(out)] + (["--quick"] if quick else []))
    day = fig["one_day"]["day"]
    ones = [m.one_day(day, s, deviation_players=0) for s in range(n_seeds)]
    cal = [14 + 30 * k for k in ((0, 6) if quick else range(12))]
    many = [m.days_summary(cal, s) for s in range(n_seeds)]
    rows: list[Row] = []
    for rule in ("none", "equal", "proportional"):
        p = 100 * (1 - SLIDES[rule] / SLIDES["BAU"])
        sav = [o["saving_vs_bau_percent"][rule] for o in ones]
        rows.append(Row(f"one day (day {day}): community ({rule} allocation) saving vs BAU",
                        f"{p:.1f}% ({SLIDES[rule]} vs {SLIDES['BAU']})", sav, [v > 0 for v in sav],
                        "community cheaper than BAU", "%", digits=1))
    spread = [max(o["totals_eur"][r] for r in ("none", "equal", "proportional"))
              - min(o["totals_eur"][r] for r in ("none", "equal", "proportional")) for o in ones]
    rows.append(Row(f"one day: spread of the community total across allocation rules", "1.85 EUR (45.27..47.12)",
                    spread, [s > 0.01 for s in spread], "totals differ by more than 1 cent", "EUR", digits=4,
                    note="budget-balanced rules cannot change the total (docs/energy_collective.md)"))
    cmp_ = fig["allocation_comparison"]
    nash = {r: v["total_eur"] for r, v in cmp_["in_dispatch"].items()}
    rules3 = ("none", "equal", "proportional")
    rows.append(Row("one day: spread of the total across allocation rules, rule in the dispatch (members' Nash "
                    "equilibrium, seed 0)", "1.85 EUR (45.27..47.12)",
                    [max(nash[r] for r in rules3) - min(nash[r] for r in rules3)],
                    [max(nash[r] for r in rules3) - min(nash[r] for r in rules3) > 0.01],
                    "totals differ by more than 1 cent", "EUR", kind="single", digits=2))
    rows.append(Row("one day: in-dispatch total, equal minus none allocation (seed 0)",
                    f"{SLIDES['equal'] - SLIDES['none']:.2f} (equal cheapest)", [nash["equal"] - nash["none"]],
                    [nash["equal"] < nash["none"]], "< 0 (the slides' ordering)", "EUR", kind="single", digits=2,
                    note="under 'none' the equilibrium is the cooperative optimum, so no rule can be cheaper"))
    rows.append(Row(f"{len(cal)} days (15th of the months): mean community saving vs BAU", "no value (one day shown)",
                    [s["saving_percent_mean"] for s in many], None, unit="%", digits=1))
    dist = fig["distance_example"]["rows"]
    inter = {r["preference_eur_per_mwh_km"]: r["inter_village_kwh"] for r in dist}
    c0, c1 = min(inter), max(inter)
    rows.append(Row(f"distance example: energy between the villages, c = {c1:g} vs {c0:g} EUR/MWh/km (change)",
                    "less exchange between villages with a higher distance preference", [inter[c1] - inter[c0]],
                    [inter[c1] < inter[c0]], "< 0", "kWh", kind="single", digits=2))
    return rows, sorted(p.name for p in out.glob("*.png"))


PARTS: dict[str, Part] = {
    "ch4": Part("ch4", "dissertation, chapter 4 (P2PRecommendation)", "p2p_recommendation", _ch4,
                "docs/p2p_recommendation.md"),
    "ch5": Part("ch5", "dissertation, chapter 5 (P2PTrading)", "p2p_trading", _ch5, "docs/p2p_trading_reproduction.md"),
    "ch6": Part("ch6", "dissertation, chapter 6 (EUber)", "euber", _ch6, "docs/euber.md"),
    "storage-sharing": Part("storage-sharing", "storage-sharing paper (StorageSharing)", "storage_sharing", _storage,
                            "docs/storage_sharing.md"),
    "prosumer-sharing": Part("prosumer-sharing", "prosumer-sharing paper (ProsumerSharing)", "prosumer_sharing",
                             _prosumer, "docs/prosumer_sharing.md"),
    "energy-collective": Part("energy-collective", "energy-collective slides (EnergyCollective)", "energy_collective",
                              _collective, "docs/energy_collective.md"),
}
GROUPS: dict[str, tuple[str, ...]] = {"dissertation": ("ch4", "ch5", "ch6"), "all": tuple(PARTS)}
NAMES = (*GROUPS, *PARTS)


def parts_of(name: str) -> tuple[str, ...]:
    if name in GROUPS:
        return GROUPS[name]
    if name in PARTS:
        return (name,)
    raise ValueError(f"PAPER_OR_CHAPTER must be one of {', '.join(NAMES)}; got {name!r}")


def run_part(name: str, out: Path, quick: bool, seeds: int) -> dict[str, Any]:
    """Run one part; write ``out/<name>/table.md`` and ``table.json``; return the record."""
    part = PARTS[name]
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows, figures = part.run(d, quick, seeds)
    secs = time.perf_counter() - t0
    records = [row_record(r) for r in rows]
    cmd = f"prosumer-gym-reproduce {name}{' --quick' if quick else ''} --out {out} --seeds {seeds}"
    rec = {"part": name, "document": part.document, "module": f"prosumer_gym.eval.reproduce.{part.module}",
           "command": cmd, "quick": quick, "seeds": seeds, "date": date.today().isoformat(),
           "wall_seconds": round(secs, 1), "columns": list(COLUMNS), "rows": records, "figures": figures,
           "details": part.doc}
    text = (f"# {part.document}\n\n`{cmd}` ({'quick sizes: a smoke run, not the reported figures; ' if quick else ''}"
            f"{secs:.0f} s, {rec['date']}). Seeds 0..{seeds - 1} where a row has a CI; figures and the module's "
            f"own JSON are in this folder; details in {part.doc}.\n\n{markdown(records)}\n\n"
            f"Figures: {', '.join(figures) if figures else 'none'}\n")
    atomic_write_text(d / "table.md", text)
    atomic_write_text(d / "table.json", json.dumps(rec, indent=1) + "\n")
    return rec


def reproduce(name: str, out: str | Path = "runs/reproduce", quick: bool = False, seeds: int | None = None
              ) -> list[dict[str, Any]]:
    """Run ``name`` (a part or a group); ``seeds`` defaults to 10 (3 with ``quick``)."""
    names = parts_of(name)
    if seeds is None:
        seeds = 3 if quick else 10
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    out = Path(out)
    recs = []
    for n in names:
        print(f"[prosumer-gym-reproduce] {n} ...", file=sys.stderr, flush=True)
        recs.append(run_part(n, out, quick, seeds))
        print(f"[prosumer-gym-reproduce] {n}: {recs[-1]['wall_seconds']} s", file=sys.stderr, flush=True)
    prev = out / "summary.json"
    merged = {r["part"]: r for r in (json.loads(prev.read_text()) if prev.exists() else [])}
    merged.update({r["part"]: r for r in recs})
    ordered = [merged[k] for k in PARTS if k in merged]
    atomic_write_text(prev, json.dumps(ordered, indent=1) + "\n")
    atomic_write_text(out / "summary.md", "\n\n".join(
        f"## {r['document']}\n\n`{r['command']}` ({r['wall_seconds']:.0f} s, {r['date']})\n\n{markdown(r['rows'])}"
        for r in ordered) + "\n")
    return recs


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="prosumer-gym-reproduce", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="PAPER_OR_CHAPTER", choices=NAMES, help=f"one of {', '.join(NAMES)}")
    p.add_argument("--quick", action="store_true", help="small sizes and few seeds (seconds; CI smoke run)")
    p.add_argument("--out", default="runs/reproduce", help="output folder (default runs/reproduce)")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 of the seeded rows (default 10; quick 3)")
    a = p.parse_args(argv)
    if a.seeds is not None and a.seeds < 1:
        p.error(f"--seeds must be >= 1, got {a.seeds}")
    recs = reproduce(a.name, a.out, a.quick, a.seeds)
    for r in recs:
        print(f"\n## {r['document']} ({r['wall_seconds']} s)\n\n{markdown(r['rows'])}")
    print(f"\nwrote {Path(a.out) / 'summary.md'} and {len(recs)} table(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
