"""The two parameter-sharing baselines added last: ProsumerSharing's ``dqn-ps`` (MultiBinary(2)
actions enumerated as Discrete(4), exported with a decoding head) and StorageSharing's
``ppo-ps`` (one policy for the auctioneer and the RUs, observations zero-padded)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

import prosumer_gym  # noqa: F401 - registers the ids
from prosumer_gym.core.spaces import bits_to_index, index_to_bits, n_bit_actions
from prosumer_gym.train.baselines import train_group
from prosumer_gym.train.export import export_sb3, load_exported, predict_fn, save_exported


# ----------------------------------------------------------------------------- encoding
def test_bits_encoding_round_trip() -> None:
    for n in (1, 2, 3, 5):
        seen = set()
        for i in range(1 << n):
            bits = index_to_bits(i, n)
            assert bits.shape == (n,) and bits.dtype == np.int8
            assert bits_to_index(bits, n) == i
            seen.add(tuple(bits))
        assert len(seen) == 1 << n  # a bijection onto {0, 1}^n
    assert index_to_bits(1, 2).tolist() == [1, 0] and index_to_bits(2, 2).tolist() == [0, 1]  # bit k = action bit k
    assert bits_to_index([1, 1], 2) == 3
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 3\]"):
        index_to_bits(4, 2)
    with pytest.raises(ValueError, match="must be 0 or 1"):
        bits_to_index([2, 0], 2)
    assert n_bit_actions(spaces.MultiBinary(2)) == 2
    with pytest.raises(ValueError, match="action_space must be a 1-D MultiBinary"):
        n_bit_actions(spaces.Discrete(4))


def test_discrete_bits_wrapper_steps_like_the_bits() -> None:
    """The training view (Discrete(4) per prosumer) steps the env exactly as the decoded bits."""
    from prosumer_gym.envs import prosumer_sharing_v0
    from prosumer_gym.train.sb3 import _bits_wrapper_classes

    kw = dict(n_prosumers=6, n_days=4)
    raw = prosumer_sharing_v0.parallel_env(**kw)
    wrapped = _bits_wrapper_classes()[0](prosumer_sharing_v0.parallel_env(**kw))
    assert all(wrapped.action_space(a) == spaces.Discrete(4) for a in wrapped.possible_agents)
    o1, _ = raw.reset(seed=3)
    o2, _ = wrapped.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        idx = {a: int(rng.integers(4)) for a in raw.agents}
        o1, r1, *_ = raw.step({a: index_to_bits(i, 2) for a, i in idx.items()})
        o2, r2, *_ = wrapped.step(idx)
        assert all(np.array_equal(o1[a], o2[a]) and r1[a] == r2[a] for a in o1)
    with pytest.raises(ValueError, match="action of prosumer_0"):
        wrapped.step({a: 4 for a in wrapped.agents})


# ----------------------------------------------------------------------------- dqn-ps
@pytest.fixture(scope="module")
def dqn_ps_run(tmp_path_factory) -> Path:
    return train_group("ProsumerSharing-v0", "dqn-ps", [0], tmp_path_factory.mktemp("dqn"), quick=True,
                       progress=False)[0]


def _visited_prosumer_obs(n: int = 40) -> list[np.ndarray]:
    """Observations of prosumers acting at random (their averages spread out)."""
    from prosumer_gym.envs import prosumer_sharing_v0

    penv = prosumer_sharing_v0.parallel_env(n_prosumers=8, n_days=10)
    obs, _ = penv.reset(seed=1)
    rng = np.random.default_rng(1)
    out = []
    while len(out) < n:
        out.extend(obs.values())
        obs, *_ = penv.step({a: rng.integers(0, 2, 2).astype(np.int8) for a in penv.agents})
    return out[:n]


def test_dqn_ps_card_acts_in_the_env_multibinary(dqn_ps_run: Path) -> None:
    from stable_baselines3 import DQN

    _, card = load_exported(dqn_ps_run)
    model = DQN.load(dqn_ps_run.parent / "model.zip", device="cpu")
    assert model.action_space == spaces.Discrete(4)  # what DQN trained on
    assert card["head"] == "epsilon_bits" and card["action_space"] == {"type": "MultiBinary", "shape": [2]}
    assert card["epsilon"] == pytest.approx(model.exploration_rate) and card["group"] == "dqn-ps"
    assert card["role"] == "prosumer" and card["hyperparams"]["control"]["discrete_actions"] is True


def test_argmax_bits_export_reproduces_sb3_predict(dqn_ps_run: Path) -> None:
    """The greedy head computes SB3's deterministic predict, decoded into the bits."""
    from stable_baselines3 import DQN

    run = dqn_ps_run.parent
    model = DQN.load(run / "model.zip", device="cpu")
    with open(run / "vecnormalize.pkl", "rb") as fh:  # our own file, written by the run above
        vn = pickle.load(fh)
    # perturb the last layer so that the greedy index varies over the visited observations
    import torch

    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.policy.q_net.q_net[-1].parameters():
            p.add_(torch.randn(p.shape, generator=gen))
    state, card = export_sb3(model, vn, bits_space=spaces.MultiBinary(2))
    assert card["head"] == "argmax_bits" and card["action_space"] == {"type": "MultiBinary", "shape": [2]}
    f = predict_fn(state, card)
    seen = set()
    for o in _visited_prosumer_obs():
        idx, _ = model.predict(vn.normalize_obs(o[None].astype(np.float32))[0], deterministic=True)
        a = f(o)
        assert a.dtype == np.int8 and np.array_equal(a, index_to_bits(int(idx), 2)), o
        seen.add(int(idx))
    assert len(seen) > 1  # the comparison covered more than one action


def test_epsilon_bits_head_is_epsilon_greedy(dqn_ps_run: Path) -> None:
    """Greedy index with probability 1 - eps + eps/4, every other index eps/4; reproducible."""
    state, card = load_exported(dqn_ps_run)
    greedy = predict_fn(state, {**card, "head": "argmax_bits"})
    f = predict_fn(state, {**card, "epsilon": 0.4})
    assert getattr(f, "stochastic", False)
    o = _visited_prosumer_obs(1)[0]
    g = bits_to_index(greedy(o), 2)
    rng = np.random.default_rng(5)
    counts = np.bincount([bits_to_index(f(o, rng), 2) for _ in range(4000)], minlength=4) / 4000
    want = np.full(4, 0.1)
    want[g] = 0.7
    assert np.allclose(counts, want, atol=0.03)
    assert np.array_equal(f(o, np.random.default_rng(9)), f(o, np.random.default_rng(9)))
    with pytest.raises(ValueError, match="epsilon must be in"):
        predict_fn(state, {**card, "epsilon": 1.5})


def test_dqn_ps_export_is_evaluated_by_the_leaderboard(dqn_ps_run: Path) -> None:
    from prosumer_gym.eval.leaderboard.runner import evaluate

    entry = evaluate("ProsumerSharing-v0", f"exported:{dqn_ps_run}", n_seeds=1)
    assert entry["metrics"]["tracking_error_units"]["per_seed"][0] >= 0.0
    again = evaluate("ProsumerSharing-v0", f"exported:{dqn_ps_run}", n_seeds=1)  # seeded per scenario
    assert again["metrics"]["tracking_error_units"]["per_seed"] == entry["metrics"]["tracking_error_units"]["per_seed"]


# ----------------------------------------------------------------------------- StorageSharing ppo-ps
@pytest.fixture(scope="module")
def storage_ps_run(tmp_path_factory) -> Path:
    return train_group("StorageSharing-v0", "ppo-ps", [0], tmp_path_factory.mktemp("ss"), quick=True,
                       progress=False)[0]


def test_storage_ppo_ps_pads_observations_like_training(storage_ps_run: Path) -> None:
    """The padded predictor equals SB3's predict on SuperSuit's zero-padded observations of
    the auctioneer (43 components) and of the RUs (16)."""
    from stable_baselines3 import PPO

    from prosumer_gym.envs import storage_sharing_v0

    state, card = load_exported(storage_ps_run)
    assert card["obs_pad"] is True and card["obs_dim"] == 43 and card["role"] == "all" and card["n_agents"] == 9
    run = storage_ps_run.parent
    model = PPO.load(run / "model.zip", device="cpu")
    with open(run / "vecnormalize.pkl", "rb") as fh:  # our own file, written by the run above
        vn = pickle.load(fh)
    f = predict_fn(state, card)
    penv = storage_sharing_v0.parallel_env(n_rus=8, n_sfcs=5, n_slots=24)
    obs, _ = penv.reset(seed=4)
    sizes = set()
    for _ in range(4):
        acts = {}
        for a, o in obs.items():
            padded = np.zeros(43, np.float32)
            padded[: o.size] = o
            a_sb3, _ = model.predict(vn.normalize_obs(padded[None])[0], deterministic=True)
            acts[a] = f(o)
            assert np.allclose(a_sb3, acts[a], atol=1e-5), a
            sizes.add(o.size)
        obs, *_ = penv.step(acts)
    assert sizes == {16, 43}


def test_storage_ppo_ps_plays_every_agent_on_the_board(storage_ps_run: Path, tmp_path: Path) -> None:
    from prosumer_gym.eval.leaderboard.core import track
    from prosumer_gym.eval.leaderboard.policies import load_policy
    from prosumer_gym.eval.leaderboard.runner import evaluate

    tr = track("StorageSharing-v0")
    factory, source, _, kind = load_policy(f"exported:{storage_ps_run}", tr)
    pol = factory()
    env = tr.make_env()
    assert all(pol.controlled(a) for a in env.possible_agents) and source["role"] == "all"
    entry = evaluate("StorageSharing-v0", f"exported:{storage_ps_run}", n_seeds=1)
    assert np.isfinite(entry["metrics"]["exploitability_cents"]["per_seed"][0])
    # without the padding flag the shared model cannot act for agents of two observation sizes
    state, card = load_exported(storage_ps_run)
    card.pop("obs_pad")
    bad = save_exported(tmp_path / "unpadded", state, card)
    with pytest.raises(ValueError, match="do not share one observation/action space"):
        load_policy(f"exported:{bad}", tr)


def test_yaml_groups_declare_the_new_baselines() -> None:
    from prosumer_gym.train.baselines import baseline_groups

    g = baseline_groups("ProsumerSharing-v0")["dqn-ps"]
    assert (g["algo"], g["view"], g["role"]) == ("dqn", "pettingzoo", "prosumer")
    g = baseline_groups("StorageSharing-v0")["ppo-ps"]
    assert (g["algo"], g["view"], g["role"]) == ("ppo", "pettingzoo", "all")
