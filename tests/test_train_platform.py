"""Platform learners through the training pipeline (chapter 4: UPL/FIA/M-UPL/BPT-K on
P2PRecommendation-v0; chapter 6: CARS/PK on EUber-v0): they learn (regret per day and
preference MAE fall), an interrupted run resumed equals an uninterrupted one (history,
learner state, TensorBoard), the CLI trains them; SB3 PPO on EUber-v0's two views."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from prosumer_gym.train import cli
from prosumer_gym.train.platform import PLATFORM, PlatformConfig, PlatformTrainer
from prosumer_gym.train.population import RunInterrupted, load_checkpoint
from tests.test_train import _nan_equal, _raw_steps, _scalars

P2P = dict(n_producers=4, n_consumers=3, oracle=True)
EUBER = dict(n_workers=12, n_ride_tasks=6, n_v2g_tasks=4)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _run(algo, env_kwargs, steps, out=None, **kw):
    cfg = PlatformConfig(algo=algo, seed=kw.pop("seed", 0), total_steps=steps, env_kwargs=env_kwargs, **kw)
    return PlatformTrainer(cfg, out, progress=False)


def _col(history, key):
    return np.array([r[key] for r in history], dtype=float)


@pytest.mark.parametrize("algo", ["fia", "upl", "bpt-k"])
def test_chapter4_regret_per_day_and_preference_error_fall(algo):
    res = _run(algo, {**P2P, "n_days": 40}, 40).run()
    h = res.history
    regret = _col(h, "regret_day_kwh")
    assert np.all(regret >= -1e-6)  # OPT is the perfect-knowledge optimum of the same day
    assert regret[-10:].mean() < 0.5 * regret[:10].mean()
    mae = _col(h, "learner/mae_preference")
    assert mae[-1] < 0.5 * mae[0]
    cum = _col(h, "learner/cumulative_regret_kwh")
    np.testing.assert_allclose(cum, np.cumsum(regret))
    np.testing.assert_allclose(cum, _col(h, "regret_kwh"))  # the env's own Eq. 4.3 over its one episode
    assert h[-1]["learner/in_init"] == 0.0 and h[-1]["learner/observed_pairs"] == 1.0
    eff = _col(h, "learner/efficiency")
    assert 0 < eff[-1] <= 1 + 1e-9 and eff[-1] > eff[4]
    agent = res.agents[PLATFORM].agent
    assert agent.init == {"fia": "fia", "upl": "upl", "bpt-k": "fia"}[algo]
    assert type(agent).__name__ == ("BPTKAgent" if algo == "bpt-k" else "UPLAgent")


def test_cars_preference_error_falls_and_pk_knows_alpha():
    cars = _run("cars", {**EUBER, "n_slots": 40}, 40).run()
    mae = _col(cars.history, "learner/mae_preference")
    assert mae[-1] < 0.5 * mae[0]
    assert np.all(np.diff(mae[5:]) <= 0.02)  # running means: no large step back once data came in
    pk = _run("pk", {**EUBER, "n_slots": 40}, 40).run()
    assert np.all(_col(pk.history, "learner/mae_preference") == 0.0)
    for res in (cars, pk):
        h = res.history
        served = _col(h, "tasks_served")
        np.testing.assert_allclose(_col(h, "learner/cumulative_tasks_served"), np.cumsum(served))
        np.testing.assert_allclose(h[-1]["cost_per_task_usd"], np.sum(_col(h, "cost_usd")) / served.sum())
        assert np.nansum(_col(h, "v2g_delivered_kwh")) > 0
    # the same market (same seed): CARS learns what PK knows; PK is served at least as well here
    assert pk.history[-1]["learner/cumulative_tasks_served"] >= 0.8 * cars.history[-1]["learner/cumulative_tasks_served"]


def _agent_state(res):
    st = res.agents[PLATFORM].state_dict()
    return {k: np.asarray(v) for k, v in st.items() if k not in ("rng",) and v is not None}, st.get("rng")


@pytest.mark.parametrize("algo,env_kwargs", [("fia", {**P2P, "n_days": 9}), ("cars", {**EUBER, "n_slots": 9})])
def test_interrupted_platform_run_resumes_to_the_uninterrupted_result(tmp_path, algo, env_kwargs):
    steps = 22  # episodes of 9 steps: the kill and the resume cross an episode boundary
    full = _run(algo, env_kwargs, steps, tmp_path / "full", checkpoint_freq=5).run()
    run = tmp_path / "killed"
    with pytest.raises(RunInterrupted):  # killed at step 12: after the checkpoint at 10, mid-episode 2
        _run(algo, env_kwargs, steps, run, checkpoint_freq=5).run(stop_after=12)
    ck = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ck == ["ckpt_000000005.pt", "ckpt_000000010.pt"]
    assert tuple(load_checkpoint(run / "checkpoints" / ck[-1])["episode_actions"].shape[:1]) == (1,)  # step 10 = t 1
    with pytest.raises(FileExistsError):
        _run(algo, env_kwargs, steps, run, checkpoint_freq=5).run()
    res = _run(algo, env_kwargs, steps, run, checkpoint_freq=5).run(resume=True)

    assert res.steps == full.steps == 22 and len(res.episodes) == len(full.episodes) == 2
    assert _nan_equal(res.history, full.history) and _nan_equal(res.episodes, full.episodes)
    (fa, frng), (ra, rrng) = _agent_state(full), _agent_state(res)
    assert fa.keys() == ra.keys() and all(np.array_equal(fa[k], ra[k]) for k in fa) and frng == rrng
    tag = "learner/mae_preference"
    assert _raw_steps(run / "tb", tag).count(11) == 2  # logged twice on disk, shown once
    sf, sr = _scalars(tmp_path / "full" / "tb"), _scalars(run / "tb")
    assert sf.keys() == sr.keys() and [s for s, _ in sf[tag]] == list(range(1, 23))
    for t in sf:
        assert [s for s, _ in sr[t]] == [s for s, _ in sf[t]], t
        np.testing.assert_allclose([v for _, v in sr[t]], [v for _, v in sf[t]], rtol=1e-6, err_msg=t)
    wanted = (["market/regret_day_kwh", "learner/cumulative_regret_kwh", "learner/efficiency",
               "learner/cumulative_exchanged_kwh", "market/exchanged_kwh"] if algo == "fia" else
              ["market/tasks_served", "market/cost_per_task_usd", "market/v2g_delivered_kwh",
               "learner/cumulative_tasks_served"])
    assert set(wanted + [tag, "agents/reward/platform", "episode/reward/platform"]) <= set(sf)
    saved = torch.load(run / "agents" / "platform.pt", weights_only=True)
    key = "p_hat" if algo == "fia" else "alpha_hat"
    np.testing.assert_array_equal(saved[key].numpy(), fa[key])
    with pytest.raises(ValueError, match="differs"):
        _run(algo, env_kwargs, steps, run, checkpoint_freq=5, seed=1).run(resume=True)


def test_greedy_frozen_evaluation_keeps_the_learned_state():
    trained = _run("cars", {**EUBER, "n_slots": 10}, 10).run()
    state = trained.agents[PLATFORM].state_dict()
    cfg = PlatformConfig(algo="cars", seed=0, total_steps=10, env_kwargs={**EUBER, "n_slots": 10}, learn=False,
                         explore=False)
    ev = PlatformTrainer(cfg, None, progress=False, agents_state={PLATFORM: state}).run()
    agent = ev.agents[PLATFORM].agent
    np.testing.assert_array_equal(agent.alpha_hat, state["alpha_hat"])
    assert agent.t == state["t"]
    assert ev.history[-1]["learner/mae_preference"] == pytest.approx(trained.history[-1]["learner/mae_preference"])


def test_platform_config_rejects_mismatches():
    assert PlatformConfig(algo="m-upl").env == "P2PRecommendation-v0"
    assert PlatformConfig(algo="pk").env == "EUber-v0"
    with pytest.raises(ValueError, match="cars trains on EUber-v0"):
        PlatformConfig(algo="cars", env="P2PRecommendation-v0")
    with pytest.raises(ValueError, match="algo must be one of"):
        PlatformConfig(algo="pqr")
    with pytest.raises(ValueError, match="init is fixed"):
        PlatformConfig(algo="upl", agent_kwargs={"init": "fia"})
    with pytest.raises(ValueError, match="pk takes no agent_kwargs"):
        PlatformConfig(algo="pk", agent_kwargs={"ucb_scale": 2.0})


def test_cli_platform_learners_train_extend_and_refuse(tmp_path, capsys):
    out = tmp_path / "mupl"
    args = ["--algo", "m-upl", "--env-kwargs", "n_producers=3", "n_consumers=2", "n_days=6", "--total-steps", "8",
            "--checkpoint-freq", "4", "--out", str(out), "--no-progress", "--hyperparams", "agent_kwargs.exploration=0.02"]
    assert cli.main(args) == 0
    assert "learner/mae_preference" in capsys.readouterr().out
    cfg = (out / "config.yml").read_text()
    assert "env: P2PRecommendation-v0" in cfg and "exploration: 0.02" in cfg and "oracle: true" in cfg
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and {"regret_day_kwh", "learner/mae_preference", "efficiency"} <= set(rows[0])
    assert cli.main(args) == 2  # refuses to overwrite
    i = args.index("--total-steps")
    assert cli.main(args[:i] + ["--total-steps", "11"] + args[i + 2:] + ["--resume"]) == 0
    assert [s for s, _ in _scalars(out / "tb")["learner/mae_preference"]] == list(range(1, 12))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "m-upl" and summary["steps"] == 11
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["--algo", "cars", "--env", "P2PRecommendation-v0", "--out", str(tmp_path / "x")])
    assert "cars trains on EUber-v0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--algo", "pk", "--view", "pettingzoo", "--out", str(tmp_path / "y")])
    assert "Gymnasium view" in capsys.readouterr().err


@pytest.mark.parametrize("view", ["gym", "pettingzoo"])
def test_cli_sb3_ppo_trains_and_resumes_on_euber(tmp_path, view):
    out = tmp_path / f"ppo-{view}"
    hp = ["n_steps=16", "batch_size=16"] if view == "gym" else ["n_steps=4", "batch_size=24"]
    base = ["--env", "EUber-v0", "--algo", "ppo", "--view", view, "--env-kwargs", "n_workers=6", "n_ride_tasks=4",
            "n_v2g_tasks=2", "n_slots=8", "--checkpoint-freq", "24" if view == "pettingzoo" else "16",
            "--out", str(out), "--no-progress", "--hyperparams", *hp]
    first, total = (48, 96) if view == "pettingzoo" else (32, 64)
    assert cli.main(base + ["--total-steps", str(first)]) == 0
    assert (out / "model.zip").exists() and list((out / "checkpoints").glob("model_*_steps.zip"))
    assert cli.main(base + ["--total-steps", str(total), "--resume"]) == 0
    sc = _scalars(out / "tb")
    assert "market/tasks_served" in sc and "market/cost_usd" in sc
    for tag, vals in sc.items():
        steps = [s for s, _ in vals]
        assert steps == sorted(set(steps)), tag
    assert max(s for s, _ in sc["market/tasks_served"]) > first
    from stable_baselines3 import PPO

    model = PPO.load(out / "model.zip", device="cpu")
    assert model.num_timesteps >= total
    run = json.loads((out / "run.json").read_text())
    assert run["identity"]["view"] == view
    if view == "pettingzoo":  # one shared policy for the six workers
        assert run["agents"] == [f"worker_{i}" for i in range(6)]
        assert model.observation_space.shape == (4 + 8 * 5,)
