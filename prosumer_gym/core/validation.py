"""Configuration and action checks shared by every market: each raises ``ValueError`` naming
the field and the allowed values, and never clips.

Constructor arguments are checked one helper call per argument: :func:`check_int`,
:func:`check_float`, :func:`check_floats`, :func:`check_range`, :func:`check_choice`,
:func:`check_bool`, :func:`check_mapping` (predicates :func:`is_int`, :func:`is_num` for
option tables). Real-number checks take ``int``/``float`` and their numpy kinds only:
``None``, strings, bools, complex numbers and containers are refused, never converted.
:func:`check_size` refuses, before anything is allocated, a configuration whose arrays would
exceed :data:`MAX_ENV_BYTES`. Actions: :func:`check_numeric_action` keeps complex, object,
string and ``None`` actions out of every space check (``prosumer_gym.core.spaces``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["check_int", "check_float", "check_floats", "check_range", "check_choice", "check_bool",
           "check_mapping", "check_size", "check_numeric_action", "is_int", "is_num", "MAX_ENV_BYTES"]

#: The largest array footprint (bytes) an env may plan to allocate: 8 GiB. A fixed cap (not a
#: share of the free memory) so that a configuration is accepted or refused the same way on
#: every machine; each env estimates its own largest arrays from the sizes it is given.
MAX_ENV_BYTES = 8 * 2**30

_REAL = (int, float, np.integer, np.floating)


def _is_bool(value: object) -> bool:
    return isinstance(value, (bool, np.bool_))


def is_int(value: object) -> bool:
    """``value`` is an integer (Python or numpy), not a bool."""
    return isinstance(value, (int, np.integer)) and not _is_bool(value)


def is_num(value: object) -> bool:
    """``value`` is a finite real number (Python or numpy int/float), not a bool."""
    try:
        return isinstance(value, _REAL) and not _is_bool(value) and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    """``value`` as an ``int`` in ``[lo, hi]`` (``hi=None``: no upper bound); bools rejected."""
    if not is_int(value):
        raise ValueError(f"{name} must be an integer >= {lo}, got {type(value).__name__} {value!r:.80}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi if hi is not None else 'inf'}], got {value}")
    return int(value)


def _interval(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def check_float(name: str, value: object, lo: float = -math.inf, hi: float = math.inf, *,
                lo_open: bool = False, hi_open: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a ``float`` in ``[lo, hi]`` (``lo_open``/``hi_open``: that end excluded).
    Finite unless ``allow_inf`` (then ``+-inf`` inside the bounds is accepted)."""
    allowed = _interval(lo, hi, lo_open, hi_open)
    if _is_bool(value) or not isinstance(value, _REAL):
        raise ValueError(f"{name} must be a real number in {allowed}, got {type(value).__name__} {value!r:.80}")
    try:
        f = float(value)
    except OverflowError:  # an int too large for a float
        f = math.inf if value > 0 else -math.inf
    if math.isnan(f) or (math.isinf(f) and not allow_inf):
        raise ValueError(f"{name} must be a finite number in {allowed}, got {value!r}")
    if f < lo or f > hi or (lo_open and f == lo) or (hi_open and f == hi):
        raise ValueError(f"{name} must be a number in {allowed}, got {value!r}")
    return f


def check_floats(name: str, value: object, lo: float = -math.inf, hi: float = math.inf, *,
                 lo_open: bool = False, hi_open: bool = False, scalar_ok: bool = False) -> np.ndarray:
    """A non-empty 1-D sequence of finite real numbers in ``[lo, hi]`` as a float64 array
    (``scalar_ok``: a single number is accepted as a sequence of one)."""
    what = f"a non-empty sequence of real numbers in {_interval(lo, hi, lo_open, hi_open)}"
    if scalar_ok and isinstance(value, _REAL) and not _is_bool(value):
        value = [value]
        what = "a number or " + what
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)) \
            or (isinstance(value, np.ndarray) and value.ndim != 1):
        raise ValueError(f"{name} must be {what}, got {type(value).__name__} {value!r:.80}")
    if len(value) == 0:
        raise ValueError(f"{name} must be {what}, got an empty sequence")
    out = np.fromiter((check_float(f"{name}[{i}]", v, lo, hi, lo_open=lo_open, hi_open=hi_open)
                       for i, v in enumerate(value)), dtype=np.float64, count=len(value))
    return out


def check_range(name: str, value: Sequence[float], lo: float, hi: float = math.inf, *,
                lo_open: bool = False) -> tuple[float, float]:
    """A finite ``(low, high)`` pair with ``lo <= low <= high <= hi`` (``lo_open``: ``lo < low``)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, np.ndarray)) or len(value) != 2 \
            or any(_is_bool(v) or not isinstance(v, _REAL) for v in value):
        raise ValueError(f"{name} must be a (low, high) pair of real numbers, got {value!r:.80}")
    a, b = (float(v) for v in value)
    if not (np.isfinite(a) and np.isfinite(b)) or a > b or (a <= lo if lo_open else a < lo - 1e-12) or b > hi + 1e-12:
        raise ValueError(f"{name} must satisfy {lo} {'<' if lo_open else '<='} low <= high <= {hi}, got {(a, b)}")
    return a, b


def _kind(value: object) -> object:
    if _is_bool(value):
        return bool
    if is_int(value):
        return int
    return float if isinstance(value, (float, np.floating)) else type(value)


def check_choice(name: str, value: object, choices: Sequence[Any]) -> Any:
    """``value`` if it equals one of ``choices`` and is of the same kind (a string, an
    integer (numpy's included; not a bool), ...): ``1.0`` is not the choice ``1``, ``True``
    not ``1``; unhashable or otherwise incomparable values are refused."""
    try:
        ok = any(_kind(value) is _kind(c) and bool(value == c) for c in choices)
    except Exception:  # noqa: BLE001 - an exotic __eq__ is just "not a choice"
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r:.80}")
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` as ``bool``: only ``True``/``False`` (and numpy bools) are accepted."""
    if not _is_bool(value):
        raise ValueError(f"{name} must be True or False, got {type(value).__name__} {value!r:.80}")
    return bool(value)


def check_mapping(name: str, value: object, *, none_ok: bool = True) -> dict[str, Any]:
    """``value`` as a new ``dict`` with string keys (``None`` -> ``{}`` when ``none_ok``)."""
    if value is None and none_ok:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{name} must be a dict of keyword arguments (str keys){' or None' if none_ok else ''}, "
                         f"got {type(value).__name__} {value!r:.80}")
    return dict(value)


def check_size(env_name: str, fields: str, n_bytes: float, cap: float = MAX_ENV_BYTES) -> None:
    """Refuse, before anything is allocated, a configuration whose arrays would need
    ``n_bytes`` (the env's estimate of its largest arrays from the sizes) above ``cap``."""
    if not n_bytes <= cap:
        raise ValueError(f"{env_name}: {fields} too large: the env's arrays would need about "
                         f"{n_bytes / 2**30:.3g} GiB, above the cap of {cap / 2**30:.3g} GiB "
                         f"(prosumer_gym.core.validation.MAX_ENV_BYTES); use smaller sizes")


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
