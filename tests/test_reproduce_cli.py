"""``prosumer-gym-reproduce``: every document's ``--quick`` run writes its paper-vs-ours table
(markdown + JSON) with the expected columns and finite numbers, plus the module's figures."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from prosumer_gym.eval.reproduce import cli

ROOT = Path(__file__).resolve().parents[1]
HEADER = "| experiment | paper value | ours (mean [95% CI] over seeds) | same shape? |"


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("part", list(cli.PARTS))
def test_quick_run_writes_table_with_finite_numbers(part, tmp_path, one_thread):
    (rec,) = cli.reproduce(part, tmp_path, quick=True, seeds=2)
    d = tmp_path / part
    md = (d / "table.md").read_text()
    assert HEADER in md
    data = json.loads((d / "table.json").read_text())
    assert data == json.loads(json.dumps(rec)) and data["columns"] == list(cli.COLUMNS)
    assert data["quick"] is True and data["seeds"] == 2
    assert len(data["rows"]) >= 4
    assert md.count("\n| ") == len(data["rows"]) + 1  # header + one line per row
    seeded = 0
    for r in data["rows"]:
        st = r["ours"]
        assert r["paper_value"] and r["experiment"] in md
        assert all(math.isfinite(v) for v in st["values"]) and math.isfinite(st["mean"])
        assert st["mean"] == pytest.approx(np.mean(st["values"]))
        if r["kind"] == "seeds":
            seeded += 1
            assert st["n"] >= 2 and st["ci_low"] <= st["mean"] <= st["ci_high"]
            assert "[" in r["ours_text"] and f"n = {st['n']}" in r["ours_text"]
        else:
            assert st["n"] == 1 and st["ci_low"] is None and "no CI" in r["ours_text"]
        if r["same_shape_per_seed"] is None:
            assert r["same_shape"].startswith("n/a")
        else:
            k, n = sum(r["same_shape_per_seed"]), len(r["same_shape_per_seed"])
            word = "yes" if k == n else "no" if k == 0 else "partly"
            assert r["same_shape"].startswith(f"{word} ({k}/{n}")
    assert seeded >= 1  # every document has at least one experiment over seeds
    assert data["figures"] and all((d / f).stat().st_size > 1000 for f in data["figures"])
    assert (tmp_path / "summary.md").read_text().count(HEADER) == 1
    if part == "ch6":  # both settings of experiment 1 and their rows
        assert {"day.png", "day_literal.png"} <= set(data["figures"])
        names = [r["experiment"] for r in data["rows"]]
        for st in ("ours", "literal"):
            assert sum(n.startswith("Fig. 6.7: tasks served") and n.endswith(st) for n in names) == 4
        infeas = next(r for r in data["rows"] if r["experiment"].startswith("Eq. 6.1 as printed"))
        assert all(0 <= v <= 100 for v in infeas["ours"]["values"])


def test_summary_merges_parts_and_cli_main(tmp_path, capsys):
    assert cli.main(["storage-sharing", "--quick", "--out", str(tmp_path), "--seeds", "2"]) == 0
    assert "same shape?" in capsys.readouterr().out
    cli.reproduce("energy-collective", tmp_path, quick=True, seeds=2)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [r["part"] for r in summary] == ["storage-sharing", "energy-collective"]  # in PARTS order, both kept
    assert (tmp_path / "summary.md").read_text().count(HEADER) == 2
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_names_groups_and_bad_input():
    assert cli.parts_of("dissertation") == ("ch4", "ch5", "ch6")
    assert cli.parts_of("all") == tuple(cli.PARTS) and len(cli.PARTS) == 6
    with pytest.raises(ValueError, match="PAPER_OR_CHAPTER must be one of"):
        cli.reproduce("chapter7", "unused")
    with pytest.raises(ValueError, match="seeds must be"):
        cli.reproduce("ch4", "unused", seeds=0)
    with pytest.raises(SystemExit):
        cli.main(["chapter7"])
    with pytest.raises(SystemExit):
        cli.main(["ch4", "--seeds", "0"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["prosumer-gym-reproduce"] == "prosumer_gym.eval.reproduce.cli:main"


def test_bootstrap_summary():
    st = cli.summarise_values([1.0, 2.0, 3.0, 4.0])
    assert st["mean"] == 2.5 and 1.0 <= st["ci_low"] < 2.5 < st["ci_high"] <= 4.0
    assert cli.summarise_values([1.0, 2.0, 3.0, 4.0]) == st  # fixed bootstrap generator
    same = cli.summarise_values([0.5, 0.5])
    assert same["ci_low"] == same["ci_high"] == 0.5
    one = cli.summarise_values([7.0])
    assert one["n"] == 1 and one["ci_low"] is None
    with pytest.raises(ValueError, match="values"):
        cli.summarise_values([])
