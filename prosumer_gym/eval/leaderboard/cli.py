"""``prosumer-gym-leaderboard``: evaluate policies on the held-out tracks and publish the board.

Commands
    ``list``                      tracks, their references, metrics and weights
    ``eval --env E --policy P``   evaluate one policy on E's held-out seeds, print means ±
                                  95% CI and scores, append the entry to the results file
    ``rebuild``                   every reference on every track (parallel over processes, or
                                  Ray with ``--ray``), then ``report``
    ``report``                    LEADERBOARD.md + leaderboard/site/index.html + PNGs from the results
    ``compare --env E A B ...``   IQM [95% CI] of entries/groups A, B, ... and P(row > column)

``--policy``: a reference name (``pqr``), ``sb3:model.zip`` (``--algo``), ``torch:weights.pt``
(``--arch``), or ``module:function`` (code: only with ``--allow-code``; see :mod:`prosumer_gym.eval.leaderboard.policies`).

Examples::

    prosumer-gym-leaderboard eval --env P2PTrading-v0 --policy sb3:runs/ppo/model.zip --algo ppo --name my-ppo
    prosumer-gym-leaderboard eval --env StorageSharing-v0 --policy torch:ru.pt --arch mlp --role ru
    prosumer-gym-leaderboard eval --env ProsumerSharing-v0 --policy mypkg.policies:MyTeam --allow-code
    prosumer-gym-leaderboard rebuild --workers 2
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from prosumer_gym.eval.leaderboard.core import track, track_ids
from prosumer_gym.eval.leaderboard.policies import SubmissionRefused
from prosumer_gym.eval.leaderboard.results import (
    DEFAULT_RESULTS,
    PUBLISHED_REFERENCES,
    append_entries,
    board_entries,
    load_entries,
    update_entries,
)

__all__ = ["main", "build_parser", "rebuild"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prosumer-gym-leaderboard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="tracks, references and metrics")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--results", default=str(DEFAULT_RESULTS), help="results file (JSON lines)")
        q.add_argument("--workers", type=int, default=1, help="processes (or Ray CPUs) for the episodes")
        q.add_argument("--ray", action="store_true", help="fan the episodes out over Ray workers")
        q.add_argument("--ray-address", default=None, help="Ray cluster address (default: a local Ray instance)")
        q.add_argument("--n-seeds", type=int, default=None, help="only the first N held-out seeds (default: all)")
        q.add_argument("--no-progress", action="store_true")

    e = sub.add_parser("eval", help="evaluate one policy")
    e.add_argument("--env", required=True, help="Gymnasium id, e.g. P2PTrading-v0")
    e.add_argument("--policy", required=True, help="reference name, sb3:PATH, torch:PATH or MODULE:ATTRIBUTE")
    e.add_argument("--name", default=None, help="entry name on the board (default: the spec)")
    e.add_argument("--algo", default=None, help="SB3 algorithm of an sb3: model (ppo, a2c, dqn; default ppo)")
    e.add_argument("--arch", default=None, help="architecture of a torch: state dict (mlp, qnet; default mlp)")
    e.add_argument("--activation", default=None, help="hidden activation of an SB3 model if not the default")
    e.add_argument("--role", default=None, help="which agents a shared model controls (a role of the track)")
    e.add_argument("--no-append", action="store_true", help="print only, do not write the results file")
    e.add_argument("--allow-code", action="store_true",
                   help="allow a MODULE:ATTRIBUTE policy (imports and runs that code; the board marks the entry)")
    common(e)

    r = sub.add_parser("rebuild", help="evaluate every reference on every track, then write the report")
    r.add_argument("--envs", nargs="*", default=None, help="only these tracks (default: all)")
    r.add_argument("--md", default="LEADERBOARD.md")
    r.add_argument("--site", default=str(Path("leaderboard") / "site"))
    r.add_argument("--publish", action="store_true",
                   help="also update the reference entries shipped in the package (maintainers)")
    common(r)

    c = sub.add_parser("compare", help="IQM [95%% CI] of entries or groups and P(row > column) between them")
    c.add_argument("--env", required=True, help="Gymnasium id of the track, e.g. StorageSharing-v0")
    c.add_argument("names", nargs="+", help="entries or groups of the board (e.g. ppo ppo-track rule)")
    c.add_argument("--results", default=str(DEFAULT_RESULTS), help="results file (JSON lines)")

    o = sub.add_parser("report", help="write LEADERBOARD.md and the HTML page from the results file")
    o.add_argument("--results", default=str(DEFAULT_RESULTS))
    o.add_argument("--md", default="LEADERBOARD.md")
    o.add_argument("--site", default=str(Path("leaderboard") / "site"))
    return p


def _backend(args) -> str:
    return "ray" if args.ray else ("process" if args.workers > 1 else "serial")


def _print_entry(entry: dict, rows: list[dict] | None) -> None:
    from prosumer_gym.eval.leaderboard.report import _num

    tr = track(entry["env_id"])
    row = next((r for r in rows or [] if r["name"] == entry["name"]), None)
    print(f"{entry['env_id']} / {entry['name']} ({entry['kind']}), {len(entry['seeds'])} seeds, "
          f"{entry['cpu_seconds']:.1f} CPU s")
    for m in tr.metrics:
        rec = entry["metrics"][m.key]
        line = f"  {m.label:<32s} {_num(rec['mean'], rec['ci95'])} {m.unit}"
        if row is not None and m.weight > 0:
            line += f"   score {_num(row['metrics'][m.key]['score'], row['metrics'][m.key]['score_ci95'], 1)}"
        print(line)
    if row is not None:
        print(f"  {'composite score':<32s} {_num(row['score'], row['score_ci95'], 1)}")
    else:
        print("  (no scores: the results file lacks this track's baseline/top references; run `rebuild`)")


def rebuild(env_ids: Sequence[str] | None = None, results: str | Path = DEFAULT_RESULTS, backend: str = "process",
            workers: int = 2, ray_address: str | None = None, n_seeds: int | None = None,
            progress: bool = True, publish: bool = False) -> list[dict]:
    """Evaluate every reference of ``env_ids`` (default all tracks); the results file keeps
    every other line (also those appended while the rebuild ran) and gets the new reference
    entries in place of the old ones. ``publish`` (with all seeds) also updates the reference
    entries shipped in the package (:data:`PUBLISHED_REFERENCES`). Returns the new entries."""
    from prosumer_gym.eval.leaderboard.policies import load_policy
    from prosumer_gym.eval.leaderboard.runner import make_entry, reference_jobs, rl_baseline_label, run_jobs

    ids = list(env_ids) if env_ids else track_ids()
    for env_id in ids:
        track(env_id)  # validates the id
    old = load_entries(results)
    last_cost: dict[tuple[str, str], float] = {}
    for e in old:
        if e.get("seeds"):
            last_cost[(e["env_id"], e["name"])] = float(e.get("cpu_seconds", 0.0)) / len(e["seeds"])
    jobs = reference_jobs(ids, n_seeds, cost=lambda env, name: last_cost.get((env, name), 0.0))
    outs = run_jobs(jobs, backend, workers, ray_address, progress)
    grouped: dict[tuple[str, str], list[dict]] = {}
    for job, out in zip(jobs, outs):
        grouped.setdefault((job.env_id, job.policy), []).append(out)
    new = []
    for env_id in ids:
        tr = track(env_id)
        for ref in tr.references:
            res = sorted(grouped[(env_id, ref.name)], key=lambda r: r["seed"])
            new.append(make_entry(env_id, ref.name, ref.kind, ref.description,
                                  {"type": "reference", "spec": ref.name}, res))
        # the baselines that were shipped when the jobs were made (not what appeared since)
        for spec in sorted({j.policy for j in jobs if j.env_id == env_id and j.policy.startswith("rlb:")}):
            _, source, _, kind = load_policy(spec, tr)
            res = sorted(grouped[(env_id, spec)], key=lambda r: r["seed"])
            desc, label, group = rl_baseline_label(source)
            new.append(make_entry(env_id, label, kind, desc, source, res, group=group))
    replaced = {(e["env_id"], e["name"]) for e in new}
    update_entries(lambda now: [e for e in now if ((e["env_id"], e["name"]) not in replaced
                                                   and not (e.get("kind") == "rl-baseline" and e["env_id"] in ids))
                                or e["kind"] == "submission"] + new, results)
    if publish and n_seeds is None:  # the shipped normalisers follow the published board
        refs = [e for e in new if e["kind"] != "rl-baseline"]  # the normalisers: references only
        update_entries(lambda now: [e for e in now if (e["env_id"], e["name"]) not in replaced
                                    and e.get("kind") != "rl-baseline"] + refs, PUBLISHED_REFERENCES)
    return new


def compare(env_id: str, names: Sequence[str], results: str | Path = DEFAULT_RESULTS) -> str:
    """A table of ``names`` (entries or training-seed groups of the track's board): IQM of the
    normalised composite with its stratified-bootstrap 95% CI over runs x seeds, and the
    probability of improvement ``P(row > column)`` with its CI, by the board's own statistics
    (:mod:`prosumer_gym.eval.leaderboard.stats`, the same seeds and replicates)."""
    from prosumer_gym.eval.leaderboard.stats import interval_estimates, probability_of_improvement, score_matrices

    tr = track(env_id)
    matrices = score_matrices(tr, board_entries(env_id, tr.version, results))
    unknown = [n for n in names if n not in matrices]
    if unknown:
        raise ValueError(f"names: {unknown} are not scored entries or groups of the {env_id} board "
                         f"(allowed: {sorted(matrices)})")
    names = list(dict.fromkeys(names))
    est = interval_estimates({n: matrices[n] for n in names})
    head = "| entry | runs | seeds | IQM [95% CI] | " + " | ".join(f"P(> `{n}`)" for n in names) + " |"
    lines = [head, "|" + "---|" * (4 + len(names))]
    for a in names:
        e = est[a]
        cells = []
        for b in names:
            imp = None if a == b else probability_of_improvement(matrices[a], matrices[b])
            cells.append("" if imp is None else f"{imp.p:.2f} [{imp.ci[0]:.2f}, {imp.ci[1]:.2f}]")
        lines.append(f"| `{a}` | {e.n_runs} | {e.n_seeds} | {e.iqm:.1f} [{e.iqm_ci[0]:.1f}, {e.iqm_ci[1]:.1f}] | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "list":
            for env_id in track_ids():
                tr = track(env_id)
                print(f"{env_id} (track v{tr.version}, {tr.n_seeds} seeds): {tr.description}")
                print(f"  held out: {tr.held_out}")
                print(f"  baseline {tr.baseline!r} = 0, top {list(tr.top)} = 100; roles {dict(tr.roles)}")
                for m in tr.metrics:
                    print(f"  metric {m.key} [{m.unit}] {'higher' if m.higher_is_better else 'lower'} is better, "
                          f"weight {m.weight:g}: {m.description}")
                for r in tr.references:
                    print(f"  {r.kind:>8s} {r.name}: {r.description}")
            return 0
        if args.cmd == "eval":
            from prosumer_gym.eval.leaderboard.report import score_rows
            from prosumer_gym.eval.leaderboard.runner import evaluate

            entry = evaluate(args.env, args.policy, name=args.name, n_seeds=args.n_seeds, backend=_backend(args),
                             workers=args.workers, ray_address=args.ray_address,
                             options=dict(algo=args.algo, arch=args.arch, role=args.role, activation=args.activation),
                             progress=not args.no_progress, allow_code=args.allow_code)
            tr = track(args.env)
            others = [e for e in board_entries(args.env, tr.version, args.results) if e["name"] != entry["name"]]
            others.append(entry)
            _print_entry(entry, score_rows(tr, others))
            if not args.no_append:
                print(f"appended to {append_entries([entry], args.results)}")
            return 0
        if args.cmd == "compare":
            print(compare(args.env, args.names, args.results))
            return 0
        if args.cmd == "rebuild":
            t0 = time.perf_counter()
            new = rebuild(args.envs, args.results, _backend(args), args.workers, args.ray_address, args.n_seeds,
                          not args.no_progress, publish=args.publish)
            print(f"{len(new)} reference entries in {time.perf_counter() - t0:.1f} s "
                  f"({sum(e['cpu_seconds'] for e in new):.1f} CPU s) -> {args.results}")
        from prosumer_gym.eval.leaderboard.report import write_report

        boards = write_report(load_entries(args.results), args.md, args.site)
        print(f"wrote {args.md} and {Path(args.site) / 'index.html'} ({len(boards)} tracks)")
        return 0
    except SubmissionRefused as e:
        print(f"refused: {e.reason}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
