from __future__ import annotations

import warnings

import pytest

from nb_oauth2 import Token
from nb_oauth2.core.errors import UnexpectedTokenResponse, UnsupportedTokenType
from tests.conftest import CANARY_REFRESH, CANARY_TOKEN


@pytest.mark.parametrize("value", [3600, "3600", "3600.0", 3600.0])
def test_expires_in_forms_give_3600_seconds(value):
    """Case 13: 3600, "3600", "3600.0" all mean 3600 s from receive time."""
    token = Token.from_response({"access_token": CANARY_TOKEN, "expires_in": value}, received_at=1000.0)
    assert token.expires_at == 4600.0


@pytest.mark.parametrize("value", [-5, "soon", "nan", 0, "inf"])
def test_unusable_expires_in_gives_unknown_expiry_and_one_warning(value):
    """Case 13: negative/garbage expires_in -> unknown expiry plus one warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        token = Token.from_response({"access_token": CANARY_TOKEN, "expires_in": value})
    assert token.expires_at is None
    assert not token.is_expired()
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1


def test_absent_expires_in_is_unknown_without_warning():
    """Case 13: absent expires_in works (refresh happens after a 401)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        token = Token.from_response({"access_token": CANARY_TOKEN})
    assert token.expires_in() is None


def test_server_expires_at_is_ignored_for_receive_time():
    """Case 22: expiry is receive time + expires_in; a server-sent expires_at is ignored."""
    token = Token.from_response(
        {"access_token": CANARY_TOKEN, "expires_in": 3600, "expires_at": 1}, received_at=5000.0
    )
    assert token.expires_at == 8600.0
    assert token.is_expired(leeway=45, now=8556.0)
    assert not token.is_expired(leeway=45, now=8550.0)


@pytest.mark.parametrize("token_type", [None, "bearer", "Bearer", "BEARER"])
def test_bearer_or_absent_token_type_is_bearer(token_type):
    """Case 14: absent or any-case bearer is Bearer."""
    data = {"access_token": CANARY_TOKEN}
    if token_type:
        data["token_type"] = token_type
    assert Token.from_response(data).token_type == "Bearer"


@pytest.mark.parametrize("token_type", ["mac", "N_A", "DPoP"])
def test_unknown_token_type_fails_at_login(token_type):
    """Case 14: unknown token types fail when the token arrives, not at the first API call."""
    with pytest.raises(UnsupportedTokenType) as info:
        Token.from_response({"access_token": CANARY_TOKEN, "token_type": token_type})
    assert CANARY_TOKEN not in str(info.value)


@pytest.mark.parametrize("data", [{}, {"access_token": ""}, {"access_token": 5}, {"token": CANARY_TOKEN}])
def test_missing_access_token_is_typed_error(data):
    """Case 10: a response without access_token is UnexpectedTokenResponse, no secret echoed."""
    with pytest.raises(UnexpectedTokenResponse) as info:
        Token.from_response(data)
    assert CANARY_TOKEN not in str(info.value)


def test_rotation_keeps_old_refresh_token_when_absent():
    """Case 18: a refresh response without refresh_token keeps the old one."""
    old = Token.from_response({"access_token": "a" * 20, "refresh_token": CANARY_REFRESH, "scope": "x y"})
    new = Token.from_response({"access_token": CANARY_TOKEN}, previous=old)
    assert new.refresh_token == CANARY_REFRESH
    assert new.scope == ("x", "y")


@pytest.mark.parametrize("length", [20, 4096, 20000])
def test_repr_and_str_never_show_tokens(length):
    """Case 36: repr/str/_repr_html_ show a fingerprint and expiry, never the token."""
    secret = (CANARY_TOKEN * (length // len(CANARY_TOKEN) + 1))[:length]
    token = Token.from_response({"access_token": secret, "refresh_token": CANARY_REFRESH, "expires_in": 3600,
                                 "id_token": "idtok-" + "z" * 30})
    for text in (repr(token), str(token), token._repr_html_(), repr([token]), f"{token}"):
        assert secret[:20] not in text and CANARY_REFRESH not in text and "idtok" not in text
        assert "sha256:" in text


def test_to_dict_round_trip_keeps_absolute_expiry():
    token = Token.from_response({"access_token": CANARY_TOKEN, "expires_in": 100, "scope": "a"}, received_at=10.0)
    again = Token.from_dict(token.to_dict())
    assert again.expires_at == 110.0 and again.access_token == CANARY_TOKEN and again.scope == ("a",)
    assert "client_secret" not in token.to_dict()


def test_certificate_binding_survives_the_store():
    """RFC 8705: a token's cnf (x5t#S256) is kept through to_dict/from_dict."""
    token = Token.from_response({"access_token": CANARY_TOKEN, "cnf": {"x5t#S256": "abc"}})
    assert Token.from_dict(token.to_dict()).extra["cnf"] == {"x5t#S256": "abc"}


def test_a_hub_session_token_renews_without_a_refresh_token():
    """Issue 14: the hub service renews a kernel's token (grant "hub"), so status says it renews; an
    authorization-code token without a refresh token still does not."""
    token = Token.from_response({"access_token": CANARY_TOKEN, "expires_in": 60})
    assert token.can_renew("hub") and token.can_renew("client_credentials")
    assert not token.can_renew("authorization_code") and not token.can_renew(None)
