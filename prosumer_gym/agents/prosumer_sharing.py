"""Reference policies of ProsumerSharing-v0: the paper's Algorithm 2 (prosumer) and
Algorithm 1 (platform), acting only through the envs' observations and actions.

* :class:`Algorithm2Prosumer` — one prosumer of ``prosumer_sharing_v0``. It knows its own
  private cost (given to it at reset through its own ``info["cost_params"]``) and sees only
  its observation ``(Omega_x, Omega_y, x_bar, y_bar)``. Probability of consuming tomorrow
  ``sigma_x = min{1, max{0, Omega_x g'_x(x_bar, y_bar) / x_bar}}`` (Eq. 22 with the clip of
  Section VI), same for y; ``rule="eq20"`` uses ``Omega x_bar / g'`` (Eq. 20's consensus form).
* :class:`Algorithm2Team` — the same policy for many prosumers at once: each row uses only
  that prosumer's observation and cost; vectorised for speed (one draw per prosumer).
* :class:`Algorithm1Platform` — the platform in ``ProsumerSharing-v0`` (Gymnasium view):
  ``Omega(k+1) = Omega(k) - tau (sum_i x_i(k) - C)`` (Eqs. 23-24) expressed as the view's
  relative action ``a = -tau * N * excess / (action_scale * Omega(0))``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from prosumer_gym.envs.prosumer_sharing.market import (
    RULES,
    CostParams,
    algorithm2_probabilities,
    default_omega0,
    default_tau,
)

__all__ = ["Algorithm2Prosumer", "Algorithm2Team", "Algorithm1Platform"]


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return rule


class Algorithm2Prosumer:
    """Algorithm 2 for one prosumer (see the module docstring)."""

    def __init__(self, cost_params: Mapping[str, float] | CostParams, rule: str = "eq22",
                 seed: int | np.random.Generator | None = None) -> None:
        costs = cost_params if isinstance(cost_params, CostParams) else CostParams.from_prosumers([cost_params])
        if costs.linear.shape != (1,):
            raise ValueError(f"Algorithm2Prosumer needs one prosumer's costs, got shape {costs.shape}")
        self.costs = costs
        self.rule = _check_rule(rule)
        self.rng = _rng(seed)

    def probabilities(self, obs: np.ndarray) -> tuple[float, float]:
        """(sigma_x, sigma_y) from the observation ``(Omega_x, Omega_y, x_bar, y_bar)``."""
        o = np.asarray(obs, dtype=np.float64)
        if o.shape != (4,):
            raise ValueError(f"obs must have shape (4,) = (omega_x, omega_y, x_bar, y_bar), got {o.shape}")
        sx, sy = algorithm2_probabilities(self.costs, o[2:3], o[3:4], o[0], o[1], self.rule)
        return float(sx[0]), float(sy[0])

    def act(self, obs: np.ndarray, explore: bool = True) -> np.ndarray:
        """``[x, y]`` for tomorrow: Bernoulli(sigma) draws (``explore=False``: threshold 1/2)."""
        sx, sy = self.probabilities(obs)
        u = self.rng.random(2) if explore else np.full(2, 0.5)
        return np.array([u[0] < sx, u[1] < sy], dtype=np.int8)


class Algorithm2Team:
    """Algorithm 2 for the prosumers ``agents`` (row i of ``costs`` belongs to ``agents[i]``)."""

    def __init__(self, agents: Sequence[str], costs: CostParams, rule: str = "eq22",
                 seed: int | np.random.Generator | None = None) -> None:
        if costs.linear.shape != (len(agents),):
            raise ValueError(f"costs must have shape ({len(agents)},) for {len(agents)} agents, got {costs.shape}")
        self.agents = list(agents)
        self.costs = costs
        self.rule = _check_rule(rule)
        self.rng = _rng(seed)

    @classmethod
    def from_infos(cls, infos: Mapping[str, Mapping[str, Any]], rule: str = "eq22",
                   seed: int | np.random.Generator | None = None) -> Algorithm2Team:
        """Build the team from ``prosumer_sharing_v0``'s reset infos (each agent's own ``cost_params``)."""
        agents = list(infos)
        costs = CostParams.from_prosumers([infos[a]["cost_params"] for a in agents])
        return cls(agents, costs, rule, seed)

    def probabilities(self, observations: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        try:
            obs = np.array([observations[a] for a in self.agents], dtype=np.float64)
        except KeyError as e:
            raise ValueError(f"observations miss agent {e.args[0]!r} of this team") from None
        if obs.shape != (len(self.agents), 4):
            raise ValueError(f"observations must be 4-vectors (omega_x, omega_y, x_bar, y_bar), got {obs.shape[1:]}")
        return algorithm2_probabilities(self.costs, obs[:, 2], obs[:, 3], obs[:, 0], obs[:, 1], self.rule)

    def act(self, observations: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        sx, sy = self.probabilities(observations)
        u = self.rng.random((2, len(self.agents)))
        acts = np.stack([u[0] < sx, u[1] < sy], axis=1).astype(np.int8)
        return dict(zip(self.agents, acts))


class Algorithm1Platform:
    """Algorithm 1 through the platform view's observation/action (see the module docstring).

    ``tau``, ``omega0`` and ``action_scale`` must be the ones the env uses (use
    :meth:`for_env`); ``tau=None`` is the env default for ``rule``. Moves beyond the action
    bounds saturate (never with the defaults).
    """

    def __init__(self, tau: float | Sequence[float] | None = None, omega0: float | Sequence[float] | None = None,
                 action_scale: float = 0.25, rule: str = "eq22") -> None:
        _check_rule(rule)
        self.tau = np.broadcast_to(np.asarray(default_tau(rule) if tau is None else tau, dtype=np.float64), (2,))
        self.omega0 = np.broadcast_to(
            np.asarray(default_omega0(rule) if omega0 is None else omega0, dtype=np.float64), (2,))
        if not (np.all(self.tau > 0) and np.all(self.omega0 > 0) and action_scale > 0):
            raise ValueError("tau, omega0 and action_scale must be > 0")
        self.action_scale = float(action_scale)

    @classmethod
    def for_env(cls, env: Any) -> Algorithm1Platform:
        """The platform with the gains of ``env`` (a ``ProsumerSharingGymEnv``, possibly wrapped)."""
        e = getattr(env, "unwrapped", env)
        return cls(tau=e.config.tau, omega0=e.config.omega0, action_scale=e.action_scale, rule=e.config.rule)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Observation ``(omega_x, omega_y, excess_x, excess_y, ..., n_prosumers, progress)``."""
        o = np.asarray(obs, dtype=np.float64)
        if o.ndim != 1 or o.shape[0] < 7:
            raise ValueError(f"obs must be the platform view's 8-vector, got shape {o.shape}")
        excess = o[2:4] * o[6]  # sum_i x_i(k) - C (units)
        a = -self.tau * excess / (self.action_scale * self.omega0)
        return np.clip(a, -1.0, 1.0).astype(np.float32)
