"""Standard deep-RL baselines for every leaderboard track, trained by one command.

A *baseline group* is one algorithm on one interface of one env, trained with several
training seeds: ``ppo`` (SB3 PPO on the Gymnasium view), an off-policy algorithm that fits
the action space (``dqn`` for ``Discrete``, ``sac`` for ``Box``), and ``ppo-ps`` (SB3 PPO
with parameter sharing on the PettingZoo env through SuperSuit). The groups of an env, their
algorithm, interface, track role and budget live in the env's hyperparameter file
(``prosumer_gym/train/hyperparams/<env>.yml``, section ``baselines:``), next to the
algorithms' hyperparameters (sections ``ppo:``, ``dqn:``, ``sac:``, with ``pettingzoo:``
overrides for the parameter-sharing view), so the committed YAML is the whole recipe.

Training uses the track's env keywords with the *training* households (``split="train"``
where the env has household data) and training seeds ``0..k-1``; the leaderboard evaluates
on the held-out households and seeds ``1_000_000 + k``. Each run exports its policy as a
safe state dict + card (:mod:`prosumer_gym.train.export`) with the learning curve (episode
return vs environment steps); ``--publish`` copies the exports into the package
(``prosumer_gym/eval/leaderboard/rl_baselines/<env>/<group>-seed<k>.{pt,json}``), where the
leaderboard finds them (``rlb:<group>-seed<k>``, kind ``rl-baseline``).

    python -m prosumer_gym.train.baselines --env StorageSharing-v0 --group ppo --seeds 5 --publish
    python -m prosumer_gym.train.baselines --env P2PTrading-v0 --all --seeds 5 --publish
    python -m prosumer_gym.train.baselines --env P2PTrading-v0 --group ppo --seeds 1 --quick   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from prosumer_gym.core.io import atomic_write_text
from prosumer_gym.train.common import deep_update, hyperparams_path, resolve_env

__all__ = ["RL_BASELINE_DIR", "baseline_groups", "train_group", "shipped_baselines", "shipped_cards",
           "training_curve_band", "main"]

#: where published baselines ship inside the package
RL_BASELINE_DIR = Path(__file__).resolve().parents[1] / "eval" / "leaderboard" / "rl_baselines"
GROUP_KEYS = ("algo", "view", "role", "total_steps", "description", "section", "env")
QUICK_STEPS = 512


def _yaml(env_id: str) -> tuple[dict[str, Any], Path]:
    path = hyperparams_path(resolve_env(env_id))
    if path is None:
        raise ValueError(f"{env_id} has no hyperparameter file, so no baselines")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    return data, path


def baseline_groups(env_id: str) -> dict[str, dict[str, Any]]:
    """``{group: {algo, view, role, total_steps, description, section, env}}`` from the env's
    YAML (``section``: the hyperparameter section, default the algorithm's name; ``env``: the
    env version trained on, default the track's own, else a newer version of it whose
    policies the leaderboard plays through a version adapter, e.g. P2PRecommendation-v1's
    score interface on the v0 track)."""
    import prosumer_gym

    hp, _ = _yaml(env_id)
    groups = hp.get("baselines") or {}
    if not isinstance(groups, Mapping):
        raise ValueError(f"{env_id}: 'baselines' in its hyperparameter file must be a mapping")
    out = {}
    for name, g in groups.items():
        unknown = set(g) - set(GROUP_KEYS)
        if unknown or not {"algo", "view", "role", "total_steps"} <= set(g):
            raise ValueError(f"{env_id}: baseline {name!r} needs algo, view, role, total_steps (and only "
                             f"{GROUP_KEYS}); got {sorted(g)}")
        trained_on = g.get("env", env_id)
        if trained_on != env_id and (trained_on not in prosumer_gym.ENV_VERSIONS
                                     or trained_on.rsplit("-v", 1)[0] != env_id.rsplit("-v", 1)[0]):
            raise ValueError(f"{env_id}: baseline {name!r}: env must be {env_id} or a newer version of it "
                             f"({sorted(v for v in prosumer_gym.ENV_VERSIONS if v.startswith(env_id[:-1]))}), "
                             f"got {trained_on!r}")
        out[str(name)] = dict(g)
    return out


def _train_env_kwargs(env_id: str) -> dict[str, Any]:
    """The track's env keywords, on the training households where the env has a split (the
    YAML's top-level ``env_kwargs`` are the paper-size defaults of the CLI, not used here)."""
    from prosumer_gym.eval.leaderboard.core import track

    kw = dict(track(env_id).env_kwargs)
    if "split" in kw:
        kw["split"] = "train"
    return kw


def train_group(env_id: str, group: str, seeds: Sequence[int], out_root: str | Path = "runs/baselines",
                quick: bool = False, publish: bool = False, resume: bool = False, progress: bool = True) -> list[Path]:
    """Train ``group`` of ``env_id`` for each training seed; returns the exported policy files."""
    from prosumer_gym.train.sb3 import control_kwargs, split_hyperparams, train_sb3

    groups = baseline_groups(env_id)
    if group not in groups:
        raise ValueError(f"group must be one of {sorted(groups)} for {env_id}, got {group!r}")
    g = groups[group]
    spec = resolve_env(g.get("env", env_id))  # the version trained on (the track's own by default)
    hp, hp_file = _yaml(env_id)
    sec_name = g.get("section", g["algo"])
    section = hp.get(sec_name)
    if not isinstance(section, Mapping):
        raise ValueError(f"{hp_file}: no section {sec_name!r} for baseline {group!r}")
    control, algo_kwargs = split_hyperparams(section, g["view"])
    env_kwargs = deep_update(_train_env_kwargs(env_id), control.get("env_kwargs") or {})
    total = QUICK_STEPS if quick else int(g["total_steps"])
    files = []
    for seed in seeds:
        out = Path(out_root) / env_id / f"{group}-seed{seed}"
        t0 = time.perf_counter()
        train_sb3(spec, g["algo"], g["view"], out, seed=int(seed), total_steps=total, env_kwargs=env_kwargs,
                  algo_kwargs=algo_kwargs, resume=resume, progress=progress, **control_kwargs(control))
        wall = time.perf_counter() - t0
        card_path = out / "policy.json"
        card = json.loads(card_path.read_text())
        card.update({
            "group": group, "role": g["role"], "description": g.get("description", ""),
            "train_wall_seconds": round(wall, 1), "hyperparams_file": f"prosumer_gym/train/hyperparams/{hp_file.name}",
            "hyperparams": {"algo_kwargs": algo_kwargs, "control": {k: v for k, v in control.items() if k != "env_kwargs"}},
            "command": f"python -m prosumer_gym.train.baselines --env {env_id} --group {group} --seeds {len(seeds)}"
                       + (f" --first-seed {min(seeds)}" if min(seeds) else ""),
            "quick": bool(quick),
        })
        atomic_write_text(card_path, json.dumps(card, indent=1, sort_keys=True) + "\n")
        files.append(out / "policy.pt")
        print(f"{env_id} {group} seed {seed}: {card['total_steps']} steps in {wall:.0f} s -> {out}", flush=True)
        if publish:
            dest = RL_BASELINE_DIR / env_id
            dest.mkdir(parents=True, exist_ok=True)
            for ext in (".pt", ".json"):
                tmp = dest / f".{group}-seed{seed}{ext}.tmp"
                shutil.copyfile(out / f"policy{ext}", tmp)
                tmp.replace(dest / f"{group}-seed{seed}{ext}")
    return files


def shipped_baselines(env_id: str, root: str | Path | None = None) -> list[tuple[str, Path]]:
    """``[(spec name "<group>-seed<k>", path of the .pt)]`` of the baselines shipped for ``env_id``."""
    folder = Path(root) if root is not None else RL_BASELINE_DIR / env_id
    if not folder.is_dir():
        return []
    return sorted((p.stem, p) for p in folder.glob("*.pt") if p.with_suffix(".json").is_file())


def shipped_cards(env_id: str, root: str | Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{group: [card of each training seed, by seed]}`` of the baselines shipped for ``env_id``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for _, path in shipped_baselines(env_id, root):
        card = json.loads(path.with_suffix(".json").read_text())
        out.setdefault(str(card.get("group")), []).append(card)
    return {g: sorted(cs, key=lambda c: int(c.get("seed", 0))) for g, cs in sorted(out.items())}


def training_curve_band(cards: Sequence[Mapping[str, Any]], points: int = 40) -> dict[str, list[float]]:
    """Mean learning curve of a group with its 95% CI over training seeds (Student t): each
    seed's episode returns interpolated onto a common grid of environment steps (up to the
    shortest run's last point)."""
    from scipy import stats as st

    curves = [(np.asarray(c["curve"]["env_steps"], float), np.asarray(c["curve"]["return"], float))
              for c in cards if c.get("curve") and len(c["curve"].get("env_steps", [])) >= 2]
    if not curves:
        return {"env_steps": [], "mean": [], "lo": [], "hi": [], "n": 0}
    start = max(x[0] for x, _ in curves)
    end = min(x[-1] for x, _ in curves)
    grid = np.linspace(start, end, points) if end > start else np.asarray([end])
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    mean = ys.mean(axis=0)
    n = ys.shape[0]
    half = st.t.ppf(0.975, n - 1) * ys.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    return {"env_steps": grid.tolist(), "mean": mean.tolist(), "lo": (mean - half).tolist(),
            "hi": (mean + half).tolist(), "n": int(n)}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m prosumer_gym.train.baselines", description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", required=True, help="Gymnasium id of the track (e.g. StorageSharing-v0)")
    sel = ap.add_mutually_exclusive_group(required=True)
    sel.add_argument("--group", help="baseline group (the env YAML's 'baselines:' keys)")
    sel.add_argument("--all", action="store_true", help="every group of the env")
    ap.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1 (default 5)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", default="runs/baselines")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps per run (smoke test)")
    ap.add_argument("--publish", action="store_true", help="copy the exports into the package's rl_baselines/")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch intra-op threads (default 1: these networks are small, the cores shared)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.torch_threads < 1:
        parser.error("--torch-threads must be >= 1")
    import torch

    torch.set_num_threads(args.torch_threads)  # an entry point may set process-wide state
    try:
        groups = sorted(baseline_groups(args.env)) if args.all else [args.group]
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        for group in groups:
            train_group(args.env, group, seeds, args.out, args.quick, args.publish, args.resume, not args.no_progress)
    except (ValueError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
