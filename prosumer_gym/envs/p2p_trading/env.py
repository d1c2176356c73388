"""P2PTrading-v0: prospect-theory P2P energy trading with sellers learning their prices.

Usage::

    import gymnasium as gym
    import prosumer_gym                          # registers the ids
    env = gym.make("P2PTrading-v0")                      # Gymnasium view (one learner)
    # without the import: gym.make("prosumer_gym:P2PTrading-v0")
    from prosumer_gym.envs import p2p_trading_v0
    penv = p2p_trading_v0.parallel_env()                 # PettingZoo ParallelEnv (all agents)

Dissertation ``001``, chapter 5 (Eqs. 5.1-5.9, Algs. 4-6, Section 5.3). Docs:
``docs/p2p_trading.md``.

Env card
--------
Agents
    ``seller_0 ... seller_{S-1}`` (``n_sellers``, default 15): households with rooftop PV
    (``seller_pv_kw``, default 4 kWp, the paper's size) selling their day's surplus.
    Buyers (``n_buyers``, default 15) are part of the environment: each has a forecast
    demand, a static reference price ``rho_j ~ U[0.06, 0.10]`` $/kWh and prospect-theory
    parameters ``k+, k- ~ U[2.10, 2.61]``, ``zeta+ ~ U[0.60, 0.88]``,
    ``zeta- ~ U[0.52, 1.0]`` (Section 5.3.1).
Step
    One step is one trading day. (1) Each seller's action moves its price (projection: the
    new price is clipped into the grid band ``[rho_gb, rho_gs] = [0.06, 0.12]`` $/kWh,
    Eq. 5.2d — the only projection this env makes). (2) The market clears today's
    day-ahead instance (EWMA(0.5) forecasts of surplus ``r_i`` and demand ``w_j``, kWh)
    with the clearing ``mechanism`` (default: our structured solver, see
    ``docs/p2p_trading_clearing.md``; also ``"debate"`` Alg. 4, ``"rule"``, ``"zhu"``,
    ``"milp"``, ``"bnb"`` near-exact), maximising buyers' total PT value (Eqs. 5.1-5.2g). (3) Each seller is
    paid for the energy its buyers receive. The learned price therefore reaches the
    allocation of the same day (the authors' public scripts did not do this).
Actions (``Discrete``)
    ``action_mode="step"`` (default, the paper): index ``k`` moves the price by
    ``price_steps[k] * price_tick`` with ``price_steps=(-1, 0, +1)``, ``price_tick=$0.001``
    — i.e. ``0 = -delta, 1 = hold, 2 = +delta``. A wider step set is a keyword, e.g.
    ``price_steps=(-5, -1, 0, 1, 5)``. ``action_mode="level"``: ``Discrete(61)``, index
    ``k`` sets the price to ``rho_gb + k * price_tick`` directly.
Observation (``Box(6,)`` float32, per seller; all components bounded)
    ``price``: (rho_i - rho_gb) / (rho_gs - rho_gb), in [0, 1];
    ``surplus_forecast``: today's forecast surplus / (24 h x kWp), in [0, 1];
    ``sold_yesterday``: energy sold yesterday / (24 h x kWp), in [0, 1];
    ``revenue_yesterday``: yesterday's revenue / (rho_gs x 24 h x kWp), in [0, 1];
    ``day_sin``, ``day_cos``: day of year on the unit circle.
    ``state()`` gives the global view (all prices and surpluses, buyers' demand forecasts
    and reference prices, season), see ``state_space``.
Rewards
    Seller ``i``'s revenue today, ``R_i = sum_j p_ij x_ij w_j`` ($), where ``p_ij`` is the
    transaction price (``rho_i``; mid-market for ``"rule"``). The PT transform of a
    seller's experience belongs to the agent (PQR/ProDQN), not to the environment.
Infos (per agent)
    ``price`` ($/kWh), ``sold_kwh``, ``revenue_usd``, ``surplus_forecast_kwh``,
    ``grid_export_kwh`` (unsold surplus), ``pt_value``: the seller's PT-perceived value of
    its day against its reference (selling its whole forecast surplus at its initial,
    reference price; unsold energy earns the grid's ``rho_gb``); and under ``"market"``
    (one shared dict): ``day``, ``buyers_pt_value`` (objective of Eq. 5.2),
    ``sellers_revenue_usd``, ``traded_kwh``, ``grid_import_kwh``, ``demand_kwh``,
    ``surplus_kwh``, ``mean_price`` (volume-weighted), ``max_violation`` and
    ``feasible`` (Eqs. 5.2a-g checked every step), ``mechanism``. With
    ``report_timing=True`` also ``clearing_seconds`` (wall clock: off by default so that
    the same seed gives identical infos). With ``mechanism_kwargs={"certify": True}``
    (``"savings"``; opt-in because it runs a branch and bound per day: a mean of 5-8 ms at
    5x5, 40-50 ms at 15x15, ~0.1-0.2 s at 20x20 and ~1 s at 30x30 on real days, i.e.
    30-1,000x the clearing) and with ``mechanism="bnb"``, also ``gain_lost_share`` (share
    of the attainable gain lost against a certified upper bound), ``upper_bound``,
    ``upper_bound_proven``, ``no_trade_value``; certifying leaves the allocation unchanged. Reset infos carry each seller's ``pt_params``.
Inspection
    ``env.last_market`` (:class:`MarketRecord`): the day's :class:`MarketInstance` (prices,
    demands, capacities, losses, PT parameters) and the cleared :class:`Allocation`, so
    anyone can verify feasibility or compare with another solver.
Episode
    ``n_days`` (alias ``max_cycles``) = 365 days by default, starting at ``start_day`` of
    the data year; the last step truncates every agent.
Data
    Real CityLearn 2022 household loads and pvlib PVWatts generation (``prosumer_gym.data``),
    households sampled and augmented with the reset seed from the ``split`` (``"train"``
    by default; the leaderboard uses ``"test"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from prosumer_gym import data as pgdata
from prosumer_gym.core.env_base import MarketParallelEnv, resolve_horizon
from prosumer_gym.core.validation import check_bool, check_choice, check_float, check_floats, check_mapping, \
    check_size, is_int
from prosumer_gym.core.validation import check_int as _int
from prosumer_gym.core.validation import check_range as _range
from prosumer_gym.core.prospect import pt_value, sample_pt_params
from prosumer_gym.core.pz import entry_points, figure_to_rgb
from prosumer_gym.core.seeding import reseed, spawn
from prosumer_gym.core.spaces import NamedBox, check_discrete
from prosumer_gym.envs.p2p_trading.clearing import DEFAULT_MECHANISM, MECHANISMS, make_clearer
from prosumer_gym.envs.p2p_trading.clearing.bound import CERTIFICATE_KEYS
from prosumer_gym.envs.p2p_trading.market import Allocation, MarketInstance, energy_kwh, feasibility_report

__all__ = ["raw_env", "env", "parallel_env", "MarketRecord", "OBS_NAMES"]

OBS_NAMES = ("price", "surplus_forecast", "sold_yesterday", "revenue_yesterday", "day_sin", "day_cos")
ACTION_MODES = ("step", "level")
DAYS_PER_YEAR = 365
#: the most price levels a band may have (``(grid_sell_price - grid_buy_price) / price_tick``)
MAX_PRICE_LEVELS = 10**6


def footprint_bytes(n_sellers: int, n_buyers: int) -> float:
    """Estimate (bytes) of the largest arrays of a market of this size, checked against
    :data:`~prosumer_gym.core.validation.MAX_ENV_BYTES` before anything is allocated:
    the sampled households' hourly year (~4 float64 series of 8760 h per household, measured
    ~0.24 MB per household at reset), ~16 float64 (S, B) pair arrays (losses, masks, the
    allocation, energies, the clearer's buffers) and ~1 kB of Python objects per agent."""
    S, B = n_sellers, n_buyers
    return 8.0 * (4 * 8760 * (S + B) + 16 * S * B) + 1024.0 * S


@dataclass(frozen=True)
class MarketRecord:
    """One cleared trading day: ``instance`` (inputs) and ``allocation`` (output)."""

    day: int
    data_day: int
    instance: MarketInstance
    allocation: Allocation


class raw_env(MarketParallelEnv):
    """PettingZoo parallel env for P2PTrading-v0 (see the module docstring: the env card)."""

    metadata = {**MarketParallelEnv.metadata, "name": "p2p_trading_v0"}
    horizon_attr = "n_days"

    def __init__(
        self,
        n_sellers: int = 15,
        n_buyers: int = 15,
        n_days: int = DAYS_PER_YEAR,
        max_cycles: int | None = None,
        start_day: int = 0,
        mechanism: str = DEFAULT_MECHANISM,
        mechanism_kwargs: dict[str, Any] | None = None,
        action_mode: str = "step",
        price_steps: Sequence[int] = (-1, 0, 1),
        price_tick: float = 0.001,
        grid_sell_price: float = 0.12,
        grid_buy_price: float = 0.06,
        initial_price_range: tuple[float, float] = (0.09, 0.12),
        buyer_ref_price_range: tuple[float, float] = (0.06, 0.10),
        k_range: tuple[float, float] = (2.10, 2.61),
        zeta_pos_range: tuple[float, float] = (0.60, 0.88),
        zeta_neg_range: tuple[float, float] = (0.52, 1.0),
        loss_levels: Sequence[float] = (0.01, 0.02, 0.03, 0.04),
        loss_max: float = 0.025,
        min_trade_kwh: float = 0.05,
        seller_pv_kw: float | Sequence[float] = 4.0,
        split: str = "train",
        forecast_alpha: float = 0.5,
        report_timing: bool = False,
        render_mode: str | None = None,
    ) -> None:
        self.n_sellers = _int("n_sellers", n_sellers, 1)
        self.n_buyers = _int("n_buyers", n_buyers, 1)
        check_size("P2PTrading-v0", f"n_sellers={self.n_sellers}, n_buyers={self.n_buyers}",
                   footprint_bytes(self.n_sellers, self.n_buyers))
        self.n_days = resolve_horizon("n_days", n_days, max_cycles, DAYS_PER_YEAR)
        self.start_day = _int("start_day", start_day, 0, DAYS_PER_YEAR - 1)
        self.mechanism = check_choice("mechanism", mechanism, MECHANISMS)
        self.mechanism_kwargs = check_mapping("mechanism_kwargs", mechanism_kwargs)
        self.action_mode = check_choice("action_mode", action_mode, ACTION_MODES)
        gb = check_float("grid_buy_price", grid_buy_price, 0.0)
        gs = check_float("grid_sell_price", grid_sell_price, 0.0)
        if not gb < gs:
            raise ValueError(f"grid prices must satisfy 0 <= grid_buy_price < grid_sell_price, got "
                             f"grid_buy_price={grid_buy_price}, grid_sell_price={grid_sell_price}")
        self.grid_sell_price, self.grid_buy_price = gs, gb
        tick = check_float("price_tick", price_tick, 0.0, gs - gb, lo_open=True)
        n_ticks = (gs - gb) / tick
        if not (abs(n_ticks - round(n_ticks)) < 1e-6 and 1 <= round(n_ticks) <= MAX_PRICE_LEVELS):
            raise ValueError(
                f"price_tick must divide the band grid_sell_price - grid_buy_price = {gs - gb:g} into whole steps "
                f"(at most {MAX_PRICE_LEVELS}), got {price_tick}"
            )
        self.price_tick = tick
        self.price_grid = gb + tick * np.arange(round(n_ticks) + 1)
        steps = price_steps if isinstance(price_steps, (Sequence, np.ndarray)) and not isinstance(price_steps, str) \
            else ()
        if (
            len(steps) == 0
            or any(not is_int(s) or abs(s) > MAX_PRICE_LEVELS for s in steps)
            or len({int(s) for s in steps}) != len(steps)
        ):
            raise ValueError(f"price_steps must be a non-empty sequence of distinct integers (multiples of price_tick) "
                             f"in [-{MAX_PRICE_LEVELS}, {MAX_PRICE_LEVELS}], got {price_steps!r:.80}")
        self.price_steps = np.asarray([int(s) for s in steps], dtype=np.int64)
        self.initial_price_range = _range("initial_price_range", initial_price_range, gb, gs)
        self.buyer_ref_price_range = _range("buyer_ref_price_range", buyer_ref_price_range, gb, gs)
        self.k_range = _range("k_range", k_range, 1e-9, np.inf)
        self.zeta_pos_range = _range("zeta_pos_range", zeta_pos_range, 1e-9, np.inf)
        self.zeta_neg_range = _range("zeta_neg_range", zeta_neg_range, 1e-9, np.inf)
        self.loss_levels = check_floats("loss_levels", loss_levels, 0.0, 1.0, hi_open=True, scalar_ok=True)
        self.loss_max = check_float("loss_max", loss_max, 0.0, 1.0, lo_open=True)
        self.min_trade_kwh = check_float("min_trade_kwh", min_trade_kwh, 0.0)
        pv = check_floats("seller_pv_kw", seller_pv_kw, 0.0, lo_open=True, scalar_ok=True)
        self.seller_pv_kw = seller_pv_kw
        self._pv_kw = np.resize(pv, self.n_sellers)
        self.split = check_choice("split", split, pgdata.SPLITS)
        self.forecast_alpha = check_float("forecast_alpha", forecast_alpha, 0.0, 1.0, lo_open=True)
        self.report_timing = check_bool("report_timing", report_timing)
        self._init_render(render_mode)

        # Build the clearing mechanism's structure once for this market size.
        try:
            self._clear = make_clearer(self.mechanism, self.n_sellers, self.n_buyers, **self.mechanism_kwargs)
        except ValueError as e:
            raise ValueError(f"mechanism_kwargs: {e}") from None

        self.possible_agents = [f"seller_{i}" for i in range(self.n_sellers)]
        self.agents: list[str] = []
        n_actions = len(self.price_grid) if action_mode == "level" else len(self.price_steps)
        self.action_spaces = {a: spaces.Discrete(n_actions) for a in self.possible_agents}
        self.observation_spaces = {
            a: NamedBox(OBS_NAMES, low=[0, 0, 0, 0, -1, -1], high=[1, 1, 1, 1, 1, 1]) for a in self.possible_agents
        }
        s, b = self.n_sellers, self.n_buyers
        state_names = (
            [f"price_{i}" for i in range(s)]
            + [f"surplus_forecast_{i}" for i in range(s)]
            + [f"demand_forecast_{j}" for j in range(b)]
            + [f"buyer_ref_price_{j}" for j in range(b)]
            + ["day_sin", "day_cos"]
        )
        self.state_space = NamedBox(
            state_names,
            low=[0.0] * (2 * s + 2 * b) + [-1.0, -1.0],
            high=[1.0] * (2 * s) + [np.inf] * b + [1.0] * b + [1.0, 1.0],
        )
        self._rng: np.random.Generator | None = None
        self.last_market: MarketRecord | None = None
        self._t = 0

    # ------------------------------------------------------------------ PettingZoo API
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start a new year. ``options`` may hold ``start_day`` (0-364) for this episode."""
        self._rng = reseed(self._rng, seed)
        start_day = self.start_day
        if options:
            unknown = set(options) - {"start_day"}
            if unknown:
                warnings.warn(f"reset options {sorted(unknown)} are ignored; known options: ['start_day']", stacklevel=2)
            if "start_day" in options:
                start_day = _int("options['start_day']", options["start_day"], 0, DAYS_PER_YEAR - 1)
        self._episode_start = start_day
        data_rng, market_rng, self._clear_rng = spawn(self._rng, 3)
        s, b = self.n_sellers, self.n_buyers

        # Real households: sellers with rooftop PV, buyers without (prosumer_gym.data).
        sellers = pgdata.sample_prosumers(data_rng, s, pv_kw=list(self._pv_kw), split=self.split)
        buyers = pgdata.sample_households(data_rng, b, split=self.split)
        surplus_actual = pgdata.daily_sum(sellers.surplus_kwh)  # (S, 365) kWh
        demand_actual = pgdata.daily_sum(buyers.hourly_load_kwh)  # (B, 365) kWh
        self._surplus_actual = surplus_actual.T.copy()  # (365, S)
        self._demand_actual = demand_actual.T.copy()  # (365, B)
        self._surplus_fc = pgdata.ewma_forecast(self._surplus_actual, self.forecast_alpha, axis=0)
        self._demand_fc = pgdata.ewma_forecast(self._demand_actual, self.forecast_alpha, axis=0)
        self._energy_scale = 24.0 * np.asarray(sellers.pv_kw, dtype=np.float64)  # kWh/day upper bound

        # Market population (Section 5.3.1).
        lo, hi = self.initial_price_range
        init = market_rng.uniform(lo, hi, size=s)
        idx = np.clip(np.round((init - self.grid_buy_price) / self.price_tick), 0, len(self.price_grid) - 1)
        self._price_idx = idx.astype(np.int64)
        self.seller_ref_price = self.price_grid[self._price_idx].copy()
        self.buyer_ref_price = market_rng.uniform(*self.buyer_ref_price_range, size=b)
        self.buyer_pt = sample_pt_params(market_rng, b, self.k_range, self.zeta_pos_range, self.zeta_neg_range)
        self.seller_pt = sample_pt_params(market_rng, s, self.k_range, self.zeta_pos_range, self.zeta_neg_range)
        self.loss = market_rng.choice(self.loss_levels, size=(s, b))

        self._t = 0
        self.agents = self.possible_agents[:]
        self.last_market = None
        self._sold = np.zeros(s)
        self._revenue = np.zeros(s)
        obs = self._observations()
        infos = {
            a: {
                "price": float(self.price_grid[self._price_idx[i]]),
                "pt_params": {
                    "k_pos": float(self.seller_pt.k_pos[i]),
                    "k_neg": float(self.seller_pt.k_neg[i]),
                    "zeta_pos": float(self.seller_pt.zeta_pos[i]),
                    "zeta_neg": float(self.seller_pt.zeta_neg[i]),
                },
                "reference_price": float(self.seller_ref_price[i]),
            }
            for i, a in enumerate(self.agents)
        }
        return obs, infos

    def step(self, actions: dict[str, Any]):
        self._check_action_dict(actions)
        n = self.action_spaces[self.agents[0]].n
        act = np.fromiter(
            (check_discrete(actions[a], n, f"actions[{a!r}]") for a in self.possible_agents), dtype=np.int64,
            count=self.n_sellers,
        )
        self._apply_actions(act)
        record = self._clear_today()
        return self._step_outputs(record)

    # ------------------------------------------------------------------ internals
    def _apply_actions(self, act: np.ndarray) -> None:
        """Move prices (step mode) or set them (level mode); clip into the band (Eq. 5.2d)."""
        if self.action_mode == "level":
            self._price_idx = act.copy()
        else:
            self._price_idx = np.clip(self._price_idx + self.price_steps[act], 0, len(self.price_grid) - 1)

    @property
    def prices(self) -> np.ndarray:
        """Sellers' current prices, $/kWh (S,)."""
        return self.price_grid[self._price_idx]

    def _data_day(self, t: int) -> int:
        return (self._episode_start + t) % DAYS_PER_YEAR

    def _instance(self, d: int) -> MarketInstance:
        return MarketInstance(
            surplus_kwh=self._surplus_fc[d],
            demand_kwh=self._demand_fc[d],
            seller_price=self.prices,
            buyer_ref_price=self.buyer_ref_price,
            loss=self.loss,
            pt=self.buyer_pt,
            grid_sell_price=self.grid_sell_price,
            grid_buy_price=self.grid_buy_price,
            loss_max=self.loss_max,
            min_trade_kwh=self.min_trade_kwh,
        )

    def _clear_today(self) -> MarketRecord:
        d = self._data_day(self._t)
        inst = self._instance(d)
        alloc = self._clear(inst, self._clear_rng)
        record = MarketRecord(day=self._t, data_day=d, instance=inst, allocation=alloc)
        self.last_market = record
        return record

    def _step_outputs(self, record: MarketRecord):
        inst, alloc = record.instance, record.allocation
        energy = energy_kwh(inst, alloc.x)  # (S, B) kWh delivered
        sold = energy.sum(axis=1)
        revenue = (alloc.price * energy).sum(axis=1)  # seller_revenue() without recomputing energy
        shipped = ((1.0 + inst.loss) * energy).sum(axis=1)
        unsold = np.maximum(inst.surplus_kwh - shipped, 0.0)
        self._sold, self._revenue = sold, revenue
        gain = revenue + self.grid_buy_price * unsold - self.seller_ref_price * inst.surplus_kwh
        seller_pt = pt_value(gain, self.seller_pt.k_pos, self.seller_pt.k_neg, self.seller_pt.zeta_pos,
                             self.seller_pt.zeta_neg)
        viol = feasibility_report(inst, alloc.x)
        traded = float(sold.sum())
        demand = float(inst.demand_kwh.sum())
        market = {
            "day": record.day,
            "data_day": record.data_day,
            "mechanism": alloc.mechanism,
            "buyers_pt_value": float(alloc.objective),
            "sellers_revenue_usd": float(revenue.sum()),
            "traded_kwh": traded,
            "demand_kwh": demand,
            "surplus_kwh": float(inst.surplus_kwh.sum()),
            "grid_import_kwh": demand - traded,
            "mean_price": float(revenue.sum() / traded) if traded > 0 else float("nan"),
            "max_violation": float(max(viol.values())) if viol else 0.0,
            "feasible": bool(all(v <= 1e-6 for v in viol.values())),
        }
        if self.report_timing:
            market["clearing_seconds"] = float(alloc.seconds)
        if "gain_lost_share" in alloc.stats:  # certified: certify=True, or mechanism "bnb"
            for k in CERTIFICATE_KEYS:
                market[k] = alloc.stats[k]

        self._t += 1
        done = self._t >= self.n_days
        obs = self._observations()
        rewards, infos = {}, {}
        for i, a in enumerate(self.possible_agents):
            rewards[a] = float(revenue[i])
            infos[a] = {
                "price": float(inst.seller_price[i]),
                "sold_kwh": float(sold[i]),
                "revenue_usd": float(revenue[i]),
                "surplus_forecast_kwh": float(inst.surplus_kwh[i]),
                "grid_export_kwh": float(unsold[i]),
                "pt_value": float(seller_pt[i]),
                "market": market,
            }
        terminations, truncations = self._end_step(self.possible_agents, done)
        return obs, rewards, terminations, truncations, infos

    def _season(self, d: int) -> tuple[float, float]:
        ang = 2.0 * np.pi * d / DAYS_PER_YEAR
        return float(np.sin(ang)), float(np.cos(ang))

    def _observations(self) -> dict[str, np.ndarray]:
        d = self._data_day(self._t)  # the day the next action prices
        price = (self.prices - self.grid_buy_price) / (self.grid_sell_price - self.grid_buy_price)
        sin, cos = self._season(d)
        scale = self._energy_scale
        mat = np.empty((self.n_sellers, len(OBS_NAMES)), dtype=np.float32)
        mat[:, 0] = price
        mat[:, 1] = np.clip(self._surplus_fc[d] / scale, 0.0, 1.0)  # float-rounding guard only
        mat[:, 2] = np.clip(self._sold / scale, 0.0, 1.0)
        mat[:, 3] = np.clip(self._revenue / (self.grid_sell_price * scale), 0.0, 1.0)
        mat[:, 4] = sin
        mat[:, 5] = cos
        return {a: mat[i] for i, a in enumerate(self.possible_agents)}

    def state(self) -> np.ndarray:
        """Global view (see ``state_space.names``)."""
        if self._rng is None:
            raise RuntimeError("state() called before reset()")
        d = self._data_day(self._t)
        band = self.grid_sell_price - self.grid_buy_price
        sin, cos = self._season(d)
        return np.concatenate(
            [
                (self.prices - self.grid_buy_price) / band,
                np.clip(self._surplus_fc[d] / self._energy_scale, 0.0, 1.0),
                self._demand_fc[d] / 100.0,
                (self.buyer_ref_price - self.grid_buy_price) / band,
                [sin, cos],
            ]
        ).astype(np.float32)

    # ------------------------------------------------------------------ rendering
    def _render_text(self) -> str:
        if self.last_market is None:
            return f"P2PTrading-v0 day 0 (data day {self._data_day(0)}): no market cleared yet; prices " + \
                ", ".join(f"{p:.3f}" for p in self.prices)
        inst, alloc = self.last_market.instance, self.last_market.allocation
        energy = energy_kwh(inst, alloc.x)
        lines = [
            f"P2PTrading-v0 day {self.last_market.day} (data day {self.last_market.data_day}), "
            f"mechanism {alloc.mechanism}: buyers' PT value {alloc.objective:.3f}, "
            f"traded {energy.sum():.1f} of {inst.demand_kwh.sum():.1f} kWh demanded "
            f"({inst.surplus_kwh.sum():.1f} kWh offered)",
            " seller  price $/kWh  surplus kWh  sold kWh  revenue $",
        ]
        rev = (alloc.price * energy).sum(axis=1)
        for i in range(inst.n_sellers):
            lines.append(
                f" {i:6d}  {inst.seller_price[i]:11.3f}  {inst.surplus_kwh[i]:11.2f}  {energy[i].sum():8.2f}  {rev[i]:9.3f}"
            )
        return "\n".join(lines)

    def _render_rgb(self) -> np.ndarray:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 3.6), dpi=80)
        ax1, ax2 = fig.subplots(1, 2)
        if self.last_market is not None:
            inst, alloc = self.last_market.instance, self.last_market.allocation
            energy = energy_kwh(inst, alloc.x)
            im = ax1.imshow(energy, aspect="auto", cmap="viridis")
            fig.colorbar(im, ax=ax1, label="kWh")
            ax1.set_title(f"day {self.last_market.day}: energy seller -> buyer")
        else:
            ax1.set_title("no market cleared yet")
        ax1.set_xlabel("buyer")
        ax1.set_ylabel("seller")
        ax2.bar(np.arange(self.n_sellers), self.prices, color="tab:orange")
        ax2.set_ylim(self.grid_buy_price, self.grid_sell_price)
        ax2.set_xlabel("seller")
        ax2.set_ylabel("price $/kWh")
        fig.tight_layout()
        return figure_to_rgb(fig)


parallel_env, env = entry_points(raw_env)
