"""Evaluation, by purpose.

* :mod:`prosumer_gym.eval.main_job`: the job ``make run`` runs (PQR and ProDQN sellers learn a
  year of P2PTrading-v0, then are compared with Rule and Zhu).
* :mod:`prosumer_gym.eval.compare_mechanisms`: P2PTrading-v0's clearing mechanisms side by side.
* :mod:`prosumer_gym.eval.reproduce`: one module per source paper/chapter, regenerating its
  tables and figures.
* :mod:`prosumer_gym.eval.leaderboard`: held-out tracks, evaluation, scores and the board.
"""

from prosumer_gym.core.aliases import install as _install_aliases

_REPRODUCED = ("p2p_trading", "p2p_recommendation", "euber", "storage_sharing", "prosumer_sharing", "energy_collective")

#: old flat module name -> module at its new place
LEGACY_MODULES: dict[str, str] = {
    **{f"{__name__}.reproduce_{m}": f"{__name__}.reproduce.{m}" for m in _REPRODUCED},
    f"{__name__}.p2p_trading_main": f"{__name__}.main_job",
}
_install_aliases(LEGACY_MODULES)

__all__ = ["LEGACY_MODULES"]
