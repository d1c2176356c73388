"""Differential evolution (DE/rand/1/bin), vectorised over the population.

This is the search loop of DEbATE (dissertation ``001``, Alg. 4), written generically so
other markets can reuse it: the caller supplies

* ``fitness(pop) -> (NP,)`` — evaluated on a whole ``(NP, D)`` population at once (higher is
  better, Alg. 4 line 16 keeps a trial only if it is *strictly* better);
* ``repair(pop) -> pop`` — makes a whole population feasible (Alg. 4 lines 13-15);
* box bounds ``lo, hi`` for the clip of line 11, and a :class:`numpy.random.Generator`.

Per generation (Alg. 4 lines 4-17):

1. for every candidate ``k`` pick three distinct others ``a, b, c`` (line 5; we also exclude
   ``k`` itself, as in Storn & Price's DE, when ``NP >= 4``) and a forced index ``R``;
2. binomial crossover: component ``d`` is mutated if ``u_d < CR`` or ``d == R`` (lines 8-9),
   mutant ``x_a + F (x_b - x_c)`` (line 10), clipped to ``[lo, hi]`` (line 11);
3. ``repair`` (lines 13-15), evaluate, and replace ``x_k`` if strictly better (line 16).

**Deviation (documented):** Alg. 4 updates the population *in place* inside the loop over
``k`` (an asynchronous DE: a candidate created later in the same generation may use an
already-replaced vector as ``a``, ``b`` or ``c``). We build all ``NP`` trials from the
population at the start of the generation and select afterwards (the *synchronous*
generation update of Storn & Price 1997), which is what makes one generation a handful of
array operations instead of ``NP`` Python iterations. Both variants are elitist: the best
fitness is non-decreasing over generations. **Literal switch** ``update="in_place"``: Alg. 4's
loop as printed (one candidate at a time, a replacement visible to the candidates after it in
the same generation); ``NP`` Python iterations per generation, so about ``NP`` times slower.

``repair_target=True`` calls ``repair(trial, target)`` with the vectors the trials were built
for (``x_k``, row by row), for repairs that read the unmutated vector (DEbATE's printed
line 14, :mod:`prosumer_gym.envs.p2p_trading.clearing.debate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from prosumer_gym.core.validation import check_choice

__all__ = ["DEResult", "UPDATES", "differential_evolution", "pick_distinct_others"]

Fitness = Callable[[NDArray[np.float64]], NDArray[np.float64]]
Repair = Callable[..., NDArray[np.float64]]
#: generation updates: ``"synchronous"`` (default, vectorised) and ``"in_place"`` (Alg. 4 as printed)
UPDATES = ("synchronous", "in_place")


@dataclass(frozen=True)
class DEResult:
    """Best solution and run record of :func:`differential_evolution`.

    ``history[g]`` is the best fitness after generation ``g`` (``history[0]``: the initial,
    repaired population), only when ``record_history=True`` (else an empty array).
    """

    x: NDArray[np.float64]
    fitness: float
    population: NDArray[np.float64]
    population_fitness: NDArray[np.float64]
    generations: int
    evaluations: int
    replacements: int
    initial_best: float
    history: NDArray[np.float64]


def pick_distinct_others(rng: np.random.Generator, n: int, k: int = 3) -> NDArray[np.intp]:
    """For each ``i < n`` draw ``k`` distinct indices in ``[0, n)``, all different from ``i``.

    Returns an ``(n, k)`` array. Needs ``n >= k + 1``.
    """
    if n < k + 1:
        raise ValueError(f"need a population of at least {k + 1}, got {n}")
    # The k smallest of n-1 uniforms, in increasing order, are k distinct slots in a uniformly
    # random order; slot s >= i maps to index s + 1 so that i itself is never drawn.
    u = rng.random((n, n - 1))
    draws = np.argpartition(u, k - 1, axis=1)[:, :k] if n - 1 > k else np.tile(np.arange(n - 1), (n, 1))
    draws = np.take_along_axis(draws, np.argsort(np.take_along_axis(u, draws, axis=1), axis=1), axis=1)
    return draws + (draws >= np.arange(n)[:, None])


def differential_evolution(
    fitness: Fitness,
    repair: Repair,
    init: NDArray[np.float64],
    lo: float | NDArray[np.float64],
    hi: float | NDArray[np.float64],
    rng: np.random.Generator,
    *,
    G_max: int = 10_000,
    CR: float = 0.9,
    F: float = 0.8,
    record_history: bool = False,
    update: str = "synchronous",
    repair_target: bool = False,
) -> DEResult:
    """Run ``G_max`` generations of DE/rand/1/bin on the population ``init`` (``(NP, D)``).

    ``init`` is repaired before the first evaluation (Alg. 4 line 2: the initial population
    is made feasible like every trial). ``CR`` in ``[0, 1]``, ``F`` in ``[0, 2]`` (Alg. 4).
    ``update``: ``"synchronous"`` (default) or ``"in_place"`` (Alg. 4 lines 4-17 literally,
    see the module docstring); ``repair_target``: call ``repair(trial, target)``.
    """
    pop = np.array(init, dtype=np.float64, copy=True)
    if pop.ndim != 2 or pop.shape[0] < 4:
        raise ValueError(f"init must be a (NP, D) array with NP >= 4, got shape {pop.shape}")
    if not (0.0 <= CR <= 1.0):
        raise ValueError(f"CR must be in [0, 1], got {CR}")
    if not (0.0 <= F <= 2.0):
        raise ValueError(f"F must be in [0, 2], got {F}")
    if int(G_max) < 0:
        raise ValueError(f"G_max must be >= 0, got {G_max}")
    check_choice("update", update, UPDATES)
    NP, D = pop.shape
    fix: Repair = (lambda t, x: repair(t, x)) if repair_target else (lambda t, x: repair(t))
    pop = np.clip(pop, lo, hi)
    pop = fix(pop, pop.copy() if repair_target else pop)  # the initial x_k are their own targets
    fit = np.asarray(fitness(pop), dtype=np.float64)
    hist = np.empty(int(G_max) + 1) if record_history else np.zeros(0)
    best0 = float(fit.max())
    if record_history:
        hist[0] = best0
    rows = np.arange(NP)
    n_repl = 0
    evals = NP
    for g in range(int(G_max)):
        if update == "in_place":
            n_repl += _in_place_generation(pop, fit, fitness, fix, lo, hi, rng, CR, F)
            evals += NP
            if record_history:
                hist[g + 1] = fit.max()
            continue
        abc = pick_distinct_others(rng, NP, 3)
        xa, xb, xc = pop[abc[:, 0]], pop[abc[:, 1]], pop[abc[:, 2]]
        mask = rng.random((NP, D)) < CR
        mask[rows, rng.integers(0, D, size=NP)] = True
        trial = np.where(mask, xa + F * (xb - xc), pop)
        np.clip(trial, lo, hi, out=trial)
        trial = fix(trial, pop)
        ft = np.asarray(fitness(trial), dtype=np.float64)
        evals += NP
        better = ft > fit
        if better.any():
            pop[better] = trial[better]
            fit[better] = ft[better]
            n_repl += int(better.sum())
        if record_history:
            hist[g + 1] = fit.max()
    kbest = int(np.argmax(fit))
    return DEResult(
        x=pop[kbest].copy(),
        fitness=float(fit[kbest]),
        population=pop,
        population_fitness=fit,
        generations=int(G_max),
        evaluations=evals,
        replacements=n_repl,
        initial_best=best0,
        history=hist,
    )


def _in_place_generation(pop: NDArray[np.float64], fit: NDArray[np.float64], fitness: Fitness, fix: Repair,
                         lo: float | NDArray[np.float64], hi: float | NDArray[np.float64],
                         rng: np.random.Generator, CR: float, F: float) -> int:
    """One generation of Alg. 4 as printed (lines 4-17): candidate ``k`` is built from the
    population *as it is now* and replaces ``x_k`` at once if strictly better (line 16).
    Updates ``pop`` and ``fit`` in place; returns the number of replacements."""
    NP, D = pop.shape
    n_repl = 0
    for k in range(NP):
        abc = rng.choice(NP - 1, size=3, replace=False)
        abc += abc >= k  # distinct others, never k itself (as in the synchronous update)
        mask = rng.random(D) < CR
        mask[rng.integers(0, D)] = True
        trial = np.where(mask, pop[abc[0]] + F * (pop[abc[1]] - pop[abc[2]]), pop[k])[None, :]
        np.clip(trial, lo, hi, out=trial)
        trial = fix(trial, pop[k:k + 1])
        ft = float(np.asarray(fitness(trial), dtype=np.float64)[0])
        if ft > fit[k]:
            pop[k] = trial[0]
            fit[k] = ft
            n_repl += 1
    return n_repl
