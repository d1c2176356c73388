"""Batched VecEnvs of the cheap markets (StorageSharing-v0, EnergyCollective-v0, P2PTrading-v0)
on the shared plumbing of prosumer_gym/core/vec.py: trajectories equal independent single
envs with the same seeds and actions (exact, across auto-resets), the SB3 VecEnv contract
(shapes, dones, infos, seeding, attributes), bad input, and a short PPO run."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import prosumer_gym  # noqa: F401  (registers the ids)
from prosumer_gym.core.vec import MarketVecEnv, SequentialVecEnv
from prosumer_gym.envs.energy_collective.vec import EnergyCollectiveVecEnv
from prosumer_gym.envs.p2p_trading.vec import P2PTradingVecEnv
from prosumer_gym.envs.storage_sharing.vec import StorageSharingVecEnv

CASES = {
    "StorageSharing-v0": (StorageSharingVecEnv, dict(n_rus=4, n_sfcs=3, n_slots=3)),
    "EnergyCollective-v0": (EnergyCollectiveVecEnv,
                            dict(n_prosumers=3, n_flexible=3, n_inflexible=2, n_chp=2, n_peak=1, n_steps=4)),
    "P2PTrading-v0": (P2PTradingVecEnv, dict(n_sellers=4, n_buyers=5, n_days=3)),
}


def _actions(space: gym.Space, rng: np.random.Generator, n: int) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, size=n)
    return rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(space.dtype)


@pytest.mark.parametrize("env_id", sorted(CASES))
def test_batch_equals_independent_single_envs(env_id: str) -> None:
    cls, kw = CASES[env_id]
    n, seed = 3, 11
    venv = cls(num_envs=n, **kw)
    singles = [gym.make(env_id, **kw) for _ in range(n)]
    venv.seed(seed)
    obs = venv.reset()
    ref = [env.reset(seed=seed + i) for i, env in enumerate(singles)]
    for i, (o, info) in enumerate(ref):
        np.testing.assert_array_equal(obs[i], o)
        assert venv.reset_infos[i].keys() == info.keys()
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(9):  # the episodes are 3-4 steps long: at least two auto-resets per market
        acts = _actions(venv.action_space, rng, n)
        obs, rew, dones, infos = venv.step(acts)
        assert obs.shape == (n, *venv.observation_space.shape) and obs.dtype == venv.observation_space.dtype
        assert rew.shape == (n,) and rew.dtype == np.float32
        assert dones.shape == (n,) and dones.dtype == bool
        assert isinstance(infos, list) and len(infos) == n
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(acts[i])
            assert rew[i] == np.float32(r)
            assert dones[i] == (term or trunc)
            assert set(info) <= set(infos[i])
            if term or trunc:
                episodes += 1
                np.testing.assert_array_equal(infos[i]["terminal_observation"], o)
                assert infos[i]["TimeLimit.truncated"] == (trunc and not term)
                o, _ = env.reset()
            else:
                assert "terminal_observation" not in infos[i]
            np.testing.assert_array_equal(obs[i], o)
    assert episodes >= 2 * n
    venv.close()


def test_seeding_rule_and_attributes() -> None:
    cls, kw = CASES["StorageSharing-v0"]
    a, b = cls(num_envs=2, **kw), cls(num_envs=2, **kw)
    a.seed(5)
    b.seed(5)
    oa, ob = a.reset(), b.reset()
    np.testing.assert_array_equal(oa, ob)
    c = cls(num_envs=2, **kw)
    c.seed(6)
    np.testing.assert_array_equal(c.reset()[0], oa[1])  # market i is seeded with s + i
    assert not np.array_equal(oa[0], oa[1])
    assert a.get_attr("learner") == ["auctioneer", "auctioneer"]
    a.set_attr("tag", 3, indices=[1])
    assert not hasattr(a.envs[0], "tag") and a.envs[1].tag == 3
    assert a.env_method("close", indices=0) == [None]
    assert a.env_is_wrapped(gym.Wrapper) == [False, False]
    assert a.get_images() == [None, None]


def test_bad_input() -> None:
    cls, kw = CASES["EnergyCollective-v0"]
    with pytest.raises(ValueError, match="num_envs"):
        cls(num_envs=0, **kw)
    with pytest.raises(ValueError, match="num_envs"):
        cls(num_envs=True, **kw)
    v = cls(num_envs=2, **kw)
    with pytest.raises(ValueError, match="seed"):
        v.seed(-1)
        v.reset()
    v = cls(num_envs=2, **kw)
    v.reset()
    with pytest.raises(ValueError, match="one row per env"):
        v.step(np.zeros((3, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="action"):
        v.step(np.full((2, 1), 2.0, dtype=np.float32))  # out of the Box: the view's own check
    with pytest.raises(RuntimeError, match="step_async"):
        v.step_wait()
    with pytest.raises(ValueError, match="Box observation"):
        SequentialVecEnv(lambda: gym.make("EUber-v0", n_workers=4, n_ride_tasks=2, n_v2g_tasks=2))
    env = gym.make("StorageSharing-v0")
    with pytest.raises(ValueError, match="new env"):
        SequentialVecEnv(lambda: env, num_envs=2)


def test_prosumer_sharing_vecenv_is_a_market_vecenv() -> None:
    """ProsumerSharing's array-batched VecEnv shares the plumbing (one implementation)."""
    from prosumer_gym.envs.prosumer_sharing.vec import ProsumerSharingVecEnv

    assert issubclass(ProsumerSharingVecEnv, MarketVecEnv) and issubclass(SequentialVecEnv, MarketVecEnv)
    v = ProsumerSharingVecEnv(num_envs=2, n_days=2, n_prosumers=10)
    v.seed(1)
    v.reset()
    for t in range(2):
        _, _, dones, infos = v.step(np.zeros((2, 2), dtype=np.float32))
    assert dones.all() and all(i["TimeLimit.truncated"] and "terminal_observation" in i for i in infos)


def test_ppo_learns_on_a_batched_market_smoke() -> None:
    from stable_baselines3 import PPO

    cls, kw = CASES["StorageSharing-v0"]
    venv = cls(num_envs=2, **kw)
    venv.seed(0)
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=32)
    assert model.num_timesteps == 32
    act, _ = model.predict(venv.reset(), deterministic=True)
    assert act.shape == (2, 1) and venv.action_space.contains(act[0])
