"""Prospect-theory (PT) value function, shared by every market.

One vectorised implementation of the S-shaped value function of Kahneman & Tversky as
used in the dissertation (``001``):

* Eq. 2.1: ``v(x) = k+ (x - r0)^zeta+`` for ``x >= r0`` (gain),
  ``v(x) = -k- (r0 - x)^zeta-`` for ``x < r0`` (loss);
* Eq. 5.1: the buyer's value of paying ``y_j`` against the reference cost
  ``rho_j w_j`` is ``v`` of the gain ``rho_j w_j - y_j``;
* Eq. 5.5 / 5.7: the seller's perceived TD error, ``v`` of ``y_i`` with reference 0.

The branches disagree only at the reference point itself, where both are 0, so a single
function serves all three equations.  The function is concave for gains and convex for
losses (when ``zeta <= 1``) and has an infinite slope at the reference point when
``zeta < 1``; :func:`pt_derivative` therefore takes a floor ``eps`` on ``|g|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["PTParams", "pt_value", "pt_derivative", "sample_pt_params"]


@dataclass(frozen=True)
class PTParams:
    """Per-person PT parameters, each an array of shape ``(n,)`` (or broadcastable).

    ``k_pos``/``k_neg``: loss-aversion gains (k+, k-); ``zeta_pos``/``zeta_neg``:
    risk-sensitivity exponents (zeta+, zeta-).
    """

    k_pos: NDArray[np.float64]
    k_neg: NDArray[np.float64]
    zeta_pos: NDArray[np.float64]
    zeta_neg: NDArray[np.float64]

    def __post_init__(self) -> None:
        for name in ("k_pos", "k_neg", "zeta_pos", "zeta_neg"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                raise ValueError(f"PTParams.{name} must be finite and > 0, got {arr!r}")
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(np.broadcast(self.k_pos, self.k_neg, self.zeta_pos, self.zeta_neg).size)

    def take(self, idx: ArrayLike) -> "PTParams":
        """Parameters of the people at ``idx``."""
        return PTParams(self.k_pos[idx], self.k_neg[idx], self.zeta_pos[idx], self.zeta_neg[idx])

    @classmethod
    def neutral(cls, n: int) -> "PTParams":
        """k+ = k- = zeta+ = zeta- = 1: the value function is the identity."""
        one = np.ones(n)
        return cls(one, one.copy(), one.copy(), one.copy())


def sample_pt_params(
    rng: np.random.Generator,
    n: int,
    k_range: tuple[float, float] = (2.10, 2.61),
    zeta_pos_range: tuple[float, float] = (0.60, 0.88),
    zeta_neg_range: tuple[float, float] = (0.52, 1.0),
) -> PTParams:
    """Draw ``n`` people's PT parameters uniformly, as in Section 5.3.1.

    k+ and k- are drawn independently from ``k_range``; zeta+ and zeta- from their ranges.
    """
    for name, (lo, hi) in (("k_range", k_range), ("zeta_pos_range", zeta_pos_range),
                           ("zeta_neg_range", zeta_neg_range)):
        if not (0 < lo <= hi):
            raise ValueError(f"{name} must satisfy 0 < low <= high, got {(lo, hi)}")
    return PTParams(
        k_pos=rng.uniform(*k_range, size=n),
        k_neg=rng.uniform(*k_range, size=n),
        zeta_pos=rng.uniform(*zeta_pos_range, size=n),
        zeta_neg=rng.uniform(*zeta_neg_range, size=n),
    )


def pt_value(
    gain: ArrayLike,
    k_pos: ArrayLike,
    k_neg: ArrayLike,
    zeta_pos: ArrayLike,
    zeta_neg: ArrayLike,
) -> NDArray[np.float64]:
    """PT value of ``gain`` (outcome minus reference), Eqs. 2.1 / 5.1 / 5.5.

    ``k+ g^zeta+`` for ``g >= 0`` and ``-k- (-g)^zeta-`` for ``g < 0``; all arguments
    broadcast against each other.
    """
    g = np.asarray(gain, dtype=np.float64)
    mag = np.abs(g)
    pos = k_pos * mag ** zeta_pos
    neg = -(k_neg * mag ** zeta_neg)
    return np.where(g >= 0.0, pos, neg)


def pt_derivative(
    gain: ArrayLike,
    k_pos: ArrayLike,
    k_neg: ArrayLike,
    zeta_pos: ArrayLike,
    zeta_neg: ArrayLike,
    eps: float = 1e-9,
) -> NDArray[np.float64]:
    """dv/dg, with ``|g|`` floored at ``eps`` so the slope at the reference stays finite."""
    g = np.asarray(gain, dtype=np.float64)
    mag = np.maximum(np.abs(g), eps)
    pos = k_pos * zeta_pos * mag ** (zeta_pos - 1.0)
    neg = k_neg * zeta_neg * mag ** (zeta_neg - 1.0)
    return np.where(g >= 0.0, pos, neg)
