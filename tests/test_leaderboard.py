"""Leaderboard: tracks, the runner (= stepping by hand), backends, safe loading, results file,
scores and the published page (rendered in headless Chromium)."""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from prosumer_gym import ENV_IDS
from prosumer_gym.eval.leaderboard import HELD_OUT_SEED_BASE, track, track_ids
from prosumer_gym.eval.leaderboard.cli import main as cli_main
from prosumer_gym.eval.leaderboard.policies import load_policy, safe_torch_load
from prosumer_gym.eval.leaderboard.report import score_rows, write_report
from prosumer_gym.eval.leaderboard.results import append_entries, latest_entries, load_entries
from prosumer_gym.eval.leaderboard.runner import Job, evaluate, make_entry, run_job, run_jobs

P2P = "P2PTrading-v0"
SMALL = {"n_days": 12}  # a short P2P episode for tests


# ------------------------------------------------------------------------------ a user policy
def hold_prices(observations, infos):
    """module:function policy used by the tests: every seller keeps its price (action 1)."""
    return {a: 1 for a in observations}


class RaiseOnceThenHold:
    """module:Class policy (JointPolicy protocol) with its own seeded randomness."""

    def reset(self, env, observations, infos, seed):
        self.rng = np.random.default_rng([seed, 5])

    def act(self, observations, infos):
        return {a: int(self.rng.integers(3)) for a in observations}

    def observe(self, *args):
        pass


# ------------------------------------------------------------------------------ tracks
def test_every_registered_env_has_a_track():
    assert set(track_ids()) == set(ENV_IDS)


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_track_is_well_formed_and_held_out(env_id):
    tr = track(env_id)
    assert tr.env_id == env_id and tr.n_seeds >= 5
    assert all(s >= HELD_OUT_SEED_BASE for s in tr.seeds) and len(set(tr.seeds)) == tr.n_seeds
    # the training entry points' default seed (0) is never a scenario
    from prosumer_gym.train.cli import build_parser

    assert build_parser().parse_args([]).seed not in tr.seeds
    assert math.isclose(sum(m.weight for m in tr.metrics), 1.0)
    assert any(m.weight > 0 for m in tr.metrics)
    assert tr.held_out
    import inspect

    from prosumer_gym.train.common import resolve_env

    if "split" in inspect.signature(resolve_env(env_id).pettingzoo().raw_env).parameters:
        assert tr.env_kwargs.get("split") == "test"  # envs with real household data use the held-out homes


# ------------------------------------------------------------------------------ runner == by hand
def _by_hand(env_id, policy_fn, seed, overrides):
    tr = track(env_id)
    env = tr.make_env(overrides)
    obs, infos = env.reset(seed=seed)
    rewards_log, infos_log = [], []
    while env.agents:
        obs, rew, term, trunc, infos = env.step(policy_fn(obs, infos))
        rewards_log.append(rew)
        infos_log.append(infos)
    from prosumer_gym.eval.leaderboard.core import EpisodeLog

    return tr.summarise(EpisodeLog(seed=seed, reset_infos={}, rewards=rewards_log, infos=infos_log, env=env))


def test_runner_equals_stepping_by_hand():
    tr = track(P2P)
    spec = f"{__name__}:hold_prices"
    entry = evaluate(P2P, spec, n_seeds=3, env_overrides=SMALL, allow_code=True)
    for k, seed in enumerate(tr.seeds[:3]):
        hand = _by_hand(P2P, hold_prices, seed, SMALL)
        for m in tr.metrics:
            assert entry["metrics"][m.key]["per_seed"][k] == hand[m.key]  # exactly
    for m in tr.metrics:
        vals = entry["metrics"][m.key]["per_seed"]
        assert entry["metrics"][m.key]["mean"] == pytest.approx(np.mean(vals), abs=0)
        from scipy import stats

        half = stats.t.ppf(0.975, 2) * np.std(vals, ddof=1) / np.sqrt(3)
        assert entry["metrics"][m.key]["ci95"] == pytest.approx(half)
    assert entry["env_overrides"] == SMALL and entry["kind"] == "submission"


def test_reference_runs_are_deterministic_and_seed_dependent():
    a = run_job(Job(P2P, "pqr", track(P2P).seeds[0], {}, SMALL))
    b = run_job(Job(P2P, "pqr", track(P2P).seeds[0], {}, SMALL))
    c = run_job(Job(P2P, "pqr", track(P2P).seeds[1], {}, SMALL))
    assert a["metrics"] == b["metrics"] and a["curve"] == b["curve"]
    assert a["metrics"] != c["metrics"]


def test_process_backend_equals_serial():
    tr = track(P2P)
    jobs = [Job(P2P, name, s, {"allow_code": True} if ":" in name else {}, SMALL) for name in ("prodqn", "random", f"{__name__}:RaiseOnceThenHold")
            for s in tr.seeds[:2]]
    serial = run_jobs(jobs, "serial")
    parallel = run_jobs(jobs, "process", workers=2)
    assert [r["metrics"] for r in serial] == [r["metrics"] for r in parallel]
    assert [r["curve"] for r in serial] == [r["curve"] for r in parallel]


def test_bad_specifications_are_rejected_clearly(tmp_path):
    tr = track(P2P)
    with pytest.raises(ValueError, match="env must be one of"):
        track("Nope-v0")
    with pytest.raises(ValueError, match="not a reference"):
        load_policy("no_such_policy", tr)
    with pytest.raises(ValueError, match="cannot import"):
        load_policy("no_such_module_xyz:f", tr, allow_code=True)
    with pytest.raises(ValueError, match="does not exist"):
        load_policy(f"sb3:{tmp_path / 'missing.zip'}", tr)
    with pytest.raises(ValueError, match="n_seeds must be"):
        evaluate(P2P, "constant", n_seeds=99)
    with pytest.raises(ValueError, match="role must be one of"):
        load_policy(f"torch:{tmp_path / 'x.pt'}", tr, role="auctioneer")


# ------------------------------------------------------------------------------ safe loading
class _Evil:
    """Pickling this object makes unpickling run ``open(marker, 'w')``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_that_runs_code_is_refused(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    torch.save({"net.0.weight": torch.zeros(3, 6), "payload": _Evil(str(marker))}, bad)
    # the payload really would run with an unsafe load
    torch.load(bad, weights_only=False)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match="refused"):
        safe_torch_load(bad, "evil")
    with pytest.raises(ValueError, match="refused"):
        load_policy(f"torch:{bad}", track(P2P))
    assert not marker.exists()
    # the same payload as an SB3 zip's policy.pth
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as f, open(bad, "rb") as src:
        f.writestr("data", "{}")
        f.writestr("policy.pth", src.read())
    with pytest.raises(ValueError, match="refused"):
        load_policy(f"sb3:{z}", track(P2P))
    assert not marker.exists()


def test_plain_pickle_and_garbage_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "plain.pt"
    p.write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(ValueError, match="refused"):
        load_policy(f"torch:{p}", track(P2P))
    g = tmp_path / "garbage.zip"
    g.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="refused"):
        load_policy(f"sb3:{g}", track(P2P))
    assert not marker.exists()


def _sb3_model(tmp_path, algo="ppo"):
    import gymnasium as gym
    from stable_baselines3 import DQN, PPO

    penv = track(P2P).make_env(SMALL)
    o, a = penv.observation_space("seller_0"), penv.action_space("seller_0")

    class Dummy(gym.Env):
        observation_space, action_space = o, a

        def reset(self, *, seed=None, options=None):
            return o.sample(), {}

        def step(self, action):
            return o.sample(), 0.0, True, False, {}

    cls = PPO if algo == "ppo" else DQN
    model = cls("MlpPolicy", Dummy(), seed=3, policy_kwargs={"net_arch": [16, 8]} if algo == "dqn" else None)
    path = tmp_path / f"{algo}.zip"
    model.save(path)
    return model, path, o


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_sb3_model_loads_without_pickles_and_acts_like_sb3(tmp_path, algo):
    from prosumer_gym.eval.leaderboard.policies import sb3_policy_from_zip

    model, path, o = _sb3_model(tmp_path, algo)
    # poison every pickled entry of the zip's data JSON: our loader must never unpickle them
    marker = tmp_path / "pwned"
    import base64

    import cloudpickle

    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    data = json.loads(members["data"])
    evil = base64.b64encode(cloudpickle.dumps(_Evil(str(marker)))).decode()
    n_serialized = 0
    for k, v in data.items():
        if isinstance(v, dict) and ":serialized:" in v:
            v[":serialized:"] = evil
            n_serialized += 1
    assert n_serialized > 0
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    predict = sb3_policy_from_zip(path, algo, o, track(P2P).make_env(SMALL).action_space("seller_0"))
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = o.low + (o.high - o.low) * rng.random(o.shape).astype(np.float32)
        assert predict(x) == int(model.predict(x, deterministic=True)[0])
    assert not marker.exists()
    entry = evaluate(P2P, f"sb3:{path}", n_seeds=1, options={"algo": algo}, env_overrides=SMALL)
    assert entry["source"]["sha256"] and entry["source"]["algo"] == algo
    assert not marker.exists()


def test_sb3_weights_that_do_not_fit_are_refused(tmp_path):
    model, path, _ = _sb3_model(tmp_path, "dqn")
    with pytest.raises(ValueError, match="do not fit|no linear layers"):
        load_policy(f"sb3:{path}", track(P2P), algo="ppo")


def test_torch_state_dict_policy_matches_the_network(tmp_path):
    import torch

    from prosumer_gym.agents.prodqn import QNetwork
    from prosumer_gym.eval.leaderboard.policies import _torch_predictor, state_dict_network

    penv = track(P2P).make_env(SMALL)
    o, a = penv.observation_space("seller_0"), penv.action_space("seller_0")
    q = QNetwork(o.shape[0], a.n, hidden=(32, 16))
    p = tmp_path / "q.pt"
    torch.save(q.state_dict(), p)
    net = state_dict_network(safe_torch_load(p, "q"), "qnet", o, a)
    predict = _torch_predictor(net, o, a)
    rng = np.random.default_rng(1)
    for _ in range(50):
        x = rng.random(o.shape).astype(np.float32)
        assert predict(x) == int(torch.argmax(q(torch.as_tensor(x))))
    entry = evaluate(P2P, f"torch:{p}", n_seeds=2, options={"arch": "qnet"}, env_overrides=SMALL)
    assert entry["kind"] == "submission" and entry["source"]["arch"] == "qnet"
    wrong = tmp_path / "wrong.pt"
    torch.save(QNetwork(o.shape[0] + 1, a.n).state_dict(), wrong)
    with pytest.raises(ValueError, match="observation has 6 entries"):
        load_policy(f"torch:{wrong}", track(P2P), arch="qnet")
    with pytest.raises(ValueError, match="arch must be one of"):
        load_policy(f"torch:{p}", track(P2P), arch="transformer")


# ------------------------------------------------------------------------------ results + scores
def _fake_entry(name, kind, values, seeds=(1, 2, 3), env_id=P2P):
    tr = track(env_id)
    res = [{"seed": s, "metrics": {m.key: float(v[i]) for i, m in enumerate(tr.metrics)}, "curve": [0.0, 1.0],
            "seconds": 0.1} for s, v in zip(seeds, values)]
    return make_entry(env_id, name, kind, name, {"type": "test"}, res)


def test_scores_baseline_zero_top_hundred_and_pairing():
    tr = track(P2P)  # baseline rule, top pqr/prodqn/zhu; metrics buyers (0.5), sellers (0.5), traded (0)
    rule = _fake_entry("rule", "baseline", [(-10, 1, 5), (-20, 2, 5), (-30, 3, 5)])
    pqr = _fake_entry("pqr", "agent", [(-8, 2, 5), (-18, 3, 5), (-28, 4, 5)])      # +2 buyers, +1 sellers
    prodqn = _fake_entry("prodqn", "agent", [(-6, 1, 5), (-16, 2, 5), (-26, 3, 5)])  # +4 buyers
    zhu = _fake_entry("zhu", "baseline", [(-11, 1.5, 5), (-21, 2.5, 5), (-31, 3.5, 5)])
    mine = _fake_entry("mine", "submission", [(-9, 1.5, 5), (-18, 2.5, 5), (-29, 3.5, 5)])
    rows = {r["name"]: r for r in score_rows(tr, [rule, pqr, prodqn, zhu, mine])}
    assert rows["rule"]["metrics"]["buyers_pt_value"]["score"] == 0
    assert rows["prodqn"]["metrics"]["buyers_pt_value"]["score"] == pytest.approx(100)
    assert rows["pqr"]["metrics"]["sellers_revenue_usd"]["score"] == pytest.approx(100)
    assert rows["pqr"]["metrics"]["buyers_pt_value"]["score"] == pytest.approx(50)
    # paired: mine is +1, +2, +1 over rule on buyers -> mean 4/3 of a 4-point gap
    assert rows["mine"]["metrics"]["buyers_pt_value"]["score"] == pytest.approx(100 / 3)
    assert rows["mine"]["score"] == pytest.approx(0.5 * 100 / 3 + 0.5 * 50)
    assert rows["pqr"]["score"] == pytest.approx(75) and rows["pqr"]["score_ci95"] == pytest.approx(0)
    assert math.isnan(rows["rule"]["metrics"]["traded_kwh"]["score"])  # top == baseline: degenerate
    # without the baseline there are no scores
    rows = score_rows(tr, [pqr, mine])
    assert all(math.isnan(r["score"]) for r in rows)


def test_results_file_appends_atomically_and_concurrently(tmp_path):
    path = tmp_path / "r.jsonl"
    e = _fake_entry("a", "submission", [(1, 2, 3)] * 3)
    append_entries([e], path)
    code = ("import sys; from prosumer_gym.eval.leaderboard.results import append_entries, load_entries; "
            "e = load_entries(sys.argv[1])[0]\n"
            "for k in range(20):\n    e['name'] = f'{sys.argv[2]}{k}'; append_entries([e], sys.argv[1])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), tag]) for tag in ("x", "y")]
    assert all(p.wait(120) == 0 for p in procs)
    names = [x["name"] for x in load_entries(path)]
    assert len(names) == 41 and len(set(names)) == 41
    assert sorted(os.listdir(tmp_path)) == ["r.jsonl", "r.jsonl.lock"]  # no temporary files left
    # newest line per name wins; entries with env_overrides stay off the board
    e2 = dict(e, description="newer")
    e3 = dict(e, name="small", env_overrides={"n_days": 3})
    append_entries([e2, e3], path)
    latest = latest_entries(load_entries(path), {P2P: track(P2P).version})[P2P]
    assert [x["description"] for x in latest if x["name"] == "a"] == ["newer"]
    assert "small" not in {x["name"] for x in latest}
    with pytest.raises(ValueError, match="lacks"):
        append_entries([{"name": "x"}], path)


# ------------------------------------------------------------------------------ crafted submissions
def _refused(capsys, argv):
    """The CLI's exit code and stderr for ``eval`` of a crafted submission."""
    code = cli_main(["eval", "--env", P2P, "--no-progress", "--no-append", "--n-seeds", "1"] + argv)
    err = capsys.readouterr().err.strip()
    return code, err


def test_zip_bomb_is_refused_from_the_directory(tmp_path, capsys):
    # a `data` member declaring 8 GiB uncompressed (its bytes are 1 KiB): refused before reading
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("policy.pth", b"x")
        f.writestr("data", b"{" + b" " * 1024 + b"}")
    raw = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as f:
        info = f.getinfo("data")
    # patch the central directory's uncompressed size of `data` (offset 24 in its record) to 2**32-1
    rec = raw.index(b"PK\x01\x02", raw.index(b"PK\x01\x02") + 1)
    assert raw[rec + 46:rec + 50] == b"data" and info.file_size == 1026
    raw[rec + 24:rec + 28] = (2 ** 32 - 1).to_bytes(4, "little")
    z.write_bytes(bytes(raw))
    code, err = _refused(capsys, ["--policy", f"sb3:{z}"])
    assert code == 2 and err.startswith("refused: ") and "'data' declares 4294967295 bytes" in err, err
    assert len(err.splitlines()) == 1


def test_nested_json_and_code_specs_are_refused_with_exit_2(tmp_path, capsys):
    from prosumer_gym.eval.leaderboard.policies import JSON_MAX_DEPTH, SubmissionRefused, safe_json_loads

    z = tmp_path / "nested.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("policy.pth", b"x")
        f.writestr("data", "[" * 200_000 + "]" * 200_000)  # json.loads: RecursionError
    code, err = _refused(capsys, ["--policy", f"sb3:{z}"])
    assert code == 2 and err.startswith("refused: ") and "nested 200000 levels" in err, err
    assert safe_json_loads('{"a": [[1]], "s": "[[[[{{"}', "t") == {"a": [[1]], "s": "[[[[{{"}  # strings don't nest
    with pytest.raises(SubmissionRefused):
        safe_json_loads("[" * (JSON_MAX_DEPTH + 1) + "]" * (JSON_MAX_DEPTH + 1), "t")
    # module:function is code: refused before anything is imported unless --allow-code
    marker = tmp_path / "pwned"
    for spec in ("os:system", f"{__name__}:hold_prices"):
        code, err = _refused(capsys, ["--policy", spec])
        assert code == 2 and err.startswith("refused: ") and "--allow-code" in err, err
    assert not marker.exists()
    assert _refused(capsys, ["--policy", f"{__name__}:hold_prices", "--allow-code"])[0] == 0


def test_torch_file_with_a_bomb_record_is_refused(tmp_path):
    from prosumer_gym.eval.leaderboard.policies import SubmissionRefused

    p = tmp_path / "bomb.pt"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("archive/data/0", b"")
    raw = bytearray(p.read_bytes())
    rec = raw.index(b"PK\x01\x02")
    raw[rec + 24:rec + 28] = (2 ** 32 - 1).to_bytes(4, "little")
    p.write_bytes(bytes(raw))
    with pytest.raises(SubmissionRefused, match="declares 4294967295 bytes"):
        safe_torch_load(p, "bomb")
    with pytest.raises(SubmissionRefused, match="not a zip-format"):
        safe_torch_load(pickle.dumps({"a": 1}), "legacy")


def test_board_marks_entries_that_ran_code(tmp_path):
    ents = _board_entries()
    ents.append(_fake_entry("my-code", "submission", [(-21 + s, 3, 30) for s in range(3)]))
    ents[-1]["source"] = {"type": "callable", "spec": "mypkg:f", "ran_code": True}
    write_report(ents, tmp_path / "LEADERBOARD.md", tmp_path / "site")
    md = (tmp_path / "LEADERBOARD.md").read_text()
    assert "`my-code` †" in md and "† ran submitted code" in md
    assert md.count("` †") == 1  # only the code entry
    html = (tmp_path / "site" / "index.html").read_text()
    assert html.count('class="ran-code"') == 1 and "ran submitted code" in html


# ------------------------------------------------------------------------------ CLI + page
def test_cli_eval_appends_and_reports_errors(tmp_path, capsys):
    res = tmp_path / "r.jsonl"
    assert cli_main(["eval", "--env", P2P, "--policy", "random", "--n-seeds", "2", "--results", str(res),
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Buyers' PT value" in out and "appended" in out
    assert [e["name"] for e in load_entries(res)] == ["random"]
    # a fresh results file is scored against the reference entries shipped in the package
    assert "composite score" in out and "score n/a" not in out
    assert cli_main(["eval", "--env", "Nope-v0", "--policy", "random", "--results", str(res)]) == 2
    assert "env must be one of" in capsys.readouterr().err


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _board_entries():
    tr = track(P2P)
    out = []
    for k, r in enumerate(tr.references):
        vals = [(-20 + k + s, 3 + 0.1 * k * s, 30 + s) for s in range(3)]
        out.append(_fake_entry(r.name, r.kind, vals))
    return out


def test_report_writes_markdown_html_and_plots(tmp_path):
    ents = _board_entries()
    boards = write_report(ents, tmp_path / "LEADERBOARD.md", tmp_path / "site")
    md = (tmp_path / "LEADERBOARD.md").read_text()
    assert "## P2PTrading-v0" in md and md.count("| `") == len(track(P2P).references)
    assert "(site/img/p2ptrading_v0_metrics.png)" in md
    for kind in ("metrics", "curves"):
        png = (tmp_path / "site" / "img" / f"p2ptrading_v0_{kind}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
    html = (tmp_path / "site" / "index.html").read_text()
    assert html.count("<tr class=") == len(boards[P2P])


def test_page_renders_in_headless_chromium(tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium installed (apt-get install chromium; .ci/run installs it)")
    ents = _board_entries()
    write_report(ents, tmp_path / "LEADERBOARD.md", tmp_path / "site")
    rows = {r["name"]: r for r in score_rows(track(P2P), ents)}
    url = (tmp_path / "site" / "index.html").as_uri() + "#sort=table-p2ptrading_v0:4:asc"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", url]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert 'data-sortable="ready"' in dom  # the script ran
    assert 'data-images="2/2"' in dom and dom.count('data-loaded="1"') == 2  # both PNGs decoded
    import re

    table = dom[dom.index('id="table-p2ptrading_v0"'):]
    table = table[:table.index("</table>")]
    names = re.findall(r'<td class="t" data-v="([^"]+)">[^<]*</td><td class="t"', table)
    assert sorted(names) == sorted(rows)
    by_buyers = sorted(rows, key=lambda n: rows[n]["metrics"]["buyers_pt_value"]["mean"])
    assert names == by_buyers  # sorted ascending on column 4 by the page's own script
    shot = tmp_path / "shot.png"
    subprocess.run(cmd[:-2] + [f"--screenshot={shot}", "--window-size=1200,900",
                               (tmp_path / "site" / "index.html").as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10000


def test_shipped_references_are_the_published_board():
    from prosumer_gym.eval.leaderboard.results import PUBLISHED_REFERENCES

    board = Path(__file__).resolve().parents[1] / "leaderboard" / "results.jsonl"
    if not board.exists():
        pytest.skip("not a source checkout (no leaderboard/results.jsonl)")
    versions = {e: track(e).version for e in track_ids()}
    shipped = latest_entries(load_entries(PUBLISHED_REFERENCES), versions)
    published = latest_entries(load_entries(board), versions)
    for env_id in track_ids():
        want = {r.name for r in track(env_id).references}
        got = {e["name"]: e["metrics"] for e in shipped.get(env_id, [])}
        assert set(got) == want, env_id  # every reference of every track is shipped...
        pub = {e["name"]: e["metrics"] for e in published.get(env_id, [])}
        assert all(got[n] == pub[n] for n in want), env_id  # ...with the board's numbers


def test_board_links_to_the_docs_resolve_wherever_it_is_written(tmp_path):
    from prosumer_gym.eval.leaderboard.report import DOCS_URL, docs_link_base

    repo = Path(__file__).resolve().parents[1]
    assert docs_link_base(repo / "LEADERBOARD.md") == "docs"  # the shipped board: unchanged links
    assert docs_link_base(repo / "runs" / "main" / "LEADERBOARD.md") == "../../docs"
    assert Path(os.path.normpath(repo / "runs" / "main" / "../../docs" / "leaderboard.md")).is_file()
    assert docs_link_base(tmp_path / "LEADERBOARD.md") == DOCS_URL  # outside the checkout: the web docs
    write_report(_board_entries(), tmp_path / "LEADERBOARD.md", tmp_path / "site")
    md = (tmp_path / "LEADERBOARD.md").read_text()
    assert f"]({DOCS_URL}/leaderboard.md)" in md and "](docs/" not in md


def test_shared_model_runs_co_players_only_for_agents_it_leaves_to_them():
    """A model playing every agent (P2PRecommendation's platform) does not reset, ask or tell
    the co-players (whose planning, UPL's daily MILP there, would be thrown away); a model
    leaving agents to them gets their actions for exactly those agents."""
    from types import SimpleNamespace

    from prosumer_gym.eval.leaderboard.policies import JointPolicy, SharedModelPolicy

    class Spy(JointPolicy):
        def __init__(self):
            self.calls = []

        def reset(self, env, observations, infos, seed):
            self.calls.append("reset")

        def act(self, observations, infos):
            self.calls.append("act")
            return {a: "co" for a in observations}

        def observe(self, *args):
            self.calls.append("observe")

    for agents, controlled, want_calls, want_acts in (
            (["platform"], lambda a: True, [], {"platform": "m"}),
            (["a", "b"], lambda a: a == "a", ["reset", "act", "observe"], {"a": "m", "b": "co"})):
        spy = Spy()
        pol = SharedModelPolicy(lambda o: "m", controlled, spy)
        obs = {a: 0 for a in agents}
        pol.reset(SimpleNamespace(possible_agents=agents), obs, {}, 0)
        assert pol.act(obs, {}) == want_acts
        pol.observe(obs, {}, {}, {}, {})
        assert spy.calls == want_calls


def test_compare_prints_the_boards_iqm_and_complementary_improvement_probabilities(capsys):
    """``prosumer-gym-leaderboard compare`` on the published board: each row's IQM and CI are
    the board's own estimate of that group, P(a > b) + P(b > a) = 1 (ties count half), and a
    name not on the board is a ValueError naming the allowed entries."""
    from prosumer_gym.eval.leaderboard.cli import compare
    from prosumer_gym.eval.leaderboard.results import board_entries
    from prosumer_gym.eval.leaderboard.stats import interval_estimates, score_matrices

    board = Path(__file__).resolve().parents[1] / "leaderboard" / "results.jsonl"
    if not board.exists():
        pytest.skip("not a source checkout (no leaderboard/results.jsonl)")
    env_id, names = "StorageSharing-v0", ["ppo", "sac", "equal_distribution"]
    table = compare(env_id, names, board)
    rows = {r.split("|")[1].strip(" `"): [c.strip() for c in r.split("|")[2:-1]] for r in table.splitlines()[2:]}
    mats = score_matrices(track(env_id), board_entries(env_id, track(env_id).version, board))
    est = interval_estimates({n: mats[n] for n in names})
    for i, a in enumerate(names):
        e = est[a]
        assert rows[a][:3] == [str(e.n_runs), str(e.n_seeds), f"{e.iqm:.1f} [{e.iqm_ci[0]:.1f}, {e.iqm_ci[1]:.1f}]"]
        for j, b in enumerate(names):
            if i != j:
                p_ab, p_ba = float(rows[a][3 + j].split()[0]), float(rows[b][3 + i].split()[0])
                assert p_ab + p_ba == pytest.approx(1.0, abs=0.011)  # two printed decimals each
    with pytest.raises(ValueError, match="names: \\['nope'\\].*allowed"):
        compare(env_id, ["ppo", "nope"], board)
    assert cli_main(["compare", "--env", env_id, "ppo", "sac", "--results", str(board)]) == 0
    assert "P(> `sac`)" in capsys.readouterr().out
