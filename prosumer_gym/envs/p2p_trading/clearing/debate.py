"""DEbATE (Alg. 4): differential evolution on ``x`` with fitness Eq. 5.2 (``"debate"``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from prosumer_gym.core.de import UPDATES, differential_evolution
from prosumer_gym.core.prospect import pt_value
from prosumer_gym.core.validation import check_choice
from prosumer_gym.envs.p2p_trading.clearing._common import (
    Clearer,
    check_options,
    check_size,
    finish,
    is_int,
    is_num,
    seller_price_matrix,
)
from prosumer_gym.envs.p2p_trading.market import Allocation, FloatArray, MarketInstance

__all__ = ["DEBATE_LITERAL", "LINE14", "debate_repair", "make_debate"]

#: line-14 rules of :func:`debate_repair`: ``"fixed"`` (default) and ``"printed"`` (Alg. 4 as printed)
LINE14 = ("fixed", "printed")
#: the options that restore Alg. 4 as printed (``make_clearer("debate", S, B, **DEBATE_LITERAL)``)
DEBATE_LITERAL: dict[str, Any] = {"update": "in_place", "line14": "printed", "min_trade_repair": False}


def debate_repair(inst: MarketInstance, pop: FloatArray, out: FloatArray | None = None, *,
                  target: FloatArray | None = None, line14: str = "fixed",
                  min_trade_repair: bool = True) -> FloatArray:
    """Alg. 4 lines 13-15 on a population ``(NP, S*B)`` of ``x`` matrices, plus a 5.2e fix.

    * line 13: ``x_ij = 0`` where ``l_ij >= l_max`` (Eq. 5.2c);
    * line 14: if seller ``i``'s load ``sum_j (1 + l_ij) x_ij w_j`` exceeds ``r_i``, scale its
      row by ``r_i / load`` (the printed formula multiplies the *unmutated* ``x_ij``; that
      is a typo: scaling the trial's row is what makes Eq. 5.2a hold);
      ``line14="printed"`` (literal switch, needs ``target``, the unmutated vectors ``x_k``,
      ``(NP, S*B)``): the over-loaded row becomes ``x_k``'s row times ``r_i / load``, with
      ``load`` the trial's (the quantity line 14 tests; our reading of the denominator). The
      row's mutation is then discarded; 5.2a still holds because ``x_k`` is feasible;
    * line 15: if ``sum_i x_ij > 1``, divide buyer ``j``'s column by the sum (Eq. 5.2b);
    * **added** (Alg. 4 as printed never enforces Eq. 5.2e): trades with
      ``0 < x_ij w_j < mu`` are set to 0. Every step only decreases entries, so the result
      satisfies Eqs. 5.2a-g. ``min_trade_repair=False`` (literal switch) skips it: the
      result may then violate Eq. 5.2e.
    """
    check_choice("line14", line14, LINE14)
    if line14 == "printed" and target is None:
        raise ValueError("line14='printed' needs target, the unmutated population x_k")
    S, B = inst.n_sellers, inst.n_buyers
    X = pop.reshape(pop.shape[0], S, B)
    X *= inst.allowed  # line 13
    w = inst.demand_kwh
    load = np.einsum("kij,ij->ki", X, (1.0 + inst.loss) * w[None, :])
    r = inst.surplus_kwh
    over = load > r[None, :]
    if over.any():
        scale = np.where(over, r[None, :] / np.where(over, load, 1.0), 1.0)
        if line14 == "printed":  # line 14 as printed: the unmutated x_ij of the over-loaded rows
            # line 13 on x_k too: a no-op on a feasible x_k; for the initial population, whose
            # target is the vector itself, this makes the printed rule equal to the fix
            X0 = np.asarray(target, dtype=np.float64).reshape(pop.shape[0], S, B) * inst.allowed
            X[over] = X0[over] * scale[over][:, None]
        else:  # line 14 (typo fixed)
            X *= scale[:, :, None]
    tot = X.sum(axis=1)
    over = tot > 1.0
    if over.any():  # line 15
        X /= np.where(over, tot, 1.0)[:, None, :]
    if min_trade_repair:
        X[(X > 0) & (X * w[None, None, :] < inst.min_trade_kwh)] = 0.0  # 5.2e fix
    return pop


def make_debate(S: int, B: int, **options: Any) -> Clearer:
    """DEbATE, Alg. 4: differential evolution on ``x`` with fitness Eq. 5.2.

    Options: ``NP`` (population, default 20), ``G_max`` (generations, default 10 000),
    ``CR`` (crossover probability, default 0.9), ``F`` (differential weight, default 0.8),
    ``record_history`` (default False: keep the best fitness of every generation in
    ``stats["history"]``). The paper gives neither ``CR`` nor ``F``; 0.9 / 0.8 are Storn &
    Price's recommendation for non-separable problems (the capacity and demand constraints
    couple all components) and lie in the ``F in [0, 2]`` range the paper states.

    Initial population: ``U[0, 1]`` components, repaired (Alg. 4 line 2 + lines 13-15).
    Deviations, each with its literal switch (all off by default; :data:`DEBATE_LITERAL`
    turns all three on):

    * synchronous generation update (see :mod:`prosumer_gym.core.de`):
      ``update="in_place"`` is Alg. 4 lines 4-17 as printed (about ``NP`` times slower);
    * line 14's typo fix: ``line14="printed"`` (see :func:`debate_repair`);
    * the added Eq. 5.2e repair: ``min_trade_repair=False`` (the allocation may then violate
      Eq. 5.2e, and the env's ``info["market"]["feasible"]`` says so).
    """
    spec = {
        "NP": (lambda v: is_int(v) and v >= 4, "an integer >= 4"),
        "G_max": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
        "CR": (lambda v: is_num(v) and 0 <= v <= 1, "a number in [0, 1]"),
        "F": (lambda v: is_num(v) and 0 <= v <= 2, "a number in [0, 2]"),
        "record_history": (lambda v: isinstance(v, (bool, np.bool_)), "a bool"),
        "update": (lambda v: v in UPDATES, f"one of {UPDATES}"),
        "line14": (lambda v: v in LINE14, f"one of {LINE14}"),
        "min_trade_repair": (lambda v: isinstance(v, (bool, np.bool_)), "a bool"),
    }
    check_options("debate", options, spec)
    NP = int(options.get("NP", 20))
    G_max = int(options.get("G_max", 10_000))
    CR = float(options.get("CR", 0.9))
    F = float(options.get("F", 0.8))
    record = bool(options.get("record_history", False))
    update = str(options.get("update", "synchronous"))
    line14 = str(options.get("line14", "fixed"))
    min_trade = bool(options.get("min_trade_repair", True))
    literal = {k: options[k] for k in DEBATE_LITERAL if k in options}  # in stats only when passed
    D = S * B

    def clearer(inst: MarketInstance, rng: np.random.Generator | None = None) -> Allocation:
        t0 = time.perf_counter()
        check_size(inst, S, B, "debate")
        rng = np.random.default_rng(0) if rng is None else rng
        w = inst.demand_kwh
        a = inst.grid_sell_price - inst.seller_price  # saving per kWh from seller i
        c = inst.ref_gap
        kp, kn, zp, zn = inst.pt_args()

        def fitness(pop: FloatArray) -> FloatArray:
            X = pop.reshape(pop.shape[0], S, B)
            s = np.matmul(a, X) * w  # (NP, B) savings against the grid
            return pt_value(s - c, kp, kn, zp, zn).sum(axis=1)

        def repair(pop: FloatArray, target: FloatArray | None = None) -> FloatArray:
            return debate_repair(inst, pop, target=target, line14=line14, min_trade_repair=min_trade)

        if D == 0:
            x = np.zeros((S, B))
            return finish(inst, x, seller_price_matrix(inst), "debate", t0, {"generations": 0})
        res = differential_evolution(fitness, repair, rng.random((NP, D)), 0.0, 1.0, rng,
                                     G_max=G_max, CR=CR, F=F, record_history=record, update=update,
                                     repair_target=line14 == "printed")
        stats = {
            "NP": NP, "G_max": G_max, "CR": CR, "F": F, **literal,
            "generations": res.generations, "evaluations": res.evaluations,
            "replacements": res.replacements, "initial_best": res.initial_best, "best_fitness": res.fitness,
        }
        if record:
            stats["history"] = res.history
        return finish(inst, res.x.reshape(S, B), seller_price_matrix(inst), "debate", t0, stats)

    return clearer
