"""Chapter 5 reproduction at small size (5x5, one year): the orderings documented in
docs/p2p_trading_reproduction.md, i.e. the paper's claims where our data reproduce them and
our measured differences where they do not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prosumer_gym.eval.p2p_trading_main import RunSpec, add_ratios, run_all, summarise
from prosumer_gym.eval.reproduce_p2p_trading import _specs_year, orderings, scenario1


@pytest.fixture(scope="module")
def year_5x5():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        specs = _specs_year(5, 365, 0, "train", 0, with_debate=False)
        runs, _ = run_all(specs, None, workers=1, progress=False)
    finally:
        torch.set_num_threads(n)
    sums = [summarise(k, v) for k, v in runs.items()]
    add_ratios(sums, "rule")
    return {s["run"]: s for s in sums}, runs


def test_comparison_methods_keep_the_papers_ordering(year_5x5):
    s, _ = year_5x5
    b = {k: v["buyers_pt_value_mean"] for k, v in s.items()}
    r = {k: v["sellers_revenue_mean"] for k, v in s.items()}
    # Zhu (seller's price, loss-driven matching) favours sellers and penalises buyers vs Rule (mid-market price)
    assert r["zhu"] > 1.05 * r["rule"] and b["zhu"] < b["rule"]
    # at the same (reference) prices our clearing gives buyers more than Zhu's greedy matching
    assert b["savings + constant"] > b["zhu"]
    assert abs(r["savings + constant"] / r["zhu"] - 1) < 0.03  # same prices, (almost) all surplus sold


def test_prodqn_gives_buyers_more_than_rule_and_zhu_by_lowering_prices(year_5x5):
    s, runs = year_5x5
    d = s["savings + ProDQN"]
    assert d["buyers_pt_value_mean"] > s["rule"]["buyers_pt_value_mean"] > s["zhu"]["buyers_pt_value_mean"]
    assert d["buyers_vs_ref"] > 0.10  # paper: +23% (DEbATE-DQN vs Rule)
    # ... but in our supply-limited market that costs the sellers (paper: +8%): documented difference
    assert d["sellers_revenue_mean"] < s["rule"]["sellers_revenue_mean"]
    assert d["seller_price_end"] < d["seller_price_start"] - 0.01
    ords = orderings(list(s.values()))
    assert ords["savings + ProDQN: buyers better than Rule and Zhu"] is True
    assert ords["savings + ProDQN: sellers better than Rule"] is False


def test_pqr_with_the_papers_learning_rate_barely_moves_prices_in_a_year(year_5x5):
    s, runs = year_5x5
    q, c = s["savings + PQR"], s["savings + constant"]
    assert abs(q["seller_price_end"] - q["seller_price_start"]) < 0.006
    assert abs(q["buyers_pt_value_mean"] / c["buyers_pt_value_mean"] - 1) < 0.03
    assert q["sellers_revenue_mean"] > s["rule"]["sellers_revenue_mean"]  # paper: +7% over Rule
    assert q["buyers_pt_value_mean"] < s["rule"]["buyers_pt_value_mean"]  # paper: +26% (not reproduced)
    prices = np.array([[v for k, v in r.items() if k.startswith("price_")] for r in runs["savings + PQR"]])
    assert np.ptp(prices, axis=0).max() > 0.001  # the agents do act (prices move), they just do not drift


def test_scenario1_debate_improves_with_generations(tmp_path):
    r = scenario1(tmp_path, nps=[5, 20], sizes=[5], runs=2, gmax=300, seed=0, workers=1, progress=False)
    for d in list(r["by_np"].values()) + list(r["by_size"].values()):
        curve = np.array(d["norm_curve"])
        assert np.all(np.diff(curve) >= -1e-12)  # elitist: the best never gets worse
        assert d["norm_final_mean"] > d["norm_initial_mean"]
    # NP=20 captures (nearly) all of our clearing's gain over no trade at 5x5; NP=5 less
    assert r["by_np"][20]["norm_final_mean"] > 0.97
    assert r["by_np"][20]["norm_final_mean"] > r["by_np"][5]["norm_final_mean"]
    assert (tmp_path / "scenario1.png").stat().st_size > 10_000
    assert "| 5x5 |" in (tmp_path / "scenario1.md").read_text()


def test_runspec_labels_and_env_kwargs():
    spec = RunSpec("debate + PQR", "debate", "pqr", n_sellers=4, n_buyers=3, days=10,
                   mechanism_kwargs={"NP": 8, "G_max": 5})
    kw = spec.env_kwargs()
    assert kw["mechanism"] == "debate" and kw["mechanism_kwargs"] == {"NP": 8, "G_max": 5}
    assert kw["n_sellers"] == 4 and kw["n_days"] == 10
