"""Space utilities: strict action validation and named Box observations.

Invalid actions raise ``ValueError`` naming the offending field and the allowed values;
nothing is clipped here (projections, where an environment documents one, happen in the
environment itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from gymnasium import spaces

from prosumer_gym.core.validation import check_numeric_action

__all__ = ["NamedBox", "check_discrete", "check_multidiscrete", "check_box", "check_box_batch", "check_multibinary", "check_binary_array",
           "bits_to_index", "index_to_bits", "n_bit_actions"]


class NamedBox(spaces.Box):
    """A 1-D float32 ``Box`` whose components carry names (``.names``) for documentation
    and logging; behaves exactly like ``gymnasium.spaces.Box`` otherwise."""

    def __init__(
        self,
        names: Sequence[str],
        low: Sequence[float] | float,
        high: Sequence[float] | float,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        self.names = tuple(names)
        n = len(self.names)
        low_a = np.broadcast_to(np.asarray(low, dtype=np.float32), (n,)).copy()
        high_a = np.broadcast_to(np.asarray(high, dtype=np.float32), (n,)).copy()
        super().__init__(low=low_a, high=high_a, shape=(n,), dtype=np.float32, seed=seed)

    def index(self, name: str) -> int:
        """Position of component ``name``."""
        return self.names.index(name)

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"NamedBox({', '.join(self.names)})"


def check_discrete(action: object, n: int, field: str) -> int:
    """Validate one ``Discrete(n)`` action and return it as ``int``."""
    if isinstance(action, (bool, np.bool_)):
        raise ValueError(f"{field} must be an integer in [0, {n - 1}], got {action!r}")
    if isinstance(action, np.ndarray):
        check_numeric_action(action, field, f"an integer in [0, {n - 1}]")
        if action.shape not in ((), (1,)):
            raise ValueError(f"{field} must be a scalar integer in [0, {n - 1}], got array of shape {action.shape}")
        action = action.reshape(()).item()
    if isinstance(action, (float, np.floating)):
        if not np.isfinite(action) or float(action) != int(action):
            raise ValueError(f"{field} must be an integer in [0, {n - 1}], got {action!r}")
        action = int(action)
    if not isinstance(action, (int, np.integer)):
        raise ValueError(f"{field} must be an integer in [0, {n - 1}], got {type(action).__name__} {action!r}")
    a = int(action)
    if not 0 <= a < n:
        raise ValueError(f"{field} must be an integer in [0, {n - 1}], got {a}")
    return a


def check_multidiscrete(action: object, nvec: np.ndarray, field: str) -> np.ndarray:
    """Validate a ``MultiDiscrete(nvec)`` action and return it as an int64 array."""
    arr = check_numeric_action(action, field, f"an integer array of shape {nvec.shape}")
    if arr.shape != nvec.shape:
        raise ValueError(f"{field} must have shape {nvec.shape}, got {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{field} must hold integers, got {arr!r}")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{field} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= nvec)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{field}[{i}] must be in [0, {int(nvec[i]) - 1}], got {int(arr[i])}")
    return arr


def check_box(action: object, space: spaces.Box, field: str) -> np.ndarray:
    """Validate a ``Box`` action (shape, finiteness, bounds) and return it as float64."""
    arr = np.asarray(check_numeric_action(
        action, field, lambda: f"a real array of shape {space.shape} in [{space.low.min()}, {space.high.max()}]"),
        dtype=np.float64)
    if arr.shape != space.shape:
        raise ValueError(f"{field} must have shape {space.shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{field} must be finite, got {arr!r}")
    if np.any(arr < space.low) or np.any(arr > space.high):
        raise ValueError(f"{field} must lie in [{space.low.min()}, {space.high.max()}], got {arr!r}")
    return arr


def check_box_batch(actions: Mapping[str, object], agents: Sequence[str], space: spaces.Box,
                    field: str = "actions[{!r}]") -> np.ndarray:
    """:func:`check_box` for many agents sharing one ``Box``: ``(len(agents), *space.shape)``
    float64. Arrays of the right shape and kind are checked together in one pass; anything
    else, or a batch that fails, is checked agent by agent, so the ``ValueError`` names the
    first offending agent (``field.format(agent)``) exactly as :func:`check_box` would."""
    vals = [actions[a] for a in agents]
    shape = space.shape
    if vals and all(type(v) is np.ndarray and v.dtype.kind in "biuf" and v.shape == shape for v in vals):
        arr = np.array(vals, dtype=np.float64)  # one copy; np.stack checks every array first (3x slower here)
        if np.isfinite(arr).all() and (arr >= space.low).all() and (arr <= space.high).all():
            return arr
    out = np.empty((len(vals), *shape))
    for k, (a, v) in enumerate(zip(agents, vals)):
        out[k] = check_box(v, space, field.format(a))
    return out


# -- binary (MultiBinary) actions, one agent or a whole batch; nothing is rounded or clipped --
def _as_binary(arr: np.ndarray, field: str) -> np.ndarray:
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(np.int8)
    if kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{field} must hold 0/1 values, got non-finite entries")
    elif kind not in "iu":
        raise ValueError(f"{field} must hold 0/1 values (bool or int), got dtype {arr.dtype}")
    bad = (arr != 0) & (arr != 1)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{field}{list(idx)} must be 0 or 1, got {arr[idx]!r}")
    return arr.astype(np.int8)


def check_multibinary(action: object, n: int, field: str) -> np.ndarray:
    """Validate one ``MultiBinary(n)`` action and return it as an ``int8`` array of shape ``(n,)``."""
    if isinstance(action, (str, bytes, dict)):
        raise ValueError(f"{field} must be a sequence of {n} values in {{0, 1}}, got {type(action).__name__}")
    arr = check_numeric_action(action, field, f"a sequence of {n} values in {{0, 1}}")
    if arr.shape != (n,):
        raise ValueError(f"{field} must have shape ({n},) with values in {{0, 1}}, got shape {arr.shape}")
    return _as_binary(arr, field)


def check_binary_array(actions: object, shape: Sequence[int], field: str) -> np.ndarray:
    """Validate a batch of binary actions of exactly ``shape``; return ``int8``."""
    arr = check_numeric_action(actions, field, f"an array of shape {tuple(shape)} with values in {{0, 1}}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{field} must have shape {tuple(shape)} with values in {{0, 1}}, got {arr.shape}")
    return _as_binary(arr, field)


# -- MultiBinary(n) <-> Discrete(2**n): bit k of the index is action bit k ------------------
#: largest n for which MultiBinary(n) is enumerated as Discrete(2**n) (4,096 actions)
MAX_ENUMERATED_BITS = 12


def n_bit_actions(space: spaces.Space, field: str = "action_space") -> int:
    """``n`` of a 1-D ``MultiBinary(n)`` space that can be enumerated as ``Discrete(2**n)``
    (``n <= MAX_ENUMERATED_BITS``); anything else raises ``ValueError``."""
    if not isinstance(space, spaces.MultiBinary) or np.ndim(space.n) > 1 or \
            not 1 <= int(np.prod(space.n)) <= MAX_ENUMERATED_BITS or len(space.shape) != 1:
        raise ValueError(f"{field} must be a 1-D MultiBinary(n) with 1 <= n <= {MAX_ENUMERATED_BITS} to be "
                         f"enumerated as Discrete(2**n), got {space}")
    return int(space.shape[0])


def bits_to_index(bits: object, n: int, field: str = "action") -> int:
    """The ``Discrete(2**n)`` index of a ``MultiBinary(n)`` action: ``sum_k bits[k] * 2**k``."""
    b = check_multibinary(bits, n, field)
    return int(b.astype(np.int64) @ (1 << np.arange(n, dtype=np.int64)))


def index_to_bits(index: object, n: int, field: str = "action") -> np.ndarray:
    """The ``MultiBinary(n)`` action (``int8``, shape ``(n,)``) of a ``Discrete(2**n)`` index:
    bit k is ``(index >> k) & 1`` (inverse of :func:`bits_to_index`)."""
    i = check_discrete(index, 1 << n, field)
    return ((i >> np.arange(n)) & 1).astype(np.int8)
