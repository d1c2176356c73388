"""Configuration and action checks shared by every market: each raises ``ValueError`` naming
the field and the allowed values, and never clips.

Constructor arguments are checked declaratively, one helper call per argument
(:func:`check_int`, :func:`check_float`, :func:`check_choice`, :func:`check_bool`,
:func:`check_mapping`, :func:`check_range`, :func:`check_floats`); :func:`check_size` caps
the memory an env would allocate before it allocates; :func:`check_numeric_action` keeps
complex, object, string and ``None`` actions out of every space check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["check_int", "check_float", "check_choice", "check_bool", "check_mapping", "check_range",
           "check_floats", "check_size", "check_numeric_action", "MAX_ENV_BYTES"]

#: the largest array footprint (bytes) an env may plan to allocate (documented cap, 8 GiB)
MAX_ENV_BYTES = 8 * 2**30


def _is_bool(value: object) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    """``value`` as an ``int`` in ``[lo, hi]`` (``hi=None``: no upper bound); bools rejected."""
    if _is_bool(value) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi if hi is not None else 'inf'}], got {value}")
    return int(value)


def check_float(name: str, value: object, lo: float = -math.inf, hi: float = math.inf, *,
                lo_open: bool = False, hi_open: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a finite ``float`` in ``[lo, hi]`` (open ends with ``lo_open``/``hi_open``;
    ``allow_inf``: ``+-inf`` accepted when inside the bounds). Real numbers only: ``None``,
    strings, bools, complex and containers are rejected."""
    allowed = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if _is_bool(value) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number in {allowed}, got {type(value).__name__} {value!r}")
    f = float(value)
    if math.isnan(f) or (math.isinf(f) and not allow_inf):
        raise ValueError(f"{name} must be a finite number in {allowed}, got {value!r}")
    if f < lo or f > hi or (lo_open and f == lo) or (hi_open and f == hi):
        raise ValueError(f"{name} must be a number in {allowed}, got {value!r}")
    return f


def check_choice(name: str, value: object, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices`` (compared only against values of a hashable kind)."""
    try:
        ok = any(type(value) is type(c) and value == c for c in choices) or (
            isinstance(value, str) and value in choices)
    except Exception:  # noqa: BLE001 - an exotic __eq__ is just "not a choice"
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` as ``bool``; only ``True``/``False`` (and numpy bools) are accepted."""
    if not _is_bool(value):
        raise ValueError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_mapping(name: str, value: object, *, none_ok: bool = True) -> dict[str, Any]:
    """``value`` as a ``dict`` with string keys (``None`` -> ``{}`` when ``none_ok``)."""
    if value is None and none_ok:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{name} must be a dict of keyword arguments (str keys){' or None' if none_ok else ''}, "
                         f"got {type(value).__name__} {value!r}")
    return dict(value)


def check_floats(name: str, value: object, lo: float = -math.inf, hi: float = math.inf, *,
                 length: int | None = None, min_length: int = 1) -> tuple[float, ...]:
    """A non-empty sequence of finite real numbers in ``[lo, hi]`` (``length``: exactly that many)."""
    what = f"a sequence of {length if length is not None else f'>= {min_length}'} real numbers in [{lo}, {hi}]"
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    out = tuple(check_float(f"{name}[{i}]", v, lo, hi) for i, v in enumerate(value))
    if (length is not None and len(out) != length) or len(out) < min_length:
        raise ValueError(f"{name} must be {what}, got {len(out)} values")
    return out


def check_range(name: str, value: Sequence[float], lo: float, hi: float) -> tuple[float, float]:
    """A finite ``(low, high)`` pair with ``lo <= low <= high <= hi``."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)) or len(value) != 2 \
            or any(_is_bool(v) or not isinstance(v, (int, float, np.integer, np.floating)) for v in value):
        raise ValueError(f"{name} must be a (low, high) pair of real numbers, got {value!r}")
    a, b = (float(v) for v in value)
    if not (np.isfinite(a) and np.isfinite(b)) or a > b or a < lo - 1e-12 or b > hi + 1e-12:
        raise ValueError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {(a, b)}")
    return a, b


def check_size(env_name: str, fields: str, n_bytes: float, cap: float = MAX_ENV_BYTES) -> None:
    """Reject, before anything is allocated, a configuration whose arrays would need
    ``n_bytes`` (the env's own estimate from the shapes it allocates) above ``cap``."""
    if n_bytes > cap:
        raise ValueError(f"{env_name}: {fields} too large: the env's arrays would need about "
                         f"{n_bytes / 2**30:.3g} GiB, above the cap of {cap / 2**30:.3g} GiB; use smaller sizes")


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
