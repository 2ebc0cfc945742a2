"""Issue 14: the nb-oauth2 JupyterHub service, for real.

A real JupyterHub (tests/hub/fixture.py: configurable-http-proxy, DummyAuthenticator, alice and bob,
SimpleLocalProcessSpawner) runs ``python -m nb_oauth2.hub`` as a managed service, configured with
exactly the lines of examples/jupyterhub_config.py (the README's "On JupyterHub" snippet). The demo
provider is the authorization server; everything listens on 127.0.0.1. Browsers are requests
sessions signed in to the hub (the demo driver plays the provider's login and consent pages);
kernels are hub API tokens: alice's real server token, and more tokens of alice with the one scope
the service needs (what a second kernel, or a second server, holds).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
import requests

from nb_oauth2 import demo
from nb_oauth2.core.errors import ReauthRequired
from tests.browser_helpers import RUN_ALL_OVER, START_RUN_ALL
from tests.hub import Hub, hub_skip_reason
from tests.hub.fixture import USERS

pytestmark = pytest.mark.skipif(hub_skip_reason() is not None, reason=hub_skip_reason() or "")

REPO = Path(__file__).resolve().parent.parent
SNIPPET = REPO / "examples" / "jupyterhub_config.py"
PREFIX = "/services/nb-oauth2/"
ACCESS = "access:services!service=nb-oauth2"
#: the demo's access tokens live this long: the service refreshes them during the module
TTL = 8
#: test-only: the ``tests`` service may use the admin API (the snippet's custom scope)
TEST_ADMIN_ROLE = ("\nc.Authenticator.admin_users = {'dana'}  # a hub admin (the tests' third user)"
                   "\nc.JupyterHub.load_roles.append({'name': 'nb-oauth2-admin-tests', 'services': ['tests'], "
                   "'scopes': ['custom:nb-oauth2:admin']})\n")
#: test-only: the hub, its proxy and the service log at DEBUG (what an operator chasing a problem turns on)
DEBUG_LOGS = ("\nc.JupyterHub.log_level = 'DEBUG'\nc.ConfigurableHTTPProxy.debug = True\n"
              "c.JupyterHub.services[-1]['command'].append('--debug')\n")
#: test-only: the hub knows its public address (a real hub sets it too), so sign-in links are absolute
PUBLIC_URL = "\nc.JupyterHub.public_url = {url!r}\n"
_REDIRECTS = (301, 302, 303, 307, 308)


class Stack:
    """The hub with the service, the demo provider, and the secrets the logs must not hold."""

    def __init__(self, hub: Hub, provider, key: str, state: Path, service_url: str) -> None:
        self.hub, self.provider, self.key, self.state, self.service_url = hub, provider, key, state, service_url
        self.canaries: set[str] = {provider.clients["web"].client_secret, key}

    def wait_for_service(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.hub.url}{PREFIX}health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the nb-oauth2 service did not come up: {self.hub.log_tail()}")

    def kernel(self, user: str, token: str | None = None):
        """A kernel of ``user``: the service client as a server's environment detects it."""
        from nb_oauth2.hub.client import HubService

        token = token or self.hub.token(user, [ACCESS], note="kernel")
        self.canaries.add(token)
        return HubService.detect({"JUPYTERHUB_API_TOKEN": token, "JUPYTERHUB_API_URL": f"{self.hub.url}/hub/api",
                                  "NB_OAUTH2_HUB_URL": self.service_url})

    def api(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.service_url}{path}", headers={"Authorization": f"token {token}"},
                                timeout=30, **kwargs)

    def browse(self, browser: requests.Session, url: str, *, demo_user: str | None = None):
        """Follow redirects as a browser would; on the provider, sign in and consent with the demo driver.

        Returns (the last response, the callback URL the provider sent the browser to, or None).
        """
        url = urljoin(self.hub.url, url)
        for _ in range(12):
            if url.startswith(self.provider.url):
                callback = self.provider.driver.authorize(url, username=demo_user or "alice")
                self.note_callback(callback)
                return None, callback
            response = browser.get(url, allow_redirects=False, timeout=30)
            if response.status_code not in _REDIRECTS:
                return response, None
            url = urljoin(url, response.headers["Location"])
        raise AssertionError("too many redirects")

    def note_callback(self, url: str) -> None:
        params = dict(parse_qsl(urlsplit(url).query))
        self.canaries.update(v for k, v in params.items() if k in ("code", "state"))

    def sign_in(self, kernel, user: str = "alice"):
        """The whole login: the kernel starts it, the user's browser completes it; the kernel's session."""
        login = kernel.start_login("demo")
        browser = self.hub.session(user)
        _, callback = self.browse(browser, login.url, demo_user=user)
        page = browser.get(callback, allow_redirects=False, timeout=30)
        assert page.status_code == 200 and "return to your notebook" in page.text, page.text[:300]
        kernel.wait(login, timeout=30)
        session = kernel.session("demo", token=kernel.token("demo"))
        self.canaries.add(session.access_token)
        return session

    def vault_tokens(self) -> list[dict]:
        from cryptography.fernet import Fernet

        out = []
        for path in (self.state / "vault").glob("*.vault"):
            out += json.loads(Fernet(self.key.encode()).decrypt(path.read_bytes()))["profiles"].values()
        return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from cryptography.fernet import Fernet

    provider = demo.start(access_token_ttl=TTL)
    root = tmp_path_factory.mktemp("hub-service")
    web = provider.clients["web"]
    profiles = root / "nb_oauth2.toml"
    profiles.write_text(f'[profiles.demo]\nissuer = "{provider.url}"\nclient_id = "{web.client_id}"\n'
                        f'client_secret = "{web.client_secret}"\nscopes = ["read:events", "openid"]\n')
    profiles.chmod(0o600)
    key = Fernet.generate_key().decode()
    state = root / "state"
    from tests.browser_helpers import free_port

    service_url = f"http://127.0.0.1:{free_port()}"
    hub = Hub(root / "hub", users=USERS + ("dana",), extra_env={
        "NB_OAUTH2_HUB_KEY": key, "NB_OAUTH2_HUB_CONFIG": str(profiles), "NB_OAUTH2_HUB_STATE": str(state),
        "NB_OAUTH2_HUB_SERVICE_URL": service_url})
    hub.extra_config = SNIPPET.read_text() + TEST_ADMIN_ROLE + PUBLIC_URL.format(url=hub.url) + DEBUG_LOGS
    stack = Stack(hub, provider, key, state, f"{service_url}{PREFIX}")
    try:
        hub.start()
        stack.wait_for_service()
        yield stack
    finally:
        hub.stop()
        provider.stop()


def test_the_service_refuses_to_start_without_a_key(tmp_path):
    """No NB_OAUTH2_HUB_KEY (or a malformed one): exit 2 with one clear line, nothing created."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NB_OAUTH2_", "JUPYTERHUB_"))}
    env["NB_OAUTH2_HUB_STATE"] = str(tmp_path / "state")
    for key in (None, "not-a-fernet-key"):
        if key:
            env["NB_OAUTH2_HUB_KEY"] = key
        done = subprocess.run([sys.executable, "-m", "nb_oauth2.hub"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2, done.stderr
        assert "NB_OAUTH2_HUB_KEY" in done.stderr and "--new-key" in done.stderr
        assert "Traceback" not in done.stderr and (not key or key not in done.stderr)
    assert not (tmp_path / "state").exists()
    env["NB_OAUTH2_HUB_KEY"] = "x" * 43 + "="  # a well-formed key, but not run by a hub
    done = subprocess.run([sys.executable, "-m", "nb_oauth2.hub"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "managed service" in done.stderr, done.stderr


def test_alice_signs_in_once_and_her_second_kernel_is_signed_in_at_once(stack):
    """Her real server's token (the snippet's roles and Spawner.environment), then another kernel's."""
    hub = stack.hub
    hub.start_server("alice")
    env = hub.server_environ("alice")
    assert env["NB_OAUTH2_HUB_URL"] == stack.service_url
    stack.canaries.add(env["JUPYTERHUB_API_TOKEN"])
    first = stack.kernel("alice", env["JUPYTERHUB_API_TOKEN"])
    session = stack.sign_in(first)
    assert session.get(f"{stack.provider.url}/userinfo").json()["sub"] == "alice"
    assert session.token_info.refresh_token is None  # kernels never hold the refresh token

    second = stack.kernel("alice")
    shown = []
    again = second.login("demo", show=shown.append)
    assert shown == []  # no link: signed in at once
    assert again.get(f"{stack.provider.url}/userinfo").json()["sub"] == "alice"


def test_a_kernel_renews_through_the_service_and_refresh_is_single_flight(stack):
    """Case 49 across kernels: 16 requests from 4 kernels across the expiry -> exactly one refresh grant at
    the provider, one new token for all; a kernel's own session renews by asking the service."""
    kernels = [stack.kernel("alice") for _ in range(4)]
    session = stack.sign_in(kernels[0])
    first = session.token_info
    time.sleep(max(0.0, first.expires_in() - TTL / 2 + 0.5))  # inside the service's renewal margin
    before = stack.provider.token_requests
    with ThreadPoolExecutor(16) as pool:
        tokens = list(pool.map(lambda i: kernels[i % 4].token("demo"), range(16)))
    assert stack.provider.token_requests - before == 1
    assert len({t.access_token for t in tokens}) == 1 and tokens[0].access_token != first.access_token
    stack.canaries.add(tokens[0].access_token)
    # the kernel's own session renews by asking the service (its token has no refresh token)
    time.sleep(max(0.0, session.token_info.expires_in() - TTL / 2 + 0.5))
    assert session.get(f"{stack.provider.url}/userinfo").status_code == 200
    assert session.access_token != first.access_token
    stack.canaries.add(session.access_token)


def test_a_token_the_api_refuses_is_renewed_once_through_the_service(stack):
    """Case 28 behind the hub: a 401 invalid_token -> the kernel names the refused token, the service
    refreshes it once (another kernel then gets the new one without a second refresh), one retry."""
    one, two = stack.kernel("alice"), stack.kernel("alice")
    assert list(one.profiles()) == ["demo"]
    first = stack.sign_in(one)
    assert one.profiles() == {"demo": True}
    second = two.login("demo", show=lambda link: pytest.fail("the second kernel was shown a link"))
    stack.provider.expire_access_tokens()  # the API refuses them; the service still thinks they are fresh
    before = stack.provider.token_requests
    assert first.get(f"{stack.provider.url}/userinfo").status_code == 200
    assert second.get(f"{stack.provider.url}/userinfo").status_code == 200
    assert stack.provider.token_requests - before == 1
    assert first.access_token == second.access_token
    stack.canaries.add(first.access_token)


def test_bob_gets_403_on_alice_and_cannot_complete_her_login_with_her_state(stack):
    """Isolation: bob's kernel, bob's browser, and alice's state in bob's browser.

    Case 53 (a wrong ``iss`` is refused before the token request; the login stays usable) and case 9
    (the same redirect twice: no matching login), through the service's callback."""
    alice, bob = stack.kernel("alice"), stack.kernel("bob")
    login = alice.start_login("demo")
    bob_token = bob.api_token
    assert stack.api("GET", f"api/logins/{login.id}", bob_token).status_code == 403
    bob_tokens = stack.api("GET", "api/tokens/demo", bob_token)
    assert bob_tokens.status_code == 404 and bob_tokens.json()["error"] == "not_signed_in"  # his own: none
    no_scope = stack.hub.token("alice", ["read:users:name!user"], note="no service access")
    assert stack.api("GET", "api/tokens/demo", no_scope).status_code == 403
    assert stack.api("GET", "api/tokens/demo", "not-a-token").status_code == 401

    bob_browser = stack.hub.session("bob")
    page, _ = stack.browse(bob_browser, login.url)
    assert page.status_code == 403  # bob opened alice's link
    alice_browser = stack.hub.session("alice")
    _, callback = stack.browse(alice_browser, login.url)  # alice signs in at the provider ...
    stolen = bob_browser.get(callback, allow_redirects=False, timeout=30)  # ... bob replays her redirect
    assert stolen.status_code == 403 and "another hub user" in stolen.text
    assert alice.status(login.id)["status"] == "pending"
    assert stack.api("GET", "api/tokens/demo", bob_token).status_code == 404
    mixed_up = alice_browser.get(callback.replace("iss=", "iss=https%3A%2F%2Fevil.example&was="),
                                 allow_redirects=False, timeout=30)
    assert mixed_up.status_code == 400 and "refused" in mixed_up.text  # case 53: wrong iss, before any token call
    assert alice.status(login.id)["status"] == "pending"
    elsewhere = stack.hub.session("alice").get(callback, allow_redirects=False, timeout=30)
    assert elsewhere.status_code == 403  # a browser without the service's hub-OAuth cookie: no redirect, no use
    page = alice_browser.get(callback, allow_redirects=False, timeout=30)
    assert page.status_code == 200  # her login was untouched by bob's attempt
    assert alice.status(login.id)["status"] == "done"
    again = alice_browser.get(callback, allow_redirects=False, timeout=30)
    assert again.status_code == 400  # the state is single use


def test_logout_with_revoke_signs_every_kernel_out(stack):
    """One kernel's revoke(): revoked at the provider (RFC 7009), forgotten; the other kernel is signed out."""
    one, two = stack.kernel("alice"), stack.kernel("alice")
    first = stack.sign_in(one)
    second = two.login("demo", show=lambda link: pytest.fail("the second kernel was shown a link"))
    assert second.get(f"{stack.provider.url}/userinfo").status_code == 200
    assert first.revoke() is True
    with pytest.raises(ReauthRequired):
        second.get(f"{stack.provider.url}/userinfo")  # 401 at the API, then the service: not signed in
    assert stack.api("GET", "api/tokens/demo", two.api_token).json()["error"] == "not_signed_in"


def test_admin_lists_fingerprints_and_revokes_a_user(stack):
    """Admin API: fingerprints and expiry, never a token; only with the admin scope."""
    kernel = stack.kernel("alice")
    session = stack.sign_in(kernel)
    assert stack.api("GET", "admin/sessions", kernel.api_token).status_code == 403
    listing = stack.api("GET", "admin/sessions", stack.hub.api_token)
    assert listing.status_code == 200, listing.text
    rows = [row for row in listing.json()["sessions"] if row["user"] == "alice"]
    assert rows and rows[0]["fingerprint"] == session.token_info.fingerprint and rows[0]["refreshable"]
    assert session.access_token not in listing.text and "refresh_token" not in listing.text
    assert stack.api("DELETE", "admin/sessions/alice", stack.hub.api_token).json()["revoked"] == ["demo"]
    assert stack.api("GET", "api/tokens/demo", kernel.api_token).status_code == 404


def test_a_hub_admins_notebook_is_no_admin_of_the_service_and_her_full_token_sees_fingerprints_only(stack):
    """Dana is a hub admin: her server's token (what any notebook she runs holds) and a token of hers
    narrowed to the service are refused by the admin API; her full token (admin:users, as the hub's admin
    role gives it) lists fingerprints only, and the kernel API gives her her own session, never alice's."""
    hub = stack.hub
    kernel = stack.kernel("alice")
    session = stack.sign_in(kernel)
    hub.start_server("dana")
    server_token = hub.server_environ("dana")["JUPYTERHUB_API_TOKEN"]
    narrow = hub.token("dana", [ACCESS], note="narrow")
    full = hub.token("dana", ["admin:users", "admin:servers", ACCESS], note="full")
    stack.canaries.update({server_token, narrow, full})
    for token in (server_token, narrow):
        assert stack.api("GET", "admin/sessions", token).status_code == 403
        assert stack.api("DELETE", "admin/sessions/alice", token).status_code == 403
    listing = stack.api("GET", "admin/sessions", full)
    assert listing.status_code == 200, listing.text
    assert session.access_token not in listing.text and "refresh_token" not in listing.text
    assert session.token_info.fingerprint in listing.text
    for token in (server_token, full):
        own = stack.api("GET", "api/tokens/demo", token)
        assert own.status_code == 404 and own.json()["error"] == "not_signed_in"
    assert kernel.token("demo").access_token  # alice still signed in: nothing revoked by her tokens


def test_vault_is_encrypted_and_the_logs_hold_no_secret(stack):
    """Vault files 0600 in a 0700 directory, no token in clear; hub and service logs: no access or refresh
    token, code, state, client secret, vault key or hub token (case 38, for the service's process)."""
    kernel = stack.kernel("alice")
    stack.sign_in(kernel)
    vault = stack.state / "vault"
    assert stat.S_IMODE(vault.stat().st_mode) == 0o700
    records = stack.vault_tokens()
    assert records
    for path in vault.glob("*.vault"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        raw = path.read_bytes()
        assert all(r["access_token"].encode() not in raw and r["refresh_token"].encode() not in raw for r in records)
    validator = stack.provider.validator
    secrets = stack.canaries | set(validator.access) | set(validator.refresh) | set(validator.codes)
    secrets |= {r["refresh_token"] for r in records}
    log = stack.hub.log_path.read_text(errors="replace")
    assert "nb-oauth2" in log and "/services/nb-oauth2/callback" in log  # the service's log is in there
    leaked = sorted(s[:6] + "..." for s in secrets if s and len(s) >= 8 and s in log)
    assert not leaked, f"secrets in the hub/service log: {leaked}"


def _hub_browser(stack: Stack, user: str, opened: list[str]):
    """``browser=`` for nb_oauth2.login behind the hub: ``user``'s browser opens the service's link, signs in
    at the provider and lands on the service's callback (which completes the kernel's login)."""
    browser = stack.hub.session(user)

    def open_link(url: str) -> None:
        opened.append(url)
        _, callback = stack.browse(browser, url, demo_user=user)
        page = browser.get(callback, allow_redirects=False, timeout=30)
        assert page.status_code == 200 and "return to your notebook" in page.text, page.text[:300]

    return open_link


def test_nb_oauth2_login_goes_through_the_service(stack, monkeypatch):
    """The kernel's usual login behind the hub: nb_oauth2.login('demo') (what %oauth2 login calls) uses the
    service's link, registers the session under its name for read_json and status (it renews: grant hub);
    signed in on the hub, a login returns at once without a link; a run nobody can answer that is not
    signed in gets ReauthRequired naming the fix; logout(revoke=True) signs every kernel out."""
    import nb_oauth2 as oa
    from nb_oauth2.auth import registry
    from nb_oauth2.jupyter import hub_login

    token = stack.hub.token("alice", [ACCESS], note="kernel")
    stack.canaries.add(token)
    for name, value in (("JUPYTERHUB_API_TOKEN", token), ("JUPYTERHUB_API_URL", f"{stack.hub.url}/hub/api"),
                        ("NB_OAUTH2_HUB_URL", stack.service_url)):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(hub_login, "_detected", {})
    stack.api("DELETE", "api/tokens/demo", token)  # signed out on the hub
    service = hub_login.service_for("demo", flow=None, via="auto", local_only=False, options={})
    assert service is not None
    with pytest.raises(ReauthRequired, match="once in a notebook on this hub"):
        hub_login.hub_login(service, "demo", scope=None, name=None, browser=None, timeout=5, wait=True,
                            notebook=True, unattended=True)
    assert hub_login.service_for("demo", flow="device", via="auto", local_only=False, options={}) is None
    assert hub_login.service_for("github", flow=None, via="auto", local_only=False, options={}) is None
    opened: list[str] = []
    try:
        session = oa.login("demo", browser=_hub_browser(stack, "alice", opened))
        assert len(opened) == 1 and opened[0].startswith(f"{stack.hub.url}{PREFIX}start/"), opened
        stack.canaries.add(session.access_token)
        assert oa.session("demo") is session and session.token_info.refresh_token is None
        status = session.status()
        assert status["signed_in"] and status["grant"] == "hub" and status["refreshable"]
        frame = oa.read_json(f"{stack.provider.url}/api/events", session="demo", progress=False)
        assert len(frame) > 0 and "actor.login" in frame.columns
        again = oa.login("demo", name="again", browser=lambda url: pytest.fail("a link was opened again"))
        assert again.is_authorized and oa.session("again") is again
        other = stack.kernel("alice")
        assert other.token("demo").access_token == session.access_token  # every kernel shares the sign-in
        oa.logout("again")  # forget(): this kernel only
        assert other.token("demo").access_token
        assert oa.logout("demo", revoke=True) is True
        with pytest.raises(ReauthRequired):
            other.token("demo")
    finally:
        registry.clear()


def test_stop_ends_a_waiting_hub_login_and_wait_false_finishes_in_the_background(stack, monkeypatch):
    """Case 44 behind the hub: Stop (KeyboardInterrupt) ends the waiting cell's long-poll at once, the widget
    says cancelled and nothing is registered. wait=False shows the widget and returns the pending session,
    which is signed in and registered once the browser has finished (the widget then says so)."""
    import signal

    from nb_oauth2.auth import registry
    from nb_oauth2.jupyter import hub_login

    kernel = stack.kernel("alice")
    stack.api("DELETE", "api/tokens/demo", kernel.api_token)  # signed out on the hub
    views: list = []
    real_view = hub_login.HubLoginView
    monkeypatch.setattr(hub_login, "HubLoginView", lambda *a, **k: views.append(real_view(*a, **k)) or views[-1])

    def stop(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.5)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            hub_login.hub_login(kernel, "demo", scope=None, name="stopped", browser=None, timeout=None, wait=True,
                                notebook=True, unattended=False)
        assert time.monotonic() - started < 10  # not the end of a long-poll, nor the login's 10 minutes
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert "cancelled" in views[-1].status_text
    assert "stopped" not in [s.name for s in registry.sessions()]
    try:
        pending = hub_login.hub_login(kernel, "demo", scope=None, name=None, browser=None, timeout=None, wait=False,
                                      notebook=True, unattended=False)
        assert not pending.is_authorized
        _hub_browser(stack, "alice", [])(views[-1].url)
        deadline = time.monotonic() + 30
        while not pending.is_authorized and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pending.is_authorized and registry.session("demo") is pending
        stack.canaries.add(pending.access_token)
        deadline = time.monotonic() + 5
        while "Signed in" not in views[-1].status_text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "Signed in as profile demo through this hub" in views[-1].status_text
        assert pending.access_token not in views[-1].status_text and views[-1].box.children[-1].value.count("sha256:") == 1
    finally:
        registry.clear()


def _notebook(cells: list[str]) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}, "cells": [
        {"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None, "id": f"c{i}"}
        for i, src in enumerate(cells)]})




@pytest.mark.browser
def test_two_notebooks_share_one_sign_in_and_bob_gets_403_in_a_browser(stack, tmp_path_factory):
    """Issue 14's browser test: in JupyterLab behind the hub, alice runs a notebook (Run All) whose
    nb_oauth2.login('demo') shows the login widget with the service's link; she clicks it, signs in on the
    demo pages, and the waiting cell and the cells after it complete by themselves. A second notebook's
    %oauth2 login is signed in at once (no link) and %oauth2 get reads the API; bob, signed in to the hub in
    another browser, opens alice's sign-in link and gets 403."""
    from playwright.sync_api import expect, sync_playwright

    from tests.browser_helpers import demo_sign_in, launch_browser, open_notebook, skip_reason, stamp_address

    if skip_reason():
        pytest.skip(skip_reason())
    hub, demo_url = stack.hub, stack.provider.url
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    hub.start_server("alice")
    stack.api("DELETE", "api/tokens/demo", stack.hub.token("alice", [ACCESS], note="reset"))  # signed out
    home = hub.home("alice")
    (home / "hub_one.ipynb").write_text(_notebook([
        "import nb_oauth2 as oa\ndemo = oa.login('demo')",
        "%load_ext nb_oauth2\n%oauth2 status",
        f"print('signed in as', demo.get('{demo_url}/userinfo').json()['sub'])"]))
    (home / "hub_two.ipynb").write_text(_notebook([
        "%load_ext nb_oauth2\n%oauth2 login demo",
        f"%oauth2 get {demo_url}/api/events --no-progress"]))
    notebook = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    with sync_playwright() as playwright:
        alice = launch_browser(playwright, tmp_path_factory.mktemp("alice-chromium"))
        bob = launch_browser(playwright, tmp_path_factory.mktemp("bob-chromium"))
        try:
            for context in (alice, bob):
                context.set_default_timeout(90_000)
            page = alice.pages[0] if alice.pages else alice.new_page()
            hub.login(page, "alice")
            open_notebook(page, hub.user_url("alice", "lab/tree/hub_one.ipynb?reset"), "hub_one.ipynb")
            page.evaluate(START_RUN_ALL)
            link = page.locator(f"{notebook} .nb-oauth2-link a")
            expect(link).to_have_count(1)
            expect(page.locator(f"{notebook} .nb-oauth2-pending")).to_contain_text("Waiting for you to sign in")
            assert page.locator(f"{notebook} .nb-oauth2-paste").count() == 0  # nothing to paste behind the hub
            href = link.get_attribute("href")
            assert href.startswith(f"{hub.url}{PREFIX}start/"), href
            stamp_address(page)
            page.screenshot(path=str(artifacts / "hub-service-alice-widget.png"))
            with alice.expect_page() as opened:
                link.click()  # a new tab: through the hub's OAuth (alice is signed in) to the demo provider
            provider = opened.value
            provider.wait_for_selector("#username")
            demo_sign_in(provider, "alice")
            provider.wait_for_function("() => document.body.innerText.includes('return to your notebook')")
            stamp_address(provider)
            provider.screenshot(path=str(artifacts / "hub-service-signed-in-page.png"))
            page.bring_to_front()
            page.wait_for_function(RUN_ALL_OVER)
            expect(page.locator(f"{notebook} .nb-oauth2-status")).to_contain_text(
                "Signed in as profile demo through this hub's nb-oauth2 service")
            expect(page.locator(f"{notebook} .nb-oauth2-status")).to_contain_text("renews by itself")
            expect(page.locator(f"{notebook} .jp-OutputArea-output").last).to_contain_text("signed in as alice")
            outputs = " ".join(page.locator(f"{notebook} .jp-OutputArea").all_inner_texts())
            assert "Traceback" not in outputs and "hub" in outputs  # %oauth2 status: grant hub, refreshable
            stamp_address(page)
            page.screenshot(path=str(artifacts / "hub-service-alice-notebook-1.png"))

            second = alice.new_page()
            open_notebook(second, hub.user_url("alice", "lab/tree/hub_two.ipynb?reset"), "hub_two.ipynb")
            second.evaluate(START_RUN_ALL)
            second.wait_for_function(RUN_ALL_OVER)
            expect(second.locator(f"{notebook} .nb-oauth2-hub-signed-in")).to_contain_text("Signed in as profile demo")
            expect(second.locator(f"{notebook} table.dataframe")).to_contain_text("actor.login")
            assert second.locator(f"{notebook} .nb-oauth2-link").count() == 0  # no sign-in link
            outputs = " ".join(second.locator(f"{notebook} .jp-OutputArea").all_inner_texts())
            assert "Traceback" not in outputs and "Error" not in outputs, outputs[:500]
            stamp_address(second)
            second.screenshot(path=str(artifacts / "hub-service-alice-notebook-2.png"))

            for tab, name in ((page, "hub_one.ipynb"), (second, "hub_two.ipynb")):  # saved as a user saves
                _save_and_check(stack, tab, home / name)

            intruder = bob.pages[0] if bob.pages else bob.new_page()
            hub.login(intruder, "bob")
            answer = intruder.goto(href)
            assert answer is not None and answer.status == 403
            expect(intruder.locator("h1")).to_contain_text("Not your sign-in link")
            stamp_address(intruder)
            intruder.screenshot(path=str(artifacts / "hub-service-bob-403.png"))
        finally:
            alice.close()
            bob.close()


def _save_and_check(stack: Stack, page, path: Path) -> None:
    """Save the notebook in ``page`` (File > Save, widget state included) and check that the saved file holds
    no token, code, state, hub token or client secret (case 39: the widget's state is saved with it)."""
    page.bring_to_front()
    before = path.stat().st_mtime_ns
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    deadline = time.monotonic() + 30
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.2)
    text = path.read_text()
    notebook = json.loads(text)
    assert notebook["cells"][0].get("outputs"), "the notebook was not saved with its outputs"
    validator = stack.provider.validator
    secrets = stack.canaries | set(validator.access) | set(validator.refresh) | set(validator.codes)
    secrets |= {stack.hub.server_environ("alice")["JUPYTERHUB_API_TOKEN"]}
    leaked = sorted(s[:6] + "..." for s in secrets if s and len(s) >= 8 and s in text)
    assert not leaked, f"secrets in the saved {path.name}: {leaked}"


def test_tutorial_06_runs_in_alices_server_environment(stack, tmp_path):
    """Tutorial 06 "On JupyterHub", executed against the real hub with `jupyter execute` in the environment
    of alice's running server (her JUPYTERHUB_API_TOKEN, the snippet's NB_OAUTH2_HUB_URL): signed in on the
    hub beforehand, its logins need no one (unattended), it reads the demo API, a second login is signed in
    at once, and its last cell's logout(revoke=True) signs every kernel of hers out. The saved notebook
    holds no token (case 39)."""
    hub = stack.hub
    hub.start_server("alice")
    env = hub.server_environ("alice")
    stack.canaries.add(env["JUPYTERHUB_API_TOKEN"])
    kernel = stack.kernel("alice")
    session = stack.sign_in(kernel)  # what the tutorial's first run, in a browser, does
    env.update({"NB_OAUTH2_TUTORIAL_PROFILE": "demo", "NB_OAUTH2_TUTORIAL_API": f"{stack.provider.url}/api/events",
                "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "MPLBACKEND": "Agg"})
    saved = tmp_path / "06_on_jupyterhub.ipynb"
    done = subprocess.run([sys.executable, "-m", "jupyter", "execute", "--timeout=120", f"--output={saved}",
                           str(REPO / "notebooks" / "06_on_jupyterhub.ipynb")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, (done.stderr or done.stdout)[-3000:]
    notebook = json.loads(saved.read_text())
    text = "".join("".join(o.get("text", "")) for c in notebook["cells"] for o in c.get("outputs", []))
    assert "The hub signs you in to: demo (signed in to demo: True)" in text, text
    assert "rows from" in text and "refresh token in this kernel: False" in text
    assert "renews by itself: True | grant: hub" in text and "second session signed in at once: True" in text
    assert "revoked at the provider: True" in text and "signed in to demo on the hub: False" in text
    assert "skipped" not in text
    with pytest.raises(ReauthRequired):
        kernel.token("demo")  # the tutorial's revoke signed this kernel out too
    raw = saved.read_text()
    validator = stack.provider.validator
    secrets = stack.canaries | set(validator.access) | set(validator.refresh) | {session.access_token}
    leaked = sorted(s[:6] + "..." for s in secrets if s and len(s) >= 8 and s in raw)
    assert not leaked, f"secrets in the executed tutorial: {leaked}"


def test_a_restart_keeps_the_tokens_and_forget_on_restart_drops_them(stack):
    """The hub (and its service) restart: the vault survives; with forget_on_restart it is wiped."""
    hub = stack.hub
    kernel = stack.kernel("alice")
    stack.sign_in(kernel)
    hub.stop()
    hub.start()
    stack.wait_for_service()
    assert kernel.token("demo").access_token  # read back from the encrypted vault (refreshed if due)
    hub.stop()
    hub.extra_env["NB_OAUTH2_HUB_FORGET_ON_RESTART"] = "1"
    try:
        hub.start()
        stack.wait_for_service()
        with pytest.raises(ReauthRequired):
            kernel.token("demo")
    finally:
        hub.extra_env.pop("NB_OAUTH2_HUB_FORGET_ON_RESTART")
