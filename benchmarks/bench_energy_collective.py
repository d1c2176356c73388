"""EnergyCollective-v0: iterations and time for the community ADMM to converge (15, 100, 300 players),
and env steps/s at the default size.

    python benchmarks/bench_energy_collective.py [--sizes 15,100,300] [--days 15,120,200] [--repeats 3]
                                                 [--p2p-sizes 15,30] [--out FILE.json]
    python benchmarks/bench_energy_collective.py --steps-per-second [--rounds 5] [--episodes 4]
                                                 [--clock cpu|wall] [--clearing exact|admm]

``--steps-per-second``: the default env (315 players, 24 hourly slots per episode) through
the PettingZoo parallel API and the Gymnasium view (default co-players), random actions
(drawn before the clock starts), ``--episodes`` seeded episodes per round; prints env
steps/s per round with and without the resets (min and median of ``--rounds``) and
agent-steps/s. ``--clock cpu`` (default) divides by process CPU time (less sensitive to
other jobs on a shared machine). ``--clearing`` is passed to the env only when given (so
the mode also runs against a checkout without that keyword).

For each community size ``N`` (players drawn from the shipped data in the default
proportions 100 : 100 : 100 : 10 : 5 of prosumers, flexible and inflexible consumers, CHP
and peak units, at least one generator) and each data day:

* ``admm`` (default, per-agent curvature penalties): every hourly slot solved on its own
  (iterations and wall time per slot, best of ``--repeats``), and the whole day solved
  as one batch vectorised over slots and players;
* ``admm-uniform``: the textbook single penalty (``rho = 0.05`` EUR/kWh^2, adaptive);
* ``qp``: the centralised interior-point oracle, and the ADMM's distance to it
  (max |p - p_qp| kWh, max |price - price_qp| EUR/kWh, relative objective gap).

``--p2p-sizes``: the P2P market (consensus+innovation with the best-response innovation)
on the same kind of community (plus the two grid agents), for a few slots per day.
Single process; timings depend on the machine (run it on an idle one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from prosumer_gym.envs.energy_collective import market as mk

RATIO = {"n_prosumers": 100, "n_flexible": 100, "n_inflexible": 100, "n_chp": 10, "n_peak": 5}


def composition(n: int) -> dict[str, int]:
    """Player counts for ``n`` players in the default proportions (largest remainders)."""
    tot = sum(RATIO.values())
    raw = {k: n * v / tot for k, v in RATIO.items()}
    cnt = {k: int(np.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - cnt[k], reverse=True)[: n - sum(cnt.values())]:
        cnt[k] += 1
    if cnt["n_chp"] + cnt["n_peak"] == 0:
        big = max(("n_prosumers", "n_flexible", "n_inflexible"), key=lambda k: cnt[k])
        cnt[big] -= 1
        cnt["n_chp"] = 1
    return cnt


def community(n: int, day: int, seed: int = 0) -> mk.Community:
    w, imp, exp_ = mk.retail_prices(2019, 0.10, 0.0)
    pop = mk.sample_population(np.random.default_rng(seed), day, 1, **composition(n))
    return pop.community(day, w, imp, exp_)


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_size(n: int, days: list[int], repeats: int) -> dict:
    per_slot_it, per_slot_t, uni_it, qp_t = [], [], [], []
    day_t, day_it_max, dp, dprice, gap, conv = [], [], [], [], [], []
    for day in days:
        comm = community(n, day)
        qp_time, qp = best_time(lambda: mk.solve_community_qp(comm), 1)
        qp_t.append(qp_time / comm.n_slots)
        for t in range(comm.n_slots):
            c1 = comm.slots([t])
            tt, res = best_time(lambda: mk.solve_community_admm(c1), repeats)
            per_slot_it.append(int(res.iterations[0]))
            per_slot_t.append(tt)
            conv.append(bool(res.converged[0]))
            uni = mk.solve_community_admm(c1, penalty="uniform", rho=0.05)
            uni_it.append(int(uni.iterations[0]))
        tt, res = best_time(lambda: mk.solve_community_admm(comm), repeats)
        day_t.append(tt)
        day_it_max.append(int(res.iterations.max()))
        dp.append(float(np.abs(res.p - qp.p).max()))
        dprice.append(float(np.abs(res.price - qp.price).max()))
        gap.append(float(np.max(np.abs(res.objective - qp.objective) / np.maximum(np.abs(qp.objective), 1.0))))
    return {
        "players": n,
        "composition": composition(n),
        "days": days,
        "slots": len(per_slot_it),
        "converged_share": float(np.mean(conv)),
        "iterations_per_slot": {"mean": float(np.mean(per_slot_it)), "median": float(np.median(per_slot_it)),
                                "max": int(np.max(per_slot_it))},
        "ms_per_slot": {"mean": 1e3 * float(np.mean(per_slot_t)), "median": 1e3 * float(np.median(per_slot_t)),
                        "max": 1e3 * float(np.max(per_slot_t))},
        "uniform_penalty_iterations_per_slot": {"mean": float(np.mean(uni_it)), "max": int(np.max(uni_it))},
        "day_batch_ms": {"mean": 1e3 * float(np.mean(day_t)), "max": 1e3 * float(np.max(day_t))},
        "day_batch_iterations_max": int(np.max(day_it_max)),
        "qp_oracle_ms_per_slot": 1e3 * float(np.mean(qp_t)),
        "max_abs_p_vs_qp_kwh": float(np.max(dp)),
        "max_abs_price_vs_qp_eur_per_kwh": float(np.max(dprice)),
        "max_rel_objective_gap": float(np.max(gap)),
    }


def bench_p2p(n: int, days: list[int], slots: list[int], distance_preference: float = 0.001) -> dict:
    its, ts, recips, gaps = [], [], [], []
    conv = []
    for day in days:
        comm = community(n, day)
        for t in slots:
            inst = replace(mk.mbed_from_community(comm, t, distance_preference=distance_preference),
                           trade_curvature=0.01)
            t0 = time.perf_counter()
            res = mk.solve_p2p_ci(inst)
            ts.append(time.perf_counter() - t0)
            its.append(res.iterations)
            conv.append(res.converged)
            recips.append(res.reciprocity)
            if n <= 30:
                qp = mk.solve_p2p_qp(inst)
                gaps.append(abs(res.objective - qp.objective) / max(abs(qp.objective), 1.0))
    out = {
        "players": n, "agents_with_grid": n + 2, "slots": len(its), "converged_share": float(np.mean(conv)),
        "iterations": {"mean": float(np.mean(its)), "median": float(np.median(its)), "max": int(np.max(its))},
        "ms_per_slot": {"mean": 1e3 * float(np.mean(ts)), "max": 1e3 * float(np.max(ts))},
        "max_reciprocity_kwh": float(np.max(recips)),
    }
    if gaps:
        out["max_rel_objective_gap_vs_qp"] = float(np.max(gaps))
    return out


def steps_per_second(view: str, episodes: int, clock, env_kwargs: dict) -> dict:
    """One round: ``episodes`` seeded default-size episodes of random actions; seconds with and
    without the resets."""
    from prosumer_gym.envs import energy_collective_v0
    from prosumer_gym.envs.energy_collective.gym import EnergyCollectiveGymEnv

    rng = np.random.default_rng(0)
    if view == "pettingzoo":
        env = energy_collective_v0.parallel_env(**env_kwargs)
        agents = env.possible_agents
        n_agents = len(agents)

        def pool() -> list:
            acts = rng.uniform(0.0, 1.0, size=(env.n_steps, n_agents, 1)).astype(np.float32)
            return [dict(zip(agents, a)) for a in acts]
    else:
        env = EnergyCollectiveGymEnv(**env_kwargs)
        n_agents = len(env.market.possible_agents)

        def pool() -> list:
            return list(rng.uniform(0.0, 1.0, size=(env.market.n_steps, 1)).astype(np.float32))
    t_reset = t_step = 0.0
    steps = 0
    for ep in range(episodes):
        actions = pool()  # drawn before the clock starts
        t0 = clock()
        env.reset(seed=ep)
        t1 = clock()
        for act in actions:
            env.step(act)
        t_reset += t1 - t0
        t_step += clock() - t1
        steps += len(actions)
    return {"steps": steps, "agents": n_agents, "reset_seconds": t_reset, "step_seconds": t_step}


def bench_steps_per_second(rounds: int, episodes: int, clock_name: str, clearing: str | None) -> dict:
    clock = {"cpu": time.process_time, "wall": time.perf_counter}[clock_name]
    kw = {} if clearing is None else {"clearing": clearing}
    out = {}
    print(f"EnergyCollective-v0 default size, random actions, {episodes} episodes per round, {rounds} rounds, "
          f"clock {clock_name}{'' if clearing is None else ', clearing ' + clearing}")
    print(f"{'view':11s} {'steps/s (with resets) min / median':>36s} {'steps/s (steps only) min / median':>36s} "
          f"{'agent-steps/s median':>21s} {'reset ms median':>16s}")
    for view in ("pettingzoo", "gym"):
        runs = [steps_per_second(view, episodes, clock, kw) for _ in range(rounds)]
        with_r = [r["steps"] / (r["reset_seconds"] + r["step_seconds"]) for r in runs]
        only = [r["steps"] / r["step_seconds"] for r in runs]
        resets = [1e3 * r["reset_seconds"] / episodes for r in runs]
        med = float(np.median(with_r))
        out[view] = {"steps_per_s_with_resets": {"min": float(np.min(with_r)), "median": med},
                     "steps_per_s_steps_only": {"min": float(np.min(only)), "median": float(np.median(only))},
                     "agent_steps_per_s_median": med * runs[0]["agents"],
                     "reset_ms_median": float(np.median(resets))}
        print(f"{view:11s} {np.min(with_r):17.0f} / {med:<17.0f} {np.min(only):17.0f} / {np.median(only):<17.0f} "
              f"{med * runs[0]['agents']:21.0f} {np.median(resets):16.1f}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps-per-second", action="store_true", help="env steps/s at the default size (only)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--episodes", type=int, default=4, help="episodes per round (--steps-per-second)")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    p.add_argument("--clearing", choices=("exact", "admm"), default=None)
    p.add_argument("--sizes", default="15,100,300")
    p.add_argument("--days", default="15,120,200", help="data days (0-364) of 2019")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--p2p-sizes", default="15,30", help="'' to skip the P2P benchmark")
    p.add_argument("--p2p-slots", default="3,12,19")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    if a.steps_per_second:
        res = bench_steps_per_second(a.rounds, a.episodes, a.clock, a.clearing)
        if a.out:
            _write(Path(a.out), res)
        return
    days = [int(d) for d in a.days.split(",")]
    results = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                           "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
               "community_admm": [], "p2p_ci": []}
    print(f"community ADMM, days {days}, hourly slots, best of {a.repeats}")
    print(f"{'N':>4s} {'it/slot mean':>12s} {'med':>5s} {'max':>5s} {'ms/slot':>8s} {'day batch ms':>12s} "
          f"{'uniform it':>10s} {'qp ms/slot':>10s} {'|dp| kWh':>9s} {'|dprice|':>9s} {'conv':>5s}")
    for n in (int(s) for s in a.sizes.split(",")):
        r = bench_size(n, days, a.repeats)
        results["community_admm"].append(r)
        print(f"{n:4d} {r['iterations_per_slot']['mean']:12.1f} {r['iterations_per_slot']['median']:5.0f} "
              f"{r['iterations_per_slot']['max']:5d} {r['ms_per_slot']['mean']:8.2f} {r['day_batch_ms']['mean']:12.1f} "
              f"{r['uniform_penalty_iterations_per_slot']['mean']:10.1f} {r['qp_oracle_ms_per_slot']:10.2f} "
              f"{r['max_abs_p_vs_qp_kwh']:9.1e} {r['max_abs_price_vs_qp_eur_per_kwh']:9.1e} "
              f"{r['converged_share']:5.2f}")
    if a.p2p_sizes:
        slots = [int(s) for s in a.p2p_slots.split(",")]
        print(f"\nP2P consensus+innovation (best-response innovation, trade curvature 0.01 EUR/kWh^2, "
              f"distance preference 1 EUR/MWh/km), slots {slots}")
        print(f"{'N':>4s} {'it mean':>8s} {'it max':>7s} {'ms/slot':>9s} {'reciprocity':>11s} {'conv':>5s}")
        for n in (int(s) for s in a.p2p_sizes.split(",")):
            r = bench_p2p(n, days, slots)
            results["p2p_ci"].append(r)
            print(f"{n:4d} {r['iterations']['mean']:8.0f} {r['iterations']['max']:7d} {r['ms_per_slot']['mean']:9.1f} "
                  f"{r['max_reciprocity_kwh']:11.1e} {r['converged_share']:5.2f}")
    if a.out:
        _write(Path(a.out), results)


def _write(out: Path, results: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
