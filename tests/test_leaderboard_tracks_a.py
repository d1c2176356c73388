"""Leaderboard tracks of P2PRecommendation-v0 and EUber-v0: every reference runs at a reduced
size with finite metrics, runs are deterministic, the orderings that hold (oracle vs baseline,
the paper's qualitative ones) hold, and ``summarise`` matches an independent computation from
the raw infos."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from prosumer_gym.eval.leaderboard.core import HELD_OUT_SEED_BASE, EpisodeLog, Track, run_episode
from prosumer_gym.eval.leaderboard.tracks import euber as eu
from prosumer_gym.eval.leaderboard.tracks import p2p_recommendation as rec

# reduced sizes (each test a few seconds); the official sizes are the tracks' ENV_KWARGS
REC_SMALL = dict(n_producers=8, n_consumers=5, n_days=20)
EU_SMALL = dict(n_workers=20, n_ride_tasks=6, n_v2g_tasks=4, n_slots=24)
SEEDS = tuple(HELD_OUT_SEED_BASE + k for k in range(4))


def _run(T: Track, small: dict, name: str, seed: int) -> EpisodeLog:
    r = T.reference(name)
    env = T.make_env({**small, **r.env_overrides})
    log, values = run_episode(env, r.make(), seed, T.curve)
    assert len(values) == len(log.rewards) and all(math.isfinite(v) for v in values)
    return log


@functools.lru_cache(maxsize=None)
def _metrics(env_id: str, name: str, seed: int) -> dict[str, float]:
    T, small = (rec.TRACK, REC_SMALL) if env_id == rec.TRACK.env_id else (eu.TRACK, EU_SMALL)
    return T.summarise(_run(T, small, name, seed))


def _mean(env_id: str, name: str, key: str) -> float:
    return float(np.mean([_metrics(env_id, name, s)[key] for s in SEEDS]))


# ------------------------------------------------------------------------------ both tracks
@pytest.mark.parametrize("T", [rec.TRACK, eu.TRACK], ids=lambda t: t.env_id)
def test_track_definition(T: Track):
    assert T.n_seeds >= 5
    assert T.env_kwargs["split"] == "test"
    assert math.isclose(sum(m.weight for m in T.metrics), 1.0)
    assert all(m.description for m in T.metrics)
    assert T.reference(T.top[0]).kind == "oracle"
    assert T.seeds[0] == HELD_OUT_SEED_BASE
    env = T.make_env()
    assert (env.split if T is rec.TRACK else env.config.split) == "test"


@pytest.mark.parametrize("T", [rec.TRACK, eu.TRACK], ids=lambda t: t.env_id)
def test_every_reference_runs_with_finite_metrics(T: Track):
    keys = {m.key for m in T.metrics}
    for r in T.references:
        for seed in SEEDS[:2]:
            m = _metrics(T.env_id, r.name, seed)
            assert set(m) == keys, r.name
            assert all(type(v) is float and math.isfinite(v) for v in m.values()), (r.name, m)


@pytest.mark.parametrize("T,names", [(rec.TRACK, ("upl", "random", "zhu_p")), (eu.TRACK, ("cars-bmw", "random"))],
                         ids=["rec", "euber"])
def test_same_seed_same_metrics(T: Track, names):
    small = REC_SMALL if T is rec.TRACK else EU_SMALL
    for name in names:
        a = T.summarise(_run(T, small, name, SEEDS[0]))
        b = T.summarise(_run(T, small, name, SEEDS[0]))
        c = T.summarise(_run(T, small, name, SEEDS[1]))
        assert a == b, name
        assert a != c, name  # the seed is the scenario


# ------------------------------------------------------------------------------ P2PRecommendation
def test_rec_orderings():
    E = rec.TRACK.env_id
    for s in SEEDS:
        eff = {r.name: _metrics(E, r.name, s)["efficiency"] for r in rec.TRACK.references}
        assert eff["opt"] == pytest.approx(1.0, abs=1e-3)  # the reference solves the env's oracle MILP
        assert all(eff["opt"] >= v - 1e-3 for v in eff.values())  # Eq. 4.1 optimum
        assert eff["upl"] > eff["random"] and eff["bpt-k"] > eff["random"] and eff["zhu_p"] > eff["random"]
    # realised energy (Eq. 4.2) on average over the seeds: OPT > Zhu_P (baseline) and UPL > random
    assert _mean(E, "opt", "exchanged_kwh") > _mean(E, "zhu_p", "exchanged_kwh")
    assert _mean(E, "upl", "exchanged_kwh") > _mean(E, "random", "exchanged_kwh")
    # the paper's ordering of the learners on average (not seed by seed at this size)
    assert _mean(E, "upl", "efficiency") > _mean(E, "bpt-k", "efficiency") > _mean(E, "random", "efficiency")


def test_rec_summarise_matches_raw_infos():
    log = _run(rec.TRACK, REC_SMALL, "upl", SEEDS[0])
    m = rec.TRACK.summarise(log)
    plat = [i["platform"] for i in log.infos]
    n_days = REC_SMALL["n_days"]
    assert len(plat) == n_days
    consumers = [a for a in log.infos[0] if a.startswith("consumer_")]
    assert len(consumers) == REC_SMALL["n_consumers"]
    # energy exchanged = what the consumers received (their rewards), independently of the platform's info
    received = sum(r[a] for r in log.rewards for a in consumers)
    assert m["exchanged_kwh"] == pytest.approx(received / n_days, rel=1e-9)
    assert m["satisfied_demand"] == pytest.approx(plat[-1]["cumulative_kwh"] / sum(i["demand_kwh"] for i in plat))
    # Eq. 4.3: the env's cumulative regret; efficiency = 1 - regret / oracle energy
    oracle = sum(i["oracle_kwh"] for i in plat)
    assert m["regret_kwh"] == pytest.approx(plat[-1]["regret_kwh"], rel=1e-9, abs=1e-9)
    assert m["efficiency"] == pytest.approx(1.0 - plat[-1]["regret_kwh"] / oracle, rel=1e-9)
    # losses: sum_ij L_ij x energy over the days, from the instance's losses and the consumers' deliveries
    env = log.env
    L = env.loss
    assert env.last_instance is not None and np.array_equal(env.last_instance.loss, L)
    assert m["loss_pct"] == pytest.approx(100.0 * sum(i["losses_kwh"] for i in plat) / received, rel=1e-9)
    assert float(L.min()) * 100 <= m["loss_pct"] <= float(L[L <= env.loss_max + 1e-12].max()) * 100 + 1e-9


def test_rec_co_players_restricted_to_consumers_build_no_platform_policy():
    """A model playing the platform leaves only the consumers to the co-players (UPL): those
    send the follow-the-model sentinel and UPL is never built (its daily MILP would be
    discarded); with the platform included it is the full policy."""
    from prosumer_gym.envs.p2p_recommendation.env import FOLLOW_MODEL

    built = []
    full = rec.PlatformPolicy(lambda env, rng: built.append(1) or None, "spy")
    consumers = ["consumer_0", "consumer_1"]
    assert full.restricted_to(["platform", *consumers]) is full
    part = full.restricted_to(consumers)
    part.reset(object(), {}, {}, 0)
    assert built == [] and part.act({a: None for a in consumers}, {}) == {a: FOLLOW_MODEL for a in consumers}


# ------------------------------------------------------------------------------ EUber
def test_euber_orderings():
    E = eu.TRACK.env_id
    for s in SEEDS:
        pk, bg = _metrics(E, "pk-opt", s), _metrics(E, "bg", s)
        # the paper: BG serves fewer tasks and misses the V2G requirement (Fig. 6.7)
        assert pk["tasks_served"] > bg["tasks_served"]
        assert pk["v2g_satisfaction"] > bg["v2g_satisfaction"]
        assert bg["total_cost_usd"] < pk["total_cost_usd"]  # "BG lower but infeasible" (Fig. 6.6)
    # oracle vs the track's baseline on every weighted metric, on average over the seeds
    assert _mean(E, "pk-opt", "tasks_served") > _mean(E, "random", "tasks_served")
    assert _mean(E, "pk-opt", "v2g_satisfaction") > _mean(E, "random", "v2g_satisfaction")
    assert _mean(E, "pk-opt", "cost_per_task_usd") < _mean(E, "random", "cost_per_task_usd")
    # perfect knowledge + the exact MILP beats the learner on V2G (Fig. 6.5), on average
    assert _mean(E, "pk-opt", "v2g_satisfaction") > _mean(E, "cars-bmw", "v2g_satisfaction")
    assert _mean(E, "cars-bmw", "cost_per_task_usd") < _mean(E, "random", "cost_per_task_usd")


def test_euber_summarise_matches_raw_infos():
    log = _run(eu.TRACK, EU_SMALL, "cars-bmw", SEEDS[0])
    m = eu.TRACK.summarise(log)
    assert len(log.infos) == EU_SMALL["n_slots"]
    slots = [next(iter(i.values()))["market"] for i in log.infos]
    served = sum(s["tasks_served"] for s in slots)
    cost = sum(s["cost_usd"] for s in slots)
    assert m["tasks_served"] == served
    assert m["total_cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert m["cost_per_task_usd"] == pytest.approx(cost / served, rel=1e-9)
    assert m["price_per_task_usd"] == pytest.approx(sum(s["payments_usd"] for s in slots) / served, rel=1e-9)
    assert m["v2g_satisfaction"] == pytest.approx(sum(s["v2g_delivered_kwh"] for s in slots)
                                                  / sum(s["E_kwh"] for s in slots), rel=1e-9)
    assert m["infeasible_slots"] == sum(not s["feasible"] for s in slots)
    # workers' profit from the per-worker infos: payment - energy x price
    price = log.env.energy_price
    profit = sum(i["payment_usd"] - price * i["energy_kwh"] for step in log.infos for i in step.values())
    assert m["workers_profit_usd"] == pytest.approx(profit, rel=1e-9)
    # winners: one per served task, each paid at least its bid (second price)
    won = [i for step in log.infos for i in step.values() if i["won_task"] >= 0]
    assert len(won) == served and all(i["payment_usd"] >= i["bid_usd"] - 1e-9 for i in won)


def test_euber_worker_policies_handle_leaving_agents():
    """The worker-side references answer only ``env.agents``, so they also run when workers
    leave and return (``absent_agents="leave"``), not only in the track's mask mode."""
    for name in ("cars-bmw", "truthful", "random"):
        r = eu.TRACK.reference(name)
        env = eu.TRACK.make_env({**EU_SMALL, "absent_agents": "leave", "n_slots": 12})
        log, _ = run_episode(env, r.make(), SEEDS[0])
        assert all(math.isfinite(v) for v in eu.TRACK.summarise(log).values())
