"""prosumer_gym environments: one folder per market, one thin versioned module per env.

``prosumer_gym/envs/<market>/`` holds the market model and its mechanisms (``market.py``,
and sub-modules where a mechanism family is large), the PettingZoo env (``env.py``) and the
Gymnasium view (``gym.py``); ``prosumer_gym/envs/<market>_v0.py`` is the public, versioned
entry point (``parallel_env``, ``env``, ``raw_env``). The flat module names of earlier
releases (``<market>_market``, ``<market>_gym``, ``prosumer_sharing_vec``) still import:
they are aliases of the modules at their new places (see docs/architecture.md).
"""

from prosumer_gym.core.aliases import install as _install_aliases

MARKETS = (
    "p2p_trading",
    "p2p_recommendation",
    "euber",
    "storage_sharing",
    "prosumer_sharing",
    "energy_collective",
)

#: old flat module name -> module at its place in the one-folder-per-market layout
LEGACY_MODULES: dict[str, str] = {
    **{f"{__name__}.{m}_market": f"{__name__}.{m}.market" for m in MARKETS},
    **{f"{__name__}.{m}_gym": f"{__name__}.{m}.gym" for m in MARKETS},
    f"{__name__}.prosumer_sharing_vec": f"{__name__}.prosumer_sharing.vec",
}
_install_aliases(LEGACY_MODULES)

__all__ = ["MARKETS", "LEGACY_MODULES"]
