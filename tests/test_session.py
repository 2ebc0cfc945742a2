"""The auto-refreshing session against the demo provider (SECURITY_CASES 17-23, 28)."""

from __future__ import annotations

import threading
import time

import pytest
import requests

import nb_oauth2 as oa
from nb_oauth2.core.errors import ReauthRequired
from nb_oauth2.auth.session import Session


@pytest.fixture
def provider(fresh_demo_provider):
    return fresh_demo_provider


def code_login(p, name="s", **kw):
    client = p.clients["public"]
    return oa.login(name, issuer=p.issuer, client_id=client.client_id, browser=p.driver.authorize, **kw)


def force_local_expiry(session: Session) -> None:
    token = session.token_info
    session.set_token(token.with_changes(expires_at=time.time() - 1))


def test_32_threads_across_forced_expiry_make_one_token_call(provider):
    """Case 19: 32 threads across a forced expiry -> 1 token call, 32 successes, none without Authorization."""
    session = code_login(provider)
    provider.expire_access_tokens()
    force_local_expiry(session)
    before_tokens, before_noauth = provider.token_requests, provider.requests_without_auth
    barrier = threading.Barrier(32)
    statuses: list[int] = []

    def worker():
        barrier.wait()
        statuses.append(session.get(provider.url + "/userinfo").status_code)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [200] * 32
    assert provider.token_requests - before_tokens == 1
    assert provider.requests_without_auth == before_noauth


def test_401_invalid_token_refreshes_once_and_retries_once(provider):
    """Case 28 / case 13 (absent expiry): a 401 invalid_token -> one refresh, one retry."""
    session = code_login(provider)
    provider.expire_access_tokens()  # the server expires it; the client does not know
    before = provider.token_requests
    assert session.get(provider.url + "/userinfo").status_code == 200
    assert provider.token_requests - before == 1


def test_second_401_after_refresh_is_returned_not_looped(provider):
    """Case 28: after one refresh and one retry, a 401 is returned, no loop."""
    session = code_login(provider)
    provider.revoke_all()
    before = provider.token_requests
    with pytest.raises(ReauthRequired):
        session.get(provider.url + "/userinfo")
    assert provider.token_requests - before == 1


def test_rotation_commits_new_refresh_token_and_old_one_is_dead(provider):
    """Case 18: the rotated refresh token is committed before further use; reuse of the old one fails."""
    session = code_login(provider)
    first = session.token_info
    second = session.refresh()
    assert second.refresh_token and second.refresh_token != first.refresh_token
    assert session.store.load(session.store_key)["refresh_token"] == second.refresh_token
    reuse = requests.post(provider.url + "/token", data={
        "grant_type": "refresh_token", "refresh_token": first.refresh_token,
        "client_id": provider.clients["public"].client_id}, timeout=5)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"


def test_invalid_grant_on_refresh_is_reauth_required_and_purged(provider):
    """Case 17: invalid_grant -> ReauthRequired; refresh token purged from memory and store; no loop."""
    session = code_login(provider)
    provider.revoke_all()
    force_local_expiry(session)
    before = provider.token_requests
    with pytest.raises(ReauthRequired) as info:
        session.get(provider.url + "/userinfo")
    assert "Sign in again" in str(info.value)
    assert session.token_info.refresh_token is None
    assert not (session.store.load(session.store_key) or {}).get("refresh_token")
    with pytest.raises(ReauthRequired):
        session.get(provider.url + "/userinfo")
    assert provider.token_requests - before == 1


def test_client_credentials_token_is_refetched_when_expired(provider):
    client = provider.clients["service"]
    session = oa.login("svc", issuer=provider.issuer, client_id=client.client_id,
                       client_secret=client.client_secret, flow="client_credentials")
    first = session.token_info
    force_local_expiry(session)
    assert session.get(provider.url + "/userinfo").status_code in (200, 403)
    assert session.token_info.access_token != first.access_token


def test_logout_with_revoke_forgets_session(provider):
    session = code_login(provider, name="bye")
    assert oa.logout("bye", revoke=True) is True
    assert session.token_info is None
    with pytest.raises(oa.ConfigurationError):
        oa.session("bye")


def test_revocation_unconfirmed_wipes_locally_and_warns(provider, monkeypatch):
    """Case 23: a 503 from the revocation endpoint -> local copy wiped, 'may remain valid' warning."""
    session = code_login(provider)
    real_post = session.endpoints.http.post

    def failing_post(url, *args, **kwargs):
        if url.endswith("/revoke"):
            response = requests.Response()
            response.status_code = 503
            return response
        return real_post(url, *args, **kwargs)

    monkeypatch.setattr(session.endpoints.http, "post", failing_post)
    with pytest.warns(RuntimeWarning, match="may remain valid"):
        assert session.revoke() is False
    assert session.token_info is None


def test_token_never_sent_over_plain_http_to_remote_host(provider):
    session = code_login(provider)
    with pytest.raises(oa.InsecureTransportError):
        session.get("http://example.com/api")


def _stock_session(provider, name, **stock_kwargs) -> Session:
    """auto_refresh=False with requests-oauthlib's own keyword arguments and an expired token dict."""
    fresh = code_login(provider, name=name)
    session = Session(name=f"stock-{name}", provider=fresh.provider, client=fresh.client_auth, auto_refresh=False,
                      **stock_kwargs)
    session.token = dict(fresh.token_info.with_changes(expires_at=time.time() - 10).to_oauthlib())
    return session


def _refresh_kwargs(provider) -> dict:
    return {"auto_refresh_url": provider.url + "/token",
            "auto_refresh_kwargs": {"client_id": provider.clients["public"].client_id}}


def test_stock_style_s5_catch_token_expired_error(provider):
    """S5: requests-oauthlib's first style: no refresh URL, the caller catches TokenExpiredError."""
    from oauthlib.oauth2 import TokenExpiredError

    session = _stock_session(provider, "style1")
    assert session.auth is not session._bearer  # the auth object stands aside; add_token attaches the token
    before = provider.token_requests
    with pytest.raises(TokenExpiredError):
        session.get(provider.url + "/userinfo")
    assert provider.token_requests == before


def test_stock_style_s6_token_updated(provider):
    """S6: auto_refresh_url without token_updater: requests-oauthlib refreshes and raises TokenUpdated."""
    from requests_oauthlib import TokenUpdated

    session = _stock_session(provider, "style2", **_refresh_kwargs(provider))
    with pytest.raises(TokenUpdated) as info:
        session.get(provider.url + "/userinfo")
    assert info.value.token["access_token"] == session.token_info.access_token  # one token, seen both ways
    assert session.get(provider.url + "/userinfo").status_code == 200


def test_stock_style_s7_token_updater(provider):
    """S7: auto_refresh_url with token_updater: refreshed, the updater called once, the request sent."""
    seen = []
    session = _stock_session(provider, "style3", token_updater=seen.append, **_refresh_kwargs(provider))
    assert session.get(provider.url + "/userinfo").status_code == 200
    assert len(seen) == 1 and seen[0]["refresh_token"] == session.token_info.refresh_token


def test_session_repr_and_token_dict_are_masked(provider):
    """Case 36: session repr and session.token never show the token."""
    session = code_login(provider)
    secret = session.token_info.access_token
    for text in (repr(session), str(session), session._repr_html_(), repr(session.token), str(session.status())):
        assert secret not in text
    assert session.token["access_token"] == secret  # still usable as requests-oauthlib's dict


@pytest.mark.parametrize("failure,attempts", [("closed port", 2), ("tls", 1)])
def test_refresh_retries_a_dropped_connection_once_but_not_a_tls_failure(scripted, failure, attempts):
    """Cases 21 and 50: the refresh POST is retried once when the mapping says a retry is safe
    (refused or dropped connection), never after a TLS failure."""
    import socket

    from nb_oauth2.core.endpoint import ClientAuth, Endpoints
    from nb_oauth2.core.errors import TLSError, TransportError
    from nb_oauth2.core.providers import Provider
    from nb_oauth2.core.token import Token

    if failure == "closed port":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            token_url = f"http://127.0.0.1:{sock.getsockname()[1]}/token"
    else:  # https to a server that speaks plain http: the handshake fails
        token_url = scripted.url.replace("http://", "https://") + "/token"
    provider = Provider(name="s", token_endpoint=token_url)
    client = ClientAuth("cid")
    token = Token.from_response({"access_token": "at-123456", "refresh_token": "rt-123456", "expires_in": 3600})
    session = Session(name="retry", provider=provider, client=client, token=token,
                      endpoints=Endpoints(provider, client, timeout=(1, 1)))
    with pytest.raises(TransportError) as info:
        session.refresh()
    assert session.endpoints.calls == attempts
    assert isinstance(info.value, TLSError) == (failure == "tls")
    assert session.token_info is token
