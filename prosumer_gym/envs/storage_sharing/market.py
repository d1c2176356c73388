"""StorageSharing-v0 mechanism: the modified auction, the Stackelberg game, Algorithm 1.

Paper ``003`` (Tushar, Chai, Yuen, Huang, Smith, Poor, Yang: "Energy storage sharing in
smart grid: a modified auction-based approach", IEEE Trans. Smart Grid 7(3), 2016).
Docs: ``docs/storage_sharing.md``. Every formula of the paper is masked (``@xmath``)
in our copy: the utilities, the best response, the saving, the closed-form price and the
inter-slot update are a **RECONSTRUCTION** consistent with the paper's prose and the
spec, each behind one small documented function so that it can be replaced once the real
equations are at hand. Units: prices in cents/kWh, storage in kWh, utilities and savings
in cents.

This module is the market's public face: it re-exports every name of the three modules
that implement it (import from here or from them).

Contents
--------
:mod:`.model` -- :class:`StorageMarket`
    One slot's declared inputs (RUs: reservation price ``r_i``, reluctance ``beta_i``,
    offered storage ``b_i``; SFCs: bid ``c_m``, requirement ``Q_m``; the admissible price
    band), validated. :class:`AvailabilityTracker`, :func:`tou_multipliers` (Sec. IV
    "time-varying case", RECONSTRUCTED inter-slot update).
:mod:`.auction` -- the modified auction
    :func:`determine` (Sec. IV "determination rule"): supply curve (RUs by increasing
    ``r_i``) against demand curve (SFCs by decreasing ``c_m``); the marginal pair at their
    intersection is excluded (``include_marginal`` keeps it); returns the participants and
    the price window (``window="floor"`` default, ``"vickrey"``: see that module's
    docstring for the deviation from the spec's literal window). :func:`clear` (Sec. IV
    "allocation rule"): burden of an oversupply, equal (default) or proportional to ``r_i``
    or to the offer; payments, utilities, savings. :func:`solve`: the whole mechanism on one
    slot. :func:`deviation_gain` (Theorem 3): incentive-compatibility check of one RU by
    deviation search over reservation-price reports.
:mod:`.stackelberg` -- the Stackelberg game
    :func:`ru_utility`, :func:`ru_best_response`, :func:`average_saving` (Sec. IV "payment
    rule", RECONSTRUCTED) and :func:`equilibrium` / :func:`se_price` (Theorem 1): the
    Stackelberg equilibrium, exactly, by enumerating the pieces on which the saving is a
    quadratic in the price; :func:`closed_form_price` is the paper's interior solution.
    :func:`algorithm1` (Algorithm 1, RECONSTRUCTED proposal rule): the iterative SE search.
"""

from __future__ import annotations

from prosumer_gym.envs.storage_sharing import auction as _auction
from prosumer_gym.envs.storage_sharing import model as _model
from prosumer_gym.envs.storage_sharing import stackelberg as _stackelberg
from prosumer_gym.envs.storage_sharing.auction import (  # noqa: F401 - re-exported
    Clearing,
    Determination,
    burden_split,
    clear,
    determine,
    deviation_gain,
    solve,
)
from prosumer_gym.envs.storage_sharing.model import (  # noqa: F401 - re-exported
    BURDEN_RULES,
    DEFAULT_TOU,
    WINDOWS,
    AvailabilityTracker,
    StorageMarket,
    tou_multipliers,
)
from prosumer_gym.envs.storage_sharing.stackelberg import (  # noqa: F401 - re-exported
    Algorithm1Result,
    Equilibrium,
    algorithm1,
    average_saving,
    closed_form_price,
    equilibrium,
    ru_best_response,
    ru_utility,
    saving_curve,
    se_price,
    supply,
)

# every public name of the three modules, as before the split
__all__ = [*_model.__all__, *_auction.__all__, *_stackelberg.__all__]
