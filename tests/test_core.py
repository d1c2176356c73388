"""Shared core: prospect theory, seeding, space validation."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from prosumer_gym.core.prospect import PTParams, pt_derivative, pt_value, sample_pt_params
from prosumer_gym.core.seeding import check_seed, make_rng, spawn
from prosumer_gym.core.spaces import NamedBox, check_box, check_discrete, check_multidiscrete


def test_pt_value_branches_eq_2_1():
    k_pos, k_neg, zp, zn = 2.25, 2.5, 0.88, 0.7
    assert pt_value(4.0, k_pos, k_neg, zp, zn) == pytest.approx(2.25 * 4.0**0.88)
    assert pt_value(-4.0, k_pos, k_neg, zp, zn) == pytest.approx(-2.5 * 4.0**0.7)
    assert pt_value(0.0, k_pos, k_neg, zp, zn) == 0.0


def test_pt_value_eq_5_1_buyer_gain_and_loss():
    # buyer with reference cost rho_j w_j = 0.08 * 10 = $0.80
    ref = 0.8
    paid_less, paid_more = 0.6, 1.2
    v = pt_value(np.array([ref - paid_less, ref - paid_more]), 2.3, 2.4, 0.7, 0.8)
    assert v[0] == pytest.approx(2.3 * 0.2**0.7)
    assert v[1] == pytest.approx(-2.4 * 0.4**0.8)


def test_pt_value_vectorised_and_neutral_identity():
    g = np.linspace(-3, 3, 13)
    p = PTParams.neutral(13)
    np.testing.assert_allclose(pt_value(g, p.k_pos, p.k_neg, p.zeta_pos, p.zeta_neg), g)
    per_person = pt_value(g, np.full(13, 2.0), np.full(13, 3.0), np.full(13, 0.5), np.full(13, 0.6))
    assert per_person.shape == (13,)
    # broadcasting over a (days, people) grid
    grid = pt_value(np.ones((4, 13)), np.full(13, 2.0), 1.0, 1.0, 1.0)
    assert grid.shape == (4, 13) and np.allclose(grid, 2.0)


def test_pt_s_shape():
    g_pos = np.linspace(0.1, 5, 50)
    g_neg = -g_pos[::-1]
    vp = pt_value(g_pos, 2.2, 2.4, 0.7, 0.6)
    vn = pt_value(g_neg, 2.2, 2.4, 0.7, 0.6)
    assert np.all(np.diff(vp, 2) < 0)  # concave for gains
    assert np.all(np.diff(vn, 2) > 0)  # convex for losses
    assert np.all(np.diff(np.concatenate([vn, vp])) > 0)  # increasing
    assert -pt_value(-1.0, 2.25, 2.25, 0.88, 0.88) > pt_value(1.0, 2.25, 2.25, 0.88, 0.88) - 1e-12


def test_pt_derivative_matches_finite_difference_and_is_finite_at_zero():
    g = np.array([-2.0, -0.3, 0.4, 1.7])
    h = 1e-6
    num = (pt_value(g + h, 2.1, 2.6, 0.6, 0.52) - pt_value(g - h, 2.1, 2.6, 0.6, 0.52)) / (2 * h)
    np.testing.assert_allclose(pt_derivative(g, 2.1, 2.6, 0.6, 0.52), num, rtol=1e-5)
    assert np.isfinite(pt_derivative(0.0, 2.1, 2.6, 0.6, 0.52))


def test_sample_pt_params_ranges_and_seed():
    p = sample_pt_params(np.random.default_rng(0), 1000)
    assert np.all((p.k_pos >= 2.10) & (p.k_pos <= 2.61)) and np.all((p.k_neg >= 2.10) & (p.k_neg <= 2.61))
    assert np.all((p.zeta_pos >= 0.60) & (p.zeta_pos <= 0.88))
    assert np.all((p.zeta_neg >= 0.52) & (p.zeta_neg <= 1.0))
    q = sample_pt_params(np.random.default_rng(0), 1000)
    np.testing.assert_array_equal(p.k_neg, q.k_neg)
    assert len(p.take(np.arange(5))) == 5
    with pytest.raises(ValueError, match="k_range"):
        sample_pt_params(np.random.default_rng(0), 3, k_range=(2.6, 2.1))
    with pytest.raises(ValueError, match="zeta_neg"):
        PTParams(np.ones(2), np.ones(2), np.ones(2), np.array([1.0, np.nan]))


def test_seeding():
    assert check_seed(None) is None and check_seed(np.int64(3)) == 3
    for bad in (-1, 1.5, "1", True):
        with pytest.raises(ValueError, match="seed"):
            check_seed(bad)
    a = [g.random() for g in spawn(make_rng(5), 3)]
    b = [g.random() for g in spawn(make_rng(5), 3)]
    assert a == b and len(set(a)) == 3


def test_space_checks():
    assert check_discrete(np.int64(2), 3, "a") == 2
    assert check_discrete(np.array(1), 3, "a") == 1
    assert check_discrete(2.0, 3, "a") == 2
    for bad in (3, -1, 0.5, np.nan, "1", None, True, np.array([1, 2])):
        with pytest.raises(ValueError, match="field_x"):
            check_discrete(bad, 3, "field_x")
    nvec = np.array([3, 3])
    np.testing.assert_array_equal(check_multidiscrete([0, 2], nvec, "m"), [0, 2])
    for bad in ([0, 3], [0], [0.5, 1], ["a", "b"]):
        with pytest.raises(ValueError, match="m"):
            check_multidiscrete(bad, nvec, "m")
    box = spaces.Box(0, 1, shape=(2,))
    np.testing.assert_array_equal(check_box([0.2, 1.0], box, "b"), [0.2, 1.0])
    for bad in ([0.2, 1.1], [np.nan, 0.1], [0.1], "up", ["a", "b"]):
        with pytest.raises(ValueError, match="b"):
            check_box(bad, box, "b")
    nb = NamedBox(["x", "y"], 0, [1, 2])
    assert nb.index("y") == 1 and nb.contains(np.array([0.5, 1.5], dtype=np.float32))


def test_reseed_semantics():
    from prosumer_gym.core.seeding import reseed

    g = reseed(None, 5)
    assert reseed(g, None) is g  # no seed: the stream continues
    assert reseed(g, 5) is not g and reseed(None, 5).random() == reseed(None, 5).random()
    assert isinstance(reseed(None, None), np.random.Generator)
    with pytest.raises(ValueError, match="seed"):
        reseed(g, -2)


def test_complex_and_object_action_arrays_are_rejected_by_every_view():
    """Issue 19 item 2: a complex (or object) array used to pass with its imaginary part dropped."""
    import gymnasium as gym

    import prosumer_gym

    for env_id in prosumer_gym.ENV_IDS:
        env = gym.make(env_id)
        env.reset(seed=0)
        a = np.asarray(env.action_space.sample())
        for bad in (a.astype(np.complex128) + 1j, a.astype(object)):
            with pytest.raises(ValueError):
                env.step(bad)
        env.step(a)  # still usable after the rejected actions
        env.close()
