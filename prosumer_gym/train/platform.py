"""Train a *platform learner*: one online agent acting for the env's platform (its
recommender), on the env's Gymnasium view, with the population trainer's machinery.

    trainer = PlatformTrainer(PlatformConfig(algo="fia", seed=0, total_steps=365,
                                             env_kwargs={"oracle": True}), out_dir="runs/fia")
    result = trainer.run()            # or trainer.run(resume=True) after an interruption

Algorithms (``PLATFORM_ALGOS``) and their envs:

=========  ======================  =====================================================
``upl``    P2PRecommendation-v0    UPL, Alg. 1 with its own initialisation (lines 1-4: one
                                   targeted pair per day for ``|P||C|`` days);
                                   ``make_agent("upl-orig")``
``fia``    P2PRecommendation-v0    UPL with the FIA initialisation (Alg. 2): the chapter's
                                   "UPL" curves; ``make_agent("upl")``
``m-upl``  P2PRecommendation-v0    M-UPL (Section 4.5.3): UPL whose initialisation stops
                                   once every allowed pair was observed
``bpt-k``  P2PRecommendation-v0    BPT-K (Alg. 3), FIA initialisation unless
                                   ``agent_kwargs.init`` says otherwise
``cars``   EUber-v0                CARS (Alg. 7): CMAB-UCB of the workers' bid
                                   probabilities per task type (Eqs. 6.6-6.8)
``pk``     EUber-v0                perfect knowledge (the true ``alpha``): the reference
                                   CARS is measured against; learns nothing
=========  ======================  =====================================================

Both envs' Gymnasium views make the platform the learner (P2PRecommendation-v0: consumers
follow their Bernoulli preferences; EUber-v0: the recommender scores (worker, task) pairs
and workers bid by the behavioural model). That view is wrapped as a parallel env with the
one agent ``"platform"``, so :class:`~prosumer_gym.train.population.PopulationTrainer`'s
loop, checkpoints (atomic, the current episode's actions replayed on resume, the
observation checked), TensorBoard reopening with ``purge_step``, ``history.csv`` /
``episodes.csv`` and progress bar are reused unchanged; this module only says how the
platform acts, learns, is checkpointed and what is logged. (In EUber-v0's PettingZoo env the
recommender is a component, ``recommender="cars"``, and the workers are the agents; a
trained CARS can be placed there with ``recommender=lambda env, rng: agent``.)

Per step (a day / a 15-min slot) the learner recommends from what it knows
(``recommend``/``act``), the env plays the day, and the learner updates from the new
feedback (chapter 4: Eqs. 4.5-4.6 from the next observation's accept/reject feedback;
chapter 6: Eqs. 6.7-6.8 from the step's ``info``: bids on recommended pairs). Every episode
resets the env with the run's seed: the same market (preferences, losses, workers) is
replayed while the learner keeps its estimates, so the learning curves continue across
episodes. ``explore=False`` evaluates greedily (no UCB bonus, no initialisation phase),
``learn=False`` freezes the estimates.

Logged (besides every numeric entry of the env's ``info`` as ``market/<kpi>`` and the
reward as ``agents/reward/platform``):

* chapter 4: ``market/regret_day_kwh`` (OPT - expected energy of the day, Eq. 4.3's
  summand), ``learner/cumulative_regret_kwh`` (over the run), ``learner/efficiency``
  (cumulative expected / cumulative OPT), ``learner/cumulative_exchanged_kwh``,
  ``learner/mae_preference`` (mean ``|p_hat - p|`` over the allowed pairs, ``p`` from
  ``env.unwrapped.preference``), ``learner/observed_pairs`` (share of allowed pairs seen),
  ``learner/in_init``. Regret and efficiency need the env's per-day OPT MILP: the YAML
  sections request it (``env_kwargs: {oracle: true}``); without it they are NaN.
* chapter 6: ``market/cost_per_task_usd`` (the episode's cost so far / tasks served),
  ``market/v2g_share`` (V2G delivered / E of the slot), ``learner/mae_preference``
  (``CARSRecommender.mae(env.market.alpha)``, Figs. 6.10-6.11; 0 for PK),
  ``learner/cumulative_tasks_served``, ``learner/cumulative_cost_usd``,
  ``learner/cumulative_v2g_kwh``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from prosumer_gym.core.seeding import spawn
from prosumer_gym.train.common import atomic_torch_save, resolve_env
from prosumer_gym.train.population import _AGENT_STREAM, PopulationConfig, PopulationTrainer, _to_safe

__all__ = ["PLATFORM_ALGOS", "ALGO_ENVS", "P2P_AGENT_NAMES", "PLATFORM", "PlatformConfig", "PlatformTrainer",
           "GymPlatformEnv"]

PLATFORM = "platform"
PLATFORM_ALGOS = ("upl", "fia", "m-upl", "bpt-k", "cars", "pk")
#: the env each platform learner trains on
ALGO_ENVS = {"upl": "P2PRecommendation-v0", "fia": "P2PRecommendation-v0", "m-upl": "P2PRecommendation-v0",
             "bpt-k": "P2PRecommendation-v0", "cars": "EUber-v0", "pk": "EUber-v0"}
#: CLI name -> :func:`prosumer_gym.agents.p2p_recommendation.make_agent` name
P2P_AGENT_NAMES = {"upl": "upl-orig", "fia": "upl", "m-upl": "m-upl", "bpt-k": "bpt-k"}
_FIXED_INIT = {"upl": "upl", "fia": "fia", "m-upl": "mupl"}  # their initialisation is what the name says


@dataclass
class PlatformConfig(PopulationConfig):
    """A platform-learner run (see the module docstring); ``env`` defaults to the algo's."""

    algos: ClassVar[tuple[str, ...]] = PLATFORM_ALGOS
    env: str | None = None
    algo: str = "fia"

    def __post_init__(self) -> None:
        want = ALGO_ENVS.get(self.algo)
        if self.env is None and want is not None:
            self.env = want
        super().__post_init__()
        got = resolve_env(self.env).name
        if got != want:
            raise ValueError(f"{self.algo} trains on {want}, got env {self.env!r}")
        if self.algo in _FIXED_INIT and "init" in self.agent_kwargs:
            raise ValueError(f"agent_kwargs.init is fixed by the algo ({self.algo}: init={_FIXED_INIT[self.algo]!r}); "
                             f"choose the algo upl, fia or m-upl instead (bpt-k takes init)")
        if self.algo == "pk" and self.agent_kwargs:
            raise ValueError(f"pk takes no agent_kwargs (it knows the true alpha), got {sorted(self.agent_kwargs)}")


class GymPlatformEnv:
    """A Gymnasium env as a parallel env with the one agent ``"platform"`` (for the loop of
    :class:`~prosumer_gym.train.population.PopulationTrainer`)."""

    def __init__(self, env: Any) -> None:
        self.gym_env = env
        self.possible_agents = [PLATFORM]
        self.agents: list[str] = []
        u = env.unwrapped
        self.max_cycles = getattr(u, "max_cycles", None) or getattr(getattr(u, "market", None), "n_days", None)

    @property
    def unwrapped(self) -> Any:
        return self.gym_env.unwrapped

    def observation_space(self, agent: str) -> Any:
        return self.gym_env.observation_space

    def action_space(self, agent: str) -> Any:
        return self.gym_env.action_space

    def reset(self, seed: int | None = None):
        obs, info = self.gym_env.reset(seed=seed)
        self.agents = [PLATFORM]
        return {PLATFORM: obs}, {PLATFORM: info}

    def step(self, actions: Mapping[str, Any]):
        obs, r, term, trunc, info = self.gym_env.step(actions[PLATFORM])
        if term or trunc:
            self.agents = []
        return {PLATFORM: obs}, {PLATFORM: float(r)}, {PLATFORM: bool(term)}, {PLATFORM: bool(trunc)}, {PLATFORM: info}

    def close(self) -> None:
        self.gym_env.close()


# --------------------------------------------------------------------------- learners
class _Learner:
    """What the trainer needs of a platform learner; wraps the agent of ``prosumer_gym.agents``."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def act(self, obs: Any, explore: bool = True) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def learn(self, obs: Any, info: Mapping[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_reset(self, env: Any) -> None:
        """Called after every reset of the env (PK reads the episode's true alpha)."""

    def state_dict(self) -> dict[str, Any]:
        return self.agent.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.agent.load_state_dict(dict(state))

    def save(self, path: str | Path) -> None:
        """The learner's state, ``torch.save``d atomically (loads with ``weights_only=True``)."""
        atomic_torch_save(_to_safe(self.state_dict()), Path(path))


class RecommendationLearner(_Learner):
    """UPL / FIA / M-UPL / BPT-K for P2PRecommendation-v0's platform."""

    def act(self, obs: Any, explore: bool = True) -> np.ndarray:
        return self.agent.recommend(obs, greedy=not explore)

    def learn(self, obs: Any, info: Mapping[str, Any]) -> None:
        self.agent.learn(obs)  # Eqs. 4.5-4.6 from the feedback in the new observation

    def kpis(self, env: Any) -> dict[str, float]:
        m = env.unwrapped.market
        allowed = m.loss <= m.loss_max + 1e-12
        ag = self.agent
        return {"learner/mae_preference": ag.mae(env.unwrapped.preference, allowed),
                "learner/observed_pairs": float((ag.m > 0)[allowed].mean()) if allowed.any() else 1.0,
                "learner/in_init": float(ag.in_init)}


class EUberLearner(_Learner):
    """CARS (learns) or PK (knows alpha) as EUber-v0's recommender."""

    def act(self, obs: Any, explore: bool = True) -> np.ndarray:
        return self.agent.act(obs, explore=explore)

    def learn(self, obs: Any, info: Mapping[str, Any]) -> None:
        self.agent.observe(info)  # Eqs. 6.7-6.8: bid = 1, no bid = 0 on recommended pairs

    def on_reset(self, env: Any) -> None:
        from prosumer_gym.agents.euber import PKRecommender

        if isinstance(self.agent, PKRecommender):
            self.agent = PKRecommender(env.unwrapped.market.alpha)

    def kpis(self, env: Any) -> dict[str, float]:
        return {"learner/mae_preference": self.agent.mae(env.unwrapped.market.alpha)}


def _numeric(info: Mapping[str, Any], skip: tuple[str, ...]) -> dict[str, float]:
    return {k: float(v) for k, v in info.items() if k not in skip and isinstance(v, (int, float, np.number))
            and not isinstance(v, (bool, np.bool_))}


def _tensors(x: Any) -> Any:
    import torch

    if isinstance(x, Mapping):
        return {k: _tensors(v) for k, v in x.items()}
    return torch.from_numpy(np.array(x, copy=True))


def _same(x: Any, stored: Any) -> bool:
    if isinstance(x, Mapping):
        return isinstance(stored, Mapping) and x.keys() == stored.keys() and all(_same(x[k], stored[k]) for k in x)
    a = np.asarray(x)
    b = stored.numpy()
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))


# --------------------------------------------------------------------------- trainer
_P2P_SKIP = ("day", "data_day")
_EUBER_SKIP = ("slot", "slot_of_day")


class PlatformTrainer(PopulationTrainer):
    """Runs a :class:`PlatformConfig` (see the module docstring); the constructor and
    ``run(resume=..., stop_after=...)`` are :class:`PopulationTrainer`'s."""

    def __init__(self, config: PlatformConfig, *args: Any, **kwargs: Any) -> None:
        if not isinstance(config, PlatformConfig):
            raise TypeError(f"PlatformTrainer runs a PlatformConfig, got {type(config).__name__}")
        super().__init__(config, *args, **kwargs)
        self._chapter = "euber" if self.spec.name == "EUber-v0" else "p2p"

    @property
    def summary_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        if self._chapter == "p2p":
            return ("exchanged_kwh", "expected_kwh", "efficiency", "regret_day_kwh", "learner/mae_preference")
        return ("tasks_served", "cost_usd", "cost_per_task_usd", "v2g_delivered_kwh", "learner/mae_preference")

    @property
    def headline_keys(self) -> tuple[str, ...]:
        """Episode columns the CLI prints at the end."""
        if self._chapter == "p2p":
            return ("exchanged_kwh", "efficiency", "learner/cumulative_regret_kwh", "learner/mae_preference")
        return ("tasks_served", "cost_per_task_usd", "v2g_delivered_kwh", "learner/mae_preference")

    # -- env and agent -------------------------------------------------------------------
    def _make_env(self) -> GymPlatformEnv:
        import gymnasium as gym

        return GymPlatformEnv(gym.make(self.spec.gym_id, **self.cfg.env_kwargs))

    def _reset(self, env):
        obs, infos = env.reset(seed=self.cfg.seed)
        for ag in self.agents.values():
            ag.on_reset(env)
        return obs, infos

    def _build_agents(self, env, infos) -> dict[str, Any]:
        cfg = self.cfg
        (rng,) = spawn(np.random.default_rng([cfg.seed, _AGENT_STREAM]), 1)
        kw = dict(cfg.agent_kwargs)
        if self._chapter == "p2p":
            from prosumer_gym.agents.p2p_recommendation import make_agent

            return {PLATFORM: RecommendationLearner(make_agent(P2P_AGENT_NAMES[cfg.algo], env.unwrapped, seed=rng, **kw))}
        from prosumer_gym.agents.euber import CARSRecommender, PKRecommender

        u = env.unwrapped
        agent = CARSRecommender(u.config.n_workers, **kw) if cfg.algo == "cars" else PKRecommender(u.market.alpha)
        return {PLATFORM: EUberLearner(agent)}

    def _act(self, obs):
        return {PLATFORM: self.agents[PLATFORM].act(obs[PLATFORM], explore=self.cfg.explore)}

    def _learn(self, obs, acts, rewards, nobs, terms, infos) -> None:
        self.agents[PLATFORM].learn(nobs[PLATFORM], infos[PLATFORM])

    # -- checkpoints: the episode's action matrices and the Dict observation --------------
    def _action_row(self, acts):
        return np.array(acts[PLATFORM], copy=True)

    def _encode_actions(self, episode_actions):
        import torch

        if not episode_actions:
            space = self.env.action_space(PLATFORM)
            return torch.from_numpy(np.zeros((0, *space.shape), dtype=space.dtype))
        return torch.from_numpy(np.stack(episode_actions))

    def _replay(self, env, encoded, obs, infos):
        rows = []
        for row in encoded:
            a = row.numpy().copy()
            obs, _, _, _, infos = env.step({PLATFORM: a})
            rows.append(a)
        return obs, infos, rows

    def _encode_obs(self, obs):
        return {a: _tensors(o) for a, o in obs.items()}

    def _same_obs(self, obs, stored) -> bool:
        return _same(obs, stored)

    def _agent_file(self, agent: str) -> str:
        return f"{agent}.pt"

    # -- what is logged ------------------------------------------------------------------
    def _record(self, t, acts, rewards, infos) -> dict[str, float]:
        info = infos.get(PLATFORM, {})
        prev = self.history[-1] if self.history else {}
        rec: dict[str, float] = {"step": self.step, "episode": self.episode, "t": t}
        rec.update(_numeric(info, _P2P_SKIP if self._chapter == "p2p" else _EUBER_SKIP))
        rec[f"reward/{PLATFORM}"] = float(rewards[PLATFORM])
        ag = self.agents[PLATFORM]

        def cum(key: str, value: float) -> float:
            return float(prev.get(key, 0.0)) + (value if math.isfinite(value) else 0.0)

        if self._chapter == "p2p":
            opt, exp = rec.get("oracle_kwh", math.nan), rec.get("expected_kwh", math.nan)
            rec["regret_day_kwh"] = opt - exp  # NaN without the env's oracle
            rec["learner/cumulative_regret_kwh"] = (cum("learner/cumulative_regret_kwh", rec["regret_day_kwh"])
                                                    if math.isfinite(opt) else math.nan)
            rec["learner/cumulative_expected_kwh"] = cum("learner/cumulative_expected_kwh", exp)
            rec["learner/cumulative_oracle_kwh"] = cum("learner/cumulative_oracle_kwh", opt)
            o = rec["learner/cumulative_oracle_kwh"]
            rec["learner/efficiency"] = (rec["learner/cumulative_expected_kwh"] / o
                                         if math.isfinite(opt) and o > 1e-9 else math.nan)
            rec["learner/cumulative_exchanged_kwh"] = cum("learner/cumulative_exchanged_kwh",
                                                          rec.get("exchanged_kwh", 0.0))
        else:
            tot = info.get("totals") or {}
            served = float(tot.get("tasks_served", 0))
            rec["cost_per_task_usd"] = float(tot.get("cost_usd", math.nan)) / served if served > 0 else math.nan
            e = rec.get("E_kwh", 0.0)
            rec["v2g_share"] = rec.get("v2g_delivered_kwh", 0.0) / e if e > 0 else math.nan
            rec["learner/cumulative_tasks_served"] = cum("learner/cumulative_tasks_served", rec.get("tasks_served", 0.0))
            rec["learner/cumulative_cost_usd"] = cum("learner/cumulative_cost_usd", rec.get("cost_usd", 0.0))
            rec["learner/cumulative_v2g_kwh"] = cum("learner/cumulative_v2g_kwh", rec.get("v2g_delivered_kwh", 0.0))
        rec.update(ag.kpis(self.env))
        return rec

    def _episode_summary(self, recs: list[dict[str, float]]) -> dict[str, float]:
        out = super()._episode_summary(recs)
        for k in ("learner/efficiency", "cost_per_task_usd", "regret_kwh", "cumulative_kwh"):  # to-date values
            if k in recs[-1]:
                out[k] = recs[-1][k]
        for k in [k for k in out if k.startswith("learner/cumulative_")]:
            out[k] = recs[-1][k]
        return out
