"""Every tutorial notebook runs top to bottom headless, and its saved copy holds no secret.

Each notebook is executed with nbclient in a fresh ``python3`` kernel with
``NB_OAUTH2_DEMO_AUTOPILOT=1`` (the demo provider's test driver signs in) and
widget state stored as JupyterLab would save it. A cell appended to the
in-memory copy reports the DataFrames the tutorial built and writes every
secret the kernel's demo provider issued (codes, access and refresh tokens,
device codes, client secrets) to a file outside the notebook; the test then
scans the saved notebook JSON (outputs and ``metadata.widgets``) for them.
The five notebooks run at the same time, one kernel each: their waits (the
device flow's 5 s polling interval, the rate-limit demo's Retry-After) overlap
(about 15 s on 2 cores; 25 s one after another).
"""

from __future__ import annotations

import asyncio
import json
import os
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import nbformat

# find_spec, not importorskip: importing nbformat costs ~2 s (jsonschema's format checkers), paid only by the
# worker that runs these tests, not by every pytest-xdist worker while collecting.
pytestmark = [pytest.mark.timeout(240),
              pytest.mark.skipif(not (find_spec("nbformat") and find_spec("nbclient") and find_spec("ipykernel")),
                                 reason="nbformat, nbclient or ipykernel is not installed (see the test extra)")]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
MARKER = "NB_OAUTH2_TEST_REPORT "

# Appended to each executed copy (never to the files in notebooks/).
REPORT_CELL = """\
import json as _json, os as _os
import pandas as _pd
from nb_oauth2.auth.demo_profile import running_demo as _running_demo
_demo = _running_demo()
_v = _demo.validator
with _v.lock:
    _issued = set(_v.codes) | set(_v.access) | set(_v.refresh) | set(_v.devices)
_issued |= {_c.client_secret for _c in _demo.clients.values() if _c.client_secret}
with open(_os.environ["NB_OAUTH2_TEST_SECRETS_FILE"], "w") as _f:
    _json.dump(sorted(_issued), _f)
_frames = {_k: len(_x) for _k, _x in list(globals().items())
           if not _k.startswith("_") and isinstance(_x, _pd.DataFrame)}
print("@MARKER@" + _json.dumps({"records": _demo.records, "frames": _frames,
                               "access_tokens": len(_v.access)}))
"""


def _kernel_env(tmp_path: Path, secrets_file: Path) -> dict[str, str]:
    """The test's environment minus any real provider settings, plus autopilot and private dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NB_OAUTH2_")}
    env.update({
        "NB_OAUTH2_DEMO_AUTOPILOT": "1",
        "NB_OAUTH2_TEST_SECRETS_FILE": str(secrets_file),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "MPLBACKEND": "Agg",
    })
    env.pop("JUPYTERHUB_SERVICE_PREFIX", None)  # the demo's browser URLs must stay on loopback
    return env


async def _execute(name: str, tmp_path: Path) -> tuple[dict, list[str], str, nbformat.NotebookNode]:
    """Run one notebook; return (report, issued secrets, saved JSON text, executed notebook)."""
    import nbclient
    import nbformat

    source = NOTEBOOKS / name
    nb = nbformat.read(str(source), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_CELL.replace("@MARKER@", MARKER)))
    secrets_file = tmp_path / "issued.json"
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    await client.async_execute(env=_kernel_env(tmp_path, secrets_file), cwd=str(NOTEBOOKS))
    saved = tmp_path / name
    nbformat.write(nb, str(saved))
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    line = next(ln for ln in text.splitlines() if ln.startswith(MARKER))
    report = json.loads(line[len(MARKER):])
    return report, json.loads(secrets_file.read_text()), saved.read_text(encoding="utf-8"), nb


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict:
    """Every tutorial executed once, all at the same time (one kernel each): name -> result or error."""
    results: dict = {}

    async def run(name: str) -> None:
        try:
            results[name] = await _execute(name, tmp_path_factory.mktemp(Path(name).stem))
        except Exception as exc:  # reported by that notebook's test
            results[name] = exc

    async def run_all() -> None:
        await asyncio.gather(*(run(name) for name in sorted(EXPECTED_FRAMES)))

    asyncio.run(run_all())
    return results


def _stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _assert_no_secret_saved(issued: list[str], saved: str) -> None:
    leaked = [s[:6] + "..." for s in issued if s and s in saved]
    assert not leaked, f"issued secrets found in the saved notebook: {leaked}"


EXPECTED_FRAMES = {
    # notebook: {DataFrame variable: expected rows; None = the demo's record count}
    "01_quickstart.ipynb": {"df": None, "events": None},
    "02_grants.ipynb": {"table": 6},
    "03_tokens_over_time.ipynb": {},
    "04_apis_to_dataframes.ipynb": {"df": None, "limited": None, "offset": None, "first_rows": 1000,
                                    "shallow": None},
    "05_real_providers.ipynb": {},
}


def test_every_notebook_is_covered():
    """A new tutorial must get expectations here (and run in the test below); the hub's tutorials run
    against a real JupyterHub instead (tests/test_hub_service.py)."""
    from nb_oauth2.cli.notebooks import HUB_TUTORIALS

    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted([*EXPECTED_FRAMES, *HUB_TUTORIALS])
    assert not set(HUB_TUTORIALS) & set(EXPECTED_FRAMES)
    hub_tests = (ROOT / "tests" / "test_hub_service.py").read_text()
    assert all(name in hub_tests for name in HUB_TUTORIALS)


def test_committed_notebooks_are_clean():
    """Case 39: the committed tutorials carry no outputs, execution counts or widget state."""
    import nbformat

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        assert "widgets" not in nb.metadata, path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: stored output"
        assert "NB_OAUTH2_DEMO_AUTOPILOT" not in "".join(c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("name", sorted(EXPECTED_FRAMES))
def test_notebook_runs_and_saves_no_secret(name: str, executed: dict):
    """Case 39: executed with widget state stored, the saved notebook holds none of the issued secrets."""
    result = executed[name]
    if isinstance(result, Exception):
        raise result
    report, issued, saved, nb = result
    records = report["records"]
    expected = {var: records if rows is None else rows for var, rows in EXPECTED_FRAMES[name].items()}
    assert {var: report["frames"].get(var) for var in expected} == expected
    assert report["access_tokens"] >= 1 and len(issued) > report["access_tokens"]
    _assert_no_secret_saved(issued, saved)
    output = _stdout(nb)
    if name == "02_grants.ipynb":
        assert "StateMismatch" in output and "NoLoginInProgress" in output
    if name == "03_tokens_over_time.ipynb":
        assert "ReauthRequired" in output and "same token: True" in output
    if name == "04_apis_to_dataframes.ipynb":
        assert "UnsafeNextLink" in output and "InsufficientScope" in output
        assert "widgets" in nb.metadata  # the progress bars' state was saved, and scanned
    if name == "05_real_providers.ipynb":
        assert "skipped: set NB_OAUTH2_GITHUB_CLIENT_ID to run this" in output
