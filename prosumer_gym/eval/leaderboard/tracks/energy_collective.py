"""Leaderboard track of EnergyCollective-v0 (slides 002: energy collectives, problem (1)-(5), ADMM).

Scenarios: a community of 63 players in the slides' proportions at 1/5 scale (20 PV
prosumers, 20 flexible and 20 inflexible households, 2 mini-CHPs, 1 peak unit), the
community market (ADMM clearing, allocation ``"none"``, market-driven ``g``), one day of
24 hourly slots. Held out: the households come from the data's ``split="test"`` homes
(CityLearn homes 3, 6, 10, 13, 14, augmented copies) and each reset seed
(``HELD_OUT_SEED_BASE + k``) draws the households, PV orientations, consumers' values,
generator costs and the day of the year (Dutch 2019 day-ahead prices of that day).
Submissions set each player's net injection after seeing the community price.

Metrics (per day): the community cost ``sum_i f_i(p_i) + g(q)`` (problem (1), EUR, weight
0.6, lower is better) and its saving vs Business As Usual (every player alone with the
grid, in % of the BAU cost, weight 0.4; relative, so cheap and expensive days weigh
alike); grid import and the deviation from the cleared dispatch are shown with weight 0.
Baseline (score 0): BAU set-points (each player's best response to the retail
import/export prices, what it would do alone: ``bau_dispatch``) played inside the
community, so its saving vs BAU is the netting of imports and exports only. Top (score
100): the ADMM best response ``clip(r + (lambda - m)/a, p_min, p_max)`` to the cleared
price, which reproduces the mechanism's dispatch, the community optimum (up to the ADMM
tolerance). Also shown: the reference set-points ``p_ref`` (no flexibility used,
generators off; ~ BAU here) and uniform random actions (~ BAU on cost: its random CHP
output saves import cost, the community mostly imports, but its random consumption
costs flexibility).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from prosumer_gym.eval.leaderboard.core import EpisodeLog, JointPolicy, Metric, Reference, Track, shared_info

ENV_KWARGS: dict[str, Any] = dict(n_prosumers=20, n_flexible=20, n_inflexible=20, n_chp=2, n_peak=1,
                                  n_steps=24, split="test")
N_SEEDS = 30
_RANDOM_STREAM = 0xEC01




def summarise(log: EpisodeLog) -> dict[str, float]:
    """Day totals from the shared ``market`` infos (per day if the episode spans several)."""
    slots = [shared_info(i) for i in log.infos]
    days = len(slots) * log.env.slot_minutes / (24 * 60)
    cost = sum(m["community_cost_eur"] for m in slots)
    bau = sum(m["bau_cost_eur"] for m in slots)
    players = list(log.infos[0])
    dev = sum(abs(i[a]["p_kwh"] - i[a]["planned_kwh"]) for i in log.infos for a in players)
    return {
        "community_cost_eur": float(cost / days),
        "saving_vs_bau_pct": float(100.0 * (bau - cost) / abs(bau)),
        "grid_import_kwh": float(sum(m["q_import_kwh"] for m in slots) / days),
        "dispatch_deviation_kwh": float(dev / days),
    }


def curve(rewards: Mapping[str, float], infos: Mapping[str, Any]) -> float:
    return float(shared_info(infos)["community_cost_eur"])


class _Vectorised(JointPolicy):
    """Every player from its own observation row: ``rule(obs_matrix) -> actions (n, 1)``."""

    def __init__(self, build: Callable[[int], Callable[[np.ndarray], np.ndarray]], name: str) -> None:
        self._build = build
        self.name = name
        self._rule: Callable[[np.ndarray], np.ndarray] | None = None

    def reset(self, env, observations, infos, seed) -> None:
        self._rule = self._build(int(seed))

    def act(self, observations, infos) -> dict[str, Any]:
        names = list(observations)
        acts = self._rule(np.stack([observations[a] for a in names]).astype(np.float64))
        return {a: acts[i] for i, a in enumerate(names)}


def _stateless(rule: Callable[[np.ndarray], np.ndarray], name: str) -> JointPolicy:
    return _Vectorised(lambda seed: rule, name)


def _columns(obs: np.ndarray) -> dict[str, np.ndarray]:
    from prosumer_gym.envs.energy_collective_v0 import OBS_NAMES

    return {n: obs[:, k] for k, n in enumerate(OBS_NAMES)}


def _to_action(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Set-points (kWh) -> positions in [p_min, p_max] (0.5 for players without a decision)."""
    span = hi - lo
    a = np.where(span > 0, (np.clip(p, lo, hi) - lo) / np.where(span > 0, span, 1.0), 0.5)
    return np.clip(a, 0.0, 1.0).astype(np.float32)[:, None]


def _response(c: dict[str, np.ndarray], price: np.ndarray) -> np.ndarray:
    """Unbounded best response to ``price`` of ``f(p) = a/2 (p - r)^2 + m (p - r)`` (a = 0: to a bound)."""
    r, m, a = c["p_ref"], c["marginal_cost"], c["curvature"]
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = r + (price - m) / a
    return np.where(a > 0, interior, np.where(price > m, np.inf, np.where(price < m, -np.inf, r)))


def _admm() -> JointPolicy:
    """The slides' ADMM best response to the community price (the reference agent)."""
    from prosumer_gym.agents.energy_collective import ADMMBestResponse

    return _stateless(ADMMBestResponse().act, "admm")


def _bau(obs: np.ndarray) -> np.ndarray:
    """BAU (``energy_collective_market.bau_dispatch``): sell at the export price if that is a net
    injection, else buy at the import price if that is a net withdrawal, else 0; clipped."""
    c = _columns(obs)
    p_sell = _response(c, c["export_price"])
    p_buy = _response(c, c["import_price"])
    p = np.where(p_sell > 0, p_sell, np.where(p_buy < 0, p_buy, 0.0))
    return _to_action(p, c["p_min"], c["p_max"])


def _p_ref(obs: np.ndarray) -> np.ndarray:
    c = _columns(obs)
    return _to_action(c["p_ref"], c["p_min"], c["p_max"])


def _random(seed: int) -> Callable[[np.ndarray], np.ndarray]:
    rng = np.random.default_rng([seed, _RANDOM_STREAM])
    return lambda obs: rng.uniform(0.0, 1.0, (obs.shape[0], 1)).astype(np.float32)


REFERENCES = (
    Reference("admm", "oracle", "ADMM best response clip(r + (lambda - m)/a, p_min, p_max) to the cleared community "
              "price: the mechanism's dispatch, the optimum of problem (1)-(5)", _admm),
    Reference("bau", "baseline", "Business As Usual set-points (each player's best response to the retail import/"
              "export prices, as alone with the grid), settled in the community", lambda: _stateless(_bau, "bau")),
    Reference("p_ref", "baseline", "every player at its reference set-point p_ref (f = 0: nominal load and PV, "
              "generators off)", lambda: _stateless(_p_ref, "p_ref")),
    Reference("random", "baseline", "every player uniformly at random in its feasible band",
              lambda: _Vectorised(_random, "random")),
)

TRACK = Track(
    env_id="EnergyCollective-v0",
    version=1,
    description="Community market (ADMM price): 60 households + 3 generators of held-out homes, one day per seed.",
    env_kwargs=ENV_KWARGS,
    n_seeds=N_SEEDS,
    metrics=(
        Metric("community_cost_eur", "Community cost", "EUR/day", False, 0.6,
               "sum over the slots of sum_i f_i(p_i) + g(q), q = -sum_i p_i (problem (1)-(2), g market-driven: "
               "import price x import - export price x export)"),
        Metric("saving_vs_bau_pct", "Saving vs BAU", "%", True, 0.4,
               "100 (BAU cost - community cost) / BAU cost over the day; BAU = every player alone with the grid "
               "(bau_dispatch: its cost f_i + lambda_imp p^- - lambda_exp p^+)"),
        Metric("grid_import_kwh", "Grid import", "kWh/day", False, 0.0, "Community's net import q^+, summed"),
        Metric("dispatch_deviation_kwh", "Deviation from the dispatch", "kWh/day", False, 0.0,
               "sum over slots and players of |p_i - p_i^ADMM| (the cleared set-points)"),
    ),
    references=REFERENCES,
    baseline="bau",
    top=("admm",),
    summarise=summarise,
    curve=curve,
    curve_label="community cost of the slot (EUR)",
    co_players="admm",
    roles={"prosumer": "prosumer_", "flexible": "flexible_", "inflexible": "inflexible_", "chp": "chp_",
           "peak": "peak_"},
    held_out="split='test' households (homes 3, 6, 10, 13, 14, augmented), seeds 1000000+k (households, "
             "generators and the day of 2019)",
)
