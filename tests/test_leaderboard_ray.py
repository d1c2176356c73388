"""Ray-parallel leaderboard evaluation equals the serial runner (needs the ``rllib`` extra)."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray", reason='needs Ray: pip install "prosumer_gym[rllib]" (make setup installs it)')

from prosumer_gym.eval.leaderboard import track  # noqa: E402
from prosumer_gym.eval.leaderboard.runner import Job, evaluate, run_jobs  # noqa: E402
from tests.helpers import same  # noqa: E402


def test_ray_evaluation_equals_serial(tmp_path):
    small = {"P2PTrading-v0": {"n_days": 15}, "StorageSharing-v0": {"n_slots": 4}}
    jobs = [Job(env_id, name, seed, {}, small[env_id])
            for env_id, names in (("P2PTrading-v0", ("prodqn", "pqr")), ("StorageSharing-v0", ("se", "random")))
            for name in names for seed in track(env_id).seeds[:2]]
    serial = run_jobs(jobs, "serial")
    fanned = run_jobs(jobs, "ray", workers=2)
    assert len(fanned) == len(serial)
    for s, r in zip(serial, fanned):
        assert s["seed"] == r["seed"]
        assert s["metrics"] == r["metrics"]
        assert same(s["curve"], r["curve"])
    # the whole evaluate() path, as `prosumer-gym-leaderboard eval --ray` runs it
    a = evaluate("P2PTrading-v0", "random", n_seeds=3, env_overrides=small["P2PTrading-v0"])
    b = evaluate("P2PTrading-v0", "random", n_seeds=3, env_overrides=small["P2PTrading-v0"], backend="ray", workers=2)
    assert a["metrics"] == b["metrics"] and a["seeds"] == b["seeds"]
