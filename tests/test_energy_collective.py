"""EnergyCollective-v0: API battery, determinism, ADMM vs the QP oracle, allocation rules,
BAU, the P2P market (C+I vs oracle, reciprocity, distance effect) and bad input."""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test
from scipy.optimize import minimize

import prosumer_gym  # noqa: F401  (registers the ids)
from prosumer_gym.agents.energy_collective import ADMMBestResponse, best_response_actions
from prosumer_gym.core.qp import QPInfeasibleError, solve_qp
from prosumer_gym.envs import energy_collective_market as mk
from prosumer_gym.envs import energy_collective_v0
from .helpers import same

SMALL = dict(n_prosumers=3, n_flexible=3, n_inflexible=2, n_chp=2, n_peak=1)
MEDIUM = dict(n_prosumers=10, n_flexible=12, n_inflexible=6, n_chp=1, n_peak=1)


def _day_community(day: int = 120, seed: int = 0, **kw) -> mk.Community:
    w, imp, exp_ = mk.retail_prices(2019, 0.10, 0.0)
    pop = mk.sample_population(np.random.default_rng(seed), day, 1, **kw)
    return pop.community(day, w, imp, exp_)


# ----------------------------------------------------------------------------- API battery
def test_parallel_api():
    parallel_api_test(energy_collective_v0.parallel_env(**SMALL, n_steps=30), num_cycles=40)


def test_parallel_api_p2p():
    parallel_api_test(energy_collective_v0.parallel_env(**SMALL, market="p2p", n_steps=3), num_cycles=4)


def test_parallel_seed():
    parallel_seed_test(functools.partial(energy_collective_v0.parallel_env, **SMALL, n_steps=30), num_cycles=30)


def test_aec_api():
    api_test(energy_collective_v0.env(**SMALL, n_steps=10), num_cycles=12)


def test_max_cycles_default_size():
    max_cycles_test(energy_collective_v0)  # default community: 315 players


def test_render():
    render_test(lambda render_mode=None: energy_collective_v0.env(**SMALL, n_steps=3, render_mode=render_mode))


@pytest.mark.parametrize("centralized", [False, True])
def test_gymnasium_check_env(centralized):
    env = gym.make("EnergyCollective-v0", centralized=centralized, **SMALL)
    check_env(env.unwrapped, skip_render_check=True)


def test_gym_make_without_prior_import():
    code = (
        "import gymnasium as gym; e = gym.make('prosumer_gym:EnergyCollective-v0', n_prosumers=2, n_flexible=1,"
        " n_inflexible=1, n_chp=1, n_peak=0); o, i = e.reset(seed=1); print(e.observation_space.contains(o))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# ----------------------------------------------------------------------------- determinism
def _rollout(seed: int, steps: int = 30, **kw):
    env = energy_collective_v0.parallel_env(**{**SMALL, **kw}, n_steps=steps)
    obs, infos = env.reset(seed=seed)
    rng = np.random.default_rng(1234)
    traj = [(obs, infos)]
    while env.agents:
        acts = {a: rng.uniform(0, 1, size=1).astype(np.float32) for a in env.agents}
        traj.append(env.step(acts))
    return traj




def test_multistep_determinism_across_days():
    t1, t2 = _rollout(7, steps=30), _rollout(7, steps=30)  # 30 slots: crosses into a second day
    assert len(t1) == 31
    assert all(same(s1, s2) for s1, s2 in zip(t1, t2))
    t3 = _rollout(8, steps=2)
    assert not same(t1[1][1], t3[1][1])


def test_p2p_determinism():
    t1, t2 = _rollout(3, steps=2, market="p2p", distance_preference=0.001), \
        _rollout(3, steps=2, market="p2p", distance_preference=0.001)
    assert all(same(s1, s2) for s1, s2 in zip(t1, t2))


def test_reset_without_seed_continues_stream_and_day_option():
    env = energy_collective_v0.parallel_env(**SMALL)
    env.reset(seed=3)
    d1, load1 = env.start_day, env.population.load_kwh.copy()
    env.reset()
    assert env.start_day != d1 or not np.array_equal(load1, env.population.load_kwh)
    env.reset(seed=3, options={"day": 42})
    assert env.start_day == 42 and env.community.n_slots == 24


# ----------------------------------------------------------------------------- QP oracle and ADMM
def test_solve_qp_matches_scipy_and_kkt():
    rng = np.random.default_rng(0)
    for trial in range(12):
        n, m = int(rng.integers(2, 9)), int(rng.integers(0, 3))
        M = rng.normal(size=(n, n))
        H = M @ M.T if trial % 2 else rng.uniform(0, 2, n)  # dense and diagonal paths
        Hm = H if np.ndim(H) == 2 else np.diag(H)
        c = rng.normal(size=n)
        A = rng.normal(size=(m, n))
        b = A @ rng.uniform(-0.5, 0.5, n)
        sol = solve_qp(H, c, A, b, -np.ones(n), np.ones(n))
        cons = [{"type": "eq", "fun": lambda x, A=A, b=b: A @ x - b}] if m else []
        ref = minimize(lambda x: 0.5 * x @ Hm @ x + c @ x, np.zeros(n), jac=lambda x: Hm @ x + c,
                       bounds=[(-1, 1)] * n, constraints=cons, method="SLSQP", options={"ftol": 1e-12})
        assert sol.converged
        assert sol.objective == pytest.approx(ref.fun, abs=1e-7)
        # KKT: stationarity with the returned multipliers
        np.testing.assert_allclose(Hm @ sol.x + c - A.T @ sol.y - sol.z_lb + sol.z_ub, 0.0, atol=1e-7)


def test_solve_qp_infeasible_raises():
    with pytest.raises(QPInfeasibleError, match="exceeds"):
        solve_qp([1.0, 1.0], [0.0, 0.0], lb=[0.0, 2.0], ub=[1.0, 1.0])
    with pytest.raises(QPInfeasibleError, match="infeasible"):
        solve_qp([1.0, 1.0], [0.0, 0.0], [[1.0, 1.0]], [5.0], lb=[0.0, 0.0], ub=[1.0, 1.0])


@pytest.mark.parametrize("g", mk.G_KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_admm_converges_to_oracle_random_communities(g, seed):
    rng = np.random.default_rng(seed)
    cap = np.inf if seed % 2 else 40.0
    comm = mk.random_community(rng, int(rng.integers(2, 80)), n_slots=4, g_kind=g, autonomy_weight=0.05, capacity=cap)
    admm = mk.solve_community_admm(comm)
    qp = mk.solve_community_qp(comm)
    assert admm.converged.all() and qp.converged.all()
    np.testing.assert_allclose(admm.objective, qp.objective, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(admm.p, qp.p, atol=2e-3)
    np.testing.assert_allclose(admm.price, qp.price, atol=2e-5)
    # the dispatch is balanced and within bounds
    np.testing.assert_allclose(admm.p.sum(axis=1) + admm.q, 0.0, atol=1e-4)
    assert np.all(admm.p >= comm.lo - 1e-12) and np.all(admm.p <= comm.hi + 1e-12)


def test_admm_matches_oracle_on_real_day_and_uniform_penalty():
    comm = _day_community(**MEDIUM)
    qp = mk.solve_community_qp(comm)
    for penalty, rho in (("curvature", 1.0), ("uniform", 0.05)):
        admm = mk.solve_community_admm(comm, penalty=penalty, rho=rho)
        assert admm.converged.all(), penalty
        np.testing.assert_allclose(admm.price, qp.price, atol=2e-5)
        np.testing.assert_allclose(admm.objective, qp.objective, rtol=1e-6)
    # the community price lies between the export and the import price (market-driven g)
    assert np.all(qp.price <= comm.import_price + 1e-9) and np.all(qp.price >= comm.export_price - 1e-9)


def test_autonomy_seeking_reduces_grid_exchange():
    comm = _day_community(**MEDIUM)
    base = mk.solve_community_qp(comm)
    auto = mk.solve_community_qp(replace(comm, g_kind="autonomy_l1", autonomy_weight=0.2))
    assert np.abs(auto.q).sum() < np.abs(base.q).sum() - 1.0  # kWh over the day


def test_bau_closed_form_matches_brute_force():
    comm = _day_community(**SMALL).slots([12])
    p, cost = mk.bau_dispatch(comm)
    grid = np.linspace(comm.lo[0], comm.hi[0], 4001)  # (4001, N)
    f = 0.5 * comm.a[0] * (grid - comm.r[0]) ** 2 + comm.m[0] * (grid - comm.r[0])
    tot = f + comm.import_price[0] * np.maximum(-grid, 0) - comm.export_price[0] * np.maximum(grid, 0)
    best = tot.min(axis=0)
    np.testing.assert_allclose(cost[0], best, atol=1e-5)
    assert np.all(cost[0] <= best + 1e-9)


# ----------------------------------------------------------------------------- allocation, BAU, slides' ordering
def test_slides_cost_ordering_and_allocation_moves_individual_costs():
    comm = _day_community(**MEDIUM)
    d = mk.solve_community_admm(comm)
    _, bau = mk.bau_dispatch(comm)
    totals, per_player = {}, {}
    for rule in mk.ALLOCATIONS:
        st = mk.settle_community(comm, rule, d.p, d.price)
        totals[rule] = float(st["total"].sum())
        per_player[rule] = st["total"].sum(axis=0)
        if rule != "none":  # equal / proportional split the grid bill exactly
            np.testing.assert_allclose(st["allocated"].sum(axis=1), st["grid_bill"], atol=1e-9)
        else:  # the internal market collects price * q, the bill at the optimum
            np.testing.assert_allclose(st["manager_balance"], 0.0, atol=1e-3)
    bau_total = float(bau.sum())
    # slides: BAU 55.38 > community 47.12 / 45.27 / 46.81: the community is cheaper under every rule
    assert all(bau_total > t * 1.05 for t in totals.values())
    # budget-balanced rules leave the community total unchanged ...
    assert totals["equal"] == pytest.approx(totals["proportional"], rel=1e-9)
    assert totals["none"] == pytest.approx(totals["equal"], rel=1e-4)
    # ... but move individual costs
    assert np.abs(per_player["equal"] - per_player["none"]).max() > 0.1
    assert np.abs(per_player["proportional"] - per_player["none"]).max() > 0.1
    assert np.abs(per_player["proportional"] - per_player["equal"]).max() > 0.1


def test_community_never_costs_more_than_bau_on_random_slots():
    for seed in range(5):
        comm = mk.random_community(np.random.default_rng(seed), 30, n_slots=6)
        qp = mk.solve_community_qp(comm)
        _, bau = mk.bau_dispatch(comm)
        community_cost = comm.player_cost(qp.p).sum(axis=1) + mk.grid_bill(comm, qp.q)
        assert np.all(community_cost <= bau.sum(axis=1) + 1e-6)


# ----------------------------------------------------------------------------- env semantics
def test_best_response_policy_reproduces_admm_dispatch():
    env = energy_collective_v0.parallel_env(**MEDIUM, day=120)
    obs, _ = env.reset(seed=0)
    planned = planned_cost = actual = bau = 0.0
    while env.agents:
        obs, rewards, _, _, infos = env.step(best_response_actions(obs))
        m = infos["prosumer_0"]["market"]
        assert m["converged"]
        for a, inf in infos.items():
            assert inf["p_kwh"] == pytest.approx(inf["planned_kwh"], abs=1e-4)
            assert rewards[a] == pytest.approx(-inf["cost_eur"])
        actual += m["community_cost_eur"]
        planned_cost += m["planned_cost_eur"]
        bau += m["bau_cost_eur"]
        planned += 1
    assert actual == pytest.approx(planned_cost, rel=1e-6)
    assert actual < bau


def test_rewards_follow_allocation_rule_and_incentives():
    def one_step(allocation, deviate=None):
        env = energy_collective_v0.parallel_env(**MEDIUM, day=120, allocation=allocation)
        obs, _ = env.reset(seed=1)
        for _ in range(12):  # noon
            obs, *_ = env.step(best_response_actions(obs))
        acts = best_response_actions(obs)
        if deviate is not None:
            acts["flexible_0"] = np.array([deviate], dtype=np.float32)
        _, rewards, _, _, infos = env.step(acts)
        return rewards, infos

    r_none, i_none = one_step("none")
    r_eq, i_eq = one_step("equal")
    market = i_none["flexible_0"]["market"]
    n = len(r_none)
    # equal: everyone pays the same grid share; none: the community price times the withdrawal
    shares = np.array([i["grid_share_eur"] for i in i_eq.values()])
    np.testing.assert_allclose(shares, shares[0])
    assert shares.sum() == pytest.approx(i_eq["flexible_0"]["market"]["community_cost_eur"]
                                         - sum(i["player_cost_eur"] for i in i_eq.values()), abs=1e-9)
    f0 = i_none["flexible_0"]
    assert f0["grid_share_eur"] == pytest.approx(-market["price"] * f0["p_kwh"])
    assert n == 30
    # none: the best response is individually optimal (price-taker), any deviation costs more
    for dev in (0.0, 1.0):
        r_dev, _ = one_step("none", deviate=dev)
        assert r_dev["flexible_0"] <= r_none["flexible_0"] + 1e-9
    # equal: free riding pays -- consuming more (action 0 = p_min) lowers the player's own cost
    r_dev, _ = one_step("equal", deviate=0.0)
    assert r_dev["flexible_0"] > r_eq["flexible_0"]


def test_slot_minutes_and_observation_contents():
    env = energy_collective_v0.parallel_env(**SMALL, slot_minutes=30, day=100)
    obs, _ = env.reset(seed=0)
    assert env.n_steps == 48 and env.community.n_slots == 48
    hourly = energy_collective_v0.parallel_env(**SMALL, day=100)
    hourly.reset(seed=0)
    # a 30-min slot carries half the hour's energy, the same prices
    np.testing.assert_allclose(env.community.lo[0], hourly.community.lo[0] / 2)
    assert env.community.import_price[1] == hourly.community.import_price[0]
    space = env.observation_space("prosumer_0")
    while env.agents:
        for o in obs.values():
            assert space.contains(o)
        obs, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert env.state_space.contains(env.state())


def test_inflexible_action_has_no_effect():
    env = energy_collective_v0.parallel_env(**SMALL, day=10)
    obs, _ = env.reset(seed=0)
    acts = best_response_actions(obs)
    _, _, _, _, i1 = env.step({**acts, "inflexible_0": np.array([0.0], np.float32)})
    env.reset(seed=0)
    _, _, _, _, i2 = env.step({**acts, "inflexible_0": np.array([1.0], np.float32)})
    assert i1["inflexible_0"]["p_kwh"] == i2["inflexible_0"]["p_kwh"] < 0


def test_gym_view_others_and_centralized_optimum():
    for others in ("best_response", "reference", "random", lambda agent, obs: np.array([0.5], np.float32)):
        env = gym.make("EnergyCollective-v0", others=others, n_steps=3, **SMALL)
        env.reset(seed=0)
        done = False
        while not done:
            _, _, term, trunc, info = env.step(env.action_space.sample())
            done = term or trunc
        assert "market" in info
    cen = gym.make("EnergyCollective-v0", centralized=True, day=120, **SMALL).unwrapped
    obs, _ = cen.reset(seed=0)
    pol = ADMMBestResponse()
    a_opt = pol.act(obs.reshape(-1, 10))[:, 0]
    _, r_opt, _, _, info = cen.step(a_opt)
    assert r_opt == pytest.approx(-info["market"]["planned_cost_eur"], rel=1e-4)  # float32 actions
    cen.reset(seed=0)
    _, r_mid, *_ = cen.step(np.full(cen.action_space.shape, 0.5, np.float32))
    assert r_mid < r_opt  # the mechanism's dispatch minimises the community cost


# ----------------------------------------------------------------------------- P2P market
def _villages(pref_eur_mwh_km: float):
    inst, village = mk.two_villages(pref_eur_mwh_km / 1000.0, distance_km=10.0)
    return replace(inst, trade_curvature=0.01), village


def _inter_village(trades, village):
    return float(np.maximum(trades[np.ix_(village == 0, village == 1)], 0).sum()
                 + np.maximum(trades[np.ix_(village == 1, village == 0)], 0).sum())


def test_p2p_ci_matches_oracle_and_reciprocity():
    inst, _ = _villages(0.5)
    ci = mk.solve_p2p_ci(inst)
    qp = mk.solve_p2p_qp(inst)
    assert ci.converged
    np.testing.assert_allclose(ci.trades, -ci.trades.T, atol=1e-3)  # P_nm = -P_mn
    P = inst.is_producer
    assert np.all(ci.trades[P] >= -1e-12) and np.all(ci.trades[~P] <= 1e-12)  # sign constraints
    np.testing.assert_allclose(ci.net, qp.net, atol=1e-3)
    assert ci.objective == pytest.approx(qp.objective, abs=1e-4)
    # consensus on prices: lambda_nm = lambda_mn on every traded pair
    traded = np.abs(ci.trades) > 1e-3
    np.testing.assert_allclose(ci.prices[traded], ci.prices.T[traded], atol=1e-6)


def test_p2p_slides_innovation_converges_on_small_instance():
    inst, _ = _villages(0.0)
    keep = [0, 3, 4, 8, 14, 16, 17]  # 2 prosumers, 2 consumers, CHP, grid import/export
    small = mk.MBEDInstance(
        names=tuple(inst.names[i] for i in keep), a=inst.a[keep], b=inst.b[keep], lo=inst.lo[keep],
        hi=inst.hi[keep], is_producer=inst.is_producer[keep], gamma=inst.gamma[np.ix_(keep, keep)],
        pref=inst.pref[keep], const=inst.const[keep], trade_curvature=0.2,
    )
    slides = mk.solve_p2p_ci(small, innovation="slides", max_iter=20_000)
    qp = mk.solve_p2p_qp(small)
    assert slides.converged
    np.testing.assert_allclose(slides.net, qp.net, atol=2e-3)


def test_distance_preference_reduces_inter_village_exchange():
    inter = []
    for c in (0.0, 0.5, 1.5):  # EUR/MWh per km, the slides' c_n^g = 0, 1/2, 3/2
        inst, village = _villages(c)
        res = mk.solve_p2p_ci(inst)
        assert res.converged
        inter.append(_inter_village(res.trades, village))
    assert inter[0] > inter[1] > inter[2]
    assert inter[2] < 0.5 * inter[0]


def test_p2p_env_settlement_consistent():
    env = energy_collective_v0.parallel_env(**SMALL, market="p2p", distance_preference=0.001, n_steps=2, day=150)
    obs, _ = env.reset(seed=0)
    _, rewards, _, _, infos = env.step(best_response_actions(obs))
    m = infos["prosumer_0"]["market"]
    assert m["converged"] and m["reciprocity"] < 1e-3
    for a, inf in infos.items():
        assert inf["p_kwh"] == pytest.approx(inf["planned_kwh"], abs=1e-4)
        assert inf["imbalance_eur"] == pytest.approx(0.0, abs=1e-4)
        assert rewards[a] == pytest.approx(-inf["cost_eur"])
    costs = sum(i["player_cost_eur"] + i["trade_payment_eur"] + i["imbalance_eur"] for i in infos.values())
    assert costs == pytest.approx(m["community_cost_eur"], abs=1e-3)  # peer payments cancel


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, 1.5, -0.1, np.array([0.2, 0.3]), "up", None])
def test_bad_actions_raise(bad):
    env = energy_collective_v0.parallel_env(**SMALL, n_steps=3)
    env.reset(seed=0)
    actions = {a: np.array([0.5], np.float32) for a in env.agents}
    actions["chp_1"] = bad
    with pytest.raises(ValueError, match="chp_1"):
        env.step(actions)


def test_unknown_or_missing_agent_raise():
    env = energy_collective_v0.parallel_env(**SMALL, n_steps=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown"):
        env.step({**{a: np.array([0.5]) for a in env.agents}, "grid": np.array([0.5])})
    with pytest.raises(ValueError, match="missing"):
        env.step({"chp_0": np.array([0.5])})


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(market="pool"), "market"),
        (dict(allocation="shapley"), "allocation"),
        (dict(market="p2p", allocation="equal"), "allocation"),
        (dict(g="l3"), "g must"),
        (dict(slot_minutes=45), "slot_minutes"),
        (dict(flexibility=1.2), "flexibility"),
        (dict(chp_min_kw=12.0), "infeasible generator bounds"),
        (dict(peak_capacity_kw=-1.0), "peak_capacity_kw"),
        (dict(n_chp=-1), "n_chp"),
        (dict(n_prosumers=0, n_flexible=0, n_inflexible=0, n_chp=0, n_peak=0), "at least one player"),
        (dict(price_year=2030), "price_year"),
        (dict(day=400), "day"),
        (dict(split="validation"), "split"),
        (dict(render_mode="ansi"), "render_mode"),
        (dict(import_markup=-0.1), "import_markup"),
        (dict(value_range=(1.2, 0.8)), "value_range"),
        (dict(admm_rho=0.0), "admm_rho"),
        (dict(n_steps=0), "n_steps"),
        (dict(n_steps=10, max_cycles=12), "disagree"),
        (dict(p2p_innovation="newton"), "p2p_innovation"),
        (dict(distance_preference=-1.0), "distance_preference"),
    ],
)
def test_bad_configuration_raises(kwargs, field):
    with pytest.raises(ValueError, match=field):
        energy_collective_v0.parallel_env(**{**SMALL, **kwargs})


def test_infeasible_community_raises_on_reset():
    env = energy_collective_v0.parallel_env(**{**SMALL, "n_chp": 0, "n_peak": 0}, import_capacity_kw=0.0, day=0)
    with pytest.raises(ValueError, match="infeasible community"):
        env.reset(seed=0)


def test_infeasible_player_bounds_raise():
    comm = _day_community(**SMALL).slots([0])
    lo = comm.lo.copy()
    lo[0, 2] = comm.hi[0, 2] + 1.0
    with pytest.raises(ValueError, match=f"infeasible player bounds: player '{comm.names[2]}'"):
        replace(comm, lo=lo)
    with pytest.raises(ValueError, match="import_price must be >= export_price"):
        replace(comm, export_price=comm.import_price + 0.01)
    inst, _ = _villages(0.0)
    with pytest.raises(ValueError, match="infeasible player bounds: agent"):
        replace(inst, lo=np.where(np.arange(len(inst.names)) == 0, 100.0, inst.lo))


def test_gym_bad_action_and_ego_raise():
    env = gym.make("EnergyCollective-v0", n_steps=3, **SMALL).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([2.0], np.float32))
    with pytest.raises(ValueError, match="ego"):
        gym.make("EnergyCollective-v0", ego="nobody", **SMALL)
    with pytest.raises(ValueError, match="others"):
        gym.make("EnergyCollective-v0", others="greedy", **SMALL)
