"""Seeded fuzz of every market (issue 19): malformed constructor keywords and malformed
actions must raise ``ValueError`` (a constructor's names the keyword) and a refused step must
leave the env exactly as it was: the same rollout with and without the refusals interleaved.

All draws come from fixed ``numpy.random.Generator`` streams (no global seeding); sizes are
tiny so that the file stays within seconds.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import warnings

import numpy as np
import pytest
from gymnasium import spaces

from prosumer_gym.envs import (
    energy_collective_v0,
    euber_v0,
    p2p_recommendation_v0,
    p2p_trading_v0,
    prosumer_sharing_v0,
    storage_sharing_v0,
)
from prosumer_gym.envs.euber.market import EUberConfig
from tests.helpers import same

SEED = 20261219

#: a tiny configuration of every market (the base every fuzzed keyword overrides)
SMALL = {
    "p2p_trading": (p2p_trading_v0, dict(n_sellers=3, n_buyers=3, n_days=4, mechanism="rule")),
    "p2p_recommendation": (p2p_recommendation_v0, dict(n_producers=3, n_consumers=3, n_days=4, oracle=False)),
    "euber": (euber_v0, dict(n_workers=6, n_ride_tasks=4, n_v2g_tasks=2, K=2, n_slots=4, projection="topk")),
    "storage_sharing": (storage_sharing_v0, dict(n_rus=3, n_sfcs=2, n_slots=3)),
    "prosumer_sharing": (prosumer_sharing_v0, dict(n_prosumers=5, n_days=4, oracle=False)),
    "energy_collective": (energy_collective_v0, dict(n_prosumers=2, n_flexible=2, n_inflexible=2, n_chp=1, n_peak=1,
                                                     n_steps=3)),
}

#: the issue's malformed constructor values: None, a numeric string, -1, 0, NaN, inf, a list,
#: a dict, a bool, a huge int, a complex number
BAD_VALUES = (None, "0.1", -1, 0, math.nan, math.inf, [1, 2], {"a": 1}, True, 10**12, 1 + 2j)


def _keywords(name: str, mod) -> list[str]:
    sig = inspect.signature(mod.raw_env.__init__)
    names = [k for k, p in sig.parameters.items() if k != "self" and p.kind is not p.VAR_KEYWORD]
    if name == "euber":  # EUber-v0 takes its EUberConfig fields as keywords too
        names += [f.name for f in dataclasses.fields(EUberConfig)]
    return names


def _valid_action(space: spaces.Space, rng: np.random.Generator):
    if isinstance(space, spaces.Discrete):
        return int(space.start + rng.integers(space.n))
    if isinstance(space, spaces.MultiBinary):
        return rng.integers(0, 2, size=space.shape).astype(space.dtype)
    if isinstance(space, spaces.Box):
        lo = np.where(np.isfinite(space.low), space.low, -1.0)
        hi = np.where(np.isfinite(space.high), space.high, 1.0)
        return rng.uniform(lo, hi).astype(space.dtype)
    raise AssertionError(f"no valid-action sampler for {space}")


def _valid_actions(env, rng: np.random.Generator) -> dict:
    acts = {a: _valid_action(env.action_space(a), rng) for a in env.agents}
    follow = getattr(env.unwrapped, "consumer_agents", False)  # P2PRecommendation-v0's explicit sentinel
    for a in list(acts)[1:] if follow else ():
        if rng.random() < 0.5:
            acts[a] = p2p_recommendation_v0.FOLLOW_MODEL
    return acts


def _bad_value(space: spaces.Space, rng: np.random.Generator):
    """One action no space check may accept (always refused, never clipped or rounded)."""
    shape = space.shape if space.shape else ()
    kind = int(rng.integers(14))
    if kind == 0:
        return None
    if kind == 1:
        return "0.5"
    if kind == 2:
        return {"a": 1}
    if kind == 3:
        return np.full(shape, 0.5 + 1j)
    if kind == 4:
        return np.full(shape, object(), dtype=object)
    if kind == 5:
        return np.full(shape, np.nan)
    if kind == 6:
        return np.full(shape, np.inf if rng.random() < 0.5 else -np.inf)
    if kind == 7:  # wrong shape
        return np.zeros(tuple(s + 1 for s in shape) or (2,))
    if kind == 8:  # nested list one level too deep
        return [np.zeros(shape).tolist(), np.zeros(shape).tolist()]
    if kind == 9:  # ragged
        return [[0.0], [0.0, 1.0]]
    if kind == 10:
        return 1 + 2j
    if isinstance(space, spaces.Discrete):  # out of range, non-integral, bool-free integers only
        return [space.start + space.n, space.start - 1, space.start + 0.5, 10**30][kind - 11 if kind < 14 else 0]
    if isinstance(space, spaces.MultiBinary):
        return np.full(shape, [2, -1, 0.5][kind - 11])
    lo = np.where(np.isfinite(space.low), space.low, 0.0)
    hi = np.where(np.isfinite(space.high), space.high, 0.0)
    if kind == 11 and np.all(np.isfinite(space.high)):
        return (hi + 1.0).astype(np.float64)
    if kind == 12 and np.all(np.isfinite(space.low)):
        return (lo - 1.0).astype(np.float64)
    return np.full(shape, "x")


def _bad_actions(env, valid: dict, rng: np.random.Generator):
    """A malformed action dict built from ``valid``."""
    kind = int(rng.integers(10))
    agents = list(valid)
    if kind == 0:
        return rng.choice(np.array([None, "actions", 3, [1, 2]], dtype=object))
    if kind == 1:  # a missing agent
        drop = agents[int(rng.integers(len(agents)))]
        return {a: v for a, v in valid.items() if a != drop}
    if kind == 2:  # an extra (unknown) agent
        return {**valid, f"ghost_{int(rng.integers(100))}": next(iter(valid.values()))}
    if kind == 3:
        return {**valid, 0: next(iter(valid.values()))}
    out = dict(valid)
    a = agents[int(rng.integers(len(agents)))]
    out[a] = _bad_value(env.action_space(a), rng)
    return out


# ----------------------------------------------------------------------------- constructors
@pytest.mark.parametrize("name", list(SMALL))
def test_constructor_fuzz_every_failure_is_a_value_error_naming_the_keyword(name):
    mod, base = SMALL[name]
    rng = np.random.default_rng([SEED, len(name)])
    accepted = []
    for kw in _keywords(name, mod):
        values = list(BAD_VALUES) + [rng.normal() * 10 ** int(rng.integers(-3, 4)), [None], ()]
        for v in values:
            try:
                env = mod.parallel_env(**{**base, kw: v})
            except ValueError as e:
                assert kw in str(e), f"{name}({kw}={v!r}): the error does not name {kw!r}: {e}"
                continue
            except Exception as e:  # noqa: BLE001 - the failure under test
                pytest.fail(f"{name}({kw}={v!r}) raised {type(e).__name__} instead of ValueError: {e}")
            accepted.append((kw, v, env))
    assert accepted, "nothing accepted: the base configuration itself is refused"
    # values that were accepted are valid: the env resets and steps (or refuses with a ValueError)
    act_rng = np.random.default_rng([SEED, 1])
    for kw, v, env in accepted[:: max(1, len(accepted) // 12)]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                env.reset(seed=0)
                env.step(_valid_actions(env, act_rng))
        except ValueError:
            pass
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{name}({kw}={v!r}) was accepted but reset/step raised {type(e).__name__}: {e}")


def test_constructor_sizes_are_capped_before_allocating():
    """Sizes whose arrays cannot fit are refused with the estimate, before any allocation."""
    for mod, kw, field in [
        (p2p_trading_v0, dict(n_sellers=10**12), "n_sellers"),
        (p2p_trading_v0, dict(n_buyers=10**7, n_sellers=10**4), "n_buyers"),
        (p2p_recommendation_v0, dict(n_consumers=10**12), "n_consumers"),
        (euber_v0, dict(n_workers=10**9), "n_workers"),
        (euber_v0, dict(K=10**12), "K="),
        (storage_sharing_v0, dict(n_rus=10**12), "n_rus"),
        (prosumer_sharing_v0, dict(n_prosumers=10**12), "n_prosumers"),
        (prosumer_sharing_v0, dict(n_prosumers_range=(2, 10**12)), "n_prosumers_range"),
        (energy_collective_v0, dict(n_flexible=10**12), "n_flexible"),
        (energy_collective_v0, dict(max_cycles=10**12), "max_cycles"),
    ]:
        with pytest.raises(ValueError, match=rf"{field}.*too large.*GiB, above the cap of 8 GiB"):
            mod.parallel_env(**kw)


# ----------------------------------------------------------------------------- actions
N_MALFORMED = 400  # per market: 2,400 malformed action dicts in all


@pytest.mark.parametrize("name", list(SMALL))
def test_action_fuzz_refusals_are_value_errors_and_leave_the_env_unchanged(name):
    mod, base = SMALL[name]
    rng = np.random.default_rng([SEED, 7, len(name)])
    clean, fuzzed = mod.parallel_env(**base), mod.parallel_env(**base)
    out_clean, out_fuzzed = [clean.reset(seed=3)], [fuzzed.reset(seed=3)]
    n_steps = 0
    refused = 0
    while clean.agents:
        valid = _valid_actions(clean, rng)
        for _ in range(N_MALFORMED // 3):
            bad = _bad_actions(fuzzed, valid, rng)
            try:
                fuzzed.step(bad)
            except ValueError:
                refused += 1
                continue
            except Exception as e:  # noqa: BLE001 - the failure under test
                pytest.fail(f"{name}: step({bad!r:.200}) raised {type(e).__name__} instead of ValueError: {e}")
            pytest.fail(f"{name}: the malformed step({bad!r:.200}) was accepted")
        out_clean.append(clean.step(valid))
        out_fuzzed.append(fuzzed.step(valid))  # the env is still usable after the refusals
        n_steps += 1
        if n_steps == 3:
            break
    assert refused >= N_MALFORMED // 3 * min(n_steps, 3) and n_steps >= 2
    # the refused steps changed nothing: the same observations, rewards, infos
    assert same(out_clean, out_fuzzed), f"{name}: a refused step changed the env's state"


# ----------------------------------------------------------------------------- Gymnasium views
def _gym_views():
    from prosumer_gym.envs.energy_collective.gym import EnergyCollectiveGymEnv
    from prosumer_gym.envs.euber.gym import EUberGymEnv
    from prosumer_gym.envs.p2p_recommendation.gym import P2PRecommendationGymEnv
    from prosumer_gym.envs.p2p_trading.gym import P2PTradingGymEnv
    from prosumer_gym.envs.prosumer_sharing.gym import ProsumerSharingGymEnv
    from prosumer_gym.envs.storage_sharing.gym import StorageSharingGymEnv

    return {"p2p_trading": P2PTradingGymEnv, "p2p_recommendation": P2PRecommendationGymEnv, "euber": EUberGymEnv,
            "storage_sharing": StorageSharingGymEnv, "prosumer_sharing": ProsumerSharingGymEnv,
            "energy_collective": EnergyCollectiveGymEnv}


@pytest.mark.parametrize("name", list(SMALL))
def test_gym_view_keywords_fuzz_every_failure_is_a_value_error_naming_the_keyword(name):
    """The Gymnasium views' own keywords (ego, co-players, projection, ...; the market's keywords
    pass through to the env, fuzzed above) refuse bad values with a ValueError naming them."""
    cls = _gym_views()[name]
    base = {k: v for k, v in SMALL[name][1].items() if k not in ("oracle",) or name != "prosumer_sharing"}
    own = [k for k, p in inspect.signature(cls.__init__).parameters.items()
           if k != "self" and p.kind is not p.VAR_KEYWORD]
    for kw in own:
        for v in BAD_VALUES:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    env = cls(**{**base, kw: v})
                    env.reset(seed=0)
            except ValueError as e:
                assert kw in str(e), f"{name} view ({kw}={v!r}): the error does not name {kw!r}: {e}"
                continue
            except Exception as e:  # noqa: BLE001 - the failure under test
                pytest.fail(f"{name} view ({kw}={v!r}) raised {type(e).__name__} instead of ValueError: {e}")
            # a flag takes True/False only: nothing is converted with bool()
            assert kw not in GYM_FLAGS or isinstance(v, bool), f"{name} view accepted {kw}={v!r} (not a bool)"


#: the views' on/off keywords
GYM_FLAGS = ("centralized", "report_timing")
