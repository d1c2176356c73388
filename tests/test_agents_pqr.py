"""PQR (Alg. 5): the PT-transformed Q-update, exploration schedule, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from prosumer_gym.agents.pqr import PQRAgent
from prosumer_gym.core.prospect import pt_value


def _obs(idx, n=61):
    return np.array([idx / (n - 1), 0, 0, 0, 0, 1], dtype=np.float32)


def test_update_is_eq_5_4_with_pt_td_error():
    ag = PQRAgent(61, 3, k_pos=2.3, k_neg=2.5, zeta_pos=0.7, zeta_neg=0.8, lr=0.1, gamma=0.5, seed=0)
    ag.q[11] = [0.0, 4.0, 1.0]
    td = ag.update(_obs(10), 2, 1.5, _obs(11))
    assert td == pytest.approx(1.5 + 0.5 * 4.0 - 0.0)
    assert ag.q[10, 2] == pytest.approx(0.1 * 2.3 * 3.5**0.7)
    ag.q[12, 0] = 10.0
    td2 = ag.update(_obs(12), 0, 0.0, _obs(12))  # negative TD error: loss branch
    assert td2 == pytest.approx(0.5 * 10.0 - 10.0)
    assert ag.q[12, 0] == pytest.approx(10.0 + 0.1 * float(pt_value(-5.0, 2.3, 2.5, 0.7, 0.8)))
    assert ag.q[12, 0] < 10.0


def test_neutral_pt_is_plain_q_learning():
    ag = PQRAgent(5, 3, lr=0.2, gamma=0.9, seed=0)
    ag.update(_obs(2, 5), 1, 3.0, _obs(3, 5))
    assert ag.q[2, 1] == pytest.approx(0.2 * 3.0)


def test_epsilon_schedule_and_greedy():
    ag = PQRAgent(61, 3, seed=0)
    for _ in range(365):
        ag.end_day()
    assert ag.eps == pytest.approx(0.05)
    ag.q[30] = [0.0, 0.0, 1.0]
    assert all(ag.act(_obs(30), explore=False) == 2 for _ in range(10))
    ag.eps = 1.0
    acts = {ag.act(_obs(30)) for _ in range(200)}
    assert acts == {0, 1, 2}


def test_state_roundtrip_and_determinism(tmp_path):
    a = PQRAgent(61, 3, seed=4)
    b = PQRAgent(61, 3, seed=4)
    for i in range(50):
        o, o2 = _obs(i % 61), _obs((i + 1) % 61)
        x, y = a.act(o), b.act(o)
        assert x == y
        a.update(o, x, 1.0, o2)
        b.update(o, y, 1.0, o2)
    a.save(tmp_path / "pqr.npz")
    c = PQRAgent(61, 3, seed=0)
    c.load(tmp_path / "pqr.npz")
    np.testing.assert_array_equal(c.q, a.q)
    assert c.eps == a.eps
    with pytest.raises(ValueError, match="q must have shape"):
        PQRAgent(10, 3).load(tmp_path / "pqr.npz")


@pytest.mark.parametrize("kw", [dict(lr=0.0), dict(gamma=1.0), dict(k_pos=-1.0), dict(eps_min=0.5, eps_start=0.1)])
def test_bad_hyperparameters(kw):
    with pytest.raises(ValueError):
        PQRAgent(61, 3, **kw)


def test_terminated_transition_does_not_bootstrap():
    ag = PQRAgent(5, 3, lr=0.5, gamma=0.9, seed=0)
    ag.q[3] = [7.0, 7.0, 7.0]
    ag.update(_obs(2, 5), 1, 1.0, _obs(3, 5), terminated=True)
    assert ag.q[2, 1] == pytest.approx(0.5 * 1.0)
    assert ag.last_loss == pytest.approx(1.0) and ag.n_updates == 1


def test_save_load_restores_rng_so_runs_continue_identically(tmp_path):
    a = PQRAgent(61, 3, k_pos=2.2, k_neg=2.4, zeta_pos=0.7, zeta_neg=0.9, lr=0.05, seed=3)
    for i in range(30):
        o = _obs(i % 61)
        a.update(o, a.act(o), 0.3, _obs((i + 1) % 61))
        a.end_day()
    a.save(tmp_path / "a.npz")
    b = PQRAgent(61, 3, k_pos=2.2, k_neg=2.4, zeta_pos=0.7, zeta_neg=0.9, lr=0.05, seed=123)
    b.load(tmp_path / "a.npz")
    seq_a = [a.act(_obs(i)) for i in range(40)]
    seq_b = [b.act(_obs(i)) for i in range(40)]
    assert seq_a == seq_b and b.n_updates == a.n_updates == 30
    # the first version's files (q and eps only) still load
    np.savez(tmp_path / "old.npz", q=a.q, eps=0.5)
    c = PQRAgent(61, 3)
    c.load(tmp_path / "old.npz")
    assert c.eps == 0.5 and np.array_equal(c.q, a.q)


def test_learns_the_revenue_maximising_move_in_a_monopoly_chain():
    """Sold energy fixed, reward = new price: the greedy policy must raise the price."""
    n = 11
    ag = PQRAgent(n, 3, k_pos=2.3, k_neg=2.5, zeta_pos=0.7, zeta_neg=0.8, lr=0.2, gamma=0.8, eps_decay=0.99, seed=0)
    for _ in range(60):
        s = 5
        for _ in range(20):
            a = ag.act(_obs(s, n))
            s2 = int(np.clip(s + a - 1, 0, n - 1))
            ag.update(_obs(s, n), a, s2 / (n - 1), _obs(s2, n))
            s = s2
        ag.end_day()
    greedy = [ag.act(_obs(s, n), explore=False) for s in range(n - 1)]
    assert all(g == 2 for g in greedy[3:]), greedy
