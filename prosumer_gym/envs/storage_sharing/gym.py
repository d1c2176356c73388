"""Single-agent Gymnasium view of StorageSharing-v0 (``gym.make("StorageSharing-v0")``).

Env card
--------
One Gymnasium step = one slot (the PettingZoo env's price step and share step).

``learner="auctioneer"`` (default): the agent is the auctioneer, the leader; every RU
best-responds to the posted price (:class:`~prosumer_gym.agents.storage_sharing.BestResponseRU`).
Observation/action: the auctioneer's (``Box`` of ``11 + 4 N`` components; ``Box([0], [1])``
price position in the window, or ``Discrete(price_levels)``). Observations are those of the
slot's price step. Reward: the average cost saving per participating SFC (cents).

``learner="ru"`` (with ``ru=i``): RU ``i`` learns; the auctioneer posts the SE price
(:class:`~prosumer_gym.agents.storage_sharing.SEAuctioneer`, which assumes every RU, the
learner included, best-responds) and the other RUs best-respond. Observation: RU ``i``'s
share-step observation (the price is announced); action ``Box([0], [1])``: fraction of
its available storage offered. Reward: its realised utility (cents).

Info: the learner's share-step info (with ``"market"``: the slot's SE, every agent's
regret, burden, savings, utilities). Episodes end by truncation after ``n_slots`` slots
(``max_cycles`` must be even here). Every keyword of ``storage_sharing_v0.raw_env`` is
accepted.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from prosumer_gym.agents.storage_sharing import BestResponseRU, SEAuctioneer
from prosumer_gym.envs.storage_sharing.env import AUCTIONEER, raw_env

__all__ = ["StorageSharingGymEnv", "LEARNERS"]

LEARNERS = ("auctioneer", "ru")


class StorageSharingGymEnv(gym.Env):
    """The auctioneer (or one RU) against reference opponents; see the module docstring."""

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 2}

    def __init__(self, learner: str = "auctioneer", ru: int = 0, render_mode: str | None = None,
                 **env_kwargs: Any) -> None:
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
        self._auctioneer = SEAuctioneer.from_env(self.market)
        self._ru_policy = BestResponseRU.from_env(self.market)
        self._ru_noop = np.zeros(1, dtype=np.float32)
        self._obs: dict[str, np.ndarray] = {}

    def _price_step(self, auct_action: Any):
        actions = {AUCTIONEER: auct_action}
        actions.update({a: self._ru_noop for a in self.market.possible_agents[1:]})
        return self.market.step(actions)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # the market's own stream is derived from ours, so one seed fixes everything
        market_seed = int(self.np_random.integers(2**63 - 1))
        obs, infos = self.market.reset(seed=market_seed, options=options)
        if self.learner == "ru":
            obs, _, _, _, infos = self._price_step(self._auctioneer.act(obs[AUCTIONEER]))
        self._obs = obs
        return obs[self.ego], infos[self.ego]

    def step(self, action: Any):
        if not self.market.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        if self.learner == "auctioneer":
            obs, _, _, _, _ = self._price_step(action)
            actions = {AUCTIONEER: self._auctioneer.noop()}
            actions.update({a: self._ru_policy.act(obs[a]) for a in self.market.possible_agents[1:]})
            obs, rewards, terms, truncs, infos = self.market.step(actions)
            self._obs = obs
            return obs[AUCTIONEER], rewards[AUCTIONEER], terms[AUCTIONEER], truncs[AUCTIONEER], infos[AUCTIONEER]
        actions = {AUCTIONEER: self._auctioneer.noop()}
        for a in self.market.possible_agents[1:]:
            actions[a] = action if a == self.ego else self._ru_policy.act(self._obs[a])
        obs, rewards, terms, truncs, infos = self.market.step(actions)
        reward, info, done = rewards[self.ego], infos[self.ego], truncs[self.ego]
        if not done:
            obs, _, _, truncs, _ = self._price_step(self._auctioneer.act(obs[AUCTIONEER]))
            done = truncs[self.ego]
        self._obs = obs
        return obs[self.ego], reward, terms[self.ego], done, info

    def render(self):
        return self.market.render()

    def close(self) -> None:
        self.market.close()
