"""The clearing mechanisms of P2PTrading-v0 (Eq. 5.2), one module per family, and their table.

``savings`` (default, ours): :mod:`.savings`; ``debate`` (Alg. 4): :mod:`.debate`; ``rule``
and ``zhu`` (Section 5.3.2): :mod:`.rules`; ``milp`` (HiGHS reference): :mod:`.milp`; ``bnb``
(near-exact: sigmoidal-programming branch and bound with a certified bound): :mod:`.bound`. Each
module's ``make_<name>(S, B, **options)`` builds a reusable clearer; :func:`make_clearer`
dispatches by name. See ``docs/p2p_trading_clearing.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from prosumer_gym.envs.p2p_trading.clearing._common import Clearer, is_int
from prosumer_gym.envs.p2p_trading.clearing.bound import make_bnb
from prosumer_gym.envs.p2p_trading.clearing.debate import make_debate
from prosumer_gym.envs.p2p_trading.clearing.milp import make_milp
from prosumer_gym.envs.p2p_trading.clearing.rules import make_rule, make_zhu
from prosumer_gym.envs.p2p_trading.clearing.savings import make_savings
from prosumer_gym.envs.p2p_trading.market import Allocation, MarketInstance

__all__ = ["MECHANISMS", "DEFAULT_MECHANISM", "Clearer", "make_clearer", "clear"]

_FACTORIES: dict[str, Callable[..., Clearer]] = {
    "savings": make_savings,
    "debate": make_debate,
    "rule": make_rule,
    "zhu": make_zhu,
    "milp": make_milp,
    "bnb": make_bnb,
}
MECHANISMS: tuple[str, ...] = ("savings", "debate", "rule", "zhu", "milp", "bnb")
DEFAULT_MECHANISM = "savings"


def make_clearer(mechanism: str, n_sellers: int, n_buyers: int, **options: Any
                 ) -> Clearer:
    """Build a reusable clearer for a market of ``n_sellers x n_buyers``.

    The returned callable ``clearer(inst, rng) -> Allocation`` reuses the structure built
    here (index arrays, sort buffers, the MILP's sparse pattern). Unknown mechanisms or
    options raise ``ValueError`` naming the allowed values.
    """
    if mechanism not in _FACTORIES:
        raise ValueError(f"unknown mechanism {mechanism!r}; allowed: {', '.join(MECHANISMS)}")
    for name, v in (("n_sellers", n_sellers), ("n_buyers", n_buyers)):
        if not is_int(v) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    return _FACTORIES[mechanism](int(n_sellers), int(n_buyers), **options)


def clear(inst: MarketInstance, mechanism: str = DEFAULT_MECHANISM, rng: np.random.Generator | None = None,
          **options: Any) -> Allocation:
    """Clear one day with ``mechanism`` (convenience: builds a clearer and calls it once)."""
    if not isinstance(inst, MarketInstance):
        raise ValueError(f"inst must be a MarketInstance, got {type(inst).__name__}")
    return make_clearer(mechanism, inst.n_sellers, inst.n_buyers, **options)(inst, rng)
