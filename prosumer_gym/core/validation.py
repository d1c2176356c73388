"""Configuration and action checks shared by every market: each raises ``ValueError`` naming
the field and the allowed values, and never clips.

Constructor arguments: :func:`check_int`, :func:`check_range`; actions:
:func:`check_numeric_action` keeps complex, object, string and ``None`` actions out of every
space check (``prosumer_gym.core.spaces``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = ["check_int", "check_range", "check_numeric_action"]


def _is_bool(value: object) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    """``value`` as an ``int`` in ``[lo, hi]`` (``hi=None``: no upper bound); bools rejected."""
    if _is_bool(value) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi if hi is not None else 'inf'}], got {value}")
    return int(value)


def check_range(name: str, value: Sequence[float], lo: float, hi: float) -> tuple[float, float]:
    """A finite ``(low, high)`` pair with ``lo <= low <= high <= hi``."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)) or len(value) != 2 \
            or any(_is_bool(v) or not isinstance(v, (int, float, np.integer, np.floating)) for v in value):
        raise ValueError(f"{name} must be a (low, high) pair of real numbers, got {value!r}")
    a, b = (float(v) for v in value)
    if not (np.isfinite(a) and np.isfinite(b)) or a > b or a < lo - 1e-12 or b > hi + 1e-12:
        raise ValueError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {(a, b)}")
    return a, b


def check_numeric_action(action: object, field: str, allowed: str | Callable[[], str]) -> np.ndarray:
    """``action`` as an array of a real numeric kind (bool, int, uint, float); ``ValueError``
    naming ``field`` and the ``allowed`` space for complex, object, string, ``None`` and
    ragged inputs. Shapes and bounds are the space check's job. ``allowed`` may be a callable:
    the message is then built only when an action is refused (the check runs every step)."""

    def refuse(got: str) -> ValueError:
        what = allowed() if callable(allowed) else allowed
        return ValueError(f"{field} must be {what}, got {got} (real numeric values only)")

    if action is None or isinstance(action, (str, bytes, Mapping, complex, np.complexfloating)):
        raise refuse(f"{type(action).__name__} {action!r:.80}")
    try:
        arr = np.asarray(action)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise refuse(f"an unreadable {type(action).__name__}") from None
    if arr.dtype.kind not in "biuf":
        raise refuse(f"an array of dtype {arr.dtype}")
    return arr
