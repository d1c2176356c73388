"""``prosumer-gym-train``: train any registered prosumer_gym env (RL-Zoo style).

Algorithms
    ``pqr``, ``prodqn``: the paper's reference agents, one independent agent per agent of
    the PettingZoo env (P2PTrading-v0: per seller), :mod:`prosumer_gym.train.population`.
    ``constant``, ``random``: the price baselines through the same loop (logged alike).
    ``upl``, ``fia``, ``m-upl``, ``bpt-k`` (P2PRecommendation-v0) and ``cars``, ``pk``
    (EUber-v0): the papers' online platform learners (one agent acting for the platform, on
    the Gymnasium view; ``upl`` = UPL with Alg. 1's own initialisation, ``fia`` = UPL with
    FIA's), :mod:`prosumer_gym.train.platform`; ``--env`` defaults to the algo's env.
    ``ppo``, ``a2c``, ``dqn``: Stable-Baselines3, on the single-agent Gymnasium view
    (``--view gym``, default) or on the PettingZoo env with parameter sharing
    (``--view pettingzoo``, SuperSuit), :mod:`prosumer_gym.train.sb3`.

Backends
    ``--backend sb3`` (default): the above. ``--backend rllib``: Ray RLlib multi-agent PPO
    (default) or DQN on the PettingZoo env, one shared module (``--policy-mapping shared``),
    one per role (``role``, default: ``auctioneer``/``ru``, ...) or one per agent
    (``agent``), on a local Ray instance or a cluster (``--ray-address``), ``--num-env-runners`` sampling
    workers; needs ``pip install "prosumer_gym[rllib]"``, :mod:`prosumer_gym.train.rllib`
    (docs/scale_out.md). Its YAML section is ``rllib_<algo>`` (``rllib_ppo``).

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

Hyperparameter search (``--optimize``, SB3 algorithms, RL-Zoo style)
    Optuna TPE (or random) sampling of the algorithm's hyperparameters, median pruning on
    ``--n-evaluations`` evaluations per trial (``--n-eval-episodes`` episodes each, on a separate
    eval env), ``--n-trials`` trials of ``--n-timesteps`` steps in one SQLite study per env,
    algorithm and view (``--storage``, default ``runs/optimize/<env>-<algo>-<view>.db``): the
    same command resumes a killed search. ``--out`` (default ``runs/optimize/<env>-<algo>-<view>``)
    gets ``best_<algo>.yml``, to merge into the env's hyperparameter file, and ``trials.csv``;
    :mod:`prosumer_gym.train.optimize`. ``--hyperparams`` entries are fixed (not searched).

Examples::

    prosumer-gym-train --env P2PTrading-v0 --algo pqr --seed 0
    prosumer-gym-train --env P2PTrading-v0 --algo prodqn --env-kwargs n_sellers=5 n_buyers=5 --total-steps 730
    prosumer-gym-train --env P2PTrading-v0 --algo ppo --view pettingzoo --total-steps 20000
    prosumer-gym-train --env P2PTrading-v0 --algo pqr --out runs/pqr --resume
    prosumer-gym-train --algo fia --env-kwargs n_producers=8 n_consumers=5 --total-steps 120
    prosumer-gym-train --algo cars --env-kwargs n_workers=30 --total-steps 200
    prosumer-gym-train --env EUber-v0 --algo ppo --view pettingzoo --total-steps 20000
    prosumer-gym-train --backend rllib --env StorageSharing-v0 --policy-mapping role --total-steps 20000
    prosumer-gym-train --optimize --env P2PTrading-v0 --algo ppo --n-trials 50 --n-timesteps 36500
    prosumer-gym-train --optimize --env StorageSharing-v0 --algo sac --n-trials 30 --n-timesteps 12000 \
        --optimize-timeout 3600
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
PLATFORM_ALGOS = ("upl", "fia", "m-upl", "bpt-k", "cars", "pk")  # = prosumer_gym.train.platform.PLATFORM_ALGOS
SB3_ALGOS = ("ppo", "a2c", "dqn", "sac", "td3")  # = prosumer_gym.train.sb3.SB3_ALGOS
ALGOS = REFERENCE_ALGOS + PLATFORM_ALGOS + SB3_ALGOS
#: the env of each platform learner (the default of --env for them)
PLATFORM_ENVS = {"upl": "P2PRecommendation-v0", "fia": "P2PRecommendation-v0", "m-upl": "P2PRecommendation-v0",
                 "bpt-k": "P2PRecommendation-v0", "cars": "EUber-v0", "pk": "EUber-v0"}
BACKENDS = ("sb3", "rllib")
RLLIB_ALGOS = ("ppo", "dqn")  # = prosumer_gym.train.rllib.RLLIB_ALGOS (kept here: no Ray import)
OPTIMIZE_DEFAULTS = {"n_trials": 20, "n_eval_episodes": 5, "n_evaluations": 5, "n_startup_trials": 5,
                     "pruner": "median", "sampler": "tpe", "objective": "return", "reevaluate_top": 0,
                     "reevaluate_seeds": 0}
OPTIMIZE_FLAGS = ("n_trials", "n_timesteps", "study_name", "storage", "optimize_timeout", "n_eval_episodes",
                  "n_evaluations", "n_startup_trials", "pruner", "sampler", "objective", "role", "reevaluate_top",
                  "reevaluate_seeds")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prosumer-gym-train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default=None,
                   help="Gymnasium id (e.g. P2PTrading-v0) or PettingZoo module (e.g. p2p_trading_v0); default "
                        "P2PTrading-v0, or the platform learner's env (P2PRecommendation-v0, EUber-v0)")
    p.add_argument("--backend", choices=BACKENDS, default="sb3",
                   help="sb3 (default: reference agents and Stable-Baselines3) or rllib (Ray RLlib multi-agent)")
    p.add_argument("--algo", default=None, choices=ALGOS,
                   help="default: pqr (--backend sb3), ppo (--backend rllib: ppo or dqn)")
    p.add_argument("--view", choices=("gym", "pettingzoo"), default=None,
                   help="SB3 only: single-agent Gymnasium view (default) or PettingZoo with parameter sharing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--total-steps", type=int, default=None,
                   help="env steps (days for P2PTrading reference agents and chapter-4 learners, slots for "
                        "cars/pk; SB3 timesteps otherwise); default: the YAML")
    p.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--hyperparams", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override the YAML section (dotted keys for nested entries)")
    p.add_argument("--hyperparams-file", default=None, help="another YAML file instead of the packaged one")
    p.add_argument("--section", default=None,
                   help="the YAML section to read (default: the algorithm's, e.g. ppo; rllib_<algo> with RLlib)")
    p.add_argument("--out", default=None, help="output folder (default runs/train/<env>/<algo>-<view>-seed<seed>)")
    p.add_argument("--checkpoint-freq", type=int, default=None, help="steps between checkpoints (default: the YAML)")
    p.add_argument("--keep-checkpoints", type=int, default=None, help="newest checkpoints kept (default: YAML or 2)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-tensorboard", action="store_true",
                   help="reference agents and platform learners only: skip TensorBoard")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads (1 is fastest for these small networks)")
    g = p.add_argument_group("RLlib backend (--backend rllib)")
    g.add_argument("--policy-mapping", choices=("shared", "role", "agent"), default=None,
                   help="shared: one module for all agents; role (default): one per agent-name prefix (ru, auctioneer, "
                        "...); agent: one per agent")
    g.add_argument("--num-env-runners", type=int, default=None,
                   help="remote sampling workers (default: the YAML or 0 = sample in the driver process)")
    g.add_argument("--ray-address", default=None,
                   help="Ray cluster to join (auto, <head-ip>:6379 or ray://<head-ip>:10001); "
                        "default: start a local Ray")
    g.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    o = p.add_argument_group("hyperparameter search (--optimize, --backend sb3, SB3 algorithms)")
    o.add_argument("--optimize", action="store_true",
                   help="search hyperparameters with Optuna instead of training (resumes the study if it exists)")
    o.add_argument("--n-trials", type=int, default=None,
                   help=f"complete + pruned trials of the study in total, earlier sessions included "
                        f"(default {OPTIMIZE_DEFAULTS['n_trials']})")
    o.add_argument("--n-timesteps", type=int, default=None,
                   help="SB3 timesteps per trial (default: the YAML's total_steps)")
    o.add_argument("--study-name", default=None, help="default <env>-<algo>-<view>")
    o.add_argument("--storage", default=None,
                   help="Optuna storage URL (default sqlite:///<out>.db = runs/optimize/<env>-<algo>-<view>.db)")
    o.add_argument("--optimize-timeout", type=float, default=None, metavar="SECONDS",
                   help="no new trial after this many seconds of this session")
    o.add_argument("--n-eval-episodes", type=int, default=None,
                   help=f"episodes per evaluation (default {OPTIMIZE_DEFAULTS['n_eval_episodes']})")
    o.add_argument("--n-evaluations", type=int, default=None,
                   help=f"evaluations during a trial, reported to the pruner "
                        f"(default {OPTIMIZE_DEFAULTS['n_evaluations']}; 0: only the final one)")
    o.add_argument("--n-startup-trials", type=int, default=None,
                   help=f"random trials before TPE, and trials before the median pruner prunes "
                        f"(default {OPTIMIZE_DEFAULTS['n_startup_trials']})")
    o.add_argument("--pruner", choices=("median", "none"), default=None, help="default median")
    o.add_argument("--sampler", choices=("tpe", "random"), default=None, help="default tpe")
    o.add_argument("--objective", choices=("return", "track"), default=None,
                   help="what a trial is scored by: the env's mean episode return on the eval episodes (default), "
                        "or the leaderboard track's composite score on --n-eval-episodes tuning scenarios "
                        "(seeds 2,000,000 + k, training households: never the board's)")
    o.add_argument("--role", default=None,
                   help="with --objective track: the track role the trained policy plays (where the track has several)")
    o.add_argument("--reevaluate-top", type=int, default=None,
                   help="after the trials, train the best K again on --reevaluate-seeds more training seeds and "
                        "choose by the mean (against the winner's curse of one seed per trial; default 0: off)")
    o.add_argument("--reevaluate-seeds", type=int, default=None,
                   help="more training seeds per re-evaluated trial (seed+1 ..; default 0)")
    p.add_argument("--list", action="store_true", help="list envs, their hyperparameter files and exit")
    p.add_argument("-v", "--verbose", type=int, default=0)
    return p


def _list() -> int:
    print("registered environments (Gymnasium id | PettingZoo module | hyperparameter file):")
    for spec in available_envs():
        hp = hyperparams_path(spec)
        print(f"  {spec.gym_id:22s} {spec.pettingzoo_module or '-':40s} {hp.name if hp else '- (library defaults)'}")
    print(f"algorithms: {', '.join(ALGOS)}; --backend rllib: {', '.join(RLLIB_ALGOS)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        return _list()
    rllib = args.backend == "rllib"
    if args.algo is None:
        args.algo = "ppo" if rllib or args.optimize else "pqr"
    if args.env is None:
        args.env = PLATFORM_ENVS.get(args.algo, "P2PTrading-v0")
    _check_optimize_args(parser, args)
    if rllib:
        if args.algo not in RLLIB_ALGOS:
            parser.error(f"--backend rllib trains {', '.join(RLLIB_ALGOS)}, got --algo {args.algo}")
        if args.view is not None:
            parser.error("--view is for --backend sb3; RLlib always trains on the PettingZoo env")
        if args.num_env_runners is not None and args.num_env_runners < 0:
            parser.error("--num-env-runners must be >= 0")
        if args.num_cpus is not None and args.num_cpus < 1:
            parser.error("--num-cpus must be >= 1")
        if args.ray_address and args.num_cpus is not None:
            parser.error("--num-cpus sizes a local Ray instance; drop it with --ray-address")
    else:
        used = [f for f, v in (("--policy-mapping", args.policy_mapping), ("--num-env-runners", args.num_env_runners),
                               ("--ray-address", args.ray_address), ("--num-cpus", args.num_cpus)) if v is not None]
        if used:
            parser.error(f"{', '.join(used)} need --backend rllib")
    try:
        spec = resolve_env(args.env)
        cli_env = parse_kv(args.env_kwargs, "--env-kwargs")
        cli_hp = parse_kv(args.hyperparams, "--hyperparams")
        sec_name = args.section or (f"rllib_{args.algo}" if rllib else args.algo)
        top_env, section, hp_file = load_hyperparams(spec, sec_name, args.hyperparams_file)
        if args.section is not None and not section:
            raise ValueError(f"--section {args.section!r}: no such section in {hp_file}")
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
    if args.optimize:
        return _main_optimize(args, spec, top_env, section, hp_file, cli_hp, cli_env)
    section = deep_update(section, cli_hp)
    if rllib:
        return _main_rllib(args, spec, top_env, section, hp_file, cli_env)
    reference = args.algo in REFERENCE_ALGOS
    platform = args.algo in PLATFORM_ALGOS
    view = args.view or ("pettingzoo" if reference else "gym")
    if reference and view != "pettingzoo":
        parser.error(f"{args.algo} trains one agent per agent of the PettingZoo env; drop --view gym")
    if platform and view != "gym":
        parser.error(f"{args.algo} is the platform's learner, trained on the Gymnasium view (the platform is its "
                     f"agent); drop --view pettingzoo")
    if platform and spec.name != PLATFORM_ENVS[args.algo]:
        parser.error(f"{args.algo} trains on {PLATFORM_ENVS[args.algo]}, got --env {args.env}")
    out = Path(args.out) if args.out else Path("runs", "train", spec.name, f"{args.algo}-{view}-seed{args.seed}")
    t0 = time.perf_counter()
    print(f"prosumer-gym-train: {spec.name} {args.algo} ({view}), seed {args.seed}, hyperparameters "
          f"{hp_file if hp_file else 'library defaults'}", file=sys.stderr)
    if reference or platform:
        if platform:  # one learner for the platform (train/platform.py), the population trainer's loop
            from prosumer_gym.train.platform import PlatformConfig as config_cls
            from prosumer_gym.train.platform import PlatformTrainer as trainer_cls
        else:
            from prosumer_gym.train.population import PopulationConfig as config_cls
            from prosumer_gym.train.population import PopulationTrainer as trainer_cls

        unknown = set(section) - {"total_steps", "checkpoint_freq", "keep_checkpoints", "agent_kwargs", "env_kwargs",
                                  "log_agents"}
        if unknown:
            parser.error(f"unknown {args.algo} hyperparameters {sorted(unknown)}; known: total_steps, "
                         f"checkpoint_freq, keep_checkpoints, agent_kwargs, env_kwargs, log_agents")
        env_kwargs = deep_update(deep_update(top_env, section.get("env_kwargs") or {}), cli_env)
        try:
            cfg = config_cls(
                env=spec.name, algo=args.algo, seed=args.seed,
                total_steps=args.total_steps if args.total_steps is not None else section.get("total_steps"),
                env_kwargs=env_kwargs, agent_kwargs=dict(section.get("agent_kwargs") or {}),
                checkpoint_freq=(args.checkpoint_freq if args.checkpoint_freq is not None
                                 else int(section.get("checkpoint_freq", 0))),
                keep_checkpoints=int(args.keep_checkpoints or section.get("keep_checkpoints", 2)),
                log_agents=bool(section.get("log_agents", True)),
            )
            trainer = trainer_cls(cfg, out, tensorboard=not args.no_tensorboard, progress=not args.no_progress,
                                        desc=f"{args.algo} {spec.name}")
            res = trainer.run(resume=args.resume)
        except (ValueError, FileExistsError, TypeError) as e:
            print(f"prosumer-gym-train: error: {e}", file=sys.stderr)
            return 2
        if res.episodes:
            ep = res.episodes[-1]
            head = getattr(trainer, "headline_keys", ("reward_mean", "buyers_pt_value", "sellers_revenue_usd",
                                                      "mean_price"))
            keys = [k for k in head if k in ep]
            print("last episode: " + ", ".join(f"{k} {ep[k]:.4g}" for k in keys))
    else:
        from prosumer_gym.train.sb3 import control_kwargs, split_hyperparams, train_sb3

        control, algo_kwargs = split_hyperparams(section, view)
        env_kwargs = deep_update(deep_update(top_env, control.get("env_kwargs") or {}), cli_env)
        total = args.total_steps if args.total_steps is not None else int(control.get("total_steps", 100_000))
        freq = args.checkpoint_freq if args.checkpoint_freq is not None else int(control.get("checkpoint_freq", 0))
        try:
            kw = control_kwargs(control)
            kw["checkpoint_freq"] = freq
            if args.keep_checkpoints:
                kw["keep_checkpoints"] = int(args.keep_checkpoints)
            train_sb3(spec, args.algo, view, out, seed=args.seed, total_steps=total, env_kwargs=env_kwargs,
                      algo_kwargs=algo_kwargs, resume=args.resume, progress=not args.no_progress,
                      verbose=args.verbose, **kw)
        except (ValueError, FileExistsError, TypeError) as e:
            print(f"prosumer-gym-train: error: {e}", file=sys.stderr)
            return 2
    print(f"done in {time.perf_counter() - t0:.0f} s; run folder: {out}  (tensorboard --logdir {out / 'tb'})")
    return 0


def _check_optimize_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--optimize`` and its options: only together, only for the SB3 algorithms."""
    given = [f"--{f.replace('_', '-')}" for f in OPTIMIZE_FLAGS if getattr(args, f) is not None]
    if not args.optimize:
        if given:
            parser.error(f"{', '.join(given)} need --optimize")
        return
    if args.backend != "sb3":
        parser.error("--optimize searches Stable-Baselines3 hyperparameters: use --backend sb3")
    if args.algo not in SB3_ALGOS:
        parser.error(f"--optimize tunes the SB3 algorithms ({', '.join(SB3_ALGOS)}); {args.algo} is a reference "
                     f"agent with the paper's hyperparameters")
    training_only = [flag for flag, v in (("--total-steps", args.total_steps),
                                          ("--checkpoint-freq", args.checkpoint_freq),
                                          ("--keep-checkpoints", args.keep_checkpoints), ("--resume", args.resume),
                                          ("--no-tensorboard", args.no_tensorboard))
                     if v is not None and v is not False]
    if training_only:
        parser.error(f"{', '.join(training_only)} do not apply to --optimize (steps per trial: --n-timesteps; a study "
                     f"resumes by itself)")
    for flag, low in (("n_trials", 1), ("n_timesteps", 1), ("n_eval_episodes", 1), ("n_evaluations", 0),
                      ("n_startup_trials", 0)):
        v = getattr(args, flag)
        if v is not None and v < low:
            parser.error(f"--{flag.replace('_', '-')} must be >= {low}")
    if args.optimize_timeout is not None and args.optimize_timeout <= 0:
        parser.error("--optimize-timeout must be > 0")


def _main_optimize(args: argparse.Namespace, spec, top_env: dict, section: dict, hp_file, cli_hp: dict,
                   cli_env: dict) -> int:
    """``--optimize``: :func:`prosumer_gym.train.optimize.optimize` with the YAML section as the
    base, ``--hyperparams`` fixed and ``--env-kwargs`` on top of the file's env keywords."""
    from prosumer_gym.train.optimize import default_out_dir, optimize
    from prosumer_gym.train.sb3 import split_hyperparams

    view = args.view or "gym"
    control, _ = split_hyperparams(deep_update(section, cli_hp), view)
    env_kwargs = deep_update(deep_update(top_env, control.get("env_kwargs") or {}), cli_env)
    n_timesteps = args.n_timesteps if args.n_timesteps is not None else int(control.get("total_steps", 100_000))
    out = Path(args.out) if args.out else default_out_dir(spec, args.algo, view)
    opt = {k: (getattr(args, k) if getattr(args, k) is not None else v) for k, v in OPTIMIZE_DEFAULTS.items()}
    t0 = time.perf_counter()
    print(f"prosumer-gym-train --optimize: {spec.name} {args.algo} ({view}), {opt['n_trials']} trials of "
          f"{n_timesteps} timesteps, seed {args.seed}, base hyperparameters "
          f"{hp_file if hp_file else 'library defaults'}", file=sys.stderr)
    try:
        study = optimize(spec, args.algo, view, n_trials=opt["n_trials"], n_timesteps=n_timesteps,
                         study_name=args.study_name, storage=args.storage, out_dir=out, seed=args.seed,
                         n_eval_episodes=opt["n_eval_episodes"], n_evaluations=opt["n_evaluations"],
                         env_kwargs=env_kwargs, hyperparams=section, fixed=cli_hp, sampler=opt["sampler"],
                         pruner=opt["pruner"], n_startup_trials=opt["n_startup_trials"],
                         timeout=args.optimize_timeout, progress=not args.no_progress, verbose=args.verbose,
                         objective=opt["objective"], role=args.role, reevaluate_top=opt["reevaluate_top"],
                         reevaluate_seeds=opt["reevaluate_seeds"])
    except (ValueError, TypeError) as e:
        print(f"prosumer-gym-train: error: {e}", file=sys.stderr)
        return 2
    best = out / f"best_{args.algo}.yml"
    print(f"done in {time.perf_counter() - t0:.0f} s; study {study.study_name!r}, output folder {out}"
          + (f"; best hyperparameters: {best}" if best.exists() else ""))
    return 0


def _main_rllib(args: argparse.Namespace, spec, top_env: dict, section: dict, hp_file, cli_env: dict) -> int:
    """``--backend rllib``: resolve the settings and call :func:`prosumer_gym.train.rllib.train_rllib`."""
    try:
        from prosumer_gym.train.rllib import require_ray

        require_ray()
    except ImportError as e:
        print(f"prosumer-gym-train: error: {e}", file=sys.stderr)
        return 2
    from prosumer_gym.train.rllib import split_rllib_hyperparams, train_rllib

    control, algo_kwargs = split_rllib_hyperparams(section)
    env_kwargs = deep_update(deep_update(top_env, control.get("env_kwargs") or {}), cli_env)
    mapping = args.policy_mapping or "role"
    runners = args.num_env_runners if args.num_env_runners is not None else int(control.get("num_env_runners", 0))
    out = (Path(args.out) if args.out
           else Path("runs", "train", spec.name, f"rllib-{args.algo}-{mapping}-seed{args.seed}"))
    total = args.total_steps if args.total_steps is not None else int(control.get("total_steps", 100_000))
    freq = args.checkpoint_freq if args.checkpoint_freq is not None else int(control.get("checkpoint_freq", 0))
    t0 = time.perf_counter()
    where = f"Ray at {args.ray_address}" if args.ray_address else "local Ray"
    print(f"prosumer-gym-train: {spec.name} rllib {args.algo} (policy mapping {mapping}, {runners} env runners, "
          f"{where}), seed {args.seed}, hyperparameters {hp_file if hp_file else 'library defaults'}", file=sys.stderr)
    try:
        res = train_rllib(spec, args.algo, out, seed=args.seed, total_steps=total, env_kwargs=env_kwargs,
                          policy_mapping=mapping, algo_kwargs=algo_kwargs,
                          model_config=control.get("model_config") or None, num_env_runners=runners,
                          num_envs_per_env_runner=int(control.get("num_envs_per_env_runner", 1)),
                          pad_observations=bool(control.get("pad_observations", False)), checkpoint_freq=freq,
                          keep_checkpoints=int(args.keep_checkpoints or control.get("keep_checkpoints", 2)),
                          resume=args.resume, ray_address=args.ray_address, num_cpus=args.num_cpus,
                          progress=not args.no_progress, verbose=args.verbose)
    except (ValueError, FileExistsError, TypeError) as e:
        print(f"prosumer-gym-train: error: {e}", file=sys.stderr)
        return 2
    ret = res.get("episode_return_mean")
    print(f"{res['env_steps']} env steps in {res['iterations']} iterations; modules {', '.join(res['modules'])}; "
          f"episode_return_mean {'n/a' if ret is None else f'{ret:.4g}'}")
    print(f"done in {time.perf_counter() - t0:.0f} s; run folder: {out}  (tensorboard --logdir {out / 'tb'}); "
          f"checkpoint {res['checkpoint']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
