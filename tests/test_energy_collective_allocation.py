"""EnergyCollective-v0: the allocation rule inside the dispatch (members' Nash equilibrium),
the "worst" (egalitarian) rule, storage players, and the default env left bit-identical."""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test
from scipy.optimize import minimize

from prosumer_gym.agents.energy_collective import best_response_actions
from prosumer_gym.envs import energy_collective_v0
from prosumer_gym.envs.energy_collective import market as mk
from prosumer_gym.envs.energy_collective.noncoop import nash_best_response, nash_dispatch
from prosumer_gym.envs.energy_collective.storage import Storage, check_storage, solve_community_storage

from .test_energy_collective import MEDIUM, SMALL, _day_community  # noqa: F401 - shared fixtures


# ----------------------------------------------------------------------------- default env pinned
def _digest(**kw) -> tuple[str, float]:
    env = energy_collective_v0.parallel_env(**kw)
    obs, infos = env.reset(seed=7)
    rng = np.random.default_rng(3)
    h = hashlib.sha256()
    h.update(np.stack([obs[a] for a in env.possible_agents]).tobytes())
    for _ in range(4):
        acts = {a: rng.random(1).astype(np.float32) for a in env.possible_agents}
        obs, rew, term, trunc, infos = env.step(acts)
        h.update(np.array([rew[a] for a in env.possible_agents]).tobytes())
        h.update(np.stack([obs[a] for a in env.possible_agents]).tobytes())
        h.update(json.dumps(infos[env.possible_agents[0]], sort_keys=True, default=float).encode())
        h.update(json.dumps(infos[env.possible_agents[-1]]["market"], sort_keys=True, default=float).encode())
    return h.hexdigest(), float(rew[env.possible_agents[0]])


@pytest.mark.parametrize("kw, digest, reward", [
    # computed on main (3b28c2c) before allocation_mode / storage existed
    (dict(), "4212e99b0a9540c5487f6535194b4b31460043978ea449d1da10ab2a84a12b02", -1.2545999683061368e-08),
    (dict(allocation="equal"), "491e21b53decbb972834e1de42605343d00a691b9cea2f910bf235c2826a73fa",
     -0.0484174305576277),
    (dict(allocation="proportional", day=120), "ec259bc96798dbbd7f8bbd2a37b898f8d85ab3aabd962e83262ee384af54d728",
     -8.875937944409234e-09),
])
def test_default_env_is_bit_identical_to_main(kw, digest, reward):
    d, r = _digest(**kw)
    assert r == reward
    assert d == digest


# ----------------------------------------------------------------------------- the "worst" rule
def test_worst_rule_is_budget_balanced_and_max_min():
    comm = _day_community(**MEDIUM)
    d = mk.solve_community_exact(comm)
    _, bau = mk.bau_dispatch(comm)
    f = comm.player_cost(d.p)
    st = {r: mk.settle_community(comm, r, d.p, d.price) for r in ("equal", "proportional", "worst")}
    np.testing.assert_allclose(st["worst"]["allocated"].sum(axis=1), st["worst"]["grid_bill"], atol=1e-9)
    saving = {r: bau - (f + s["allocated"]) for r, s in st.items()}  # (T, N) every member's saving vs BAU
    # every member saves the same in each slot: the community's saving / N (>= 0: the community beats BAU)
    np.testing.assert_allclose(saving["worst"], saving["worst"][:, :1].repeat(comm.n_players, 1), atol=1e-9)
    assert np.all(saving["worst"][:, 0] >= -1e-9)
    for r in ("equal", "proportional"):
        # the worst-off member is never worse off than under the other budget-balanced rules ...
        assert np.all(saving["worst"].min(axis=1) >= saving[r].min(axis=1) - 1e-9)
        # ... and strictly better off in some slot
        assert np.any(saving["worst"].min(axis=1) > saving[r].min(axis=1) + 1e-3)
    # the explicit bau_cost gives the same shares
    np.testing.assert_array_equal(mk.allocate_grid_cost(comm, "worst", d.p, d.q, d.price, bau_cost=bau),
                                  st["worst"]["allocated"])


# ----------------------------------------------------------------------------- Nash equilibria
def _deviation_gain(comm, rule, p, price, players, storage=None, n_grid=401) -> np.ndarray:
    """Independent check: each listed member's best unilateral deviation on a grid of its
    own range (others fixed), costs from settle_community; gain per member and slot (T, k)."""
    base = mk.settle_community(comm, rule, p, price, storage=storage)["total"]
    gains = np.zeros((comm.n_slots, len(players)))
    frac = np.linspace(0.0, 1.0, n_grid)
    for j, i in enumerate(players):
        best = base[:, i].copy()
        for u in frac:
            pp = p.copy()
            pp[:, i] = comm.lo[:, i] + u * (comm.hi[:, i] - comm.lo[:, i])
            best = np.minimum(best, mk.settle_community(comm, rule, pp, price, storage=storage)["total"][:, i])
        gains[:, j] = base[:, i] - best
    return gains


def test_none_equilibrium_is_the_cooperative_optimum():
    comm = _day_community(**MEDIUM)
    nd = nash_dispatch(comm, "none")
    qp = mk.solve_community_qp(comm)
    np.testing.assert_allclose(nd.objective, qp.objective, atol=1e-6)
    np.testing.assert_allclose(nd.price, qp.price, atol=1e-6)
    gains = _deviation_gain(comm, "none", nd.p, nd.price, players=range(0, comm.n_players, 3))
    assert gains.max() <= 1e-9  # price-taking: nobody gains by deviating at the announced price


def test_equal_and_proportional_equilibria_differ_and_admit_no_profitable_deviation():
    comm = _day_community(**MEDIUM)
    coop = float(mk.solve_community_exact(comm).objective.sum())
    nds = {r: nash_dispatch(comm, r) for r in ("equal", "proportional", "worst")}
    tot = {r: float(d.objective.sum()) for r, d in nds.items()}
    assert all(d.converged.all() for d in nds.values())
    # free riding: both rules cost the community more than the cooperative dispatch, and differ
    assert tot["equal"] > coop + 0.5 and tot["proportional"] > coop + 0.1
    assert abs(tot["equal"] - tot["proportional"]) > 0.1
    # the egalitarian rule aligns every member with the community: the cooperative total
    assert tot["worst"] == pytest.approx(coop, abs=1e-9)
    players = list(range(0, comm.n_players, 4))
    for r, d in nds.items():
        gains = _deviation_gain(comm, r, d.p, d.price, players)
        assert gains.max() <= 1e-6, (r, gains.max())
    # ... while at the cooperative dispatch, free riding pays under equal and proportional
    cd = mk.solve_community_exact(comm)
    for r in ("equal", "proportional"):
        assert _deviation_gain(comm, r, cd.p, cd.price, players).sum() > 0.1


def test_iterative_equilibrium_of_the_potential_rules():
    comm = _day_community(**MEDIUM)
    N = comm.n_players
    for rule in ("equal", "worst"):
        cf = nash_dispatch(comm, rule)
        it = nash_dispatch(comm, rule, method="iterative", tol=1e-9)
        assert it.converged.all() and it.method == "iterative" and cf.method == "closed_form"
        # both are equilibria (best responses gain nothing) ...
        for d in (cf, it):
            br, br_v, here = nash_best_response(comm, rule, d.p)
            assert np.max(here - br_v) <= 1e-6
        # ... and the closed form is the potential's minimiser (the selection at the q = 0 kink)
        scale = N if rule == "equal" else 1.0
        pot = {k: comm.player_cost(d.p).sum() + mk.grid_bill(comm, d.q).sum() / scale for k, d in (("cf", cf), ("it", it))}
        assert pot["cf"] <= pot["it"] + 1e-9
        away = (np.abs(cf.q) > 1e-3) & (np.abs(it.q) > 1e-3)  # both off the q = 0 kink: the same equilibrium
        assert away.sum() >= 6
        np.testing.assert_allclose(it.p[away], cf.p[away], atol=1e-4)


def test_nash_nonconvergence_is_flagged_and_bad_input_raises():
    comm = _day_community(**MEDIUM)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        d = nash_dispatch(comm, "proportional", max_iter=1)
    assert not d.converged.all()
    with pytest.raises(ValueError, match="allocation"):
        nash_dispatch(comm, "shapley")
    with pytest.raises(ValueError, match="method"):
        nash_dispatch(comm, "equal", method="newton")
    with pytest.raises(ValueError, match="iterative"):
        nash_dispatch(comm, "none", method="iterative")


# ----------------------------------------------------------------------------- storage
def test_storage_day_dispatch_feasible_and_no_worse():
    comm = _day_community(**MEDIUM)
    ex = mk.solve_community_exact(comm)
    d0 = solve_community_storage(comm, Storage.uniform(0))
    np.testing.assert_allclose(d0.objective, ex.objective, atol=1e-5)
    np.testing.assert_allclose(d0.price, ex.price, atol=1e-6)
    st = Storage.uniform(3, capacity_kwh=8.0, power_kw=3.0, efficiency=0.9, soc_init=0.25)
    d = solve_community_storage(comm, st)
    assert d.converged
    assert check_storage(st, d.charge, d.discharge, d.soc, comm.slot_hours) == []
    np.testing.assert_allclose(d.p.sum(axis=1) + d.storage + d.q, 0.0, atol=1e-6)  # balance (2)
    assert np.all(d.p >= comm.lo - 1e-7) and np.all(d.p <= comm.hi + 1e-7)
    assert d.objective.sum() < ex.objective.sum() - 0.01  # arbitrage across the day saves money
    assert np.abs(d.storage).max() > 1.0
    # the checker catches violations
    bad = d.soc.copy()
    bad[5] += 0.5
    assert any("energy balance" in v for v in check_storage(st, d.charge, d.discharge, bad, comm.slot_hours))
    assert any("power limit" in v for v in check_storage(st, d.charge + 5.0, d.discharge, d.soc, comm.slot_hours))
    low = d.soc.copy()
    low[-1] = 0.0
    assert any("ends" in v for v in check_storage(st, d.charge, d.discharge, low, comm.slot_hours))


def test_storage_qp_matches_scipy_on_a_tiny_instance():
    comm = mk.Community(
        names=("cons", "gen"), kind=np.array(["flexible", "chp"]),
        a=np.array([[2.0, 0.5]] * 3), m=np.array([[0.3, 0.1]] * 3), r=np.array([[-2.0, 0.0]] * 3),
        lo=np.array([[-3.0, 0.0]] * 3), hi=np.array([[-1.0, 2.0]] * 3),
        import_price=np.array([0.1, 0.4, 0.3]), export_price=np.array([0.02, 0.05, 0.04]),
    )
    st = Storage.uniform(1, capacity_kwh=2.0, power_kw=1.5, efficiency=0.9, soc_init=0.5)
    d = solve_community_storage(comm, st)
    eta, e0, pm = 0.9, 1.0, 1.5

    def obj(z):  # z = p (3x2), c (3), d (3), q_imp (3), q_exp (3): smooth, the balance as equalities
        p = z[:6].reshape(3, 2)
        return float(comm.player_cost(p).sum() + comm.import_price @ z[12:15] - comm.export_price @ z[15:18])

    soc = lambda z: e0 + np.cumsum(eta * z[6:9] - z[9:12] / eta)  # noqa: E731
    cons = [{"type": "ineq", "fun": lambda z: soc(z)}, {"type": "ineq", "fun": lambda z: 2.0 - soc(z)},
            {"type": "ineq", "fun": lambda z: soc(z)[-1] - e0},
            {"type": "eq", "fun": lambda z: z[:6].reshape(3, 2).sum(axis=1) + z[9:12] - z[6:9] + z[12:15] - z[15:18]}]
    bounds = [(-3, -1), (0, 2)] * 3 + [(0, pm)] * 6 + [(0, None)] * 6
    best = min((minimize(obj, x0, method="SLSQP", bounds=bounds, constraints=cons,
                         options={"maxiter": 1000, "ftol": 1e-12})
                for x0 in (np.r_[[-2, 1] * 3, [0.5] * 6, [1.0] * 6], np.r_[[-1.5, 0.5] * 3, [1.0] * 3, [0.0] * 9])),
               key=lambda r: r.fun)
    assert d.objective.sum() <= best.fun + 1e-6
    assert d.objective.sum() == pytest.approx(best.fun, abs=1e-4)


# ----------------------------------------------------------------------------- env keywords
def test_env_in_dispatch_plan_is_the_equilibrium_and_rules_change_totals():
    totals = {}
    for rule in ("none", "equal", "proportional", "worst"):
        env = energy_collective_v0.parallel_env(**MEDIUM, day=120, allocation=rule, allocation_mode="in_dispatch")
        obs, _ = env.reset(seed=0)
        nd = nash_dispatch(env.community, rule)
        np.testing.assert_allclose(env.plan.p, nd.p, atol=1e-6)
        tot = 0.0
        while env.agents:
            obs, rew, _, _, infos = env.step(best_response_actions(obs))
            m = infos[env.possible_agents[0]]["market"]
            assert m["allocation_mode"] == "in_dispatch" and m["converged"]
            p = np.array([infos[a]["p_kwh"] for a in env.possible_agents])
            planned = np.array([infos[a]["planned_kwh"] for a in env.possible_agents])
            np.testing.assert_allclose(p, planned, atol=1e-5)  # the reference players play the equilibrium
            tot += m["community_cost_eur"]
        totals[rule] = tot
    assert totals["worst"] == pytest.approx(totals["none"], abs=1e-4)
    assert totals["equal"] > totals["none"] + 0.5 and totals["proportional"] > totals["none"] + 0.1
    assert abs(totals["equal"] - totals["proportional"]) > 0.1


def test_env_storage_and_api():
    env = energy_collective_v0.parallel_env(**MEDIUM, day=120, n_storage=2)
    obs, _ = env.reset(seed=0)
    st = env.storage
    assert env._storage_problem is not None
    ch = env._storage_problem  # built once: the same structure the next day
    soc = []
    while env.agents:
        obs, rew, _, _, infos = env.step(best_response_actions(obs))
        m = infos[env.possible_agents[0]]["market"]
        soc.append(m["storage_soc_kwh"])
        assert 0.0 <= m["storage_soc_kwh"] <= st.capacity_kwh.sum() + 1e-9
    assert soc[-1] >= st.e0.sum() - 1e-6
    env.reset(seed=1)
    assert env._storage_problem is ch
    parallel_api_test(energy_collective_v0.parallel_env(**SMALL, n_steps=26, n_storage=1, allocation="proportional",
                                                        allocation_mode="in_dispatch"), num_cycles=30)
    # the default env has none of the new info keys
    env = energy_collective_v0.parallel_env(**SMALL, n_steps=2)
    obs, _ = env.reset(seed=0)
    _, _, _, _, infos = env.step(best_response_actions(obs))
    assert not {"allocation_mode", "storage_kwh"} & set(infos[env.possible_agents[0]]["market"])


@pytest.mark.parametrize("kwargs, field", [
    (dict(allocation_mode="nash"), "allocation_mode"),
    (dict(allocation="worst", market="p2p"), "allocation"),
    (dict(allocation_mode="in_dispatch", market="p2p"), "allocation_mode"),
    (dict(allocation_mode="in_dispatch", g="autonomy_l1"), "g='market'"),
    (dict(n_storage=-1), "n_storage"),
    (dict(n_storage=1, storage_efficiency=1.5), "storage_efficiency"),
    (dict(n_storage=1, storage_capacity_kwh=0.0), "storage_capacity_kwh"),
    (dict(n_storage=1, storage_soc_init=2.0), "storage_soc_init"),
    (dict(n_storage=1, clearing="admm"), "clearing"),
    (dict(nash_tol=0.0), "nash_tol"),
])
def test_bad_new_keywords_raise(kwargs, field):
    with pytest.raises(ValueError, match=field):
        energy_collective_v0.parallel_env(**{**SMALL, **kwargs})
