"""RLlib backend: the multi-agent adapter on every env, policy mappings, and a few real
RLlib training iterations on a local Ray instance (P2PTrading-v0; StorageSharing-v0 with one
policy per role; EUber-v0 with agents leaving and returning; DQN; the CLI; resume).

Needs the optional extra (``pip install "prosumer_gym[rllib]"``); without Ray every test
here is skipped except the one that checks the CLI's error message when Ray is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

RAY_REASON = 'Ray RLlib is an optional extra: pip install "prosumer_gym[rllib]"'
# RLlib re-registers its env id with gymnasium for every algorithm it builds
pytestmark = pytest.mark.filterwarnings("ignore:.*rllib-multi-agent-env-v0 already in registry")


def _need_ray() -> None:
    pytest.importorskip("ray", reason=RAY_REASON)
    pytest.importorskip("ray.rllib", reason=RAY_REASON)


# small instances of every env (fast episodes)
SMALL = {
    "P2PTrading-v0": dict(n_sellers=3, n_buyers=3, n_days=6),
    "P2PRecommendation-v0": dict(n_producers=4, n_consumers=3, n_days=4),
    "EUber-v0": dict(n_workers=6, n_slots=16, absent_agents="revive"),  # the hard case: workers leave and return
    "StorageSharing-v0": dict(n_rus=3, n_sfcs=2, n_slots=3),
    "ProsumerSharing-v0": dict(n_prosumers=5, n_days=5),
    "EnergyCollective-v0": dict(n_prosumers=2, n_flexible=1, n_inflexible=1, n_chp=1, n_peak=1, n_steps=4),
}
ROLES = {
    "P2PTrading-v0": {"seller"},
    "P2PRecommendation-v0": {"platform", "consumer"},
    "EUber-v0": {"worker"},
    "StorageSharing-v0": {"auctioneer", "ru"},
    "ProsumerSharing-v0": {"prosumer"},
    "EnergyCollective-v0": {"prosumer", "flexible", "inflexible", "chp", "peak"},
}
PPO_FAST = dict(train_batch_size_per_learner=32, minibatch_size=16, num_epochs=1)


# --------------------------------------------------------------------------- without Ray
def test_cli_without_ray_says_how_to_install(monkeypatch, capsys, tmp_path):
    from prosumer_gym.train import cli

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.setitem(sys.modules, "ray.rllib", None)
    rc = cli.main(["--backend", "rllib", "--env", "P2PTrading-v0", "--total-steps", "8", "--out", str(tmp_path / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert 'pip install "prosumer_gym[rllib]"' in err
    assert not (tmp_path / "r").exists()


def test_cli_rllib_flags_need_rllib_backend():
    from prosumer_gym.train import cli

    with pytest.raises(SystemExit):
        cli.main(["--env", "P2PTrading-v0", "--policy-mapping", "shared"])
    with pytest.raises(SystemExit):
        cli.main(["--backend", "rllib", "--algo", "pqr"])
    with pytest.raises(SystemExit):
        cli.main(["--backend", "rllib", "--view", "gym"])


# --------------------------------------------------------------------------- adapter
def _rollout(env, seed: int, episode: bool = True):
    """Random actions through the adapter for one episode, recorded in an RLlib
    MultiAgentEpisode (which rejects data RLlib's samplers would reject)."""
    from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

    from prosumer_gym.train.rllib_env import role_policy_mapping_fn

    for i, a in enumerate(env.possible_agents):
        env.action_spaces[a].seed(seed * 1000 + i)
    ep = MultiAgentEpisode(observation_space=env.observation_spaces, action_space=env.action_spaces,
                           agent_to_module_mapping_fn=role_policy_mapping_fn)
    obs, infos = env.reset(seed=seed)
    for a, o in obs.items():
        assert env.observation_spaces[a].contains(o), a
    ep.add_env_reset(observations=obs, infos=infos)
    steps = []
    total = 0.0
    while True:
        to_act = sorted(ep.get_agents_to_act())
        assert set(to_act) == set(obs)  # RLlib asks exactly the agents that got an observation
        acts = {a: env.action_spaces[a].sample() for a in to_act}
        obs, rew, term, trunc, infos = env.step(acts)
        for a, o in obs.items():
            assert env.observation_spaces[a].contains(o), a
        assert set(infos) <= set(obs)
        total += sum(rew.values())
        steps.append((acts, obs, rew, term, trunc))
        ep.add_env_step(observations=obs, actions=acts, rewards=rew, infos=infos, terminateds=term,
                        truncateds=trunc)
        if term["__all__"] or trunc["__all__"]:
            break
    assert ep.is_done
    assert ep.get_return() == pytest.approx(total)  # no reward lost on the way
    return ep, steps


@pytest.mark.parametrize("name", sorted(SMALL))
def test_adapter_every_env(name):
    _need_ray()
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    from prosumer_gym.train.rllib_env import PettingZooRLlibEnv, agent_role, policy_ids

    env = PettingZooRLlibEnv({"env": name, "env_kwargs": SMALL[name]})
    check_multiagent_environments(env)  # RLlib's own env checker
    assert set(env.observation_spaces) == set(env.action_spaces) == set(env.possible_agents)
    assert {agent_role(a) for a in env.possible_agents} == ROLES[name]
    assert set(policy_ids(env.possible_agents, "role")) == ROLES[name]
    for a in env.possible_agents:  # what RLlib's default models take
        o, s = env.observation_spaces[a], env.action_spaces[a]
        assert type(o).__name__ == "Box" and len(o.shape) == 1
        assert type(s).__name__ in ("Box", "Discrete", "MultiDiscrete")
        assert type(s).__name__ != "Box" or len(s.shape) == 1
    ep, steps = _rollout(env, seed=3)
    assert len(steps) >= 2
    # deterministic from the seed (env and sampled actions)
    env2 = PettingZooRLlibEnv({"env": name, "env_kwargs": SMALL[name]})
    _, steps2 = _rollout(env2, seed=3)
    assert len(steps2) == len(steps)
    for (a1, o1, r1, *_), (a2, o2, r2, *_) in zip(steps, steps2):
        assert r1 == r2 and sorted(o1) == sorted(o2)
        assert all(np.array_equal(o1[k], o2[k]) for k in o1)


def test_adapter_spaces_per_agent():
    _need_ray()
    from gymnasium import spaces

    from prosumer_gym.train.rllib_env import PettingZooRLlibEnv

    env = PettingZooRLlibEnv({"env": "StorageSharing-v0", "env_kwargs": SMALL["StorageSharing-v0"]})
    src = env.par_env
    assert env.observation_spaces["auctioneer"].shape == src.observation_space("auctioneer").shape
    assert env.observation_spaces["ru_0"].shape == src.observation_space("ru_0").shape
    assert env.observation_spaces["auctioneer"].shape != env.observation_spaces["ru_0"].shape
    assert type(env.observation_spaces["ru_0"]) is spaces.Box  # NamedBox -> plain Box

    P, C = 4, 3
    env = PettingZooRLlibEnv({"env": "p2p_recommendation_v0", "env_kwargs": SMALL["P2PRecommendation-v0"]})
    plat = env.par_env.observation_space("platform")
    assert isinstance(plat, spaces.Dict)
    assert env.observation_spaces["platform"].shape == (spaces.flatdim(plat),)
    assert env.observation_spaces["platform"].dtype == np.float32
    assert [k for k, _ in env.obs_layout("platform")] == list(plat.spaces)
    assert env.action_spaces["platform"].shape == (P * C,)
    assert env.action_spaces["consumer_0"] == spaces.MultiDiscrete([2] * P)
    a = env.to_env_action("platform", np.linspace(-0.5, 1.5, P * C).astype(np.float32))
    assert a.shape == (P, C) and a.dtype == np.float64 and a.min() == 0.0 and a.max() == 1.0  # clipped
    c = env.to_env_action("consumer_0", np.array([1, 0, 1, 1]))
    assert c.dtype == env.par_env.action_space("consumer_0").dtype and c.tolist() == [1, 0, 1, 1]
    raw, _ = env.par_env.reset(seed=0)
    obs, _ = env.reset(seed=0)
    assert obs["platform"].shape == (spaces.flatdim(plat),)
    np.testing.assert_array_equal(obs["platform"], spaces.flatten(plat, raw["platform"]).astype(np.float32))


def test_adapter_shared_mapping_pads_or_refuses():
    _need_ray()
    from prosumer_gym.train.rllib_env import SHARED_POLICY, PettingZooRLlibEnv, policy_ids

    env = PettingZooRLlibEnv({"env": "StorageSharing-v0", "env_kwargs": SMALL["StorageSharing-v0"],
                              "policy_mapping": "shared"})
    n = max(env.par_env.observation_space(a).shape[0] for a in env.possible_agents)
    assert {s.shape for s in env.observation_spaces.values()} == {(n,)}
    obs, _ = env.reset(seed=0)
    k = env.par_env.observation_space("ru_0").shape[0]
    assert obs["ru_0"].shape == (n,) and not obs["ru_0"][k:].any()
    assert policy_ids(env.possible_agents, "shared") == [SHARED_POLICY]
    with pytest.raises(ValueError, match="role"):
        PettingZooRLlibEnv({"env": "P2PRecommendation-v0", "env_kwargs": SMALL["P2PRecommendation-v0"],
                            "policy_mapping": "shared"})


def test_adapter_bad_config():
    _need_ray()
    from prosumer_gym.train.rllib_env import PettingZooRLlibEnv, policy_mapping_fn

    with pytest.raises(ValueError, match="policy_mapping"):
        PettingZooRLlibEnv({"env": "P2PTrading-v0", "policy_mapping": "per_agent"})
    with pytest.raises(ValueError, match="env_config"):
        PettingZooRLlibEnv({"env": "P2PTrading-v0", "envkwargs": {}})
    with pytest.raises(ValueError, match="unknown environment"):
        PettingZooRLlibEnv({"env": "Nope-v0"})
    with pytest.raises(ValueError, match="policy_mapping"):
        policy_mapping_fn("per_seller")


def test_adapter_euber_agents_leave_and_return():
    """EUber-v0's absent_agents="revive": a worker truncated mid-episode gets no
    observation while away (its action stays pending in RLlib) and comes back with one; the
    agents away at the end get their last observation and truncated=True."""
    _need_ray()
    from prosumer_gym.train.rllib_env import PettingZooRLlibEnv

    found_return = found_away_at_end = False
    for seed in range(6):
        env = PettingZooRLlibEnv({"env": "EUber-v0", "env_kwargs": SMALL["EUber-v0"]})
        raw_truncs: list[set[str]] = []
        orig_step = env.par_env.step

        def spy(actions, _orig=orig_step, _rec=raw_truncs):
            out = _orig(actions)
            _rec.append({a for a, t in out[3].items() if t})
            return out

        env.par_env.step = spy
        agents_log: list[tuple[set[str], set[str]]] = []
        adapter_step = env.step

        def logged(actions, _orig=adapter_step, _env=env, _log=agents_log):
            out = _orig(actions)
            _log.append((set(_env.agents), set(_env.par_env.agents)))
            return out

        env.step = logged
        ep, steps = _rollout(env, seed=seed)
        away: set[str] = set()
        for t, ((acts, obs, rew, term, trunc), raw_tr) in enumerate(zip(steps, raw_truncs)):
            if t < len(steps) - 1:
                left = raw_tr  # truncated by the env while the episode goes on
                assert not (left & set(obs)) and not any(trunc.get(a, False) for a in left)
                assert not term["__all__"] and not trunc["__all__"]
                assert set(rew) >= left  # the leaving step's reward is passed on
                found_return |= bool(away & set(obs))
                away = (away - set(obs)) | left
                ours, live = agents_log[t]
                assert ours == live | away  # agents away stay in the episode (not done for RLlib)
            else:
                assert trunc["__all__"] and not term["__all__"]
                assert away <= set(obs) and all(trunc[a] for a in away)
                found_away_at_end |= bool(away)
        # every agent's transitions are complete in RLlib's episode
        for a, sa in ep.agent_episodes.items():
            assert sa.is_done
        if found_return and found_away_at_end:
            break
    assert found_return, "no worker left and returned in these episodes"
    assert found_away_at_end, "no worker was away when an episode ended"


def test_adapter_spaces_cover_agents_absent_at_reset():
    """ProsumerSharing-v0 with a size range: an episode has fewer agents than
    ``possible_agents``; every possible agent has its spaces, and a later, larger episode works."""
    _need_ray()
    from prosumer_gym.train.rllib_env import PettingZooRLlibEnv

    env = PettingZooRLlibEnv({"env": "ProsumerSharing-v0", "env_kwargs": {"n_prosumers_range": (3, 6), "n_days": 3}})
    assert len(env.possible_agents) == 6 and set(env.observation_spaces) == set(env.possible_agents)
    small, _ = env.reset(seed=0, options={"n_prosumers": 3})
    assert len(small) == 3
    _rollout(env, seed=1)
    obs, _ = env.reset(seed=2, options={"n_prosumers": 6})
    assert set(obs) == set(env.possible_agents)


def test_adapter_euber_return_spans_absence():
    """One RLlib transition per absence: from the observation before leaving to the one at
    the return, with the rewards of the leaving step summed in."""
    _need_ray()
    from prosumer_gym.train.rllib_env import PettingZooRLlibEnv

    env = PettingZooRLlibEnv({"env": "EUber-v0", "env_kwargs": SMALL["EUber-v0"]})
    ep, steps = _rollout(env, seed=0)
    for a, sa in ep.agent_episodes.items():
        acted = sum(1 for acts, *_ in steps if a in acts)
        assert len(sa) == acted  # one transition per action, absences included
        emitted = sum(rew.get(a, 0.0) for _, _, rew, _, _ in steps)
        assert float(np.sum(sa.get_rewards())) == pytest.approx(emitted)


# --------------------------------------------------------------------------- config
def test_build_config_policies_and_validation():
    _need_ray()
    from prosumer_gym.train.rllib import build_config

    cfg = build_config("StorageSharing-v0", env_kwargs=SMALL["StorageSharing-v0"], policy_mapping="role",
                       algo_kwargs={"gamma": 0.8, **PPO_FAST}, model_config={"fcnet_hiddens": [8]})
    assert set(cfg.policies) == {"auctioneer", "ru"}
    assert cfg.gamma == 0.8 and cfg.train_batch_size_per_learner == 32
    spec = cfg.get_multi_rl_module_spec()
    mods = spec.rl_module_specs
    assert mods["auctioneer"].observation_space.shape != mods["ru"].observation_space.shape
    shared = build_config("P2PTrading-v0", env_kwargs=SMALL["P2PTrading-v0"], policy_mapping="shared")
    assert set(shared.policies) == {"shared"}
    per_agent = build_config("StorageSharing-v0", env_kwargs=SMALL["StorageSharing-v0"], policy_mapping="agent")
    assert set(per_agent.policies) == {"auctioneer", "ru_0", "ru_1", "ru_2"}
    with pytest.raises(ValueError, match="Discrete"):
        build_config("StorageSharing-v0", "dqn", env_kwargs=SMALL["StorageSharing-v0"])
    with pytest.raises(ValueError, match="unknown ppo hyperparameters"):
        build_config("P2PTrading-v0", env_kwargs=SMALL["P2PTrading-v0"], algo_kwargs={"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="algo"):
        build_config("P2PTrading-v0", "a2c")
    with pytest.raises(ValueError, match="policy_mapping"):
        build_config("P2PTrading-v0", policy_mapping="per_seller")
    with pytest.raises(ValueError, match="num_env_runners"):
        build_config("P2PTrading-v0", num_env_runners=-1)


# --------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def local_ray():
    _need_ray()
    import ray

    from prosumer_gym.train.rllib import default_temp_dir

    started = False
    if not ray.is_initialized():
        import logging

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 _temp_dir=default_temp_dir())
        started = True
    yield ray
    if started:
        ray.shutdown()


def _scalars(tb: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_train_p2p_trading_ppo_checkpoint_resume(local_ray, tmp_path):
    from prosumer_gym.train.common import resolve_env
    from prosumer_gym.train.rllib import latest_rllib_checkpoint, train_rllib

    spec = resolve_env("P2PTrading-v0")
    out = tmp_path / "run"
    kw = dict(seed=0, env_kwargs=SMALL["P2PTrading-v0"], policy_mapping="shared", algo_kwargs=PPO_FAST,
              checkpoint_freq=32, keep_checkpoints=2, progress=False)
    res = train_rllib(spec, "ppo", out, total_steps=96, **kw)
    assert res["env_steps"] == 96 and res["iterations"] == 3 and res["modules"] == ["shared"]
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["rllib_64_steps", "rllib_96_steps"]  # newest 2 kept, final included
    assert not any(p.name.startswith(".") for p in (out / "checkpoints").iterdir())
    run = json.loads((out / "run.json").read_text())
    assert run["identity"]["backend"] == "rllib" and run["identity"]["policy_mapping"] == "shared"
    tags = _scalars(out / "tb")
    assert [s for s, _ in tags["env_runners/episode_return_mean"]] == [32, 64, 96]
    assert "learners/shared/policy_loss" in tags
    assert "env_runners/market/buyers_pt_value" in tags  # the env's market KPIs
    assert "env_runners/episode_market/sellers_revenue_usd" in tags

    with pytest.raises(FileExistsError):
        train_rllib(spec, "ppo", out, total_steps=128, **kw)
    with pytest.raises(ValueError, match="differs"):
        train_rllib(spec, "ppo", out, total_steps=128, resume=True, **{**kw, "seed": 1})
    res2 = train_rllib(spec, "ppo", out, total_steps=160, resume=True, **kw)
    assert res2["env_steps"] == 160 and res2["iterations"] == 5  # continues RLlib's counters
    assert latest_rllib_checkpoint(out / "checkpoints")[0] == 160
    steps = [s for s, _ in _scalars(out / "tb")["env_runners/episode_return_mean"]]
    assert steps == [32, 64, 96, 128, 160]  # each step once


def test_train_storage_sharing_per_role(local_ray, tmp_path):
    from prosumer_gym.train.common import resolve_env
    from prosumer_gym.train.rllib import train_rllib

    res = train_rllib(resolve_env("StorageSharing-v0"), "ppo", tmp_path / "ss", seed=1, total_steps=96,
                      env_kwargs=SMALL["StorageSharing-v0"], policy_mapping="role", algo_kwargs=PPO_FAST,
                      progress=False)
    assert res["modules"] == ["auctioneer", "ru"]
    m = res["metrics"]
    for mod in ("auctioneer", "ru"):  # both roles trained on their own data
        assert m[f"learners/{mod}/num_module_steps_trained"] > 0
        assert np.isfinite(m[f"learners/{mod}/policy_loss"])
    sampled = "env_runners/num_module_steps_sampled_lifetime/"
    assert m[sampled + "ru"] == 3 * m[sampled + "auctioneer"]  # 3 RUs, one auctioneer, every step
    assert "env_runners/market/exploitability" in m


def test_train_euber_leave_mode(local_ray, tmp_path):
    from prosumer_gym.train.common import resolve_env
    from prosumer_gym.train.rllib import train_rllib

    res = train_rllib(resolve_env("EUber-v0"), "ppo", tmp_path / "eu", total_steps=48,
                      env_kwargs=SMALL["EUber-v0"], policy_mapping="role", algo_kwargs=PPO_FAST, progress=False)
    assert res["modules"] == ["worker"] and res["env_steps"] >= 48
    assert res["metrics"]["env_runners/num_episodes_lifetime"] >= 2


def test_train_dqn_discrete(local_ray, tmp_path):
    from prosumer_gym.train.common import resolve_env
    from prosumer_gym.train.rllib import train_rllib

    res = train_rllib(resolve_env("P2PTrading-v0"), "dqn", tmp_path / "dqn", total_steps=48,
                      env_kwargs=SMALL["P2PTrading-v0"], policy_mapping="role",
                      algo_kwargs={"train_batch_size_per_learner": 8, "num_steps_sampled_before_learning_starts": 8,
                                   "min_sample_timesteps_per_iteration": 16, "training_intensity": 1},
                      progress=False)
    assert res["modules"] == ["seller"] and res["env_steps"] >= 48
    assert np.isfinite(res["metrics"]["learners/seller/qf_loss"])


def test_train_remote_env_runner(local_ray, tmp_path):
    """Sampling in a remote env runner (a separate Ray worker process), as on a cluster."""
    from prosumer_gym.train.common import resolve_env
    from prosumer_gym.train.rllib import train_rllib

    res = train_rllib(resolve_env("P2PTrading-v0"), "ppo", tmp_path / "remote", total_steps=64,
                      env_kwargs=SMALL["P2PTrading-v0"], policy_mapping="role", algo_kwargs=PPO_FAST,
                      num_env_runners=1, progress=False)
    assert res["env_steps"] >= 64
    assert res["metrics"]["env_runners/num_env_steps_sampled_lifetime"] >= 64
    assert "env_runners/market/traded_kwh" in res["metrics"]  # the callback ran in the worker


def test_cli_backend_rllib(local_ray, tmp_path, capsys):
    from prosumer_gym.train import cli

    out = tmp_path / "cli"
    argv = ["--backend", "rllib", "--env", "StorageSharing-v0", "--env-kwargs", "n_rus=3", "n_sfcs=2", "n_slots=3",
            "--hyperparams", "train_batch_size_per_learner=32", "minibatch_size=16", "num_epochs=1",
            "model_config={fcnet_hiddens: [16]}", "--total-steps", "64", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    assert "modules auctioneer, ru" in capsys.readouterr().out
    assert (out / "tb").is_dir() and list((out / "tb").iterdir())
    assert (out / "checkpoints" / "rllib_64_steps").is_dir()
    assert ray_still_up(local_ray)  # the CLI leaves a Ray it did not start alone
    assert cli.main([*argv[:-5], "--total-steps", "96", "--out", str(out), "--no-progress", "--resume"]) == 0
    assert (out / "checkpoints" / "rllib_96_steps").is_dir()
    bad = tmp_path / "bad"
    assert cli.main([*argv[:-5], "--total-steps", "32", "--out", str(bad), "--hyperparams", "nonsense_key=1"]) == 2
    assert "unknown ppo hyperparameters" in capsys.readouterr().err and not bad.exists()


def ray_still_up(ray) -> bool:
    return ray.is_initialized()
