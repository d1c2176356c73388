"""A PPO policy that shares one small scorer across the pairs of P2PRecommendation-v1.

The platform's action is one score per (producer, consumer) pair (``Box(0, 1, (P, C))``).
An MLP over the flattened observation has to learn 160 output units from one reward per
day; this policy instead applies the **same** network to every pair, fed with that pair's
features (parameter sharing over pairs, as a 1x1 convolution over the pair grid):

    pair (i, j) -> [accept_rate, recommended_per_day, loss, last_recommendation,
                    last_accepted, capacity_i, demand_j, day_of_year] -> MLP -> mean score

The value function pools a shared per-pair embedding (mean over pairs). The Gaussian's
log-std is SB3's (one per action entry). Everything else is SB3 PPO, unchanged: the
algorithm stays vanilla, only the network's weight sharing differs. Observations must be
the v1 ``Dict`` (``flatten_obs: false``; SB3's ``VecNormalize`` normalises each key).

Selected in a YAML section by ``policy: PairScorerPolicy`` (see ``POLICIES``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

__all__ = ["PairFeatures", "PairScorerPolicy", "POLICIES", "PAIR_KEYS", "SCORE_OFFSET"]

#: per-pair (P, C) observation entries, then the producer, consumer and global ones
PAIR_KEYS = ("accept_rate", "recommended_per_day", "loss", "last_recommendation", "last_accepted")
#: the scorer's output is centred in the action Box [0, 1]
SCORE_OFFSET = 0.5


class PairFeatures(BaseFeaturesExtractor):
    """``(B, P*C*F)`` per-pair features from P2PRecommendation-v1's ``Dict`` observation."""

    def __init__(self, observation_space: gym.spaces.Dict) -> None:
        missing = [k for k in (*PAIR_KEYS, "capacity_kwh", "demand_kwh", "day_of_year")
                   if k not in observation_space.spaces]
        if missing:
            raise ValueError(f"PairScorerPolicy needs P2PRecommendation-v1's Dict observation; missing {missing}")
        self.P, self.C = observation_space["loss"].shape
        self.F = len(PAIR_KEYS) + 3
        super().__init__(observation_space, features_dim=self.P * self.C * self.F)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        B, P, C = obs["loss"].shape[0], self.P, self.C
        pair = [obs[k].reshape(B, P, C) for k in PAIR_KEYS]
        pair.append(obs["capacity_kwh"].reshape(B, P, 1).expand(B, P, C))
        pair.append(obs["demand_kwh"].reshape(B, 1, C).expand(B, P, C))
        pair.append(obs["day_of_year"].reshape(B, 1, 1).expand(B, P, C))
        return torch.stack(pair, dim=-1).reshape(B, P * C * self.F)


class _PairNets(nn.Module):
    """Shared per-pair scorer (actor) and mean-pooled per-pair embedding (critic)."""

    def __init__(self, n_pairs: int, n_features: int, hidden: int) -> None:
        super().__init__()
        self.n_pairs, self.n_features = n_pairs, n_features
        self.latent_dim_pi, self.latent_dim_vf = n_pairs, hidden
        self.scorer = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                    nn.Linear(hidden, 1))
        self.embed = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())

    def _pairs(self, features: torch.Tensor) -> torch.Tensor:
        return features.reshape(features.shape[0], self.n_pairs, self.n_features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        return self.scorer(self._pairs(features)).squeeze(-1) + SCORE_OFFSET  # scores centred in the Box

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.embed(self._pairs(features)).mean(dim=1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)


class PairScorerPolicy(ActorCriticPolicy):
    """SB3 ``ActorCriticPolicy`` whose action means come from one scorer shared by all pairs
    (see the module docstring). ``policy_kwargs``: ``hidden`` (default 64)."""

    def __init__(self, observation_space: gym.spaces.Dict, action_space: gym.spaces.Box, lr_schedule: Any,
                 hidden: int = 64, **kwargs: Any) -> None:
        self._hidden = int(hidden)
        kwargs.setdefault("features_extractor_class", PairFeatures)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        fe = self.features_extractor
        self.mlp_extractor = _PairNets(fe.P * fe.C, fe.F, self._hidden)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        # the scorer's output is the mean itself: no dense layer mixing the pairs' scores
        self.action_net = nn.Identity()
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)


#: policy names a hyperparameter YAML may give (besides SB3's own aliases)
POLICIES: dict[str, type] = {"PairScorerPolicy": PairScorerPolicy}
