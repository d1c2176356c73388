"""EnergyCollective-v0 storage players: the community manager's batteries over a day.

Source: slides ``002`` ("this could be written with all players being prosumers (and
storage)", Fig. 1 (c): the storage's cost). Every choice: ``docs/energy_collective.md``.

A battery ``b`` has an energy capacity ``E_b`` (kWh), a power limit ``P_b`` (kW, the same
for charging and discharging), one-way efficiencies ``eta_c``, ``eta_d`` and a state of
charge ``e_{b,t}`` (kWh, at the end of slot ``t``) within ``[soc_min E_b, soc_max E_b]``.
Per slot (``h`` hours) it charges ``c_{b,t} in [0, P_b h]`` and discharges
``d_{b,t} in [0, P_b h]`` kWh; its net injection into the community is ``d - c`` and::

    e_{b,t} = e_{b,t-1} + eta_c c_{b,t} - d_{b,t} / eta_d,    e_{b,-1} = e0_b      (S1)
    e_{b,T-1} >= e0_b                 (the day ends at least as full as it started)   (S2)

The batteries are dispatched by the community manager (they are not env agents): the
day's problem (1)-(5) over all ``T`` slots with the batteries in the balance (2)::

    min  sum_t [ sum_i f_i(p_{i,t}) + g(q_t) + kappa sum_b (c_{b,t} + d_{b,t}) ]
    s.t. sum_i p_{i,t} + sum_b (d_{b,t} - c_{b,t}) + q_t = 0      (2), price lambda_t
         bounds (3)-(5), (S1)-(S2)

``kappa`` (EUR/kWh) is a throughput (wear) cost. A convex QP with a diagonal Hessian
(the players' curvatures; ``q = q_imp - q_exp`` split in two non-negative parts) solved
by :func:`prosumer_gym.core.qp.solve_qp` on its structured sparse path; the constraint
matrix is built once per community size (:class:`StorageProblem`).
:func:`check_storage` verifies a schedule independently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from prosumer_gym.core.qp import QPInfeasibleError, solve_qp
from prosumer_gym.core.validation import check_float, check_int
from prosumer_gym.envs.energy_collective.community import community_objective
from prosumer_gym.envs.energy_collective.players import Community

__all__ = ["Storage", "StorageDispatch", "StorageProblem", "solve_community_storage", "check_storage"]


@dataclass(frozen=True)
class Storage:
    """``S`` batteries (arrays of shape (S,)); energies in kWh, powers in kW."""

    capacity_kwh: NDArray[np.float64]
    power_kw: NDArray[np.float64]
    eta_charge: NDArray[np.float64]
    eta_discharge: NDArray[np.float64]
    soc_init: NDArray[np.float64]  # fraction of the capacity at the start of the day
    soc_min: float = 0.0
    soc_max: float = 1.0
    wear_cost: float = 0.0  # EUR/kWh charged or discharged

    def __post_init__(self) -> None:
        arrs = {}
        for name in ("capacity_kwh", "power_kw", "eta_charge", "eta_discharge", "soc_init"):
            v = np.atleast_1d(np.asarray(getattr(self, name), dtype=np.float64))
            arrs[name] = v
        S = arrs["capacity_kwh"].size
        for name, v in arrs.items():
            v = np.broadcast_to(v, (S,)).copy()
            if not np.all(np.isfinite(v)):
                raise ValueError(f"storage {name} must be finite, got {v}")
            object.__setattr__(self, name, v)
        if np.any(self.capacity_kwh < 0) or np.any(self.power_kw < 0):
            raise ValueError("storage capacity_kwh and power_kw must be >= 0")
        for name in ("eta_charge", "eta_discharge"):
            v = getattr(self, name)
            if np.any(v <= 0) or np.any(v > 1):
                raise ValueError(f"storage {name} must be in (0, 1], got {v}")
        smin = check_float("soc_min", self.soc_min, 0.0, 1.0)
        smax = check_float("soc_max", self.soc_max, smin, 1.0)
        object.__setattr__(self, "soc_min", smin)
        object.__setattr__(self, "soc_max", smax)
        if np.any(self.soc_init < smin - 1e-12) or np.any(self.soc_init > smax + 1e-12):
            raise ValueError(f"storage soc_init must be in [soc_min, soc_max] = [{smin}, {smax}], got {self.soc_init}")
        object.__setattr__(self, "wear_cost", check_float("wear_cost", self.wear_cost, 0.0))

    @classmethod
    def uniform(cls, n: int, capacity_kwh: float = 10.0, power_kw: float = 5.0, efficiency: float = 0.95,
                soc_init: float = 0.5, wear_cost: float = 0.0) -> "Storage":
        """``n`` identical batteries (the env's ``n_storage`` and ``storage_*`` keywords)."""
        n = check_int("n_storage", n, 0, 10_000)
        capacity_kwh = check_float("storage_capacity_kwh", capacity_kwh, 0.0, lo_open=True)
        power_kw = check_float("storage_power_kw", power_kw, 0.0, lo_open=True)
        efficiency = check_float("storage_efficiency", efficiency, 0.0, 1.0, lo_open=True)
        soc_init = check_float("storage_soc_init", soc_init, 0.0, 1.0)
        wear_cost = check_float("storage_wear_cost", wear_cost, 0.0)
        full = np.ones(n)
        return cls(capacity_kwh * full, power_kw * full, efficiency * full, efficiency * full, soc_init * full,
                   wear_cost=wear_cost)

    @property
    def n(self) -> int:
        return int(self.capacity_kwh.size)

    @property
    def e0(self) -> NDArray[np.float64]:
        """Initial state of charge, kWh (S,)."""
        return self.soc_init * self.capacity_kwh


@dataclass(frozen=True)
class StorageDispatch:
    """The day's cooperative dispatch with storage: ``p`` (T, N), ``charge``, ``discharge``
    (T, S) kWh per slot, ``soc`` (T + 1, S) kWh (row 0: the start), ``storage`` (T,) the
    batteries' net injection ``sum_b (d - c)``, ``q`` (T,) net import, ``price`` (T,)
    the multiplier of (2), ``objective`` (T,) ``sum f_i + g(q)`` (+ wear), ``converged``,
    ``iterations`` (interior point)."""

    p: NDArray[np.float64]
    charge: NDArray[np.float64]
    discharge: NDArray[np.float64]
    soc: NDArray[np.float64]
    storage: NDArray[np.float64]
    q: NDArray[np.float64]
    price: NDArray[np.float64]
    objective: NDArray[np.float64]
    converged: bool
    iterations: int


@dataclass
class StorageProblem:
    """The constraint structure of the day's QP for ``T`` slots, ``N`` players and the
    batteries ``storage``, built once (the env reuses it every day). Variable order:
    ``p`` (T*N, slot-major), ``q_imp`` (T), ``q_exp`` (T), ``c`` (T*S), ``d`` (T*S),
    ``e`` (T*S); rows: the balances (2) (T), then (S1) (T*S)."""

    T: int
    N: int
    storage: Storage
    slot_hours: float
    A: sp.csc_matrix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        T, N, S = self.T, self.N, self.storage.n
        n_p, n_s = T * N, T * S
        o_qi, o_qe = n_p, n_p + T
        o_c, o_d, o_e = n_p + 2 * T, n_p + 2 * T + n_s, n_p + 2 * T + 2 * n_s
        self.n_var = o_e + n_s
        self.offsets = (o_qi, o_qe, o_c, o_d, o_e)
        t_of_p = np.repeat(np.arange(T), N)
        rows = [t_of_p, np.arange(T), np.arange(T)]
        cols = [np.arange(n_p), o_qi + np.arange(T), o_qe + np.arange(T)]
        vals = [np.ones(n_p), np.ones(T), -np.ones(T)]
        t_of_s = np.repeat(np.arange(T), S)
        k = np.arange(n_s)
        rows += [t_of_s, t_of_s]
        cols += [o_c + k, o_d + k]
        vals += [-np.ones(n_s), np.ones(n_s)]
        # (S1): e_t - e_{t-1} - eta_c c_t + d_t / eta_d = 0 (e_{-1} = e0 on the right-hand side)
        r1 = T + k
        eta_c = np.tile(self.storage.eta_charge, T)
        eta_d = np.tile(self.storage.eta_discharge, T)
        rows += [r1, r1, r1]
        cols += [o_e + k, o_c + k, o_d + k]
        vals += [np.ones(n_s), -eta_c, 1.0 / eta_d]
        prev = k >= S
        rows.append(r1[prev])
        cols.append(o_e + k[prev] - S)
        vals.append(-np.ones(int(prev.sum())))
        self.A = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(T + n_s, self.n_var))

    def solve(self, comm: Community, tol: float = 1e-9) -> StorageDispatch:
        """The day's QP for ``comm`` (``T`` slots, ``N`` players, ``g = "market"`` or an
        autonomy term; see the module docstring)."""
        T, N, st = self.T, self.N, self.storage
        S = st.n
        if (comm.n_slots, comm.n_players) != (T, N):
            raise ValueError(f"community has {comm.n_slots} slots and {comm.n_players} players, the problem was "
                             f"built for {T} and {N}")
        th = float(comm.autonomy_weight)
        th1 = th if comm.g_kind == "autonomy_l1" else 0.0
        th2 = th if comm.g_kind == "autonomy_l2" else 0.0
        o_qi, o_qe, o_c, o_d, o_e = self.offsets
        h = np.zeros(self.n_var)
        h[:T * N] = comm.a.ravel()
        h[o_qi:o_c] = th2  # theta/2 (q_imp^2 + q_exp^2) = theta/2 q^2 when one of them is 0 (at the optimum)
        c = np.zeros(self.n_var)
        c[:T * N] = comm.b.ravel()
        c[o_qi:o_qe] = comm.import_price + th1
        c[o_qe:o_c] = -comm.export_price + th1
        c[o_c:o_e] = st.wear_cost
        e_hi = np.tile(st.soc_max * st.capacity_kwh, T)
        e_lo = np.tile(st.soc_min * st.capacity_kwh, T)
        e_lo[(T - 1) * S:] = np.maximum(e_lo[(T - 1) * S:], st.e0)  # (S2)
        pmax = np.tile(st.power_kw * self.slot_hours, T)
        lb = np.concatenate([comm.lo.ravel(), np.zeros(2 * T), np.zeros(2 * T * S), e_lo])
        ub = np.concatenate([comm.hi.ravel(), np.full(T, comm.import_capacity), np.full(T, comm.export_capacity),
                             pmax, pmax, e_hi])
        b = np.zeros(T + T * S)
        b[T:T + S] = st.e0
        try:
            sol = solve_qp(h, c, self.A, b, lb, ub, tol=tol, max_iter=300)
        except QPInfeasibleError as e:
            raise ValueError(f"community problem with storage infeasible: {e}") from None
        x = sol.x
        p = x[:T * N].reshape(T, N)
        q = x[o_qi:o_qe] - x[o_qe:o_c]
        ch = x[o_c:o_d].reshape(T, S)
        dis = x[o_d:o_e].reshape(T, S)
        soc = np.vstack([st.e0[None, :], x[o_e:].reshape(T, S)])
        net = (dis - ch).sum(axis=1)
        obj = community_objective(comm, p, q) + st.wear_cost * (ch + dis).sum(axis=1)
        return StorageDispatch(p, ch, dis, soc, net, q, sol.y[:T].copy(), obj, bool(sol.converged), sol.iterations)


def solve_community_storage(comm: Community, storage: Storage, tol: float = 1e-9) -> StorageDispatch:
    """The day's cooperative dispatch of ``comm`` with the manager's ``storage`` (one QP
    over every slot of ``comm``; see the module docstring)."""
    return StorageProblem(comm.n_slots, comm.n_players, storage, comm.slot_hours).solve(comm, tol)


def check_storage(storage: Storage, charge: ArrayLike, discharge: ArrayLike, soc: ArrayLike, slot_hours: float,
                  atol: float = 1e-6) -> list[str]:
    """Independent feasibility check of a battery schedule: ``charge``/``discharge`` (T, S)
    within ``[0, P h]``, ``soc`` (T + 1, S) starting at ``e0``, within ``[soc_min E,
    soc_max E]``, following (S1) step by step and ending at least at ``e0`` (S2). Returns the
    violations found (empty list: feasible)."""
    c = np.atleast_2d(np.asarray(charge, dtype=np.float64))
    d = np.atleast_2d(np.asarray(discharge, dtype=np.float64))
    e = np.atleast_2d(np.asarray(soc, dtype=np.float64))
    out: list[str] = []
    T = c.shape[0]
    if d.shape != c.shape or e.shape != (T + 1, c.shape[1]):
        return [f"shapes: charge {c.shape}, discharge {d.shape}, soc {e.shape} (expected (T+1, S))"]
    pmax = storage.power_kw * slot_hours
    for name, v in (("charge", c), ("discharge", d)):
        if np.any(v < -atol):
            out.append(f"{name} below 0 by {-v.min():.3g} kWh")
        if np.any(v > pmax + atol):
            out.append(f"{name} above the power limit by {(v - pmax).max():.3g} kWh")
    if np.any(np.abs(e[0] - storage.e0) > atol):
        out.append(f"initial state of charge differs from e0 by {np.abs(e[0] - storage.e0).max():.3g} kWh")
    lo, hi = storage.soc_min * storage.capacity_kwh, storage.soc_max * storage.capacity_kwh
    if np.any(e < lo - atol) or np.any(e > hi + atol):
        out.append(f"state of charge outside [{lo.min():g}, {hi.max():g}] kWh")
    for t in range(T):  # (S1), one slot at a time
        want = e[t] + storage.eta_charge * c[t] - d[t] / storage.eta_discharge
        if np.any(np.abs(e[t + 1] - want) > atol):
            out.append(f"energy balance violated at slot {t} by {np.abs(e[t + 1] - want).max():.3g} kWh")
    if np.any(e[-1] < storage.e0 - atol):
        out.append(f"the day ends {(storage.e0 - e[-1]).max():.3g} kWh below the initial state of charge")
    return out
