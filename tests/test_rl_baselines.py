"""Deep-RL baselines: the exported policy is exactly SB3's deterministic policy, the training
command writes what the leaderboard needs, and the shipped baselines reproduce their board
numbers."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import prosumer_gym  # noqa: F401 - registers the ids
from prosumer_gym.train.baselines import RL_BASELINE_DIR, baseline_groups, shipped_baselines, train_group
from prosumer_gym.train.export import export_sb3, load_exported, predict_fn, save_exported

ROOT = Path(__file__).resolve().parents[1]
TINY_P2P = dict(n_sellers=2, n_buyers=3, n_days=20)


def _sb3_vs_export(model, vn, env, n: int = 60) -> int:
    """Number of observations (of ``n`` visited ones) where SB3 and the export disagree."""
    state, card = export_sb3(model, vn)
    f = predict_fn(state, card)
    obs, _ = env.reset(seed=5)
    bad = 0
    for _ in range(n):
        x = vn.normalize_obs(obs[None])[0] if vn is not None else obs
        a_sb3, _ = model.predict(x, deterministic=True)
        a = f(obs)
        if not np.allclose(np.asarray(a_sb3, float).ravel(), np.asarray(a, float).ravel(), atol=1e-5):
            bad += 1
        obs, _, te, tu, _ = env.step(a)
        if te or tu:
            obs, _ = env.reset()
    return bad


@pytest.mark.parametrize("algo,gid,kw", [
    ("ppo", "P2PTrading-v0", TINY_P2P),          # Discrete: argmax of the logits
    ("dqn", "P2PTrading-v0", TINY_P2P),          # Discrete: argmax of the Q-values
    ("ppo", "StorageSharing-v0", {}),            # Box: Gaussian mean, clipped
    ("sac", "StorageSharing-v0", {}),            # Box: tanh-squashed, rescaled
    ("td3", "StorageSharing-v0", {}),            # Box: actor ends in tanh, rescaled
])
def test_export_reproduces_sb3_actions(algo: str, gid: str, kw: dict) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from prosumer_gym.train.sb3 import sb3_class

    venv = VecNormalize(DummyVecEnv([lambda: gym.make(gid, **kw)]))
    extra = {"learning_starts": 50} if algo in ("dqn", "sac", "td3") else {"n_steps": 64, "batch_size": 32}
    model = sb3_class(algo)("MlpPolicy", venv, seed=0, device="cpu", **extra)
    model.learn(200)
    assert _sb3_vs_export(model, venv, gym.make(gid, **kw)) == 0


def test_export_multibinary_parameter_sharing(tmp_path: Path) -> None:
    """PPO with parameter sharing on ProsumerSharing's prosumers (MultiBinary(2)): the quick
    baseline run exports a threshold head whose actions equal SB3's on real observations."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from prosumer_gym.envs import prosumer_sharing_v0

    files = train_group("ProsumerSharing-v0", "ppo-ps", [0], tmp_path, quick=True, progress=False)
    _, card = load_exported(files[0])
    assert card["head"] == "bernoulli" and card["group"] == "ppo-ps" and card["role"] == "prosumer"  # shipped
    run = files[0].parent
    model = PPO.load(run / "model.zip", device="cpu")
    state, card = export_sb3(model, None)  # the deterministic head of the same network
    assert card["head"] == "threshold"
    penv = prosumer_sharing_v0.parallel_env(n_prosumers=10, n_days=5)
    obs, _ = penv.reset(seed=1)
    import pickle

    with open(run / "vecnormalize.pkl", "rb") as fh:  # our own file, written by the run above
        vn = pickle.load(fh)
    assert isinstance(vn, VecNormalize)
    state, card = export_sb3(model, vn)
    f = predict_fn(state, card)
    for o in list(obs.values())[:10]:
        a_sb3, _ = model.predict(vn.normalize_obs(o[None].astype(np.float32))[0], deterministic=True)
        assert np.array_equal(np.asarray(a_sb3).astype(int).ravel(), f(o).astype(int).ravel())


def test_export_dict_observation_flattened(tmp_path: Path) -> None:
    """P2PRecommendation's platform (a Dict observation, trained through FlattenObservation):
    the predictor flattens the raw dict in the space's key order and acts like SB3."""
    import pickle

    from gymnasium.wrappers import FlattenObservation
    from stable_baselines3 import PPO

    files = train_group("P2PRecommendation-v0", "ppo", [0], tmp_path, quick=True, progress=False)
    state, card = load_exported(files[0])
    assert [k for k, _ in card["dict_keys"]] == sorted(k for k, _ in card["dict_keys"])
    run = files[0].parent
    model = PPO.load(run / "model.zip", device="cpu")
    with open(run / "vecnormalize.pkl", "rb") as fh:  # our own file, written by the run above
        vn = pickle.load(fh)
    f = predict_fn(state, card)
    env = gym.make("P2PRecommendation-v0", n_producers=16, n_consumers=10, n_days=8, oracle=False)
    flat = FlattenObservation(env)
    obs, _ = env.reset(seed=2)
    for _ in range(8):
        x = vn.normalize_obs(flat.observation(obs)[None])[0]
        a_sb3, _ = model.predict(x, deterministic=True)
        a = f(obs)
        assert np.allclose(a_sb3, a, atol=1e-5)
        obs, *_ = env.step(a)


def test_stochastic_head_samples_sb3_probabilities() -> None:
    """The Bernoulli head draws each bit with SB3's probability (frequency over many draws)
    and is reproducible from the generator."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from prosumer_gym.envs import prosumer_sharing_v0

    penv = prosumer_sharing_v0.parallel_env(n_prosumers=4, n_days=3)
    obs_space, act_space = penv.observation_space("prosumer_0"), penv.action_space("prosumer_0")

    class One(gym.Env):
        observation_space, action_space = obs_space, act_space

        def reset(self, *, seed=None, options=None):
            return obs_space.sample(), {}

        def step(self, a):
            return obs_space.sample(), 0.0, True, False, {}

    model = PPO("MlpPolicy", DummyVecEnv([One]), seed=3, device="cpu", n_steps=8, batch_size=8)
    state, card = export_sb3(model, None, stochastic=True)
    assert card["head"] == "bernoulli"
    f = predict_fn(state, card)
    o = np.array([0.2, -0.1, 0.5, 0.7], dtype=np.float32)
    with torch.no_grad():
        dist = model.policy.get_distribution(torch.as_tensor(o[None]))
        p_sb3 = dist.distribution.probs.numpy().ravel()
    draws = np.array([f(o, np.random.default_rng(k)) for k in range(4000)])
    assert np.allclose(draws.mean(axis=0), p_sb3, atol=0.03)
    assert np.array_equal(f(o, np.random.default_rng(7)), f(o, np.random.default_rng(7)))


def test_categorical_bits_head_samples_sb3_probabilities_decoded() -> None:
    """PPO on a ``MultiBinary(3)`` action enumerated as ``Discrete(8)`` (the Gymnasium view's
    ``DiscreteBitsEnv``), exported with ``stochastic``: the ``categorical_bits`` head draws the
    index with SB3's softmax probabilities and decodes bit k = ``(i >> k) & 1``."""
    import torch
    from gymnasium import spaces
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from prosumer_gym.core.spaces import bits_to_index, index_to_bits
    from prosumer_gym.train.sb3 import _bits_wrapper_classes

    obs_space = spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)

    class Bits(gym.Env):
        observation_space, action_space = obs_space, spaces.MultiBinary(3)

        def __init__(self):
            self.taken = []

        def reset(self, *, seed=None, options=None):
            return obs_space.sample(), {}

        def step(self, a):
            self.taken.append(np.asarray(a).copy())
            return obs_space.sample(), 0.0, True, False, {}

    wrapper = _bits_wrapper_classes()[1]
    env = wrapper(Bits())
    assert env.action_space == spaces.Discrete(8)
    env.reset(seed=0)
    env.step(6)  # index 6 = bits (0, 1, 1)
    assert np.array_equal(env.unwrapped.taken[-1], [0, 1, 1])
    model = PPO("MlpPolicy", DummyVecEnv([lambda: wrapper(Bits())]), seed=4, device="cpu", n_steps=8, batch_size=8)
    with torch.no_grad():  # spread the logits so that the frequencies test something
        model.policy.action_net.weight.mul_(40.0)
    state, card = export_sb3(model, None, stochastic=True, bits_space=spaces.MultiBinary(3))
    assert card["head"] == "categorical_bits" and card["action_space"] == {"type": "MultiBinary", "shape": [3]}
    f = predict_fn(state, card)
    o = np.array([0.3, -0.6, 0.9], dtype=np.float32)
    with torch.no_grad():
        p_sb3 = model.policy.get_distribution(torch.as_tensor(o[None])).distribution.probs.numpy().ravel()
    assert p_sb3.max() < 0.9  # not a point mass
    draws = [f(o, np.random.default_rng(k)) for k in range(4000)]
    assert all(d.shape == (3,) and set(np.unique(d)) <= {0, 1} for d in draws[:50])
    freq = np.bincount([bits_to_index(d, 3) for d in draws], minlength=8) / len(draws)
    assert np.allclose(freq, p_sb3, atol=0.03)
    assert np.array_equal(index_to_bits(6, 3), [0, 1, 1])


def test_quick_training_writes_a_complete_card(tmp_path: Path) -> None:
    files = train_group("StorageSharing-v0", "ppo", [0, 1], tmp_path, quick=True, progress=False)
    assert len(files) == 2
    cards = [json.loads(p.with_suffix(".json").read_text()) for p in files]
    for seed, card in enumerate(cards):
        assert card["seed"] == seed and card["quick"] is True and card["algo"] == "ppo"
        assert card["total_steps"] >= 512 and card["train_wall_seconds"] > 0
        assert card["hyperparams"]["algo_kwargs"]["gamma"] == 0.9
        assert len(card["curve"]["env_steps"]) == len(card["curve"]["return"]) > 0
        assert card["curve"]["env_steps"] == sorted(card["curve"]["env_steps"])
    # different training seeds give different policies
    a, _ = load_exported(files[0])
    b, _ = load_exported(files[1])
    assert not np.allclose(a["layers.0.weight"].numpy(), b["layers.0.weight"].numpy())


def test_exported_policy_with_a_wrong_space_is_refused(tmp_path: Path) -> None:
    from prosumer_gym.eval.leaderboard.core import track
    from prosumer_gym.eval.leaderboard.policies import load_policy

    files = train_group("StorageSharing-v0", "sac", [0], tmp_path, quick=True, progress=False)
    state, card = load_exported(files[0])
    card["action_space"] = {"type": "Discrete", "n": 3}
    bad = save_exported(tmp_path / "bad", state, card)
    with pytest.raises(ValueError, match="action space"):
        load_policy(f"exported:{bad}", track("StorageSharing-v0"))
    with pytest.raises(ValueError, match="shipped baseline"):
        load_policy("rlb:no-such-seed0", track("StorageSharing-v0"))
    state, card = load_exported(files[0])
    card["env"] = "P2PTrading-v0"  # trained on another market: no version adapter
    other = save_exported(tmp_path / "other", state, card)
    with pytest.raises(ValueError, match="cannot act on the StorageSharing-v0 track"):
        load_policy(f"exported:{other}", track("StorageSharing-v0"))


def test_every_group_is_well_formed() -> None:
    for env_id in ("P2PTrading-v0", "StorageSharing-v0", "EnergyCollective-v0", "ProsumerSharing-v0",
                   "P2PRecommendation-v0", "EUber-v0"):
        groups = baseline_groups(env_id)
        assert groups, env_id
        for name, g in groups.items():
            assert g["view"] in ("gym", "pettingzoo") and int(g["total_steps"]) > 0, (env_id, name)
    # a group may train on a newer version of the track's env (played through a version adapter)
    assert baseline_groups("P2PRecommendation-v0")["ppo-pairs"]["env"] == "P2PRecommendation-v1"


def _published(env_id: str) -> dict[str, dict]:
    out = {}
    for line in (ROOT / "leaderboard" / "results.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["env_id"] == env_id and e.get("kind") == "rl-baseline":
            out[e["name"]] = e
    return out


SHIPPED = [(env_id, name) for env_id in sorted(p.name for p in RL_BASELINE_DIR.iterdir() if p.is_dir())
           for name, _ in shipped_baselines(env_id)[:1]] if RL_BASELINE_DIR.is_dir() else []


def test_shipped_baselines_are_small_safe_files() -> None:
    import torch

    total = 0
    for env_id in (p.name for p in RL_BASELINE_DIR.iterdir() if p.is_dir()):
        for name, path in shipped_baselines(env_id):
            total += path.stat().st_size + path.with_suffix(".json").stat().st_size
            sd = torch.load(path, map_location="cpu", weights_only=True)
            assert all(isinstance(v, torch.Tensor) for v in sd.values()), name
            card = json.loads(path.with_suffix(".json").read_text())
            assert card["quick"] is False and card["group"] in baseline_groups(env_id), name
    # they ship in the wheel: 24 groups x 5 seeds, 12.2 MiB, the tuned ones with [256, 256]
    # actors (~275 kB each); the wheel measured 13.5 MB with them (PyPI's limit is 100 MB)
    assert total < 16 * 1024 * 1024


@pytest.mark.parametrize("env_id,name", SHIPPED)
def test_shipped_baseline_reproduces_its_board_numbers(env_id: str, name: str) -> None:
    """The shipped file, evaluated on the track's first 2 held-out seeds, gives exactly the
    per-seed values published on the board."""
    from prosumer_gym.eval.leaderboard.runner import evaluate

    entry = evaluate(env_id, f"rlb:{name}", n_seeds=2)
    published = _published(env_id)[entry["name"]]
    assert entry["kind"] == "rl-baseline" and entry["group"] == published["group"]
    for key, m in entry["metrics"].items():
        assert m["per_seed"] == published["metrics"][key]["per_seed"][:2], key
