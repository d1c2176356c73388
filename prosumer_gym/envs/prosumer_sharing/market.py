"""ProsumerSharing-v0 mechanism: private costs, the platform's feedback, Algorithm 2, the oracle.

Paper ``000`` (Alam, Shorten, Wirth, Yu: distributed algorithms for IoT-enabled prosumer
markets), Problem III.2 (Eqs. 8-12), Eqs. 19-24, Algorithms 1-2, Section V (Eqs. 25-29),
Section VI (Eq. 30). Spec: ``shared/spec/prosumer_sharing.md``. Everything here is plain
numpy on arrays whose last axis runs over prosumers, so one call handles one community
``(N,)`` or ``K`` communities at once ``(K, N)``.

Contents
--------
:class:`CostParams`
    The private costs ``g_i(x, y)`` as one parametric family that contains Eq. 30 (both
    classes) and the use-case objectives of Eqs. 28-29::

        g_i(x, y) = c_i (x + y) + q_i/2 (s - T_i)^2 + r_i/4 (s - T_i)^4
                    + wx_i/2 (x - alpha_i T_i)^2 + wy_i/2 (y - (1 - alpha_i) T_i)^2,
        s = x + y.

    Eq. 30 class 1: ``c = delta, q = a_i/2, r = 0, wx = wy = 1, alpha = 1/2, T = T_1``;
    class 2: ``c = gamma, q = a_i/4, r = 5 b_i, wx = 1, wy = 0, alpha = 1/2, T = T_2``.
    Eq. 28: ``g_i(s - T_i) = c_i s + q_i/2 (s - T_i)^2 [+ r_i/4 (s - T_i)^4]``,
    ``h_i``/``l_i`` = the ``wx``/``wy`` quadratics around ``alpha_i T_i``/``(1-alpha_i) T_i``.
:func:`check_costs`
    Assumption III.1: rejects non-convex or not strictly convex parameters and costs that
    decrease on the operating band ``x + y >= T_i - band`` (Eq. 30's class-2 quartic makes
    the cost decrease for ``x + y < T_2 - 0.49`` when ``b_i = 15``, so the whole unit box
    cannot be required; ``band=None`` requires it anyway).
Scenarios
    ``"paper"`` (Section VI, Eq. 30), ``"car_sharing"`` (Section V-A, Eq. 28),
    ``"community_storage"`` (Section V-B, Eq. 29); see :data:`SCENARIOS`. The paper gives no
    numbers for V-A/V-B: our ranges are documented in ``docs/prosumer_sharing.md``.
:func:`solve_optimum`
    Problem III.2 solved exactly (strictly convex, separable, two coupling equalities):
    the concave dual in ``(mu_x, mu_y)`` is maximised with ``scipy.optimize.minimize``
    (``trust-exact``, exact gradient and Hessian); each prosumer's best response is computed
    to machine precision by bisection on its total ``s = x + y``. Bounds ``0 <= x, y <= 1``
    (the averages of binary decisions; the paper assumes ``x*, y* in (0, 1]``).
    :func:`solve_optimum_primal` is the SLSQP reference used by the tests.
Algorithms
    :func:`platform_update` (Algorithm 1, Eqs. 23-24), :func:`algorithm2_probabilities`
    (Algorithm 2, Eq. 22 clipped to [0, 1] as in Section VI; ``rule="eq20"`` is the
    consensus form of Eq. 20), :func:`algorithm2_fixed_point` (where Eq. 22 converges).
:class:`SharingCommunities`
    The vectorised core: ``K`` independent communities of up to ``n_max`` prosumers (masked)
    stepped together with arrays; every env view of this market runs on it.
:class:`SharingConfig`
    Validated configuration shared by the PettingZoo env, the Gymnasium view and the
    batched envs; samples a community (costs, contracts, optimum) from a generator.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from prosumer_gym.core.validation import check_int as _int
from scipy import optimize

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

#: Section VI / Algorithm 1 constants of the paper.
PAPER = {
    "n_prosumers": 99,
    "n_class1": 50,
    "contract_x": 90.0,
    "contract_y": 80.0,
    "omega0": 0.06,
    "delta": 11.75,
    "gamma": 11.65,
    "target_1": 1.74,
    "target_2": 1.725,
    "a_values": (1, 10),
    "b_values": (1, 15),
}
#: Algorithm 2 variants: ``"eq22"`` = Eq. 22 as printed (the paper's Algorithm 2);
#: ``"eq20"`` = the consensus form of Eq. 20 / ref. [29], whose fixed point is the optimum.
RULES = ("eq22", "eq20")
#: Width of the operating band on which Assumption III.1 (increasing costs) is checked.
DEFAULT_BAND = 0.45
_FLOOR = 1e-12


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


# ============================================================================ cost functions
_COST_FIELDS = ("linear", "quad", "quartic", "weight_x", "weight_y", "target", "alpha")


@dataclass(frozen=True, eq=False)
class CostParams:
    """Private costs of a set of prosumers (arrays, last axis = prosumer).

    ``linear`` c_i (cost per unit of x + y: delta/gamma in Eq. 30), ``quad`` q_i, ``quartic``
    r_i (penalties on s - T_i), ``weight_x``/``weight_y`` (h_i, l_i of Eq. 28), ``target``
    T_i (desired utilisation, Eq. 4), ``alpha`` alpha_i (consumption share, Eq. 5), ``klass``
    (integer label used to report consensus per class, as Fig. 7 does).
    """

    linear: np.ndarray
    quad: np.ndarray
    quartic: np.ndarray
    weight_x: np.ndarray
    weight_y: np.ndarray
    target: np.ndarray
    alpha: np.ndarray
    klass: np.ndarray

    def __post_init__(self) -> None:
        arrays = {}
        for name in _COST_FIELDS:
            try:
                a = np.asarray(getattr(self, name), dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"costs.{name} must be numeric, got {getattr(self, name)!r}") from None
            if not np.all(np.isfinite(a)):
                raise ValueError(f"costs.{name} must be finite")
            arrays[name] = a
        k = np.asarray(self.klass)
        if k.dtype.kind not in "iub":
            raise ValueError(f"costs.klass must hold integers, got dtype {k.dtype}")
        arrays["klass"] = k.astype(np.int64)
        try:
            shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
        except ValueError:
            raise ValueError("costs fields must have broadcastable shapes") from None
        if len(shape) == 0:
            shape = (1,)
        for name, a in arrays.items():
            b = np.broadcast_to(a, shape).copy()
            b.flags.writeable = False
            object.__setattr__(self, name, b)

    # -- shape helpers
    @property
    def shape(self) -> tuple[int, ...]:
        return self.linear.shape

    @property
    def n(self) -> int:
        """Number of prosumers (last axis)."""
        return self.linear.shape[-1]

    def take(self, idx: Any) -> CostParams:
        """Subset along the prosumer axis (``idx``: index array, slice or mask)."""
        return CostParams(**{f.name: getattr(self, f.name)[..., idx] for f in fields(self)})

    def prosumer(self, i: int) -> dict[str, float]:
        """One prosumer's parameters as plain floats (its private information)."""
        out = {name: float(getattr(self, name)[..., i]) for name in _COST_FIELDS}
        out["klass"] = int(self.klass[..., i])
        return out

    @classmethod
    def from_prosumers(cls, rows: Sequence[Mapping[str, float]]) -> CostParams:
        """Inverse of :meth:`prosumer` for a list of prosumers."""
        if not rows:
            raise ValueError("need at least one prosumer")
        names = _COST_FIELDS + ("klass",)
        missing = [n for n in names if n not in rows[0]]
        if missing:
            raise ValueError(f"cost parameters miss {missing}; need {list(names)}")
        return cls(**{n: np.array([r[n] for r in rows]) for n in names})

    # -- Eq. 30 / Eq. 28 and derivatives
    def cost(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """g_i(x, y) (Eq. 30; Eq. 28 per prosumer)."""
        u = x + y - self.target
        a = self.alpha * self.target
        u2 = u * u
        return (
            self.linear * (x + y)
            + 0.5 * self.quad * u2
            + 0.25 * self.quartic * u2 * u2
            + 0.5 * self.weight_x * (x - a) ** 2
            + 0.5 * self.weight_y * (y - (self.target - a)) ** 2
        )

    def grad(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dg_i/dx, dg_i/dy): the derivatives whose consensus characterises the optimum (Eq. 18)."""
        u = x + y - self.target
        a = self.alpha * self.target
        phi = self.linear + u * (self.quad + self.quartic * u * u)
        return phi + self.weight_x * (x - a), phi + self.weight_y * (y - (self.target - a))

    def hess(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Second derivatives (d2g/dx2, d2g/dxdy, d2g/dy2)."""
        u = x + y - self.target
        c = self.quad + 3.0 * self.quartic * u * u
        return c + self.weight_x, c, c + self.weight_y


def _lower_edge_gradients(costs: CostParams, band: float | None):
    """Minimum of each partial derivative over the operating region (see :func:`check_costs`).

    Both partials are non-decreasing in x and in y (convex, separable structure), so the
    minimum over R_i = {(x, y) in [0,1]^2 : x + y >= s_lo} sits on the line x + y = s_lo at
    its extreme point: (max(0, s_lo - 1), ...) for d/dx and symmetrically for d/dy.
    """
    t = costs.target
    s_lo = np.zeros_like(t) if band is None else np.clip(t - band, 0.0, 2.0)
    corner = np.maximum(0.0, s_lo - 1.0)
    gx_min = costs.grad(corner, s_lo - corner)[0]
    gy_min = costs.grad(s_lo - corner, corner)[1]
    return gx_min, gy_min, s_lo, corner


def check_costs(costs: CostParams, band: float | None = DEFAULT_BAND, field: str = "costs") -> None:
    """Assumption III.1 for every prosumer, else ``ValueError`` with the reason.

    * convex: ``quad, quartic, weight_x, weight_y >= 0`` (otherwise g_i is non-convex);
    * strictly convex (unique optimum of Problem III.2): ``weight_x, weight_y > 0``, or a
      positive ``quad``/``quartic`` together with a positive ``weight_x`` or ``weight_y``;
    * ``0 < T_i <= 2`` and ``alpha_i in [0, 1]``;
    * increasing in each variable (so Algorithm 2's probabilities, Eq. 22, are >= 0) on the
      operating band ``{(x, y) in [0, 1]^2 : x + y >= T_i - band}`` (``band=None``: the whole
      unit box).
    """
    if band is not None and not (np.isfinite(band) and band >= 0):
        raise ValueError(f"band must be None or a finite number >= 0, got {band!r}")
    flat = {name: getattr(costs, name).reshape(-1) for name in _COST_FIELDS}

    def _first(mask: np.ndarray) -> int:
        return int(np.flatnonzero(mask.reshape(-1))[0])

    for name in ("quad", "quartic", "weight_x", "weight_y"):
        bad = flat[name] < 0
        if np.any(bad):
            i = _first(bad)
            raise ValueError(
                f"{field}: prosumer {i} has {name} = {flat[name][i]:g} < 0, which makes its cost g_i non-convex "
                "(Assumption III.1 needs convex costs; Eq. 30's a_i, b_i must be >= 0)"
            )
    q, r, wx, wy = flat["quad"], flat["quartic"], flat["weight_x"], flat["weight_y"]
    strict = ((wx > 0) & (wy > 0)) | (((q > 0) | (r > 0)) & ((wx > 0) | (wy > 0)))
    if not np.all(strict):
        i = _first(~strict)
        raise ValueError(
            f"{field}: prosumer {i}'s cost is not strictly convex (quad={q[i]:g}, quartic={r[i]:g}, "
            f"weight_x={wx[i]:g}, weight_y={wy[i]:g}); Problem III.2 then has no unique optimum. Need weight_x>0 and "
            "weight_y>0, or quad/quartic > 0 with weight_x>0 or weight_y>0"
        )
    t, al = flat["target"], flat["alpha"]
    if np.any((t <= 0) | (t > 2)):
        i = _first((t <= 0) | (t > 2))
        raise ValueError(f"{field}: prosumer {i} has target T_i = {t[i]:g}; need 0 < T_i <= 2 (x + y <= 2)")
    if np.any((al < 0) | (al > 1)):
        i = _first((al < 0) | (al > 1))
        raise ValueError(f"{field}: prosumer {i} has alpha = {al[i]:g}; need 0 <= alpha_i <= 1 (Eq. 5)")
    gx_min, gy_min, s_lo, corner = _lower_edge_gradients(costs, band)
    where = "the unit box" if band is None else f"its operating band x + y >= T_i - {band:g}"
    for name, gmin, var in (("x", gx_min, 0), ("y", gy_min, 1)):
        bad = gmin.reshape(-1) <= 0
        if np.any(bad):
            i = _first(bad)
            c, s = corner.reshape(-1)[i], s_lo.reshape(-1)[i]
            pt = (c, s - c) if var == 0 else (s - c, c)
            raise ValueError(
                f"{field}: prosumer {i}'s cost decreases in {name} on {where}: dg/d{name} = {gmin.reshape(-1)[i]:.4g} "
                f"at (x, y) = ({pt[0]:.3f}, {pt[1]:.3f}). Assumption III.1 needs costs increasing in each variable "
                "(Algorithm 2's probability, Eq. 22, would be negative); raise the linear cost (delta/gamma) or "
                "lower the penalties"
            )


# ============================================================================ scenarios
def _int_range(name: str, value: Sequence[int], lo: int = 0) -> tuple[int, int]:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of integers, got {value!r}") from None
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) for v in (a, b)):
        raise ValueError(f"{name} must be a (low, high) pair of integers, got {value!r}")
    if a > b or a < lo:
        reason = " (negative values make g_i non-convex)" if a < 0 else ""
        raise ValueError(f"{name} must satisfy {lo} <= low <= high, got {(a, b)}{reason}")
    return int(a), int(b)


def _float_range(name: str, value: Sequence[float], lo: float = -np.inf, hi: float = np.inf,
                 reason: str = "") -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (np.isfinite(a) and np.isfinite(b)) or a > b or a < lo or b > hi:
        raise ValueError(f"{name} must satisfy {lo:g} <= low <= high <= {hi:g}, got {(a, b)}{reason}")
    return a, b


def _finite(name: str, value: float, lo: float = -np.inf, hi: float = np.inf, strict_lo: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < lo or v > hi or (strict_lo and v <= lo):
        op = "<" if strict_lo else "<="
        raise ValueError(f"{name} must be a finite number with {lo:g} {op} {name} <= {hi:g}, got {value!r}")
    return v


def paper_costs(
    rng: np.random.Generator,
    n: int,
    *,
    class1_fraction: float = 50 / 99,
    a_values: tuple[int, int] = (1, 10),
    b_values: tuple[int, int] = (1, 15),
    delta: float = 11.75,
    gamma: float = 11.65,
    target_1: float = 1.74,
    target_2: float = 1.725,
) -> CostParams:
    """Section VI, Eq. 30: two classes; a_i ~ U{1..10}, b_i ~ U{1..15} (integers, as stated).

    Prosumers ``0 .. round(class1_fraction * n) - 1`` form class 1 (50 of 99 by default),
    the rest class 2.
    """
    f = _finite("class1_fraction", class1_fraction, 0.0, 1.0)
    a_lo, a_hi = _int_range("a_values", a_values)
    b_lo, b_hi = _int_range("b_values", b_values)
    delta = _finite("delta", delta)
    gamma = _finite("gamma", gamma)
    t1 = _finite("target_1", target_1, 0.0, 2.0, strict_lo=True)
    t2 = _finite("target_2", target_2, 0.0, 2.0, strict_lo=True)
    n1 = int(round(f * n))
    c1 = np.arange(n) < n1
    a = rng.integers(a_lo, a_hi + 1, size=n).astype(np.float64)
    b = rng.integers(b_lo, b_hi + 1, size=n).astype(np.float64)
    return CostParams(
        linear=np.where(c1, delta, gamma),
        quad=np.where(c1, a / 2.0, a / 4.0),  # a/4 u^2 = (a/2)/2 u^2 ; a/8 u^2 = (a/4)/2 u^2
        quartic=np.where(c1, 0.0, 5.0 * b),  # 5/4 b u^4 = (5b)/4 u^4
        weight_x=np.ones(n),
        weight_y=np.where(c1, 1.0, 0.0),  # class 2 has no production term in Eq. 30
        target=np.where(c1, t1, t2),
        alpha=np.full(n, 0.5),
        klass=np.where(c1, 1, 2),
    )


def car_sharing_costs(
    rng: np.random.Generator,
    n: int,
    *,
    usage_cost: tuple[float, float] = (11.6, 11.9),
    target: tuple[float, float] = (1.6, 1.82),
    alpha: tuple[float, float] = (0.5, 0.56),
    penalty: tuple[float, float] = (1.0, 5.0),
    weight_x: tuple[float, float] = (1.0, 3.0),
    weight_y: tuple[float, float] = (1.0, 3.0),
) -> CostParams:
    """Section V-A (Eqs. 25-28): households with (mostly) two cars.

    x: the household uses a car of the pool today; y: it lends a car to the external agency.
    ``T_i`` car-days per day (Eq. 27), own-use share ``alpha_i``; ``g_i`` = a running cost per
    car-day ``c_i`` (wear, insurance; makes g increasing) + ``q_i/2 (s - T_i)^2``; ``h_i``,
    ``l_i`` quadratic with weights ``weight_x``/``weight_y``. All drawn uniformly from the
    given ranges (our choice: the paper gives no numbers).
    """
    rc = _float_range("usage_cost", usage_cost, 0.0)
    rt = _float_range("target", target, 0.0, 2.0)
    ra = _float_range("alpha", alpha, 0.0, 1.0)
    rp = _float_range("penalty", penalty, 0.0, reason=" (negative penalties make g_i non-convex)")
    rx = _float_range("weight_x", weight_x, 0.0, reason=" (negative weights make h_i non-convex)")
    ry = _float_range("weight_y", weight_y, 0.0, reason=" (negative weights make l_i non-convex)")
    return CostParams(
        linear=rng.uniform(*rc, size=n),
        quad=rng.uniform(*rp, size=n),
        quartic=np.zeros(n),
        weight_x=rng.uniform(*rx, size=n),
        weight_y=rng.uniform(*ry, size=n),
        target=rng.uniform(*rt, size=n),
        alpha=rng.uniform(*ra, size=n),
        klass=np.ones(n, dtype=np.int64),
    )


def community_storage_costs(
    rng: np.random.Generator,
    n: int,
    *,
    cycling_cost: tuple[float, float] = (11.6, 11.9),
    target: tuple[float, float] = (1.6, 1.82),
    alpha: tuple[float, float] = (0.5, 0.56),
    penalty: tuple[float, float] = (0.5, 3.0),
    capacity_penalty: tuple[float, float] = (1.0, 6.0),
    weight_x: tuple[float, float] = (1.0, 2.0),
    weight_y: tuple[float, float] = (1.0, 2.0),
) -> CostParams:
    """Section V-B (Eq. 29): households with PV and batteries.

    x: discharge one unit of stored energy for own use today; y: sell one unit to the
    external agency. ``T_i`` = units cycled through the battery per day; ``g_i`` = a cycling
    (degradation) cost per unit ``c_i`` + ``q_i/2 (s - T_i)^2`` + a quartic battery-limit
    term ``r_i/4 (s - T_i)^4`` (like Eq. 30's class 2); ``h_i``, ``l_i`` quadratic. Ranges
    are our choice (the paper gives none).
    """
    rc = _float_range("cycling_cost", cycling_cost, 0.0)
    rt = _float_range("target", target, 0.0, 2.0)
    ra = _float_range("alpha", alpha, 0.0, 1.0)
    rp = _float_range("penalty", penalty, 0.0, reason=" (negative penalties make g_i non-convex)")
    rq = _float_range("capacity_penalty", capacity_penalty, 0.0, reason=" (negative penalties make g_i non-convex)")
    rx = _float_range("weight_x", weight_x, 0.0, reason=" (negative weights make h_i non-convex)")
    ry = _float_range("weight_y", weight_y, 0.0, reason=" (negative weights make l_i non-convex)")
    return CostParams(
        linear=rng.uniform(*rc, size=n),
        quad=rng.uniform(*rp, size=n),
        quartic=rng.uniform(*rq, size=n),
        weight_x=rng.uniform(*rx, size=n),
        weight_y=rng.uniform(*ry, size=n),
        target=rng.uniform(*rt, size=n),
        alpha=rng.uniform(*ra, size=n),
        klass=np.ones(n, dtype=np.int64),
    )


SCENARIOS: dict[str, Callable[..., CostParams]] = {
    "paper": paper_costs,
    "car_sharing": car_sharing_costs,
    "community_storage": community_storage_costs,
}


def _scenario_keywords(scenario: str) -> tuple[str, ...]:
    sig = inspect.signature(SCENARIOS[scenario])
    return tuple(p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY)


# ============================================================================ oracle
@dataclass(frozen=True, eq=False)
class Optimum:
    """Solution of Problem III.2: ``x``, ``y`` (N,), multipliers ``mu_x``, ``mu_y`` (the
    consensus values of Eq. 18), total cost, KKT residual and the number of prosumers at a
    bound of [0, 1]."""

    x: np.ndarray
    y: np.ndarray
    mu_x: float
    mu_y: float
    cost: float
    kkt_residual: float
    n_at_bounds: int
    method: str


def _best_response(costs: CostParams, mu_x: np.ndarray, mu_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """argmin over [0,1]^2 of g_i(x, y) - mu_x x - mu_y y, for every prosumer (vectorised).

    Reduced to the total s = x + y: for fixed s the inner problem is a 1-D quadratic in x
    (closed form, clipped to [max(0, s-1), min(1, s)]); its value F(s) is convex and F'(s) is
    found exactly (moving x or y, whichever is free), so bisection on s in [0, 2] converges
    to machine precision.
    """
    T = costs.target
    tx = costs.alpha * T
    ty = T - tx
    wx, wy = costs.weight_x, costs.weight_y
    wsum = np.maximum(wx + wy, _FLOOR)
    c, q, r = costs.linear, costs.quad, costs.quartic
    mx = np.broadcast_to(mu_x, T.shape)
    my = np.broadcast_to(mu_y, T.shape)
    base = (wx * tx - wy * ty + mx - my) / wsum
    slope = wy / wsum

    def xhat(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo = np.maximum(0.0, s - 1.0)
        hi = np.minimum(1.0, s)
        return np.clip(base + slope * s, lo, hi), lo, hi

    def dF(s: np.ndarray) -> np.ndarray:
        x, lo, hi = xhat(s)
        y = s - x
        u = s - T
        phi = c + u * (q + r * u * u)
        moving_x = ((x <= lo) & (s > 1.0)) | ((x >= hi) & (s < 1.0))
        return np.where(moving_x, phi + wx * (x - tx) - mx, phi + wy * (y - ty) - my)

    lo_s = np.zeros_like(T)
    hi_s = np.full_like(T, 2.0)
    for _ in range(64):
        mid = 0.5 * (lo_s + hi_s)
        pos = dF(mid) > 0
        hi_s = np.where(pos, mid, hi_s)
        lo_s = np.where(pos, lo_s, mid)
        if np.all(hi_s - lo_s <= 4e-16):
            break
    s = 0.5 * (lo_s + hi_s)
    x = xhat(s)[0]
    return x, np.clip(s - x, 0.0, 1.0)


def _jacobian_sum(costs: CostParams, x: np.ndarray, y: np.ndarray, eps: float = 1e-10) -> np.ndarray:
    """sum_i d(x_i, y_i)/d(mu_x, mu_y): inverse Hessian on each prosumer's free coordinates."""
    hxx, hxy, hyy = costs.hess(x, y)
    hxx = np.maximum(hxx, _FLOOR)
    hyy = np.maximum(hyy, _FLOOR)
    fx = (x > eps) & (x < 1 - eps)
    fy = (y > eps) & (y < 1 - eps)
    both = fx & fy
    det = np.maximum(hxx * hyy - hxy * hxy, _FLOOR)
    jxx = np.where(both, hyy / det, np.where(fx, 1.0 / hxx, 0.0))
    jyy = np.where(both, hxx / det, np.where(fy, 1.0 / hyy, 0.0))
    jxy = np.where(both, -hxy / det, 0.0)
    return np.array([[jxx.sum(), jxy.sum()], [jxy.sum(), jyy.sum()]])


def _check_contracts(n: int, contract_x: float, contract_y: float) -> None:
    for name, c in (("contract_x", contract_x), ("contract_y", contract_y)):
        if not (np.isfinite(c) and 0 < c < n):
            raise ValueError(
                f"{name} (C) must satisfy 0 < C < N = {n} so that Problem III.2 has an interior optimum "
                f"(the averages of binary decisions lie in [0, 1]), got {c!r}"
            )


def kkt_residual(costs: CostParams, x: np.ndarray, y: np.ndarray, contract_x: float, contract_y: float,
                 eps: float = 1e-9) -> tuple[float, float, float]:
    """Largest violation of the KKT conditions of Problem III.2 at (x, y), and the
    multipliers (median derivative of the prosumers strictly inside [0, 1]).

    Conditions: sums equal the contracts; interior prosumers share the derivative (Eq. 18);
    prosumers at 0 have derivative >= mu, at 1 <= mu.
    """
    gx, gy = costs.grad(x, y)
    res = max(abs(x.sum() - contract_x), abs(y.sum() - contract_y))
    res = max(res, float(np.max(np.maximum(-x, 0))), float(np.max(np.maximum(x - 1, 0))))
    res = max(res, float(np.max(np.maximum(-y, 0))), float(np.max(np.maximum(y - 1, 0))))
    mus = []
    for v, g in ((x, gx), (y, gy)):
        free = (v > eps) & (v < 1 - eps)
        mu = float(np.median(g[free])) if np.any(free) else float(np.median(g))
        mus.append(mu)
        if np.any(free):
            res = max(res, float(np.max(np.abs(g[free] - mu))))
        at0 = v <= eps
        at1 = v >= 1 - eps
        if np.any(at0):
            res = max(res, float(np.max(np.maximum(mu - g[at0], 0))))
        if np.any(at1):
            res = max(res, float(np.max(np.maximum(g[at1] - mu, 0))))
    return res, mus[0], mus[1]


def solve_optimum(costs: CostParams, contract_x: float, contract_y: float, tol: float = 1e-10) -> Optimum:
    """Problem III.2 (Eqs. 8-12, with x, y <= 1) solved exactly through its dual.

    The dual ``D(mu) = sum_i min_{[0,1]^2} [g_i - mu_x x - mu_y y] + mu_x C_x + mu_y C_y`` is
    concave and smooth (strict convexity); ``scipy.optimize.minimize(method="trust-exact")``
    maximises it with the exact gradient ``C - sum_i (x_i, y_i)(mu)`` and Hessian. The
    returned point satisfies the sums to ``tol`` and Eq. 18 to machine precision.
    """
    if costs.linear.ndim != 1:
        raise ValueError(f"solve_optimum takes one community (costs of shape (N,)), got shape {costs.shape}")
    n = costs.n
    _check_contracts(n, contract_x, contract_y)
    target = np.array([contract_x, contract_y], dtype=np.float64)
    gx0, gy0 = costs.grad(np.full(n, contract_x / n), np.full(n, contract_y / n))
    mu0 = np.array([gx0.mean(), gy0.mean()])

    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def br(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = np.asarray(mu, dtype=np.float64).tobytes()
        if key not in cache:
            if len(cache) > 8:
                cache.clear()
            cache[key] = _best_response(costs, mu[0], mu[1])
        return cache[key]

    def fun(mu: np.ndarray) -> float:
        x, y = br(mu)
        val = np.sum(costs.cost(x, y) - mu[0] * x - mu[1] * y) + mu @ target
        return -float(val)

    def jac(mu: np.ndarray) -> np.ndarray:
        x, y = br(mu)
        return np.array([x.sum(), y.sum()]) - target

    def hess(mu: np.ndarray) -> np.ndarray:
        x, y = br(mu)
        return _jacobian_sum(costs, x, y) + 1e-14 * np.eye(2)

    def gap_of(mu: np.ndarray) -> float:
        return float(np.max(np.abs(jac(mu))))

    # Stage 1: globally convergent trust region on the dual. Near the solution the dual's
    # changes fall below the float resolution of its value, so stage 2 polishes the
    # stationarity equations sum_i (x_i, y_i)(mu) = (C_x, C_y) directly (no function values).
    res = optimize.minimize(fun, mu0, jac=jac, hess=hess, method="trust-exact",
                            options={"gtol": tol, "maxiter": 200})
    mu = res.x
    if gap_of(mu) > tol:
        sol = optimize.root(jac, mu, jac=hess, method="hybr", options={"xtol": 1e-15})
        if gap_of(sol.x) < gap_of(mu):
            mu = sol.x
    x, y = br(mu)
    gap = gap_of(mu)
    if not np.isfinite(gap) or gap > max(1e3 * tol, 1e-7):
        raise RuntimeError(f"solve_optimum did not converge: constraint gap {gap:.3g} ({res.message})")
    kkt, _, _ = kkt_residual(costs, x, y, contract_x, contract_y)
    at_b = int(np.sum((x <= 1e-9) | (x >= 1 - 1e-9) | (y <= 1e-9) | (y >= 1 - 1e-9)))
    return Optimum(x=x, y=y, mu_x=float(mu[0]), mu_y=float(mu[1]), cost=float(costs.cost(x, y).sum()),
                   kkt_residual=float(kkt), n_at_bounds=at_b, method="dual-trust-exact")


def solve_optimum_primal(costs: CostParams, contract_x: float, contract_y: float) -> Optimum:
    """Reference solver: Problem III.2 on all 2N variables by SLSQP (slow; for checks)."""
    if costs.linear.ndim != 1:
        raise ValueError(f"solve_optimum_primal takes costs of shape (N,), got {costs.shape}")
    n = costs.n
    _check_contracts(n, contract_x, contract_y)
    a = np.zeros((2, 2 * n))
    a[0, :n] = 1.0
    a[1, n:] = 1.0
    b = np.array([contract_x, contract_y])

    def f(z: np.ndarray) -> float:
        return float(costs.cost(z[:n], z[n:]).sum())

    def df(z: np.ndarray) -> np.ndarray:
        return np.concatenate(costs.grad(z[:n], z[n:]))

    z0 = np.concatenate([np.full(n, contract_x / n), np.full(n, contract_y / n)])
    res = optimize.minimize(f, z0, jac=df, method="SLSQP", bounds=[(0.0, 1.0)] * (2 * n),
                            constraints=[{"type": "eq", "fun": lambda z: a @ z - b, "jac": lambda z: a}],
                            options={"ftol": 1e-15, "maxiter": 1000})
    x, y = res.x[:n], res.x[n:]
    kkt, mx, my = kkt_residual(costs, x, y, contract_x, contract_y, eps=1e-7)
    at_b = int(np.sum((x <= 1e-7) | (x >= 1 - 1e-7) | (y <= 1e-7) | (y >= 1 - 1e-7)))
    return Optimum(x=x, y=y, mu_x=mx, mu_y=my, cost=f(res.x), kkt_residual=float(kkt), n_at_bounds=at_b,
                   method="primal-slsqp")


# ============================================================================ Algorithms 1-2
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


def algorithm2_fixed_point(costs: CostParams, contract_x: float, contract_y: float,
                           start: Optimum | None = None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Where Algorithm 2 as printed (Eq. 22) settles: ``x_i = sigma_x,i`` and ``y_i = sigma_y,i``
    with the sums on contract, i.e. ``x_i^2 = Omega_x g'_x,i(x_i, y_i)``, ``y_i^2 = Omega_y
    g'_y,i``, ``sum x = C_x``, ``sum y = C_y``. Not the KKT point of Problem III.2 (Eq. 18)
    unless all derivatives coincide; used to explain the residual distance (docs).
    Returns ``(x, y, Omega_x, Omega_y)``; ``scipy.optimize.root`` (hybr) with the exact Jacobian.
    """
    n = costs.n
    _check_contracts(n, contract_x, contract_y)
    if start is None:
        start = solve_optimum(costs, contract_x, contract_y)
    x0, y0 = start.x, start.y
    gx0, gy0 = costs.grad(x0, y0)
    z0 = np.concatenate([x0, y0, [np.mean(x0 * x0 / gx0), np.mean(y0 * y0 / gy0)]])

    def fun(z: np.ndarray) -> np.ndarray:
        x, y, ox, oy = z[:n], z[n:2 * n], z[-2], z[-1]
        gx, gy = costs.grad(x, y)
        return np.concatenate([x * x - ox * gx, y * y - oy * gy, [x.sum() - contract_x, y.sum() - contract_y]])

    def jac(z: np.ndarray) -> np.ndarray:
        x, y, ox, oy = z[:n], z[n:2 * n], z[-2], z[-1]
        gx, gy = costs.grad(x, y)
        hxx, hxy, hyy = costs.hess(x, y)
        j = np.zeros((2 * n + 2, 2 * n + 2))
        i = np.arange(n)
        j[i, i] = 2 * x - ox * hxx
        j[i, n + i] = -ox * hxy
        j[i, -2] = -gx
        j[n + i, i] = -oy * hxy
        j[n + i, n + i] = 2 * y - oy * hyy
        j[n + i, -1] = -gy
        j[-2, :n] = 1.0
        j[-1, n:2 * n] = 1.0
        return j

    sol = optimize.root(fun, z0, jac=jac, method="hybr", tol=1e-13)
    if not sol.success or np.max(np.abs(fun(sol.x))) > 1e-8:
        raise RuntimeError(f"algorithm2_fixed_point did not converge: {sol.message}")
    z = sol.x
    return z[:n].copy(), z[n:2 * n].copy(), float(z[-2]), float(z[-1])


# ============================================================================ one community
@dataclass(frozen=True, eq=False)
class Community:
    """A sampled community: its costs (N,), contracts ``(C_x, C_y)`` and optimum (or None)."""

    costs: CostParams
    contracts: np.ndarray
    optimum: Optimum | None

    @property
    def n(self) -> int:
        return self.costs.n


def _pad(a: np.ndarray, n_max: int, fill: float) -> np.ndarray:
    out = np.full(n_max, fill, dtype=np.float64)
    out[: a.shape[-1]] = a
    return out


def _sorted_stats(a: np.ndarray, valid: np.ndarray, qs: Sequence[float]) -> tuple[list[np.ndarray], np.ndarray,
                                                                                  np.ndarray]:
    """Row-wise quantiles ``qs`` (numpy's default linear interpolation), min and max over the
    ``valid`` entries, from one sort; NaN for rows without any valid entry."""
    b = np.sort(np.where(valid, a, np.inf), axis=1)
    n = valid.sum(axis=1)
    last = np.maximum(n - 1, 0)
    rows = np.arange(a.shape[0])
    quants = []
    for q in qs:
        pos = q * last
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        vlo, vhi = b[rows, lo], b[rows, hi]
        with np.errstate(invalid="ignore"):
            quants.append(np.where(n > 0, vlo + (vhi - vlo) * (pos - lo), np.nan))
    empty = n == 0
    return quants, np.where(empty, np.nan, b[:, 0]), np.where(empty, np.nan, b[rows, last])


def _masked_quantile(a: np.ndarray, valid: np.ndarray, q: float) -> np.ndarray:
    """Row-wise quantile over ``valid`` entries (NaN for empty rows)."""
    return _sorted_stats(a, valid, (q,))[0][0]


def _worst(rows: Any) -> np.ndarray:
    """Element-wise max over classes, ignoring NaN (NaN if every class is NaN)."""
    a = np.stack(list(rows))
    out = np.max(np.where(np.isnan(a), -np.inf, a), axis=0)
    return np.where(np.isfinite(out), out, np.nan)


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


# ============================================================================ configuration


def _pair(name: str, value: object, positive: bool = False) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64) if not isinstance(value, (str, bytes)) else np.array([np.nan])
    if arr.ndim == 0:
        arr = np.array([arr, arr])
    if arr.shape != (2,) or not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
        cond = "> 0" if positive else "finite"
        raise ValueError(f"{name} must be a number or an (x, y) pair of numbers {cond}, got {value!r}")
    return arr


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
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {self.rule!r}")
        if self.costs is not None:
            if not isinstance(self.costs, CostParams) or self.costs.linear.ndim != 1:
                raise ValueError("costs must be a CostParams of shape (N,) (one community)")
            if self.n_prosumers_range is not None:
                raise ValueError("costs fixes the community; n_prosumers_range must be None")
            self.n_prosumers = self.costs.n
        self.n_prosumers = _int("n_prosumers", self.n_prosumers, 2)
        if self.n_prosumers_range is not None:
            try:
                lo, hi = self.n_prosumers_range
            except (TypeError, ValueError):
                raise ValueError(f"n_prosumers_range must be None or a (low, high) pair, got {self.n_prosumers_range!r}"
                                 ) from None
            lo = _int("n_prosumers_range[0]", lo, 2)
            hi = _int("n_prosumers_range[1]", hi, lo)
            self.n_prosumers_range = (lo, hi)
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {tuple(SCENARIOS)}, got {self.scenario!r}")
        self.scenario_kwargs = dict(self.scenario_kwargs or {})
        allowed = _scenario_keywords(self.scenario)
        unknown = sorted(set(self.scenario_kwargs) - set(allowed))
        if unknown:
            raise ValueError(
                f"scenario_kwargs {unknown} unknown for scenario {self.scenario!r}; allowed: {list(allowed)}")
        for name in ("contract_x", "contract_y"):
            v = getattr(self, name)
            if v is None:  # the paper's per-capita contracts: 90/99 and 80/99 per prosumer
                v = PAPER[name] * self.n_prosumers / PAPER["n_prosumers"]
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ValueError(f"{name} must be a number, got {v!r}")
            setattr(self, name, float(v))
        for m in self.sizes():
            _check_contracts(m, *self.contracts_for(m))
        self.tau = _pair("tau", default_tau(self.rule) if self.tau is None else self.tau, positive=True)
        self.omega0 = _pair("omega0", default_omega0(self.rule) if self.omega0 is None else self.omega0,
                            positive=True)
        if self.monotone_band is not None:
            self.monotone_band = _finite("monotone_band", self.monotone_band, 0.0)
        self.oracle = bool(self.oracle)
        # Reject bad cost parameters now, not at the first reset: fixed costs are checked as
        # given, scenarios on a large probe draw (every sampled community is checked again).
        if self.costs is not None:
            check_costs(self.costs, self.monotone_band)
        else:
            probe = SCENARIOS[self.scenario](np.random.default_rng(0), 2000, **self.scenario_kwargs)
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
