"""Helpers shared by the clearing mechanisms: size and option checks, ``x`` from energy, and
the :class:`~prosumer_gym.envs.p2p_trading.market.Allocation` every clearer returns. The
option predicates :func:`is_int` and :func:`is_num` are :mod:`prosumer_gym.core.validation`'s."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from prosumer_gym.core.validation import is_int, is_num  # re-exported: the option tables' predicates
from prosumer_gym.envs.p2p_trading.market import Allocation, FloatArray, MarketInstance, objective

__all__ = ["Clearer", "OptionSpec", "check_size", "check_options", "x_from_energy", "finish",
           "seller_price_matrix", "is_int", "is_num"]

#: ``clearer(inst, rng) -> Allocation``, built once per market size by a mechanism's factory
Clearer = Callable[[MarketInstance, "np.random.Generator | None"], Allocation]
#: option name -> (validity check, description of the allowed values)
OptionSpec = dict[str, tuple[Callable[[Any], bool], str]]


def check_size(inst: MarketInstance, S: int, B: int, mechanism: str) -> None:
    if not isinstance(inst, MarketInstance):
        raise ValueError(f"expected a MarketInstance, got {type(inst).__name__}")
    if inst.n_sellers != S or inst.n_buyers != B:
        raise ValueError(
            f"{mechanism!r} clearer was built for {S} sellers x {B} buyers, "
            f"got an instance with {inst.n_sellers} x {inst.n_buyers}"
        )


def x_from_energy(inst: MarketInstance, e: FloatArray) -> FloatArray:
    """``x_ij = e_ij / w_j`` (0 where ``w_j = 0``), clipped into [0, 1]."""
    w = inst.demand_kwh
    safe = np.where(w > 0, w, 1.0)
    x = np.where(w[None, :] > 0, e / safe[None, :], 0.0)
    return np.clip(x, 0.0, 1.0)


def finish(
    inst: MarketInstance, x: FloatArray, price: FloatArray, mechanism: str, t0: float, stats: dict
) -> Allocation:
    """The read-only :class:`Allocation` of ``x`` at ``price``, objective Eq. 5.2, timed from ``t0``."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    x.setflags(write=False)
    price = np.array(np.broadcast_to(price, x.shape), dtype=np.float64)
    price.setflags(write=False)
    obj = objective(inst, x, price)
    return Allocation(x=x, price=price, mechanism=mechanism, objective=obj,
                      seconds=time.perf_counter() - t0, stats=stats)


def seller_price_matrix(inst: MarketInstance) -> FloatArray:
    """(S, B) view: every trade at the seller's price ``rho_i`` (the paper's pricing)."""
    return np.broadcast_to(inst.seller_price[:, None], (inst.n_sellers, inst.n_buyers))


def check_options(mechanism: str, options: dict[str, Any], spec: OptionSpec) -> None:
    """``ValueError`` naming the option for an unknown option or a value ``spec`` rejects."""
    for k, v in options.items():
        if k not in spec:
            names = ", ".join(sorted(spec)) or "none"
            raise ValueError(f"unknown option {k!r} for mechanism {mechanism!r}; allowed options: {names}")
        ok = False
        try:
            ok = bool(spec[k][0](v))
        except Exception:  # noqa: BLE001 - any failure to check means invalid
            ok = False
        if not ok:
            raise ValueError(f"invalid value {v!r} for option {k!r} of mechanism {mechanism!r}: {spec[k][1]}")
