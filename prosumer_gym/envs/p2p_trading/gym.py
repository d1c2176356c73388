"""Single-agent Gymnasium view of P2PTrading-v0 (``gym.make("P2PTrading-v0")``).

Env card
--------
Default (``centralized=False``): one ego seller (``ego``, default ``seller_0``) learns;
the other sellers follow ``opponents``: ``"pqr"`` (default: PQR agents, Alg. 5, that keep
learning online during the episode, each with its own PT parameters), ``"constant"``
(hold the initial price), ``"random"``, or a callable ``f(agent, obs) -> action``.
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

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from prosumer_gym.agents.pqr import PQRAgent
from prosumer_gym.baselines.price_policies import ConstantPriceSeller, RandomPriceSeller
from prosumer_gym.core.seeding import spawn
from prosumer_gym.core.spaces import check_discrete, check_multidiscrete
from prosumer_gym.envs.p2p_trading.env import raw_env

__all__ = ["P2PTradingGymEnv"]

OPPONENTS = ("pqr", "constant", "random")


class P2PTradingGymEnv(gym.Env):
    """Ego seller (or a centralised controller) in P2PTrading-v0; see the module docstring."""

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        ego: int = 0,
        opponents: str | Callable[[str, np.ndarray], int] = "pqr",
        centralized: bool = False,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        self.market = raw_env(render_mode=render_mode, **env_kwargs)
        self.render_mode = render_mode
        self.centralized = bool(centralized)
        n = self.market.n_sellers
        if not self.centralized:
            if isinstance(ego, (bool, np.bool_)) or not isinstance(ego, (int, np.integer)) or not 0 <= ego < n:
                raise ValueError(f"ego must be a seller index in [0, {n - 1}], got {ego!r}")
        if not (callable(opponents) or opponents in OPPONENTS):
            raise ValueError(f"opponents must be one of {OPPONENTS} or a callable (agent, obs) -> action, got {opponents!r}")
        if opponents == "constant" and self.market.action_mode != "step":
            raise ValueError("opponents='constant' needs action_mode='step'")
        self.ego = int(ego)
        self.ego_agent = self.market.possible_agents[self.ego]
        self.opponents = opponents
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
        self._policies: dict[str, Any] = {}
        self._obs: dict[str, np.ndarray] = {}

    def _make_opponents(self, infos: dict[str, dict]) -> None:
        others = [a for a in self.market.possible_agents if self.centralized is False and a != self.ego_agent]
        rngs = spawn(self.np_random, len(others))
        n_actions = self.market.action_space(self.ego_agent).n
        self._policies = {}
        for a, rng in zip(others, rngs):
            if self.opponents == "pqr":
                pt = infos[a]["pt_params"]
                self._policies[a] = PQRAgent(len(self.market.price_grid), n_actions, seed=rng, **pt)
            elif self.opponents == "constant":
                self._policies[a] = ConstantPriceSeller(self.market.price_steps)
            elif self.opponents == "random":
                self._policies[a] = RandomPriceSeller(n_actions, seed=rng)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # The market's own stream is derived from ours, so one seed fixes everything.
        market_seed = int(self.np_random.integers(2**63 - 1))
        obs, infos = self.market.reset(seed=market_seed, options=options)
        self._make_opponents(infos)
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
                if a == self.ego_agent:
                    continue
                pol = self._policies.get(a)
                actions[a] = int(self.opponents(a, self._obs[a]) if pol is None else pol.act(self._obs[a]))
        prev = self._obs
        obs, rewards, terms, truncs, infos = self.market.step(actions)
        for a, pol in self._policies.items():
            if isinstance(pol, PQRAgent):
                pol.update(prev[a], actions[a], rewards[a], obs[a])
                pol.end_day()
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
