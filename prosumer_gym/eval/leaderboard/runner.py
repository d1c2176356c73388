"""Evaluation jobs: one (track, policy, seed) episode each, run serially, over processes or
over Ray workers, always through :func:`~prosumer_gym.eval.leaderboard.core.run_episode`.

A job is plain data (env id, policy specification, options, seed), so every backend runs
exactly the same code on it and the results are identical whatever the fan-out (tested).
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from prosumer_gym.eval.leaderboard.core import mean_ci95, run_episode, track
from prosumer_gym.eval.leaderboard.policies import load_policy

__all__ = ["Job", "run_job", "run_jobs", "warm_clearing_kernel", "evaluate", "make_entry", "reference_jobs", "BACKENDS", "CURVE_POINTS"]

BACKENDS = ("serial", "process", "ray")
#: Learning curves are stored with at most this many points (bin means).
CURVE_POINTS = 400


@dataclass(frozen=True)
class Job:
    """One episode: ``policy`` (a ``--policy`` specification) on ``env_id``'s track, ``seed``."""

    env_id: str
    policy: str
    seed: int
    options: Mapping[str, Any] = field(default_factory=dict)  # algo, arch, role, activation, allow_code
    env_overrides: Mapping[str, Any] = field(default_factory=dict)  # test-size shrinking only (not for entries)


def run_job(job: Job) -> dict[str, Any]:
    """Run one job; returns ``{"seed", "metrics", "curve", "seconds"}``."""
    t0 = time.process_time()
    tr = track(job.env_id)
    factory, _, overrides, _ = load_policy(job.policy, tr, **dict(job.options))
    env = tr.make_env({**overrides, **dict(job.env_overrides)})
    policy = factory()
    threads = None
    # Every episode runs single-threaded (BLAS and torch): the same floats whatever the
    # backend or machine load, and parallelism comes from running episodes side by side.
    if "torch" in sys.modules:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=1):
            log, curve = run_episode(env, policy, job.seed, tr.curve)
            metrics = _metrics(tr, log)
    finally:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        if hasattr(env, "close"):
            env.close()
    return {"seed": int(job.seed), "metrics": metrics, "curve": curve, "seconds": time.process_time() - t0}


def _metrics(tr, log) -> dict[str, float]:
    got = tr.summarise(log)
    missing = [m.key for m in tr.metrics if m.key not in got]
    if missing:
        raise RuntimeError(f"{tr.env_id}: summarise() did not return {missing}")
    return {m.key: float(got[m.key]) for m in tr.metrics}


def warm_clearing_kernel(announce: bool = True) -> float:
    """Compile (first run) or load from numba's cache the P2PTrading-v0 clearing kernel by
    clearing one day of a 2 x 2 market through the public env; returns the seconds taken.
    Called before progress bars start so no bar's first step includes the compilation."""
    t0 = time.perf_counter()
    if announce:
        print("compiling the clearing kernel (first run only; later runs load numba's cache)...", end=" ",
              file=sys.stderr, flush=True)
    from prosumer_gym.envs import p2p_trading_v0

    env = p2p_trading_v0.parallel_env(n_sellers=2, n_buyers=2, n_days=1)
    try:
        env.reset(seed=0)
        env.step({a: env.action_space(a).sample() for a in env.agents})
    finally:
        env.close()
    dt = time.perf_counter() - t0
    if announce:
        print(f"{dt:.1f} s", file=sys.stderr, flush=True)
    return dt


def _init_worker() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def run_jobs(jobs: Sequence[Job], backend: str = "serial", workers: int | None = None, ray_address: str | None = None,
             progress: bool = False) -> list[dict[str, Any]]:
    """Results of ``jobs`` in the same order, computed by ``backend`` (``serial``,
    ``process`` with ``workers`` processes, or ``ray``: one Ray task per job on a local
    instance or the cluster at ``ray_address``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    jobs = list(jobs)
    bar = None
    if progress:
        from prosumer_gym.train.common import progress_bar

        if any(j.env_id == "P2PTrading-v0" for j in jobs):
            warm_clearing_kernel()  # its own step: the bar's ETA then starts with real episodes

        bar = progress_bar(len(jobs), desc="leaderboard", unit="episode")
    try:
        if backend == "serial" or (backend == "process" and (workers or 1) <= 1) or not jobs:
            out = []
            for j in jobs:
                out.append(run_job(j))
                if bar is not None:
                    bar.update(1)
            return out
        if backend == "process":
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=int(workers), mp_context=mp.get_context("spawn"),
                                     initializer=_init_worker) as pool:
                futs = [pool.submit(run_job, j) for j in jobs]
                out = []
                for f in futs:
                    out.append(f.result())
                    if bar is not None:
                        bar.update(1)
                return out
        return _run_ray(jobs, workers, ray_address, bar)
    finally:
        if bar is not None:
            bar.close()


def _run_ray(jobs: list[Job], workers: int | None, ray_address: str | None, bar) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise ValueError('--ray needs Ray: pip install "prosumer_gym[rllib]"') from None
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if ray_address:
            kw["address"] = ray_address
        else:
            kw["num_cpus"] = int(workers) if workers else None
        ray.init(**{k: v for k, v in kw.items() if v is not None})
        started = True
    try:
        remote = ray.remote(num_cpus=1)(_ray_job)
        refs = [remote.remote(asdict(j)) for j in jobs]
        out = []
        for r in refs:
            out.append(ray.get(r))
            if bar is not None:
                bar.update(1)
        return out
    finally:
        if started:
            ray.shutdown()


def _ray_job(job: dict[str, Any]) -> dict[str, Any]:
    _init_worker()
    return run_job(Job(**job))


def _downsample(curve: np.ndarray, points: int = CURVE_POINTS) -> list[float]:
    if curve.size <= points:
        return [float(x) for x in curve]
    edges = np.linspace(0, curve.size, points + 1).astype(int)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):  # bin means over the finite values (NaN: no value at that step)
        seg = curve[a:b][np.isfinite(curve[a:b])]
        out.append(float(seg.mean()) if seg.size else float("nan"))
    return out


def make_entry(env_id: str, name: str, kind: str, description: str, source: Mapping[str, Any],
               results: Sequence[Mapping[str, Any]], env_overrides: Mapping[str, Any] | None = None,
               group: str | None = None) -> dict[str, Any]:
    """A results-file entry from the per-seed job results of one policy (``env_overrides``:
    a changed scenario, recorded so the board leaves such unofficial entries out; ``group``:
    the entries that are training seeds of one method, e.g. ``"ppo"``)."""
    from prosumer_gym import __version__

    tr = track(env_id)
    metrics: dict[str, Any] = {}
    for m in tr.metrics:
        vals = [float(r["metrics"][m.key]) for r in results]
        mean, ci = mean_ci95(vals)
        metrics[m.key] = {"per_seed": vals, "mean": mean, "ci95": ci}
    n = min(len(r["curve"]) for r in results) if results else 0
    curve = np.mean([np.asarray(r["curve"][:n], dtype=np.float64) for r in results], axis=0) if n else np.zeros(0)
    return {
        "schema": 1,
        "env_id": env_id,
        "track_version": tr.version,
        "name": name,
        "kind": kind,
        "description": description,
        "source": dict(source),
        "seeds": [int(r["seed"]) for r in results],
        "metrics": metrics,
        "curve": _downsample(curve),
        "curve_steps": int(n),
        "cpu_seconds": float(sum(r["seconds"] for r in results)),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "prosumer_gym_version": __version__,
        "env_overrides": dict(env_overrides or {}),
        **({"group": str(group)} if group else {}),
    }


def evaluate(env_id: str, policy: str, name: str | None = None, n_seeds: int | None = None,
             backend: str = "serial", workers: int | None = None, ray_address: str | None = None,
             options: Mapping[str, Any] | None = None, progress: bool = False,
             env_overrides: Mapping[str, Any] | None = None, allow_code: bool = False) -> dict[str, Any]:
    """Evaluate ``policy`` on ``env_id``'s held-out scenarios (the first ``n_seeds`` seeds,
    default all) and return the results-file entry (means, 95% CIs, per-seed values, curve).

    ``env_overrides`` changes the track's env keywords (quick checks, tests): the entry
    records them and the board does not show it. ``allow_code``: accept a ``MODULE:ATTRIBUTE``
    policy (submitted code; refused otherwise).
    """
    tr = track(env_id)
    opts = {k: v for k, v in dict(options or {}).items() if v is not None}
    if allow_code:
        opts["allow_code"] = True
    _, source, _, kind = load_policy(policy, tr, **opts)  # refuse bad files before any work
    seeds = _seeds(tr, n_seeds)
    ov = dict(env_overrides or {})
    results = run_jobs([Job(env_id, policy, s, opts, ov) for s in seeds], backend, workers, ray_address, progress)
    group = None
    if kind == "submission":
        desc = f"{source.get('type')} {source.get('spec')}"
        label = name or source.get("spec")
    elif kind == "rl-baseline":
        desc, label, group = rl_baseline_label(source)
        label = name or label
    else:
        ref = tr.reference(source["spec"])
        desc, label = ref.description, name or ref.name
    return make_entry(env_id, str(label), kind, desc, source, results, ov, group)


def rl_baseline_label(source: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(description, entry name "<group>/seed<k>", group)`` of a shipped RL baseline."""
    group = str(source.get("group"))
    desc = (f"SB3 {str(source.get('algo')).upper()} on the {source.get('view')} view (role {source.get('role')}), "
            f"training seed {source.get('train_seed')}, {source.get('total_steps')} steps")
    return desc, f"{group}/seed{source.get('train_seed')}", group


def _seeds(tr, n_seeds: int | None) -> tuple[int, ...]:
    if n_seeds is None:
        return tr.seeds
    if not isinstance(n_seeds, int) or isinstance(n_seeds, bool) or not 1 <= n_seeds <= tr.n_seeds:
        raise ValueError(f"n_seeds must be an integer in [1, {tr.n_seeds}] for {tr.env_id}, got {n_seeds!r}")
    return tr.seeds[:n_seeds]


def reference_jobs(env_ids: Sequence[str], n_seeds: int | None = None,
                   cost: Callable[[str, str], float] | None = None) -> list[Job]:
    """Every reference of every track in ``env_ids`` on its held-out seeds, and every shipped
    RL baseline (``rlb:<name>``); longest first by
    ``cost(env_id, name)`` (e.g. the last measured CPU seconds) to balance the workers."""
    from prosumer_gym.train.baselines import shipped_baselines

    jobs = []
    for env_id in env_ids:
        tr = track(env_id)
        for ref in tr.references:
            jobs += [Job(env_id, ref.name, s) for s in _seeds(tr, n_seeds)]
        for name, _ in shipped_baselines(env_id):  # the published deep-RL baselines
            jobs += [Job(env_id, f"rlb:{name}", s) for s in _seeds(tr, n_seeds)]
    if cost is not None:
        jobs.sort(key=lambda j: -cost(j.env_id, j.policy))
    return jobs
