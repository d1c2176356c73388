"""ProsumerSharing-v0: API battery, determinism, oracle, Algorithms 1-2, reproduction, bad input."""

from __future__ import annotations

import functools
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test

import prosumer_gym  # noqa: F401  (registers the ids)
from prosumer_gym.agents.prosumer_sharing import Algorithm1Platform, Algorithm2Prosumer, Algorithm2Team
from prosumer_gym.core.spaces import check_binary_array, check_multibinary
from prosumer_gym.envs import prosumer_sharing_v0
from prosumer_gym.envs.prosumer_sharing_gym import ProsumerSharingGymEnv
from prosumer_gym.envs.prosumer_sharing_market import (
    CostParams,
    SharingConfig,
    _best_response,
    algorithm2_fixed_point,
    algorithm2_probabilities,
    check_costs,
    kkt_residual,
    paper_costs,
    platform_update,
    solve_optimum,
    solve_optimum_primal,
)
from prosumer_gym.envs.prosumer_sharing_vec import ProsumerSharingBatch, ProsumerSharingVecEnv
from .helpers import same

SMALL = dict(n_prosumers=6)


def _random_actions(env, rng):
    return {a: rng.integers(0, 2, size=2).astype(np.int8) for a in env.agents}




# ----------------------------------------------------------------------------- API battery
def test_parallel_api_small():
    parallel_api_test(prosumer_sharing_v0.parallel_env(**SMALL, n_days=30), num_cycles=40)


def test_parallel_api_default_size():
    parallel_api_test(prosumer_sharing_v0.parallel_env(n_days=8), num_cycles=10)


def test_parallel_seed():
    parallel_seed_test(functools.partial(prosumer_sharing_v0.parallel_env, **SMALL, n_days=40), num_cycles=50)


def test_aec_api():
    api_test(prosumer_sharing_v0.env(**SMALL, n_days=10), num_cycles=30)


def test_max_cycles():
    max_cycles_test(prosumer_sharing_v0)


def test_render(capsys):
    render_test(lambda render_mode=None: prosumer_sharing_v0.env(n_prosumers=3, n_days=10, render_mode=render_mode))
    assert "ProsumerSharing-v0 day" in capsys.readouterr().out


@pytest.mark.parametrize("rule", ["eq22", "eq20"])
def test_gymnasium_check_env(rule):
    env = gym.make("ProsumerSharing-v0", n_days=30, n_prosumers=10, rule=rule)
    check_env(env.unwrapped, skip_render_check=True)
    img = ProsumerSharingGymEnv(n_prosumers=5, n_days=3, render_mode="rgb_array")
    img.reset(seed=0)
    img.step(np.zeros(2, dtype=np.float32))
    assert img.render().shape[2] == 3


def test_gym_make_without_prior_import():
    code = (
        "import gymnasium as gym; e = gym.make('prosumer_gym:ProsumerSharing-v0', n_days=3, n_prosumers=5);"
        "o, i = e.reset(seed=1); print(e.observation_space.contains(o))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# ----------------------------------------------------------------------------- determinism
def _rollout(seed: int, days: int, **kw):
    env = prosumer_sharing_v0.parallel_env(n_days=days, **kw)
    obs, infos = env.reset(seed=seed)
    rng = np.random.default_rng(1234)
    traj = [(obs, infos)]
    while env.agents:
        traj.append(env.step(_random_actions(env, rng)))
    return traj


def test_multistep_determinism_and_seed_dependence():
    t1 = _rollout(7, 60, n_prosumers=20)
    t2 = _rollout(7, 60, n_prosumers=20)
    assert len(t1) == len(t2) == 61
    assert all(same(s1, s2) for s1, s2 in zip(t1, t2))
    t3 = _rollout(8, 3, n_prosumers=20)
    assert t1[0][1]["prosumer_0"]["cost_params"] != t3[0][1]["prosumer_0"]["cost_params"]


def test_reset_without_seed_continues_stream():
    env = prosumer_sharing_v0.parallel_env(**SMALL)
    _, i1 = env.reset(seed=3)
    _, i2 = env.reset()
    other = prosumer_sharing_v0.parallel_env(**SMALL)
    _, i3 = other.reset(seed=3)
    assert same(i1, i3)
    assert not same(i1, i2)  # no seed: the generator continues, i.e. a new community


def test_gym_and_batch_determinism():
    def gym_run(seed):
        env = ProsumerSharingGymEnv(n_days=50, n_prosumers=30)
        obs, _ = env.reset(seed=seed)
        pol = Algorithm1Platform.for_env(env)
        out = [np.append(obs, 0.0)]
        for _ in range(50):
            obs, r, *_ = env.step(pol.act(obs))
            out.append(np.append(obs, r))
        return np.array(out)

    assert np.array_equal(gym_run(4), gym_run(4))
    assert not np.array_equal(gym_run(4), gym_run(5))

    def batch_run(seed):
        b = ProsumerSharingBatch(n_communities=3, n_days=20, n_prosumers_range=(10, 30))
        obs, _ = b.reset(seed=seed)
        outs = [obs]
        for _ in range(25):
            obs, r, tr, info = b.step(b.algorithm2_actions())
            outs += [obs, r.astype(np.float32), info["omega_x"].astype(np.float32)]
        return outs

    assert same(batch_run(1), batch_run(1))
    assert not same(batch_run(1), batch_run(2))


# ----------------------------------------------------------------------------- oracle
def _costs(seed: int, n: int) -> CostParams:
    return paper_costs(np.random.default_rng(seed), n)


def test_best_response_matches_brute_force():
    rng = np.random.default_rng(0)
    costs = _costs(1, 8)
    grid = np.linspace(0, 1, 401)
    gx_, gy_ = np.meshgrid(grid, grid, indexing="ij")
    for mu in [(11.7, 11.65), (5.0, 20.0), (30.0, 2.0), tuple(rng.uniform(8, 15, 2))]:
        x, y = _best_response(costs, *mu)
        for i in range(costs.n):
            ci = costs.take([i])
            vals = ci.cost(gx_, gy_) - mu[0] * gx_ - mu[1] * gy_
            best = vals.min()
            mine = ci.cost(x[i:i + 1], y[i:i + 1])[0] - mu[0] * x[i] - mu[1] * y[i]
            assert mine <= best + 1e-9  # at least as good as the best grid point
            j = np.unravel_index(np.argmin(vals), vals.shape)
            assert abs(grid[j[0]] - x[i]) <= 0.01 and abs(grid[j[1]] - y[i]) <= 0.01


def test_oracle_two_prosumers_brute_force():
    costs = _costs(3, 2)
    cx, cy = 1.7, 1.5  # x2 = cx - x1, y2 = cy - y1 within [0, 1]
    opt = solve_optimum(costs, cx, cy)
    grid = np.linspace(cx - 1, 1, 1201)
    gy = np.linspace(cy - 1, 1, 1201)
    x1, y1 = np.meshgrid(grid, gy, indexing="ij")
    total = costs.take([0]).cost(x1, y1) + costs.take([1]).cost(cx - x1, cy - y1)
    assert opt.cost <= total.min() + 1e-9
    j = np.unravel_index(np.argmin(total), total.shape)
    assert abs(grid[j[0]] - opt.x[0]) < 2e-3 and abs(gy[j[1]] - opt.y[0]) < 2e-3


@pytest.mark.parametrize("scenario", ["paper", "car_sharing", "community_storage"])
def test_oracle_kkt_and_slsqp(scenario):
    cfg = SharingConfig(n_prosumers=12, scenario=scenario)
    com = cfg.sample(np.random.default_rng(5))
    opt = com.optimum
    assert abs(opt.x.sum() - com.contracts[0]) < 1e-9 and abs(opt.y.sum() - com.contracts[1]) < 1e-9
    assert opt.kkt_residual < 1e-8
    # consensus of the derivatives (Eq. 18) for the interior prosumers
    gx, gy = com.costs.grad(opt.x, opt.y)
    free = (opt.x > 1e-9) & (opt.x < 1 - 1e-9)
    assert np.ptp(gx[free]) < 1e-8 and abs(np.median(gx[free]) - opt.mu_x) < 1e-8
    ref = solve_optimum_primal(com.costs, *com.contracts)
    assert opt.cost <= ref.cost + 1e-8
    assert np.max(np.abs(opt.x - ref.x)) < 1e-4 and np.max(np.abs(opt.y - ref.y)) < 1e-4


def test_oracle_with_active_bounds():
    costs = _costs(2, 20)
    opt = solve_optimum(costs, 19.0, 3.0)  # forces many x to 1 and y towards 0
    assert opt.n_at_bounds > 0
    res, _, _ = kkt_residual(costs, opt.x, opt.y, 19.0, 3.0)
    assert res < 1e-7
    assert np.all((opt.x >= 0) & (opt.x <= 1) & (opt.y >= 0) & (opt.y <= 1))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 120), fx=st.floats(0.02, 0.98), fy=st.floats(0.02, 0.98),
       scenario=st.sampled_from(["paper", "car_sharing", "community_storage"]))
def test_oracle_kkt_property(seed, n, fx, fy, scenario):
    """Any community, any feasible contracts (many prosumers at a bound): KKT holds exactly."""
    from prosumer_gym.envs.prosumer_sharing_market import SCENARIOS

    costs = SCENARIOS[scenario](np.random.default_rng(seed), n)
    opt = solve_optimum(costs, fx * n, fy * n)
    assert opt.kkt_residual < 1e-7
    assert abs(opt.x.sum() - fx * n) < 1e-8 and abs(opt.y.sum() - fy * n) < 1e-8
    # no feasible perturbation along the constraints lowers the cost
    rng = np.random.default_rng(seed)
    for _ in range(5):
        i, j = rng.choice(n, 2, replace=False) if n > 1 else (0, 0)
        for d in (1e-4, -1e-4):
            x = opt.x.copy()
            x[i] += d
            x[j] -= d
            if np.all((x >= 0) & (x <= 1)):
                assert costs.cost(x, opt.y).sum() >= opt.cost - 1e-9


def test_algorithm2_fixed_point_is_not_the_optimum():
    """Eq. 22's rest point: x^2 = Omega g'_x(x, y); its derivatives do not agree exactly."""
    costs = _costs(0, 30)
    cx, cy = 90 * 30 / 99, 80 * 30 / 99
    x, y, ox, oy = algorithm2_fixed_point(costs, cx, cy)
    gx, gy = costs.grad(x, y)
    np.testing.assert_allclose(x * x, ox * gx, rtol=1e-9)
    assert abs(x.sum() - cx) < 1e-8
    opt = solve_optimum(costs, cx, cy)
    assert 1e-3 < np.max(np.abs(x - opt.x)) < 0.1


# ----------------------------------------------------------------------------- Algorithms 1-2
def test_algorithm2_probabilities_by_hand():
    c = CostParams(linear=[11.75], quad=[2.0], quartic=[0.0], weight_x=[1.0], weight_y=[1.0], target=[1.74],
                   alpha=[0.5], klass=[1])
    xb, yb = 0.9, 0.8
    gx = 11.75 + 2.0 * (1.7 - 1.74) + (0.9 - 0.87)
    gy = 11.75 + 2.0 * (1.7 - 1.74) + (0.8 - 0.87)
    sx, sy = algorithm2_probabilities(c, np.array([xb]), np.array([yb]), 0.06, 0.05)
    assert np.isclose(sx[0], 0.06 * gx / xb) and np.isclose(sy[0], 0.05 * gy / yb)
    sx, _ = algorithm2_probabilities(c, np.array([xb]), np.array([yb]), 0.06, 0.05, rule="eq20")
    assert np.isclose(sx[0], 0.06 * xb / gx)
    sx, sy = algorithm2_probabilities(c, np.array([0.01]), np.array([yb]), 1.0, -1.0)  # clip [0, 1]
    assert sx[0] == 1.0 and sy[0] == 0.0
    pol = Algorithm2Prosumer(c.prosumer(0), seed=0)
    assert np.allclose(pol.probabilities(np.array([0.06, 0.05, xb, yb])), (0.06 * gx / xb, 0.05 * gy / yb))
    omega = platform_update(np.array([0.06, 0.06]), np.array([95.0, 70.0]), np.array([90.0, 80.0]), 1e-4)
    np.testing.assert_allclose(omega, [0.06 - 5e-4, 0.06 + 1e-3])


def test_env_dynamics_follow_eqs_3_and_23_24():
    env = prosumer_sharing_v0.parallel_env(n_prosumers=10, n_days=30, tau=2e-3, tracking_weight=0.5)
    obs, infos = env.reset(seed=0)
    costs = CostParams.from_prosumers([infos[a]["cost_params"] for a in env.agents])
    rng = np.random.default_rng(0)
    omega = np.array([0.06, 0.06])
    prev = np.ones((10, 2))  # Algorithm 2, line 3: x(0) = y(0) = 1
    counts = np.ones((10, 2))
    g_prev = costs.cost(np.ones(10), np.ones(10))
    cx, cy = 90 * 10 / 99, 80 * 10 / 99
    total_private = np.zeros(10)
    for k in range(30):
        acts = _random_actions(env, rng)
        a = np.stack([acts[ag] for ag in env.possible_agents]).astype(float)
        obs, rew, _, trunc, infos = env.step(acts)
        omega = omega - 2e-3 * (prev.sum(axis=0) - [cx, cy])  # Eqs. 23-24 use day k's aggregates
        counts += a
        bars = counts / (k + 2)  # Eq. 3
        prev = a
        g = costs.cost(bars[:, 0], bars[:, 1])
        com = infos["prosumer_0"]["community"]
        shared = -0.5 * (abs(a[:, 0].sum() - cx) + abs(a[:, 1].sum() - cy)) / 10
        np.testing.assert_allclose([rew[ag] for ag in env.possible_agents], -(g - g_prev) + shared, atol=1e-12)
        total_private += -(g - g_prev)
        g_prev = g
        np.testing.assert_allclose(obs["prosumer_3"][:2], omega, rtol=1e-6)
        np.testing.assert_allclose(obs["prosumer_3"][2:], bars[3], rtol=1e-6)
        assert np.isclose(com["omega_x"], omega[0]) and np.isclose(com["error_x"], a[:, 0].sum() - cx)
    assert all(trunc.values()) and env.agents == []
    # the private part of an episode telescopes to g_i(start) - g_i(end)
    np.testing.assert_allclose(total_private, costs.cost(np.ones(10), np.ones(10)) - g_prev)


def test_algorithm2_team_matches_core_probabilities():
    env = prosumer_sharing_v0.parallel_env(n_days=40)
    obs, infos = env.reset(seed=2)
    team = Algorithm2Team.from_infos(infos, seed=0)
    for _ in range(40):
        sx, sy = team.probabilities(obs)
        cx, cy = env.core.probabilities()
        np.testing.assert_allclose(sx, cx[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sy, cy[0], rtol=1e-5, atol=1e-6)
        obs, *_ = env.step(team.act(obs))


def test_algorithm1_platform_reproduces_algorithm1_exactly():
    """Gym view + Algorithm1Platform == the core running Algorithm 1 itself (same draws)."""
    env = ProsumerSharingGymEnv(n_days=150)
    obs, _ = env.reset(seed=11)
    pol = Algorithm1Platform.for_env(env)
    ref = env.config.make_core(1)
    ref.load(0, env.community)
    draw = np.random.default_rng(99)
    env._draw_rng = np.random.default_rng(99)
    for _ in range(150):
        obs, r, term, trunc, info = env.step(pol.act(obs))
        x, y = ref.draw_algorithm2(draw)
        ref.step(x, y)
        assert info["sum_x"] == ref.totals()[0, 0] and info["sum_y"] == ref.totals()[0, 1]
        np.testing.assert_allclose(env.core.omega, ref.omega, rtol=1e-7)  # float32 observation
    assert trunc and not term


# ----------------------------------------------------------------------------- reproduction (small)
def test_qualitative_reproduction_eq22():
    """Figs. 4-9 in miniature: 4 communities of 99, 400 days of Algorithms 1-2."""
    b = ProsumerSharingBatch(n_communities=4, n_days=400, autoreset=False)
    b.reset(seed=0)
    hist = []
    for _ in range(400):
        _, _, _, info = b.step(b.algorithm2_actions())
        hist.append(info)
    early, late = hist[2], hist[-1]
    err_x = np.array([h["error_x"] for h in hist[-200:]])
    omega = np.array([h["omega_x"] for h in hist[-100:]])
    assert np.all(late["rel_distance_median"] < 0.12)  # averages near the optimum (Figs. 4-5)
    assert np.all(late["rel_distance_median"] < early["rel_distance_median"])
    # |x_bar + y_bar - T_i| (Fig. 6); stalled prosumers (below) shift their load onto the others
    assert np.all(late["utilisation_gap_median"] < 0.15)
    assert np.all(late["consensus_spread_x"] < 0.1)  # derivative ratios within 10% of 1 (Fig. 7)
    assert np.all(np.abs(err_x.mean(axis=0)) < 1.5)  # aggregates track C_x (Figs. 8-9)
    assert np.all(np.sqrt((err_x ** 2).mean(axis=0)) < 5.0)
    assert np.all(np.abs(late["sum_x_bar"] - 90) < 2.0) and np.all(np.abs(late["sum_y_bar"] - 80) < 2.0)
    assert np.all(omega.std(axis=0) < 0.003) and np.all(omega.mean(axis=0) > 0)  # Omega converges
    assert np.all(late["n_stalled"] < 15)


def test_qualitative_reproduction_eq20_reaches_the_optimum_slowly():
    b = ProsumerSharingBatch(n_communities=3, n_days=600, autoreset=False, rule="eq20", n_prosumers=60)
    b.reset(seed=1)
    d = []
    for _ in range(600):
        _, _, _, info = b.step(b.algorithm2_actions())
        d.append(info["rel_distance_median"])
    d = np.array(d)
    assert np.all(d[-1] < d[49])  # still converging at day 600 (no bias floor like Eq. 22)
    assert np.all(np.abs(info["sum_x_bar"] - 60 * 90 / 99) < 2.0)


# ----------------------------------------------------------------------------- variable N
def test_number_of_prosumers_changes_between_episodes():
    env = prosumer_sharing_v0.parallel_env(n_prosumers=50, n_prosumers_range=(10, 60), n_days=5)
    assert len(env.possible_agents) == 60
    sizes = set()
    for seed in range(6):
        obs, infos = env.reset(seed=seed)
        sizes.add(len(env.agents))
        assert set(obs) == set(env.agents) and env.agents == env.possible_agents[: len(env.agents)]
        com = infos[env.agents[0]]["community"]
        assert np.isclose(com["contract_x"], 90 / 99 * 50 * len(env.agents) / 50)
        env.step(_random_actions(env, np.random.default_rng(0)))
    assert len(sizes) > 1
    env.reset(seed=0, options={"n_prosumers": 12})
    assert len(env.agents) == 12 and env.state().shape == env.state_space.shape
    with pytest.raises(ValueError, match="n_prosumers"):
        env.reset(options={"n_prosumers": 61})
    g = ProsumerSharingGymEnv(n_prosumers=50, n_prosumers_range=(10, 60), n_days=5)
    obs, _ = g.reset(seed=0, options={"n_prosumers": 33})
    assert obs[6] == 33


def test_batch_masks_and_matches_the_parallel_env():
    costs = _costs(4, 15)
    env = prosumer_sharing_v0.parallel_env(costs=costs, n_days=25, tracking_weight=0.3)
    obs, _ = env.reset(seed=0)
    b = ProsumerSharingBatch(n_communities=2, costs=costs, n_days=25, tracking_weight=0.3)
    bobs, _ = b.reset(seed=0)
    rng = np.random.default_rng(3)
    for _ in range(25):
        a = rng.integers(0, 2, size=(2, 15, 2))
        obs, rew, *_ = env.step({ag: a[0, i] for i, ag in enumerate(env.possible_agents)})
        bobs, brew, trunc, info = b.step(a)
        last = info["final_obs"] if trunc.any() else bobs
        np.testing.assert_array_equal(last[0], np.stack([obs[ag] for ag in env.possible_agents]))
        np.testing.assert_allclose(brew[0], [rew[ag] for ag in env.possible_agents], rtol=0, atol=1e-12)
    assert trunc.all() and "final_obs" in info
    v = ProsumerSharingBatch(n_communities=3, n_prosumers=40, n_prosumers_range=(5, 40), n_days=10)
    obs, info = v.reset(seed=1)
    acts = np.ones((3, 40, 2), dtype=np.int8)
    obs, rew, _, info = v.step(acts)
    m = info["mask"]
    assert np.all(rew[~m] == 0) and np.all(obs[~m] == 0)
    assert np.array_equal(info["sum_x"], m.sum(axis=1))  # inactive slots' actions are ignored


def test_sb3_vecenv():
    v = ProsumerSharingVecEnv(num_envs=3, n_days=5, n_prosumers=20)
    v.seed(0)
    o = v.reset()
    assert o.shape == (3, 8) and v.observation_space.contains(o[0])
    pol = Algorithm1Platform()
    for t in range(5):
        o, r, d, infos = v.step(np.stack([pol.act(x) for x in o]))
    assert d.all() and all("terminal_observation" in i for i in infos)
    assert np.all(o[:, 7] == 0)  # auto-reset: day 0 of new communities
    v2 = ProsumerSharingVecEnv(num_envs=3, n_days=5, n_prosumers=20)
    v2.seed(0)
    v3 = ProsumerSharingVecEnv(num_envs=3, n_days=5, n_prosumers=20)
    v3.seed(0)
    o2, o3 = v2.reset(), v3.reset()
    assert np.array_equal(o2, o3)
    a = np.zeros((3, 2), dtype=np.float32)
    s2, s3 = v2.step(a), v3.step(a)
    assert np.array_equal(s2[0], s3[0]) and np.array_equal(s2[1], s3[1])
    with pytest.raises(ValueError, match="actions"):
        v2.step(np.full((3, 2), 2.0))


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(scenario_kwargs={"a_values": (-2, 10)}), "non-convex"),
        (dict(scenario_kwargs={"delta": 2.0}), "decreases in x"),
        (dict(scenario="car_sharing", scenario_kwargs={"penalty": (-1.0, 2.0)}), "non-convex"),
        (dict(scenario_kwargs={"bogus": 1}), "bogus"),
        (dict(scenario="nope"), "scenario must be one of"),
        (dict(contract_x=120.0), "contract_x"),
        (dict(contract_y=0.0), "contract_y"),
        (dict(tau=0.0), "tau"),
        (dict(tau=(1e-4, np.nan)), "tau"),
        (dict(omega0=-0.06), "omega0"),
        (dict(rule="eq99"), "rule"),
        (dict(n_prosumers=1), "n_prosumers"),
        (dict(n_prosumers_range=(30, 10)), "n_prosumers_range"),
        (dict(n_days=0), "n_days"),
        (dict(n_days=10, max_cycles=20), "disagree"),
        (dict(tracking_weight=-1.0), "tracking_weight"),
        (dict(render_mode="video"), "render_mode"),
        (dict(monotone_band=-0.1), "monotone_band"),
    ],
)
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prosumer_sharing_v0.parallel_env(**kwargs)


def test_bad_costs_rejected_with_reason():
    base = dict(linear=[11.0, 11.0], quad=[1.0, 1.0], quartic=[0.0, 0.0], weight_x=[1.0, 1.0],
                weight_y=[1.0, 1.0], target=[1.7, 1.7], alpha=[0.5, 0.5], klass=[1, 1])
    check_costs(CostParams(**base))
    cases = [
        (dict(quad=[1.0, -0.5]), "prosumer 1 has quad = -0.5 < 0, which makes its cost g_i non-convex"),
        (dict(quad=[0.0, 0.0], weight_y=[0.0, 0.0]), "not strictly convex"),
        (dict(linear=[11.0, 0.2]), "prosumer 1's cost decreases in x"),
        (dict(target=[1.7, 2.5]), "target"),
        (dict(alpha=[0.5, 1.5]), "alpha"),
        (dict(linear=[np.nan, 1.0]), "finite"),
    ]
    for change, match in cases:
        with pytest.raises(ValueError, match=match.replace("(", r"\(")):
            check_costs(CostParams(**{**base, **change}))
    # the paper's class-2 cost decreases far below T_2: rejected on the whole unit box
    with pytest.raises(ValueError, match="decreases"):
        check_costs(paper_costs(np.random.default_rng(0), 99), band=None)
    with pytest.raises(ValueError, match="non-convex"):
        prosumer_sharing_v0.parallel_env(costs=CostParams(**{**base, "quartic": [0.0, -1.0]}))


def test_bad_actions():
    env = prosumer_sharing_v0.parallel_env(n_prosumers=3, n_days=2)
    env.reset(seed=0)
    good = {a: np.array([1, 0]) for a in env.agents}
    for bad, match in [
        ({**good, "prosumer_0": np.array([2, 0])}, r"prosumer_0.*must be 0 or 1"),
        ({**good, "prosumer_1": np.array([0.5, 0.0])}, "must be 0 or 1"),
        ({**good, "prosumer_1": np.array([np.nan, 0.0])}, "0/1"),
        ({**good, "prosumer_2": np.array([1, 0, 1])}, "shape"),
        ({**good, "prosumer_2": "yes"}, "sequence"),
        ({a: good[a] for a in ["prosumer_0", "prosumer_1"]}, "missing"),
        ({**good, "prosumer_9": np.array([0, 0])}, "unknown"),
        ([1, 0], "dict"),
    ]:
        with pytest.raises(ValueError, match=match):
            env.step(bad)
    env.step({a: [True, False] for a in env.agents})  # bools, lists and integral floats are fine
    env.step({a: np.array([1.0, 0.0]) for a in env.agents})
    with pytest.raises(RuntimeError, match="finished"):
        env.step(good)
    g = ProsumerSharingGymEnv(n_prosumers=4, n_days=3)
    g.reset(seed=0)
    for bad in (np.array([1.5, 0.0]), np.array([np.nan, 0.0]), np.zeros(3)):
        with pytest.raises(ValueError, match="action"):
            g.step(bad)
    with pytest.raises(ValueError, match="unknown keywords"):
        ProsumerSharingGymEnv(foo=1)
    with pytest.raises(ValueError, match="action_scale"):
        ProsumerSharingGymEnv(action_scale=0.0)
    b = ProsumerSharingBatch(n_communities=2, n_prosumers=4)
    b.reset(seed=0)
    with pytest.raises(ValueError, match="actions"):
        b.step(np.zeros((2, 4, 3)))


def test_multibinary_helpers():
    assert check_multibinary([1, 0], 2, "a").tolist() == [1, 0]
    assert check_binary_array(np.ones((2, 3), bool), (2, 3), "b").dtype == np.int8
    for bad in ([1, 2], [0.3, 1], np.array([1, 0, 1]), "ab", None):
        with pytest.raises(ValueError):
            check_multibinary(bad, 2, "a")
