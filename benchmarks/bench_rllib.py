"""RLlib env-sampling throughput on P2PTrading-v0 with 0, 1, 2 and all local env runners.

    python benchmarks/bench_rllib.py [--runners 0,1,2,all] [--steps 730] [--repeats 3]
        [--env-kwargs n_sellers=15 n_buyers=15] [--ray-address ADDR] [--out FILE.json]

Needs the ``rllib`` extra. For each number of env runners ``n`` an RLlib PPO algorithm
(policy mapping ``role``: one module for all sellers) is built on a local Ray instance with
``num_cpus`` = the machine's cores (or on ``--ray-address``); ``n = 0`` samples in the
driver process, ``n >= 1`` in ``n`` remote env runners in parallel. After ``--settle`` seconds
(Ray prestarts worker processes, which load the CPUs) and one untimed warm-up round, each
repeat asks every runner for ``--steps`` env steps (``EnvRunner.sample(num_timesteps=...)``,
exploration on, the PPO module's inference included; the episodes stay in the runners, only
their step counts come back) and times the wall clock of the whole round. Reported: env
steps/s (one env step = one trading day of all sellers) and agent steps/s (x sellers), best
and median of the repeats, plus the raw PettingZoo env with random actions in one process
as the ceiling without RLlib (best of the repeats). ``all`` = ``os.cpu_count()``. Timings depend on the machine's
load: run it on an otherwise idle machine (numbers in docs/scale_out.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def raw_env_rate(env_kwargs: dict, steps: int, seed: int = 0) -> float:
    """Env steps/s of the PettingZoo env alone (random actions, one process)."""
    from prosumer_gym.envs import p2p_trading_v0

    env = p2p_trading_v0.parallel_env(**env_kwargs)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    done = 0
    t0 = time.perf_counter()
    while done < steps:
        if not env.agents:
            env.reset()
        env.step({a: int(rng.integers(env.action_space(a).n)) for a in env.agents})
        done += 1
    return steps / (time.perf_counter() - t0)


def _sample_count(runner, steps: int) -> int:
    eps = runner.sample(num_timesteps=steps)
    return int(sum(e.env_steps() for e in eps))


def sampling_rate(n_runners: int, env_kwargs: dict, steps: int, repeats: int, seed: int) -> dict:
    """Build PPO with ``n_runners`` env runners and time parallel sampling rounds."""
    from prosumer_gym.train.rllib import build_config

    cfg = build_config("P2PTrading-v0", "ppo", env_kwargs=env_kwargs, policy_mapping="role", seed=seed,
                       num_env_runners=n_runners)
    algo = cfg.build_algo()
    try:
        def round_(k: int) -> int:
            if n_runners == 0:
                return _sample_count(algo.env_runner, k)
            return sum(algo.env_runner_group.foreach_env_runner(lambda r: _sample_count(r, k),
                                                                local_env_runner=False))

        round_(steps)  # warm-up round (untimed): env resets, first inference calls, worker imports
        rates, counts, secs = [], [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            n = round_(steps)
            dt = time.perf_counter() - t0
            rates.append(n / dt)
            counts.append(n)
            secs.append(dt)
    finally:
        algo.stop()
    return {"num_env_runners": n_runners, "env_steps_per_round": counts, "seconds_per_round": secs,
            "env_steps_per_s_best": max(rates), "env_steps_per_s_median": statistics.median(rates)}


def main(argv: list[str] | None = None) -> int:
    from prosumer_gym.train.common import atomic_write_text, dump_json, parse_kv
    from prosumer_gym.train.rllib import init_ray, require_ray

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runners", default="0,1,2,all", help="comma-separated env-runner counts; 'all' = cpu count")
    p.add_argument("--steps", type=int, default=730, help="env steps per runner per timed round (730 = 2 years)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--env-kwargs", nargs="*", default=["n_sellers=15", "n_buyers=15"], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ray-address", default=None, help="benchmark on a running Ray cluster instead of a local one")
    p.add_argument("--settle", type=float, default=20.0,
                   help="seconds to wait after starting Ray (it prestarts worker processes, which load the CPUs)")
    p.add_argument("--out", default=None, help="JSON file for the results")
    a = p.parse_args(argv)
    require_ray()
    import ray

    if a.steps < 1 or a.repeats < 1:
        p.error("--steps and --repeats must be >= 1")
    ncpu = os.cpu_count() or 1
    counts: list[int] = []
    for tok in a.runners.split(","):
        tok = tok.strip()
        n = ncpu if tok == "all" else int(tok)
        if n < 0:
            p.error("--runners must be >= 0 or 'all'")
        if n not in counts:
            counts.append(n)
    env_kwargs = parse_kv(a.env_kwargs, "--env-kwargs")
    n_sellers = int(env_kwargs.get("n_sellers", 15))
    load_before = os.getloadavg()
    raw_env_rate(env_kwargs, 30, a.seed)  # warm-up: numba compilation of the clearing
    raw = max(raw_env_rate(env_kwargs, a.steps, a.seed + r) for r in range(a.repeats))
    print(f"P2PTrading-v0 {env_kwargs}; raw PettingZoo env, random actions, one process: {raw:,.0f} env steps/s")
    import torch

    torch.set_num_threads(1)  # as prosumer-gym-train does: small networks, no intra-op threads
    init_ray(a.ray_address, None if a.ray_address else ncpu)
    time.sleep(max(a.settle, 0.0))
    results = []
    try:
        print(f"{'env runners':>11s} {'best env steps/s':>17s} {'median':>9s} {'agent steps/s':>14s}")
        for n in counts:
            r = sampling_rate(n, env_kwargs, a.steps, a.repeats, a.seed)
            r["agent_steps_per_s_best"] = r["env_steps_per_s_best"] * n_sellers
            results.append(r)
            label = f"{n} (driver)" if n == 0 else str(n)
            print(f"{label:>11s} {r['env_steps_per_s_best']:17,.0f} {r['env_steps_per_s_median']:9,.0f} "
                  f"{r['agent_steps_per_s_best']:14,.0f}")
    finally:
        ray.shutdown()
    report = {
        "env": "P2PTrading-v0", "env_kwargs": env_kwargs, "algo": "ppo", "policy_mapping": "role",
        "steps_per_runner_per_round": a.steps, "repeats": a.repeats,
        "raw_env_steps_per_s": raw, "results": results,
        "machine": {"cpu_count": ncpu, "platform": platform.platform(), "python": sys.version.split()[0],
                    "ray": ray.__version__, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                    "ray_address": a.ray_address},
        "command": " ".join(["python", "benchmarks/bench_rllib.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, dump_json(report))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
