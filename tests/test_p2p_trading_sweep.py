"""scripts/p2p_trading_sweep.py --quick: every sweep runs end to end and writes its tables with CIs."""

from __future__ import annotations

import json

import pytest

from .helpers import load_script


def _load():
    return load_script("p2p_trading_sweep")


def _check_common(res: dict, names: set[str]) -> None:
    assert set(res["configs"]) == names
    for c in res["configs"].values():
        for key in ("buyers_vs_rule", "sellers_vs_rule", "paper_ordering", "price_moved_usd"):
            lo, hi = c[key]["ci"]
            assert lo <= c[key]["mean"] <= hi and c[key]["n"] == 2
    # Zhu trades at the reference prices: its prices never move
    assert res["configs"]["zhu"]["price_moved_usd"]["mean"] == 0.0


def test_quick_pqr_sweep_writes_ratios_with_intervals(tmp_path):
    mod = _load()
    assert mod.main(["--out", str(tmp_path), "--quick"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    _check_common(res, {"zhu", "paper", "lr1e-1"})
    assert res["configs"]["paper"]["share_days_price_changed"]["mean"] > 0.0
    assert len(res["per_seed"]["paper"]) == 2
    assert "| paper |" in (tmp_path / "results.md").read_text()


def test_quick_prodqn_sweep_records_the_cliff(tmp_path):
    mod = _load()
    assert mod.main(["--out", str(tmp_path), "--quick", "--sweep", "prodqn"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    _check_common(res, {"zhu", "paper", "neutral-pt"})
    assert res["configs"]["neutral-pt"]["agent_kwargs"] == {"k_pos": 1.0, "k_neg": 1.0, "zeta_pos": 1.0,
                                                           "zeta_neg": 1.0}
    for name in ("paper", "neutral-pt"):  # exploration visits the grid price early on
        assert 0.0 < res["configs"][name]["share_cliff_days_early"]["mean"] < 1.0
    assert "share_cliff_days_early" not in res["configs"]["zhu"]


def test_quick_price_level_sweep_trades_buyers_against_sellers(tmp_path):
    mod = _load()
    assert mod.main(["--out", str(tmp_path), "--quick", "--sweep", "price-level"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    _check_common(res, {"zhu", "0.07", "0.11"})
    lo, hi = res["configs"]["0.07"], res["configs"]["0.11"]
    # static prices: nothing moves; a lower price level is better for buyers, worse for sellers
    assert lo["price_moved_usd"]["mean"] == hi["price_moved_usd"]["mean"] == 0.0
    assert lo["buyers_vs_rule"]["mean"] > hi["buyers_vs_rule"]["mean"]
    assert lo["sellers_vs_rule"]["mean"] < hi["sellers_vs_rule"]["mean"]
    assert lo["env"]["initial_price_range"] == [0.06, 0.08]
    for rows in res["per_seed"].values():  # the same community per seed in every config
        assert [r["seed"] for r in rows] == [0, 1]


def test_unknown_config_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        _load().main(["--out", str(tmp_path), "--sweep", "prodqn", "--configs", "lr1e-1"])
