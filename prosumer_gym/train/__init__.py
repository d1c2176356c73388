"""Training entry points: ``prosumer-gym-train`` (:mod:`prosumer_gym.train.cli`), the
reference-agent population trainer (:mod:`prosumer_gym.train.population`), SB3 training on
the Gymnasium and PettingZoo views (:mod:`prosumer_gym.train.sb3`), per-env hyperparameter
files (``hyperparams/<env id>.yml``). See ``docs/training.md``."""

from __future__ import annotations

__all__ = ["PopulationConfig", "PopulationTrainer"]


def __getattr__(name: str):
    if name in __all__:
        from prosumer_gym.train import population

        return getattr(population, name)
    raise AttributeError(name)
