"""scripts/p2p_trading_pqr_sweep.py --quick: runs end to end and writes its tables with CIs."""

from __future__ import annotations

import json

from .helpers import load_script


def _load():
    return load_script("p2p_trading_pqr_sweep")


def test_quick_sweep_writes_ratios_with_intervals(tmp_path):
    mod = _load()
    assert mod.main(["--out", str(tmp_path), "--quick"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["configs"]) == {"zhu", "paper", "lr1e-1"}
    for name, c in res["configs"].items():
        for key in ("buyers_vs_rule", "sellers_vs_rule", "price_moved_usd", "share_days_price_changed"):
            lo, hi = c[key]["ci"]
            assert lo <= c[key]["mean"] <= hi and c[key]["n"] == 2
    # Zhu trades at the reference prices: its prices never move; PQR's do
    assert res["configs"]["zhu"]["price_moved_usd"]["mean"] == 0.0
    assert res["configs"]["paper"]["share_days_price_changed"]["mean"] > 0.0
    assert len(res["per_seed"]["paper"]) == 2
    assert "| paper |" in (tmp_path / "results.md").read_text()
