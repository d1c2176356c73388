"""Train a population of independent reference agents (PQR, ProDQN), one per agent of a
PettingZoo env: the paper's setting for P2PTrading-v0 (every seller learns its own price,
Algs. 5-6, run in tandem with the clearing every trading day).

    trainer = PopulationTrainer(PopulationConfig(env="P2PTrading-v0", algo="pqr", seed=0,
                                                 total_steps=365), out_dir="runs/pqr")
    result = trainer.run()            # or trainer.run(resume=True) after an interruption

Per step (one trading day) every live agent acts on its own observation, the env clears,
and every agent updates from its own transition, then decays its epsilon (Alg. 5/6). The
population algorithms ``"constant"`` and ``"random"`` (baselines/price_policies.py) run
through the same loop, so baselines and learners are logged and compared alike.

Logged to TensorBoard (``<out>/tb``) at step = number of env steps done:
``market/<kpi>`` (every numeric entry of ``info[agent]["market"]``, e.g. buyers' PT value,
sellers' revenue, mean price), ``agents/reward/<agent>``, ``agents/price/<agent>``,
``train/epsilon`` (mean over agents), ``train/loss`` (mean over agents that learned:
ProDQN's PT loss, PQR's ``|v(TD error)|``); at the end of each episode ``episode/reward/<agent>``,
``episode/reward_mean`` and ``episode/<kpi>`` (means over the episode).

Checkpoints (``<out>/checkpoints/ckpt_<step>.pt``, written atomically every
``checkpoint_freq`` steps and at the end; the newest ``keep_checkpoints`` are kept) hold
the agents' full state (Q-tables or networks + optimisers + replay buffers + RNG states),
the logged history, and the current episode's actions. ``run(resume=True)`` loads the
newest checkpoint, replays the episode's actions in a freshly reset env (the env is
deterministic given its seed and the actions; the observation is checked against the
stored one) and reopens the TensorBoard log with ``purge_step`` so that whatever an
interrupted run logged after its checkpoint is dropped: the resumed run's curves, agents
and history equal an uninterrupted run's (tested).

Every episode resets the env with the run's ``seed``: the same community (households, PV
systems, buyers, losses, PT parameters) is replayed year after year while the agents keep
learning, which is what a seller's personal pricing agent would experience.

How the env is built, how agents act and learn, and how a step's actions and observations
are checkpointed and replayed are small methods (``_make_env``, ``_act``, ``_learn``,
``_action_row``, ``_encode_actions``, ``_replay``, ``_encode_obs``, ``_same_obs``, ``_record``);
:class:`prosumer_gym.train.platform.PlatformTrainer` overrides them to run one platform
learner (UPL, BPT-K, CARS, ...) on a Gymnasium view through this same loop.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from prosumer_gym.baselines.price_policies import ConstantPriceSeller, RandomPriceSeller
from prosumer_gym.core.seeding import check_seed, spawn
from prosumer_gym.train.common import (
    atomic_torch_save,
    atomic_write_text,
    csv_text,
    dump_json,
    dump_yaml,
    list_checkpoints,
    make_summary_writer,
    progress_bar,
    resolve_env,
    to_jsonable,
)

__all__ = ["PopulationConfig", "PopulationTrainer", "PopulationResult", "RunInterrupted", "POPULATION_ALGOS",
           "load_checkpoint"]

POPULATION_ALGOS = ("pqr", "prodqn", "constant", "random")
_AGENT_STREAM = 0x5E11E5  # keeps the agents' seed stream apart from the env's (same int seed)
_CKPT_FORMAT = 1


class RunInterrupted(RuntimeError):
    """Raised by ``run(stop_after=...)``: simulates a run killed between checkpoints."""


@dataclass
class PopulationConfig:
    """What a population run is. ``total_steps``: env steps (days) to train, ``None`` =
    one episode; ``learn=False``/``explore=False`` evaluate frozen, greedy agents."""

    algos: ClassVar[tuple[str, ...]] = POPULATION_ALGOS

    env: str = "P2PTrading-v0"
    algo: str = "pqr"
    seed: int = 0
    total_steps: int | None = None
    env_kwargs: dict = field(default_factory=dict)
    agent_kwargs: dict = field(default_factory=dict)
    checkpoint_freq: int = 0
    keep_checkpoints: int = 2
    learn: bool = True
    explore: bool = True
    log_agents: bool = True

    def __post_init__(self) -> None:
        if self.algo not in self.algos:
            raise ValueError(f"algo must be one of {self.algos}, got {self.algo!r}")
        self.seed = check_seed(self.seed)
        if self.seed is None:
            raise ValueError("seed must be a non-negative int (runs are reproducible from it)")
        if self.total_steps is not None and (not isinstance(self.total_steps, (int, np.integer)) or self.total_steps < 1):
            raise ValueError(f"total_steps must be a positive int or None, got {self.total_steps!r}")
        if not isinstance(self.checkpoint_freq, (int, np.integer)) or self.checkpoint_freq < 0:
            raise ValueError(f"checkpoint_freq must be an int >= 0 (0: only at the end), got {self.checkpoint_freq!r}")
        if not isinstance(self.keep_checkpoints, (int, np.integer)) or self.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be an int >= 1, got {self.keep_checkpoints!r}")
        self.env_kwargs = dict(self.env_kwargs or {})
        self.agent_kwargs = dict(self.agent_kwargs or {})

    def identity(self) -> dict[str, Any]:
        """What must not change when a run is resumed."""
        return to_jsonable({k: getattr(self, k) for k in ("env", "algo", "seed", "env_kwargs", "agent_kwargs",
                                                          "learn", "explore")})


@dataclass
class PopulationResult:
    history: list[dict[str, float]]  # one record per env step
    episodes: list[dict[str, float]]  # one record per finished episode
    agents: dict[str, Any]
    out_dir: Path | None
    steps: int


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A population checkpoint, loaded with ``torch.load(..., weights_only=True)``."""
    import torch

    return torch.load(Path(path), weights_only=True, map_location="cpu")


def _to_safe(obj: Any) -> Any:
    """numpy -> torch/python so the checkpoint loads with ``weights_only=True``."""
    import torch

    if isinstance(obj, Mapping):
        return {k: _to_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_safe(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj).copy())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class PopulationTrainer:
    """Runs a :class:`PopulationConfig` (see the module docstring).

    ``out_dir=None``: nothing is written (no TensorBoard, no checkpoints); handy in tests
    and in scripts that only need the returned history. ``agents_state``: agent states to
    start from (``{agent: state_dict}``, e.g. from a trained run's final checkpoint).
    ``tb_dir``: TensorBoard folder (default ``<out_dir>/tb``).
    """

    def __init__(self, config: PopulationConfig, out_dir: str | Path | None = None, tensorboard: bool = True,
                 progress: bool = True, desc: str | None = None,
                 agents_state: Mapping[str, Mapping[str, Any]] | None = None,
                 tb_dir: str | Path | None = None) -> None:
        self.cfg = config
        self._tb_dir = Path(tb_dir) if tb_dir is not None else None
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.tensorboard = bool(tensorboard) and self.out_dir is not None
        self.progress = bool(progress)
        self.desc = desc or f"{config.algo}"
        self.agents_state = agents_state
        self.spec = resolve_env(config.env)
        self.env = None
        self.agents: dict[str, Any] = {}
        self.history: list[dict[str, float]] = []
        self.episodes: list[dict[str, float]] = []
        self.step = 0
        self.episode = 0

    # ------------------------------------------------------------------ folders
    @property
    def ckpt_dir(self) -> Path:
        assert self.out_dir is not None
        return self.out_dir / "checkpoints"

    @property
    def tb_dir(self) -> Path:
        if self._tb_dir is not None:
            return self._tb_dir
        assert self.out_dir is not None
        return self.out_dir / "tb"

    # ------------------------------------------------------------------ agents
    def _build_agents(self, env, infos: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        from prosumer_gym.agents import make_seller_agent

        cfg = self.cfg
        names = list(env.possible_agents)
        rngs = spawn(np.random.default_rng([cfg.seed, _AGENT_STREAM]), len(names))
        agents: dict[str, Any] = {}
        for name, rng in zip(names, rngs):
            a_space, o_space = env.action_space(name), env.observation_space(name)
            if cfg.algo == "constant":
                steps = getattr(env, "price_steps", None)
                if steps is None:
                    raise ValueError(f"'constant' needs an env with price_steps (P2PTrading); {self.spec.name} has none")
                agents[name] = ConstantPriceSeller(list(np.asarray(steps).tolist()))
            elif cfg.algo == "random":
                agents[name] = RandomPriceSeller(int(a_space.n), seed=rng)
            else:
                kw = dict(cfg.agent_kwargs)
                n_prices = kw.pop("n_prices", None)
                if cfg.algo == "pqr" and n_prices is None:
                    grid = getattr(env, "price_grid", None)
                    if grid is None:
                        raise ValueError(f"PQR needs agent_kwargs n_prices for {self.spec.name} (no env.price_grid)")
                    n_prices = len(grid)
                agents[name] = make_seller_agent(cfg.algo, o_space, a_space, infos.get(name), n_prices=n_prices,
                                                 seed=rng, **kw)
        return agents

    # ------------------------------------------------------------------ logging
    def _market(self, infos: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
        for info in infos.values():
            m = info.get("market") if isinstance(info, Mapping) else None
            if isinstance(m, Mapping):
                return {k: float(v) for k, v in m.items()
                        if k not in ("day", "data_day") and isinstance(v, (int, float, np.number))
                        and not isinstance(v, (bool, np.bool_))}
            break
        return {}

    def _record(self, t: int, acts, rewards, infos) -> dict[str, float]:
        rec: dict[str, float] = {"step": self.step, "episode": self.episode, "t": t}
        rec.update(self._market(infos))
        eps = [float(ag.eps) for ag in self.agents.values() if hasattr(ag, "eps")]
        losses = [float(ag.last_loss) for ag in self.agents.values()
                  if self.cfg.learn and getattr(ag, "last_loss", None) is not None]
        rec["epsilon"] = float(np.mean(eps)) if eps else math.nan
        rec["loss"] = float(np.mean(losses)) if losses else math.nan
        for a in self.env.possible_agents:
            if a in rewards:
                rec[f"reward/{a}"] = float(rewards[a])
            info = infos.get(a, {})
            if isinstance(info, Mapping) and isinstance(info.get("price"), (int, float, np.number)):
                rec[f"price/{a}"] = float(info["price"])
            if a in acts:
                rec[f"action/{a}"] = int(acts[a])
        return rec

    def _log_step(self, writer, rec: Mapping[str, float]) -> None:
        if writer is None:
            return
        s = int(rec["step"])
        for k, v in rec.items():
            if k in ("step", "episode", "t") or k.startswith("action/") or (isinstance(v, float) and math.isnan(v)):
                continue
            if k.startswith(("reward/", "price/")):
                if self.cfg.log_agents:
                    writer.add_scalar(f"agents/{k}", v, s)
            elif k in ("epsilon", "loss"):
                writer.add_scalar(f"train/{k}", v, s)
            elif k.startswith("learner/"):  # learner-side curves (platform learners: MAE, regret)
                writer.add_scalar(k, v, s)
            else:
                writer.add_scalar(f"market/{k}", v, s)

    def _episode_summary(self, recs: list[dict[str, float]]) -> dict[str, float]:
        out: dict[str, float] = {"episode": self.episode, "step": self.step, "length": len(recs)}
        keys = [k for k in recs[0] if k not in ("step", "episode", "t") and not k.startswith(("action/", "price/"))]
        for k in keys:
            col = np.array([r.get(k, math.nan) for r in recs], dtype=float)
            if k.startswith("reward/"):
                out[k] = float(np.nansum(col))
            elif k not in ("epsilon", "loss"):
                out[k] = float(np.nanmean(col)) if np.isfinite(col).any() else math.nan
        rewards = [v for k, v in out.items() if k.startswith("reward/")]
        out["reward_mean"] = float(np.mean(rewards)) if rewards else math.nan
        return out

    def _log_episode(self, writer, ep: Mapping[str, float]) -> None:
        if writer is None:
            return
        for k, v in ep.items():
            if k in ("episode", "step", "length") or (isinstance(v, float) and math.isnan(v)):
                continue
            writer.add_scalar(f"episode/{k}", v, int(ep["step"]))

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, writer, obs, episode_actions) -> None:
        if self.out_dir is None:
            return
        if writer is not None:
            writer.flush()  # everything logged up to this step is on disk before the checkpoint
        state = {
            "format": _CKPT_FORMAT,
            "config": self.cfg.identity(),
            "total_steps": int(self._total),
            "step": self.step,
            "episode": self.episode,
            "episode_actions": self._encode_actions(episode_actions),
            "obs": self._encode_obs(obs),
            "agents": {a: _to_safe(ag.state_dict()) for a, ag in self.agents.items() if hasattr(ag, "state_dict")},
            "history": self.history,
            "episodes": self.episodes,
        }
        atomic_torch_save(state, self.ckpt_dir / f"ckpt_{self.step:09d}.pt")
        for _, p in list_checkpoints(self.ckpt_dir)[: -self.cfg.keep_checkpoints]:
            p.unlink(missing_ok=True)
        self._write_tables()

    def _write_tables(self) -> None:
        if self.out_dir is None or not self.history:
            return
        atomic_write_text(self.out_dir / "history.csv", csv_text(self.history))
        if self.episodes:
            atomic_write_text(self.out_dir / "episodes.csv", csv_text(self.episodes))

    def _load_latest(self) -> dict[str, Any] | None:
        for _, path in reversed(list_checkpoints(self.ckpt_dir)):
            try:
                return load_checkpoint(path)
            except Exception as e:  # a damaged file (cannot happen with atomic writes, but be safe)
                import warnings

                warnings.warn(f"skipping unreadable checkpoint {path}: {e}", stacklevel=2)
        return None

    # ------------------------------------------------------------------ env and agent hooks
    # (:class:`prosumer_gym.train.platform.PlatformTrainer` overrides these for one platform learner)
    def _make_env(self):
        """The PettingZoo parallel env of the run."""
        return self.spec.pettingzoo().parallel_env(**self.cfg.env_kwargs)

    def _act(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Every live agent's action (an action index)."""
        return {a: int(self.agents[a].act(obs[a], explore=self.cfg.explore)) for a in self.env.agents}

    def _learn(self, obs, acts, rewards, nobs, terms, infos) -> None:
        """Each agent updates from its own transition (Alg. 5/6), then decays its epsilon."""
        for a, act in acts.items():
            ag = self.agents[a]
            if hasattr(ag, "update"):
                ag.update(obs[a], act, rewards[a], nobs[a], bool(terms.get(a, False)))
            if hasattr(ag, "end_day"):
                ag.end_day()

    def _action_row(self, acts: Mapping[str, Any]) -> Any:
        """What the checkpoint keeps of one step's actions to replay it (absent agents: 0)."""
        return [acts.get(a, 0) for a in self.env.possible_agents]

    def _encode_actions(self, episode_actions: list) -> Any:
        import torch

        return torch.tensor(np.asarray(episode_actions, dtype=np.int64).reshape(-1, len(self.env.possible_agents)))

    def _replay(self, env, encoded, obs, infos) -> tuple[Any, Any, list]:
        """Step a freshly reset env through the checkpoint's actions of the current episode."""
        names, rows = env.possible_agents, []
        for row in encoded.tolist():
            obs, _, _, _, infos = env.step({a: int(x) for a, x in zip(names, row) if a in env.agents})
            rows.append(row)
        return obs, infos, rows

    def _encode_obs(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        import torch

        return {a: torch.from_numpy(np.asarray(o, dtype=np.float32).copy()) for a, o in obs.items()}

    def _same_obs(self, obs: Any, stored: Any) -> bool:
        return bool(np.array_equal(np.asarray(obs, dtype=np.float32), stored.numpy()))

    def _agent_file(self, agent: str) -> str:
        return f"{agent}.npz" if self.cfg.algo == "pqr" else f"{agent}.pt"

    #: history columns averaged over the last 365 steps into ``summary.json``
    summary_keys: tuple[str, ...] = ("buyers_pt_value", "sellers_revenue_usd", "mean_price")

    # ------------------------------------------------------------------ main loop
    def _reset(self, env):
        return env.reset(seed=self.cfg.seed)

    def run(self, resume: bool = False, stop_after: int | None = None) -> PopulationResult:
        """Train (or evaluate) for ``total_steps`` env steps; see the module docstring.

        ``resume=True`` continues from the newest checkpoint in ``out_dir`` (a fresh start
        if there is none). Without it, a folder that already holds checkpoints is refused.
        ``stop_after=k`` raises :class:`RunInterrupted` right after step ``k`` without a
        further checkpoint (the TensorBoard events logged since the last checkpoint are
        flushed: the worst case for a resume): a stand-in for a killed process (tests).
        """
        cfg = self.cfg
        env = self._make_env()
        self.env = env
        episode_len = getattr(env, "n_days", None) or getattr(env, "max_cycles", None)
        self._total = int(cfg.total_steps if cfg.total_steps is not None else (episode_len or 1))
        ckpt = None
        if self.out_dir is not None:
            existing = list_checkpoints(self.ckpt_dir)
            if existing and not resume:
                raise FileExistsError(f"{self.out_dir} already holds a run (checkpoints in {self.ckpt_dir}); "
                                      f"resume it or choose another output folder")
            if resume:
                ckpt = self._load_latest()
        obs, infos = self._reset(env)
        self.agents = self._build_agents(env, infos)
        episode_actions: list[list[int]] = []
        if ckpt is not None:
            if ckpt.get("format") != _CKPT_FORMAT:
                raise ValueError(f"checkpoint format {ckpt.get('format')} is not supported (want {_CKPT_FORMAT})")
            if ckpt["config"] != cfg.identity():
                raise ValueError(f"cannot resume: the checkpoint's run differs from this one\n  checkpoint: "
                                 f"{ckpt['config']}\n  now:        {cfg.identity()}")
            for a, st in ckpt["agents"].items():
                self.agents[a].load_state_dict(st)
            self.step, self.episode = int(ckpt["step"]), int(ckpt["episode"])
            self.history, self.episodes = list(ckpt["history"]), list(ckpt["episodes"])
            obs, infos, episode_actions = self._replay(env, ckpt["episode_actions"], obs, infos)
            for a, o in ckpt["obs"].items():
                if not self._same_obs(obs[a], o):
                    raise RuntimeError(f"replaying the episode did not reproduce {a}'s observation: the env is not "
                                       f"deterministic given its seed and actions; cannot resume exactly")
        elif self.agents_state is not None:
            for a, st in self.agents_state.items():
                self.agents[a].load_state_dict(st)

        writer = None
        if self.tensorboard:
            fresh = ckpt is None
            if fresh and self.tb_dir.exists():
                shutil.rmtree(self.tb_dir)  # a run that died before its first checkpoint: start clean
            writer = make_summary_writer(self.tb_dir, purge_step=None if fresh else self.step + 1)
            if fresh:
                writer.add_text("config", "```\n" + dump_yaml({**cfg.identity(), "total_steps": self._total}) + "```", 0)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out_dir / "config.yml", dump_yaml({**asdict(cfg), "total_steps": self._total,
                                                                      "pettingzoo_module": self.spec.pettingzoo_module}))

        ep_recs = [r for r in self.history if r["episode"] == self.episode]
        bar = progress_bar(self._total, initial=min(self.step, self._total), desc=self.desc, unit="step",
                           enabled=self.progress)
        try:
            while self.step < self._total:
                t = len(episode_actions)
                acts = self._act(obs)
                nobs, rewards, terms, truncs, infos = env.step(acts)
                episode_actions.append(self._action_row(acts))
                if cfg.learn:
                    self._learn(obs, acts, rewards, nobs, terms, infos)
                self.step += 1
                rec = self._record(t, acts, rewards, infos)
                self.history.append(rec)
                ep_recs.append(rec)
                self._log_step(writer, rec)
                obs = nobs
                if not env.agents:  # episode over
                    ep = self._episode_summary(ep_recs)
                    self.episodes.append(ep)
                    self._log_episode(writer, ep)
                    self.episode += 1
                    ep_recs, episode_actions = [], []
                    obs, infos = self._reset(env)
                bar.update(1)
                if cfg.checkpoint_freq and self.step % cfg.checkpoint_freq == 0 and self.step < self._total:
                    self._checkpoint(writer, obs, episode_actions)
                if stop_after is not None and self.step >= stop_after:
                    if writer is not None:  # worst case: what was logged after the checkpoint is on disk
                        writer.flush()
                    raise RunInterrupted(f"stopped after step {self.step} (simulated interruption)")
        except RunInterrupted:
            bar.close()
            raise
        bar.close()
        self._checkpoint(writer, obs, episode_actions)
        if writer is not None:
            writer.close()
        if self.out_dir is not None:
            self._save_final()
        return PopulationResult(self.history, self.episodes, self.agents, self.out_dir, self.step)

    def _save_final(self) -> None:
        assert self.out_dir is not None
        folder = self.out_dir / "agents"
        folder.mkdir(parents=True, exist_ok=True)
        for a, ag in self.agents.items():
            if hasattr(ag, "save"):
                ag.save(folder / self._agent_file(a))
        summary = {"env": self.spec.name, "algo": self.cfg.algo, "seed": self.cfg.seed, "steps": self.step,
                   "episodes": self.episodes}
        if self.history:
            last = self.history[-min(len(self.history), 365):]
            keys = [k for k in last[0] if k.startswith(("reward/",)) or k in self.summary_keys]
            summary["last_365_steps_mean"] = {k: float(np.nanmean([r.get(k, math.nan) for r in last])) for k in keys}
        atomic_write_text(self.out_dir / "summary.json", dump_json(summary))
