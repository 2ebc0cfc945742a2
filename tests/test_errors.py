"""Messages of the error tree: clean sentences, the hint kept apart, old links told from forged ones."""

from __future__ import annotations

import re
import secrets

import pytest

from nb_oauth2.core.callback import Pending, check_callback
from nb_oauth2.core.errors import (
    AuthorizationDenied,
    InvalidGrant,
    NoLoginInProgress,
    OAuth2Error,
    StateMismatch,
    TokenEndpointError,
    error_from_response,
    sentence,
)

REDIRECT = "http://127.0.0.1:8765/callback"
_BAD_JOIN = re.compile(r"[.;:,]\s*[;.]|\.\.(?!\.)")


def _clean(text: str) -> None:
    assert not _BAD_JOIN.search(text), text
    assert text[0].isupper() and text.rstrip()[-1] in ".!?…", text


@pytest.mark.parametrize("description", [None, "The user denied the request.", "no; really", "Code expired:", "Bad code;"])
@pytest.mark.parametrize("code", ["access_denied", "invalid_grant", "invalid_client", "invalid_scope", "odd_one"])
def test_error_from_response_reads_as_sentences(code, description):
    """Issue 12 item 4: 'The user denied the request.; the request was refused; ...' no more."""
    data = {"error": code, **({"error_description": description} if description else {})}
    exc = error_from_response(data, status=400)
    _clean(exc.summary)
    if exc.hint:
        _clean(exc.hint)
        assert str(exc) == f"{exc.summary} {exc.hint}" and exc.hint not in exc.summary


def test_denied_consent_says_authorization_denied_once():
    exc = error_from_response({"error": "access_denied", "error_description": "The user denied the request."},
                              context="authorization server", default=AuthorizationDenied)
    assert isinstance(exc, AuthorizationDenied)
    assert str(exc) == ("Authorization denied by the authorization server ('access_denied'): The user denied the "
                        "request. Sign in again and approve the request.")
    assert str(exc).lower().count("again") == 1


def test_next_step_given_by_the_caller_becomes_the_hint():
    exc = error_from_response({"error": "invalid_client"}, next_step="the client authenticated with x; check it")
    assert exc.hint == "The client authenticated with x; check it."
    assert exc.summary == "The token endpoint answered 'invalid_client'."


def test_hint_is_optional_and_the_message_is_unchanged_without_it():
    assert str(InvalidGrant("Rejected.")) == "Rejected." and InvalidGrant("Rejected.").hint is None
    assert OAuth2Error("x", hint="do this").summary == "x"
    assert isinstance(error_from_response({"error": "whatever"}), TokenEndpointError)


def test_sentence():
    assert sentence("start again;") == "Start again." and sentence("Done!") == "Done!"


def _redirect(state: str) -> str:
    return f"{REDIRECT}?code=abcdefgh12345678&state={state}"


def test_an_earlier_link_of_this_kernel_is_no_matching_login_in_progress():
    """The quickstart's promise: a redirect from an earlier attempt says 'no matching login in progress'
    (0.1 said 'CSRF'), and nothing is sent; a state this kernel never issued is still a StateMismatch."""
    earlier = Pending(state=secrets.token_urlsafe(24), redirect_uri=REDIRECT, code_verifier="v" * 50)
    current = Pending(state=secrets.token_urlsafe(24), redirect_uri=REDIRECT, code_verifier="v" * 50)
    with pytest.raises(NoLoginInProgress, match="no matching login in progress"):
        check_callback(_redirect(earlier.state), current)
    with pytest.raises(StateMismatch, match="CSRF"):
        check_callback(_redirect(secrets.token_urlsafe(24)), current)
    assert check_callback(_redirect(current.state), current).code == "abcdefgh12345678"


def test_a_redirect_with_no_login_pending_is_no_matching_login_in_progress():
    with pytest.raises(NoLoginInProgress, match="no matching login in progress") as info:
        check_callback(_redirect("whatever-state-1234"), None)
    assert info.value.hint and "run the login again" in info.value.hint
