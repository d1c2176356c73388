"""Scores and the published board: ``LEADERBOARD.md``, a static HTML page with sortable
tables, and matplotlib PNGs (per-metric dot/interval plots with 95% CIs, learning curves, performance
profiles and IQM intervals).

Scores (L2RPN style), per track and metric ``m`` with direction taken into account:
``score = 100 (x - b) / (t - b)`` where ``b`` is the mean of the track's ``baseline`` entry
and ``t`` the best mean among its ``top`` entries. The composite is ``sum_m w_m score_m``
with the track's published weights; its 95% CI comes from the per-seed composites (the
normalisers are treated as constants), a metric score's CI is the metric's CI scaled.

The rliable statistics of every track (:mod:`~prosumer_gym.eval.leaderboard.stats`): per
row the IQM of the composite over runs x seeds and ``P(improvement)`` over the baseline,
each with a 95% bootstrap CI, and under each table whether the two entries with the highest
IQM are distinguishable. Entries sharing a ``group`` (training seeds of one method, e.g. the
``rl-baseline`` entries ``ppo/seed0``, ``ppo/seed1``, ...) are one row named after the
group: its metric values are the per-seed means over the runs (:func:`merge_runs`).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.eval.leaderboard.core import Track, mean_ci95, track, track_ids
from prosumer_gym.eval.leaderboard.policies import ran_code
from prosumer_gym.eval.leaderboard.stats import (
    DEFAULT_REPS,
    DEFAULT_SEED,
    TrackStats,
    baseline_by_seed,
    group_entries,
    normalisers,
    seed_scores,
    track_stats,
)

__all__ = ["normalisers", "score_rows", "merge_runs", "grouped_entries", "board_rows", "markdown", "html_page",
           "write_report", "plot_track", "KIND_ORDER"]

#: Tie order of the kinds on a board; ``rl-baseline``: the standard deep-RL baselines we train.
KIND_ORDER = {"oracle": 0, "agent": 1, "rl-baseline": 2, "submission": 3, "baseline": 4}


def _f(x: Any) -> float:
    return math.nan if x is None else float(x)


def score_rows(tr: Track, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per entry: raw means/CIs, per-metric scores, composite; sorted best first.

    Scores are *paired* by seed where the baseline ran the same seeds (every seed is one
    scenario, so ``x_s - b_s`` removes the scenario's own level): the per-seed score is
    ``100 (x_s - b_s) / (t - b)``; its mean equals the unpaired score, its CI is the paired one.
    """
    norm = normalisers(tr, entries)
    base = baseline_by_seed(tr, entries)
    rows = []
    for e in entries:
        row: dict[str, Any] = {"name": e["name"], "kind": e["kind"], "description": e.get("description", ""),
                               "n_seeds": len(e["seeds"]), "metrics": {}, "source": e.get("source", {})}
        per_metric, comp = seed_scores(tr, e, norm, base)
        for m in tr.metrics:
            rec = e["metrics"][m.key]
            per_seed = per_metric[m.key]
            score, score_ci = mean_ci95(per_seed) if per_seed is not None else (math.nan, math.nan)
            row["metrics"][m.key] = {"mean": _f(rec["mean"]), "ci95": _f(rec["ci95"]), "score": score,
                                     "score_ci95": score_ci}
        row["score"], row["score_ci95"] = mean_ci95(comp) if comp is not None and comp.size else (math.nan, math.nan)
        rows.append(row)
    rows.sort(key=lambda r: (-(r["score"]) if math.isfinite(r["score"]) else math.inf, KIND_ORDER.get(r["kind"], 9),
                             r["name"]))
    return rows


def merge_runs(tr: Track, name: str, members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One board entry ``name`` for the runs ``members`` of a group: on the seeds all runs
    share, each metric's per-seed value is the mean over the runs (mean and Student-t CI over
    those seeds), the curve the mean curve; ``runs`` lists the members' names. A single
    ungrouped member is returned as it is."""
    if len(members) == 1 and not members[0].get("group"):
        return dict(members[0])
    seeds = sorted(set.intersection(*(set(int(s) for s in e["seeds"]) for e in members)))
    metrics: dict[str, Any] = {}
    for m in tr.metrics:
        by_seed = [dict(zip((int(s) for s in e["seeds"]), e["metrics"][m.key]["per_seed"])) for e in members]
        per_seed = [float(np.mean([_f(r[s]) for r in by_seed])) for s in seeds]
        mean, ci = mean_ci95(per_seed)
        metrics[m.key] = {"per_seed": per_seed, "mean": mean, "ci95": ci}
    curves = [np.asarray([_f(v) for v in e.get("curve") or []], dtype=np.float64) for e in members]
    n = min(c.size for c in curves)
    first, names = members[0], [str(e["name"]) for e in members]
    return {"schema": first.get("schema"), "env_id": first.get("env_id"), "track_version": first.get("track_version"),
            "name": name, "kind": first["kind"], "group": name, "runs": names,
            "description": f"{len(names)} training runs ({', '.join(names)}); {first.get('description', '')}",
            "source": {"type": "group", "members": names, "ran_code": any(ran_code(e.get("source")) for e in members)},
            "seeds": seeds, "metrics": metrics,
            "curve": [float(v) for v in np.mean([c[:n] for c in curves], axis=0)] if n else [],
            "curve_steps": min(int(e.get("curve_steps") or 0) for e in members)}


def grouped_entries(tr: Track, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The board's entries: every group of runs merged into one (:func:`merge_runs`)."""
    return [merge_runs(tr, g, members) for g, members in group_entries(entries).items()]


def board_rows(tr: Track, entries: Sequence[Mapping[str, Any]], stats: TrackStats | None = None) -> list[dict[str, Any]]:
    """:func:`score_rows` of the grouped entries, each row with ``n_runs`` and, from
    ``stats``, ``iqm``/``iqm_ci`` and ``improve``/``improve_ci`` (NaN where not computed)."""
    rows = score_rows(tr, grouped_entries(tr, entries))
    runs = {g: len(m) for g, m in group_entries(entries).items()}
    nan2 = (math.nan, math.nan)
    for r in rows:
        r["n_runs"] = runs.get(r["name"], 1)
        est = stats.estimates.get(r["name"]) if stats is not None else None
        imp = stats.improvement.get(r["name"]) if stats is not None else None
        r["iqm"], r["iqm_ci"] = (est.iqm, est.iqm_ci) if est is not None else (math.nan, nan2)
        r["improve"], r["improve_ci"] = (imp.p, imp.ci) if imp is not None else (math.nan, nan2)
    return rows


def _interval(x: float, ci: tuple[float, float], digits: int) -> str:
    """``x [low, high]`` (``n/a`` when ``x`` is not finite)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _stats_cells(r: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The IQM and P(improvement) cells of a row: ``(text, sort value)``."""
    nan2 = (math.nan, math.nan)
    return [(_interval(r.get("iqm", math.nan), r.get("iqm_ci", nan2), 1), r.get("iqm", math.nan)),
            (_interval(r.get("improve", math.nan), r.get("improve_ci", nan2), 2), r.get("improve", math.nan))]


_CODE_NOTE = ("† ran submitted code: a `MODULE:ATTRIBUTE` policy evaluated with `--allow-code` (its numbers "
              "are what that code did on the evaluator's machine, not a model file read as data).")
_STATS_HEADERS = ("IQM [95% CI]", "P(improve over baseline) [CI]", "runs")


def _verdict_line(stats: TrackStats | None, code: str) -> str | None:
    if stats is None or stats.verdict is None:
        return None
    return stats.verdict.sentence(code)


def _num(x: float, ci: float | None = None, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    fmt = f"{{:.{digits}g}}" if abs(x) >= 1000 or (0 < abs(x) < 0.01) else f"{{:.{digits}f}}"
    s = fmt.format(x)
    if ci is not None and math.isfinite(ci):
        s += " ± " + fmt.format(ci)
    return s


def _metric_header(m) -> str:
    arrow = "↑" if m.higher_is_better else "↓"
    return f"{m.label} ({m.unit}) {arrow}" if m.unit else f"{m.label} {arrow}"


def markdown(boards: Mapping[str, list[dict[str, Any]]], img_prefix: str = "leaderboard/site/img",
             stats: Mapping[str, TrackStats] | None = None, docs: str = "docs") -> str:
    """``LEADERBOARD.md`` from the (board) rows of each track; ``stats`` per track adds the
    distinguishability line and the statistics plots; ``docs``: where its links find the
    repository's ``docs/`` from the file (:func:`docs_link_base`)."""
    lines = ["# prosumer_gym leaderboard", "",
             "Generated by `prosumer-gym-leaderboard report` from `leaderboard/results.jsonl`; do not edit by hand. "
             "Scores: per metric the track's baseline scores 0 and its top reference (oracle, or the best of the listed "
             "references on that metric) scores 100; the composite is the weighted mean with the weights in each "
             "header. ± is the half-width of the 95% confidence interval over the held-out seeds (Student t). "
             "IQM: the interquartile mean of the composite over runs x seeds; P(improve over baseline): the "
             "probability that a run beats the baseline on a scenario; both with 95% bootstrap CIs (rliable, "
             "scenario seeds and runs resampled); training seeds of one method are one row with their number "
             f"of runs ([Statistics]({docs}/leaderboard.md#statistics)). Static page with sortable tables and plots: `leaderboard/site/index.html`. How to submit: "
             f"[docs/leaderboard.md]({docs}/leaderboard.md).", ""]
    if stats and any(r["kind"] == "rl-baseline" for rows in boards.values() for r in rows):
        lines += ["## Deep-RL baselines at a glance", "",
                  "IQM of the normalised composite score (baseline 0, top 100) over training runs x held-out seeds; "
                  "a baseline is beaten when the IQM's 95% bootstrap CI lies above 0. Recipes, budgets and the "
                  f"analysis per track: [docs/baselines.md]({docs}/baselines.md).", ""]
        lines += baselines_summary(boards, stats) + [""]
    for env_id, rows in boards.items():
        tr = track(env_id)
        lines += [f"## {env_id} (track v{tr.version})", "", tr.description, "",
                  f"Held out: {tr.held_out}. Baseline (0): `{tr.baseline}`; top (100): "
                  + ", ".join(f"`{n}`" for n in tr.top) + f"; {tr.n_seeds} seeds.", ""]
        head = (["#", "entry", "kind", "score"] + [f"{_metric_header(m)} [w={m.weight:g}]" for m in tr.metrics]
                + list(_STATS_HEADERS) + ["seeds"])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for k, r in enumerate(rows, 1):
            mark = " †" if ran_code(r.get("source")) else ""
            cells = [str(k), f"`{r['name']}`{mark}", r["kind"], _num(r["score"], r["score_ci95"], 1)]
            for m in tr.metrics:
                v = r["metrics"][m.key]
                cells.append(f"{_num(v['mean'], v['ci95'])}" + (f" (score {_num(v['score'], None, 1)})" if m.weight > 0 else ""))
            cells += [text for text, _ in _stats_cells(r)] + [str(r.get("n_runs", 1)), str(r["n_seeds"])]
            lines.append("| " + " | ".join(cells) + " |")
        if any(ran_code(r.get("source")) for r in rows):
            lines += ["", _CODE_NOTE]
        slug = _slug(env_id)
        st = (stats or {}).get(env_id)
        verdict = _verdict_line(st, "`")
        if verdict:
            lines += ["", verdict]
        if _has_rl_baselines(rows):
            lines += [""] + rl_baseline_table(env_id, docs)
        lines += ["", f"![{env_id} metrics]({img_prefix}/{slug}_metrics.png)",
                  f"![{env_id} learning curves]({img_prefix}/{slug}_curves.png)"]
        if _has_rl_baselines(rows) and _has_training_plot(env_id):
            lines.append(f"![{env_id} training curves]({img_prefix}/{slug}_training.png)")
        if st is not None:
            lines += [f"![{env_id} IQM]({img_prefix}/{slug}_iqm.png)",
                      f"![{env_id} performance profiles]({img_prefix}/{slug}_profile.png)"]
        lines.append("")
    return "\n".join(lines) + "\n"


def _has_rl_baselines(rows: Sequence[Mapping[str, Any]]) -> bool:
    return any(r.get("kind") == "rl-baseline" for r in rows)


def _has_training_plot(env_id: str) -> bool:
    from prosumer_gym.train.baselines import shipped_baselines

    return bool(shipped_baselines(env_id))


def _slug(env_id: str) -> str:
    return env_id.lower().replace("-", "_")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table.board{border-collapse:collapse;margin:1em 0;font-size:14px}
table.board th,table.board td{border:1px solid #ccc;padding:4px 8px;text-align:right}
table.board td.t,table.board th.t{text-align:left}
table.board th{background:#f0f0f0;cursor:pointer;user-select:none}
table.board th.asc::after{content:" \\25B2"} table.board th.desc::after{content:" \\25BC"}
tr.baseline{color:#666} tr.oracle{background:#f6fff0} tr.submission{background:#fffbe6}
img.plot,img.stats-plot{max-width:100%;border:1px solid #ddd;margin:.5em 0}
tr.rl-baseline{background:#f0f6ff} p.verdict{font-style:italic}
"""

_JS = r"""
function sortTable(table, col, asc){
  var th = table.tHead.rows[0].cells[col], body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  table.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc');});
  th.classList.add(asc ? 'asc' : 'desc');
  rows.sort(function(a, b){
    var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
    var nx = parseFloat(x), ny = parseFloat(y);
    var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : ((isNaN(nx) ? 1 : 0) - (isNaN(ny) ? 1 : 0) || String(x).localeCompare(String(y)));
    return asc ? c : -c;
  });
  rows.forEach(function(r){ body.appendChild(r); });
}
document.querySelectorAll('table.board').forEach(function(table){
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function(th, col){
    th.addEventListener('click', function(){ sortTable(table, col, !th.classList.contains('asc')); });
  });
});
// index.html#sort=<table id>:<column>:<asc|desc> opens the page sorted (shareable links)
var m = /sort=([\w-]+):(\d+):(asc|desc)/.exec(location.hash);
if (m && document.getElementById(m[1])) sortTable(document.getElementById(m[1]), +m[2], m[3] === 'asc');
document.body.setAttribute('data-sortable', 'ready');
window.addEventListener('load', function(){
  var imgs = document.querySelectorAll('img.plot'), ok = 0;
  imgs.forEach(function(i){ var good = i.complete && i.naturalWidth > 0; i.setAttribute('data-loaded', good ? '1' : '0'); ok += good; });
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
  var simgs = document.querySelectorAll('img.stats-plot'), sok = 0;  // the statistics plots, counted apart
  simgs.forEach(function(i){ var good = i.complete && i.naturalWidth > 0; i.setAttribute('data-stats-loaded', good ? '1' : '0'); sok += good; });
  document.body.setAttribute('data-stats-images', sok + '/' + simgs.length);
});
"""


def _td(text: str, value: Any, left: bool = False) -> str:
    v = "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else value
    cls = ' class="t"' if left else ""
    return f'<td{cls} data-v="{html.escape(str(v))}">{html.escape(text)}</td>'


def html_page(boards: Mapping[str, list[dict[str, Any]]], img_dir: str = "img",
              stats: Mapping[str, TrackStats] | None = None) -> str:
    """The static page: one sortable table and two plots per track, with ``stats`` also the
    distinguishability line, the IQM and the performance-profile plots (no external resources)."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>prosumer_gym leaderboard</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>prosumer_gym leaderboard</h1>",
             "<p>Per metric the track's baseline scores 0 and its top reference 100; the composite is the weighted "
             "mean (weights in the headers). &plusmn; is the half-width of the 95% confidence interval over the "
             "held-out seeds. IQM: interquartile mean of the composite over runs x seeds; P(improve over "
             "baseline): probability that a run beats the baseline on a scenario; both with 95% bootstrap CIs "
             "(rliable). Click a column header to sort.</p>", "<ul>"]
    parts += [f'<li><a href="#{_slug(e)}">{html.escape(e)}</a></li>' for e in boards]
    parts.append("</ul>")
    for env_id, rows in boards.items():
        tr = track(env_id)
        slug = _slug(env_id)
        parts += [f'<section id="{slug}"><h2>{html.escape(env_id)} <small>(track v{tr.version})</small></h2>',
                  f"<p>{html.escape(tr.description)}</p>",
                  f"<p>Held out: {html.escape(tr.held_out)}. Baseline (0): <code>{html.escape(tr.baseline)}</code>; "
                  f"top (100): {', '.join('<code>' + html.escape(n) + '</code>' for n in tr.top)}; "
                  f"{tr.n_seeds} seeds.</p>",
                  f'<table class="board" id="table-{slug}"><thead><tr><th>#</th><th class="t">entry</th>'
                  '<th class="t">kind</th><th>score</th>']
        for m in tr.metrics:
            parts.append(f'<th title="{html.escape(m.description)}">{html.escape(_metric_header(m))} '
                         f"[w={m.weight:g}]</th><th>score</th>")
        parts.append("".join(f"<th>{html.escape(h)}</th>" for h in _STATS_HEADERS) + "<th>seeds</th></tr></thead><tbody>")
        for k, r in enumerate(rows, 1):
            name_td = _td(r["name"], r["name"], True)
            if ran_code(r.get("source")):
                name_td = name_td.replace("</td>", ' <span class="ran-code" title="ran submitted code">&dagger;</span></td>')
            cells = [_td(str(k), k), name_td, _td(r["kind"], r["kind"], True),
                     _td(_num(r["score"], r["score_ci95"], 1), r["score"])]
            for m in tr.metrics:
                v = r["metrics"][m.key]
                cells += [_td(_num(v["mean"], v["ci95"]), v["mean"]),
                          _td(_num(v["score"], None, 1) if m.weight > 0 else "", v["score"] if m.weight > 0 else None)]
            cells += [_td(text, value) for text, value in _stats_cells(r)]
            cells += [_td(str(r.get("n_runs", 1)), r.get("n_runs", 1)), _td(str(r["n_seeds"]), r["n_seeds"])]
            parts.append(f'<tr class="{html.escape(r["kind"])}" title="{html.escape(r["description"])}">'
                         + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
        if any(ran_code(r.get("source")) for r in rows):
            parts.append("<p>" + re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(_CODE_NOTE))
                         .replace("†", "&dagger;") + "</p>")
        st = (stats or {}).get(env_id)
        verdict = _verdict_line(st, "`")
        if verdict:
            parts.append('<p class="verdict">' + re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(verdict)) + "</p>")
        parts += [f'<img class="plot" src="{img_dir}/{slug}_metrics.png" alt="{html.escape(env_id)} metrics">',
                  f'<img class="plot" src="{img_dir}/{slug}_curves.png" alt="{html.escape(env_id)} learning curves">']
        if _has_rl_baselines(rows) and _has_training_plot(env_id):
            parts.append(f'<img class="stats-plot" src="{img_dir}/{slug}_training.png" '
                         f'alt="{html.escape(env_id)} training curves">')
        if st is not None:
            parts += [f'<img class="stats-plot" src="{img_dir}/{slug}_iqm.png" alt="{html.escape(env_id)} IQM">',
                      f'<img class="stats-plot" src="{img_dir}/{slug}_profile.png" '
                      f'alt="{html.escape(env_id)} performance profiles">']
        parts.append("</section>")
    parts += [f"<script>{_JS}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


def _png(fig) -> bytes:
    import io

    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def plot_track(tr: Track, entries: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
               stats: TrackStats | None = None) -> dict[str, bytes]:
    """``{"metrics": png, "curves": png}`` for one track (``entries``: the board's, grouped),
    with ``stats`` also ``"iqm"`` and ``"profile"``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = [r["name"] for r in rows]
    by_name = {e["name"]: e for e in entries}
    colors = {n: plt.cm.tab10(k % 10) for k, n in enumerate(order)}
    out: dict[str, bytes] = {}

    fig, axes = plt.subplots(1, len(tr.metrics), figsize=(4.2 * len(tr.metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], tr.metrics):
        means = [_f(by_name[n]["metrics"][m.key]["mean"]) for n in order]
        cis = [_f(by_name[n]["metrics"][m.key]["ci95"]) for n in order]
        for k, n in enumerate(order):  # dots with CI bars: the axis spans the values, not 0..max
            ax.errorbar([k], [means[k]], yerr=[[cis[k]], [cis[k]]] if math.isfinite(cis[k]) else None, fmt="o",
                        color=colors[n], capsize=3, ms=5)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(x=0.08)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(order, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{m.label} ({'higher' if m.higher_is_better else 'lower'} is better)", fontsize=9)
        ax.set_ylabel(f"{m.label} ({m.unit})" if m.unit else m.label, fontsize=8)
    n_seeds = max(len(e["seeds"]) for e in entries)
    fig.suptitle(f"{tr.env_id}: means (dots) with 95% CIs over {n_seeds} held-out seeds (axes do not start at 0)",
                 fontsize=10)
    out["metrics"] = _png(fig)

    fig, ax = plt.subplots(figsize=(8, 3.6))
    for n in order:
        c = np.asarray([math.nan if v is None else v for v in by_name[n].get("curve") or []], dtype=np.float64)
        steps = by_name[n].get("curve_steps") or c.size
        x_all = np.linspace(0, steps, c.size)
        keep = np.isfinite(c)  # a track may have steps without a value (NaN)
        c, x_all = c[keep], x_all[keep]
        if c.size == 0:
            continue
        w = max(1, c.size // 30)
        smooth = np.convolve(c, np.ones(w) / w, mode="valid") if c.size >= w else c
        x = np.convolve(x_all, np.ones(w) / w, mode="valid") if c.size >= w else x_all
        ax.plot(x, smooth, label=n, color=colors[n], lw=1.2)
    ax.set_xlabel("step of the episode")
    ax.set_ylabel(tr.curve_label, fontsize=8)
    ax.set_title(f"{tr.env_id}: {tr.curve_label} (mean over seeds, moving average)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    out["curves"] = _png(fig)
    training = _plot_training(tr) if _has_rl_baselines(rows) else None
    if training is not None:
        out["training"] = training
    if stats is not None:
        out["iqm"] = _plot_iqm(tr, stats, colors)
        out["profile"] = _plot_profiles(tr, stats, [n for n in order if n in stats.profiles.profile], colors)
    return out


def _plot_training(tr: Track) -> bytes | None:
    """Learning curves of the shipped deep-RL baselines: episode return (the learner's reward)
    against environment steps, mean and 95% CI over training seeds; ``None`` without any."""
    from prosumer_gym.train.baselines import shipped_cards, training_curve_band

    cards = shipped_cards(tr.env_id)
    if not cards:
        return None
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cards), figsize=(4.2 * len(cards), 3.4), squeeze=False)
    for ax, (group, cs) in zip(axes[0], cards.items()):
        band = training_curve_band(cs)
        if band["n"]:
            ax.plot(band["env_steps"], band["mean"], lw=1.4)
            ax.fill_between(band["env_steps"], band["lo"], band["hi"], alpha=0.25)
        c0 = cs[0]
        ax.set_title(f"{group}: {str(c0.get('algo')).upper()}, {c0.get('view')} view, {band['n']} seeds", fontsize=9)
        ax.set_xlabel("environment steps", fontsize=8)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        ax.xaxis.set_major_locator(plt.MaxNLocator(5))
        ax.set_ylabel("episode return" + (" (mean over agents)" if c0.get("view") == "pettingzoo" else ""), fontsize=8)
    fig.suptitle(f"{tr.env_id}: training curves of the deep-RL baselines (mean, 95% CI over training seeds)",
                 fontsize=10)
    return _png(fig)


def rl_baseline_table(env_id: str, docs: str = "docs") -> list[str]:
    """Markdown lines: each shipped deep-RL baseline group's recipe and budget."""
    from prosumer_gym.train.baselines import shipped_cards

    cards = shipped_cards(env_id)
    if not cards:
        return []
    lines = ["Deep-RL baselines (`rl-baseline`, trained by us on the training homes and seeds 0..k-1; "
             f"[docs/baselines.md]({docs}/baselines.md)):", "",
             "| group | algorithm | interface | role | training seeds | env steps / run | wall s / run | "
             "hyperparameters | command |", "|---|---|---|---|---|---|---|---|---|"]
    for group, cs in cards.items():
        c0 = cs[0]
        steps = sorted({int(c["total_steps"]) // (int(c.get("n_agents", 1)) if c.get("view") == "pettingzoo" else 1)
                        for c in cs})
        wall = np.mean([float(c.get("train_wall_seconds", math.nan)) for c in cs])
        lines.append(f"| `{group}` | SB3 {str(c0.get('algo')).upper()} | {c0.get('view')} | {c0.get('role')} | "
                     f"{len(cs)} | {'/'.join(str(s) for s in steps)} | {wall:.0f} | "
                     f"`{c0.get('hyperparams_file')}` | `{c0.get('command')}` |")
    return lines + [""]


def baselines_summary(boards: Mapping[str, list[dict[str, Any]]], stats: Mapping[str, TrackStats]) -> list[str]:
    """Markdown lines answering, per track: does the best deep-RL baseline (highest IQM of
    the ``rl-baseline`` groups) beat the track baseline (IQM CI above 0, the baseline's
    score) and the best of the papers' agents (``P(RL > agent)`` with its CI)?"""
    from prosumer_gym.eval.leaderboard.stats import probability_of_improvement

    lines = ["| track | best deep-RL baseline | IQM [95% CI] | beats the track baseline? | P(improve over baseline) "
             "| best paper agent | its IQM [95% CI] | P(deep RL > agent) [95% CI] |", "|---|---|---|---|---|---|---|---|"]
    for env_id, rows in boards.items():
        st = stats.get(env_id)
        if st is None:
            continue
        kinds = {r["name"]: r["kind"] for r in rows}
        rl = sorted((n for n in st.estimates if kinds.get(n) == "rl-baseline"), key=lambda n: -st.estimates[n].iqm)
        agents = sorted((n for n in st.estimates if kinds.get(n) == "agent"), key=lambda n: -st.estimates[n].iqm)
        if not rl:
            lines.append(f"| {env_id} | none trained (docs/baselines.md) | | | | | | |")
            continue
        best, e = rl[0], st.estimates[rl[0]]
        beats = "yes" if e.iqm_ci[0] > 0 else ("no (worse)" if e.iqm_ci[1] < 0 else "not resolved (CI holds 0)")
        imp = st.improvement.get(best)
        imp_txt = _interval(imp.p, imp.ci, 2) if imp is not None else "n/a"
        if agents:
            a, ea = agents[0], st.estimates[agents[0]]
            pa = probability_of_improvement(st.matrices[best], st.matrices[a], st.reps, st.seed, st.confidence)
            agent_cells = [f"`{a}`", _interval(ea.iqm, ea.iqm_ci, 1), _interval(pa.p, pa.ci, 2) if pa else "n/a"]
        else:
            agent_cells = ["(no agent on this track)", "", ""]
        lines.append(f"| {env_id} | `{best}` ({e.n_runs} runs) | {_interval(e.iqm, e.iqm_ci, 1)} | {beats} | {imp_txt} | "
                     + " | ".join(agent_cells) + " |")
    return lines


def _plot_iqm(tr: Track, stats: TrackStats, colors: Mapping[str, Any]) -> bytes:
    """The IQM of every group as a point with its CI bar, best first (rliable's interval-estimate plot)."""
    import matplotlib.pyplot as plt

    est = stats.estimates
    names = sorted(est, key=lambda n: (-est[n].iqm, n))
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.38 * max(1, len(names))))
    for k, n in enumerate(names):
        lo, hi = est[n].iqm_ci
        ax.barh(k, hi - lo, left=lo, height=0.6, color=colors.get(n, "grey"), alpha=0.55)
        ax.plot([est[n].iqm] * 2, [k - 0.3, k + 0.3], color="black", lw=1.5)
    for x in (0, 100):
        ax.axvline(x, color="grey", ls=":", lw=1)
    ends = [0.0, 100.0] + [v for n in names for v in est[n].iqm_ci if math.isfinite(v)]
    pad = 0.04 * (max(ends) - min(ends))
    ax.set_xlim(min(ends) - pad, max(ends) + pad)  # the bars' sticky edges would clip a zero-width CI at 100
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([f"{n} ({est[n].n_runs}x{est[n].n_seeds})" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_ylabel("entry (runs x seeds)", fontsize=8)
    ax.set_xlabel("IQM of the normalised composite score")
    pct = f"{100 * stats.confidence:g}%"
    ax.set_title(f"{tr.env_id}: IQM with {pct} bootstrap CIs (scenario seeds and runs resampled, {stats.reps} reps)",
                 fontsize=10)
    return _png(fig)


def _plot_profiles(tr: Track, stats: TrackStats, names: Sequence[str], colors: Mapping[str, Any]) -> bytes:
    """Performance profiles (score distributions) with their CI bands."""
    import matplotlib.pyplot as plt

    prof = stats.profiles
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for n in names:
        ax.plot(prof.taus, prof.profile[n], color=colors.get(n, "grey"), lw=1.3, label=n)
        ax.fill_between(prof.taus, prof.low[n], prof.high[n], color=colors.get(n, "grey"), alpha=0.15, lw=0)
    for x in (0, 100):
        ax.axvline(x, color="grey", ls=":", lw=1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("normalised composite score tau")
    ax.set_ylabel("fraction of runs x seeds\nwith score > tau", fontsize=8)
    pct = f"{100 * stats.confidence:g}%"
    ax.set_title(f"{tr.env_id}: performance profiles with {pct} bootstrap CIs", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


#: The docs on the web, for a board written outside a source checkout (pyproject's Documentation URL).
DOCS_URL = "https://github.com/prosumer-gym/prosumer_gym/blob/main/docs"


def docs_link_base(md_path: str | Path) -> str:
    """How a board written at ``md_path`` links the repository's ``docs/``: a relative path when
    the file sits in this source checkout (``docs`` for the shipped ``LEADERBOARD.md``,
    ``../../docs`` for ``runs/main/LEADERBOARD.md``), else :data:`DOCS_URL`."""
    import os

    repo = Path(__file__).resolve().parents[3]
    here = Path(md_path).resolve().parent
    if (repo / "docs" / "leaderboard.md").is_file() and (here == repo or repo in here.parents):
        return Path(os.path.relpath(repo / "docs", here)).as_posix()
    return DOCS_URL


def write_report(entries: Sequence[Mapping[str, Any]], md_path: str | Path = "LEADERBOARD.md",
                 site_dir: str | Path = Path("leaderboard") / "site", img_prefix: str | None = None,
                 reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Write ``LEADERBOARD.md``, ``site/index.html`` and ``site/img/*.png`` atomically;
    ``reps``/``seed``: the bootstrap of the statistics. Returns the board rows per track."""
    from prosumer_gym.core.io import atomic_write_bytes, atomic_write_text
    from prosumer_gym.eval.leaderboard.results import latest_entries

    versions = {e: track(e).version for e in track_ids()}
    latest = latest_entries(entries, versions)
    boards: dict[str, list[dict[str, Any]]] = {}
    stats: dict[str, TrackStats] = {}
    site = Path(site_dir)
    for env_id in track_ids():
        ents = latest.get(env_id)
        if not ents:
            continue
        tr = track(env_id)
        stats[env_id] = track_stats(tr, ents, reps, seed)
        rows = board_rows(tr, ents, stats[env_id])
        boards[env_id] = rows
        for kind, png in plot_track(tr, grouped_entries(tr, ents), rows, stats[env_id]).items():
            atomic_write_bytes(site / "img" / f"{_slug(env_id)}_{kind}.png", png)
    md_path = Path(md_path)
    if img_prefix is None:
        import os

        img_prefix = os.path.relpath(site / "img", md_path.parent if str(md_path.parent) else ".")
    atomic_write_text(md_path, markdown(boards, img_prefix, stats, docs_link_base(md_path)))
    atomic_write_text(site / "index.html", html_page(boards, stats=stats))
    return boards
