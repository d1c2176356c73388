"""EnergyCollective-v0 fast paths (issue 17): the exact clearing, the batched action check,
the day's observations and planned costs built once, the Gymnasium view's array path and
batched co-players, and the data's ``hours`` draw. Each is compared with the slow path it
replaces (exactly where the arithmetic is the same, within tolerance for the clearing)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from gymnasium.utils import seeding

from prosumer_gym import data as pgdata
from prosumer_gym.agents.energy_collective import ADMMCoPlayer, best_response_actions
from prosumer_gym.core.spaces import check_box_batch
from prosumer_gym.envs import energy_collective_v0
from prosumer_gym.envs.energy_collective import market as mk
from prosumer_gym.envs.energy_collective.gym import EnergyCollectiveGymEnv
from prosumer_gym.envs.energy_collective.players import Community

SMALL = dict(n_prosumers=6, n_flexible=6, n_inflexible=4, n_chp=2, n_peak=1)


def _check_optimal(comm: Community, sol: mk.CommunityDispatch, qp: mk.CommunityDispatch) -> None:
    assert np.all(sol.p >= comm.lo - 1e-12) and np.all(sol.p <= comm.hi + 1e-12)
    np.testing.assert_allclose(sol.p.sum(axis=1) + sol.q, 0.0, atol=1e-9)
    assert np.all(sol.q <= comm.import_capacity + 1e-9) and np.all(-sol.q <= comm.export_capacity + 1e-9)
    # never worse than the interior-point oracle, and equal to it up to its tolerance
    assert np.all(sol.objective <= qp.objective + 1e-8)
    np.testing.assert_allclose(sol.objective, qp.objective, rtol=1e-8, atol=1e-7)


@pytest.mark.parametrize("g", mk.G_KINDS)
@pytest.mark.parametrize("capacity", [np.inf, 3.0])
def test_exact_clearing_is_the_optimum_of_random_communities(g: str, capacity: float) -> None:
    for seed in range(4):
        comm = mk.random_community(np.random.default_rng(seed), 40, 6, g_kind=g, autonomy_weight=0.05,
                                   capacity=capacity)
        sol = mk.solve_community_exact(comm)
        qp = mk.solve_community_qp(comm)
        _check_optimal(comm, sol, qp)
        np.testing.assert_allclose(sol.price, qp.price, atol=1e-6)
        # the players' best responses to the price are the dispatch (the ADMM's fixed point)
        free = ~comm.fixed
        np.testing.assert_allclose(comm.best_response(sol.price)[free], sol.p[free], atol=1e-9)
        assert sol.converged.all() and (sol.iterations == 0).all() and sol.method == "exact"


def test_exact_clearing_matches_admm_on_a_real_day() -> None:
    env = energy_collective_v0.parallel_env(day=120)
    env.reset(seed=0)
    comm = env.community
    ex = mk.solve_community_exact(comm)
    admm = mk.solve_community_admm(comm)
    assert admm.converged.all()
    np.testing.assert_allclose(ex.price, admm.price, atol=1e-6)  # ADMM: eps 1e-7
    np.testing.assert_allclose(ex.p, admm.p, atol=2e-3)
    np.testing.assert_allclose(ex.objective, admm.objective, atol=1e-5)  # ADMM's q balances within eps only
    assert np.all(ex.objective <= mk.solve_community_qp(comm).objective + 1e-8)
    np.testing.assert_array_equal(env.plan.p, ex.p)  # the env's default clearing


def test_exact_clearing_linear_players_and_kinks() -> None:
    """Linear-cost players (a = 0) jump at their marginal cost; the market-driven g jumps at the
    grid prices: the jumping agents take the remainder."""
    # slot 0: a linear generator at 0.08 between export 0.05 and import 0.15 covers the 3 kWh load
    # slot 1: the generator (0.20) is dearer than the import: the grid serves the load
    # slot 2: a flexible consumer meets a linear generator exactly at its marginal cost
    T = 3
    names = ("gen", "load", "flex")
    a = np.array([[0.0, 0.0, 0.5]] * T)
    m = np.array([[0.08, 0.0, 0.10], [0.20, 0.0, 0.10], [0.12, 0.0, 0.10]])
    r = np.array([[0.0, -3.0, -1.0]] * T)
    lo = np.array([[0.0, -3.0, -2.0]] * T)
    hi = np.array([[5.0, -3.0, 0.0]] * T)
    comm = Community(names=names, kind=np.array(["chp", "inflexible", "flexible"]), a=a, m=m, r=r, lo=lo, hi=hi,
                     import_price=[0.15, 0.15, 0.15], export_price=[0.05, 0.05, 0.05])
    sol = mk.solve_community_exact(comm)
    np.testing.assert_allclose(sol.price, [0.08, 0.15, 0.12])
    # slot 0: flex at price 0.08 consumes r + (0.08 - 0.1)/0.5 = -1.04; the generator serves 3 + 1.04
    np.testing.assert_allclose(sol.p[0], [4.04, -3.0, -1.04])
    np.testing.assert_allclose(sol.q[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(sol.p[1], [0.0, -3.0, -0.9])  # generator off, the flex at the import price
    np.testing.assert_allclose(sol.q[1], 3.9)
    np.testing.assert_allclose(sol.p[2], [3.96, -3.0, -0.96])
    free = [0, 2]
    qp = mk.solve_community_qp(replace(comm, a=np.where(a > 0, a, 1e-9)))  # the oracle needs a > 0 for a unique p
    np.testing.assert_allclose(sol.objective, qp.objective, atol=1e-6)
    np.testing.assert_allclose(sol.p[:, free], qp.p[:, free], atol=1e-3)


def test_env_clearing_keyword() -> None:
    with pytest.raises(ValueError, match="clearing"):
        energy_collective_v0.parallel_env(clearing="qp")
    obs = {}
    for clearing in ("exact", "admm"):
        env = energy_collective_v0.parallel_env(clearing=clearing, **SMALL)
        o, _ = env.reset(seed=3)
        _, _, _, _, infos = env.step(best_response_actions(o))
        m = infos["chp_0"]["market"]
        assert m["converged"] and (m["iterations"] == 0) == (clearing == "exact")
        ref = mk.solve_community_exact(env.community) if clearing == "exact" else mk.solve_community_admm(env.community)
        np.testing.assert_array_equal(env.plan.p, ref.p)
        np.testing.assert_array_equal(env.plan.price, ref.price)
        obs[clearing] = o["chp_0"][0]
    assert abs(obs["exact"] - obs["admm"]) < 1e-6


def test_action_vector_is_check_box_batch() -> None:
    env = energy_collective_v0.parallel_env(**SMALL)
    env.reset(seed=0)
    agents = env.possible_agents
    rng = np.random.default_rng(1)
    forms = [
        {a: rng.uniform(0, 1, size=1).astype(np.float32) for a in agents},
        {a: rng.uniform(0, 1, size=1) for a in agents},
        {a: [float(rng.uniform())] for a in agents},
        {a: np.array([i % 2 == 0]) for i, a in enumerate(agents)},
        {a: np.array([i % 2]) for i, a in enumerate(agents)},
        {a: (np.array([0.5]) if i == 3 else np.array([0.25], dtype=np.float32)) for i, a in enumerate(agents)},
    ]
    for acts in forms:
        np.testing.assert_array_equal(env._action_vector(acts),
                                      check_box_batch(acts, agents, env._action_space)[:, 0])
    good = forms[0]
    for bad, what in [(np.array([np.nan], dtype=np.float32), "finite"), (np.array([1.5]), "lie in"),
                      (np.array([0.5, 0.5]), "shape"), ("x", "real"), (np.array([[0.5]]), "shape"),
                      (np.array([0.5 + 0j]), "real"), (np.float32(0.5), "shape")]:
        acts = dict(good)
        acts[agents[4]] = bad
        with pytest.raises(ValueError, match=rf"actions\['{agents[4]}'\].*{what}"):
            env.step(acts)
    env.step(good)  # still usable


def test_day_observations_and_planned_costs_equal_the_per_slot_formulas() -> None:
    """Built once per day, they are the per-slot values exactly (the clock does not matter)."""
    env = energy_collective_v0.parallel_env(n_steps=30, **SMALL)  # crosses a day
    obs, _ = env.reset(seed=5)
    rng = np.random.default_rng(0)
    while env.agents:
        c, s = env.community, env._slot
        lo, hi = c.lo[s], c.hi[s]
        per_slot = env._obs_rows(np.full(env.n_players, env.plan.price[s]), s, lo, hi)
        np.testing.assert_array_equal(np.stack([obs[a] for a in env.possible_agents]), per_slot)
        cs = c.slots([s])
        planned = float((cs.player_cost(env.plan.p[s][None, :]).sum() + mk.grid_bill(cs, [env.plan.q[s]]))[0])
        obs, _, _, _, infos = env.step({a: rng.uniform(0, 1, size=1).astype(np.float32) for a in env.agents})
        assert infos["chp_0"]["market"]["planned_cost_eur"] == planned


def test_slots_subset_is_the_validated_community() -> None:
    env = energy_collective_v0.parallel_env(**SMALL)
    env.reset(seed=2)
    c = env.community
    for idx in ([3], [0, 5, 23], slice(2, 9)):
        fast = c.slots(idx)
        sel = np.arange(c.n_slots)[idx]
        slow = replace(c, **{f: getattr(c, f)[sel] for f in ("a", "m", "r", "lo", "hi", "import_price",
                                                              "export_price", "wholesale_price")})
        for f in ("a", "m", "r", "lo", "hi", "import_price", "export_price", "wholesale_price", "kind",
                  "position_km"):
            np.testing.assert_array_equal(getattr(fast, f), getattr(slow, f))
        assert (fast.names, fast.g_kind, fast.slot_hours) == (slow.names, slow.g_kind, slow.slot_hours)


def _episode(env: EnergyCollectiveGymEnv, seed: int) -> list:
    obs, info = env.reset(seed=seed)
    out = [(obs.copy(), info)]
    rng = np.random.default_rng(seed)
    done = False
    while not done:
        obs, r, te, tr, info = env.step(rng.uniform(0, 1, size=env.action_space.shape).astype(np.float32))
        out.append((obs.copy(), r, te, tr, info))
        done = te or tr
    return out


def _same(x: list, y: list) -> None:
    assert len(x) == len(y)
    for u, v in zip(x, y):
        np.testing.assert_array_equal(u[0], v[0])
        assert u[1:] == v[1:]


def test_gym_batched_co_players_equal_per_agent_co_players() -> None:
    def plain(env, agents, infos, rng):
        return {a: ADMMCoPlayer() for a in agents}  # no act_batch: one act/observe per agent

    batched = EnergyCollectiveGymEnv(**SMALL)
    per_agent = EnergyCollectiveGymEnv(co_players=plain, **SMALL)
    for seed in (0, 1):
        a, b = _episode(batched, seed), _episode(per_agent, seed)
        assert batched._batch is not None and per_agent._batch is None
        _same(a, b)


def test_gym_array_path_equals_pettingzoo_step() -> None:
    """Centralised view (array path) vs the PettingZoo env stepped with the same actions."""
    view = EnergyCollectiveGymEnv(centralized=True, allocation="proportional", **SMALL)
    obs, _ = view.reset(seed=4)
    penv = energy_collective_v0.parallel_env(allocation="proportional", **SMALL)
    market_seed = int(seeding.np_random(4)[0].integers(2**63 - 1))  # what the view's reset gives the market
    pobs, _ = penv.reset(seed=market_seed)
    agents = penv.possible_agents
    np.testing.assert_array_equal(obs, np.concatenate([pobs[a] for a in agents]))
    rng = np.random.default_rng(0)
    done = False
    while not done:
        act = rng.uniform(0, 1, size=len(agents)).astype(np.float32)
        obs, r, te, tr, info = view.step(act)
        pobs, prew, _, _, pinfos = penv.step({a: act[i:i + 1] for i, a in enumerate(agents)})
        np.testing.assert_array_equal(obs, np.concatenate([pobs[a] for a in agents]))
        assert r == -pinfos[agents[0]]["market"]["community_cost_eur"]
        assert info == {"market": pinfos[agents[0]]["market"]}
        done = te or tr
    ego = EnergyCollectiveGymEnv(others="reference", ego="prosumer_2", **SMALL)
    per = EnergyCollectiveGymEnv(others=lambda a, o: _reference(o), ego="prosumer_2", **SMALL)
    _same(_episode(ego, 7), _episode(per, 7))


def _reference(o: np.ndarray) -> np.ndarray:
    lo, hi, ref = np.float64(o[3]), np.float64(o[4]), o[5]
    span = hi - lo
    act = (ref - lo) / span if span > 0 else 0.5
    return np.clip(np.array([act]), 0.0, 1.0).astype(np.float32)


def test_data_hours_draw_is_the_slice_of_the_year() -> None:
    hours = np.arange(24 * 40, 24 * 42) % pgdata.HOURS_PER_YEAR
    for n in (5, 80):
        full = pgdata.sample_households(np.random.default_rng(n), n)
        part = pgdata.sample_households(np.random.default_rng(n), n, hours=hours)
        np.testing.assert_array_equal(part.hourly_load_kwh, full.hourly_load_kwh[:, hours])
        np.testing.assert_array_equal(part.day_offset, full.day_offset)
        fp = pgdata.sample_prosumers(np.random.default_rng(n), n, pv_kw=(4.0, 6.0))
        pp = pgdata.sample_prosumers(np.random.default_rng(n), n, pv_kw=(4.0, 6.0), hours=hours)
        for f in ("load_kwh", "pv_kwh", "surplus_kwh", "net_demand_kwh"):
            np.testing.assert_array_equal(getattr(pp, f), getattr(fp, f)[:, hours])
        np.testing.assert_array_equal(pp.orientation, fp.orientation)
    for bad in (np.array([0, 8760]), np.array([-1]), np.array([0.5]), np.zeros((2, 2), dtype=int)):
        with pytest.raises(ValueError, match="hours"):
            pgdata.sample_households(np.random.default_rng(0), 3, hours=bad)
