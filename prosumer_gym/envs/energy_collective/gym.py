"""Single-agent Gymnasium view of EnergyCollective-v0 (``gym.make("EnergyCollective-v0")``).

Env card
--------
Default (``centralized=False``): one ego player (``ego``: index or name, default the
first flexible consumer ``flexible_0`` if there is one, else player 0) learns; every other
player follows ``others``: ``"best_response"`` (default: the co-players ``co_players``,
below), ``"reference"`` (each plays its reference set-point ``p_ref``), ``"random"``
(uniform actions from the env's generator) or a callable ``f(agent, obs) -> action``.
Observation/action space: the ego player's (``Box(10,)`` and ``Box(1,)`` in [0, 1], see
``energy_collective_v0``). Reward: minus the ego player's cost (EUR) under the chosen
``allocation`` (or the P2P settlement).

``co_players`` (with ``others="best_response"``; default ``"admm"``): a co-player name
registered for ``"EnergyCollective"`` (:func:`prosumer_gym.core.policies.co_player_names`)
or a factory ``factory(env, agents, infos, rng) -> {agent: CoPlayer}`` (protocol
:mod:`prosumer_gym.core.policies`), called at every ``reset`` with the PettingZoo
``raw_env``, the non-ego agents, the reset infos and a generator spawned from the view's
seed (spawning does not move the view's own stream). At each step every co-player's
``act`` maps its own observation to its action, and its ``observe`` then sees its
transition. ``"admm"`` (``prosumer_gym.agents.energy_collective:admm_co_players``) is the
ADMM best response ``clip(r + (lambda - m)/a, p_min, p_max)`` of the slides' mechanism,
one stateless co-player per agent (the best response is per player, not joint): it is
elementwise in the observation, so it gives exactly the actions of the batched policy the
view used before (same seed, same trajectory). Batched co-players: if the factory's mapping
also has ``act_batch(obs) -> actions`` and ``observe_batch(obs, actions, rewards,
next_obs)``, the view calls them once per step on the co-players' rows (in the order of the
``agents`` it passed: ``(k, 10)`` observations, ``(k, 1)`` actions, ``(k,)`` rewards)
instead of each co-player's ``act``/``observe`` (``"admm"`` does: one vectorised call
instead of 314). With batched co-players, ``"reference"``, ``"random"`` and
``centralized=True``, a step builds only the outputs the view returns (same numbers as the
PettingZoo step).

``centralized=True``: one controller sets every player's action with a ``Box(N,)`` in
[0, 1]; observation = every player's observation concatenated (``Box(10 N,)``); reward
= minus the community's total monetary cost of the slot (``community_cost_eur``: sum
of the players' costs ``f_i`` plus the grid bill), so the optimum is the mechanism's
dispatch.

Info: the ego player's info (centralized: ``{"market": {...}}``). Episodes end by
truncation after ``n_steps`` slots. Every keyword of ``energy_collective_v0.raw_env`` is
accepted. Out-of-range actions raise ``ValueError`` (no projection).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from prosumer_gym.core.policies import CoPlayer, CoPlayerFactory, resolve_co_players
from prosumer_gym.core.seeding import spawn
from prosumer_gym.core.spaces import check_box
from prosumer_gym.core.validation import check_bool
from prosumer_gym.envs.energy_collective.env import OBS_NAMES, raw_env

__all__ = ["EnergyCollectiveGymEnv"]

OTHERS = ("best_response", "reference", "random")


class EnergyCollectiveGymEnv(gym.Env):
    """Ego player (or a centralised controller) in EnergyCollective-v0; see the module docstring."""

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        ego: int | str | None = None,
        others: str | Callable[[str, np.ndarray], Any] = "best_response",
        co_players: str | CoPlayerFactory | None = None,
        centralized: bool = False,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        self.market = raw_env(render_mode=render_mode, **env_kwargs)
        self.render_mode = render_mode
        self.centralized = check_bool("centralized", centralized)
        agents = self.market.possible_agents
        if ego is None:
            ego = "flexible_0" if "flexible_0" in agents else 0
        if isinstance(ego, str):
            if ego not in agents:
                raise ValueError(f"ego must be a player name (e.g. {agents[0]!r}) or an index in [0, {len(agents) - 1}], "
                                 f"got {ego!r}")
            ego = agents.index(ego)
        if isinstance(ego, (bool, np.bool_)) or not isinstance(ego, (int, np.integer)) or not 0 <= ego < len(agents):
            raise ValueError(f"ego must be a player index in [0, {len(agents) - 1}] or a name, got {ego!r}")
        if not (callable(others) or others in OTHERS):
            raise ValueError(f"others must be one of {OTHERS} or a callable (agent, obs) -> action, got {others!r}")
        if co_players is not None and others != "best_response":
            raise ValueError(f"co_players applies to others='best_response' only, got others={others!r}")
        self._factory = (resolve_co_players("EnergyCollective", "admm" if co_players is None else co_players,
                                            "co_players") if others == "best_response" else None)
        self.ego = int(ego)
        self.ego_agent = agents[self.ego]
        self.others = others
        n = len(agents)
        o_space = self.market.observation_space(self.ego_agent)
        if self.centralized:
            self.action_space = spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32)
            self.observation_space = spaces.Box(low=np.tile(o_space.low, n), high=np.tile(o_space.high, n),
                                                dtype=np.float32)
        else:
            self.action_space = self.market.action_space(self.ego_agent)
            self.observation_space = o_space
        self._co_players: Mapping[str, CoPlayer] = {}
        self._obs: dict[str, np.ndarray] = {}
        self._ref_idx = OBS_NAMES.index("p_ref")
        self._other_agents = [a for a in agents if a != self.ego_agent]
        self._others_idx = np.array([i for i in range(n) if i != self.ego], dtype=np.intp)
        self._batch: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # The market's own stream is derived from ours, so one seed fixes everything.
        market_seed = int(self.np_random.integers(2**63 - 1))
        obs, infos = self.market.reset(seed=market_seed, options=options)
        self._obs = obs
        self._batch = None
        if self._factory is not None and not self.centralized:
            agents = self._other_agents
            co = self._factory(self.market, agents, infos, spawn(self.np_random, 1)[0])
            missing = [a for a in agents if a not in co]
            if missing:
                raise ValueError(f"the co_players factory returned no co-player for {missing[:5]}")
            self._co_players = {a: co[a] for a in agents}
            if callable(getattr(co, "act_batch", None)) and callable(getattr(co, "observe_batch", None)):
                self._batch = co
        if self.centralized:
            return self._joint_obs(obs), {}
        return obs[self.ego_agent], infos[self.ego_agent]

    def _joint_obs(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([obs[a] for a in self.market.possible_agents]).astype(np.float32)

    def _other_actions(self) -> dict[str, Any]:
        agents = self._other_agents
        if callable(self.others):
            return {a: self.others(a, self._obs[a]) for a in agents}
        if self.others == "best_response":
            return {a: self._co_players[a].act(self._obs[a]) for a in agents}
        acts = self._other_rows(np.stack([self._obs[a] for a in agents]))
        return {a: acts[i] for i, a in enumerate(agents)}

    def _other_rows(self, mat: np.ndarray) -> np.ndarray:
        """``"reference"`` / ``"random"`` actions (k, 1) of the co-players' observation rows."""
        if self.others == "reference":
            lo, hi, ref = mat[:, 3].astype(np.float64), mat[:, 4].astype(np.float64), mat[:, self._ref_idx]
            span = hi - lo
            acts = np.where(span > 0, (ref - lo) / np.where(span > 0, span, 1.0), 0.5)
            return np.clip(acts, 0.0, 1.0).astype(np.float32)[:, None]
        return self.np_random.uniform(0.0, 1.0, size=(len(mat), 1)).astype(np.float32)

    def step(self, action: Any):
        if not self.market.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        agents = self.market.possible_agents
        try:
            checked = check_box(action, self.action_space, "action")
        except (TypeError, ValueError) as e:
            if "action" in str(e):
                raise
            raise ValueError(f"action must be a float array of shape {self.action_space.shape} in [0, 1], "
                             f"got {action!r}") from None
        if self.centralized:
            return self._step_array(checked)
        if self._batch is not None or self.others in ("reference", "random"):
            prev = self.market._obs_mat[self._others_idx]
            rows = self._batch.act_batch(prev) if self._batch is not None else self._other_rows(prev)
            rows = np.asarray(rows)
            if rows.shape == (len(prev), 1) and rows.dtype.kind in "biuf" and np.isfinite(rows).all() \
                    and (rows >= 0.0).all() and (rows <= 1.0).all():
                act = np.empty(len(agents))
                act[self._others_idx] = rows[:, 0]
                act[self.ego] = checked[0]
                return self._step_array(act, prev, rows)
            # not a valid (k, 1) batch: hand the rows to the PettingZoo check (it names the agent)
            actions = {a: rows[i] for i, a in enumerate(self._other_agents)}
            actions[self.ego_agent] = checked
            return self._step_dict(actions)
        actions = self._other_actions()
        actions[self.ego_agent] = checked
        return self._step_dict(actions)

    def _step_dict(self, actions: dict[str, Any]):
        """One step through the PettingZoo API (every agent's dicts; per-agent co-players)."""
        agents = self.market.possible_agents
        prev = self._obs
        obs, rewards, terms, truncs, infos = self.market.step(actions)
        for a, co in self._co_players.items():
            co.observe(prev[a], actions[a], rewards[a], obs[a])
        self._obs = obs
        done_t = any(truncs.values())
        done_x = any(terms.values())
        if self.centralized:
            market = infos[agents[0]]["market"]
            return self._joint_obs(obs), -float(market["community_cost_eur"]), done_x, done_t, {"market": market}
        return obs[self.ego_agent], rewards[self.ego_agent], done_x, done_t, infos[self.ego_agent]

    def _step_array(self, act: np.ndarray, prev: np.ndarray | None = None, rows: np.ndarray | None = None):
        """One step on the whole action vector ``act`` (N,): only the outputs the view
        returns are built (the same numbers as :meth:`_step_dict`). ``prev``/``rows``: the
        co-players' observations and actions, for a batched co-player's ``observe_batch``."""
        m = self.market
        st, terms, truncs = m._step_array(act)
        mat = m._obs_mat = m._obs_matrix()
        self._obs = dict(zip(m.possible_agents, mat))
        done_t = any(truncs.values())
        done_x = any(terms.values())
        if self._batch is not None:
            self._batch.observe_batch(prev, rows, -st["cost"][self._others_idx], mat[self._others_idx])
        if self.centralized:
            market = st["market_info"]
            return mat.reshape(-1).astype(np.float32), -float(market["community_cost_eur"]), done_x, done_t, \
                {"market": market}
        return mat[self.ego], float(-st["cost"][self.ego]), done_x, done_t, m._agent_info(st, self.ego)

    def render(self):
        return self.market.render()

    def close(self) -> None:
        self.market.close()
