"""Chapter 4 experiment drivers in their --quick form: the held-out exploration-scale tuning
(scripts/p2p_recommendation_exploration.py) and the reproduction's --paper-size point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prosumer_gym.agents.p2p_recommendation import DEFAULT_EXPLORATION
from prosumer_gym.eval.leaderboard.stats import seed_estimate
from prosumer_gym.eval.reproduce import p2p_recommendation as rec

from .helpers import load_script


def _load():
    return load_script("p2p_recommendation_exploration")


def _inside(e: dict) -> bool:
    return e["mean_ci"][0] - 1e-9 <= e["mean"] <= e["mean_ci"][1] + 1e-9


def test_exploration_quick_tunes_on_held_out_seeds_and_reports_others(tmp_path):
    mod = _load()
    assert mod.main(["--out", str(tmp_path), "--quick", "--phase", "tune"]) == 0
    assert (tmp_path / "tuning.json").exists() and not (tmp_path / "results.json").exists()
    with pytest.raises(ValueError, match="tuning.json"):  # another setting than the stored tuning
        mod.main(["--out", str(tmp_path), "--phase", "report", "--days", "5", "--size", "6x4"])
    assert mod.main(["--out", str(tmp_path), "--quick", "--phase", "report"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["tuning"] == json.loads((tmp_path / "tuning.json").read_text())["tuning"]
    t, r = res["tuning"], res["report"]
    assert not set(t["seeds"]) & set(r["seeds"])
    # the joint choice maximises the learners' mean tuning efficiency (ties: smaller c)
    grid = res["grid"]
    joint = [np.mean([t["mean_pct"][n][str(c)] for n in mod.LEARNERS]) for c in grid]
    assert t["chosen"]["joint"] == grid[int(np.argmax(joint))]
    for n in mod.LEARNERS:
        assert t["chosen"][n] == grid[int(np.argmax([t["mean_pct"][n][str(c)] for c in grid]))]
        assert np.mean(t["efficiency_pct"][n][str(t["chosen"][n])]) == pytest.approx(max(t["mean_pct"][n].values()))
    # reported: the chosen c, the default 0.01 and Eq. 4.4 verbatim; nobody beats OPT
    assert set(r["c_values"]) == {t["chosen"]["joint"], 0.01, 1.0}
    for k, e in r["efficiency_pct"].items():
        assert e["n"] == len(r["seeds"]) and _inside(e)
        assert all(0.0 < v <= 100.0 + 1e-6 for v in e["values"]), k
    for k, e in r["paired_differences"].items():
        assert _inside(e)
    assert "Chosen:" in (tmp_path / "results.md").read_text()


def test_exploration_refuses_tuning_on_a_reported_seed(tmp_path):
    mod = _load()
    with pytest.raises(ValueError, match="tune_seeds"):
        mod.main(["--out", str(tmp_path), "--tune-seeds", "0,100", "--report-seeds", "0,1"])
    with pytest.raises(ValueError, match="grid"):
        mod.main(["--out", str(tmp_path), "--grid", "0.01,-1"])


def test_reproduction_paper_size_quick(tmp_path):
    res = rec.main(["--out", str(tmp_path), "--paper-size", "--quick", "--paper-seeds", "0,1"])
    on_disk = json.loads((tmp_path / "paper_size.json").read_text())
    assert on_disk["seeds"] == [0, 1] and on_disk["size"] == "3x10" and on_disk["days"] == 10
    sm = res["summary"]
    assert sm["opt efficiency_pct"]["mean"] == pytest.approx(100.0)
    for n in ("upl", "bpt-k", "zhu_p"):
        for k in ("efficiency_pct", "daily_efficiency_pct", "satisfied_demand_pct"):
            e = sm[f"{n} {k}"]
            assert e["n"] == 2 and _inside(e) and all(0.0 <= v <= 100.0 + 1e-6 for v in e["values"])
        assert sm[f"{n} satisfied_demand_pct"]["mean"] <= sm["opt satisfied_demand_pct"]["mean"] + 1.0
    for s in ("0", "1"):
        assert res["per_seed"][s]["upl"]["init_days"] >= 1
        assert res["per_seed"][s]["post_init_from_day"] >= res["per_seed"][s]["upl"]["init_days"]
    assert "| bpt-k |" in (tmp_path / "paper_size.md").read_text()
    with pytest.raises(ValueError, match="days"):
        rec.main(["--out", str(tmp_path), "--paper-size", "--days", "0"])
    # one process per seed gives the same per-seed results as the serial run
    par = rec.main(["--out", str(tmp_path / "par"), "--paper-size", "--quick", "--paper-seeds", "0,1", "--workers", "2"])
    strip = lambda per: {s: {n: ({k: v for k, v in r.items() if k != "seconds"} if isinstance(r, dict) else r)
                             for n, r in d.items()} for s, d in per.items()}
    assert strip(par["per_seed"]) == strip(res["per_seed"]) and par["summary"] == res["summary"]
    with pytest.raises(ValueError, match="workers"):
        rec.main(["--out", str(tmp_path), "--paper-size", "--quick", "--workers", "0"])
    # the learners' exploration scale reaches them (and only them)
    # (the default is c = 0; Eq. 4.4 verbatim, c = 1, must change what the learners do)
    c0 = rec.main(["--out", str(tmp_path / "c0"), "--paper-size", "--quick", "--paper-seeds", "0,1",
                   "--exploration", "1"])
    assert c0["exploration"] == 1.0 and res["exploration"] is None
    c_default = rec.main(["--out", str(tmp_path / "cdef"), "--paper-size", "--quick", "--paper-seeds", "0,1",
                          "--exploration", str(DEFAULT_EXPLORATION)])
    assert strip(c_default["per_seed"]) == strip(res["per_seed"])
    for s in ("0", "1"):
        for n in ("opt", "zhu_p"):
            assert c0["per_seed"][s][n]["efficiency_pct"] == res["per_seed"][s][n]["efficiency_pct"]
    assert any(c0["per_seed"][s]["upl"]["efficiency_pct"] != res["per_seed"][s]["upl"]["efficiency_pct"]
               for s in ("0", "1"))
    with pytest.raises(ValueError, match="exploration"):
        rec.main(["--out", str(tmp_path), "--paper-size", "--quick", "--exploration", "-1"])


def test_seed_estimate_is_the_mean_over_seeds_with_a_bracketing_interval():
    e = seed_estimate([1.0, 2.0, 3.0, 10.0], "t")
    assert e.mean == pytest.approx(4.0) and e.n_seeds == 4 and e.n_runs == 1
    assert e.mean_ci[0] < e.mean < e.mean_ci[1] and 1.0 <= e.mean_ci[0] and e.mean_ci[1] <= 10.0
    assert seed_estimate([1.0, 2.0, 3.0, 10.0], "t") == e  # reproducible stream
    with pytest.raises(ValueError, match="values"):
        seed_estimate([], "t")
