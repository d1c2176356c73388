"""StorageSharing-v0: API battery, determinism, the mechanism (determination, SE, Algorithm 1,
allocation), auction properties (IR, IC, budget balance), the paper's shapes, bad input."""

from __future__ import annotations

import functools
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test, render_test

import prosumer_gym  # noqa: F401  (registers the ids)
from prosumer_gym.agents.storage_sharing import BestResponseRU, SEAuctioneer
from prosumer_gym.baselines.storage_sharing import (
    DEFAULT_FIT_PRICE,
    EqualDistributionRU,
    compare_schemes,
    ed_clearing,
    fit_utilities,
)
from prosumer_gym.core.rationing import capped_weighted_split
from prosumer_gym.envs import storage_sharing_v0
from prosumer_gym.envs.storage_sharing_market import (
    AvailabilityTracker,
    StorageMarket,
    algorithm1,
    burden_split,
    clear,
    closed_form_price,
    determine,
    deviation_gain,
    equilibrium,
    ru_best_response,
    ru_utility,
    saving_curve,
    se_price,
    solve,
)

from .helpers import same

SMALL = dict(n_rus=4, n_sfcs=3)


def random_market(rng: np.random.Generator, n: int = 8, m: int = 5, beta: float | None = None,
                  q_scale: float = 1.0) -> StorageMarket:
    """The spec's default population (paper size): r, c ~ U[20, 70], beta ~ U[0.01, 0.1]."""
    b = rng.uniform(0.01, 0.1, n)
    if beta is not None:  # same markets for every beta: the other draws do not depend on it
        b = np.full(n, beta)
    return StorageMarket(rng.uniform(20, 70, n), b, 50 * rng.uniform(0.4, 0.8, n), rng.uniform(20, 70, m),
                         q_scale * rng.uniform(10, 40, m))


def markets(seed: int, count: int, **kw) -> list[StorageMarket]:
    rng = np.random.default_rng(seed)
    return [random_market(rng, **kw) for _ in range(count)]


def reference_actions(env, auct, br, obs):
    return {a: (auct.act(obs[a]) if a == "auctioneer" else br.act(obs[a])) for a in env.agents}


def random_actions(env, rng):
    acts = {}
    for a in env.agents:
        space = env.action_space(a)
        if isinstance(space, gym.spaces.Discrete):
            acts[a] = int(rng.integers(space.n))
        else:
            acts[a] = rng.uniform(0, 1, size=1).astype(np.float32)
    return acts


# ----------------------------------------------------------------------------- API battery
def test_parallel_api():
    parallel_api_test(storage_sharing_v0.parallel_env(**SMALL), num_cycles=60)


def test_parallel_api_paper_size_static_and_discrete():
    parallel_api_test(storage_sharing_v0.parallel_env(), num_cycles=30)
    parallel_api_test(storage_sharing_v0.parallel_env(time_varying=False, price_levels=11), num_cycles=20)


def test_parallel_seed():
    parallel_seed_test(functools.partial(storage_sharing_v0.parallel_env, **SMALL), num_cycles=50)


def test_aec_api():
    api_test(storage_sharing_v0.env(**SMALL, n_slots=5), num_cycles=30)


def test_max_cycles():
    max_cycles_test(storage_sharing_v0)
    env = storage_sharing_v0.parallel_env(n_slots=3)
    assert env.max_cycles == 6  # two steps (price, share) per slot
    env.max_cycles = 5
    assert env.n_slots == 3


def test_render():
    render_test(lambda render_mode=None: storage_sharing_v0.env(**SMALL, n_slots=3, render_mode=render_mode))


@pytest.mark.parametrize("kw", [{}, {"learner": "ru", "ru": 2}, {"price_levels": 9}])
def test_gymnasium_check_env(kw):
    env = gym.make("StorageSharing-v0", n_slots=6, **kw)
    check_env(env.unwrapped, skip_render_check=True)


def test_gym_make_without_prior_import():
    code = (
        "import gymnasium as gym; e = gym.make('prosumer_gym:StorageSharing-v0', n_slots=2);"
        "o, i = e.reset(seed=1); print(e.observation_space.contains(o))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# ----------------------------------------------------------------------------- determinism
def _rollout(seed: int, **kw):
    env = storage_sharing_v0.parallel_env(**kw)
    obs, infos = env.reset(seed=seed)
    rng = np.random.default_rng(99)
    traj = [(obs, infos)]
    while env.agents:
        traj.append(env.step(random_actions(env, rng)))
    return traj




def test_multi_step_determinism():
    t1, t2 = _rollout(7), _rollout(7)
    assert len(t1) == len(t2) == 49  # reset + 24 slots x 2 steps
    assert all(same(s1, s2) for s1, s2 in zip(t1, t2))
    t3 = _rollout(8)
    assert not same(t1[2][4], t3[2][4])  # another seed gives another market


def test_reset_without_seed_continues_stream():
    env = storage_sharing_v0.parallel_env(**SMALL)
    env.reset(seed=3)
    r1 = env.reservation_base.copy()
    env.reset()
    r2 = env.reservation_base.copy()
    other = storage_sharing_v0.parallel_env(**SMALL)
    other.reset(seed=3)
    np.testing.assert_array_equal(r1, other.reservation_base)
    assert not np.array_equal(r1, r2)


def test_gym_view_deterministic():
    def run():
        env = gym.make("StorageSharing-v0", n_slots=10)
        env.reset(seed=9)
        env.action_space.seed(9)
        return [env.step(env.action_space.sample())[:2] for _ in range(10)]

    a, b = run(), run()
    assert all(np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b))


# ----------------------------------------------------------------------------- determination rule
def hand_market(**kw) -> StorageMarket:
    # sorted supply: RU1 (r=20), RU0 (30), RU2 (40), RU3 (60), 10 kWh each -> S = 10, 20, 30, 40
    # sorted demand: SFC1 (c=65, 15 kWh), SFC0 (50, 10), SFC2 (35, 10) -> D = 15, 25, 35
    # the curves cross at q* = 25 kWh (RU2 at 40 > SFC2 at 35): marginal pair RU2 / SFC0
    base = dict(reservation=[30, 20, 40, 60], reluctance=[0.1] * 4, offer_kwh=[10] * 4, bid=[50, 65, 35],
                requirement_kwh=[10, 15, 10])
    base.update(kw)
    return StorageMarket(**base)


def test_determination_by_hand():
    mk = hand_market()
    det = determine(mk)
    assert det.open and det.intersection_kwh == 25.0
    assert det.marginal_ru == 2 and det.marginal_sfc == 0
    assert det.rus.tolist() == [1, 0] and det.sfcs.tolist() == [1]
    assert det.r_max == 40.0 and det.r_vickrey == 30.0 and det.window == (20.0, 40.0)
    assert det.requirement_kwh == 15.0 and det.bid_mean == 65.0
    assert determine(mk, window="vickrey").window == (30.0, 40.0)
    inc = determine(mk, include_marginal=True)
    assert inc.rus.tolist() == [1, 0, 2] and inc.sfcs.tolist() == [1, 0]
    assert inc.r_max == 50.0 and inc.window == (20.0, 50.0)  # min(next ask 60, marginal bid 50)


def test_se_by_hand():
    # traders r = (20, 30), beta = 0.1, b = 10: x = 5 (p - r) capped at 10; Q = 15, c = 65.
    # J = min(X, 15)(65 - p) peaks where RU0's supply brings X to Q: p* = 31, J* = 15 * 34 = 510.
    mk = hand_market()
    det, eq, cl = solve(mk)
    assert eq.price == pytest.approx(31.0) and eq.saving == pytest.approx(510.0)
    np.testing.assert_allclose(eq.offers_kwh, [5.0, 10.0, 0.0, 0.0])
    np.testing.assert_allclose(cl.ru_utility, [(31 - 30) * 5 - 0.1 * 25, (31 - 20) * 10 - 0.1 * 100, 0, 0])
    np.testing.assert_allclose(cl.sfc_kwh, [0, 15, 0])
    assert cl.burden_kwh.sum() == 0.0 and cl.budget_surplus == pytest.approx(0.0)


def test_no_intersection_and_other_closed_markets_are_no_trade():
    no_cross = hand_market(reservation=[60, 65, 62, 70], bid=[40, 50, 30])
    for mk, reason in [
        (no_cross, "no_intersection"),
        (hand_market(offer_kwh=[0, 0, 0, 0]), "no_supply"),
        (hand_market(requirement_kwh=[0, 0, 0]), "no_demand"),
        (hand_market(requirement_kwh=[10, 100, 10]), "marginal_only"),  # SFC1 alone exceeds all supply
    ]:
        det, eq, cl = solve(mk)
        assert not det.open and det.reason == reason
        assert eq.method == "no_trade" and cl.shared_kwh.sum() == 0 and cl.saving == 0
        assert algorithm1(mk, det).iterations == 0


def test_env_no_trade_outcome_is_documented_not_a_crash():
    scenario = dict(reservation=[60, 65, 62], bid=[30, 40])  # every ask above every bid
    env = storage_sharing_v0.parallel_env(n_rus=3, n_sfcs=2, n_slots=3, scenario=scenario, price_range=(20, 70))
    obs, infos = env.reset(seed=0)
    assert infos["auctioneer"]["market"]["reason"] == "no_intersection"
    assert infos["auctioneer"]["market"]["window"] is None and infos["auctioneer"]["market"]["se"]["price"] is None
    space = env.observation_space("auctioneer")
    rng = np.random.default_rng(0)
    while env.agents:
        assert obs["auctioneer"][space.index("market_open")] == 0.0
        obs, rewards, _, _, infos = env.step(random_actions(env, rng))
        assert set(rewards.values()) == {0.0}
        assert infos["ru_0"]["market"]["open"] is False


# ----------------------------------------------------------------------------- SE: closed form, Algorithm 1, grid
def interior_market() -> StorageMarket:
    # traders RU0-2 all interior at the closed-form price, SFCs 0-1 unsaturated; RU3 / SFC2 marginal
    return StorageMarket([20, 22, 24, 50], [0.5, 0.4, 0.6, 0.5], [100, 100, 100, 10], [62, 61, 60],
                         [100, 150, 500])


def test_closed_form_equals_algorithm1_equals_grid_interior():
    mk = interior_market()
    det = determine(mk)
    assert det.rus.tolist() == [0, 1, 2] and det.window == (20.0, 50.0)
    eq = equilibrium(mk, det)
    assert eq.method == "closed_form"
    r, beta = mk.reservation[:3], mk.reluctance[:3]
    c_w = (62 * 100 + 61 * 150) / 250
    expected = 0.5 * (c_w + np.sum(r / beta) / np.sum(1 / beta))
    assert closed_form_price(r, beta, c_w) == pytest.approx(expected, abs=1e-12)
    assert eq.price == pytest.approx(expected, abs=1e-12)
    grid = np.linspace(*det.window, 300_001)
    assert grid[np.argmax(saving_curve(mk, det, grid))] == pytest.approx(expected, abs=2e-4)
    alg = algorithm1(mk, det)
    assert alg.price == pytest.approx(expected, abs=1e-6)
    assert alg.saving == pytest.approx(eq.saving, rel=1e-9)
    # the closed form needs every RU interior: it is not the SE once one saturates
    assert se_price(r, beta, np.array([100, 100, 5.0]), c_w, 250.0, det.window)[1] == "search"


@pytest.mark.parametrize("window", ["floor", "vickrey"])
def test_se_search_equals_algorithm1_equals_grid_random_markets(window):
    n_open = 0
    for mk in markets(11, 120):
        det = determine(mk, window=window)
        if not det.open:
            continue
        n_open += 1
        eq = equilibrium(mk, det)
        grid = np.linspace(*det.window, 4001)
        J = saving_curve(mk, det, grid)
        scale = max(1.0, eq.saving)
        assert J.max() <= eq.saving + 1e-9 * scale  # nothing on the grid beats the SE
        assert float(saving_curve(mk, det, eq.price)) == pytest.approx(eq.saving, rel=1e-12, abs=1e-9)
        alg = algorithm1(mk, det)
        assert alg.saving >= eq.saving - 2e-9 * scale
        assert alg.price == pytest.approx(eq.price, abs=1e-5)
        assert np.all(np.diff(alg.best_savings) >= 0) and alg.iterations < 80
        np.testing.assert_allclose(alg.offers_kwh, eq.offers_kwh, atol=1e-4)
    assert n_open > 100


def test_algorithm1_convergence_shape():
    mk = markets(3, 1)[0]
    det = determine(mk)
    alg = algorithm1(mk, det, n_sweep=8)
    eq = equilibrium(mk, det)
    assert alg.savings[0] == pytest.approx(0.0)  # starts at the window's low end: nobody shares yet
    sweep = alg.offers_trace[:9]  # the upward sweep: RUs with a low reservation price share first
    entered = [int(np.argmax(sweep[:, i] > 0)) for i in det.rus if sweep[-1, i] > 0]
    assert entered == sorted(entered) and len(set(entered)) > 1
    first_close = int(np.argmax(alg.best_savings >= eq.saving * (1 - 1e-3)))
    assert first_close < 25 and alg.best_savings[-1] == pytest.approx(eq.saving, rel=1e-8)


# ----------------------------------------------------------------------------- allocation rule
def test_burden_rules():
    x = np.array([1.0, 4.0, 6.0, 0.0])
    d = burden_split(x, 6.0, "equal")
    np.testing.assert_allclose(d, [1.0, 2.5, 2.5, 0.0])  # RU0 capped at its offer, the rest re-split
    d = burden_split(x, 3.3, "proportional_share")
    np.testing.assert_allclose(d, 3.3 * x / x.sum())
    r = np.array([20.0, 40.0, 60.0, 30.0])
    d = burden_split(x, 6.0, "proportional_reservation", r)
    assert d.sum() == pytest.approx(6.0) and d[3] == 0.0 and np.all(d <= x + 1e-12)
    np.testing.assert_allclose(d[1:3] / r[1:3], d[1] / r[1])  # uncapped RUs in proportion to r
    with pytest.raises(ValueError, match="burden"):
        burden_split(x, 1.0, "random")


@given(
    total=st.floats(0, 50),
    caps=st.lists(st.floats(0, 20), min_size=1, max_size=8),
    seed=st.integers(0, 10_000),
)
@settings(max_examples=150, deadline=None)
def test_capped_weighted_split_properties(total, caps, seed):
    c = np.array(caps)
    w = np.random.default_rng(seed).uniform(0, 3, c.size) * (np.random.default_rng(seed + 1).random(c.size) > 0.2)
    s = capped_weighted_split(total, w, c)
    assert np.all(s >= -1e-12) and np.all(s <= c + 1e-9)
    assert s.sum() == pytest.approx(min(total, c.sum()), abs=1e-7)
    free = (s < c - 1e-9) & (w > 0)
    if free.sum() >= 2:  # uncapped positive-weight claimants are in proportion to their weights
        ratio = s[free] / w[free]
        assert np.ptp(ratio) <= 1e-7 * max(1.0, ratio.max())


def test_oversupply_burden_in_clearing():
    mk = hand_market()
    det = determine(mk)
    cl = clear(mk, det, 35.0, np.array([10.0, 10.0, 0.0, 0.0]))  # 20 kWh offered for 15 required
    assert cl.burden_kwh.sum() == pytest.approx(5.0)
    np.testing.assert_allclose(cl.burden_kwh, [2.5, 2.5, 0, 0])
    np.testing.assert_allclose(cl.shared_kwh, [7.5, 7.5, 0, 0])
    assert cl.sfc_kwh.sum() == pytest.approx(15.0) and cl.budget_surplus == pytest.approx(0.0)
    # an offer at a price not above the reservation price is withdrawn
    cl = clear(mk, det, 25.0, np.array([10.0, 10.0, 10.0, 10.0]))
    np.testing.assert_allclose(cl.offers_kwh, [0, 10, 0, 0])


# ----------------------------------------------------------------------------- auction properties
@pytest.mark.parametrize("window", ["floor", "vickrey"])
@pytest.mark.parametrize("burden", ["equal", "proportional_reservation", "proportional_share"])
def test_individual_rationality(window, burden):
    rng = np.random.default_rng(5)
    for mk in markets(21, 60):
        det, eq, cl = solve(mk, window=window, burden=burden)
        if not det.open:
            continue
        assert np.all(cl.ru_utility[det.rus] >= -1e-9)  # reservation utility = 0 (staying out)
        assert np.all(cl.sfc_saving[det.sfcs] >= -1e-9)
        # any admissible price with best-responding RUs (oversupply and burden included)
        p = rng.uniform(*det.window)
        x = np.zeros(mk.n_rus)
        x[det.rus] = ru_best_response(p, mk.reservation[det.rus], mk.reluctance[det.rus], mk.offer_kwh[det.rus])
        cl = clear(mk, det, p, x, burden)
        assert np.all(cl.ru_utility[det.rus] >= -1e-9) and np.all(cl.sfc_saving >= -1e-9)


def test_incentive_compatibility_deviation_search():
    """No RU gains by misreporting its reservation price (equal burden, default window)."""
    worst = 0.0
    checked = 0
    for mk in markets(31, 40):
        for i in range(mk.n_rus):
            gain, _ = deviation_gain(mk, i)  # a price grid + every rank/intersection threshold
            worst = max(worst, gain)
            checked += 1
    assert checked == 320 and worst <= 1e-9


def test_deviation_search_finds_lies_where_the_auction_is_not_truthful():
    # the search has teeth: the spec's literal window (low end = the top trader's own report)
    # and keeping the marginal pair are both manipulable
    found = {"vickrey": 0, "include_marginal": 0}
    for mk in markets(31, 16):
        for i in range(mk.n_rus):
            found["vickrey"] += deviation_gain(mk, i, window="vickrey")[0] > 1e-6
            found["include_marginal"] += deviation_gain(mk, i, include_marginal=True)[0] > 1e-6
    assert found["vickrey"] >= 5 and found["include_marginal"] >= 1


@pytest.mark.parametrize("burden", ["equal", "proportional_reservation", "proportional_share"])
def test_budget_balance_env_random_play(burden):
    env = storage_sharing_v0.parallel_env(burden=burden)
    env.reset(seed=4)
    rng = np.random.default_rng(1)
    n_burden = 0
    while env.agents:
        acts = random_actions(env, rng)
        acts.update({a: np.ones(1, np.float32) for a in env.agents if a != "auctioneer" and rng.random() < 0.7})
        _, rewards, _, _, infos = env.step(acts)
        m = infos["auctioneer"]["market"]
        if m["phase"] != "share" or not m["open"]:
            continue
        assert m["budget_surplus"] == pytest.approx(0.0, abs=1e-9)
        assert m["sfc_payments"] == pytest.approx(m["price"] * sum(m["shared_kwh"]))
        assert sum(m["sfc_kwh"]) == pytest.approx(sum(m["shared_kwh"]))
        assert sum(m["sfc_kwh"]) <= m["requirement_kwh"] + 1e-9
        assert rewards["auctioneer"] == pytest.approx(sum(m["sfc_savings"]) / len(m["participating_sfcs"]))
        n_burden += sum(m["burden_kwh"]) > 0
    assert n_burden > 0  # generous RU offers do oversupply


# ----------------------------------------------------------------------------- the paper's shapes
def test_reluctance_shape():
    """Lower reluctance -> more storage shared, higher SFC saving (Table 1's direction)."""
    shared, saving = [], []
    for beta in (0.001, 0.01, 0.1, 1.0):
        outs = [solve(mk)[2] for mk in markets(41, 40, beta=beta)]
        shared.append(np.mean([o.shared_kwh.sum() for o in outs]))
        saving.append(np.mean([o.saving for o in outs]))
    assert np.all(np.diff(shared) < 0) and np.all(np.diff(saving) < 0)


def _mean_ru_utility(q_scale: float, beta: float, window: str) -> float:
    return float(np.mean([solve(mk, window=window)[2].ru_utility.sum() / mk.n_rus
                          for mk in markets(51, 120, beta=beta, q_scale=q_scale)]))


def test_utility_vs_requirement_shape():
    """Average RU utility rises with the SFCs' requirement, then saturates; at low demand the
    high-reluctance RUs do better; with the spec's Vickrey window the low-reluctance RUs do
    better at high demand (the crossing)."""
    scales = (0.2, 0.7, 1.5, 3.0, 4.0)
    lo = [_mean_ru_utility(s, 0.01, "floor") for s in scales]
    hi = [_mean_ru_utility(s, 0.1, "floor") for s in scales]
    assert np.all(np.diff(lo) > 0) and np.all(np.diff(hi) > 0)
    assert lo[-1] - lo[-2] < 0.5 * (lo[2] - lo[1])  # saturation
    assert hi[0] > lo[0] and hi[1] > lo[1]
    v_lo = [_mean_ru_utility(s, 0.01, "vickrey") for s in (0.4, 2.0)]
    v_hi = [_mean_ru_utility(s, 0.1, "vickrey") for s in (0.4, 2.0)]
    assert v_hi[0] > v_lo[0] and v_lo[1] > v_hi[1]


def test_proposed_beats_ed_and_fit():
    res = [compare_schemes(mk, determine(mk)) for mk in markets(61, 60)]
    prop = np.array([r["proposed"] for r in res])
    ed = np.array([r["ed"] for r in res])
    fit = np.array([r["fit"] for r in res])
    assert np.all(prop >= ed - 1e-9) and prop.mean() > ed.mean()
    assert np.all(prop >= fit - 1e-9) and prop.mean() > fit.mean()
    mk = hand_market()
    det = determine(mk)
    ed_cl = ed_clearing(mk, det, 31.0)
    np.testing.assert_allclose(ed_cl.offers_kwh, [5.0, 7.5, 0, 0])  # min(Q/K = 7.5, x*)
    np.testing.assert_allclose(fit_utilities(mk, np.array([5.0, 10, 0, 0])),
                               [(DEFAULT_FIT_PRICE - 30) * 5 - 0.1 * 25, (DEFAULT_FIT_PRICE - 20) * 10 - 10, 0, 0])


def test_time_varying_update_and_four_slot_example():
    tr = AvailabilityTracker(np.array([10.0, 20.0]), lease_slots=None, burden_aversion=0.0)
    tr.update(np.array([4.0, 20.0]), np.array([1.0, 0.0]))
    np.testing.assert_allclose(tr.available_kwh, [6.0, 0.0])  # paper: the burden stays available
    tr.update(np.array([6.0, 0.0]), np.array([0.0, 0.0]))
    np.testing.assert_allclose(tr.available_kwh, [0.0, 0.0])  # all shared: nothing left
    tr = AvailabilityTracker(np.array([10.0, 20.0]), lease_slots=1, burden_aversion=1.0)
    tr.update(np.array([4.0, 5.0]), np.array([2.0, 0.0]))
    np.testing.assert_allclose(tr.available_kwh, [4.0, 15.0])
    tr.update(np.array([0.0, 0.0]), np.array([0.0, 0.0]))
    np.testing.assert_allclose(tr.available_kwh, [10.0, 20.0])  # the lease is over

    # the paper's 4-slot example: 5 RUs, permanent sharing, time-of-use prices
    scen = dict(reservation=[22, 26, 30, 34, 38], reluctance=[0.01] * 5, max_share_kwh=[10, 20, 30, 40, 50],
                bid=[66, 64, 62], requirement_kwh=[[12, 12, 30], [10, 10, 30], [20, 25, 40], [30, 30, 60]])
    env = storage_sharing_v0.parallel_env(n_rus=5, n_sfcs=3, n_slots=4, scenario=scen, lease_slots=None,
                                          burden_aversion=0.0, tou_profile=(0.9, 1.0, 1.1, 1.2))
    auct, br = SEAuctioneer.from_env(env), BestResponseRU.from_env(env)
    obs, infos = env.reset(seed=0)
    shared_total = np.zeros(5)
    while env.agents:
        obs, _, _, _, infos = env.step(reference_actions(env, auct, br, obs))
        m = infos["auctioneer"]["market"]
        if m["phase"] == "share":
            shared_total += np.array(m["shared_kwh"])
            if env.agents:
                np.testing.assert_allclose(env.current_slot.market.offer_kwh,
                                           np.array(scen["max_share_kwh"]) - shared_total, atol=1e-9)
                assert env.current_slot.market.reservation[0] == pytest.approx(
                    22 * (0.9, 1.0, 1.1, 1.2)[m["slot"] + 1])
    assert shared_total[0] > 0 and np.all(shared_total <= np.array(scen["max_share_kwh"]) + 1e-9)


def test_reproduction_script_quick_run(tmp_path):
    from prosumer_gym.eval.reproduce_storage_sharing import main

    res = main(["--out", str(tmp_path), "--quick"])
    names = {"convergence.png", "reluctance.png", "utility_vs_requirement.png", "schemes.png", "time_varying.png",
             "results.json"}
    assert names <= {p.name for p in tmp_path.iterdir()}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic writes left no temporaries
    props = res["auction_properties"]["default (floor window, marginal pair excluded, equal burden)"]
    assert props["ic_max_gain_cents"] <= 1e-9 and props["ir_min_participant_utility_cents"] >= -1e-9
    ex = res["time_varying_example"]["marginal_excluded"]
    np.testing.assert_allclose(ex[0]["shared_kwh"], [10, 20, 0, 0, 0], atol=1e-4)  # slot 1: RU1, RU2 share all
    np.testing.assert_allclose(ex[1]["shared_kwh"], [0, 0, 30, 0, 0], atol=1e-4)  # slot 2: only RU3


# ----------------------------------------------------------------------------- env semantics
def test_reference_policies_play_the_se():
    env = storage_sharing_v0.parallel_env()
    auct, br = SEAuctioneer.from_env(env), BestResponseRU.from_env(env)
    obs, _ = env.reset(seed=2)
    n_share = 0
    while env.agents:
        obs, rewards, _, _, infos = env.step(reference_actions(env, auct, br, obs))
        m = infos["auctioneer"]["market"]
        if m["phase"] != "share" or not m["open"]:
            continue
        n_share += 1
        scale = max(1.0, m["se"]["saving"])
        assert m["price"] == pytest.approx(m["se"]["price"], abs=1e-4)
        assert rewards["auctioneer"] == pytest.approx(m["se"]["saving"], abs=1e-5 * scale)
        assert max(m["regret"].values()) <= 1e-5 * scale
        np.testing.assert_allclose(m["ru_utilities"], m["se"]["ru_utilities"], atol=1e-3)
    assert n_share >= 12


def test_random_play_has_regret_and_ed_policy_earns_less():
    env = storage_sharing_v0.parallel_env()
    auct, br = SEAuctioneer.from_env(env), BestResponseRU.from_env(env)
    ed = EqualDistributionRU.from_env(env)
    rng = np.random.default_rng(0)
    totals = {}
    for name in ("random", "br", "ed"):
        obs, _ = env.reset(seed=5)
        total_ru, exploit = 0.0, 0.0
        while env.agents:
            acts = random_actions(env, rng)
            if name != "random":
                pol = br if name == "br" else ed
                acts = {a: auct.act(obs[a]) if a == "auctioneer" else pol.act(obs[a]) for a in env.agents}
            obs, rewards, _, _, infos = env.step(acts)
            total_ru += sum(v for a, v in rewards.items() if a != "auctioneer")
            exploit += infos["auctioneer"]["market"].get("exploitability", 0.0)
        totals[name] = (total_ru, exploit)
    assert totals["random"][1] > 1.0 and totals["br"][1] < 1e-2
    assert totals["ed"][0] <= totals["br"][0] + 1e-6


def test_actions_map_to_price_and_offers():
    env = storage_sharing_v0.parallel_env(time_varying=False)
    obs, infos = env.reset(seed=1)
    lo, hi = infos["auctioneer"]["market"]["window"]
    acts = {a: np.array([0.25], dtype=np.float32) for a in env.agents}
    obs, rewards, _, _, infos = env.step(acts)
    p = infos["auctioneer"]["market"]["price"]
    assert p == pytest.approx(lo + 0.25 * (hi - lo), rel=1e-6)
    assert set(rewards.values()) == {0.0}  # the price step pays nothing
    space = env.observation_space("ru_0")
    assert obs["ru_0"][space.index("phase")] == 1.0
    assert env.obs_scales.price(obs["ru_0"][space.index("price_announced")]) == pytest.approx(p, abs=1e-4)
    obs, rewards, _, _, infos = env.step({a: np.array([0.5], dtype=np.float32) for a in env.agents})
    m = infos["auctioneer"]["market"]
    rec = env.last_slot
    for i in range(env.n_rus):
        part = i in m["participating_rus"] and rec.market.reservation[i] < p
        assert infos[f"ru_{i}"]["offer_kwh"] == pytest.approx(0.5 * rec.market.offer_kwh[i] if part else 0.0)
        assert rewards[f"ru_{i}"] == pytest.approx(
            ru_utility(m["shared_kwh"][i], p, rec.market.reservation[i], rec.market.reluctance[i]))
    # static market: the same slot again
    *_, infos2 = env.step(acts)
    assert infos2["auctioneer"]["market"]["window"] == (lo, hi)


def test_discrete_price_levels():
    env = storage_sharing_v0.parallel_env(price_levels=5, time_varying=False)
    _, infos = env.reset(seed=1)
    lo, hi = infos["auctioneer"]["market"]["window"]
    acts = {a: (3 if a == "auctioneer" else np.zeros(1, np.float32)) for a in env.agents}
    _, _, _, _, infos = env.step(acts)
    assert infos["auctioneer"]["market"]["price"] == pytest.approx(lo + 0.75 * (hi - lo))
    obs, _ = env.reset(seed=1)
    act = SEAuctioneer.from_env(env).act(obs["auctioneer"])
    assert isinstance(act, int) and 0 <= act < 5


def test_observations_in_space_over_an_episode():
    env = storage_sharing_v0.parallel_env()
    obs, _ = env.reset(seed=6)
    rng = np.random.default_rng(2)
    while env.agents:
        for a, o in obs.items():
            assert env.observation_space(a).contains(o), (a, o)
        obs, *_ = env.step(random_actions(env, rng))


def test_gym_ru_learner_view():
    env = gym.make("StorageSharing-v0", learner="ru", ru=1, n_slots=4).unwrapped
    obs, info = env.reset(seed=3)
    space = env.observation_space
    assert obs[space.index("phase")] == 1.0  # the SE price is already announced
    br = BestResponseRU.from_env(env)
    steps = 0
    done = False
    while not done:
        obs, r, term, trunc, info = env.step(br.act(obs))
        done = term or trunc
        steps += 1
        assert info["regret"] <= 1e-6 and r == pytest.approx(info["utility"])
    assert steps == 4


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(n_rus=0), "n_rus"),
        (dict(n_sfcs=0), "n_sfcs"),
        (dict(battery_kwh=-10.0), "battery_kwh"),
        (dict(households_per_ru=0), "households_per_ru"),
        (dict(requirement_range=(-5.0, 10.0)), "requirement_range"),
        (dict(share_fraction_range=(0.5, 1.5)), "share_fraction_range"),
        (dict(price_range=(70.0, 20.0)), "price_range"),
        (dict(reluctance_range=(0.0, 0.1)), "reluctance_range"),
        (dict(window="auction"), "window"),
        (dict(burden="random"), "burden"),
        (dict(price_levels=1), "price_levels"),
        (dict(max_cycles=0), "max_cycles"),
        (dict(lease_slots=-1), "lease_slots"),
        (dict(burden_aversion=-1.0), "burden_aversion"),
        (dict(tou_profile=()), "tou_profile"),
        (dict(render_mode="ansi"), "render_mode"),
        (dict(n_rus=2, scenario={"max_share_kwh": [10.0, -5.0]}), "max_share_kwh"),
        (dict(n_rus=2, scenario={"reservation": [10.0, 30.0]}), "reservation"),
        (dict(n_rus=2, scenario={"reluctance": [0.1]}), "reluctance"),
        (dict(scenario={"capacity": [1.0]}), "capacity"),
    ],
)
def test_bad_configuration_raises(kwargs, field):
    with pytest.raises(ValueError, match=field):
        storage_sharing_v0.parallel_env(**kwargs)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(offer_kwh=[10, -1, 10, 10]), "offer_kwh"),
        (dict(requirement_kwh=[10, -15, 10]), "requirement_kwh"),
        (dict(reluctance=[0.1, 0.0, 0.1, 0.1]), "reluctance"),
        (dict(reservation=[30, 20, 40]), "one entry per RU"),
        (dict(reservation=[], reluctance=[], offer_kwh=[]), "empty market"),
        (dict(bid=[], requirement_kwh=[]), "empty market"),
        (dict(bid=[50, np.nan, 35]), "bid"),
        (dict(bid=[50, 95, 35]), "price band"),
    ],
)
def test_bad_market_raises(kwargs, field):
    with pytest.raises(ValueError, match=field):
        hand_market(**kwargs)


@pytest.mark.parametrize("bad", [np.nan, 1.5, -0.1, "half", None, True, np.array([0.1, 0.2]), [[0.5]],
                                 np.array([True]), np.array([np.inf], dtype=np.float32)])
def test_bad_actions_raise(bad):
    env = storage_sharing_v0.parallel_env(**SMALL)
    env.reset(seed=0)
    for agent in ("auctioneer", "ru_1"):
        acts = {a: np.array([0.5], dtype=np.float32) for a in env.agents}
        acts[agent] = bad
        with pytest.raises(ValueError, match=agent):
            env.step(acts)


def test_unknown_missing_agents_and_finished_episode():
    env = storage_sharing_v0.parallel_env(**SMALL, n_slots=1)
    env.reset(seed=0)
    acts = {a: np.array([0.5], dtype=np.float32) for a in env.agents}
    with pytest.raises(ValueError, match="unknown"):
        env.step({**acts, "sfc_0": np.zeros(1)})
    with pytest.raises(ValueError, match="missing"):
        env.step({"auctioneer": np.zeros(1)})
    env.step(acts)
    env.step(acts)
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step(acts)


def test_gym_bad_inputs():
    with pytest.raises(ValueError, match="learner"):
        gym.make("StorageSharing-v0", learner="sfc")
    with pytest.raises(ValueError, match="ru"):
        gym.make("StorageSharing-v0", learner="ru", ru=8)
    with pytest.raises(ValueError, match="max_cycles"):
        gym.make("StorageSharing-v0", max_cycles=5)
    env = gym.make("StorageSharing-v0", n_slots=2).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="auctioneer"):
        env.step(np.array([2.0], dtype=np.float32))
