"""Leaderboard track of StorageSharing-v0 (paper 003, Tushar et al. 2016, Sections III-V).

Scenarios: the default time-varying market (8 RUs, 5 SFCs, 24 hourly slots = 48 steps), one
market per seed. The market is *synthetic* (no household data, so no ``split``): the
held-out part is the reset seeds (``HELD_OUT_SEED_BASE + k``), which draw the RUs'
reservation prices, reluctances and shareable storage, the SFCs' bids and every slot's
storage requirements. Submissions play both roles (auctioneer = the Stackelberg leader,
``ru_i`` = the followers) or one role with the SE reference filling the other.

Metrics (per episode = one day of 24 slots, summed over the slots): exploitability against
the slot's Stackelberg equilibrium (the env's regrets, weight 0.5, lower is better), the
SFCs' cost saving (the auctioneer's reward, weight 0.25) and the RUs' total utility
(weight 0.25); the two regrets and the traded storage are shown with weight 0.
Baseline (score 0): equal distribution (Sec. V, ED) with the auctioneer at the window
midpoint. Top (score 100): the paper's SE auctioneer with best-responding RUs (Theorem 1,
Algorithm 1; regret ~ 0 by construction). Also shown: ED at the SE price (the paper's
Table 2 comparison; its RUs end the day with *more* utility than at the SE, because
storage shared in slot t is unavailable in t+1 (``lease_slots=1``) and the per-slot SE
ignores that; in the static market or with ``lease_slots=0`` the SE RUs earn more) and uniform random play. All references are frozen (no learning). Note for one-role
submissions: with the SE co-player filling the other role, that role's regret is ~0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from prosumer_gym.eval.leaderboard.core import EpisodeLog, JointPolicy, Metric, Reference, Track

AUCTIONEER = "auctioneer"
ENV_KWARGS: dict[str, Any] = dict(n_rus=8, n_sfcs=5, n_slots=24)
N_SEEDS = 50
_RANDOM_STREAM = 0x5707  # second word of the random policy's generator seed
Act = Callable[[np.ndarray], Any]  # one agent's observation -> its action


def _share_markets(log: EpisodeLog) -> list[dict[str, Any]]:
    """The shared ``market`` info of every share step (one per slot)."""
    out = []
    for infos in log.infos:
        m = infos.get(AUCTIONEER, {}).get("market")
        if m is not None and m.get("phase") == "share":
            out.append(m)
    return out


def summarise(log: EpisodeLog) -> dict[str, float]:
    """Metrics of one day: sums over the 24 slots of the env's share-step infos/rewards."""
    markets = _share_markets(log)
    ru_regret = sum(sum(v for a, v in m["regret"].items() if a != AUCTIONEER) for m in markets)
    auct_regret = sum(m["regret"][AUCTIONEER] for m in markets)
    return {
        "exploitability_cents": float(sum(m["exploitability"] for m in markets)),
        "sfc_saving_cents": float(sum(r.get(AUCTIONEER, 0.0) for r in log.rewards)),
        "ru_utility_cents": float(sum(v for r in log.rewards for a, v in r.items() if a != AUCTIONEER)),
        "auctioneer_regret_cents": float(auct_regret),
        "ru_regret_cents": float(ru_regret),
        "traded_kwh": float(sum(m["traded_kwh"] for m in markets)),
    }


def curve(rewards: Mapping[str, float], infos: Mapping[str, Any]) -> float:
    """Exploitability of the slot just cleared (cents; NaN at price steps, where nothing
    clears: the plot skips them)."""
    m = infos.get(AUCTIONEER, {}).get("market")
    if m is None or m.get("phase") != "share":
        return float("nan")
    return float(m.get("exploitability", 0.0))  # a closed slot: nobody can gain, 0


class _RolePolicy(JointPolicy):
    """Auctioneer and RUs each driven by an ``obs -> action`` callable built at reset."""

    def __init__(self, build: Callable[[Any, int], tuple[Act, Act]], name: str) -> None:
        self._build = build
        self.name = name
        self._auct: Act | None = None
        self._ru: Act | None = None

    def reset(self, env, observations, infos, seed) -> None:
        self._auct, self._ru = self._build(env, int(seed))

    def act(self, observations, infos) -> dict[str, Any]:
        return {a: (self._auct(o) if a == AUCTIONEER else self._ru(o)) for a, o in observations.items()}


def _se() -> JointPolicy:
    """The paper's reference: SE price (Theorem 1) and the followers' best response."""
    from prosumer_gym.agents.storage_sharing import BestResponseRU, SEAuctioneer

    def build(env: Any, seed: int) -> tuple[Act, Act]:
        return SEAuctioneer.from_env(env).act, BestResponseRU.from_env(env).act

    return _RolePolicy(build, "se")


def _midpoint_price(obs: np.ndarray) -> np.ndarray:
    """The auctioneer posts the middle of the price window (a no-op at share steps)."""
    return np.array([0.5], dtype=np.float32)


def _equal_distribution() -> JointPolicy:
    """ED (Sec. V): RUs offer ``min(Q/K, x_i*(p))``; the auctioneer posts the window midpoint."""
    from prosumer_gym.baselines.storage_sharing import EqualDistributionRU

    def build(env: Any, seed: int) -> tuple[Act, Act]:
        return _midpoint_price, EqualDistributionRU.from_env(env).act

    return _RolePolicy(build, "equal_distribution")


def _ed_at_se_price() -> JointPolicy:
    """The paper's Table 2 comparison: ED offers at the SE price (only the allocation differs)."""
    from prosumer_gym.agents.storage_sharing import SEAuctioneer
    from prosumer_gym.baselines.storage_sharing import EqualDistributionRU

    def build(env: Any, seed: int) -> tuple[Act, Act]:
        return SEAuctioneer.from_env(env).act, EqualDistributionRU.from_env(env).act

    return _RolePolicy(build, "ed_se_price")


def _random() -> JointPolicy:
    """Every agent draws its action uniformly in [0, 1] at every step."""

    def build(env: Any, seed: int) -> tuple[Act, Act]:
        rng = np.random.default_rng([seed, _RANDOM_STREAM])

        def draw(obs: np.ndarray) -> np.ndarray:
            return rng.uniform(0.0, 1.0, 1).astype(np.float32)

        return draw, draw

    return _RolePolicy(build, "random")


REFERENCES = (
    Reference("se", "oracle", "SE auctioneer (Theorem 1: closed-form/exact SE price) + best-responding RUs "
              "(x_i* = clip((p - r_i)/(2 beta_i), 0, b_i)); the Stackelberg equilibrium of every slot", _se),
    Reference("equal_distribution", "baseline", "ED (Sec. V): the requirement split equally among participating "
              "RUs, min(Q/K, x_i*(p)); auctioneer at the price window's midpoint", _equal_distribution),
    Reference("ed_se_price", "baseline", "ED RUs at the SE auctioneer's price (the paper's Table 2 comparison: "
              "only the allocation differs from the SE)", _ed_at_se_price),
    Reference("random", "baseline", "auctioneer and RUs act uniformly at random in [0, 1]", _random),
)

TRACK = Track(
    env_id="StorageSharing-v0",
    version=1,
    description="Auction + Stackelberg storage sharing: 8 RUs, 5 SFCs, one synthetic 24-slot day per seed.",
    env_kwargs=ENV_KWARGS,
    n_seeds=N_SEEDS,
    metrics=(
        Metric("exploitability_cents", "Exploitability vs SE", "cents/day", False, 0.5,
               "Sum over the slots of the env's exploitability = auctioneer regret J(p*) - J(p) with "
               "best-responding RUs + sum_i RU regrets U_i(x_i*(p), p) - U_i(x_i, p) at the announced price "
               "(Stackelberg equilibrium of Theorem 1; 0 at the SE)"),
        Metric("sfc_saving_cents", "SFCs' cost saving", "cents/day", True, 0.25,
               "Sum over the slots of the auctioneer's reward J = (1/M) sum_m (c_m - p) q_m, the average "
               "saving per participating SFC (the leader's objective)"),
        Metric("ru_utility_cents", "RUs' utility", "cents/day", True, 0.25,
               "Sum over the slots and RUs of U_i = (p - r_i) a_i - beta_i a_i^2 at the shares a_i used "
               "by the SFCs (the followers' objective)"),
        Metric("auctioneer_regret_cents", "Auctioneer regret", "cents/day", False, 0.0,
               "Sum over the slots of J(p*) - J(p) (best-responding RUs): the leader's part of the exploitability"),
        Metric("ru_regret_cents", "RUs' regret", "cents/day", False, 0.0,
               "Sum over the slots and RUs of U_i(x_i*(p), p) - U_i(x_i, p): the followers' part"),
        Metric("traded_kwh", "Storage shared", "kWh/day", True, 0.0,
               "Storage used by the SFCs, summed over the slots"),
    ),
    references=REFERENCES,
    baseline="equal_distribution",
    top=("se",),
    summarise=summarise,
    curve=curve,
    curve_label="exploitability of the slot (cents)",
    co_players="se",
    roles={"auctioneer": "auctioneer", "ru": "ru_"},
    held_out="synthetic market (no household data): the reset seeds 1000000+k draw the RUs, SFCs and requirements",
)
