"""The demo provider over real HTTP, with requests-oauthlib as an independent client."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient, LegacyApplicationClient, MobileApplicationClient
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError
from requests_oauthlib import OAuth2Session

from nb_oauth2 import demo
from nb_oauth2.demo.driver import DriverError
from nb_oauth2.core.errors import ConfigurationError

EVENTS = "read:events"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture(autouse=True)
def _plain_http_on_loopback(monkeypatch):
    """requests-oauthlib refuses http:// unless told; the demo is loopback-only."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _fragment(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).fragment)


def _code_session(p, name="public", **kwargs) -> OAuth2Session:
    client = p.clients[name]
    return OAuth2Session(client.client_id, scope=["openid", EVENTS], redirect_uri=p.callback_url, **kwargs)


def _password_token(p, **kwargs) -> dict:
    client = p.clients["password"]
    session = OAuth2Session(client=LegacyApplicationClient(client_id=client.client_id))
    return session.fetch_token(f"{p.url}/token", username="alice", password="wonderland",
                               client_id=client.client_id, client_secret=client.client_secret,
                               scope=["openid", EVENTS], **kwargs)


def _refresh(p, refresh_token: str) -> requests.Response:
    client = p.clients["password"]
    return requests.post(f"{p.url}/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                         auth=(client.client_id, client.client_secret), timeout=5)


def _api(p, token: str, path: str = "/api/events?per_page=1") -> requests.Response:
    return requests.get(p.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=5)


# -- lifecycle -------------------------------------------------------------------


def test_start_returns_with_the_port_already_accepting_connections():
    started = time.perf_counter()
    p = demo.start()
    elapsed = time.perf_counter() - started  # measured, not asserted (no wall-clock assertions)
    try:
        with socket.create_connection(("127.0.0.1", p.port), timeout=1):
            pass
        assert p.url == f"http://127.0.0.1:{p.port}" and p.issuer == p.url
        assert elapsed >= 0
    finally:
        p.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org", ""])
def test_non_loopback_host_is_refused(host):
    """Case 41: never listening off loopback."""
    with pytest.raises(ConfigurationError):
        demo.start(host=host)


def test_stop_frees_the_port_and_is_idempotent():
    p = demo.start()
    port = p.port
    assert requests.get(p.metadata_url, timeout=5).status_code == 200
    p.stop()
    p.stop()
    assert not p.running
    with pytest.raises(requests.ConnectionError):
        requests.get(p.metadata_url, timeout=2)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    again = demo.start(port=port)
    assert again.port == port
    again.stop()


def test_context_manager_stops_the_provider():
    with demo.start() as p:
        assert p.running
    assert not p.running


def test_busy_port_is_a_configuration_error(demo_provider):
    with pytest.raises(ConfigurationError):
        demo.start(port=demo_provider.port)


def test_ipv6_loopback_url_has_brackets():
    try:
        p = demo.start(host="::1")
    except ConfigurationError:
        pytest.skip("no IPv6 loopback here")
    with p:
        assert p.url == f"http://[::1]:{p.port}"
        assert requests.get(p.metadata_url, timeout=5).json()["issuer"] == p.url


def test_browser_url_goes_through_jupyter_server_proxy_under_jupyterhub(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    with demo.start() as p:
        assert p.browser_url == f"/user/alice/proxy/{p.port}"
        assert p.callback_url == f"/user/alice/proxy/{p.port}/callback"
        assert p.url.startswith("http://127.0.0.1:")
        # the absolute form of the proxied callback on the hub's host is accepted as redirect URI
        session = OAuth2Session(p.clients["public"].client_id, scope=[EVENTS], pkce="S256",
                                redirect_uri=f"https://hub.example.org{p.callback_url}")
        url, _ = session.authorization_url(f"{p.url}/authorize")
        assert _query(p.driver.authorize(url))["code"]


def test_public_url_is_the_browser_base():
    with demo.start(public_url="https://demo.example.org/x/") as p:
        assert p.browser_url == "https://demo.example.org/x"
        assert p.callback_url == "https://demo.example.org/x/callback"
        meta = requests.get(p.metadata_url, timeout=5).json()
        assert meta["authorization_endpoint"] == "https://demo.example.org/x/authorize"
        assert meta["token_endpoint"] == f"{p.url}/token"


def test_no_request_writes_to_stderr(fresh_demo_provider, capfd):
    p = fresh_demo_provider
    requests.get(p.metadata_url, timeout=5)
    requests.get(f"{p.url}/nowhere", timeout=5)
    requests.post(f"{p.url}/token", data="garbage", timeout=5)
    requests.get(f"{p.url}/api/events", timeout=5)
    assert capfd.readouterr().err == ""


# -- metadata ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"])
def test_metadata_document_lists_every_endpoint(demo_provider, path):
    p = demo_provider
    meta = requests.get(p.url + path, timeout=5).json()
    assert meta["issuer"] == p.issuer
    for key, suffix in [("authorization_endpoint", "/authorize"), ("token_endpoint", "/token"),
                        ("revocation_endpoint", "/revoke"), ("introspection_endpoint", "/introspect"),
                        ("device_authorization_endpoint", "/device_authorization"),
                        ("userinfo_endpoint", "/userinfo")]:
        assert meta[key] == p.url + suffix
    assert meta["code_challenge_methods_supported"] == ["S256", "plain"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert {"client_secret_basic", "client_secret_post"} <= set(meta["token_endpoint_auth_methods_supported"])
    assert {"authorization_code", "implicit", "password", "client_credentials", "refresh_token",
            DEVICE_GRANT} <= set(meta["grant_types_supported"])
    assert set(demo.DEMO_SCOPES) <= set(meta["scopes_supported"])


# -- authorization code ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["S256", "plain"])
def test_authorization_code_with_pkce_gives_a_token_that_reads_the_api(demo_provider, method):
    p = demo_provider
    if method == "S256":
        session = _code_session(p, pkce=method)
        url, state = session.authorization_url(f"{p.url}/authorize")
        extra = {}
    else:  # oauthlib's client cannot make a plain challenge: send the verifier as the challenge
        session = _code_session(p)
        verifier = "plain-verifier-" + "x" * 40
        url, state = session.authorization_url(f"{p.url}/authorize", code_challenge=verifier,
                                               code_challenge_method="plain")
        extra = {"code_verifier": verifier}
    redirect = p.driver.authorize(url)
    params = _query(redirect)
    assert redirect.startswith(p.callback_url + "?")
    assert params["state"] == [state] and params["iss"] == [p.issuer]
    token = session.fetch_token(f"{p.url}/token", authorization_response=redirect, include_client_id=True,
                                **extra)
    assert token["token_type"] == "Bearer" and token["refresh_token"]
    assert set(token["scope"]) == {"openid", EVENTS}
    assert len(token["access_token"]) >= 40
    response = session.get(f"{p.url}/api/events?per_page=3")
    assert response.status_code == 200 and len(response.json()) == 3


def test_confidential_client_authenticates_with_basic_or_post(demo_provider):
    p = demo_provider
    client = p.clients["web"]
    for auth_style in ("basic", "post"):
        session = _code_session(p, "web")
        url, _ = session.authorization_url(f"{p.url}/authorize")
        redirect = p.driver.authorize(url, username="bob")
        if auth_style == "basic":
            token = session.fetch_token(f"{p.url}/token", authorization_response=redirect,
                                        client_secret=client.client_secret)
        else:
            token = session.fetch_token(f"{p.url}/token", authorization_response=redirect,
                                        client_secret=client.client_secret, include_client_id=True, auth=False)
        assert session.get(f"{p.url}/userinfo").json()["sub"] == "bob"
        assert token["access_token"]


def test_wrong_client_secret_is_invalid_client(demo_provider):
    p = demo_provider
    response = requests.post(f"{p.url}/token", data={"grant_type": "client_credentials"},
                             auth=(p.clients["service"].client_id, "not-the-secret"), timeout=5)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_public_client_must_use_pkce(demo_provider):
    p = demo_provider
    session = _code_session(p)
    url, _ = session.authorization_url(f"{p.url}/authorize")
    redirect = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]
    assert _query(redirect)["error"] == ["invalid_request"]
    assert _query(redirect)["iss"] == [p.issuer]


def test_wrong_code_verifier_is_invalid_grant(demo_provider):
    p = demo_provider
    session = _code_session(p, pkce="S256")
    url, _ = session.authorization_url(f"{p.url}/authorize")
    code = _query(p.driver.authorize(url))["code"][0]
    response = requests.post(f"{p.url}/token", timeout=5, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": p.callback_url,
        "client_id": p.clients["public"].client_id, "code_verifier": "x" * 50})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_reused_code_is_rejected_and_revokes_its_tokens(demo_provider):
    p = demo_provider
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    session = _code_session(p)
    url, _ = session.authorization_url(f"{p.url}/authorize", code_challenge=challenge,
                                       code_challenge_method="S256")
    code = _query(p.driver.authorize(url))["code"][0]
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": p.callback_url,
            "client_id": p.clients["public"].client_id, "code_verifier": verifier}
    first = requests.post(f"{p.url}/token", data=body, timeout=5)
    assert first.status_code == 200
    second = requests.post(f"{p.url}/token", data=body, timeout=5)
    assert second.json()["error"] == "invalid_grant"
    assert _api(p, first.json()["access_token"]).status_code == 401


def test_any_loopback_redirect_uri_is_accepted(demo_provider):
    p = demo_provider
    for redirect_uri in ("http://127.0.0.1:51234/cb", "http://[::1]:8080/", "http://localhost:9/x/y"):
        session = OAuth2Session(p.clients["public"].client_id, scope=[EVENTS], redirect_uri=redirect_uri,
                                pkce="S256")
        url, _ = session.authorization_url(f"{p.url}/authorize")
        redirect = p.driver.authorize(url)
        assert redirect.startswith(redirect_uri) and "code" in _query(redirect)
        token = session.fetch_token(f"{p.url}/token", authorization_response=redirect, include_client_id=True)
        assert token["access_token"]


def test_unregistered_redirect_uri_is_never_redirected_to(demo_provider):
    p = demo_provider
    session = OAuth2Session(p.clients["public"].client_id, redirect_uri="https://evil.example/cb", pkce="S256")
    url, _ = session.authorization_url(f"{p.url}/authorize")
    response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "text/html" in response.headers["Content-Type"]


def test_deny_redirects_with_access_denied_state_and_iss(demo_provider):
    p = demo_provider
    session = _code_session(p, pkce="S256")
    url, state = session.authorization_url(f"{p.url}/authorize")
    params = _query(p.driver.authorize(url, approve=False))
    assert params["error"] == ["access_denied"] and params["state"] == [state]
    assert params["iss"] == [p.issuer] and "code" not in params


def test_wrong_password_keeps_the_login_form(demo_provider):
    p = demo_provider
    session = _code_session(p, pkce="S256")
    url, _ = session.authorization_url(f"{p.url}/authorize")
    with pytest.raises(DriverError):
        p.driver.authorize(url, password="nope")


def test_login_page_lists_demo_users_and_loads_nothing_external(demo_provider):
    p = demo_provider
    session = _code_session(p, pkce="S256")
    url, _ = session.authorization_url(f"{p.url}/authorize")
    page = requests.get(url, timeout=5)
    assert page.status_code == 200
    for user, password in p.users.items():
        assert user in page.text and password in page.text
    for marker in ("<link", "src=", "@import", "<script", "http://", "https://"):
        assert marker not in page.text
    assert "no-referrer" in page.headers["Referrer-Policy"]


def test_callback_page_shows_the_url_to_paste_back(demo_provider):
    p = demo_provider
    page = requests.get(f"{p.callback_url}?code=abc&state=xyz", timeout=5)
    assert page.status_code == 200
    assert f"{p.callback_url}?code=abc&amp;state=xyz" in page.text
    assert "paste" in page.text.lower()


# -- implicit, password, client credentials ------------------------------------------------


def test_implicit_grant_returns_the_token_in_the_fragment_with_iss(demo_provider):
    p = demo_provider
    client = p.clients["implicit"]
    session = OAuth2Session(client=MobileApplicationClient(client.client_id), scope=[EVENTS],
                            redirect_uri=p.callback_url)
    url, state = session.authorization_url(f"{p.url}/authorize")
    redirect = p.driver.authorize(url)
    fragment = _fragment(redirect)
    assert fragment["state"] == [state] and fragment["iss"] == [p.issuer]
    assert "access_token" not in _query(redirect)
    token = session.token_from_fragment(redirect)
    assert "refresh_token" not in token
    assert session.get(f"{p.url}/api/events?per_page=1").status_code == 200


def test_password_grant_issues_access_and_refresh_tokens(demo_provider):
    token = _password_token(demo_provider)
    assert token["refresh_token"] and token["expires_in"] == 3600
    assert _api(demo_provider, token["access_token"]).status_code == 200


def test_password_grant_with_wrong_password_is_invalid_grant(demo_provider):
    p = demo_provider
    client = p.clients["password"]
    session = OAuth2Session(client=LegacyApplicationClient(client_id=client.client_id))
    with pytest.raises(InvalidGrantError):
        session.fetch_token(f"{p.url}/token", username="alice", password="wrong",
                            client_id=client.client_id, client_secret=client.client_secret)


def test_client_credentials_grant_has_no_refresh_token(demo_provider):
    p = demo_provider
    client = p.clients["service"]
    session = OAuth2Session(client=BackendApplicationClient(client_id=client.client_id))
    token = session.fetch_token(f"{p.url}/token", client_id=client.client_id,
                                client_secret=client.client_secret, scope=[EVENTS])
    assert "refresh_token" not in token and token["scope"] == [EVENTS]
    assert session.get(f"{p.url}/userinfo").json()["sub"] == client.client_id


def test_token_lifetime_is_configurable():
    with demo.start(access_token_ttl=7) as p:
        assert _password_token(p)["expires_in"] == 7


# -- device authorization (RFC 8628) ----------------------------------------------------------


def _device_start(p) -> dict:
    response = requests.post(f"{p.url}/device_authorization", timeout=5,
                             data={"client_id": p.clients["device"].client_id, "scope": f"openid {EVENTS}"})
    assert response.status_code == 200
    return response.json()


def _device_poll(p, device_code: str) -> requests.Response:
    return requests.post(f"{p.url}/token", timeout=5, data={
        "grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": p.clients["device"].client_id})


def test_device_flow_is_pending_until_approved_then_issues_a_token():
    with demo.start(device_interval=0) as p:
        start = _device_start(p)
        assert start["verification_uri"] == f"{p.url}/device"
        assert start["user_code"] in start["verification_uri_complete"]
        assert start["expires_in"] == 600 and start["interval"] == 0
        assert _device_poll(p, start["device_code"]).json()["error"] == "authorization_pending"
        p.driver.approve_device(start["user_code"].lower().replace("-", " "), username="bob")
        token = _device_poll(p, start["device_code"]).json()
        assert token["refresh_token"] and set(token["scope"].split()) == {"openid", EVENTS}
        assert _api(p, token["access_token"], "/userinfo").json()["sub"] == "bob"
        assert _device_poll(p, start["device_code"]).json()["error"] == "invalid_grant"


def test_device_flow_polled_too_fast_gets_slow_down(fresh_demo_provider):
    p = fresh_demo_provider  # interval 1 s
    start = _device_start(p)
    assert _device_poll(p, start["device_code"]).json()["error"] == "authorization_pending"
    assert _device_poll(p, start["device_code"]).json()["error"] == "slow_down"


def test_device_flow_denied_is_access_denied():
    with demo.start(device_interval=0) as p:
        start = _device_start(p)
        p.driver.approve_device(start["user_code"], approve=False)
        assert _device_poll(p, start["device_code"]).json()["error"] == "access_denied"


def test_device_code_expires(demo_clock):
    with demo.start(device_interval=0, device_code_ttl=1) as p:
        start = _device_start(p)
        demo_clock.advance(1.1)
        assert _device_poll(p, start["device_code"]).json()["error"] == "expired_token"
        with pytest.raises(DriverError):
            p.driver.approve_device(start["user_code"])


def test_device_page_refuses_an_unknown_code(demo_provider):
    response = requests.post(f"{demo_provider.url}/device", timeout=5, data={
        "step": "login", "user_code": "BCDF-GHJK", "username": "alice", "password": "wonderland"})
    assert response.status_code == 400 and "unknown" in response.text


# -- refresh, rotation, revocation, introspection ---------------------------------------------


def test_refresh_rotates_and_reuse_of_the_old_token_revokes_the_grant(fresh_demo_provider):
    p = fresh_demo_provider
    first = _password_token(p)
    before = p.token_requests
    second = _refresh(p, first["refresh_token"]).json()
    assert p.token_requests == before + 1
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "openid read:events"
    reuse = _refresh(p, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # RFC 9700: the whole grant family is revoked, the latest tokens included
    assert _refresh(p, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert _api(p, second["access_token"]).status_code == 401


def test_refresh_without_rotation_keeps_the_refresh_token():
    with demo.start(rotate_refresh_tokens=False) as p:
        first = _password_token(p)
        second = _refresh(p, first["refresh_token"]).json()
        assert second["refresh_token"] == first["refresh_token"]
        assert _refresh(p, first["refresh_token"]).status_code == 200


def test_requests_oauthlib_auto_refresh_after_forced_expiry(fresh_demo_provider):
    p = fresh_demo_provider
    client = p.clients["password"]
    token = _password_token(p)
    updates = []
    session = OAuth2Session(client.client_id, token=token, auto_refresh_url=f"{p.url}/token",
                            auto_refresh_kwargs={"client_id": client.client_id,
                                                 "client_secret": client.client_secret},
                            token_updater=updates.append)
    p.expire_access_tokens()
    assert _api(p, token["access_token"]).status_code == 401
    session.token = dict(session.token, expires_at=time.time() - 10)
    assert session.get(f"{p.url}/api/events?per_page=1").status_code == 200
    assert len(updates) == 1 and updates[0]["refresh_token"] != token["refresh_token"]


def test_expired_refresh_token_is_invalid_grant():
    with demo.start(refresh_token_ttl=0) as p:
        assert _refresh(p, _password_token(p)["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoked_access_token_gets_401_invalid_token(fresh_demo_provider):
    p = fresh_demo_provider
    token = _password_token(p)
    client = p.clients["password"]
    response = requests.post(f"{p.url}/revoke", data={"token": token["access_token"],
                                                       "token_type_hint": "access_token"},
                             auth=(client.client_id, client.client_secret), timeout=5)
    assert response.status_code == 200
    api = _api(p, token["access_token"])
    assert api.status_code == 401 and 'error="invalid_token"' in api.headers["WWW-Authenticate"]
    assert api.json()["error"] == "invalid_token"


def test_revoking_the_refresh_token_revokes_its_access_tokens(fresh_demo_provider):
    p = fresh_demo_provider
    token = _password_token(p)
    client = p.clients["password"]
    requests.post(f"{p.url}/revoke", data={"token": token["refresh_token"]},
                  auth=(client.client_id, client.client_secret), timeout=5)
    assert _api(p, token["access_token"]).status_code == 401
    assert _refresh(p, token["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoking_an_unknown_or_foreign_token_is_200_and_changes_nothing(fresh_demo_provider):
    p = fresh_demo_provider
    token = _password_token(p)
    web = p.clients["web"]
    for value in ("unknown-token", token["access_token"]):
        response = requests.post(f"{p.url}/revoke", data={"token": value},
                                 auth=(web.client_id, web.client_secret), timeout=5)
        assert response.status_code == 200
    assert _api(p, token["access_token"]).status_code == 200


def test_revoke_all_and_expire_access_tokens(fresh_demo_provider):
    p = fresh_demo_provider
    token = _password_token(p)
    p.expire_access_tokens()
    assert _api(p, token["access_token"]).status_code == 401
    fresh = _refresh(p, token["refresh_token"]).json()
    assert _api(p, fresh["access_token"]).status_code == 200
    p.revoke_all()
    assert _api(p, fresh["access_token"]).status_code == 401
    assert _refresh(p, fresh["refresh_token"]).json()["error"] == "invalid_grant"


def test_introspection_needs_client_auth_and_reports_activity(fresh_demo_provider):
    p = fresh_demo_provider
    token = _password_token(p)
    service = p.clients["service"]
    url = f"{p.url}/introspect"
    claims = requests.post(url, data={"token": token["access_token"]},
                           auth=(service.client_id, service.client_secret), timeout=5).json()
    assert claims["active"] is True and claims["username"] == "alice"
    assert claims["client_id"] == p.clients["password"].client_id
    assert claims["scope"] == "openid read:events" and claims["exp"] > time.time()
    assert requests.post(url, data={"token": token["access_token"]}, timeout=5).status_code == 401
    public = requests.post(url, data={"token": token["access_token"], "client_id": p.clients["public"].client_id},
                           timeout=5).json()
    assert public == {"active": False}
    p.revoke_all()
    revoked = requests.post(url, data={"token": token["access_token"]},
                            auth=(service.client_id, service.client_secret), timeout=5).json()
    assert revoked == {"active": False}


def test_token_requests_counts_every_post_to_the_token_endpoint(fresh_demo_provider):
    p = fresh_demo_provider
    assert p.token_requests == 0
    _password_token(p)
    requests.post(f"{p.url}/token", data={"grant_type": "nonsense"}, timeout=5)
    assert p.token_requests == 2
