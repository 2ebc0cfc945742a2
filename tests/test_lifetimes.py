"""Token lifetimes and single flight against servers issuing short-lived tokens (SECURITY_CASES 48, 49).

The refresh margin is ``min(leeway, lifetime / 2)``: a 5 s token is renewed 2.5 s
before it expires instead of on every use, while a normal token keeps the 30-60 s
margin of case 22. A thread that waited for the renewal lock uses the token another
thread installed. A token nothing can renew is used until it really expires.
"""

from __future__ import annotations

import math
import threading
import time
import warnings

import pytest

import nb_oauth2 as oa
from nb_oauth2 import demo
from nb_oauth2.core.errors import ConfigurationError, ReauthRequired
from nb_oauth2.core.token import DEFAULT_LEEWAY, Token
from tests.conftest import CANARY_TOKEN

LIFETIMES = [2, 5, 60, 3600, None]  # None: the server sent no expires_in


@pytest.fixture
def short_demo():
    """``short_demo(ttl, **options)``: a demo provider of its own issuing ``ttl``-second access tokens."""
    started = []

    def start(ttl: int, **options):
        provider = demo.start(access_token_ttl=ttl, device_interval=1, **options)
        started.append(provider)
        return provider

    yield start
    for provider in started:
        provider.stop()


def code_login(p, name="life", **kw):
    client = p.clients["public"]
    return oa.login(name, issuer=p.issuer, client_id=client.client_id, browser=p.driver.authorize, **kw)


def margin_of(token: Token, leeway: float) -> float:
    """The margin the design asks for, computed here rather than by the code under test."""
    return min(leeway, (token.expires_at - token.received_at) / 2)


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


# -- the margin ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lifetime,margin", [(2, 1.0), (5, 2.5), (60, 30.0), (3600, 45.0), (None, 0.0)])
def test_refresh_margin_scales_with_the_lifetime(lifetime, margin):
    """Case 48: a fresh token is not due for renewal whatever its lifetime; the margin is
    min(leeway, lifetime / 2) and a token is renewed exactly when it enters it."""
    data = {"access_token": CANARY_TOKEN, **({"expires_in": lifetime} if lifetime else {})}
    token = Token.from_response(data, received_at=1000.0)
    assert not token.is_expired(now=1000.5)
    assert token.refresh_margin() == margin and token.lifetime == lifetime
    if lifetime is None:
        assert token.is_valid(now=1e12) and not token.is_expired(now=1e12)
        return
    due = 1000.0 + lifetime - margin
    assert not token.is_expired(now=due - 0.01) and token.is_expired(now=due)
    assert token.is_valid(now=1000.0 + lifetime - 0.01) and not token.is_valid(now=1000.0 + lifetime)


@pytest.mark.parametrize("lifetime", [300, 600, 3600, 86400])
def test_normal_lifetimes_keep_a_30_to_60_second_margin(lifetime):
    """Case 22: normal tokens are renewed at wall-clock receive time + expires_in - 30..60 s."""
    token = Token.from_response({"access_token": CANARY_TOKEN, "expires_in": lifetime, "expires_at": 1},
                                received_at=5000.0)
    assert 30 <= token.refresh_margin(DEFAULT_LEEWAY) <= 60
    assert token.expires_at == 5000.0 + lifetime


# -- calls within the lifetime ----------------------------------------------------------------------


@pytest.mark.parametrize("lifetime", LIFETIMES)
def test_calls_within_the_lifetime_make_no_token_request(short_demo, lifetime):
    """Case 48: three calls right after sign-in make no token request, for 2 s, 5 s, 60 s, 3600 s
    and unknown lifetimes (0.1 refreshed on every call of a token shorter than 45 s)."""
    p = short_demo(lifetime or 3600)
    session = code_login(p)
    if lifetime is None:
        session.set_token(session.token_info.with_changes(expires_at=None))
    token = session.token_info
    due = token.expires_at - margin_of(token, session.leeway) if token.expires_at else math.inf
    before, late = p.token_requests, False
    for _ in range(3):
        late = late or time.time() >= due  # only a very slow machine gets here after the margin
        assert session.get(p.url + "/userinfo").status_code == 200
    assert p.token_requests - before == (1 if late else 0)
    assert late or session.token_info is token


# -- single flight across a short token's expiry (case 49) ------------------------------------------


def _storm(session, url: str, n: int = 32) -> list[int]:
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def worker():
        barrier.wait()
        statuses.append(session.get(url).status_code)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return statuses


@pytest.fixture(scope="module")
def five_second_logins():
    """The case-49 storms wait for 5 s tokens to come due: the three servers (a demo provider each for
    "in the margin" and "expired", Authlib) are signed in at the same moment, so the three waits
    overlap (about 5 s in all, not 15). ``take(kind)`` -> (server, session, token); a token whose
    moment has passed (a test run alone, later, or out of order) is replaced by a fresh login."""
    from nb_oauth2.auth import registry
    from tests.servers.authlib_server import start_authlib_server

    servers = {"in the margin": demo.start(access_token_ttl=5, device_interval=1),
               "expired": demo.start(access_token_ttl=5, device_interval=1),
               "authlib": start_authlib_server(access_token_ttl=5)}

    def login(kind):
        session = code_login(servers[kind], name=f"life-{kind.replace(' ', '-')}")  # one store key each
        state = registry._state()  # out of the registry, which conftest clears (forgetting tokens) per test
        with state.lock:
            state.sessions.pop(session.name, None)
            state.default = None
        return session

    sessions = {kind: login(kind) for kind in servers}

    def take(kind):
        session = sessions[kind]
        token = session.token_info
        if kind == "in the margin" and time.time() >= token.expires_at - margin_of(token, session.leeway) + 0.1:
            session = sessions[kind] = login(kind)
            token = session.token_info
        return servers[kind], session, token

    try:
        yield take
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.parametrize("phase", ["in the margin", "expired"])  # the margin comes first
def test_32_threads_across_a_5_second_expiry_make_exactly_one_refresh(five_second_logins, phase):
    """Case 49: 32 threads across the expiry of a 5 s token -> exactly 1 refresh grant, 32 x 200,
    0 requests without Authorization (also when the token is only due, not yet expired)."""
    p, session, token = five_second_logins(phase)
    margin = margin_of(token, session.leeway)
    sleep_until(token.expires_at + 0.2 if phase == "expired" else token.expires_at - margin + 0.1)
    before, noauth = p.token_requests, p.requests_without_auth
    assert _storm(session, p.url + "/userinfo") == [200] * 32
    assert p.token_requests - before == 1
    assert p.requests_without_auth == noauth
    assert session.token_info is not token


def test_32_threads_across_a_5_second_expiry_against_authlib(five_second_logins):
    """Case 49 against a third-party server (Authlib) issuing 5 s tokens: exactly 1 refresh grant."""
    srv, session, token = five_second_logins("authlib")
    sleep_until(token.expires_at + 0.2)
    before = srv.token_requests
    assert _storm(session, srv.url + "/api/me") == [200] * 32
    assert srv.token_requests - before == 1


# -- client credentials: one token request per real expiry --------------------------------------------


@pytest.mark.parametrize("lifetime", [2, 5])
def test_client_credentials_read_json_renews_once_per_expiry_not_per_page(short_demo, lifetime):
    """Case 48: 100 pages of read_json with client credentials and short tokens -> at most one token
    request per token lifetime (less its margin), none per page; every page sent with a token."""
    p = short_demo(lifetime, records=1000)
    service = p.clients["service"]
    session = oa.login("life-svc", issuer=p.issuer, client_id=service.client_id,
                       client_secret=service.client_secret, flow="client_credentials", scope="read:events")
    first = session.token_info
    before, noauth = p.token_requests, p.requests_without_auth
    frame = oa.read_json(p.url + "/api/events?per_page=10", session=session, progress=False)
    ended = time.time()
    assert len(frame) == 1000
    usable = first.expires_at - first.received_at - margin_of(first, session.leeway)  # one token's service
    assert p.token_requests - before <= math.floor((ended - first.received_at) / usable)
    assert p.requests_without_auth == noauth


# -- tokens nothing can renew ---------------------------------------------------------------------------


def implicit_login(p):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", oa.LegacyGrantWarning)
        return oa.login("life-implicit", issuer=p.issuer, client_id=p.clients["implicit"].client_id,
                        flow="implicit", browser=p.driver.authorize)


def test_implicit_token_of_5_seconds_is_used_not_renewed(short_demo):
    """Case 48: an implicit token with 5 s left is used on first use (0.1 raised ReauthRequired)."""
    p = short_demo(5)
    session = implicit_login(p)
    token = session.token_info
    assert token.refresh_token is None and token.expires_at - token.received_at == 5
    before = p.token_requests
    assert session.get(p.url + "/userinfo").status_code == 200
    assert session.token_info is token and p.token_requests == before


@pytest.mark.parametrize("grant", ["implicit", "code without refresh token"])
def test_unrenewable_token_is_used_while_valid_then_reauth(short_demo, grant):
    """Case 48: a token that cannot be renewed (implicit, or no refresh token and no re-fetch) with
    5 s left of an hour is used, not renewed; once it has expired -> ReauthRequired, nothing sent."""
    p = short_demo(3600)
    session = implicit_login(p) if grant == "implicit" else code_login(p)
    now = time.time()
    nearly_over = session.token_info.with_changes(refresh_token=None, received_at=now - 3595, expires_at=now + 5)
    session.set_token(nearly_over)
    before, noauth = p.token_requests, p.requests_without_auth
    for _ in range(3):
        assert session.get(p.url + "/userinfo").status_code == 200
    assert session.token_info is nearly_over and p.token_requests == before
    session.set_token(nearly_over.with_changes(expires_at=time.time() - 1))
    with pytest.raises(ReauthRequired):
        session.get(p.url + "/userinfo")
    assert p.token_requests == before and p.requests_without_auth == noauth


# -- leeway from login() and profiles -----------------------------------------------------------------


def test_leeway_is_set_by_login_and_by_the_profile_environment(short_demo, monkeypatch):
    """Case 48: leeway= on login() and NB_OAUTH2_<PROFILE>_LEEWAY set the margin (still at most half
    the lifetime); a value that is not a number of seconds is a ConfigurationError."""
    p = short_demo(60)
    session = code_login(p, leeway=10)
    assert session.leeway == 10 and session.token_info.refresh_margin(session.leeway) == 10
    monkeypatch.setenv("NB_OAUTH2_LIFEENV_LEEWAY", "50")
    session = code_login(p, name="lifeenv")
    assert session.leeway == 50 and session.token_info.refresh_margin(session.leeway) == 30
    monkeypatch.setenv("NB_OAUTH2_LIFEENV_LEEWAY", "soon")
    with pytest.raises(ConfigurationError, match="leeway"):
        code_login(p, name="lifeenv")
