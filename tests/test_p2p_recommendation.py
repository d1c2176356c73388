"""P2PRecommendation-v0: API battery, determinism, Eq. 4.1 feasibility of every policy,
projection, chapter-4 orderings at a small size, bad inputs."""

from __future__ import annotations

import functools
import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test

import prosumer_gym  # noqa: F401  (registers the ids)
from prosumer_gym.agents.p2p_recommendation import BPTKAgent, UPLAgent, bptk_match, make_agent, random_recommendation
from prosumer_gym.baselines.p2p_recommendation import OPT, RandomFeasible, ZhuP, make_baseline, zhu_p_match
from prosumer_gym.core.matching import matching_value, unit_matching
from prosumer_gym.envs import p2p_recommendation_v0
from prosumer_gym.envs.p2p_recommendation_market import RecInstance, RecommendationMILP, expected_energy, project
from .helpers import same

SMALL = dict(n_producers=4, n_consumers=5)


# ----------------------------------------------------------------------------- independent checker
def eq41_violations(r, w, L, loss_max, alpha, K, x, tol=1e-7):
    """Plain-loop check of Eq. 4.1a-f (written from the equations, no market code)."""
    P, C = len(r), len(w)
    out = []
    for i in range(P):
        for j in range(C):
            v = float(x[i][j])
            if not math.isfinite(v) or v < -tol or v > 1 + tol:
                out.append(f"4.1f x[{i}][{j}]={v}")
            if L[i][j] > loss_max + 1e-12 and v != 0.0:
                out.append(f"L_max pair ({i},{j}) loss {L[i][j]} x={v}")
            z = 1 if v > 0 else 0
            if z and w[j] * v < alpha - tol:  # 4.1d lower half
                out.append(f"4.1d ({i},{j}) {w[j] * v} kWh < alpha")
            if w[j] * v > w[j] * z + tol:  # 4.1d upper half / 4.1e
                out.append(f"4.1e ({i},{j})")
    for i in range(P):
        s = 0.0
        for j in range(C):
            s += (1 + L[i][j]) * w[j] * float(x[i][j])
        if s > r[i] + tol:
            out.append(f"4.1a producer {i}: {s} > {r[i]}")
    for j in range(C):
        s, n = 0.0, 0
        for i in range(P):
            s += float(x[i][j])
            n += 1 if float(x[i][j]) > 0 else 0
        if s > 1 + tol:
            out.append(f"4.1b consumer {j}: {s}")
        if K is not None and n > K:
            out.append(f"4.1c consumer {j}: {n} > K={K}")
    return out


def check_inst(inst, x):
    return eq41_violations(list(inst.capacity_kwh), list(inst.demand_kwh), inst.loss.tolist(), inst.loss_max,
                           inst.alpha_kwh, inst.K, np.asarray(x).tolist())


def random_instance(rng, P=None, C=None, K="rand"):
    P = int(rng.integers(1, 8)) if P is None else P
    C = int(rng.integers(1, 10)) if C is None else C
    r = rng.uniform(0, 40, P) * (rng.random(P) > 0.15)
    w = rng.uniform(0, 40, C) * (rng.random(C) > 0.1)
    w[rng.random(C) < 0.1] = 0.03  # below alpha
    L = rng.choice([0.01, 0.02, 0.03, 0.04], size=(P, C))
    K = [None, 1, 2, 3, 5][int(rng.integers(5))] if K == "rand" else K
    return RecInstance(r, w, L, 0.025, 0.05, K)


# ----------------------------------------------------------------------------- API battery
def test_parallel_api():
    parallel_api_test(p2p_recommendation_v0.parallel_env(**SMALL, n_days=30), num_cycles=40)


def test_parallel_api_platform_only_default_size():
    parallel_api_test(p2p_recommendation_v0.parallel_env(n_days=8, consumer_agents=False), num_cycles=10)


def test_parallel_seed():
    parallel_seed_test(functools.partial(p2p_recommendation_v0.parallel_env, **SMALL, n_days=20), num_cycles=25)


def test_aec_api():
    # pettingzoo's AEC api_test compares every agent's observation with the first agent's
    # as arrays, so it cannot take the platform's Dict next to consumers' Boxes: the AEC
    # battery runs on the platform-only env (the Parallel battery covers the consumers).
    api_test(p2p_recommendation_v0.env(**SMALL, n_days=6, consumer_agents=False), num_cycles=10)


def test_max_cycles():
    max_cycles_test(p2p_recommendation_v0)


def test_render():
    render_test(lambda render_mode=None: p2p_recommendation_v0.env(**SMALL, n_days=4, render_mode=render_mode))


def test_gymnasium_check_env():
    env = gym.make("P2PRecommendation-v0", n_days=10, **SMALL)
    check_env(env.unwrapped, skip_render_check=True)


def test_gym_make_without_prior_import():
    code = (
        "import gymnasium as gym; e = gym.make('prosumer_gym:P2PRecommendation-v0', n_days=3, n_producers=2,"
        " n_consumers=2); o, i = e.reset(seed=1); print(e.observation_space.contains(o))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# ----------------------------------------------------------------------------- determinism


def _rollout(seed, days, policy="bpt-k", **kw):
    env = p2p_recommendation_v0.parallel_env(n_days=days, **kw)
    obs, infos = env.reset(seed=seed)
    pol = make_agent(policy, env, seed=5)
    rng = np.random.default_rng(99)
    traj = [(obs, infos)]
    while env.agents:
        acts = {"platform": pol.act(obs["platform"])}
        # half of the consumers act (random accept vectors), the others follow the model
        for a in env.agents[1:]:
            acts[a] = p2p_recommendation_v0.FOLLOW_MODEL
        for a in env.agents[1::2]:
            acts[a] = rng.integers(0, 2, env.n_producers)
        obs, *rest = env.step(acts)
        traj.append((obs, *rest))
    return traj


def test_multistep_determinism():
    t1 = _rollout(7, 25, **SMALL)
    t2 = _rollout(7, 25, **SMALL)
    assert len(t1) == 26
    assert same(t1, t2)
    t3 = _rollout(8, 25, **SMALL)
    assert not same(t1[3][4], t3[3][4])


def test_gym_view_determinism_and_upl_rollout():
    def run(seed):
        env = gym.make("P2PRecommendation-v0", n_days=15, **SMALL)
        obs, _ = env.reset(seed=seed)
        pol = UPLAgent.from_env(env, seed=1)
        out = []
        for _ in range(15):
            obs, rew, term, trunc, info = env.step(pol.act(obs))
            out.append((rew, info))
        assert trunc and not term
        return out

    assert same(run(3), run(3))
    assert not same(run(3), run(4))


# ----------------------------------------------------------------------------- env semantics
def test_consumer_actions_decide_acceptance():
    env = p2p_recommendation_v0.parallel_env(**SMALL, n_days=3, start_day=170, oracle=True)
    obs, _ = env.reset(seed=0)
    x = OPT.from_env(env).act(obs["platform"])
    inst = env.instance()
    assert x.sum() > 0
    no = {"platform": x, **{a: np.zeros(env.n_producers, np.int8) for a in env.consumers}}
    _, rew, _, _, info = env.step(no)
    assert rew["platform"] == 0.0 and info["platform"]["exchanged_kwh"] == 0.0
    inst = env.instance()
    x = OPT.from_env(env).act(env._observations()["platform"])
    yes = {"platform": x, **{a: np.ones(env.n_producers, np.int8) for a in env.consumers}}
    obs, rew, _, _, info = env.step(yes)
    assert rew["platform"] == pytest.approx((x * inst.demand_kwh[None, :]).sum())
    assert sum(rew[a] for a in env.consumers) == pytest.approx(rew["platform"])
    np.testing.assert_array_equal(obs["platform"]["last_accepted"], (x > 0).astype(float))
    assert info["platform"]["efficiency"] == pytest.approx(1.0, abs=1e-6)  # OPT's action is the oracle


def test_every_consumer_must_act_or_follow_the_model_explicitly():
    """A missing consumer or a None action is refused like in the other markets (env card);
    FOLLOW_MODEL gives exactly the env's own preference-model draws."""
    kw = dict(**SMALL, n_days=4, start_day=170)

    def rollout(consumers):
        env = p2p_recommendation_v0.parallel_env(consumer_agents=consumers, **kw)
        obs, _ = env.reset(seed=3)
        x = OPT.from_env(env).act(obs["platform"])
        out = []
        while env.agents:
            acts = {a: p2p_recommendation_v0.FOLLOW_MODEL for a in env.agents}
            acts["platform"] = x
            obs, rew, *_ = env.step(acts)
            out.append(rew["platform"])
        return out

    # the sentinel reproduces the platform-only env (the same accept draws P_ij(d))
    assert rollout(True) == rollout(False) and sum(rollout(True)) > 0
    env = p2p_recommendation_v0.parallel_env(**kw)
    obs, _ = env.reset(seed=3)
    x = np.zeros((env.n_producers, env.n_consumers))
    follow = dict.fromkeys(env.consumers, p2p_recommendation_v0.FOLLOW_MODEL)
    with pytest.raises(ValueError, match=r"missing agents \['consumer_0', 'consumer_1'"):
        env.step({"platform": x})
    with pytest.raises(ValueError, match=r"missing agents \['consumer_2'\]"):
        env.step({k: v for k, v in {**follow, "platform": x}.items() if k != "consumer_2"})
    with pytest.raises(ValueError, match=r"actions\['consumer_2'\].*'model' to follow the preference model"):
        env.step({**follow, "platform": x, "consumer_2": None})
    assert env._t == 0  # nothing was played; a valid step still works
    env.step({**follow, "platform": x})
    assert env._t == 1


def test_info_metrics_consistent():
    env = p2p_recommendation_v0.parallel_env(n_producers=5, n_consumers=8, n_days=12, consumer_agents=False,
                                             oracle=True)
    obs, _ = env.reset(seed=2)
    pol = ZhuP.from_env(env)
    regret = 0.0
    while env.agents:
        obs, rew, _, _, info = env.step({"platform": pol.act(obs["platform"])})
        i = info["platform"]
        assert i["oracle_kwh"] >= i["expected_kwh"] - 1e-6
        assert 0.0 <= i["satisfied_demand"] <= 1.0
        assert i["loss_pct"] <= 2.5 + 1e-9  # only pairs with L <= L_max trade
        assert i["feasible_submitted"] and not i["projection"]["changed"]
        regret += i["oracle_kwh"] - i["expected_kwh"]
        assert i["regret_kwh"] == pytest.approx(regret)


ORACLE_KEYS = ("oracle_kwh", "oracle_status", "efficiency", "regret_kwh")


def _follow(env) -> dict:
    """Every consumer of ``env`` follows the preference model (the explicit sentinel)."""
    return dict.fromkeys(env.consumers if env.consumer_agents else (), p2p_recommendation_v0.FOLLOW_MODEL)


def _random_rollout(env, seed, days):
    """Seeded random platform matrices (some over-full, so the projection works) and random
    accept vectors for every other consumer; returns the full trajectory."""
    obs, infos = env.reset(seed=seed)
    rng = np.random.default_rng(seed + 100)
    P, C = env.n_producers, env.n_consumers
    traj = [(obs, infos)]
    for _ in range(days):
        acts = {"platform": np.minimum(rng.random((P, C)) * (rng.random((P, C)) < 0.5) * 1.5, 1.0)}
        if env.consumer_agents:
            acts.update(_follow(env))
            acts.update({a: rng.integers(0, 2, P) for a in env.consumers[::2]})
        traj.append(env.step(acts))
    return traj


def test_oracle_is_off_by_default_and_never_built():
    env = p2p_recommendation_v0.parallel_env(n_days=4)  # the track's 16 x 10
    for _, _, _, _, info in _random_rollout(env, 0, 4)[1:]:
        i = info["platform"]
        assert i["oracle_status"] == "off"
        assert not {"oracle_kwh", "efficiency", "regret_kwh", "oracle_seconds"} & set(i)
        assert i["expected_kwh"] > 0
    assert env._milp_obj is None  # no MILP was even built on the hot path


def test_lazy_oracle_kpis_equal_eager():
    """oracle=False + oracle_kpis() gives exactly what oracle=True reports in every step's
    info (same oracle_kwh, status, efficiency, cumulative regret per day), and the oracle
    changes nothing else (rewards, observations, other infos)."""
    kw = dict(n_producers=16, n_consumers=10, n_days=10, start_day=20)
    eager = p2p_recommendation_v0.parallel_env(oracle=True, **kw)
    lazy = p2p_recommendation_v0.parallel_env(**kw)
    te = _random_rollout(eager, 5, 4)
    tl = _random_rollout(lazy, 5, 4)
    lazy_kpis_mid = lazy.oracle_kpis()  # days 0-3, then the episode goes on
    assert len(lazy_kpis_mid) == 4
    rng_e, rng_l = np.random.default_rng(1), np.random.default_rng(1)
    for env, traj, rng in ((eager, te, rng_e), (lazy, tl, rng_l)):
        for _ in range(6):
            x = np.minimum(rng.random((16, 10)) * 1.2, 1.0) * (rng.random((16, 10)) < 0.4)
            traj.append(env.step({"platform": x, **_follow(env)}))
    assert not eager.agents and not lazy.agents
    days_e = [t[4]["platform"] for t in te[1:]]
    days_l = [t[4]["platform"] for t in tl[1:]]
    kpis = lazy.oracle_kpis()
    assert [k["day"] for k in kpis] == list(range(10))
    assert same(kpis[:4], lazy_kpis_mid)  # solved days are kept, not re-solved differently
    for de, dl, k in zip(days_e, days_l, kpis):
        assert dl["oracle_status"] == "off"
        assert de["oracle_status"] == "optimal"
        for key in ORACLE_KEYS:
            assert k[key] == de[key], (de["day"], key, k[key], de[key])
        assert k["expected_kwh"] == de["expected_kwh"] == dl["expected_kwh"]
    assert kpis[-1]["regret_kwh"] > 0 and 0 < kpis[-1]["efficiency"] <= 1 + 1e-9
    # everything but the oracle fields is the same trajectory
    def strip(t):
        return [(*x[:4], {a: {k: v for k, v in i.items() if k not in ORACLE_KEYS} for a, i in x[4].items()})
                if len(x) == 5 else x for x in t]

    assert same(strip(te), strip(tl))
    # with oracle=True the eager values are reused: oracle_kpis() solves nothing
    eager._milp_obj.solve = lambda *a, **k: pytest.fail("oracle_kpis() re-solved an eagerly solved day")
    assert same([{k: v for k, v in d.items() if k != "oracle_seconds"} for d in eager.oracle_kpis()],
                [{k: v for k, v in d.items() if k != "oracle_seconds"} for d in kpis])


def test_lazy_oracle_kpis_gym_view_and_reset():
    def run(**kw):
        env = gym.make("P2PRecommendation-v0", n_days=6, **SMALL, **kw)
        env.reset(seed=9)
        env.action_space.seed(9)
        infos = [env.step(env.action_space.sample())[4] for _ in range(6)]
        return env, infos

    lazy, _ = run()
    _, infos = run(oracle=True)
    kpis = lazy.unwrapped.oracle_kpis()
    assert [tuple(k[f] for f in ORACLE_KEYS) for k in kpis] == [tuple(i[f] for f in ORACLE_KEYS) for i in infos]
    lazy.reset(seed=1)
    assert lazy.unwrapped.oracle_kpis() == []  # reset starts a new record
    with pytest.raises(RuntimeError, match="reset"):
        p2p_recommendation_v0.parallel_env(**SMALL).oracle_kpis()


# ------------------------------------------------------------------- bit-identity with the pre-vectorised code
def _project_reference(inst, x):
    """The projection as written before it was vectorised (issue 17): a Python loop per
    consumer for the list length. The env's :func:`project` must agree bit for bit."""
    x0 = np.asarray(x, dtype=np.float64)
    y = x0.copy()
    w, r, L = inst.demand_kwh, inst.capacity_kwh, inst.loss
    rep = {}
    bad = (~inst.allowed) & (y > 0)
    rep["forbidden_zeroed"] = int(bad.sum())
    y[bad] = 0.0
    col = y.sum(axis=0)
    over = col > 1.0
    rep["demand_scaled"] = int(over.sum())
    if over.any():
        y[:, over] /= col[over]
        y[:, over] = np.minimum(y[:, over], 1.0)
    k = inst.k_eff
    trunc = 0
    for j in np.flatnonzero((y > 0).sum(axis=0) > k):
        drop = np.lexsort((np.arange(y.shape[0]), -y[:, j]))[k:]  # by value desc, index asc
        trunc += int((y[drop, j] > 0).sum())
        y[drop, j] = 0.0
    rep["list_truncated"] = trunc
    shipped = ((1.0 + L) * y * w[None, :]).sum(axis=1)
    hot = shipped > r
    rep["capacity_scaled"] = int(hot.sum())
    if hot.any():
        f = np.where(shipped[hot] > 0, r[hot] / np.where(shipped[hot] > 0, shipped[hot], 1.0), 0.0)
        y[hot] *= (f * (1.0 - 1e-12))[:, None]
    small = (y > 0) & (y * w[None, :] < inst.alpha_kwh - 1e-9)
    rep["min_exchange_zeroed"] = int(small.sum())
    y[small] = 0.0
    diff = np.abs(y - x0)
    rep["max_abs_change"] = float(diff.max(initial=0.0))
    rep["changed"] = bool(diff.max(initial=0.0) > 0)
    return y, rep


def test_projection_bit_identical_to_reference():
    rng = np.random.default_rng(17)
    cases = [random_instance(rng) for _ in range(400)] + [random_instance(rng, P=60, C=50, K=5) for _ in range(10)]
    for n, inst in enumerate(cases):
        shape = inst.loss.shape
        kind = n % 4
        if kind == 0:  # many exact ties (the tie rule: lower producer index first)
            x = rng.choice([0.0, 0.05, 0.2, 0.5, 1.0], size=shape)
        elif kind == 1:  # sparse
            x = rng.random(shape) * (rng.random(shape) < 0.5)
        elif kind == 2:  # dense random (what a random agent sends)
            x = rng.random(shape)
        else:  # signed zeros
            x = rng.random(shape) * (rng.random(shape) < 0.3)
            x[x == 0] = -0.0
        y, rep = project(inst, x)
        y_ref, rep_ref = _project_reference(inst, x)
        assert np.array_equal(y, y_ref) and np.array_equal(np.signbit(y), np.signbit(y_ref)), n
        assert rep == rep_ref, (n, rep, rep_ref)


# Computed with the env before its step was vectorised (commit ecbe210): rewards of the
# platform and of all consumers, expected energy, and observation sums of a seeded episode.
PINNED = [
    (92.55993286365998, 92.55993286366001, 128.97541556577013, 9.518456481482202, 247.14769347570837),
    (112.07788926851825, 112.07788926851825, 113.65546711412128, 9.275224310973798, 250.98790672048926),
    (102.4959253786866, 102.4959253786866, 102.26791638372548, 8.544711206421503, 237.7846457939595),
    (71.63593160958813, 71.63593160958813, 81.73592424164238, 7.8181539166341585, 231.23491695709527),
    (79.10603010107542, 79.10603010107542, 85.01716818202857, 7.8050490904022265, 244.4982908796519),
    (65.15882454382498, 65.15882454382498, 85.94486288650812, 7.963377736173465, 256.85033938474953),
    (132.2993902165909, 132.2993902165909, 130.9127925707171, 8.897296247849901, 269.20389374159276),
    (119.13186487893452, 119.1318648789345, 104.03902017670917, 8.170617960104476, 246.1796165369451),
]


def test_seeded_episode_pinned():
    env = p2p_recommendation_v0.parallel_env(n_producers=16, n_consumers=10, n_days=8, start_day=100)
    obs, _ = env.reset(seed=2024)
    rng = np.random.default_rng(7)
    for t in range(8):
        x = np.minimum(rng.random((16, 10)) * (rng.random((16, 10)) < 0.5) * 1.5, 1.0)
        acts = {"platform": x, **_follow(env), **{a: rng.integers(0, 2, 16) for a in env.consumers[::3]}}
        obs, rew, _, _, info = env.step(acts)
        got = (rew["platform"], sum(rew[a] for a in env.consumers), info["platform"]["expected_kwh"],
               float(obs["platform"]["last_recommendation"].sum()),
               float(sum(obs[a].astype(np.float64).sum() for a in env.consumers)))
        assert got == PINNED[t], (t, got)


def test_consumer_actions_any_form_same_result():
    """Arrays (checked in one batch), lists and bools (checked one by one) give the same step."""
    forms = [lambda v: v.astype(np.int8), lambda v: v.astype(bool), lambda v: v.tolist(), lambda v: v.astype(float)]
    outs = []
    for form in forms:
        env = p2p_recommendation_v0.parallel_env(**SMALL, n_days=3)
        env.reset(seed=4)
        rng = np.random.default_rng(0)
        steps = []
        for _ in range(3):
            acts = {"platform": rng.random((4, 5)), **_follow(env),
                    **{a: form(rng.integers(0, 2, 4)) for a in env.consumers[1:]}}
            steps.append(env.step(acts))
        outs.append(steps)
    assert all(same(outs[0], o) for o in outs[1:])
    env = p2p_recommendation_v0.parallel_env(**SMALL, n_days=3)
    env.reset(seed=4)
    acts = {"platform": np.zeros((4, 5)), **{a: np.ones(4, np.int64) for a in env.consumers}}
    acts["consumer_3"] = np.array([0, 1, 2, 1])
    with pytest.raises(ValueError, match="consumer_3"):
        env.step(acts)


# ----------------------------------------------------------------------------- Eq. 4.1 for every policy
def test_every_policy_feasible_on_random_days():
    rng = np.random.default_rng(0)
    milp = {}
    for trial in range(60):
        inst = random_instance(rng)
        P, C = inst.loss.shape
        p = rng.choice([0.1, 0.5, 1.0], size=(P, C))
        if (P, C) not in milp:
            milp[(P, C)] = RecommendationMILP(P, C)
        outs = {
            "opt": milp[(P, C)].solve(inst, p)[0],
            "zhu_p": zhu_p_match(inst, p),
            "bpt-k": bptk_match(inst, rng.uniform(0, 2, (P, C)), T=float(rng.choice([0.5, 1.0, 3.0]))),
            "bpt-k-aware": bptk_match(inst, rng.uniform(0, 2, (P, C)), T=1.0, k_aware=True),
            "random": random_recommendation(inst, rng),
        }
        for name, x in outs.items():
            assert check_inst(inst, x) == [], (trial, name, check_inst(inst, x))
        assert expected_energy(inst, outs["opt"], p) >= max(expected_energy(inst, x, p) for x in outs.values()) - 1e-6


@pytest.mark.parametrize("name", ["upl", "m-upl", "upl-orig", "bpt-k", "zhu_p", "opt", "random"])
def test_every_policy_feasible_in_env(name):
    """Every matrix a policy emits (initialisation and optimisation phases) passes the checker."""
    env = p2p_recommendation_v0.parallel_env(n_producers=5, n_consumers=6, n_days=45, K=2, consumer_agents=False,
                                             oracle=False, start_day=60)
    obs, _ = env.reset(seed=11)
    pol = make_baseline(name, env) if name in ("zhu_p", "opt", "random") else make_agent(name, env, seed=3)
    n_nonzero = 0
    while env.agents:
        inst = env.instance()
        x = pol.act(obs["platform"])
        assert check_inst(inst, x) == []
        n_nonzero += int((x > 0).sum())
        obs, _, _, _, info = env.step({"platform": x})
        assert not info["platform"]["projection"]["changed"]
    assert n_nonzero > 0


# ----------------------------------------------------------------------------- projection
def test_projection_rules():
    L = np.array([[0.01, 0.04, 0.02], [0.02, 0.01, 0.01], [0.01, 0.01, 0.03]])
    inst = RecInstance(np.array([10.0, 100.0, 100.0]), np.array([20.0, 10.0, 1.0]), L, 0.025, 0.05, K=2)
    x = np.array([[0.9, 0.5, 0.02], [0.6, 0.3, 0.5], [0.5, 0.2, 0.0]])
    y, rep = project(inst, x)
    assert check_inst(inst, y) == []
    assert y[0, 1] == 0.0 and y[2, 2] == 0.0  # forbidden pairs (L > L_max) zeroed
    assert rep["forbidden_zeroed"] == 1  # (0,1); (2,2) was already 0
    assert rep["demand_scaled"] == 1  # consumer 0: 0.9 + 0.6 + 0.5 = 2.0 -> / 2
    assert rep["list_truncated"] == 1  # consumer 0 keeps producers 0 and 1 (largest)
    assert y[2, 0] == 0.0 and y[1, 0] == pytest.approx(0.3)
    # producer 0 ships 1.01 * 20 * 0.45 = 9.09 <= 10: no capacity scaling needed for it
    assert y[0, 0] == pytest.approx(0.45)
    assert rep["min_exchange_zeroed"] == 1  # (0, 2): 0.02 * 1 kWh < 50 Wh
    assert rep["changed"]
    z, rep2 = project(inst, y)  # idempotent on feasible input
    np.testing.assert_array_equal(z, y)
    assert not rep2["changed"]


def test_projection_capacity_curtails_proportionally():
    inst = RecInstance(np.array([10.1]), np.array([10.0, 10.0]), np.full((1, 2), 0.01), 0.025, 0.05, K=None)
    y, rep = project(inst, np.array([[1.0, 0.5]]))
    assert rep["capacity_scaled"] == 1
    assert y[0, 0] / y[0, 1] == pytest.approx(2.0)
    assert (1.01 * 10 * y).sum() == pytest.approx(10.1, rel=1e-9)
    assert check_inst(inst, y) == []


def test_projection_always_feasible_and_deterministic():
    rng = np.random.default_rng(4)
    for _ in range(200):
        inst = random_instance(rng)
        x = rng.random(inst.loss.shape) * (rng.random(inst.loss.shape) < 0.6)
        y1, _ = project(inst, x)
        y2, _ = project(inst, x.copy())
        np.testing.assert_array_equal(y1, y2)
        assert check_inst(inst, y1) == []
        assert np.all(y1 <= x + 1e-15)  # never adds energy


def test_env_reports_submitted_violations():
    env = p2p_recommendation_v0.parallel_env(**SMALL, K=2, n_days=2, consumer_agents=False)
    env.reset(seed=0)
    _, _, _, _, info = env.step({"platform": np.ones((4, 5))})
    i = info["platform"]
    assert not i["feasible_submitted"]
    assert i["violations"]["demand"] == pytest.approx(3.0)
    assert i["violations"]["list_length"] > 0 and i["projection"]["changed"]
    assert check_inst(env.last_instance, env._last_rec) == []


# ----------------------------------------------------------------------------- matching, MILP
def test_unit_matching_lsa_equals_lp():
    rng = np.random.default_rng(1)
    for _ in range(25):
        P, C = int(rng.integers(1, 6)), int(rng.integers(1, 7))
        W = rng.uniform(-0.2, 1, (P, C))
        s, d = rng.integers(0, 6, P), rng.integers(0, 6, C)
        mask = rng.random((P, C)) < 0.8
        a = unit_matching(W, s, d, mask, method="lsa")
        b = unit_matching(W, s, d, mask, method="lp")
        for N in (a, b):
            assert np.all(N.sum(1) <= s) and np.all(N.sum(0) <= d)
            assert np.all(N[~mask | (W <= 0)] == 0)
        assert matching_value(W, a) == pytest.approx(matching_value(W, b), abs=1e-9)


def test_unit_matching_known_case():
    W = np.array([[3.0, 2.0], [2.0, 0.5]])
    for method in ("lsa", "lp"):
        N = unit_matching(W, np.array([1, 1]), np.array([1, 1]), method=method)
        np.testing.assert_array_equal(N, [[0, 1], [1, 0]])  # 2 + 2 = 4 > 3 + 0.5
    N = unit_matching(np.array([[1.0, 5.0]]), np.array([3]), np.array([2, 2]))
    np.testing.assert_array_equal(N, [[1, 2]])


def test_milp_matches_brute_force_on_tiny_instances():
    """K = 1 with ample capacity: the optimum is the best producer per consumer (by w p)."""
    rng = np.random.default_rng(2)
    for _ in range(10):
        P, C = 3, 4
        L = rng.choice([0.01, 0.02, 0.04], size=(P, C))
        p = rng.choice([0.1, 0.5, 1.0], size=(P, C))
        w = rng.uniform(1, 10, C)
        inst = RecInstance(np.full(P, 1e3), w, L, 0.025, 0.05, K=1)
        x, res = RecommendationMILP(P, C).solve(inst, p)
        best = sum(w[j] * max([p[i, j] for i in range(P) if L[i, j] <= 0.025] or [0.0]) for j in range(C))
        assert res.proven_optimal and expected_energy(inst, x, p) == pytest.approx(best)


# ----------------------------------------------------------------------------- learning, orderings
def test_orderings_small_size():
    """OPT >= UPL, BPT-K > Zhu_P (expected energy over 40 summer days, scarce supply)."""
    tot = {}
    for name in ("opt", "upl", "bpt-k", "zhu_p", "random"):
        env = p2p_recommendation_v0.parallel_env(n_producers=6, n_consumers=16, n_days=40, start_day=150,
                                                 consumer_agents=False, oracle=False)
        obs, _ = env.reset(seed=0)
        pol = make_baseline(name, env) if name in ("opt", "zhu_p", "random") else make_agent(name, env, seed=0)
        tot[name] = 0.0
        while env.agents:
            obs, _, _, _, info = env.step({"platform": pol.act(obs["platform"])})
            tot[name] += info["platform"]["expected_kwh"]
    assert tot["opt"] >= tot["upl"] - 1e-6 and tot["opt"] >= tot["bpt-k"] - 1e-6
    assert tot["upl"] > 1.05 * tot["zhu_p"] and tot["bpt-k"] > 1.05 * tot["zhu_p"]
    assert tot["zhu_p"] > tot["random"]
    assert tot["upl"] > 0.85 * tot["opt"] and tot["bpt-k"] > 0.85 * tot["opt"]


def test_initialisation_lengths_and_learning():
    """FIA observes every allowed pair much faster than M-UPL; UPL's original takes |P||C| days."""
    days = {}
    for name in ("upl", "m-upl", "upl-orig"):
        env = p2p_recommendation_v0.parallel_env(n_producers=6, n_consumers=5, n_days=40, start_day=150,
                                                 consumer_agents=False, oracle=False)
        obs, _ = env.reset(seed=1)
        pol = make_agent(name, env, seed=0)
        while env.agents:
            obs, *_ = env.step({"platform": pol.act(obs["platform"])})
        days[name] = pol.init_days
        allowed = env.loss <= env.loss_max
        if name != "upl-orig":
            assert np.all(pol.m[allowed] > 0)  # initialisation complete
            err = np.abs(pol.p_hat - env.preference)[allowed].mean()
            assert err < 0.35
        assert np.all(pol.m[~allowed] == 0)  # forbidden pairs are never played
    assert days["upl"] * 3 <= days["m-upl"]
    assert days["upl-orig"] == 30  # |P||C|


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(n_producers=0), "n_producers"),
        (dict(n_consumers=1.5), "n_consumers"),
        (dict(K=0), "K"),
        (dict(min_exchange_kwh=-1), "min_exchange_kwh"),
        (dict(loss_max=1.5), "loss_max"),
        (dict(loss_levels=[]), "loss_levels"),
        (dict(preference_levels=[0.5, 1.2]), "preference_levels"),
        (dict(producer_pv_kw=[8, -4]), "producer_pv_kw"),
        (dict(producer_capacity="wind"), "producer_capacity"),
        (dict(split="dev"), "split"),
        (dict(n_days=10, max_cycles=20), "max_cycles"),
        (dict(render_mode="video"), "render_mode"),
        (dict(start_day=365), "start_day"),
    ],
)
def test_bad_config(kw, field):
    with pytest.raises(ValueError, match=field):
        p2p_recommendation_v0.parallel_env(**kw)


def test_bad_actions():
    env = p2p_recommendation_v0.parallel_env(**SMALL, n_days=3)
    env.reset(seed=0)
    good = np.zeros((4, 5))
    follow = dict.fromkeys(env.consumers, p2p_recommendation_v0.FOLLOW_MODEL)
    for bad, field in [
        ({**follow, "platform": np.zeros((5, 4))}, "platform"),
        ({**follow, "platform": np.full((4, 5), np.nan)}, "platform"),
        ({**follow, "platform": np.full((4, 5), 1.5)}, "platform"),
        ({**follow, "platform": "x"}, "platform"),
        ({**follow, "platform": None}, "platform"),
        (follow, "platform"),
        ({**follow, "platform": good, "consumer_9": np.zeros(4)}, "unknown agents"),
        ({**follow, "platform": good, "consumer_0": np.full(4, 2)}, "consumer_0"),
        ({**follow, "platform": good, "consumer_0": np.zeros(3)}, "consumer_0"),
        ({**follow, "platform": good, "consumer_0": "Model"}, "consumer_0"),
        ([good], "dict"),
    ]:
        with pytest.raises(ValueError, match=field):
            env.step(bad)
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=-1)
    env2 = gym.make("P2PRecommendation-v0", n_days=1, **SMALL)
    env2.reset(seed=0)
    env2.step(good)
    with pytest.raises(RuntimeError, match="reset"):
        env2.step(good)


def test_bad_policy_and_helper_inputs():
    with pytest.raises(ValueError, match="init"):
        UPLAgent(3, 3, init="fast")
    with pytest.raises(ValueError, match="T must be"):
        BPTKAgent(3, 3, T=0.01)
    with pytest.raises(ValueError, match="agent name"):
        make_agent("ucb", p2p_recommendation_v0.parallel_env(**SMALL))
    with pytest.raises(ValueError, match="method"):
        unit_matching(np.ones((2, 2)), np.array([1, 1]), np.array([1, 1]), method="greedy")
    with pytest.raises(ValueError, match="supply"):
        unit_matching(np.ones((2, 2)), np.array([1.5, 1]), np.array([1, 1]))
    inst = RecInstance(np.ones(2), np.ones(2), np.full((2, 2), 0.01))
    with pytest.raises(ValueError, match="shape"):
        project(inst, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="weight"):
        RecommendationMILP(2, 2).solve(inst, np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="capacity"):
        RecInstance(np.ones(2), np.ones(3), np.full((2, 2), 0.01))
    with pytest.raises(RuntimeError, match="reset"):
        p2p_recommendation_v0.parallel_env(**SMALL).preference
    with pytest.raises(ValueError, match="consumer_agents"):
        gym.make("P2PRecommendation-v0", consumer_agents=True)
    assert RandomFeasible(2, 2, seed=0).act({"capacity_kwh": [5, 5], "demand_kwh": [3, 3],
                                             "loss": [[0.01, 0.01], [0.01, 0.01]]}).shape == (2, 2)


def test_fia_finishes_with_k1_in_winter():
    """K = 1 in January: Alg. 2's e = w_j exceeds every producer's capacity; our FIA still
    probes every allowed pair (shipping what the producer can) and stays feasible."""
    env = p2p_recommendation_v0.parallel_env(n_producers=6, n_consumers=5, n_days=30, K=1, start_day=0,
                                             consumer_agents=False, oracle=False)
    obs, _ = env.reset(seed=0)
    pol = make_agent("upl", env, seed=0)
    while env.agents and pol.in_init:
        inst = env.instance()
        x = pol.act(obs["platform"])
        assert check_inst(inst, x) == []
        obs, *_ = env.step({"platform": x})
    assert not pol.in_init and pol.init_days <= 15
    assert np.all(pol.m[env.loss <= env.loss_max] > 0)


def test_fia_probe_printed_is_alg2_line7():
    """``fia_probe="printed"``: only producers with ``r_i >= e = max(w_j / K, alpha)`` are
    probed (Alg. 2 line 7), so with K = 1 in January FIA observes fewer pairs than ours in the
    same days, never probes a producer below ``e``, and the projected lists stay feasible."""
    kw = dict(n_producers=6, n_consumers=5, n_days=30, K=1, start_day=0, consumer_agents=False, oracle=False)
    seen = {}
    for probe in ("ours", "printed"):
        env = p2p_recommendation_v0.parallel_env(**kw)
        obs, _ = env.reset(seed=0)
        pol = make_agent("upl", env, seed=0, fia_probe=probe)
        for _ in range(10):
            inst = env.instance()
            cap = inst.capacity_kwh.copy()
            before = pol._b.copy() if pol._b is not None else None
            x = pol.act(obs["platform"])
            assert check_inst(inst, x) == []
            if probe == "printed" and before is not None and pol.in_init:
                new = pol._b & ~before  # pairs probed today
                e = np.maximum(inst.demand_kwh / inst.k_eff, pol.alpha_kwh)
                assert np.all(cap[:, None] >= e[None, :] - 1e-12, where=new)
            obs, *_ = env.step({"platform": x})
        seen[probe] = int((pol.m > 0).sum())
    assert seen["printed"] < seen["ours"]
    with pytest.raises(ValueError, match="fia_probe"):
        make_agent("upl", p2p_recommendation_v0.parallel_env(**kw), fia_probe="verbatim")


def test_bptk_k_aware_candidates_offer_at_most_k_producers_per_consumer():
    """k_aware=True: a consumer's candidates are its current pairs plus its ``K - d`` best new
    producers with units left, so a pass cannot match more distinct pairs than K allows."""
    from prosumer_gym.agents.p2p_recommendation import _k_aware_candidates

    rng = np.random.default_rng(4)
    for _ in range(50):
        P, C, K = int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 4))
        mask = rng.random((P, C)) < 0.7
        paired = mask & (rng.random((P, C)) < 0.2)
        deg = paired.sum(axis=0)
        mask &= ((deg < K)[None, :] | paired)
        w, units = rng.random((P, C)), rng.random(P) < 0.8
        out = _k_aware_candidates(mask, paired, w, units, K - deg)
        assert not np.any(out & ~mask) and np.array_equal(out & paired, mask & paired)
        assert np.all(out.sum(axis=0) <= np.maximum(K, deg))
        for j in range(C):  # the new candidates are the best-weighted eligible ones
            new = np.flatnonzero(out[:, j] & ~paired[:, j])
            rest = np.flatnonzero(mask[:, j] & ~paired[:, j] & units & ~out[:, j])
            if new.size and rest.size:
                assert w[new, j].min() >= w[rest, j].max()


def test_bptk_k_script_quick(tmp_path):
    import json

    from .helpers import load_script

    mod = load_script("p2p_recommendation_bptk_k")
    assert mod.main(["--out", str(tmp_path), "--quick"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    (row,) = res["share_of_opt"].values()
    assert set(row) == {"zhu_p", "bpt-k", "bpt-k-aware"}
    assert all(0.0 < v <= 1.0 + 1e-9 for v in row.values())  # OPT is the perfect-knowledge optimum
