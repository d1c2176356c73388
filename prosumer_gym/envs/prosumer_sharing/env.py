"""ProsumerSharing-v0: binary prosumption steered by a broadcast feedback signal.

Usage::

    import gymnasium as gym
    import prosumer_gym                          # registers the ids
    env = gym.make("ProsumerSharing-v0")                      # Gymnasium view (one learner)
    # without the import: gym.make("prosumer_gym:ProsumerSharing-v0")
    from prosumer_gym.envs import prosumer_sharing_v0
    penv = prosumer_sharing_v0.parallel_env()                 # PettingZoo ParallelEnv (all agents)

Paper ``000`` (Problem III.2, Eqs. 19-24, Algorithms 1-2, Sections V-VI). Docs:
``docs/prosumer_sharing.md``. Mechanism, costs
and oracle: :mod:`prosumer_gym.envs.prosumer_sharing.market`.

Env card
--------
Agents
    ``prosumer_0 ... prosumer_{N-1}`` (``n_prosumers``, default 99). Each has a private,
    strictly convex cost ``g_i(x_bar, y_bar)`` of its long-term averages (``scenario``:
    ``"paper"`` = Eq. 30, class 1 = prosumers 0-49 with ``delta = 11.75``, ``T_1 = 1.74``,
    class 2 = 50-98 with ``gamma = 11.65``, ``T_2 = 1.725``, ``a_i ~ U{1..10}``,
    ``b_i ~ U{1..15}`` drawn at reset; ``"car_sharing"`` = Section V-A, Eq. 28;
    ``"community_storage"`` = Section V-B, Eq. 29; ``scenario_kwargs`` change any of their
    parameters; ``costs=`` fixes a community). With ``n_prosumers_range=(lo, hi)`` every
    episode has its own size N (drawn from the reset seed, or ``options={"n_prosumers": N}``)
    and ``possible_agents`` has ``hi`` entries; the algorithm is scale free.
Step (one step = one day t_k)
    Every live prosumer chooses ``x_i(k+1)`` (consume one unit) and ``y_i(k+1)`` (produce one
    unit). The platform (inside the env, Algorithm 1) only measures the aggregates and
    broadcasts ``Omega_x(k+1) = Omega_x(k) - tau_x (sum_i x_i(k) - C_x)`` and the same for y
    (Eqs. 23-24; ``Omega(0) = 0.06``); the averages follow Eq. 3. Indexing is the paper's:
    the decisions of day k+1 are taken seeing ``Omega(k)``; ``Omega(k+1)`` reacts to day k.
    Day 0 is Algorithm 2's initialisation ``x_i(0) = y_i(0) = 1``.
Actions (``MultiBinary(2)``)
    ``[x_i(k+1), y_i(k+1)]`` in {0, 1}; anything else raises ``ValueError`` (no projection).
Observation (``Box(4,)`` float32, private)
    ``omega_x``, ``omega_y`` (the broadcast signals Omega(k), unbounded), ``x_bar``, ``y_bar``
    (the prosumer's own averages, [0, 1]). Nothing about other prosumers (Remark IV.3).
    ``state()`` (see ``state_space``) is the global view: Omega, per-prosumer excesses and all
    averages (inactive slots 0).
Rewards
    ``r_i = -(g_i(x_bar_i(k+1), y_bar_i(k+1)) - g_i(x_bar_i(k), y_bar_i(k)))
    - tracking_weight * (|sum_i x_i - C_x| + |sum_i y_i - C_y|) / N``: minus the change of
    the private cost (so an episode's private part telescopes to ``g_i(start) - g_i(end)``)
    plus a shared penalty for the platform's tracking error of the day (default weight 1).
Contracts and gains
    ``contract_x = C_x``, ``contract_y = C_y`` are the aggregates at the nominal size
    ``n_prosumers``; default: the paper's per-capita values, 90 and 80 for 99 prosumers
    (``90 N / 99``, ``80 N / 99`` for other N). An episode of another size (size range)
    scales them by ``N / n_prosumers``. They must satisfy ``0 < C < N``. ``tau`` (the paper gives
    none) = 1e-4 for both signals: loop gain ~0.13 at the Section VI operating point (see
    :func:`~prosumer_gym.envs.prosumer_sharing.feedback.default_tau`).
    ``rule="eq20"`` switches the defaults to the consensus form of Algorithm 2
    (``Omega(0) = 12``, ``tau = 0.02``); the env's dynamics do not depend on ``rule`` otherwise.
Infos
    Reset: per agent its private ``cost_params`` (what Algorithm 2 needs), ``klass``,
    ``x_opt``/``y_opt`` (its part of the optimum of Problem III.2, solved exactly) and
    ``community`` (below). Step: per agent ``x_bar``, ``y_bar``, ``private_cost``,
    ``grad_x``/``grad_y`` (dg_i/dx, dg_i/dy at the averages), ``rel_distance``
    (``||(x_bar, y_bar) - (x*, y*)|| / ||(x*, y*)||``) and one shared ``community`` dict:
    ``day``, ``n_prosumers``, ``sum_x``, ``sum_y``, ``contract_x``, ``contract_y``,
    ``error_x``, ``error_y`` (aggregate minus contract), ``tracking_error``, ``omega_x``,
    ``omega_y``, ``sum_x_bar``, ``sum_y_bar`` (Fig. 8c), ``rel_distance_median/p90/max``,
    ``rel_distance_global``, ``utilisation_gap_median/p90`` (``|x_bar + y_bar - T_i|``,
    Fig. 6), ``consensus_spread_x/y`` (``(max - min) / |median|`` of the derivatives within
    a class, worst class, over the prosumers not stalled; 0 = consensus, Eq. 18, Fig. 7) and
    ``consensus_spread_by_class``, ``n_stalled`` (prosumers whose cost decreases at their
    averages: Eq. 22 gives them probability 0 for good, see the docs), ``social_cost``
    (``sum_i g_i`` at the averages), ``optimal_cost``, ``mu_x``, ``mu_y`` (optimal
    multipliers = the consensus derivatives). No wall-clock values: same seed, same infos.
    ``oracle=False`` skips the optimum (distance fields are NaN).
Episode
    ``n_days`` (alias ``max_cycles``) = 200 days (Figs. 4-7); the last step truncates all.
Validation
    Costs must satisfy Assumption III.1 (strictly convex; increasing on the operating band
    ``x + y >= T_i - monotone_band``, default 0.45): non-convex or decreasing parameters
    raise ``ValueError`` with the reason, at construction (scenario probe) and at reset.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from gymnasium import spaces

from prosumer_gym.core.env_base import MarketParallelEnv, resolve_horizon
from prosumer_gym.core.spaces import check_multibinary
from prosumer_gym.core.pz import entry_points, figure_to_rgb
from prosumer_gym.core.seeding import reseed, spawn
from prosumer_gym.core.spaces import NamedBox
from prosumer_gym.core.validation import check_float
from prosumer_gym.envs.prosumer_sharing.market import (
    DEFAULT_BAND,
    PAPER,
    Community,
    CostParams,
    SharingConfig,
)

__all__ = ["raw_env", "env", "parallel_env", "OBS_NAMES", "DEFAULT_DAYS"]

OBS_NAMES = ("omega_x", "omega_y", "x_bar", "y_bar")
_INFO_KEYS = ("x_bar", "y_bar", "private_cost", "grad_x", "grad_y", "rel_distance", "community")
DEFAULT_DAYS = 200


def resolve_days(n_days: int, max_cycles: int | None) -> int:
    """``n_days`` with its ``max_cycles`` alias (PettingZoo's tests set the latter); shared
    by every view of this market."""
    return resolve_horizon("n_days", n_days, max_cycles, DEFAULT_DAYS)


class raw_env(MarketParallelEnv):
    """PettingZoo parallel env for ProsumerSharing-v0 (see the module docstring: the env card)."""

    metadata = {**MarketParallelEnv.metadata, "name": "prosumer_sharing_v0"}
    horizon_attr = "n_days"

    def __init__(
        self,
        n_prosumers: int = PAPER["n_prosumers"],
        n_prosumers_range: tuple[int, int] | None = None,
        scenario: str = "paper",
        scenario_kwargs: dict[str, Any] | None = None,
        costs: CostParams | None = None,
        contract_x: float | None = None,
        contract_y: float | None = None,
        tau: float | tuple[float, float] | None = None,
        omega0: float | tuple[float, float] | None = None,
        rule: str = "eq22",
        monotone_band: float | None = DEFAULT_BAND,
        oracle: bool = True,
        n_days: int = DEFAULT_DAYS,
        max_cycles: int | None = None,
        tracking_weight: float = 1.0,
        render_mode: str | None = None,
    ) -> None:
        self.config = SharingConfig(
            n_prosumers=n_prosumers, n_prosumers_range=n_prosumers_range, scenario=scenario,
            scenario_kwargs=scenario_kwargs, costs=costs, contract_x=contract_x, contract_y=contract_y,
            tau=tau, omega0=omega0, rule=rule, monotone_band=monotone_band, oracle=oracle,
        )
        self.n_days = resolve_days(n_days, max_cycles)
        self.tracking_weight = check_float("tracking_weight", tracking_weight, 0.0)
        self._init_render(render_mode)

        n_max = self.config.n_max
        self.possible_agents = [f"prosumer_{i}" for i in range(n_max)]
        self.agents: list[str] = []
        self.action_spaces = {a: spaces.MultiBinary(2) for a in self.possible_agents}
        self.observation_spaces = {
            a: NamedBox(OBS_NAMES, low=[-np.inf, -np.inf, 0.0, 0.0], high=[np.inf, np.inf, 1.0, 1.0])
            for a in self.possible_agents
        }
        self.state_space = NamedBox(
            ["omega_x", "omega_y", "excess_x", "excess_y"]
            + [f"x_bar_{i}" for i in range(n_max)] + [f"y_bar_{i}" for i in range(n_max)],
            low=[-np.inf, -np.inf, -1.0, -1.0] + [0.0] * (2 * n_max),
            high=[np.inf, np.inf, 1.0, 1.0] + [1.0] * (2 * n_max),
        )
        self.core = self.config.make_core(1)
        self.community: Community | None = None
        self._rng: np.random.Generator | None = None
        self._t = 0
        self._g = np.zeros(n_max)
        self.history: list[tuple[float, float, float, float]] = []

    # ------------------------------------------------------------------ PettingZoo API
    @property
    def n(self) -> int:
        """Number of prosumers in the current episode."""
        return int(self.core.n[0])

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Day 0 of a new community. ``options`` may hold ``n_prosumers`` for this episode."""
        self._rng = reseed(self._rng, seed)
        size_rng, cost_rng = spawn(self._rng, 2)
        n = None
        if options:
            unknown = set(options) - {"n_prosumers"}
            if unknown:
                warnings.warn(f"reset options {sorted(unknown)} are ignored; known options: ['n_prosumers']",
                              stacklevel=2)
            if "n_prosumers" in options:
                n = self.config.check_size(options["n_prosumers"])
        if n is None:
            n = self.config.draw_size(size_rng)
        self.community = self.config.sample(cost_rng, n)
        self.core.load(0, self.community)
        self.agents = self.possible_agents[:n]
        self._t = 0
        self._g = self.core.private_costs()[0]
        self.history = [self._history_row()]
        community = self.core.metrics_dict(0)
        costs = self.community.costs
        ox = self.core.opt_x[0].tolist()
        oy = self.core.opt_y[0].tolist()
        infos = {
            a: {"cost_params": costs.prosumer(i), "klass": int(costs.klass[i]), "x_opt": ox[i], "y_opt": oy[i],
                "community": community}
            for i, a in enumerate(self.agents)
        }
        return self._observations(), infos

    def _validated_actions(self, actions: object) -> np.ndarray:
        self._check_action_dict(actions)
        live = self.agents
        try:
            arr = np.asarray([actions[a] for a in live])
        except (TypeError, ValueError):
            arr = None
        if (arr is not None and arr.shape == (len(live), 2) and arr.dtype.kind in "biu"
                and bool(np.all((arr == 0) | (arr == 1)))):
            return arr.astype(np.float64)
        # slow path: precise error message (or valid integral floats)
        return np.stack([check_multibinary(actions[a], 2, f"actions[{a!r}]") for a in live]).astype(np.float64)

    def step(self, actions: dict[str, Any]):
        act = self._validated_actions(actions)
        n, n_max = len(self.agents), self.core.n_max
        x_new = np.zeros((1, n_max))
        y_new = np.zeros((1, n_max))
        x_new[0, :n] = act[:, 0]
        y_new[0, :n] = act[:, 1]
        self.core.step(x_new, y_new)
        self._t += 1
        m = self.core.metrics()
        per = self.core.last_prosumer_arrays
        g_new = per["private_cost"][0]
        community = self.core.metrics_dict(0, m)
        shared = -self.tracking_weight * community["tracking_error"]
        rew = (-(g_new - self._g)[:n] + shared).tolist()
        self._g = g_new
        self.history.append(self._history_row())

        core = self.core
        cols = (core.x_bar[0, :n].tolist(), core.y_bar[0, :n].tolist(), g_new[:n].tolist(),
                per["grad_x"][0, :n].tolist(), per["grad_y"][0, :n].tolist(), per["rel_distance"][0, :n].tolist(),
                [community] * n)
        live = self.agents
        infos = {a: dict(zip(_INFO_KEYS, row)) for a, row in zip(live, zip(*cols))}
        obs = self._observations()
        rewards = dict(zip(live, rew))
        done = self._t >= self.n_days
        terminations, truncations = self._end_step(live, done)
        return obs, rewards, terminations, truncations, infos

    # ------------------------------------------------------------------ views
    def _observations(self) -> dict[str, np.ndarray]:
        n = self.n
        mat = np.empty((n, 4), dtype=np.float32)
        mat[:, 0] = self.core.omega[0, 0]
        mat[:, 1] = self.core.omega[0, 1]
        mat[:, 2] = self.core.x_bar[0, :n]
        mat[:, 3] = self.core.y_bar[0, :n]
        return {a: mat[i] for i, a in enumerate(self.possible_agents[:n])}

    def state(self) -> np.ndarray:
        """Global view (see ``state_space.names``)."""
        if self.community is None:
            raise RuntimeError("state() called before reset()")
        exc = self.core.excess()[0] / self.n
        return np.concatenate([self.core.omega[0], exc, self.core.x_bar[0], self.core.y_bar[0]]).astype(np.float32)

    def _history_row(self) -> tuple[float, float, float, float]:
        tot = self.core.totals()[0]
        return float(tot[0]), float(tot[1]), float(self.core.omega[0, 0]), float(self.core.omega[0, 1])

    # ------------------------------------------------------------------ rendering
    def _render_text(self) -> str:
        if self.community is None:
            return "ProsumerSharing-v0: not reset yet"
        m = self.core.metrics_dict(0)
        return (
            f"ProsumerSharing-v0 day {m['day']} (N={m['n_prosumers']}): consumed {m['sum_x']:.0f} / C_x "
            f"{m['contract_x']:.1f}, produced {m['sum_y']:.0f} / C_y {m['contract_y']:.1f}; "
            f"Omega = ({m['omega_x']:.5f}, {m['omega_y']:.5f}); median rel. distance to optimum "
            f"{m['rel_distance_median']:.4f}; median |x_bar + y_bar - T| {m['utilisation_gap_median']:.4f}; "
            f"derivative spread ({m['consensus_spread_x']:.4f}, {m['consensus_spread_y']:.4f})"
        )

    def _render_rgb(self) -> np.ndarray:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 3.4), dpi=80)
        ax1, ax2 = fig.subplots(1, 2)
        if self.community is not None:
            n = self.n
            ax1.scatter(self.core.opt_x[0, :n], self.core.x_bar[0, :n], s=8, label="x")
            ax1.scatter(self.core.opt_y[0, :n], self.core.y_bar[0, :n], s=8, label="y")
            ax1.plot([0, 1], [0, 1], color="grey", lw=0.8)
            ax1.legend(fontsize=7)
            h = np.asarray(self.history)
            ax2.plot(h[:, 0], label="sum x")
            ax2.plot(h[:, 1], label="sum y")
            ax2.axhline(self.core.contracts[0, 0], color="C0", ls="--", lw=0.8)
            ax2.axhline(self.core.contracts[0, 1], color="C1", ls="--", lw=0.8)
            ax2.legend(fontsize=7)
        ax1.set_xlabel("optimum (Problem III.2)")
        ax1.set_ylabel("long-term average")
        ax2.set_xlabel("day")
        ax2.set_ylabel("aggregate")
        fig.tight_layout()
        return figure_to_rgb(fig)


parallel_env, env = entry_points(raw_env)
