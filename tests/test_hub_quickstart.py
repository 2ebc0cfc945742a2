"""The quickstart behind a real JupyterHub (issue 16), and the demo provider behind jupyter-server-proxy.

Browser tests: a real hub (configurable-http-proxy, DummyAuthenticator, local user
servers with jupyter-server-proxy; :mod:`tests.hub`), alice signs in to the hub in
headless Chromium, runs ``notebooks/01_quickstart.ipynb`` in JupyterLab, signs in
on the demo provider's pages served through ``/user/alice/proxy/<port>/``, and the
notebook shows the signed-in widget and the DataFrame. A second notebook signs in
by paste-back with the address the browser shows (plain http here).

Fast tests (no browser): the demo's redirect after consent survives
jupyter-server-proxy's ``Location`` rewriting (its own code is run on it), and the
demo accepts the callback of a loopback catcher reached through the same proxy.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
import requests

from nb_oauth2 import demo
from nb_oauth2.core.providers import NOTEBOOK_ORIGIN
from tests.browser_helpers import demo_sign_in, launch_browser, open_notebook, run_cell, stamp_address
from tests.hub import jupyterhub  # noqa: F401  (the module-scoped real-hub fixture)

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
QUICKSTART = "01_quickstart.ipynb"
TIMEOUT_MS = 90_000  # a wait, not a budget: a loaded 2-core machine running two pytest-xdist workers
PREFIX = "/user/alice/"
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in the current tab


# -- the demo provider behind jupyter-server-proxy (no hub, no browser) ---------------------------


@pytest.fixture
def proxied_demo(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", PREFIX)
    with demo.start() as provider:
        yield provider


def _consent_location(provider, redirect_uri: str, *, forwarded_prefix: str | None) -> str:
    """Sign in and approve as the browser does through the proxy; the raw Location of the 302."""
    headers = {"X-Forwarded-Prefix": forwarded_prefix} if forwarded_prefix else {}
    query = {"response_type": "code", "client_id": provider.clients["public"].client_id, "state": "s" * 20,
             "redirect_uri": redirect_uri, "code_challenge": "c" * 43, "code_challenge_method": "plain"}
    with requests.Session() as http:
        http.trust_env = False
        page = http.get(f"{provider.url}/authorize", params=query, headers=headers, timeout=10)
        assert page.status_code == 200, page.text[:300]
        form_id = re.search(r'name="form_id" value="([^"]*)"', page.text).group(1)
        login = http.post(f"{provider.url}/authorize", headers=headers, timeout=10, data={
            "form_id": form_id, "step": "login", "username": "alice", "password": demo.DEMO_USERS["alice"]})
        assert login.status_code == 200
        final = http.post(f"{provider.url}/authorize", headers=headers, timeout=10, allow_redirects=False,
                          data={"form_id": form_id, "step": "consent", "decision": "approve"})
    assert final.status_code == 302
    return final.headers["Location"]


def _jupyter_server_proxy_rewrite(location: str, port: int) -> str:
    """jupyter-server-proxy's own Location rewriting (LocalProxyHandler, /proxy/<port>/...)."""
    handlers = pytest.importorskip("jupyter_server_proxy.handlers")
    context = f"{PREFIX}proxy/{port}"
    fake_handler = SimpleNamespace(log=logging.getLogger("test"), _get_context_path=lambda host, p: context)
    return handlers.ProxyHandler._rewrite_location_header(fake_handler, location, "localhost", port, "/authorize")


@pytest.mark.parametrize("forwarded", [True, False], ids=["proxy-header", "no-header"])
def test_demo_redirect_after_consent_survives_the_proxy_location_rewrite(proxied_demo, forwarded):
    """Issue 16, failure 1: the proxy must not prefix the callback a second time."""
    p = proxied_demo
    hub = "http://127.0.0.1:8000"
    location = _consent_location(p, NOTEBOOK_ORIGIN + p.callback_url,
                                 forwarded_prefix=p.browser_url if forwarded else None)
    rewritten = _jupyter_server_proxy_rewrite(location, p.port)
    landed = urljoin(f"{hub}{p.browser_url}/authorize", rewritten)  # what the browser opens next
    parts = urlsplit(landed)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{hub}{PREFIX}proxy/{p.port}/callback", location
    params = dict(parse_qsl(parts.query))
    assert params["code"] and params["state"] == "s" * 20 and params["iss"] == p.issuer


def test_demo_accepts_a_catcher_port_behind_the_same_proxy(proxied_demo):
    """Auto-capture through jupyter-server-proxy: the kernel's catcher has another port than the demo."""
    p = proxied_demo
    catcher = f"{PREFIX}proxy/{p.port + 1 if p.port < 65535 else 1024}/callback"
    location = _consent_location(p, NOTEBOOK_ORIGIN + catcher, forwarded_prefix=p.browser_url)
    landed = urljoin(f"https://hub.example.org{p.browser_url}/authorize",
                     _jupyter_server_proxy_rewrite(location, p.port))
    assert urlsplit(landed).path == catcher and "code=" in landed


@pytest.mark.parametrize("path", ["/user/bob/proxy/{port}/callback", "/user/alice/proxy/{port}/elsewhere",
                                  "/user/alice/proxy/{port}/x/callback", "/user/alice/proxy/0/callback"])
def test_demo_refuses_other_paths_on_the_notebook_origin(proxied_demo, path):
    """Only ``{prefix}proxy/<port>/callback`` is a redirect URI on the notebook's origin; no redirect elsewhere."""
    p = proxied_demo
    query = {"response_type": "code", "client_id": p.clients["public"].client_id, "state": "s" * 20,
             "redirect_uri": NOTEBOOK_ORIGIN + path.format(port=p.port), "code_challenge": "c" * 43,
             "code_challenge_method": "plain"}
    resp = requests.get(f"{p.url}/authorize", params=query, allow_redirects=False, timeout=10)
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_demo_without_a_hub_still_redirects_to_its_absolute_callback(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    with demo.start() as p:
        location = _consent_location(p, f"{p.url}/callback", forwarded_prefix=None)
        assert location.startswith(f"{p.url}/callback?code=")


def test_paste_back_through_the_proxy_completes_and_another_path_is_a_mix_up(proxied_demo, monkeypatch):
    """The package's own login against the proxied demo; the callback is matched by path on the hub's origin."""
    import nb_oauth2 as oa
    from nb_oauth2.auth import registry
    from nb_oauth2.core.errors import IssuerMismatch

    p = proxied_demo
    monkeypatch.setattr(registry._state(), "demo", p, raising=False)
    attempt = oa.LoginAttempt("demo")
    step = attempt.start()
    assert step.authorization_url.startswith(f"{PREFIX}proxy/{p.port}/authorize?")
    location = p.driver.authorize(step.authorization_url)  # resolved as the browser would
    assert location.startswith(f"{PREFIX}proxy/{p.port}/callback?code=")
    with pytest.raises(IssuerMismatch):
        attempt.complete_redirect("https://hub.example.org" + location.replace("/callback", "/elsewhere"))
    session = attempt.complete_redirect("https://hub.example.org" + location)
    assert session.get(f"{p.url}/userinfo").json()["sub"] == "alice"


# -- the quickstart in JupyterLab behind a real JupyterHub (browser) ------------------------------


def _code_cell(cells: list[dict], source: str) -> int:
    """The index of the first code cell whose source starts with ``source``."""
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code" and "".join(cell["source"]).startswith(source):
            return index
    raise AssertionError(f"no cell starting with {source!r} in the quickstart")


@pytest.fixture(scope="module")
def alice(jupyterhub):  # noqa: F811
    """alice's home directory with the tutorials in it (hub_browser starts her server)."""
    notebooks = jupyterhub.home("alice") / "notebooks"
    shutil.copytree(REPO / "notebooks", notebooks, dirs_exist_ok=True)
    return notebooks


@pytest.fixture(scope="module")
def hub_browser(jupyterhub, alice, tmp_path_factory):  # noqa: F811
    """One Chromium profile for the module, signed in to the hub as alice while her server starts."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # a kernel, the demo and a widget on a busy 2-core machine
    ARTIFACTS.mkdir(exist_ok=True)
    with ThreadPoolExecutor(1) as pool:
        alice_server = pool.submit(jupyterhub.start_server, "alice")
        with sync_playwright() as playwright:
            context = launch_browser(playwright, tmp_path_factory.mktemp("chromium"))
            context.set_default_timeout(TIMEOUT_MS)
            try:
                login_page = context.pages[0] if context.pages else context.new_page()
                jupyterhub.login(login_page, "alice")
                login_page.close()
                alice_server.result()
                yield context
            finally:
                context.close()


@pytest.fixture
def browser_page(hub_browser):
    """A new tab of the signed-in browser, closed after the test."""
    page = hub_browser.new_page()
    try:
        yield page
    finally:
        page.close()


def _open_provider(page, box) -> object:
    """Click the widget's sign-in link; the provider's page opens in a new tab."""
    with page.context.expect_page() as opened:
        box.locator(".nb-oauth2-link a").click()
    provider = opened.value
    provider.wait_for_load_state()
    return provider


@pytest.mark.browser
def test_quickstart_signs_in_behind_jupyterhub_with_auto_capture(jupyterhub, alice, browser_page):  # noqa: F811
    """Issue 16: the quickstart behind a hub, auto-capture through jupyter-server-proxy, no public URL set."""
    from playwright.sync_api import expect

    page, hub = browser_page, jupyterhub
    cells = json.loads((alice / QUICKSTART).read_text())["cells"]
    load_ext, login = _code_cell(cells, "%load_ext nb_oauth2"), _code_cell(cells, "%oauth2 login demo")
    status, demo_url = _code_cell(cells, "%oauth2 status"), _code_cell(cells, "import nb_oauth2\n")
    frame = _code_cell(cells, "df = nb_oauth2.read_json")

    open_notebook(page, hub.user_url("alice", f"lab/tree/notebooks/{QUICKSTART}?reset"), f"notebooks/{QUICKSTART}")
    run_cell(page, load_ext)
    run_cell(page, login)
    box = page.locator(f"{NOTEBOOK} .nb-oauth2-login")
    expect(box).to_have_count(1)
    link = box.locator(".nb-oauth2-link a")
    expect(link).to_have_count(1)
    box.screenshot(path=str(ARTIFACTS / "hub-login-widget.png"))
    method = box.locator(".nb-oauth2-method")
    expect(method).to_contain_text("comes back here by itself")  # auto-capture, not paste-back
    expect(method).to_contain_text("proxy")
    href = link.get_attribute("href")
    assert href.startswith(f"{PREFIX}proxy/"), href  # on the hub's origin, through jupyter-server-proxy

    provider = _open_provider(page, box)
    assert provider.url.startswith(hub.user_url("alice", "proxy/")), provider.url
    demo_sign_in(provider)
    provider.wait_for_function("() => document.body.innerText.includes('Return to the notebook')")
    landed = urlsplit(provider.url)
    assert re.fullmatch(rf"{PREFIX}proxy/\d+/callback", landed.path), provider.url  # one prefix, not two
    stamp_address(provider)
    provider.screenshot(path=str(ARTIFACTS / "hub-auto-capture-page.png"))
    provider.close()

    page.bring_to_front()
    expect(box.locator(".nb-oauth2-status")).to_contain_text("Signed in as profile demo")
    expect(box.locator(".nb-oauth2-paste")).to_have_count(0)
    box.scroll_into_view_if_needed()
    stamp_address(page)
    page.screenshot(path=str(ARTIFACTS / "hub-signed-in-widget.png"))

    run_cell(page, status)
    expect(page.locator(f"{NOTEBOOK} table.nb-oauth2-table")).to_contain_text("sha256:")
    run_cell(page, demo_url)
    run_cell(page, frame)
    frame_table = page.locator(f"{NOTEBOOK} table.dataframe")
    expect(frame_table).to_have_count(1)
    expect(frame_table).to_contain_text("actor.login")
    expect(frame_table.locator("tbody tr")).to_have_count(5)
    frame_table.scroll_into_view_if_needed()
    stamp_address(page)
    page.screenshot(path=str(ARTIFACTS / "hub-dataframe.png"))
    errors = page.locator(f'{NOTEBOOK} .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')
    assert "Traceback" not in " ".join(errors.all_inner_texts())


@pytest.mark.browser
def test_paste_back_accepts_the_address_the_browser_shows_behind_jupyterhub(jupyterhub, alice,  # noqa: F811
                                                                            browser_page):
    """Issue 16: paste-back takes the real http address with the prefix as the proxy serves it."""
    from playwright.sync_api import expect

    page, hub = browser_page, jupyterhub
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None, "id": f"c{i}"}
        for i, src in enumerate(["%load_ext nb_oauth2", "%oauth2 login demo --via paste --no-wait"])]}
    (alice / "paste_back.ipynb").write_text(json.dumps(notebook))

    open_notebook(page, hub.user_url("alice", "lab/tree/notebooks/paste_back.ipynb?reset"), "notebooks/paste_back.ipynb")
    run_cell(page, 0)
    run_cell(page, 1)
    box = page.locator(f"{NOTEBOOK} .nb-oauth2-login")
    expect(box).to_have_count(1)
    expect(box.locator(".nb-oauth2-method")).to_contain_text("paste")

    provider = _open_provider(page, box)
    demo_sign_in(provider)
    provider.wait_for_selector("#url")
    address = provider.url  # the browser's address bar
    assert re.fullmatch(rf"{re.escape(hub.url)}{PREFIX}proxy/\d+/callback", address.split("?")[0]), address
    assert provider.locator("#url").inner_text() == address
    provider.close()

    page.bring_to_front()
    box.locator(".nb-oauth2-paste input").fill(address)
    box.locator("button.nb-oauth2-submit").click()
    expect(box.locator(".nb-oauth2-status")).to_contain_text("Signed in as profile demo")
    stamp_address(page)
    page.screenshot(path=str(ARTIFACTS / "hub-paste-back-signed-in.png"))
