"""The login widget in a real JupyterLab, driven by headless Chromium (see BROWSER_TESTS.md).

A notebook loads the extension and starts the demo provider in the kernel; the
test signs in once by paste-back (the redirect caught with ``page.route``) and
once by auto-capture (the redirect goes to the kernel's loopback catcher), then
runs ``%oauth2 status`` and ``%oauth2 get`` into a DataFrame.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_helpers import (RUN_CELL, WAIT_FOR_KERNEL, Lab, catch_redirect, free_port, launch_browser,
                                   skip_reason, stop_in_background)

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 60_000  # a wait, not a budget: a loaded 2-core machine running two pytest-xdist workers


@pytest.fixture
def lab(tmp_path):
    """JupyterLab starting (the test launches Chromium meanwhile, then waits for it); stopped in the background."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    server = Lab(tmp_path).launch()
    try:
        yield server
    finally:
        stop_in_background(server.stop)


def _sign_in(page, href: str) -> None:
    """The user's part on the demo provider's pages: sign in as alice, approve."""
    page.goto(href)
    page.fill("#username", "alice")
    page.fill("#password", "wonderland")
    page.click("button.approve")
    page.wait_for_selector("button[value=approve]")
    page.click("button[value=approve]")


def _open_in_chromium(playwright, lab: Lab, url: str):
    """Chromium on the notebook at ``url`` once JupyterLab is up and the kernel idle: (context, page)."""
    context = launch_browser(playwright, lab.root / "chromium")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.pages[0] if context.pages else context.new_page()
    lab.wait_until_ready()
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    assert page.evaluate(WAIT_FOR_KERNEL), "the kernel never became idle"
    return context, page


def _run_cell(page, index: int) -> None:
    page.evaluate(RUN_CELL, index)


def test_login_widget_in_jupyterlab_paste_back_and_auto_capture(lab):
    """Paste-back, auto-capture, status table and a DataFrame, all in a real browser."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # not 5 s: a kernel and a widget on a loaded machine
    demo_port = free_port()
    url = lab.write_notebook("login.ipynb", [
        f"%load_ext nb_oauth2\nfrom nb_oauth2.auth.demo_profile import running_demo\n"
        f"demo = running_demo(port={demo_port})\nprint('demo at', demo.url)",
        "%oauth2 login demo --via paste --no-wait",  # the widget's own paste box (tests/test_run_all.py: the waiting login)
        "%oauth2 login demo --name auto --via loopback --no-wait",
        "%oauth2 status",
        f"df = %oauth2 get http://127.0.0.1:{demo_port}/api/events --no-progress\ndf.head(3)",
    ])
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        context, page = _open_in_chromium(p, lab, url)
        try:
            for index in range(3):
                _run_cell(page, index)
            boxes = page.locator(".nb-oauth2-login")
            expect(boxes).to_have_count(2)
            paste_box, auto_box = boxes.nth(0), boxes.nth(1)

            # 1. paste-back: catch the redirect in the browser and paste it into the box
            expect(paste_box.locator(".nb-oauth2-method")).to_contain_text("paste")
            page.screenshot(path=str(ARTIFACTS / "login-widget.png"))  # what the user sees first
            href = paste_box.locator(".nb-oauth2-link a").get_attribute("href")
            assert paste_box.locator(".nb-oauth2-link a").get_attribute("rel") == "noopener noreferrer"
            caught: list[str] = []
            provider_page = context.new_page()
            provider_page.route("**/authorize*", lambda route: catch_redirect(route, caught))
            _sign_in(provider_page, href)
            provider_page.wait_for_function("() => document.body.innerText.includes('caught by the test')")
            assert caught and "code=" in caught[0]
            paste_input = paste_box.locator(".nb-oauth2-paste input")
            paste_input.fill(caught[0])
            paste_box.locator("button.nb-oauth2-submit").click()
            expect(paste_box.locator(".nb-oauth2-status")).to_contain_text("Signed in as profile demo")
            expect(paste_box.locator(".nb-oauth2-paste")).to_have_count(0)  # inputs closed

            # 2. auto-capture: the redirect lands on the kernel's loopback catcher
            expect(auto_box.locator(".nb-oauth2-method")).to_contain_text("loopback")
            auto_href = auto_box.locator(".nb-oauth2-link a").get_attribute("href")
            auto_page = context.new_page()
            _sign_in(auto_page, auto_href)
            auto_page.wait_for_function("() => document.body.innerText.includes('Return to the notebook')")
            expect(auto_box.locator(".nb-oauth2-status")).to_contain_text("Signed in as profile auto")

            # 3. status table and a DataFrame
            _run_cell(page, 3)
            table = page.locator("table.nb-oauth2-table")
            expect(table).to_contain_text("auto *")
            expect(table).to_contain_text("sha256:")
            _run_cell(page, 4)
            expect(page.locator("table.dataframe")).to_have_count(1)
            page.bring_to_front()
            page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
            token_text = page.locator(".jp-Notebook").inner_text()
            assert caught[0] not in token_text
        finally:
            context.close()


def test_a_login_widget_whose_kernel_died_says_so(lab):
    """Issue 12: after the kernel dies (here: os._exit in a later cell, JupyterLab restarts it) a pending
    login widget stops being updated, and says that this login belongs to a kernel that is gone."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    url = lab.write_notebook("stale.ipynb", [
        "%load_ext nb_oauth2",
        "%oauth2 login demo --via paste --no-wait",
        "import os; os._exit(1)  # the kernel dies",
    ])
    with sync_playwright() as p:
        context, page = _open_in_chromium(p, lab, url)
        try:
            _run_cell(page, 0)
            _run_cell(page, 1)
            box = page.locator(".nb-oauth2-login")
            expect(box).to_have_count(1)
            stale = box.get_by_text("not connected to a running kernel")
            expect(box).to_contain_text("Waiting for you to sign in")
            assert not stale.is_visible()  # the kernel is alive: its thread rewrites the pending line
            _run_cell(page, 2)
            expect(stale).to_be_visible(timeout=TIMEOUT_MS)
            dialog_ok = page.locator(".jp-Dialog").get_by_role("button", name="Ok")
            if dialog_ok.count():  # JupyterLab's own "Kernel Restarting" notice
                dialog_ok.click()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "stale-login-widget.png"))
        finally:
            context.close()
