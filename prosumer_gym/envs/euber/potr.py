"""EUber-v0 recommendation: POTR (Eq. 6.1) and the top-K lists of the BG baseline.

Dissertation ``001``, chapter 6, Section 6.3.1. A recommender's score matrix (W workers x S
tasks) is projected onto recommendation lists: :func:`solve_potr` maximises the total score
under Eqs. 6.1a-f, :func:`topk_recommend` gives each worker its ``K`` eligible tasks of
highest score; :func:`potr_violations` counts what a list set violates.

POTR with its soft Eqs. 6.1b-c is a min-cost flow (source -> worker, cap ``K`` (6.1a) ->
the worker's V2G node (the first ``need_v`` units rewarded: 6.1c) -> eligible pair arcs of
capacity 1 (6.1d-f) -> task -> sink, the task's first unit and its first ``psi_j`` units
rewarded (coverage, 6.1b)); :func:`solve_potr` solves it with a numba network simplex
(``solver="flow"``, the default, :mod:`.netsimplex`), with OR-Tools' cost-scaling solver on
the same network (``solver="ortools"``, the default of earlier releases, about 2x slower) or as
the equivalent LP with HiGHS (``solver="highs"``). All give an optimum of the same objective;
where several lists are optimal (CARS's scores are per worker and task *type*, so ties are the
rule) the flow solvers take the nearer tasks (approach distance in steps of 1/20 of the slot's
longest eligible approach) and, among lists still tied, whichever optimum the solver ends on
(the network simplex and OR-Tools generally end on different ones).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit
from scipy import sparse

from prosumer_gym.core.milp import solve_milp

if TYPE_CHECKING:  # market.py imports this module
    from prosumer_gym.envs.euber.market import SlotInstance

__all__ = ["POTR_SOLVERS", "POTR_CONSTRAINTS", "potr_rhs", "solve_potr", "solve_potr_literal", "literal_targets",
           "topk_recommend", "potr_violations"]

#: ``solve_potr(solver=...)``: the min-cost flow by the network simplex (default), the same flow
#: by OR-Tools (the default of earlier releases) or the LP (HiGHS)
POTR_SOLVERS = ("flow", "ortools", "highs")
#: ``potr_constraints=``: Eqs. 6.1b-c soft (default, :func:`solve_potr`) or hard as printed
#: (:func:`solve_potr_literal`, falling back to the soft lists on an infeasible slot)
POTR_CONSTRAINTS = ("soft", "hard")


def potr_rhs(n_avail: int, n_tasks: int, n_v2g: int, K: int, psi: int | None, share: float | None) -> tuple[int, float]:
    """``psi = floor(|W| K / |S|)`` and ``v2g_min = |V2G| K / |S|`` (Eqs. 6.1b-c) unless given."""
    if psi is None:
        psi = (n_avail * K) // n_tasks if n_tasks else 0
    if share is None:
        share = n_v2g / n_tasks if n_tasks else 0.0
    return int(psi), float(share * K)


def solve_potr(score: np.ndarray, inst: SlotInstance, *, time_limit: float = 20.0, solver: str = "flow") -> np.ndarray:
    """Recommendation lists maximising ``sum score_ij x_ij`` under Eqs. 6.1a-f.

    Eqs. 6.1a, 6.1d, 6.1e, 6.1f are hard. Eq. 6.1b (each task to at least ``psi`` workers)
    and Eq. 6.1c (at least ``v2g_min`` V2G tasks per list) may be impossible (few eligible
    workers nearby); they are made *soft*: the requirement is first capped at what the
    eligibility allows (``min(psi, #eligible workers of j)``, ``min(ceil(v2g_min), K,
    #eligible V2G tasks of i)``) and any remaining shortfall is penalised with a weight larger
    than any score gain, so a shortfall only remains when the constraints conflict; a larger
    penalty on the *first* recommendation of each task spreads unavoidable shortfalls (every
    task with an eligible worker is recommended at least once whenever possible).
    ``solver``: ``"flow"`` (min-cost flow, network simplex; scores resolved to 1e-4 of the
    largest, ties to the nearer task), ``"ortools"`` (the same flow by OR-Tools) or ``"highs"``
    (the LP, HiGHS; ``time_limit`` applies to it).
    Returns ``x`` (W, S) int8. Rows of unavailable workers are zero.
    """
    if solver not in POTR_SOLVERS:
        raise ValueError(f"solver must be one of {POTR_SOLVERS}, got {solver!r}")
    score, ii, jj, x = _potr_pairs(score, inst)
    if ii.size == 0:
        return x
    psi_j, need_v = _potr_targets(inst)
    if solver != "highs":
        return _potr_flow(score, inst, (ii, jj), x, psi_j, need_v, time_limit, solver)
    n = ii.size
    W, S, K, elig, v2g = inst.n_workers, inst.n_tasks, inst.K, inst.eligible, inst.is_v2g
    workers = np.flatnonzero(elig.any(axis=1))
    tasks_c = np.flatnonzero(psi_j > 0)
    workers_v = np.flatnonzero(need_v > 0)
    nu, nv = tasks_c.size, workers_v.size
    nvar = n + nu + nv + nu
    sc = score[ii, jj]
    smax = float(np.max(np.abs(sc))) if sc.size else 1.0
    pen = 2.0 * K * smax + 1.0
    pen1 = pen * (float(psi_j.max(initial=0)) + 1.0) * 2.0  # first recommendation of a task first
    c = np.concatenate([sc, -pen * np.ones(nu + nv), -pen1 * np.ones(nu)])
    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0
    # 6.1a: sum_j x_ij <= K
    wrow = -np.ones(W, dtype=np.int64)
    wrow[workers] = np.arange(workers.size)
    rows.append(wrow[ii]); cols.append(np.arange(n)); vals.append(np.ones(n))
    lo.append(np.full(workers.size, -np.inf)); hi.append(np.full(workers.size, float(K)))
    r += workers.size
    # 6.1b: sum_i x_ij + u_j >= psi_j
    r0_b = r
    trow = -np.ones(S, dtype=np.int64)
    trow[tasks_c] = r + np.arange(nu)
    m = trow[jj] >= 0
    rows += [trow[jj][m], r + np.arange(nu)]; cols += [np.flatnonzero(m), n + np.arange(nu)]
    vals += [np.ones(int(m.sum())), np.ones(nu)]
    lo.append(psi_j[tasks_c].astype(float)); hi.append(np.full(nu, np.inf))
    r += nu
    # 6.1c: sum_{j in V2G} x_ij + v_i >= need_v_i
    vrow = -np.ones(W, dtype=np.int64)
    vrow[workers_v] = r + np.arange(nv)
    m = (vrow[ii] >= 0) & v2g[jj]
    rows += [vrow[ii][m], r + np.arange(nv)]; cols += [np.flatnonzero(m), n + nu + np.arange(nv)]
    vals += [np.ones(int(m.sum())), np.ones(nv)]
    lo.append(need_v[workers_v].astype(float)); hi.append(np.full(nv, np.inf))
    r += nv
    # coverage of at least one worker per task (tiered penalty, so shortfalls are spread out)
    rows += [trow[jj][trow[jj] >= 0] - r0_b + r, r + np.arange(nu)]
    cols += [np.flatnonzero(trow[jj] >= 0), n + nu + nv + np.arange(nu)]
    vals += [np.ones(int((trow[jj] >= 0).sum())), np.ones(nu)]
    lo.append(np.ones(nu)); hi.append(np.full(nu, np.inf))
    r += nu
    A = sparse.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, nvar))
    ub = np.concatenate([np.ones(n), psi_j[tasks_c].astype(float), need_v[workers_v].astype(float), np.ones(nu)])
    integ = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(nu + nv + nu, dtype=np.int64)])
    # The constraint matrix is totally unimodular (laminar row families on the worker side -
    # 6.1a and 6.1c - and on the task side - 6.1b and the coverage row), so the LP has integral
    # vertices: solve the LP (2-3x faster) and fall back to the MILP only if the returned point
    # is fractional.
    lo_a, hi_a = np.concatenate(lo), np.concatenate(hi)
    res = solve_milp(c, A, lo_a, hi_a, np.zeros(nvar), ub, np.zeros(nvar, dtype=np.int64), maximize=True,
                     time_limit=time_limit)
    if res.success and np.max(np.abs(res.x[:n] - np.round(res.x[:n]))) > 1e-6:
        res = solve_milp(c, A, lo_a, hi_a, np.zeros(nvar), ub, integ, maximize=True, time_limit=time_limit,
                         mip_rel_gap=1e-6)
    if not res.success:  # cannot happen (x = 0 with full slack is feasible); keep a safe fallback
        return topk_recommend(score, inst)
    x[ii, jj] = (res.x[:n] > 0.5).astype(np.int8)
    return x


def _potr_pairs(score: np.ndarray, inst: SlotInstance) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The checked score matrix, the eligible pairs ``(ii, jj)`` and an empty ``x`` (W, S) int8."""
    W, S = inst.n_workers, inst.n_tasks
    score = np.asarray(score, dtype=np.float64)
    if score.shape != (W, S) or not np.all(np.isfinite(score[inst.eligible])):
        raise ValueError(f"POTR scores must be a finite ({W}, {S}) array on the eligible pairs, got shape {score.shape}")
    ii, jj = np.nonzero(inst.eligible)
    return score, ii, jj, np.zeros((W, S), dtype=np.int8)


def _potr_targets(inst: SlotInstance) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 6.1b-c requirements capped at what eligibility allows: ``psi_j`` (S,), ``need_v`` (W,)."""
    elig, v2g, K = inst.eligible, inst.is_v2g, inst.K
    psi_j = np.minimum(inst.psi, elig.sum(axis=0))
    need_v = np.minimum(np.minimum(math.ceil(inst.v2g_min - 1e-9), K), (elig & v2g[None, :]).sum(axis=1))
    return psi_j, need_v


#: score resolution of the flow solver (of the largest |score|) and its distance tie-break levels
_FLOW_SCORE_LEVELS = 10_000
_FLOW_TIE_LEVELS = 20


def _potr_flow(score: np.ndarray, inst: SlotInstance, pairs: tuple[np.ndarray, np.ndarray], x: np.ndarray,
               psi_j: np.ndarray, need_v: np.ndarray, time_limit: float, solver: str = "flow") -> np.ndarray:
    """POTR as an integer min-cost flow (module docstring): the network simplex (``"flow"``) or
    OR-Tools ``SimpleMinCostFlow`` (``"ortools"``), both exact on the same network.

    Costs are integers: the pair reward is ``q_ij M + t_ij`` with ``q_ij`` the score in units
    of ``max|score| / _FLOW_SCORE_LEVELS`` and ``t_ij`` in ``[0, _FLOW_TIE_LEVELS]`` larger for
    nearer tasks; ``M`` exceeds the largest possible sum of ``t`` so the distance only breaks
    ties. The penalty tiers are those of the LP (``pen``, and ``pen1`` for a task's first
    recommendation), so both solvers optimise the same objective. Falls back to the LP if
    OR-Tools reports anything but an optimum (e.g. a cost range that could overflow); the
    network simplex hands a cost range beyond its int64 headroom to OR-Tools."""
    n = pairs[0].size
    tail, head, cap, cost, first_pair, supply, flow0, tree_arc = _potr_network(score, inst, pairs, psi_j, need_v)
    if solver == "flow" and float(np.abs(cost).sum()) < _NS_MAX_COST_SUM:
        flow = _network_simplex_st(tail, head, cap, cost, supply, flow0, tree_arc)
        x[pairs] = (flow[first_pair:first_pair + n] > 0).astype(np.int8)
        return x
    from ortools.graph.python import min_cost_flow

    mcf = min_cost_flow.SimpleMinCostFlow()
    arcs = mcf.add_arcs_with_capacity_and_unit_cost(tail, head, cap, cost)
    mcf.set_nodes_supplies(np.array([0, 1]), np.array([supply, -supply]))
    if mcf.solve() != mcf.OPTIMAL:
        return solve_potr(score, inst, time_limit=time_limit, solver="highs")
    flow = mcf.flows(arcs[first_pair:first_pair + n])
    x[pairs] = (flow > 0).astype(np.int8)
    return x


#: the network simplex's artificial arcs cost 3 x the sum of |cost|; beyond this sum its int64
#: potentials could overflow and OR-Tools solves instead (POTR at the paper's size: ~1e12)
_NS_MAX_COST_SUM = 1e17


def _network_simplex_st(tail: np.ndarray, head: np.ndarray, cap: np.ndarray, cost: np.ndarray, supply: int,
                        flow0: np.ndarray, tree_arc: np.ndarray) -> np.ndarray:
    """Optimal flow of a network whose only supply is ``supply`` units at node 0 to node 1
    (warm start ``flow0``/``tree_arc``, one entry per arc/node; :func:`~.netsimplex.network_simplex`)."""
    from prosumer_gym.envs.euber.netsimplex import network_simplex

    b = np.zeros(tree_arc.size, dtype=np.int64)
    b[0], b[1] = supply, -supply
    status, flow, _ = network_simplex(b.size, tail.astype(np.int64), head.astype(np.int64), cap, cost, b, True,
                                      flow0, tree_arc)
    if status != 0:  # cannot happen: the source -> sink bypass carries any supply
        raise RuntimeError("POTR network simplex found no feasible flow")
    return flow


def _potr_network(score: np.ndarray, inst: SlotInstance, pairs: tuple[np.ndarray, np.ndarray], psi_j: np.ndarray,
                  need_v: np.ndarray) -> tuple:
    """:func:`_potr_flow`'s network: ``(tail, head, capacity, unit_cost, first_pair, supply,
    flow0, tree_arc)``; the pair arcs (in the order of ``pairs``, row-major) start at
    ``first_pair``; ``(flow0, tree_arc)`` is the network simplex's greedy warm start.

    Arc groups, in this order (the order is part of the solvers' tie rule: keep it):
    source->worker (6.1a); worker->V2G node, rewarded then free (6.1c); pairs; task->sink:
    first unit, the rest of psi_j (6.1b), any more free; source->sink bypass. Nodes: 0 source,
    1 sink, 2 + i worker i, 2 + W + i its V2G node, 2 + 2 W + j task j. Pair costs are minus
    :func:`_flow_rewards`; built by the compiled :func:`~.netsimplex.potr_network`."""
    from prosumer_gym.envs.euber.netsimplex import potr_network

    ii, jj = pairs
    tail, head, cap, cost, first_pair, supply, flow0, tree_arc = potr_network(
        ii, jj, score, inst.approach_km, inst.is_v2g, psi_j.astype(np.int64), need_v.astype(np.int64), int(inst.K),
        _FLOW_SCORE_LEVELS, _FLOW_TIE_LEVELS)
    return tail, head, cap, cost, int(first_pair), int(supply), flow0, tree_arc


def _flow_rewards(score: np.ndarray, inst: SlotInstance, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Integer reward ``q_ij M + t_ij`` of each pair (score levels, then the distance tie-break;
    :func:`_potr_flow`)."""
    ii, jj = pairs
    sc = score[ii, jj]
    smax = float(np.max(np.abs(sc))) or 1.0
    q = np.rint(sc / smax * _FLOW_SCORE_LEVELS).astype(np.int64)
    appr = inst.approach_km[ii, jj]
    far = float(appr.max()) or 1.0
    t = np.rint((1.0 - appr / far) * _FLOW_TIE_LEVELS).astype(np.int64)
    M = inst.n_workers * inst.K * _FLOW_TIE_LEVELS + 1
    return q * M + t


def literal_targets(inst: SlotInstance) -> tuple[int, int]:
    """Eqs. 6.1b-c as printed: every task to at least ``psi`` workers, every available worker
    at least ``ceil(v2g_min)`` V2G tasks (integer ``x``, so ``>= |V2G| K / |S|`` means the ceiling)."""
    return int(inst.psi), int(math.ceil(inst.v2g_min - 1e-9))


def solve_potr_literal(score: np.ndarray, inst: SlotInstance) -> np.ndarray | None:
    """POTR with Eqs. 6.1a-f all *hard*, as printed (no capping, no penalties); ``None`` if infeasible.

    Targets from :func:`literal_targets`: each task ``j`` needs ``psi`` recommendations (6.1b) and
    each *available* worker ``ceil(v2g_min)`` V2G tasks (6.1c), from eligible pairs only (6.1d-f),
    at most ``K`` per list (6.1a). Solved exactly as a min-cost flow with lower bounds (OR-Tools;
    the network of :func:`_potr_flow` with the requirement arcs' rewards replaced by lower bounds,
    the same integer pair rewards, so the same tie rule). The caller decides what an infeasible
    slot gets (the env falls back to the soft lists and counts the slot).
    """
    from ortools.graph.python import min_cost_flow

    score, ii, jj, x = _potr_pairs(score, inst)
    W, S, K, elig, v2g = inst.n_workers, inst.n_tasks, inst.K, inst.eligible, inst.is_v2g
    psi, need = literal_targets(inst)
    avail = np.flatnonzero(inst.worker_available)
    if need > K or (need > 0 and np.any((elig[avail] & v2g[None, :]).sum(axis=1) < need)) \
            or (psi > 0 and np.any(elig.sum(axis=0) < psi)):
        return None  # a necessary condition fails: no flow needed
    if ii.size == 0:
        return x
    reward = _flow_rewards(score, inst, (ii, jj))
    # nodes: 0 source, 1 sink, 2 + i worker i, 2 + W + i its V2G node, 2 + 2 W + j task j
    na, n = avail.size, ii.size
    tail = np.concatenate([np.zeros(na), 2 + avail, np.where(v2g[jj], 2 + W + ii, 2 + ii),
                           2 + 2 * W + np.arange(S), [0]]).astype(np.int32)
    head = np.concatenate([2 + avail, 2 + W + avail, 2 + 2 * W + jj, np.ones(S), [1]]).astype(np.int32)
    cap = np.concatenate([np.full(na, K), np.full(na, K - need), np.ones(n), np.full(S, W - psi),
                          [K * na]]).astype(np.int64)  # worker->V2G and task->sink: capacity minus lower bound
    cost = np.concatenate([np.zeros(2 * na), -reward, np.zeros(S + 1)]).astype(np.int64)
    supply = np.zeros(2 + 2 * W + S, dtype=np.int64)
    supply[0], supply[1] = K * na, -K * na
    supply[2 + avail] -= need  # lower bound ``need`` on worker -> V2G node (6.1c)
    supply[2 + W + avail] += need
    supply[2 + 2 * W + np.arange(S)] -= psi  # lower bound ``psi`` on task -> sink (6.1b)
    supply[1] += psi * S
    mcf = min_cost_flow.SimpleMinCostFlow()
    arcs = mcf.add_arcs_with_capacity_and_unit_cost(tail, head, cap, cost)
    mcf.set_nodes_supplies(np.arange(supply.size), supply)
    status = mcf.solve()
    if status == mcf.INFEASIBLE:
        return None
    if status != mcf.OPTIMAL:
        raise RuntimeError(f"POTR (hard 6.1b/c) min-cost flow failed with status {status}")
    flow = mcf.flows(arcs[2 * na:2 * na + n])
    x[ii, jj] = (flow > 0).astype(np.int8)
    return x


def topk_recommend(score: np.ndarray, inst: SlotInstance) -> np.ndarray:
    """Per worker, the ``K`` eligible tasks with the highest score (ties: nearer, then lower index)."""
    W, S = inst.n_workers, inst.n_tasks
    x = np.zeros((W, S), dtype=np.int8)
    s = np.where(inst.eligible, np.asarray(score, dtype=np.float64), -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(S), (W, S)), inst.approach_km, -s), axis=1)
    top = order[:, : inst.K]
    rows = np.repeat(np.arange(W), top.shape[1])
    sel = top.ravel()
    ok = np.isfinite(s[rows, sel])
    x[rows[ok], sel[ok]] = 1
    return x


def potr_violations(x: np.ndarray, inst: SlotInstance) -> dict[str, int]:
    """Counts of hard POTR violations (6.1a, 6.1d/e/availability) and of soft shortfalls (6.1b/c)."""
    too_long, inelig, psi_short, v2g_short = _potr_violation_counts(
        np.ascontiguousarray(x), np.ascontiguousarray(inst.eligible), np.ascontiguousarray(inst.is_v2g),
        int(inst.K), int(inst.psi), float(inst.v2g_min))
    return {"list_too_long": too_long, "ineligible_pairs": inelig, "psi_shortfall_tasks": psi_short,
            "v2g_share_shortfall_workers": v2g_short}


@njit(cache=True)
def _potr_violation_counts(x: np.ndarray, elig: np.ndarray, v2g: np.ndarray, K: int, psi: int,
                           v2g_min: float) -> tuple[int, int, int, int]:
    """:func:`potr_violations` in one compiled pass: lists longer than ``K``, recommended
    ineligible pairs, tasks below ``min(psi, #eligible workers)``, and non-empty lists with
    fewer than ``v2g_min`` V2G tasks."""
    W, S = x.shape
    per_task = np.zeros(S, np.int64)
    n_elig = np.zeros(S, np.int64)
    too_long = inelig = v2g_short = 0
    for i in range(W):
        n = nv = 0
        for j in range(S):
            if elig[i, j]:
                n_elig[j] += 1
            if x[i, j] != 0:
                n += x[i, j]
                per_task[j] += x[i, j]
                if v2g[j]:
                    nv += x[i, j]
                if x[i, j] > 0 and not elig[i, j]:
                    inelig += 1
        too_long += n > K
        v2g_short += (nv < v2g_min - 1e-9) and n > 0
    psi_short = 0
    for j in range(S):
        psi_short += per_task[j] < min(psi, n_elig[j])
    return too_long, inelig, psi_short, v2g_short

