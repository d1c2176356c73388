"""ProsumerSharing-v0 feedback algorithms: the platform's Algorithm 1 (Eqs. 23-24), the
prosumers' Algorithm 2 (Eq. 22 clipped to [0, 1] as in Section VI; ``rule="eq20"`` is the
consensus form of Eq. 20), their default gains, and :class:`SharingCommunities`, the
vectorised core that runs them: ``K`` independent communities of up to ``n_max`` prosumers
(masked) stepped together with arrays; every env view of this market runs on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from prosumer_gym.envs.prosumer_sharing.analysis import _sorted_stats, _worst
from prosumer_gym.envs.prosumer_sharing.costs import _COST_FIELDS, _FLOOR, CostParams
from prosumer_gym.envs.prosumer_sharing.oracle import Community
from prosumer_gym.envs.prosumer_sharing.scenarios import PAPER

__all__ = [
    "RULES",
    "default_omega0",
    "default_tau",
    "platform_update",
    "algorithm2_probabilities",
    "SharingCommunities",
]

#: Algorithm 2 variants: ``"eq22"`` = Eq. 22 as printed (the paper's Algorithm 2);
#: ``"eq20"`` = the consensus form of Eq. 20 / ref. [29], whose fixed point is the optimum.
RULES = ("eq22", "eq20")


def default_omega0(rule: str) -> float:
    """Omega(0): 0.06 for Eq. 22 (Algorithm 1, line 3); 12.0 for Eq. 20, whose Omega lives in
    cost-derivative units (the optimum's multipliers are ~11.7 for Eq. 30; our choice)."""
    return PAPER["omega0"] if rule == "eq22" else 12.0


def default_tau(rule: str) -> float:
    """Gain tau_x = tau_y (the paper gives none; Remark IV.4 asks for 'small constants').

    Linearised loop of Eqs. 23-24 with Algorithm 2: ``e(k+1) = e(k) - G e(k-1)``, loop gain
    ``G = tau * sum_i d sigma_i / d Omega``; stable for ``G < 1``, non-oscillatory for
    ``G <= 1/4``. Eq. 22 at the Section VI operating point: ``sum_i g'_i / x_i ~ 1.3e3``,
    so ``tau = 1e-4`` gives ``G ~ 0.13``. Eq. 20: ``sum_i x_i / g'_i ~ 7.6``, ``tau = 0.02``
    gives ``G ~ 0.15``.
    """
    return 1e-4 if rule == "eq22" else 0.02


def platform_update(omega: np.ndarray, totals: np.ndarray, contracts: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Algorithm 1 (Eqs. 23-24): ``Omega(k+1) = Omega(k) - tau (sum_i x_i(k) - C)``, per signal."""
    return omega - tau * (totals - contracts)


def algorithm2_probabilities(
    costs: CostParams,
    x_bar: np.ndarray,
    y_bar: np.ndarray,
    omega_x: np.ndarray | float,
    omega_y: np.ndarray | float,
    rule: str = "eq22",
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 2, line 5: the probabilities of consuming / producing one unit tomorrow.

    ``rule="eq22"`` (the paper): ``sigma_x = Omega_x g'_x(x_bar, y_bar) / x_bar``;
    ``rule="eq20"``: ``sigma_x = Omega_x x_bar / g'_x(x_bar, y_bar)`` (consensus form).
    Both clipped to [0, 1] (Section VI uses ``min{1, .}``; the lower clip only acts where a
    cost decreases or Omega < 0). ``omega_*`` broadcast against the prosumer axis (pass
    ``(K, 1)`` arrays for K communities).
    """
    gx, gy = costs.grad(x_bar, y_bar)
    with np.errstate(divide="ignore", invalid="ignore"):
        if rule == "eq22":
            sx = omega_x * gx / np.maximum(x_bar, _FLOOR)
            sy = omega_y * gy / np.maximum(y_bar, _FLOOR)
        elif rule == "eq20":
            sx = omega_x * x_bar / gx
            sy = omega_y * y_bar / gy
        else:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    # clip to [0, 1]; fmax/fmin also send NaN (0/0) to 0 and +-inf to 1 / 0
    return np.fmin(np.fmax(sx, 0.0), 1.0), np.fmin(np.fmax(sy, 0.0), 1.0)


def _pad(a: np.ndarray, n_max: int, fill: float) -> np.ndarray:
    out = np.full(n_max, fill, dtype=np.float64)
    out[: a.shape[-1]] = a
    return out


#: Padding used for inactive prosumer slots: a harmless, valid cost.
_PAD = {"linear": 1.0, "quad": 1.0, "quartic": 0.0, "weight_x": 1.0, "weight_y": 1.0, "target": 1.0, "alpha": 0.5}


class SharingCommunities:
    """``K`` independent communities of up to ``n_max`` prosumers, stepped together.

    Array API (the core of every view of ProsumerSharing-v0):

    * :meth:`load` puts a :class:`Community` in slot ``i`` and resets it: ``x(0) = y(0) = 1``,
      ``x_bar(0) = y_bar(0) = 1`` (Algorithm 2, line 3), ``Omega(0) = omega0`` (Algorithm 1).
    * :meth:`probabilities` / :meth:`draw_algorithm2`: Algorithm 2 for every prosumer.
    * :meth:`step` takes the decisions ``x(k+1), y(k+1)`` (``(K, n_max)`` 0/1 arrays; inactive
      slots must be 0) and optionally ``Omega(k+1)`` (else Algorithm 1, Eqs. 23-24, from the
      aggregates of day ``k``), then updates the averages of Eq. 3 (kept as exact counts).
    * :meth:`metrics`: tracking errors, distance to the optimum, consensus spread, ... as
      ``(K,)`` arrays.

    Time indexing follows Algorithms 1-2 literally (synchronous update): the decisions of
    day ``k+1`` use ``Omega(k)`` and ``x_bar(k)``; ``Omega(k+1)`` uses the aggregates of day k.
    """

    def __init__(self, n_communities: int, n_max: int, tau: Sequence[float], omega0: Sequence[float],
                 rule: str = "eq22") -> None:
        if n_communities < 1 or n_max < 1:
            raise ValueError(f"need n_communities >= 1 and n_max >= 1, got {n_communities}, {n_max}")
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        k, n = int(n_communities), int(n_max)
        self.n_communities, self.n_max, self.rule = k, n, rule
        self.tau = np.broadcast_to(np.asarray(tau, dtype=np.float64), (2,)).copy()
        self.omega0 = np.broadcast_to(np.asarray(omega0, dtype=np.float64), (2,)).copy()
        self._cost_arrays = {name: np.full((k, n), _PAD[name]) for name in _COST_FIELDS}
        self._klass = np.zeros((k, n), dtype=np.int64)
        self.mask = np.zeros((k, n), dtype=bool)
        self.n = np.zeros(k, dtype=np.int64)
        self.contracts = np.ones((k, 2))
        self.omega = np.tile(self.omega0, (k, 1))
        self.k = np.zeros(k, dtype=np.int64)
        self.x = np.zeros((k, n))
        self.y = np.zeros((k, n))
        self.count_x = np.zeros((k, n))
        self.count_y = np.zeros((k, n))
        self.opt_x = np.full((k, n), np.nan)
        self.opt_y = np.full((k, n), np.nan)
        self.mu = np.full((k, 2), np.nan)
        self.opt_cost = np.full(k, np.nan)
        self.full = False
        self.last_prosumer_arrays: dict[str, np.ndarray] = {}
        self._refresh()
        self._costs: CostParams | None = None
        self.classes: tuple[int, ...] = ()

    # ------------------------------------------------------------------ loading / reset
    def load(self, i: int, community: Community) -> None:
        """Put ``community`` into slot ``i`` and reset that slot to day 0."""
        m = community.n
        if m > self.n_max:
            raise ValueError(f"community has {m} prosumers, more than n_max = {self.n_max}")
        for name in _COST_FIELDS:
            self._cost_arrays[name][i] = _pad(getattr(community.costs, name), self.n_max, _PAD[name])
        self._klass[i] = 0
        self._klass[i, :m] = community.costs.klass
        self.mask[i] = False
        self.mask[i, :m] = True
        self.n[i] = m
        self.contracts[i] = community.contracts
        opt = community.optimum
        self.opt_x[i] = np.nan
        self.opt_y[i] = np.nan
        if opt is not None:
            self.opt_x[i, :m] = opt.x
            self.opt_y[i, :m] = opt.y
            self.mu[i] = (opt.mu_x, opt.mu_y)
            self.opt_cost[i] = opt.cost
        else:
            self.mu[i] = np.nan
            self.opt_cost[i] = np.nan
        self._costs = None
        self.full = bool(self.mask.all())
        self.classes = tuple(int(c) for c in np.unique(self._klass[self.mask]))
        self.reset_slot(i)

    def reset_slot(self, i: int) -> None:
        """Day 0 of slot ``i``: Algorithm 2, line 3 and Algorithm 1, line 3."""
        m = self.mask[i]
        self.x[i] = m
        self.y[i] = m
        self.count_x[i] = m
        self.count_y[i] = m
        self.k[i] = 0
        self.omega[i] = self.omega0
        self._refresh()

    @property
    def costs(self) -> CostParams:
        """Costs of all slots, shape ``(K, n_max)`` (padding on inactive slots)."""
        if self._costs is None:
            self._costs = CostParams(**self._cost_arrays, klass=self._klass)
        return self._costs

    # ------------------------------------------------------------------ state views
    @property
    def x_bar(self) -> np.ndarray:
        """Long-term average consumption (Eq. 3), ``(K, n_max)``; 0 on inactive slots. Read-only."""
        return self._xb

    @property
    def y_bar(self) -> np.ndarray:
        """Long-term average production, like :attr:`x_bar`."""
        return self._yb

    def _refresh(self) -> None:
        self._totals = np.stack([self.x.sum(axis=1), self.y.sum(axis=1)], axis=1)
        self._totals.flags.writeable = False
        inv = 1.0 / (self.k[:, None] + 1.0)
        self._xb = self.count_x * inv
        self._yb = self.count_y * inv
        self._xb.flags.writeable = False
        self._yb.flags.writeable = False

    def totals(self) -> np.ndarray:
        """Aggregates of the current day ``(sum_i x_i(k), sum_i y_i(k))``, ``(K, 2)``. Read-only."""
        return self._totals

    def excess(self) -> np.ndarray:
        """``sum_i x_i(k) - C_x`` and ``sum_i y_i(k) - C_y``, ``(K, 2)``."""
        return self.totals() - self.contracts

    def private_costs(self) -> np.ndarray:
        """g_i(x_bar_i(k), y_bar_i(k)) ``(K, n_max)``; 0 on inactive slots."""
        return np.where(self.mask, self.costs.cost(self.x_bar, self.y_bar), 0.0)

    # ------------------------------------------------------------------ Algorithms 1-2
    def probabilities(self, rule: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Algorithm 2's sigma_x, sigma_y for tomorrow, ``(K, n_max)``; 0 on inactive slots."""
        sx, sy = algorithm2_probabilities(self.costs, self.x_bar, self.y_bar, self.omega[:, :1], self.omega[:, 1:],
                                          rule or self.rule)
        if not self.full:
            sx = np.where(self.mask, sx, 0.0)
            sy = np.where(self.mask, sy, 0.0)
        return sx, sy

    def draw_algorithm2(self, rng: np.random.Generator, rule: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every prosumer runs Algorithm 2: Bernoulli draws with the probabilities above."""
        sx, sy = self.probabilities(rule)
        u = rng.random((2,) + sx.shape)
        return (u[0] < sx).astype(np.float64), (u[1] < sy).astype(np.float64)

    def step(self, x_new: np.ndarray, y_new: np.ndarray, omega_next: np.ndarray | None = None) -> None:
        """Advance every community by one day (decisions already validated, 0 on inactive slots)."""
        if omega_next is None:
            omega_next = platform_update(self.omega, self.totals(), self.contracts, self.tau)
        self.omega = np.asarray(omega_next, dtype=np.float64).reshape(self.n_communities, 2)
        self.x = x_new
        self.y = y_new
        self.count_x = self.count_x + x_new
        self.count_y = self.count_y + y_new
        self.k = self.k + 1
        self._refresh()

    # ------------------------------------------------------------------ metrics
    def relative_distance(self) -> np.ndarray:
        """Per prosumer ``||(x_bar, y_bar) - (x*, y*)|| / ||(x*, y*)||``; NaN where unknown."""
        dx = self.x_bar - self.opt_x
        dy = self.y_bar - self.opt_y
        return np.sqrt((dx * dx + dy * dy) / (self.opt_x ** 2 + self.opt_y ** 2))

    def metrics(self) -> dict[str, Any]:
        """Market KPIs of the current day as ``(K,)`` arrays (see the env cards).

        The per-prosumer arrays behind them (``grad_x``, ``grad_y``, ``rel_distance``,
        ``private_cost``; ``(K, n_max)``) are left in :attr:`last_prosumer_arrays`.
        """
        xb, yb = self.x_bar, self.y_bar
        mask = self.mask
        kk = self.n_communities
        tot = self.totals()
        exc = tot - self.contracts
        n = np.maximum(self.n, 1)
        costs = self.costs
        gx, gy = costs.grad(xb, yb)
        dist = self.relative_distance()
        gap = np.abs(xb + yb - costs.target)
        steered = mask & (gx > 0) & (gy > 0)
        # one sort for every order statistic: rows = distance, gap, then (g'_x, g'_y) per class
        rows = [dist, gap]
        valid = [mask & ~np.isnan(dist), mask]
        for c in self.classes:
            sel = steered if len(self.classes) == 1 else steered & (self._klass == c)
            rows += [gx, gy]
            valid += [sel, sel]
        (q50, q90), lo, hi = _sorted_stats(np.concatenate(rows), np.concatenate(valid), (0.5, 0.9))
        # consensus spread (Eq. 18, Remark IV.5, Fig. 7): (max - min) / |median| of the derivatives
        # within a class, over the prosumers Algorithm 2 still steers (g' > 0); 0 = consensus
        with np.errstate(all="ignore"):
            spread_all = np.abs(hi - lo) / np.abs(q50)
        spread = {}
        for j, c in enumerate(self.classes):
            base = (2 + 2 * j) * kk
            spread[c] = (spread_all[base:base + kk], spread_all[base + kk:base + 2 * kk])
        g = np.where(mask, costs.cost(xb, yb), 0.0)
        self.last_prosumer_arrays = {"grad_x": gx, "grad_y": gy, "rel_distance": dist, "private_cost": g}
        sums = np.where(mask, np.stack([xb, yb, (xb - self.opt_x) ** 2 + (yb - self.opt_y) ** 2,
                                        self.opt_x ** 2 + self.opt_y ** 2]), 0.0).sum(axis=2)
        with np.errstate(all="ignore"):
            dist_global = np.sqrt(sums[2] / sums[3])
        return {
            "day": self.k.copy(),
            "n_prosumers": self.n.copy(),
            "sum_x": tot[:, 0],
            "sum_y": tot[:, 1],
            "contract_x": self.contracts[:, 0].copy(),
            "contract_y": self.contracts[:, 1].copy(),
            "error_x": exc[:, 0],
            "error_y": exc[:, 1],
            "tracking_error": (np.abs(exc[:, 0]) + np.abs(exc[:, 1])) / n,
            "omega_x": self.omega[:, 0].copy(),
            "omega_y": self.omega[:, 1].copy(),
            "sum_x_bar": sums[0],
            "sum_y_bar": sums[1],
            "rel_distance_median": q50[:kk],
            "rel_distance_p90": q90[:kk],
            "rel_distance_max": hi[:kk],
            "rel_distance_global": dist_global,
            "utilisation_gap_median": q50[kk:2 * kk],
            "utilisation_gap_p90": q90[kk:2 * kk],
            "consensus_spread_x": _worst(v[0] for v in spread.values()),
            "consensus_spread_y": _worst(v[1] for v in spread.values()),
            "consensus_spread_by_class": spread,
            # stalled: cost decreasing at the averages (g' <= 0): Eq. 22 gives probability 0 for good
            "n_stalled": np.sum(mask & ~steered, axis=1),
            "social_cost": g.sum(axis=1),
            "optimal_cost": self.opt_cost.copy(),
            "mu_x": self.mu[:, 0].copy(),
            "mu_y": self.mu[:, 1].copy(),
        }

    def metrics_dict(self, i: int, m: dict[str, Any] | None = None) -> dict[str, Any]:
        """Slot ``i``'s KPIs as a plain dict of Python numbers (for ``info``)."""
        m = self.metrics() if m is None else m
        out: dict[str, Any] = {}
        for key, val in m.items():
            if key == "consensus_spread_by_class":
                out[key] = {f"class_{c}": {"x": float(v[0][i]), "y": float(v[1][i])} for c, v in val.items()}
            elif key in ("day", "n_prosumers", "n_stalled"):
                out[key] = int(val[i])
            else:
                out[key] = float(val[i])
        return out
