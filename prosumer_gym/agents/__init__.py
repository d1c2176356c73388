"""The papers' learning agents.

* :class:`PQRAgent` (P2PTrading-v0, Alg. 5): tabular risk-sensitive Q-learning per seller.
* :class:`ProDQNAgent` (P2PTrading-v0, Alg. 6): prospect-theory DQN per seller (imports torch).

Both act through the environment's observation/action interface only, save/load their
state and run deterministically from a seed. ``make_seller_agent`` builds either for one
seller of a PettingZoo env from its spaces and reset info.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prosumer_gym.agents.pqr import PQRAgent

if TYPE_CHECKING:  # pragma: no cover
    from prosumer_gym.agents.prodqn import ProDQNAgent

__all__ = ["PQRAgent", "ProDQNAgent", "AGENT_KINDS", "make_seller_agent"]

AGENT_KINDS = ("pqr", "prodqn")


def __getattr__(name: str) -> Any:
    # ProDQN needs torch: import it only when asked for, so ``import prosumer_gym`` stays light.
    if name == "ProDQNAgent":
        from prosumer_gym.agents.prodqn import ProDQNAgent

        return ProDQNAgent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_seller_agent(kind: str, observation_space: Any, action_space: Any, reset_info: dict | None = None,
                      n_prices: int | None = None, seed: Any = None, **kwargs: Any):
    """A PQR or ProDQN agent for one agent of a PettingZoo env.

    ``observation_space``: a 1-D ``Box``; ``action_space``: ``Discrete``. The agent's PT
    parameters come from ``reset_info["pt_params"]`` when present (P2PTrading-v0 sellers)
    unless given in ``kwargs``; otherwise they are neutral (k = zeta = 1). PQR needs
    ``n_prices`` (its price states; ``obs[0]`` is the normalised price).
    """
    from gymnasium import spaces

    if kind not in AGENT_KINDS:
        raise ValueError(f"kind must be one of {AGENT_KINDS}, got {kind!r}")
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"{kind} needs a Discrete action space, got {action_space}")
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"{kind} needs a 1-D Box observation space, got {observation_space}")
    pt = dict((reset_info or {}).get("pt_params") or {})
    pt.update({k: kwargs.pop(k) for k in ("k_pos", "k_neg", "zeta_pos", "zeta_neg") if k in kwargs})
    if kind == "pqr":
        if n_prices is None:
            raise ValueError("PQR needs n_prices (the number of price states)")
        return PQRAgent(n_prices, int(action_space.n), seed=seed, **pt, **kwargs)
    from prosumer_gym.agents.prodqn import ProDQNAgent

    return ProDQNAgent(int(observation_space.shape[0]), int(action_space.n), seed=seed, **pt, **kwargs)
