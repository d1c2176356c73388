"""Seeding helpers: every random draw flows from ``reset(seed=...)`` through
:class:`numpy.random.Generator` objects; global RNG state is never touched."""

from __future__ import annotations

import numpy as np

__all__ = ["make_rng", "spawn", "check_seed", "reseed"]


def check_seed(seed: object, field: str = "seed") -> int | None:
    """Return ``seed`` as an ``int`` (or ``None``); reject anything else with a ``ValueError``."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{field} must be None or a non-negative int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{field} must be None or a non-negative int, got {seed!r}")
    return int(seed)


def make_rng(seed: int | None = None) -> np.random.Generator:
    """A fresh PCG64 generator; ``None`` draws OS entropy."""
    return np.random.default_rng(check_seed(seed))


def spawn(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """``n`` statistically independent child generators of ``rng`` (consumes ``rng``).

    Used to give each sub-process of a market (data sampling, clearing, policies) its own
    stream, so adding draws to one does not shift the others.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return list(rng.spawn(n))


def reseed(rng: np.random.Generator | None, seed: object) -> np.random.Generator:
    """The generator an env uses after ``reset(seed=seed)``: a fresh one for an int seed,
    otherwise ``rng`` itself (the stream continues), or a fresh entropy-seeded one if there is
    none yet. Invalid seeds raise ``ValueError``."""
    seed = check_seed(seed)
    if seed is not None or rng is None:
        return np.random.default_rng(seed)
    return rng
