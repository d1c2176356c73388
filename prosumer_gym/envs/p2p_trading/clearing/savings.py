"""The default clearing mechanism ``"savings"`` (ours): Eq. 5.2's S-shaped structure in saving
space, solved by a numba-compiled kernel: greedy, LP (Frank-Wolfe) ascent, local search, LNS
(see :func:`make_savings` and ``docs/p2p_trading_clearing.md``)."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from prosumer_gym.envs.p2p_trading.clearing._common import (
    Clearer,
    check_options,
    check_size,
    finish,
    is_int,
    is_num,
    seller_price_matrix,
    x_from_energy,
)
from prosumer_gym.envs.p2p_trading.clearing.bound import certificate, certified_bound
from prosumer_gym.envs.p2p_trading.market import Allocation, MarketInstance

__all__ = ["make_savings", "Problem", "Fill", "Orders", "LPWork"]

# The kernel below is compiled by numba (cache=True: compiled once per machine).
# Notation: e[i, j] kWh delivered, used[i] = sum_j (1 + l_ij) e_ij, got[j] = sum_i e_ij,
# sav[j] = sum_i a_i e_ij with a_i = rho_gs - rho_i, phi_j(s) = v_j(s - c_j) (Eq. 5.1).
# Every function takes the day's data as one record ``p`` (:class:`Problem`), the allocation
# being built as ``st`` (:class:`Fill`) and the buyers' seller orders as ``ords`` (:class:`Orders`):
# namedtuples of arrays, which numba passes as typed records.


class Problem(NamedTuple):
    """One day as the kernel sees it (not modified). Per seller ``i``: ``r`` surplus ``r_i``
    (kWh), ``a`` saving per kWh ``a_i = rho_gs - rho_i``; per pair (S, B): ``lf`` loss factor
    ``1 + l_ij``, ``allowed`` (Eq. 5.2c, ``a_i > 0`` and ``w_j >= mu``); per buyer ``j``: ``w``
    demand ``w_j`` (kWh), ``c`` reference gap ``c_j``, ``kp, kn, zp, zn`` PT parameters
    (float64, length B); ``mu`` the minimum trade (kWh, Eq. 5.2e)."""

    r: np.ndarray
    w: np.ndarray
    a: np.ndarray
    lf: np.ndarray
    allowed: np.ndarray
    c: np.ndarray
    kp: np.ndarray
    kn: np.ndarray
    zp: np.ndarray
    zn: np.ndarray
    mu: float


class Fill(NamedTuple):
    """The allocation being built, updated in place: ``e`` (S, B) kWh delivered, ``used``
    (S,) capacity used incl. losses, ``got`` (B,) kWh received, ``sav`` (B,) saving."""

    e: np.ndarray
    used: np.ndarray
    got: np.ndarray
    sav: np.ndarray


class Orders(NamedTuple):
    """Buyer ``j``'s allowed sellers, best first: ``order[j, :n_ord[j]]`` (int64)."""

    order: np.ndarray
    n_ord: np.ndarray


@njit(cache=True, inline="always")
def _phi(s, c, kp, kn, zp, zn):
    g = s - c
    if g >= 0.0:
        return kp * g ** zp
    return -kn * (-g) ** zn


@njit(cache=True)
def _rand(state):
    # xorshift64*; state is a 1-element uint64 array
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return ((x * np.uint64(2685821657736338717)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _dphi(s, c, kp, kn, zp, zn):
    g = s - c
    if g > 0.0:
        return kp * zp * g ** (zp - 1.0)
    if g < 0.0:
        return kn * zn * (-g) ** (zn - 1.0)
    return 1e300


@njit(cache=True, inline="always")
def _phij(p, j, s):
    """phi_j(s) = v_j(s - c_j), buyer j's PT value at saving s (Eq. 5.1)."""
    return _phi(s, p.c[j], p.kp[j], p.kn[j], p.zp[j], p.zn[j])


@njit(cache=True, inline="always")
def _dphij(p, j, s):
    """phi_j'(s) (1e300 at the reference point)."""
    return _dphi(s, p.c[j], p.kp[j], p.kn[j], p.zp[j], p.zn[j])


@njit(cache=True)
def _best_fill(p, st, ords, j):
    """Max over capacity C of the chord slope (phi(s(C)) - phi(s0)) / C when buyer j is
    filled cheapest-first with C kWh of sellers' capacity. Returns (slope, C*)."""
    r, w, a, lf, mu = p.r, p.w, p.a, p.lf, p.mu
    e, used, got, sav = st
    order, n_ord = ords
    cj, kpj, knj, zpj, znj = p.c[j], p.kp[j], p.kn[j], p.zp[j], p.zn[j]
    s0 = sav[j]
    phi0 = _phi(s0, cj, kpj, knj, zpj, znj)
    room = w[j] - got[j]
    C = 0.0
    s = s0
    best = 0.0
    bestC = 0.0
    for t in range(n_ord[j]):
        if room <= 1e-12:
            break
        i = order[j, t]
        left = r[i] - used[i]
        if left <= 1e-12:
            continue
        amt = left / lf[i, j]
        if amt > room:
            amt = room
        need = mu - e[i, j]  # smallest admissible amount on this pair
        if need < 0.0:
            need = 0.0
        if amt < need - 1e-12:
            continue
        beta = a[i] / lf[i, j]
        Ca = C
        sa = s
        Cb = C + amt * lf[i, j]
        sb = s + a[i] * amt
        sl = (_phi(sb, cj, kpj, knj, zpj, znj) - phi0) / Cb
        if sl > best:
            best = sl
            bestC = Cb
        if sb > cj and beta > 0.0:
            # tangent point inside the gain part of this piece: h(C) = phi'(s) beta C - (phi(s) - phi0)
            lo = Ca + need * lf[i, j]
            if sa < cj:
                lo2 = Ca + (cj - sa) / beta
                if lo2 > lo:
                    lo = lo2
            hi = Cb
            if lo < hi:
                for _ in range(14):
                    mid = 0.5 * (lo + hi)
                    sm = sa + beta * (mid - Ca)
                    h = _dphi(sm, cj, kpj, knj, zpj, znj) * beta * mid - (_phi(sm, cj, kpj, knj, zpj, znj) - phi0)
                    if h > 0.0:
                        lo = mid
                    else:
                        hi = mid
                sm = sa + beta * (lo - Ca)
                sl = (_phi(sm, cj, kpj, knj, zpj, znj) - phi0) / lo if lo > 1e-12 else 0.0
                if sl > best:
                    best = sl
                    bestC = lo
        C = Cb
        s = sb
        room -= amt
    return best, bestC


@njit(cache=True)
def _fill_cap(p, st, ords, j, capC):
    """Fill buyer j cheapest-first using at most capC kWh of sellers' capacity."""
    r, w, a, lf, mu = p.r, p.w, p.a, p.lf, p.mu
    e, used, got, sav = st
    order, n_ord = ords
    room = w[j] - got[j]
    C = capC
    for t in range(n_ord[j]):
        if room <= 1e-12 or C <= 1e-12:
            break
        i = order[j, t]
        left = r[i] - used[i]
        if left <= 1e-12:
            continue
        amt = left / lf[i, j]
        if amt > room:
            amt = room
        if amt * lf[i, j] > C:
            amt = C / lf[i, j]
        if e[i, j] + amt < mu - 1e-12:
            continue
        e[i, j] += amt
        used[i] += amt * lf[i, j]
        got[j] += amt
        sav[j] += a[i] * amt
        room -= amt
        C -= amt * lf[i, j]


@njit(cache=True)
def _clear_buyer(p, st, j):
    """Take all of buyer j's energy back (its sellers' capacity is freed)."""
    lf = p.lf
    e, used, got, sav = st
    S = e.shape[0]
    for i in range(S):
        if e[i, j] > 0.0:
            used[i] -= e[i, j] * lf[i, j]
            if used[i] < 0.0:
                used[i] = 0.0
            e[i, j] = 0.0
    got[j] = 0.0
    sav[j] = 0.0


@njit(cache=True)
def _greedy_repair(p, st, ords, cand, n_cand, state, noise):
    """S-shaped knapsack greedy: repeatedly fill the buyer whose best chord slope (value per
    kWh of capacity, Eq. 5.1 through the saving) is largest, up to its tangent point."""
    for _ in range(4 * n_cand + 4):
        best = -1
        best_sc = 0.0
        best_C = 0.0
        for q in range(n_cand):
            j = cand[q]
            sc, Cst = _best_fill(p, st, ords, j)
            if sc <= 0.0 or Cst <= 1e-12:
                continue
            if noise > 0.0:
                sc *= 1.0 + noise * (_rand(state) - 0.5)
            if best < 0 or sc > best_sc:
                best = q
                best_sc = sc
                best_C = Cst
        if best < 0:
            return
        _fill_cap(p, st, ords, cand[best], best_C)


@njit(cache=True)
def _total(p, sav):
    """Buyers' total PT value, sum_j phi_j(s_j) (Eq. 5.2)."""
    t = 0.0
    for j in range(sav.shape[0]):
        t += _phij(p, j, sav[j])
    return t


@njit(cache=True)
def _transfer_pass(p, st):
    """Best-improvement transfers of one seller's energy between two buyers (or from its
    unused capacity). Returns True if something improved."""
    r, w, a, lf, allowed, c, mu = p.r, p.w, p.a, p.lf, p.allowed, p.c, p.mu
    e, used, got, sav = st
    S, B = e.shape
    improved = False
    ph = np.empty(B)  # phi_j(sav[j]), kept current
    for j in range(B):
        ph[j] = _phij(p, j, sav[j])
    for i in range(S):
        for j in range(-1, B):  # -1: the seller's unused capacity
            if j >= 0:
                if e[i, j] <= 0.0:
                    continue
                src_cap = e[i, j] * lf[i, j]
            else:
                src_cap = r[i] - used[i]
                if src_cap <= 1e-9:
                    continue
            for k in range(-1, B):
                if k == j:
                    continue
                if k >= 0 and not allowed[i, k]:
                    continue
                if k < 0 and j < 0:
                    continue
                # candidate amounts of capacity to move: all, and what fills k
                for variant in range(6):
                    if j >= 0:
                        src_cap = e[i, j] * lf[i, j]
                    else:
                        src_cap = r[i] - used[i]
                    if src_cap <= 1e-12:
                        break
                    if k >= 0:
                        room_cap = (w[k] - got[k]) * lf[i, k]
                        if room_cap <= 1e-12:
                            break
                    else:
                        room_cap = 1e300
                    if variant == 0:
                        mv = src_cap
                    elif variant == 1:
                        mv = room_cap
                    elif variant == 2:
                        mv = 0.5 * src_cap
                    elif variant == 3:
                        # bring k exactly to its reference (the kink of Eq. 5.1)
                        if k < 0 or sav[k] >= c[k]:
                            continue
                        mv = (c[k] - sav[k]) * lf[i, k] / a[i] * (1.0 + 1e-9)
                    elif variant == 4:
                        # give away only j's saving beyond its reference
                        if j < 0 or sav[j] <= c[j]:
                            continue
                        mv = (sav[j] - c[j]) * lf[i, j] / a[i]
                    else:
                        # the exact 1-D optimum when the move helps at the margin
                        if j < 0 or k < 0:
                            continue
                        gj = _dphij(p, j, sav[j]) / lf[i, j]
                        gk = _dphij(p, k, sav[k]) / lf[i, k]
                        if gk <= gj:
                            continue
                        lo_ = 0.0
                        hi_ = min(src_cap, room_cap)
                        for _ in range(20):
                            m1 = lo_ + (hi_ - lo_) / 3.0
                            m2 = hi_ - (hi_ - lo_) / 3.0
                            v1 = (_phij(p, j, sav[j] - a[i] * m1 / lf[i, j])
                                  + _phij(p, k, sav[k] + a[i] * m1 / lf[i, k]))
                            v2 = (_phij(p, j, sav[j] - a[i] * m2 / lf[i, j])
                                  + _phij(p, k, sav[k] + a[i] * m2 / lf[i, k]))
                            if v1 < v2:
                                lo_ = m1
                            else:
                                hi_ = m2
                        mv = 0.5 * (lo_ + hi_)
                    if mv > src_cap:
                        mv = src_cap
                    if mv > room_cap:
                        mv = room_cap
                    if mv <= 1e-12:
                        continue
                    # min-trade feasibility
                    if j >= 0:
                        rem = e[i, j] - mv / lf[i, j]
                        if rem < 1e-12:
                            rem = 0.0
                        if rem > 0.0 and rem < mu - 1e-12:
                            continue
                    if k >= 0:
                        if e[i, k] + mv / lf[i, k] < mu - 1e-12:
                            continue
                    d = 0.0
                    if j >= 0:
                        sj = sav[j] - a[i] * mv / lf[i, j]
                        d += _phij(p, j, sj) - ph[j]
                    if k >= 0:
                        sk = sav[k] + a[i] * mv / lf[i, k]
                        d += _phij(p, k, sk) - ph[k]
                    if d > 1e-12:
                        if j >= 0:
                            de = mv / lf[i, j]
                            if e[i, j] - de < 1e-12:
                                de = e[i, j]
                            e[i, j] -= de
                            got[j] -= de
                            sav[j] -= a[i] * de
                            used[i] -= de * lf[i, j]
                            ph[j] = _phij(p, j, sav[j])
                        if k >= 0:
                            de = mv / lf[i, k]
                            e[i, k] += de
                            got[k] += de
                            sav[k] += a[i] * de
                            used[i] += de * lf[i, k]
                            ph[k] = _phij(p, k, sav[k])
                        improved = True
    return improved



@njit(cache=True, inline="always")
def _pair_val(p, j, k, sj, sk, dl):
    """phi_j(sj + dl) + phi_k(sk - dl): the pair's value after moving saving dl from k to j."""
    return _phij(p, j, sj + dl) + _phij(p, k, sk - dl)


@njit(cache=True)
def _exchange_pass(p, st):
    """Two buyers swap equal energy of two sellers: j gives seller i's energy to k and
    receives seller i2's energy from k. Demands are unchanged; saving moves between j and k
    along a line, optimised exactly in 1-D (endpoints, reference crossings, stationary point)."""
    r, a, lf, allowed, c, mu = p.r, p.a, p.lf, p.allowed, p.c, p.mu
    e, used, sav = st.e, st.used, st.sav
    S, B = e.shape
    improved = False
    der = np.empty(B)
    for j in range(B):
        der[j] = _dphij(p, j, sav[j])
    for j in range(B):
        for k in range(B):
            if k == j:
                continue
            for i in range(S):
                if e[i, j] <= 0.0 or not allowed[i, k]:
                    continue
                for i2 in range(S):
                    if i2 == i or e[i2, k] <= 0.0 or not allowed[i2, j]:
                        continue
                    da = a[i2] - a[i]  # saving gained by j per kWh exchanged
                    if da == 0.0:
                        continue
                    # first-order filter or a possible reference crossing
                    if da * (der[j] - der[k]) <= 0.0 and not (da > 0.0 and sav[j] < c[j]) and not (da < 0.0 and sav[k] < c[k]):
                        continue
                    hi = min(e[i, j], e[i2, k])
                    gi = lf[i, k] - lf[i, j]
                    if gi > 0.0:
                        sl = (r[i] - used[i]) / gi
                        if sl < hi:
                            hi = sl
                    gi2 = lf[i2, j] - lf[i2, k]
                    if gi2 > 0.0:
                        sl = (r[i2] - used[i2]) / gi2
                        if sl < hi:
                            hi = sl
                    lo = 0.0
                    need = max(mu - e[i, k], mu - e[i2, j], 0.0)
                    if need > lo:
                        lo = need
                    if hi <= lo + 1e-12:
                        continue
                    sj = sav[j]
                    sk = sav[k]
                    base = _pair_val(p, j, k, sj, sk, 0.0)
                    bestv = base
                    bestd = 0.0
                    # candidates: lo, hi, crossings, stationary point (bisection on derivative)
                    cands = np.empty(4)
                    cands[0] = lo
                    cands[1] = hi
                    cands[2] = (c[j] - sj) / da * (1.0 + 1e-9)
                    cands[3] = (sk - c[k]) / da
                    for q in range(4):
                        d = cands[q]
                        if d < lo or d > hi:
                            continue
                        v = _pair_val(p, j, k, sj, sk, da * d)
                        if v > bestv:
                            bestv = v
                            bestd = d
                    a_ = lo
                    b_ = hi
                    for _ in range(12):
                        m1 = a_ + (b_ - a_) / 3.0
                        m2 = b_ - (b_ - a_) / 3.0
                        if _pair_val(p, j, k, sj, sk, da * m1) < _pair_val(p, j, k, sj, sk, da * m2):
                            a_ = m1
                        else:
                            b_ = m2
                    d = 0.5 * (a_ + b_)
                    v = _pair_val(p, j, k, sj, sk, da * d)
                    if v > bestv:
                        bestv = v
                        bestd = d
                    if bestv > base + 1e-12 and bestd > 0.0:
                        d = bestd
                        # remaining pieces must be 0 or >= mu
                        if e[i, j] - d > 0.0 and e[i, j] - d < mu:
                            d = e[i, j] if e[i, j] <= e[i2, k] else e[i, j] - mu
                        if e[i2, k] - d > 0.0 and e[i2, k] - d < mu:
                            continue
                        if d <= lo - 1e-12 or d > hi + 1e-12:
                            continue
                        if _pair_val(p, j, k, sj, sk, da * d) <= base + 1e-12:
                            continue
                        e[i, j] -= d
                        e[i, k] += d
                        e[i2, k] -= d
                        e[i2, j] += d
                        if e[i, j] < 1e-12:
                            e[i, j] = 0.0
                        if e[i2, k] < 1e-12:
                            e[i2, k] = 0.0
                        used[i] += d * (lf[i, k] - lf[i, j])
                        used[i2] += d * (lf[i2, j] - lf[i2, k])
                        sav[j] += da * d
                        sav[k] -= da * d
                        der[j] = _dphij(p, j, sav[j])
                        der[k] = _dphij(p, k, sav[k])
                        improved = True
    return improved



@njit(cache=True)
def _pull_pass(p, st):
    """Bring a buyer below its reference up to it by pulling energy from several sources at
    once (sellers' unused capacity first, then the buyers that lose the least value per $ of
    saving moved, first order), kept only if the total PT value improves."""
    r, w, a, lf, allowed, c, mu = p.r, p.w, p.a, p.lf, p.allowed, p.c, p.mu
    e, used, got, sav = st
    S, B = e.shape
    improved = False
    src_i = np.empty(S * (B + 1), dtype=np.int64)
    src_j = np.empty(S * (B + 1), dtype=np.int64)
    cost = np.empty(S * (B + 1))
    old_e = e.copy()
    old_used = used.copy()
    old_got = got.copy()
    old_sav = sav.copy()
    for k in range(B):
        if sav[k] >= c[k] or got[k] >= w[k] - 1e-12:
            continue
        n = 0
        for i in range(S):
            if not allowed[i, k]:
                continue
            if r[i] - used[i] > 1e-9:
                src_i[n] = i
                src_j[n] = -1
                cost[n] = 0.0
                n += 1
            for j in range(B):
                if j != k and e[i, j] > 0.0:
                    src_i[n] = i
                    src_j[n] = j
                    cost[n] = _dphij(p, j, sav[j]) * lf[i, k] / lf[i, j]
                    n += 1
        if n == 0:
            continue
        ordr = np.argsort(cost[:n])
        before = 0.0
        for j in range(B):
            before += _phij(p, j, sav[j])
        old_e[:] = e
        old_used[:] = used
        old_got[:] = got
        old_sav[:] = sav
        target = c[k] * (1.0 + 1e-9) + 1e-12
        for t in range(n):
            need_s = target - sav[k]
            room = w[k] - got[k]
            if need_s <= 0.0 or room <= 1e-12:
                break
            q = ordr[t]
            i = src_i[q]
            j = src_j[q]
            if j < 0:
                cap = r[i] - used[i]
            else:
                cap = e[i, j] * lf[i, j]
            amt_k = cap / lf[i, k]
            want = need_s / a[i]
            if amt_k > want:
                amt_k = want
            if amt_k > room:
                amt_k = room
            if e[i, k] + amt_k < mu:
                amt_k = mu - e[i, k]
                if amt_k * lf[i, k] > cap + 1e-12 or amt_k > room + 1e-12:
                    continue
            capm = amt_k * lf[i, k]
            if j >= 0:
                de = capm / lf[i, j]
                rem = e[i, j] - de
                if rem < 1e-12:
                    de = e[i, j]
                elif rem < mu:
                    # leave mu behind or take all of it
                    de = e[i, j]
                    capm = de * lf[i, j]
                    amt_k = capm / lf[i, k]
                    if amt_k > room:
                        continue
                e[i, j] -= de
                got[j] -= de
                sav[j] -= a[i] * de
                used[i] -= de * lf[i, j]
            e[i, k] += amt_k
            got[k] += amt_k
            sav[k] += a[i] * amt_k
            used[i] += amt_k * lf[i, k]
        after = 0.0
        for j in range(B):
            after += _phij(p, j, sav[j])
        if after > before + 1e-12:
            improved = True
        else:
            e[:] = old_e
            used[:] = old_used
            got[:] = old_got
            sav[:] = old_sav
    return improved


class LPWork(NamedTuple):
    """Buffers of the linearised LP (:func:`_lp_solve`), built once per day. Per allowed pair
    (column) ``q``: ``qi`` seller, ``qj`` buyer (int64), ``qlf`` loss factor ``1 + l_ij``,
    ``qa`` saving per kWh ``a_i``, ``cost`` objective coefficient, ``x`` solution; per buyer:
    ``g0`` weight of the saving up to the break ``tb`` and ``g1 <= g0`` beyond it, ``smax``
    its largest saving alone; the simplex' dense basis inverse ``binv`` (m, m), ``basis``
    (int64), ``xb``, ``cb``, ``y``, ``alpha`` (m,), with ``m = S + 2B`` rows."""

    qi: np.ndarray
    qj: np.ndarray
    qlf: np.ndarray
    qa: np.ndarray
    cost: np.ndarray
    x: np.ndarray
    g0: np.ndarray
    g1: np.ndarray
    tb: np.ndarray
    smax: np.ndarray
    binv: np.ndarray
    basis: np.ndarray
    xb: np.ndarray
    cb: np.ndarray
    y: np.ndarray
    alpha: np.ndarray


@njit(cache=True)
def _lp_work(p, ords):
    """The :class:`LPWork` of day ``p``: one column per allowed pair whose seller has surplus,
    and each buyer's largest saving alone (cheapest-first fill of all capacity, Eq. 5.2a-b)."""
    S, B = p.lf.shape
    nq = 0
    for i in range(S):
        if p.r[i] > 1e-12:
            for j in range(B):
                if p.allowed[i, j]:
                    nq += 1
    qi = np.empty(nq, dtype=np.int64)
    qj = np.empty(nq, dtype=np.int64)
    qlf = np.empty(nq)
    qa = np.empty(nq)
    q = 0
    for i in range(S):
        if p.r[i] > 1e-12:
            for j in range(B):
                if p.allowed[i, j]:
                    qi[q] = i
                    qj[q] = j
                    qlf[q] = p.lf[i, j]
                    qa[q] = p.a[i]
                    q += 1
    smax = np.zeros(B)
    for j in range(B):
        room = p.w[j]
        for t in range(ords.n_ord[j]):
            i = ords.order[j, t]
            amt = min(p.r[i] / p.lf[i, j], room)
            smax[j] += p.a[i] * amt
            room -= amt
            if room <= 0.0:
                break
    m = S + 2 * B
    return LPWork(qi, qj, qlf, qa, np.zeros(nq), np.zeros(nq), np.zeros(B), np.zeros(B), np.zeros(B), smax,
                  np.zeros((m, m)), np.zeros(m, dtype=np.int64), np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m))


@njit(cache=True)
def _lp_solve(p, lp):
    """Solve the linearised problem ``max sum_j g0_j s_j - (g0_j - g1_j) sigma_j`` over
    ``s_j = sum_i a_i x_ij`` s.t. ``sum_j (1 + l_ij) x_ij <= r_i`` (5.2a), ``sum_i x_ij <= w_j``
    (5.2b), ``s_j - sigma_j <= tb_j``, ``x, sigma >= 0`` (a concave two-piece value of each
    saving, break at ``tb_j``). Revised simplex from the all-slack basis (feasible: the right
    sides are >= 0) with a dense basis inverse; a pair's column has three nonzeros, so
    pricing costs O(columns); Dantzig's rule. ``x_ij`` is left in ``lp.x``."""
    S, B = p.lf.shape
    m = S + 2 * B
    qi, qj, qlf, qa, cost, x = lp.qi, lp.qj, lp.qlf, lp.qa, lp.cost, lp.x
    binv, basis, xb, cb, y, alpha = lp.binv, lp.basis, lp.xb, lp.cb, lp.y, lp.alpha
    nq = qi.shape[0]
    ns = nq + B  # columns: pairs, then sigma_j, then slacks
    for q in range(nq):
        cost[q] = lp.g0[qj[q]] * qa[q]
    binv[:] = 0.0
    for r_ in range(m):
        binv[r_, r_] = 1.0
        basis[r_] = ns + r_
        cb[r_] = 0.0
        y[r_] = 0.0
    for i in range(S):
        xb[i] = p.r[i]
    for j in range(B):
        xb[S + j] = p.w[j]
        xb[S + B + j] = lp.tb[j]
    cmax = 0.0
    for q in range(nq):
        if abs(cost[q]) > cmax:
            cmax = abs(cost[q])
    tol = 1e-10 * cmax + 1e-300
    S2 = S + B
    for it in range(30 * m + 100):
        if it % 16 == 15:  # refresh the duals y = c_B B^-1 (updated in O(m) between refreshes)
            for c_ in range(m):
                t = 0.0
                for r_ in range(m):
                    t += cb[r_] * binv[r_, c_]
                y[c_] = t
        best = tol
        enter = -1
        for q in range(nq):
            d = cost[q] - qlf[q] * y[qi[q]] - y[S + qj[q]] - qa[q] * y[S2 + qj[q]]
            if d > best:
                best = d
                enter = q
        for j in range(B):
            d = (lp.g1[j] - lp.g0[j]) + y[S2 + j]
            if d > best:
                best = d
                enter = nq + j
        for r_ in range(m):
            if -y[r_] > best:
                best = -y[r_]
                enter = ns + r_
        if enter < 0:
            break
        if enter < nq:
            ci = qi[enter]
            cj = S + qj[enter]
            ck = S2 + qj[enter]
            lfq = qlf[enter]
            aq = qa[enter]
            for r_ in range(m):
                alpha[r_] = lfq * binv[r_, ci] + binv[r_, cj] + aq * binv[r_, ck]
        elif enter < ns:
            ck = S2 + enter - nq
            for r_ in range(m):
                alpha[r_] = -binv[r_, ck]
        else:
            for r_ in range(m):
                alpha[r_] = binv[r_, enter - ns]
        leave = -1
        ratio = 1e300
        for r_ in range(m):
            if alpha[r_] > 1e-11:
                t = xb[r_] / alpha[r_]
                if t < ratio - 1e-14 or (t < ratio + 1e-14 and leave >= 0 and alpha[r_] > alpha[leave]):
                    ratio = t
                    leave = r_
        if leave < 0:
            break  # unbounded: impossible (every pair column uses a bounded row, sigma costs <= 0)
        piv = alpha[leave]
        for c_ in range(m):
            binv[leave, c_] /= piv
        xb[leave] /= piv
        for r_ in range(m):
            f = alpha[r_]
            if r_ != leave and f != 0.0:
                for c_ in range(m):
                    binv[r_, c_] -= f * binv[leave, c_]
                xb[r_] -= f * xb[leave]
                if xb[r_] < 0.0:
                    xb[r_] = 0.0
        basis[leave] = enter
        if enter < nq:
            cb[leave] = cost[enter]
        elif enter < ns:
            cb[leave] = lp.g1[enter - nq] - lp.g0[enter - nq]
        else:
            cb[leave] = 0.0
        for c_ in range(m):
            y[c_] += best * binv[leave, c_]
    x[:] = 0.0
    for r_ in range(m):
        if basis[r_] < nq and xb[r_] > 0.0:
            x[basis[r_]] = xb[r_]


@njit(cache=True)
def _lp_weights(p, st, lp, mode):
    """Buyer weights of the linearised LP. ``mode`` 0: the slope of phi_j at the current
    saving (forward difference, finite at the reference); 1: below the reference the secant
    to it, ``(phi_j(c_j) - phi_j(s_j)) / (c_j - s_j)`` (rewards concentrating); for both no
    break (``tb`` beyond any saving). 2: the concave envelope of phi_j over ``[0, s_j^max]``
    (state-free): slope ``g0`` of the tangent from ``(0, phi_j(0))`` to the gain part, touching
    at ``tb_j > c_j`` (bisection on ``phi'(t) t = phi(t) - phi(0)``; the chord to ``s_j^max``
    when that comes first), then ``g1`` the chord from ``tb_j`` to ``s_j^max``."""
    B = st.sav.shape[0]
    for j in range(B):
        s = st.sav[j]
        c = p.c[j]
        h = 1e-6 * c + 1e-12
        lp.tb[j] = 1e12
        lp.g1[j] = 0.0
        if mode == 2:
            sm = lp.smax[j]
            f0 = _phij(p, j, 0.0)
            if sm <= 1e-12:
                lp.g0[j] = 0.0
                continue
            t = sm
            if sm > c:
                lo = c
                hi = sm
                if _dphij(p, j, hi) * hi - (_phij(p, j, hi) - f0) < 0.0:  # tangent point inside (c, smax)
                    for _ in range(40):
                        mid = 0.5 * (lo + hi)
                        if _dphij(p, j, mid) * mid - (_phij(p, j, mid) - f0) > 0.0:
                            lo = mid
                        else:
                            hi = mid
                    t = hi
            lp.g0[j] = (_phij(p, j, t) - f0) / t
            lp.tb[j] = t
            if sm > t * (1.0 + 1e-9):
                lp.g1[j] = min((_phij(p, j, sm) - _phij(p, j, t)) / (sm - t), lp.g0[j])
            continue
        if mode == 1 and s < c - h:
            lp.g0[j] = (_phij(p, j, c) - _phij(p, j, s)) / (c - s)
        else:
            lp.g0[j] = (_phij(p, j, s + h) - _phij(p, j, s)) / h


@njit(cache=True)
def _line_search(p, s0, s1):
    """argmax over t in [0, 1] of sum_j phi_j((1 - t) s0_j + t s1_j) (grid of 32, then golden
    section around the best grid point); returns (t, value)."""
    B = s0.shape[0]
    bt = 0.0
    bv = -1e300
    for k in range(33):
        t = k / 32.0
        v = 0.0
        for j in range(B):
            v += _phij(p, j, s0[j] + t * (s1[j] - s0[j]))
        if v > bv:
            bv = v
            bt = t
    lo = max(0.0, bt - 1.0 / 32.0)
    hi = min(1.0, bt + 1.0 / 32.0)
    g = 0.6180339887498949
    for _ in range(24):
        t1 = hi - g * (hi - lo)
        t2 = lo + g * (hi - lo)
        v1 = 0.0
        v2 = 0.0
        for j in range(B):
            v1 += _phij(p, j, s0[j] + t1 * (s1[j] - s0[j]))
            v2 += _phij(p, j, s0[j] + t2 * (s1[j] - s0[j]))
        if v1 > bv:
            bv = v1
            bt = t1
        if v2 > bv:
            bv = v2
            bt = t2
        if v1 >= v2:
            hi = t2
        else:
            lo = t1
    return bt, bv


@njit(cache=True)
def _lp_candidate(p, st, lp, mode, search, out):
    """A vertex of Eqs. 5.2a-b maximising the linearised objective (:func:`_lp_weights`; modes
    0-1: a Frank-Wolfe step from ``st``), or with ``search`` the best point of the segment
    from ``st`` to it (:func:`_line_search`: the concave gain parts want interior points),
    written to ``out`` with pieces below ``mu`` dropped (Eq. 5.2e) and capacity (5.2a) and
    demand (5.2b) restored exactly."""
    r, w, a, lf, mu = p.r, p.w, p.a, p.lf, p.mu
    S, B = lf.shape
    _lp_weights(p, st, lp, mode)
    _lp_solve(p, lp)
    e, used, got, sav = out
    e[:] = 0.0
    for q in range(lp.qi.shape[0]):
        e[lp.qi[q], lp.qj[q]] = lp.x[q]
    if search:
        for j in range(B):
            t = 0.0
            for i in range(S):
                t += a[i] * e[i, j]
            sav[j] = t
        t, _ = _line_search(p, st.sav, sav)
        for i in range(S):
            for j in range(B):
                e[i, j] = (1.0 - t) * st.e[i, j] + t * e[i, j]
    for i in range(S):
        for j in range(B):
            v = e[i, j]
            if v < mu * (1.0 - 1e-9):
                e[i, j] = 0.0
            elif v < mu:
                e[i, j] = mu
    for j in range(B):
        t = 0.0
        for i in range(S):
            t += e[i, j]
        if t > w[j]:
            f = w[j] / t
            for i in range(S):
                e[i, j] *= f
    for i in range(S):
        t = 0.0
        for j in range(B):
            t += lf[i, j] * e[i, j]
        if t > r[i]:
            f = r[i] / t
            for j in range(B):
                e[i, j] *= f
    _fill_totals(p, out)


@njit(cache=True)
def _fill_totals(p, st):
    """Recompute ``st.used``, ``st.got`` and ``st.sav`` from ``st.e`` (after ``e`` was set)."""
    e, used, got, sav = st
    S, B = e.shape
    for i in range(S):
        t = 0.0
        for j in range(B):
            t += p.lf[i, j] * e[i, j]
        used[i] = t
    for j in range(B):
        t = 0.0
        s = 0.0
        for i in range(S):
            t += e[i, j]
            s += p.a[i] * e[i, j]
        got[j] = t
        sav[j] = s


@njit(cache=True)
def _local_search(p, st, rounds):
    """Up to ``rounds`` rounds of transfer / exchange / pull passes (stops at a local optimum)."""
    S, B = st.e.shape
    for _ in range(rounds):
        t1 = _transfer_pass(p, st)
        t2 = False
        if S * B <= 625:
            t2 = _exchange_pass(p, st)
        t3 = False
        if not (t1 or t2):
            t3 = _pull_pass(p, st)
        if not (t1 or t2 or t3):
            break


@njit(cache=True)
def _copy_fill(dst, src):
    """``dst`` := ``src`` in place (the four arrays of a :class:`Fill`)."""
    dst.e[:] = src.e
    dst.used[:] = src.used
    dst.got[:] = src.got
    dst.sav[:] = src.sav


@njit(cache=True)
def _lp_ascent(p, st, lp, rounds, search):
    """Up to ``rounds`` linearised-LP steps from ``st`` (:func:`_lp_candidate`, weights
    alternating slope / secant; with ``search`` every third step is a line-searched slope
    step), each candidate followed by one round of local search; a candidate replaces
    ``st`` only if it raises the objective; stops when a whole cycle of weightings fails.
    Returns True if ``st`` improved."""
    S, B = st.e.shape
    cand = Fill(np.zeros((S, B)), np.zeros(S), np.zeros(B), np.zeros(B))
    cur = _total(p, st.sav)
    cycle = 3 if search else 2
    fails = 0
    improved = False
    for it in range(rounds):
        code = it % cycle
        _lp_candidate(p, st, lp, code % 2, code == 2, cand)
        _local_search(p, cand, 1)
        v = _total(p, cand.sav)
        if v > cur + 1e-12 * (1.0 + abs(cur)):
            cur = v
            _copy_fill(st, cand)
            fails = 0
            improved = True
        else:
            fails += 1
            if fails >= cycle:
                break
    return improved


@njit(cache=True)
def _seller_orders(p, ords, noise, state):
    """Each buyer's allowed sellers by decreasing saving per kWh (then smaller loss); with
    ``noise > 0`` the keys are perturbed multiplicatively (randomised repairs in the LNS)."""
    a, lf, allowed = p.a, p.lf, p.allowed
    order, n_ord = ords
    S, B = allowed.shape
    key = np.empty(S)
    for j in range(B):
        for i in range(S):
            key[i] = -a[i] + 1e-6 * lf[i, j]
            if noise > 0.0:
                key[i] *= 1.0 + noise * (_rand(state) - 0.5)
        idx = np.argsort(key)
        n = 0
        for t in range(S):
            i = idx[t]
            if allowed[i, j]:
                order[j, n] = i
                n += 1
        n_ord[j] = n


@njit(cache=True)
def _savings_kernel(p, seed, n_iter, stall, lp_rounds, search, envelope):
    """Construction (S-shaped knapsack greedy), LP phase (``lp_rounds > 0``: :func:`_lp_ascent`
    from the greedy and, with ``envelope``, from the concave-envelope vertex), local search and
    ``n_iter`` LNS rounds on the day ``p`` (a :class:`Problem`); returns the best energy matrix
    and its value."""
    S, B = p.lf.shape
    a = p.a
    # per-buyer allowed sellers, cheapest (largest saving a_i) first, then smaller loss
    order = np.zeros((B, S), dtype=np.int64)
    n_ord = np.zeros(B, dtype=np.int64)
    ords = Orders(order, n_ord)
    _seller_orders(p, ords, 0.0, np.zeros(1, dtype=np.uint64))
    base_order = order.copy()
    state = np.empty(1, dtype=np.uint64)
    state[0] = np.uint64(seed) | np.uint64(1)
    e = np.zeros((S, B))
    used = np.zeros(S)
    got = np.zeros(B)
    sav = np.zeros(B)
    st = Fill(e, used, got, sav)  # views of the arrays above: the moves update them in place
    allb = np.arange(B)
    _greedy_repair(p, st, ords, allb, B, state, 0.0)
    if lp_rounds > 0:
        # LP phase: Frank-Wolfe ascent from the greedy and from the concave-envelope vertex
        _local_search(p, st, 1)
        lp = _lp_work(p, ords)
        _lp_ascent(p, st, lp, lp_rounds, search)
        if envelope:
            st2 = Fill(np.zeros((S, B)), np.zeros(S), np.zeros(B), np.zeros(B))
            _lp_candidate(p, st, lp, 2, False, st2)
            _local_search(p, st2, 1)
            _lp_ascent(p, st2, lp, lp_rounds, search)
            if _total(p, st2.sav) > _total(p, sav) + 1e-12 * (1.0 + abs(_total(p, sav))):
                _copy_fill(st, st2)
    _local_search(p, st, 100)
    best = _total(p, sav)
    be = e.copy(); bu = used.copy(); bg = got.copy(); bs = sav.copy()
    rm = np.empty(B, dtype=np.int64)
    since = 0
    for it in range(n_iter):
        if since >= stall:
            break
        since += 1
        # destroy: 1-3 random buyers and, sometimes, one seller
        nrm = 1 + int(_rand(state) * 3.0)
        cnt = 0
        for q in range(nrm):
            j = int(_rand(state) * B)
            dup = False
            for t in range(cnt):
                if rm[t] == j:
                    dup = True
            if not dup:
                rm[cnt] = j
                cnt += 1
        for t in range(cnt):
            _clear_buyer(p, st, rm[t])
        if _rand(state) < 0.3:
            i = int(_rand(state) * S)
            for j in range(B):
                if e[i, j] > 0.0:
                    got[j] -= e[i, j]
                    sav[j] -= a[i] * e[i, j]
                    e[i, j] = 0.0
            used[i] = 0.0
        if _rand(state) < 0.5:
            _seller_orders(p, ords, 0.6, state)
        _greedy_repair(p, st, ords, allb, B, state, 0.3)
        order[:] = base_order
        for _ in range(20):
            t1 = _transfer_pass(p, st)
            t2 = False
            if S * B <= 625:
                t2 = _exchange_pass(p, st)
            if not (t1 or t2):
                break
        tot = _total(p, sav)
        if tot > best + 1e-12:
            best = tot
            since = 0
            be[:] = e; bu[:] = used; bg[:] = got; bs[:] = sav
        else:
            e[:] = be; used[:] = bu; got[:] = bg; sav[:] = bs
    return be, best


@njit(cache=True)
def _polish_kernel(p, e0):
    """Local search (:func:`_local_search`, to a local optimum) from the feasible energy
    matrix ``e0``; returns the improved matrix."""
    S, B = p.lf.shape
    st = Fill(e0.copy(), np.zeros(S), np.zeros(B), np.zeros(B))
    _fill_totals(p, st)
    _local_search(p, st, 100)
    return st.e


def problem_of(inst: MarketInstance) -> Problem:
    """The kernel's view of a day (:class:`Problem`)."""
    B = inst.n_buyers
    a = inst.grid_sell_price - inst.seller_price
    w, mu = inst.demand_kwh, inst.min_trade_kwh
    allowed = inst.allowed & (a[:, None] > 0.0) & (w[None, :] >= mu) & (w[None, :] > 0.0)
    kp, kn, zp, zn = (np.ascontiguousarray(np.broadcast_to(v, (B,)), dtype=np.float64) for v in inst.pt_args())
    return Problem(r=inst.surplus_kwh, w=w, a=a, lf=1.0 + inst.loss, allowed=allowed, c=inst.ref_gap,
                   kp=kp, kn=kn, zp=zp, zn=zn, mu=float(mu))


def polish(inst: MarketInstance, e: np.ndarray, day: Problem | None = None) -> np.ndarray:
    """The kernel's local search (transfer, exchange, pull) from a feasible energy matrix
    ``e`` (S, B) kWh (Eqs. 5.2a-g; pieces 0 or >= mu on allowed pairs): a matrix at least as
    good, still feasible."""
    return _polish_kernel(problem_of(inst) if day is None else day, np.ascontiguousarray(e, dtype=np.float64))


def _certify(inst: MarketInstance, al: Allocation, node_limit: int, time_limit: float | None) -> None:
    """Add a certified upper bound (:func:`~.bound.certified_bound`) and the share of attainable
    gain lost to ``al.stats``."""
    res = certified_bound(inst, al.objective, node_limit=node_limit, time_limit=time_limit)
    al.stats.update(certificate(res, al.objective), certify_seconds=res.seconds)


def make_savings(S: int, B: int, **options: Any) -> Clearer:
    """Our default: the S-shaped structure of Eq. 5.2 in *saving* space, compiled (numba).

    The objective depends on ``x`` only through each buyer's saving against the grid
    ``s_j = sum_i a_i e_ij`` (``a_i = rho_gs - rho_i``, ``e_ij = x_ij w_j`` kWh) via
    ``phi_j(s) = v(s - c_j)``, ``c_j = (rho_gs - rho_j) w_j``: convex below ``c_j`` (every
    buyer starts there), concave above, with an infinite slope at ``c_j`` when
    ``zeta < 1``. So the optimum pushes a few buyers just past their reference rather than
    spreading supply. The kernel:

    1. **Construction: an S-shaped knapsack greedy.** For every buyer, filling it
       cheapest-first (largest ``a_i``, capacity counted with ``1 + l_ij``, pieces of at
       least ``mu``) gives a piecewise-linear saving ``s(C)`` in the capacity ``C`` used;
       the best chord slope ``max_C (phi(s(C)) - phi(s0)) / C`` (value per kWh of capacity)
       is found exactly: piece ends, plus the tangent point inside gain pieces (bisection
       on ``phi'(s) beta C = phi(s) - phi(s0)``). The buyer with the steepest chord is
       filled up to its tangent point; repeat until no chord is positive.
    2. **LP phase** (``lp_rounds > 0``; opt-in, e.g. ``lp_rounds=20``): Frank-Wolfe ascent of convex maximisation.
       At the current savings each buyer's value is linearised (weights: the slope of
       ``phi_j``, alternately the secant to the reference ``c_j``, which rewards
       concentrating) and the vertex of Eqs. 5.2a-b maximising it is found by an exact LP
       (:func:`_lp_solve`, a revised simplex in numba over the allowed pairs); pieces below
       ``mu`` are dropped (5.2e), one round of local search follows, and the candidate is
       kept only if the true objective rises. Such a vertex re-routes many sellers at once
       (the ejection chains and concentration moves that no single transfer makes). The
       ascent runs from the greedy and, with ``envelope`` (default), also from the vertex of
       the concave-envelope LP of all buyers (each ``phi_j`` replaced by its concave envelope
       over ``[0, s_j^max]``: a tangent from ``(0, phi_j(0))``, then a chord); the better
       end point is kept. ``lp_line_search`` adds a line-searched slope step (better on
       markets with buyers past their reference, about twice the time).
    3. **Local search** to a local optimum: *transfer* (a seller's energy from one buyer,
       or from its unused capacity, to another: all, what fills the receiver, half, what
       brings the receiver exactly to its reference, what the giver holds beyond its
       reference), *exchange* (two buyers swap equal energy of two sellers; the saving
       moved is optimised in 1-D), *pull* (bring a buyer up to its reference with energy
       from several sources at once, cheapest first-order loss first).
    4. **Large-neighbourhood search**, at most ``lns_iters`` rounds, stopping after
       ``lns_stall`` rounds without improvement: clear 1-3 random buyers (and sometimes a
       seller), repair with the randomised greedy, local search, keep if better.

    Every move keeps Eqs. 5.2a-g (pieces 0 or ``>= mu``, capacity with losses, demand,
    forbidden pairs). Deterministic given ``rng`` (one 64-bit draw seeds the kernel's own
    xorshift generator; no global state). Options: ``lp_rounds`` (LP steps per ascent,
    default 0: no LP phase, the kernel of earlier releases bit for bit; 20 is the measured
    setting of docs/p2p_trading_clearing.md, which closes most of the gap to the optimum at
    1.1-2.2x the time per day), ``envelope`` (default True),
    ``lp_line_search`` (default False), ``lns_iters`` (default with the LP phase
    ``2000 // (S B)`` up to 100 for ``S B <= 100``, else 0; without it
    ``clip(2000 // (S B), 8, 100)``), ``lns_stall`` (default ``max(2, lns_iters // 8)``).
    The exchange move (O(S^2 B^2)) runs only for ``S * B <= 625``.

    Certification (opt-in, ``certify=True``; it does not change the allocation): after the
    kernel, :func:`~.bound.certified_bound` (sigmoidal-programming branch and bound, at most
    ``certify_node_limit`` nodes, default 5,000, so deterministic; ``certify_time_limit`` s,
    default none, stops it earlier but makes the bound depend on the machine) gives a certified upper bound ``UB`` on the true
    optimum (valid for ``zeta <= 1``), and ``stats`` gets ``upper_bound``,
    ``upper_bound_proven`` (the search closed its gap to 1e-5 of the attainable gain),
    ``no_trade_value`` (objective of clearing nothing), ``gain_lost_share = (UB - objective) /
    (UB - no_trade_value)`` and ``certify_seconds``. Cost: milliseconds at 5x5, tens of ms at
    15x15 and 20x20, up to seconds at 30x30, i.e. 10-1,000x the kernel: for evaluation, not
    for every training step.
    """
    flag = (lambda v: isinstance(v, (bool, np.bool_)), "True or False")
    spec = {"lns_iters": (lambda v: is_int(v) and 0 <= v <= 100_000, "an integer in [0, 100000]"),
            "lns_stall": (lambda v: is_int(v) and 1 <= v <= 100_000, "an integer in [1, 100000]"),
            "lp_rounds": (lambda v: is_int(v) and 0 <= v <= 10_000, "an integer in [0, 10000]"),
            "lp_line_search": flag,
            "envelope": flag,
            "certify": flag,
            "certify_node_limit": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
            "certify_time_limit": (lambda v: v is None or (is_num(v) and v > 0), "None or a number of seconds > 0")}
    check_options("savings", options, spec)
    certify = bool(options.get("certify", False))
    lp_rounds = int(options.get("lp_rounds", 0))  # opt-in: changes every published number (issue 18)
    search = bool(options.get("lp_line_search", False))
    envelope = bool(options.get("envelope", True))
    certify_nodes = int(options.get("certify_node_limit", 5_000))
    certify_time_limit = options.get("certify_time_limit")
    # LNS budget: a roughly constant amount of work per day (small markets get more rounds);
    # after the LP phase it adds nothing measurable above 10x10 (docs/p2p_trading_clearing.md)
    sb = max(S * B, 1)
    if lp_rounds > 0:
        lns_default = min(100, 2000 // sb) if sb <= 100 else 0
    else:
        lns_default = max(8, min(100, 2000 // sb))
    n_iter = int(options.get("lns_iters", lns_default))
    stall = int(options.get("lns_stall", max(2, n_iter // 8)))

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        check_size(inst, S, B, "savings")
        if rng is None:
            rng = np.random.default_rng(0)
        seed = int(rng.integers(1, 2**62))
        if S == 0 or B == 0:
            return finish(inst, np.zeros((S, B)), seller_price_matrix(inst), "savings", t0, {"lns_iters": n_iter, "lns_stall": stall, "lp_rounds": lp_rounds})
        e, _ = _savings_kernel(problem_of(inst), seed, n_iter, stall, lp_rounds, search, envelope)
        al = finish(inst, x_from_energy(inst, e), seller_price_matrix(inst), "savings", t0,
                    {"lns_iters": n_iter, "lns_stall": stall, "lp_rounds": lp_rounds})
        if certify:
            _certify(inst, al, certify_nodes, certify_time_limit)
        return al

    return clearer
