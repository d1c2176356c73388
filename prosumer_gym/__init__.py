"""prosumer_gym: reinforcement-learning environments for prosumer energy markets.

Importing the package registers every Gymnasium id; ``gym.make("prosumer_gym:<id>")``
imports it for you.
"""

from __future__ import annotations

from importlib.util import find_spec

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

# Gymnasium id -> single-agent view (module:class). The PettingZoo modules are
# prosumer_gym.envs.<name>_v0 (see README).
ENV_IDS = {
    "P2PTrading-v0": "prosumer_gym.envs.p2p_trading.gym:P2PTradingGymEnv",
    "P2PRecommendation-v0": "prosumer_gym.envs.p2p_recommendation.gym:P2PRecommendationGymEnv",
    "EUber-v0": "prosumer_gym.envs.euber.gym:EUberGymEnv",
    "StorageSharing-v0": "prosumer_gym.envs.storage_sharing.gym:StorageSharingGymEnv",
    "ProsumerSharing-v0": "prosumer_gym.envs.prosumer_sharing.gym:ProsumerSharingGymEnv",
    "EnergyCollective-v0": "prosumer_gym.envs.energy_collective.gym:EnergyCollectiveGymEnv",
}

# Gymnasium id -> its PettingZoo module (the versioned entry point ``envs/<market>_v<N>.py``).
PETTINGZOO_MODULES = {
    "P2PTrading-v0": "prosumer_gym.envs.p2p_trading_v0",
    "P2PRecommendation-v0": "prosumer_gym.envs.p2p_recommendation_v0",
    "EUber-v0": "prosumer_gym.envs.euber_v0",
    "StorageSharing-v0": "prosumer_gym.envs.storage_sharing_v0",
    "ProsumerSharing-v0": "prosumer_gym.envs.prosumer_sharing_v0",
    "EnergyCollective-v0": "prosumer_gym.envs.energy_collective_v0",
}


# Newer versions of an env (Gymnasium's convention: an interface change bumps the version and
# the older id stays reproducible). Gymnasium id -> (single-agent view, PettingZoo module,
# keywords the view gets). The leaderboard's tracks and the benchmarks are on ENV_IDS.
ENV_VERSIONS: dict[str, tuple[str, str, dict]] = {
    "P2PRecommendation-v1": ("prosumer_gym.envs.p2p_recommendation.gym:P2PRecommendationGymEnv",
                             "prosumer_gym.envs.p2p_recommendation_v1",
                             {"action_mode": "scores", "statistics": True}),
}


def _register_all() -> list[str]:
    done = []
    for env_id, (entry, _, kwargs) in ENV_VERSIONS.items():
        if find_spec(entry.split(":")[0]) is not None and env_id not in registry:
            register(id=env_id, entry_point=entry, kwargs=dict(kwargs))
    for env_id, entry in ENV_IDS.items():
        module = entry.split(":")[0]
        if find_spec(module) is None:  # market not shipped in this version
            continue
        if env_id not in registry:
            register(id=env_id, entry_point=entry)
        done.append(env_id)
    return done


REGISTERED = tuple(_register_all())

# The composition root: the reference agents and baselines that the envs' Gymnasium views use
# as co-players by default, named as "module:attribute" strings so that ``prosumer_gym.envs``
# never imports ``agents`` or ``baselines`` (see prosumer_gym.core.policies). Resolved on first use.
DEFAULT_CO_PLAYERS: dict[str, dict[str, str]] = {
    "P2PTrading": {
        "pqr": "prosumer_gym.agents.pqr:pqr_co_players",
        "constant": "prosumer_gym.baselines.price_policies:constant_co_players",
        "random": "prosumer_gym.baselines.price_policies:random_co_players",
    },
    "StorageSharing": {
        "se": "prosumer_gym.agents.storage_sharing:se_co_players",
    },
    "EnergyCollective": {
        "admm": "prosumer_gym.agents.energy_collective:admm_co_players",
    },
    # EUber-v0's platform recommender (a component of the PettingZoo env, same protocol)
    "EUber.recommender": {
        "cars": "prosumer_gym.agents.euber:cars_recommender",
        "pk": "prosumer_gym.agents.euber:pk_recommender",
        "random": "prosumer_gym.baselines.euber:random_recommender",
    },
}


def _wire_co_players() -> None:
    from prosumer_gym.core.policies import register_co_players

    for env_name, table in DEFAULT_CO_PLAYERS.items():
        for name, target in table.items():
            register_co_players(env_name, name, target)


_wire_co_players()

__all__ = ["__version__", "ENV_IDS", "ENV_VERSIONS", "PETTINGZOO_MODULES", "REGISTERED", "DEFAULT_CO_PLAYERS"]
