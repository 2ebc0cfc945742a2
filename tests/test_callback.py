"""The pasted-URL checks (SECURITY_CASES 1-9): pure, no HTTP."""

from __future__ import annotations

import pytest

from nb_oauth2.callback import Pending, check_callback, clean_pasted_text
from nb_oauth2.errors import (
    AuthorizationDenied,
    InvalidCallbackURL,
    IssuerMismatch,
    NoLoginInProgress,
    StateMismatch,
)
from tests.conftest import CANARY_CODE

REDIRECT = "http://127.0.0.1:8765/callback"
STATE = "st-abcdefghijklmnop"


def pending(**kw):
    defaults = dict(state=STATE, redirect_uri=REDIRECT, issuer="http://127.0.0.1:9000", code_verifier="v" * 50)
    defaults.update(kw)
    return Pending(**defaults)


def url(query="", fragment="", base=REDIRECT):
    out = base + ("?" + query if query else "")
    return out + ("#" + fragment if fragment else "")


@pytest.mark.parametrize("garbage", ["", "   ", "hello", "x" * 50_000, "javascript:alert(1)", "ftp://a/b"])
def test_garbage_is_not_a_redirect_url(garbage):
    """Case 1: garbage -> 'not a redirect URL', echo at most 60 chars."""
    with pytest.raises(InvalidCallbackURL) as info:
        check_callback(garbage, pending(code_verifier=None))
    message = str(info.value)
    assert "not a redirect URL" in message
    assert garbage.strip()[:61] not in message or len(garbage.strip()) <= 60


def test_wrong_state_is_rejected():
    """Case 2: a wrong state is rejected (before any token request: this check has no HTTP)."""
    with pytest.raises(StateMismatch):
        check_callback(url(f"code={CANARY_CODE}&state=other"), pending())


@pytest.mark.parametrize("query", [f"code={CANARY_CODE}", f"code={CANARY_CODE}&state={STATE}&state={STATE}",
                                   f"code=a&code=b&state={STATE}"])
def test_missing_or_duplicate_state_or_code_is_rejected(query):
    """Case 3: missing state, or duplicate state/code."""
    with pytest.raises((StateMismatch, InvalidCallbackURL)):
        check_callback(url(query), pending())


def test_access_denied_with_right_state_is_authorization_denied_escaped():
    """Case 4: error=access_denied -> AuthorizationDenied, error_description HTML-escaped."""
    with pytest.raises(AuthorizationDenied) as info:
        check_callback(url(f"error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state={STATE}"), pending())
    assert "<b>" not in str(info.value) and "&lt;b&gt;" in str(info.value)
    assert info.value.error == "access_denied"


def test_state_error_wins_over_provider_error():
    """Case 4: with a wrong state, the state error wins."""
    with pytest.raises(StateMismatch):
        check_callback(url("error=access_denied&state=wrong"), pending())


def test_facebook_fragment_is_tolerated():
    """Case 5: '#_=_' is ignored."""
    result = check_callback(url(f"code={CANARY_CODE}&state={STATE}", "_=_"), pending())
    assert result.code == CANARY_CODE


def test_code_in_fragment_is_explained():
    """Case 5: a code in the fragment of a code flow gets an explanation."""
    with pytest.raises(InvalidCallbackURL, match="fragment"):
        check_callback(url("", f"code={CANARY_CODE}&state={STATE}"), pending())


def test_implicit_token_read_only_after_state_match():
    """Case 5: an implicit token is read only once the state matched."""
    with pytest.raises(StateMismatch):
        check_callback(url("", "access_token=abcdefgh&state=nope"), pending(response_type="token"))
    result = check_callback(url("", f"access_token=abcdefgh&state={STATE}&token_type=bearer"),
                            pending(response_type="token"))
    assert result.fragment_params["access_token"] == "abcdefgh"


def test_bare_code_needs_pending_pkce_verifier():
    """Case 6: a bare code only with a pending PKCE verifier, and no 'must utilize https'."""
    assert check_callback(CANARY_CODE, pending()).code == CANARY_CODE
    with pytest.raises(InvalidCallbackURL) as info:
        check_callback(CANARY_CODE, pending(code_verifier=None))
    assert "https" not in str(info.value)


@pytest.mark.parametrize("wrap", ['  "{}"  ', "<{}>", "'{}'\n", "\t{}  "])
def test_whitespace_quotes_and_angle_brackets_are_stripped(wrap):
    """Case 7: whitespace, quotes and <...> around the URL are stripped."""
    text = wrap.format(url(f"code={CANARY_CODE}&state={STATE}"))
    assert check_callback(text, pending()).code == CANARY_CODE
    assert clean_pasted_text(' "<x>" ') == "x"


def test_plain_http_to_remote_host_is_refused():
    """Case 7: loopback http is accepted, other http refused."""
    remote = "http://example.com/callback"
    with pytest.raises(InvalidCallbackURL, match="plain http"):
        check_callback(url(f"code=abcdefgh&state={STATE}", base=remote), pending(redirect_uri=remote))


@pytest.mark.parametrize("base", ["http://127.0.0.1:8766/callback", "http://127.0.0.1:8765/other",
                                  "https://evil.example/callback"])
def test_other_redirect_target_is_a_mix_up(base):
    """Case 8: host/path different from the registered redirect -> mix-up rejection."""
    with pytest.raises(IssuerMismatch):
        check_callback(url(f"code={CANARY_CODE}&state={STATE}", base=base), pending())


def test_wrong_iss_is_a_mix_up():
    """Case 8: an iss that is not our issuer is rejected."""
    with pytest.raises(IssuerMismatch):
        check_callback(url(f"code={CANARY_CODE}&state={STATE}&iss=https%3A%2F%2Fevil.example"), pending())


def test_missing_iss_where_advertised_is_a_mix_up():
    """Case 8: no iss although the provider advertises RFC 9207."""
    with pytest.raises(IssuerMismatch):
        check_callback(url(f"code={CANARY_CODE}&state={STATE}"), pending(require_iss=True))
    ok = check_callback(url(f"code={CANARY_CODE}&state={STATE}&iss=http%3A%2F%2F127.0.0.1%3A9000"),
                        pending(require_iss=True))
    assert ok.code == CANARY_CODE


def test_no_pending_login_or_used_state_is_no_matching_login():
    """Case 9: same URL twice / after restart / from an earlier run -> no matching login."""
    with pytest.raises(NoLoginInProgress):
        check_callback(url(f"code={CANARY_CODE}&state={STATE}"), None)
    with pytest.raises(NoLoginInProgress):
        check_callback(url(f"code={CANARY_CODE}&state=old-state"), pending(),
                       used_states=frozenset({"old-state"}))


def test_error_messages_never_hold_the_code():
    """Case 1/36: no code in any message."""
    for text in (url(f"code={CANARY_CODE}&state=bad"), url(f"code={CANARY_CODE}", base="https://evil.example/cb")):
        with pytest.raises(Exception) as info:
            check_callback(text, pending())
        assert CANARY_CODE not in str(info.value) and CANARY_CODE not in repr(info.value)
