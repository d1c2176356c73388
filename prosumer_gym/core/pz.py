"""PettingZoo plumbing shared by every market: the versioned module's entry points and
the ``rgb_array`` rendering of a matplotlib figure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pettingzoo.utils import parallel_to_aec

__all__ = ["entry_points", "figure_to_rgb"]


def entry_points(raw_env: type) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(parallel_env, env)`` for a ``raw_env`` ParallelEnv class: the parallel env itself
    and the AEC env by PettingZoo's standard ``parallel_to_aec`` conversion. Keywords are
    ``raw_env``'s."""

    def parallel_env(**kwargs: Any):
        return raw_env(**kwargs)

    def env(**kwargs: Any):
        return parallel_to_aec(raw_env(**kwargs))

    parallel_env.__doc__ = f"The PettingZoo parallel env (keywords: see :class:`{raw_env.__qualname__}`)."
    env.__doc__ = "The AEC env, by PettingZoo's standard ``parallel_to_aec`` conversion."
    parallel_env.__module__ = env.__module__ = raw_env.__module__
    return parallel_env, env


def figure_to_rgb(fig: Any) -> np.ndarray:
    """Render a ``matplotlib.figure.Figure`` off-screen (Agg) to an ``(H, W, 3)`` uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
