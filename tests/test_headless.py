"""``nb-oauth2 demo --headless``: the quickstart runs without a browser and prints its DataFrame."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

# find_spec, not importorskip: importing nbclient costs ~2 s (jsonschema's format checkers), paid only by the
# worker that runs these tests, not by every pytest-xdist worker while collecting.
pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(not (find_spec("nbclient") and find_spec("ipykernel")),
                                 reason="nbclient and ipykernel are not installed (they are in the test extra)")]

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NB_OAUTH2_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("JUPYTERHUB_SERVICE_PREFIX", None)
    return env


def test_headless_demo_prints_the_dataframe_with_the_requested_rows():
    """The CLI runs the quickstart in a kernel and reports who signed in and the DataFrame's shape."""
    done = subprocess.run([sys.executable, "-m", "nb_oauth2.cli.main", "demo", "--headless", "--records", "1234"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "starting demo provider" in out
    assert "signed in as alice (sha256:" in out
    assert "loaded 1,234 rows" in out
    assert "df.shape = (1234, " in out
    assert "actor.login" in out  # df.head() was printed


def test_missing_notebook_is_a_one_line_error(tmp_path, capsys):
    """No traceback: one readable line on stderr and exit code 1."""
    from nb_oauth2.cli.headless import run_quickstart

    assert run_quickstart(notebook=tmp_path / "missing.ipynb") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("nb-oauth2: the quickstart notebook was not found") and "\n" not in err


def test_failing_cell_is_reported_in_one_line(tmp_path, capsys):
    """A cell that raises stops the run with the error's type and message, exit code 1."""
    import nbformat

    from nb_oauth2.cli.headless import run_quickstart

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import nb_oauth2 as oa\nraise oa.ConfigurationError('the tutorial broke here')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, str(path))
    assert run_quickstart(notebook=path, records=10) == 1
    err = capsys.readouterr().err.strip()
    assert err == "nb-oauth2: the quickstart failed: ConfigurationError: the tutorial broke here"
