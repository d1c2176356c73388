"""Smoke test of benchmarks/bench_envs.py --quick (structure of its output; no timing assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import prosumer_gym

ROOT = Path(__file__).resolve().parents[1]


def test_bench_envs_quick(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_envs.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left behind
    seen = {(r["env"], r["view"]) for r in res["envs"] if r["view"] not in ("peer", "vec", "dummyvec")}
    assert seen == {(e, v) for e in prosumer_gym.REGISTERED for v in ("pettingzoo", "gymnasium")}
    batched = {(r["env"], r["view"]) for r in res["envs"] if r["view"] in ("vec", "dummyvec")}
    vec_ids = {"P2PTrading-v0", "StorageSharing-v0", "ProsumerSharing-v0", "EnergyCollective-v0"}
    assert batched == {(e, "vec") for e in vec_ids} | {(e, "dummyvec") for e in vec_ids - {"ProsumerSharing-v0"}}
    assert all(r["num_envs"] == 2 and r["agents"] == 2 for r in res["envs"] if r["view"] in ("vec", "dummyvec"))
    for r in res["envs"]:
        assert len(r["rounds"]) == res["rounds"] == 2
        assert r["steps_per_s_min"] <= r["steps_per_s_median"]
        assert r["agents"] >= 1 and r["agent_steps_per_s_median"] >= r["steps_per_s_median"] > 0
    assert {(s["env"], s["size"]) for s in res["scaling"]} == {("P2PTrading-v0", 5), ("P2PRecommendation-v0", 5)}
    assert "citylearn" in res["peers"]
    if res["peers"]["citylearn"].startswith("skipped"):
        assert "skipped" in proc.stdout
    assert "steps/s" in proc.stdout and "load average" in proc.stdout


def test_bench_envs_only_some_envs(tmp_path):
    """``--envs`` runs just those ids (both views and their batched rows), nothing else."""
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_envs.py"), "--quick", "--envs",
                           "StorageSharing-v0", "--out", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert {(r["env"], r["view"]) for r in res["envs"] if r["view"] != "peer"} == {
        ("StorageSharing-v0", v) for v in ("pettingzoo", "gymnasium", "vec", "dummyvec")}
    assert res["scaling"] == []
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_envs.py"), "--quick", "--envs", "Nope-v0"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode != 0 and "--envs must be" in bad.stderr
