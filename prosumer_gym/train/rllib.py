"""Ray RLlib multi-agent training (``prosumer-gym-train --backend rllib``): PPO or DQN on any
prosumer_gym PettingZoo env, on a local Ray instance or a Ray cluster.

Needs the optional extra: ``pip install "prosumer_gym[rllib]"``. Ray is imported lazily
(:func:`require_ray`), so the package and the CLI work without it.

* Env: :class:`prosumer_gym.train.rllib_env.PettingZooRLlibEnv` (RLlib ``MultiAgentEnv``
  adapter: agents that leave and return, per-agent spaces, Dict observations,
  multi-dimensional Box and MultiBinary actions), built on every env runner from
  ``env_config = {"env": <name>, "env_kwargs": {...}, "policy_mapping": ...}``.
* Policies (``policy_mapping``): ``"shared"`` (one module for all agents, parameter
  sharing), ``"role"`` (one module per agent-name prefix: ``auctioneer``/``ru``,
  ``platform``/``consumer``, ``seller``, ...) or ``"agent"`` (one module per agent,
  independent learners). See :func:`build_config`.
* Ray: :func:`init_ray` starts a local instance (no dashboard, ``num_cpus`` if given) or
  connects to ``ray_address`` (``"auto"``, ``"<head-ip>:6379"`` or ``"ray://<head>:10001"``).
  ``num_env_runners=0`` samples in the driver; ``n > 0`` starts ``n`` remote env runners
  (one CPU each), which is how sampling scales out on a cluster.
* Loop (:func:`train_rllib`): ``algo.train()`` until ``total_steps`` env steps are sampled
  (RLlib's ``num_env_steps_sampled_lifetime``; one env step = one ``step()`` of the
  PettingZoo env, whatever the number of agents). Every numeric entry of each iteration's
  result is written to TensorBoard in ``<out>/tb/`` at that env-step count
  (``env_runners/episode_return_mean``, ``env_runners/module_episode_returns_mean/<module>``,
  ``learners/<module>/policy_loss``, ...), plus the env's market KPIs:
  ``env_runners/market/<kpi>`` (mean per step over the iteration) and
  ``env_runners/episode_market/<kpi>`` (episode means) from :class:`MarketMetricsCallback`.
* Checkpoints: ``algo.save_to_path`` (RLlib's checkpoint API: learner weights and optimiser
  state, connector states, metrics, iteration counter) into a temporary folder renamed to
  ``<out>/checkpoints/rllib_<env steps>_steps/`` every ``checkpoint_freq`` env steps (checked
  after each iteration) and at the end; the newest ``keep_checkpoints`` are kept.
  ``resume=True`` rebuilds the algorithm, ``restore_from_path`` the newest one and trains up
  to ``total_steps``; TensorBoard events after the checkpoint are purged (``purge_step``). As
  with SB3, env state and an in-progress rollout are not checkpointed: the resumed run
  starts fresh episodes. A trained module loads for inference with
  ``RLModule.from_checkpoint(<ckpt>/learner_group/learner/rl_module/<module id>)``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prosumer_gym.core.validation import check_int
from prosumer_gym.train.common import (
    EnvSpec,
    atomic_write_text,
    dump_json,
    make_summary_writer,
    progress_bar,
    to_jsonable,
)

__all__ = ["RLLIB_ALGOS", "POLICY_MAPPINGS", "require_ray", "init_ray", "build_config", "train_rllib",
           "split_rllib_hyperparams", "latest_rllib_checkpoint", "list_rllib_checkpoints", "flatten_result",
           "env_config", "load_module"]

RLLIB_ALGOS = ("ppo", "dqn")
POLICY_MAPPINGS = ("shared", "role", "agent")
CONTROL_KEYS = ("total_steps", "checkpoint_freq", "keep_checkpoints", "env_kwargs", "num_env_runners",
                "num_envs_per_env_runner", "model_config", "pad_observations")
INSTALL_HINT = 'the RLlib backend needs Ray RLlib: pip install "prosumer_gym[rllib]"'


def require_ray() -> None:
    """Raise ``ImportError`` with the install hint when Ray RLlib is missing."""
    try:
        import ray  # noqa: F401
        import ray.rllib  # noqa: F401
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from None


def default_temp_dir() -> str:
    """Ray's session folder for local instances: ``<tmp>/ray_prosumer_gym`` (short: Ray's
    Unix socket paths must stay under 107 characters)."""
    return os.path.join(tempfile.gettempdir(), "ray_prosumer_gym")


def init_ray(address: str | None = None, num_cpus: int | None = None, temp_dir: str | None = None,
             quiet: bool = True) -> bool:
    """Start a local Ray instance (``address=None``) or connect to a cluster; no dashboard.

    Returns True if this call started/connected Ray (the caller should ``ray.shutdown()``),
    False if Ray was already initialised (then nothing is changed). A local instance does not
    send Ray's usage statistics unless ``RAY_USAGE_STATS_ENABLED`` says otherwise.
    """
    require_ray()
    import ray

    if ray.is_initialized():
        return False
    if num_cpus is not None:
        num_cpus = check_int("num_cpus", num_cpus, 1)
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": not quiet}
    if quiet:
        import logging

        kw["logging_level"] = logging.WARNING
    if address and address.startswith("ray://"):
        ray.init(address=address)  # Ray Client: the server side holds the settings
    elif address:
        ray.init(address=address, **kw)  # the cluster decides resources and temp dir
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # read by ray.init; nothing leaves the machine
        ray.init(num_cpus=num_cpus, _temp_dir=temp_dir or default_temp_dir(), **kw)
    return True


def env_config(spec: EnvSpec | str, env_kwargs: Mapping[str, Any] | None = None, policy_mapping: str = "role",
               pad_observations: bool = False) -> dict[str, Any]:
    """The ``env_config`` of :class:`~prosumer_gym.train.rllib_env.PettingZooRLlibEnv`."""
    name = spec.name if isinstance(spec, EnvSpec) else str(spec)
    return {"env": name, "env_kwargs": dict(env_kwargs or {}), "policy_mapping": policy_mapping,
            "pad_observations": bool(pad_observations)}


def _check_choice(value: str, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {allowed}, got {value!r}")
    return value


def build_config(spec: EnvSpec | str, algo: str = "ppo", *, env_kwargs: Mapping[str, Any] | None = None,
                 policy_mapping: str = "role", seed: int = 0, num_env_runners: int = 0,
                 num_envs_per_env_runner: int = 1, algo_kwargs: Mapping[str, Any] | None = None,
                 model_config: Mapping[str, Any] | None = None, pad_observations: bool = False,
                 market_metrics: bool = True):
    """An RLlib ``AlgorithmConfig`` (new API stack, torch) for ``spec`` under ``policy_mapping``.

    ``algo_kwargs`` are attributes of the RLlib config, set by ``config.update_from_dict``
    (``lr``, ``gamma``, ``train_batch_size_per_learner``, ``minibatch_size``, ``num_epochs``,
    ``min_sample_timesteps_per_iteration``, ...; unknown keys raise ``ValueError``);
    ``model_config`` goes to ``config.rl_module(model_config=...)`` (``fcnet_hiddens``,
    ``fcnet_activation``, ...). Modules and their spaces are derived from
    the env's ``possible_agents``. ``seed`` goes to ``config.debugging(seed=...)`` (RLlib seeds
    each env runner's first reset with ``seed + worker_index`` and its framework RNGs).
    """
    require_ray()
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.policy.policy import PolicySpec

    from prosumer_gym.train.rllib_env import MarketMetricsCallback, PettingZooRLlibEnv, policy_mapping_fn

    _check_choice(algo, RLLIB_ALGOS, "algo")
    _check_choice(policy_mapping, POLICY_MAPPINGS, "policy_mapping")
    num_env_runners = check_int("num_env_runners", num_env_runners, 0)
    num_envs_per_env_runner = check_int("num_envs_per_env_runner", num_envs_per_env_runner, 1)
    seed = check_int("seed", seed, 0)
    ecfg = env_config(spec, env_kwargs, policy_mapping, pad_observations)
    probe = PettingZooRLlibEnv(ecfg)  # validates env name, kwargs and the mapping's spaces
    fn = policy_mapping_fn(policy_mapping)
    module_agents: dict[str, str] = {}
    for a in probe.possible_agents:
        module_agents.setdefault(fn(a), a)
    if algo == "dqn":
        from gymnasium import spaces

        bad = sorted({m for m, a in module_agents.items() if not isinstance(probe.action_spaces[a], spaces.Discrete)})
        if bad:
            raise ValueError(f"algo 'dqn' needs Discrete actions; modules {bad} of {ecfg['env']} have "
                             f"{sorted({str(probe.action_spaces[module_agents[m]]) for m in bad})}: use algo 'ppo'")
    # one RLModuleSpec per module with the spaces of its agents (explicit: RLlib's own
    # inference looks at the agents present after one reset only)
    specs = {m: RLModuleSpec(observation_space=probe.observation_spaces[a], action_space=probe.action_spaces[a])
             for m, a in module_agents.items()}
    probe.close()
    cfg = PPOConfig() if algo == "ppo" else DQNConfig()
    cfg = (cfg.framework("torch")
           .environment(PettingZooRLlibEnv, env_config=ecfg)
           .env_runners(num_env_runners=int(num_env_runners), num_envs_per_env_runner=int(num_envs_per_env_runner),
                        num_cpus_per_env_runner=1)
           .learners(num_learners=0)
           .multi_agent(policies={m: PolicySpec(observation_space=s.observation_space, action_space=s.action_space)
                                  for m, s in specs.items()}, policy_mapping_fn=fn)
           .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs=specs))
           .debugging(seed=int(seed), log_level="WARN")
           .reporting(metrics_num_episodes_for_smoothing=20))
    if algo == "dqn":  # DQNConfig's default buffer is single-agent
        cfg = cfg.training(replay_buffer_config={**cfg.replay_buffer_config,
                                                 "type": "MultiAgentPrioritizedEpisodeReplayBuffer"})
    if market_metrics:
        cfg = cfg.callbacks(MarketMetricsCallback)
    if model_config:
        cfg = cfg.rl_module(model_config=dict(model_config))
    if algo_kwargs:
        unknown = [k for k in algo_kwargs if k.startswith("_") or not hasattr(cfg, k)]
        if unknown:
            raise ValueError(f"unknown {algo} hyperparameters {sorted(unknown)}: keys must be attributes of RLlib's "
                             f"{type(cfg).__name__} (e.g. lr, gamma, train_batch_size_per_learner, minibatch_size, "
                             f"num_epochs, min_sample_timesteps_per_iteration)")
        cfg = cfg.update_from_dict(dict(algo_kwargs))
    return cfg


def split_rllib_hyperparams(section: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(control, algo_kwargs)`` of a YAML ``rllib_<algo>`` section (``CONTROL_KEYS`` vs the rest)."""
    sec = dict(section)
    control = {k: sec.pop(k) for k in list(sec) if k in CONTROL_KEYS}
    return control, sec


# --------------------------------------------------------------------------- results
_SKIP_TOP = ("config", "pid", "timestamp", "date", "hostname", "node_ip", "env_runner_group", "fault_tolerance")


def flatten_result(result: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Every finite numeric leaf of an RLlib result dict as ``{"a/b/c": value}``, without the
    echoed config, host/process ids and the per-connector timers."""
    import numpy as np

    out: dict[str, float] = {}
    for k, v in result.items():
        key = f"{prefix}{k}"
        if (not prefix and k in _SKIP_TOP) or "timer" in str(k) or "connector" in str(k):
            continue
        if isinstance(v, Mapping):
            out.update(flatten_result(v, key + "/"))
        elif isinstance(v, (bool, np.bool_)):
            continue
        elif isinstance(v, (int, float, np.integer, np.floating)) or (isinstance(v, np.ndarray) and v.shape == ()):
            f = float(v)
            if math.isfinite(f):
                out[key] = f
        elif hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # torch scalar
            try:
                f = float(v.item())
            except (TypeError, ValueError):
                continue
            if math.isfinite(f):
                out[key] = f
    return out


def _env_steps(result: Mapping[str, Any]) -> int:
    er = result.get("env_runners") or {}
    for v in (er.get("num_env_steps_sampled_lifetime"), result.get("num_env_steps_sampled_lifetime")):
        if v is not None:
            return int(v)
    return 0


# --------------------------------------------------------------------------- checkpoints
_CKPT = re.compile(r"^rllib_(\d+)_steps$")


def list_rllib_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """``(env steps, path)`` of the ``rllib_<steps>_steps`` checkpoint folders, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CKPT.match(p.name)))


def latest_rllib_checkpoint(folder: str | Path) -> tuple[int, Path] | None:
    """The newest ``(env steps, path)`` in ``folder``, or None."""
    found = list_rllib_checkpoints(folder)
    return found[-1] if found else None


def _save_checkpoint(algo, ckpt_dir: Path, steps: int, keep: int) -> Path:
    """``algo.save_to_path`` into a temporary folder, renamed into place (atomic on POSIX)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / f"rllib_{steps}_steps"
    if final.exists():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".rllib_{steps}_", dir=ckpt_dir))
    try:
        algo.save_to_path(str(tmp.resolve()))
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in list_rllib_checkpoints(ckpt_dir)[: -int(keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_module(checkpoint: str | Path, module_id: str):
    """The trained ``RLModule`` ``module_id`` (e.g. ``"seller"``, ``"ru"``, ``"shared"``) of an
    algorithm checkpoint written by :func:`train_rllib` (RLlib pickles: load only checkpoints
    you trust). ``module.forward_inference({"obs": batch})["action_dist_inputs"]`` gives the
    logits (Discrete) or Gaussian parameters (Box) for a batch of adapter observations."""
    require_ray()
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = Path(checkpoint) / "learner_group" / "learner" / "rl_module" / str(module_id)
    if not path.is_dir():
        root = Path(checkpoint) / "learner_group" / "learner" / "rl_module"
        have = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise ValueError(f"module_id must be one of {have} (modules in {checkpoint}), got {module_id!r}")
    return RLModule.from_checkpoint(str(path.resolve()))


# --------------------------------------------------------------------------- training
def train_rllib(spec: EnvSpec, algo: str, out_dir: str | Path, *, seed: int = 0, total_steps: int = 10_000,
                env_kwargs: Mapping[str, Any] | None = None, policy_mapping: str = "role",
                algo_kwargs: Mapping[str, Any] | None = None, model_config: Mapping[str, Any] | None = None,
                num_env_runners: int = 0, num_envs_per_env_runner: int = 1, pad_observations: bool = False,
                checkpoint_freq: int = 0, keep_checkpoints: int = 2, resume: bool = False,
                ray_address: str | None = None, num_cpus: int | None = None, progress: bool = True,
                verbose: int = 0) -> dict[str, Any]:
    """Train (or resume) an RLlib algorithm; see the module docstring.

    Returns a summary: ``env_steps``, ``iterations``, ``checkpoint`` (the final one),
    ``modules``, ``episode_return_mean`` and the last iteration's flattened metrics
    (``metrics``).
    """
    _check_choice(algo, RLLIB_ALGOS, "algo")
    _check_choice(policy_mapping, POLICY_MAPPINGS, "policy_mapping")
    total_steps = check_int("total_steps", total_steps, 1)
    checkpoint_freq = check_int("checkpoint_freq", checkpoint_freq, 0)
    keep_checkpoints = check_int("keep_checkpoints", keep_checkpoints, 1)
    require_ray()
    out = Path(out_dir)
    ckpt_dir, tb_dir, run_file = out / "checkpoints", out / "tb", out / "run.json"
    identity = to_jsonable({"backend": "rllib", "env": spec.name, "algo": algo, "seed": int(seed),
                            "env_kwargs": dict(env_kwargs or {}), "policy_mapping": policy_mapping,
                            "algo_kwargs": dict(algo_kwargs or {}), "model_config": dict(model_config or {}),
                            "pad_observations": bool(pad_observations)})
    latest = latest_rllib_checkpoint(ckpt_dir)
    if latest is not None and not resume:
        raise FileExistsError(f"{out} already holds a run (checkpoints in {ckpt_dir}); resume it or choose another "
                              f"output folder")
    if latest is not None:
        saved = json.loads(run_file.read_text()).get("identity") if run_file.exists() else None
        if saved is not None and saved != identity:
            raise ValueError(f"cannot resume: the saved run differs from this one\n  saved: {saved}\n"
                             f"  now:   {identity}")

    cfg = build_config(spec, algo, env_kwargs=env_kwargs, policy_mapping=policy_mapping, seed=seed,
                       num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner,
                       algo_kwargs=algo_kwargs, model_config=model_config, pad_observations=pad_observations)
    modules = sorted(cfg.policies)
    started = init_ray(ray_address, num_cpus, quiet=verbose < 2)
    algorithm = None
    writer = None
    try:
        algorithm = cfg.build_algo()
        steps = 0
        if latest is not None:
            algorithm.restore_from_path(str(latest[1].resolve()))
            steps = int(latest[0])
            purge = steps + 1
        else:
            if tb_dir.exists():
                shutil.rmtree(tb_dir)
            purge = None
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_file, dump_json({
            "identity": identity, "total_steps": int(total_steps), "modules": modules,
            "num_env_runners": int(num_env_runners), "num_envs_per_env_runner": int(num_envs_per_env_runner),
            "ray_address": ray_address, "pettingzoo_module": spec.pettingzoo_module}))
        writer = make_summary_writer(tb_dir, purge)
        bar = progress_bar(int(total_steps), initial=min(steps, int(total_steps)), desc=f"rllib {algo} {spec.name}",
                           enabled=progress)
        last_ckpt_bucket = steps // checkpoint_freq if checkpoint_freq else 0
        metrics: dict[str, float] = {}
        final: Path | None = latest[1] if latest is not None else None
        while steps < int(total_steps):
            result = algorithm.train()
            new_steps = _env_steps(result)
            if new_steps <= steps:
                raise RuntimeError(f"RLlib sampled no env steps in iteration {algorithm.iteration}")
            metrics = flatten_result(result)
            for k, v in metrics.items():
                writer.add_scalar(k, v, new_steps)
            bar.update(min(new_steps, int(total_steps)) - min(steps, int(total_steps)))
            steps = new_steps
            if verbose:
                ret = metrics.get("env_runners/episode_return_mean")
                print(f"iter {algorithm.iteration}: {steps} env steps, episode_return_mean "
                      f"{'n/a' if ret is None else f'{ret:.4g}'}", file=sys.stderr)
            if checkpoint_freq and steps // checkpoint_freq > last_ckpt_bucket and steps < int(total_steps):
                last_ckpt_bucket = steps // checkpoint_freq
                writer.flush()
                final = _save_checkpoint(algorithm, ckpt_dir, steps, keep_checkpoints)
        bar.close()
        writer.flush()
        if final is None or not final.name.startswith(f"rllib_{steps}_"):
            final = _save_checkpoint(algorithm, ckpt_dir, steps, keep_checkpoints)
        summary = {"env_steps": steps, "iterations": int(algorithm.iteration), "checkpoint": str(final),
                   "modules": modules, "episode_return_mean": metrics.get("env_runners/episode_return_mean"),
                   "metrics": metrics}
        atomic_write_text(out / "summary.json", dump_json({k: v for k, v in summary.items() if k != "metrics"}))
        return summary
    finally:
        if writer is not None:
            writer.close()
        if algorithm is not None:
            algorithm.stop()
        if started:
            import ray

            ray.shutdown()
