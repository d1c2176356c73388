"""Leaderboard statistics (rliable): score matrices per group of runs, IQM and mean with
bootstrap CIs, performance profiles, P(improvement), the top-two verdict, determinism, and
their place on the board (markdown, HTML page, plots)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import numpy as np
import pytest
from scipy import stats as sps

from prosumer_gym.eval.leaderboard import track
from prosumer_gym.eval.leaderboard.report import board_rows, score_rows, write_report
from prosumer_gym.eval.leaderboard.runner import make_entry
from prosumer_gym.eval.leaderboard.stats import (
    ScoreMatrix,
    _iqm,
    _poi,
    _rliable,
    group_entries,
    interval_estimates,
    performance_profiles,
    probability_of_improvement,
    score_matrices,
    top_two_verdict,
    track_stats,
)

P2P = "P2PTrading-v0"  # baseline rule; top pqr (among the entries here); buyers 0.5, sellers 0.5, traded 0
N_SEEDS, N_RUNS = 30, 5
SEEDS = tuple(1_000_000 + k for k in range(N_SEEDS))
REPS = 400


# ------------------------------------------------------------------------------ synthetic board
def _base_levels(seeds=SEEDS):
    rng = np.random.default_rng(7)
    return rng.normal(-20, 3, len(seeds)), rng.normal(3, 0.5, len(seeds))


def _entry(name, kind, composite, seeds=SEEDS, group=None, train_seed=None):
    """An entry whose normalised composite on seed ``s`` is exactly ``composite[k]``: the
    baseline's per-seed levels plus ``d/100`` of the top-minus-baseline gap on both metrics."""
    tr = track(P2P)
    buyers, sellers = _base_levels(seeds)
    d = np.asarray(composite, dtype=np.float64) / 100.0
    res = [{"seed": s, "metrics": {"buyers_pt_value": float(b + 4 * x), "sellers_revenue_usd": float(c + 2 * x),
                                   "traded_kwh": 30.0}, "curve": [0.0, 1.0], "seconds": 0.0}
           for s, b, c, x in zip(seeds, buyers, sellers, d)]
    assert [m.key for m in tr.metrics] == ["buyers_pt_value", "sellers_revenue_usd", "traded_kwh"]
    e = make_entry(P2P, name, kind, name, {"type": "test", "train_seed": train_seed}, res)
    if group:
        e["group"] = group
    return e


def _group(group, kind, scores):
    return [_entry(f"{group}/seed{r}", kind, row, group=group, train_seed=r) for r, row in enumerate(scores)]


def _board():
    rng = np.random.default_rng(2021)
    zero = np.zeros(N_SEEDS)
    return ([_entry("rule", "baseline", zero), _entry("pqr", "agent", zero + 100.0),
             _entry("twin", "submission", zero)]  # the baseline's own numbers
            + _group("better", "rl-baseline", rng.normal(20, 10, (N_RUNS, N_SEEDS)))  # +20 score points
            + _group("peer", "rl-baseline", rng.normal(0, 10, (N_RUNS, N_SEEDS))))  # the baseline's level


@pytest.fixture(scope="module")
def board():
    ents = _board()
    return ents, score_matrices(track(P2P), ents)


# ------------------------------------------------------------------------------ matrices
def test_score_matrices_group_runs_and_match_the_board_composite(board):
    ents, mats = board
    assert list(mats) == ["rule", "pqr", "twin", "better", "peer"]
    better = mats["better"]
    assert better.scores.shape == (N_RUNS, N_SEEDS) and better.kind == "rl-baseline"
    assert better.members == tuple(f"better/seed{r}" for r in range(N_RUNS)) and better.seeds == SEEDS
    assert mats["twin"].scores.shape == (1, N_SEEDS) and np.allclose(mats["twin"].scores, 0, atol=1e-9)
    assert np.allclose(mats["pqr"].scores, 100)
    # each run's row is that entry's per-seed composite of the board (score_rows)
    rows = {r["name"]: r for r in score_rows(track(P2P), ents)}
    for r, name in enumerate(better.members):
        assert better.scores[r].mean() == pytest.approx(rows[name]["score"])
    # the group's board row: one row, per-seed means over the runs, same mean as the matrix
    brows = {r["name"]: r for r in board_rows(track(P2P), ents)}
    assert "better" in brows and not any("/" in n for n in brows)
    assert brows["better"]["n_runs"] == N_RUNS and brows["better"]["n_seeds"] == N_SEEDS
    assert brows["better"]["score"] == pytest.approx(better.scores.mean())


def test_groups_refuse_mixed_kinds():
    bad = _group("x", "rl-baseline", np.zeros((2, 3)))
    bad[1]["kind"] = "submission"
    with pytest.raises(ValueError, match="mixes kinds"):
        group_entries(bad)


# ------------------------------------------------------------------------------ IQM and mean
def test_iqm_is_the_trimmed_mean_and_the_ci_covers_the_truth(board):
    _, mats = board
    est = interval_estimates({k: mats[k] for k in ("better", "peer")}, reps=1000)
    for name, truth in (("better", 20.0), ("peer", 0.0)):
        e = est[name]
        x = mats[name].scores.ravel()
        assert e.iqm == sps.trim_mean(x, 0.25)  # rliable's IQM: 25% trimmed mean of all runs x seeds
        assert e.mean == pytest.approx(x.mean())
        assert e.iqm_ci[0] < e.iqm < e.iqm_ci[1] and e.mean_ci[0] < e.mean < e.mean_ci[1]
        assert e.iqm_ci[0] < truth < e.iqm_ci[1] and e.mean_ci[0] < truth < e.mean_ci[1]  # N(truth, 10): IQM = mean
        assert (e.n_runs, e.n_seeds) == (N_RUNS, N_SEEDS)


def test_fast_bootstrap_functions_equal_rliable():
    _, metrics = _rliable()
    rng = np.random.default_rng(3)
    for shape in ((1, 5), (5, 30), (3, 7), (4, 1)):
        x = rng.normal(size=shape)
        assert _iqm(x) == metrics.aggregate_iqm(x)  # bit for bit
    for rx, ry in ((1, 1), (5, 1), (3, 4)):
        x = rng.integers(0, 4, (rx, 9)).astype(float)  # many ties
        y = rng.integers(0, 4, (ry, 9)).astype(float)
        assert _poi(x, y) == pytest.approx(metrics.probability_of_improvement(x, y), abs=1e-12)
        assert _poi(x, x) == 0.5


def test_ci_narrows_with_more_seeds():
    rng = np.random.default_rng(11)
    big = rng.normal(20, 10, (N_RUNS, 80))
    widths = []
    for n in (10, 80):
        m = ScoreMatrix("e", "rl-baseline", tuple("r%d" % r for r in range(N_RUNS)), tuple(range(n)), big[:, :n])
        e = interval_estimates({"e": m}, reps=REPS)["e"]
        widths.append(e.iqm_ci[1] - e.iqm_ci[0])
    assert widths[1] < 0.6 * widths[0]  # ~1/sqrt(8) in theory


def test_one_run_entries_get_scenario_bootstrap_intervals(board):
    """rliable's default (runs resampled within each scenario only) gives a one-run entry a
    zero-width CI; resampling the scenarios too gives it a real one."""
    _, mats = board
    one = ScoreMatrix("one", "agent", ("one",), SEEDS, mats["better"].scores[:1])
    e = interval_estimates({"one": one}, reps=REPS)["one"]
    assert e.iqm_ci[1] - e.iqm_ci[0] > 1.0


# ------------------------------------------------------------------------------ profiles
def test_performance_profile_is_monotone_and_rliable_score_distribution(board):
    _, mats = board
    library, _ = _rliable()
    taus = np.linspace(-50, 150, 41)
    prof = performance_profiles(mats, taus, reps=REPS)
    assert np.array_equal(prof.taus, taus)
    for name, mat in mats.items():
        p, lo, hi = prof.profile[name], prof.low[name], prof.high[name]
        assert np.all(np.diff(p) <= 0) and np.all(np.diff(lo) <= 1e-12) and np.all(np.diff(hi) <= 1e-12)
        assert np.all(lo <= p + 1e-12) and np.all(p <= hi + 1e-12)
        assert np.array_equal(p, library.score_distributions(mat.scores, taus))  # rliable's own profile
    assert prof.profile["pqr"][taus < 100].min() == 1 and prof.profile["pqr"][taus >= 100].max() == 0
    default = performance_profiles(mats, reps=50).taus  # grid spans [min(0, lowest), max(100, highest)]
    assert default[0] <= min(m.scores.min() for m in mats.values()) and default[-1] >= 100


# ------------------------------------------------------------------------------ P(improvement)
def test_probability_of_improvement(board):
    _, mats = board
    base = mats["rule"]
    better = probability_of_improvement(mats["better"], base, reps=REPS)
    assert better.p > 0.9 and better.ci[0] > 0.5 and better.excludes_half  # Phi(2) = 0.977
    assert better.p == pytest.approx(np.mean(mats["better"].scores > 0))
    twin = probability_of_improvement(mats["twin"], base, reps=REPS)
    assert twin.p == 0.5 and twin.ci == (0.5, 0.5) and not twin.excludes_half
    peer = probability_of_improvement(mats["peer"], base, reps=REPS)
    assert abs(peer.p - 0.5) < 0.1 and peer.ci[0] < 0.5 < peer.ci[1]
    worse = probability_of_improvement(base, mats["better"], reps=REPS)
    assert worse.p == pytest.approx(1 - better.p) and worse.ci[1] < 0.5
    # paired by scenario seed: only the common seeds count
    half = ScoreMatrix("half", "agent", ("half",), SEEDS[:10], np.full((1, 10), 5.0))
    assert probability_of_improvement(half, base, reps=50).n_seeds == 10
    none = ScoreMatrix("none", "agent", ("none",), (1, 2), np.ones((1, 2)))
    assert probability_of_improvement(none, base, reps=50) is None


# ------------------------------------------------------------------------------ verdict
def test_top_two_verdict(board):
    _, mats = board
    pick = {k: mats[k] for k in ("better", "peer", "twin")}
    v = top_two_verdict(pick, interval_estimates(pick, reps=REPS), reps=REPS)
    assert (v.a, v.b) == ("better", "peer") and v.distinguishable and not v.overlap
    assert v.improvement.excludes_half and v.improvement.p > 0.9
    assert v.sentence().startswith("`better` and `peer` are distinguishable: ")
    # two groups from one distribution are not distinguishable
    rng = np.random.default_rng(5)
    same = {n: ScoreMatrix(n, "rl-baseline", ("a", "b", "c"), SEEDS, rng.normal(0, 10, (3, N_SEEDS)))
            for n in ("p", "q")}
    v = top_two_verdict(same, interval_estimates(same, reps=REPS), reps=REPS)
    assert not v.distinguishable and v.overlap and not v.improvement.excludes_half
    assert " are NOT distinguishable at 95%: " in v.sentence()
    assert top_two_verdict({"p": same["p"]}, interval_estimates({"p": same["p"]}, reps=50)) is None


# ------------------------------------------------------------------------------ determinism
def test_statistics_are_deterministic_and_leave_global_random_state_alone(board):
    ents, _ = board
    tr = track(P2P)
    np.random.seed(99)
    expected_draw = np.random.random()
    np.random.seed(99)
    a = track_stats(tr, ents, reps=200)
    assert np.random.random() == expected_draw  # the caller's global state is restored
    np.random.seed(12345)  # whatever the global state, the same numbers
    b = track_stats(tr, ents, reps=200)
    assert a.estimates == b.estimates and a.improvement == b.improvement and a.verdict == b.verdict
    for n in a.profiles.profile:
        assert np.array_equal(a.profiles.low[n], b.profiles.low[n])
        assert np.array_equal(a.profiles.high[n], b.profiles.high[n])
    # an entry's numbers do not depend on the other entries of the board or their order
    c = track_stats(tr, [e for e in reversed(ents) if not e["name"].startswith("peer")], reps=200)
    assert c.estimates["better"] == a.estimates["better"] and c.improvement["better"] == a.improvement["better"]
    # another seed: other resamples
    d = track_stats(tr, ents, reps=200, seed=1)
    assert d.estimates["better"].iqm == a.estimates["better"].iqm
    assert d.estimates["better"].iqm_ci != a.estimates["better"].iqm_ci


# ------------------------------------------------------------------------------ the board
def test_report_has_statistics_columns_line_and_plots(tmp_path, board):
    ents, _ = board
    boards = write_report(ents, tmp_path / "LEADERBOARD.md", tmp_path / "site", reps=REPS)
    md = (tmp_path / "LEADERBOARD.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| # |"))
    assert "| score |" in header and "| IQM [95% CI] | P(improve over baseline) [CI] | runs | seeds |" in header
    rows = {r["name"]: r for r in boards[P2P]}
    assert set(rows) == {"rule", "pqr", "twin", "better", "peer"}  # runs grouped into one row
    assert rows["better"]["kind"] == "rl-baseline" and rows["better"]["n_runs"] == N_RUNS
    line = next(x for x in md.splitlines() if x.startswith("| ") and "`better`" in x and "| rl-baseline |" in x)
    glance = next(x for x in md.splitlines() if x.startswith(f"| {P2P} | `better`"))  # the at-a-glance row
    assert "| yes |" in glance  # +20 points over 30 seeds: the CI excludes the baseline's 0
    r = rows["better"]
    assert f"{r['iqm']:.1f} [{r['iqm_ci'][0]:.1f}, {r['iqm_ci'][1]:.1f}]" in line
    assert f"{r['improve']:.2f} [{r['improve_ci'][0]:.2f}, {r['improve_ci'][1]:.2f}]" in line
    assert f"| {N_RUNS} | {N_SEEDS} |" in line
    assert "`pqr` and `better` are distinguishable: " in md  # the two highest IQMs (100 vs ~20)
    assert "(site/img/p2ptrading_v0_profile.png)" in md and "(site/img/p2ptrading_v0_iqm.png)" in md
    for kind in ("metrics", "curves", "iqm", "profile"):
        png = (tmp_path / "site" / "img" / f"p2ptrading_v0_{kind}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
    page = (tmp_path / "site" / "index.html").read_text()
    assert "<th>IQM [95% CI]</th><th>P(improve over baseline) [CI]</th><th>runs</th><th>seeds</th>" in page
    assert '<p class="verdict"><code>pqr</code> and <code>better</code> are distinguishable: ' in page
    from prosumer_gym.train.baselines import shipped_baselines

    n_training = 1 if shipped_baselines(P2P) else 0  # the shipped baselines' training curves
    assert page.count('class="stats-plot"') == 2 + n_training and page.count("<tr class=") == 5
    assert '<tr class="rl-baseline"' in page
    # the same inputs write the same bytes
    write_report(ents, tmp_path / "again.md", tmp_path / "site2", reps=REPS)
    assert (tmp_path / "again.md").read_text().replace("site2/", "site/") == md
    assert (tmp_path / "site2" / "img" / "p2ptrading_v0_profile.png").read_bytes() == \
        (tmp_path / "site" / "img" / "p2ptrading_v0_profile.png").read_bytes()


def test_statistics_plots_render_in_headless_chromium(tmp_path, board):
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        pytest.skip("no Chromium installed (apt-get install chromium; .ci/run installs it)")
    ents, _ = board
    write_report(ents, tmp_path / "LEADERBOARD.md", tmp_path / "site", reps=100)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
           (tmp_path / "site" / "index.html").as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    from prosumer_gym.train.baselines import shipped_baselines

    n = 2 + (1 if shipped_baselines(P2P) else 0)  # + the shipped baselines' training curves
    assert f'data-stats-images="{n}/{n}"' in dom and dom.count('data-stats-loaded="1"') == n
    assert 'data-images="2/2"' in dom
    cells = re.findall(r'<td data-v="([^"]*)">([^<]*\[[^<]*\])</td>', dom)
    assert cells and all(math.isfinite(float(v)) for v, _ in cells)
