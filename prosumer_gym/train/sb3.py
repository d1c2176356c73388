"""Stable-Baselines3 training (PPO, A2C, DQN, SAC, TD3) on any prosumer_gym env, two views:

* ``view="gym"``: the single-agent Gymnasium view, ``gym.make(<id>, **env_kwargs)``
  (P2PTrading-v0: the ego seller against PQR sellers), ``n_envs`` copies in a
  ``DummyVecEnv`` with ``Monitor``.
* ``view="pettingzoo"``: the PettingZoo env with **parameter sharing** -- one policy acts
  for every agent -- by the PettingZoo -> SuperSuit -> SB3 recipe:
  ``ss.pettingzoo_env_to_vec_env_v1(env)`` then
  ``ss.concat_vec_envs_v1(..., n_envs, num_cpus=0, base_class="stable_baselines3")``, then
  ``VecMonitor``. SuperSuit's SB3 wrapper has no ``seed()`` (SB3 calls it when the model is
  built), so :class:`PettingZooSB3VecEnv` adds one that seeds the next reset. Agents with
  different observation/action spaces are padded (``ss.pad_observations_v0``,
  ``ss.pad_action_space_v0``; padded observations are recorded as ``obs_pad`` in the
  exported card, whose predictor pads the same way); ``black_death: true`` in the hyperparameters adds
  ``ss.black_death_v3`` for envs whose agents leave before the episode ends.
* ``discrete_actions: true`` (either view) trains on each agent's ``MultiBinary(n)`` action
  enumerated as ``Discrete(2**n)`` (bit k of the index is action bit k,
  :func:`prosumer_gym.core.spaces.index_to_bits`), so DQN can learn it; the exported policy
  decodes its index back into the env's bits (heads ``argmax_bits``, ``epsilon_bits``,
  ``categorical_bits``) and its card keeps the env's ``MultiBinary(n)`` action space.

Logging: SB3's own scalars (``rollout/ep_rew_mean``, ``train/loss``,
``rollout/exploration_rate`` = DQN's epsilon, ...) plus :class:`MarketMetricsCallback`:
``episode/reward/<agent>`` (episode reward per agent; in the PettingZoo view vec-env ``i``
is agent ``i mod n_agents``), ``market/<kpi>`` (means of ``info["market"]`` since the last
dump: buyers' PT value, sellers' revenue, mean price, ...; on a Gymnasium view whose info is
the market's KPIs themselves, that info) and ``episode/<kpi>``, all into
``<out>/tb``. A tqdm bar (:class:`TqdmCallback`) shows progress.

Normalisation: ``normalize: true`` in the hyperparameters wraps the vec env in SB3's
``VecNormalize`` (running mean/variance of observations, and of returns for the reward
scale; ``normalize_kwargs`` passes its keywords, e.g. ``{norm_reward: false}``); its
statistics are saved beside every checkpoint (``vecnormalize_<steps>_steps.pkl``) and as
``<out>/vecnormalize.pkl``, and the exported policy (:mod:`prosumer_gym.train.export`,
``<out>/policy.pt`` + ``policy.json``, always written) carries the observation
normaliser, so it acts on raw observations.

Checkpoints: :class:`AtomicCheckpointCallback` (SB3's ``CheckpointCallback`` writing
through a temporary file + ``os.replace``, replay buffer first for DQN, flushing
TensorBoard before each checkpoint) into ``<out>/checkpoints/model_<steps>_steps.zip``.
``resume=True`` loads the newest one (and its replay buffer), reopens the TensorBoard log
with ``purge_step = num_timesteps + 1`` (what the killed run logged after its checkpoint is
dropped) and calls ``learn(total - num_timesteps, reset_num_timesteps=False)``. The env
itself restarts with a fresh episode (SB3 does not checkpoint env state); for exact
resumption use the reference-agent trainer.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.train.common import (
    EnvSpec,
    atomic_write_text,
    dump_json,
    make_summary_writer,
    progress_bar,
    to_jsonable,
)

__all__ = ["SB3_ALGOS", "VIEWS", "make_gym_vec_env", "make_pettingzoo_vec_env", "train_sb3", "export_trained",
           "latest_sb3_checkpoint",
           "PettingZooSB3VecEnv", "MarketMetricsCallback", "TqdmCallback", "AtomicCheckpointCallback"]

SB3_ALGOS = ("ppo", "a2c", "dqn", "sac", "td3")
VIEWS = ("gym", "pettingzoo")
CONTROL_KEYS = ("policy", "n_envs", "total_steps", "checkpoint_freq", "keep_checkpoints", "env_kwargs", "pettingzoo",
                "gym", "black_death", "normalize", "normalize_kwargs", "stochastic_export", "flatten_obs", "discrete_actions")


def sb3_class(algo: str):
    import stable_baselines3 as sb3

    try:
        return {"ppo": sb3.PPO, "a2c": sb3.A2C, "dqn": sb3.DQN, "sac": sb3.SAC, "td3": sb3.TD3}[algo]
    except KeyError:
        raise ValueError(f"SB3 algo must be one of {SB3_ALGOS}, got {algo!r}") from None


# --------------------------------------------------------------------------- vec envs
def _sb3_wrapper_base():
    from supersuit.vector.sb3_vector_wrapper import SB3VecEnvWrapper

    return SB3VecEnvWrapper


@functools.lru_cache(maxsize=None)
def _make_seeded_wrapper_class():
    from gymnasium import spaces

    base = _sb3_wrapper_base()

    class PettingZooSB3VecEnv(base):  # type: ignore[misc, valid-type]
        """SuperSuit's SB3 vec-env wrapper plus ``seed()`` (the seed is used by the next
        ``reset()``; ConcatVecEnv offsets it per copy), actions cast to the action space's
        dtype (SB3 emits floats for ``MultiBinary``), and ``get_attr("render_mode")``."""

        def __init__(self, venv) -> None:
            super().__init__(venv)
            self._next_seed: int | None = None

        def seed(self, seed: int | None = None):  # noqa: D401 - SB3 API
            self._next_seed = seed
            return [None if seed is None else seed + i for i in range(self.num_envs)]

        def reset(self, seed: int | None = None, options: dict | None = None):
            seed = self._next_seed if seed is None else seed
            self._next_seed = None
            observations, self.reset_infos = self.venv.reset(seed=seed, options=options)
            return observations

        def step_async(self, actions) -> None:
            # SB3 emits float actions for MultiBinary; SuperSuit concatenates into the space's dtype
            space = self.action_space
            if isinstance(space, (spaces.MultiBinary, spaces.MultiDiscrete, spaces.Discrete)):
                actions = np.asarray(actions).astype(space.dtype, copy=False)
            self.venv.step_async(actions)

        def get_attr(self, attr_name: str, indices=None):
            if attr_name == "render_mode":  # ConcatVecEnv has no get_attr for it
                return [self.render_mode for _ in range(self.num_envs)]
            return super().get_attr(attr_name, indices)

    return PettingZooSB3VecEnv


def __getattr__(name: str):  # PettingZooSB3VecEnv is built lazily (SuperSuit imports SB3)
    if name == "PettingZooSB3VecEnv":
        return _make_seeded_wrapper_class()
    raise AttributeError(name)


@functools.lru_cache(maxsize=None)
def _bits_wrapper_classes():
    import gymnasium as gym
    from gymnasium import spaces
    from pettingzoo.utils.wrappers import BaseParallelWrapper

    from prosumer_gym.core.spaces import index_to_bits, n_bit_actions

    class DiscreteBitsParallelEnv(BaseParallelWrapper):
        """Every agent's ``MultiBinary(n)`` action as ``Discrete(2**n)``: the index is decoded
        into the bits (bit k = ``(index >> k) & 1``) before the env steps."""

        def __init__(self, env) -> None:
            super().__init__(env)
            self._bits = {a: n_bit_actions(env.action_space(a), f"action space of {a}") for a in env.possible_agents}
            self._spaces = {a: spaces.Discrete(1 << n) for a, n in self._bits.items()}

        def action_space(self, agent):
            return self._spaces[agent]

        def step(self, actions):
            return self.env.step({a: index_to_bits(v, self._bits[a], f"action of {a}") for a, v in actions.items()})

    class DiscreteBitsEnv(gym.ActionWrapper):
        """The Gymnasium view's ``MultiBinary(n)`` action as ``Discrete(2**n)`` (same encoding)."""

        def __init__(self, env) -> None:
            super().__init__(env)
            self._n = n_bit_actions(env.action_space)
            self.action_space = spaces.Discrete(1 << self._n)

        def action(self, action):
            return index_to_bits(action, self._n)

    return DiscreteBitsParallelEnv, DiscreteBitsEnv


def _homogenise(penv, black_death: bool = False):
    import supersuit as ss
    from gymnasium import spaces

    agents = list(penv.possible_agents)
    obs_spaces = [penv.observation_space(a) for a in agents]
    act_spaces = [penv.action_space(a) for a in agents]
    if any(s != obs_spaces[0] for s in obs_spaces[1:]):
        kinds = {type(s).__name__ for s in obs_spaces}
        if not all(isinstance(s, spaces.Box) and len(s.shape) == len(obs_spaces[0].shape) for s in obs_spaces):
            raise ValueError(f"parameter sharing needs observation spaces that can be padded to one Box; this env's "
                             f"agents have {sorted(kinds)} of different shapes: train its agent types separately or "
                             f"use the Gymnasium view")
        penv = ss.pad_observations_v0(penv)
    if any(s != act_spaces[0] for s in act_spaces[1:]):
        kinds = {type(s) for s in act_spaces}
        if not (kinds <= {spaces.Discrete} or (kinds <= {spaces.Box} and len({s.shape[1:] for s in act_spaces}) == 1)):
            raise ValueError(f"parameter sharing needs one kind of action space across agents (all Discrete or all "
                             f"1-D Box), got {sorted(str(s) for s in set(map(str, act_spaces)))[:3]}")
        penv = ss.pad_action_space_v0(penv)
    if black_death:
        penv = ss.black_death_v3(penv)
    return penv


def make_pettingzoo_vec_env(spec: EnvSpec, env_kwargs: Mapping[str, Any] | None = None, n_envs: int = 1,
                            black_death: bool = False, discrete_actions: bool = False):
    """PettingZoo -> SuperSuit -> SB3 vec env with parameter sharing; returns ``(venv, agents)``
    (``discrete_actions``: ``MultiBinary(n)`` actions enumerated as ``Discrete(2**n)``)."""
    import supersuit as ss
    from stable_baselines3.common.vec_env import VecMonitor

    penv = spec.pettingzoo().parallel_env(**dict(env_kwargs or {}))
    agents = list(penv.possible_agents)
    obs_spaces = [penv.observation_space(a) for a in agents]
    if discrete_actions:
        penv = _bits_wrapper_classes()[0](penv)
    penv = _homogenise(penv, black_death)
    venv = ss.pettingzoo_env_to_vec_env_v1(penv)
    base = ss.concat_vec_envs_v1(venv, int(n_envs), num_cpus=0, base_class="stable_baselines3")
    cls = _make_seeded_wrapper_class()
    venv = VecMonitor(cls(base.venv))
    # whether _homogenise zero-padded the observations (agents with Box observations of different sizes)
    venv.padded_observations = any(s != obs_spaces[0] for s in obs_spaces[1:])
    return venv, agents


def make_gym_vec_env(spec: EnvSpec, env_kwargs: Mapping[str, Any] | None = None, n_envs: int = 1,
                     seed: int | None = None, flatten_obs: bool = False, discrete_actions: bool = False):
    """``n_envs`` copies of ``gym.make(spec.gym_id, **env_kwargs)`` with ``Monitor`` (and
    Gymnasium's ``FlattenObservation`` for ``flatten_obs``: a ``Dict`` observation as one
    ``Box``, keys in the space's order; ``discrete_actions``: a ``MultiBinary(n)`` action as
    ``Discrete(2**n)``); returns ``(venv, [name])``."""
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env

    if spec.gym_id is None:
        raise ValueError(f"{spec.name} has no Gymnasium view; use --view pettingzoo")
    kw = dict(env_kwargs or {})
    wrappers = []
    if flatten_obs:
        from gymnasium.wrappers import FlattenObservation

        wrappers.append(FlattenObservation)
    if discrete_actions:
        wrappers.append(_bits_wrapper_classes()[1])

    def wrapper(env):
        for w in wrappers:
            env = w(env)
        return env
    venv = make_vec_env(lambda **k: gym.make(spec.gym_id, **k), n_envs=int(n_envs), seed=seed, env_kwargs=kw,
                        wrapper_class=wrapper if wrappers else None)
    try:
        name = str(venv.get_attr("ego_agent")[0])
    except AttributeError:
        name = "agent"
    return venv, [name]


# --------------------------------------------------------------------------- callbacks
def _callbacks():
    from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
    from stable_baselines3.common.logger import TensorBoardOutputFormat

    class TqdmCallback(BaseCallback):
        """A tqdm bar over SB3 timesteps (SB3's own ``progress_bar`` needs ``rich``)."""

        def __init__(self, total: int, enabled: bool = True, desc: str = "") -> None:
            super().__init__()
            self.total, self.enabled, self.desc = int(total), bool(enabled), desc
            self.bar = None

        def _on_training_start(self) -> None:
            self.bar = progress_bar(self.total, initial=min(self.model.num_timesteps, self.total), desc=self.desc,
                                    enabled=self.enabled)
            self._last = self.model.num_timesteps

        def _on_step(self) -> bool:
            n = self.model.num_timesteps
            self.bar.update(max(0, min(n, self.total) - min(self._last, self.total)))
            self._last = n
            return True

        def _on_training_end(self) -> None:
            if self.bar is not None:
                self.bar.close()

    class MarketMetricsCallback(BaseCallback):
        """Per-agent episode rewards and the market KPIs of ``info["market"]`` (module docstring).

        ``flat_market=True`` (Gymnasium views): an info without ``"market"`` is the market's
        KPIs itself (P2PRecommendation-v0, EUber-v0: the platform's info)."""

        def __init__(self, agents: list[str], flat_market: bool = False) -> None:
            super().__init__()
            self.agents = list(agents)
            self.flat_market = bool(flat_market)
            self._acc: dict[int, dict[str, list[float]]] = {}
            self.episodes: list[tuple[int, int, float]] = []  # (SB3 timesteps, agent index, return)

        def _on_step(self) -> bool:
            infos = self.locals.get("infos") or []
            dones = self.locals.get("dones")
            n = max(len(self.agents), 1)
            for i, info in enumerate(infos):
                market = info.get("market") if isinstance(info, Mapping) else None
                if market is None and self.flat_market and isinstance(info, Mapping):
                    market = info
                first = i % n == 0  # one vec-env index per market copy
                if first and isinstance(market, Mapping):
                    acc = self._acc.setdefault(i, {})
                    for k, v in market.items():
                        if k in ("day", "data_day", "slot", "slot_of_day") or isinstance(v, (bool, np.bool_)) or \
                                not isinstance(v, (int, float, np.number)) or not np.isfinite(v):
                            continue
                        self.logger.record_mean(f"market/{k}", float(v))
                        acc.setdefault(k, []).append(float(v))
                if dones is not None and bool(dones[i]):
                    ep = info.get("episode") if isinstance(info, Mapping) else None
                    if ep is not None:
                        self.logger.record_mean(f"episode/reward/{self.agents[i % n]}", float(ep["r"]))
                        self.episodes.append((int(self.num_timesteps), i % n, float(ep["r"])))
                    if first and i in self._acc:
                        for k, vals in self._acc.pop(i).items():
                            self.logger.record_mean(f"episode/{k}", float(np.mean(vals)))
            return True

        def _on_training_end(self) -> None:
            # Flush what was recorded from env steps since SB3's last dump. If only train/*
            # is pending, SB3 has just dumped at this very step (on-policy algorithms): a second
            # dump would log those tags twice at one step, so they are dropped instead.
            pending = getattr(self.logger, "name_to_value", {})
            if any(not k.startswith("train/") for k in pending):
                self.logger.dump(self.num_timesteps)

    class AtomicCheckpointCallback(CheckpointCallback):
        """SB3's ``CheckpointCallback``, but every file is written through a temporary file and
        ``os.replace`` (a kill mid-save cannot leave a half-written checkpoint), the replay
        buffer is written before the model (the model file marks a complete checkpoint),
        TensorBoard is flushed first, and only the newest ``keep`` checkpoints are kept."""

        def __init__(self, save_freq: int, save_path: str, keep: int = 2, **kw: Any) -> None:
            super().__init__(save_freq, save_path, name_prefix="model", **kw)
            self.keep = int(keep)

        def _on_step(self) -> bool:
            if self.n_calls % self.save_freq != 0:
                return True
            for fmt in self.model.logger.output_formats:
                if isinstance(fmt, TensorBoardOutputFormat):
                    fmt.writer.flush()
            if self.save_replay_buffer and getattr(self.model, "replay_buffer", None) is not None:
                _save_atomically(Path(self._checkpoint_path("replay_buffer_", extension="pkl")),
                                 self.model.save_replay_buffer)
            vn = self.model.get_vec_normalize_env()
            if vn is not None:
                _save_atomically(Path(self._checkpoint_path("vecnormalize_", extension="pkl")), vn.save)
            _save_atomically(Path(self._checkpoint_path(extension="zip")), self.model.save)
            for steps, old in _list_sb3_checkpoints(Path(self.save_path))[: -self.keep]:
                old.unlink(missing_ok=True)
                Path(self.save_path, f"model_replay_buffer_{steps}_steps.pkl").unlink(missing_ok=True)
                Path(self.save_path, f"model_vecnormalize_{steps}_steps.pkl").unlink(missing_ok=True)
            return True

    class PurgingTensorBoardOutputFormat(TensorBoardOutputFormat):
        """SB3's TensorBoard output on our writer (``purge_step`` on resume)."""

        def __init__(self, folder: str, purge_step: int | None = None) -> None:  # noqa: D107
            self.writer = make_summary_writer(Path(folder), purge_step)
            self._is_closed = False

    return TqdmCallback, MarketMetricsCallback, AtomicCheckpointCallback, PurgingTensorBoardOutputFormat


def _save_atomically(path: Path, save: Any) -> None:
    """``save(tmp)`` (an SB3 ``save``-style writer) into a temporary file beside ``path``, then
    ``os.replace``: a kill mid-save never leaves a half-written file under ``path``."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    save(str(tmp))
    os.replace(tmp, path)


_SB3_CKPT = re.compile(r"^model_(\d+)_steps\.zip$")


def _list_sb3_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    out = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _SB3_CKPT.match(p.name))]
    return sorted(out)


def latest_sb3_checkpoint(folder: str | Path) -> tuple[int, Path] | None:
    """``(num_timesteps, path)`` of the newest ``model_<n>_steps.zip`` in ``folder``."""
    found = _list_sb3_checkpoints(Path(folder))
    return found[-1] if found else None


# --------------------------------------------------------------------------- training
def learning_curve(episodes: list[tuple[int, int, float]], agents_per_step: int = 1,
                   points: int = 50) -> dict[str, list[float]]:
    """Episode return against environment steps, in at most ``points`` bins (bin means).

    ``episodes`` are ``(SB3 timesteps, agent, return)``; in the parameter-sharing view one
    env step is ``agents_per_step`` SB3 timesteps and the return is the mean over agents."""
    if not episodes:
        return {"env_steps": [], "return": []}
    t = np.asarray([e[0] for e in episodes], dtype=np.float64) / max(int(agents_per_step), 1)
    r = np.asarray([e[2] for e in episodes], dtype=np.float64)
    edges = np.linspace(0.0, t.max() + 1e-9, min(points, len(t)) + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)
    keep = [b for b in range(len(edges) - 1) if np.any(idx == b)]
    return {"env_steps": [float(t[idx == b].max()) for b in keep], "return": [float(r[idx == b].mean()) for b in keep]}


def split_hyperparams(section: Mapping[str, Any], view: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(control, algo_kwargs)`` from a YAML section, the view's overrides applied."""
    sec = dict(section)
    for v in VIEWS:
        over = sec.pop(v, None)
        if v == view and over:
            if not isinstance(over, Mapping):
                raise ValueError(f"the {v!r} override of a hyperparameter section must be a mapping")
            sec.update(over)
    control = {k: sec.pop(k) for k in list(sec) if k in CONTROL_KEYS}
    return control, sec


def control_kwargs(control: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`train_sb3` keywords a YAML section's control keys set (``policy``,
    ``n_envs``, ``checkpoint_freq``, ``keep_checkpoints``, ``black_death``, ``normalize``,
    ``normalize_kwargs``, ``stochastic_export``, ``flatten_obs``, ``discrete_actions``), with their defaults."""
    return {
        "policy": str(control.get("policy", "MlpPolicy")),
        "n_envs": int(control.get("n_envs", 1)),
        "checkpoint_freq": int(control.get("checkpoint_freq", 0)),
        "keep_checkpoints": int(control.get("keep_checkpoints", 2)),
        "black_death": bool(control.get("black_death", False)),
        "normalize": bool(control.get("normalize", False)),
        "normalize_kwargs": dict(control.get("normalize_kwargs") or {}),
        "stochastic_export": bool(control.get("stochastic_export", False)),
        "flatten_obs": bool(control.get("flatten_obs", False)),
        "discrete_actions": bool(control.get("discrete_actions", False)),
    }


def export_trained(model, venv, view: str, flatten_obs: bool = False, discrete_actions: bool = False,
                   stochastic: bool = False, obs_pad: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, card)``: the safe export (:func:`prosumer_gym.train.export.export_sb3`) of a
    model trained on ``venv`` as :func:`train_sb3` builds it: the observation normaliser, the
    view's ``Dict`` keys under ``flatten_obs``, the env's ``MultiBinary(n)`` under
    ``discrete_actions``, ``obs_pad`` when SuperSuit padded the observations. Used by the
    training runs and by the search's ``--objective track`` alike."""
    from gymnasium import spaces

    from prosumer_gym.train.export import export_sb3

    # the view's own Dict space, under FlattenObservation (no extra env is built)
    dict_space = venv.unwrapped.envs[0].unwrapped.observation_space if flatten_obs and view == "gym" else None
    # the env's own MultiBinary(n): the export decodes the index into it
    bits = spaces.MultiBinary(int(venv.action_space.n).bit_length() - 1) if discrete_actions else None
    state, card = export_sb3(model, model.get_vec_normalize_env(), stochastic=stochastic, dict_space=dict_space,
                             bits_space=bits)
    if obs_pad:
        card["obs_pad"] = True
    return state, card


def train_sb3(spec: EnvSpec, algo: str, view: str, out_dir: str | Path, seed: int = 0,
              total_steps: int = 10_000, env_kwargs: Mapping[str, Any] | None = None,
              algo_kwargs: Mapping[str, Any] | None = None, policy: str = "MlpPolicy", n_envs: int = 1,
              checkpoint_freq: int = 0, keep_checkpoints: int = 2, black_death: bool = False, resume: bool = False,
              progress: bool = True, verbose: int = 0, normalize: bool = False,
              normalize_kwargs: Mapping[str, Any] | None = None, stochastic_export: bool = False,
              flatten_obs: bool = False, discrete_actions: bool = False):
    """Train (or resume) an SB3 model; see the module docstring. Returns the model."""
    from stable_baselines3.common.logger import Logger

    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    cls = sb3_class(algo)
    out = Path(out_dir)
    ckpt_dir, tb_dir = out / "checkpoints", out / "tb"
    identity = to_jsonable({"env": spec.name, "algo": algo, "view": view, "seed": seed, "env_kwargs": dict(env_kwargs or {}),
                            "algo_kwargs": dict(algo_kwargs or {}), "policy": policy, "n_envs": n_envs,
                            "black_death": black_death, "normalize": bool(normalize), "flatten_obs": bool(flatten_obs),
                            **({"discrete_actions": True} if discrete_actions else {}),
                            "normalize_kwargs": dict(normalize_kwargs or {})})
    latest = latest_sb3_checkpoint(ckpt_dir)
    if latest is not None and not resume:
        raise FileExistsError(f"{out} already holds a run (checkpoints in {ckpt_dir}); resume it or choose another "
                              f"output folder")
    run_file = out / "run.json"
    if latest is not None:
        import json

        saved = json.loads(run_file.read_text()).get("identity") if run_file.exists() else None
        if saved is not None and saved != identity:
            raise ValueError(f"cannot resume: the saved run differs from this one\n  saved: {saved}\n  now:   {identity}")

    if view == "gym":
        venv, agents = make_gym_vec_env(spec, env_kwargs, n_envs, seed, flatten_obs, discrete_actions)
    else:
        venv, agents = make_pettingzoo_vec_env(spec, env_kwargs, n_envs, black_death, discrete_actions)
    obs_pad = bool(getattr(venv, "padded_observations", False))
    from gymnasium import spaces

    if normalize:
        from stable_baselines3.common.vec_env import VecNormalize

        stats = None if latest is None else ckpt_dir / f"model_vecnormalize_{latest[0]}_steps.pkl"
        if stats is not None and stats.exists():
            venv = VecNormalize.load(str(stats), venv)
        else:
            venv = VecNormalize(venv, **{"gamma": float((algo_kwargs or {}).get("gamma", 0.99)),
                                         **dict(normalize_kwargs or {})})
    if isinstance(venv.observation_space, spaces.Dict) and policy == "MlpPolicy":
        policy = "MultiInputPolicy"  # SB3's policy for Dict observations
    from prosumer_gym.train.pair_policy import POLICIES  # our policy classes, by the name a YAML gives

    policy = POLICIES.get(policy, policy)
    tqdm_cb, metrics_cb, ckpt_cb, tb_fmt = _callbacks()

    if latest is not None:
        steps, path = latest
        model = cls.load(path, env=venv, device="cpu")
        rb = ckpt_dir / f"model_replay_buffer_{steps}_steps.pkl"
        if algo == "dqn" and rb.exists():
            model.load_replay_buffer(rb)
        purge = model.num_timesteps + 1
    else:
        if tb_dir.exists():
            import shutil

            shutil.rmtree(tb_dir)
        model = cls(policy, venv, seed=seed, device="cpu", verbose=verbose, **dict(algo_kwargs or {}))
        purge = None
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_file, dump_json({"identity": identity, "total_steps": total_steps, "agents": agents,
                                           "pettingzoo_module": spec.pettingzoo_module}))
    fmts = [tb_fmt(str(tb_dir), purge)]
    if verbose:
        import sys

        from stable_baselines3.common.logger import HumanOutputFormat

        fmts.append(HumanOutputFormat(sys.stdout))
    model.set_logger(Logger(str(tb_dir), fmts))
    callbacks = [metrics_cb(agents, flat_market=view == "gym"), tqdm_cb(total_steps, progress, f"{algo}/{view}")]
    if checkpoint_freq:
        n_total = int(venv.num_envs)
        callbacks.append(ckpt_cb(max(int(checkpoint_freq) // n_total, 1), str(ckpt_dir), keep=keep_checkpoints,
                                 save_replay_buffer=(algo == "dqn")))
    remaining = int(total_steps) - int(model.num_timesteps)
    if remaining > 0:
        try:
            model.learn(remaining, callback=callbacks, reset_num_timesteps=latest is None, progress_bar=False)
        except AssertionError as e:  # SuperSuit reports agents leaving mid-episode this way
            if "black_death" in str(e):
                raise ValueError(f"{spec.name}: agents leave during an episode; parameter sharing needs "
                                 f"--hyperparams black_death=true") from e
            raise
    _save_atomically(out / "model.zip", model.save)
    vn = model.get_vec_normalize_env()
    if vn is not None:
        _save_atomically(out / "vecnormalize.pkl", vn.save)
    if isinstance(venv.observation_space, spaces.Box) or isinstance(model.policy, tuple(POLICIES.values())):
        from prosumer_gym.train.export import save_exported

        state, card = export_trained(model, venv, view, flatten_obs, discrete_actions, stochastic_export, obs_pad)
        card.update({"env": spec.name, "view": view, "seed": int(seed), "total_steps": int(model.num_timesteps),
                     "n_agents": len(agents), "identity": identity,
                     "curve": learning_curve(callbacks[0].episodes, len(agents) if view == "pettingzoo" else 1)})
        save_exported(out / "policy", state, card)
    model.logger.close()
    venv.close()
    return model
