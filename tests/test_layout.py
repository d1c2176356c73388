"""Layout: every documented import path works (new places and the old flat names, which are
aliases of the same module objects), ``envs`` does not import ``agents``/``baselines``, and the
versioned entry points are thin."""

from __future__ import annotations

import ast
import importlib
import pathlib
import subprocess
import sys

import gymnasium as gym
import pytest

import prosumer_gym
from prosumer_gym.envs import LEGACY_MODULES as ENV_LEGACY
from prosumer_gym.eval import LEGACY_MODULES as EVAL_LEGACY

PKG = pathlib.Path(prosumer_gym.__file__).parent


@pytest.mark.parametrize("old,new", sorted({**ENV_LEGACY, **EVAL_LEGACY}.items()))
def test_legacy_module_is_the_same_object(old: str, new: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(new)
    assert sys.modules[new].__spec__.name == new  # the alias does not rename the module


def test_documented_names_import() -> None:
    for gym_id, pz in prosumer_gym.PETTINGZOO_MODULES.items():
        mod = importlib.import_module(pz)
        for name in mod.__all__:
            assert hasattr(mod, name), (pz, name)
        assert {"parallel_env", "env", "raw_env"} <= set(mod.__all__)
        assert mod.__doc__ and len(mod.__doc__) > 500  # the env card
        module, cls = prosumer_gym.ENV_IDS[gym_id].split(":")
        assert isinstance(getattr(importlib.import_module(module), cls), type)
        assert gym.spec(gym_id).entry_point == prosumer_gym.ENV_IDS[gym_id]
    from prosumer_gym.envs.p2p_trading_market import MECHANISMS, energy_kwh, seller_revenue  # noqa: F401
    from prosumer_gym.envs.prosumer_sharing_vec import ProsumerSharingVecEnv  # noqa: F401
    from prosumer_gym.eval.reproduce_p2p_trading import main  # noqa: F401


def test_python_dash_m_runs_legacy_script_names() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "prosumer_gym.eval.reproduce_storage_sharing", "--help"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert "usage" in out.stdout


def _imports(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_envs_do_not_import_upper_layers() -> None:
    bad = []
    for path in (PKG / "envs").rglob("*.py"):
        for name in _imports(path):
            if name.startswith(("prosumer_gym.agents", "prosumer_gym.baselines", "prosumer_gym.train", "prosumer_gym.eval")):
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    assert not bad, "\n".join(bad)


def test_versioned_entry_points_are_thin() -> None:
    for pz in prosumer_gym.PETTINGZOO_MODULES.values():
        path = PKG / "envs" / (pz.rsplit(".", 1)[1] + ".py")
        assert len(path.read_text().splitlines()) < 60, path


def test_package_cites_only_files_it_ships() -> None:
    """Nothing in the package points at the source specs outside the repository."""
    bad = [str(p.relative_to(PKG)) for p in PKG.rglob("*") if p.suffix in (".py", ".md", ".yml", ".json")
           and "shared/spec" in p.read_text(errors="ignore")]
    assert not bad, bad



def test_bare_gym_make_ids_after_import():
    """The README's call: every registered id by its bare name once prosumer_gym is imported
    (the namespaced form without an import is tested per env in a subprocess)."""
    import gymnasium as gym

    import prosumer_gym

    for env_id in prosumer_gym.ENV_IDS:
        env = gym.make(env_id)
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs), env_id
        env.close()


def test_cards_show_import_and_bare_id():
    """Every env card shows ``import prosumer_gym`` and the bare id first, then the namespaced form."""
    import importlib

    import prosumer_gym

    for env_id, module in prosumer_gym.PETTINGZOO_MODULES.items():
        doc = importlib.import_module(module).__doc__
        usage = doc[doc.index("Usage::"):]
        assert usage.index("import prosumer_gym") < usage.index(f'gym.make("{env_id}")') \
            < usage.index(f'gym.make("prosumer_gym:{env_id}")'), env_id
