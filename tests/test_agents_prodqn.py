"""ProDQN (Alg. 6): the well-posed PT loss, one update on both branches, reduction to DQN,
determinism without global state, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prosumer_gym.agents import make_seller_agent
from prosumer_gym.agents.prodqn import ProDQNAgent, prospect_loss
from prosumer_gym.core.prospect import pt_value
from prosumer_gym.envs import p2p_trading_v0

PT = dict(k_pos=2.3, k_neg=2.5, zeta_pos=0.7, zeta_neg=0.8)


def _obs(p: float) -> np.ndarray:
    return np.array([p, 0.2, 0.1, 0.1, 0.0, 1.0], dtype=np.float32)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def test_loss_gradient_is_minus_pt_td_error_and_safe_at_zero():
    y = torch.tensor([1.0, 0.2, -0.7, 0.5], dtype=torch.float64)
    q = torch.tensor([0.2, 0.9, -0.7, 0.5 - 1e-12], dtype=torch.float64, requires_grad=True)
    loss = prospect_loss(q, y, **PT)
    loss.backward()
    delta = (y - q).detach().numpy()
    want = -pt_value(delta, *PT.values()) / 4
    np.testing.assert_allclose(q.grad.numpy(), want, rtol=1e-12, atol=1e-15)
    assert q.grad[0] < 0 < q.grad[1]  # gradient descent raises Q below Y, lowers it above Y
    assert q.grad[2] == 0.0  # delta = 0 exactly: no inf/NaN although d|delta|^zeta/d delta is infinite there
    assert torch.isfinite(q.grad).all() and abs(float(q.grad[3])) < 1e-6
    # Eq. 5.7 as printed would be minimised by raising Q on *both* branches; ours is not:
    assert float(loss.detach()) == pytest.approx(0.5 * float(np.mean(pt_value(delta, *PT.values()) ** 2)))


def _single_transition_agent(reward: float, optimizer: str, **pt) -> ProDQNAgent:
    ag = ProDQNAgent(6, 3, **pt, batch_size=1, buffer_size=1, optimizer=optimizer, lr=1e-3, seed=3)
    ag.store(_obs(0.5), 1, reward, _obs(0.5))
    return ag


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("reward", [5.0, -5.0], ids=["gain-branch", "loss-branch"])
def test_one_update_moves_q_toward_target_on_both_branches(reward, optimizer):
    ag = _single_transition_agent(reward, optimizer, **PT)
    s = torch.from_numpy(ag.features(_obs(0.5)))[None]
    with torch.no_grad():
        q0 = float(ag.q_net(s)[0, 1])
        y = reward + ag.gamma * float(ag.target_net(s).max())
    assert (y > q0) == (reward > 0)
    ag.learn()
    with torch.no_grad():
        q1 = float(ag.q_net(s)[0, 1])
    assert abs(y - q1) < abs(y - q0)
    assert np.sign(q1 - q0) == np.sign(y - q0)


def test_pt_scales_the_step_like_pqr():
    # With SGD the first step on Q's output bias is exactly lr * v(Y - Q) (Eq. 5.8 with v).
    ag = _single_transition_agent(4.0, "sgd", **PT)
    s = torch.from_numpy(ag.features(_obs(0.5)))[None]
    with torch.no_grad():
        q0 = float(ag.q_net(s)[0, 1])
        y = 4.0 + ag.gamma * float(ag.target_net(s).max())
    b0 = ag.q_net.net[-1].bias.detach().clone()
    ag.learn()
    step = float(ag.q_net.net[-1].bias.detach()[1] - b0[1])
    assert step == pytest.approx(ag.lr * float(pt_value(y - q0, *PT.values())), rel=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_neutral_pt_is_ordinary_dqn(optimizer):
    a = ProDQNAgent(6, 3, batch_size=4, buffer_size=4, optimizer=optimizer, obs_mode="full", seed=11)
    b = ProDQNAgent(6, 3, batch_size=4, buffer_size=4, optimizer=optimizer, obs_mode="full", seed=11)
    rng = np.random.default_rng(0)
    for _ in range(4):
        o, o2 = rng.random(6).astype(np.float32), rng.random(6).astype(np.float32)
        act, r = int(rng.integers(3)), float(rng.normal())
        a.store(o, act, r, o2)
        b.store(o, act, r, o2)
    for _ in range(3):
        a.learn()
        # hand-written DQN step on b: 0.5 * MSE(Q, Y) on the whole buffer (batch = buffer here)
        s, act, r, s2 = b._obs, b._act, b._rew, b._next_obs
        with torch.no_grad():
            y = r + b.gamma * b.target_net(s2).max(dim=1).values
        q = b.q_net(s).gather(1, act[:, None])[:, 0]
        loss = 0.5 * torch.nn.functional.mse_loss(q, y)
        b.optimizer.zero_grad()
        loss.backward()
        b.optimizer.step()
        with torch.no_grad():
            for t, p in zip(b.target_net.parameters(), b.q_net.parameters()):
                t.copy_(b.tau * p + (1 - b.tau) * t)
        b.rng.choice(4, size=4, replace=False)  # keep the generators in step
    for pa, pb in zip(a.q_net.parameters(), b.q_net.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)
    for pa, pb in zip(a.target_net.parameters(), b.target_net.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)


def _run(agent: ProDQNAgent, days: int = 40) -> list[int]:
    rng = np.random.default_rng(5)
    acts = []
    p = 0.5
    for _ in range(days):
        o = _obs(p)
        a = agent.act(o)
        p = float(np.clip(p + (a - 1) / 60, 0, 1))
        agent.update(o, a, float(rng.random()), _obs(p))
        agent.end_day()
        acts.append(a)
    return acts


def test_determinism_without_touching_global_rng():
    g0 = torch.random.get_rng_state().clone()
    n0 = np.random.get_state()[1].copy()
    a, b = ProDQNAgent(6, 3, **PT, seed=7), ProDQNAgent(6, 3, **PT, seed=7)
    assert _run(a) == _run(b)
    for pa, pb in zip(a.q_net.state_dict().values(), b.q_net.state_dict().values()):
        assert torch.equal(pa, pb)
    assert torch.equal(g0, torch.random.get_rng_state())  # library code leaves global RNGs alone
    assert np.array_equal(n0, np.random.get_state()[1])
    c = ProDQNAgent(6, 3, **PT, seed=8)
    assert not torch.equal(a.q_net.net[0].weight, c.q_net.net[0].weight)


def test_save_load_roundtrip_continues_identically(tmp_path):
    a = ProDQNAgent(6, 3, **PT, seed=2)
    _run(a, 20)
    a.save(tmp_path / "a.pt")
    raw = torch.load(tmp_path / "a.pt", weights_only=True)  # plain tensors and numbers only
    assert set(raw) >= {"q_net", "target_net", "optimizer", "buffer", "eps", "rng"}
    b = ProDQNAgent(6, 3, **PT, seed=99)
    b.load(tmp_path / "a.pt")
    assert b.eps == a.eps and b._size == a._size == 20
    assert _run(a, 15) == _run(b, 15)
    for pa, pb in zip(a.q_net.parameters(), b.q_net.parameters()):
        assert torch.equal(pa, pb)


def test_obs_modes_and_validation():
    price = ProDQNAgent(6, 3, seed=0)
    full = ProDQNAgent(6, 3, obs_mode="full", seed=0)
    assert price.q_net.net[0].in_features == 1 and full.q_net.net[0].in_features == 6
    # the price-only net ignores the other components
    np.testing.assert_array_equal(price.q_values(_obs(0.3)), price.q_values(np.array([0.3, 1, 1, 1, 1, 0], np.float32)))
    assert [m.out_features for m in price.q_net.net if isinstance(m, torch.nn.Linear)] == [64, 64, 3]
    for kw in (dict(obs_mode="pixels"), dict(gamma=1.0), dict(tau=0.0), dict(batch_size=8, buffer_size=4),
               dict(k_pos=0.0), dict(hidden=()), dict(optimizer="rmsprop")):
        with pytest.raises(ValueError):
            ProDQNAgent(6, 3, **kw)
    with pytest.raises(ValueError, match="obs must have 6"):
        price.act(np.zeros(4, np.float32))


def test_make_seller_agent_takes_pt_params_from_env():
    env = p2p_trading_v0.parallel_env(n_sellers=2, n_buyers=2, n_days=3)
    _, infos = env.reset(seed=0)
    a = "seller_1"
    ag = make_seller_agent("prodqn", env.observation_space(a), env.action_space(a), infos[a], seed=0)
    assert ag.pt_params == pytest.approx(infos[a]["pt_params"])
    q = make_seller_agent("pqr", env.observation_space(a), env.action_space(a), infos[a], n_prices=61, seed=0)
    assert q.pt_params == pytest.approx(infos[a]["pt_params"])
    with pytest.raises(ValueError, match="n_prices"):
        make_seller_agent("pqr", env.observation_space(a), env.action_space(a), infos[a])


def test_learns_to_raise_its_price_in_a_monopoly_chain():
    """Stationary market, sales fixed, reward = price x sales: the paper's ProDQN (price input,
    its hyperparameters) must learn to raise the price within a year (compare the P2P market,
    where the zero-revenue cliff at the grid price and seasonal rewards push it down; see
    docs/p2p_trading_reproduction.md)."""
    ag = ProDQNAgent(6, 3, **PT, seed=0)
    idx = 28  # $0.088
    for _ in range(365):
        o = _obs(idx / 60)
        a = ag.act(o)
        idx = int(np.clip(idx + a - 1, 0, 59))
        ag.update(o, a, (0.06 + 0.001 * idx) * 5.0, _obs(idx / 60))
        ag.end_day()
    assert idx >= 45, idx
    greedy = [ag.act(_obs(i / 60), explore=False) for i in range(20, 50)]
    assert np.mean(np.array(greedy) == 2) > 0.6
