"""Run All on the quickstart in a real JupyterLab, driven by headless Chromium (issue 12, item 1).

A temporary copy of notebooks/01_quickstart.ipynb runs under **Run All** without the demo's autopilot:
its first login cell (auto-capture) and its second (``via="paste"``) block while the later cells wait
in the queue. The test plays the person at the browser: it opens each widget's sign-in link, logs in on
the demo provider's pages and approves; the first redirect reaches the kernel's loopback catcher by
itself, the second is read off the consent POST's ``Location`` header and typed into the frontend's
stdin box (getpass: a password input). Then every cell must have run without error, the DataFrame
must be a table, the kernel idle, and the pasted redirect (it holds the code) must not be saved with
the notebook. Screenshots go to test-artifacts/ (run-all-*.png).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser_helpers import (RUN_ALL_OVER, START_RUN_ALL, Lab, catch_redirect, demo_sign_in, launch_browser,
                                   open_notebook, skip_reason, stop_in_background)

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "notebooks" / "01_quickstart.ipynb"
ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_MS = 60_000  # a wait, not a budget: a loaded 2-core machine running two pytest-xdist workers
RUN_ALL_MS = 180_000  # Run All from kernel start to the last cell, two sign-ins and 5,000 events included


#: Each code cell's index, execution count and outputs, from the notebook's model.
CODE_CELLS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((cell, index) => ({index, cell: cell.model.toJSON()}))
    .filter(({cell}) => cell.cell_type === 'code')
    .map(({index, cell}) => ({index, source: cell.source, count: cell.execution_count, outputs: cell.outputs}));
}"""

KERNEL_STATUS = """() => {
  const ctx = window.jupyterapp.shell.currentWidget.sessionContext;
  return ctx.session && ctx.session.kernel ? ctx.session.kernel.status : null;
}"""

SAVE = "async () => { await window.jupyterapp.commands.execute('docmanager:save'); return true; }"

#: A cell added after Run All (not part of the notebook) for the Done-when's screenshot of a short error.
ERROR_CELL = 'oa.read_json(f"{demo.url}/", session=session)  # a web page, not an API'

ADD_AND_RUN = """async (source) => {
  const app = window.jupyterapp;
  const notebook = app.shell.currentWidget.content;
  notebook.activeCellIndex = notebook.widgets.length - 1;
  await app.commands.execute('notebook:insert-cell-below');
  notebook.activeCell.model.sharedModel.setSource(source);
  app.commands.execute('notebook:run-cell');
  return notebook.activeCellIndex;
}"""


@pytest.fixture
def lab(tmp_path):
    """JupyterLab starting, with a copy of the quickstart and no autopilot; stopped in the background."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    server = Lab(tmp_path)
    for key in [key for key in server.env if key.startswith("NB_OAUTH2_")]:
        del server.env[key]  # no autopilot, no shared demo, no stored tokens: a person signs in
    shutil.copy(QUICKSTART, server.notebooks / QUICKSTART.name)
    server.launch()
    try:
        yield server
    finally:
        stop_in_background(server.stop)


def _cell(page, source_start: str):
    """The code cell whose source starts with ``source_start``."""
    return page.locator(".jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text=source_start)).first


def _errors(cells: list[dict]) -> list[str]:
    """Error outputs and tracebacks on stderr, as 'cell N: ...' lines."""
    found = []
    for cell in cells:
        for output in cell["outputs"]:
            if output.get("output_type") == "error":
                found.append(f"cell {cell['index']}: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("name") == "stderr":
                text = "".join(output.get("text", ""))
                if "Traceback" in text or "Error" in text:
                    found.append(f"cell {cell['index']} stderr: {text[:300]}")
    return found


def test_run_all_on_the_quickstart_signs_in_twice_while_the_later_cells_wait(lab):
    """Run All on 01_quickstart: loopback sign-in, then paste-back into the stdin box; every cell runs clean."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    name = QUICKSTART.name
    with sync_playwright() as p:
        context = launch_browser(p, lab.root / "chromium")
        context.set_default_timeout(TIMEOUT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        try:
            lab.wait_until_ready()
            open_notebook(page, f"{lab.url}/lab/tree/{name}?token={lab.token}", path=name)
            page.evaluate("() => window.jupyterapp.shell.collapseLeft()")  # the width to the screenshots
            page.evaluate(START_RUN_ALL)

            # 1. the first login (auto-capture) waits; the cells after it are queued, not run
            auto_cell = _cell(page, "%oauth2 login demo")
            auto_box = auto_cell.locator(".nb-oauth2-login")
            expect(auto_box.locator(".nb-oauth2-pending")).to_contain_text("Waiting for you to sign in")
            expect(auto_box.locator(".nb-oauth2-method")).to_contain_text("comes back here by itself")
            status_cell = _cell(page, "%oauth2 status")
            expect(status_cell.locator(".jp-InputArea-prompt")).to_contain_text("*")  # queued behind the login
            assert status_cell.locator(".jp-OutputArea-output").count() == 0
            auto_cell.scroll_into_view_if_needed()
            auto_cell.screenshot(path=str(ARTIFACTS / "run-all-waiting.png"))

            href = auto_box.locator(".nb-oauth2-link a").get_attribute("href")
            provider = context.new_page()
            provider.goto(href)
            demo_sign_in(provider)
            provider.wait_for_function("() => document.body.innerText.includes('Return to the notebook')")
            provider.close()
            expect(auto_box.locator(".nb-oauth2-status")).to_contain_text("Signed in as profile demo")
            expect(auto_box).not_to_contain_text("Waiting for you")

            # 2. the cells after it ran; the second login (paste-back) waits at the stdin box
            expect(status_cell.locator("table.nb-oauth2-table")).to_contain_text("demo")
            paste_cell = _cell(page, "import nb_oauth2 as oa")
            paste_box = paste_cell.locator(".nb-oauth2-login")
            expect(paste_box.locator(".nb-oauth2-method")).to_contain_text("paste it into the prompt")
            stdin = paste_cell.locator("input.jp-Stdin-input")
            expect(stdin).to_be_visible()
            assert stdin.get_attribute("type") == "password", "the paste-back prompt must be masked (getpass)"
            paste_cell.scroll_into_view_if_needed()
            paste_cell.screenshot(path=str(ARTIFACTS / "run-all-paste-prompt.png"))
            caught: list[str] = []
            provider = context.new_page()
            provider.route("**/authorize*", lambda route: catch_redirect(route, caught))
            provider.goto(paste_box.locator(".nb-oauth2-link a").get_attribute("href"))
            demo_sign_in(provider)
            provider.wait_for_function("() => document.body.innerText.includes('caught by the test')")
            provider.close()
            assert len(caught) == 1 and "code=" in caught[0]
            redirect = caught[0]
            code = parse_qs(urlsplit(redirect).query)["code"][0]
            page.bring_to_front()
            stdin.fill(redirect)
            stdin.press("Enter")
            expect(paste_box.locator(".nb-oauth2-status")).to_contain_text("Signed in as profile demo")

            # 3. Run All finishes: every code cell ran, none failed, the DataFrame is a table
            page.wait_for_function(RUN_ALL_OVER, timeout=RUN_ALL_MS)
            cells = page.evaluate(CODE_CELLS)
            assert not _errors(cells), _errors(cells)
            assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                has_text="Traceback").count() == 0
            not_run = [cell["index"] for cell in cells if cell["count"] is None]
            assert not not_run, f"cells without an execution count: {not_run}"
            last_frame = _cell(page, "events = oa.read_json")
            expect(last_frame.locator("table.dataframe")).to_have_count(1)
            assert page.evaluate(KERNEL_STATUS) == "idle"

            # screenshots: the signed-in widgets and the status table
            auto_cell.scroll_into_view_if_needed()
            auto_cell.screenshot(path=str(ARTIFACTS / "run-all-signed-in.png"))
            paste_cell.scroll_into_view_if_needed()
            paste_cell.screenshot(path=str(ARTIFACTS / "run-all-signed-in-paste.png"))
            status_cell.scroll_into_view_if_needed()
            status_cell.screenshot(path=str(ARTIFACTS / "run-all-status.png"))

            # 4. the redirect (it holds the code) is neither shown nor saved with the notebook
            assert redirect not in page.locator(".jp-Notebook").inner_text()
            assert page.evaluate(SAVE)
            saved = (lab.notebooks / name).read_text()
            saved_counts = [cell["execution_count"] for cell in json.loads(saved)["cells"]
                            if cell["cell_type"] == "code"]
            assert saved_counts and None not in saved_counts, "the file is not the notebook as Run All left it"
            assert redirect not in saved and code not in saved

            # 5. not part of the notebook: one more cell, for a screenshot of a short rendered error
            index = page.evaluate(ADD_AND_RUN, ERROR_CELL)
            error_cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
            error_output = error_cell.locator(".jp-OutputArea")
            expect(error_output).to_contain_text("not JSON")
            page.wait_for_function(RUN_ALL_OVER)
            assert "Traceback" not in error_output.inner_text()
            error_cell.scroll_into_view_if_needed()
            error_cell.screenshot(path=str(ARTIFACTS / "run-all-error.png"))
        finally:
            context.close()
