"""Leaderboard track of P2PTrading-v0 (dissertation 001, ch. 5).

Scenarios: 5 sellers x 10 buyers for a full year (365 days) of the *held-out* households
(``split="test"``), one scenario per seed (households, PV systems, buyers' reference prices
and PT parameters, losses, initial prices all drawn from the seed). Submissions price the
sellers; the market clears with the env's default mechanism.

Metrics (per day, averaged over the year): buyers' prospect-theory value (Eq. 5.2's
objective, weight 0.5) and sellers' revenue ($, weight 0.5); traded energy is shown with
weight 0. Baseline (score 0): the paper's Rule method with static prices. Top (score 100):
the best, on each metric, of the paper's methods (PQR, ProDQN, Zhu). PQR and ProDQN learn
online during the year from scratch, the paper's protocol (Table 5.1 is the learning year).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prosumer_gym.eval.leaderboard.core import (EpisodeLog, JointPolicy, Metric, PerAgentPolicy, Reference, Track,
                                                shared_info)

ENV_KWARGS: dict[str, Any] = dict(n_sellers=5, n_buyers=10, n_days=365, split="test")




def summarise(log: EpisodeLog) -> dict[str, float]:
    days = [shared_info(i) for i in log.infos]
    return {
        "buyers_pt_value": float(np.mean([d["buyers_pt_value"] for d in days])),
        "sellers_revenue_usd": float(np.mean([d["sellers_revenue_usd"] for d in days])),
        "traded_kwh": float(np.mean([d["traded_kwh"] for d in days])),
    }


def curve(rewards: dict, infos: dict) -> float:
    return float(shared_info(infos)["buyers_pt_value"])


def _constant() -> JointPolicy:
    from prosumer_gym.baselines.price_policies import ConstantPriceSeller

    def make(env, agent, info, rng):
        return ConstantPriceSeller(list(np.asarray(env.price_steps).tolist()))

    return PerAgentPolicy(make, name="constant")


def _random() -> JointPolicy:
    from prosumer_gym.baselines.price_policies import RandomPriceSeller

    def make(env, agent, info, rng):
        return RandomPriceSeller(int(env.action_space(agent).n), seed=rng)

    return PerAgentPolicy(make, name="random")


def _learner(kind: str) -> JointPolicy:
    from prosumer_gym.agents import make_seller_agent
    from prosumer_gym.eval.main_job import _agent_kwargs

    kw = _agent_kwargs(kind, {})

    def make(env, agent, info, rng):
        k = dict(kw)
        n_prices = k.pop("n_prices", None) or (len(env.price_grid) if kind == "pqr" else None)
        return make_seller_agent(kind, env.observation_space(agent), env.action_space(agent), info,
                                 n_prices=n_prices, seed=rng, **k)

    return PerAgentPolicy(make, learn=True, explore=True, name=kind)


REFERENCES = (
    Reference("rule", "baseline", "Rule (Section 5.3.2): rule-based matching at mid-market prices, static seller prices",
              _constant, {"mechanism": "rule"}),
    Reference("zhu", "baseline", "Zhu et al.: Zhu's clearing with static seller prices", _constant, {"mechanism": "zhu"}),
    Reference("constant", "baseline", "sellers hold their reference prices (default clearing)", _constant),
    Reference("random", "baseline", "sellers move their prices uniformly at random (default clearing)", _random),
    Reference("pqr", "agent", "PQR (Alg. 5): tabular PT Q-learning per seller, learning online", lambda: _learner("pqr")),
    Reference("prodqn", "agent", "ProDQN (Alg. 6): PT DQN per seller, learning online", lambda: _learner("prodqn")),
)

TRACK = Track(
    env_id="P2PTrading-v0",
    version=2,  # v2: 30 held-out seeds (v1: 5), so entries are separated
    description="Sellers learn prices; prospect-theory buyers; 5 sellers x 10 buyers, one held-out year per seed.",
    env_kwargs=ENV_KWARGS,
    n_seeds=30,
    metrics=(
        Metric("buyers_pt_value", "Buyers' PT value", "/day", True, 0.5,
               "Objective of Eq. 5.2 (buyers' prospect-theory value of the day's purchases), mean per day"),
        Metric("sellers_revenue_usd", "Sellers' revenue", "$/day", True, 0.5, "Sum of sellers' revenue, mean per day"),
        Metric("traded_kwh", "P2P traded energy", "kWh/day", True, 0.0, "Energy traded peer to peer, mean per day"),
    ),
    references=REFERENCES,
    baseline="rule",
    top=("pqr", "prodqn", "zhu"),
    summarise=summarise,
    curve=curve,
    curve_label="buyers' PT value of the day",
    co_players="constant",
    roles={"seller": "seller_"},
    held_out="split='test' households (homes 3, 6, 10, 13, 14, augmented), seeds 1000000+k",
)
