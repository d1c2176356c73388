"""Configuration checks shared by every market: each raises ``ValueError`` naming the
field and the allowed values, and never clips."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["check_int", "check_range"]


def check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    """``value`` as an ``int`` in ``[lo, hi]`` (``hi=None``: no upper bound); bools rejected."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi if hi is not None else 'inf'}], got {value}")
    return int(value)


def check_range(name: str, value: Sequence[float], lo: float, hi: float) -> tuple[float, float]:
    """A finite ``(low, high)`` pair with ``lo <= low <= high <= hi``."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}") from None
    if not (np.isfinite(a) and np.isfinite(b)) or a > b or a < lo - 1e-12 or b > hi + 1e-12:
        raise ValueError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {(a, b)}")
    return a, b
