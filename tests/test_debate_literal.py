"""DEbATE's literal switches (dissertation 001, Alg. 4): ``update="in_place"``,
``line14="printed"`` and ``min_trade_repair=False`` restore the algorithm as printed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from prosumer_gym.core.de import differential_evolution
from prosumer_gym.envs.p2p_trading.clearing.debate import DEBATE_LITERAL, debate_repair
from prosumer_gym.envs.p2p_trading_market import feasibility_report, make_clearer, random_instance


def _mutants(pop: np.ndarray, k: int, F: float) -> np.ndarray:
    """Every ``x_a + F (x_b - x_c)`` with ``a, b, c`` distinct and different from ``k`` (Alg. 4 line 10)."""
    others = [i for i in range(len(pop)) if i != k]
    return np.array([pop[a] + F * (pop[b] - pop[c]) for a, b, c in itertools.permutations(others, 3)])


def _in(x: np.ndarray, cands: np.ndarray) -> bool:
    return bool(np.any(np.all(np.abs(cands - x) < 1e-12, axis=1)))


def _recorded_run(update: str, seed: int = 3, NP: int = 5, G: int = 6, F: float = 0.8):
    """Run DE with CR = 1 (trial = mutant, Alg. 4 lines 8-10) and no clipping, recording every
    evaluated trial; fitness ``-|x|^2``."""
    calls: list[np.ndarray] = []

    def fitness(p: np.ndarray) -> np.ndarray:
        calls.append(p.copy())
        return -(p ** 2).sum(axis=1)

    rng = np.random.default_rng(seed)
    init = rng.normal(size=(NP, 2))
    res = differential_evolution(fitness, lambda p: p, init, -1e9, 1e9, rng, G_max=G, CR=1.0, F=F,
                                 update=update)
    return init, calls, res


def test_de_synchronous_trials_come_from_the_generation_start_population():
    init, calls, _ = _recorded_run("synchronous")
    pop, fit = init.copy(), -(init ** 2).sum(axis=1)
    for trials in calls[1:]:  # one call per generation, (NP, D)
        assert trials.shape == pop.shape
        for k, t in enumerate(trials):
            assert _in(t, _mutants(pop, k, 0.8))
        ft = -(trials ** 2).sum(axis=1)
        better = ft > fit
        pop[better], fit[better] = trials[better], ft[better]


def test_de_in_place_update_is_alg4_as_printed():
    """Alg. 4 updates x_k inside the loop over k: a later candidate of the same generation is
    built from the vectors already replaced (the synchronous default never is)."""
    init, calls, res = _recorded_run("in_place")
    NP = len(init)
    pop, fit = init.copy(), -(init ** 2).sum(axis=1)
    uses_replaced = 0
    trials = calls[1:]
    assert len(trials) == 6 * NP and all(t.shape == (1, 2) for t in trials)  # one candidate at a time
    for g in range(6):
        start = pop.copy()
        for k in range(NP):
            t = trials[g * NP + k][0]
            assert _in(t, _mutants(pop, k, 0.8))  # built from the population as it is now
            uses_replaced += not _in(t, _mutants(start, k, 0.8))
            ft = -(t ** 2).sum()
            if ft > fit[k]:  # replaced at once (line 16)
                pop[k], fit[k] = t, ft
    assert uses_replaced > 0
    assert np.array_equal(res.population, pop)
    assert res.replacements > 0 and res.evaluations == NP * 7


def test_de_updates_agree_without_generations_and_update_is_validated():
    a = _recorded_run("synchronous", G=0)[2]
    b = _recorded_run("in_place", G=0)[2]
    assert np.array_equal(a.population, b.population)
    with pytest.raises(ValueError, match="update"):
        _recorded_run("asynchronous")


def _one_seller_day(seed: int = 0):
    # one seller: line 15 (columns summing above 1) never acts, so line 14 is seen alone
    return random_instance(np.random.default_rng(seed), 1, 4, surplus_kwh=(1.0, 2.0), loss_levels=(0.01,))


def test_line14_printed_scales_the_unmutated_row():
    inst = _one_seller_day()
    rng = np.random.default_rng(1)
    target = debate_repair(inst, rng.random((3, 4)) * 0.02)  # feasible x_k (light rows)
    trial = rng.random((3, 4))  # mutated rows, all over the seller's capacity
    w, r = inst.demand_kwh, inst.surplus_kwh[0]
    load = trial @ ((1.0 + inst.loss[0]) * w)
    assert np.all(load > r)
    kw = {"min_trade_repair": False}
    fixed = debate_repair(inst, trial.copy(), **kw)
    printed = debate_repair(inst, trial.copy(), target=target, line14="printed", **kw)
    assert np.allclose(fixed, trial * (r / load)[:, None])  # the trial's row scaled (our fix)
    assert np.allclose(printed, target * (r / load)[:, None])  # x_k's row scaled (as printed)
    assert not np.allclose(fixed, printed)
    for x in printed:
        assert feasibility_report(inst, x.reshape(1, 4))["5.2a"] <= 1e-12
    # equal where they must be: a trial equal to its target, or a row within capacity
    same = debate_repair(inst, target.copy(), target=target, line14="printed")
    assert np.array_equal(same, debate_repair(inst, target.copy()))
    with pytest.raises(ValueError, match="target"):
        debate_repair(inst, trial.copy(), line14="printed")
    with pytest.raises(ValueError, match="line14"):
        debate_repair(inst, trial.copy(), target=target, line14="typo")


def test_min_trade_repair_off_keeps_trades_below_mu():
    inst = _one_seller_day()
    w, mu = inst.demand_kwh, inst.min_trade_kwh
    x = np.zeros((1, 4))
    x[0, 0] = 0.5 * mu / w[0]  # 25 Wh: below Eq. 5.2e's 50 Wh
    x[0, 1] = 2.0 * mu / w[1]  # 100 Wh: a valid trade
    lit = debate_repair(inst, x.copy(), min_trade_repair=False)
    ours = debate_repair(inst, x.copy())
    assert lit[0, 0] == x[0, 0] and ours[0, 0] == 0.0
    assert lit[0, 1] == ours[0, 1] == x[0, 1]
    assert feasibility_report(inst, lit.reshape(1, 4))["5.2e"] > 0
    assert feasibility_report(inst, ours.reshape(1, 4))["5.2e"] == 0


def test_debate_literal_options_run_and_are_validated():
    inst = random_instance(np.random.default_rng(5), 4, 4)
    dflt = make_clearer("debate", 4, 4, G_max=30)(inst, np.random.default_rng(0))
    lit = make_clearer("debate", 4, 4, G_max=30, record_history=True, **DEBATE_LITERAL)(inst, np.random.default_rng(0))
    assert "update" not in dflt.stats  # the default's stats are unchanged
    assert {k: lit.stats[k] for k in DEBATE_LITERAL} == DEBATE_LITERAL
    assert np.all(np.diff(lit.stats["history"]) >= 0)  # Alg. 4 is elitist too
    assert lit.stats["evaluations"] == 20 * 31
    viol = feasibility_report(inst, lit.x)
    assert all(viol[c] <= 1e-9 for c in viol if c != "5.2e")  # only 5.2e is left to Alg. 4
    # no generation: the repaired initial population decides; with only line 14 printed and
    # the 5.2e repair kept, the default and literal initial repairs coincide
    a = make_clearer("debate", 4, 4, G_max=0)(inst, np.random.default_rng(2))
    b = make_clearer("debate", 4, 4, G_max=0, update="in_place", line14="printed")(inst, np.random.default_rng(2))
    assert np.array_equal(a.x, b.x)
    for bad in ({"update": "async"}, {"line14": 14}, {"min_trade_repair": "no"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            make_clearer("debate", 4, 4, **bad)


def test_reproduction_scenario1_runs_alg4_as_printed_beside_ours(tmp_path):
    import json

    from prosumer_gym.eval.reproduce.p2p_trading import main

    assert main(["--quick", "--scenarios", "1", "--s1-literal", "--no-progress", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "scenario1.json").read_text())
    lit = res["by_literal"]
    assert set(lit) == {"ours", "alg4_as_printed"}
    assert lit["ours"]["norm_final_mean"] == res["by_size"]["5"]["norm_final_mean"]  # the same runs
    for d in lit.values():
        assert d["runs"] == 2 and np.all(np.diff(d["norm_curve"]) >= -1e-12)
        assert d["norm_final_mean"] > d["norm_initial_mean"]
    assert lit["ours"]["feasible_runs"] == 2  # ours always satisfies Eqs. 5.2a-g
    assert "Alg. 4 as printed" in (tmp_path / "scenario1.md").read_text()
    # without the flag the output has no literal rows
    assert main(["--quick", "--scenarios", "1", "--no-progress", "--out", str(tmp_path / "plain")]) == 0
    assert "by_literal" not in json.loads((tmp_path / "plain" / "scenario1.json").read_text())
