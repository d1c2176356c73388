"""PQR: pricing with risk-sensitive Q-learning (Alg. 5, Eqs. 5.4-5.5).

One tabular agent per seller. State: the seller's current price on the ``delta`` grid
(the paper's state space, ``rho_gb, rho_gb + delta, ..., rho_gs``); actions: the env's
price moves (default ``{-delta, 0, +delta}``). The TD error is passed through the
seller's own prospect-theory value function before the update (Eq. 5.4):
``Q(s, a) <- Q(s, a) + lr * v(R + gamma * max_a' Q(s', a') - Q(s, a))``.

Hyperparameters of Section 5.3.1: ``lr = 1e-4``, epsilon starts at 1 and decays by
x0.965 per day, floored at ``eps_min = 0.05`` (the paper gives no floor). The paper omits
the discount factor; we use ``gamma = 0.8``, the value it gives for ProDQN. The reward is
the env's reward: the seller's revenue in $ at the *new* price (Alg. 5 line 4; the
authors' public script used the price index instead of the price, we do not).

The agent sees only its observation (``obs[0]`` is the normalised price, see
``p2p_trading_v0.OBS_NAMES``) and its reward; ties between equal Q-values are broken at
random with the agent's own generator, so a run is reproducible from its seed.

Common agent interface (shared with :class:`~prosumer_gym.agents.prodqn.ProDQNAgent`):
``act(obs, explore=True)``, ``update(obs, action, reward, next_obs, terminated=False)``,
``end_day()``, ``eps``, ``last_loss``, ``state_dict()`` / ``load_state_dict()``,
``save(path)`` / ``load(path)``.

Co-players: :func:`pqr_co_players` is the factory ``"pqr"`` of P2PTrading-v0's Gymnasium view
(the default ``opponents``; protocol :mod:`prosumer_gym.core.policies`): one
:class:`PQRCoPlayer` per seller, learning online during the episode.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.core.prospect import pt_value
from prosumer_gym.core.seeding import spawn

__all__ = ["PQRAgent", "PQRCoPlayer", "PT_KEYS", "pqr_co_players"]

PT_KEYS = ("k_pos", "k_neg", "zeta_pos", "zeta_neg")


def _check_pt(k_pos: float, k_neg: float, zeta_pos: float, zeta_neg: float) -> tuple[float, float, float, float]:
    vals = (k_pos, k_neg, zeta_pos, zeta_neg)
    for name, v in zip(PT_KEYS, vals):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    return tuple(float(v) for v in vals)  # type: ignore[return-value]


def _check_eps(eps_start: float, eps_decay: float, eps_min: float) -> None:
    if not (0 <= eps_min <= eps_start <= 1) or not (0 < eps_decay <= 1):
        raise ValueError(
            "need 0 <= eps_min <= eps_start <= 1 and 0 < eps_decay <= 1, got "
            f"eps_start={eps_start}, eps_min={eps_min}, eps_decay={eps_decay}"
        )


class PQRAgent:
    """Tabular risk-sensitive Q-learner for one seller (see the module docstring).

    ``n_prices``: number of price states (61 for the default band and ``delta``);
    ``n_actions``: the env's ``Discrete`` size; ``k_pos, k_neg, zeta_pos, zeta_neg``: the
    seller's PT parameters (the env's reset info ``pt_params``; all 1 = plain Q-learning);
    ``seed``: an int or a :class:`numpy.random.Generator` (the agent's only randomness).
    """

    kind = "pqr"

    def __init__(
        self,
        n_prices: int,
        n_actions: int = 3,
        k_pos: float = 1.0,
        k_neg: float = 1.0,
        zeta_pos: float = 1.0,
        zeta_neg: float = 1.0,
        lr: float = 1e-4,
        gamma: float = 0.8,
        eps_start: float = 1.0,
        eps_decay: float = 0.965,
        eps_min: float = 0.05,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        for name, v in (("n_prices", n_prices), ("n_actions", n_actions)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        self.pt = _check_pt(k_pos, k_neg, zeta_pos, zeta_neg)
        if not (0 < lr <= 1):
            raise ValueError(f"lr must be in (0, 1], got {lr}")
        if not (0 <= gamma < 1):
            raise ValueError(f"gamma must be in [0, 1), got {gamma}")
        _check_eps(eps_start, eps_decay, eps_min)
        self.n_prices, self.n_actions = int(n_prices), int(n_actions)
        self.lr, self.gamma = float(lr), float(gamma)
        self.eps, self.eps_decay, self.eps_min = float(eps_start), float(eps_decay), float(eps_min)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.q = np.zeros((self.n_prices, self.n_actions))
        self.n_updates = 0
        self.last_loss: float | None = None  # |v(TD error)| of the last update (for logging)

    @property
    def pt_params(self) -> dict[str, float]:
        return dict(zip(PT_KEYS, self.pt))

    def hyperparameters(self) -> dict[str, Any]:
        return {"n_prices": self.n_prices, "n_actions": self.n_actions, **self.pt_params, "lr": self.lr,
                "gamma": self.gamma, "eps_decay": self.eps_decay, "eps_min": self.eps_min}

    def state_index(self, obs: np.ndarray) -> int:
        """Price index from the normalised price ``obs[0]`` in [0, 1]."""
        # plain Python on one float (it runs twice per co-player per step): round() is
        # half-to-even like np.rint, and NaN still raises in int()
        x = float(obs[0]) * (self.n_prices - 1)
        return int(min(max(round(x) if math.isfinite(x) else x, 0), self.n_prices - 1))

    def act(self, obs: np.ndarray, explore: bool = True) -> int:
        """epsilon-greedy action (Alg. 5 line 3); greedy with ``explore=False``."""
        if explore and self.rng.random() < self.eps:
            return int(self.rng.integers(self.n_actions))
        row = self.q[self.state_index(obs)]
        best = np.flatnonzero(row == row.max())
        return int(best[0] if best.size == 1 else self.rng.choice(best))

    def update(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
               terminated: bool = False) -> float:
        """Eqs. 5.4-5.5; returns the raw TD error. ``terminated``: no bootstrap (P2PTrading
        episodes only truncate, so its sellers always bootstrap)."""
        s, s2 = self.state_index(obs), self.state_index(next_obs)
        boot = 0.0 if terminated else self.gamma * float(self.q[s2].max())
        td = float(reward) + boot - float(self.q[s, action])
        v = float(pt_value(td, *self.pt))
        self.q[s, action] += self.lr * v
        self.n_updates += 1
        self.last_loss = abs(v)
        return td

    def end_day(self) -> None:
        """epsilon decay, once per trading day."""
        self.eps = max(self.eps_min, self.eps * self.eps_decay)

    def greedy_prices(self) -> np.ndarray:
        """Greedy action per price state (``n_prices``,), ties to the lowest index."""
        return self.q.argmax(axis=1)

    # -- persistence ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything that changes while learning: Q-table, epsilon, update count, RNG."""
        return {"q": self.q.copy(), "eps": self.eps, "n_updates": self.n_updates,
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        q = state["q"]
        if hasattr(q, "detach"):  # a torch tensor (population checkpoints)
            q = q.detach().cpu().numpy()
        q = np.array(q, dtype=np.float64)
        if q.shape != self.q.shape:
            raise ValueError(f"q must have shape {self.q.shape}, got {q.shape}")
        eps = float(state["eps"])
        if not (0 <= eps <= 1):
            raise ValueError(f"eps must be in [0, 1], got {eps}")
        self.q = q
        self.eps = eps
        self.n_updates = int(state.get("n_updates", 0))
        if state.get("rng") is not None:
            self.rng.bit_generator.state = dict(state["rng"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the Q-table, epsilon and RNG state atomically (``.npz``, no pickle)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        meta = json.dumps({"eps": self.eps, "n_updates": self.n_updates, "rng": self.rng.bit_generator.state,
                           "hyperparameters": self.hyperparameters()})
        np.savez(tmp, q=self.q, meta=np.array(meta))
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike) -> None:
        """Restore what :meth:`save` wrote (files of the first PQR version, with only
        ``q`` and ``eps``, load too)."""
        with np.load(path, allow_pickle=False) as f:
            if "meta" in f.files:
                meta = json.loads(str(f["meta"]))
                self.load_state_dict({"q": f["q"], "eps": meta["eps"], "n_updates": meta.get("n_updates", 0),
                                      "rng": meta.get("rng")})
            else:
                self.load_state_dict({"q": f["q"], "eps": float(f["eps"])})


class PQRCoPlayer:
    """A :class:`PQRAgent` as a co-player (``prosumer_gym.core.policies.CoPlayer``): acts
    epsilon-greedily and, after every step (one trading day), updates (Eq. 5.4) and decays
    epsilon (``end_day``), i.e. keeps learning online during the episode."""

    def __init__(self, agent: PQRAgent) -> None:
        self.agent = agent

    def act(self, obs: np.ndarray) -> int:
        return self.agent.act(obs)

    def observe(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray) -> None:
        self.agent.update(obs, action, reward, next_obs)
        self.agent.end_day()


def pqr_co_players(
    env: Any, agents: Sequence[str], infos: Mapping[str, Any], rng: np.random.Generator
) -> dict[str, PQRCoPlayer]:
    """Co-player factory ``"pqr"`` of P2PTrading-v0 (the Gymnasium view's default opponents):
    a fresh :class:`PQRAgent` per seller in ``agents`` with the seller's PT parameters
    (``infos[agent]["pt_params"]``), ``len(env.price_grid)`` price states and the env's
    number of actions; the agents' generators are ``spawn(rng, len(agents))``, in order."""
    n_actions = env.action_space(env.possible_agents[0]).n
    return {
        a: PQRCoPlayer(PQRAgent(len(env.price_grid), n_actions, seed=g, **infos[a]["pt_params"]))
        for a, g in zip(agents, spawn(rng, len(agents)))
    }
