"""binder/ as repo2docker (mybinder.org) reads it: Python pinned, the package installed with what the demo needs.

repo2docker's own ``--no-build --no-run`` pass parses the configuration and writes the Dockerfile it would
build, without Docker; the test reads that Dockerfile.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _extra(name: str) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["optional-dependencies"][name]


def test_binder_installs_this_checkout_with_jupyter_server_proxy():
    """The browser reaches the demo provider (and the sign-in comes back) only through jupyter-server-proxy."""
    lines = [line.strip() for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    package = next(line for line in lines if line.startswith("."))
    extras = set(re.findall(r"\[(.*)\]", package)[0].split(","))
    assert "lab" in extras
    assert any(dep.startswith("jupyter-server-proxy") for dep in _extra("lab"))
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.12"


def test_repo2docker_accepts_binder_config():
    """repo2docker parses binder/ and would build Python 3.12 with binder/requirements.txt installed."""
    tool = shutil.which("jupyter-repo2docker") or str(Path(sys.executable).parent / "jupyter-repo2docker")
    if not Path(tool).exists():
        pytest.skip("jupyter-repo2docker is not installed (it is in the test extra)")
    done = subprocess.run([tool, "--no-build", "--no-run", "--debug", str(ROOT)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dockerfile = done.stdout + done.stderr
    assert "python=3.12" in dockerfile
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in dockerfile
