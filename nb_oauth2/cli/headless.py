"""``nb-oauth2 demo --headless``: run the quickstart tutorial without a browser.

The notebook runs in a fresh ``python3`` kernel of this environment (nbclient),
with ``NB_OAUTH2_DEMO_AUTOPILOT=1`` so the demo provider's test driver signs in
instead of a person. Two cells are added to the in-memory copy only: one that
starts the demo provider with the requested number of records, and one that
reports who signed in and the DataFrame the tutorial built. The notebook file
on disk is not changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

from ..jupyter.autopilot import AUTOPILOT_ENV
from ..core.redact import redact
from .notebooks import QUICKSTART, notebooks_dir

__all__ = ["run_quickstart", "REPORT_MARKER"]

REPORT_MARKER = "NB_OAUTH2_HEADLESS_REPORT "
CELL_TIMEOUT = 120
INSTALL_HINT = "pip install 'nb_oauth2[lab]'"

_SETUP = """\
from nb_oauth2.auth.demo_profile import running_demo as _nb_oauth2_running_demo
print(_nb_oauth2_running_demo(records={records}).url)
"""

# Prints one JSON line (who signed in, the token's fingerprint, the shape), then df.head().
_REPORT = """\
import json as _json
import nb_oauth2 as _oa
from nb_oauth2.auth.demo_profile import running_demo as _nb_oauth2_running_demo
_session = _oa.session("demo")
_me = _session.get(_nb_oauth2_running_demo().url + "/userinfo").json()
print({marker!r} + _json.dumps({{
    "user": _me.get("preferred_username") or _me.get("sub"),
    "fingerprint": _session.status()["fingerprint"],
    "shape": list(df.shape),
}}))
print(df.head().to_string(max_colwidth=28))
"""


def _default_notebook() -> Path | None:
    found = notebooks_dir()
    return found / QUICKSTART if found is not None else None


def _say(out: TextIO, message: str) -> None:
    print(message, file=out, flush=True)


def _cell_text(cell: Any) -> str:
    """The stdout text a cell printed."""
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _error_line(exc: BaseException) -> str:
    """One readable line for a failed cell: the exception type and its message, redacted."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        text = f"{ename}: {evalue}" if evalue else str(ename)
    else:
        text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return redact(text)[:300]


def _build(notebook: Path, records: int) -> Any:
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(_SETUP.format(records=int(records))))
    nb.cells.append(nbformat.v4.new_code_cell(_REPORT.format(marker=REPORT_MARKER)))
    return nb


def _execute(nb: Any, cwd: Path, on_cell: Callable[[int, Any], None]) -> None:
    from nbclient import NotebookClient

    env = dict(os.environ)
    env[AUTOPILOT_ENV] = "1"
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})
    # the kernel's own stderr (ipykernel start-up warnings) would interleave with the progress lines
    with client.setup_kernel(env=env, cwd=str(cwd), stderr=subprocess.DEVNULL):
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
            on_cell(index, cell)


def _report(cell: Any, out: TextIO) -> int:
    text = _cell_text(cell)
    line = next((ln for ln in text.splitlines() if ln.startswith(REPORT_MARKER)), None)
    if line is None:
        _say(sys.stderr, "nb-oauth2: the quickstart ran but reported no DataFrame.")
        return 1
    info = json.loads(line[len(REPORT_MARKER):])
    rows, cols = info["shape"]
    _say(out, f"signed in as {info['user']} ({info['fingerprint']})")
    _say(out, f"loaded {rows:,} rows")
    _say(out, f"df.shape = ({rows}, {cols})")
    head = text[text.index(line) + len(line):].strip("\n")
    _say(out, head)
    return 0


def run_quickstart(*, records: int = 5000, notebook: Path | None = None, out: TextIO | None = None) -> int:
    """Execute the quickstart notebook headless and print what it loaded; returns an exit code."""
    out = out or sys.stdout
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as exc:
        _say(sys.stderr, f"nb-oauth2: the headless demo needs {exc.name}: {INSTALL_HINT}")
        return 1
    path = Path(notebook) if notebook is not None else _default_notebook()
    if path is None or not path.is_file():
        _say(sys.stderr, f"nb-oauth2: the quickstart notebook was not found ({path or QUICKSTART}); "
                         "run from a checkout of nb_oauth2 or pass notebook=.")
        return 1
    if records < 1:
        _say(sys.stderr, "nb-oauth2: --records must be at least 1.")
        return 1
    nb = _build(path, records)
    last = len(nb.cells) - 1

    code_cells = sum(1 for cell in nb.cells[1:last] if cell.cell_type == "code")

    def on_cell(index: int, cell: Any) -> None:
        if index == 0:
            _say(out, f"demo provider running at {_cell_text(cell).strip()}")
            _say(out, f"running {path.name} ({code_cells} code cells, the demo's test driver signs in)...")

    _say(out, "starting kernel...")
    _say(out, f"starting demo provider ({records:,} records)...")
    try:
        _execute(nb, path.parent, on_cell)
    except KeyboardInterrupt:
        _say(sys.stderr, "nb-oauth2: interrupted; the kernel was stopped.")
        return 130
    except Exception as exc:  # CellExecutionError, DeadKernelError, timeouts, a missing kernel
        _say(sys.stderr, f"nb-oauth2: the quickstart failed: {_error_line(exc)}")
        return 1
    return _report(nb.cells[last], out)
