"""The pasted-URL checks (SECURITY_CASES 1-9): pure, no HTTP."""

from __future__ import annotations

import pytest

from nb_oauth2.core.callback import Pending, check_callback, clean_pasted_text
from nb_oauth2.core.errors import (
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


# -- case 53: RFC 9207, iss before the error branch -----------------------------------------

EVIL = "https%3A%2F%2Fevil.example"


@pytest.mark.parametrize("query, kw", [
    (f"error=access_denied&state={STATE}&iss={EVIL}", {}),
    (f"error=access_denied&state={STATE}&iss={EVIL}", {"require_iss": True}),
    (f"error=access_denied&state={STATE}", {"require_iss": True}),
    (f"error=server_error&error_description=retry&state={STATE}&iss={EVIL}", {}),
])
def test_error_response_with_wrong_or_missing_iss_is_a_mix_up(query, kw):
    """Case 53: an error response with a wrong iss, or none where advertised, is a mix-up, not a denial."""
    with pytest.raises(IssuerMismatch) as info:
        check_callback(url(query), pending(**kw))
    assert not isinstance(info.value, AuthorizationDenied)


def test_error_response_with_our_iss_is_still_a_denial_and_state_still_wins():
    """Cases 4 and 53: the right iss keeps the denial; a wrong state beats a wrong iss."""
    ours = "http%3A%2F%2F127.0.0.1%3A9000"
    with pytest.raises(AuthorizationDenied):
        check_callback(url(f"error=access_denied&state={STATE}&iss={ours}"), pending(require_iss=True))
    with pytest.raises(StateMismatch):
        check_callback(url(f"error=access_denied&state=wrong&iss={EVIL}"), pending(require_iss=True))


def _attempt(demo):
    from nb_oauth2.auth.attempt import LoginAttempt

    return LoginAttempt("cb-it", issuer=demo.issuer, client_id=demo.clients["public"].client_id)


def _state_of(authorization_url: str) -> str:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(authorization_url).query))["state"]


@pytest.mark.parametrize("iss", [EVIL, None])
def test_mixed_up_error_response_keeps_the_pending_login(demo_provider, iss):
    """Case 53: over HTTP, another server's error redirect (wrong or no iss; the demo advertises
    RFC 9207) is IssuerMismatch; the AuthorizationCodeFlow keeps its pending login and the real
    redirect still completes."""
    from nb_oauth2.core.flows import AuthorizationCodeFlow

    attempt = _attempt(demo_provider)
    assert attempt.profile.provider.authorization_response_iss
    step = attempt.start()
    flow = attempt.flow
    assert isinstance(flow, AuthorizationCodeFlow)
    forged = f"{step.redirect_uri}?error=access_denied&state={_state_of(step.authorization_url)}"
    forged += f"&iss={iss}" if iss else ""
    before = demo_provider.token_requests
    with pytest.raises(IssuerMismatch):
        attempt.complete_redirect(forged)
    assert flow.pending and attempt.phase == "waiting"
    assert demo_provider.token_requests == before
    session = attempt.complete_redirect(demo_provider.driver.authorize(step.authorization_url))
    assert session.is_authorized and demo_provider.token_requests == before + 1


# -- case 54: only text that can be a code is sent as one -----------------------------------

NOT_CODES = ["undefined", "clipboard", "hello world", "null", "[object Object]", "None", "true", "FALSE",
             "This is not the code you are looking for.", "Undefined", "copy-paste", "SomethingWentWrong",
             "XMLHttpRequest", "authorization_code", "javascript:void(0)"]
# GitHub (20 hex), Google (4/0A...), oauthlib/demo (30 letters and digits), RFC 6749's example,
# Keycloak (uuid.uuid.uuid), Microsoft (0.A...), a digit-free random code
REAL_CODES = ["e72e16c7e42f292c6912", "4/0AX4XfWhY-tDkX8tq_KmGp6uHk2hHv3qwJ0s8Bd9nZr2LcP5-wQvVbE7yXa",
              "Qm8ZVf3sJ2nT1kPx7LwR9bYc0DhG4aEe", "SplxlOBeZQQYbYS6WxSbIA",
              "4c1b9a7e-2f3d-4e5a-9b8c-7d6e5f4a3b2c.8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d.1f2e3d4c",
              "0.AXEAbCdEfGhIjKlMnOpQrStUvWxYz-AbCdEfGhIj_kLmNoP", "aBcDeFgHiJkLmNoPqRsTuVwXyZabcd", CANARY_CODE]


@pytest.mark.parametrize("text", NOT_CODES)
def test_text_that_cannot_be_a_code_is_refused(text):
    """Case 54: placeholders, words and sentences are not sent as a bare code."""
    with pytest.raises(InvalidCallbackURL) as info:
        check_callback(text, pending())
    assert "not a redirect URL" in str(info.value) and "still waiting" in str(info.value)


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_provider_codes_are_accepted_bare(code):
    """Cases 6 and 54: codes as real providers issue them still pass as bare codes."""
    assert check_callback(code, pending()).code == code


def test_oauthlib_codes_are_accepted_bare():
    """Case 54: the demo's (oauthlib's) 30-character codes pass, not only a lucky sample."""
    from oauthlib.common import generate_token

    from nb_oauth2.core.callback import could_be_code

    codes = [generate_token() for _ in range(5000)]
    assert sum(map(could_be_code, codes)) >= 4995  # a digit-free code that reads as words is ~1 in 20,000


def test_half_a_redirect_url_gets_a_hint():
    """Case 54: a redirect URL without its scheme is not a code; the message says what to copy."""
    with pytest.raises(InvalidCallbackURL, match="whole address"):
        check_callback(f"127.0.0.1:8765/callback?code={CANARY_CODE}&state={STATE}", pending())


def test_non_code_text_sends_nothing_and_the_login_stays_usable(demo_provider):
    """Case 54: over HTTP, pasted non-code text reaches no token endpoint; the real code then completes."""
    from urllib.parse import parse_qsl, urlsplit

    attempt = _attempt(demo_provider)
    step = attempt.start()
    before = demo_provider.token_requests
    for text in NOT_CODES:
        with pytest.raises(InvalidCallbackURL):
            attempt.complete_redirect(text)
    assert demo_provider.token_requests == before
    assert attempt.phase == "waiting" and attempt.flow.pending
    code = dict(parse_qsl(urlsplit(demo_provider.driver.authorize(step.authorization_url)).query))["code"]
    assert attempt.complete_redirect(code).is_authorized
    assert demo_provider.token_requests == before + 1


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8000", "http://hub.lan:8000", "https://hub.example.org"])
def test_notebook_origin_redirect_accepts_the_hub_address_http_or_https(origin):
    """Issue 16: behind jupyter-server-proxy the redirect is a path on the hub's origin, whatever its scheme."""
    from nb_oauth2.core.providers import NOTEBOOK_ORIGIN

    path = "/user/alice/proxy/43595/callback"
    expected = pending(redirect_uri=NOTEBOOK_ORIGIN + path)
    assert check_callback(f"{origin}{path}?code={CANARY_CODE}&state={STATE}", expected).code == CANARY_CODE
    with pytest.raises(IssuerMismatch):  # another path on the same origin is still a mix-up
        check_callback(f"{origin}/user/alice/proxy/43596/callback?code={CANARY_CODE}&state={STATE}", expected)
    with pytest.raises(IssuerMismatch):  # the double prefix jupyter-server-proxy used to produce
        check_callback(f"{origin}/user/alice/proxy/43595{path}?code={CANARY_CODE}&state={STATE}", expected)


@pytest.mark.parametrize("pasted", [
    "https://user:pw@app.example/cb?code={code}&state=s",
    "https://app.example\\@evil.example/cb?code={code}&state=s",
    "https://ａpp.example/cb?code={code}&state=s",
])
def test_pasted_https_redirect_with_userinfo_or_look_alike_host_is_refused(pasted):
    """Case 47: userinfo, a backslash or a look-alike host in a pasted https redirect -> refused, code not echoed."""
    expected = Pending(state="s", redirect_uri="https://app.example/cb")
    with pytest.raises(InvalidCallbackURL) as info:
        check_callback(pasted.format(code=CANARY_CODE), expected)
    assert CANARY_CODE not in str(info.value)


@pytest.mark.parametrize("redirect_uri, error", [
    ("http://app.example/cb", "InsecureTransportError"),
    ("https://user:pw@app.example/cb", "UnsafeURL"),
    ("http://127.0.0.1.evil.example/cb", "InsecureTransportError"),
])
def test_configured_redirect_uri_must_be_https_or_loopback_and_unambiguous(redirect_uri, error):
    """Cases 46 and 47: a redirect URI given to a login obeys the same rule as every other URL."""
    import nb_oauth2 as oa
    from nb_oauth2 import Provider

    provider = Provider(name="p", authorization_endpoint="https://as.example/authorize",
                        token_endpoint="https://as.example/token")
    with pytest.raises(oa.OAuth2Error) as info:
        oa.LoginAttempt("ruri", provider=provider, client_id="cid", redirect_uri=redirect_uri).start()
    assert type(info.value).__name__ == error


@pytest.mark.parametrize("pasted", ["http://[::1/callback?code=x&state=y", "http://127.0.0.1:99999/callback?code=x"])
def test_a_malformed_url_is_not_a_redirect_url(pasted):
    """urllib's ValueError (an unclosed IPv6 bracket, a port out of range) becomes InvalidCallbackURL."""
    from nb_oauth2.core.callback import check_callback
    from nb_oauth2.core.errors import InvalidCallbackURL

    with pytest.raises(InvalidCallbackURL, match="not a redirect URL"):
        check_callback(pasted, None)
