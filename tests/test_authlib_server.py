"""The Authlib test server works end to end with plain requests-oauthlib (no nb_oauth2 code).

This checks the fixture itself, so that nb_oauth2's scenario tests against it mean something.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient, InvalidGrantError, LegacyApplicationClient, OAuth2Error
from requests_oauthlib import OAuth2Session

from nb_oauth2.demo.driver import DriverError
from tests.servers.authlib_server import DEVICE_GRANT, start_authlib_server

REDIRECT = "http://127.0.0.1:8765/callback"


@pytest.fixture(autouse=True)
def _oauthlib_allows_loopback_http(monkeypatch):
    """Test-only: oauthlib refuses http even on loopback; nb_oauth2 never sets this variable."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def srv(authlib_provider):
    return authlib_provider


def endpoints(srv) -> dict:
    return requests.get(srv.metadata_url, timeout=5).json()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def code_login(srv, client_name: str = "public", *, approve: bool = True, pkce: str | None = "S256"):
    client = srv.clients[client_name]
    oauth = OAuth2Session(client.client_id, redirect_uri=REDIRECT, scope=["profile", "read"], pkce=pkce)
    url, state = oauth.authorization_url(endpoints(srv)["authorization_endpoint"])
    return oauth, state, srv.driver.authorize(url, approve=approve)


def password_token(srv) -> tuple[OAuth2Session, dict]:
    client = srv.clients["password"]
    oauth = OAuth2Session(client=LegacyApplicationClient(client.client_id))
    token = oauth.fetch_token(endpoints(srv)["token_endpoint"], username="alice", password="wonderland",
                              client_id=client.client_id, client_secret=client.client_secret)
    return oauth, token


def me(srv, access_token: str) -> requests.Response:
    return requests.get(f"{srv.url}/api/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=5)


def test_metadata_is_rfc8414_and_oidc_discovery_is_absent(srv):
    meta = endpoints(srv)
    assert meta["issuer"] == srv.issuer == srv.url
    for name in ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "device_authorization_endpoint"):
        assert meta[name].startswith(srv.url + "/")
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert requests.get(f"{srv.url}/.well-known/openid-configuration", timeout=5).status_code == 404


def test_code_with_pkce_for_a_public_client(srv):
    oauth, state, redirect = code_login(srv)
    params = query(redirect)
    assert redirect.startswith(REDIRECT) and params["state"] == state and params["iss"] == srv.issuer
    before = srv.token_requests
    token = oauth.fetch_token(endpoints(srv)["token_endpoint"], authorization_response=redirect,
                              include_client_id=True)
    assert srv.token_requests == before + 1
    assert token["refresh_token"] and token["expires_in"] == 3600 and token["scope"] == ["profile", "read"]
    answer = oauth.get(f"{srv.url}/api/me")
    assert answer.status_code == 200 and answer.json()["sub"] == "alice"


def test_wrong_pkce_verifier_is_invalid_grant(srv):
    oauth, _, redirect = code_login(srv)
    answer = requests.post(endpoints(srv)["token_endpoint"], timeout=5, data={
        "grant_type": "authorization_code", "code": query(redirect)["code"], "redirect_uri": REDIRECT,
        "client_id": srv.clients["public"].client_id, "code_verifier": "x" * 64})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_confidential_client_without_pkce(srv):
    client = srv.clients["web"]
    oauth, _, redirect = code_login(srv, "web", pkce=None)
    token = oauth.fetch_token(endpoints(srv)["token_endpoint"], authorization_response=redirect,
                              client_secret=client.client_secret)
    assert me(srv, token["access_token"]).status_code == 200


def test_any_loopback_redirect_is_accepted_and_other_hosts_refused(srv):
    client = srv.clients["public"]
    for uri in ("http://127.0.0.1:1/a/b", "http://localhost:65000/cb", f"{srv.url}/callback"):
        oauth = OAuth2Session(client.client_id, redirect_uri=uri, pkce="S256")
        assert srv.driver.authorize(oauth.authorization_url(endpoints(srv)["authorization_endpoint"])[0]
                                    ).startswith(uri)
    oauth = OAuth2Session(client.client_id, redirect_uri="http://evil.example/cb", pkce="S256")
    answer = requests.get(oauth.authorization_url(endpoints(srv)["authorization_endpoint"])[0],
                          allow_redirects=False, timeout=5)
    assert answer.status_code == 400 and "evil.example" not in answer.headers.get("Location", "")


def test_denied_consent_redirects_with_access_denied_state_and_iss(srv):
    _, state, redirect = code_login(srv, approve=False)
    params = query(redirect)
    assert params["error"] == "access_denied" and params["state"] == state and params["iss"] == srv.issuer


def test_driver_wrong_password_raises(srv):
    oauth = OAuth2Session(srv.clients["public"].client_id, redirect_uri=REDIRECT, pkce="S256")
    url = oauth.authorization_url(endpoints(srv)["authorization_endpoint"])[0]
    with pytest.raises(DriverError, match="HTTP 401"):
        srv.driver.authorize(url, password="wrong")


def test_password_grant(srv):
    oauth, token = password_token(srv)
    assert token["refresh_token"]
    assert oauth.get(f"{srv.url}/api/me").json()["sub"] == "alice"
    client = srv.clients["password"]
    with pytest.raises(OAuth2Error) as info:
        OAuth2Session(client=LegacyApplicationClient(client.client_id)).fetch_token(
            endpoints(srv)["token_endpoint"], username="alice", password="nope",
            client_id=client.client_id, client_secret=client.client_secret)
    assert info.value.error == "invalid_request"  # Authlib's choice for a wrong password (not invalid_grant)


def test_client_credentials(srv):
    client = srv.clients["service"]
    oauth = OAuth2Session(client=BackendApplicationClient(client.client_id))
    token = oauth.fetch_token(endpoints(srv)["token_endpoint"], client_id=client.client_id,
                              client_secret=client.client_secret)
    assert "refresh_token" not in token
    assert oauth.get(f"{srv.url}/api/me").json()["sub"] == client.client_id


def test_refresh_rotates_and_revokes_the_old_refresh_token(srv):
    oauth, first = password_token(srv)
    client = srv.clients["password"]
    second = oauth.refresh_token(endpoints(srv)["token_endpoint"], auth=(client.client_id, client.client_secret))
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert me(srv, second["access_token"]).status_code == 200
    with pytest.raises(InvalidGrantError):
        oauth.refresh_token(endpoints(srv)["token_endpoint"], refresh_token=first["refresh_token"],
                            auth=(client.client_id, client.client_secret))


def test_revoked_token_gets_401_invalid_token(srv):
    """RFC 7009: 200 on revocation; the resource then answers 401 invalid_token."""
    _, token = password_token(srv)
    client = srv.clients["password"]
    answer = requests.post(endpoints(srv)["revocation_endpoint"], timeout=5,
                           auth=(client.client_id, client.client_secret), data={"token": token["access_token"], "token_type_hint": "access_token"})
    assert answer.status_code == 200
    after = me(srv, token["access_token"])
    assert after.status_code == 401 and after.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in after.headers["WWW-Authenticate"]


def test_public_client_can_revoke_with_client_id_only(srv):
    oauth, _, redirect = code_login(srv)
    token = oauth.fetch_token(endpoints(srv)["token_endpoint"], authorization_response=redirect,
                              include_client_id=True)
    answer = requests.post(endpoints(srv)["revocation_endpoint"], timeout=5, data={
        "token": token["refresh_token"], "client_id": srv.clients["public"].client_id})
    assert answer.status_code == 200
    assert me(srv, token["access_token"]).status_code == 401


def test_expired_token_gets_401_and_refresh_recovers():
    with start_authlib_server(access_token_ttl=60) as short:
        oauth, token = password_token(short)
        short.expire_access_tokens()
        assert me(short, token["access_token"]).status_code == 401
        client = short.clients["password"]
        fresh = oauth.refresh_token(endpoints(short)["token_endpoint"],
                                    auth=(client.client_id, client.client_secret))
        assert fresh["expires_in"] == 60 and me(short, fresh["access_token"]).status_code == 200


def device_start(srv) -> dict:
    answer = requests.post(endpoints(srv)["device_authorization_endpoint"], timeout=5,
                           data={"client_id": srv.clients["device"].client_id, "scope": "profile"})
    assert answer.status_code == 200
    return answer.json()


def device_poll(srv, device_code: str) -> requests.Response:
    return requests.post(endpoints(srv)["token_endpoint"], timeout=5, data={
        "grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": srv.clients["device"].client_id})


def test_device_flow_pending_slow_down_then_token(srv):
    started = device_start(srv)
    assert started["verification_uri"] == f"{srv.url}/device" and started["interval"] == 1
    assert device_poll(srv, started["device_code"]).json()["error"] == "authorization_pending"
    assert device_poll(srv, started["device_code"]).json()["error"] == "slow_down"  # polled too fast
    srv.driver.approve_device(started["user_code"])
    time.sleep(started["interval"])
    token = device_poll(srv, started["device_code"]).json()
    assert token["refresh_token"] and me(srv, token["access_token"]).json()["sub"] == "alice"


def test_device_flow_denied(srv):
    started = device_start(srv)
    srv.driver.approve_device(started["user_code"], approve=False)
    assert device_poll(srv, started["device_code"]).json()["error"] == "access_denied"


def test_device_page_refuses_unknown_code(srv):
    with pytest.raises(DriverError, match="HTTP 400"):
        srv.driver.approve_device("BCDF-GHJK")


def test_no_access_log_on_stderr(srv, capfd):
    """Case 42's rule for every loopback server: no request log lands in cell output."""
    requests.get(srv.metadata_url, timeout=5)
    requests.get(f"{srv.url}/api/me", timeout=5)
    captured = capfd.readouterr()
    assert "GET" not in captured.err and "HTTP/1.1" not in captured.err
