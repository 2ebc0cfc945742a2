"""The layers of the package are enforced: import-linter's contracts in pyproject.toml.

0 import cycles (between the folders and between the modules of each folder) and
0 imports that point up (cli > jupyter > api > auth | frames > demo > core).
The second test proves the contracts can fail: a copy of the package with one
upward import and one cycle added breaks both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold():
    result = _lint(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_or_a_cycle_breaks_the_contracts(tmp_path):
    shutil.copytree(ROOT / "nb_oauth2", tmp_path / "nb_oauth2", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    token = tmp_path / "nb_oauth2" / "core" / "token.py"  # core reaching up into the session layer
    token.write_text(token.read_text() + "\nfrom ..auth import registry  # noqa: E402\n")
    nesting = tmp_path / "nb_oauth2" / "frames" / "nesting.py"  # nesting <-> readers
    nesting.write_text(nesting.read_text() + "\nfrom . import readers  # noqa: E402\n")
    result = _lint(tmp_path, tmp_path)
    assert result.returncode == 1
    assert "0 kept, 2 broken" in result.stdout
    assert "nb_oauth2.core.token -> nb_oauth2.auth.registry" in result.stdout
    assert "acyclic by removing" in result.stdout and ".nesting -> .readers" in result.stdout


def test_no_public_name_hides_a_module():
    """``import nb_oauth2.x.y as m`` works for every module: no function of the package shares a folder's or
    module's name (0.1's ``import nb_oauth2.session`` gave the function ``session``)."""
    import importlib
    import pkgutil

    import nb_oauth2

    for info in pkgutil.walk_packages(nb_oauth2.__path__, "nb_oauth2."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        parent, _, leaf = info.name.rpartition(".")
        assert getattr(importlib.import_module(parent), leaf) is module, f"{info.name} is hidden by another name"


def test_the_readme_layout_names_every_module():
    """README "Layout" stays true: every module of every folder is named there, under its folder."""
    import re

    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("```", layout.index("```") + 3)]
    named = set(re.findall(r"[a-z_]+", layout))
    package = ROOT / "nb_oauth2"
    missing = [f"{path.parent.name}/{path.stem}" for path in package.glob("*/*.py")
               if not path.stem.startswith("__") and path.stem not in named]
    folders = [path.name for path in package.iterdir() if (path / "__init__.py").exists()]
    assert not missing, f"README Layout does not name {missing}"
    assert all(f"{folder}/" in layout for folder in folders)
