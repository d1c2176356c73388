"""EUber-v0: API battery (incl. agents leaving/returning), determinism, an independent Eq. 6.3
checker on every winner selection, POTR, payments, the fare model, CARS, orderings, bad input."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import subprocess
import sys
from importlib import resources

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test

import prosumer_gym  # noqa: F401  (registers the ids)
from prosumer_gym import data as pgdata
from prosumer_gym.agents.euber import CARSRecommender, PKRecommender
from prosumer_gym.baselines.euber import RandomRecommender, bg_env_kwargs
from prosumer_gym.envs import euber_v0
from prosumer_gym.envs.euber_gym import EUberGymEnv
from prosumer_gym.envs.euber_market import (
    MECHANISMS,
    EUberConfig,
    EUberMarket,
    SlotInstance,
    fare_features_from_trips,
    load_fare_model,
    potr_violations,
    select_winners,
    solve_potr,
)

from .helpers import same

SMALL = dict(n_workers=16, n_ride_tasks=6, n_v2g_tasks=4)


# ----------------------------------------------------------------------------- independent checker
def check_eq63(sel, tol=1e-7):
    """Plain-loop check of Eq. 6.3a-e from the selection's raw inputs (bids, types, energies, E).

    Returns (hard violations, strict feasibility, cost). Hard: 6.3a, 6.3b/6.3c "at most one",
    6.3e, and "a winner must have bid". Strict feasibility adds 6.3b "exactly one" and 6.3d.
    """
    W, S = len(sel.bids), len(sel.bids[0])
    out = []
    for i in range(W):
        n = 0
        for j in range(S):
            v = int(sel.q[i][j])
            if v not in (0, 1):
                out.append(f"6.3e q[{i}][{j}] = {v}")
            n += v
        if n > 1:
            out.append(f"6.3a worker {i} has {n} tasks")
    ride_ok = True
    energy = 0.0
    cost = 0.0
    for j in range(S):
        n = 0
        for i in range(W):
            if sel.q[i][j]:
                n += 1
                b = float(sel.bids[i][j])
                if not math.isfinite(b):
                    out.append(f"winner ({i},{j}) did not bid")
                else:
                    cost += b
                if int(sel.task_type[j]) == 2:
                    energy += float(sel.v2g_kwh[j])
        if n > 1:
            out.append(f"6.3b/c task {j} assigned {n} times")
        if int(sel.task_type[j]) < 2 and n != 1:
            ride_ok = False
    feasible = ride_ok and energy >= float(sel.E) - tol * max(1.0, float(sel.E)) and not out
    return out, feasible, cost, energy


def assert_selection_ok(sel):
    viol, feasible, cost, energy = check_eq63(sel)
    assert viol == [], viol
    assert feasible == sel.feasible
    assert cost == pytest.approx(sel.cost, abs=1e-9)
    assert energy == pytest.approx(sel.v2g_delivered_kwh, abs=1e-9)
    # second price: paid the next bid on the task at or above the winner's own bid
    for i, j in zip(*np.nonzero(sel.q)):
        others = [float(sel.bids[k][j]) for k in range(len(sel.bids)) if k != i and math.isfinite(sel.bids[k][j])
                  and sel.bids[k][j] >= sel.bids[i][j]]
        expect = min(others) if others else float(sel.bids[i][j])
        assert sel.payments[i, j] == pytest.approx(expect)
        assert sel.payments[i, j] >= sel.bids[i, j]
    assert np.all(sel.payments[sel.q == 0] == 0)


def tiny_instance(rng, W=4, S=4, n_v2g=2, E=None):
    ttype = np.array([0] * (S - n_v2g) + [2] * n_v2g)
    energy = np.where(ttype == 2, rng.uniform(0.5, 3.0, S), 0.0)
    z = np.zeros((S, 2))
    elig = np.ones((W, S), dtype=bool)
    return SlotInstance(
        slot=0, slot_of_day=0, task_type=ttype, task_start_km=z, task_end_km=z, task_trip_km=np.ones(S),
        task_seconds=np.full(S, 600.0), task_energy_kwh=energy, task_latlon=np.zeros((S, 4)),
        worker_pos_km=np.zeros((W, 2)), worker_e=np.full(W, 0.2), worker_range_km=np.full(W, 200.0),
        worker_rmin_km=np.full(W, 20.0), worker_available=np.ones(W, dtype=bool), approach_km=np.ones((W, S)),
        need_kwh=rng.uniform(0.2, 2.0, (W, S)), eligible=elig,
        E=float(energy.sum()) if E is None else float(E), K=2, psi=1, v2g_min=0.0, weekend=False,
    )


def brute_force_lex(bids, inst):
    """Lexicographic optimum (V2G shortfall, unserved rides, cost) by enumeration."""
    W, S = bids.shape
    best = None
    for assign in itertools.product(range(-1, S), repeat=W):
        used = [a for a in assign if a >= 0]
        if len(used) != len(set(used)) or any(not np.isfinite(bids[i, a]) for i, a in enumerate(assign) if a >= 0):
            continue
        e = sum(inst.task_energy_kwh[a] for a in used if inst.task_type[a] == 2)
        short = max(inst.E - e, 0.0)
        unserved = sum(1 for j in range(S) if inst.task_type[j] < 2 and j not in used)
        cost = sum(bids[i, a] for i, a in enumerate(assign) if a >= 0)
        key = (round(short, 9), unserved, cost)
        if best is None or key < best:
            best = key
    return best


# ----------------------------------------------------------------------------- API battery
def test_parallel_api_mask_mode():
    parallel_api_test(euber_v0.parallel_env(**SMALL, n_slots=12, absent_agents="mask"), num_cycles=15)


def test_parallel_api_default():
    """The default (absent_agents="mask") passes PettingZoo's battery, absences included."""
    env = euber_v0.parallel_env(n_workers=12, n_ride_tasks=8, n_v2g_tasks=4, n_slots=30, min_range_frac=0.6,
                                init_range_frac=(0.6, 0.7), charger_kw=7.0)
    assert env.absent_agents == "mask"
    parallel_api_test(env, num_cycles=30)
    parallel_seed_test(functools.partial(euber_v0.parallel_env, **SMALL, n_slots=10), num_cycles=12)
    max_cycles_test(euber_v0)


def test_parallel_seed_revive_mode():
    parallel_seed_test(functools.partial(euber_v0.parallel_env, **SMALL, n_slots=10, absent_agents="revive"),
                       num_cycles=12)


def test_leave_is_the_former_name_of_revive():
    assert euber_v0.parallel_env(**SMALL, n_slots=2, absent_agents="leave").absent_agents == "revive"


def test_aec_api():
    api_test(euber_v0.env(**SMALL, n_slots=4, absent_agents="mask"), num_cycles=6)


def test_gymnasium_check_env():
    env = gym.make("EUber-v0", **SMALL, n_slots=5)
    check_env(env.unwrapped, skip_render_check=True)


def test_gym_make_without_prior_import():
    code = ("import gymnasium as gym; e = gym.make('prosumer_gym:EUber-v0', n_workers=5, n_ride_tasks=2, "
            "n_v2g_tasks=2, n_slots=2); o, i = e.reset(seed=1); print(e.observation_space.contains(o))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_agents_leave_and_return():
    """'revive' mode: absent workers leave env.agents with truncated=True and come back later."""
    env = euber_v0.parallel_env(n_workers=12, n_ride_tasks=8, n_v2g_tasks=4, n_slots=60, min_range_frac=0.6,
                                init_range_frac=(0.6, 0.7), charger_kw=7.0, absent_agents="revive")
    obs, infos = env.reset(seed=5)
    assert set(obs) == set(env.agents) and set(env.agents) <= set(env.possible_agents)
    left, returned = 0, 0
    away: set[str] = set()
    while env.agents:
        acting = list(env.agents)
        for a in acting:
            assert env.observation_space(a).contains(obs[a])
        obs, rew, term, trunc, info = env.step(env.default_actions())
        nxt = set(env.agents)
        back = nxt - set(acting)
        assert set(obs) == set(rew) == set(term) == set(trunc) == set(info) == set(acting) | back
        for a in acting:
            if not env.agents:
                assert trunc[a]
            elif a not in nxt:
                assert trunc[a] and info[a]["status"] in ("charging", "busy")
                left += 1
                away.add(a)
            else:
                assert not trunc[a] and not term[a]
        for a in back:
            assert a in away and info[a]["status"] == "returned" and not trunc[a] and rew[a] == 0.0
            assert env.observation_space(a).contains(obs[a])
            away.discard(a)
            returned += 1
        if env.agents:
            absent = next((a for a in env.possible_agents if a not in env.agents), None)
            if absent is not None:
                bad = env.default_actions()
                bad[absent] = np.zeros(env.config.K, dtype=np.float32)
                with pytest.raises(ValueError, match="absent"):
                    env.step(bad)
    assert left > 0 and returned > 0
    assert env.market.slot == 60  # the episode is not cut short when everybody is away


def test_aec_revive_mode_runs_to_the_end():
    e = euber_v0.env(n_workers=12, n_ride_tasks=8, n_v2g_tasks=4, n_slots=30, min_range_frac=0.6,
                     init_range_frac=(0.6, 0.7), charger_kw=7.0, absent_agents="revive")
    e.reset(seed=1)
    for a in e.agent_iter(max_iter=5000):
        _, _, te, tr, _ = e.last()
        e.step(None if (te or tr) else e.action_space(a).sample())
    assert e.unwrapped.market.slot == 30 and not e.agents
    assert e.unwrapped.market.totals["tasks_served"] > 0


# ----------------------------------------------------------------------------- determinism
def _rollout(seed, **kw):
    env = euber_v0.parallel_env(**SMALL, n_slots=8, **kw)
    obs, infos = env.reset(seed=seed)
    traj = [obs]
    while env.agents:
        out = env.step(env.default_actions())
        traj.append(out)
    return traj, env.market.totals




def test_determinism_same_seed_and_different_seed():
    t1, tot1 = _rollout(3)
    t2, tot2 = _rollout(3)
    t3, tot3 = _rollout(4)
    assert same(t1, t2) and tot1 == tot2
    assert not same(t1, t3)


def test_gym_determinism():
    def run(seed):
        env = EUberGymEnv(**SMALL, n_slots=6)
        obs, _ = env.reset(seed=seed)
        agent = CARSRecommender(SMALL["n_workers"])
        out = []
        done = False
        while not done:
            obs, r, _, done, info = env.step(agent.act(obs))
            agent.observe(info)
            out.append((r, info["cost_usd"], info["tasks_served"], info["recommended"].copy()))
        return out

    assert same(run(11), run(11))
    assert not same(run(11), run(12))


# ----------------------------------------------------------------------------- Eq. 6.3 everywhere
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_selection_passes_independent_checker(mechanism):
    env = euber_v0.parallel_env(**SMALL, n_slots=20, mechanism=mechanism, recommender="pk")
    env.reset(seed=2)
    n = 0
    while env.agents:
        env.step(env.default_actions())
        assert_selection_ok(env.last_selection)
        n += 1
    assert n == 20


def test_default_size_slot_all_mechanisms_checked_and_ordered():
    m = EUberMarket(EUberConfig())
    m.reset(np.random.default_rng(7))
    pk = PKRecommender(m.alpha)
    for _ in range(3):
        inst = m.instance()
        x = solve_potr(pk.scores(inst.task_type), inst)
        bids = m.behavioural_bids(inst, x)
        sels = {k: select_winners(k, bids, inst) for k in MECHANISMS}
        for s in sels.values():
            assert_selection_ok(s)
        o, b = sels["opt"], sels["bmw"]
        # OPT is lexicographically optimal: V2G shortfall, then unserved rides, then cost
        key = lambda s: (round(max(s.E - s.v2g_delivered_kwh, 0), 6), s.unserved_ride, s.cost)  # noqa: E731
        assert key(o) <= key(b) and key(o) <= key(sels["bg"])
        m.advance(inst, o)


def test_opt_matches_brute_force_on_tiny_instances():
    rng = np.random.default_rng(0)
    for trial in range(25):
        inst = tiny_instance(rng, W=4, S=4, n_v2g=2, E=None if trial % 2 else 1.0)
        bids = np.where(rng.random((4, 4)) < 0.6, rng.uniform(1, 20, (4, 4)), np.inf)
        sel = select_winners("opt", bids, inst)
        assert_selection_ok(sel)
        short, unserved, cost = brute_force_lex(bids, inst)
        assert round(max(inst.E - sel.v2g_delivered_kwh, 0.0), 9) == pytest.approx(short, abs=1e-7)
        assert sel.unserved_ride == unserved
        assert sel.cost == pytest.approx(cost, abs=1e-6)
        for mech in ("bmw", "bg"):
            assert_selection_ok(select_winners(mech, bids, inst))


def test_bmw_meets_budget_by_removing_expensive_rides():
    """Two workers; the cheap min-weight matching serves the ride, the budget needs the V2G task."""
    rng = np.random.default_rng(1)
    inst = tiny_instance(rng, W=1, S=2, n_v2g=1)
    bids = np.array([[5.0, 9.0]])  # worker 0: ride 5$, V2G 9$
    bmw = select_winners("bmw", bids, inst)
    assert bmw.q[0, 1] == 1 and bmw.feasible is False  # the ride must then stay unserved
    assert bmw.v2g_delivered_kwh == pytest.approx(inst.E)
    bg = select_winners("bg", bids, inst)
    assert bg.q[0, 0] == 1 and bg.v2g_delivered_kwh == 0.0  # greedy ignores the budget
    assert_selection_ok(bmw)
    assert_selection_ok(bg)


# ----------------------------------------------------------------------------- POTR
def test_potr_hard_constraints_and_optimality():
    m = EUberMarket(EUberConfig(n_workers=30, n_ride_tasks=10, n_v2g_tasks=6))
    m.reset(np.random.default_rng(3))
    inst = m.instance()
    score = np.random.default_rng(4).random((inst.n_workers, inst.n_tasks))
    x = solve_potr(score, inst)
    assert set(np.unique(x)) <= {0, 1}
    assert np.all(x.sum(axis=1) <= inst.K)
    assert not np.any((x > 0) & ~inst.eligible)
    for i in range(inst.n_workers):  # Eq. 6.1d/e by plain loops
        for j in range(inst.n_tasks):
            if x[i, j]:
                assert inst.approach_km[i, j] <= 10.0 + 1e-9
                assert inst.need_kwh[i, j] <= (inst.worker_range_km[i] - inst.worker_rmin_km[i]) * inst.worker_e[i] + 1e-9
    cover = x.sum(axis=0)
    elig = inst.eligible.sum(axis=0)
    assert np.all(cover[elig > 0] >= 1)  # every reachable task is recommended to someone
    # with 6.1b/6.1c met, no list of equal constraints can do better: swap test vs. top-K
    from prosumer_gym.envs.euber_market import topk_recommend

    xt = topk_recommend(score, inst)
    assert (score * x).sum() <= (score * xt).sum() + 1e-9  # top-K is the unconstrained optimum


def potr_lexicographic(x, score, inst):
    """POTR's objective of a 0/1 list set, by plain loops: (coverage shortfall, Eq. 6.1b + 6.1c
    shortfall units, total score): the flow and the LP both maximise it in this order."""
    W, S = inst.n_workers, inst.n_tasks
    elig_w = [sum(bool(inst.eligible[i, j]) for i in range(W)) for j in range(S)]
    uncovered = short = 0
    for j in range(S):
        psi = min(inst.psi, elig_w[j])
        got = sum(int(x[i, j]) for i in range(W))
        uncovered += int(psi > 0 and got == 0)
        short += max(psi - got, 0)
    for i in range(W):
        n_v = sum(bool(inst.eligible[i, j]) and bool(inst.is_v2g[j]) for j in range(S))
        need = min(math.ceil(inst.v2g_min - 1e-9), inst.K, n_v)
        short += max(need - sum(int(x[i, j]) for j in range(S) if inst.is_v2g[j]), 0)
    return uncovered, short, float(sum(score[i, j] * x[i, j] for i in range(W) for j in range(S)))


def assert_potr_hard(x, inst):
    assert set(np.unique(x)) <= {0, 1}
    assert np.all(x.sum(axis=1) <= inst.K)
    assert not np.any((x > 0) & ~inst.eligible)


@pytest.mark.parametrize("tied", [False, True])
def test_potr_flow_and_lp_reach_the_same_optimum(tied):
    """The min-cost flow (default) and the HiGHS LP optimise one objective: on default-size
    slots and random or CARS-like tied scores, the same shortfalls and the same total score
    (up to the flow's 1e-4 score resolution)."""
    m = EUberMarket(EUberConfig())
    m.reset(np.random.default_rng(11 + tied))
    rng = np.random.default_rng(5)
    for _ in range(6):
        inst = m.instance()
        if tied:  # a score per worker and task type, as CARS/PK give
            score = rng.choice([0.1, 0.4, 0.7, 1.0], size=(inst.n_workers, 3))[:, inst.task_type]
        else:
            score = rng.random((inst.n_workers, inst.n_tasks))
        xf = solve_potr(score, inst)
        xl = solve_potr(score, inst, solver="highs")
        assert_potr_hard(xf, inst)
        uf, sf, vf = potr_lexicographic(xf, score, inst)
        ul, sl, vl = potr_lexicographic(xl, score, inst)
        assert (uf, sf) == (ul, sl)
        assert vf == pytest.approx(vl, abs=int(xf.sum()) * np.abs(score).max() * 1e-4)
        m.advance(inst, select_winners("bmw", m.behavioural_bids(inst, xf), inst))


def test_potr_flow_is_optimal_on_tiny_instances_by_enumeration():
    rng = np.random.default_rng(2)
    for trial in range(12):
        inst = tiny_instance(rng, W=3, S=3, n_v2g=1)
        inst = dataclasses.replace(inst, eligible=rng.random((3, 3)) < 0.8, psi=1 + trial % 2,
                                   v2g_min=float(trial % 3 == 0))
        score = rng.integers(0, 4, (3, 3)) / 3.0  # ties on purpose
        x = solve_potr(score, inst)
        assert_potr_hard(x, inst)
        best = None
        for bits in itertools.product((0, 1), repeat=9):
            cand = np.array(bits, dtype=np.int8).reshape(3, 3)
            if np.any(cand.sum(axis=1) > inst.K) or np.any((cand > 0) & ~inst.eligible):
                continue
            u, sh, v = potr_lexicographic(cand, score, inst)
            key = (u, sh, -round(v, 9))
            best = key if best is None or key < best else best
        u, sh, v = potr_lexicographic(x, score, inst)
        assert (u, sh, -round(v, 9)) == best


def test_potr_flow_breaks_ties_towards_nearer_tasks():
    rng = np.random.default_rng(0)
    inst = tiny_instance(rng, W=1, S=4, n_v2g=0)
    inst = dataclasses.replace(inst, approach_km=np.array([[4.0, 1.0, 3.0, 2.0]]), psi=0, K=2)
    x = solve_potr(np.ones((1, 4)), inst)
    assert x.tolist() == [[0, 1, 0, 1]]
    with pytest.raises(ValueError, match="solver must be one of"):
        solve_potr(np.ones((1, 4)), inst, solver="simplex")
    with pytest.raises(ValueError, match="finite"):
        solve_potr(np.full((1, 4), np.nan), inst)


def reference_flow_arcs(score, inst, psi_j, need_v):
    """The POTR network as the release before issue 17's speed work built it (list of arc
    groups, concatenated, zero-capacity arcs dropped): the reference of the fast builder."""
    from prosumer_gym.envs.euber import potr as P

    ii, jj = np.nonzero(inst.eligible)
    n = ii.size
    W, S, K, elig, v2g = inst.n_workers, inst.n_tasks, inst.K, inst.eligible, inst.is_v2g
    sc = score[ii, jj]
    smax = float(np.max(np.abs(sc))) or 1.0
    q = np.rint(sc / smax * P._FLOW_SCORE_LEVELS).astype(np.int64)
    appr = inst.approach_km[ii, jj]
    far = float(appr.max()) or 1.0
    t = np.rint((1.0 - appr / far) * P._FLOW_TIE_LEVELS).astype(np.int64)
    reward = q * (W * K * P._FLOW_TIE_LEVELS + 1) + t
    pen = 2 * K * (int(np.abs(reward).max()) + 1) + 1
    pen1 = pen * (int(psi_j.max(initial=0)) + 1) * 2
    wnode, vnode, tnode = 2 + np.arange(W), 2 + W + np.arange(W), 2 + 2 * W + np.arange(S)
    workers = np.flatnonzero(elig.any(axis=1))
    wv = np.flatnonzero(need_v > 0)
    wv_all = np.flatnonzero((elig & v2g[None, :]).any(axis=1))
    tc = np.flatnonzero(psi_j > 0)
    z = np.zeros
    tails = [np.full(workers.size, 0), wnode[wv], wnode[wv_all], np.where(v2g[jj], vnode[ii], wnode[ii]),
             tnode[tc], tnode[tc], tnode, [0]]
    heads = [wnode[workers], vnode[wv], vnode[wv_all], tnode[jj], np.full(tc.size, 1), np.full(tc.size, 1),
             np.full(S, 1), [1]]
    caps = [np.full(workers.size, K), need_v[wv], np.full(wv_all.size, K), np.ones(n), np.ones(tc.size),
            psi_j[tc] - 1, np.full(S, W), [K * workers.size]]
    costs = [z(workers.size), np.full(wv.size, -pen), z(wv_all.size), -reward, np.full(tc.size, -(pen + pen1)),
             np.full(tc.size, -pen), z(S), [0]]
    cap = np.concatenate(caps).astype(np.int64)
    keep = cap > 0
    first_pair = workers.size + wv.size + wv_all.size
    assert keep[:first_pair + n].all()  # only second-tier arcs can be empty, so pair arcs keep their place
    return (np.concatenate(tails).astype(np.int32)[keep], np.concatenate(heads).astype(np.int32)[keep], cap[keep],
            np.concatenate(costs).astype(np.int64)[keep], first_pair, K * workers.size)


@pytest.mark.parametrize("scores", ["cars", "random"])
def test_potr_flow_network_equals_the_reference_on_many_slots(scores):
    """The preallocated arc builder gives OR-Tools exactly the network (arcs, order, capacities,
    costs, supply) of the reference builder, so the flow solver's tie choices are unchanged."""
    from prosumer_gym.envs.euber import potr as P

    m = EUberMarket(EUberConfig())
    m.reset(np.random.default_rng(3))
    cars = CARSRecommender(m.n_workers)
    rng = np.random.default_rng(4)
    for slot in range(30):
        inst = m.instance()
        if slot == 7:  # a slot with a smaller psi (second tiers of capacity 0 are dropped)
            inst = dataclasses.replace(inst, psi=1)
        score = cars.scores(inst.task_type) if scores == "cars" else rng.random((inst.n_workers, inst.n_tasks))
        psi_j, need_v = P._potr_targets(inst)
        pairs = np.nonzero(inst.eligible)
        fast = P._potr_network(np.asarray(score, dtype=np.float64), inst, pairs, psi_j, need_v)[:6]
        ref = reference_flow_arcs(np.asarray(score, dtype=np.float64), inst, psi_j, need_v)
        for a, b in zip(fast, ref):
            np.testing.assert_array_equal(a, b)
            assert np.asarray(a).dtype == np.asarray(b).dtype
        x = solve_potr(score, inst)
        bids = m.behavioural_bids(inst, x)
        cars.update(x, np.isfinite(bids), inst.task_type)
        m.advance(inst, select_winners("bmw", bids, inst))


def flow_objective_by_loops(x, score, inst):
    """The min-cost flow's cost of a 0/1 list set, by plain loops over workers and tasks: minus
    (pair rewards + the tiers each task and worker reaches: a task's first unit pen + pen1,
    its next psi_j - 1 units pen, a worker's first need_v V2G units pen)."""
    from prosumer_gym.envs.euber import potr as P

    pairs = np.nonzero(inst.eligible)
    psi_j, need_v = P._potr_targets(inst)
    reward = P._flow_rewards(np.asarray(score, dtype=np.float64), inst, pairs)
    K = inst.K
    pen = 2 * K * (int(np.abs(reward).max()) + 1) + 1
    pen1 = pen * (int(psi_j.max(initial=0)) + 1) * 2
    total = 0
    for r, i, j in zip(reward.tolist(), *(p.tolist() for p in pairs)):
        total += r * int(x[i, j])
    for j in range(inst.n_tasks):
        got = sum(int(x[i, j]) for i in range(inst.n_workers))
        if psi_j[j] > 0 and got > 0:
            total += pen + pen1 + pen * min(got - 1, int(psi_j[j]) - 1)
    for i in range(inst.n_workers):
        got = sum(int(x[i, j]) for j in range(inst.n_tasks) if inst.is_v2g[j])
        total += pen * min(got, int(need_v[i]))
    return -total


def ortools_potr_cost(score, inst):
    """OR-Tools' optimal cost of POTR's network (the solver of earlier releases)."""
    from ortools.graph.python import min_cost_flow

    from prosumer_gym.envs.euber import potr as P

    psi_j, need_v = P._potr_targets(inst)
    tail, head, cap, cost, _, supply = P._potr_network(np.asarray(score, dtype=np.float64), inst,
                                                       np.nonzero(inst.eligible), psi_j, need_v)[:6]
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(tail, head, cap, cost)
    mcf.set_nodes_supplies(np.array([0, 1]), np.array([supply, -supply]))
    assert mcf.solve() == mcf.OPTIMAL
    return mcf.optimal_cost()


def potr_warm_start_is_used(score, inst):
    """The greedy warm start of POTR's network passes the kernel's checks (a feasible flow,
    strongly feasible tree) and its flow, checked here by loops, is a valid list set."""
    from prosumer_gym.envs.euber import potr as P
    from prosumer_gym.envs.euber.netsimplex import network_simplex

    psi_j, need_v = P._potr_targets(inst)
    pairs = np.nonzero(inst.eligible)
    tail, head, cap, cost, fp, supply, flow0, tree_arc = P._potr_network(
        np.asarray(score, dtype=np.float64), inst, pairs, psi_j, need_v)
    x0 = np.zeros((inst.n_workers, inst.n_tasks), dtype=np.int8)
    x0[pairs] = flow0[fp:fp + pairs[0].size]
    assert_potr_hard(x0, inst)
    b = np.zeros(tree_arc.size, dtype=np.int64)
    b[0], b[1] = supply, -supply
    status, flow, warm = network_simplex(b.size, tail.astype(np.int64), head.astype(np.int64), cap, cost, b, True,
                                         flow0, tree_arc)
    return status == 0 and warm and int(flow @ cost) <= int(flow0 @ cost)


@pytest.mark.parametrize("scores", ["cars", "random", "tied"])
def test_potr_network_simplex_reaches_ortools_optimum_on_many_slots(scores):
    """The default flow solver (numba network simplex, warm-started from its greedy lists) and
    OR-Tools reach the same optimal cost on 3 x 32 default-size slots; the lists are POTR-feasible (Eqs. 6.1a, 6.1d-f, by
    potr_violations and by loops) and their cost, recomputed from the lists by loops, is that
    optimum (so the lists are optimal for Eq. 6.1 with the soft tiers)."""
    rng = np.random.default_rng(8)
    for seed in range(3):
        m = EUberMarket(EUberConfig())
        m.reset(np.random.default_rng(20 + seed))
        cars = CARSRecommender(m.n_workers)
        for slot in range(32):
            inst = m.instance()
            if slot == 5:
                inst = dataclasses.replace(inst, psi=1)
            if scores == "cars":
                score = cars.scores(inst.task_type)
            elif scores == "tied":
                score = rng.choice([0.1, 0.4, 0.7, 1.0], size=(inst.n_workers, 3))[:, inst.task_type]
            else:
                score = rng.random((inst.n_workers, inst.n_tasks))
            x = solve_potr(score, inst)
            xo = solve_potr(score, inst, solver="ortools")
            assert potr_warm_start_is_used(score, inst)
            viol = potr_violations(x, inst)
            assert viol["list_too_long"] == 0 and viol["ineligible_pairs"] == 0
            assert_potr_hard(x, inst)
            best = ortools_potr_cost(score, inst)
            assert flow_objective_by_loops(x, score, inst) == best
            assert flow_objective_by_loops(xo, score, inst) == best
            bids = m.behavioural_bids(inst, x)
            cars.update(x, np.isfinite(bids), inst.task_type)
            m.advance(inst, select_winners("bmw", bids, inst))


def test_network_simplex_kernel_matches_ortools_on_random_networks():
    """The kernel on random networks (several supply and demand nodes, parallel arcs, costs of
    both signs, infeasible instances): the same status and optimal cost as OR-Tools, and its
    flow is feasible (capacities, conservation)."""
    from ortools.graph.python import min_cost_flow

    from prosumer_gym.envs.euber.netsimplex import network_simplex

    rng = np.random.default_rng(1)
    n_infeasible = 0
    none = np.zeros(0, dtype=np.int64)
    for trial in range(200):
        n = int(rng.integers(2, 12))
        m = int(rng.integers(1, 40))
        tail = rng.integers(0, n, m)
        head = (tail + rng.integers(1, n, m)) % n  # no self-loops
        cap = rng.integers(1, 6, m)
        cost = rng.integers(-50, 50, m) * (10 ** int(rng.integers(0, 9)))
        supply = np.zeros(n, dtype=np.int64)
        for _ in range(int(rng.integers(1, 4))):
            a, b = rng.choice(n, 2, replace=False)
            k = int(rng.integers(1, 5))
            supply[a] += k
            supply[b] -= k
        # every other trial with a bogus warm start (zero flow, a tree of the first arcs): it
        # must be rejected (it is not a feasible flow when there is supply)
        bogus = (np.zeros(m, dtype=np.int64), np.full(n, 0, dtype=np.int64)) if trial % 4 == 3 else (none, none)
        status, flow, warm = network_simplex(n, tail, head, cap, cost, supply, bool(trial % 2), *bogus)
        assert not warm
        mcf = min_cost_flow.SimpleMinCostFlow()
        mcf.add_arcs_with_capacity_and_unit_cost(tail.astype(np.int32), head.astype(np.int32), cap, cost)
        mcf.set_nodes_supplies(np.arange(n), supply)
        ref = mcf.solve()
        if ref != mcf.OPTIMAL:
            assert ref == mcf.INFEASIBLE and status == 1
            n_infeasible += 1
            continue
        assert status == 0
        assert np.all((flow >= 0) & (flow <= cap))
        net = np.zeros(n, dtype=np.int64)
        np.add.at(net, tail, flow)
        np.subtract.at(net, head, flow)
        np.testing.assert_array_equal(net, supply)
        assert int(np.dot(flow, cost)) == mcf.optimal_cost()
    assert 0 < n_infeasible < 150  # both kinds were exercised


def test_pz_step_outputs_equal_a_per_agent_reference():
    """The vectorised per-agent rewards/infos of EUber-v0's step equal a plain per-worker loop
    over the slot's selection (payment - energy price x energy; won task; status)."""
    for mode in ("mask", "revive"):
        env = euber_v0.parallel_env(absent_agents=mode, n_slots=40)
        env.reset(seed=5)
        while env.agents:
            acted = list(env.agents)
            inst = env.last_instance
            _, rew, _, trunc, infos = env.step(env.default_actions())
            sel, mk = env.last_selection, env.market
            for a in acted:
                i = int(a.split("_")[1])
                js = np.flatnonzero(sel.q[i])
                if js.size:
                    j = int(js[0])
                    ref = (j, sel.payments[i, j], sel.bids[i, j], inst.need_kwh[i, j])
                else:
                    ref = (-1, 0.0, 0.0, 0.0)
                got = infos[a]
                assert (got["won_task"], got["payment_usd"], got["bid_usd"], got["energy_kwh"]) == ref
                assert rew[a] == ref[1] - env.energy_price * ref[3]
                assert type(rew[a]) is float and type(got["won_task"]) is int
                done = mk.slot >= env.n_slots
                away = not done and not env.last_instance.worker_available[i]
                assert got["status"] == (("charging" if mk.charging[i] else "busy") if away else "available")
                assert trunc[a] == (done or a not in env.agents)


# ----------------------------------------------------------------------------- fare model
def test_fare_model_loads_and_predicts():
    import torch

    root = resources.files("prosumer_gym.data")
    meta = json.loads((root / "fare_model.json").read_text())
    raw = (root / "fare_model.pt").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == meta["weights_sha256"]
    assert len(raw) < 200_000
    with resources.as_file(root / "fare_model.pt") as p:
        state = torch.load(p, weights_only=True)
    assert list(state) == meta["state_dict_keys"]
    assert state["0.weight"].shape == (meta["architecture"]["hidden"][0], meta["architecture"]["n_inputs"])
    fm = load_fare_model()
    trips = pgdata.taxi_trips()
    X = fare_features_from_trips(trips)
    y = trips["fare_usd"]
    test = np.arange(len(y)) % 5 == 0
    pred = fm.predict(X[test])
    r2 = 1 - np.sum((y[test] - pred) ** 2) / np.sum((y[test] - y[test].mean()) ** 2)
    assert r2 == pytest.approx(meta["r2_test"], abs=2e-3)
    assert r2 > 0.85
    # a longer trip costs more (same places and time)
    base = X[test][:50].copy()
    longer = base.copy()
    longer[:, 0] += 10.0
    assert np.mean(fm.predict(longer) > fm.predict(base)) > 0.9
    with pytest.raises(ValueError, match="last dimension"):
        fm.predict(np.zeros((3, 5)))


def test_fare_forward_pass_equals_plain_numpy_and_restores_blas_threads():
    """The forward pass (float32 layers on one BLAS thread, set on threadpoolctl's cached
    controllers) equals a plain NumPy pass to float32 precision and a float64 pass to 5e-6, and
    leaves the BLAS thread count as it found it."""
    from threadpoolctl import threadpool_info

    fm = load_fare_model()
    X = fare_features_from_trips(pgdata.taxi_trips())[:700]

    def blas_threads():
        return [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]

    before = blas_threads()
    got = fm.predict(X)
    assert blas_threads() == before
    h = ((X - fm.x_mean) / fm.x_std).astype(np.float32)
    for k, (w, b) in enumerate(zip(fm.weights, fm.biases)):
        assert w.dtype == b.dtype == np.float32  # the trained model's precision
        h = h @ w.T + b
        if k < len(fm.weights) - 1:
            h = np.maximum(h, 0.0)
    # (float32 resolution: the BLAS blocking of one thread vs several moves the last bits)
    np.testing.assert_allclose(got, h[:, 0].astype(np.float64) * fm.y_std + fm.y_mean, rtol=2e-6)
    # and the same fares as a float64 pass of the same weights, to float32 precision
    h64 = (X - fm.x_mean) / fm.x_std
    for k, (w, b) in enumerate(zip(fm.weights, fm.biases)):
        h64 = h64 @ w.T.astype(np.float64) + b.astype(np.float64)
        if k < len(fm.weights) - 1:
            h64 = np.maximum(h64, 0.0)
    np.testing.assert_allclose(got, h64[:, 0] * fm.y_std + fm.y_mean, rtol=5e-6)
    # precision="float64": the float64 pass of earlier releases (exactly upcast weights)
    np.testing.assert_allclose(fm.predict(X, "float64"), h64[:, 0] * fm.y_std + fm.y_mean, rtol=1e-12)
    with pytest.raises(ValueError, match="precision"):
        fm.predict(X, "float16")
    with pytest.raises(ValueError, match="fare_precision"):
        EUberConfig(fare_precision="half").validate()
    # a pair's price does not depend on the other rows priced with it (the env prices subsets)
    np.testing.assert_array_equal(fm.predict(X[:37]), got[:37])


# ----------------------------------------------------------------------------- CARS
def test_cars_learns_preferences():
    m = EUberMarket(EUberConfig(n_workers=20, n_ride_tasks=10, n_v2g_tasks=6))
    m.reset(np.random.default_rng(0))
    cars = CARSRecommender(20)
    mae0 = cars.mae(m.alpha)
    assert 0.15 < mae0 < 0.45
    for _ in range(60):
        inst = m.instance()
        x = solve_potr(cars.scores(inst.task_type), inst)
        bids = m.behavioural_bids(inst, x)
        cars.update(x, np.isfinite(bids), inst.task_type)
        m.advance(inst, select_winners("bmw", bids, inst))
    assert cars.mae(m.alpha) < 0.6 * mae0
    assert cars.m.sum() > 20 * 3  # observations were counted


# ----------------------------------------------------------------------------- orderings (small, fast)
def _day(name, seed=0, slots=24):
    kw = dict(n_workers=40, n_ride_tasks=10, n_v2g_tasks=8, n_slots=slots)
    if name == "BG":
        kw.update(bg_env_kwargs())
    else:
        kw["mechanism"] = "opt" if name.endswith("OPT") else "bmw"
    env = EUberGymEnv(**kw)
    obs, _ = env.reset(seed=seed)
    agent = CARSRecommender(40) if name.startswith("CARS") else PKRecommender(env.market.alpha)
    done = False
    while not done:
        obs, _, _, done, info = env.step(agent.act(obs))
        agent.observe(info)
    return dict(env.market.totals)


def test_orderings_small_day():
    res = {k: _day(k) for k in ("PK-OPT", "PK-BMW", "CARS-BMW", "BG")}
    # BG ignores the V2G budget: least V2G energy and the most infeasible slots (paper, 6.4.2)
    for k in ("PK-OPT", "PK-BMW", "CARS-BMW"):
        assert res["BG"]["v2g_kwh"] < res[k]["v2g_kwh"]
        assert res["BG"]["infeasible_slots"] >= res[k]["infeasible_slots"]
    assert res["PK-OPT"]["tasks_served"] >= res["BG"]["tasks_served"]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(K=0), "K must be"),
        (dict(mechanism="auction"), "mechanism must be one of"),
        (dict(recommender="ucb"), "recommender must be one of"),
        (dict(projection="lp"), "projection must be one of"),
        (dict(lam_km=-1.0), "lam_km"),
        (dict(n_workers=0), "n_workers"),
        (dict(alpha_levels=(0.5, 1.5)), "alpha_levels"),
        (dict(energy_requirement_frac=float("nan")), "energy_requirement_frac"),
        (dict(split="dev"), "split must be one of"),
        (dict(foo=1), "unknown keyword"),
        (dict(n_slots=5, max_cycles=6), "disagree"),
        (dict(absent_agents="drop"), "absent_agents"),
        (dict(n_ride_tasks=0, n_v2g_tasks=0), "must be >= 1"),
    ],
)
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        euber_v0.parallel_env(**kw)


def test_bad_actions_and_calls():
    env = euber_v0.parallel_env(**SMALL, n_slots=2, absent_agents="mask")
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=-1)
    env.reset(seed=0)
    good = env.default_actions()
    a = env.agents[0]
    for bad, match in [(np.full(5, np.nan), "finite"), (np.zeros(3), "shape"), (np.full(5, 9.0), "lie in"),
                       ("x", "numeric")]:
        acts = dict(good)
        acts[a] = bad
        with pytest.raises(ValueError, match=match):
            env.step(acts)
    acts = dict(good)
    del acts[a]
    with pytest.raises(ValueError, match="missing"):
        env.step(acts)
    with pytest.raises(ValueError, match="dict"):
        env.step([0])
    env.step(good)
    env.step(env.default_actions())
    with pytest.raises(RuntimeError, match="finished"):
        env.step(env.default_actions())
    genv = EUberGymEnv(**SMALL, n_slots=1)
    with pytest.raises(RuntimeError, match="reset"):
        genv.step(genv.action_space.sample())
    genv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        genv.step(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="reward must be"):
        EUberGymEnv(reward="profit")
    inst = tiny_instance(np.random.default_rng(0))
    with pytest.raises(ValueError, match="bids must"):
        select_winners("opt", np.full((4, 4), -1.0), inst)
    with pytest.raises(ValueError, match="shape"):
        select_winners("opt", np.ones((3, 4)), inst)
    with pytest.raises(ValueError, match="mechanism"):
        select_winners("greedy", np.ones((4, 4)), inst)
    with pytest.raises(ValueError, match="n_workers"):
        CARSRecommender(0)
    with pytest.raises(ValueError, match="alpha"):
        PKRecommender(np.ones((3, 2)))


def test_random_recommender_and_render():
    env = EUberGymEnv(**SMALL, n_slots=3)
    obs, _ = env.reset(seed=0)
    rnd = RandomRecommender(1)
    a = rnd.act(obs)
    assert env.action_space.contains(a)
    _, r, _, _, info = env.step(a)
    assert r == info["n_bids"] and info["potr"]["ineligible_pairs"] == 0
    penv = euber_v0.parallel_env(**SMALL, n_slots=2, render_mode="rgb_array")
    penv.reset(seed=0)
    penv.step(penv.default_actions())
    img = penv.render()
    assert img.ndim == 3 and img.shape[2] == 3


# ----------------------------------------------------------------------------- literal switches (issue 16)
def _feed_hash(h, v):
    """Feed nested dicts/lists/arrays/scalars into ``h`` in a fixed order."""
    if isinstance(v, dict):
        for k in sorted(v):
            h.update(str(k).encode())
            _feed_hash(h, v[k])
    elif isinstance(v, (list, tuple)):
        for x in v:
            _feed_hash(h, x)
    elif isinstance(v, np.ndarray):
        h.update(str(v.dtype).encode())
        h.update(np.ascontiguousarray(v).tobytes())
    else:
        h.update(repr(v).encode())


def _pz_trajectory_hash(seed, **kw):
    env = euber_v0.parallel_env(**kw)
    obs, _ = env.reset(seed=seed)
    h = hashlib.sha256()
    _feed_hash(h, obs)
    while env.agents:
        _feed_hash(h, env.step(env.default_actions()))
    return h.hexdigest()[:16]


def _gym_trajectory_hash(seed, rec="cars", **kw):
    env = EUberGymEnv(**kw)
    obs, _ = env.reset(seed=seed)
    agent = CARSRecommender(env.config.n_workers) if rec == "cars" else PKRecommender(env.market.alpha)
    h = hashlib.sha256()
    _feed_hash(h, obs)
    done = False
    while not done:
        obs, r, _, done, info = env.step(agent.act(obs))
        agent.observe(info)
        _feed_hash(h, (obs, r, info))
    return h.hexdigest()[:16]


_HASH_SIZE = dict(n_workers=30, n_ride_tasks=8, n_v2g_tasks=6)
_ORT = dict(projection="potr-ortools", fare_precision="float64")
#: full trajectories (observations, rewards, infos) hashed on main before the literal switches
#: were added (commit db6e7b2): with POTR by OR-Tools (the default until issue 17's third pass)
#: and the float64 fare pass (the default until its fourth) they are reproduced bit for bit;
#: the top-K run (last) does not solve POTR
PINNED_ORTOOLS = [
    (lambda: _pz_trajectory_hash(0, **_HASH_SIZE, n_slots=16, **_ORT), "5dc47e06bae9ce5c"),
    (lambda: _pz_trajectory_hash(1, recommender="pk", mechanism="opt", **_HASH_SIZE, n_slots=12, **_ORT),
     "f158a0301a9b87eb"),
    (lambda: _gym_trajectory_hash(2, n_slots=10, **_ORT), "931354c2a299812a"),  # paper size
    (lambda: _gym_trajectory_hash(3, rec="pk", mechanism="opt", **_HASH_SIZE, n_slots=16, **_ORT), "7a68c82c3e69ee35"),
    (lambda: _gym_trajectory_hash(4, rec="pk", **bg_env_kwargs(), **_HASH_SIZE, n_slots=12, fare_precision="float64"),
     "8f16a11796ece364"),
]
_F64 = dict(fare_precision="float64")
#: the same runs with POTR by the network simplex (other optimal lists where several are
#: optimal) and the float64 fare pass, hashed when the network simplex became the default
PINNED_SIMPLEX_F64 = [
    (lambda: _pz_trajectory_hash(0, **_HASH_SIZE, n_slots=16, **_F64), "30397a761d271ee0"),
    (lambda: _pz_trajectory_hash(1, recommender="pk", mechanism="opt", **_HASH_SIZE, n_slots=12, **_F64),
     "14ee53fccd44f6f1"),
    (lambda: _gym_trajectory_hash(2, n_slots=10, **_F64), "2376840a1a8d7968"),  # paper size
    (lambda: _gym_trajectory_hash(3, rec="pk", mechanism="opt", **_HASH_SIZE, n_slots=16, **_F64), "b1a4b70021f3c506"),
]
#: the same runs with the defaults (network simplex, float32 fare layers), hashed when the
#: float32 pass became the default
PINNED = [
    (lambda: _pz_trajectory_hash(0, **_HASH_SIZE, n_slots=16), "70cbfb5c90b9b252"),
    (lambda: _pz_trajectory_hash(1, recommender="pk", mechanism="opt", **_HASH_SIZE, n_slots=12), "dfad9e66cdb70e53"),
    (lambda: _gym_trajectory_hash(2, n_slots=10), "ff30057c169e685d"),  # paper size
    (lambda: _gym_trajectory_hash(3, rec="pk", mechanism="opt", **_HASH_SIZE, n_slots=16), "bb04992c96d4f150"),
]


@pytest.mark.parametrize("k", range(len(PINNED_ORTOOLS)))
def test_ortools_projection_is_bit_identical_to_pinned_trajectories(k):
    run, expected = PINNED_ORTOOLS[k]
    assert run() == expected


@pytest.mark.parametrize("k", range(len(PINNED_SIMPLEX_F64)))
def test_float64_fares_reproduce_the_network_simplex_pins(k):
    run, expected = PINNED_SIMPLEX_F64[k]
    assert run() == expected


@pytest.mark.parametrize("k", range(len(PINNED)))
def test_defaults_are_bit_identical_to_pinned_trajectories(k):
    run, expected = PINNED[k]
    assert run() == expected


def test_explicit_default_switches_equal_the_defaults():
    kw = dict(charge_margin_km=15.0, potr_constraints="soft", bmw_guard=True, projection="potr")
    assert _pz_trajectory_hash(0, **_HASH_SIZE, n_slots=16, **kw) == PINNED[0][1]


def test_literal_charging_trigger_only_below_rmin():
    """charge_margin_km=0: a worker charges only when r < r_min (the paper's trigger); with the
    default margin of 15 km also when r_min <= r < r_min + 15."""
    out = {}
    for margin in (0.0, 15.0):
        m = EUberMarket(EUberConfig(**SMALL, charge_margin_km=margin))
        m.reset(np.random.default_rng(0))
        inst = m.instance()
        m.range[:3] = m.rmin[:3] + np.array([5.0, 0.0, -0.1])  # above, at, below the minimum
        empty = select_winners("bmw", np.full((inst.n_workers, inst.n_tasks), np.inf), inst)
        went = set(m.advance(inst, empty)["went_charging"].tolist())
        out[margin] = went
        for i in range(3):
            assert bool(m.charging[i]) == (i in went)
    assert out[0.0] & {0, 1, 2} == {2}
    assert out[15.0] & {0, 1, 2} == {0, 1, 2}


def test_literal_charging_trigger_is_never_reached_in_a_day():
    """Eq. 6.1d keeps every winner at r >= r_min, so with the literal trigger nobody charges and
    ranges stay at or above r_min (docs/euber.md, deviation 7); the default margin does charge."""
    charged = {}
    for margin in (0.0, 15.0):
        env = EUberGymEnv(**SMALL, n_slots=48, charge_margin_km=margin)
        obs, _ = env.reset(seed=5)
        agent = PKRecommender(env.market.alpha)
        done, n = False, 0
        while not done:
            obs, _, _, done, info = env.step(agent.act(obs))
            agent.observe(info)
            n += int(env.market.charging.sum())
            assert np.all(env.market.range >= env.market.rmin - 1e-9)
        charged[margin] = n
    assert charged[0.0] == 0 and charged[15.0] > 0


def literal_potr_ok(x, inst):
    """Plain-loop check of Eqs. 6.1a-f as printed (6.1b-c hard, no capping)."""
    W, S = inst.n_workers, inst.n_tasks
    need = math.ceil(inst.v2g_min - 1e-9)
    for i in range(W):
        n = sum(int(x[i][j]) for j in range(S))
        nv = sum(int(x[i][j]) for j in range(S) if inst.task_type[j] == 2)
        if n > inst.K or (inst.worker_available[i] and nv < need):
            return False
        if any(x[i][j] and not inst.eligible[i][j] for j in range(S)):
            return False
    return all(sum(int(x[i][j]) for i in range(W)) >= inst.psi for j in range(S))


def test_literal_potr_is_optimal_or_reports_infeasible_by_enumeration():
    from prosumer_gym.envs.euber_market import solve_potr_literal

    rng = np.random.default_rng(7)
    n_feasible = n_infeasible = 0
    for trial in range(40):
        inst = tiny_instance(rng, W=3, S=4, n_v2g=2)
        inst = dataclasses.replace(inst, eligible=rng.random((3, 4)) < 0.75, psi=1 + trial % 2,
                                   v2g_min=float(trial % 3 != 0))
        score = rng.integers(0, 5, (3, 4)) / 4.0
        best = None
        for bits in itertools.product((0, 1), repeat=12):
            cand = np.array(bits, dtype=np.int8).reshape(3, 4)
            if literal_potr_ok(cand, inst):
                v = float((cand * score).sum())
                best = v if best is None or v > best else best
        x = solve_potr_literal(score, inst)
        if best is None:
            assert x is None
            n_infeasible += 1
        else:
            assert x is not None and literal_potr_ok(x, inst)
            assert float((x * score).sum()) == pytest.approx(best, abs=1e-9)
            n_feasible += 1
    assert n_feasible >= 5 and n_infeasible >= 5


def test_literal_potr_infeasible_only_when_the_printed_constraints_are():
    """A flow-level infeasibility (every necessary per-task/per-worker count holds, but the
    lists cannot be long enough) and the paper-size default, where 6.1c is impossible."""
    from prosumer_gym.envs.euber_market import solve_potr_literal

    inst = tiny_instance(np.random.default_rng(0), W=2, S=2, n_v2g=0)
    inst = dataclasses.replace(inst, eligible=np.array([[True, True], [False, False]]), K=1, psi=1)
    assert solve_potr_literal(np.ones((2, 2)), inst) is None  # worker 0 would need both tasks
    ok = dataclasses.replace(inst, eligible=np.array([[True, True], [True, False]]))
    x = solve_potr_literal(np.ones((2, 2)), ok)
    assert x is not None and x.tolist() == [[0, 1], [1, 0]]
    m = EUberMarket(EUberConfig())
    m.reset(np.random.default_rng(0))
    big = m.instance()
    assert solve_potr_literal(np.ones((big.n_workers, big.n_tasks)), big) is None
    need = math.ceil(big.v2g_min - 1e-9)
    avail = np.flatnonzero(big.worker_available)
    assert any(sum(bool(big.eligible[i, j]) for j in np.flatnonzero(big.is_v2g)) < need for i in avail)


def test_hard_potr_env_lists_meet_61bc_or_fall_back_and_count():
    """potr_constraints="hard": on every slot the literal POTR is feasible the lists satisfy
    6.1a-f exactly (plain loops); other slots get the soft lists and are counted."""
    kw = dict(n_workers=30, n_ride_tasks=6, n_v2g_tasks=4, lam_km=60.0, n_slots=8, init_range_frac=(0.9, 1.0))
    env = EUberGymEnv(potr_constraints="hard", **kw)
    soft = EUberGymEnv(**kw)
    obs, _ = env.reset(seed=1)
    soft.reset(seed=1)
    agent = PKRecommender(env.market.alpha)
    done, fell = False, 0
    while not done:
        inst = env._inst
        act = agent.act(obs)
        obs, _, _, done, info = env.step(act)
        agent.observe(info)
        x = info["recommended"]
        if info["potr_fallback"]:
            fell += 1
            assert not literal_potr_ok(solve_potr(act, inst), inst)
        else:
            assert literal_potr_ok(x, inst)
        assert info["totals"]["potr_fallback_slots"] == fell
    assert fell < 8  # this dense market is mostly feasible
    assert "potr_fallback" not in soft.step(PKRecommender(soft.market.alpha).act(soft._obs()))[4]
    penv = euber_v0.parallel_env(potr_constraints="hard", recommender="pk", **kw)
    penv.reset(seed=1)
    _, _, _, _, infos = penv.step(penv.default_actions())
    assert isinstance(next(iter(infos.values()))["market"]["potr_fallback"], bool)


def test_bmw_without_guard_is_alg8_as_printed():
    """E out of reach (a V2G task nobody bids on): the guard keeps the full matching; Alg. 8 as
    printed keeps removing the matched ride edges."""
    inst = tiny_instance(np.random.default_rng(3), W=3, S=4, n_v2g=2)
    bids = np.array([[2.0, 3.0, 4.0, np.inf], [3.0, 2.0, np.inf, np.inf], [4.0, 5.0, np.inf, np.inf]])
    guarded = select_winners("bmw", bids, inst)
    literal = select_winners("bmw", bids, inst, bmw_guard=False)
    for sel in (guarded, literal):
        assert_selection_ok(sel)
        assert sel.status == "budget_not_met" and not sel.feasible
    rides = lambda s: int(s.q[:, :2].sum())  # noqa: E731
    assert rides(guarded) == 2 and rides(literal) < rides(guarded)
    assert literal.v2g_delivered_kwh >= guarded.v2g_delivered_kwh


@pytest.mark.parametrize("kw, match", [
    (dict(potr_constraints="strict"), "potr_constraints must be one of"),
    (dict(potr_constraints=None), "potr_constraints"),
    (dict(bmw_guard="yes"), "bmw_guard"),
    (dict(charge_margin_km=-1.0), "charge_margin_km"),
    (dict(charge_margin_km=float("nan")), "charge_margin_km"),
])
def test_bad_literal_switches(kw, match):
    with pytest.raises(ValueError, match=match):
        euber_v0.parallel_env(**kw)
    with pytest.raises(ValueError, match=match):
        EUberGymEnv(**kw)


def _obs_reference(env) -> np.ndarray:
    """The observation rows (``OBS_NAMES``) by the vectorised NumPy formulas of the env card."""
    inst, mk, K = env._inst, env.market, env.config.K
    o = np.zeros((inst.n_workers, 4 + 8 * K), dtype=np.float32)
    o[:, 0] = np.clip(mk.range / mk.range_max, 0, 1)
    o[:, 1] = np.clip((mk.range - mk.rmin) / mk.range_max, 0, 1)
    o[:, 2:4] = np.clip(mk.pos / 50.0, -10, 10)
    wi, k = np.nonzero((env._lists >= 0) & inst.worker_available[:, None])
    j = env._lists[wi, k]
    z = inst.task_type[j]
    spare = np.maximum((mk.range[wi] - mk.rmin[wi]) * mk.e[wi], 1e-9)
    tkm = np.where(z == 2, inst.task_energy_kwh[j] / mk.e[wi], inst.task_trip_km[j])
    c = 4 + 8 * k
    o[wi, c] = 1.0
    o[wi, c + 1 + z] = 1.0
    o[wi, c + 4] = np.minimum(inst.approach_km[wi, j] / env.config.lam_km, 1.0)
    o[wi, c + 5] = np.minimum(tkm / 100.0, 10.0)
    o[wi, c + 6] = np.minimum(inst.need_kwh[wi, j] / spare, 1.0)
    o[wi, c + 7] = np.minimum(env._ref[wi, j] / 100.0, 10.0)
    return o


def test_compiled_slot_passes_equal_the_numpy_formulas_bit_for_bit():
    """The compiled per-slot passes (pair geometry, observations, the workers' move and charging,
    CARS's Eqs. 6.7-6.8, the second price and the Eq. 6.3 counts) give exactly the values of the NumPy expressions
    they replaced, over 40 paper-size slots with random bids."""
    env = euber_v0.parallel_env(n_slots=40)
    env.reset(seed=7)
    rng = np.random.default_rng(7)
    for _ in range(40):
        inst, mk = env._inst, env.market
        dx = inst.worker_pos_km[:, 0, None] - inst.task_start_km[None, :, 0]
        dy = inst.worker_pos_km[:, 1, None] - inst.task_start_km[None, :, 1]
        appr = np.sqrt(dx ** 2 + dy ** 2)
        v2g = inst.task_type == 2
        need = np.where(v2g[None, :], appr * inst.worker_e[:, None] + inst.task_energy_kwh[None, :],
                        (appr + inst.task_trip_km[None, :]) * inst.worker_e[:, None])
        spare = (inst.worker_range_km - inst.worker_rmin_km) * inst.worker_e
        elig = inst.worker_available[:, None] & (appr <= env.config.lam_km) & (need <= spare[:, None] + 1e-12)
        assert np.array_equal(inst.approach_km, appr) and np.array_equal(inst.need_kwh, need)
        assert np.array_equal(inst.eligible, elig)
        got = env._observations(env.possible_agents)
        assert np.array_equal(np.stack([got[a] for a in env.possible_agents]), _obs_reference(env))
        cars, x = env.platform, env._x.copy()
        a0, m0, r0 = cars.alpha_hat.copy(), cars.m.copy(), cars.cum_reward
        rng0, pos0, busy0, chg0 = mk.range.copy(), mk.pos.copy(), mk.busy_until.copy(), mk.charging.copy()
        acts = {a: (rng.uniform(0, 2, env.action_space(a).shape) * (rng.random() < 0.8)).astype(np.float32)
                for a in env.agents}
        env.step(acts)
        sel = env.last_selection
        # the workers' move, busy time and charging (EUberMarket.advance) by NumPy expressions
        cfg, slot_s = env.config, 900.0
        wi, tj = np.nonzero(sel.q)
        ap = inst.approach_km[wi, tj]
        km = np.where(v2g[tj], ap + inst.task_energy_kwh[tj] / mk.e[wi], ap + inst.task_trip_km[tj])
        rng0[wi] -= km
        pos0[wi] = inst.task_end_km[tj]
        dur = ap / cfg.speed_kmh * 3600.0 + np.where(v2g[tj], slot_s, inst.task_seconds[tj])
        t = mk.slot - 1
        busy0[wi] = t + np.maximum(1, np.ceil(dur / slot_s - 1e-9)).astype(np.int64)
        chg0[chg0 & (busy0 <= t + 1)] = False
        low = (rng0 < mk.rmin + cfg.charge_margin_km) & ~chg0
        need_slots = np.ceil((mk.range_max[low] - rng0[low]) * mk.e[low] / (cfg.charger_kw * slot_s / 3600.0))
        busy0[low] = np.maximum(busy0[low], t + 1) + np.maximum(1, need_slots).astype(np.int64)
        rng0[low] = mk.range_max[low]
        chg0[low] = True
        assert np.array_equal(mk.range, rng0) and np.array_equal(mk.pos, pos0)
        assert np.array_equal(mk.busy_until, busy0) and np.array_equal(mk.charging, chg0)
        # Eqs. 6.7-6.8 as (W, S) x (S, 3) count products
        rec, bid = x > 0, np.isfinite(sel.bids)
        onehot = (inst.task_type[:, None] == np.arange(3)[None, :]).astype(np.float64)
        n_all, k_all = rec.astype(np.float64) @ onehot, (rec & bid).astype(np.float64) @ onehot
        assert np.array_equal(cars.m, m0 + n_all)
        assert np.array_equal(cars.alpha_hat, (a0 * m0 + k_all) / (m0 + n_all))
        assert cars.cum_reward == r0 + float((rec & bid).sum())
        # second price: the lowest other bid on the task at or above the winner's own, else its own
        for i, j in zip(*np.nonzero(sel.q)):
            other = np.delete(sel.bids[:, j], i)
            higher = other[np.isfinite(other) & (other >= sel.bids[i, j])]
            assert sel.payments[i, j] == (higher.min() if higher.size else sel.bids[i, j])
        assert np.all(sel.payments[sel.q == 0] == 0)
        served = sel.q.sum(axis=0)
        has_bid = np.isfinite(sel.bids).any(axis=0)
        assert sel.unserved_ride == int(np.sum(served[~v2g] < 1))
        assert sel.ride_with_bids_unserved == int(np.sum((served < 1) & ~v2g & has_bid))
        if not env.agents:
            break
