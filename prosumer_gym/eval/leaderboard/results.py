"""The results file: JSON lines, append-only, written atomically under a lock.

Every evaluation appends one line (an *entry*, see :func:`~prosumer_gym.eval.leaderboard.runner.make_entry`);
nothing is ever overwritten in place: the new file is written beside the old one, flushed
and renamed over it (``os.replace``), under an exclusive ``fcntl`` lock so concurrent
evaluations do not lose each other's lines. The board shows, per env and name, the newest
entry of the current track version; older lines stay as history.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_RESULTS", "PUBLISHED_REFERENCES", "append_entries", "load_entries", "latest_entries",
           "update_entries", "board_entries"]

#: The repository's published results (rebuilt by ``prosumer-gym-leaderboard rebuild``).
DEFAULT_RESULTS = Path("leaderboard") / "results.jsonl"
#: The reference entries of the last published rebuild, shipped inside the package so an
#: evaluation is scored against the published normalisers wherever it runs.
PUBLISHED_REFERENCES = Path(__file__).with_name("published_references.jsonl")

_REQUIRED = ("schema", "env_id", "track_version", "name", "kind", "seeds", "metrics")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _dumps(entry: Mapping[str, Any]) -> str:
    def clean(x: Any) -> Any:  # NaN is not JSON: store null
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, Mapping):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(entry), sort_keys=True, allow_nan=False)


def _replace(path: Path, text: str) -> None:
    from prosumer_gym.core.io import atomic_write_text

    atomic_write_text(path, text)


def _check(entry: Mapping[str, Any], where: str) -> None:
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        raise ValueError(f"{where}: entry lacks {missing}")


def load_entries(path: str | Path = DEFAULT_RESULTS) -> list[dict[str, Any]]:
    """All entries of the results file (``[]`` if it does not exist)."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for k, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{p}:{k}: not a JSON line ({err})") from None
        _check(e, f"{p}:{k}")
        out.append(e)
    return out


def update_entries(change: Callable[[list[dict[str, Any]]], Iterable[Mapping[str, Any]]],
                   path: str | Path = DEFAULT_RESULTS) -> Path:
    """Under the lock: read the file, write ``change(entries)`` beside it, rename into place.

    Reading and writing under one lock means nothing another process appended in between
    can be lost (a rebuild that runs for minutes computes first and calls this at the end).
    """
    p = Path(path)
    with _locked(p):
        items = list(change(load_entries(p)))
        for e in items:
            _check(e, "entry")
        _replace(p, "".join(_dumps(e) + "\n" for e in items))
    return p


def append_entries(entries: Iterable[Mapping[str, Any]], path: str | Path = DEFAULT_RESULTS) -> Path:
    """Append ``entries`` atomically (old entries + new lines, renamed into place)."""
    new = list(entries)
    for e in new:
        _check(e, "new entry")
    return update_entries(lambda old: old + new, path)


def latest_entries(entries: Iterable[Mapping[str, Any]], versions: Mapping[str, int] | None = None
                   ) -> dict[str, list[dict[str, Any]]]:
    """Per env id, the newest entry of each name (of the current track version if given;
    entries evaluated with ``env_overrides`` are left out)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for e in entries:
        if versions is not None and versions.get(e["env_id"]) != e["track_version"]:
            continue
        if e.get("env_overrides"):  # a changed scenario: not comparable with the board
            continue
        latest[(e["env_id"], e["name"])] = dict(e)  # later lines win
    out: dict[str, list[dict[str, Any]]] = {}
    for (env_id, _), e in latest.items():
        out.setdefault(env_id, []).append(e)
    return out


def board_entries(env_id: str, version: int, path: str | Path = DEFAULT_RESULTS) -> list[dict[str, Any]]:
    """The newest entries of ``env_id`` in ``path``, completed by the published reference
    entries (shipped with the package) for references the file lacks."""
    own = latest_entries(load_entries(path), {env_id: version}).get(env_id, [])
    names = {e["name"] for e in own}
    shipped = latest_entries(load_entries(PUBLISHED_REFERENCES), {env_id: version}).get(env_id, [])
    return own + [e for e in shipped if e["name"] not in names]
