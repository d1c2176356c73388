"""Single-agent Gymnasium view of EUber-v0 (``gym.make("EUber-v0")``): the platform's recommender learns.

Env card
--------
Learner: the platform's recommender. Workers follow the behavioural model (bid on a
recommended task of type z with the hidden probability ``alpha[i, z]``, amount from the fare
model with the worker's markup); winners by ``mechanism`` (``"bmw"`` default, ``"opt"``,
``"bg"``), second-price payments.

Action (``Box(0, 1, (W, S))`` float32): a score per (worker, task). Projection (documented
rule): ``projection="potr"`` (default) recommends the lists that maximise the total score
under POTR's constraints (Eqs. 6.1a-f; 6.1b/6.1c soft, see
:func:`~prosumer_gym.envs.euber.potr.solve_potr`); ``"topk"`` gives each worker its K
eligible tasks of highest score. A binary matrix is a valid action (it recommends its ones
first). CARS/PK produce scores via ``act(obs)``.

Observation (``Dict``): ``workers`` ``Box(W, 4)`` (available, range_frac, x/50, y/50),
``tasks`` ``Box(S, 5)`` (one-hot type ride/swap/V2G, task km / 100 (trip km; V2G:
energy kWh / 10), V2G energy share of E), ``eligible`` ``Box(W, S)`` 0/1 (availability,
Eqs. 6.1d-e), ``time`` ``Box(2,)`` (slot of day on the unit circle).

Reward: number of bids received (the CMAB signal of Eq. 6.4), or the negative total cost with
``reward="cost"``. ``info``: the market KPIs (``cost_usd``, ``tasks_served``,
``v2g_delivered_kwh`` vs ``E_kwh``, ``feasible``, ``payments_usd``, ``potr``, cumulative
``totals``) plus ``recommended`` (W, S) int8, ``bid_placed`` (W, S) bool, ``task_type`` (S,)
for learners (CARS updates from these), and ``mae`` is *not* given (the true alpha is hidden;
evaluation code reads ``env.unwrapped.market.alpha``).

Episodes truncate after ``n_slots`` (alias ``max_cycles``, default 96). Every keyword of
:class:`~prosumer_gym.envs.euber.market.EUberConfig` is accepted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from prosumer_gym.core.spaces import check_box
from prosumer_gym.core.validation import check_bool
from prosumer_gym.envs.euber.env import (
    PROJECTIONS,
    count_potr_fallback,
    fold_max_cycles,
    recommend_lists,
    slot_market_info,
)
from prosumer_gym.envs.euber.market import EUberConfig, EUberMarket
from prosumer_gym.envs.euber.wibs import select_winners

__all__ = ["EUberGymEnv"]

REWARDS = ("bids", "cost")
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(EUberConfig)}


class EUberGymEnv(gym.Env):
    """The platform's recommender as a Gymnasium agent; see the module docstring."""

    metadata = {"render_modes": ["human"], "render_fps": 4}

    def __init__(self, projection: str = "potr", reward: str = "bids", max_cycles: int | None = None,
                 report_timing: bool = False, render_mode: str | None = None, **config: Any) -> None:
        unknown = set(config) - _CONFIG_FIELDS
        if unknown:
            raise ValueError(f"unknown keyword(s) {sorted(unknown)}; EUber-v0 accepts {sorted(_CONFIG_FIELDS)} and "
                             "projection, reward, max_cycles, report_timing, render_mode")
        fold_max_cycles(config, max_cycles)
        self.config = EUberConfig(**config).validate()
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.projection, self.reward_kind, self.render_mode = projection, reward, render_mode
        self.report_timing = check_bool("report_timing", report_timing)
        self.market = EUberMarket(self.config)
        W, S = self.config.n_workers, self.config.n_tasks
        self.action_space = spaces.Box(0.0, 1.0, shape=(W, S), dtype=np.float32)
        self.observation_space = spaces.Dict({
            "workers": spaces.Box(np.tile(np.float32([0, 0, -10, -10]), (W, 1)),
                                  np.tile(np.float32([1, 1, 10, 10]), (W, 1)), dtype=np.float32),
            "tasks": spaces.Box(0.0, np.tile(np.float32([1, 1, 1, 10, 1]), (S, 1)), dtype=np.float32),
            "eligible": spaces.Box(0.0, 1.0, shape=(W, S), dtype=np.float32),
            "time": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
        })
        self._inst = None
        self.last_selection = None

    @property
    def max_cycles(self) -> int:
        return self.config.n_slots

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.market.reset(np.random.default_rng(int(self.np_random.integers(2**63 - 1))))
        self._inst = self.market.instance()
        self.last_selection = None
        return self._obs(), {"slot": 0, "E_kwh": float(self._inst.E), "task_type": self._inst.task_type.copy()}

    def _obs(self) -> dict[str, np.ndarray]:
        inst, mk = self._inst, self.market
        w = np.zeros((inst.n_workers, 4), dtype=np.float32)
        w[:, 0] = inst.worker_available
        w[:, 1] = np.clip(mk.range / mk.range_max, 0, 1)
        w[:, 2:] = np.clip(mk.pos / 50.0, -10, 10)
        t = np.zeros((inst.n_tasks, 5), dtype=np.float32)
        t[np.arange(inst.n_tasks), inst.task_type] = 1.0
        v2g = inst.is_v2g
        t[:, 3] = np.clip(np.where(v2g, inst.task_energy_kwh / 10.0, inst.task_trip_km / 100.0), 0, 10)
        t[:, 4] = np.where(v2g, inst.task_energy_kwh / max(inst.E, 1e-9), 0.0) if inst.E > 0 else 0.0
        ang = 2 * np.pi * inst.slot_of_day / 96.0
        return {"workers": w, "tasks": np.clip(t, 0, 10), "eligible": inst.eligible.astype(np.float32),
                "time": np.float32([np.sin(ang), np.cos(ang)])}

    def step(self, action: Any):
        if self._inst is None:
            raise RuntimeError("step() called before reset()")
        if self.market.slot >= self.config.n_slots:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        scores = check_box(action, self.action_space, "action")
        inst, mk = self._inst, self.market
        x, fallback = recommend_lists(scores, inst, self.projection, self.config.milp_time_limit,
                                      self.config.potr_constraints)
        fallback = count_potr_fallback(mk, self.config, self.projection, fallback)
        bids = mk.behavioural_bids(inst, x)
        sel = select_winners(self.config.mechanism, bids, inst, time_limit=self.config.milp_time_limit,
                             bmw_guard=self.config.bmw_guard)
        self.last_selection = sel
        mk.advance(inst, sel)
        info = slot_market_info(inst, x, sel, mk.totals, self.report_timing, fallback)
        info.update(recommended=x, bid_placed=np.isfinite(bids), task_type=inst.task_type.copy())
        reward = float(info["n_bids"]) if self.reward_kind == "bids" else -float(sel.cost)
        done = mk.slot >= self.config.n_slots
        if not done:
            self._inst = mk.instance()
        if self.render_mode == "human":
            self.render()
        return self._obs(), reward, False, done, info

    def render(self):
        s = self.last_selection
        t = self.market.totals
        if s is None:
            print(f"EUber-v0 slot {self.market.slot}: no auction yet")
        else:
            print(f"EUber-v0 slot {self.market.slot}: cost ${s.cost:.2f}, served {int(s.q.sum())}, V2G "
                  f"{s.v2g_delivered_kwh:.1f}/{s.E:.1f} kWh; totals ${t['cost_usd']:.0f}, {t['tasks_served']} tasks")
