"""P2PRecommendation-v1: the score action decoded greedily and the acceptance statistics in
the observation; v0 unchanged. API battery, decoder feasibility (independent checker) and
its greedy rule, statistics against a plain recount, learnability of the interface by the
obvious hand policy."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import max_cycles_test, parallel_api_test, parallel_seed_test

import prosumer_gym
from prosumer_gym.envs import p2p_recommendation_v0, p2p_recommendation_v1
from prosumer_gym.envs.p2p_recommendation.market import RecInstance, decode_scores, expected_energy, project

from .helpers import same
from .test_p2p_recommendation import check_inst, random_instance

SMALL = dict(n_producers=4, n_consumers=5)


def test_parallel_api_and_seed():
    parallel_api_test(p2p_recommendation_v1.parallel_env(**SMALL, n_days=25), num_cycles=30)
    parallel_seed_test(functools.partial(p2p_recommendation_v1.parallel_env, **SMALL, n_days=15), num_cycles=20)


def test_max_cycles():
    max_cycles_test(p2p_recommendation_v1)


def test_gymnasium_check_env_and_registration():
    env = gym.make("P2PRecommendation-v1", n_days=10, **SMALL)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.unwrapped.market.action_mode == "scores" and env.unwrapped.market.statistics
    assert "P2PRecommendation-v1" in prosumer_gym.ENV_VERSIONS
    assert set(env.observation_space) >= {"accept_rate", "recommended_per_day"}
    v0 = gym.make("P2PRecommendation-v0", n_days=10, **SMALL)
    assert "accept_rate" not in v0.observation_space.spaces and v0.unwrapped.market.action_mode == "fractions"
    with pytest.raises(ValueError, match="action_mode"):
        p2p_recommendation_v0.raw_env(action_mode="ranks")
    with pytest.raises(ValueError, match="statistics"):
        p2p_recommendation_v1.raw_env(statistics="yes")
    # v1's defaults can be overridden: v1 with v0's interface is v0
    a = p2p_recommendation_v1.raw_env(**SMALL, n_days=5, action_mode="fractions", statistics=False)
    assert a.observation_space("platform") == p2p_recommendation_v0.raw_env(**SMALL, n_days=5).observation_space("platform")


def _greedy_loop(inst: RecInstance, s: np.ndarray) -> np.ndarray:
    """decode_scores' rule written as a plain loop over a sorted list (no market code)."""
    P, C = inst.loss.shape
    pairs = sorted(((-float(s[i, j]), i * C + j) for i in range(P) for j in range(C)
                    if s[i, j] > 0 and inst.loss[i, j] <= inst.loss_max + 1e-12))
    res_r = [float(v) for v in inst.capacity_kwh]
    res_w = [float(v) for v in inst.demand_kwh]
    deg = [0] * C
    K = P if inst.K is None else inst.K
    E = np.zeros((P, C))
    for _, f in pairs:
        i, j = divmod(f, C)
        e = min(res_w[j], res_r[i] / (1 + inst.loss[i, j]))
        if deg[j] >= K or e < inst.alpha_kwh:
            continue
        E[i, j] = e
        deg[j] += 1
        res_w[j] -= e
        res_r[i] -= (1 + inst.loss[i, j]) * e
    w = inst.demand_kwh
    return np.where(w[None, :] > 0, E / np.where(w > 0, w, 1.0)[None, :], 0.0)


def test_decode_scores_is_feasible_and_follows_its_rule():
    rng = np.random.default_rng(7)
    for _ in range(200):
        inst = random_instance(rng)
        s = rng.random(inst.loss.shape) * (rng.random(inst.loss.shape) > 0.3)
        if rng.random() < 0.3:
            s = np.round(s, 1)  # ties
        x = decode_scores(inst, s)
        assert check_inst(inst, x) == []
        np.testing.assert_allclose(x, _greedy_loop(inst, s), rtol=0, atol=1e-9)  # up to the projection's rounding guard
        assert np.all(x[s == 0] == 0)  # a score of 0 never recommends
        assert same(project(inst, x)[0], x)  # already feasible: v0's projection keeps it
    with pytest.raises(ValueError, match="shape"):
        decode_scores(inst, np.zeros((inst.loss.shape[0] + 1, inst.loss.shape[1])))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        decode_scores(inst, np.full(inst.loss.shape, 1.5))


def test_env_step_uses_the_decoder_and_counts_statistics():
    env = p2p_recommendation_v1.parallel_env(**SMALL, n_days=30, consumer_agents=False)
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    n = np.zeros((4, 5))
    s_acc = np.zeros((4, 5))
    for t in range(30):
        o = obs["platform"]
        np.testing.assert_array_equal(o["accept_rate"], (s_acc + 1) / (n + 2))
        np.testing.assert_array_equal(o["recommended_per_day"], n / max(t, 1))
        score = rng.random((4, 5))
        inst = env.instance()
        obs, rew, _, _, infos = env.step({"platform": score})
        x = decode_scores(inst, score)
        rec = obs["platform"]["last_recommendation"]
        assert same(rec, x)
        assert infos["platform"]["feasible_submitted"] and infos["platform"]["projection"]["decoded_from_scores"]
        n += rec > 0
        s_acc += obs["platform"]["last_accepted"]


def test_v0_unchanged_by_the_new_keywords():
    """v0 with its defaults is the same env as before v1 existed: same obs keys, and the
    fractions path is bit-identical to the projection of the submitted matrix."""
    env = p2p_recommendation_v0.parallel_env(**SMALL, n_days=10, consumer_agents=False)
    obs, _ = env.reset(seed=1)
    assert sorted(obs["platform"]) == ["capacity_kwh", "day_of_year", "demand_kwh", "last_accepted",
                                        "last_recommendation", "loss"]
    rng = np.random.default_rng(2)
    for _ in range(10):
        a = rng.random((4, 5))
        inst = env.instance()
        obs, *_ = env.step({"platform": a})
        assert same(obs["platform"]["last_recommendation"], project(inst, a)[0])


def _expected(policy, seed: int, days: int = 40):
    """Expected energy of ``policy`` over an episode, and the env (for its lazy oracle)."""
    env = gym.make("P2PRecommendation-v1", n_producers=8, n_consumers=6, n_days=days, start_day=120).unwrapped
    obs, _ = env.reset(seed=seed)
    expected, done = 0.0, False
    while not done:
        obs, _, term, trunc, info = env.step(policy(env, obs))
        expected += info["expected_kwh"]
        done = term or trunc
    return expected, env


def test_the_interface_is_learnable_by_the_obvious_policy():
    """Scoring pairs by the observed acceptance rate (a greedy bandit on the observation) is
    close to OPT, far above random scores: the decision is learnable from v1's observation.
    (The days' instances do not depend on the policy, so one env's oracle serves all three.)"""
    rng = np.random.default_rng(0)
    eff = {"greedy": [], "random": [], "truth": []}
    for seed in (1, 2):
        greedy, env = _expected(lambda e, o: o["accept_rate"], seed)
        opt = sum(d["oracle_kwh"] for d in env.oracle_kpis())
        eff["greedy"].append(greedy / opt)
        eff["random"].append(_expected(lambda e, o: rng.random(o["loss"].shape), seed)[0] / opt)
        eff["truth"].append(_expected(lambda e, o: e.preference, seed)[0] / opt)
    m = {k: float(np.mean(v)) for k, v in eff.items()}
    assert m["greedy"] > 0.85 and m["truth"] > 0.9, m
    assert m["random"] < m["greedy"] - 0.2, m


def test_training_cli_resolves_the_new_version():
    from prosumer_gym.train.common import resolve_env

    spec = resolve_env("P2PRecommendation-v1")
    assert spec.gym_id == "P2PRecommendation-v1"
    assert spec.pettingzoo() is p2p_recommendation_v1


def test_pair_scorer_policy_shares_one_scorer_across_pairs():
    """PairScorerPolicy: the action mean of pair (i, j) depends only on that pair's features
    (permuting producers permutes the scores' rows; changing one pair's statistics changes
    only its own score); the value is invariant to the permutation; PPO trains with it."""
    import torch
    from stable_baselines3 import PPO

    from prosumer_gym.train.pair_policy import PairScorerPolicy

    env = gym.make("P2PRecommendation-v1", n_producers=4, n_consumers=3, n_days=12)
    model = PPO(PairScorerPolicy, env, n_steps=24, batch_size=12, n_epochs=1, seed=0, device="cpu")
    model.learn(48)
    pol = model.policy
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())

    def mean_and_value(o):
        t, _ = pol.obs_to_tensor(o)
        with torch.no_grad():
            dist = pol.get_distribution(t)
            return dist.distribution.mean.numpy().reshape(4, 3), float(pol.predict_values(t))

    m0, v0 = mean_and_value(obs)
    perm = np.array([2, 0, 3, 1])
    permuted = {k: (v[perm] if k in ("capacity_kwh",) else v[perm, :] if v.ndim == 2 else v) for k, v in obs.items()}
    m1, v1 = mean_and_value(permuted)
    np.testing.assert_allclose(m1, m0[perm], rtol=0, atol=1e-6)
    assert abs(v1 - v0) < 1e-5
    changed = {k: v.copy() for k, v in obs.items()}
    changed["accept_rate"][1, 2] = 1.0 - changed["accept_rate"][1, 2]
    m2, _ = mean_and_value(changed)
    diff = np.abs(m2 - m0) > 1e-9
    assert diff[1, 2] and diff.sum() == 1
    with pytest.raises(ValueError, match="Dict observation"):
        PPO(PairScorerPolicy, gym.make("P2PRecommendation-v0", n_producers=4, n_consumers=3, n_days=12))


def test_cli_trains_the_pair_scorer_from_its_yaml_section(tmp_path):
    from stable_baselines3 import PPO

    from prosumer_gym.train.cli import main

    out = tmp_path / "pairs"
    main(["--env", "P2PRecommendation-v1", "--algo", "ppo", "--section", "ppo_pairs", "--total-steps", "24",
          "--env-kwargs", "n_producers=3", "n_consumers=2", "n_days=6", "--hyperparams", "n_steps=12",
          "batch_size=6", "--out", str(out), "--no-progress", "--no-tensorboard"])
    assert type(PPO.load(out / "model.zip").policy).__name__ == "PairScorerPolicy"
    with pytest.raises(SystemExit):
        main(["--env", "P2PRecommendation-v1", "--algo", "ppo", "--section", "no_such_section", "--out",
              str(tmp_path / "x")])


def _hand_scores(obs) -> np.ndarray:
    """A deterministic v1 policy: estimated preference, discounted by the loss."""
    return np.clip(obs["accept_rate"] * (1.0 - obs["loss"]) + 0.05 * obs["recommended_per_day"], 0.0, 1.0)


def test_a_v1_policy_plays_identically_on_v0_through_the_adapter():
    """V1OnV0 rebuilds v1's statistics from v0's observation and decodes the scores: on the
    same seed, v0 + adapter and v1 give the same recommendations and rewards every day, and
    v0's projection never changes the decoded matrix."""
    from prosumer_gym.envs.p2p_recommendation.versions import V1OnV0

    kw = dict(n_producers=6, n_consumers=5, n_days=40, consumer_agents=False)
    e1, e0 = p2p_recommendation_v1.parallel_env(**kw), p2p_recommendation_v0.parallel_env(**kw)
    o1, _ = e1.reset(seed=11)
    o0, _ = e0.reset(seed=11)
    adapter = V1OnV0(_hand_scores)
    adapter.reset(e0)
    seen = []
    for _ in range(kw["n_days"]):
        o1, r1, _, _, _ = e1.step({"platform": _hand_scores(o1["platform"])})
        o0, r0, _, _, i0 = e0.step({"platform": adapter(o0["platform"])})
        assert r1["platform"] == r0["platform"]
        assert not i0["platform"]["projection"]["changed"]
        np.testing.assert_array_equal(o1["platform"]["last_recommendation"], o0["platform"]["last_recommendation"])
        seen.append(r0["platform"])
    assert len(set(seen)) > 10  # the days differ: the comparison is not between empty markets
    with pytest.raises(ValueError, match="action_mode"):
        V1OnV0(_hand_scores).reset(e1)
    with pytest.raises(RuntimeError, match="before reset"):
        V1OnV0(_hand_scores)(o0["platform"])


def test_exported_pair_scorer_is_sb3s_deterministic_policy(tmp_path):
    """The safe export of a PairScorerPolicy (per-key normalisers, the shared scorer) acts as
    SB3's ``predict(deterministic=True)`` on the normalised observation."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from prosumer_gym.train.export import export_sb3, load_exported, predict_fn, save_exported
    from prosumer_gym.train.pair_policy import PairScorerPolicy

    kw = dict(n_producers=4, n_consumers=3, n_days=12)
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("P2PRecommendation-v1", **kw)]))
    model = PPO(PairScorerPolicy, venv, n_steps=24, batch_size=12, n_epochs=2, seed=0, device="cpu",
                policy_kwargs={"hidden": 8})
    model.learn(96)
    state, card = export_sb3(model, venv)
    assert card["arch"] == "pair_scorer" and card["obs_dim"] == 5 * 4 * 3 + 4 + 3 + 1  # five (P, C) keys, capacity, demand, day
    f = predict_fn(*load_exported(save_exported(tmp_path / "pairs", state, card)))
    env = gym.make("P2PRecommendation-v1", **kw)
    obs, _ = env.reset(seed=3)
    venv.training = False
    for _ in range(24):
        a_sb3, _ = model.predict(venv.normalize_obs({k: v[None] for k, v in obs.items()}), deterministic=True)
        a = f(obs)
        np.testing.assert_allclose(a, a_sb3[0], rtol=0, atol=1e-5)
        obs, _, te, tu, _ = env.step(a)
        if te or tu:
            obs, _ = env.reset()
    assert np.ptp(a) > 0  # the scores are not constant: the comparison sees the scorer
