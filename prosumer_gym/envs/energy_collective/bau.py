"""EnergyCollective-v0 Business As Usual (BAU): every player alone with the grid (slides
``002``: the reference the community and P2P markets are compared with)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from prosumer_gym.envs.energy_collective.players import Community, best_response

__all__ = ["bau_dispatch"]


def bau_dispatch(comm: Community) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Business As Usual: every player trades alone with the grid, buying at the import
    price and selling at the export price (no autonomy term, no community).

    Returns ``(p, cost)``: set-points (T, N) and each player's cost ``f_i(p_i) +
    lambda_imp p_i^- - lambda_exp p_i^+`` (T, N), EUR. Closed form per player: the best
    response to the export price if that is a net injection, else to the import price if
    that is a net withdrawal, else 0, clipped to the bounds.
    """
    imp = comm.import_price[:, None]
    exp_ = comm.export_price[:, None]
    free_lo, free_hi = np.full_like(comm.lo, -np.inf), np.full_like(comm.hi, np.inf)
    p_sell = best_response(comm.a, comm.m, comm.r, free_lo, free_hi, np.broadcast_to(exp_, comm.a.shape))
    p_buy = best_response(comm.a, comm.m, comm.r, free_lo, free_hi, np.broadcast_to(imp, comm.a.shape))
    p = np.where(p_sell > 0, p_sell, np.where(p_buy < 0, p_buy, 0.0))
    p = np.clip(p, comm.lo, comm.hi)
    cost = comm.player_cost(p) + imp * np.maximum(-p, 0.0) - exp_ * np.maximum(p, 0.0)
    return p, cost

