"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """Run the test on one torch thread (the suite runs 2 xdist workers on 2 cores), then
    restore the caller's thread count."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
