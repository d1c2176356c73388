"""ProsumerSharing-v0 private costs: the parametric family :class:`CostParams` and the
Assumption III.1 check :func:`check_costs` (paper ``000``, Alam, Shorten, Wirth, Yu).

Arrays whose last axis runs over prosumers, so one call handles one community ``(N,)`` or
``K`` communities ``(K, N)``. The family contains Eq. 30 (both classes) and the use-case
objectives of Eqs. 28-29::

    g_i(x, y) = c_i (x + y) + q_i/2 (s - T_i)^2 + r_i/4 (s - T_i)^4
                + wx_i/2 (x - alpha_i T_i)^2 + wy_i/2 (y - (1 - alpha_i) T_i)^2,
    s = x + y.

Eq. 30 class 1: ``c = delta, q = a_i/2, r = 0, wx = wy = 1, alpha = 1/2, T = T_1``;
class 2: ``c = gamma, q = a_i/4, r = 5 b_i, wx = 1, wy = 0, alpha = 1/2, T = T_2``.
Eq. 28: ``g_i(s - T_i) = c_i s + q_i/2 (s - T_i)^2 [+ r_i/4 (s - T_i)^4]``,
``h_i``/``l_i`` = the ``wx``/``wy`` quadratics around ``alpha_i T_i``/``(1-alpha_i) T_i``.

:func:`check_costs` rejects non-convex or not strictly convex parameters and costs that
decrease on the operating band ``x + y >= T_i - band`` (Eq. 30's class-2 quartic makes the
cost decrease for ``x + y < T_2 - 0.49`` when ``b_i = 15``, so the whole unit box cannot be
required; ``band=None`` requires it anyway).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["CostParams", "check_costs", "DEFAULT_BAND"]

#: Width of the operating band on which Assumption III.1 (increasing costs) is checked.
DEFAULT_BAND = 0.45
_FLOOR = 1e-12

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
    where = "the unit box (monotone_band=None)" if band is None else \
        f"its operating band x + y >= T_i - {band:g} (monotone_band)"
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
