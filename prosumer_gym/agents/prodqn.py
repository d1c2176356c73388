"""ProDQN: prospect-theory deep Q-network, one per seller (Alg. 6, Eqs. 5.6-5.9).

Network and hyperparameters of Section 5.3.1: an MLP with two hidden layers of 64 (ReLU),
three outputs (the env's price moves), learning rate 0.0075, replay buffer of 1000
transitions, minibatch of 4, discount 0.8, soft target update with ``tau = 0.01``
(Eq. 5.9), one gradient step per trading day (Alg. 6 lines 5-9).

The prospect-theory loss, made well-posed
-----------------------------------------
Eq. 5.7 as printed is ``k+ (Y - Q)^zeta+`` for ``Y > Q`` and ``-k- (Q - Y)^zeta-``
otherwise: it is negative on one branch, so *minimising* it pushes ``Q`` up on both
branches, and its derivative ``|Y - Q|^(zeta - 1)`` is infinite at ``Y = Q``. Eq. 5.8
(the update the paper actually states) moves ``theta`` along ``+(Y - Q) grad Q``, the
ordinary DQN direction. We keep Eq. 5.8's direction and put the seller's perception on the
TD error, exactly as PQR does (Eq. 5.4): we minimise (:func:`prospect_loss`)

    L(theta) = 1/z sum_m 0.5 * (Q_m - stopgrad(Q_m + v(Y_m - Q_m)))^2

whose gradient is ``-1/z sum_m v(Y_m - Q_m) grad Q_m`` with ``v`` the seller's PT value
function (``prosumer_gym.core.prospect.pt_value``; Eq. 5.5's ``v`` with reference 0).
``v`` is evaluated on the detached TD error and never differentiated, so ``|delta|^zeta``
at ``delta = 0`` is simply 0 (no infinite slope, no NaN). One step moves ``Q`` towards
``Y`` on both branches; with ``k+ = k- = zeta+ = zeta- = 1``, ``v`` is the identity and the
loss is DQN's ``0.5 (Q - Y)^2``.

Choices where the paper leaves room (documented in ``docs/training.md``)
---------------------------------------------------------------------------
* Input: the paper feeds the price only (one input node): ``obs_mode="price"`` uses
  ``obs[0]``, the normalised price. ``obs_mode="full"`` feeds the env's whole observation.
* Exploration: epsilon-greedy with PQR's schedule (starts at 1, x0.965 per day, floor
  0.05); Alg. 6 only says "exploration and exploitation".
* Optimiser: Adam (``optimizer="adam"``, what DQN implementations and the authors' public
  script use); ``"sgd"`` gives Eq. 5.8's plain gradient step.
* Learning starts once the buffer holds one minibatch; minibatches are drawn without
  replacement. P2PTrading episodes only truncate, so ``Y`` always bootstraps.

Determinism without global state: the agent's numpy generator (from ``seed``) draws the
exploration, the minibatches and the seed of the network initialisation; the networks are
built inside ``torch.random.fork_rng`` so the global torch RNG is left untouched. Same seed,
same weights and actions (on the same machine / torch build).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prosumer_gym.agents.pqr import PT_KEYS, _check_eps, _check_pt
from prosumer_gym.core.prospect import pt_value

__all__ = ["ProDQNAgent", "QNetwork", "prospect_loss", "pt_target", "OBS_MODES"]

OBS_MODES = ("price", "full")
OPTIMIZERS = ("adam", "sgd")


class QNetwork(nn.Module):
    """MLP ``in -> hidden... -> n_actions`` with ReLU (Section 5.3.1: two hidden layers of 64)."""

    def __init__(self, in_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, int(h)), nn.ReLU()]
            d = int(h)
        layers.append(nn.Linear(d, n_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def pt_target(q: torch.Tensor, y: torch.Tensor, k_pos: float, k_neg: float, zeta_pos: float,
              zeta_neg: float) -> torch.Tensor:
    """``Q + v(Y - Q)``, detached: the point :func:`prospect_loss` pulls ``Q`` towards.

    ``v`` is the PT value of the TD error (``core.prospect.pt_value``), computed on the
    detached error, so its infinite slope at 0 never enters a gradient.
    """
    with torch.no_grad():
        delta = (y - q).detach().to(torch.float64).cpu().numpy()
        v = torch.as_tensor(pt_value(delta, k_pos, k_neg, zeta_pos, zeta_neg), dtype=q.dtype, device=q.device)
        return q.detach() + v


def prospect_loss(q: torch.Tensor, y: torch.Tensor, k_pos: float = 1.0, k_neg: float = 1.0,
                  zeta_pos: float = 1.0, zeta_neg: float = 1.0) -> torch.Tensor:
    """PT loss of ProDQN: ``mean(0.5 (Q - stopgrad(Q + v(Y - Q)))^2)``; ``dL/dQ_m = -v(Y_m - Q_m) / z``."""
    target = pt_target(q, y, k_pos, k_neg, zeta_pos, zeta_neg)
    return 0.5 * ((q - target) ** 2).mean()


class ProDQNAgent:
    """One seller's ProDQN (see the module docstring).

    ``obs_dim``: length of the env's observation; ``n_actions``: its ``Discrete`` size;
    PT parameters: the seller's (env reset info ``pt_params``); ``seed``: int or
    :class:`numpy.random.Generator`.
    """

    kind = "prodqn"

    def __init__(
        self,
        obs_dim: int,
        n_actions: int = 3,
        k_pos: float = 1.0,
        k_neg: float = 1.0,
        zeta_pos: float = 1.0,
        zeta_neg: float = 1.0,
        lr: float = 0.0075,
        buffer_size: int = 1000,
        batch_size: int = 4,
        gamma: float = 0.8,
        tau: float = 0.01,
        hidden: Sequence[int] = (64, 64),
        obs_mode: str = "price",
        optimizer: str = "adam",
        gradient_steps: int = 1,
        eps_start: float = 1.0,
        eps_decay: float = 0.965,
        eps_min: float = 0.05,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        for name, v, lo in (("obs_dim", obs_dim, 1), ("n_actions", n_actions, 1), ("buffer_size", buffer_size, 1),
                            ("batch_size", batch_size, 1), ("gradient_steps", gradient_steps, 0)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if batch_size > buffer_size:
            raise ValueError(f"batch_size ({batch_size}) must be <= buffer_size ({buffer_size})")
        self.pt = _check_pt(k_pos, k_neg, zeta_pos, zeta_neg)
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (0 <= gamma < 1):
            raise ValueError(f"gamma must be in [0, 1), got {gamma}")
        if not (0 < tau <= 1):
            raise ValueError(f"tau must be in (0, 1], got {tau}")
        hidden = tuple(int(h) for h in hidden)
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty list of layer widths >= 1, got {hidden!r}")
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        _check_eps(eps_start, eps_decay, eps_min)
        self.obs_dim, self.n_actions = int(obs_dim), int(n_actions)
        self.in_dim = 1 if obs_mode == "price" else self.obs_dim
        self.obs_mode = obs_mode
        self.lr, self.gamma, self.tau = float(lr), float(gamma), float(tau)
        self.buffer_size, self.batch_size, self.gradient_steps = int(buffer_size), int(batch_size), int(gradient_steps)
        self.hidden, self.optimizer_name = hidden, optimizer
        self.eps, self.eps_decay, self.eps_min = float(eps_start), float(eps_decay), float(eps_min)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

        init_seed = int(self.rng.integers(2**62))
        with torch.random.fork_rng(devices=[]):  # leave the global torch RNG untouched
            torch.manual_seed(init_seed)
            self.q_net = QNetwork(self.in_dim, self.n_actions, hidden)
            self.target_net = QNetwork(self.in_dim, self.n_actions, hidden)
        self.target_net.load_state_dict(self.q_net.state_dict())
        for p in self.target_net.parameters():
            p.requires_grad_(False)
        if optimizer == "adam":
            try:  # the fused CPU kernel: same update, a fraction of the per-step overhead
                self.optimizer: torch.optim.Optimizer = torch.optim.Adam(self.q_net.parameters(), lr=self.lr,
                                                                         fused=True)
            except (RuntimeError, TypeError, ValueError):  # older torch builds
                self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=self.lr)
        else:
            self.optimizer = torch.optim.SGD(self.q_net.parameters(), lr=self.lr)

        n = self.buffer_size
        self._obs = torch.zeros((n, self.in_dim), dtype=torch.float32)
        self._next_obs = torch.zeros((n, self.in_dim), dtype=torch.float32)
        self._act = torch.zeros(n, dtype=torch.int64)
        self._rew = torch.zeros(n, dtype=torch.float32)
        self._term = torch.zeros(n, dtype=torch.float32)
        self._pos = 0
        self._size = 0
        self.n_updates = 0
        self.last_loss: float | None = None

    # ------------------------------------------------------------------ acting
    @property
    def pt_params(self) -> dict[str, float]:
        return dict(zip(PT_KEYS, self.pt))

    def hyperparameters(self) -> dict[str, Any]:
        return {"obs_dim": self.obs_dim, "n_actions": self.n_actions, **self.pt_params, "lr": self.lr,
                "buffer_size": self.buffer_size, "batch_size": self.batch_size, "gamma": self.gamma,
                "tau": self.tau, "hidden": list(self.hidden), "obs_mode": self.obs_mode,
                "optimizer": self.optimizer_name, "gradient_steps": self.gradient_steps,
                "eps_decay": self.eps_decay, "eps_min": self.eps_min}

    def features(self, obs: np.ndarray) -> np.ndarray:
        o = np.asarray(obs, dtype=np.float32).reshape(-1)
        if o.shape[0] != self.obs_dim:
            raise ValueError(f"obs must have {self.obs_dim} components, got {o.shape[0]}")
        return o[:1] if self.obs_mode == "price" else o

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        return self._q(self.features(obs))

    def _q(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.q_net(torch.from_numpy(x)[None, :])[0].numpy().astype(np.float64)

    def act(self, obs: np.ndarray, explore: bool = True) -> int:
        """epsilon-greedy (Alg. 6 line 3); greedy with ``explore=False``."""
        x = self.features(obs)
        if explore and self.rng.random() < self.eps:
            return int(self.rng.integers(self.n_actions))
        return int(np.argmax(self._q(x)))

    # ------------------------------------------------------------------ learning
    def store(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, terminated: bool = False) -> None:
        """Alg. 6 line 5: add a transition to the replay buffer (FIFO, ``buffer_size``)."""
        if not 0 <= int(action) < self.n_actions:
            raise ValueError(f"action must be in [0, {self.n_actions - 1}], got {action!r}")
        i = self._pos
        self._obs[i] = torch.from_numpy(self.features(obs))
        self._next_obs[i] = torch.from_numpy(self.features(next_obs))
        self._act[i] = int(action)
        self._rew[i] = float(reward)
        self._term[i] = float(bool(terminated))
        self._pos = (i + 1) % self.buffer_size
        self._size = min(self._size + 1, self.buffer_size)

    def learn(self) -> float | None:
        """Alg. 6 lines 6-9: sample a minibatch, targets by Eq. 5.6, one step on the PT loss,
        soft target update (Eq. 5.9). Returns the loss (``None`` until the buffer holds one
        minibatch)."""
        if self._size < self.batch_size:
            return None
        idx = torch.from_numpy(self.rng.choice(self._size, size=self.batch_size, replace=False).astype(np.int64))
        s, a, r, s2, term = self._obs[idx], self._act[idx], self._rew[idx], self._next_obs[idx], self._term[idx]
        with torch.no_grad():
            y = r + self.gamma * (1.0 - term) * self.target_net(s2).max(dim=1).values  # Eq. 5.6
        q = self.q_net(s).gather(1, a[:, None])[:, 0]
        loss = prospect_loss(q, y, *self.pt)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():  # Eq. 5.9
            for t, p in zip(self.target_net.parameters(), self.q_net.parameters()):
                t.lerp_(p, self.tau)
        self.n_updates += 1
        return float(loss.item())

    def update(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
               terminated: bool = False) -> float | None:
        """Store the day's transition and do ``gradient_steps`` learning steps; returns the
        mean loss (``None`` before learning starts)."""
        self.store(obs, action, reward, next_obs, terminated)
        losses = [v for v in (self.learn() for _ in range(self.gradient_steps)) if v is not None]
        self.last_loss = float(np.mean(losses)) if losses else None
        return self.last_loss

    def end_day(self) -> None:
        """epsilon decay, once per trading day."""
        self.eps = max(self.eps_min, self.eps * self.eps_decay)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Networks, optimiser, replay buffer, epsilon, counters and RNG state (loadable
        with ``torch.load(..., weights_only=True)``)."""
        n = self._size
        return {
            "q_net": {k: v.clone() for k, v in self.q_net.state_dict().items()},
            "target_net": {k: v.clone() for k, v in self.target_net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "buffer": {"obs": self._obs[:n].clone(), "next_obs": self._next_obs[:n].clone(),
                       "act": self._act[:n].clone(), "rew": self._rew[:n].clone(), "term": self._term[:n].clone(),
                       "pos": self._pos},
            "eps": self.eps,
            "n_updates": self.n_updates,
            "rng": self.rng.bit_generator.state,
            "hyperparameters": self.hyperparameters(),
        }

    def load_state_dict(self, state: Mapping[str, Any], load_buffer: bool = True) -> None:
        self.q_net.load_state_dict(state["q_net"])
        self.target_net.load_state_dict(state["target_net"])
        if state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.eps = float(state["eps"])
        self.n_updates = int(state.get("n_updates", 0))
        if state.get("rng") is not None:
            self.rng.bit_generator.state = dict(state["rng"])
        buf = state.get("buffer")
        if load_buffer and buf is not None:
            n = int(buf["obs"].shape[0])
            if n > self.buffer_size or tuple(buf["obs"].shape[1:]) != (self.in_dim,):
                raise ValueError(f"replay buffer of shape {tuple(buf['obs'].shape)} does not fit "
                                 f"({self.buffer_size}, {self.in_dim})")
            for name in ("obs", "next_obs", "act", "rew", "term"):
                getattr(self, f"_{name}")[:n] = torch.as_tensor(buf[name])
            self._size = n
            self._pos = int(buf["pos"])

    def save(self, path: str | os.PathLike) -> None:
        """``torch.save`` of :meth:`state_dict`, written atomically."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike) -> None:
        """Restore from :meth:`save` (``torch.load(..., weights_only=True)``: no code runs)."""
        self.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))

    def __repr__(self) -> str:
        return f"ProDQNAgent({json.dumps(self.hyperparameters())})"
