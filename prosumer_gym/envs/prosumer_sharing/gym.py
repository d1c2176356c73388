"""Single-agent Gymnasium view of ProsumerSharing-v0 (``gym.make("ProsumerSharing-v0")``).

Env card
--------
Agent
    The sharing platform. It learns the feedback signal that Algorithm 1 computes with a
    fixed integral gain (Eqs. 23-24), against N prosumers that all run Algorithm 2 (Eq. 22
    clipped to [0, 1]; ``rule="eq20"`` for the consensus form) inside the env.
Step (one day)
    Given the observation of day k the platform sets ``Omega(k+1) = Omega(k) + action_scale
    * Omega(0) * a`` (per signal). The prosumers draw their day-(k+1) decisions from
    ``Omega(k)`` and their averages (the paper's synchronous indexing, as in
    ``prosumer_sharing_v0``), so an action reaches the aggregates one day later.
Action (``Box(-1, 1, (2,))`` float32)
    The relative move of ``(Omega_x, Omega_y)``; ``action_scale`` (default 0.25, i.e. up to
    25% of Omega(0) per day) covers Algorithm 1's largest moves with the default gains
    (``tau * C ~ 15%`` of Omega(0)). Out-of-range actions raise ``ValueError``.
Observation (``Box(8,)`` float32; what the platform can measure)
    ``omega_x``, ``omega_y``: Omega(k) / Omega(0); ``excess_x``, ``excess_y``:
    ``(sum_i x_i(k) - C_x) / N`` in [-1, 1]; ``avg_gap_x``, ``avg_gap_y``:
    ``(sum_i x_bar_i(k) - C_x) / N`` (Fig. 8c); ``n_prosumers``: N; ``progress``: k / n_days.
Reward
    ``-(|sum_i x_i - C_x| + |sum_i y_i - C_y|) / N`` of the new day (the tracking error)
    ``- optimality_weight * median_i rel_distance_i`` (default weight 0).
Info
    The ``community`` KPIs of ``prosumer_sharing_v0`` (tracking errors, Omega, distance to the
    exact optimum of Problem III.2, consensus spread, costs), as plain floats.
Episode
    ``n_days`` (alias ``max_cycles``) = 200, then truncation. ``reset(options={"n_prosumers":
    N})`` picks the size when ``n_prosumers_range`` is set. Every community keyword of
    ``prosumer_sharing_v0.raw_env`` is accepted (scenario, contracts, tau, omega0, rule, ...).
Reference policy
    :class:`prosumer_gym.agents.prosumer_sharing.Algorithm1Platform` reproduces Algorithm 1
    through this interface exactly. Batched versions (K communities; SB3 ``VecEnv``):
    :mod:`prosumer_gym.envs.prosumer_sharing.vec`.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from prosumer_gym.core.pz import figure_to_rgb
from prosumer_gym.core.seeding import spawn
from prosumer_gym.core.spaces import NamedBox, check_box
from prosumer_gym.envs.prosumer_sharing.market import CONFIG_KEYS, SharingCommunities, SharingConfig
from prosumer_gym.envs.prosumer_sharing.env import DEFAULT_DAYS, resolve_days

__all__ = ["ProsumerSharingGymEnv", "PLATFORM_OBS_NAMES", "platform_config", "platform_observations"]

PLATFORM_OBS_NAMES = ("omega_x", "omega_y", "excess_x", "excess_y", "avg_gap_x", "avg_gap_y", "n_prosumers",
                      "progress")


def platform_config(kwargs: dict[str, Any]) -> tuple[SharingConfig, float, float, int]:
    """Split and validate the keywords of the platform views: community config,
    ``action_scale``, ``optimality_weight``, ``n_days``."""
    kw = dict(kwargs)
    action_scale = kw.pop("action_scale", 0.25)
    optimality_weight = kw.pop("optimality_weight", 0.0)
    n_days = resolve_days(kw.pop("n_days", DEFAULT_DAYS), kw.pop("max_cycles", None))
    unknown = sorted(set(kw) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown keywords {unknown}; allowed: {sorted(CONFIG_KEYS)} + ['action_scale', "
                         "'optimality_weight', 'n_days', 'max_cycles', 'render_mode']")
    config = SharingConfig(**kw)
    for name, v, strict in (("action_scale", action_scale, True), ("optimality_weight", optimality_weight, False)):
        ok = isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)) and np.isfinite(v)
        if not ok or v < 0 or (strict and v == 0):
            raise ValueError(f"{name} must be a finite number {'> 0' if strict else '>= 0'}, got {v!r}")
    return config, float(action_scale), float(optimality_weight), n_days


def platform_observations(core: SharingCommunities, n_days: int) -> np.ndarray:
    """The platform's observation for every community of ``core``: ``(K, 8)`` float32."""
    n = np.maximum(core.n, 1).astype(np.float64)
    exc = core.excess()
    xb = np.where(core.mask, core.x_bar, 0.0).sum(axis=1)
    yb = np.where(core.mask, core.y_bar, 0.0).sum(axis=1)
    obs = np.empty((core.n_communities, 8), dtype=np.float32)
    obs[:, 0] = core.omega[:, 0] / core.omega0[0]
    obs[:, 1] = core.omega[:, 1] / core.omega0[1]
    obs[:, 2] = exc[:, 0] / n
    obs[:, 3] = exc[:, 1] / n
    obs[:, 4] = np.clip((xb - core.contracts[:, 0]) / n, -1.0, 1.0)
    obs[:, 5] = np.clip((yb - core.contracts[:, 1]) / n, -1.0, 1.0)
    obs[:, 6] = core.n
    obs[:, 7] = np.minimum(core.k / n_days, 1.0)
    return obs


def platform_observation_space(n_max: int) -> NamedBox:
    return NamedBox(
        PLATFORM_OBS_NAMES,
        low=[-np.inf, -np.inf, -1.0, -1.0, -1.0, -1.0, 0.0, 0.0],
        high=[np.inf, np.inf, 1.0, 1.0, 1.0, 1.0, float(n_max), 1.0],
    )


class ProsumerSharingGymEnv(gym.Env):
    """The platform learning the feedback signal; see the module docstring."""

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        self.config, self.action_scale, self.optimality_weight, self.n_days = platform_config(kwargs)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        self.core = self.config.make_core(1)
        self.observation_space = platform_observation_space(self.config.n_max)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._draw_rng: np.random.Generator | None = None
        self._loaded = False
        self.community = None
        self.history: list[tuple[float, float, float, float]] = []

    @property
    def max_cycles(self) -> int:
        return self.n_days

    @max_cycles.setter
    def max_cycles(self, value: int) -> None:
        self.n_days = resolve_days(DEFAULT_DAYS, value)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        size_rng, cost_rng, self._draw_rng = spawn(self.np_random, 3)
        n = None
        if options:
            unknown = set(options) - {"n_prosumers"}
            if unknown:
                warnings.warn(f"reset options {sorted(unknown)} are ignored; known options: ['n_prosumers']",
                              stacklevel=2)
            if "n_prosumers" in options:
                n = self.config.check_size(options["n_prosumers"])
        community = self.config.sample(cost_rng, n)
        self.community = community
        self.core.load(0, community)
        self._loaded = True
        self.history = [self._history_row()]
        return platform_observations(self.core, self.n_days)[0], self.core.metrics_dict(0)

    def step(self, action: Any):
        if not self._loaded:
            raise RuntimeError("step() called before reset()")
        if self.core.k[0] >= self.n_days:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        a = check_box(action, self.action_space, "action")
        omega_next = self.core.omega + self.action_scale * self.core.omega0 * a
        x_new, y_new = self.core.draw_algorithm2(self._draw_rng)
        self.core.step(x_new, y_new, omega_next)
        info = self.core.metrics_dict(0)
        reward = -info["tracking_error"]
        if self.optimality_weight > 0:
            reward -= self.optimality_weight * info["rel_distance_median"]
        self.history.append(self._history_row())
        truncated = bool(self.core.k[0] >= self.n_days)
        if self.render_mode == "human":
            self.render()
        return platform_observations(self.core, self.n_days)[0], float(reward), False, truncated, info

    def _history_row(self) -> tuple[float, float, float, float]:
        tot = self.core.totals()[0]
        return float(tot[0]), float(tot[1]), float(self.core.omega[0, 0]), float(self.core.omega[0, 1])

    def render(self):
        if self.render_mode is None:
            warnings.warn("render() called without a render_mode", stacklevel=2)
            return None
        if not self._loaded:
            text = "ProsumerSharing-v0 (platform view): not reset yet"
            if self.render_mode == "human":
                print(text)
                return None
        m = self.core.metrics_dict(0) if self._loaded else None
        if self.render_mode == "human":
            print(f"day {m['day']}: sum x {m['sum_x']:.0f}/{m['contract_x']:.1f}, sum y {m['sum_y']:.0f}/"
                  f"{m['contract_y']:.1f}, Omega ({m['omega_x']:.5f}, {m['omega_y']:.5f}), median rel. distance "
                  f"{m['rel_distance_median']:.4f}")
            return None
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3), dpi=80)
        ax1, ax2 = fig.subplots(1, 2)
        if self.history:
            h = np.asarray(self.history)
            ax1.plot(h[:, 0], label="sum x")
            ax1.plot(h[:, 1], label="sum y")
            ax1.axhline(self.core.contracts[0, 0], color="C0", ls="--", lw=0.8)
            ax1.axhline(self.core.contracts[0, 1], color="C1", ls="--", lw=0.8)
            ax2.plot(h[:, 2], label="Omega_x")
            ax2.plot(h[:, 3], label="Omega_y")
            ax1.legend(fontsize=7)
            ax2.legend(fontsize=7)
        ax1.set_xlabel("day")
        ax2.set_xlabel("day")
        fig.tight_layout()
        return figure_to_rgb(fig)

    def close(self) -> None:
        pass
