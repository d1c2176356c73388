"""Reference policy for EnergyCollective-v0: the ADMM best response, through observations.

In the community market the ADMM of the slides converges to prices ``lambda`` such that
each player's x-update reduces to its best response to ``lambda`` (problem (1)-(4) with
the community price as the multiplier of (2))::

    p_i = argmin_p f_i(p) - lambda p   over [p_min, p_max]
        = clip(r_i + (lambda - m_i) / a_i, p_min, p_max)        (a_i > 0)

with ``f_i(p) = a_i/2 (p - r_i)^2 + m_i (p - r_i)``. Everything it needs is in the
agent's observation (``price``, ``p_min``, ``p_max``, ``p_ref``, ``marginal_cost``,
``curvature``; see ``energy_collective_v0.OBS_NAMES``), so an RL agent can be compared
with it on the same interface. Played by every agent, it reproduces the mechanism's
dispatch (up to the ADMM tolerance) and hence the community optimum; in the P2P market
it reproduces the cleared net positions. Players with ``a_i = 0`` go to the bound that
the sign of ``lambda - m_i`` favours; players without a decision (``p_min = p_max``)
return 0.5.

Note: marginal cost in the observation is the one *at* ``p_ref`` (equal to ``m_i`` unless
``r_i`` lies outside this slot's bounds), so the formula above uses ``p_ref`` as ``r_i``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from prosumer_gym.envs.energy_collective_v0 import OBS_NAMES

__all__ = ["ADMMBestResponse", "ADMMCoPlayer", "ADMMCoPlayers", "admm_co_players", "best_response_actions"]

_IDX = {n: i for i, n in enumerate(OBS_NAMES)}


class ADMMBestResponse:
    """Stateless policy ``act(obs) -> np.ndarray`` (shape (1,), in [0, 1]).

    Works on one observation of shape (10,) or a batch (k, 10) (returns (k, 1)).
    """

    def act(self, obs: np.ndarray) -> np.ndarray:
        o = np.asarray(obs, dtype=np.float64)
        single = o.ndim == 1
        if single and o.shape == (len(OBS_NAMES),):
            return _act_one(o.tolist())
        o = np.atleast_2d(o)
        price = o[:, _IDX["price"]]
        lo, hi = o[:, _IDX["p_min"]], o[:, _IDX["p_max"]]
        r, m, a = o[:, _IDX["p_ref"]], o[:, _IDX["marginal_cost"]], o[:, _IDX["curvature"]]
        with np.errstate(divide="ignore", invalid="ignore"):
            interior = r + (price - m) / a
        lin = np.where(price > m, hi, np.where(price < m, lo, r))
        p = np.clip(np.where(a > 0, interior, lin), lo, hi)
        span = hi - lo
        act = np.where(span > 0, (p - lo) / np.where(span > 0, span, 1.0), 0.5)
        act = np.clip(act, 0.0, 1.0).astype(np.float32)[:, None]
        return act[0] if single else act

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.act(obs)


_COLS = tuple(_IDX[n] for n in ("price", "p_min", "p_max", "p_ref", "marginal_cost", "curvature"))


def _act_one(o: list[float]) -> np.ndarray:
    """:meth:`ADMMBestResponse.act` for one observation in plain float arithmetic (IEEE
    double, the same operations in the same order, so the same numbers as the array form;
    ~10x faster for a co-player acting alone)."""
    price, lo, hi, r, m, a = (o[i] for i in _COLS)
    if a > 0:
        p = r + (price - m) / a
    else:
        p = hi if price > m else (lo if price < m else r)
    p = min(max(p, lo), hi)
    span = hi - lo
    act = (p - lo) / span if span > 0 else 0.5
    return np.array([min(max(act, 0.0), 1.0)], dtype=np.float32)


def best_response_actions(obs: dict[str, np.ndarray], policy: ADMMBestResponse | None = None) -> dict[str, Any]:
    """Every agent's best-response action for a PettingZoo observation dict (vectorised)."""
    pol = policy or ADMMBestResponse()
    names = list(obs)
    acts = pol.act(np.stack([obs[a] for a in names]))
    return {a: acts[i] for i, a in enumerate(names)}


class ADMMCoPlayer:
    """One player's ADMM best response as a co-player (``prosumer_gym.core.policies.CoPlayer``):
    stateless, so ``observe`` does nothing."""

    def __init__(self, policy: ADMMBestResponse | None = None) -> None:
        self.policy = policy or ADMMBestResponse()

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.act(obs)

    def observe(self, obs: Any, action: Any, reward: float, next_obs: Any) -> None:
        """Frozen policy: nothing to learn."""


class ADMMCoPlayers(dict):
    """The ``"admm"`` co-players: ``{agent: ADMMCoPlayer}`` plus the batched form the
    EnergyCollective Gymnasium view uses when a mapping offers it: ``act_batch(obs)`` maps
    the co-players' observation rows (k, 10), in the mapping's order, to their actions
    (k, 1) in one call (the same numbers as each co-player's ``act``: the best response is
    elementwise, see :func:`_act_one`), ``observe_batch`` sees their transitions (a no-op:
    the policy is frozen)."""

    def __init__(self, agents: Sequence[str], policy: ADMMBestResponse | None = None) -> None:
        self.policy = policy or ADMMBestResponse()
        super().__init__((a, ADMMCoPlayer(self.policy)) for a in agents)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.act(np.atleast_2d(obs))

    def observe_batch(self, obs: Any, actions: Any, rewards: Any, next_obs: Any) -> None:
        """Frozen policy: nothing to learn."""


def admm_co_players(
    env: Any, agents: Sequence[str], infos: Mapping[str, Any], rng: np.random.Generator
) -> ADMMCoPlayers:
    """Co-player factory ``"admm"`` of EnergyCollective-v0 (the Gymnasium view's default):
    every agent plays :class:`ADMMBestResponse` on its own observation. The best response is
    elementwise in the observation, so one co-player per agent gives exactly the actions of
    the batched policy (which the view uses, :class:`ADMMCoPlayers`); ``env``, ``infos``
    and ``rng`` are not needed (deterministic)."""
    return ADMMCoPlayers(agents)
