"""Training pipeline: population trainer (checkpoint / kill / resume == uninterrupted, with
TensorBoard history neither lost nor duplicated), CLI, SB3 on both views, hyperparameter
files, generic env resolution."""

from __future__ import annotations

import csv
import glob
import math
from pathlib import Path

import numpy as np
import pytest

import prosumer_gym
from prosumer_gym.train import cli
from prosumer_gym.train.common import load_hyperparams, parse_kv, resolve_env
from prosumer_gym.train.population import PopulationConfig, PopulationTrainer, RunInterrupted

SMALL = dict(n_sellers=3, n_buyers=3, n_days=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard shows: the event files read with its accumulator (purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    ea.Reload()
    return {t: [(e.step, e.value) for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}


def _raw_steps(tb_dir: Path, tag: str) -> list[int]:
    """Every event written for ``tag`` in every file, purges *not* applied."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps = []
    for f in sorted(glob.glob(str(tb_dir / "events.out.tfevents.*"))):
        for ev in EventFileLoader(f).Load():
            if ev.HasField("summary") and any(v.tag == tag for v in ev.summary.value):
                steps.append(ev.step)
    return steps


def _agent_arrays(agents) -> dict[str, np.ndarray]:
    out = {}
    for name, ag in agents.items():
        st = ag.state_dict()
        if "q" in st:
            out[name] = np.asarray(st["q"])
        else:
            out[name] = np.concatenate([v.numpy().ravel() for v in st["q_net"].values()]
                                       + [v.numpy().ravel() for v in st["target_net"].values()])
    return out


def _nan_equal(a: list[dict], b: list[dict]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.keys() != y.keys():
            return False
        for k in x:
            if not (x[k] == y[k] or (isinstance(x[k], float) and math.isnan(x[k]) and math.isnan(y[k]))):
                return False
    return True


@pytest.mark.parametrize("algo", ["pqr", "prodqn"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, algo):
    kw = dict(env="P2PTrading-v0", algo=algo, seed=3, env_kwargs=SMALL, total_steps=13, checkpoint_freq=5)
    agent_kwargs = {"lr": 0.05} if algo == "pqr" else {"eps_decay": 0.8}
    full = PopulationTrainer(PopulationConfig(**kw, agent_kwargs=agent_kwargs), tmp_path / "full", progress=False).run()

    run = tmp_path / "killed"
    with pytest.raises(RunInterrupted):  # killed at step 7: after the checkpoint at 5, mid-episode
        PopulationTrainer(PopulationConfig(**kw, agent_kwargs=agent_kwargs), run, progress=False).run(stop_after=7)
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == ["ckpt_000000005.pt"]
    assert _raw_steps(run / "tb", "market/buyers_pt_value") == [1, 2, 3, 4, 5, 6, 7]
    with pytest.raises(FileExistsError):  # a folder holding a run is never overwritten silently
        PopulationTrainer(PopulationConfig(**kw, agent_kwargs=agent_kwargs), run, progress=False).run()
    res = PopulationTrainer(PopulationConfig(**kw, agent_kwargs=agent_kwargs), run, progress=False).run(resume=True)

    assert res.steps == full.steps == 13 and len(res.episodes) == len(full.episodes) == 1
    assert _nan_equal(res.history, full.history) and _nan_equal(res.episodes, full.episodes)
    fa, ra = _agent_arrays(full.agents), _agent_arrays(res.agents)
    assert fa.keys() == ra.keys() and all(np.array_equal(fa[k], ra[k]) for k in fa)
    # steps 6-7 were logged twice on disk; TensorBoard shows every step once, equal to the full run
    assert _raw_steps(run / "tb", "market/buyers_pt_value").count(6) == 2
    sf, sr = _scalars(tmp_path / "full" / "tb"), _scalars(run / "tb")
    assert sf.keys() == sr.keys()
    for tag in sf:
        assert [s for s, _ in sr[tag]] == [s for s, _ in sf[tag]], tag
        np.testing.assert_allclose([v for _, v in sr[tag]], [v for _, v in sf[tag]], rtol=1e-6, err_msg=tag)
    for tag in ("market/buyers_pt_value", "market/sellers_revenue_usd", "market/mean_price", "train/epsilon",
                "train/loss", "agents/reward/seller_0", "agents/price/seller_2", "episode/reward/seller_1",
                "episode/buyers_pt_value"):
        assert tag in sf, tag
    assert [s for s, _ in sf["market/buyers_pt_value"]] == list(range(1, 14))
    # a different run cannot be resumed from these checkpoints
    with pytest.raises(ValueError, match="differs"):
        PopulationTrainer(PopulationConfig(**{**kw, "seed": 4}, agent_kwargs=agent_kwargs), run,
                          progress=False).run(resume=True)


def test_population_runs_are_deterministic_and_seed_dependent():
    def run(seed):
        cfg = PopulationConfig(algo="prodqn", seed=seed, env_kwargs=SMALL, total_steps=8)
        return PopulationTrainer(cfg, None, progress=False).run()

    a, b, c = run(1), run(1), run(2)
    assert _nan_equal(a.history, b.history)
    assert all(np.array_equal(x, y) for x, y in zip(_agent_arrays(a.agents).values(), _agent_arrays(b.agents).values()))
    assert not _nan_equal(a.history, c.history)


def test_frozen_greedy_evaluation_does_not_learn():
    cfg = PopulationConfig(algo="pqr", seed=0, env_kwargs=SMALL, total_steps=8, agent_kwargs={"lr": 0.5})
    trained = PopulationTrainer(cfg, None, progress=False).run()
    states = {a: ag.state_dict() for a, ag in trained.agents.items()}
    ev = PopulationConfig(algo="pqr", seed=0, env_kwargs=SMALL, total_steps=8, agent_kwargs={"lr": 0.5},
                          learn=False, explore=False)
    res = PopulationTrainer(ev, None, progress=False, agents_state=states).run()
    for a, ag in res.agents.items():
        np.testing.assert_array_equal(ag.q, states[a]["q"])
        assert ag.eps == states[a]["eps"]
        for prev, r in zip(res.history, res.history[1:]):  # greedy: an argmax of the frozen table at the state
            s = int(round((prev[f"price/{a}"] - 0.06) / 0.001))
            assert r[f"action/{a}"] in np.flatnonzero(ag.q[s] == ag.q[s].max())


def test_cli_reference_agent_outputs_and_extension(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--env", "P2PTrading-v0", "--algo", "pqr", "--env-kwargs", "n_sellers=3", "n_buyers=3", "n_days=6",
            "--total-steps", "8", "--checkpoint-freq", "4", "--out", str(out), "--no-progress",
            "--hyperparams", "agent_kwargs.lr=0.01"]
    assert cli.main(args) == 0
    assert f"run folder: {out}" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert len(rows) == 8 and {"buyers_pt_value", "sellers_revenue_usd", "mean_price", "epsilon"} <= set(rows[0])
    assert sorted(p.name for p in (out / "agents").iterdir()) == [f"seller_{i}.npz" for i in range(3)]
    cfg = (out / "config.yml").read_text()
    assert "lr: 0.01" in cfg and "gamma: 0.8" in cfg and "eps_decay: 0.965" in cfg  # YAML defaults + override
    assert cli.main(args) == 2  # refuses to overwrite
    assert cli.main(args[:args.index("--total-steps")] + ["--total-steps", "12"] + args[args.index("--total-steps") + 2:]
                    + ["--resume"]) == 0
    assert len(list(csv.DictReader(open(out / "history.csv")))) == 12
    steps = [s for s, _ in _scalars(out / "tb")["market/buyers_pt_value"]]
    assert steps == list(range(1, 13))


@pytest.mark.parametrize("algo,view", [("ppo", "gym"), ("dqn", "pettingzoo"), ("a2c", "pettingzoo")])
def test_cli_sb3_both_views_checkpoint_and_resume(tmp_path, algo, view):
    out = tmp_path / f"{algo}-{view}"
    hp = {"ppo": ["n_steps=32", "batch_size=16"], "a2c": ["n_steps=4"],
          "dqn": ["learning_starts=16", "buffer_size=500", "target_update_interval=50"]}[algo]
    base = ["--env", "P2PTrading-v0", "--algo", algo, "--view", view, "--env-kwargs", "n_sellers=2", "n_buyers=2",
            "n_days=20", "--checkpoint-freq", "64", "--out", str(out), "--no-progress", "--hyperparams", *hp]
    assert cli.main(base + ["--total-steps", "128"]) == 0
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("model_*_steps.zip"))
    assert ckpts and (out / "model.zip").exists()
    if algo == "dqn":
        assert list((out / "checkpoints").glob("model_replay_buffer_*_steps.pkl"))
    assert cli.main(base + ["--total-steps", "256", "--resume"]) == 0  # continues from the newest checkpoint
    sc = _scalars(out / "tb")
    assert "episode/reward/seller_0" in sc and "market/buyers_pt_value" in sc and "market/mean_price" in sc
    for tag, vals in sc.items():
        steps = [s for s, _ in vals]
        assert steps == sorted(set(steps)), tag  # no duplicated or out-of-order history
    assert max(s for s, _ in sc["market/buyers_pt_value"]) > 128  # the resumed part was logged
    from stable_baselines3 import A2C, DQN, PPO

    model = {"ppo": PPO, "a2c": A2C, "dqn": DQN}[algo].load(out / "model.zip", device="cpu")
    assert model.num_timesteps >= 256


def test_pettingzoo_vec_env_seeding_is_reproducible():
    from prosumer_gym.train.sb3 import make_pettingzoo_vec_env

    def first_obs(seed):
        venv, agents = make_pettingzoo_vec_env(resolve_env("P2PTrading-v0"), dict(n_sellers=3, n_buyers=3), n_envs=2)
        venv.seed(seed)
        obs = venv.reset()
        venv.close()
        return obs, agents

    (a, agents), (b, _), (c, _) = first_obs(5), first_obs(5), first_obs(6)
    assert agents == ["seller_0", "seller_1", "seller_2"] and a.shape == (6, 6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_env_resolution_hyperparams_and_kv_parsing():
    spec = resolve_env("P2PTrading-v0")
    assert spec.pettingzoo_module == "prosumer_gym.envs.p2p_trading_v0"
    assert resolve_env("p2p_trading_v0").gym_id == "P2PTrading-v0"
    for gym_id in prosumer_gym.REGISTERED:  # generic over whatever is shipped
        s = resolve_env(gym_id)
        assert s.pettingzoo().parallel_env is not None
    with pytest.raises(ValueError, match="unknown environment"):
        resolve_env("NoSuchEnv-v0")
    env_kw, sec, path = load_hyperparams(spec, "prodqn")
    assert path is not None and path.name == "P2PTrading-v0.yml"
    assert env_kw == {"n_sellers": 15, "n_buyers": 15, "n_days": 365}
    a = sec["agent_kwargs"]
    assert (a["lr"], a["buffer_size"], a["batch_size"], a["gamma"], a["tau"], a["hidden"]) == (0.0075, 1000, 4, 0.8,
                                                                                              0.01, [64, 64])
    assert load_hyperparams(spec, "pqr")[1]["agent_kwargs"]["lr"] == 1e-4
    assert parse_kv(["n=5", "mechanism:debate", "mechanism_kwargs={NP: 20, G_max: 100}", "agent_kwargs.lr=0.1"]) == {
        "n": 5, "mechanism": "debate", "mechanism_kwargs": {"NP": 20, "G_max": 100}, "agent_kwargs": {"lr": 0.1}}
    # YAML 1.1 reads 1e-3 as a string; the envs take real numbers only, so the CLI converts it
    assert parse_kv(["price_tick=1e-3", "mechanism_kwargs={certify_time_limit: 2E1}", "name=1e"]) == {
        "price_tick": 0.001, "mechanism_kwargs": {"certify_time_limit": 20.0}, "name": "1e"}
    with pytest.raises(ValueError):
        parse_kv(["novalue"])


def test_cli_rejects_bad_requests(tmp_path, capsys):
    assert cli.main(["--list"]) == 0
    assert "P2PTrading-v0" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["--algo", "pqr", "--view", "gym", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit):
        cli.main(["--env", "Nope-v0", "--out", str(tmp_path / "y")])
    if "StorageSharing-v0" in prosumer_gym.REGISTERED:  # Box actions: no tabular/DQN agent possible
        assert cli.main(["--env", "StorageSharing-v0", "--algo", "prodqn", "--out", str(tmp_path / "z"),
                         "--no-progress"]) == 2
