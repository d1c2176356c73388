"""Batched ProsumerSharing-v0: K independent communities stepped together with arrays.

Two views on the same vectorised core
(:class:`~prosumer_gym.envs.prosumer_sharing.feedback.SharingCommunities`):

:class:`ProsumerSharingBatch` (prosumer view, plain numpy array API; for MARL with shared
parameters or for fast simulation of Algorithms 1-2)::

    batch = ProsumerSharingBatch(n_communities=64, n_days=200)        # keywords of raw_env
    obs, info = batch.reset(seed=0)        # obs (K, n_max, 4) float32; info["mask"] (K, n_max)
    acts = batch.algorithm2_actions()      # (K, n_max, 2) int8: every prosumer runs Algorithm 2
    obs, rewards, truncated, info = batch.step(acts)   # rewards (K, n_max); truncated (K,)

Observations, rewards and KPIs are exactly those of ``prosumer_sharing_v0`` (rows of
inactive slots are 0 and their actions are ignored). With ``autoreset=True`` (default) a
community whose episode ended is replaced by a fresh one inside ``step``; the returned obs
is then the new day 0 and ``info["final_obs"]`` holds the last observation of the old one.

:class:`ProsumerSharingVecEnv` (platform view, a Stable-Baselines3 ``VecEnv``): ``num_envs``
copies of ``ProsumerSharing-v0``'s Gymnasium view (Algorithm 2 prosumers inside, the agent
sets Omega), auto-reset with ``terminal_observation`` in the infos, as SB3 expects::

    venv = ProsumerSharingVecEnv(num_envs=16, n_days=200)
    PPO("MlpPolicy", venv).learn(100_000)

Seeding: community ``i``'s sizes and costs come from its own stream (seed ``s + i`` for the
VecEnv after ``seed(s)``, children of ``reset(seed=s)`` for the batch); Algorithm 2's draws
come from one batch-wide stream. Same seed, same trajectories.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from prosumer_gym.core.spaces import check_binary_array
from prosumer_gym.core.seeding import check_seed, spawn
from prosumer_gym.core.spaces import check_box
from prosumer_gym.core.vec import MarketVecEnv
from prosumer_gym.envs.prosumer_sharing.gym import (
    platform_config,
    platform_observation_space,
    platform_observations,
)
from prosumer_gym.envs.prosumer_sharing.market import CONFIG_KEYS, SharingConfig
from prosumer_gym.envs.prosumer_sharing.env import DEFAULT_DAYS, resolve_days

__all__ = ["ProsumerSharingBatch", "ProsumerSharingVecEnv"]


def _n_communities(value: object, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


class ProsumerSharingBatch:
    """K communities, prosumer view, array API (see the module docstring)."""

    def __init__(self, n_communities: int = 16, n_days: int = DEFAULT_DAYS, max_cycles: int | None = None,
                 tracking_weight: float = 1.0, autoreset: bool = True, **config_kwargs: Any) -> None:
        self.n_communities = _n_communities(n_communities, "n_communities")
        self.n_days = resolve_days(n_days, max_cycles)
        unknown = sorted(set(config_kwargs) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(f"unknown keywords {unknown}; allowed: {sorted(CONFIG_KEYS)} + ['n_communities', "
                             "'n_days', 'max_cycles', 'tracking_weight', 'autoreset']")
        self.config = SharingConfig(**config_kwargs)
        tw = float(tracking_weight) if isinstance(tracking_weight, (int, float, np.number)) else np.nan
        if not (np.isfinite(tw) and tw >= 0):
            raise ValueError(f"tracking_weight must be a finite number >= 0, got {tracking_weight!r}")
        self.tracking_weight = tw
        self.autoreset = bool(autoreset)
        self.core = self.config.make_core(self.n_communities)
        self.n_max = self.config.n_max
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self.n_communities, self.n_max, 4),
                                            dtype=np.float32)
        self._rngs: list[np.random.Generator] = []
        self._draw_rng: np.random.Generator | None = None
        self._g = np.zeros((self.n_communities, self.n_max))

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Fresh communities in every slot; returns day-0 observations and ``mask``."""
        master = np.random.default_rng(check_seed(seed))
        *self._rngs, self._draw_rng = spawn(master, self.n_communities + 1)
        for i in range(self.n_communities):
            self.core.load(i, self.config.sample(self._rngs[i]))
        self._g = self.core.private_costs()
        return self.observations(), {"mask": self.core.mask.copy(), "n_prosumers": self.core.n.copy()}

    def observations(self) -> np.ndarray:
        """``(K, n_max, 4)`` float32: ``(Omega_x, Omega_y, x_bar_i, y_bar_i)``; 0 on inactive slots."""
        core = self.core
        obs = np.empty((self.n_communities, self.n_max, 4), dtype=np.float32)
        obs[..., 0] = core.omega[:, :1]
        obs[..., 1] = core.omega[:, 1:]
        obs[..., 2] = core.x_bar
        obs[..., 3] = core.y_bar
        if not core.full:
            obs[~core.mask] = 0.0
        return obs

    def algorithm2_actions(self, rule: str | None = None) -> np.ndarray:
        """Every prosumer's Algorithm 2 decision for tomorrow, ``(K, n_max, 2)`` int8."""
        if self._draw_rng is None:
            raise RuntimeError("call reset() first")
        x, y = self.core.draw_algorithm2(self._draw_rng, rule)
        return np.stack([x, y], axis=-1).astype(np.int8)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._draw_rng is None:
            raise RuntimeError("call reset() first")
        a = check_binary_array(actions, (self.n_communities, self.n_max, 2), "actions").astype(np.float64)
        mask = self.core.mask
        x_new = a[..., 0] if self.core.full else np.where(mask, a[..., 0], 0.0)
        y_new = a[..., 1] if self.core.full else np.where(mask, a[..., 1], 0.0)
        self.core.step(x_new, y_new)
        info = self.core.metrics()
        g_new = self.core.last_prosumer_arrays["private_cost"]
        rewards = -(g_new - self._g) - self.tracking_weight * info["tracking_error"][:, None]
        rewards = np.where(mask, rewards, 0.0)
        self._g = g_new
        truncated = self.core.k >= self.n_days
        obs = self.observations()
        info["mask"] = mask.copy()
        if self.autoreset and truncated.any():
            info["final_obs"] = obs.copy()
            for i in np.flatnonzero(truncated):
                self.core.load(int(i), self.config.sample(self._rngs[i]))
            self._g = self.core.private_costs()
            obs = self.observations()
            info["reset_mask"] = self.core.mask.copy()
        return obs, rewards, truncated, info


class ProsumerSharingVecEnv(MarketVecEnv):
    """``num_envs`` platform views of ProsumerSharing-v0 as one SB3 ``VecEnv`` (module docstring).

    The SB3 plumbing (seeds ``s + i``, auto-reset with ``terminal_observation``, attributes)
    is :class:`~prosumer_gym.core.vec.MarketVecEnv`'s; the K communities live in one
    array-batched core."""

    def __init__(self, num_envs: int = 8, render_mode: str | None = None, **kwargs: Any) -> None:
        n = _n_communities(num_envs, "num_envs")
        if render_mode is not None:
            raise ValueError("ProsumerSharingVecEnv does not render; use ProsumerSharingGymEnv for pictures")
        self.render_mode = None
        self.config, self.action_scale, self.optimality_weight, self.n_days = platform_config(kwargs)
        self.core = self.config.make_core(n)
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._draw_rng: np.random.Generator | None = None
        super().__init__(n, platform_observation_space(self.config.n_max),
                         spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32))

    # ------------------------------------------------------------------ MarketVecEnv hooks
    def _reset_batch(self, seeds: list[int | None], options: list[dict[str, Any] | None]):
        if self._draw_rng is None or seeds[0] is not None:
            self._draw_rng = np.random.default_rng(None if seeds[0] is None else [seeds[0], 2**31])
        for i in range(self.num_envs):
            if seeds[i] is not None or self._rngs[i] is None:
                self._rngs[i] = np.random.default_rng(seeds[i])
            opts = options[i] or {}
            size = self.config.check_size(opts["n_prosumers"]) if "n_prosumers" in opts else None
            self.core.load(i, self.config.sample(self._rngs[i], size))
        return platform_observations(self.core, self.n_days), [self.core.metrics_dict(i) for i in range(self.num_envs)]

    def _check_actions(self, actions: Any) -> np.ndarray:
        return check_box(np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 2),
                         spaces.Box(-1.0, 1.0, shape=(self.num_envs, 2)), "actions")

    def _step_batch(self, actions: np.ndarray):
        if self._draw_rng is None:
            raise RuntimeError("call reset() first")
        core = self.core
        omega_next = core.omega + self.action_scale * core.omega0 * actions
        x_new, y_new = core.draw_algorithm2(self._draw_rng)
        core.step(x_new, y_new, omega_next)
        m = core.metrics()
        rewards = -m["tracking_error"]
        if self.optimality_weight > 0:
            rewards = rewards - self.optimality_weight * m["rel_distance_median"]
        truncated = core.k >= self.n_days
        obs = platform_observations(core, self.n_days)
        infos = [core.metrics_dict(i, m) for i in range(self.num_envs)]
        return obs, rewards, np.zeros(self.num_envs, dtype=bool), truncated, infos

    def _reset_done(self, done: np.ndarray, obs: np.ndarray) -> np.ndarray:
        for i in done:
            self.core.load(int(i), self.config.sample(self._rngs[i]))
        return platform_observations(self.core, self.n_days)
