"""ProsumerSharing-v0 scenarios: the cost draws of Section VI (Eq. 30, ``"paper"``), Section
V-A (Eq. 28, ``"car_sharing"``) and Section V-B (Eq. 29, ``"community_storage"``), and the
paper's Section VI / Algorithm 1 constants :data:`PAPER`. The paper gives no numbers for
V-A/V-B: our ranges are documented in ``docs/prosumer_sharing.md``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np

from prosumer_gym.core.validation import check_float, check_range
from prosumer_gym.envs.prosumer_sharing.costs import CostParams

__all__ = ["PAPER", "SCENARIOS", "paper_costs", "car_sharing_costs", "community_storage_costs"]

#: Section VI / Algorithm 1 constants of the paper.
PAPER = {
    "n_prosumers": 99,
    "n_class1": 50,
    "contract_x": 90.0,
    "contract_y": 80.0,
    "omega0": 0.06,
    "delta": 11.75,
    "gamma": 11.65,
    "target_1": 1.74,
    "target_2": 1.725,
    "a_values": (1, 10),
    "b_values": (1, 15),
}


def _int_range(name: str, value: Sequence[int], lo: int = 0) -> tuple[int, int]:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of integers, got {value!r}") from None
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) for v in (a, b)):
        raise ValueError(f"{name} must be a (low, high) pair of integers, got {value!r}")
    if a > b or a < lo:
        reason = " (negative values make g_i non-convex)" if a < 0 else ""
        raise ValueError(f"{name} must satisfy {lo} <= low <= high, got {(a, b)}{reason}")
    return int(a), int(b)


def _float_range(name: str, value: Sequence[float], lo: float = -np.inf, hi: float = np.inf,
                 reason: str = "") -> tuple[float, float]:
    try:
        return check_range(name, value, lo, hi)
    except ValueError as e:
        raise ValueError(f"{e}{reason}") from None


def paper_costs(
    rng: np.random.Generator,
    n: int,
    *,
    class1_fraction: float = 50 / 99,
    a_values: tuple[int, int] = (1, 10),
    b_values: tuple[int, int] = (1, 15),
    delta: float = 11.75,
    gamma: float = 11.65,
    target_1: float = 1.74,
    target_2: float = 1.725,
) -> CostParams:
    """Section VI, Eq. 30: two classes; a_i ~ U{1..10}, b_i ~ U{1..15} (integers, as stated).

    Prosumers ``0 .. round(class1_fraction * n) - 1`` form class 1 (50 of 99 by default),
    the rest class 2.
    """
    f = check_float("class1_fraction", class1_fraction, 0.0, 1.0)
    a_lo, a_hi = _int_range("a_values", a_values)
    b_lo, b_hi = _int_range("b_values", b_values)
    delta = check_float("delta", delta)
    gamma = check_float("gamma", gamma)
    t1 = check_float("target_1", target_1, 0.0, 2.0, lo_open=True)
    t2 = check_float("target_2", target_2, 0.0, 2.0, lo_open=True)
    n1 = int(round(f * n))
    c1 = np.arange(n) < n1
    a = rng.integers(a_lo, a_hi + 1, size=n).astype(np.float64)
    b = rng.integers(b_lo, b_hi + 1, size=n).astype(np.float64)
    return CostParams(
        linear=np.where(c1, delta, gamma),
        quad=np.where(c1, a / 2.0, a / 4.0),  # a/4 u^2 = (a/2)/2 u^2 ; a/8 u^2 = (a/4)/2 u^2
        quartic=np.where(c1, 0.0, 5.0 * b),  # 5/4 b u^4 = (5b)/4 u^4
        weight_x=np.ones(n),
        weight_y=np.where(c1, 1.0, 0.0),  # class 2 has no production term in Eq. 30
        target=np.where(c1, t1, t2),
        alpha=np.full(n, 0.5),
        klass=np.where(c1, 1, 2),
    )


def car_sharing_costs(
    rng: np.random.Generator,
    n: int,
    *,
    usage_cost: tuple[float, float] = (11.6, 11.9),
    target: tuple[float, float] = (1.6, 1.82),
    alpha: tuple[float, float] = (0.5, 0.56),
    penalty: tuple[float, float] = (1.0, 5.0),
    weight_x: tuple[float, float] = (1.0, 3.0),
    weight_y: tuple[float, float] = (1.0, 3.0),
) -> CostParams:
    """Section V-A (Eqs. 25-28): households with (mostly) two cars.

    x: the household uses a car of the pool today; y: it lends a car to the external agency.
    ``T_i`` car-days per day (Eq. 27), own-use share ``alpha_i``; ``g_i`` = a running cost per
    car-day ``c_i`` (wear, insurance; makes g increasing) + ``q_i/2 (s - T_i)^2``; ``h_i``,
    ``l_i`` quadratic with weights ``weight_x``/``weight_y``. All drawn uniformly from the
    given ranges (our choice: the paper gives no numbers).
    """
    rc = _float_range("usage_cost", usage_cost, 0.0)
    rt = _float_range("target", target, 0.0, 2.0)
    ra = _float_range("alpha", alpha, 0.0, 1.0)
    rp = _float_range("penalty", penalty, 0.0, reason=" (negative penalties make g_i non-convex)")
    rx = _float_range("weight_x", weight_x, 0.0, reason=" (negative weights make h_i non-convex)")
    ry = _float_range("weight_y", weight_y, 0.0, reason=" (negative weights make l_i non-convex)")
    return CostParams(
        linear=rng.uniform(*rc, size=n),
        quad=rng.uniform(*rp, size=n),
        quartic=np.zeros(n),
        weight_x=rng.uniform(*rx, size=n),
        weight_y=rng.uniform(*ry, size=n),
        target=rng.uniform(*rt, size=n),
        alpha=rng.uniform(*ra, size=n),
        klass=np.ones(n, dtype=np.int64),
    )


def community_storage_costs(
    rng: np.random.Generator,
    n: int,
    *,
    cycling_cost: tuple[float, float] = (11.6, 11.9),
    target: tuple[float, float] = (1.6, 1.82),
    alpha: tuple[float, float] = (0.5, 0.56),
    penalty: tuple[float, float] = (0.5, 3.0),
    capacity_penalty: tuple[float, float] = (1.0, 6.0),
    weight_x: tuple[float, float] = (1.0, 2.0),
    weight_y: tuple[float, float] = (1.0, 2.0),
) -> CostParams:
    """Section V-B (Eq. 29): households with PV and batteries.

    x: discharge one unit of stored energy for own use today; y: sell one unit to the
    external agency. ``T_i`` = units cycled through the battery per day; ``g_i`` = a cycling
    (degradation) cost per unit ``c_i`` + ``q_i/2 (s - T_i)^2`` + a quartic battery-limit
    term ``r_i/4 (s - T_i)^4`` (like Eq. 30's class 2); ``h_i``, ``l_i`` quadratic. Ranges
    are our choice (the paper gives none).
    """
    rc = _float_range("cycling_cost", cycling_cost, 0.0)
    rt = _float_range("target", target, 0.0, 2.0)
    ra = _float_range("alpha", alpha, 0.0, 1.0)
    rp = _float_range("penalty", penalty, 0.0, reason=" (negative penalties make g_i non-convex)")
    rq = _float_range("capacity_penalty", capacity_penalty, 0.0, reason=" (negative penalties make g_i non-convex)")
    rx = _float_range("weight_x", weight_x, 0.0, reason=" (negative weights make h_i non-convex)")
    ry = _float_range("weight_y", weight_y, 0.0, reason=" (negative weights make l_i non-convex)")
    return CostParams(
        linear=rng.uniform(*rc, size=n),
        quad=rng.uniform(*rp, size=n),
        quartic=rng.uniform(*rq, size=n),
        weight_x=rng.uniform(*rx, size=n),
        weight_y=rng.uniform(*ry, size=n),
        target=rng.uniform(*rt, size=n),
        alpha=rng.uniform(*ra, size=n),
        klass=np.ones(n, dtype=np.int64),
    )


SCENARIOS: dict[str, Callable[..., CostParams]] = {
    "paper": paper_costs,
    "car_sharing": car_sharing_costs,
    "community_storage": community_storage_costs,
}


def _scenario_keywords(scenario: str) -> tuple[str, ...]:
    sig = inspect.signature(SCENARIOS[scenario])
    return tuple(p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY)
