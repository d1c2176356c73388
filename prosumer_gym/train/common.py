"""Shared pieces of the training pipeline: env resolution, hyperparameter files,
``key=value`` parsing, atomic files and checkpoints, TensorBoard writers, progress bars.

Nothing here touches global state (RNGs, torch threads): entry points (``cli.main``,
the eval scripts) decide that.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from prosumer_gym.core.io import atomic_write_bytes, atomic_write_text

__all__ = [
    "EnvSpec",
    "resolve_env",
    "available_envs",
    "load_hyperparams",
    "hyperparams_path",
    "parse_kv",
    "deep_update",
    "atomic_write_text",
    "atomic_write_bytes",
    "atomic_torch_save",
    "list_checkpoints",
    "make_summary_writer",
    "progress_bar",
    "to_jsonable",
]


# --------------------------------------------------------------------------- environments
@dataclass(frozen=True)
class EnvSpec:
    """Where an environment lives: its Gymnasium id (single-agent view, may be ``None``)
    and its PettingZoo module (``prosumer_gym.envs.<name>_v0``, may be ``None``)."""

    name: str
    gym_id: str | None
    pettingzoo_module: str | None

    def pettingzoo(self):
        """The PettingZoo module (``parallel_env``, ``env``, ``raw_env``)."""
        if self.pettingzoo_module is None:
            raise ValueError(f"{self.name} has no PettingZoo module")
        return importlib.import_module(self.pettingzoo_module)

    @property
    def file_stem(self) -> str:
        """Name of its hyperparameter file (without ``.yml``)."""
        return self.gym_id or self.name


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _pz_module_for(gym_id: str) -> str | None:
    import prosumer_gym

    module = prosumer_gym.PETTINGZOO_MODULES.get(gym_id)
    if module is None and gym_id in prosumer_gym.ENV_VERSIONS:
        module = prosumer_gym.ENV_VERSIONS[gym_id][1]
    return module if module is not None and _module_exists(module) else None


def available_envs() -> list[EnvSpec]:
    """Every registered Gymnasium id (``prosumer_gym.REGISTERED``) with its PettingZoo module."""
    import prosumer_gym

    return [EnvSpec(g, g, _pz_module_for(g)) for g in prosumer_gym.REGISTERED]


def resolve_env(name: str) -> EnvSpec:
    """Resolve ``name``: a Gymnasium id of ``prosumer_gym.ENV_IDS`` (``"P2PTrading-v0"``), a
    PettingZoo module name (``"p2p_trading_v0"``) or a full module path."""
    import prosumer_gym

    if name in prosumer_gym.ENV_IDS:
        if name not in prosumer_gym.REGISTERED:
            raise ValueError(f"{name} is not shipped in this version; registered: {', '.join(prosumer_gym.REGISTERED)}")
        return EnvSpec(name, name, _pz_module_for(name))
    if name in prosumer_gym.ENV_VERSIONS:  # a newer version of an env (e.g. P2PRecommendation-v1)
        return EnvSpec(name, name, _pz_module_for(name))
    module = name if "." in name else f"prosumer_gym.envs.{name}"
    if re.fullmatch(r"[\w.]+_v\d+", module) and _module_exists(module):
        gym_id = next((g for g in prosumer_gym.REGISTERED if _pz_module_for(g) == module), None)
        return EnvSpec(gym_id or name, gym_id, module)
    known = ", ".join(prosumer_gym.REGISTERED)
    raise ValueError(f"unknown environment {name!r}; use a registered Gymnasium id ({known}) "
                     f"or a PettingZoo module name such as p2p_trading_v0")


# --------------------------------------------------------------------------- hyperparameters
def hyperparams_path(spec: EnvSpec) -> Path | None:
    """The packaged YAML file of ``spec`` (``prosumer_gym/train/hyperparams/<id>.yml``), if any."""
    base = resources.files("prosumer_gym.train") / "hyperparams"
    for stem in dict.fromkeys((spec.file_stem, spec.name)):
        p = base / f"{stem}.yml"
        if p.is_file():
            return Path(str(p))
    return None


def load_hyperparams(spec: EnvSpec, algo: str, path: str | os.PathLike | None = None) -> tuple[dict, dict, Path | None]:
    """``(env_kwargs, algo_section, file)`` from the env's YAML file (or ``path``).

    The file has a top-level ``env_kwargs`` (shared) and one section per algorithm. Missing
    file or section: empty dicts (library defaults).
    """
    file = Path(path) if path is not None else hyperparams_path(spec)
    if file is None:
        return {}, {}, None
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"cannot parse hyperparameter file {file}: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"hyperparameter file {file} must hold a mapping, got {type(data).__name__}")
    env_kwargs = dict(data.get("env_kwargs") or {})
    section = data.get(algo) or {}
    if not isinstance(section, dict):
        raise ValueError(f"section {algo!r} of {file} must be a mapping")
    return env_kwargs, dict(section), file


_EXP_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+")


def _exp_numbers(value: Any) -> Any:
    """``"1e-3"`` -> ``0.001`` inside ``value``: YAML 1.1 (PyYAML) reads an exponent without
    a dot as a string, and the envs take real numbers only (no string is converted)."""
    if isinstance(value, str) and _EXP_NUMBER.fullmatch(value):
        return float(value)
    if isinstance(value, dict):
        return {k: _exp_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exp_numbers(v) for v in value]
    return value


def parse_kv(items: Iterable[str] | None, what: str = "argument") -> dict[str, Any]:
    """``["n_sellers=5", "mechanism:debate", "mechanism_kwargs={NP: 20}"]`` -> dict.

    Values are parsed as YAML (numbers, booleans, lists, mappings; bare words are strings;
    ``1e-3`` is a number, as in YAML 1.2). Dotted keys set nested values: ``agent_kwargs.lr=0.01``.
    """
    out: dict[str, Any] = {}
    for item in items or ():
        m = re.match(r"^([A-Za-z_][\w.]*)\s*[=:]\s*(.*)$", item, flags=re.S)
        if not m:
            raise ValueError(f"{what} {item!r} must look like key=value")
        key, raw = m.group(1), m.group(2)
        try:
            val = _exp_numbers(yaml.safe_load(raw)) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ValueError(f"{what} {item!r}: cannot parse the value: {e}") from None
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"{what} {item!r}: {p} is not a mapping")
        node[leaf] = val
    return out


def deep_update(base: Mapping[str, Any], upd: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge (``upd`` wins); returns a new dict."""
    out = dict(base)
    for k, v in upd.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = v
    return out


def to_jsonable(obj: Any) -> Any:
    """Numbers/arrays/tuples -> plain JSON types (for config files and summaries)."""
    import numpy as np

    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------- checkpoints
def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` into a temporary file in the same folder, then ``os.replace``."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


_CKPT_RE = re.compile(r"^ckpt_(\d+)\.pt$")


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of ``ckpt_<step>.pt`` files in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _CKPT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


# --------------------------------------------------------------------------- logging
_EVENTS_RE = re.compile(r"^events\.out\.tfevents\.(\d+)\.")


def _wait_past_existing_events(log_dir: Path) -> None:
    """TensorBoard reads a folder's event files in name order. A name holds the creation
    second, then a per-process file counter that is not zero-padded (``.9`` sorts after
    ``.10``), so a file opened in the same second as an existing one may be read before it
    (and a resume's purge applied in the wrong order). Wait for the next second."""
    newest = max((int(m.group(1)) for p in log_dir.glob("events.out.tfevents.*") if (m := _EVENTS_RE.match(p.name))),
                 default=None)
    while newest is not None and int(time.time()) <= newest:
        time.sleep(0.02)


def make_summary_writer(log_dir: Path, purge_step: int | None = None):
    """A TensorBoard ``SummaryWriter`` on ``log_dir``; with ``purge_step`` (resume), events
    of an earlier run at steps ``>= purge_step`` are hidden, so the resumed run continues
    the same curves without duplicates. The new event file sorts after existing ones."""
    from torch.utils.tensorboard import SummaryWriter

    log_dir.mkdir(parents=True, exist_ok=True)
    _wait_past_existing_events(log_dir)
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step, flush_secs=30)


def progress_bar(total: int, initial: int = 0, desc: str = "", unit: str = "step", enabled: bool = True):
    """A tqdm bar on stderr (a no-op object when ``enabled`` is False)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=True)


def dump_yaml(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(to_jsonable(dict(data)), sort_keys=False, default_flow_style=None)


def dump_json(data: Any) -> str:
    return json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n"


def csv_text(rows: Sequence[Mapping[str, Any]], fields: Sequence[str] | None = None) -> str:
    import csv

    if fields is None:
        fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
