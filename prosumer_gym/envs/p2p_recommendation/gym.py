"""Single-agent Gymnasium view of P2PRecommendation-v0 (``gym.make("P2PRecommendation-v0")``).

Env card
--------
The learner is the platform. Consumers follow the Bernoulli preference model (their
default policy in the PettingZoo view). Observation: the platform's ``Dict`` observation
(``capacity_kwh``, ``demand_kwh``, ``loss``, ``last_recommendation``, ``last_accepted``,
``day_of_year``); action: ``Box(0, 1, (P, C))`` recommendation fractions, projected onto
the feasible set of Eq. 4.1 by the documented rule (``info["projection"]``); reward:
energy exchanged today (kWh). ``info``: the platform's info (satisfied demand, losses,
violations of the submitted action; the oracle KPIs ``efficiency``, ``regret_kwh`` and
``oracle_kwh`` only with ``oracle=True``). ``env.unwrapped.oracle_kpis()`` computes the
oracle KPIs of the days played so far lazily, equal to what ``oracle=True`` reports.
Every keyword of ``p2p_recommendation_v0.raw_env`` except ``consumer_agents`` is accepted.
``env.unwrapped.market`` is the PettingZoo env (``.preference`` for perfect-knowledge
baselines, ``.instance()`` for today's Eq. 4.1 instance).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from prosumer_gym.envs.p2p_recommendation.env import PLATFORM, raw_env

__all__ = ["P2PRecommendationGymEnv"]


class P2PRecommendationGymEnv(gym.Env):
    """The platform of P2PRecommendation-v0 as a Gymnasium env; see the module docstring."""

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **env_kwargs: Any) -> None:
        if "consumer_agents" in env_kwargs:
            raise ValueError("consumer_agents is fixed to False in the Gymnasium view (consumers follow the preference model)")
        self.market = raw_env(render_mode=render_mode, consumer_agents=False, **env_kwargs)
        self.render_mode = render_mode
        self.observation_space = self.market.observation_space(PLATFORM)
        self.action_space = self.market.action_space(PLATFORM)

    @property
    def preference(self) -> np.ndarray:
        return self.market.preference

    def instance(self):
        return self.market.instance()

    def oracle_kpis(self) -> list[dict[str, Any]]:
        """The oracle KPIs of the days played since ``reset()`` (see ``raw_env.oracle_kpis``)."""
        return self.market.oracle_kpis()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        market_seed = int(self.np_random.integers(2**63 - 1))
        obs, infos = self.market.reset(seed=market_seed, options=options)
        return obs[PLATFORM], infos[PLATFORM]

    def step(self, action: Any):
        if not self.market.agents:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        obs, rew, terms, truncs, infos = self.market.step({PLATFORM: action})
        return obs[PLATFORM], rew[PLATFORM], terms[PLATFORM], truncs[PLATFORM], infos[PLATFORM]

    def render(self):
        return self.market.render()

    def close(self) -> None:
        self.market.close()
