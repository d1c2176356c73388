"""Hyperparameter search for the Stable-Baselines3 algorithms with Optuna, the RL Baselines3
Zoo way (``prosumer-gym-train --optimize``).

One **study per env, algorithm and view** (default name ``<env>-<algo>-<view>``) in a local
SQLite file (default ``runs/optimize/<env>-<algo>-<view>.db``, beside the output folder
``runs/optimize/<env>-<algo>-<view>/``), opened with ``load_if_exists=True``: a killed search
started again keeps its finished trials and runs until the study holds ``n_trials``
complete + pruned trials. The sampler's seed is derived from ``seed`` and the number of
trials already in the study (a resumed search does not replay the first trials' draws);
the study remembers what the objective depends on (env, its keywords, view, steps per
trial, seed, evaluation settings, fixed hyperparameters) and refuses to resume with others.
The SQLite storage has a heartbeat: a trial left ``RUNNING`` by a killed process is marked
failed once it has been silent for two minutes and its hyperparameters are tried once more.

Each trial samples the algorithm's hyperparameters (:data:`ALGO_SAMPLERS`, Zoo-style search
spaces), builds the training env and the model exactly as :func:`prosumer_gym.train.sb3.train_sb3`
does (``make_gym_vec_env`` / ``make_pettingzoo_vec_env``, ``VecNormalize`` for
``normalize: true``, ``sb3_class(algo)(policy, venv, seed=seed, device="cpu", **kwargs)``),
trains ``n_timesteps`` and is scored by the **mean return of ``n_eval_episodes`` deterministic
episodes on a separate eval env** (the env's own reward; higher is better). The eval
episodes are reset with the *tuning* seeds ``seed + 2_000_000 + k`` (training envs use
``seed + i``), the same episodes at every evaluation of every trial; they are disjoint from
the leaderboard's held-out scenario seeds ``1_000_000 + k``, so nothing is tuned on a
reported seed (before 2026-12-03 the offset was 1_000_000, i.e. the board's first seeds). ``n_evaluations`` evaluations during
training report ``trial.report(mean_return, num_timesteps)``; the pruner (``median``:
``MedianPruner(n_startup_trials, n_warmup_steps)``, ``none``, or any Optuna pruner) may stop
a trial there (:class:`TrialEvalCallback` returns ``False``, SB3 stops learning).

Hyperparameters: the YAML section (``hyperparams``) is the base, the sampled values override
it, and ``fixed`` ones (the CLI's ``--hyperparams``) are never sampled. Outputs in
``out_dir``: ``best_<algo>.yml`` (the fixed entries and the best trial's sampled values as a
``<algo>:`` section, under ``pettingzoo:`` for that view, ready to merge into
``prosumer_gym/train/hyperparams/<env>.yml``) and ``trials.csv`` (``study.trials_dataframe()``;
``trials.json`` without pandas), both written atomically after every trial.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.eval.leaderboard.core import TUNING_SEED_BASE
from prosumer_gym.train.common import EnvSpec, atomic_write_text, deep_update, dump_json, dump_yaml, to_jsonable

__all__ = ["optimize", "sample_hyperparams", "ALGO_SAMPLERS", "OPTIMIZE_ALGOS", "SAMPLERS", "PRUNERS",
           "EVAL_SEED_OFFSET", "evaluate_returns", "make_sampler", "make_pruner", "action_noise_kwargs",
           "best_section", "format_report", "default_out_dir"]

SAMPLERS = ("tpe", "random")
OBJECTIVES = ("return", "track")
PRUNERS = ("median", "none")
EVAL_SEED_OFFSET = TUNING_SEED_BASE  # eval episode k is reset with seed + EVAL_SEED_OFFSET + k (not a board seed)
HEARTBEAT_SECONDS = 60        # SQLite heartbeat; a trial silent for twice this is stale

# ------------------------------------------------------------------ search spaces (Zoo style)
# Discounts include the shipped files' 0.8 (daily rewards, year-long episodes) and the usual
# long-horizon values; learning rates stop at 1e-2 (the Zoo's upper bound of 1 only wastes
# trials on diverging networks).
GAMMAS = [0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]
NET_ARCHS = {"tiny": [64], "small": [64, 64], "medium": [256, 256], "big": [400, 300]}


class _Space:
    """``trial.suggest_*`` that skips what ``fixed`` already sets (those are not searched)."""

    def __init__(self, trial, fixed: Mapping[str, Any]) -> None:
        self.trial, self.fixed = trial, dict(fixed)

    def cat(self, name: str, choices: Sequence[Any]) -> Any:
        return self.fixed[name] if name in self.fixed else self.trial.suggest_categorical(name, list(choices))

    def log(self, name: str, low: float, high: float) -> float:
        return self.fixed[name] if name in self.fixed else self.trial.suggest_float(name, low, high, log=True)

    def uniform(self, name: str, low: float, high: float) -> float:
        return self.fixed[name] if name in self.fixed else self.trial.suggest_float(name, low, high)

    def net_arch(self, kwargs: dict[str, Any], choices: str) -> None:
        """``policy_kwargs: {net_arch: [...]}`` from one of ``choices`` (names of :data:`NET_ARCHS`)."""
        if "policy_kwargs" not in self.fixed:  # fixed policy_kwargs replace the sampled ones whole
            kwargs["policy_kwargs"] = {"net_arch": list(NET_ARCHS[self.trial.suggest_categorical("net_arch",
                                                                                               choices.split())])}

    def sampled(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` without the fixed keys."""
        return {k: v for k, v in kwargs.items() if k not in self.fixed}


#: PPO minibatches per rollout searched when the vec env has many envs (parameter sharing:
#: one per agent), where absolute batch sizes from 8 would mean 10^5-10^6 gradient steps a run
MINIBATCHES = [1, 2, 4, 8, 16, 32]


def _sample_ppo(s: _Space, n_envs: int) -> dict[str, Any]:
    many = int(n_envs) > 1 and "batch_size" not in s.fixed
    kw = {"learning_rate": s.log("learning_rate", 1e-5, 1e-2),
          "n_steps": s.cat("n_steps", [8, 16, 32, 64, 128, 256, 512, 1024, 2048]),
          "batch_size": s.cat("n_minibatches", MINIBATCHES) if many else s.cat("batch_size", [8, 16, 32, 64, 128, 256, 512]),
          "n_epochs": s.cat("n_epochs", [1, 5, 10, 20]),
          "gamma": s.cat("gamma", GAMMAS),
          "gae_lambda": s.cat("gae_lambda", [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]),
          "ent_coef": s.log("ent_coef", 1e-8, 0.1),
          "clip_range": s.cat("clip_range", [0.1, 0.2, 0.3, 0.4])}
    rollout = int(kw["n_steps"]) * int(n_envs)
    if many:  # n_envs > 1: the rollout split into a sampled number of minibatches (as CleanRL, RLlib)
        kw["batch_size"] = max(rollout // int(kw["batch_size"]), 1)
    elif "batch_size" not in s.fixed:  # a minibatch is at most one rollout of every env
        kw["batch_size"] = min(int(kw["batch_size"]), rollout)
    s.net_arch(kw, "small medium")
    return s.sampled(kw)


def _sample_a2c(s: _Space, n_envs: int) -> dict[str, Any]:
    kw = {"learning_rate": s.log("learning_rate", 1e-5, 1e-2),
          "n_steps": s.cat("n_steps", [8, 16, 32, 64, 128, 256, 512, 1024, 2048]),
          "gamma": s.cat("gamma", GAMMAS),
          "gae_lambda": s.cat("gae_lambda", [0.8, 0.9, 0.92, 0.95, 0.98, 0.99, 1.0]),
          "ent_coef": s.log("ent_coef", 1e-8, 0.1),
          "vf_coef": s.uniform("vf_coef", 0.0, 1.0),
          "max_grad_norm": s.cat("max_grad_norm", [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 5.0]),
          "normalize_advantage": s.cat("normalize_advantage", [False, True])}
    s.net_arch(kw, "small medium")
    return s.sampled(kw)


def _sample_dqn(s: _Space, n_envs: int) -> dict[str, Any]:
    kw = {"learning_rate": s.log("learning_rate", 1e-5, 1e-2),
          "buffer_size": s.cat("buffer_size", [10_000, 50_000, 100_000, 1_000_000]),
          "batch_size": s.cat("batch_size", [16, 32, 64, 100, 128, 256, 512]),
          "gamma": s.cat("gamma", GAMMAS),
          "exploration_fraction": s.uniform("exploration_fraction", 0.0, 0.5),
          "exploration_final_eps": s.uniform("exploration_final_eps", 0.0, 0.2),
          "target_update_interval": s.cat("target_update_interval", [1, 1000, 5000, 10000, 15000, 20000]),
          "learning_starts": s.cat("learning_starts", [0, 1000, 5000, 10000, 20000]),
          "train_freq": s.cat("train_freq", [1, 4, 8, 16, 128, 256, 1000])}
    s.net_arch(kw, "tiny small medium")
    return s.sampled(kw)


def _sample_off_policy(s: _Space, n_envs: int, td3: bool) -> dict[str, Any]:
    kw = {"learning_rate": s.log("learning_rate", 1e-5, 1e-2),
          "buffer_size": s.cat("buffer_size", [10_000, 100_000, 1_000_000]),
          "batch_size": s.cat("batch_size", [16, 32, 64, 128, 256, 512, 1024, 2048]),
          "gamma": s.cat("gamma", GAMMAS),
          "tau": s.cat("tau", [0.001, 0.005, 0.01, 0.02, 0.05, 0.08]),
          "train_freq": s.cat("train_freq", [1, 4, 8, 16, 32, 64, 128, 256, 512]),
          "learning_starts": s.cat("learning_starts", [0, 1000, 10000, 20000])}
    if "gradient_steps" not in s.fixed:  # the Zoo's choice: one gradient step per env step collected
        kw["gradient_steps"] = int(kw["train_freq"])
    if td3:  # Gaussian exploration noise on the [-1, 1]-scaled action (action_noise_kwargs)
        kw["noise_type"] = s.cat("noise_type", ["normal"])
        kw["noise_std"] = s.uniform("noise_std", 0.0, 1.0)
    s.net_arch(kw, "small medium big")
    return s.sampled(kw)


ALGO_SAMPLERS: dict[str, Callable[[_Space, int], dict[str, Any]]] = {
    "ppo": _sample_ppo,
    "a2c": _sample_a2c,
    "dqn": _sample_dqn,
    "sac": lambda s, n: _sample_off_policy(s, n, td3=False),
    "td3": lambda s, n: _sample_off_policy(s, n, td3=True),
}
OPTIMIZE_ALGOS = tuple(ALGO_SAMPLERS)


def sample_hyperparams(trial, algo: str, n_envs: int = 1, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The algorithm's sampled keyword arguments, in the YAML form (``policy_kwargs: {net_arch:
    [...]}``, TD3's ``noise_type``/``noise_std``). ``n_envs``: environments of the vec env
    (PPO's ``batch_size`` is clipped to ``n_steps * n_envs``); keys in ``fixed`` are not sampled
    and not returned."""
    if algo not in ALGO_SAMPLERS:
        raise ValueError(f"--optimize tunes the SB3 algorithms {', '.join(OPTIMIZE_ALGOS)}, got {algo!r}")
    return ALGO_SAMPLERS[algo](_Space(trial, fixed or {}), int(n_envs))


def action_noise_kwargs(kwargs: Mapping[str, Any], action_space) -> dict[str, Any]:
    """The YAML form's ``noise_type: normal|ornstein-uhlenbeck`` + ``noise_std`` as SB3's
    ``action_noise`` object (the Zoo's file format); other keys unchanged."""
    kw = dict(kwargs)
    noise_type, std = kw.pop("noise_type", None), float(kw.pop("noise_std", 0.1))
    if noise_type is None:
        return kw
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    n = int(np.prod(action_space.shape))
    cls = {"normal": NormalActionNoise, "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise}.get(str(noise_type))
    if cls is None:
        raise ValueError(f"noise_type must be normal or ornstein-uhlenbeck, got {noise_type!r}")
    kw["action_noise"] = cls(mean=np.zeros(n), sigma=std * np.ones(n))
    return kw


# ------------------------------------------------------------------ samplers, pruners
def make_sampler(sampler: Any = "tpe", seed: int = 0, n_startup_trials: int = 5):
    """``"tpe"`` (multivariate TPE, random for the first ``n_startup_trials``), ``"random"``, or
    an Optuna sampler (returned as is)."""
    import optuna

    if not isinstance(sampler, str):
        return sampler
    if sampler == "tpe":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(n_startup_trials=int(n_startup_trials), seed=int(seed), multivariate=True)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=int(seed))
    raise ValueError(f"sampler must be one of {SAMPLERS} or an Optuna sampler, got {sampler!r}")


def make_pruner(pruner: Any = "median", n_startup_trials: int = 5, n_warmup_steps: int = 0):
    """``"median"`` (``MedianPruner``; steps are SB3 timesteps), ``"none"``, or an Optuna pruner."""
    import optuna

    if not isinstance(pruner, str):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=int(n_startup_trials), n_warmup_steps=int(n_warmup_steps))
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {PRUNERS} or an Optuna pruner, got {pruner!r}")


def _storage(storage: Any, heartbeat: int | None):
    """An Optuna storage from a URL (SQLite: its folder created), with the heartbeat that fails
    and retries (once) a trial left ``RUNNING`` by a killed process."""
    if not isinstance(storage, str):
        return storage
    import warnings

    import optuna

    if storage.startswith("sqlite:///"):
        Path(storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    if not heartbeat:
        return optuna.storages.RDBStorage(storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat's API
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # Optuna >= 4.9
        callback = {"heartbeat_stale_trial_callback": retry(max_retry=1)} if retry is not None else \
            {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=1)}
        return optuna.storages.RDBStorage(storage, heartbeat_interval=int(heartbeat),
                                          grace_period=2 * int(heartbeat), **callback)


# ------------------------------------------------------------------ evaluation
def evaluate_returns(model, venv, seeds: Sequence[int], deterministic: bool = True) -> list[float]:
    """One episode per seed (``venv.seed(s)``, ``reset``, play until every env of the vec env
    is done); an episode's return is the mean over the vec env's envs of their rewards summed
    until each is first done (PettingZoo view: the mean over agents)."""
    out = []
    for s in seeds:
        venv.seed(int(s))
        obs = venv.reset()
        total = np.zeros(venv.num_envs)
        done = np.zeros(venv.num_envs, dtype=bool)
        state, starts = None, np.ones(venv.num_envs, dtype=bool)
        while not done.all():
            action, state = model.predict(obs, state=state, episode_start=starts, deterministic=deterministic)
            obs, reward, dones, _ = venv.step(action)
            total += np.where(done, 0.0, np.asarray(reward, dtype=np.float64))
            done |= np.asarray(dones, dtype=bool)
            starts = np.asarray(dones, dtype=bool)
        out.append(float(total.mean()))
    return out


def _trial_eval_callback():
    from stable_baselines3.common.callbacks import BaseCallback

    class TrialEvalCallback(BaseCallback):
        """Every ``eval_freq`` vec-env steps: ``value = evaluate()``, ``trial.report(value,
        num_timesteps)``; stops training (returns ``False``) when ``trial.should_prune()``."""

        def __init__(self, trial, evaluate: Callable[[], float], eval_freq: int) -> None:
            super().__init__()
            self.trial, self.evaluate, self.eval_freq = trial, evaluate, max(int(eval_freq), 1)
            self.evaluations: list[tuple[int, float]] = []
            self.is_pruned = False

        def report(self) -> float:
            """Evaluate now; report to the trial unless this step was reported already (the
            final evaluation after training may fall on the step of the last periodic one, which
            on-policy algorithms make before their last update)."""
            value = float(self.evaluate())
            step = int(self.model.num_timesteps)
            if not self.evaluations or self.evaluations[-1][0] != step:
                self.trial.report(value, step)
            self.evaluations.append((step, value))
            return value

        def _on_step(self) -> bool:
            if self.n_calls % self.eval_freq:
                return True
            self.report()
            if self.trial.should_prune():
                self.is_pruned = True
                return False
            return True

    return TrialEvalCallback


# ------------------------------------------------------------------ the study
def default_out_dir(spec: EnvSpec, algo: str, view: str) -> Path:
    return Path("runs", "optimize", f"{spec.name}-{algo}-{view}")


def _split(section: Mapping[str, Any], view: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from prosumer_gym.train.sb3 import split_hyperparams

    return split_hyperparams(section, view)


def _vec_env(spec: EnvSpec, view: str, env_kwargs: Mapping[str, Any], n_envs: int, black_death: bool,
             seed: int | None, flatten_obs: bool = False, discrete_actions: bool = False):
    from prosumer_gym.train.sb3 import make_gym_vec_env, make_pettingzoo_vec_env

    if view == "gym":  # as train_sb3: Dict observations flattened, binary actions enumerated when the section says so
        return make_gym_vec_env(spec, env_kwargs, n_envs, seed, flatten_obs, discrete_actions)[0]
    return make_pettingzoo_vec_env(spec, env_kwargs, n_envs, black_death, discrete_actions)[0]


def _objective(spec: EnvSpec, algo: str, view: str, n_timesteps: int, seed: int, env_kwargs: dict[str, Any],
               control: dict[str, Any], base: dict[str, Any], fixed: dict[str, Any], n_eval_episodes: int,
               n_evaluations: int, verbose: int, track_objective: Any = None, role: str | None = None,
               out: Path | None = None):
    import optuna
    from gymnasium import spaces

    from prosumer_gym.train.sb3 import sb3_class

    cls = sb3_class(algo)
    policy = str(control.get("policy", "MlpPolicy"))
    n_envs, black_death = int(control.get("n_envs", 1)), bool(control.get("black_death", False))
    normalize, normalize_kwargs = bool(control.get("normalize", False)), dict(control.get("normalize_kwargs") or {})
    eval_seeds = [int(seed) + EVAL_SEED_OFFSET + k for k in range(int(n_eval_episodes))]
    callback_cls = _trial_eval_callback()
    flatten, bits = bool(control.get("flatten_obs", False)), bool(control.get("discrete_actions", False))

    from prosumer_gym.train.pair_policy import POLICIES  # our policy classes, by the name a YAML gives

    # Our policies (PairScorerPolicy) take their own network keywords, not an MLP net_arch: the
    # section's policy_kwargs are then fixed, not sampled.
    fixed_sampling = dict(fixed) if policy not in POLICIES else {"policy_kwargs": base.get("policy_kwargs") or {},
                                                                  **fixed}

    def objective(trial) -> float:
        venv = _vec_env(spec, view, env_kwargs, n_envs, black_death, seed, flatten, bits)
        eval_env = _vec_env(spec, view, env_kwargs, 1, black_death, None, flatten, bits)
        obs_pad = bool(getattr(venv, "padded_observations", False))
        try:
            sampled = sample_hyperparams(trial, algo, venv.num_envs, fixed_sampling)
            trial.set_user_attr("hyperparams", to_jsonable(sampled))
            kwargs = deep_update(base, sampled)
            if normalize:  # as train_sb3: VecNormalize on the training env; eval: its obs statistics, raw rewards
                from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

                venv = VecNormalize(venv, **{"gamma": float(kwargs.get("gamma", 0.99)), **normalize_kwargs})
                eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
            pol = "MultiInputPolicy" if isinstance(venv.observation_space, spaces.Dict) and policy == "MlpPolicy" \
                else policy
            model = cls(POLICIES.get(pol, pol), venv, seed=seed, device="cpu", verbose=verbose,
                        **action_noise_kwargs(kwargs, venv.action_space))

            def evaluate() -> float:
                if track_objective is not None:  # the board's composite on the tuning scenarios
                    from prosumer_gym.train.sb3 import export_trained

                    state, card = export_trained(model, venv, view, flatten, bits,
                                                 bool(control.get("stochastic_export", False)), obs_pad)
                    return track_objective(_save_trial(state, card, trial.number, spec, view, role, model, out),
                                           {"role": role})
                if normalize:
                    sync_envs_normalization(venv, eval_env)
                return float(np.mean(evaluate_returns(model, eval_env, eval_seeds)))

            freq = max(int(n_timesteps) // (int(n_evaluations) * venv.num_envs), 1) if n_evaluations else sys.maxsize
            cb = callback_cls(trial, evaluate, freq)
            try:
                model.learn(int(n_timesteps), callback=cb, progress_bar=False)
            except (AssertionError, ValueError) as e:
                if "nan" not in str(e).lower():
                    raise
                trial.set_user_attr("error", str(e)[:500])  # diverged (the Zoo prunes these too)
                raise optuna.TrialPruned(f"training diverged: {str(e)[:200]}") from None
            trial.set_user_attr("num_timesteps", int(model.num_timesteps))
            if cb.is_pruned:
                trial.set_user_attr("evaluations", [list(e) for e in cb.evaluations])
                raise optuna.TrialPruned(f"pruned at {model.num_timesteps} timesteps")
            value = cb.report()  # the final evaluation (unless the last periodic one was at this step)
            trial.set_user_attr("evaluations", [list(e) for e in cb.evaluations])
            if not math.isfinite(value):
                raise optuna.TrialPruned("non-finite evaluation return")
            return value
        finally:
            venv.close()
            eval_env.close()

    return objective


def _save_trial(state: dict[str, Any], card: dict[str, Any], number: int, spec: EnvSpec, view: str,
                role: str | None, model, out: Path) -> str:
    """The trial's exported policy (``train_sb3``'s export, :func:`~prosumer_gym.train.sb3.export_trained`)
    saved under ``<out>/trials/trial_<n>/``; returns its ``exported:PATH`` spec."""
    from prosumer_gym.train.export import save_exported

    card.update({"env": spec.name, "view": view, "role": role, "trial": int(number),
                 "total_steps": int(model.num_timesteps)})
    return f"exported:{save_exported(out / 'trials' / f'trial_{number}' / 'policy', state, card)}"


def track_of(env_name: str) -> str:
    """The leaderboard track scoring policies of ``env_name``: its own, or for a newer version
    of an env (P2PRecommendation-v1) the version-0 track it is played on."""
    from prosumer_gym.eval.leaderboard.core import TRACK_MODULES

    if env_name in TRACK_MODULES:
        return env_name
    v0 = env_name.rsplit("-v", 1)[0] + "-v0"
    if v0 in TRACK_MODULES:
        return v0
    raise ValueError(f"objective 'track' needs a leaderboard track; {env_name} has none (tracks: {sorted(TRACK_MODULES)})")


def _identity(**kw: Any) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(to_jsonable(kw)))  # as the storage gives it back


def _mean_or_worst(values: Sequence[float | None]) -> float:
    return -math.inf if any(v is None or not math.isfinite(v) for v in values) else float(np.mean(values))


def chosen_trial(study) -> tuple[Any, float, int]:
    """``(trial, value, n_seeds)``: the trial the search recommends. Without a re-evaluation
    Optuna's best trial and its value (one training seed); after ``reevaluate_top`` the
    re-evaluated trial with the highest mean over its training seeds (ties: the lower number),
    against the winner's curse of a maximum over noisy single-seed values."""
    re = study.user_attrs.get("reevaluation") or {}
    if not re:
        return study.best_trial, float(study.best_value), 1
    num = max(re, key=lambda k: (_mean_or_worst(re[k]["values"]), -int(k)))
    return study.trials[int(num)], _mean_or_worst(re[num]["values"]), len(re[num]["values"])


def best_section(study, algo: str, view: str) -> dict[str, Any] | None:
    """``{algo: {...}}`` (``{algo: {"pettingzoo": {...}}}`` for that view): the fixed entries
    the search ran with and the chosen trial's sampled hyperparameters (:func:`chosen_trial`);
    ``None`` without a complete trial."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return None
    fixed = (study.user_attrs.get("identity") or {}).get("fixed") or {}
    best, _, _ = chosen_trial(study)
    hp = deep_update(fixed, best.user_attrs.get("hyperparams") or best.params)
    return {algo: {"pettingzoo": hp} if view == "pettingzoo" else hp}


def reevaluate_top_trials(study, objective_for_seed: Callable[[int, Path], Callable], top: int, n_seeds: int,
                          seed: int, out: Path) -> dict[str, dict[str, list]]:
    """Train and score the ``top`` complete trials again with training seeds ``seed + 1 ..
    seed + n_seeds`` (their hyperparameters fixed, ``optuna.trial.FixedTrial``), kept in the
    study's user attribute ``reevaluation`` (``{number: {"seeds": [...], "values": [...]}}``,
    the trial's own seed and value first; saved after every run, so a killed re-evaluation
    resumes). A run that diverges counts as the worst value (``None``)."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    chosen = sorted(complete, key=lambda t: (-t.value, t.number))[:int(top)]
    re = {k: {"seeds": list(v["seeds"]), "values": list(v["values"])}
          for k, v in (study.user_attrs.get("reevaluation") or {}).items()}
    for t in chosen:
        rec = re.setdefault(str(t.number), {"seeds": [int(seed)], "values": [float(t.value)]})
        for s in range(int(seed) + 1, int(seed) + 1 + int(n_seeds)):
            if s in rec["seeds"]:
                continue
            fn = objective_for_seed(s, out / "reevaluation" / f"trial_{t.number}_seed{s}")
            try:
                value: float | None = float(fn(optuna.trial.FixedTrial(t.params, number=t.number)))
            except optuna.TrialPruned:  # diverged or non-finite
                value = None
            rec["seeds"].append(s)
            rec["values"].append(value)
            study.set_user_attr("reevaluation", re)
            print(f"re-evaluated trial {t.number} with training seed {s}: {value}", file=sys.stderr, flush=True)
    return re


def _objective_label(study) -> str:
    track = (study.user_attrs.get("identity") or {}).get("objective") == "track"
    return "mean track composite on the tuning scenarios" if track else "mean eval return"


def format_report(study) -> str:
    """Optuna's summary: trial counts per state, best value, its parameters."""
    import optuna

    states = optuna.trial.TrialState
    count = {s: sum(t.state == s for t in study.trials) for s in (states.COMPLETE, states.PRUNED, states.FAIL,
                                                                     states.RUNNING)}
    lines = [f"study {study.study_name}: {len(study.trials)} trials ({count[states.COMPLETE]} complete, "
             f"{count[states.PRUNED]} pruned, {count[states.FAIL]} failed, {count[states.RUNNING]} running)"]
    if count[states.COMPLETE]:
        best, value, n = chosen_trial(study)
        for num, rec in sorted((study.user_attrs.get("reevaluation") or {}).items(), key=lambda kv: int(kv[0])):
            lines.append(f"trial {num} re-evaluated on training seeds {rec['seeds']}: {rec['values']} "
                         f"(mean {_mean_or_worst(rec['values']):.6g})")
        lines.append(f"best trial {best.number}: {_objective_label(study)} {value:.6g}"
                     + (f" (mean over {n} training seeds)" if n > 1 else ""))
        (section,) = best_section(study, "-", "gym").values()  # fixed entries + sampled values
        lines += [f"  {k}: {v}" for k, v in section.items()]
    else:
        lines.append("no complete trial yet")
    return "\n".join(lines)


def _write_outputs(study, out: Path, algo: str, view: str, spec: EnvSpec, n_timesteps: int,
                   n_eval_episodes: int) -> None:
    section = best_section(study, algo, view)
    if section is not None:
        best, value, n = chosen_trial(study)
        header = (f"# Best trial {best.number} of Optuna study {study.study_name!r}: {_objective_label(study)} "
                  f"{value:.6g}" + (f" (mean over {n} training seeds, re-evaluated)" if n > 1 else "") + "\n"
                  f"# over {n_eval_episodes} episodes after {best.user_attrs.get('num_timesteps', n_timesteps)} "
                  f"timesteps ({spec.name}, {algo}, view {view}, env_kwargs "
                  f"{(study.user_attrs.get('identity') or {}).get('env_kwargs')}).\n"
                  f"# Merge into prosumer_gym/train/hyperparams/{spec.file_stem}.yml (these keys replace the "
                  f"section's).\n")
        atomic_write_text(out / f"best_{algo}.yml", header + dump_yaml(section))
    try:
        df = study.trials_dataframe()
    except ImportError:  # no pandas
        rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
                 "user_attrs": t.user_attrs, "intermediate_values": t.intermediate_values,
                 "datetime_start": str(t.datetime_start), "datetime_complete": str(t.datetime_complete)}
                for t in study.trials]
        atomic_write_text(out / "trials.json", dump_json(rows))
    else:
        atomic_write_text(out / "trials.csv", df.to_csv(index=False))


def optimize(spec: EnvSpec, algo: str, view: str = "gym", n_trials: int = 20, n_timesteps: int = 10_000, *,
             study_name: str | None = None, storage: Any = None, out_dir: str | Path | None = None, seed: int = 0,
             n_eval_episodes: int = 5, n_evaluations: int = 5, env_kwargs: Mapping[str, Any] | None = None,
             hyperparams: Mapping[str, Any] | None = None, fixed: Mapping[str, Any] | None = None,
             sampler: Any = "tpe", pruner: Any = "median", n_startup_trials: int = 5,
             n_warmup_steps: int | None = None, timeout: float | None = None,
             heartbeat_interval: int | None = HEARTBEAT_SECONDS, progress: bool = True, verbose: int = 0,
             report: bool = True, objective: str = "return", role: str | None = None,
             reevaluate_top: int = 0, reevaluate_seeds: int = 0):
    """Run (or resume) the search; see the module docstring. Returns the ``optuna.Study``.

    ``hyperparams``: the YAML section (control keys ``policy``, ``n_envs``, ``normalize``, ...
    and base keyword arguments; ``None``: library defaults); ``fixed``: entries that override
    it and are not sampled; ``env_kwargs`` go on top of the section's. ``n_trials`` counts
    complete + pruned trials of the study, earlier sessions included. ``n_warmup_steps``
    (default ``n_timesteps // 3``) and the pruner's steps are SB3 timesteps. ``storage``: an
    Optuna storage or URL (default ``sqlite:///<out_dir>.db``). ``objective``: ``"return"``
    (the env's reward on the eval episodes) or ``"track"`` (the leaderboard track's composite
    score on ``n_eval_episodes`` tuning scenarios, :class:`~prosumer_gym.eval.leaderboard.tuning.TrackObjective`;
    ``role``: the track role the policy plays, where the track has several). ``reevaluate_top``
    > 0 with ``reevaluate_seeds`` > 0: after the trials, the best ``reevaluate_top`` are
    trained again on that many more training seeds and the best mean is chosen
    (:func:`reevaluate_top_trials`, :func:`chosen_trial`)."""
    import optuna
    from optuna.trial import TrialState

    from prosumer_gym.train.sb3 import VIEWS, sb3_class

    if algo not in ALGO_SAMPLERS:
        raise ValueError(f"--optimize tunes the SB3 algorithms {', '.join(OPTIMIZE_ALGOS)}, got {algo!r}")
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    for name, v, low in (("reevaluate_top", reevaluate_top, 0), ("reevaluate_seeds", reevaluate_seeds, 0),
                         ("n_trials", n_trials, 1), ("n_timesteps", n_timesteps, 1),
                         ("n_eval_episodes", n_eval_episodes, 1), ("n_evaluations", n_evaluations, 0),
                         ("n_startup_trials", n_startup_trials, 0), ("seed", seed, 0)):
        if int(v) != v or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    sb3_class(algo)  # an algorithm the SB3 trainer does not know is an error before any trial
    fixed_section = dict(fixed or {})
    control, base = _split(deep_update(dict(hyperparams or {}), fixed_section), view)
    fixed_control, fixed_kw = _split(fixed_section, view)
    fixed_kw = {k: v for k, v in {**fixed_control, **fixed_kw}.items() if k != "env_kwargs"}  # carried into the best
    env_kw = deep_update(dict(control.pop("env_kwargs", None) or {}), dict(env_kwargs or {}))
    for k in ("total_steps", "checkpoint_freq", "keep_checkpoints"):
        control.pop(k, None)  # training-run settings: not part of the objective

    name = study_name or f"{spec.name}-{algo}-{view}"
    out = Path(out_dir) if out_dir is not None else default_out_dir(spec, algo, view)
    if storage is None:
        storage = f"sqlite:///{out.parent / (out.name + '.db')}"
    warmup = int(n_timesteps) // 3 if n_warmup_steps is None else int(n_warmup_steps)
    study = optuna.create_study(storage=_storage(storage, heartbeat_interval), study_name=name, direction="maximize",
                                sampler=make_sampler(sampler, seed, n_startup_trials),
                                pruner=make_pruner(pruner, n_startup_trials, warmup), load_if_exists=True)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError(f"study {name!r} in {storage} minimises; this search maximises the eval return")
    identity = _identity(env=spec.name, algo=algo, view=view, n_timesteps=int(n_timesteps), seed=int(seed),
                         env_kwargs=env_kw, control=control, base=base, fixed=fixed_kw,
                         n_eval_episodes=int(n_eval_episodes), n_evaluations=int(n_evaluations),
                         eval_seed_offset=EVAL_SEED_OFFSET, objective=objective, role=role)
    saved = study.user_attrs.get("identity")
    if saved is None:
        study.set_user_attr("identity", identity)
    elif saved != identity:
        diff = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
        raise ValueError(f"study {name!r} in {storage} was run with other settings ({', '.join(diff)}): "
                         f"resume it with the same ones or choose another --study-name/--storage\n"
                         f"  saved: {{{', '.join(f'{k}: {saved.get(k)}' for k in diff)}}}\n"
                         f"  now:   {{{', '.join(f'{k}: {identity.get(k)}' for k in diff)}}}")
    if study.trials and isinstance(sampler, str):  # resumed: do not replay the first trials' random draws
        resumed_seed = int(np.random.SeedSequence([int(seed), len(study.trials)]).generate_state(1)[0])
        study.sampler = make_sampler(sampler, resumed_seed, n_startup_trials)

    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    remaining = int(n_trials) - sum(t.state in finished for t in study.trials)
    out.mkdir(parents=True, exist_ok=True)
    reevaluate = int(reevaluate_top) > 0 and int(reevaluate_seeds) > 0
    scorer = None
    if objective == "track" and (remaining > 0 or reevaluate):
        from prosumer_gym.eval.leaderboard.tuning import TrackObjective

        scorer = TrackObjective(track_of(spec.name), int(n_eval_episodes), cache=out / "tuning_references.json")

    def objective_for_seed(s: int, where: Path):
        return _objective(spec, algo, view, int(n_timesteps), int(s), env_kw, control, base, fixed_kw,
                          int(n_eval_episodes), int(n_evaluations), verbose, scorer, role, where)

    if remaining > 0:
        write = lambda st, _t: _write_outputs(st, out, algo, view, spec, int(n_timesteps), int(n_eval_episodes))
        study.optimize(objective_for_seed(int(seed), out), n_trials=remaining, timeout=timeout,
                       show_progress_bar=progress,
                       callbacks=[optuna.study.MaxTrialsCallback(int(n_trials), states=finished), write])
    if reevaluate and any(t.state == TrialState.COMPLETE for t in study.trials):
        reevaluate_top_trials(study, objective_for_seed, int(reevaluate_top), int(reevaluate_seeds), int(seed), out)
    _write_outputs(study, out, algo, view, spec, int(n_timesteps), int(n_eval_episodes))
    if report:
        print(format_report(study), file=sys.stdout)
    return study
