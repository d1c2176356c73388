"""Module aliases: old import paths that keep working after a module moved.

``install({"pkg.old_name": "pkg.new.place"})`` makes ``import pkg.old_name`` (and
``from pkg import old_name``, and ``python -m pkg.old_name``) give the module at its new
place: the *same* module object, so classes, functions and module state are shared, and
``sys.modules`` holds it under both names. Used by ``prosumer_gym.envs`` and
``prosumer_gym.eval`` for the flat module names of releases before the one-folder-per-market
layout (see docs/architecture.md).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Mapping
from types import CodeType, ModuleType

__all__ = ["install"]


class _AliasLoader(importlib.abc.Loader):
    """Loads an alias by importing its target and handing back that very module."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # importlib set the alias spec on the shared module; give it back its own.
        if self._spec is not None:
            module.__spec__ = self._spec

    def get_code(self, fullname: str) -> CodeType | None:
        """Code of the target module, so ``python -m <alias>`` runs the target as ``__main__``."""
        spec = importlib.util.find_spec(self.target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "get_code"):
            return None
        return spec.loader.get_code(self.target)  # type: ignore[union-attr]

    def is_package(self, fullname: str) -> bool:
        return False


class _AliasFinder(importlib.abc.MetaPathFinder):
    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = dict(mapping)

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001 - importlib API
        dest = self.mapping.get(fullname)
        if dest is None:
            return None
        real = importlib.util.find_spec(dest)
        origin = real.origin if real is not None else None  # runpy's argv[0]
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(dest), origin=origin, is_package=False)


def install(mapping: Mapping[str, str]) -> None:
    """Register ``old dotted name -> new dotted name`` aliases (idempotent per name)."""
    for finder in sys.meta_path:
        if isinstance(finder, _AliasFinder):
            finder.mapping.update(mapping)
            return
    sys.meta_path.append(_AliasFinder(mapping))
