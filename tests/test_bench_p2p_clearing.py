"""Smoke test of benchmarks/bench_p2p_clearing.py on small synthetic days (structure of its
output, bounds consistent and reusable; no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_p2p_clearing", ROOT / "benchmarks" / "bench_p2p_clearing.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_p2p_clearing_small(tmp_path):
    bench = _bench()
    args = ["--days", "3", "--sizes", "3,4", "--debate-days", "1", "--debate-gmax", "20", "--np", "6", "--seed", "1"]
    first = tmp_path / "a.json"
    rep = bench.main(args + ["--out", str(first)])
    assert json.loads(first.read_text())["sizes"].keys() == {"3", "4"}
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    for n, v in rep["sizes"].items():
        s = v["summary"]
        assert s["days"] == 3 and s["bound"] == "bnb" and s["debate_days"] == 1
        for d in v["days"]:
            assert d["no_trade_value"] <= d["objective"] <= d["upper_bound"] + 1e-12
            assert d["objective"] <= d["reference_objective"] + 1e-12 <= d["upper_bound"] + 2e-12
            assert 0.0 <= d["gain_lost_share"] <= 1.0
        lost = [d["gain_lost_share"] for d in v["days"]]
        assert s["max_gain_lost"] == max(lost) and s["mean_gain_lost"] == pytest.approx(np.mean(lost))
    # the bounds reused by a second run of other options: same bounds, the new objectives scored
    second = tmp_path / "b.json"
    rep2 = bench.main(args + ["--bounds-from", str(first), "--default-options", '{"lp_rounds": 5}', "--out", str(second)])
    for n in rep["sizes"]:
        ub1 = [d["upper_bound"] for d in rep["sizes"][n]["days"]]
        ub2 = [d["upper_bound"] for d in rep2["sizes"][n]["days"]]
        assert ub2 == [max(u, d["objective"]) for u, d in zip(ub1, rep2["sizes"][n]["days"])]
        assert rep2["sizes"][n]["summary"]["bound"].startswith("from ")
    # another mechanism in the default's place, scored against the same bounds
    rep3 = bench.main(args + ["--bounds-from", str(first), "--mechanism", "bnb", "--default-options",
                              '{"node_limit": 3}', "--out", str(tmp_path / "d.json")])
    assert rep3["mechanism"] == "bnb"
    for n in rep["sizes"]:
        for d in rep3["sizes"][n]["days"]:
            assert d["no_trade_value"] <= d["objective"] <= d["upper_bound"] + 1e-12
    with pytest.raises(SystemExit, match="mechanism"):
        bench.main(args + ["--mechanism", "nope", "--out", str(tmp_path / "e.json")])
    with pytest.raises(SystemExit, match="seed"):
        bench.main(["--days", "3", "--sizes", "3", "--seed", "2", "--debate-days", "0", "--bounds-from", str(first),
                    "--out", str(tmp_path / "c.json")])


def test_learned_price_days():
    # the days of a learning run: PQR sellers' prices move within the band (Eq. 5.2d) over the year
    days = _bench().learned_days(3, 4, 0)
    assert len(days) == 4
    prices = np.array([d.seller_price for d in days])
    assert np.all((prices >= 0.06) & (prices <= 0.12))
    assert not np.allclose(prices[0], prices[-1])


def test_validate_bound_script(tmp_path):
    spec = importlib.util.spec_from_file_location("validate_p2p_bound", ROOT / "benchmarks" / "validate_p2p_bound.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "v.json"
    s = mod.main(["--sizes", "3", "--seeds", "2", "--milp-time-limit", "10", "--out", str(out)])
    assert s["days"] >= 3 and s["invalid"] == 0  # the bound is above every MILP-proven optimum
    assert s["worst_lb_below_milp_share"] <= 1e-9
    assert json.loads(out.read_text())["summary"] == s
