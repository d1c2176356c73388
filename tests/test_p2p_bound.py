"""Tests of P2PTrading-v0's certified clearing bound and the near-exact ``bnb`` clearing
(sigmoidal-programming branch and bound, ``clearing/bound.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from prosumer_gym.core.prospect import PTParams, pt_value
from prosumer_gym.envs.p2p_trading.clearing.bound import _Sigmoids, certified_bound
from prosumer_gym.envs.p2p_trading.clearing.milp import gain_lost_share, no_trade_value
from prosumer_gym.envs.p2p_trading_market import DEFAULT_MECHANISM, MECHANISMS, MarketInstance, clear, random_instance
from tests.checkers import check_constraints, objective_loop


def test_envelope_tangent_point_supports_phi():
    # the line from (l, phi(l)) touching phi at t(l) has phi's slope at t and lies above phi
    rng = np.random.default_rng(0)
    for _ in range(200):
        c = rng.uniform(0.05, 2.0)
        kp, kn = rng.uniform(2.1, 2.61, 2)
        zp, zn = rng.uniform(0.6, 0.88), rng.uniform(0.52, 1.0)
        sig = _Sigmoids(np.array([c]), np.array([kp]), np.array([kn]), np.array([zp]), np.array([zn]))
        lo = rng.uniform(0.0, c)
        hi = c + rng.uniform(0.0, 3.0) * c
        t = sig.tangent_point(0, lo, hi)
        grid = np.linspace(lo, hi, 2001)
        f = sig.f(grid, np.zeros(grid.size, dtype=int))
        flo = float(sig.f(np.array([lo]), np.array([0]))[0])
        if np.isfinite(t):
            assert c < t <= hi
            ft = float(sig.f(np.array([t]), np.array([0]))[0])
            slope = float(sig.df_gain(np.array([t]), np.array([0]))[0])
            assert slope == pytest.approx((ft - flo) / (t - lo), rel=1e-7)
            env = np.where(grid <= t, flo + slope * (grid - lo), f)
        else:  # the chord lo -> hi is the envelope
            fhi = float(sig.f(np.array([hi]), np.array([0]))[0])
            env = flo + (fhi - flo) / (hi - lo) * (grid - lo)
        assert np.all(env >= f - 1e-9 * (1 + np.abs(f)))
        # concave: second differences <= 0
        assert np.all(np.diff(env, 2) <= 1e-9)


def _brute_force_optimum(inst: MarketInstance, steps: int) -> float:
    """Best objective over a grid of every pair's energy (0 or ``mu`` .. its largest piece),
    vectorised, the winner re-checked by the independent plain-loop checker: a feasible
    clearing, so a lower bound on the optimum that converges to it."""
    S, B = inst.n_sellers, inst.n_buyers
    mu, w, r = inst.min_trade_kwh, inst.demand_kwh, inst.surplus_kwh
    levels = [np.concatenate([[0.0], np.linspace(mu, min(w[j], r[i]), steps)]) if inst.allowed[i, j] else np.zeros(1)
              for i in range(S) for j in range(B)]
    E = np.stack(np.meshgrid(*levels, indexing="ij"), axis=-1).reshape(-1, S, B)
    ok = np.all(((1 + inst.loss)[None] * E).sum(axis=2) <= r[None] + 1e-12, axis=1)
    ok &= np.all(E.sum(axis=1) <= w[None] + 1e-12, axis=1)
    E = E[ok]
    a = inst.grid_sell_price - inst.seller_price
    s = np.einsum("nij,i->nj", E, a)
    kp, kn, zp, zn = inst.pt_args()
    val = pt_value(s - inst.ref_gap[None], kp, kn, zp, zn).sum(axis=1)
    k = int(np.argmax(val))
    x = E[k] / w[None, :]
    price = np.broadcast_to(inst.seller_price[:, None], (S, B))
    assert check_constraints(inst, x.tolist(), price.tolist()) == []
    best = objective_loop(inst, x, price)
    assert best == pytest.approx(float(val[k]), abs=1e-9)
    return best


@pytest.mark.parametrize("seed", range(4))
def test_bound_is_valid_and_tight_against_brute_force(seed):
    # 2 sellers x 2 buyers with scarce supply, so the S-shape matters; the grid optimum is a
    # feasible clearing (lower bound on the true optimum): the certified bound is above it,
    # and the branch and bound's clearing at least as good
    rng = np.random.default_rng([18, seed])
    inst = MarketInstance(surplus_kwh=rng.uniform(0.5, 3.0, 2), demand_kwh=rng.uniform(1.0, 4.0, 2),
                          seller_price=rng.uniform(0.06, 0.11, 2), buyer_ref_price=rng.uniform(0.08, 0.11, 2),
                          loss=rng.uniform(0.0, 0.02, (2, 2)), pt=PTParams(rng.uniform(2.1, 2.61, 2),
                                                                           rng.uniform(2.1, 2.61, 2),
                                                                           rng.uniform(0.6, 0.88, 2),
                                                                           rng.uniform(0.52, 1.0, 2)))
    grid = _brute_force_optimum(inst, 40)
    res = certified_bound(inst)
    assert res.proven
    assert res.upper_bound >= grid - 1e-12
    assert res.lower_bound >= grid - 1e-9 * abs(grid)  # the search's clearing is at least the grid's best
    assert res.lower_bound <= res.upper_bound
    al = clear(inst, "bnb")  # the default's clearing, improved until within 1e-5 of the gain
    assert gain_lost_share(al.objective, res.upper_bound, res.no_trade_value) <= 1e-5
    assert al.objective >= grid - 1e-5 * (res.upper_bound - res.no_trade_value)
    assert check_constraints(inst, al.x.tolist(), al.price.tolist()) == []


def test_bound_certifies_the_milp_optimum_and_is_tighter():
    # on synthetic 5x5/6x6 days (two of them the concentration days of test_p2p_clearing) the
    # bound lies between the MILP's proven optimum and the MILP's own (PWL) bound, and the
    # branch and bound's clearing matches the MILP optimum
    for n, seed in ((5, 31), (6, 15), (5, 3), (6, 4)):
        inst = random_instance(np.random.default_rng([18, n, seed]), n, n)
        m = clear(inst, "milp", time_limit=30.0, n_breakpoints=24, n_tangents=24)
        assert m.stats["proven_optimal"]
        res = certified_bound(inst)
        assert res.proven
        span = res.upper_bound - res.no_trade_value
        assert res.upper_bound >= m.objective - 1e-12
        assert res.upper_bound <= m.stats["upper_bound"] + 1e-5 * span  # UB - LB <= 1e-5 span, LB <= opt
        b = clear(inst, "bnb")
        assert b.stats["upper_bound_proven"]
        assert gain_lost_share(b.objective, res.upper_bound, res.no_trade_value) <= 1e-5 + 1e-12
        assert b.objective >= m.objective - 1e-6 * span
        # every other mechanism's clearing is below the bound
        for mech in MECHANISMS:
            if mech in ("debate", "bnb", "milp", "rule"):  # rule is valued at its mid-market prices
                continue
            assert clear(inst, mech, rng=np.random.default_rng(0)).objective <= res.upper_bound + 1e-12


def test_bound_stops_at_its_limits_and_stays_valid():
    inst = random_instance(np.random.default_rng([18, 6, 15]), 6, 6)
    full = certified_bound(inst)
    one = certified_bound(inst, node_limit=1)
    assert one.nodes == 1 and not one.proven
    assert one.upper_bound >= full.upper_bound - 1e-12  # the root bound: looser, still valid
    base = no_trade_value(inst)
    assert full.no_trade_value == base
    inc = clear(inst, DEFAULT_MECHANISM, rng=np.random.default_rng(1))
    warm = certified_bound(inst, inc.objective)
    assert warm.upper_bound == pytest.approx(full.upper_bound, abs=1e-5 * (full.upper_bound - base))
    assert warm.lower_bound >= inc.objective
    again = certified_bound(inst, inc.objective)
    assert again.upper_bound == warm.upper_bound and again.nodes == warm.nodes  # deterministic


def test_bound_on_degenerate_days():
    rng = np.random.default_rng(3)
    base = random_instance(rng, 4, 5)
    fields = {k: getattr(base, k) for k in ("surplus_kwh", "demand_kwh", "seller_price", "buyer_ref_price", "loss", "pt")}
    for change in (dict(surplus_kwh=np.zeros(4)), dict(demand_kwh=np.zeros(5)), dict(loss=np.full((4, 5), 0.04)),
                   dict(seller_price=np.full(4, 0.12))):
        inst = MarketInstance(**{**fields, **change})
        res = certified_bound(inst)
        assert res.proven
        assert res.upper_bound == pytest.approx(no_trade_value(inst), abs=1e-9)


def test_bound_rejects_bad_input():
    inst = random_instance(np.random.default_rng(0), 3, 3)
    with pytest.raises(ValueError, match="rel_gap"):
        certified_bound(inst, rel_gap=0.0)
    with pytest.raises(ValueError, match="node_limit"):
        certified_bound(inst, node_limit=0)
    with pytest.raises(ValueError, match="time_limit"):
        certified_bound(inst, time_limit=-1.0)
    f = {k: getattr(inst, k) for k in ("surplus_kwh", "demand_kwh", "seller_price", "buyer_ref_price", "loss")}
    convex_gain = MarketInstance(**f, pt=PTParams(np.full(3, 2.2), np.full(3, 2.2), np.full(3, 1.2), np.full(3, 0.8)))
    with pytest.raises(ValueError, match="zeta"):
        certified_bound(convex_gain)
    with pytest.raises(ValueError, match="node_limit"):
        clear(inst, "bnb", node_limit=-3)


def test_env_reports_the_certificate():
    from prosumer_gym.envs import p2p_trading_v0

    for kw in ({"mechanism": "bnb"}, {"mechanism_kwargs": {"certify": True}}):
        env = p2p_trading_v0.parallel_env(n_sellers=4, n_buyers=4, n_days=3, **kw)
        env.reset(seed=0)
        for _ in range(3):
            _, _, _, _, infos = env.step({a: 1 for a in env.agents})
            m = infos[env.possible_agents[0]]["market"]
            assert m["feasible"] and m["upper_bound_proven"]
            assert m["no_trade_value"] <= m["buyers_pt_value"] <= m["upper_bound"] + 1e-12
            assert 0.0 <= m["gain_lost_share"] <= (1e-5 if kw.get("mechanism") == "bnb" else 1.0)


def test_polish_keeps_feasibility_and_never_loses():
    # the kernel's local search from a crude feasible clearing (Zhu's) is feasible by the
    # independent checker and at least as good; from its own local optimum it is a fixed point
    from prosumer_gym.envs.p2p_trading.clearing.savings import polish
    from prosumer_gym.envs.p2p_trading.clearing._common import x_from_energy

    gains = []
    for k in range(6):
        inst = random_instance(np.random.default_rng([21, k]), 5 + k, 6)
        start = clear(inst, "zhu")
        e0 = start.x * inst.demand_kwh[None, :]
        e1 = polish(inst, e0)
        x1 = x_from_energy(inst, e1)
        assert check_constraints(inst, x1) == []
        v1 = objective_loop(inst, x1)
        assert v1 >= objective_loop(inst, start.x) - 1e-12
        assert np.array_equal(polish(inst, e1), e1)
        gains.append(v1 - objective_loop(inst, start.x))
    assert max(gains) > 1e-6  # it does move


def test_bnb_child_incumbents_and_polish_stay_valid():
    # with a node budget, polished incumbents: feasible, below the certified bound, and no
    # worse than without polishing on these days; the option is checked
    for k in range(4):
        inst = random_instance(np.random.default_rng([22, k]), 7, 7, seller_price=(0.06, 0.12))
        plain = clear(inst, "bnb", node_limit=5)
        pol = clear(inst, "bnb", node_limit=5, polish=True)
        for al in (plain, pol):
            assert check_constraints(inst, al.x) == []
            assert al.objective <= al.stats["upper_bound"] + 1e-12
        assert pol.objective >= plain.objective - 1e-9 * abs(plain.objective)
    with pytest.raises(ValueError, match="polish"):
        clear(inst, "bnb", polish=1)
