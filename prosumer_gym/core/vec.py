"""Shared Stable-Baselines3 ``VecEnv`` plumbing for batches of independent markets.

:class:`MarketVecEnv` holds what every batched market of the suite does the same way, once:

* seeding: after ``venv.seed(s)`` the next ``reset()`` seeds market ``i`` with ``s + i`` (SB3's
  rule); markets without a seed keep (or start) their own stream; ``set_options`` likewise
  applies to the next ``reset()`` only;
* auto-reset: a market whose episode ended in ``step_wait`` is reset inside the step; its
  info then holds ``terminal_observation`` (the last observation of the old episode) and
  ``TimeLimit.truncated`` (truncated and not terminated), and the returned observation row
  is the new episode's first;
* the SB3 attribute / method plumbing (``get_attr``, ``set_attr``, ``env_method``,
  ``env_is_wrapped``, ``get_images``, ``close``) over :meth:`MarketVecEnv._target`.

A subclass gives the market part: :meth:`~MarketVecEnv._reset_batch` (or the per-market
:meth:`~MarketVecEnv._reset_one`), :meth:`~MarketVecEnv._step_batch` and, for an array-batched
core, :meth:`~MarketVecEnv._reset_done`. :class:`SequentialVecEnv` is the generic subclass for
markets whose step is not array-batched over markets: ``num_envs`` Gymnasium views stepped in
one process, one after the other (like SB3's ``DummyVecEnv``, without the ``gym.make``
wrappers, the observation buffers and the per-step ``deepcopy`` of the infos).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from prosumer_gym.core.seeding import check_seed
from prosumer_gym.core.validation import check_int

__all__ = ["MarketVecEnv", "SequentialVecEnv", "check_num_envs"]


def check_num_envs(value: object, name: str = "num_envs") -> int:
    """``num_envs`` as an ``int >= 1`` (``ValueError`` naming ``name`` otherwise)."""
    return check_int(name, value, 1)


class MarketVecEnv(VecEnv):
    """Base of the suite's batched markets (module docstring). Subclasses call
    ``super().__init__(num_envs, observation_space, action_space)``."""

    def __init__(self, num_envs: int, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__(check_num_envs(num_envs), observation_space, action_space)
        self._actions: Any = None

    # ------------------------------------------------------------------ market hooks
    def _reset_one(self, i: int, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        """Reset market ``i`` (``seed`` None: its stream continues); ``(obs_i, info_i)``."""
        raise NotImplementedError

    def _reset_batch(self, seeds: list[int | None], options: list[dict[str, Any] | None]) \
            -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Reset every market; ``(obs (num_envs, ...), infos)``. Default: :meth:`_reset_one` each."""
        out = [self._reset_one(i, seeds[i], options[i]) for i in range(self.num_envs)]
        return np.stack([o for o, _ in out]), [info for _, info in out]

    def _check_actions(self, actions: Any) -> Any:
        """Validate the batch of actions in ``step_async`` (default: as given)."""
        return actions

    def _step_batch(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        """Step every market: ``(obs, rewards, terminated, truncated, infos)`` before any reset."""
        raise NotImplementedError

    def _reset_done(self, done: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """Start a new episode in the markets ``done`` (indices); return the batch observation
        with their rows replaced. Default: :meth:`_reset_one` with no seed, ``reset_infos`` kept."""
        obs = obs.copy()
        for i in done:
            obs[i], self.reset_infos[i] = self._reset_one(int(i), None, None)
        return obs

    def _target(self, i: int) -> Any:
        """The object ``get_attr``/``set_attr``/``env_method`` address for market ``i``."""
        return self

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        seeds = [None if s is None else check_seed(s, "seed") for s in self._seeds]
        obs, infos = self._reset_batch(seeds, list(self._options))
        self.reset_infos = infos
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: Any) -> None:
        self._actions = self._check_actions(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        actions, self._actions = self._actions, None
        obs, rewards, terminated, truncated, infos = self._step_batch(actions)
        dones = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        done = np.flatnonzero(dones)
        for i in done:
            infos[i]["terminal_observation"] = obs[i].copy()
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if done.size:
            obs = self._reset_done(done, obs)
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def close(self) -> None:
        pass

    def _indices(self, indices: Any) -> Sequence[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self._target(i), attr_name) for i in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        for i in self._indices(indices):
            setattr(self._target(i), attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        return [getattr(self._target(i), method_name)(*method_args, **method_kwargs) for i in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [isinstance(self._target(i), wrapper_class) for i in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]


class SequentialVecEnv(MarketVecEnv):
    """``num_envs`` Gymnasium views built by ``make()`` (``Box`` observations), stepped in one
    process one after the other: for markets whose step is not array-batched. Market ``i``'s
    trajectory is exactly that of ``make().reset(seed=s + i)`` stepped with the same actions
    (auto-reset: ``reset()`` without a seed, so its stream continues)."""

    def __init__(self, make: Callable[[], gym.Env], num_envs: int = 8) -> None:
        n = check_num_envs(num_envs)
        self.envs = [make() for _ in range(n)]
        if len({id(e) for e in self.envs}) != n:
            raise ValueError("make must return a new env at every call (it returned the same object twice)")
        first = self.envs[0]
        if not isinstance(first.observation_space, gym.spaces.Box):
            raise ValueError(f"SequentialVecEnv needs a Box observation space, got {first.observation_space}")
        super().__init__(n, first.observation_space, first.action_space)
        self.render_mode = None
        self._obs_dtype = first.observation_space.dtype

    def _target(self, i: int) -> Any:
        return self.envs[i]

    def _reset_one(self, i: int, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.envs[i].reset(seed=seed, options=options or None)
        return np.asarray(obs, dtype=self._obs_dtype), info

    def _check_actions(self, actions: Any) -> Any:
        acts = np.asarray(actions)
        if acts.ndim == 0 or len(acts) != self.num_envs:
            raise ValueError(f"actions must have one row per env ({self.num_envs}), got shape {acts.shape}")
        return acts

    def _step_batch(self, actions: Any):
        n = self.num_envs
        obs = np.empty((n, *self.observation_space.shape), dtype=self._obs_dtype)
        rewards = np.empty(n)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        infos: list[dict[str, Any]] = []
        for i, env in enumerate(self.envs):
            obs[i], rewards[i], terminated[i], truncated[i], info = env.step(actions[i])
            infos.append(dict(info))  # our own dict: auto-reset keys never land in the env's
        return obs, rewards, terminated, truncated, infos

    def close(self) -> None:
        for env in self.envs:
            env.close()
