"""Real data shipped with prosumer_gym, and its loaders.

Provenance, licences and every cleaning step are in ``DATA.md`` beside this file;
``checksums.json`` records the sha256 of every data file. The files are built by
``scripts/build_data.py``; nothing is downloaded at run time.
"""
from __future__ import annotations

from . import loaders as _loaders
from .loaders import *  # noqa: F403  (the public API is loaders.__all__)

__all__ = list(_loaders.__all__)
