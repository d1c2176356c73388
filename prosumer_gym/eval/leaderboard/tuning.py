"""Score a policy by its track's own statistic on *tuning* scenarios, for hyperparameter
searches that rank trials the way the board will rank the result.

The board scores an entry by the normalised composite (track baseline 0, top reference 100,
per-seed paired with the baseline; :func:`~prosumer_gym.eval.leaderboard.stats.seed_scores`)
over the held-out scenarios ``HELD_OUT_SEED_BASE + k`` and the held-out households. A
search tuned on the env's reward after a few episodes optimises something else (the one
study run with it ranked below the untuned group on the board, docs/baselines.md).
:class:`TrackObjective` computes the same composite on the scenarios
``TUNING_SEED_BASE + k`` with the **training** households (``split="train"`` where the
track has a split), so the search never sees a reported scenario or household. The
references that fix the scale (the track's baseline and top entries) are evaluated once on
those scenarios and cached in a JSON file keyed by everything they depend on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from prosumer_gym.core.io import atomic_write_text
from prosumer_gym.eval.leaderboard.core import TUNING_SEED_BASE, track
from prosumer_gym.eval.leaderboard.runner import Job, make_entry, run_jobs
from prosumer_gym.eval.leaderboard.stats import baseline_by_seed, normalisers, seed_scores

__all__ = ["TrackObjective", "tuning_seeds", "tuning_overrides"]


def tuning_seeds(n: int, base: int = TUNING_SEED_BASE) -> list[int]:
    """The first ``n`` tuning scenario seeds."""
    if int(n) != n or n < 1:
        raise ValueError(f"n_eval_episodes must be an integer >= 1, got {n!r}")
    return [int(base) + k for k in range(int(n))]


def tuning_overrides(env_id: str) -> dict[str, Any]:
    """The track's env keywords changed for tuning: the training households where it has a split."""
    return {"split": "train"} if "split" in track(env_id).env_kwargs else {}


class TrackObjective:
    """``objective(policy_spec) -> mean composite score`` on ``n_seeds`` tuning scenarios.

    ``policy_spec``: what ``prosumer-gym-leaderboard eval --policy`` takes (an
    ``exported:PATH`` in a search); ``options``: its ``role``/``algo``/... ``cache``: where
    the references' entries are kept (recomputed when absent or made for other settings).
    """

    def __init__(self, env_id: str, n_seeds: int, cache: str | Path | None = None) -> None:
        self.env_id, self.track = env_id, track(env_id)
        self.seeds = tuning_seeds(n_seeds)
        self.overrides = tuning_overrides(env_id)
        refs = list(dict.fromkeys([self.track.baseline, *self.track.top]))
        key = {"env_id": env_id, "track_version": self.track.version, "seeds": self.seeds,
               "overrides": self.overrides, "references": refs}
        entries = self._cached(Path(cache), key) if cache is not None else None
        if entries is None:
            entries = [self._entry(r, "reference", {"type": "reference", "spec": r}, {}) for r in refs]
            if cache is not None:
                atomic_write_text(Path(cache), json.dumps({"key": key, "entries": entries}, default=float) + "\n")
        self.references = entries
        self.norm = normalisers(self.track, entries)
        self.base = baseline_by_seed(self.track, entries)
        missing = [m.key for m in self.track.metrics if m.weight > 0 and self.norm.get(m.key) is None]
        if missing:
            raise ValueError(f"{env_id}: the references give no scale for {missing} on the tuning seeds")

    @staticmethod
    def _cached(path: Path, key: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return data["entries"] if data.get("key") == json.loads(json.dumps(key)) else None

    def _entry(self, spec: str, kind: str, source: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
        jobs = [Job(self.env_id, spec, s, dict(options), self.overrides) for s in self.seeds]
        return make_entry(self.env_id, spec, kind, "", source, run_jobs(jobs, "serial"), self.overrides)

    def scores(self, policy_spec: str, options: Mapping[str, Any] | None = None) -> np.ndarray:
        """The policy's per-seed composite scores on the tuning scenarios."""
        opts = {k: v for k, v in dict(options or {}).items() if v is not None}
        entry = self._entry(policy_spec, "submission", {"type": "tuning", "spec": policy_spec}, opts)
        _, comp = seed_scores(self.track, entry, self.norm, self.base)
        return np.asarray(comp, dtype=np.float64)

    def __call__(self, policy_spec: str, options: Mapping[str, Any] | None = None) -> float:
        return float(np.mean(self.scores(policy_spec, options)))


