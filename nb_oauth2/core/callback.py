"""Check a pasted (or caught) redirect against the pending login, with no HTTP.

The order follows RFC 9700 and requests-oauth2client's ``validate_callback``:
clean the text, make sure it is a redirect URL of ours, reject duplicate
parameters, check ``state`` (which wins over ``error``), then ``iss`` (RFC 9207:
before ``error``, so another server's error response is a mix-up, not a denial),
then ``error``, and only then hand out the code or token. A bare code is taken
only when it can be one. SECURITY_CASES 1-9, 53, 54.

A redirect whose ``state`` this kernel issued for another link (an earlier login, a
replaced link, a redirect already used) gets :class:`NoLoginInProgress` ("no matching
login in progress"); a ``state`` this kernel never issued is a :class:`StateMismatch`
(CSRF). Every :class:`Pending` records its state's fingerprint for that, the newest
``MAX_ISSUED_STATES`` of them, in kernel memory only.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from .errors import (
    AuthorizationDenied,
    IssuerMismatch,
    InvalidCallbackURL,
    NoLoginInProgress,
    StateMismatch,
    UnsafeURL,
    error_from_response,
)
from .providers import NOTEBOOK_ORIGIN
from .redact import redact, register_secret
from .urls import checked_url, is_secure_or_loopback

__all__ = ["Pending", "CallbackResult", "clean_pasted_text", "check_callback", "could_be_code"]

_BARE_CODE = re.compile(r"^[A-Za-z0-9._~+/=-]{8,2048}$")
#: words, maybe capitalised or after an acronym, maybe joined by - _ . ~ ("NotFound", "HTTPSError")
_WORDS = re.compile(r"^(?:(?:[A-Z]{2,}(?=[A-Z][a-z]{2}))?(?:[A-Z]?[a-z]{2,}|[A-Z][a-z])[-_.~]?)+$")
_SINGLE = ("state", "code", "iss", "error", "access_token")
_RESPONSE_PARAMS = {"state", "code", "error", "access_token", "id_token", "iss"}  # an authorization response's
MAX_PASTE = 16_384
#: how many issued states the kernel remembers (fingerprints), to tell an old link from a forged one
MAX_ISSUED_STATES = 1024
_issued: OrderedDict[str, None] = OrderedDict()
_issued_lock = threading.Lock()
_NO_MATCH_HINT = "Use the sign-in link shown with this login, or run the login again for a new one."


def _state_key(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


def _remember_issued(state: str) -> None:
    with _issued_lock:
        _issued[_state_key(state)] = None
        _issued.move_to_end(_state_key(state))
        while len(_issued) > MAX_ISSUED_STATES:
            _issued.popitem(last=False)


def issued_here(state: str) -> bool:
    """Whether a login of this kernel sent ``state`` (one of the newest ``MAX_ISSUED_STATES``)."""
    with _issued_lock:
        return _state_key(state) in _issued


@dataclass
class Pending:
    """What one started login expects back. Lives only in kernel memory."""

    state: str = field(repr=False)
    redirect_uri: str
    issuer: str | None = None
    require_iss: bool = False
    code_verifier: str | None = field(default=None, repr=False)
    nonce: str | None = field(default=None, repr=False)
    response_type: str = "code"

    def __post_init__(self) -> None:
        _remember_issued(self.state)


@dataclass(frozen=True)
class CallbackResult:
    code: str | None = field(default=None, repr=False)
    fragment_params: dict | None = field(default=None, repr=False)


def _echo(text: str) -> str:
    short = redact(text)[:60]
    return short + ("…" if len(text) > 60 else "")


def clean_pasted_text(text: str) -> str:
    """Strip whitespace, surrounding quotes and ``<...>`` (case 7)."""
    out = (text or "").strip()
    for _ in range(3):
        if len(out) >= 2 and out[0] + out[-1] in ('""', "''", "<>", "``"):
            out = out[1:-1].strip()
    return out


def _params(raw: str) -> dict[str, str]:
    pairs = parse_qsl(raw, keep_blank_values=True)
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key in seen and key in _SINGLE:
            raise InvalidCallbackURL(
                f"The redirect URL holds the parameter {key!r} twice, so no clean authorization response "
                "produced it.", hint="Start the login again.")
        seen[key] = value
    return seen


def _on_notebook_origin(redirect_uri: str) -> bool:
    """A redirect URI that is a path on the notebook's own origin (behind jupyter-server-proxy)."""
    return redirect_uri.startswith(NOTEBOOK_ORIGIN + "/")


def _same_place(url: str, expected: str) -> bool:
    got, want = urlsplit(url), urlsplit(expected)
    if _on_notebook_origin(expected):  # the hub's origin, http or https, is unknown here: match the path
        return got.scheme in ("http", "https") and got.path.rstrip("/") == want.path.rstrip("/")
    return (got.scheme, (got.hostname or "").lower(), got.port, got.path.rstrip("/")) == (
        want.scheme, (want.hostname or "").lower(), want.port, want.path.rstrip("/"),
    )


def check_callback(text: str, pending: Pending | None, *, used_states: frozenset[str] = frozenset()) -> CallbackResult:
    """Validate a pasted redirect (or bare code) against ``pending``; raise a CallbackError subclass."""
    cleaned = clean_pasted_text(text)
    if not cleaned or len(cleaned) > MAX_PASTE:
        raise InvalidCallbackURL(f"That is not a redirect URL ({len(text or '')} characters).",
                                 hint="Paste the whole address the browser shows after signing in.")
    if "://" not in cleaned:
        return _bare_code(cleaned, pending)
    try:
        parts = urlsplit(cleaned)
        parts.port  # noqa: B018  (an unclosed IPv6 bracket or a bad port raises ValueError here)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidCallbackURL(f"That is not a redirect URL: {_echo(cleaned)!r}.",
                                 hint="Paste the address from the browser's bar.")
    try:
        checked_url(cleaned)  # userinfo, backslashes, look-alike hosts: parsers would disagree on its host (case 47)
    except UnsafeURL:
        raise InvalidCallbackURL("The pasted address has a user name, a backslash or look-alike characters in its "
                                 "host, so it cannot be matched to this login.",
                                 hint="Paste the address from the browser's bar.") from None
    # a plain-http hub serves the notebook itself over http: its own address is not refused
    on_notebook_origin = pending is not None and _on_notebook_origin(pending.redirect_uri)
    if not is_secure_or_loopback(cleaned) and not on_notebook_origin:
        raise InvalidCallbackURL("The pasted redirect uses plain http to a host that is not loopback, so it is refused.")
    if pending is None:
        raise NoLoginInProgress("There is no matching login in progress for this redirect: it was already used, "
                                "or its login finished or was replaced.", hint=_NO_MATCH_HINT)
    if not _same_place(cleaned, pending.redirect_uri):
        if not _RESPONSE_PARAMS & (_params(parts.query).keys() | _params(parts.fragment).keys()):
            raise InvalidCallbackURL(
                f"That is not a redirect URL of this login: {_echo(cleaned)!r} carries no code, state or error, "
                "so nothing was sent to the provider and the login is still waiting.",
                hint="Paste the address the browser shows after signing in.")
        raise IssuerMismatch(
            "This redirect went to another address than this login's redirect URI, so it may belong to "
            "another provider or login (mix-up).", hint="Start the login again.")
    query, fragment = _params(parts.query), _params(parts.fragment)
    if fragment.keys() <= {"_"}:  # Facebook's '#_=_' (case 5)
        fragment = {}
    params = fragment if pending.response_type == "token" else query
    if pending.response_type == "code" and "code" not in query and "code" in fragment:
        raise InvalidCallbackURL(
            "The code arrived in the URL fragment (#...), but this login asked for it in the query (the provider "
            "used another response mode).", hint="Start the login again.")
    _check_state(params.get("state"), pending, used_states)
    _check_iss(params.get("iss"), pending)  # case 53: before the error branch
    if "error" in params:
        raise error_from_response(params, context="authorization server", default=AuthorizationDenied)
    return _result(params, pending)


def _bare_code(cleaned: str, pending: Pending | None) -> CallbackResult:
    if not could_be_code(cleaned):
        partial = "=" in cleaned and ("code" in cleaned or "?" in cleaned)
        raise InvalidCallbackURL(
            f"That is not a redirect URL or an authorization code: {_echo(cleaned)!r}; nothing was sent to the "
            "provider and the login is still waiting.",
            hint=("It looks like part of a redirect URL: copy the whole address, starting with http." if partial
                  else "Paste the address the browser shows after signing in."))
    if pending is None or not pending.code_verifier or pending.response_type != "code":
        raise InvalidCallbackURL(
            f"That is not a redirect URL: {_echo(cleaned)!r} (a bare code is only accepted while a PKCE "
            "login is pending).", hint="Paste the whole address the browser shows after signing in.")
    register_secret(cleaned)
    return CallbackResult(code=cleaned)


def could_be_code(text: str) -> bool:
    """Whether pasted text can be an authorization code, not a word or a clipboard accident (case 54).

    Codes are random: GitHub's 20 hex characters, Google's ``4/0A...``, oauthlib's 30 letters
    and digits, UUID-like Keycloak codes. Refused: spaces or punctuation outside RFC 6749's
    code characters or under 8 characters (``null``, ``[object Object]``), and, without a digit,
    text in one case or that reads as words (``undefined``, ``UNDEFINED``, ``Hello-World``).
    """
    if not _BARE_CODE.match(text):
        return False
    if any(ch.isdigit() for ch in text):
        return True
    return not text.islower() and not text.isupper() and not _WORDS.match(text)


def _check_state(state: str | None, pending: Pending, used_states: frozenset[str]) -> None:
    if not state:
        raise StateMismatch("The redirect has no state parameter, so it cannot be matched to this login (CSRF check).")
    if state == pending.state:
        return
    if state in used_states or issued_here(state):  # an earlier or replaced link of this kernel, or used twice
        raise NoLoginInProgress("There is no matching login in progress for this redirect: it belongs to an earlier "
                                "sign-in link, or it was already used.", hint=_NO_MATCH_HINT)
    raise StateMismatch(
        "The state in the redirect does not match this login's (CSRF check), so nothing was sent to the provider.",
        hint="Paste the redirect of the sign-in link shown here, or run the login again.",
    )


def _check_iss(iss: str | None, pending: Pending) -> None:
    if iss is None:
        if pending.require_iss:
            raise IssuerMismatch("The provider advertises RFC 9207 but the redirect has no iss, so it may come from "
                                 "another server.", hint="Start the login again.")
        return
    if pending.issuer and iss.rstrip("/") != pending.issuer.rstrip("/"):
        raise IssuerMismatch(f"The redirect was issued by {redact(iss)[:80]!r}, not by this login's provider "
                             "(a mix-up attack?).", hint="Start the login again.")


def _result(params: dict[str, str], pending: Pending) -> CallbackResult:
    if pending.response_type == "token":
        if not params.get("access_token"):
            raise InvalidCallbackURL("The redirect has no access_token in its fragment.")
        register_secret(params["access_token"])
        return CallbackResult(fragment_params=params)
    code = params.get("code")
    if not code:
        raise InvalidCallbackURL("The redirect has neither a code nor an error.",
                                 hint="Paste the whole address the browser shows after signing in.")
    register_secret(code)
    return CallbackResult(code=code)

