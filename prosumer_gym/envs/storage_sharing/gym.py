"""Single-agent Gymnasium view of StorageSharing-v0 (``gym.make("StorageSharing-v0")``).

Env card
--------
One Gymnasium step = one slot (the PettingZoo env's price step and share step).

``learner="auctioneer"`` (default): the agent is the auctioneer, the leader; every RU is a
co-player (by default it best-responds to the posted price:
:class:`~prosumer_gym.agents.storage_sharing.BestResponseRU`).
Observation/action: the auctioneer's (``Box`` of ``11 + 4 N`` components; ``Box([0], [1])``
price position in the window, or ``Discrete(price_levels)``). Observations are those of the
slot's price step. Reward: the average cost saving per participating SFC (cents).

``learner="ru"`` (with ``ru=i``): RU ``i`` learns; the auctioneer and the other RUs are
co-players (by default the auctioneer posts the SE price,
:class:`~prosumer_gym.agents.storage_sharing.SEAuctioneer`, which assumes every RU, the
learner included, best-responds, and the other RUs best-respond). Observation: RU ``i``'s
share-step observation (the price is announced); action ``Box([0], [1])``: fraction of
its available storage offered. Reward: its realised utility (cents).

Co-players (``co_players``)
    A registered name (``"se"``, the default: the SE auctioneer and best-responding RUs,
    ``prosumer_gym.agents.storage_sharing:se_co_players``) or a
    :class:`~prosumer_gym.core.policies.CoPlayerFactory`
    ``factory(env, agents, infos, rng) -> {agent: CoPlayer}``, called at every ``reset``
    after the PettingZoo env's reset with that env, the co-player agents (every agent but
    the learner), the reset infos and a generator spawned from the reset seed. The
    auctioneer co-player acts at the price steps, RU co-players at the share steps (the
    no-op actions of the other step are the view's). Once per slot, after the share step,
    each co-player's ``observe(obs, action, reward, next_obs)`` gets the observation it
    acted on, its action, its reward of the slot and its observation after the slot.

Info: the learner's share-step info (with ``"market"``: the slot's SE, every agent's
regret, burden, savings, utilities). Episodes end by truncation after ``n_slots`` slots
(``max_cycles`` must be even here). Every keyword of ``storage_sharing_v0.raw_env`` is
accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from prosumer_gym.core.policies import CoPlayer, CoPlayerFactory, resolve_co_players
from prosumer_gym.envs.storage_sharing.env import AUCTIONEER, raw_env

__all__ = ["StorageSharingGymEnv", "LEARNERS"]

LEARNERS = ("auctioneer", "ru")


class StorageSharingGymEnv(gym.Env):
    """The auctioneer (or one RU) against co-players; see the module docstring."""

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 2}

    def __init__(self, learner: str = "auctioneer", ru: int = 0, co_players: str | CoPlayerFactory = "se",
                 render_mode: str | None = None, **env_kwargs: Any) -> None:
        if learner not in LEARNERS:
            raise ValueError(f"learner must be one of {LEARNERS}, got {learner!r}")
        self.market = raw_env(render_mode=render_mode, **env_kwargs)
        if self.market.max_cycles % 2:
            raise ValueError(f"max_cycles must be even in the Gymnasium view (2 env steps per slot), "
                             f"got {self.market.max_cycles}")
        n = self.market.n_rus
        if learner == "ru" and (isinstance(ru, (bool, np.bool_)) or not isinstance(ru, (int, np.integer))
                                or not 0 <= ru < n):
            raise ValueError(f"ru must be an RU index in [0, {n - 1}], got {ru!r}")
        self.learner = learner
        self.render_mode = render_mode
        self.ego = AUCTIONEER if learner == "auctioneer" else f"ru_{int(ru)}"
        self.action_space = self.market.action_space(self.ego)
        self.observation_space = self.market.observation_space(self.ego)
        self._factory = resolve_co_players("StorageSharing", co_players, "co_players")
        self.co_agents = tuple(a for a in self.market.possible_agents if a != self.ego)
        self._rus = tuple(self.market.possible_agents[1:])
        self._co: Mapping[str, CoPlayer] = {}
        auct_space = self.market.action_space(AUCTIONEER)
        self._auct_noop = 0 if isinstance(auct_space, spaces.Discrete) else np.zeros(1, dtype=np.float32)
        self._ru_noop = np.zeros(1, dtype=np.float32)
        self._obs: dict[str, np.ndarray] = {}
        self._price_obs: np.ndarray | None = None  # the auctioneer co-player's price-step observation
        self._price_action: Any = None

    def _price_step(self, auct_action: Any):
        actions = {AUCTIONEER: auct_action}
        actions.update({a: self._ru_noop for a in self._rus})
        return self.market.step(actions)

    def _co_price_step(self, obs: dict[str, np.ndarray]):
        """The auctioneer co-player posts the price of the slot (``learner="ru"``)."""
        self._price_obs = obs[AUCTIONEER]
        self._price_action = self._co[AUCTIONEER].act(self._price_obs)
        return self._price_step(self._price_action)

    def _share_step(self, actions: dict[str, Any]):
        """The share step; then every co-player observes its transition of the slot."""
        prev = self._obs
        obs, rewards, terms, truncs, infos = self.market.step(actions)
        for a, player in self._co.items():
            if a == AUCTIONEER:
                player.observe(self._price_obs, self._price_action, rewards[a], obs[a])
            else:
                player.observe(prev[a], actions[a], rewards[a], obs[a])
        return obs, rewards, terms, truncs, infos

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # the market's own stream is derived from ours, so one seed fixes everything
        market_seed = int(self.np_random.integers(2**63 - 1))
        obs, infos = self.market.reset(seed=market_seed, options=options)
        co = self._factory(self.market, self.co_agents, infos, self.np_random.spawn(1)[0])
        missing = [a for a in self.co_agents if a not in co]
        if missing:
            raise ValueError(f"the co_players factory returned no co-player for {missing}")
        self._co = co
        if self.learner == "ru":
            obs, _, _, _, infos = self._co_price_step(obs)
        self._obs = obs
        return obs[self.ego], infos[self.ego]

    def step(self, action: Any):
        if not self.market.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        co = self._co
        if self.learner == "auctioneer":
            obs, _, _, _, _ = self._price_step(action)
            self._obs = obs
            actions = {AUCTIONEER: self._auct_noop}
            actions.update({a: co[a].act(obs[a]) for a in self._rus})
            obs, rewards, terms, truncs, infos = self._share_step(actions)
            self._obs = obs
            return obs[AUCTIONEER], rewards[AUCTIONEER], terms[AUCTIONEER], truncs[AUCTIONEER], infos[AUCTIONEER]
        actions = {AUCTIONEER: self._auct_noop}
        for a in self._rus:
            actions[a] = action if a == self.ego else co[a].act(self._obs[a])
        obs, rewards, terms, truncs, infos = self._share_step(actions)
        reward, info, done = rewards[self.ego], infos[self.ego], truncs[self.ego]
        if not done:
            obs, _, _, truncs, _ = self._co_price_step(obs)
            done = truncs[self.ego]
        self._obs = obs
        return obs[self.ego], reward, terms[self.ego], done, info

    def render(self):
        return self.market.render()

    def close(self) -> None:
        self.market.close()
