"""ProsumerSharing-v0 mechanism: private costs, the platform's feedback, Algorithm 2, the oracle.

Paper ``000`` (Alam, Shorten, Wirth, Yu: distributed algorithms for IoT-enabled prosumer
markets), Problem III.2 (Eqs. 8-12), Eqs. 19-24, Algorithms 1-2, Section V (Eqs. 25-29),
Section VI (Eq. 30). Docs: ``docs/prosumer_sharing.md``. Everything is plain numpy
on arrays whose last axis runs over prosumers, so one call handles one community ``(N,)``
or ``K`` communities at once ``(K, N)``.

This module holds :class:`SharingConfig` and re-exports every name of the modules below, so
``from prosumer_gym.envs.prosumer_sharing.market import ...`` (and the legacy
``prosumer_gym.envs.prosumer_sharing_market``) keeps working.

Contents
--------
:mod:`~prosumer_gym.envs.prosumer_sharing.costs`
    :class:`CostParams`, the private costs ``g_i(x, y)`` as one parametric family that
    contains Eq. 30 (both classes) and the use-case objectives of Eqs. 28-29;
    :func:`check_costs`, Assumption III.1 on the operating band.
:mod:`~prosumer_gym.envs.prosumer_sharing.scenarios`
    ``"paper"`` (Section VI, Eq. 30), ``"car_sharing"`` (Section V-A, Eq. 28),
    ``"community_storage"`` (Section V-B, Eq. 29); see :data:`SCENARIOS`; :data:`PAPER`.
:mod:`~prosumer_gym.envs.prosumer_sharing.oracle`
    :func:`solve_optimum`: Problem III.2 solved exactly through its dual
    (:func:`solve_optimum_primal`: the SLSQP reference); :class:`Community`.
:mod:`~prosumer_gym.envs.prosumer_sharing.feedback`
    :func:`platform_update` (Algorithm 1, Eqs. 23-24), :func:`algorithm2_probabilities`
    (Algorithm 2, Eq. 22 clipped to [0, 1] as in Section VI; ``rule="eq20"`` is the
    consensus form of Eq. 20), the default gains; :class:`SharingCommunities`, the
    vectorised core (``K`` communities stepped together) every env view runs on.
:mod:`~prosumer_gym.envs.prosumer_sharing.analysis`
    :func:`algorithm2_fixed_point` (where Eq. 22 converges) and the KPI statistics.
:class:`SharingConfig` (here)
    Validated configuration shared by the PettingZoo env, the Gymnasium view and the
    batched envs; samples a community (costs, contracts, optimum) from a generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from prosumer_gym.core.validation import check_bool, check_choice, check_float, check_floats, check_mapping, \
    check_size
from prosumer_gym.core.validation import check_int as _int
from prosumer_gym.envs.prosumer_sharing.analysis import algorithm2_fixed_point
from prosumer_gym.envs.prosumer_sharing.costs import DEFAULT_BAND, CostParams, check_costs
from prosumer_gym.envs.prosumer_sharing.feedback import (
    RULES,
    SharingCommunities,
    algorithm2_probabilities,
    default_omega0,
    default_tau,
    platform_update,
)
from prosumer_gym.envs.prosumer_sharing.oracle import (
    Community,
    Optimum,
    _best_response,  # noqa: F401 - private, used by the tests through this module
    _check_contracts,
    kkt_residual,
    solve_optimum,
    solve_optimum_primal,
)
from prosumer_gym.envs.prosumer_sharing.scenarios import (
    PAPER,
    SCENARIOS,
    _scenario_keywords,
    car_sharing_costs,
    community_storage_costs,
    paper_costs,
)

__all__ = [
    "CostParams",
    "Optimum",
    "Community",
    "SharingCommunities",
    "SharingConfig",
    "SCENARIOS",
    "RULES",
    "DEFAULT_BAND",
    "PAPER",
    "check_costs",
    "paper_costs",
    "car_sharing_costs",
    "community_storage_costs",
    "solve_optimum",
    "solve_optimum_primal",
    "kkt_residual",
    "platform_update",
    "algorithm2_probabilities",
    "algorithm2_fixed_point",
    "default_omega0",
    "default_tau",
    "CONFIG_KEYS",
]


def _pair(name: str, value: object, positive: bool = False) -> np.ndarray:
    """A number (used for both x and y) or an (x, y) pair of finite numbers (``> 0`` if ``positive``)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    arr = check_floats(name, value, 0.0 if positive else -np.inf, lo_open=positive, scalar_ok=True)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2:
        raise ValueError(f"{name} must be a number or an (x, y) pair of numbers, got {arr.size} values")
    return arr


def footprint_bytes(n_prosumers: int) -> float:
    """Estimate (bytes) of the arrays of a community of at most ``n_prosumers``, checked
    against :data:`~prosumer_gym.core.validation.MAX_ENV_BYTES` before anything is
    allocated: cost parameters, decisions, observations, spaces and names (measured
    ~4.3 kB per prosumer at 800; 8 kB taken). The horizon allocates nothing up front."""
    return 8192.0 * n_prosumers


@dataclass(eq=False)
class SharingConfig:
    """Validated settings of a ProsumerSharing-v0 community (shared by every view).

    ``n_prosumers`` is the nominal size N (contracts ``contract_x``, ``contract_y`` are the
    aggregates at that size; default ``None`` = the paper's 90 and 80 per 99 prosumers);
    ``n_prosumers_range=(lo, hi)`` draws the size of each episode uniformly in ``[lo, hi]``
    and scales the contracts to ``C * N_episode / n_prosumers``.
    ``costs`` (a :class:`CostParams` of shape (N,)) fixes the community instead of sampling
    ``scenario``; ``oracle=False`` skips Problem III.2 (no distance metrics).
    """

    n_prosumers: int = PAPER["n_prosumers"]
    n_prosumers_range: tuple[int, int] | None = None
    scenario: str = "paper"
    scenario_kwargs: dict[str, Any] = field(default_factory=dict)
    costs: CostParams | None = None
    contract_x: float | None = None
    contract_y: float | None = None
    tau: np.ndarray | float | None = None
    omega0: np.ndarray | float | None = None
    rule: str = "eq22"
    monotone_band: float | None = DEFAULT_BAND
    oracle: bool = True

    def __post_init__(self) -> None:
        self.rule = check_choice("rule", self.rule, RULES)
        if self.costs is not None:
            if not isinstance(self.costs, CostParams) or self.costs.linear.ndim != 1:
                raise ValueError("costs must be a CostParams of shape (N,) (one community)")
            if self.n_prosumers_range is not None:
                raise ValueError("costs fixes the community; n_prosumers_range must be None")
            self.n_prosumers = self.costs.n
        self.n_prosumers = _int("n_prosumers", self.n_prosumers, 2)
        if self.n_prosumers_range is not None:
            if isinstance(self.n_prosumers_range, (str, bytes, dict)) or not hasattr(self.n_prosumers_range, "__len__") \
                    or len(self.n_prosumers_range) != 2:
                raise ValueError(f"n_prosumers_range must be None or a (low, high) pair, got {self.n_prosumers_range!r:.80}")
            lo, hi = self.n_prosumers_range
            lo = _int("n_prosumers_range[0]", lo, 2)
            hi = _int("n_prosumers_range[1]", hi, lo)
            self.n_prosumers_range = (lo, hi)
        check_size("ProsumerSharing-v0", f"n_prosumers={self.n_prosumers}"
                   + (f", n_prosumers_range={self.n_prosumers_range}" if self.n_prosumers_range else ""),
                   footprint_bytes(self.n_max))
        self.scenario = check_choice("scenario", self.scenario, tuple(SCENARIOS))
        self.scenario_kwargs = check_mapping("scenario_kwargs", self.scenario_kwargs)
        allowed = _scenario_keywords(self.scenario)
        unknown = sorted(set(self.scenario_kwargs) - set(allowed))
        if unknown:
            raise ValueError(
                f"scenario_kwargs {unknown} unknown for scenario {self.scenario!r}; allowed: {list(allowed)}")
        for name in ("contract_x", "contract_y"):
            v = getattr(self, name)
            if v is None:  # the paper's per-capita contracts: 90/99 and 80/99 per prosumer
                v = PAPER[name] * self.n_prosumers / PAPER["n_prosumers"]
            setattr(self, name, check_float(name, v))
        for m in self.sizes():
            _check_contracts(m, *self.contracts_for(m))
        self.tau = _pair("tau", default_tau(self.rule) if self.tau is None else self.tau, positive=True)
        self.omega0 = _pair("omega0", default_omega0(self.rule) if self.omega0 is None else self.omega0,
                            positive=True)
        if self.monotone_band is not None:
            self.monotone_band = check_float("monotone_band", self.monotone_band, 0.0)
        self.oracle = check_bool("oracle", self.oracle)
        # Reject bad cost parameters now, not at the first reset: fixed costs are checked as
        # given, scenarios on a large probe draw (every sampled community is checked again).
        if self.costs is not None:
            check_costs(self.costs, self.monotone_band)
        else:
            try:
                probe = SCENARIOS[self.scenario](np.random.default_rng(0), 2000, **self.scenario_kwargs)
            except ValueError as e:
                raise ValueError(f"scenario_kwargs of scenario {self.scenario!r}: {e}") from None
            check_costs(probe, self.monotone_band, field=f"scenario {self.scenario!r}")

    @property
    def n_max(self) -> int:
        return self.n_prosumers_range[1] if self.n_prosumers_range else self.n_prosumers

    def sizes(self) -> tuple[int, ...]:
        if self.n_prosumers_range:
            return tuple(sorted({self.n_prosumers_range[0], self.n_prosumers_range[1]}))
        return (self.n_prosumers,)

    def contracts_for(self, n: int) -> tuple[float, float]:
        """Contracts at community size ``n`` (proportional to the nominal ones)."""
        f = n / self.n_prosumers
        return self.contract_x * f, self.contract_y * f

    def draw_size(self, rng: np.random.Generator) -> int:
        if self.n_prosumers_range is None:
            return self.n_prosumers
        lo, hi = self.n_prosumers_range
        return int(rng.integers(lo, hi + 1))

    def check_size(self, n: object, field_name: str = "options['n_prosumers']") -> int:
        if self.n_prosumers_range is None:
            return _int(field_name, n, self.n_prosumers, self.n_prosumers)
        return _int(field_name, n, *self.n_prosumers_range)

    def sample(self, rng: np.random.Generator, n: int | None = None) -> Community:
        """A community of ``n`` prosumers (default: drawn from the size range) with its optimum."""
        if n is None:
            n = self.draw_size(rng)
        if self.costs is not None:
            costs = self.costs
        else:
            costs = SCENARIOS[self.scenario](rng, n, **self.scenario_kwargs)
            check_costs(costs, self.monotone_band, field=f"scenario {self.scenario!r}")
        cx, cy = self.contracts_for(costs.n)
        opt = solve_optimum(costs, cx, cy) if self.oracle else None
        if opt is not None:
            gx, gy = costs.grad(opt.x, opt.y)
            if min(gx.min(), gy.min()) <= 0:
                raise ValueError(
                    f"contracts (C_x, C_y) = ({cx:g}, {cy:g}) put the optimum of Problem III.2 where a cost decreases "
                    "(dg <= 0): Algorithm 2 cannot reach it; choose contracts closer to sum_i alpha_i T_i"
                )
        return Community(costs=costs, contracts=np.array([cx, cy]), optimum=opt)

    def make_core(self, n_communities: int = 1) -> SharingCommunities:
        return SharingCommunities(n_communities, self.n_max, self.tau, self.omega0, self.rule)


CONFIG_KEYS = tuple(f.name for f in fields(SharingConfig))
