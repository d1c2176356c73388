"""Exact integer min-cost flow by the primal network simplex, compiled with numba.

The algorithm of ``networkx.network_simplex`` (Kelly & O'Neill's strongly feasible spanning
trees: an artificial root joined to every node by big-cost arcs; block-search pivots - Dantzig
within blocks of ``ceil(sqrt(m))`` arcs, the blocks in cyclic order - and the leaving arc the
last of minimum residual capacity on the cycle) on int64 arrays, with a checked warm start.
:func:`potr_network` builds POTR's network (Eq. 6.1, :func:`~prosumer_gym.envs.euber.potr.solve_potr`)
and a greedy warm start; from it :func:`network_simplex` reaches the same optimal cost as
OR-Tools' cost-scaling solver (tests), 3-6x faster at the paper's size (median per slot:
0.38 vs 2.2 ms with CARS scores, 0.38 vs 1.1 ms with uniform random ones, loaded machine);
where several flows are optimal it may end on another one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["network_simplex"]


# compiled once per machine (numba's cache), like the P2PTrading-v0 clearing kernel
@njit(cache=True)
def network_simplex(n: int, tail: np.ndarray, head: np.ndarray, cap: np.ndarray, cost: np.ndarray,
                    supply: np.ndarray, crash: bool, flow0: np.ndarray,
                    tree_arc: np.ndarray) -> tuple[int, np.ndarray, bool]:
    """Min-cost flow on nodes ``0..n-1`` (int64 arcs ``tail -> head``, capacities > 0, unit
    costs; ``supply`` (n,) sums to 0): ``(status, flow, warm)``, status 0 optimal, 1 infeasible.

    ``flow0`` (m,) and ``tree_arc`` (n,) (empty: none): a warm start, a feasible flow and the
    arc joining each node to its parent (-1: the root) of a strongly feasible spanning tree
    (every arc strictly between its bounds in the tree, tree arcs at zero flow towards the
    root, saturated ones away from it); checked, and used if valid (``warm``), else the
    start below.

    ``crash``: the first spanning tree joins each node without supply to the head of its
    cheapest leaving arc (at zero flow, so the potentials carry the real costs: ~1.6x fewer
    pivots on POTR's layered network), or to the root where it has none or if these arcs
    close a cycle; ``False``: every node to the root (networkx's start)."""
    m = tail.size
    M = m + n  # real + artificial arcs
    root = n
    src = np.empty(M, np.int64)
    dst = np.empty(M, np.int64)
    w = np.empty(M, np.int64)
    u = np.empty(M, np.int64)
    flow = np.zeros(M, np.int64)
    s_cap = 0
    s_w = 0
    s_d = 0
    # arcs are stored (and priced) in the order k -> k * stride mod m, stride ~ 0.618 m coprime
    # to m: blocks then mix arcs of all parts of the network (~20% fewer pivots than the
    # given order on POTR's networks with untied scores)
    stride = _coprime_stride(m)
    perm = np.empty(m, np.int64)
    for k in range(m):
        e = (k * stride) % m
        perm[k] = e
        src[k] = tail[e]
        dst[k] = head[e]
        w[k] = cost[e]
        u[k] = cap[e]
        s_cap += cap[e]
        s_w += abs(cost[e])
    for i in range(n):
        s_d += abs(supply[i])
    faux = 3 * max(s_cap, max(s_w, s_d))
    if faux == 0:
        faux = 1
    pot = np.empty(n + 1, np.int64)
    w[m:] = faux  # artificial arcs: node <-> root
    u[m:] = faux
    parent = np.empty(n + 1, np.int64)
    pedge = np.empty(n + 1, np.int64)
    size = np.empty(n + 1, np.int64)
    nxt = np.empty(n + 1, np.int64)
    prv = np.empty(n + 1, np.int64)
    last = np.empty(n + 1, np.int64)
    warm = flow0.size == m and tree_arc.size == n and _warm_tree(n, m, perm, src, dst, u, supply, flow0,
                                                                   tree_arc, flow, parent, pedge)
    if warm and not _thread_tree(n, parent, pedge, src, dst, w, pot, size, nxt, prv, last):
        warm = False
    if not warm:  # every node on its artificial arc, carrying its supply (towards the root
        # where it has none: networkx's start)
        flow[:m] = 0
        for i in range(n):
            e = m + i
            src[e], dst[e] = (root, i) if supply[i] < 0 else (i, root)
            flow[e] = abs(supply[i])
            parent[i] = root
            pedge[i] = e
    if crash and not warm:
        for e in range(m):  # the cheapest arc leaving each node (the first one of equal cost)
            i = src[e]
            if supply[i] == 0 and (pedge[i] == m + i or w[e] < w[pedge[i]] or (w[e] == w[pedge[i]]
                                                                               and perm[e] < perm[pedge[i]])):
                parent[i] = dst[e]
                pedge[i] = e
    if not warm and not _thread_tree(n, parent, pedge, src, dst, w, pot, size, nxt, prv, last):
        for i in range(n):  # the given arcs contain a cycle: the artificial tree
            parent[i] = root
            pedge[i] = m + i
        _thread_tree(n, parent, pedge, src, dst, w, pot, size, nxt, prv, last)
    Wn = np.empty(2 * n + 4, np.int64)
    We = np.empty(2 * n + 4, np.int64)
    tmp = np.empty(n + 2, np.int64)
    anc = np.empty(n + 2, np.int64)
    B = int(np.ceil(np.sqrt(m))) if m > 0 else 1
    nblocks = (m + B - 1) // B
    blocks_no = 0
    f = 0
    while m > 0 and blocks_no < nblocks:
        # Dantzig within a block of B arcs, blocks cyclically (Bland)
        best = 0
        bi = -1
        for k in range(B):
            e = f + k
            if e >= m:
                e -= m
            c = w[e] - pot[src[e]] + pot[dst[e]]
            if flow[e] != 0:
                c = -c
            if c < best:
                best = c
                bi = e
        f += B
        if f >= m:
            f -= m
        if bi < 0:
            blocks_no += 1
            continue
        blocks_no = 0
        i = bi
        if flow[i] == 0:
            p = src[i]
            q = dst[i]
        else:
            p = dst[i]
            q = src[i]
        # apex
        a = p
        b = q
        sa = size[a]
        sb = size[b]
        while True:
            while sa < sb:
                a = parent[a]
                sa = size[a]
            while sa > sb:
                b = parent[b]
                sb = size[b]
            if sa == sb:
                if a != b:
                    a = parent[a]
                    sa = size[a]
                    b = parent[b]
                    sb = size[b]
                else:
                    break
        apex = a
        # path p -> apex (nodes into tmp, edges into anc), then reversed into Wn/We
        L = 0
        x = p
        while x != apex:
            tmp[L] = x
            anc[L] = pedge[x]
            x = parent[x]
            L += 1
        # Wn = [apex, ..., p]; We = [edges reversed]
        Wn[0] = apex
        for k in range(L):
            Wn[k + 1] = tmp[L - 1 - k]
            We[k] = anc[L - 1 - k]
        ne = L
        nn = L + 1
        pos_i = ne  # positions of the entering and the leaving arc on the cycle
        if not (ne == 1 and We[0] == i):
            We[ne] = i
            ne += 1
        else:
            pos_i = 0
        x = q
        while x != apex:
            Wn[nn] = x
            nn += 1
            We[ne] = pedge[x]
            ne += 1
            x = parent[x]
        # leaving edge: first minimum residual capacity scanning from the end
        jmin = -1
        smin = -1
        rmin = -1
        pos_j = -1
        for k in range(ne - 1, -1, -1):
            e = We[k]
            nd = Wn[k]
            r = u[e] - flow[e] if src[e] == nd else flow[e]
            if jmin < 0 or r < rmin:
                rmin = r
                jmin = e
                smin = nd
                pos_j = k
        j = jmin
        s = smin
        t = dst[j] if src[j] == s else src[j]
        # augment
        if rmin > 0:
            for k in range(ne):
                e = We[k]
                if src[e] == Wn[k]:
                    flow[e] += rmin
                else:
                    flow[e] -= rmin
        if i == j:
            continue
        if parent[t] != s:
            s, t = t, s
        if pos_i > pos_j:
            p, q = q, p
        # remove_edge(s, t)
        size_t = size[t]
        prev_t = prv[t]
        last_t = last[t]
        next_last_t = nxt[last_t]
        parent[t] = -1
        pedge[t] = -1
        nxt[prev_t] = next_last_t
        prv[next_last_t] = prev_t
        nxt[last_t] = t
        prv[t] = last_t
        _update_ancestors(s, parent, size, last, -size_t, last_t, prev_t)
        # make_root(q)
        na = 0
        x = q
        while x != -1:
            anc[na] = x
            na += 1
            x = parent[x]
        for k in range(na - 1, 0, -1):
            pp = anc[k]
            qq = anc[k - 1]
            size_p = size[pp]
            last_p = last[pp]
            prev_q = prv[qq]
            last_q = last[qq]
            next_last_q = nxt[last_q]
            parent[pp] = qq
            parent[qq] = -1
            pedge[pp] = pedge[qq]
            pedge[qq] = -1
            size[pp] = size_p - size[qq]
            size[qq] = size_p
            nxt[prev_q] = next_last_q
            prv[next_last_q] = prev_q
            nxt[last_q] = qq
            prv[qq] = last_q
            if last_p == last_q:
                last[pp] = prev_q
                last_p = prev_q
            prv[pp] = last_q
            nxt[last_q] = pp
            nxt[last_p] = qq
            prv[qq] = last_p
            last[qq] = last_p
        # add_edge(i, p, q)
        last_p = last[p]
        next_last_p = nxt[last_p]
        size_q = size[q]
        last_q = last[q]
        parent[q] = p
        pedge[q] = i
        nxt[last_p] = q
        prv[q] = last_p
        prv[next_last_p] = last_q
        nxt[last_q] = next_last_p
        _update_ancestors(p, parent, size, last, size_q, last_p, last_q)
        # update_potentials(i, p, q)
        if q == dst[i]:
            d = pot[p] - w[i] - pot[q]
        else:
            d = pot[p] + w[i] - pot[q]
        x = q
        lq = last[q]
        pot[x] += d
        while x != lq:
            x = nxt[x]
            pot[x] += d
    status = 0
    for e in range(m, M):
        if flow[e] != 0:
            status = 1
    out = np.empty(m, np.int64)
    for k in range(m):
        out[perm[k]] = flow[k]
    return status, out, warm


@njit(cache=True)
def _warm_tree(n, m, perm, src, dst, u, supply, flow0, tree_arc, flow, parent, pedge) -> bool:
    """Load a warm start (:func:`network_simplex`) into ``flow``/``parent``/``pedge`` (internal
    arc order ``perm``); False if it is not a feasible flow with a strongly feasible tree."""
    root = n
    inv = np.empty(m, np.int64)
    for k in range(m):
        inv[perm[k]] = k
    net = np.zeros(n, np.int64)
    for k in range(m):
        f = flow0[perm[k]]
        if f < 0 or f > u[k]:
            return False
        flow[k] = f
        net[src[k]] += f
        net[dst[k]] -= f
    for i in range(n):
        if net[i] != supply[i]:
            return False
        e = m + i  # artificial arcs carry nothing
        src[e], dst[e] = i, root
        flow[e] = 0
    intree = 0
    for i in range(n):
        a = tree_arc[i]
        if a < 0:
            parent[i], pedge[i] = root, m + i
            continue
        if a >= m:
            return False
        k = inv[a]
        if src[k] == i:
            parent[i] = dst[k]
            if flow[k] == u[k]:  # saturated towards the root
                return False
        elif dst[k] == i:
            parent[i] = src[k]
            if flow[k] == 0:  # empty away from the root
                return False
        else:
            return False
        pedge[i] = k
        if 0 < flow[k] < u[k]:
            intree += 1
    interior = 0
    for k in range(m):
        if 0 < flow[k] < u[k]:
            interior += 1
    return interior == intree


@njit(cache=True, inline="always")
def _update_ancestors(x, parent, size, last, dsize, old_last, new_last) -> None:
    """From ``x`` up to the root: subtree sizes ``+= dsize``, last descendants ``old_last`` ->
    ``new_last`` (a subtree was cut off below or hung below ``x``)."""
    while x != -1:
        size[x] += dsize
        if last[x] == old_last:
            last[x] = new_last
        x = parent[x]


@njit(cache=True)
def _coprime_stride(m: int) -> int:
    """The odd stride nearest above ``0.618 m`` that is coprime to ``m`` (1 for ``m <= 2``)."""
    if m <= 2:
        return 1
    s = int(0.618 * m) | 1
    while True:
        a, b = s, m
        while b:
            a, b = b, a % b
        if a == 1:
            return s
        s += 2


@njit(cache=True)
def _thread_tree(n, parent, pedge, src, dst, w, pot, size, nxt, prv, last) -> bool:
    """The depth-first thread, subtree sizes, last descendants and potentials (tree arcs of
    reduced cost 0, root ``n`` at 0) of the tree given by ``parent``; False if it has a cycle."""
    root = n
    parent[root] = -1
    pedge[root] = -1
    nch = np.zeros(n + 2, np.int64)
    for i in range(n):
        nch[parent[i] + 1] += 1
    for i in range(n + 1):
        nch[i + 1] += nch[i]
    ch = np.empty(max(n, 1), np.int64)
    fill = nch[:n + 1].copy()
    for i in range(n):
        ch[fill[parent[i]]] = i
        fill[parent[i]] += 1
    order = np.empty(n + 1, np.int64)
    stack = np.empty(n + 1, np.int64)
    stack[0] = root
    sp = 1
    k = 0
    while sp > 0:
        sp -= 1
        x = stack[sp]
        order[k] = x
        k += 1
        if x == root:
            pot[x] = 0
        else:
            e = pedge[x]
            pot[x] = w[e] + pot[dst[e]] if src[e] == x else pot[src[e]] - w[e]
        for c in range(nch[x + 1] - 1, nch[x] - 1, -1):
            stack[sp] = ch[c]
            sp += 1
    if k != n + 1:
        return False
    pos = np.empty(n + 1, np.int64)
    for k in range(n + 1):
        x = order[k]
        nxt[x] = order[k + 1] if k < n else root
        prv[x] = order[k - 1] if k > 0 else order[n]
        size[x] = 1
        pos[x] = k
    for k in range(n, 0, -1):
        size[parent[order[k]]] += size[order[k]]
    for x in range(n + 1):
        last[x] = order[pos[x] + size[x] - 1]
    return True


@njit(cache=True)
def potr_network(ii: np.ndarray, jj: np.ndarray, score: np.ndarray, approach: np.ndarray, v2g: np.ndarray,
                 psi_j: np.ndarray, need_v: np.ndarray, K: int, score_levels: int,
                 tie_levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, np.ndarray,
                                           np.ndarray]:
    """POTR's network (Eq. 6.1; :func:`~prosumer_gym.envs.euber.potr._potr_network` documents
    the arc groups, nodes and integer costs) from the eligible pairs ``(ii, jj)`` in row-major
    order: ``(tail int32, head int32, capacity, unit_cost, first_pair, supply, flow0,
    tree_arc)``, the last two a greedy warm start for :func:`network_simplex`
    (:func:`_potr_greedy`)."""
    W, S = score.shape
    n = ii.size
    smax = 0.0
    far = 0.0
    for p in range(n):
        smax = max(smax, abs(score[ii[p], jj[p]]))
        far = max(far, approach[ii[p], jj[p]])
    if smax == 0.0:
        smax = 1.0
    if far == 0.0:
        far = 1.0
    M = W * K * tie_levels + 1
    reward = np.empty(n, np.int64)
    rmax = 0
    has_w = np.zeros(W, np.bool_)
    has_v = np.zeros(W, np.bool_)
    for p in range(n):
        i, j = ii[p], jj[p]
        q = np.int64(np.rint(score[i, j] / smax * score_levels))
        t = np.int64(np.rint((1.0 - approach[i, j] / far) * tie_levels))
        reward[p] = q * M + t
        rmax = max(rmax, abs(reward[p]))
        has_w[i] = True
        if v2g[j]:
            has_v[i] = True
    psi_max = 0
    for j in range(S):
        psi_max = max(psi_max, psi_j[j])
    pen = 2 * K * (rmax + 1) + 1
    pen1 = pen * (psi_max + 1) * 2
    nw = 0
    nv = 0
    na = 0
    nt = 0
    nt2 = 0
    for i in range(W):
        nw += has_w[i]
        nv += need_v[i] > 0
        na += has_v[i]
    for j in range(S):
        nt += psi_j[j] > 0
        nt2 += psi_j[j] > 1
    m = nw + nv + na + n + nt + nt2 + S + 1
    tail = np.empty(m, np.int32)
    head = np.empty(m, np.int32)
    cap = np.empty(m, np.int64)
    cost = np.zeros(m, np.int64)
    e = 0
    for i in range(W):  # source -> worker (6.1a)
        if has_w[i]:
            tail[e], head[e], cap[e] = 0, 2 + i, K
            e += 1
    for i in range(W):  # worker -> V2G node, the rewarded first need_v units (6.1c)
        if need_v[i] > 0:
            tail[e], head[e], cap[e], cost[e] = 2 + i, 2 + W + i, need_v[i], -pen
            e += 1
    for i in range(W):  # worker -> V2G node, free
        if has_v[i]:
            tail[e], head[e], cap[e] = 2 + i, 2 + W + i, K
            e += 1
    first_pair = e
    for p in range(n):  # pairs (6.1d-f)
        i, j = ii[p], jj[p]
        tail[e] = 2 + W + i if v2g[j] else 2 + i
        head[e], cap[e], cost[e] = 2 + 2 * W + j, 1, -reward[p]
        e += 1
    for j in range(S):  # task -> sink: the first unit (coverage)
        if psi_j[j] > 0:
            tail[e], head[e], cap[e], cost[e] = 2 + 2 * W + j, 1, 1, -(pen + pen1)
            e += 1
    for j in range(S):  # the rest of psi_j (6.1b)
        if psi_j[j] > 1:
            tail[e], head[e], cap[e], cost[e] = 2 + 2 * W + j, 1, psi_j[j] - 1, -pen
            e += 1
    for j in range(S):  # any more, free
        tail[e], head[e], cap[e] = 2 + 2 * W + j, 1, W
        e += 1
    tail[e], head[e], cap[e] = 0, 1, K * nw  # source -> sink bypass
    flow0, tree_arc = _potr_greedy(ii, jj, reward, v2g, psi_j, need_v, K, pen, pen1, has_w, has_v, first_pair,
                                   tail, m)
    return tail, head, cap, cost, first_pair, K * nw, flow0, tree_arc


@njit(cache=True, inline="always")
def _recommend(p, i, j, v2g, used, deg_w, deg_t, deg_v) -> None:
    """Put pair ``p`` = (worker ``i``, task ``j``) on the greedy lists."""
    used[p] = True
    deg_w[i] += 1
    deg_t[j] += 1
    if v2g[j]:
        deg_v[i] += 1


@njit(cache=True)
def _potr_greedy(ii, jj, reward, v2g, psi_j, need_v, K, pen, pen1, has_w, has_v, first_pair, tail, m):
    """A feasible POTR flow and a strongly feasible tree around it (:func:`network_simplex`'s
    warm start). Lists are filled greedily: first, round by round, each task (fewest eligible
    workers first) up to ``min(round, psi_j)`` recommendations (6.1b; the first unit is the
    coverage tier) from the free worker of highest reward plus V2G tier gain (6.1c); then each
    worker up to ``K`` (6.1a) with its pairs of highest positive marginal gain."""
    W = has_w.size
    S = psi_j.size
    n = ii.size
    deg_w = np.zeros(W, np.int64)
    deg_v = np.zeros(W, np.int64)
    deg_t = np.zeros(S, np.int64)
    used = np.zeros(n, np.bool_)
    # the pairs of each task (CSC of the row-major pair list)
    start = np.zeros(S + 1, np.int64)
    for p in range(n):
        start[jj[p] + 1] += 1
    for j in range(S):
        start[j + 1] += start[j]
    by_task = np.empty(n, np.int64)
    fill = start[:S].copy()
    for p in range(n):
        by_task[fill[jj[p]]] = p
        fill[jj[p]] += 1
    order = np.argsort(start[1:] - start[:S], kind="mergesort")
    psi_max = 0
    for j in range(S):
        psi_max = max(psi_max, psi_j[j])
    for r in range(1, psi_max + 1):
        for j in order:
            if deg_t[j] >= min(r, psi_j[j]):
                continue
            best = -1
            gbest = 0
            for k in range(start[j], start[j + 1]):
                p = by_task[k]
                i = ii[p]
                if used[p] or deg_w[i] >= K:
                    continue
                g = reward[p] + (pen if v2g[j] and deg_v[i] < need_v[i] else 0)
                if best < 0 or g > gbest:
                    best, gbest = p, g
            if best >= 0:
                _recommend(best, ii[best], j, v2g, used, deg_w, deg_t, deg_v)
    p0 = 0
    for i in range(W):  # the pairs of worker i are p0 .. p1 - 1 (row-major)
        p1 = p0
        while p1 < n and ii[p1] == i:
            p1 += 1
        while deg_w[i] < K:
            best = -1
            gbest = 0
            for p in range(p0, p1):
                if used[p]:
                    continue
                j = jj[p]
                g = reward[p] + (pen if v2g[j] and deg_v[i] < need_v[i] else 0)
                if psi_j[j] > 0 and deg_t[j] == 0:
                    g += pen + pen1
                elif deg_t[j] < psi_j[j]:
                    g += pen
                if g > gbest:
                    best, gbest = p, g
            if best < 0:
                break
            _recommend(best, i, jj[best], v2g, used, deg_w, deg_t, deg_v)
        p0 = p1
    # the flow on the arc groups of potr_network, and each node's tree arc
    flow0 = np.zeros(m, np.int64)
    tree_arc = np.full(2 + 2 * W + S, -1, np.int64)
    e = 0
    we = np.full(W, -1, np.int64)  # source -> worker arc
    for i in range(W):
        if has_w[i]:
            we[i] = e
            flow0[e] = deg_w[i]
            e += 1
    vt = np.full(W, -1, np.int64)  # worker -> V2G node, rewarded / free
    vf = np.full(W, -1, np.int64)
    for i in range(W):
        if need_v[i] > 0:
            vt[i] = e
            flow0[e] = min(deg_v[i], need_v[i])
            e += 1
    for i in range(W):
        if has_v[i]:
            vf[i] = e
            flow0[e] = deg_v[i] - (min(deg_v[i], need_v[i]) if need_v[i] > 0 else 0)
            e += 1
    best_pair = np.full(2 * W, -1, np.int64)  # the unused pair arc of highest reward leaving each worker / V2G node
    for p in range(n):
        a = first_pair + p
        if used[p]:
            flow0[a] = 1
            continue
        node = tail[a] - 2
        if best_pair[node] < 0 or reward[p] > reward[best_pair[node] - first_pair]:
            best_pair[node] = a
    e = first_pair + n
    t1 = np.full(S, -1, np.int64)
    t2 = np.full(S, -1, np.int64)
    for j in range(S):
        if psi_j[j] > 0:
            t1[j] = e
            flow0[e] = min(deg_t[j], 1)
            e += 1
    for j in range(S):
        if psi_j[j] > 1:
            t2[j] = e
            flow0[e] = min(max(deg_t[j] - 1, 0), psi_j[j] - 1)
            e += 1
    for j in range(S):  # free task -> sink arc
        free = deg_t[j] - (flow0[t1[j]] if t1[j] >= 0 else 0) - (flow0[t2[j]] if t2[j] >= 0 else 0)
        flow0[e] = free
        # each task on the arc of its next unit's tier (zero flow: towards the root, or strictly
        # inside), so its potential prices that unit: coverage, the rest of psi_j, or free
        if t1[j] >= 0 and deg_t[j] == 0:
            tree_arc[2 + 2 * W + j] = t1[j]
        elif t2[j] >= 0 and flow0[t2[j]] < psi_j[j] - 1:
            tree_arc[2 + 2 * W + j] = t2[j]
        else:
            tree_arc[2 + 2 * W + j] = e
        e += 1
    bypass = e
    flow0[bypass] = K * has_w.sum() - deg_w.sum()
    if flow0[bypass] < K * has_w.sum():  # the source on the bypass unless it is saturated (then the root)
        tree_arc[0] = bypass
    for i in range(W):
        if not has_w[i]:
            continue
        node = 2 + i
        # a worker with room on its source arc (strictly inside: in the tree); an empty or full
        # one on its best unused pair towards a task (zero flow), so that its potential prices
        # its next recommendation (fewer degenerate pivots than hanging full workers on the
        # source); else an empty one towards its V2G node, a full one on the source arc
        if 0 < deg_w[i] < K or (deg_w[i] == K and best_pair[i] < 0):
            tree_arc[node] = we[i]
        elif best_pair[i] >= 0:
            tree_arc[node] = best_pair[i]
        else:
            tree_arc[node] = vf[i]
        if has_v[i]:
            vnode = 2 + W + i
            if deg_v[i] == 0:
                tree_arc[vnode] = best_pair[W + i]
            elif vt[i] >= 0 and (flow0[vf[i]] == 0):
                tree_arc[vnode] = vt[i]  # rewarded arc strictly inside or saturated (away from the root)
            else:
                tree_arc[vnode] = vf[i]
    return flow0, tree_arc
