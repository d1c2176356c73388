"""Leaderboard core: tracks (held-out scenarios + metrics), the joint-policy protocol, the
episode runner and the statistics.

A *track* is one registered env evaluated on a fixed set of held-out scenarios: fixed env
keywords (held-out households / days of the data's ``split="test"`` where the env has real
data) and fixed reset seeds (:data:`HELD_OUT_SEED_BASE` + k, disjoint from the training
scripts' default seeds 0..999). A policy is evaluated by running one episode per seed on the
PettingZoo parallel env; the track's ``summarise`` turns the episode into metric values.

Policies act on the *joint* observation dict (:class:`JointPolicy`): a reference agent, a
baseline, a model file or user code all look the same to the runner, so
:func:`run_episode` is the one loop everything goes through (and a test checks it gives the
same numbers as stepping the env by hand).

Normalisation (L2RPN style): on each metric the track's ``baseline`` entry scores 0 and its
``top`` entry (the oracle, or the best of the listed references on that metric) scores 100;
the composite score is the weighted mean with the published ``Metric.weight``\\ s.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "HELD_OUT_SEED_BASE",
    "TUNING_SEED_BASE",
    "Metric",
    "Reference",
    "Track",
    "JointPolicy",
    "PerAgentPolicy",
    "EpisodeLog",
    "run_episode",
    "mean_ci95",
    "track",
    "track_ids",
    "shared_info",
    "TRACK_MODULES",
]

#: Leaderboard reset seeds are ``HELD_OUT_SEED_BASE + k``; the training entry points default to
#: seed 0 and users train on small seeds, so scenario seeds never coincide with a default run.
HELD_OUT_SEED_BASE = 1_000_000
#: Hyperparameter searches evaluate on ``TUNING_SEED_BASE + k`` (with the *training*
#: households where the track has a split): tuning never sees a reported scenario.
TUNING_SEED_BASE = 2_000_000

#: Gymnasium id -> module defining ``TRACK`` (one per registered env).
TRACK_MODULES: dict[str, str] = {
    "P2PTrading-v0": "prosumer_gym.eval.leaderboard.tracks.p2p_trading",
    "P2PRecommendation-v0": "prosumer_gym.eval.leaderboard.tracks.p2p_recommendation",
    "EUber-v0": "prosumer_gym.eval.leaderboard.tracks.euber",
    "StorageSharing-v0": "prosumer_gym.eval.leaderboard.tracks.storage_sharing",
    "ProsumerSharing-v0": "prosumer_gym.eval.leaderboard.tracks.prosumer_sharing",
    "EnergyCollective-v0": "prosumer_gym.eval.leaderboard.tracks.energy_collective",
}


@dataclass(frozen=True)
class Metric:
    """One leaderboard metric: an episode's value of ``key`` (from ``Track.summarise``)."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    weight: float
    description: str = ""


class JointPolicy:
    """A policy for *all* agents of a PettingZoo parallel env (the leaderboard's protocol).

    ``reset`` is called after ``env.reset(seed=seed)``; ``act`` returns the action dict for
    ``env.agents``; ``observe`` sees every transition (online learners update there; frozen
    policies ignore it). Randomness must come from ``seed``.
    """

    name: str = "policy"

    def reset(self, env: Any, observations: Mapping[str, Any], infos: Mapping[str, Any], seed: int) -> None:
        return None

    def act(self, observations: Mapping[str, Any], infos: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def observe(self, observations: Mapping[str, Any], actions: Mapping[str, Any], rewards: Mapping[str, float],
                next_observations: Mapping[str, Any], terminations: Mapping[str, bool],
                truncations: Mapping[str, bool], infos: Mapping[str, Any]) -> None:
        return None


class PerAgentPolicy(JointPolicy):
    """Independent per-agent policies built at reset by ``make(env, agent, infos, rng)``.

    Each built object needs ``act(obs, explore=...)``; with ``learn=True`` its
    ``update(obs, action, reward, next_obs, terminated)`` and ``end_day()`` (if present)
    are called every step, the reference agents' online protocol (PQR, ProDQN).
    """

    def __init__(self, make: Callable[[Any, str, Mapping[str, Any], np.random.Generator], Any], learn: bool = False,
                 explore: bool = False, name: str = "per-agent") -> None:
        self._make = make
        self.learn = bool(learn)
        self.explore = bool(explore)
        self.name = name
        self.agents: dict[str, Any] = {}

    def reset(self, env, observations, infos, seed) -> None:
        from prosumer_gym.core.seeding import spawn

        names = list(env.possible_agents)
        rngs = spawn(np.random.default_rng([int(seed), 0x1EAD]), len(names))
        self.agents = {a: self._make(env, a, infos.get(a, {}), rng) for a, rng in zip(names, rngs)}

    def act(self, observations, infos) -> dict[str, Any]:
        return {a: self.agents[a].act(o, explore=self.explore) for a, o in observations.items()}

    def observe(self, observations, actions, rewards, next_observations, terminations, truncations, infos) -> None:
        if not self.learn:
            return
        for a, act in actions.items():
            ag = self.agents[a]
            if hasattr(ag, "update") and a in next_observations:
                ag.update(observations[a], act, rewards[a], next_observations[a], bool(terminations.get(a, False)))
            if hasattr(ag, "end_day"):
                ag.end_day()


@dataclass(frozen=True)
class Reference:
    """A built-in leaderboard entry: a reference agent, baseline or oracle.

    ``make()`` returns a fresh :class:`JointPolicy`; ``env_overrides`` are env keywords this
    entry changes (e.g. a baseline *mechanism*); submissions always run the track's env.
    """

    name: str
    kind: str  # "agent" (the paper's agents), "baseline", "oracle"
    description: str
    make: Callable[[], JointPolicy]
    env_overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class EpisodeLog:
    """What :func:`run_episode` saw: the reset infos, each step's rewards/infos and actions."""

    seed: int
    reset_infos: dict[str, Any]
    rewards: list[dict[str, float]] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    env: Any = None  # the env at the end of the episode (for inspection attributes)


@dataclass(frozen=True)
class Track:
    """The held-out scenarios and metrics of one env.

    ``summarise(log) -> {metric key: value}`` computes the metrics of one episode;
    ``curve(rewards, infos) -> float`` the per-step value plotted as the learning curve.
    ``co_players``: the reference whose actions fill the agents a submitted *shared* model
    does not control (other roles). ``roles``: role name -> agent-name prefix.
    """

    env_id: str
    version: int
    description: str
    env_kwargs: Mapping[str, Any]
    n_seeds: int
    metrics: tuple[Metric, ...]
    references: tuple[Reference, ...]
    baseline: str
    top: tuple[str, ...]
    summarise: Callable[[EpisodeLog], dict[str, float]]
    curve: Callable[[Mapping[str, float], Mapping[str, Any]], float]
    curve_label: str
    co_players: str | None = None
    roles: Mapping[str, str] = field(default_factory=dict)
    held_out: str = ""

    def __post_init__(self) -> None:
        names = [r.name for r in self.references]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.env_id}: duplicate reference names {names}")
        for n in (self.baseline, *self.top) + ((self.co_players,) if self.co_players else ()):
            if n not in names:
                raise ValueError(f"{self.env_id}: {n!r} is not one of the references {names}")
        if not math.isclose(sum(m.weight for m in self.metrics), 1.0, abs_tol=1e-9):
            raise ValueError(f"{self.env_id}: metric weights must sum to 1")

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(HELD_OUT_SEED_BASE + k for k in range(self.n_seeds))

    def reference(self, name: str) -> Reference:
        for r in self.references:
            if r.name == name:
                return r
        raise ValueError(f"{self.env_id}: unknown reference {name!r}; choose one of {[r.name for r in self.references]}")

    def make_env(self, overrides: Mapping[str, Any] | None = None):
        from prosumer_gym.train.common import resolve_env

        kw = dict(self.env_kwargs)
        kw.update(overrides or {})
        return resolve_env(self.env_id).pettingzoo().parallel_env(**kw)

    def metric(self, key: str) -> Metric:
        for m in self.metrics:
            if m.key == key:
                return m
        raise KeyError(key)


def shared_info(infos: Mapping[str, Any], key: str = "market") -> dict[str, Any]:
    """The dict every agent's info shares under ``key`` (the envs' market/community KPIs);
    ``{}`` when no agent's info has it."""
    for info in infos.values():
        if key in info:
            return info[key]
    return {}


def run_episode(env: Any, policy: JointPolicy, seed: int, curve: Callable | None = None) -> tuple[EpisodeLog, list[float]]:
    """One episode of ``policy`` on ``env`` from ``env.reset(seed=seed)``.

    Returns the log and the per-step curve values. This is the only stepping loop of the
    leaderboard (serial, process-parallel and Ray evaluation all call it).
    """
    obs, infos = env.reset(seed=int(seed))
    policy.reset(env, obs, infos, int(seed))
    log = EpisodeLog(seed=int(seed), reset_infos=dict(infos))
    values: list[float] = []
    while env.agents:
        actions = policy.act(obs, infos)
        nobs, rewards, terms, truncs, infos = env.step(actions)
        policy.observe(obs, actions, rewards, nobs, terms, truncs, infos)
        log.rewards.append(dict(rewards))
        log.infos.append(dict(infos))
        if curve is not None:
            values.append(float(curve(rewards, infos)))
        obs = nobs
    log.env = env
    return log, values


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student t; 0 for one value)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    m = float(x.mean())
    if x.size < 2:
        return m, 0.0
    from scipy import stats

    return m, float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


_TRACKS: dict[str, Track] = {}


def track_ids() -> list[str]:
    """Env ids with a leaderboard track (those whose env and track modules exist)."""
    import importlib.util

    from prosumer_gym import ENV_IDS

    out = []
    for env_id, mod in TRACK_MODULES.items():
        if env_id in ENV_IDS and importlib.util.find_spec(mod) is not None:
            out.append(env_id)
    return out


def track(env_id: str) -> Track:
    """The :class:`Track` of ``env_id``."""
    if env_id not in TRACK_MODULES:
        raise ValueError(f"env must be one of {sorted(TRACK_MODULES)}, got {env_id!r}")
    if env_id not in _TRACKS:
        _TRACKS[env_id] = importlib.import_module(TRACK_MODULES[env_id]).TRACK
    return _TRACKS[env_id]
