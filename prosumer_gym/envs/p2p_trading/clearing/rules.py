"""The greedy baselines of Section 5.3.2: ``"rule"`` (ref. [34]) and ``"zhu"`` (ref. [35])."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from prosumer_gym.envs.p2p_trading.clearing._common import (
    Clearer,
    check_options,
    check_size,
    finish,
    seller_price_matrix,
    x_from_energy,
)
from prosumer_gym.envs.p2p_trading.market import Allocation, FloatArray, MarketInstance

__all__ = ["make_rule", "make_zhu"]


def _sequential_fill(
    inst: MarketInstance, buyer_order: list[int], seller_orders: list[list[int]]
) -> FloatArray:
    """Fill buyers one after the other, each from its seller list in order.

    A buyer takes ``min(remaining demand, remaining capacity / (1 + l_ij))`` from each
    allowed seller; a piece smaller than ``mu`` is skipped (Eq. 5.2e) and the buyer stops
    once its remaining demand is below ``mu`` (it cannot be bought in a legal trade).
    """
    S, B = inst.n_sellers, inst.n_buyers
    e = np.zeros((S, B))
    rem = inst.surplus_kwh.tolist()
    lossf = (1.0 + inst.loss).tolist()
    allowed = inst.allowed.tolist()
    w = inst.demand_kwh.tolist()
    mu = inst.min_trade_kwh
    for j in buyer_order:
        need = w[j]
        if need <= 0 or need < mu:
            continue
        for i in seller_orders[j]:
            if not allowed[i][j] or rem[i] <= 0:
                continue
            lf = lossf[i][j]
            q = min(need, rem[i] / lf)
            if q < mu or q <= 0:
                continue
            e[i, j] = q
            rem[i] = max(rem[i] - q * lf, 0.0)
            need -= q
            if need < mu or need <= 0:
                break
    return e


def make_rule(S: int, B: int, **options: Any) -> Clearer:
    """Rule (ref. [34], Section 5.3.2).

    Buyers are served in registration order (their index ``j``); each buyer is filled
    greedily from the cheapest allowed sellers (increasing ``rho_i``, ties by seller
    index) with remaining capacity. The transaction price is mid-market,
    ``(rho_i + rho_j) / 2``. Pieces below ``mu`` are skipped (Eq. 5.2e).
    """
    check_options("rule", options, {})
    buyers = list(range(B))

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        check_size(inst, S, B, "rule")
        order = np.argsort(inst.seller_price, kind="stable").tolist()
        e = _sequential_fill(inst, buyers, [order] * B)
        price = 0.5 * (inst.seller_price[:, None] + inst.buyer_ref_price[None, :])
        return finish(inst, x_from_energy(inst, e), price, "rule", t0, {"buyer_order": buyers})

    return clearer


def make_zhu(S: int, B: int, **options: Any) -> Clearer:
    """Zhu (ref. [35], Section 5.3.2).

    Buyers in decreasing order of demand (ties by index); each buyer is filled from its
    allowed sellers in increasing order of loss ``l_ij`` (ties by seller index) until its
    demand is met. The transaction price is the seller's price. Pieces below ``mu`` are
    skipped (Eq. 5.2e).
    """
    check_options("zhu", options, {})

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        check_size(inst, S, B, "zhu")
        border = np.argsort(-inst.demand_kwh, kind="stable").tolist()
        sorders = np.argsort(inst.loss, axis=0, kind="stable").T.tolist()
        e = _sequential_fill(inst, border, sorders)
        return finish(inst, x_from_energy(inst, e), seller_price_matrix(inst), "zhu", t0,
                       {"buyer_order": border})

    return clearer
