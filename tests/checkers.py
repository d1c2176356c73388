"""Independent plain-loop checkers for the P2P market (Eqs. 5.1-5.2g of dissertation 001).

Written from the equations only: nothing here imports the mechanism's own feasibility or
objective code (only the PT parameters container and plain ``math``).
"""

from __future__ import annotations

import math


def check_constraints(inst, x, price=None, tol=1e-7):
    """Return a list of human-readable violations of Eqs. 5.2a-5.2g (empty when feasible).

    ``x[i][j]`` is the fraction of buyer j's demand bought from seller i. ``z_ij`` is 1
    exactly when ``x_ij > 0``. Tolerances are absolute (kWh, fractions, $/kWh).
    """
    S = len(inst.surplus_kwh)
    B = len(inst.demand_kwh)
    r = [float(v) for v in inst.surplus_kwh]
    w = [float(v) for v in inst.demand_kwh]
    loss = [[float(inst.loss[i][j]) for j in range(B)] for i in range(S)]
    mu = float(inst.min_trade_kwh)
    gs, gb = float(inst.grid_sell_price), float(inst.grid_buy_price)
    out = []
    if len(x) != S or any(len(row) != B for row in x):
        return [f"shape: expected {S}x{B}"]
    for i in range(S):
        for j in range(B):
            if not math.isfinite(float(x[i][j])):
                out.append(f"non-finite x[{i}][{j}]")
    if out:
        return out
    # 5.2a: seller capacity including line losses
    for i in range(S):
        load = 0.0
        for j in range(B):
            load += (1.0 + loss[i][j]) * float(x[i][j]) * w[j]
        if load > r[i] + tol:
            out.append(f"5.2a seller {i}: load {load} > surplus {r[i]}")
    # 5.2b: buyer demand
    for j in range(B):
        tot = 0.0
        for i in range(S):
            tot += float(x[i][j])
        if tot > 1.0 + tol:
            out.append(f"5.2b buyer {j}: sum_i x = {tot} > 1")
    # 5.2c: forbidden pairs
    for i in range(S):
        for j in range(B):
            if loss[i][j] >= float(inst.loss_max) and float(x[i][j]) != 0.0:
                out.append(f"5.2c pair ({i},{j}) loss {loss[i][j]} >= {inst.loss_max} but x = {x[i][j]}")
    # 5.2d: price band (inputs and, if given, transaction prices)
    for i in range(S):
        p = float(inst.seller_price[i])
        if p < gb - tol or p > gs + tol:
            out.append(f"5.2d seller {i} price {p} outside [{gb}, {gs}]")
    for j in range(B):
        p = float(inst.buyer_ref_price[j])
        if p < gb - tol or p > gs + tol:
            out.append(f"5.2d buyer {j} reference {p} outside [{gb}, {gs}]")
    if price is not None:
        for i in range(S):
            for j in range(B):
                p = float(price[i][j])
                if p < gb - tol or p > gs + tol:
                    out.append(f"5.2d transaction price ({i},{j}) = {p} outside [{gb}, {gs}]")
    # 5.2e-g with z = 1 iff x > 0
    for i in range(S):
        for j in range(B):
            xv = float(x[i][j])
            z = 1 if xv > 0.0 else 0
            e = xv * w[j]
            if not (mu * z <= e + tol and e <= w[j] * z + tol):
                out.append(f"5.2e pair ({i},{j}): mu*z={mu * z}, x*w={e}, w*z={w[j] * z}")
            if z < xv - tol:
                out.append(f"5.2f pair ({i},{j}): z={z} < x={xv}")
            if xv < -tol or xv > 1.0 + tol:
                out.append(f"5.2g pair ({i},{j}): x={xv} outside [0, 1]")
    return out


def pt_value_scalar(gain, k_pos, k_neg, zeta_pos, zeta_neg):
    """Eq. 5.1 for one buyer: k+ g^zeta+ for g >= 0 (gain), -k- (-g)^zeta- otherwise."""
    if gain >= 0:
        return k_pos * gain ** zeta_pos
    return -k_neg * (-gain) ** zeta_neg


def objective_loop(inst, x, price=None):
    """Eq. 5.2 by plain loops: sum_j v(y_j) with y_j of Eq. 5.1 (price defaults to rho_i)."""
    S = len(inst.surplus_kwh)
    B = len(inst.demand_kwh)
    gs = float(inst.grid_sell_price)
    pt = inst.pt

    def par(arr, j):
        try:
            return float(arr[j]) if len(arr) > 1 else float(arr[0])
        except TypeError:
            return float(arr)

    total = 0.0
    for j in range(B):
        w = float(inst.demand_kwh[j])
        y = 0.0
        bought = 0.0
        for i in range(S):
            p = float(inst.seller_price[i]) if price is None else float(price[i][j])
            y += p * float(x[i][j]) * w
            bought += float(x[i][j])
        y += gs * (1.0 - bought) * w
        gain = float(inst.buyer_ref_price[j]) * w - y
        total += pt_value_scalar(gain, par(pt.k_pos, j), par(pt.k_neg, j), par(pt.zeta_pos, j), par(pt.zeta_neg, j))
    return total
