"""StorageSharing-v0: energy-storage sharing by a modified auction and a Stackelberg game.

Usage::

    import gymnasium as gym
    import prosumer_gym                          # registers the ids
    env = gym.make("StorageSharing-v0")                      # Gymnasium view (one learner)
    # without the import: gym.make("prosumer_gym:StorageSharing-v0")
    from prosumer_gym.envs import storage_sharing_v0
    penv = storage_sharing_v0.parallel_env()                 # PettingZoo ParallelEnv (all agents)

Paper ``003`` (Tushar et al., IEEE Trans. Smart Grid 7(3), 2016), Sections III-V. Docs:
``docs/storage_sharing.md``. The paper's formulas are masked in our copy: the RU
utility, best response, SFC saving, closed-form price and inter-slot update are a
RECONSTRUCTION (``prosumer_gym.envs.storage_sharing.market``; ``docs/storage_sharing.md``).

Env card
--------
Agents
    ``auctioneer`` (the leader: sets the auction price) and ``ru_0 ... ru_{N-1}``
    (residential units, the followers: choose how much storage to share; ``n_rus``,
    default 8). Shared facility controllers (SFCs, ``n_sfcs``, default 5) are part of the
    environment: each has a bid ``c_m`` (cents/kWh) and a storage requirement ``Q_m`` (kWh).
    Every RU has a reservation price ``r_i`` (cents/kWh), a reluctance ``beta_i``
    (cents/kWh^2) and a maximum share ``b_i`` = ``share_fraction`` x its battery capacity
    (``households_per_ru`` x ``battery_kwh``). Defaults: ``r_i, c_m ~ U[20, 70]``
    (``price_range``), ``beta_i ~ U[0.01, 0.1]``, 5 households x 10 kWh per RU,
    ``share_fraction ~ U[0.4, 0.8]``, ``Q_m ~ U[10, 40]`` kWh per slot.
Slot (one hour) = two env steps, the Stackelberg order (leader first)
    At the start of a slot the auction's determination rule has run: participating RUs and
    SFCs (supply/demand intersection, marginal pair excluded unless ``include_marginal``),
    and the price window ``[lo, hi]`` are in the observations. (1) *price step*: the
    auctioneer's action sets the price ``p``; RU actions are ignored (no-op). (2) *share
    step*: every RU sees ``p`` and offers ``x_i``; the auctioneer's action is ignored; the
    allocation rule clears the slot (an oversupply is a burden shared ``burden="equal"``
    by default, or ``"proportional_reservation"`` / ``"proportional_share"``); rewards are
    paid. Observation component ``phase`` says which step comes next (0 price, 1 share).
    Non-participating RUs (and every agent in a closed market) are no-ops.
Episode
    ``n_slots`` = 24 hourly slots of the time-varying market (2 x 24 = 48 steps; the alias
    ``max_cycles`` is the episode length in *steps*, so an odd value ends on a price step).
    Inter-slot update (RECONSTRUCTION, see :class:`AvailabilityTracker`): an RU's offer in
    slot t is ``clip(b_i - a_i(t-1) - burden_aversion d_i(t-1), 0, b_i)`` (``lease_slots=1``,
    ``burden_aversion=1``: what it put in the market in t-1 is unavailable in t);
    reservation prices follow the time-of-use profile ``tou_profile`` (x0.8 off-peak,
    x1.0 shoulder, x1.2 peak, clipped to ``price_range``); SFC requirements are drawn anew
    every slot; bids are fixed for the episode. ``time_varying=False``: the one-shot static
    market (Sec. IV), the same slot repeated (no time-of-use, no update).
Actions
    ``auctioneer``: ``Box([0], [1])`` position of the price in the window,
    ``p = lo + a (hi - lo)``; with ``price_levels=L``, ``Discrete(L)``, level ``k`` ->
    ``lo + k (hi - lo) / (L - 1)``. ``ru_i``: ``Box([0], [1])``, the fraction of its
    available storage ``b_i(t)`` offered, ``x_i = a b_i(t)`` kWh. Nothing is projected:
    out-of-range, NaN or wrong-shape actions raise ``ValueError`` (a scalar is accepted for a
    shape-(1,) Box). The mechanism withdraws an offer when ``p <= r_i`` (the paper: "the RU
    removes its ES from the market").
Observations (``NamedBox``, float32, every component in [0, 1] or [-1, 1])
    Prices are normalised ``(p - price_lo) / (price_hi - price_lo)``; storage by
    ``storage_scale_kwh`` (the largest maximum share); reluctance by its range's upper end;
    requirement by ``n_sfcs x`` the requirement range's upper end; see :data:`AUCTIONEER_OBS`
    / :data:`RU_OBS` and ``env.obs_scales`` (:class:`ObsScales`) to decode.
    The auctioneer sees the declared reservation prices, reluctances and available
    storage of every RU: the information Algorithm 1's price/response exchange reveals
    (a documented assumption; the RL auctioneer may ignore it).
Rewards (at the share step; 0 at the price step)
    ``ru_i``: its realised utility ``U_i = (p - r_i) a_i - beta_i a_i^2`` (cents) at the share
    ``a_i = x_i - d_i`` actually used by the SFCs; ``auctioneer``: the average cost saving
    per participating SFC, ``J = (1/M) sum_m (c_m - p) q_m`` (cents).
Infos
    Price step: ``phase``, the determination (window, ``r_vickrey``, ``r_max``,
    participants, reason when closed) and ``se`` (the slot's Stackelberg equilibrium: price,
    offers, shares, saving, RU utilities, method). Share step, under ``"market"`` (one
    dict shared by all agents): price, offered/traded kWh, SFC savings and allocations, RU
    utilities, shares, ``burden_kwh``, payments, ``budget_surplus`` (0: budget balance),
    ``se``, each agent's ``regret`` against the SE, ``exploitability`` (their sum).
    Regrets (>= 0): auctioneer ``J(p*) - J(p)`` with best-responding RUs; RU
    ``U_i(x_i*(p), p) - U_i(x_i, p)`` at the announced price (the stage utility before the
    allocation rule). No wall-clock values: same seed, same infos.
Scenario
    ``scenario={...}`` fixes any of ``reservation`` (N,), ``reluctance`` (N,),
    ``max_share_kwh`` (N,), ``bid`` (M,) and ``requirement_kwh`` ((M,) every slot, or
    (slots, M) cycled) instead of drawing them; values are validated (prices inside
    ``price_range``, storage >= 0, reluctance > 0). Mechanism keywords: ``window``
    (``"floor"`` default, ``"vickrey"``), ``include_marginal``, ``burden``.
No trade
    If the curves do not cross, nobody offers/requires storage, or only the excluded
    marginal pair is left, the slot is closed (``market_open = 0``, ``reason`` in infos):
    all actions are no-ops and all rewards 0 (documented outcome, not an error).
Inspection
    ``env.current_slot`` (:class:`SlotRecord`): the slot being played -- its
    :class:`StorageMarket` (what each RU can offer now), :class:`Determination` and
    :class:`Equilibrium`; ``env.last_slot``: the last cleared slot, with its price and
    :class:`Clearing`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from prosumer_gym.core.env_base import MarketParallelEnv
from prosumer_gym.core.validation import check_bool, check_choice, check_float, check_floats, check_size
from prosumer_gym.core.validation import check_int as _int
from prosumer_gym.core.validation import check_range as _range
from prosumer_gym.core.pz import entry_points, figure_to_rgb
from prosumer_gym.core.seeding import reseed, spawn
from prosumer_gym.core.spaces import check_box, check_discrete
from prosumer_gym.envs.storage_sharing.auction import clear, determine
from prosumer_gym.envs.storage_sharing.model import (
    BURDEN_RULES,
    DEFAULT_TOU,
    WINDOWS,
    AvailabilityTracker,
    StorageMarket,
)
from prosumer_gym.envs.storage_sharing.observations import (
    AUCTIONEER,
    AUCTIONEER_OBS,
    AUCTIONEER_RU_FIELDS,
    HOURS,
    RU_OBS,
    ObsScales,
    observation_spaces,
    slot_observations,
    step_observations,
)
from prosumer_gym.envs.storage_sharing.records import SlotRecord, determination_summary, se_clearing, se_summary
from prosumer_gym.envs.storage_sharing.stackelberg import equilibrium, ru_best_response

__all__ = ["raw_env", "env", "parallel_env", "ObsScales", "SlotRecord", "AUCTIONEER_OBS", "AUCTIONEER_RU_FIELDS", "RU_OBS", "AUCTIONEER"]

SCENARIO_KEYS = ("reservation", "reluctance", "max_share_kwh", "bid", "requirement_kwh")


def footprint_bytes(n_rus: int, n_sfcs: int) -> float:
    """Estimate (bytes) of the largest arrays of a market of this size, checked against
    :data:`~prosumer_gym.core.validation.MAX_ENV_BYTES` before anything is allocated: the
    per-RU and per-SFC arrays, observations and Python objects (measured ~5 kB per RU at
    80 RUs, 8 kB taken) and the (RU, SFC) determination arrays (~16 8-byte entries per pair).
    The horizon allocates nothing per slot (requirements are drawn slot by slot)."""
    return 8192.0 * (n_rus + n_sfcs) + 8.0 * 16 * n_rus * n_sfcs


class raw_env(MarketParallelEnv):
    """PettingZoo parallel env for StorageSharing-v0 (see the module docstring: the env card)."""

    metadata = {**MarketParallelEnv.metadata, "name": "storage_sharing_v0", "render_fps": 2}
    horizon_attr = "_max_steps"  # max_cycles counts env steps: 2 per slot (price step, share step)

    def __init__(
        self,
        n_rus: int = 8,
        n_sfcs: int = 5,
        n_slots: int = HOURS,
        max_cycles: int | None = None,
        time_varying: bool = True,
        price_range: tuple[float, float] = (20.0, 70.0),
        reluctance_range: tuple[float, float] = (0.01, 0.1),
        households_per_ru: int = 5,
        battery_kwh: float = 10.0,
        share_fraction_range: tuple[float, float] = (0.4, 0.8),
        requirement_range: tuple[float, float] = (10.0, 40.0),
        tou_profile: Sequence[float] = DEFAULT_TOU,
        start_hour: int = 0,
        lease_slots: int | None = 1,
        burden_aversion: float = 1.0,
        include_marginal: bool = False,
        window: str = "floor",
        burden: str = "equal",
        price_levels: int | None = None,
        scenario: Mapping[str, Sequence[float]] | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.n_rus = _int("n_rus", n_rus, 1)
        self.n_sfcs = _int("n_sfcs", n_sfcs, 1)
        check_size("StorageSharing-v0", f"n_rus={self.n_rus}, n_sfcs={self.n_sfcs}",
                   footprint_bytes(self.n_rus, self.n_sfcs))
        self.n_slots = _int("n_slots", n_slots, 1)
        self._max_steps = 2 * self.n_slots
        if max_cycles is not None:
            self.max_cycles = max_cycles
        self.time_varying = check_bool("time_varying", time_varying)
        self.price_range = _range("price_range", price_range, 0.0)
        if self.price_range[0] >= self.price_range[1]:
            raise ValueError(f"price_range must have low < high, got {self.price_range}")
        self.reluctance_range = _range("reluctance_range", reluctance_range, 0.0, lo_open=True)
        self.households_per_ru = _int("households_per_ru", households_per_ru, 1)
        self.battery_kwh = check_float("battery_kwh", battery_kwh, 0.0, lo_open=True)
        self.share_fraction_range = _range("share_fraction_range", share_fraction_range, 0.0, 1.0)
        self.requirement_range = _range("requirement_range", requirement_range, 0.0)
        self.tou_profile = check_floats("tou_profile", tou_profile, 0.0, lo_open=True, scalar_ok=True)
        self.start_hour = _int("start_hour", start_hour, 0, HOURS - 1)
        if lease_slots is not None:
            lease_slots = _int("lease_slots", lease_slots, 0)
        self.lease_slots = lease_slots
        self.burden_aversion = check_float("burden_aversion", burden_aversion, 0.0)
        self.include_marginal = check_bool("include_marginal", include_marginal)
        self.window = check_choice("window", window, WINDOWS)
        self.burden = check_choice("burden", burden, BURDEN_RULES)
        if price_levels is not None:
            price_levels = _int("price_levels", price_levels, 2)
        self.price_levels = price_levels
        self.scenario = self._check_scenario(scenario)
        self._init_render(render_mode)

        capacity = self.households_per_ru * self.battery_kwh
        share_max = capacity * self.share_fraction_range[1]
        if "max_share_kwh" in self.scenario:
            share_max = float(self.scenario["max_share_kwh"].max())
        req_max = self.requirement_range[1]
        if "requirement_kwh" in self.scenario:
            req_max = float(self.scenario["requirement_kwh"].max())
        beta_max = self.reluctance_range[1]
        if "reluctance" in self.scenario:
            beta_max = float(self.scenario["reluctance"].max())
        self.capacity_kwh = capacity
        self.obs_scales = ObsScales(
            price_lo=self.price_range[0],
            price_hi=self.price_range[1],
            reluctance_scale=beta_max,
            storage_scale_kwh=max(share_max, 1e-9),
            requirement_scale_kwh=max(self.n_sfcs * req_max, 1e-9),
            n_rus=self.n_rus,
            n_sfcs=self.n_sfcs,
        )

        self.possible_agents = [AUCTIONEER] + [f"ru_{i}" for i in range(self.n_rus)]
        self._ru_agents = tuple(self.possible_agents[1:])
        self.agents: list[str] = []
        box = spaces.Box(low=0.0, high=1.0, shape=(1,), dtype=np.float32)
        auct_space = spaces.Discrete(price_levels) if price_levels is not None else box
        self.action_spaces: dict[str, spaces.Space] = {AUCTIONEER: auct_space}
        for a in self.possible_agents[1:]:
            self.action_spaces[a] = spaces.Box(low=0.0, high=1.0, shape=(1,), dtype=np.float32)
        self.observation_spaces = observation_spaces(list(self._ru_agents))
        self._rng: np.random.Generator | None = None
        self.last_slot: SlotRecord | None = None
        self._steps = 0

    # ------------------------------------------------------------------ configuration
    def _check_scenario(self, scenario: Mapping[str, Sequence[float]] | None) -> dict[str, np.ndarray]:
        if scenario is None:
            return {}
        if not isinstance(scenario, Mapping):
            raise ValueError(f"scenario must be a mapping with keys among {SCENARIO_KEYS}, got {type(scenario).__name__}")
        unknown = {repr(k) for k in scenario if k not in SCENARIO_KEYS}
        if unknown:
            raise ValueError(f"scenario has unknown keys {sorted(unknown)}; allowed: {SCENARIO_KEYS}")
        out: dict[str, np.ndarray] = {}
        lo, hi = self.price_range
        for key, value in scenario.items():
            try:
                arr = np.array(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"scenario['{key}'] must be numbers, got {value!r}") from None
            n = self.n_sfcs if key in ("bid", "requirement_kwh") else self.n_rus
            who = "n_sfcs" if n == self.n_sfcs and key in ("bid", "requirement_kwh") else "n_rus"
            ok_shape = arr.shape == (n,) or (key == "requirement_kwh" and arr.ndim == 2 and arr.shape[1] == n
                                             and arr.shape[0] >= 1)
            if not ok_shape:
                shapes = f"({n},)" + (f" or (slots, {n})" if key == "requirement_kwh" else "")
                raise ValueError(f"scenario['{key}'] must have shape {shapes} ({who}={n}), got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"scenario['{key}'] must be finite, got {arr!r}")
            if key in ("reservation", "bid") and (np.any(arr < lo) or np.any(arr > hi)):
                raise ValueError(f"scenario['{key}'] must lie in price_range [{lo}, {hi}] cents/kWh, got {arr!r}")
            if key == "reluctance" and np.any(arr <= 0):
                raise ValueError(f"scenario['reluctance'] must be > 0, got {arr!r}")
            if key in ("max_share_kwh", "requirement_kwh") and np.any(arr < 0):
                raise ValueError(f"scenario['{key}'] must be >= 0 kWh (negative capacities are invalid), got {arr!r}")
            out[key] = arr
        return out

    # ------------------------------------------------------------------ PettingZoo API
    @MarketParallelEnv.max_cycles.setter
    def max_cycles(self, value: int) -> None:  # the base's getter: env steps, 2 per slot
        MarketParallelEnv.max_cycles.fset(self, value)
        self.n_slots = (self._max_steps + 1) // 2

    @property
    def current_slot(self) -> SlotRecord:
        """The slot being played: its market (what every RU can offer now), determination and SE."""
        if self._rng is None:
            raise RuntimeError("current_slot is defined after reset()")
        return self._record

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start a new episode: draw the community (RUs, SFCs) from the seed."""
        self._rng = reseed(self._rng, seed)
        if options:
            warnings.warn(f"reset options {sorted(options)} are ignored (StorageSharing-v0 has none)", stacklevel=2)
        pop_rng, self._req_rng = spawn(self._rng, 2)
        n, m = self.n_rus, self.n_sfcs
        sc = self.scenario
        lo, hi = self.price_range
        draws = {
            "reservation": pop_rng.uniform(lo, hi, size=n),
            "reluctance": pop_rng.uniform(*self.reluctance_range, size=n),
            "max_share_kwh": self.capacity_kwh * pop_rng.uniform(*self.share_fraction_range, size=n),
            "bid": pop_rng.uniform(lo, hi, size=m),
        }
        self.reservation_base = sc.get("reservation", draws["reservation"]).copy()
        self.reluctance = sc.get("reluctance", draws["reluctance"]).copy()
        self.max_share_kwh = sc.get("max_share_kwh", draws["max_share_kwh"]).copy()
        self.bid = sc.get("bid", draws["bid"]).copy()
        self._static_requirement = None if self.time_varying else self._draw_requirement(0)
        self._tracker = AvailabilityTracker(self.max_share_kwh, self.lease_slots, self.burden_aversion)
        self._slot = 0
        self._steps = 0
        self._phase = 0
        self._price: float | None = None
        self._last_price: float | None = None
        self._last_shared = np.zeros(n)
        self._last_burden = np.zeros(n)
        self.last_slot = None
        self.agents = self.possible_agents[:]
        self._prepare_slot()
        return self._observations(), self._price_infos()

    def _draw_requirement(self, t: int) -> np.ndarray:
        req = self.scenario.get("requirement_kwh")
        if req is not None:
            return (req if req.ndim == 1 else req[t % req.shape[0]]).copy()
        return self._req_rng.uniform(*self.requirement_range, size=self.n_sfcs)

    def _hour(self, t: int) -> int:
        return (self.start_hour + t) % HOURS

    def _prepare_slot(self) -> None:
        """Build slot ``t``'s market, run the determination rule and solve its SE."""
        t = self._slot
        lo, hi = self.price_range
        if self.time_varying:
            mult = self.tou_profile[(self.start_hour + t) % self.tou_profile.size]
            r = np.clip(self.reservation_base * mult, lo, hi)
            avail = self._tracker.available_kwh
            req = self._draw_requirement(t)
        else:
            r, avail, req = self.reservation_base, self.max_share_kwh, self._static_requirement
        market = StorageMarket.trusted(r, self.reluctance, avail, self.bid, req, self.price_range)
        det = determine(market, include_marginal=self.include_marginal, window=self.window)
        eq = equilibrium(market, det)
        se_clear = se_clearing(market, det, eq, self.burden)
        self._record = SlotRecord(t, market, det, eq, se_clear)
        self._ru_part = det.ru_mask(self.n_rus)
        self._se_info = se_summary(det, eq, se_clear)
        self._auct_tmpl, self._ru_tmpl = slot_observations(self.obs_scales, self._record, self._ru_part, self._hour(t),
                                                           self._last_price, self._last_shared, self._last_burden)
        self._det_info = determination_summary(market, det, t, self._hour(t))

    # ------------------------------------------------------------------ step
    def _box_action(self, agent: str, action: Any) -> float:
        # fast path for the common valid case; check_box gives the error message otherwise
        if isinstance(action, np.ndarray) and action.shape == (1,) and action.dtype.kind in "fiu":
            v = float(action[0])
        elif isinstance(action, (float, int, np.floating, np.integer)) and not isinstance(action, (bool, np.bool_)):
            v = float(action)
        else:
            if (isinstance(action, (bool, np.bool_, str)) or action is None
                    or (isinstance(action, np.ndarray) and action.dtype.kind not in "fiu")):
                raise ValueError(f"actions[{agent!r}] must be a number in [0, 1] (shape (1,)), got {action!r}")
            try:
                arr = np.asarray(action, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"actions[{agent!r}] must be a number in [0, 1] (shape (1,)), got {action!r}") from None
            v = float(check_box(arr.reshape(1) if arr.shape == () else arr, self.action_spaces[agent],
                                f"actions[{agent!r}]")[0])
        if not 0.0 <= v <= 1.0:  # also rejects NaN
            raise ValueError(f"actions[{agent!r}] must be a finite number in [0, 1], got {action!r}")
        return v

    def _check_actions(self, actions: dict[str, Any]) -> tuple[float, np.ndarray]:
        self._check_action_dict(actions)  # every agent acts in both phases (no-ops included)
        if self.price_levels is not None:
            k = check_discrete(actions[AUCTIONEER], self.price_levels, f"actions[{AUCTIONEER!r}]")
            price_pos = k / (self.price_levels - 1)
        else:
            price_pos = self._box_action(AUCTIONEER, actions[AUCTIONEER])
        shares = np.fromiter((self._box_action(a, actions[a]) for a in self.possible_agents[1:]), dtype=np.float64,
                             count=self.n_rus)
        return price_pos, shares

    def step(self, actions: dict[str, Any]):
        price_pos, shares = self._check_actions(actions)
        self._steps += 1
        if self._phase == 0:
            rec = self._record
            if rec.determination.open:
                lo, hi = rec.determination.window
                self._price = lo + price_pos * (hi - lo)
            else:
                self._price = None
            self._phase = 1
            rewards = dict.fromkeys(self.possible_agents, 0.0)
            infos = self._price_infos(announced=True)
        else:
            rewards, infos = self._clear_slot(shares)
            self._slot += 1
            self._phase = 0
            self._prepare_slot()
        done = self._steps >= self._max_steps
        obs = self._observations()
        terminations, truncations = self._end_step(self.possible_agents, done)
        return obs, rewards, terminations, truncations, infos

    def _clear_slot(self, shares: np.ndarray) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
        rec = self._record
        det, market, eq = rec.determination, rec.market, rec.equilibrium
        n = self.n_rus
        if det.open:
            p = float(self._price)
            cl = clear(market, det, p, shares * market.offer_kwh, self.burden)
            ri = det.rus
            r, beta = market.reservation[ri], market.reluctance[ri]
            br = ru_best_response(p, r, beta, market.offer_kwh[ri])
            x = cl.offers_kwh[ri]
            ru_regret = np.zeros(n)
            ru_regret[ri] = np.maximum((p - r) * (br - x) - beta * (br * br - x * x), 0.0)
            j_br = min(float(br.sum()), det.requirement_kwh) * (det.bid_mean - p) / det.sfcs.size
            auct_regret = max(eq.saving - j_br, 0.0)
        else:
            p = None
            cl = clear(market, det, 0.0, np.zeros(n), self.burden)
            ru_regret = np.zeros(n)
            auct_regret = 0.0
        self.last_slot = SlotRecord(rec.slot, market, det, eq, rec.se_clearing, p, cl)
        if self.time_varying:
            self._tracker.update(cl.shared_kwh, cl.burden_kwh)
        self._last_price = p
        self._last_shared = cl.shared_kwh
        self._last_burden = cl.burden_kwh
        ru_agents = self.possible_agents[1:]
        regret = {AUCTIONEER: auct_regret, **dict(zip(ru_agents, ru_regret.tolist()))}
        utilities = cl.ru_utility.tolist()
        market_info = {
            **self._det_info,
            "phase": "share",
            "price": p,
            "offered_kwh": float(cl.offers_kwh.sum()),
            "traded_kwh": float(cl.shared_kwh.sum()),
            "saving": cl.saving,
            "sfc_savings": tuple(cl.sfc_saving.tolist()),
            "sfc_kwh": tuple(cl.sfc_kwh.tolist()),
            "ru_utilities": tuple(utilities),
            "shared_kwh": tuple(cl.shared_kwh.tolist()),
            "burden_kwh": tuple(cl.burden_kwh.tolist()),
            "sfc_payments": cl.sfc_payments,
            "ru_receipts": cl.ru_receipts,
            "budget_surplus": cl.budget_surplus,
            "se": dict(self._se_info),
            "regret": regret,
            "exploitability": float(sum(regret.values())),
        }
        rewards = {AUCTIONEER: cl.saving, **dict(zip(ru_agents, utilities))}
        infos: dict[str, dict[str, Any]] = {
            AUCTIONEER: {
                "phase": "share",
                "price": p,
                "saving": cl.saving,
                "regret": auct_regret,
                "se_price": self._se_info["price"],
                "se_saving": eq.saving,
                "market": market_info,
            }
        }
        se_offers, se_util = self._se_info["offers_kwh"], self._se_info["ru_utilities"]
        part = self._ru_part.tolist()
        offers_l, shared_l, burden_l = cl.offers_kwh.tolist(), cl.shared_kwh.tolist(), cl.burden_kwh.tolist()
        for i, a in enumerate(ru_agents):
            infos[a] = {
                "phase": "share",
                "participating": part[i],
                "offer_kwh": offers_l[i],
                "shared_kwh": shared_l[i],
                "burden_kwh": burden_l[i],
                "utility": utilities[i],
                "regret": regret[a],
                "se_offer_kwh": se_offers[i],
                "se_utility": se_util[i],
                "market": market_info,
            }
        return rewards, infos

    def _price_infos(self, announced: bool = False) -> dict[str, dict[str, Any]]:
        market_info = {**self._det_info, "phase": "price" if announced else "reset", "se": dict(self._se_info)}
        if announced:
            market_info["price"] = self._price
        avail = self._record.market.offer_kwh.tolist()
        r = self._record.market.reservation.tolist()
        part = self._ru_part.tolist()
        infos: dict[str, dict[str, Any]] = {AUCTIONEER: {"phase": market_info["phase"], "market": market_info}}
        for i, a in enumerate(self.possible_agents[1:]):
            infos[a] = {"phase": market_info["phase"], "participating": part[i], "available_kwh": avail[i],
                        "reservation": r[i], "market": market_info}
        return infos

    # ------------------------------------------------------------------ observations
    def _observations(self) -> dict[str, np.ndarray]:
        auct, ru = step_observations(self.obs_scales, self._auct_tmpl, self._ru_tmpl, self._phase, self._price)
        obs = {AUCTIONEER: auct}
        obs.update(zip(self._ru_agents, ru))
        return obs

    # ------------------------------------------------------------------ rendering
    def _render_text(self) -> str:
        if self.last_slot is None:
            rec = self._record
            det = rec.determination
            head = f"StorageSharing-v0 slot {rec.slot} (hour {self._hour(rec.slot)}): "
            if not det.open:
                return head + f"market closed ({det.reason})"
            return head + (f"window [{det.window[0]:.2f}, {det.window[1]:.2f}] c/kWh, RUs {det.rus.tolist()}, "
                           f"SFCs {det.sfcs.tolist()}, SE price {rec.equilibrium.price:.2f}")
        s = self.last_slot
        det, cl = s.determination, s.clearing
        head = f"StorageSharing-v0 slot {s.slot} (hour {self._hour(s.slot)}): "
        if not det.open:
            return head + f"no trade ({det.reason})"
        lines = [
            head + f"price {s.price:.2f} c/kWh (SE {s.equilibrium.price:.2f}, window [{det.window[0]:.2f}, "
            f"{det.window[1]:.2f}]), saving per SFC {cl.saving:.1f} c (SE {s.equilibrium.saving:.1f}), "
            f"traded {cl.shared_kwh.sum():.1f} of {s.market.requirement_kwh[det.sfcs].sum():.1f} kWh required",
            "   RU  r c/kWh  offer kWh  shared kWh  burden kWh  utility c",
        ]
        for i in range(self.n_rus):
            lines.append(
                f" {i:4d}  {s.market.reservation[i]:7.2f}  {cl.offers_kwh[i]:9.2f}  {cl.shared_kwh[i]:10.2f}  "
                f"{cl.burden_kwh[i]:10.2f}  {cl.ru_utility[i]:9.1f}"
            )
        return "\n".join(lines)

    def _render_rgb(self) -> np.ndarray:
        from matplotlib.figure import Figure

        rec = self.last_slot if self.last_slot is not None else self._record
        market, det = rec.market, rec.determination
        fig = Figure(figsize=(6.4, 3.6), dpi=80)
        ax = fig.subplots()
        ro = np.argsort(market.reservation, kind="stable")
        so = np.argsort(-market.bid, kind="stable")
        S = np.concatenate(([0.0], np.cumsum(market.offer_kwh[ro])))
        D = np.concatenate(([0.0], np.cumsum(market.requirement_kwh[so])))
        ax.stairs(market.reservation[ro], S, label="supply (RUs by r)", color="tab:blue", baseline=None)
        ax.stairs(market.bid[so], D, label="demand (SFCs by c)", color="tab:red", baseline=None)
        if det.open:
            ax.axhspan(det.window[0], det.window[1], color="tab:green", alpha=0.15, label="price window")
            if rec.price is not None:
                ax.axhline(rec.price, color="k", lw=1, label="price")
        ax.set_xlabel("storage (kWh)")
        ax.set_ylabel("cents/kWh")
        ax.set_title(f"slot {rec.slot}: " + ("open" if det.open else f"closed ({det.reason})"))
        ax.legend(loc="best", fontsize=7)
        fig.tight_layout()
        return figure_to_rgb(fig)


parallel_env, env = entry_points(raw_env)
