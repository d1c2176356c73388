"""Export a trained Stable-Baselines3 policy as a *safe* file: a PyTorch state dict of plain
tensors (loaded with ``torch.load(weights_only=True)``, nothing unpickled) plus a small JSON
card, and the matching numpy-free-of-SB3 predictor that acts from it.

What is exported is exactly what SB3's ``model.predict(obs, deterministic=True)`` computes
for an ``MlpPolicy`` on a flat ``Box`` observation:

* the observation normaliser of ``VecNormalize`` when training used it
  (``(obs - mean) / sqrt(var + eps)`` clipped to ``+-clip_obs``), else the identity;
* the actor's MLP (``Linear`` layers with the policy's activation between them);
* the head that turns the last layer's output into an action: ``argmax`` (PPO/A2C on
  ``Discrete``, DQN's Q-values), ``threshold`` (``MultiBinary``: logit > 0, i.e. the
  Bernoulli mode), ``argmax_bits`` (an enumerated ``MultiBinary``, below), ``clip``
  (PPO/A2C Gaussian mean clipped to the ``Box``),
  ``tanh_rescale`` (SAC: ``tanh`` then rescaled to the ``Box``; TD3's actor ends in
  ``tanh`` already and is exported the same way).

With ``stochastic=True`` a PPO/A2C policy on ``MultiBinary``/``Discrete`` is exported with
a sampling head instead (``bernoulli``: each bit 1 with probability ``sigmoid(logit)``;
``categorical``: a draw from ``softmax(logits)``), SB3's ``predict(deterministic=False)``:
the predictor then takes a ``numpy.random.Generator`` (the leaderboard seeds one per
episode from the scenario seed). Identical agents sharing one deterministic policy make
identical choices; a population that must split (ProsumerSharing's quota) needs the draw.

Enumerated binary actions (``bits_space``: the env's ``MultiBinary(n)`` when training saw it
as ``Discrete(2**n)``, control key ``discrete_actions``): the head's index i is decoded into
the bits ``(i >> k) & 1``, k = 0..n-1 (:func:`prosumer_gym.core.spaces.index_to_bits`), and
the card's action space is the env's ``MultiBinary(n)``. ``argmax_bits``: the decoded
argmax (DQN's greedy action, PPO's mode); ``categorical_bits``: PPO's draw from
``softmax(logits)``, decoded; ``epsilon_bits``: DQN's ``predict(deterministic=False)``,
epsilon-greedy with the model's exploration rate at the end of training (card ``epsilon``):
with probability epsilon a uniform index, else the argmax. SB3 draws that coin once per
vectorised batch; here every agent draws its own (the same marginal per agent).

Padded observations (card ``obs_pad: true``): parameter sharing over agents whose ``Box``
observations differ in size trains on SuperSuit's ``pad_observations_v0`` view (each flat
observation zero-padded at the end to the largest, ``obs_dim``); the predictor pads a
shorter observation the same way before normalising it.

``predict_fn(state, card)`` rebuilds it; a test checks it reproduces SB3's deterministic
actions on every track's baseline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HEADS", "ACTIVATIONS", "export_sb3", "predict_fn", "load_exported", "save_exported"]

HEADS = ("argmax", "threshold", "clip", "tanh_rescale", "bernoulli", "categorical", "argmax_bits",
         "categorical_bits", "epsilon_bits")
STOCHASTIC_HEADS = ("bernoulli", "categorical", "categorical_bits", "epsilon_bits")
ACTIVATIONS = ("tanh", "relu")
CARD_SCHEMA = 1


def _linear_layers(module: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    import torch

    return [(m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy())
            for m in module.modules() if isinstance(m, torch.nn.Linear)]


def _layers_state(layers: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """``layers.<i>.weight`` / ``layers.<i>.bias`` tensors of the exported state dict."""
    import torch

    out: dict[str, Any] = {}
    for i, (w, b) in enumerate(layers):
        out[f"layers.{i}.weight"] = torch.as_tensor(w)
        out[f"layers.{i}.bias"] = torch.as_tensor(b)
    return out


def _activation_fn(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The numpy activation of a card's ``activation`` (one of :data:`ACTIVATIONS`)."""
    return np.tanh if name == "tanh" else (lambda z: np.maximum(z, 0.0))


def _activation_name(fn: Any) -> str:
    name = getattr(fn, "__name__", type(fn).__name__).lower()
    for a in ACTIVATIONS:
        if a in name:
            return a
    raise ValueError(f"cannot export activation {fn!r}; supported: {ACTIVATIONS}")


def export_sb3(model: Any, vecnormalize: Any | None = None, stochastic: bool = False,
               dict_space: Any | None = None, bits_space: Any | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, card)`` for an SB3 PPO/A2C/DQN/SAC/TD3 ``MlpPolicy`` model (see module doc).

    ``dict_space``: the env's ``Dict`` observation space when the model was trained on it
    through Gymnasium's ``FlattenObservation``; the card then records its keys and shapes
    and the predictor flattens a dict observation the same way. ``bits_space``: the env's
    ``MultiBinary(n)`` when the model acts in its enumeration ``Discrete(2**n)``."""
    import stable_baselines3 as sb3
    import torch
    from gymnasium import spaces

    obs_space, act_space = model.observation_space, model.action_space
    from prosumer_gym.train.pair_policy import PairScorerPolicy

    if isinstance(model.policy, PairScorerPolicy):
        return _export_pair_scorer(model, vecnormalize)
    if not isinstance(obs_space, spaces.Box):
        raise ValueError(f"only flat Box observations can be exported, got {obs_space}")
    pol = model.policy
    if isinstance(model, (sb3.PPO, sb3.A2C)):
        layers = _linear_layers(pol.mlp_extractor.policy_net) + _linear_layers(pol.action_net)
        act = _activation_name(pol.activation_fn)
        if isinstance(act_space, spaces.Discrete):
            head = "categorical" if stochastic else "argmax"
        elif isinstance(act_space, spaces.MultiBinary):
            head = "bernoulli" if stochastic else "threshold"
        elif isinstance(act_space, spaces.Box):
            if getattr(pol, "squash_output", False):
                raise ValueError("squashed Gaussian PPO policies are not supported")
            head = "clip"
        else:
            raise ValueError(f"cannot export a policy for {act_space}")
    elif isinstance(model, sb3.DQN):
        layers, act, head = _linear_layers(pol.q_net.q_net), _activation_name(pol.q_net.activation_fn), "argmax"
        if stochastic:
            head = "epsilon"
    elif isinstance(model, sb3.SAC):
        layers = _linear_layers(pol.actor.latent_pi) + _linear_layers(pol.actor.mu)
        act, head = _activation_name(pol.actor.activation_fn), "tanh_rescale"
    elif isinstance(model, sb3.TD3):
        layers, act, head = _linear_layers(pol.actor.mu), _activation_name(pol.actor.activation_fn), "tanh_rescale"
    else:
        raise ValueError(f"cannot export {type(model).__name__}")
    extra: dict[str, Any] = {}
    if bits_space is not None:
        from prosumer_gym.core.spaces import n_bit_actions

        n_bits = n_bit_actions(bits_space, "bits_space")
        if not isinstance(act_space, spaces.Discrete) or int(act_space.n) != 1 << n_bits:
            raise ValueError(f"bits_space {bits_space} needs a model acting in Discrete({1 << n_bits}), got {act_space}")
        if head not in ("argmax", "categorical", "epsilon"):
            raise ValueError(f"cannot decode bits from head {head!r}")
        head, act_space = f"{head}_bits", bits_space
    if head == "epsilon":
        raise ValueError("DQN's epsilon-greedy export is for enumerated binary actions (bits_space) only")
    if head == "epsilon_bits":
        extra["epsilon"] = float(model.exploration_rate)
    if stochastic and head not in STOCHASTIC_HEADS:
        raise ValueError(f"stochastic export is for PPO/A2C on Discrete or MultiBinary actions and DQN on "
                         f"enumerated bits, not {head!r}")
    dim = int(np.prod(obs_space.shape))
    if vecnormalize is not None and getattr(vecnormalize, "norm_obs", False):
        rms = vecnormalize.obs_rms
        mean, var = np.asarray(rms.mean, np.float64), np.asarray(rms.var, np.float64)
        eps, clip = float(vecnormalize.epsilon), float(vecnormalize.clip_obs)
    else:
        mean, var, eps, clip = np.zeros(dim), np.ones(dim), 0.0, float("inf")
    state: dict[str, Any] = {
        "obs_mean": torch.as_tensor(mean.reshape(-1)),
        "obs_std": torch.as_tensor(np.sqrt(var.reshape(-1) + eps)),
    }
    state.update(_layers_state(layers))
    card = {
        "schema": CARD_SCHEMA,
        "algo": type(model).__name__.lower(),
        "activation": act,
        "head": head,
        "obs_clip": clip,
        "obs_dim": dim,
        "obs_shape": list(obs_space.shape),
        **({"dict_keys": [[k, list(sp.shape)] for k, sp in dict_space.spaces.items()]} if dict_space is not None else {}),
        "action_space": _space_card(act_space),
        "n_layers": len(layers),
        **extra,
    }
    return state, card


def _export_pair_scorer(model: Any, vecnormalize: Any | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, card)`` of PPO with :class:`~prosumer_gym.train.pair_policy.PairScorerPolicy`
    on a ``Dict`` observation: each key's normaliser (``obs_mean.<key>``, ``obs_std.<key>``;
    the identity for keys ``VecNormalize`` leaves alone), the shared scorer's layers, and a
    ``clip`` head on the scorer's output plus the policy's centring offset."""
    import torch

    from prosumer_gym.train.pair_policy import PAIR_KEYS, SCORE_OFFSET

    obs_space, pol = model.observation_space, model.policy
    layers = _linear_layers(pol.mlp_extractor.scorer)
    acts = {_activation_name(m) for m in pol.mlp_extractor.scorer if not isinstance(m, torch.nn.Linear)}
    if len(acts) != 1:
        raise ValueError(f"the pair scorer must use one activation, got {sorted(acts)}")
    norm = vecnormalize is not None and getattr(vecnormalize, "norm_obs", False)
    keys = list(getattr(vecnormalize, "norm_obs_keys", None) or obs_space.spaces) if norm else []
    state: dict[str, Any] = {}
    for k, sp in obs_space.spaces.items():
        if k in keys:
            rms = vecnormalize.obs_rms[k]
            mean, std = np.asarray(rms.mean, np.float64), np.sqrt(np.asarray(rms.var, np.float64) + vecnormalize.epsilon)
        else:
            mean, std = np.zeros(sp.shape), np.ones(sp.shape)
        state[f"obs_mean.{k}"] = torch.as_tensor(mean.reshape(-1))
        state[f"obs_std.{k}"] = torch.as_tensor(std.reshape(-1))
    state.update(_layers_state(layers))
    card = {
        "schema": CARD_SCHEMA, "algo": type(model).__name__.lower(), "arch": "pair_scorer",
        "activation": acts.pop(), "head": "clip", "score_offset": SCORE_OFFSET,
        "obs_clip": float(vecnormalize.clip_obs) if norm else float("inf"),
        "obs_dim": int(sum(int(np.prod(sp.shape)) for sp in obs_space.spaces.values())),
        "dict_keys": [[k, list(sp.shape)] for k, sp in obs_space.spaces.items()],
        "pair_keys": list(PAIR_KEYS), "action_space": _space_card(model.action_space), "n_layers": len(layers),
    }
    return state, card


def _pair_scorer_fn(arr: Mapping[str, np.ndarray], card: Mapping[str, Any]) -> Callable[[Any], np.ndarray]:
    """The predictor of an exported pair scorer: per-key normalisation, the per-pair
    features of :class:`~prosumer_gym.train.pair_policy.PairFeatures`, the shared MLP,
    ``+ score_offset``, clipped to the action ``Box`` (SB3's deterministic PPO action)."""
    keys = {k: tuple(shape) for k, shape in card["dict_keys"]}
    pair_keys = list(card["pair_keys"])
    missing = [k for k in (*pair_keys, "capacity_kwh", "demand_kwh", "day_of_year") if k not in keys]
    if missing:
        raise ValueError(f"card: dict_keys lack {missing}")
    P, C = keys["loss"]
    n = int(card["n_layers"])
    layers = [(arr[f"layers.{i}.weight"], arr[f"layers.{i}.bias"]) for i in range(n)]
    if layers[0][0].shape[1] != len(pair_keys) + 3 or layers[-1][0].shape[0] != 1:
        raise ValueError("state: the scorer does not map the pair features to one score")
    norm = {k: (arr[f"obs_mean.{k}"].reshape(shape), arr[f"obs_std.{k}"].reshape(shape)) for k, shape in keys.items()}
    act = _activation_fn(card["activation"])
    clip, offset = float(card["obs_clip"]), float(card["score_offset"])
    aspace = card["action_space"]
    low = np.asarray(aspace["low"], np.float64).reshape(P, C)
    high = np.asarray(aspace["high"], np.float64).reshape(P, C)

    def predict(obs: Mapping[str, Any]) -> np.ndarray:
        z = {k: np.clip((np.asarray(obs[k], np.float64).reshape(norm[k][0].shape) - norm[k][0]) / norm[k][1],
                        -clip, clip) for k in keys}
        feats = [z[k] for k in pair_keys]
        feats += [np.broadcast_to(z["capacity_kwh"][:, None], (P, C)), np.broadcast_to(z["demand_kwh"][None, :], (P, C)),
                  np.broadcast_to(z["day_of_year"].reshape(1, 1), (P, C))]
        x = np.stack(feats, axis=-1).reshape(P * C, -1)
        for i, (w, b) in enumerate(layers):
            x = x @ w.T + b
            if i < n - 1:
                x = act(x)
        return np.clip(x.reshape(P, C) + offset, low, high).astype(np.float32)

    return predict


def _space_card(space: Any) -> dict[str, Any]:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "shape": [int(k) for k in np.atleast_1d(space.n)]}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "low": space.low.reshape(-1).tolist(),
                "high": space.high.reshape(-1).tolist()}
    raise ValueError(f"unsupported action space {space}")


def predict_fn(state: Mapping[str, Any], card: Mapping[str, Any]) -> Callable[..., Any]:
    """A function ``obs -> action`` computing the exported policy in numpy (float64); for a
    sampling head ``(obs, rng) -> action`` (its attribute ``stochastic`` is true)."""
    if card.get("head") not in HEADS or card.get("activation") not in ACTIVATIONS:
        raise ValueError(f"card: head must be one of {HEADS} and activation one of {ACTIVATIONS}")
    arr = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float64)
           for k, v in state.items()}
    if card.get("arch", "mlp") == "pair_scorer":
        return _pair_scorer_fn(arr, card)
    if card.get("arch", "mlp") != "mlp":
        raise ValueError(f"card: arch must be 'mlp' or 'pair_scorer', got {card.get('arch')!r}")
    n = int(card["n_layers"])
    layers = [(arr[f"layers.{i}.weight"], arr[f"layers.{i}.bias"]) for i in range(n)]
    mean, std, clip = arr["obs_mean"], arr["obs_std"], float(card["obs_clip"])
    if mean.shape != (int(card["obs_dim"]),) or std.shape != mean.shape:
        raise ValueError("state: obs_mean/obs_std do not match the card's obs_dim")
    for i in range(1, n):
        if layers[i][0].shape[1] != layers[i - 1][0].shape[0]:
            raise ValueError(f"state: layer {i} does not take layer {i - 1}'s output")
    if layers[0][0].shape[1] != mean.shape[0]:
        raise ValueError("state: the first layer does not take the observation")
    act = _activation_fn(card["activation"])
    aspace, head = card["action_space"], card["head"]
    keys = [k for k, _ in card.get("dict_keys", [])]
    pad, dim = bool(card.get("obs_pad", False)), int(card["obs_dim"])

    def flat(obs: Any) -> np.ndarray:
        if keys:  # FlattenObservation's order: the Dict space's keys
            return np.concatenate([np.asarray(obs[k], dtype=np.float64).reshape(-1) for k in keys])
        x = np.asarray(obs, dtype=np.float64).reshape(-1)
        if pad and x.size < dim:  # SuperSuit's pad_observations_v0: zeros at the end
            x = np.concatenate([x, np.zeros(dim - x.size)])
        return x

    def forward(obs: Any) -> np.ndarray:
        x = np.clip((flat(obs) - mean) / std, -clip, clip)
        for i, (w, b) in enumerate(layers):
            x = w @ x + b
            if i < n - 1:
                x = act(x)
        return x

    if head.endswith("_bits"):
        from prosumer_gym.core.spaces import index_to_bits

        if aspace.get("type") != "MultiBinary" or len(aspace.get("shape", ())) != 1:
            raise ValueError(f"card: head {head!r} needs a 1-D MultiBinary action space, got {aspace}")
        n_bits = int(aspace["shape"][0])
        if layers[-1][0].shape[0] != 1 << n_bits:
            raise ValueError(f"state: head {head!r} needs {1 << n_bits} outputs for MultiBinary({n_bits})")
    if head == "epsilon_bits":
        eps = float(card["epsilon"])
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"card: epsilon must be in [0, 1], got {eps}")
    if head in STOCHASTIC_HEADS:
        shape = tuple(aspace.get("shape", ()))

        def sample(obs: Any, rng: np.random.Generator) -> Any:
            z = forward(obs)
            if head == "bernoulli":
                return (rng.random(z.shape) < 1.0 / (1.0 + np.exp(-z))).astype(np.int8).reshape(shape)
            if head == "epsilon_bits":  # one coin, then (if it explores) one uniform index
                i = int(rng.integers(z.size)) if rng.random() < eps else int(np.argmax(z))
                return index_to_bits(i, n_bits)
            p = np.exp(z - z.max())
            i = int(rng.choice(z.size, p=p / p.sum()))
            return index_to_bits(i, n_bits) if head == "categorical_bits" else i

        sample.stochastic = True  # type: ignore[attr-defined]
        return sample
    if head == "argmax":
        return lambda obs: int(np.argmax(forward(obs)))
    if head == "argmax_bits":
        return lambda obs: index_to_bits(int(np.argmax(forward(obs))), n_bits)
    if head == "threshold":
        shape = tuple(aspace["shape"])
        return lambda obs: (forward(obs) > 0).astype(np.int8).reshape(shape)
    low = np.asarray(aspace["low"], dtype=np.float64)
    high = np.asarray(aspace["high"], dtype=np.float64)
    shape = tuple(aspace["shape"])
    if head == "clip":
        return lambda obs: np.clip(forward(obs), low, high).astype(np.float32).reshape(shape)
    return lambda obs: (low + 0.5 * (np.tanh(forward(obs)) + 1.0) * (high - low)).astype(np.float32).reshape(shape)


def save_exported(path: str | Path, state: Mapping[str, Any], card: Mapping[str, Any]) -> Path:
    """Write ``<path>.pt`` (the state dict) and ``<path>.json`` (the card), atomically."""
    import io

    import torch

    from prosumer_gym.core.io import atomic_write_bytes, atomic_write_text

    path = Path(path)
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    atomic_write_bytes(path.with_suffix(".pt"), buf.getvalue())
    atomic_write_text(path.with_suffix(".json"), json.dumps(dict(card), indent=1, sort_keys=True) + "\n")
    return path.with_suffix(".pt")


def load_exported(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, card)`` from ``<path>.pt`` + ``<path>.json``; tensors only (``weights_only``)."""
    import torch

    path = Path(path)
    state = torch.load(path.with_suffix(".pt"), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(hasattr(v, "dtype") for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    card = json.loads(path.with_suffix(".json").read_text())
    return state, card
