"""Statistics that can rank: per-track score matrices and ``rliable`` estimates.

Agarwal et al. (NeurIPS 2021, "Deep RL at the edge of the statistical precipice", the
``rliable`` package) is the field's standard for reporting RL results; the leaderboard uses it
on the normalised composite score of :mod:`~prosumer_gym.eval.leaderboard.report`.

**Runs.** An entry is one policy evaluated on the track's held-out scenario seeds. Several
entries that are *training seeds of one method* carry the same optional field ``group``
(e.g. ``"ppo"``; their names are ``"ppo/seed0"``, ``"ppo/seed1"``, ...; the training seed is
read from ``train_seed`` or ``source.train_seed`` and only orders the runs). The statistics
are per group: a group is ``n_runs`` runs, an entry without ``group`` a group of one run
under its own name.

**Score matrix.** Per group a :class:`ScoreMatrix` of shape ``(n_runs, n_seeds)``: the
normalised composite of run ``r`` on scenario seed ``s``, paired with the baseline on the
same seed (:func:`seed_scores`, the same numbers as the board's composite column). The
layout is rliable's ``(num_runs, num_tasks)`` with the scenario seeds as the tasks.

**Estimates** (:func:`track_stats` bundles them):

* :func:`interval_estimates`: the IQM (25% trimmed mean over all runs x seeds,
  ``rliable.metrics.aggregate_iqm``) and the mean (``aggregate_mean``) with 95% percentile
  bootstrap CIs (``rliable.library.get_interval_estimates``);
* :func:`performance_profiles`: the fraction of runs x seeds with score ``> tau`` over a
  ``tau`` grid, with CIs (``rliable.library.create_performance_profile``);
* :func:`probability_of_improvement` / :func:`improvement_over`: ``P(X > Y)``, rliable's
  ``probability_of_improvement`` of two matrices paired by scenario seed, with a CI;
* :func:`top_two_verdict`: are the two entries with the highest IQM distinguishable?

**Bootstrap.** rliable's stratified bootstrap resamples the runs within each task
(``task_bootstrap=False``); with one run per entry (every reference) it would give
zero-width intervals. The board uses ``task_bootstrap=True``: each replicate resamples the
scenario seeds with replacement and, within each drawn seed, the runs (rliable's strata),
so the CIs cover both the choice of scenarios and, for groups, of training seeds. For
``P(X > Y)`` the two matrices are resampled with the *same* seeds (paired); rliable's own
two-sample bootstrap cannot resample tasks, so both are stacked into one array (see
:func:`probability_of_improvement`).

**Randomness.** rliable (1.2) draws its bootstrap indices from NumPy's *global* random
state and ignores ``random_state``. Every estimate here runs inside :func:`seeded`, which
seeds the global state from ``(seed, what, entry name)`` and restores the caller's state
afterwards: the numbers are reproducible, do not depend on the other entries of the board
or their order, and nothing else's randomness is disturbed (not thread-safe: do not run
two estimates concurrently in one process).
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prosumer_gym.eval.leaderboard.core import Track

__all__ = [
    "DEFAULT_REPS",
    "DEFAULT_SEED",
    "CONFIDENCE",
    "ScoreMatrix",
    "Estimate",
    "Improvement",
    "Profiles",
    "Verdict",
    "TrackStats",
    "normalisers",
    "baseline_by_seed",
    "seed_scores",
    "group_entries",
    "score_matrices",
    "seeded",
    "interval_estimates",
    "seed_estimate",
    "profile_taus",
    "performance_profiles",
    "probability_of_improvement",
    "improvement_over",
    "top_two_verdict",
    "track_stats",
]

#: Bootstrap replicates of every interval (rliable's own default is 50 000 for intervals and
#: 2 000 for profiles; 2 000 keeps a full report to seconds and the CI ends stable to ~1%).
DEFAULT_REPS = 2000
#: The base seed of every bootstrap of the published board.
DEFAULT_SEED = 20211206
#: Coverage of every interval.
CONFIDENCE = 0.95


def _rliable():
    """``(rliable.library, rliable.metrics)``, imported on first use (rliable 1.2 needs
    ``arch<8``, which needs ``pandas<3``: both pinned in pyproject.toml)."""
    from rliable import library, metrics

    return library, metrics


# ------------------------------------------------------------------------------ per-seed scores
def _f(x: Any) -> float:
    return math.nan if x is None else float(x)


def normalisers(tr: Track, entries: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float] | None]:
    """Per metric ``(b, t)`` from the baseline and top entries, or ``None`` if missing/degenerate."""
    by_name = {e["name"]: e for e in entries}
    out: dict[str, tuple[float, float] | None] = {}
    for m in tr.metrics:
        base = by_name.get(tr.baseline)
        tops = [by_name[n]["metrics"][m.key]["mean"] for n in tr.top if n in by_name]
        tops = [t for t in tops if t is not None and math.isfinite(t)]
        if base is None or not tops or base["metrics"][m.key]["mean"] is None:
            out[m.key] = None
            continue
        b = float(base["metrics"][m.key]["mean"])
        t = max(tops) if m.higher_is_better else min(tops)
        out[m.key] = None if math.isclose(t, b, rel_tol=1e-12, abs_tol=1e-12) else (b, float(t))
    return out


def baseline_by_seed(tr: Track, entries: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, float]]:
    """Per metric ``{scenario seed: the baseline entry's value}`` (``{}`` without a baseline)."""
    base = next((e for e in entries if e["name"] == tr.baseline), None)
    if base is None:
        return {}
    return {m.key: dict(zip(base["seeds"], base["metrics"][m.key]["per_seed"])) for m in tr.metrics}


def seed_scores(tr: Track, entry: Mapping[str, Any], norm: Mapping[str, tuple[float, float] | None],
                base: Mapping[str, Mapping[int, float]]) -> tuple[dict[str, np.ndarray | None], np.ndarray | None]:
    """Per metric the entry's per-seed scores (``None`` without a normaliser) and its per-seed
    composite (``None`` when a weighted metric has no normaliser), in the order of ``entry["seeds"]``.

    Paired: ``100 (x_s - b_s) / (t - b)`` with the baseline's value ``b_s`` on the same seed
    where the baseline ran all the entry's seeds, else ``b``.
    """
    per_metric: dict[str, np.ndarray | None] = {}
    comp: np.ndarray | None = np.zeros(len(entry["seeds"]))
    for m in tr.metrics:
        nb = norm.get(m.key)
        if nb is None:
            per_metric[m.key] = None
            if m.weight > 0:
                comp = None
            continue
        b, t = nb
        x = np.asarray([_f(v) for v in entry["metrics"][m.key]["per_seed"]], dtype=np.float64)
        paired = base.get(m.key, {})
        ref = np.asarray([_f(paired[s]) for s in entry["seeds"]]) if all(s in paired for s in entry["seeds"]) \
            else np.full(x.shape, b)
        per_metric[m.key] = 100.0 * (x - ref) / (t - b)
        if m.weight > 0 and comp is not None:
            comp = comp + m.weight * per_metric[m.key]
    return per_metric, comp


# ------------------------------------------------------------------------------ runs and matrices
def _train_seed(e: Mapping[str, Any]) -> float:
    k = e.get("train_seed", (e.get("source") or {}).get("train_seed"))
    try:
        return float(k)
    except (TypeError, ValueError):
        return math.inf


def group_entries(entries: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """``{group name: its entries}`` in order of first appearance; each group's runs ordered
    by training seed, then name. An entry without ``group`` is a group of one under its name.

    Raises ``ValueError`` if a group mixes kinds or its name is also an ungrouped entry's.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for e in entries:
        groups.setdefault(str(e.get("group") or e["name"]), []).append(e)
    for g, members in groups.items():
        kinds = {m["kind"] for m in members}
        if len(kinds) > 1:
            raise ValueError(f"group {g!r} mixes kinds {sorted(kinds)}")
        if len(members) > 1 and any(not m.get("group") for m in members):
            raise ValueError(f"{g!r} names {len(members)} entries, not all of them in group {g!r}")
        members.sort(key=lambda m: (_train_seed(m), m["name"]))
    return groups


@dataclass(frozen=True)
class ScoreMatrix:
    """The normalised composite of one group: ``scores[r, j]`` is run ``members[r]`` on
    scenario seed ``seeds[j]`` (rliable's ``(num_runs, num_tasks)`` layout)."""

    name: str
    kind: str
    members: tuple[str, ...]
    seeds: tuple[int, ...]
    scores: np.ndarray

    @property
    def n_runs(self) -> int:
        return int(self.scores.shape[0])

    @property
    def n_seeds(self) -> int:
        return int(self.scores.shape[1])

    def on(self, seeds: Sequence[int]) -> np.ndarray:
        """The columns of ``seeds`` (each must be one of :attr:`seeds`)."""
        col = {s: j for j, s in enumerate(self.seeds)}
        return self.scores[:, [col[s] for s in seeds]]


def score_matrices(tr: Track, entries: Sequence[Mapping[str, Any]]) -> dict[str, ScoreMatrix]:
    """Per group (see :func:`group_entries`) its :class:`ScoreMatrix` on the seeds all its
    runs share. Groups without a finite composite (no baseline or top entry, a NaN value)
    are left out."""
    norm = normalisers(tr, entries)
    base = baseline_by_seed(tr, entries)
    out: dict[str, ScoreMatrix] = {}
    for g, members in group_entries(entries).items():
        rows = []
        for e in members:
            _, comp = seed_scores(tr, e, norm, base)
            rows.append(None if comp is None else dict(zip((int(s) for s in e["seeds"]), comp)))
        if any(r is None for r in rows):
            continue
        seeds = sorted(set.intersection(*(set(r) for r in rows)))
        scores = np.asarray([[r[s] for s in seeds] for r in rows], dtype=np.float64).reshape(len(rows), len(seeds))
        if not seeds or not np.isfinite(scores).all():
            continue
        out[g] = ScoreMatrix(g, str(members[0]["kind"]), tuple(str(e["name"]) for e in members), tuple(seeds), scores)
    return out


# ------------------------------------------------------------------------------ randomness
def _stream(seed: int, *keys: str) -> int:
    """A 32-bit seed derived from ``seed`` and ``keys`` (stable across processes and versions)."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(k.encode("utf-8")) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


@contextlib.contextmanager
def seeded(seed: int, *keys: str) -> Iterator[None]:
    """Seed NumPy's global random state (which rliable's bootstrap draws from) from ``seed``
    and ``keys`` for the block, then restore the state the caller had."""
    saved = np.random.get_state()
    np.random.seed(_stream(seed, *keys))
    try:
        yield
    finally:
        np.random.set_state(saved)


# ------------------------------------------------------------------------------ estimates
@dataclass(frozen=True)
class Estimate:
    """IQM and mean of one group's runs x seeds with their CIs ``(low, high)``."""

    iqm: float
    iqm_ci: tuple[float, float]
    mean: float
    mean_ci: tuple[float, float]
    n_runs: int
    n_seeds: int


def _iqm(scores: np.ndarray) -> float:
    """rliable's ``aggregate_iqm`` (``scipy.stats.trim_mean(scores, 0.25, axis=None)``) by
    scipy's own steps (the same ``np.partition``, so the same float), without its ~0.5 ms
    per-call wrapper: the bootstrap calls it thousands of times per entry."""
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    low = int(0.25 * flat.size)
    high = flat.size - low
    return float(np.mean(np.partition(flat, (low, high - 1))[low:high]))


def _iqm_and_mean(scores: np.ndarray) -> np.ndarray:
    _, metrics = _rliable()
    return np.array([_iqm(scores), metrics.aggregate_mean(scores)])


def interval_estimates(matrices: Mapping[str, ScoreMatrix], reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED,
                       confidence: float = CONFIDENCE) -> dict[str, Estimate]:
    """Per group the IQM and mean over runs x seeds with percentile bootstrap CIs
    (rliable's ``get_interval_estimates``, scenario seeds and runs resampled; the point
    IQM is ``rliable.metrics.aggregate_iqm``)."""
    library, metrics = _rliable()
    out: dict[str, Estimate] = {}
    for name, mat in matrices.items():
        with seeded(seed, "estimates", name):
            point, ci = library.get_interval_estimates({name: mat.scores}, _iqm_and_mean, task_bootstrap=True,
                                                       reps=int(reps), confidence_interval_size=confidence)
        p, c = point[name], ci[name]
        out[name] = Estimate(float(metrics.aggregate_iqm(mat.scores)), (float(c[0, 0]), float(c[1, 0])), float(p[1]),
                             (float(c[0, 1]), float(c[1, 1])), mat.n_runs, mat.n_seeds)
    return out


def seed_estimate(values: Sequence[float], name: str, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED,
                  confidence: float = CONFIDENCE) -> Estimate:
    """:func:`interval_estimates` of one policy run once per scenario seed (``values[k]`` =
    its score on the ``k``-th seed): IQM and mean over seeds with bootstrap CIs over seeds.
    ``name`` keys the bootstrap stream (:func:`seeded`)."""
    x = np.asarray(list(values), dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"values must be a non-empty sequence of finite numbers, got {list(values)!r:.80}")
    mat = ScoreMatrix(name, "policy", (name,), tuple(range(x.size)), x[None, :])
    return interval_estimates({name: mat}, reps, seed, confidence)[name]


@dataclass(frozen=True)
class Profiles:
    """Score distributions: ``profile[name][k]`` is the fraction of the group's runs x seeds
    with score ``> taus[k]``; ``low``/``high`` its CI."""

    taus: np.ndarray
    profile: dict[str, np.ndarray] = field(default_factory=dict)
    low: dict[str, np.ndarray] = field(default_factory=dict)
    high: dict[str, np.ndarray] = field(default_factory=dict)


def profile_taus(matrices: Mapping[str, ScoreMatrix], n: int = 101) -> np.ndarray:
    """An even ``tau`` grid from ``min(0, lowest score)`` to ``max(100, highest score)``."""
    vals = [m.scores for m in matrices.values() if m.scores.size]
    lo = min([0.0] + [float(v.min()) for v in vals])
    hi = max([100.0] + [float(v.max()) for v in vals])
    return np.linspace(lo, hi, int(n))


def _exceed_fraction(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rliable's run-score distribution ``mean(scores > tau)`` for every ``tau`` at once."""
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    return (flat[None, :] > np.asarray(taus, dtype=np.float64)[:, None]).mean(axis=1)


def performance_profiles(matrices: Mapping[str, ScoreMatrix], taus: Sequence[float] | np.ndarray | None = None,
                         reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED,
                         confidence: float = CONFIDENCE) -> Profiles:
    """Per group the performance profile over ``taus`` (default :func:`profile_taus`) with
    CIs (rliable's ``create_performance_profile``; the profile function is its run-score
    distribution, vectorised over ``tau``)."""
    library, _ = _rliable()
    grid = profile_taus(matrices) if taus is None else np.asarray(taus, dtype=np.float64)
    out = Profiles(grid)
    for name, mat in matrices.items():
        with seeded(seed, "profile", name):
            prof, ci = library.create_performance_profile({name: mat.scores}, grid, custom_profile_func=_exceed_fraction,
                                                          task_bootstrap=True, reps=int(reps),
                                                          confidence_interval_size=confidence)
        out.profile[name] = np.asarray(prof[name], dtype=np.float64)
        out.low[name] = np.asarray(ci[name][0], dtype=np.float64)
        out.high[name] = np.asarray(ci[name][1], dtype=np.float64)
    return out


@dataclass(frozen=True)
class Improvement:
    """``P(X > Y)`` of ``x`` over ``y`` on their common scenario seeds, with its CI."""

    x: str
    y: str
    p: float
    ci: tuple[float, float]
    n_seeds: int

    @property
    def excludes_half(self) -> bool:
        return self.ci[0] > 0.5 or self.ci[1] < 0.5


def _poi(x: np.ndarray, y: np.ndarray) -> float:
    """rliable's ``probability_of_improvement`` (per task the Mann-Whitney ``U / (n_x n_y)``,
    i.e. ``P(x > y) + P(x = y) / 2`` over all pairs of runs; averaged over tasks), vectorised:
    the bootstrap calls it thousands of times and scipy's test costs ~0.3 ms per task."""
    d = x[:, None, :] - y[None, :, :]
    return float(((d > 0) + 0.5 * (d == 0)).mean(axis=(0, 1)).mean())


def probability_of_improvement(x: ScoreMatrix, y: ScoreMatrix, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED,
                               confidence: float = CONFIDENCE) -> Improvement | None:
    """``P(X > Y)``: the probability that a run of ``x`` beats a run of ``y`` on a scenario,
    averaged over their common scenario seeds (rliable's ``probability_of_improvement``),
    with a bootstrap CI; ``None`` without common seeds.

    The bootstrap pairs by seed: both matrices are tiled to a common number of rows ``L``
    (the lcm of their run counts) and stacked into one ``(L, n_seeds, 2)`` array, which
    rliable's ``StratifiedBootstrap`` with ``task_bootstrap=True`` resamples with one draw of
    seeds for both and independent draws of rows within each seed; of a replicate the first
    ``n_runs`` rows of each side are used, which are ``n_runs`` draws with replacement from
    that side's own runs.
    """
    library, metrics = _rliable()
    common = sorted(set(x.seeds) & set(y.seeds))
    if not common:
        return None
    a, b = x.on(common), y.on(common)
    rx, ry = a.shape[0], b.shape[0]
    rows = rx * ry // math.gcd(rx, ry)
    stacked = np.stack([np.tile(a, (rows // rx, 1)), np.tile(b, (rows // ry, 1))], axis=-1)

    def func(s: np.ndarray) -> np.ndarray:
        return np.array([_poi(s[:rx, :, 0], s[:ry, :, 1])])

    with seeded(seed, "improvement", x.name, y.name):
        _, ci = library.get_interval_estimates({"p": stacked}, func, task_bootstrap=True, reps=int(reps),
                                               confidence_interval_size=confidence)
    p = float(metrics.probability_of_improvement(a, b))
    return Improvement(x.name, y.name, p, (float(ci["p"][0, 0]), float(ci["p"][1, 0])), len(common))


def improvement_over(matrices: Mapping[str, ScoreMatrix], reference: str, reps: int = DEFAULT_REPS,
                     seed: int = DEFAULT_SEED, confidence: float = CONFIDENCE) -> dict[str, Improvement]:
    """Per group ``P(group > reference)`` (e.g. the track's baseline; ``{}`` if it has no matrix)."""
    if reference not in matrices:
        return {}
    out: dict[str, Improvement] = {}
    for name, mat in matrices.items():
        imp = probability_of_improvement(mat, matrices[reference], reps, seed, confidence)
        if imp is not None:
            out[name] = imp
    return out


@dataclass(frozen=True)
class Verdict:
    """Whether the two groups with the highest IQM are distinguishable at the CI level:
    their IQM CIs do not overlap, or the CI of ``P(a > b)`` excludes 0.5."""

    a: str
    b: str
    distinguishable: bool
    iqm_a: Estimate
    iqm_b: Estimate
    overlap: bool
    improvement: Improvement | None
    confidence: float = CONFIDENCE

    def sentence(self, code: str = "`") -> str:
        """The line under the board's table (``code``: the quote around entry names)."""
        a, b = f"{code}{self.a}{code}", f"{code}{self.b}{code}"
        pct = f"{100 * self.confidence:g}%"
        ia, ib = self.iqm_a, self.iqm_b
        iqm = (f"IQM {ia.iqm:.1f} [{ia.iqm_ci[0]:.1f}, {ia.iqm_ci[1]:.1f}] vs {ib.iqm:.1f} "
               f"[{ib.iqm_ci[0]:.1f}, {ib.iqm_ci[1]:.1f}], {pct} CIs {'overlap' if self.overlap else 'do not overlap'}")
        if self.improvement is None:
            poi = "no common scenario seeds for P(a > b)"
        else:
            imp = self.improvement
            poi = (f"P({self.a} > {self.b}) = {imp.p:.2f} [{imp.ci[0]:.2f}, {imp.ci[1]:.2f}] "
                   f"{'excludes' if imp.excludes_half else 'includes'} 0.5")
        if self.distinguishable:
            return f"{a} and {b} are distinguishable: {iqm}; {poi}."
        return f"{a} and {b} are NOT distinguishable at {pct}: {iqm}; {poi}."


def top_two_verdict(matrices: Mapping[str, ScoreMatrix], estimates: Mapping[str, Estimate],
                    reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED,
                    confidence: float = CONFIDENCE) -> Verdict | None:
    """The :class:`Verdict` on the two groups with the highest IQM (ties by name); ``None``
    with fewer than two."""
    ranked = sorted((n for n in estimates if n in matrices), key=lambda n: (-estimates[n].iqm, n))
    if len(ranked) < 2:
        return None
    a, b = ranked[0], ranked[1]
    ea, eb = estimates[a], estimates[b]
    overlap = not (ea.iqm_ci[0] > eb.iqm_ci[1] or eb.iqm_ci[0] > ea.iqm_ci[1])
    imp = probability_of_improvement(matrices[a], matrices[b], reps, seed, confidence)
    return Verdict(a, b, (not overlap) or (imp is not None and imp.excludes_half), ea, eb, overlap, imp, confidence)


@dataclass(frozen=True)
class TrackStats:
    """Everything the board shows of one track's statistics."""

    matrices: dict[str, ScoreMatrix]
    estimates: dict[str, Estimate]
    profiles: Profiles
    improvement: dict[str, Improvement]
    verdict: Verdict | None
    baseline: str
    reps: int
    seed: int
    confidence: float = CONFIDENCE


def track_stats(tr: Track, entries: Sequence[Mapping[str, Any]], reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED,
                taus: Sequence[float] | np.ndarray | None = None, confidence: float = CONFIDENCE) -> TrackStats:
    """Score matrices, IQM/mean estimates, performance profiles, ``P(improvement)`` over the
    track's baseline and the top-two verdict of one track's (newest) entries."""
    if int(reps) < 1:
        raise ValueError(f"reps must be a positive integer, got {reps!r}")
    mats = score_matrices(tr, entries)
    est = interval_estimates(mats, reps, seed, confidence)
    return TrackStats(mats, est, performance_profiles(mats, taus, reps, seed, confidence),
                      improvement_over(mats, tr.baseline, reps, seed, confidence),
                      top_two_verdict(mats, est, reps, seed, confidence), tr.baseline, int(reps), int(seed), confidence)
