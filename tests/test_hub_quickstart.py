"""The quickstart behind a real JupyterHub (issue 16), and the demo provider behind jupyter-server-proxy.

Browser tests: a real hub (configurable-http-proxy, DummyAuthenticator, local user
servers with jupyter-server-proxy; :mod:`tests.hub`), alice signs in to the hub in
headless Chromium, runs ``notebooks/01_quickstart.ipynb`` in JupyterLab, signs in
on the demo provider's pages served through ``/user/alice/proxy/<port>/``, and the
notebook shows the signed-in widget and the DataFrame. A second notebook signs in
by paste-back with the address the browser shows (plain http here).

Plain-HTTP tests (no browser; issue 14, the Binder path through the real pieces): the
demo provider runs in a kernel of alice's server on the same hub (started over the
Jupyter server's REST and websocket API, so with her JUPYTERHUB_SERVICE_PREFIX), and
requests plays the browser through the hub's public URL and the real
jupyter-server-proxy: the redirect after consent survives the proxy's ``Location``
rewriting, a loopback catcher's port behind the same proxy completes the kernel's
login, other paths on the notebook origin are refused, paste-back completes in the
kernel, and bob (or nobody) gets nothing of alice's proxied demo.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
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


# -- the demo provider behind the real jupyter-server-proxy (real hub, plain HTTP, no browser) ----


class ServerKernel:
    """A Python kernel in ``user``'s server, driven as JupyterLab does: the Jupyter server's REST API
    and kernel websocket, through the hub's public URL, with a token of ``user``."""

    def __init__(self, hub, user: str) -> None:  # noqa: ANN001  (a tests.hub.Hub)
        import websocket  # websocket-client: a dependency of jupyter_server

        self.base = hub.user_url(user)
        self.token = hub.token(user, [f"access:servers!user={user}"], note="kernel")
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"token {self.token}"
        resp = self.http.post(self.base + "api/kernels", json={"name": "python3"}, timeout=60)
        assert resp.status_code == 201, resp.text[:300]
        self.id = resp.json()["id"]
        self.session = uuid.uuid4().hex
        self.ws = websocket.create_connection(
            self.base.replace("http://", "ws://", 1) + f"api/kernels/{self.id}/channels",
            header=[f"Authorization: token {self.token}"], timeout=TIMEOUT_MS / 1000)

    def run(self, code: str) -> str:
        """Execute ``code``; its stdout (AssertionError with the kernel's traceback on an error)."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session,
                       "username": "tests", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out: list[str] = []
        error: dict | None = None
        replied = idle = False
        while not (replied and idle):
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                out.append(content["text"])
            elif kind == "error":
                error = content
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        if error is not None:
            trace = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error["traceback"]))
            raise AssertionError(f"in the kernel: {error['ename']}: {error['evalue']}\n{trace}")
        return "".join(out)

    def value(self, code: str, expression: str) -> object:
        """Run ``code``, then the value of ``expression`` (through JSON)."""
        out = self.run(f"{code}\nprint('\\n' + __import__('json').dumps({expression}))")
        return json.loads(out.strip().splitlines()[-1])

    def close(self) -> None:
        self.ws.close()
        self.http.delete(self.base + f"api/kernels/{self.id}", timeout=30)
        self.http.close()


#: run in alice's kernel: the demo as a notebook starts it on Binder (the kernel's own ``running_demo()``,
#: which the ``demo`` profile signs in to), and a second one as if jupyter-server-proxy sent no
#: X-Forwarded-Prefix (it drops the header the real proxy sends and keeps what it was)
_START_DEMOS = '''
import os
import nb_oauth2
from nb_oauth2.demo import DemoProvider

class _NoForwardedPrefix(DemoProvider):
    seen = []
    def _wsgi(self, environ, start_response):
        self.seen.append(environ.pop("HTTP_X_FORWARDED_PREFIX", None))
        return super()._wsgi(environ, start_response)

_demos = {"proxy-header": nb_oauth2.running_demo(), "no-header": _NoForwardedPrefix()}
_found = {name: dict(port=p.port, url=p.url, browser_url=p.browser_url, issuer=p.issuer,
            client_id=p.clients["public"].client_id, prefix=os.environ["JUPYTERHUB_SERVICE_PREFIX"],
            source=nb_oauth2.__file__) for name, p in _demos.items()}
'''


@dataclass(frozen=True)
class ProxiedDemo:
    """A demo provider running in alice's kernel, as the test (a browser) reaches it through the hub."""

    hub_url: str
    port: int
    url: str  # its loopback address, for the kernel only
    browser_url: str  # /user/alice/proxy/<port>
    issuer: str
    client_id: str

    @property
    def public(self) -> str:
        """Its address through the hub's public URL and alice's jupyter-server-proxy."""
        return self.hub_url + self.browser_url

    def query(self, redirect_uri: str, state: str = "s" * 20) -> dict[str, str]:
        return {"response_type": "code", "client_id": self.client_id, "state": state, "redirect_uri": redirect_uri,
                "code_challenge": "c" * 43, "code_challenge_method": "plain"}


@pytest.fixture(scope="module")
def alice_kernel(jupyterhub):  # noqa: F811
    """A kernel in alice's (real) single-user server: her JUPYTERHUB_SERVICE_PREFIX, her jupyter-server-proxy."""
    jupyterhub.start_server("alice")
    kernel = ServerKernel(jupyterhub, "alice")
    try:
        yield kernel
    finally:
        kernel.close()


@pytest.fixture(scope="module")
def proxied(jupyterhub, alice_kernel) -> dict[str, ProxiedDemo]:  # noqa: F811
    found = alice_kernel.value(_START_DEMOS, "_found")
    assert {d["prefix"] for d in found.values()} == {PREFIX}, found
    assert Path(found["proxy-header"]["source"]).is_relative_to(REPO), found  # the tree under test
    return {name: ProxiedDemo(jupyterhub.url, **{k: v for k, v in d.items() if k not in ("prefix", "source")})
            for name, d in found.items()}


@pytest.fixture(scope="module")
def alice_http(jupyterhub, proxied):  # noqa: F811
    """alice's browser as plain HTTP: signed in to the hub, allowed into her server (its hub OAuth done)."""
    http = jupyterhub.session("alice")
    metadata = http.get(proxied["proxy-header"].public + "/.well-known/oauth-authorization-server", timeout=60)
    assert metadata.status_code == 200 and len(metadata.history) >= 2, (metadata.status_code, metadata.history)
    yield http
    http.close()


def _sign_in(http: requests.Session, authorize_url: str, query: dict | None = None) -> tuple[str, str]:
    """GET the authorize page and sign in as the demo's alice; the page's address and its form id."""
    page = http.get(authorize_url, params=query, timeout=30)
    assert page.status_code == 200 and 'name="form_id"' in page.text, (page.status_code, page.text[:300])
    form_id = re.search(r'name="form_id" value="([^"]*)"', page.text).group(1)
    login = http.post(page.url.split("?")[0], timeout=30, data={
        "form_id": form_id, "step": "login", "username": "alice", "password": demo.DEMO_USERS["alice"]})
    assert login.status_code == 200 and "approve" in login.text, login.text[:300]
    return page.url, form_id


def _consent(http: requests.Session, authorize_url: str, query: dict | None = None) -> tuple[str, str]:
    """Sign in and approve as the browser does; (the page the form was posted from, the 302's Location)."""
    page_url, form_id = _sign_in(http, authorize_url, query)
    final = http.post(page_url.split("?")[0], timeout=30, allow_redirects=False,
                      data={"form_id": form_id, "step": "consent", "decision": "approve"})
    assert final.status_code == 302, (final.status_code, final.text[:300])
    return page_url, final.headers["Location"]


@pytest.mark.parametrize("variant", ["proxy-header", "no-header"])
def test_demo_redirect_after_consent_survives_the_proxy_location_rewrite(jupyterhub, alice_kernel,  # noqa: F811
                                                                         alice_http, proxied, variant):
    """Issue 16, failure 1, through the real proxy: it must not prefix the callback a second time,
    whether the demo is told its prefix by X-Forwarded-Prefix or only knows JUPYTERHUB_SERVICE_PREFIX."""
    d = proxied[variant]
    page_url, location = _consent(alice_http, f"{d.public}/authorize",
                                  d.query(NOTEBOOK_ORIGIN + d.browser_url + "/callback"))
    landed = urljoin(page_url, location)  # what the browser opens next (Location as the real proxy sent it)
    parts = urlsplit(landed)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{jupyterhub.url}{PREFIX}proxy/{d.port}/callback", \
        location
    params = dict(parse_qsl(parts.query))
    assert params["code"] and params["state"] == "s" * 20 and params["iss"] == d.issuer
    page = alice_http.get(landed, timeout=30)  # the demo's own paste-back page answers there
    assert page.status_code == 200 and 'id="url"' in page.text
    if variant == "no-header":  # the real proxy did send the header, and this demo went without it
        assert set(alice_kernel.value("", "_demos['no-header'].seen")) == {d.browser_url}


def test_demo_accepts_a_catcher_port_behind_the_same_proxy(jupyterhub, alice_kernel, alice_http,  # noqa: F811
                                                           proxied):
    """Auto-capture through jupyter-server-proxy: the kernel's loopback catcher (another port than the demo's)
    gets the redirect through the same proxy and completes the login in the kernel."""
    d = proxied["proxy-header"]
    link = alice_kernel.value("attempt = nb_oauth2.LoginAttempt('demo')\nstep = attempt.start(via='proxy')",
                              "[step.authorization_url, attempt.via, attempt.redirect_uri]")
    url, via, redirect_uri = link
    assert via == "proxy" and url.startswith(f"{d.browser_url}/authorize?"), link
    catcher = urlsplit(redirect_uri).path
    assert re.fullmatch(rf"{PREFIX}proxy/\d+/callback", catcher) and catcher != f"{d.browser_url}/callback", link
    page_url, location = _consent(alice_http, jupyterhub.url + url)
    landed = urljoin(page_url, location)
    assert urlsplit(landed).path == catcher and "code=" in landed, location
    assert alice_http.get(landed, timeout=30).status_code == 200  # the catcher, through alice's proxy
    signed_in = alice_kernel.value("session = attempt.wait_for_redirect(timeout=60)",
                                   "[attempt.phase, session.get(nb_oauth2.running_demo().url + '/userinfo')"
                                   ".json()['sub']]")
    assert signed_in == ["done", "alice"]


@pytest.mark.parametrize("path", ["/user/bob/proxy/{port}/callback", "/user/alice/proxy/{port}/elsewhere",
                                  "/user/alice/proxy/{port}/x/callback", "/user/alice/proxy/0/callback"])
def test_demo_refuses_other_paths_on_the_notebook_origin(alice_http, proxied, path):
    """Only ``{prefix}proxy/<port>/callback`` is a redirect URI on the notebook's origin; no redirect elsewhere."""
    d = proxied["proxy-header"]
    resp = alice_http.get(f"{d.public}/authorize", params=d.query(NOTEBOOK_ORIGIN + path.format(port=d.port)),
                          allow_redirects=False, timeout=30)
    assert resp.status_code == 400 and "Location" not in resp.headers, (resp.status_code, resp.headers)
    assert "redirect" in resp.text.lower()  # the demo's own error page, through the proxy


def test_demo_without_a_hub_still_redirects_to_its_absolute_callback(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    with demo.start() as p, requests.Session() as http:
        http.trust_env = False
        query = {"response_type": "code", "client_id": p.clients["public"].client_id, "state": "s" * 20,
                 "redirect_uri": f"{p.url}/callback", "code_challenge": "c" * 43, "code_challenge_method": "plain"}
        _, location = _consent(http, f"{p.url}/authorize", query)
        assert location.startswith(f"{p.url}/callback?code=")


def test_paste_back_through_the_proxy_completes_and_another_path_is_a_mix_up(jupyterhub, alice_kernel,  # noqa: F811
                                                                             alice_http, proxied):
    """The package's own login in alice's kernel; the address the browser lands on (hub origin, real proxy)
    is pasted back and matched by path; the same code on another path is a mix-up."""
    d = proxied["proxy-header"]
    url = alice_kernel.value("attempt = nb_oauth2.LoginAttempt('demo')\nstep = attempt.start()",
                             "step.authorization_url")
    assert url.startswith(f"{PREFIX}proxy/{d.port}/authorize?"), url
    page_url, location = _consent(alice_http, jupyterhub.url + url)
    address = urljoin(page_url, location)  # the browser's address bar on the paste-back page
    assert address.startswith(f"{jupyterhub.url}{PREFIX}proxy/{d.port}/callback?code="), location
    assert alice_http.get(address, timeout=30).status_code == 200
    outcome = alice_kernel.value(f"""
from nb_oauth2.core.errors import IssuerMismatch
try:
    attempt.complete_redirect({address.replace("/callback", "/elsewhere")!r})
    mix_up = 'accepted'
except IssuerMismatch:
    mix_up = 'IssuerMismatch'
session = attempt.complete_redirect({address!r})""",
                                 "[mix_up, session.get(nb_oauth2.running_demo().url + '/userinfo').json()['sub']]")
    assert outcome == ["IssuerMismatch", "alice"]


def test_bob_gets_nothing_from_alices_proxied_demo(jupyterhub, alice_kernel, alice_http, proxied):  # noqa: F811
    """bob, signed in to the hub, gets 403 on alice's proxied demo, and a browser not signed in the hub's
    login page: not one request reaches the demo; neither can approve alice's pending sign-in with its form id."""
    d = proxied["no-header"]  # the demo that counts its requests
    authorize = f"{d.public}/authorize"
    query = d.query(NOTEBOOK_ORIGIN + d.browser_url + "/callback")
    _, alices_form = _sign_in(alice_http, authorize, query)
    approve = {"form_id": alices_form, "step": "consent", "decision": "approve"}
    requests_seen = alice_kernel.value("", "len(_demos['no-header'].seen)")
    bob = jupyterhub.session("bob")
    anonymous = requests.Session()
    anonymous.trust_env = False
    with bob, anonymous:
        page = bob.get(authorize, params=query, timeout=30)
        assert page.status_code == 403 and 'name="form_id"' not in page.text, (page.status_code, page.history)
        page = anonymous.get(authorize, params=query, timeout=30)
        assert page.status_code == 200 and urlsplit(page.url).path == "/hub/login", page.url
        hops = [urlsplit(r.url).path for r in page.history]
        assert hops == [f"{d.browser_url}/authorize", "/hub/api/oauth2/authorize"], hops
        for who, http in (("bob", bob), ("anonymous", anonymous)):
            steal = http.post(authorize, data=approve, allow_redirects=False, timeout=30)
            assert steal.status_code == 403 and "Location" not in steal.headers, (who, steal.status_code)
    assert alice_kernel.value("", "len(_demos['no-header'].seen)") == requests_seen  # nothing reached the demo
    approved = alice_http.post(authorize, data=approve, allow_redirects=False, timeout=30)
    assert approved.status_code == 302 and "code=" in approved.headers["Location"]  # alice's sign-in, untouched


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
