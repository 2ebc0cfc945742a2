"""Every grant end to end over HTTP, against the demo provider and Authlib's server.

The browser's part (login form, consent, device approval) is done by each
server's driver over HTTP, exactly as a user's browser would.
"""

from __future__ import annotations

import threading
import warnings

import pytest

import nb_oauth2 as oa
from nb_oauth2.core.errors import AuthorizationDenied, StateMismatch


def resource(server) -> str:
    return server.url + ("/userinfo" if hasattr(server, "set_rate_limit") else "/api/me")


def login(server, flow, **kw):
    client = server.clients[{"code": "public", "implicit": "implicit", "password": "password",
                             "client_credentials": "service", "device": "device"}[flow]]
    return oa.login("it", issuer=server.issuer, client_id=client.client_id, client_secret=client.client_secret,
                    flow=flow, **kw)


def test_discovery_reads_the_issuer_metadata(auth_server):
    provider = oa.discover(auth_server.issuer)
    assert provider.token_endpoint.startswith(auth_server.url)
    assert provider.authorization_endpoint and provider.revocation_endpoint


def test_authorization_code_with_pkce(auth_server):
    session = login(auth_server, "code", browser=auth_server.driver.authorize)
    assert session.is_authorized and session.token_info.refresh_token
    response = session.get(resource(auth_server))
    assert response.status_code == 200
    assert oa.session("it") is session


def test_authorization_code_sends_s256_challenge(auth_server):
    attempt = oa.LoginAttempt("it", issuer=auth_server.issuer, client_id=auth_server.clients["public"].client_id)
    url = attempt.start().authorization_url
    assert "code_challenge_method=S256" in url and "code_challenge=" in url and "state=" in url


def test_denied_consent_is_authorization_denied(auth_server):
    """Case 4 over HTTP: the user clicks Deny."""
    with pytest.raises(AuthorizationDenied):
        login(auth_server, "code", browser=lambda url: auth_server.driver.authorize(url, approve=False))


def test_wrong_state_from_server_sends_no_token_request(auth_server):
    """Case 2 over HTTP: a tampered state never reaches the token endpoint."""
    attempt = oa.LoginAttempt("it", issuer=auth_server.issuer, client_id=auth_server.clients["public"].client_id)
    redirect = auth_server.driver.authorize(attempt.start().authorization_url)
    before = auth_server.token_requests
    tampered = redirect.replace("state=", "state=x")
    with pytest.raises(StateMismatch):
        attempt.complete_redirect(tampered)
    assert auth_server.token_requests == before
    assert attempt.complete_redirect(redirect).is_authorized  # the pending login was left intact


def test_password_grant_warns_and_works(auth_server):
    with pytest.warns(oa.LegacyGrantWarning):
        session = login(auth_server, "password", username="alice", password=auth_server_password(auth_server))
    assert session.get(resource(auth_server)).status_code == 200


def auth_server_password(server) -> str:
    return getattr(server, "users", {}).get("alice", "wonderland")


def test_client_credentials(auth_server):
    session = login(auth_server, "client_credentials")
    assert session.is_authorized
    assert session.status()["refreshable"]


def test_device_authorization(auth_server):
    codes = []

    def approve(step):
        codes.append(step.user_code)
        threading.Timer(0.2, auth_server.driver.approve_device, args=(step.user_code,)).start()

    session = login(auth_server, "device", on_device_code=approve)
    assert codes and session.is_authorized


def test_implicit_grant_demo_only(demo_provider):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", oa.LegacyGrantWarning)
        session = login(demo_provider, "implicit", browser=demo_provider.driver.authorize)
    assert session.token_info.refresh_token is None
    assert session.get(resource(demo_provider)).status_code == 200


def test_revocation_makes_the_token_useless(auth_server):
    """Case 23: 200 means done; the old token is refused afterwards."""
    session = login(auth_server, "code", browser=auth_server.driver.authorize)
    old = session.token_info
    assert session.revoke() is True
    assert session.token_info is None
    import requests

    answer = requests.get(resource(auth_server), headers={"Authorization": f"Bearer {old.access_token}"}, timeout=5)
    assert answer.status_code == 401
