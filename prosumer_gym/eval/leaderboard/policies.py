"""Turning a ``--policy`` specification into a :class:`~prosumer_gym.eval.leaderboard.core.JointPolicy`.

Specifications
    ``NAME`` or ``ref:NAME``
        a reference agent / baseline / oracle of the track (``prosumer-gym-leaderboard list``).
    ``sb3:PATH.zip`` (or a path ending in ``.zip``)
        a Stable-Baselines3 model (``--algo ppo|a2c|dqn``) trained on one agent's
        observation/action spaces (the Gymnasium view's ego agent or PettingZoo parameter
        sharing): it acts for every agent of ``--role`` (default: every agent whose spaces
        are those of the role's first agent); other agents follow the track's co-players.
    ``rlb:NAME`` / ``exported:PATH.pt``
        a shipped deep-RL baseline / an exported policy (state dict + JSON card,
        :mod:`prosumer_gym.train.export`), acting for the card's role; a card with
        ``obs_pad`` (parameter sharing over agents with observations of different sizes)
        may control agents whose 1-D ``Box`` observations are shorter than its ``obs_dim``:
        they are zero-padded at the end, as in training.
    ``torch:PATH.pt`` (or ``.pt``/``.pth``)
        a PyTorch state dict of a named architecture (``--arch``): ``mlp`` (Linear layers
        with tanh between them) or ``qnet`` (ReLU between them: ProDQN's ``QNetwork``; a
        saved ProDQN agent state is accepted and its ``q_net`` used). Layer sizes are read
        from the weights. Output -> action: ``Discrete(n)`` argmax of n outputs;
        ``MultiBinary(n)`` output > 0; ``Box`` ``low + (high - low) * sigmoid(output)`` (a
        documented squashing, no clipping). Shared over the role's agents as above.
    ``MODULE:ATTRIBUTE``
        user code: a class (instantiated without arguments) implementing ``JointPolicy``'s
        ``reset/act/observe``, an instance of one, or a function
        ``f(observations, infos) -> actions`` (joint dicts, stateless).

Submissions are data, not code: model files are read without executing anything in them.
State dicts go through ``torch.load(..., weights_only=True)``; an SB3 zip is opened as a zip,
its ``data`` JSON is parsed as JSON and *every* pickled (``:serialized:``) entry in it is
ignored, the policy network is rebuilt from the env's spaces with layer sizes read from
``policy.pth`` (loaded with ``weights_only=True``). Every zip member's declared size is capped
(:data:`ZIP_CAPS`) from the zip directory before anything is read, JSON is parsed only when
nested at most :data:`JSON_MAX_DEPTH` deep. A hostile or malformed file raises
:class:`SubmissionRefused` (a ``ValueError``, "refused: ..."; the CLI exits 2). A
``MODULE:ATTRIBUTE`` *is* code: refused unless ``allow_code`` (``--allow-code``), and the
board marks the entries that ran it.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.eval.leaderboard.core import JointPolicy, Track
# SB3 zips are rebuilt from policy.pth for these (SAC/TD3 models: export them, see exported:)
SB3_ALGOS = ("ppo", "a2c", "dqn")

__all__ = ["load_policy", "PolicySource", "SubmissionRefused", "safe_json_loads", "ran_code", "ZIP_CAPS", "safe_torch_load", "sb3_policy_from_zip", "state_dict_network",
           "SharedModelPolicy", "CallablePolicy", "ARCHS", "SB3_ALGOS"]

ARCHS = ("mlp", "qnet")
_MAX_BYTES = 512 * 1024 * 1024
#: Caps of an SB3 zip, checked from its central directory before any member is read.
ZIP_CAPS = {"data": 16 * 1024 * 1024, "member": 256 * 1024 * 1024, "total": 768 * 1024 * 1024, "members": 64}
#: Deepest nesting of ``[``/``{`` accepted in a submitted JSON document (an SB3 ``data``: < 10).
JSON_MAX_DEPTH = 64


class SubmissionRefused(ValueError):
    """A submitted file or specification that is refused; ``str()`` is one line."""

    def __init__(self, what: str, reason: str) -> None:
        self.reason = " ".join(f"{what}: {reason}".split())
        super().__init__(f"refused: {self.reason}")


def _json_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of ``text`` outside strings (vectorised, no recursion)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", text).encode("ascii", "replace")
    b = np.frombuffer(bare, dtype=np.uint8)
    step = (np.isin(b, (ord("["), ord("{"))).astype(np.int64) - np.isin(b, (ord("]"), ord("}"))))
    return int(np.cumsum(step).max()) if step.size else 0


def safe_json_loads(text: str, what: str) -> Any:
    """``json.loads`` of a submitted document, refused when nested deeper than :data:`JSON_MAX_DEPTH`."""
    depth = _json_depth(text)
    if depth > JSON_MAX_DEPTH:
        raise SubmissionRefused(what, f"JSON nested {depth} levels deep (at most {JSON_MAX_DEPTH})")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise SubmissionRefused(what, f"not JSON ({type(e).__name__}: {e})") from None


def _check_zip_directory(z: zipfile.ZipFile, what: str, caps: Mapping[str, int] = ZIP_CAPS) -> None:
    """Refuse a zip whose directory declares too many members or too large ones (nothing read)."""
    infos = z.infolist()
    if len(infos) > caps["members"]:
        raise SubmissionRefused(what, f"{len(infos)} zip members (at most {caps['members']})")
    total = 0
    for info in infos:
        cap = caps["data"] if info.filename == "data" else caps["member"]
        if info.file_size > cap:
            raise SubmissionRefused(what, f"zip member {info.filename!r} declares {info.file_size} bytes "
                                          f"uncompressed (cap {cap})")
        total += info.file_size
    if total > caps["total"]:
        raise SubmissionRefused(what, f"zip members declare {total} bytes uncompressed (cap {caps['total']})")


def _read_member(z: zipfile.ZipFile, name: str, what: str) -> bytes:
    """A member, read no further than its declared (capped) size."""
    info = z.getinfo(name)
    with z.open(info) as f:
        blob = f.read(info.file_size + 1)
    if len(blob) > info.file_size:
        raise SubmissionRefused(what, f"zip member {name!r} is longer than declared")
    return blob


class PolicySource(dict):
    """What was evaluated (stored with the results): ``type``, ``spec``, file ``sha256``..."""


def ran_code(source: Mapping[str, Any] | None) -> bool:
    """Whether an entry's ``source`` ran submitted code (a ``MODULE:ATTRIBUTE`` policy)."""
    return bool(source) and (source.get("type") == "callable" or bool(source.get("ran_code")))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_torch_load(data: bytes | str | Path, what: str) -> Any:
    """``torch.load(..., weights_only=True)``; anything else than tensors and plain
    containers (a pickle that would construct objects or run code) raises ``ValueError``."""
    import torch

    buf = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else Path(data)
    if isinstance(buf, Path):
        if not buf.is_file():
            raise ValueError(f"{what}: no such file {str(buf)!r}")
        if buf.stat().st_size > _MAX_BYTES:
            raise SubmissionRefused(what, f"file larger than {_MAX_BYTES} bytes")
    try:  # torch's format is a zip: its records' declared sizes are capped before torch reads them
        with zipfile.ZipFile(buf) as z:
            _check_zip_directory(z, what, {**ZIP_CAPS, "members": 4096, "data": ZIP_CAPS["member"]})
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
        raise SubmissionRefused(what, f"not a zip-format torch file ({type(e).__name__}: {e})") from None
    if isinstance(buf, io.BytesIO):
        buf.seek(0)
    import warnings

    try:
        with warnings.catch_warnings():  # a foreign pickle protocol is refused below, not warned about
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(buf, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError,
            zipfile.BadZipFile, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SubmissionRefused(what, "not a plain tensor file loadable with weights_only=True "
                                f"(a pickle with code or custom objects is never executed): {first}") from None


def _tensor_dict(obj: Any, what: str) -> dict[str, Any]:
    import torch

    if isinstance(obj, Mapping) and "q_net" in obj and isinstance(obj["q_net"], Mapping):
        obj = obj["q_net"]  # a saved ProDQN agent state
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{what}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    return dict(obj)


def _linear_layers(sd: Mapping[str, Any], prefix: str, what: str) -> list[tuple[Any, Any]]:
    """``[(weight, bias), ...]`` of ``prefix<i>.weight`` in index order."""
    idx = sorted({int(m.group(1)) for k in sd if (m := re.fullmatch(re.escape(prefix) + r"(\d+)\.weight", k))})
    if not idx:
        raise ValueError(f"{what}: no linear layers named {prefix}<i>.weight in the state dict (keys: {sorted(sd)[:8]})")
    out = []
    for i in idx:
        w, b = sd[f"{prefix}{i}.weight"], sd.get(f"{prefix}{i}.bias")
        if w.ndim != 2 or (b is not None and tuple(b.shape) != (w.shape[0],)):
            raise ValueError(f"{what}: layer {prefix}{i} has weight {tuple(w.shape)} / bias "
                             f"{None if b is None else tuple(b.shape)}; not a linear layer")
        out.append((w, b))
    for (w0, _), (w1, _) in zip(out, out[1:]):
        if w1.shape[1] != w0.shape[0]:
            raise ValueError(f"{what}: layer sizes do not chain ({tuple(w0.shape)} -> {tuple(w1.shape)})")
    return out


def _flat_dim(space: Any) -> int:
    from gymnasium import spaces

    return int(spaces.flatdim(space))


def _out_dim(space: Any) -> int:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, (spaces.MultiBinary, spaces.Box)):
        return int(np.prod(space.shape))
    raise ValueError(f"action space {space} is not supported by a state-dict policy (Discrete, MultiBinary, Box)")


def state_dict_network(sd_obj: Any, arch: str, obs_space: Any, act_space: Any, what: str = "state dict"):
    """An ``nn.Sequential`` for ``arch`` with the weights of ``sd_obj`` (sizes from the weights)."""
    import torch
    from torch import nn

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    sd = _tensor_dict(sd_obj, what)
    prefix = "net." if any(k.startswith("net.") for k in sd) else ""
    layers = _linear_layers(sd, prefix, what)
    n_in, n_out = _flat_dim(obs_space), _out_dim(act_space)
    if layers[0][0].shape[1] != n_in or layers[-1][0].shape[0] != n_out:
        raise ValueError(f"{what}: network maps {layers[0][0].shape[1]} -> {layers[-1][0].shape[0]}, but the agent's "
                         f"observation has {n_in} entries and its action space {act_space} needs {n_out} outputs")
    mods: list[nn.Module] = []
    for k, (w, b) in enumerate(layers):
        lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(w.float())
            if b is not None:
                lin.bias.copy_(b.float())
        mods.append(lin)
        if k < len(layers) - 1:
            mods.append(nn.Tanh() if arch == "mlp" else nn.ReLU())
    net = nn.Sequential(*mods).eval()
    extra = sorted(k for k in sd if not re.fullmatch(re.escape(prefix) + r"\d+\.(weight|bias)", k))
    if extra:
        raise ValueError(f"{what}: unexpected entries for arch {arch!r}: {extra[:8]}")
    return net


def _torch_predictor(net, obs_space: Any, act_space: Any) -> Callable[[Any], Any]:
    import torch
    from gymnasium import spaces

    def predict(obs: Any) -> Any:
        x = torch.as_tensor(np.asarray(spaces.flatten(obs_space, obs), dtype=np.float32))
        with torch.no_grad():
            y = net(x).numpy().astype(np.float64)
        if isinstance(act_space, spaces.Discrete):
            return int(act_space.start + int(np.argmax(y)))
        if isinstance(act_space, spaces.MultiBinary):
            return (y > 0).astype(act_space.dtype).reshape(act_space.shape)
        lo, hi = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
        return (lo + (hi - lo) / (1.0 + np.exp(-y.reshape(act_space.shape)))).astype(act_space.dtype)

    return predict


# ----------------------------------------------------------------------------- SB3 (no pickles)
def _sb3_net_arch(sd: Mapping[str, Any], algo: str, what: str) -> Any:
    if algo == "dqn":
        return [int(w.shape[0]) for w, _ in _linear_layers(sd, "q_net.q_net.", what)[:-1]]
    pi = [int(w.shape[0]) for w, _ in _linear_layers(sd, "mlp_extractor.policy_net.", what)] \
        if any(k.startswith("mlp_extractor.policy_net.") for k in sd) else []
    vf = [int(w.shape[0]) for w, _ in _linear_layers(sd, "mlp_extractor.value_net.", what)] \
        if any(k.startswith("mlp_extractor.value_net.") for k in sd) else []
    return dict(pi=pi, vf=vf)


_ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU", "elu": "ELU", "leaky_relu": "LeakyReLU", "gelu": "GELU"}


def sb3_policy_from_zip(path: str | Path, algo: str, obs_space: Any, act_space: Any,
                        activation: str | None = None) -> Callable[[Any], Any]:
    """A deterministic predictor ``obs -> action`` from an SB3 ``model.zip``, without unpickling.

    The policy class is SB3's ``MlpPolicy``/``MultiInputPolicy`` of ``algo`` built on the
    given spaces; hidden sizes come from ``policy.pth``; the activation is SB3's default
    (tanh for PPO/A2C, ReLU for DQN) unless ``activation`` names another (the zip's own
    ``policy_kwargs`` are pickled when they hold a class, so they are not read).
    """
    import torch
    from gymnasium import spaces

    from prosumer_gym.train.sb3 import sb3_class

    what = f"SB3 model {str(path)!r}"
    if algo not in SB3_ALGOS:
        raise ValueError(f"algo must be one of {SB3_ALGOS}, got {algo!r}")
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what}: no such file")
    if p.stat().st_size > _MAX_BYTES:
        raise SubmissionRefused(what, f"file larger than {_MAX_BYTES} bytes")
    try:
        with zipfile.ZipFile(p) as z:
            _check_zip_directory(z, what)  # every member's declared size, before reading any
            names = set(z.namelist())
            if "policy.pth" not in names:
                raise SubmissionRefused(what, f"no policy.pth inside (members: {sorted(names)[:8]})")
            blob = _read_member(z, "policy.pth", what)
            if "data" in names:  # JSON only: checked for a plain JSON object, pickled entries ignored
                data = safe_json_loads(_read_member(z, "data", what).decode("utf-8"), f"{what} data")
                if not isinstance(data, dict):
                    raise SubmissionRefused(what, f"data is a JSON {type(data).__name__}, not an object")
    except SubmissionRefused:
        raise
    # a trust boundary: whatever a crafted zip makes zipfile/zlib raise is a refusal, not a traceback
    except (zipfile.BadZipFile, zipfile.LargeZipFile, UnicodeDecodeError, NotImplementedError, OSError, EOFError,
            RuntimeError, ValueError, MemoryError) as e:
        raise SubmissionRefused(what, f"not a Stable-Baselines3 zip ({type(e).__name__}: {e})") from None
    sd = _tensor_dict(safe_torch_load(blob, f"{what} policy.pth"), f"{what} policy.pth")
    cls = sb3_class(algo)
    policy_name = "MultiInputPolicy" if isinstance(obs_space, spaces.Dict) else "MlpPolicy"
    policy_cls = cls.policy_aliases[policy_name]
    kwargs: dict[str, Any] = {"net_arch": _sb3_net_arch(sd, algo, what)}
    if activation is not None:
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        kwargs["activation_fn"] = getattr(torch.nn, _ACTIVATIONS[activation])
    try:
        policy = policy_cls(obs_space, act_space, lambda _: 0.0, **kwargs)
        policy.load_state_dict(sd, strict=True)
    except (RuntimeError, ValueError, KeyError, AssertionError) as e:
        raise ValueError(f"{what}: its weights do not fit a {algo.upper()} {policy_name} on this agent's spaces "
                         f"({obs_space}, {act_space}): {str(e).splitlines()[0]}") from None
    policy.set_training_mode(False)

    def predict(obs: Any) -> Any:
        act, _ = policy.predict(obs, deterministic=True)
        if isinstance(act_space, spaces.Discrete):
            return int(np.asarray(act).reshape(-1)[0])
        return np.asarray(act, dtype=act_space.dtype).reshape(act_space.shape)

    return predict


def _exported_card(path: Path) -> dict[str, Any]:
    card_path = path.with_suffix(".json")
    if not path.is_file() or not card_path.is_file():
        raise ValueError(f"exported policy {str(path)!r}: needs the state dict and its card {card_path.name}")
    what = f"exported policy {str(path)!r}"
    if card_path.stat().st_size > 4 * 1024 * 1024:
        raise SubmissionRefused(what, "card larger than 4 MiB")
    try:
        text = card_path.read_text()
    except UnicodeDecodeError as e:
        raise SubmissionRefused(what, f"card is not JSON ({e})") from None
    card = safe_json_loads(text, f"{what} card")
    if not isinstance(card, dict):
        raise SubmissionRefused(what, "card is not a JSON object")
    if card.get("role") is not None and not isinstance(card["role"], str):
        raise SubmissionRefused(what, f"card role must be a string, got {type(card['role']).__name__}")
    return card


def _exported_predictor(path: Path, card: Mapping[str, Any], obs_space: Any, act_space: Any) -> Callable[[Any], Any]:
    """The predictor of an exported policy (:mod:`prosumer_gym.train.export`; ``card``: its
    :func:`_exported_card`), checked against the agent's spaces."""
    from prosumer_gym.train.export import _space_card, predict_fn

    what = f"exported policy {str(path)!r}"
    state = _tensor_dict(safe_torch_load(path, what), what)
    if not isinstance(card.get("obs_dim", -1), int) or isinstance(card.get("obs_dim"), bool):
        raise SubmissionRefused(what, f"card obs_dim must be an integer, got {card.get('obs_dim')!r:.40}")
    if int(card.get("obs_dim", -1)) != _flat_dim(obs_space):
        raise ValueError(f"{what}: trained on {card.get('obs_dim')} observation components, this agent has "
                         f"{_flat_dim(obs_space)}")
    want = _space_card(act_space)
    if card.get("action_space") != want:
        raise ValueError(f"{what}: trained for action space {card.get('action_space')}, this agent has {want}")
    try:
        return predict_fn(state, card)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        raise SubmissionRefused(what, f"card and weights do not describe a policy ({type(e).__name__}: {e})") from None


def _version_adapter(trained_on: str, env_id: str, what: str) -> tuple[type, Callable[[Any], Any]]:
    """``(adapter class, trained-on observation space from the track's)`` for a policy trained
    on a newer version of the track's env (e.g. P2PRecommendation-v1 on the v0 track): the
    adapter wraps the predictor, ``reset(env)`` per episode and ``adapter(obs) -> action``."""
    from prosumer_gym.envs.p2p_recommendation.versions import V1OnV0, v1_platform_space

    adapters = {("P2PRecommendation-v1", "P2PRecommendation-v0"): (V1OnV0, v1_platform_space)}
    if (trained_on, env_id) not in adapters:
        raise ValueError(f"{what}: trained on {trained_on}, which cannot act on the {env_id} track; version adapters: "
                         f"{[f'{a} -> {b}' for a, b in adapters]}")
    return adapters[(trained_on, env_id)]


# ----------------------------------------------------------------------------- joint policies
class SharedModelPolicy(JointPolicy):
    """One per-agent predictor shared by the agents of a role; the others follow ``co_players``."""

    def __init__(self, predict: Callable[[Any], Any], controlled: Callable[[str], bool],
                 co_players: JointPolicy | None, name: str = "model") -> None:
        self.predict, self.controlled, self.co_players, self.name = predict, controlled, co_players, name
        self._rng: np.random.Generator | None = None  # a sampling predictor's draws, set by reset
        self._co: JointPolicy | None = None  # the co-players of this episode (set by reset)

    def reset(self, env, observations, infos, seed) -> None:
        # a sampling predictor draws from a generator of the scenario seed (own stream)
        self._rng = np.random.default_rng([int(seed), 0x5A3B]) if getattr(self.predict, "stochastic", False) else None
        if hasattr(self.predict, "reset"):  # a stateful predictor (a version adapter) starts the episode
            self.predict.reset(env)
        others = [a for a in env.possible_agents if not self.controlled(a)]
        if others and self.co_players is None:
            raise ValueError(f"the model does not control {others[:5]} and this track has no co-players")
        # co-players only for the agents the model leaves to them: none when it plays every agent,
        # and a co-player that can act for a subset more cheaply says so with ``restricted_to``
        # (P2PRecommendation: the consumers follow their model; UPL's daily MILP for the platform,
        # which the model plays, is not run and thrown away)
        co = self.co_players if others else None
        if co is not None and hasattr(co, "restricted_to"):
            co = co.restricted_to(others)
        self._co = co
        if self._co is not None:
            self._co.reset(env, observations, infos, seed)

    def act(self, observations, infos) -> dict[str, Any]:
        rng = self._rng
        if rng is not None:
            acts = {a: self.predict(o, rng) for a, o in observations.items() if self.controlled(a)}
        else:
            acts = {a: self.predict(o) for a, o in observations.items() if self.controlled(a)}
        if len(acts) < len(observations) and self._co is not None:
            co = self._co.act(observations, infos)
            acts.update({a: v for a, v in co.items() if a not in acts and a in observations})
        return acts

    def observe(self, *args) -> None:
        if self._co is not None:
            self._co.observe(*args)


class CallablePolicy(JointPolicy):
    """A stateless ``f(observations, infos) -> actions``."""

    def __init__(self, fn: Callable[[Mapping[str, Any], Mapping[str, Any]], dict], name: str) -> None:
        self.fn, self.name = fn, name

    def act(self, observations, infos) -> dict[str, Any]:
        out = self.fn(observations, infos)
        if not isinstance(out, Mapping):
            raise ValueError(f"{self.name} must return a dict agent -> action, got {type(out).__name__}")
        return dict(out)


def _role_of(track: Track, role: str | None, env: Any, obs_space_of: Callable[[str], Any],
             act_space_of: Callable[[str], Any], pad_obs: bool = False) -> tuple[str, Callable[[str], bool]]:
    """The first controlled agent and the predicate selecting the controlled agents.

    ``pad_obs`` (an exported policy trained on zero-padded observations, card ``obs_pad``):
    the agents may have 1-D ``Box`` observations of different sizes (one action space);
    the first agent returned is then one with the largest observation."""
    agents = list(env.possible_agents)
    if role == "all":  # one shared model for every agent (parameter sharing across roles)
        chosen = agents
    elif role is not None:
        if role not in track.roles:
            raise ValueError(f"role must be one of {sorted(track.roles)} (or 'all') for {track.env_id}, got {role!r}")
        prefix = track.roles[role]
        chosen = [a for a in agents if a.startswith(prefix)]
    elif len(track.roles) == 1:
        prefix = next(iter(track.roles.values()))
        chosen = [a for a in agents if a.startswith(prefix)]
    else:
        raise ValueError(f"{track.env_id} has several roles {sorted(track.roles)}: give --role")
    if not chosen:
        raise ValueError(f"no agent of {track.env_id} belongs to role {role!r}")
    first = chosen[0]
    if pad_obs:
        from gymnasium import spaces

        if all(isinstance(obs_space_of(x), spaces.Box) and len(obs_space_of(x).shape) == 1 for x in chosen):
            first = max(chosen, key=lambda x: (_flat_dim(obs_space_of(x)), -chosen.index(x)))
            a = act_space_of(first)
            same = {x for x in chosen if act_space_of(x) == a}
            if len(same) < len(chosen):
                raise ValueError(f"the agents of role {role!r} do not share one action space; "
                                 f"a shared model cannot act for them all")
            return first, (lambda name: name in same)
    o, a = obs_space_of(first), act_space_of(first)
    same = {x for x in chosen if obs_space_of(x) == o and act_space_of(x) == a}
    if len(same) < len(chosen):
        raise ValueError(f"the agents of role {role!r} do not share one observation/action space; "
                         f"a shared model cannot act for them all")
    return first, (lambda name: name in same)


def load_policy(spec: str, track: Track, algo: str | None = None, arch: str | None = None,
                role: str | None = None, activation: str | None = None,
                allow_code: bool = False) -> tuple[Callable[[], JointPolicy], PolicySource,
                                                                               dict[str, Any], str]:
    """``(factory, source, env_overrides, kind)`` for ``spec`` on ``track`` (see the module docstring).

    ``factory()`` builds a fresh policy (one per episode / worker). Files are read and
    checked here, once, so a hostile file is refused before anything runs. A
    ``MODULE:ATTRIBUTE`` spec is code: it is refused (:class:`SubmissionRefused`) before
    anything is imported unless ``allow_code`` (the CLI's ``--allow-code``).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("policy must be a non-empty string (a reference name, sb3:PATH, torch:PATH or MODULE:ATTR)")
    spec = spec.strip()
    names = [r.name for r in track.references]
    if spec.startswith("ref:") or spec in names:
        name = spec[4:] if spec.startswith("ref:") else spec
        ref = track.reference(name)
        return ref.make, PolicySource(type="reference", spec=name), dict(ref.env_overrides), ref.kind
    kind = None
    entry_kind = "submission"
    if spec.startswith("rlb:"):
        from prosumer_gym.train.baselines import RL_BASELINE_DIR

        name = spec[4:]
        if not re.fullmatch(r"[\w.-]+", name):
            raise ValueError(f"policy {spec!r}: rlb:NAME must be a shipped baseline name like ppo-seed0")
        kind, path, entry_kind = "exported", RL_BASELINE_DIR / track.env_id / f"{name}.pt", "rl-baseline"
        if not path.is_file():
            from prosumer_gym.train.baselines import shipped_baselines

            raise ValueError(f"policy {spec!r}: no shipped baseline {name!r} for {track.env_id}; shipped: "
                             f"{[n for n, _ in shipped_baselines(track.env_id)]}")
    elif spec.startswith("exported:"):
        kind, path = "exported", Path(spec[len("exported:"):])
    elif spec.startswith("sb3:") or (spec.endswith(".zip") and ":" not in spec):
        kind, path = "sb3", Path(spec[4:] if spec.startswith("sb3:") else spec)
    elif spec.startswith("torch:") or (spec.endswith((".pt", ".pth")) and ":" not in spec):
        kind, path = "torch", Path(spec[6:] if spec.startswith("torch:") else spec)
    if kind is not None:
        card = None
        if kind == "exported":
            card = _exported_card(path)
            role = role or card.get("role")
        env = track.make_env()
        pad = kind == "exported" and card.get("obs_pad") is True
        first, controlled = _role_of(track, role, env, env.observation_space, env.action_space, pad_obs=pad)
        o_space, a_space = env.observation_space(first), env.action_space(first)
        if hasattr(env, "close"):
            env.close()
        adapter = None  # a policy trained on a newer version of the track's env
        if kind == "exported" and card.get("env") not in (None, track.env_id):
            adapter, trained_space = _version_adapter(str(card["env"]), track.env_id, f"exported policy {str(path)!r}")
            o_space = trained_space(o_space)
        if not path.is_file():
            raise ValueError(f"policy file {str(path)!r} does not exist")
        source = PolicySource(type=kind, spec=spec, file=path.name, sha256=_sha256(path), role=role)
        co = track.co_players
        if kind == "exported":
            predict = _exported_predictor(path, card, o_space, a_space)
            source.update(algo=card.get("algo"), group=card.get("group"), train_seed=card.get("seed"),
                          total_steps=card.get("total_steps"), view=card.get("view"), role=role,
                          **({"trained_on": card["env"]} if adapter is not None else {}))
        elif kind == "sb3":
            algo = algo or "ppo"
            predict = sb3_policy_from_zip(path, algo, o_space, a_space, activation)
            source["algo"] = algo
        else:
            arch = arch or "mlp"
            sd = safe_torch_load(path, f"state dict {str(path)!r}")
            predict = _torch_predictor(state_dict_network(sd, arch, o_space, a_space, f"state dict {str(path)!r}"),
                                       o_space, a_space)
            source["arch"] = arch

        def factory() -> JointPolicy:  # the predictors are stateless and deterministic: shared (adapters are not)
            return SharedModelPolicy(adapter(predict) if adapter is not None else predict, controlled,
                                     track.reference(co).make() if co else None, name=spec)

        return factory, source, {}, entry_kind
    if ":" in spec:
        mod_name, _, attr = spec.partition(":")
        if not re.fullmatch(r"[A-Za-z_][\w.]*", mod_name) or not re.fullmatch(r"[A-Za-z_][\w.]*", attr):
            raise ValueError(f"policy {spec!r}: MODULE:ATTRIBUTE must be dotted Python names")
        if not allow_code:
            raise SubmissionRefused(f"policy {spec!r}", "MODULE:ATTRIBUTE imports and runs code; pass --allow-code "
                                                       "(allow_code=True) to evaluate submitted code")
        try:
            obj = importlib.import_module(mod_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"policy {spec!r}: cannot import: {e}") from None
        source = PolicySource(type="callable", spec=spec, ran_code=True)
        if isinstance(obj, type):
            if not all(callable(getattr(obj, m, None)) for m in ("reset", "act", "observe")):
                raise ValueError(f"policy {spec!r}: a class must implement reset/act/observe (JointPolicy)")
            return obj, source, {}, "submission"
        if isinstance(obj, JointPolicy):
            import copy

            return (lambda: copy.deepcopy(obj)), source, {}, "submission"
        if callable(obj):
            return (lambda: CallablePolicy(obj, spec)), source, {}, "submission"
        raise ValueError(f"policy {spec!r}: {type(obj).__name__} is neither a class, a JointPolicy nor a function")
    raise ValueError(f"policy {spec!r} is not a reference of {track.env_id} ({names}), sb3:PATH, torch:PATH "
                     f"or MODULE:ATTRIBUTE")
