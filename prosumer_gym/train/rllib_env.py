"""RLlib multi-agent adapter for every prosumer_gym PettingZoo env, and policy mappings.

:class:`PettingZooRLlibEnv` is a ``ray.rllib.env.multi_agent_env.MultiAgentEnv`` around a
PettingZoo ``ParallelEnv`` of :mod:`prosumer_gym.envs`. RLlib's own
``ParallelPettingZooEnv`` falls short for these envs in five places, which the adapter
closes (everything else is passed through unchanged):

* **Agents that leave and return** (EUber-v0 with ``absent_agents="revive"``; the default ``"mask"`` keeps everyone): the
  env reports ``truncated=True`` for a worker that goes charging or is busy and brings it
  back later; RLlib forbids data for an agent after its truncation. The adapter turns a
  truncation *while the episode goes on* into "no observation this step": RLlib keeps the
  agent's last action pending, adds up the rewards it still receives, and closes that
  transition when the worker returns (one transition from the observation before it left
  to the one at its return, with the summed reward). At the episode's end every agent
  still away gets a final observation (the one it left with) and ``truncated=True``, so
  RLlib can bootstrap. Terminations are passed through (an agent terminated for good).
* **Per-agent spaces over** ``possible_agents``: the RLlib wrapper builds its spaces from
  the agents present after one reset, which misses agents absent at that moment (EUber
  workers away at reset, ProsumerSharing-v0 with ``n_prosumers_range``).
* **Dict observations** (P2PRecommendation-v0's platform) are flattened into one float32
  ``Box`` (``gymnasium.spaces.flatten``; RLlib's default models take 1-D boxes). The keys'
  order is the Dict space's (sorted), see :meth:`PettingZooRLlibEnv.obs_layout`.
* **Action spaces RLlib's default models cannot emit**: a multi-dimensional ``Box``
  (P2PRecommendation-v0's platform ``Box(P, C)``) is exposed flat and reshaped back;
  ``MultiBinary(n)`` (ProsumerSharing-v0, P2PRecommendation-v0's consumers) is exposed as
  ``MultiDiscrete([2] * n)``. Box actions are clipped into the space's bounds and cast to
  its dtype before they reach the env (RLlib's float32 Gaussian samples may overshoot by
  rounding; our envs reject out-of-box actions with ``ValueError``).
* **One shared policy over agents of different observation sizes**: with
  ``pad_observations=True`` every 1-D Box observation is zero-padded to the longest one
  (SuperSuit's ``pad_observations_v0`` rule: StorageSharing-v0's auctioneer and RUs).

Policy mappings (``policy_mapping`` in the env config / ``--policy-mapping``):

* ``"shared"``: one module, :data:`SHARED_POLICY`, acts for every agent (parameter
  sharing). Needs one observation and one action space across agents (after padding).
* ``"role"``: one module per role, the agent name without its trailing ``_<index>``
  (:func:`agent_role`: ``seller``, ``auctioneer``/``ru``, ``platform``/``consumer``,
  ``worker``, ``prosumer``, ``prosumer``/``flexible``/``inflexible``/``chp``/``peak``).
* ``"agent"``: one module per agent (independent learners, like the papers' PQR sellers).

``ray`` is imported when this module is imported; :mod:`prosumer_gym.train.rllib` imports
it lazily, so the rest of the package works without the ``rllib`` extra.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

try:
    from gymnasium import spaces
    from ray.rllib.callbacks.callbacks import RLlibCallback
    from ray.rllib.env.multi_agent_env import MultiAgentEnv
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError('the RLlib backend needs Ray RLlib: pip install "prosumer_gym[rllib]"') from e

__all__ = [
    "PettingZooRLlibEnv",
    "POLICY_MAPPINGS",
    "SHARED_POLICY",
    "agent_role",
    "shared_policy_mapping_fn",
    "role_policy_mapping_fn",
    "agent_policy_mapping_fn",
    "policy_mapping_fn",
    "policy_ids",
    "market_kpis",
    "MarketMetricsCallback",
]

POLICY_MAPPINGS = ("shared", "role", "agent")
SHARED_POLICY = "shared"
_INDEX = re.compile(r"_\d+$")


# --------------------------------------------------------------------------- policy mapping
def agent_role(agent_id: str) -> str:
    """The agent's role: its name without a trailing ``_<index>`` (``ru_3`` -> ``ru``,
    ``auctioneer`` -> ``auctioneer``)."""
    return _INDEX.sub("", str(agent_id))


def shared_policy_mapping_fn(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
    """Every agent -> :data:`SHARED_POLICY` (RLlib ``policy_mapping_fn`` signature)."""
    return SHARED_POLICY


def role_policy_mapping_fn(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
    """Agent -> its role's module (:func:`agent_role`; RLlib ``policy_mapping_fn`` signature)."""
    return agent_role(agent_id)


def agent_policy_mapping_fn(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
    """Agent -> its own module (RLlib ``policy_mapping_fn`` signature)."""
    return str(agent_id)


def _check_mapping(mapping: str) -> str:
    if mapping not in POLICY_MAPPINGS:
        raise ValueError(f"policy_mapping must be one of {POLICY_MAPPINGS}, got {mapping!r}")
    return mapping


def policy_mapping_fn(mapping: str):
    """The module-level (picklable) RLlib ``policy_mapping_fn`` of ``mapping``."""
    fns = {"shared": shared_policy_mapping_fn, "role": role_policy_mapping_fn, "agent": agent_policy_mapping_fn}
    return fns[_check_mapping(mapping)]


def policy_ids(agents: list[str] | tuple[str, ...], mapping: str) -> list[str]:
    """Module ids needed for ``agents`` under ``mapping`` (first-appearance order)."""
    fn = policy_mapping_fn(mapping)
    return list(dict.fromkeys(fn(a) for a in agents))


# --------------------------------------------------------------------------- spaces
def _plain_box(space: spaces.Box, dtype: Any = None) -> spaces.Box:
    dt = np.dtype(dtype or space.dtype)
    return spaces.Box(low=space.low.astype(dt).ravel(), high=space.high.astype(dt).ravel(), dtype=dt)


def _obs_space(space: spaces.Space) -> tuple[spaces.Space, str]:
    """(RLlib-facing space, conversion kind)."""
    if isinstance(space, spaces.Dict):
        return _plain_box(spaces.flatten_space(space), np.float32), "flatten"
    if isinstance(space, spaces.Box):
        return _plain_box(space), "box"  # plain Box (NamedBox -> Box), n-D -> 1-D
    return space, "identity"


def _act_space(space: spaces.Space) -> tuple[spaces.Space, str]:
    if isinstance(space, spaces.MultiBinary):
        return spaces.MultiDiscrete(np.full(int(np.prod(space.shape)), 2, dtype=np.int64)), "multibinary"
    if isinstance(space, spaces.Box):
        return _plain_box(space), "box"
    return space, "identity"


def _short(space: spaces.Space) -> str:
    if isinstance(space, spaces.Box):
        return f"Box{tuple(space.shape)}"
    if isinstance(space, spaces.MultiDiscrete):
        return f"MultiDiscrete({space.nvec.tolist()})"
    return str(space)


def market_kpis(infos: Mapping[str, Any]) -> dict[str, float]:
    """Numeric market KPIs of one step's infos: the shared ``info["market"]`` (most envs) or
    ``info["community"]`` (ProsumerSharing-v0) dict, else the ``platform``'s numeric infos
    (P2PRecommendation-v0). Booleans, non-finite values and nested entries are skipped."""
    src: Mapping[str, Any] | None = None
    for info in infos.values():
        if isinstance(info, Mapping):
            for key in ("market", "community"):
                if isinstance(info.get(key), Mapping):
                    src = info[key]
                    break
        if src is not None:
            break
    if src is None and isinstance(infos.get("platform"), Mapping):
        src = infos["platform"]
    out: dict[str, float] = {}
    for k, v in (src or {}).items():
        if k in ("day", "data_day", "slot", "hour") or isinstance(v, (bool, np.bool_)):
            continue
        if isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v):
            out[str(k)] = float(v)
    return out


# --------------------------------------------------------------------------- adapter
class PettingZooRLlibEnv(MultiAgentEnv):
    """RLlib ``MultiAgentEnv`` over a prosumer_gym PettingZoo ``ParallelEnv`` (module docstring).

    ``config`` (RLlib's ``env_config``): ``env`` (Gymnasium id such as ``"StorageSharing-v0"``
    or PettingZoo module name such as ``"storage_sharing_v0"``), ``env_kwargs`` (keywords of
    ``parallel_env``), ``pad_observations`` (bool, default False), ``policy_mapping``
    (``"shared"``/``"role"``/``"agent"``; only checked here: with ``"shared"`` and 1-D Box observations of
    different sizes, padding is switched on). ``parallel_env=`` wraps an existing env instead.
    """

    def __init__(self, config: Mapping[str, Any] | None = None, *, parallel_env: Any = None) -> None:
        cfg = dict(config or {})
        unknown = set(cfg) - {"env", "env_kwargs", "pad_observations", "policy_mapping"}
        if unknown:
            raise ValueError(f"unknown env_config keys {sorted(unknown)}; allowed: env, env_kwargs, "
                             f"pad_observations, policy_mapping")
        if parallel_env is None:
            from prosumer_gym.train.common import resolve_env

            spec = resolve_env(str(cfg.get("env", "P2PTrading-v0")))
            env_kwargs = cfg.get("env_kwargs") or {}
            if not isinstance(env_kwargs, Mapping):
                raise ValueError(f"env_kwargs must be a mapping, got {type(env_kwargs).__name__}")
            parallel_env = spec.pettingzoo().parallel_env(**dict(env_kwargs))
            self.env_name = spec.name
        else:
            self.env_name = type(getattr(parallel_env, "unwrapped", parallel_env)).__name__
        self.par_env = parallel_env
        mapping = _check_mapping(str(cfg.get("policy_mapping", "role")))
        self.possible_agents = list(parallel_env.possible_agents)
        self.agents = []
        self._src_obs = {a: parallel_env.observation_space(a) for a in self.possible_agents}
        self._src_act = {a: parallel_env.action_space(a) for a in self.possible_agents}
        self._obs_kind: dict[str, str] = {}
        self._act_kind: dict[str, str] = {}
        self.observation_spaces: dict[str, spaces.Space] = {}
        self.action_spaces: dict[str, spaces.Space] = {}
        for a in self.possible_agents:
            self.observation_spaces[a], self._obs_kind[a] = _obs_space(self._src_obs[a])
            self.action_spaces[a], self._act_kind[a] = _act_space(self._src_act[a])
        pad = bool(cfg.get("pad_observations", False))
        obs_list = list(self.observation_spaces.values())
        if mapping == "shared" and any(s != obs_list[0] for s in obs_list[1:]):
            pad = True
        self._pad_to: int | None = None
        if pad:
            self._pad()
        if mapping == "shared":
            self._check_shared()
        self._away: dict[str, Any] = {}  # agents that left mid-episode -> the observation they left with
        super().__init__()
        self.observation_space = spaces.Dict(self.observation_spaces)  # old-API-stack attributes
        self.action_space = spaces.Dict(self.action_spaces)

    # -- spaces
    def _pad(self) -> None:
        sp = self.observation_spaces
        if not all(isinstance(s, spaces.Box) and len(s.shape) == 1 for s in sp.values()):
            kinds = sorted({type(s).__name__ for s in sp.values()})
            raise ValueError(f"pad_observations needs 1-D Box observations for every agent, got {kinds}")
        n = max(s.shape[0] for s in sp.values())
        self._pad_to = n
        lo = np.zeros(n, dtype=np.float32)  # one Box for all: the bounds' envelope (SuperSuit's rule)
        hi = np.zeros(n, dtype=np.float32)
        for s in sp.values():
            k = s.shape[0]
            lo[:k], hi[:k] = np.minimum(lo[:k], s.low), np.maximum(hi[:k], s.high)
        for a in sp:
            sp[a] = spaces.Box(lo.copy(), hi.copy(), dtype=np.float32)

    def _check_shared(self) -> None:
        acts = list(self.action_spaces.values())
        obs = list(self.observation_spaces.values())
        if any(s != acts[0] for s in acts[1:]) or any(s != obs[0] for s in obs[1:]):
            by_role: dict[str, str] = {}
            for a in self.possible_agents:
                by_role.setdefault(agent_role(a), f"obs {_short(self.observation_spaces[a])}, "
                                                  f"action {_short(self.action_spaces[a])}")
            raise ValueError(f"policy_mapping='shared' needs one observation and one action space for all agents; "
                             f"{self.env_name} has {by_role}: use policy_mapping='role'")

    def obs_layout(self, agent: str) -> list[tuple[str, tuple[int, ...]]]:
        """``(key, shape)`` of each block of a flattened Dict observation, in order (empty for Box)."""
        s = self._src_obs[agent]
        return [(k, tuple(v.shape)) for k, v in s.spaces.items()] if isinstance(s, spaces.Dict) else []

    def get_observation_space(self, agent_id: str) -> spaces.Space:
        return self.observation_spaces[agent_id]

    def get_action_space(self, agent_id: str) -> spaces.Space:
        return self.action_spaces[agent_id]

    # -- conversions
    def _obs(self, agent: str, obs: Any) -> Any:
        kind = self._obs_kind[agent]
        if kind == "flatten":
            out = spaces.flatten(self._src_obs[agent], obs).astype(np.float32)
        elif kind == "box":
            out = np.asarray(obs, dtype=self.observation_spaces[agent].dtype).ravel()
        else:
            return obs
        if self._pad_to is not None and out.shape[0] < self._pad_to:
            out = np.concatenate([out, np.zeros(self._pad_to - out.shape[0], dtype=out.dtype)])
        return out.astype(np.float32) if self._pad_to is not None else out

    def to_env_action(self, agent: str, action: Any) -> Any:
        """The RLlib-side action of ``agent`` in the env's own action space."""
        kind, src = self._act_kind[agent], self._src_act[agent]
        if kind == "box":
            a = np.asarray(action, dtype=np.float64).reshape(src.shape)
            return np.clip(a, src.low, src.high).astype(src.dtype)
        if kind == "multibinary":
            return np.asarray(action).astype(src.dtype).reshape(src.shape)
        if isinstance(src, spaces.Discrete):
            return int(np.asarray(action).reshape(()))
        return action

    # -- API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, infos = self.par_env.reset(seed=seed, options=options)
        self._away = {}
        self.agents = list(self.par_env.agents)
        infos = infos or {}
        return ({a: self._obs(a, o) for a, o in obs.items()},
                {a: infos[a] for a in obs if a in infos})

    def step(self, action_dict: Mapping[str, Any]):
        acts = {a: self.to_env_action(a, v) for a, v in action_dict.items()}
        obs, rew, term, trunc, infos = self.par_env.step(acts)
        over = not self.par_env.agents
        o_obs: dict[str, Any] = {}
        o_rew = {a: float(r) for a, r in rew.items()}
        o_term: dict[str, bool] = {}
        o_trunc: dict[str, bool] = {}
        for a in dict.fromkeys([*obs, *term, *trunc]):
            t, tr = bool(term.get(a, False)), bool(trunc.get(a, False))
            if tr and not t and not over:  # leaves for now, may return: keep its action pending
                self._away[a] = self._obs(a, obs[a]) if a in obs else self._away.get(a)
                continue
            if a in obs:
                o_obs[a] = self._obs(a, obs[a])
                self._away.pop(a, None)
            o_term[a], o_trunc[a] = t, tr or (over and not t)
        if over:  # agents still away get their last observation and a truncation
            for a, o in self._away.items():
                if o is not None:
                    o_obs[a] = o
                    o_rew.setdefault(a, 0.0)
                    o_term[a], o_trunc[a] = False, True
            self._away = {}
        o_term["__all__"] = over and all(v for k, v in o_term.items() if k != "__all__")
        o_trunc["__all__"] = over and not o_term["__all__"]
        o_infos = {a: infos[a] for a in o_obs if a in infos}
        # agents of this episode that have not finished: live ones and those away
        self.agents = list(dict.fromkeys([*self.par_env.agents, *self._away])) if not over else list(o_obs)
        return o_obs, o_rew, o_term, o_trunc, o_infos

    def close(self) -> None:
        self.par_env.close()

    def render(self):
        return self.par_env.render()


# --------------------------------------------------------------------------- metrics
class MarketMetricsCallback(RLlibCallback):
    """Logs the env's market KPIs (:func:`market_kpis` of each step's infos) into RLlib's
    metrics: ``market/<kpi>`` (mean over the iteration's steps) and ``episode_market/<kpi>``
    (each finished episode's mean), reported under ``env_runners`` in the results."""

    def on_episode_step(self, *, episode, metrics_logger=None, **kwargs) -> None:
        infos = episode.get_infos(-1)
        kpis = market_kpis(infos) if isinstance(infos, Mapping) else {}
        if not kpis:
            return
        acc = episode.custom_data.setdefault("market_kpis", {})
        for k, v in kpis.items():
            acc.setdefault(k, []).append(v)
            if metrics_logger is not None:
                metrics_logger.log_value(("market", k), v, reduce="mean")

    def on_episode_end(self, *, episode, metrics_logger=None, **kwargs) -> None:
        acc = episode.custom_data.get("market_kpis") or {}
        if metrics_logger is None:
            return
        for k, vals in acc.items():
            metrics_logger.log_value(("episode_market", k), float(np.mean(vals)), reduce="mean", window=20)
