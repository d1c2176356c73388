"""P2PTrading-v0: PettingZoo/Gymnasium API compliance, determinism, semantics, bad input."""

from __future__ import annotations

import functools
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test

import prosumer_gym  # noqa: F401  (registers the ids)
from prosumer_gym.envs import p2p_trading_v0
from prosumer_gym.envs.p2p_trading_market import MECHANISMS, energy_kwh, seller_revenue

from .checkers import check_constraints as check_allocation
from .helpers import same

SMALL = dict(n_sellers=4, n_buyers=5)


def _random_actions(env, rng):
    return {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}


# ----------------------------------------------------------------------------- API battery
def test_parallel_api():
    parallel_api_test(p2p_trading_v0.parallel_env(**SMALL, n_days=40), num_cycles=60)


def test_parallel_api_default_size():
    parallel_api_test(p2p_trading_v0.parallel_env(n_days=20), num_cycles=25)


def test_parallel_seed():
    parallel_seed_test(functools.partial(p2p_trading_v0.parallel_env, **SMALL, n_days=50), num_cycles=60)


def test_aec_api():
    api_test(p2p_trading_v0.env(**SMALL, n_days=10), num_cycles=30)


def test_max_cycles():
    max_cycles_test(p2p_trading_v0)


def test_render():
    render_test(lambda render_mode=None: p2p_trading_v0.env(**SMALL, n_days=10, render_mode=render_mode))


@pytest.mark.parametrize("centralized", [False, True])
def test_gymnasium_check_env(centralized):
    env = gym.make("P2PTrading-v0", n_days=20, centralized=centralized, **SMALL)
    check_env(env.unwrapped, skip_render_check=True)


def test_gym_make_without_prior_import():
    code = (
        "import gymnasium as gym; e = gym.make('prosumer_gym:P2PTrading-v0', n_days=3, n_sellers=2, n_buyers=2);"
        "o, i = e.reset(seed=1); print(e.observation_space.contains(o))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# ----------------------------------------------------------------------------- determinism
def _rollout(seed: int, days: int, **kw):
    env = p2p_trading_v0.parallel_env(n_days=days, **kw)
    obs, infos = env.reset(seed=seed)
    rng = np.random.default_rng(1234)
    traj = [(obs, infos)]
    while env.agents:
        step = env.step(_random_actions(env, rng))
        traj.append(step)
    return traj




def test_full_year_determinism():
    t1 = _rollout(7, 365)
    t2 = _rollout(7, 365)
    assert len(t1) == len(t2) == 366
    for s1, s2 in zip(t1, t2):
        assert same(s1, s2)
    t3 = _rollout(8, 5)
    assert not same(t1[1][1], t3[1][1])  # another seed gives another market


def test_reset_without_seed_continues_stream():
    env = p2p_trading_v0.parallel_env(**SMALL, n_days=3)
    env.reset(seed=3)
    ref1 = env.buyer_ref_price.copy()
    env.reset()  # no seed: continue the generator, i.e. a new market
    ref2 = env.buyer_ref_price.copy()
    other = p2p_trading_v0.parallel_env(**SMALL, n_days=3)
    other.reset(seed=3)
    np.testing.assert_array_equal(ref1, other.buyer_ref_price)
    assert not np.array_equal(ref1, ref2)


# ----------------------------------------------------------------------------- semantics
def test_actions_move_prices_and_reach_allocation():
    env = p2p_trading_v0.parallel_env(**SMALL, n_days=5)
    env.reset(seed=0)
    p0 = env.prices.copy()
    up = {a: 2 for a in env.agents}  # +delta
    _, rewards, _, _, infos = env.step(up)
    expect = np.clip(p0 + 0.001, 0.06, 0.12)
    np.testing.assert_allclose(env.prices, expect, atol=1e-12)
    rec = env.last_market
    np.testing.assert_allclose(rec.instance.seller_price, expect, atol=1e-12)  # today's price was cleared
    rev = seller_revenue(rec.instance, rec.allocation.x, rec.allocation.price)
    for i, a in enumerate(env.possible_agents):
        assert rewards[a] == pytest.approx(rev[i])
        assert infos[a]["price"] == pytest.approx(expect[i])
        assert infos[a]["sold_kwh"] == pytest.approx(energy_kwh(rec.instance, rec.allocation.x)[i].sum())


def test_price_projection_at_band_edges():
    env = p2p_trading_v0.parallel_env(**SMALL, n_days=200)
    env.reset(seed=0)
    for _ in range(80):
        env.step({a: 2 for a in env.agents})
    assert np.allclose(env.prices, 0.12)
    for _ in range(80):
        env.step({a: 0 for a in env.agents})
    assert np.allclose(env.prices, 0.06)


def test_level_action_mode_sets_price():
    env = p2p_trading_v0.parallel_env(**SMALL, n_days=3, action_mode="level")
    env.reset(seed=0)
    assert env.action_space("seller_0").n == 61
    env.step({a: 10 for a in env.agents})
    assert np.allclose(env.prices, 0.07)


def test_observations_in_space_and_named():
    env = p2p_trading_v0.parallel_env(n_days=365)
    obs, _ = env.reset(seed=2)
    rng = np.random.default_rng(0)
    space = env.observation_space("seller_0")
    assert space.names[0] == "price"
    while env.agents:
        for a, o in obs.items():
            assert space.contains(o), (a, o)
        obs, *_ = env.step(_random_actions(env, rng))
    assert env.state_space.contains(env.state())


@pytest.mark.parametrize("mechanism", [m for m in MECHANISMS if m not in ("milp",)])
def test_every_step_feasible_under_each_mechanism(mechanism):
    kw = {"debate": {"G_max": 50}}.get(mechanism, {})
    env = p2p_trading_v0.parallel_env(n_sellers=6, n_buyers=6, n_days=30, mechanism=mechanism, mechanism_kwargs=kw)
    env.reset(seed=11)
    rng = np.random.default_rng(0)
    while env.agents:
        _, _, _, _, infos = env.step(_random_actions(env, rng))
        rec = env.last_market
        assert check_allocation(rec.instance, rec.allocation.x) == []
        assert infos["seller_0"]["market"]["feasible"]


@pytest.mark.parametrize("size", [(1, 1), (2, 7), (7, 2), (20, 20), (50, 50)])
def test_sizes(size):
    s, b = size
    env = p2p_trading_v0.parallel_env(n_sellers=s, n_buyers=b, n_days=4)
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    while env.agents:
        env.step(_random_actions(env, rng))
        rec = env.last_market
        assert check_allocation(rec.instance, rec.allocation.x) == []


def test_market_kpis_consistent():
    env = p2p_trading_v0.parallel_env(n_days=60)
    env.reset(seed=4)
    rng = np.random.default_rng(0)
    traded = []
    while env.agents:
        _, rewards, _, _, infos = env.step(_random_actions(env, rng))
        m = infos["seller_0"]["market"]
        assert m["traded_kwh"] == pytest.approx(sum(i["sold_kwh"] for i in infos.values()))
        assert m["sellers_revenue_usd"] == pytest.approx(sum(rewards.values()))
        assert m["grid_import_kwh"] == pytest.approx(m["demand_kwh"] - m["traded_kwh"])
        assert m["traded_kwh"] <= m["surplus_kwh"] + 1e-9
        traded.append(m["traded_kwh"])
    assert max(traded) > 0  # real PV data: the market trades on some days


def test_gym_view_opponents():
    for opp in ("pqr", "constant", "random", lambda agent, obs: 1):
        env = gym.make("P2PTrading-v0", n_days=5, opponents=opp, **SMALL)
        obs, info = env.reset(seed=0)
        done = False
        while not done:
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            done = term or trunc
        assert "market" in info


def test_gym_view_deterministic():
    def run():
        env = gym.make("P2PTrading-v0", n_days=30, **SMALL)
        env.reset(seed=9)
        env.action_space.seed(9)
        out = []
        for _ in range(30):
            o, r, *_ = env.step(env.action_space.sample())
            out.append((o.copy(), r))
        return out

    a, b = run(), run()
    assert all(np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b))


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "bad",
    [np.nan, 3, -1, 1.5, "up", np.array([1, 2]), None, True],
)
def test_bad_actions_raise(bad):
    env = p2p_trading_v0.parallel_env(**SMALL, n_days=3)
    env.reset(seed=0)
    actions = {a: 1 for a in env.agents}
    actions["seller_1"] = bad
    with pytest.raises(ValueError, match="seller_1"):
        env.step(actions)


def test_unknown_or_missing_agent_raise():
    env = p2p_trading_v0.parallel_env(**SMALL, n_days=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown"):
        env.step({**{a: 1 for a in env.agents}, "buyer_0": 1})
    with pytest.raises(ValueError, match="missing"):
        env.step({"seller_0": 1})


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(mechanism="auction"), "mechanism"),
        (dict(grid_sell_price=0.05, grid_buy_price=0.06), "grid"),
        (dict(initial_price_range=(0.11, 0.09)), "initial_price_range"),
        (dict(buyer_ref_price_range=(0.01, 0.10)), "buyer_ref_price_range"),
        (dict(n_sellers=0), "n_sellers"),
        (dict(n_buyers=-3), "n_buyers"),
        (dict(split="validation"), "split"),
        (dict(seller_pv_kw=-4.0), "seller_pv_kw"),
        (dict(loss_levels=(0.01, 1.5)), "loss_levels"),
        (dict(price_tick=0.0007), "price_tick"),
        (dict(action_mode="absolute"), "action_mode"),
        (dict(start_day=400), "start_day"),
        (dict(min_trade_kwh=-0.05), "min_trade_kwh"),
        (dict(render_mode="ansi"), "render_mode"),
    ],
)
def test_bad_configuration_raises(kwargs, field):
    with pytest.raises(ValueError, match=field):
        p2p_trading_v0.parallel_env(**kwargs)


def test_gym_bad_action_raises():
    env = gym.make("P2PTrading-v0", n_days=3, **SMALL).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(7)
    cen = gym.make("P2PTrading-v0", n_days=3, centralized=True, **SMALL).unwrapped
    cen.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        cen.step(np.array([1, 1]))
