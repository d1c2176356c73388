"""``prosumer-gym-train``: train any registered prosumer_gym env (RL-Zoo style).

Algorithms
    ``pqr``, ``prodqn``: the paper's reference agents, one independent agent per agent of
    the PettingZoo env (P2PTrading-v0: per seller), :mod:`prosumer_gym.train.population`.
    ``constant``, ``random``: the price baselines through the same loop (logged alike).
    ``ppo``, ``a2c``, ``dqn``: Stable-Baselines3, on the single-agent Gymnasium view
    (``--view gym``, default) or on the PettingZoo env with parameter sharing
    (``--view pettingzoo``, SuperSuit), :mod:`prosumer_gym.train.sb3`.

Hyperparameters
    ``prosumer_gym/train/hyperparams/<env id>.yml`` (the paper's values for P2PTrading-v0);
    ``--hyperparams key=value`` overrides entries (dotted keys reach nested ones, e.g.
    ``agent_kwargs.lr=0.01``), ``--env-kwargs key=value`` the env's keywords; values are
    YAML (``mechanism=debate``, ``mechanism_kwargs={NP: 20, G_max: 1000}``). Envs without a
    file train with the libraries' defaults.

Output (``--out``, default ``runs/train/<env>/<algo>-<view>-seed<seed>``)
    ``tb/`` TensorBoard logs, ``checkpoints/``, ``config.yml`` or ``run.json``, and the
    trained agents (``agents/`` or ``model.zip``); reference agents also write
    ``history.csv`` (one row per step) and ``episodes.csv``. ``--resume`` continues a killed
    run from its newest checkpoint without losing or duplicating logged history.

Examples::

    prosumer-gym-train --env P2PTrading-v0 --algo pqr --seed 0
    prosumer-gym-train --env P2PTrading-v0 --algo prodqn --env-kwargs n_sellers=5 n_buyers=5 --total-steps 730
    prosumer-gym-train --env P2PTrading-v0 --algo ppo --view pettingzoo --total-steps 20000
    prosumer-gym-train --env P2PTrading-v0 --algo pqr --out runs/pqr --resume
    tensorboard --logdir runs/train
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from prosumer_gym.train.common import (
    available_envs,
    deep_update,
    hyperparams_path,
    load_hyperparams,
    parse_kv,
    resolve_env,
)

__all__ = ["main", "build_parser", "ALGOS"]

REFERENCE_ALGOS = ("pqr", "prodqn", "constant", "random")
SB3_ALGOS = ("ppo", "a2c", "dqn")
ALGOS = REFERENCE_ALGOS + SB3_ALGOS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prosumer-gym-train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="P2PTrading-v0",
                   help="Gymnasium id (e.g. P2PTrading-v0) or PettingZoo module (e.g. p2p_trading_v0)")
    p.add_argument("--algo", default="pqr", choices=ALGOS)
    p.add_argument("--view", choices=("gym", "pettingzoo"), default=None,
                   help="SB3 only: single-agent Gymnasium view (default) or PettingZoo with parameter sharing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--total-steps", type=int, default=None,
                   help="env steps (days for P2PTrading reference agents; SB3 timesteps otherwise); default: the YAML")
    p.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--hyperparams", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override the YAML section (dotted keys for nested entries)")
    p.add_argument("--hyperparams-file", default=None, help="another YAML file instead of the packaged one")
    p.add_argument("--out", default=None, help="output folder (default runs/train/<env>/<algo>-<view>-seed<seed>)")
    p.add_argument("--checkpoint-freq", type=int, default=None, help="steps between checkpoints (default: the YAML)")
    p.add_argument("--keep-checkpoints", type=int, default=None, help="newest checkpoints kept (default: YAML or 2)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-tensorboard", action="store_true", help="reference agents only: skip TensorBoard")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads (1 is fastest for these small networks)")
    p.add_argument("--list", action="store_true", help="list envs, their hyperparameter files and exit")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def _list() -> int:
    print("registered environments (Gymnasium id | PettingZoo module | hyperparameter file):")
    for spec in available_envs():
        hp = hyperparams_path(spec)
        print(f"  {spec.gym_id:22s} {spec.pettingzoo_module or '-':40s} {hp.name if hp else '- (library defaults)'}")
    print(f"algorithms: {', '.join(ALGOS)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        return _list()
    try:
        spec = resolve_env(args.env)
        cli_env = parse_kv(args.env_kwargs, "--env-kwargs")
        cli_hp = parse_kv(args.hyperparams, "--hyperparams")
        top_env, section, hp_file = load_hyperparams(spec, args.algo, args.hyperparams_file)
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    if args.seed < 0:
        parser.error("--seed must be >= 0")
    if args.total_steps is not None and args.total_steps < 1:
        parser.error("--total-steps must be >= 1")
    if args.checkpoint_freq is not None and args.checkpoint_freq < 0:
        parser.error("--checkpoint-freq must be >= 0")
    if args.torch_threads < 1:
        parser.error("--torch-threads must be >= 1")
    if args.keep_checkpoints is not None and args.keep_checkpoints < 1:
        parser.error("--keep-checkpoints must be >= 1")
    import torch

    torch.set_num_threads(args.torch_threads)  # an entry point may set process-wide state
    section = deep_update(section, cli_hp)
    reference = args.algo in REFERENCE_ALGOS
    view = args.view or ("pettingzoo" if reference else "gym")
    if reference and view != "pettingzoo":
        parser.error(f"{args.algo} trains one agent per agent of the PettingZoo env; drop --view gym")
    out = Path(args.out) if args.out else Path("runs", "train", spec.name, f"{args.algo}-{view}-seed{args.seed}")
    t0 = time.perf_counter()
    print(f"prosumer-gym-train: {spec.name} {args.algo} ({view}), seed {args.seed}, hyperparameters "
          f"{hp_file if hp_file else 'library defaults'}", file=sys.stderr)
    if reference:
        from prosumer_gym.train.population import PopulationConfig, PopulationTrainer

        unknown = set(section) - {"total_steps", "checkpoint_freq", "keep_checkpoints", "agent_kwargs", "env_kwargs",
                                  "log_agents"}
        if unknown:
            parser.error(f"unknown {args.algo} hyperparameters {sorted(unknown)}; known: total_steps, "
                         f"checkpoint_freq, keep_checkpoints, agent_kwargs, env_kwargs, log_agents")
        env_kwargs = deep_update(deep_update(top_env, section.get("env_kwargs") or {}), cli_env)
        try:
            cfg = PopulationConfig(
                env=spec.name, algo=args.algo, seed=args.seed,
                total_steps=args.total_steps if args.total_steps is not None else section.get("total_steps"),
                env_kwargs=env_kwargs, agent_kwargs=dict(section.get("agent_kwargs") or {}),
                checkpoint_freq=(args.checkpoint_freq if args.checkpoint_freq is not None
                                 else int(section.get("checkpoint_freq", 0))),
                keep_checkpoints=int(args.keep_checkpoints or section.get("keep_checkpoints", 2)),
                log_agents=bool(section.get("log_agents", True)),
            )
            trainer = PopulationTrainer(cfg, out, tensorboard=not args.no_tensorboard, progress=not args.no_progress,
                                        desc=f"{args.algo} {spec.name}")
            res = trainer.run(resume=args.resume)
        except (ValueError, FileExistsError, TypeError) as e:
            print(f"prosumer-gym-train: error: {e}", file=sys.stderr)
            return 2
        if res.episodes:
            ep = res.episodes[-1]
            keys = [k for k in ("reward_mean", "buyers_pt_value", "sellers_revenue_usd", "mean_price") if k in ep]
            print("last episode: " + ", ".join(f"{k} {ep[k]:.4g}" for k in keys))
    else:
        from prosumer_gym.train.sb3 import split_hyperparams, train_sb3

        control, algo_kwargs = split_hyperparams(section, view)
        env_kwargs = deep_update(deep_update(top_env, control.get("env_kwargs") or {}), cli_env)
        total = args.total_steps if args.total_steps is not None else int(control.get("total_steps", 100_000))
        freq = args.checkpoint_freq if args.checkpoint_freq is not None else int(control.get("checkpoint_freq", 0))
        try:
            train_sb3(spec, args.algo, view, out, seed=args.seed, total_steps=total, env_kwargs=env_kwargs,
                      algo_kwargs=algo_kwargs, policy=str(control.get("policy", "MlpPolicy")),
                      n_envs=int(control.get("n_envs", 1)), checkpoint_freq=freq,
                      keep_checkpoints=int(args.keep_checkpoints or control.get("keep_checkpoints", 2)),
                      black_death=bool(control.get("black_death", False)), resume=args.resume,
                      progress=not args.no_progress, verbose=args.verbose)
        except (ValueError, FileExistsError, TypeError) as e:
            print(f"prosumer-gym-train: error: {e}", file=sys.stderr)
            return 2
    print(f"done in {time.perf_counter() - t0:.0f} s; run folder: {out}  (tensorboard --logdir {out / 'tb'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
