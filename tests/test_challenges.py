"""WWW-Authenticate: only the Bearer challenge's parameters count, unescaped (werkzeug reads each challenge)."""

from __future__ import annotations

import pytest

from nb_oauth2.core.endpoint import ClientAuth
from nb_oauth2.core.errors import APIError, InsufficientScope
from nb_oauth2.core.challenges import parse_www_authenticate
from nb_oauth2.frames.fetch import Fetcher
from nb_oauth2.core.providers import Provider
from nb_oauth2.auth.session import Session
from nb_oauth2.core.token import Token
from tests.scripted_server import Reply


@pytest.mark.parametrize("header", [
    'Bearer realm="api", DPoP algs="ES256", error="invalid_token"',
    'Bearer realm="api", DPoP algs="ES256" , error="use_dpop_nonce", error_description="x"',
    'Bearer realm="api",DPoP error="invalid_dpop_proof"',
])
def test_a_following_dpop_challenge_lends_no_parameters_to_bearer(header):
    assert parse_www_authenticate(header) == {"realm": "api"}


@pytest.mark.parametrize("header", [
    'DPoP error="use_dpop_nonce", Bearer realm="api", error="insufficient_scope", scope="a b"',
    'DPoP algs="ES256 PS256", Bearer realm="api", error="insufficient_scope", scope="a b"',
    'Basic realm="api", Bearer realm="api", error="insufficient_scope", scope="a b"',
    'Negotiate, Bearer realm="api", error="insufficient_scope", scope="a b"',
])
def test_a_bearer_challenge_after_another_scheme_is_read(header):
    assert parse_www_authenticate(header) == {"realm": "api", "error": "insufficient_scope", "scope": "a b"}


def test_quoted_pair_escapes_are_removed():
    header = r'Bearer error="invalid_token", error_description="the \"aud\" claim is wrong, \\ too"'
    assert parse_www_authenticate(header) == {"error": "invalid_token",
                                              "error_description": r'the "aud" claim is wrong, \ too'}


@pytest.mark.parametrize("header,expected", [
    ('Bearer error="insufficient_scope", scope="a b"', {"error": "insufficient_scope", "scope": "a b"}),
    ('bearer ERROR=invalid_token', {"error": "invalid_token"}),
    ('Bearer realm="a, b=c", error="x"', {"realm": "a, b=c", "error": "x"}),
    ("Bearer", {}),
    ('Basic realm="x"', {}),
    ('DPoP error="invalid_token"', {}),
    ("", {}),
    (None, {}),
])
def test_plain_bearer_challenges_read_as_before(header, expected):
    assert parse_www_authenticate(header) == expected


def _session(token_url: str, **token: object) -> Session:
    provider = Provider(name="scripted", token_endpoint=token_url)
    return Session(name="challenge-test", provider=provider, client=ClientAuth("cid"),
                   token=Token.from_response({"access_token": "old-token-123", "expires_in": 3600, **token}))


def test_fetcher_finds_insufficient_scope_after_a_dpop_challenge(scripted):
    """A 403 whose Bearer challenge follows a DPoP one is InsufficientScope naming the scope, through
    nb_oauth2's Session (0.1 read only a header starting with Bearer and reported a bare HTTP 403)."""
    challenge = 'DPoP algs="ES256", Bearer realm="api", error="insufficient_scope", scope="repo:write"'
    scripted.script("/x", [Reply(403, {}, {"WWW-Authenticate": challenge})])
    with pytest.raises(InsufficientScope) as err:
        Fetcher(_session(scripted.url + "/token"), retries=0).get(scripted.url + "/x")
    assert "repo:write" in str(err.value) and scripted.count("/x") == 1


def test_fetcher_does_not_take_a_dpop_error_for_the_bearer_one(scripted):
    """A DPoP error after the Bearer challenge is not insufficient_scope for the Bearer token."""
    challenge = 'Bearer realm="api", DPoP algs="ES256", error="insufficient_scope", scope="repo:write"'
    scripted.script("/x", [Reply(403, {}, {"WWW-Authenticate": challenge})])
    with pytest.raises(APIError) as err:
        Fetcher(_session(scripted.url + "/token"), retries=0).get(scripted.url + "/x")
    assert not isinstance(err.value, InsufficientScope) and err.value.error is None


def test_session_refreshes_on_a_bare_bearer_401_beside_a_dpop_error(scripted):
    """RFC 6750 3.1: a 401 whose Bearer challenge has no error means "renew"; the DPoP challenge's
    error after it must not stop the refresh (0.1 read use_dpop_nonce as the Bearer error)."""
    challenge = 'Bearer realm="api", DPoP algs="ES256", error="use_dpop_nonce"'
    scripted.script("/api", [Reply(401, {}, {"WWW-Authenticate": challenge}), Reply(200, {"ok": True})])
    scripted.script("/token", [Reply(200, {"access_token": "new-token-456", "token_type": "Bearer",
                                           "expires_in": 3600, "refresh_token": "rt-2"})])
    session = _session(scripted.url + "/token", refresh_token="rt-1")
    response = session.get(scripted.url + "/api")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert scripted.count("/token") == 1
    assert [s.headers.get("Authorization") for s in scripted.seen if s.path == "/api"] == [
        "Bearer old-token-123", "Bearer new-token-456"]
