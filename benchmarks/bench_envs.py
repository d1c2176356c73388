"""Throughput of every environment, side by side in one interleaved run (issue 17).

    python benchmarks/bench_envs.py [--rounds 5] [--steps 300] [--max-seconds 1.0]
                                    [--sizes 5,15,50,150] [--with-500] [--no-scaling]
                                    [--seed 0] [--envs ID,ID] [--num-envs 16] [--no-vec]
                                    [--quick] [--out FILE.json]

What is measured
    * Every registered env at its default (paper) size, through the PettingZoo parallel API
      (``<market>_v0.parallel_env()``) and the Gymnasium view (``gym.make(id)`` after
      ``import prosumer_gym``), random actions: every action space is seeded from one
      ``numpy`` Generator (``--seed``) and sampled once per step for the live agents.
    * A scaling table: P2PTrading-v0 (``n_sellers = n_buyers = n``, default clearing) and
      P2PRecommendation-v0 (``n_producers = n_consumers = n``, oracle off as by default) at
      ``--sizes`` agents per side (PettingZoo API), plus 500 with ``--with-500``.
    * Batched VecEnvs (view ``vec``, ``--num-envs`` markets, random actions): ProsumerSharing-v0's
      array-batched ``ProsumerSharingVecEnv`` and the ``SequentialVecEnv`` of StorageSharing-v0,
      EnergyCollective-v0 and P2PTrading-v0 (``prosumer_gym/core/vec.py``), next to SB3's
      ``DummyVecEnv`` over ``gym.make`` (view ``dummyvec``) for comparison. steps/s of a batch
      counts market steps (``num_envs`` per ``VecEnv.step``); agent-steps/s likewise.
    * CityLearn (``citylearn`` 1.8, its bundled ``citylearn_challenge_2022_phase_1``
      dataset) as a peer if it is importable; otherwise the run says it is skipped.

How
    One *round* runs every case once, in the same order; ``--rounds`` rounds are interleaved
    so that a change of machine load hits every case alike. In a round a case is reset with
    seed ``seed + round`` and then stepped ``--steps`` times or until ``--max-seconds`` of
    stepping (at least 3 steps); before the first round every case is warmed up with 3
    untimed steps (numba compilation, caches). Only ``step()`` is timed: action sampling, the reset at the
    start and any reset at an episode's end are outside the clock. steps/s = steps / time in
    ``step()``; agent-steps/s counts the agents that acted in each step (1 in a Gymnasium
    view). Reported: the minimum (worst round) and the median over the rounds, and for the
    scaling table ms per step (median and best round). The machine (CPU count, load average
    before and after) is printed and written with ``--out`` (JSON, written atomically).

``--envs`` limits the run to some env ids (e.g. ``--envs EUber-v0``). ``--quick`` is a smoke test (2 rounds of 3 steps, scaling at 5 only); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

import prosumer_gym  # noqa: F401  (registers the ids)
from prosumer_gym import ENV_IDS, PETTINGZOO_MODULES
from prosumer_gym.core.io import atomic_write_text

STEP_UNIT = {
    "P2PTrading-v0": "a day",
    "P2PRecommendation-v0": "a day",
    "EUber-v0": "a 15-min slot",
    "StorageSharing-v0": "a slot",
    "ProsumerSharing-v0": "a day",
    "EnergyCollective-v0": "an hour",
}
SCALING = {  # env id -> keywords of a market with n agents per side
    "P2PTrading-v0": lambda n: {"n_sellers": n, "n_buyers": n},
    "P2PRecommendation-v0": lambda n: {"n_producers": n, "n_consumers": n},
}


@dataclass
class Case:
    """One thing to time: an env built once, stepped in every round."""

    name: str
    env_id: str
    view: str  # "pettingzoo" | "gymnasium" | "peer"
    make: Callable[[], Any]
    size: int | None = None
    env: Any = None
    rates: list[float] = field(default_factory=list)
    agent_rates: list[float] = field(default_factory=list)
    agents: int = 0
    num_envs: int = 0  # markets per step (batched views)


# ------------------------------------------------------------------------------ drivers
class _Driver:
    """reset / one random step of an env; ``step`` returns (seconds in env.step, agents, done)."""

    def __init__(self, env: Any, rng: np.random.Generator) -> None:
        self.env, self.rng = env, rng

    def _seed(self, space: gym.Space) -> gym.Space:
        space.seed(int(self.rng.integers(2**31 - 1)))
        return space


class _PZDriver(_Driver):
    def __init__(self, env: Any, rng: np.random.Generator) -> None:
        super().__init__(env, rng)
        self.spaces = {a: self._seed(env.action_space(a)) for a in env.possible_agents}

    def reset(self, seed: int) -> int:
        self.env.reset(seed=seed)
        return len(self.env.agents)

    def step(self) -> tuple[float, int, bool]:
        acts = {a: self.spaces[a].sample() for a in self.env.agents}
        t0 = time.perf_counter()
        self.env.step(acts)
        dt = time.perf_counter() - t0
        return dt, len(acts), not self.env.agents


class _GymDriver(_Driver):
    def __init__(self, env: Any, rng: np.random.Generator) -> None:
        super().__init__(env, rng)
        self.space = self._seed(env.action_space)

    def reset(self, seed: int) -> int:
        self.env.reset(seed=seed)
        return 1

    def step(self) -> tuple[float, int, bool]:
        act = self.space.sample()
        t0 = time.perf_counter()
        out = self.env.step(act)
        dt = time.perf_counter() - t0
        return dt, 1, bool(out[2] or out[3])


class _VecDriver(_Driver):
    """An SB3 ``VecEnv``: one ``step`` = ``num_envs`` market steps (auto-reset inside)."""

    def __init__(self, env: Any, rng: np.random.Generator) -> None:
        super().__init__(env, rng)
        self.space = self._seed(env.action_space)

    def reset(self, seed: int) -> int:
        self.env.seed(seed)
        self.env.reset()
        return self.env.num_envs

    def step(self) -> tuple[float, int, bool]:
        n = self.env.num_envs
        act = np.stack([self.space.sample() for _ in range(n)])
        t0 = time.perf_counter()
        self.env.step(act)
        dt = time.perf_counter() - t0
        return dt, n, False


class _CityLearnDriver(_Driver):
    """citylearn 1.8 (old Gym API: 4-tuple step, a list of per-building Box spaces)."""

    def __init__(self, env: Any, rng: np.random.Generator) -> None:
        super().__init__(env, rng)
        self.spaces = [self._seed(s) for s in env.action_space]

    def reset(self, seed: int) -> int:
        self.env.reset()
        return len(self.spaces)

    def step(self) -> tuple[float, int, bool]:
        acts = [s.sample() for s in self.spaces]
        t0 = time.perf_counter()
        out = self.env.step(acts)
        dt = time.perf_counter() - t0
        done = out[2] if len(out) == 4 else (out[2] or out[3])
        return dt, len(acts), bool(np.all(done))


def _driver(case: Case, rng: np.random.Generator) -> _Driver:
    return {"pettingzoo": _PZDriver, "gymnasium": _GymDriver, "peer": _CityLearnDriver, "vec": _VecDriver,
            "dummyvec": _VecDriver}[case.view](case.env, rng)


def run_case(case: Case, drv: _Driver, seed: int, steps: int, max_seconds: float) -> tuple[float, float]:
    """(steps/s, agent-steps/s) of one round of ``case`` (a batch's step counts its markets)."""
    case.agents = drv.reset(seed)
    per_step = case.num_envs or 1
    busy, n, agent_steps = 0.0, 0, 0
    while n < steps and (busy < max_seconds or n < 3):
        dt, k, done = drv.step()
        busy += dt
        n += 1
        agent_steps += k
        if done:
            drv.reset(seed + 7919 * n)
    return per_step * n / busy, agent_steps / busy


# ------------------------------------------------------------------------------ cases
def _pz_maker(env_id: str, **kw: Any) -> Callable[[], Any]:
    return lambda: importlib.import_module(PETTINGZOO_MODULES[env_id]).parallel_env(**kw)


def _citylearn_case() -> tuple[Case | None, str]:
    try:
        from citylearn.citylearn import CityLearnEnv  # type: ignore[import-not-found]
    except Exception as exc:  # not installed (or broken): a peer is optional
        return None, f"skipped: citylearn is not importable ({type(exc).__name__}: {exc})"
    ver = getattr(importlib.import_module("citylearn"), "__version__", "?")
    return Case(f"CityLearn {ver} (peer)", "citylearn", "peer",
                lambda: CityLearnEnv("citylearn_challenge_2022_phase_1")), f"citylearn {ver}"


#: env id -> "module:class" of its batched VecEnv (``num_envs`` keyword)
VEC_ENVS = {
    "P2PTrading-v0": "prosumer_gym.envs.p2p_trading.vec:P2PTradingVecEnv",
    "StorageSharing-v0": "prosumer_gym.envs.storage_sharing.vec:StorageSharingVecEnv",
    "ProsumerSharing-v0": "prosumer_gym.envs.prosumer_sharing.vec:ProsumerSharingVecEnv",
    "EnergyCollective-v0": "prosumer_gym.envs.energy_collective.vec:EnergyCollectiveVecEnv",
}


def _vec_maker(env_id: str, num_envs: int) -> Callable[[], Any]:
    module, cls = VEC_ENVS[env_id].split(":")
    return lambda: getattr(importlib.import_module(module), cls)(num_envs=num_envs)


def _dummy_vec_maker(env_id: str, num_envs: int) -> Callable[[], Any]:
    def make() -> Any:
        from stable_baselines3.common.vec_env import DummyVecEnv

        return DummyVecEnv([lambda: gym.make(env_id) for _ in range(num_envs)])
    return make


def build_cases(sizes: list[int], envs: list[str] | None = None, num_envs: int = 0) \
        -> tuple[list[Case], list[Case], dict[str, str]]:
    """The cases: ``envs`` (default: every registered id) in both views, their batched views
    with ``num_envs`` markets (0: none), CityLearn, and the scaling table at ``sizes``."""
    main = []
    for env_id in ENV_IDS:
        if env_id not in prosumer_gym.REGISTERED or (envs is not None and env_id not in envs):
            continue
        main.append(Case(env_id, env_id, "pettingzoo", _pz_maker(env_id)))
        main.append(Case(env_id, env_id, "gymnasium", lambda env_id=env_id: gym.make(env_id)))
        if num_envs and env_id in VEC_ENVS:
            main.append(Case(env_id, env_id, "vec", _vec_maker(env_id, num_envs), num_envs=num_envs))
            if env_id != "ProsumerSharing-v0":  # its VecEnv is the platform view, not gym.make's default
                main.append(Case(env_id, env_id, "dummyvec", _dummy_vec_maker(env_id, num_envs), num_envs=num_envs))
    peers: dict[str, str] = {}
    peer, msg = _citylearn_case()
    peers["citylearn"] = msg
    if peer is not None:
        main.append(peer)
    scaling = [Case(f"{env_id} {n}x{n}", env_id, "pettingzoo", _pz_maker(env_id, **kw(n)), size=n)
               for env_id, kw in SCALING.items() for n in sizes if envs is None or env_id in envs]
    return main, scaling, peers


# ------------------------------------------------------------------------------ main
def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "loadavg_before": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=300, help="steps per case and round (at most)")
    p.add_argument("--max-seconds", type=float, default=1.0, help="stepping time per case and round (at most)")
    p.add_argument("--sizes", default="5,15,50,150", help="agents per side of the scaling table")
    p.add_argument("--with-500", action="store_true", help="add 500 per side to the scaling table (slow)")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--envs", default=None, help="comma-separated env ids to run (default: all)")
    p.add_argument("--num-envs", type=int, default=16, help="markets per batched VecEnv (view vec/dummyvec)")
    p.add_argument("--no-vec", action="store_true", help="skip the batched VecEnv rows")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 rounds of 3 steps, scaling at 5")
    p.add_argument("--out", default=None, help="JSON results (written atomically)")
    a = p.parse_args(argv)
    if a.quick:
        a.rounds, a.steps, a.max_seconds, a.sizes, a.num_envs = 2, 3, 0.05, "5", 2
    envs = None
    if a.envs is not None:
        envs = [e.strip() for e in a.envs.split(",") if e.strip()]
        bad = [e for e in envs if e not in prosumer_gym.REGISTERED]
        if bad or not envs:
            raise ValueError(f"--envs must be a comma-separated list of {sorted(prosumer_gym.REGISTERED)}, got {a.envs!r}")
    if a.num_envs < 1:
        raise ValueError(f"--num-envs must be >= 1, got {a.num_envs}")
    for name in ("rounds", "steps"):
        if getattr(a, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(a, name)}")
    if not a.max_seconds > 0:
        raise ValueError(f"--max-seconds must be > 0, got {a.max_seconds}")
    try:
        sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--sizes must be a comma-separated list of integers >= 1, got {a.sizes!r}") from None
    if any(n < 1 for n in sizes):
        raise ValueError(f"--sizes must be a comma-separated list of integers >= 1, got {a.sizes!r}")
    if a.with_500 and 500 not in sizes:
        sizes.append(500)
    if a.no_scaling:
        sizes = []

    info = machine()
    main_cases, scaling, peers = build_cases(sizes, envs, 0 if a.no_vec else a.num_envs)
    cases = main_cases + scaling
    rng = np.random.default_rng(a.seed)
    t_build = time.perf_counter()
    drivers = []
    for c in cases:
        c.env = c.make()
        drivers.append(_driver(c, rng))
    for c, d in zip(cases, drivers):  # warm-up (JIT compilation, caches), not recorded
        run_case(c, d, a.seed, 3, 0.0)
    print(f"{len(cases)} cases built and warmed up in {time.perf_counter() - t_build:.1f} s; {a.rounds} interleaved rounds, "
          f"<= {a.steps} steps or {a.max_seconds:g} s of stepping per case and round", flush=True)
    for msg in peers.values():
        print(f"peer: {msg}")
    t_run = time.perf_counter()
    for r in range(a.rounds):
        for c, d in zip(cases, drivers):
            sps, asps = run_case(c, d, a.seed + r, a.steps, a.max_seconds)
            c.rates.append(sps)
            c.agent_rates.append(asps)
        print(f"round {r + 1}/{a.rounds} done ({time.perf_counter() - t_run:.0f} s)", flush=True)
    info["loadavg_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    rows = []
    print(f"\n{'env':28s} {'view':10s} {'one step':14s} {'agents':>6s} {'steps/s min':>11s} {'median':>8s} "
          f"{'agent-steps/s min':>17s} {'median':>8s}")
    for c in main_cases:
        row = {"env": c.name, "view": c.view, "unit": STEP_UNIT.get(c.env_id, "an hour"), "agents": c.agents,
               "num_envs": c.num_envs or None,
               "steps_per_s_min": min(c.rates), "steps_per_s_median": statistics.median(c.rates),
               "agent_steps_per_s_min": min(c.agent_rates),
               "agent_steps_per_s_median": statistics.median(c.agent_rates), "rounds": c.rates}
        rows.append(row)
        print(f"{c.name:28s} {c.view:10s} {row['unit']:14s} {c.agents:6d} {row['steps_per_s_min']:11,.0f} "
              f"{row['steps_per_s_median']:8,.0f} {row['agent_steps_per_s_min']:17,.0f} "
              f"{row['agent_steps_per_s_median']:8,.0f}")
    scale_rows = []
    if scaling:
        print(f"\nscaling (PettingZoo API, ms/step: median over rounds / best round), agents per side")
        print(f"{'env':22s} " + " ".join(f"{n:>15d}" for n in sizes))
        for env_id in SCALING:
            cells = []
            for c in (c for c in scaling if c.env_id == env_id):
                ms = [1e3 / s for s in c.rates]
                scale_rows.append({"env": env_id, "size": c.size, "ms_per_step_median": statistics.median(ms),
                                   "ms_per_step_best": min(ms), "rounds_ms": ms})
                cells.append(f"{statistics.median(ms):7.2f} / {min(ms):<6.2f}")
            print(f"{env_id:22s} " + " ".join(f"{s:>15s}" for s in cells))
    la = info["loadavg_before"], info["loadavg_after"]
    print(f"\nmachine: {info['processor']}, {info['cpu_count']} CPUs, {info['platform']}; load average "
          f"before {la[0]} after {la[1]}; command: {' '.join([os.path.basename(sys.argv[0])] + (argv or sys.argv[1:]))}")
    result = {"machine": info, "command": [sys.argv[0]] + (argv if argv is not None else sys.argv[1:]),
              "rounds": a.rounds, "steps": a.steps, "max_seconds": a.max_seconds, "seed": a.seed,
              "quick": a.quick, "envs": rows, "scaling": scale_rows, "peers": peers}
    if a.out:
        atomic_write_text(a.out, json.dumps(result, indent=1) + "\n")
        print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
