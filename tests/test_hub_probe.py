"""Issue 14, tested as an outsider would: the service's HTTP API and pages run in-process (tornado on
127.0.0.1, a stand-in for the hub's token check), the kernel's client over real HTTP, the demo provider with
2 s access tokens and rotating refresh tokens. The real hub is in tests/test_hub_service.py; here are the
behaviours that do not need it: refresh under load, refused refresh tokens, odd callbacks, who is an admin,
what the kernel sees when the service, the hub API or the provider fails, and what reaches the logs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

pytest.importorskip("cryptography")
pytest.importorskip("jupyterhub")

from cryptography.fernet import Fernet, MultiFernet  # noqa: E402
from tornado import web  # noqa: E402

from nb_oauth2 import demo  # noqa: E402
from nb_oauth2.core.endpoint import ClientAuth  # noqa: E402
from nb_oauth2.core.errors import OAuth2Error, ReauthRequired, TransportError  # noqa: E402
from nb_oauth2.core.providers import discover  # noqa: E402
from nb_oauth2.core.redact import RedactingFilter  # noqa: E402
from nb_oauth2.hub.app import Service, _keep, make_app  # noqa: E402
from nb_oauth2.hub.client import HubService  # noqa: E402
from nb_oauth2.hub.config import HubConfig, HubProfile  # noqa: E402

PREFIX = "/services/nb-oauth2/"
ACCESS = "access:services!service=nb-oauth2"
#: JupyterHub 6's default roles: a server's token, a hub admin's own full token
SERVER_SCOPES = ["users:activity!user", "access:servers!server", ACCESS]
ADMIN_SCOPES = ["admin-ui", "admin:users", "admin:servers", "tokens", "access:services", "read:hub"]
TTL = 2


class FakeHubAuth:
    """The hub's token check (HubOAuth) as the handlers use it: API tokens -> models, a cookie -> browser user."""

    access_scopes = {ACCESS}
    login_url = "/hub/login"

    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.down = False

    def add(self, token: str, name: str, scopes: list[str], *, admin: bool = False, kind: str = "user") -> str:
        self.tokens[token] = {"kind": kind, "name": name, "admin": admin, "scopes": list(scopes), "groups": []}
        return token

    def get_token(self, handler: Any, in_cookie: bool = True) -> str | None:
        header = handler.request.headers.get("Authorization", "")
        return header.split(None, 1)[1] if header.lower().startswith("token ") else None

    async def user_for_token(self, token: str, sync: bool = True, **kwargs: Any) -> dict[str, Any] | None:
        if self.down:  # what jupyterhub.services.auth.HubAuth._api_request raises when the hub API is unreachable
            raise web.HTTPError(500, "Failed to connect to Hub API at 'http://127.0.0.1:1/hub/api/'.")
        model = self.tokens.get(token)
        return dict(model) if model else None

    def check_scopes(self, required: Any, model: dict[str, Any]) -> set[str]:
        held = set(model.get("scopes") or ())
        return {s for s in required if s in held or s.split("!", 1)[0] in held}

    def get_user(self, handler: Any) -> dict[str, Any] | None:
        name = handler.get_cookie("test-hub-user")
        return {"kind": "user", "name": name, "admin": False, "scopes": ["self", ACCESS]} if name else None

    def _persist_url_token_if_set(self, handler: Any) -> None:
        pass


class InProcess:
    """The service's tornado app on 127.0.0.1 in a thread of its own (its own event loop)."""

    def __init__(self, service: Service, port: int = 0) -> None:
        from tornado.httpserver import HTTPServer
        from tornado.netutil import bind_sockets

        self.service = service
        self.loop = asyncio.new_event_loop()
        sockets = bind_sockets(port, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = HTTPServer(make_app(service), xheaders=True)
            self.server.add_sockets(sockets)
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="hub-service-under-test", daemon=True)
        self.thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if not self.thread.is_alive():
            return

        async def close() -> None:
            self.server.stop()
            await self.server.close_all_connections()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Rig:
    """Provider + service + hub stand-in; kernels and browsers of hub users."""

    def __init__(self, provider: Any, tmp_path: Any) -> None:
        self.provider = provider
        web_client = provider.clients["web"]
        self.client_secret = web_client.client_secret
        self.key = Fernet.generate_key()
        profile = HubProfile(name="demo", provider=discover(provider.url, name="demo"),
                             client=ClientAuth(web_client.client_id, web_client.client_secret),
                             scopes=("read:events", "openid"))
        self.hub = FakeHubAuth()
        self.config = HubConfig(profiles={"demo": profile}, key=MultiFernet([Fernet(self.key)]),
                                state_dir=tmp_path / "state")
        self.tmp_path = tmp_path
        self.start()
        self.hub.add("alice-server", "alice", SERVER_SCOPES)
        self.hub.add("bob-server", "bob", SERVER_SCOPES)

    def start(self) -> None:
        self.running = InProcess(Service(self.config, prefix=PREFIX, hub_auth=self.hub))
        self.config.public_url = self.running.url
        self.base = self.running.url + PREFIX

    def restart(self) -> None:
        """Stop the service and start a new one on the same address (as the hub restarts a managed service)."""
        port = self.running.port
        self.running.stop()
        self.running = InProcess(Service(self.config, prefix=PREFIX, hub_auth=self.hub), port)
        self.config.public_url = self.running.url
        self.base = self.running.url + PREFIX

    @property
    def service(self) -> Service:
        return self.running.service

    def kernel(self, token: str = "alice-server", **kwargs: Any) -> HubService:
        return HubService(self.base, token, **kwargs)

    def browser(self, user: str) -> requests.Session:
        browser = requests.Session()
        browser.cookies.set("test-hub-user", user, domain="127.0.0.1")
        return browser

    def authorize(self, kernel: HubService, user: str = "alice", *, browser_user: str | None = None,
                  approve: bool = True) -> tuple[Any, str]:
        """Start a login in ``kernel``, open its link as ``browser_user``; the provider's redirect (not followed)."""
        login = kernel.start_login("demo")
        start = self.browser(browser_user or user).get(login.url, allow_redirects=False, timeout=10)
        assert start.status_code == 302, start.text
        return login, self.provider.driver.authorize(start.headers["Location"], username=user, approve=approve)

    def sign_in(self, kernel: HubService, user: str = "alice") -> None:
        login, callback = self.authorize(kernel, user)
        page = self.browser(user).get(callback, timeout=30)
        assert page.status_code == 200, page.text
        kernel.wait(login, timeout=10)

    def api(self, method: str, path: str, token: str | None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {token}"} if token else {}
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.base + path, headers=headers, **kwargs)

    def due(self, user: str = "alice") -> dict[str, Any]:
        """Make the stored token due for renewal (inside the margin) and return what was stored."""
        stored = self.service.vault.get(user, "demo")
        now = time.time()
        stored["received_at"], stored["expires_at"] = now - TTL + 0.2, now + 0.2
        self.service.vault.put(user, "demo", stored)
        return stored


class Secrets(logging.Handler):
    """Every record at DEBUG, rendered through the service's own log filters (app.setup_logging)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(_keep)
        self.addFilter(RedactingFilter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def rig(tmp_path) -> Iterator[Rig]:
    yield from _rig(tmp_path, TTL)


@pytest.fixture
def slow_rig(tmp_path) -> Iterator[Rig]:
    """Hour-long access tokens: no renewal by expiry during a test."""
    yield from _rig(tmp_path, 3600)


def _rig(tmp_path: Any, ttl: int) -> Iterator[Rig]:
    with demo.start(access_token_ttl=ttl) as provider:
        rig = Rig(provider, tmp_path)
        try:
            yield rig
        finally:
            rig.running.stop()


def _token_or_error(kernel: HubService) -> Any:
    """A kernel's GET api/tokens/demo: the token, or the typed error it raised (for a thread pool's map)."""
    try:
        return kernel.token("demo")
    except OAuth2Error as exc:
        return exc


# -- token lifetimes -------------------------------------------------------------------------------


def test_kernels_hammering_across_many_2s_expiries_cause_one_refresh_per_expiry(rig):
    """Case 49 across kernels and expiries: 4 kernels x 3 read threads call the API for ~4 token lifetimes;
    every call is answered 200 (no kernel is handed an expired token), the rotating refresh token is never
    reused (the demo provider would revoke the grant), and the provider sees about one refresh per expiry."""
    kernels = [rig.kernel() for _ in range(4)]
    rig.sign_in(kernels[0])
    sessions = [k.session("demo", token=k.token("demo")) for k in kernels]
    before, started, handed = rig.provider.token_requests, time.monotonic(), []
    stop = started + 4 * TTL

    def hammer(session: Any) -> list[int]:
        codes = []
        while time.monotonic() < stop:
            codes.append(session.get(f"{rig.provider.url}/userinfo", timeout=10).status_code)
            handed.append(session.token_info)
        return codes

    with ThreadPoolExecutor(12) as pool:
        codes = [c for result in pool.map(hammer, sessions * 3) for c in result]
    refreshes = rig.provider.token_requests - before
    elapsed = time.monotonic() - started
    assert codes and set(codes) == {200}
    assert 2 <= refreshes <= elapsed / (TTL / 2) + 2, (refreshes, elapsed)  # renewed at half-life at most
    assert rig.service.vault.get("alice", "demo")  # never purged: no refresh token was reused
    assert all(t.refresh_token is None for t in handed)


def test_a_refused_refresh_token_ends_every_waiting_kernel_and_a_new_login_works(rig):
    """Case 17 with kernels waiting on the single flight: 8 concurrent requests for a due token whose
    refresh token the provider refuses -> one refresh attempt, ReauthRequired for all 8, the record purged;
    a new login then works."""
    kernels = [rig.kernel() for _ in range(4)]
    rig.sign_in(kernels[0])
    rig.due()
    rig.provider.revoke_all()
    before = rig.provider.token_requests

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(_token_or_error, kernels * 2))
    assert all(isinstance(o, ReauthRequired) for o in outcomes), outcomes
    assert rig.provider.token_requests - before == 1
    assert rig.service.vault.get("alice", "demo") is None
    rig.sign_in(kernels[1])
    assert kernels[2].token("demo").access_token


# -- isolation ------------------------------------------------------------------------------------------


def test_the_admin_api_needs_an_admin_scope_on_the_token_not_only_an_admin_owner(rig):
    """A hub admin's *server* token (what any notebook of the admin holds: no admin:users) or a token of the
    admin restricted to a few scopes is not an admin of the service: 403 on list and revoke. The admin's
    full token (admin:users) and a token with the service's admin scope are; they see fingerprints only,
    and the kernel API gives an admin her own token, never alice's."""
    rig.sign_in(rig.kernel())
    alice = rig.kernel().token("demo")
    hub = rig.hub
    hub.add("root-server", "root", SERVER_SCOPES, admin=True)
    hub.add("root-narrow", "root", ["read:users:name"], admin=True)
    hub.add("root-full", "root", ADMIN_SCOPES, admin=True)
    hub.add("delegate", "carol", [ACCESS, "custom:nb-oauth2:admin"])
    for token in ("root-server", "root-narrow", "bob-server"):
        assert rig.api("GET", "admin/sessions", token).status_code == 403, token
        assert rig.api("DELETE", "admin/sessions/alice", token).status_code == 403, token
    for token in ("root-full", "delegate"):
        listing = rig.api("GET", "admin/sessions", token)
        assert listing.status_code == 200 and [s["user"] for s in listing.json()["sessions"]] == ["alice"]
        assert alice.access_token not in listing.text and "refresh" not in listing.text.replace("refreshable", "")
    own = rig.api("GET", "api/tokens/demo", "root-full")
    assert own.status_code == 404 and alice.access_token not in own.text
    assert rig.api("GET", "api/tokens/demo", "bob-server").status_code == 404
    assert rig.service.vault.get("alice", "demo")  # nothing revoked by the refused tokens


# -- logins: odd callbacks ------------------------------------------------------------------------------


def _with(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return parts._replace(query=urlencode(query)).geturl()


def test_odd_callbacks_are_refused_and_leave_the_login_usable(rig):
    """Case 9 and 53 on the service's callback: bob's browser or no hub cookie on alice's callback (403), no
    state, garbage and a huge query, a wrong iss (400): nothing reaches the token endpoint, no page repeats
    the code, and alice's login still completes afterwards. Bob's code under alice's state is exchanged with
    alice's PKCE verifier, refused by the provider, and ends that login as failed with nothing stored."""
    kernel = rig.kernel()
    alice = rig.browser("alice")
    login, callback = rig.authorize(kernel)
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    before = rig.provider.token_requests
    refused = [
        rig.browser("bob").get(callback, timeout=10),
        requests.get(callback, timeout=10),  # no hub cookie at all
        alice.get(_with(callback, state=None), timeout=10),
        alice.get(rig.base + "callback?" + "x=%ff%fe&" * 20 + "state=" + "A" * 20000, timeout=10),
        alice.get(_with(callback, iss="https://evil.example"), timeout=10),
    ]
    assert [r.status_code for r in refused] == [403, 403, 400, 400, 400]
    assert rig.provider.token_requests == before and kernel.status(login.id)["status"] == "pending"
    assert all(code not in page.text for page in refused)
    assert alice.get(callback, timeout=10).status_code == 200
    kernel.wait(login, timeout=5)
    assert rig.service.vault.get("alice", "demo")

    rig.service.vault.delete("alice", "demo")
    login, callback = rig.authorize(kernel)
    _, bobs = rig.authorize(rig.kernel("bob-server"), "bob")
    mixed = alice.get(_with(callback, code=dict(parse_qsl(urlsplit(bobs).query))["code"]), timeout=10)
    assert mixed.status_code == 400 and rig.service.vault.get("alice", "demo") is None
    with pytest.raises(OAuth2Error):
        kernel.wait(login, timeout=5)


def test_a_denied_sign_in_fails_its_login_and_a_replayed_callback_is_refused(rig):
    kernel = rig.kernel()
    login, denied = rig.authorize(kernel, approve=False)
    assert "error=access_denied" in denied
    page = rig.browser("alice").get(denied, timeout=10)
    assert page.status_code == 400 and "denied" in page.text.lower()
    from nb_oauth2.core.errors import AuthorizationDenied

    with pytest.raises(AuthorizationDenied):
        kernel.wait(login, timeout=5)
    login, callback = rig.authorize(kernel)
    assert rig.browser("alice").get(callback, timeout=10).status_code == 200
    before = rig.provider.token_requests
    replay = rig.browser("alice").get(callback, timeout=10)
    assert replay.status_code == 400 and rig.provider.token_requests == before
    kernel.wait(login, timeout=5)


def test_the_same_link_opened_twice_and_many_logins_of_one_user(rig):
    """Each login has its own state; opening a link again retires the state of the first opening (its
    callback is refused), the second opening completes; other logins of the same user stay independent."""
    kernel = rig.kernel()
    logins = [kernel.start_login("demo") for _ in range(5)]
    alice = rig.browser("alice")
    firsts = [alice.get(login.url, allow_redirects=False, timeout=10).headers["Location"] for login in logins]
    states = {dict(parse_qsl(urlsplit(url).query))["state"] for url in firsts}
    assert len(states) == 5
    again = alice.get(logins[0].url, allow_redirects=False, timeout=10).headers["Location"]
    stale = rig.provider.driver.authorize(firsts[0])
    assert alice.get(stale, timeout=10).status_code == 400
    fresh = rig.provider.driver.authorize(again)
    assert alice.get(fresh, timeout=10).status_code == 200
    kernel.wait(logins[0], timeout=5)
    assert kernel.status(logins[1].id)["status"] == "pending"
    done = rig.provider.driver.authorize(firsts[1])
    assert alice.get(done, timeout=10).status_code == 200


def test_an_expired_pending_login_fails_in_the_kernel_and_its_link_is_gone(rig):
    rig.service.logins.ttl = 0.5
    kernel = rig.kernel()
    login = kernel.start_login("demo")
    with pytest.raises(OAuth2Error, match="expired"):
        kernel.wait(login, timeout=10)
    assert rig.browser("alice").get(login.url, allow_redirects=False, timeout=10).status_code == 410


# -- failures as the kernel sees them ------------------------------------------------------------------------


def test_a_restart_during_a_login_gives_the_waiting_kernel_a_typed_error(rig):
    kernel = rig.kernel()
    login = kernel.start_login("demo")
    rig.restart()
    with pytest.raises(ReauthRequired) as caught:  # not a ConfigurationError: nothing to configure, sign in again
        kernel.wait(login, timeout=10)
    assert "restarted" in caught.value.message and "login again" in (caught.value.hint or "")


def test_the_service_down_or_silent_gives_a_typed_error_with_a_hint(rig):
    import socket

    down = HubService(f"http://127.0.0.1:{rig.running.port}/nowhere/", "alice-server")
    rig.running.stop()
    with pytest.raises(TransportError) as caught:
        down.token("demo")
    assert caught.value.hint and "nb-oauth2" in caught.value.message
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        slow = HubService(f"http://127.0.0.1:{silent.getsockname()[1]}/", "alice-server", timeout=(1.0, 1.0))
        with pytest.raises(TransportError) as caught:
            slow.token("demo")
        assert caught.value.hint and "did not answer" in caught.value.message
    finally:
        silent.close()


def test_the_hub_api_unreachable_or_the_provider_down_gives_a_typed_error_naming_it(rig):
    kernel = rig.kernel()
    rig.sign_in(kernel)
    rig.hub.down = True
    with pytest.raises(TransportError) as caught:
        kernel.token("demo")
    assert "hub" in caught.value.message.lower() and "Internal Server Error" not in caught.value.message
    assert caught.value.hint
    rig.hub.down = False
    rig.due()
    rig.provider.stop()
    with pytest.raises(TransportError) as caught:
        kernel.token("demo")
    assert caught.value.status == 502 and caught.value.hint
    assert rig.service.vault.get("alice", "demo")  # kept: the provider may come back


# -- secrets -----------------------------------------------------------------------------------------------------


def test_debug_logs_error_pages_and_vault_hold_no_secret(rig):
    """Case 38 on the service: at DEBUG (tornado, jupyterhub, requests, urllib3, oauthlib) through a login,
    refused callbacks, a refresh, a 401 renewal and a revoking logout, no access or refresh token, code,
    state, client secret or vault key reaches a log line; JSON errors and pages hold none; the vault
    files hold no token in clear."""
    capture = Secrets()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        kernel = rig.kernel()
        login, callback = rig.authorize(kernel)
        query = dict(parse_qsl(urlsplit(callback).query))
        alice = rig.browser("alice")
        pages = [alice.get(_with(callback, iss="https://evil.example"), timeout=10),
                 rig.browser("bob").get(callback, timeout=10),
                 alice.get(callback, timeout=10), alice.get(callback, timeout=10)]
        kernel.wait(login, timeout=5)
        first = rig.vault_token = rig.service.vault.get("alice", "demo")
        rig.due()
        second = kernel.token("demo")
        pages.append(rig.api("GET", "api/tokens/demo", "bob-server"))
        pages.append(rig.api("GET", "api/tokens/demo?stale=" + "x" * 50, "nobody"))
        third = rig.service.vault.get("alice", "demo")
        vault_bytes = b"".join(p.read_bytes() for p in (rig.tmp_path / "state" / "vault").glob("*.vault"))
        kernel.logout("demo", revoke=True)
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    secrets = {query["code"], query["state"], rig.client_secret, rig.key.decode(), first["access_token"],
               first["refresh_token"], second.access_token, third["refresh_token"], "alice-server"}
    text = "\n".join(capture.lines)
    assert capture.lines and "nb_oauth2.hub" in text
    assert [s[:12] for s in secrets if s in text] == []
    for page in pages:
        assert [s[:12] for s in secrets if s in page.text] == []
    assert [s[:12] for s in secrets if s.encode() in vault_bytes] == []


def test_read_json_with_concurrent_threads_renews_through_the_service_across_expiries(rig):
    """The kernel's HubSession under read_json's threads (concurrency=4, style=pages, 1 record per page for
    ~3 token lifetimes): every page read, the session renewed by asking the service, never reusing a
    rotated refresh token (the record survives)."""
    from nb_oauth2.frames.readers import read_json

    kernel = rig.kernel()
    rig.sign_in(kernel)
    session = kernel.session("demo", token=kernel.token("demo"))
    first = session.access_token
    started, frames = time.monotonic(), []
    while time.monotonic() - started < 3 * TTL:
        frames.append(read_json(f"{rig.provider.url}/api/pages/events?per_page=5&max_pages=8", session=session,
                                progress=False, concurrency=4))
    assert frames and all(len(f) for f in frames)
    assert session.access_token != first and rig.service.vault.get("alice", "demo")


# -- names and parameters -------------------------------------------------------------------------------------


def test_odd_names_and_parameters_touch_no_file_and_find_nothing(rig):
    """Path traversal in profile, login and user names (.., %2e%2e, %2f, very long) finds nothing and
    touches nothing outside the vault; a service's token is no user; wait= is bounded whatever it says."""
    rig.sign_in(rig.kernel())
    vault = rig.tmp_path / "state" / "vault"
    before = sorted(p.name for p in rig.tmp_path.rglob("*"))
    rig.hub.add("root-full", "root", ADMIN_SCOPES, admin=True)
    for name in ("..", "%2e%2e", "..%2f..%2fvault", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "x" * 5000, "demo%00"):
        assert rig.api("GET", f"api/tokens/{name}", "alice-server").status_code in (404, 414), name
        assert rig.api("GET", f"api/logins/{name}", "alice-server").status_code in (404, 414), name
        assert rig.api("DELETE", f"admin/sessions/{name}", "root-full").status_code in (200, 404, 414), name
        assert rig.api("DELETE", f"api/tokens/{name}", "alice-server").status_code in (404, 414), name
    assert sorted(p.name for p in rig.tmp_path.rglob("*")) == before and len(list(vault.glob("*.vault"))) == 1
    rig.hub.add("a-service", "alice", [ACCESS], kind="service")  # a service named like a user
    assert rig.api("GET", "api/tokens/demo", "a-service").status_code == 403
    login = rig.kernel().start_login("demo")
    for wait in ("nan", "inf", "-1", "1e309", "abc"):
        answer = rig.api("GET", f"api/logins/{login.id}?wait={wait}", "alice-server", timeout=10)
        assert answer.status_code == 200 and answer.json()["status"] == "pending"


def test_a_user_cannot_pile_up_pending_logins_without_bound(rig):
    """A kernel in a loop (or a hostile one) starting sign-ins: the service keeps a bounded number per user
    (the oldest are dropped: their kernels are told to run the login again); other users are unaffected."""
    from nb_oauth2.hub import logins as logins_module

    MAX_PER_USER = getattr(logins_module, "MAX_PER_USER", 20)  # noqa: N806
    bob = rig.kernel("bob-server")
    bobs = bob.start_login("demo")
    kernel = rig.kernel()
    logins = [kernel.start_login("demo") for _ in range(MAX_PER_USER + 10)]
    kept = [login for login in logins if rig.service.logins.get(login.id, "alice") is not None]
    assert len(kept) == MAX_PER_USER and kept == logins[-MAX_PER_USER:]
    with pytest.raises(ReauthRequired):
        kernel.wait(logins[0], timeout=5)
    assert bob.status(bobs.id)["status"] == "pending"
    _, callback = rig.authorize(kernel)
    assert rig.browser("alice").get(callback, timeout=10).status_code == 200


def test_jupyterhubs_own_token_check_with_the_hub_api_down_gives_503_hub_unavailable(rig):
    """The same with jupyterhub's real HubOAuth pointed at a hub API nobody answers (a closed port): the
    kernel gets a TransportError naming the hub's API, with a hint, in bounded time."""
    import socket

    from jupyterhub.services.auth import HubOAuth

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    real = HubOAuth(api_url=f"http://127.0.0.1:{port}/hub/api/", api_token="service-token-canary",
                    oauth_client_id="service-nb-oauth2", cache_max_age=0)
    rig.running.stop()
    rig.running = InProcess(Service(rig.config, prefix=PREFIX, hub_auth=real))
    rig.base = rig.running.url + PREFIX
    with pytest.raises(TransportError) as caught:
        rig.kernel().token("demo")
    assert caught.value.status == 503 and "hub's API" in caught.value.message and caught.value.hint
    assert "service-token-canary" not in str(caught.value)


def test_an_api_that_refuses_every_token_does_not_make_the_service_refresh_on_every_request(slow_rig, scripted):
    """Case 28 behind the hub, against a storm: an API that answers 401 invalid_token to every token (wrong
    audience, a misconfigured gateway) while read loops go on. Each 401 names the refused token (stale=);
    the first one is refreshed at once, but the token a forced refresh just gave is not forced again for a
    while: the hub's client registration, shared by every user, is not spent at the provider one refresh per
    request. The caller sees the API's 401."""
    from tests.scripted_server import Reply

    rig = slow_rig
    scripted.script("*", [Reply(401, {"error": "invalid_token"},
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})])
    kernels = [rig.kernel() for _ in range(3)]
    rig.sign_in(kernels[0])
    sessions = [k.session("demo", token=k.token("demo")) for k in kernels]
    before = rig.provider.token_requests
    codes = [s.get(f"{scripted.url}/api/x", timeout=10).status_code for _ in range(8) for s in sessions]
    assert set(codes) == {401}
    assert rig.provider.token_requests - before == 1
    assert rig.service.vault.get("alice", "demo")


def test_a_failing_refresh_answers_every_waiting_kernel_at_once(rig, scripted):
    """The provider's token endpoint fails (503 after a pause) while 8 kernels wait for the same due token:
    one refresh attempt, and every waiting kernel gets the failure (502 provider error, a hint) from it:
    not one attempt per waiting kernel, one after another, each waiting for the ones before it."""
    import dataclasses

    from nb_oauth2.core.endpoint import Endpoints
    from tests.scripted_server import Reply

    kernels = [rig.kernel() for _ in range(4)]
    rig.sign_in(kernels[0])
    custody = rig.service.custody
    profile = custody.config.profiles["demo"]
    failing = dataclasses.replace(profile.provider, token_endpoint=f"{scripted.url}/token")
    custody._endpoints["demo"] = Endpoints(failing, profile.client)  # the provider's token endpoint, failing
    scripted.script("/token", [Reply(503, {"error": "temporarily_unavailable"}, delay=0.5)])
    rig.due()

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(_token_or_error, kernels * 2))
    assert all(isinstance(o, OAuth2Error) and o.status == 502 for o in outcomes), outcomes
    assert scripted.count("/token") == 1
    assert rig.service.vault.get("alice", "demo")  # kept: the provider may come back


#: access-token lifetimes the raw api/tokens hammer runs with (5 s too when run by hand: it takes 15 s)
HAMMER_TTLS = (2,)


@pytest.mark.parametrize("ttl", HAMMER_TTLS)
def test_kernels_hammering_api_tokens_are_never_handed_an_expired_token(tmp_path, ttl):
    """6 kernels call GET api/tokens in loops for 3 lifetimes of ``ttl`` s: every token handed out still
    has time left (more than a tenth of its lifetime), each access token is new only after a refresh,
    about one refresh per half-life, no rotated refresh token ever reused (the record survives)."""
    for rig in _rig(tmp_path, ttl):
        kernels = [rig.kernel() for _ in range(6)]
        rig.sign_in(kernels[0])
        before, started = rig.provider.token_requests, time.monotonic()
        stop = started + 3 * ttl

        def hammer(kernel: HubService) -> list[tuple[str, float]]:
            seen = []
            while time.monotonic() < stop:
                token = kernel.token("demo")
                seen.append((token.access_token, token.expires_in()))
            return seen

        with ThreadPoolExecutor(6) as pool:
            handed = [pair for result in pool.map(hammer, kernels) for pair in result]
        refreshes = rig.provider.token_requests - before
        elapsed = time.monotonic() - started
        assert handed and min(left for _, left in handed) > ttl / 10, min(left for _, left in handed)
        assert len({access for access, _ in handed}) <= refreshes + 1
        assert 2 <= refreshes <= elapsed / (ttl / 2) + 2, (refreshes, elapsed)
        assert rig.service.vault.get("alice", "demo")


def test_a_kernel_told_to_sign_in_again_recovers_once_another_notebook_signed_in(rig):
    """After invalid_grant purged the record, kernel A's session raises ReauthRequired; once notebook B signs
    in again on the hub, A's same session object reads again without a login of its own."""
    one, two = rig.kernel(), rig.kernel()
    rig.sign_in(one)
    session = one.session("demo", token=one.token("demo"))
    rig.due()
    rig.provider.revoke_all()
    time.sleep(0.3)  # the kernel's copy is due too
    with pytest.raises(ReauthRequired):
        session.get(f"{rig.provider.url}/userinfo", timeout=10)
    rig.sign_in(two)
    assert session.get(f"{rig.provider.url}/userinfo", timeout=10).json()["sub"] == "alice"


def test_a_notebook_waiting_on_its_hub_login_ends_with_a_typed_error_when_the_service_restarts(rig):
    """nb_oauth2.login's hub path (jupyter/hub_login) waiting on the link while the service restarts: the wait
    ends with a typed error (the dropped long-poll, or the login the new service does not know) and a hint,
    not a hang."""
    from nb_oauth2.jupyter import hub_login

    kernel, outcome = rig.kernel(), []

    def login() -> None:
        try:
            hub_login.hub_login(kernel, "demo", scope=None, name="restarted", browser=lambda url: None, timeout=60,
                                wait=True, notebook=False, unattended=False)
        except BaseException as exc:  # noqa: BLE001 - the test looks at what ended the wait
            outcome.append(exc)

    waiting = threading.Thread(target=login, daemon=True)
    waiting.start()
    deadline = time.monotonic() + 10
    while not rig.service.logins._by_id and time.monotonic() < deadline:
        time.sleep(0.05)
    rig.restart()
    waiting.join(30)
    assert not waiting.is_alive(), "the kernel still waits"
    assert outcome and isinstance(outcome[0], (TransportError, ReauthRequired)) and outcome[0].hint, outcome


def test_status_names_the_provider_user_of_a_hub_session_and_api_tokens_holds_one_token_only(rig):
    """Issue 14: ``%oauth2 status`` said "-" for a hub session (the kernel has no id_token). The service
    keeps who signed in (the id_token's claims, else one userinfo GET at sign-in: the demo provider issues
    no id_token) and GET api/tokens answers it as ``user``, beside the access token and no other token
    (case 38: no refresh token reaches a kernel)."""
    from nb_oauth2.auth.identity import who
    from nb_oauth2.jupyter.tables import status_table

    kernel = rig.kernel()
    rig.sign_in(kernel)
    stored = rig.service.vault.get("alice", "demo")
    assert stored["refresh_token"] and stored["provider_user"] == "Alice Liddell (alice)"
    answer = rig.api("GET", "api/tokens/demo", "alice-server").json()
    assert answer["user"] == "Alice Liddell (alice)"
    assert set(answer) == {"access_token", "token_type", "expires_in", "expires_at", "scope", "user"}
    assert stored["refresh_token"] not in repr(answer)

    session = kernel.login("demo", show=lambda login: pytest.fail("already signed in on the hub"))
    assert session.user == "Alice Liddell (alice)" and session.token_info.id_token is None
    requests_before = rig.provider.token_requests
    assert who(session) == "Alice Liddell (alice)"
    row = status_table([session], None).rows[0]
    assert row[1] == "Alice Liddell (alice)"
    assert rig.provider.token_requests == requests_before  # named without asking the provider

    rig.due()  # a refresh answer without an id_token keeps the name
    assert kernel.token_and_user("demo")[1] == "Alice Liddell (alice)"
    assert rig.service.vault.get("alice", "demo")["access_token"] != stored["access_token"]
