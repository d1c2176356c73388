"""Single-agent Gymnasium view of P2PTrading-v0 (``gym.make("P2PTrading-v0")``).

Env card
--------
Default (``centralized=False``): one ego seller (``ego``, default ``seller_0``) learns;
the other sellers follow ``opponents``: ``"pqr"`` (default: PQR agents, Alg. 5, that keep
learning online during the episode, each with its own PT parameters), ``"constant"``
(hold the initial price), ``"random"``, or a callable ``f(agent, obs) -> action`` (a plain
policy function of two arguments, called for every other seller at every step).

``co_players`` (default ``None``: follow ``opponents``): a co-player name registered for
``"P2PTrading"`` (:func:`prosumer_gym.core.policies.co_player_names`) or a factory
``factory(env, agents, infos, rng) -> {agent: CoPlayer}`` (protocol
:mod:`prosumer_gym.core.policies`); give it or a non-default ``opponents``, not both. The
names of ``opponents`` are such registered factories (``prosumer_gym.DEFAULT_CO_PLAYERS``:
``"pqr"`` is ``prosumer_gym.agents.pqr:pqr_co_players``, ``"constant"``/``"random"`` are in
``prosumer_gym.baselines.price_policies``); a callable ``opponents`` is always the
two-argument policy function, never a factory (factories go to ``co_players``, or get a
name with ``register_co_players``). The factory is called at every ``reset`` with the
PettingZoo ``raw_env``, the other sellers, the reset infos and the view's own generator
``np_random``, from which it should only *spawn* children (that does not move its stream;
``"pqr"``/``"random"`` give the i-th other seller ``spawn(rng, S - 1)[i]``, so a seed gives
the same trajectory as before co-players existed). At each step every co-player's ``act``
maps its observation to its action, then ``observe`` sees its transition (PQR learns
there: Eq. 5.4 update and the daily epsilon decay).

Observation/action space: the ego seller's (``Box(6,)`` and ``Discrete(3)`` by default,
see ``p2p_trading_v0``). Reward: the ego seller's revenue ($).

``centralized=True``: one controller sets every seller's move with a
``MultiDiscrete([n_actions] * S)`` action; observation = all sellers' observations
concatenated (``Box(6 * S,)``); reward = total sellers' revenue ($).

Info: the ego seller's info (centralized: ``{"sellers": {...}, "market": {...}}``).
Episodes end by truncation after ``n_days``. Every keyword of
``p2p_trading_v0.raw_env`` is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from prosumer_gym.core.policies import CoPlayer, CoPlayerFactory, co_player_names, resolve_co_players
from prosumer_gym.core.spaces import check_discrete, check_multidiscrete
from prosumer_gym.core.validation import check_bool
from prosumer_gym.envs.p2p_trading.env import raw_env

__all__ = ["P2PTradingGymEnv"]

ENV_NAME = "P2PTrading"  # the co-player registry's key
Policy = Callable[[str, np.ndarray], int]


class _FunctionCoPlayer:
    """A policy function ``f(agent, obs) -> action`` as one agent's (frozen) co-player."""

    def __init__(self, policy: Policy, agent: str) -> None:
        self.policy, self.agent = policy, agent

    def act(self, obs: np.ndarray) -> int:
        return self.policy(self.agent, obs)

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any) -> None:
        """Nothing to learn."""


def _function_co_players(policy: Policy) -> CoPlayerFactory:
    def factory(env: Any, agents: Any, infos: Mapping[str, Any], rng: np.random.Generator) -> dict[str, CoPlayer]:
        return {a: _FunctionCoPlayer(policy, a) for a in agents}

    return factory


class P2PTradingGymEnv(gym.Env):
    """Ego seller (or a centralised controller) in P2PTrading-v0; see the module docstring."""

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        ego: int = 0,
        opponents: str | Policy = "pqr",
        centralized: bool = False,
        render_mode: str | None = None,
        co_players: str | CoPlayerFactory | None = None,
        **env_kwargs: Any,
    ) -> None:
        self.market = raw_env(render_mode=render_mode, **env_kwargs)
        self.render_mode = render_mode
        self.centralized = check_bool("centralized", centralized)
        n = self.market.n_sellers
        if not self.centralized:
            if isinstance(ego, (bool, np.bool_)) or not isinstance(ego, (int, np.integer)) or not 0 <= ego < n:
                raise ValueError(f"ego must be a seller index in [0, {n - 1}], got {ego!r}")
        names = co_player_names(ENV_NAME)
        if not (callable(opponents) or opponents in names):
            raise ValueError(f"opponents must be one of {names} or a callable (agent, obs) -> action, got {opponents!r}")
        if co_players is not None:
            if opponents != "pqr":
                raise ValueError(f"give opponents or co_players, not both (got opponents={opponents!r})")
            self._factory = resolve_co_players(ENV_NAME, co_players, "co_players")
        elif callable(opponents):
            self._factory = _function_co_players(opponents)
        else:
            if opponents == "constant" and self.market.action_mode != "step":
                raise ValueError("opponents='constant' needs action_mode='step'")
            self._factory = resolve_co_players(ENV_NAME, opponents, "opponents")
        self.ego = int(ego)
        self.ego_agent = self.market.possible_agents[self.ego]
        self.opponents = opponents
        self.co_players = co_players
        a_space = self.market.action_space(self.ego_agent)
        o_space = self.market.observation_space(self.ego_agent)
        if self.centralized:
            self.action_space = spaces.MultiDiscrete([a_space.n] * n)
            self.observation_space = spaces.Box(
                low=np.tile(o_space.low, n), high=np.tile(o_space.high, n), dtype=np.float32
            )
        else:
            self.action_space = a_space
            self.observation_space = o_space
        self._co_players: dict[str, CoPlayer] = {}
        self._obs: dict[str, np.ndarray] = {}

    def _make_co_players(self, infos: dict[str, dict]) -> None:
        if self.centralized:
            self._co_players = {}
            return
        others = [a for a in self.market.possible_agents if a != self.ego_agent]
        self._co_players = dict(self._factory(self.market, others, infos, self.np_random))
        missing = [a for a in others if a not in self._co_players]
        if missing:
            raise ValueError(f"the co-player factory returned no co-player for {missing}")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # The market's own stream is derived from ours, so one seed fixes everything.
        market_seed = int(self.np_random.integers(2**63 - 1))
        obs, infos = self.market.reset(seed=market_seed, options=options)
        self._make_co_players(infos)
        self._obs = obs
        if self.centralized:
            return self._joint_obs(obs), {"sellers": infos}
        return obs[self.ego_agent], infos[self.ego_agent]

    def _joint_obs(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([obs[a] for a in self.market.possible_agents]).astype(np.float32)

    def step(self, action: Any):
        if not self.market.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        agents = self.market.possible_agents
        if self.centralized:
            acts = check_multidiscrete(action, self.action_space.nvec, "action")
            actions = {a: int(acts[i]) for i, a in enumerate(agents)}
        else:
            actions = {self.ego_agent: check_discrete(action, self.action_space.n, "action")}
            for a in agents:
                if a != self.ego_agent:
                    actions[a] = int(self._co_players[a].act(self._obs[a]))
        prev = self._obs
        obs, rewards, terms, truncs, infos = self.market.step(actions)
        for a, co in self._co_players.items():
            co.observe(prev[a], actions[a], rewards[a], obs[a])
        self._obs = obs
        done_t = any(truncs.values())
        done_x = any(terms.values())
        if self.centralized:
            reward = float(sum(rewards.values()))
            market = infos[agents[0]]["market"]
            info = {"sellers": {a: {k: v for k, v in infos[a].items() if k != "market"} for a in agents}, "market": market}
            return self._joint_obs(obs), reward, done_x, done_t, info
        return obs[self.ego_agent], rewards[self.ego_agent], done_x, done_t, infos[self.ego_agent]

    def render(self):
        return self.market.render()

    def close(self) -> None:
        self.market.close()
