"""Token endpoint faults (SECURITY_CASES 10-16), served by a scripted loopback server."""

from __future__ import annotations

import warnings

import pytest

from nb_oauth2 import ClientAuth, Provider
from nb_oauth2.core.endpoint import Endpoints, ScopeChangedWarning
from nb_oauth2.core.errors import (
    InsecureTransportError,
    InvalidClient,
    InvalidGrant,
    OAuth2Error,
    TokenEndpointError,
    TransportError,
    UnexpectedTokenResponse,
    UnsupportedTokenType,
)
from nb_oauth2.core.flows import AuthorizationCodeFlow, ClientCredentialsFlow
from tests.conftest import CANARY_CODE, CANARY_SECRET, CANARY_TOKEN
from tests.scripted_server import Reply


def make(scripted, *, method="client_secret_basic", timeout=(2, 2)):
    provider = Provider(name="scripted", authorization_endpoint=scripted.url + "/authorize",
                        token_endpoint=scripted.url + "/token", token_endpoint_auth_method=method)
    client = ClientAuth("cid", CANARY_SECRET)
    return Endpoints(provider, client, timeout=timeout), provider, client


def code_flow(scripted):
    endpoints, provider, client = make(scripted)
    flow = AuthorizationCodeFlow(provider, client, redirect_uri="http://127.0.0.1:1/cb", endpoints=endpoints)
    step = flow.start()
    state = step.authorization_url.split("state=")[1].split("&")[0]
    return flow, f"http://127.0.0.1:1/cb?code={CANARY_CODE}&state={state}"


@pytest.mark.parametrize("reply", [
    Reply(200, "<html><body>Sign in</body></html>", {"Content-Type": "text/html"}),
    Reply(200, "not json at all", {"Content-Type": "application/json"}),
    Reply(200, {"token_type": "bearer"}),
    Reply(200, "[1,2]", {"Content-Type": "application/json"}),
])
def test_malformed_token_response_is_typed_with_status_and_snippet(scripted, reply):
    """Case 10: non-JSON, HTML 200 or no access_token -> error with status, content type, short snippet."""
    scripted.script("/token", [reply])
    flow, redirect = code_flow(scripted)
    with pytest.raises(UnexpectedTokenResponse) as info:
        flow.complete(redirect)
    message = str(info.value)
    assert len(message) < 400
    assert CANARY_CODE not in message and CANARY_SECRET not in message
    if reply.status == 200 and not isinstance(reply.body, dict):
        assert "HTTP 200" in message


@pytest.mark.parametrize("reply", [Reply(503, "<h1>Service Unavailable</h1>", {"Content-Type": "text/html"}),
                                   Reply(500, {"oops": 1})])
def test_5xx_on_code_exchange_is_not_retried(scripted, reply):
    """Case 11: 5xx on code exchange -> never auto-retried; 'restart login'."""
    scripted.script("/token", [reply])
    flow, redirect = code_flow(scripted)
    with pytest.raises(TokenEndpointError, match="restart"):
        flow.complete(redirect)
    assert scripted.count("/token") == 1


def test_timeout_on_code_exchange_is_not_retried(scripted):
    """Case 11/16: a hung endpoint times out; the exchange is sent once."""
    scripted.script("/token", [Reply(200, {"access_token": CANARY_TOKEN}, delay=3)])
    endpoints, provider, client = make(scripted, timeout=(1, 0.5))
    flow = AuthorizationCodeFlow(provider, client, redirect_uri="http://127.0.0.1:1/cb", endpoints=endpoints)
    state = flow.start().authorization_url.split("state=")[1].split("&")[0]
    with pytest.raises(TransportError, match="did not answer"):
        flow.complete(f"http://127.0.0.1:1/cb?code={CANARY_CODE}&state={state}")
    assert scripted.count("/token") == 1


@pytest.mark.parametrize("status,body,cls", [
    (400, {"error": "invalid_grant", "error_description": "code used"}, InvalidGrant),
    (200, {"error": "bad_verification_code", "error_description": "The code passed is incorrect"}, InvalidGrant),
    (200, {"error": "incorrect_client_credentials"}, InvalidClient),
    (401, {"error": "invalid_client"}, InvalidClient),
    (418, {"error": "something_new"}, TokenEndpointError),
])
def test_error_body_at_any_status_is_typed(scripted, status, body, cls):
    """Case 12: error bodies (RFC and GitHub's) at any status map to typed errors."""
    scripted.script("/token", [Reply(status, body)])
    flow, redirect = code_flow(scripted)
    with pytest.raises(cls) as info:
        flow.complete(redirect)
    assert info.value.error == body["error"]
    assert repr(info.value) == f"{cls.__name__}(error={body['error']!r})"


def test_form_encoded_token_response_is_accepted(scripted):
    """GitHub without Accept: JSON answers form-encoded; parsed tolerantly."""
    scripted.script("/token", [Reply(200, f"access_token={CANARY_TOKEN}&token_type=bearer&scope=repo",
                                     {"Content-Type": "application/x-www-form-urlencoded"})])
    flow, redirect = code_flow(scripted)
    token = flow.complete(redirect)
    assert token.access_token == CANARY_TOKEN and token.scope == ("repo",)


def test_unknown_token_type_fails_at_login(scripted):
    """Case 14: a mac token fails at login."""
    scripted.script("/token", [Reply(200, {"access_token": CANARY_TOKEN, "token_type": "mac"})])
    flow, redirect = code_flow(scripted)
    with pytest.raises(UnsupportedTokenType):
        flow.complete(redirect)


def test_changed_scope_is_recorded_and_warned_once_without_env_flag(scripted, monkeypatch):
    """Case 15: a changed scope is recorded and warned once; no process-wide env flag."""
    monkeypatch.delenv("OAUTHLIB_RELAX_TOKEN_SCOPE", raising=False)
    scripted.script("/token", [Reply(200, {"access_token": CANARY_TOKEN, "scope": "read"})])
    endpoints, provider, client = make(scripted)
    flow = ClientCredentialsFlow(provider, client, scope=["read", "write"], endpoints=endpoints)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        token = flow.complete()
    assert token.scope == ("read",)
    assert len([w for w in caught if issubclass(w.category, ScopeChangedWarning)]) == 1
    import os

    assert "OAUTHLIB_RELAX_TOKEN_SCOPE" not in os.environ and "OAUTHLIB_INSECURE_TRANSPORT" not in os.environ


def test_client_auth_basic_or_body_as_provider_wants(scripted):
    """Client authentication goes in HTTP Basic or the body, as the provider's method says."""
    scripted.script("/token", [Reply(200, {"access_token": CANARY_TOKEN})])
    for method in ("client_secret_basic", "client_secret_post"):
        endpoints, provider, client = make(scripted, method=method)
        ClientCredentialsFlow(provider, client, endpoints=endpoints).complete()
        seen = scripted.seen[-1]
        if method == "client_secret_basic":
            assert seen.headers.get("Authorization", "").startswith("Basic ")
            assert "client_secret" not in seen.body
        else:
            assert "Authorization" not in seen.headers
            assert "client_secret=" in seen.body and "client_id=cid" in seen.body


def test_http_to_remote_token_endpoint_is_refused():
    """Plain http is allowed only for loopback hosts."""
    provider = Provider(name="x", token_endpoint="http://example.com/token")
    with pytest.raises(InsecureTransportError):
        ClientCredentialsFlow(provider, ClientAuth("cid", "s3cr3t-value")).complete()


def test_connection_refused_is_transport_error():
    """Case 16 neighbour: nothing listening -> TransportError, not a raw requests exception."""
    provider = Provider(name="x", token_endpoint="http://127.0.0.1:9/token")
    with pytest.raises(TransportError):
        ClientCredentialsFlow(provider, ClientAuth("cid", "s3cr3t-value")).complete()


def test_errors_share_one_root():
    assert issubclass(TransportError, OAuth2Error) and issubclass(InvalidGrant, OAuth2Error)


def _jwt(claims: dict) -> str:
    import base64
    import json

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_id_token_with_wrong_nonce_is_refused(scripted):
    """OIDC nonce: an id_token from another login is refused."""
    endpoints, provider, client = make(scripted)
    flow = AuthorizationCodeFlow(provider, client, redirect_uri="http://127.0.0.1:1/cb", endpoints=endpoints,
                                 scope=["openid"])
    url = flow.start().authorization_url
    assert "nonce=" in url
    state = url.split("state=")[1].split("&")[0]
    scripted.script("/token", [Reply(200, {"access_token": CANARY_TOKEN, "id_token": _jwt({"nonce": "other"})})])
    from nb_oauth2.core.errors import IssuerMismatch

    with pytest.raises(IssuerMismatch, match="nonce"):
        flow.complete(f"http://127.0.0.1:1/cb?code={CANARY_CODE}&state={state}")


def test_refresh_drop_after_server_rotated_retries_once_then_reauth(scripted):
    """Case 21: the refresh answer is lost (timeout) after the server rotated; one retry,
    then invalid_grant -> ReauthRequired explained; the store is never half-written."""
    import time as _time

    from nb_oauth2.core.errors import ReauthRequired
    from nb_oauth2.auth.session import Session
    from nb_oauth2.core.token import Token

    endpoints, provider, client = make(scripted, timeout=(1, 0.4))
    token = Token.from_response({"access_token": CANARY_TOKEN, "refresh_token": "rt-old-123456", "expires_in": 1})
    session = Session(name="drop", provider=provider, client=client, token=token, endpoints=endpoints)
    saved_before = session.store.load("drop")
    scripted.script("/token", [Reply(200, {"access_token": "new-at-123456", "refresh_token": "rt-new-123456"},
                                     delay=1.0),
                               Reply(400, {"error": "invalid_grant"})])
    _time.sleep(0.01)
    with pytest.raises(ReauthRequired, match="already rotated"):
        session.refresh()
    assert scripted.count("/token") == 2
    stored = session.store.load("drop")
    assert stored["access_token"] == saved_before["access_token"] and not stored.get("refresh_token")


def test_resource_timeout_is_transport_error_and_still_a_requests_exception(scripted):
    """Case 16: resource calls time out; the error is typed (and still a requests exception)."""
    import requests

    from nb_oauth2.core.errors import TransportError
    from nb_oauth2.auth.session import Session
    from nb_oauth2.core.token import Token

    endpoints, provider, client = make(scripted)
    session = Session(name="slow", provider=provider, client=client, endpoints=endpoints, timeout=(1, 0.3),
                      token=Token.from_response({"access_token": CANARY_TOKEN, "expires_in": 3600}))
    scripted.script("/api", [Reply(200, {"ok": 1}, delay=1.0)])
    with pytest.raises(TransportError) as info:
        session.get(scripted.url + "/api?secret_param=abcdefgh")
    assert isinstance(info.value, requests.RequestException)
    assert "abcdefgh" not in str(info.value)
