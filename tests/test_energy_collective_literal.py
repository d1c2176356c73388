"""EnergyCollective-v0's literal switch for the P2P preference term (slides 002, MBED):
``preference="signed"`` / ``p2p_preference="signed"`` prices ``c_n gamma_nm P_nm`` as printed."""

from __future__ import annotations

import numpy as np
import pytest

from prosumer_gym.agents.energy_collective import best_response_actions
from prosumer_gym.envs import energy_collective_market as mk
from prosumer_gym.envs import energy_collective_v0

SMALL = dict(n_prosumers=3, n_flexible=3, n_inflexible=2, n_chp=2, n_peak=1)


def _near_far(pref: float, preference: str) -> mk.MBEDInstance:
    """Two identical producers, one 1 km and one 5 km from a consumer who buys exactly 4 kWh;
    only the consumer has a preference ``c`` (EUR/kWh per km)."""
    gamma = np.array([[0.0, 4.0, 1.0], [4.0, 0.0, 5.0], [1.0, 5.0, 0.0]])
    return mk.MBEDInstance(
        names=("near", "far", "consumer"), a=np.array([0.02, 0.02, 0.02]), b=np.array([0.05, 0.05, 0.0]),
        lo=np.array([0.0, 0.0, -4.0]), hi=np.array([10.0, 10.0, -4.0]),
        is_producer=np.array([True, True, False]), gamma=gamma, pref=np.array([0.0, 0.0, pref]),
        trade_curvature=0.01, preference=preference)


@pytest.mark.parametrize("solve", [mk.solve_p2p_qp, mk.solve_p2p_ci])
def test_signed_preference_makes_the_consumer_prefer_distant_producers(solve):
    near_abs, far_abs = solve(_near_far(0.002, "abs")).trades[:2, 2]
    near_lit, far_lit = solve(_near_far(0.002, "signed")).trades[:2, 2]
    assert near_abs > far_abs + 0.1  # |P|: distance is a cost to the consumer (our default)
    assert far_lit > near_lit + 0.1  # P as printed: the consumer (P <= 0) is paid for distance
    assert near_abs + far_abs == pytest.approx(4.0, abs=1e-4) and near_lit + far_lit == pytest.approx(4.0, abs=1e-4)
    # without a preference both terms vanish: the same dispatch
    a, b = solve(_near_far(0.0, "abs")), solve(_near_far(0.0, "signed"))
    assert np.allclose(a.trades, b.trades, atol=1e-9)
    assert a.trades[0, 2] == pytest.approx(2.0, abs=1e-4)  # identical producers split evenly


def test_signed_preference_costs_and_solvers_agree():
    inst = _near_far(0.002, "signed")
    qp, ci = mk.solve_p2p_qp(inst), mk.solve_p2p_ci(inst)
    assert ci.converged
    assert np.allclose(qp.trades, ci.trades, atol=1e-3)
    pc = inst.costs(qp.trades)["preference"]
    # the consumer's term is c * sum_m gamma_cm P_cm with P_cm = -|P_cm| (negative: a reward)
    assert pc[2] == pytest.approx(0.002 * float(inst.gamma[2] @ qp.trades[2]), rel=1e-12) and pc[2] < 0
    with pytest.raises(ValueError, match="preference"):
        _near_far(0.002, "negative")


def test_env_p2p_preference_switch():
    kw = dict(SMALL, market="p2p", n_steps=1, day=150)

    def step(**extra):
        env = energy_collective_v0.parallel_env(**kw, **extra)
        obs, _ = env.reset(seed=0)
        return env.step(best_response_actions(obs))[1], env.last_p2p

    r0, p0 = step(distance_preference=0.01)
    r1, p1 = step(distance_preference=0.01, p2p_preference="signed")
    assert p1.converged and not np.allclose(p0.trades, p1.trades, atol=1e-6)
    assert r0 != r1
    # with no preference the two terms are both zero: identical trades and rewards
    r2, p2 = step()
    r3, p3 = step(p2p_preference="signed")
    assert np.array_equal(p2.trades, p3.trades) and r2 == r3
    with pytest.raises(ValueError, match="p2p_preference"):
        energy_collective_v0.parallel_env(**kw, p2p_preference="printed")


def test_reproduction_quick_runs_the_printed_preference_beside_ours(tmp_path):
    import json

    from prosumer_gym.eval.reproduce.energy_collective import main

    main(["--quick", "--preference-literal", "--out", str(tmp_path)])
    figs = json.loads((tmp_path / "energy_collective_figures.json").read_text())
    ours, lit = figs["distance_example"], figs["distance_example_signed"]
    assert ours["preference"] == "abs" and lit["preference"] == "signed"
    inter = {d: [r["inter_village_kwh"] for r in x["rows"]] for d, x in (("ours", ours), ("lit", lit))}
    assert inter["ours"][0] == pytest.approx(inter["lit"][0], abs=1e-9)  # c = 0: the same market
    assert inter["ours"][-1] < 0.5 * inter["ours"][0]  # |P|: distance keeps trades in the village
    # P as printed with one c for every player: a pair's two terms cancel, so distance has no effect
    assert max(inter["lit"]) - min(inter["lit"]) < 1e-3
    assert all(r["ci_converged"] for r in lit["rows"])
