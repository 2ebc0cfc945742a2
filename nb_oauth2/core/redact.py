"""Redaction used by every repr, message and log line.

Secrets the package handles (tokens, codes, client secrets, passwords) are
registered here as they arrive; :func:`redact` replaces any registered secret
(raw, URL-encoded or base64 inside Basic auth) and anything that looks like
one (``access_token=...``, ``Bearer ...``) before text leaves the package.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
from typing import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "fingerprint",
    "register_secret",
    "redact",
    "redact_url",
    "is_secret_param",
    "SECRET_PARAMS",
    "snippet",
    "RedactingFilter",
    "install_log_redaction",
    "MaskedStr",
    "MaskedForm",
]

MASK = "***"

_SENSITIVE_KEYS = (
    "access_token|refresh_token|id_token|code|client_secret|password|device_code|"
    "code_verifier|assertion|client_assertion|token|secret|state|nonce|api_key|apikey"
)
_KEY_VALUE = re.compile(
    rf"""(?P<key>["']?\b(?:{_SENSITIVE_KEYS})\b["']?\s*[:=]\s*["']?)(?P<value>[^"'&\s,;}}<>]+)""",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(r"(?P<key>\b(?:Bearer|Basic|DPoP|MAC)\s+)(?P<value>[A-Za-z0-9._~+/=-]{6,})")

#: how many secrets (each with its encoded forms) are remembered: the newest ones. A kernel that renews a
#: short-lived token all day registers thousands; the old ones have expired or were rotated, and a secret
#: that is still in use is registered again (moved to the newest) whenever a Token carrying it is made.
MAX_SECRETS = 2048

_lock = threading.Lock()
_secrets: dict[str, None] = {}  # insertion-ordered: oldest first
_pattern: re.Pattern[str] | None = None
_stale = False  # the pattern is rebuilt on the next redact(), not on every registration
compilations = 0  # how often the pattern was rebuilt (tests read it)


def fingerprint(secret: str | None) -> str:
    """A short, stable, non-reversible label for a secret (``sha256:1a2b3c4d``)."""
    if not secret:
        return "none"
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def _variants(secret: str) -> set[str]:
    out = {secret, quote(secret, safe=""), quote_plus(secret)}
    out.add(base64.b64encode(secret.encode()).decode().rstrip("="))
    return {v for v in out if len(v) >= 4}


def register_secret(secret: str | None) -> None:
    """Remember a secret so that :func:`redact` masks it wherever it appears (the newest ``MAX_SECRETS``)."""
    global _stale
    if not secret or len(secret) < 4:
        return
    with _lock:
        for variant in _variants(secret):
            known = variant in _secrets
            _secrets.pop(variant, None)
            _secrets[variant] = None  # now the newest
            _stale = _stale or not known
        while len(_secrets) > MAX_SECRETS:
            del _secrets[next(iter(_secrets))]
            _stale = True


def _registered_pattern() -> re.Pattern[str] | None:
    """The alternation of every remembered secret, longest first, rebuilt only after registrations."""
    global _pattern, _stale, compilations
    if _stale:
        with _lock:
            if _stale:
                ordered = sorted(_secrets, key=len, reverse=True)
                _pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
                _stale = False
                compilations += 1
    return _pattern


def redact(text: object, also: Iterable[str] = ()) -> str:
    """Return ``str(text)`` with registered and secret-looking values masked.

    ``also``: secrets of the request at hand (for a server's echo of what it was sent),
    masked with their URL-encoded and base64 forms even when they were never registered.
    """
    out = str(text)
    extra = sorted({v for s in also if s and len(s) >= 4 for v in _variants(s)}, key=len, reverse=True)
    for value in extra:
        out = out.replace(value, MASK)
    pattern = _registered_pattern()
    if pattern is not None:
        out = pattern.sub(MASK, out)
    out = _KEY_VALUE.sub(lambda m: m.group("key") + MASK, out)
    return _AUTH_HEADER.sub(lambda m: m.group("key") + MASK, out)


#: query parameters whose value is a secret (compared lower-case, "-" read as "_"): tokens, codes, keys,
#: signatures, passwords, assertions, and the signed-URL schemes' own names (AWS, Azure SAS, Google)
SECRET_PARAMS = frozenset({
    "token", "access_token", "refresh_token", "id_token", "code", "device_code", "user_code", "code_verifier",
    "key", "api_key", "apikey", "access_key", "secret", "client_secret", "signature", "sig", "password", "passwd",
    "pwd", "assertion", "client_assertion", "state", "nonce", "session", "sessionid", "session_id", "auth",
    "authorization", "credential", "credentials", "jwt", "otp", "ticket", "hash",
    "x_amz_signature", "x_amz_credential", "x_amz_security_token", "x_goog_signature", "x_goog_credential",
})
#: a name holding one of these is secret too (``private_token``, ``app_secret``, ``secret_param``, ``x-apikey``)
_SECRET_WORDS = ("token", "secret", "password", "passwd", "apikey", "api_key", "signature", "credential",
                 "assertion")
#: ... or ending in one of these (``x-api-key``, ``hmac_sig``, ``login_hash``)
_SECRET_ENDINGS = ("_key", "_sig", "_hash")


def is_secret_param(name: str) -> bool:
    """Whether a query parameter named ``name`` carries a secret (its value is masked in messages)."""
    key = name.strip().lower().replace("-", "_")
    return key in SECRET_PARAMS or key.endswith(_SECRET_ENDINGS) or any(word in key for word in _SECRET_WORDS)


def redact_url(url: str) -> str:
    """Mask the values of secret-bearing query parameters (:func:`is_secret_param`), drop the fragment and
    any userinfo; keep scheme, host, path and the other parameters (``page=2``, ``filter=...``).

    The result goes through :func:`redact` as well: a registered secret is masked wherever it appears.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    pairs = [(k, MASK if is_secret_param(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query = urlencode(pairs, safe="*$:/{},@!'()")
    netloc = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:  # out of range or not a number: the message is about this URL, keep it readable
        port = MASK
    if port:
        netloc = f"{netloc}:{port}"
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


class MaskedStr(str):
    """A secret-bearing string whose repr is masked.

    IPython's Verbose traceback prints ``repr()`` of every argument and local
    variable; holding a token, code, password or form body in a MaskedStr keeps
    it out of that output while the value works as a plain string everywhere.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"'{MASK}'"


class MaskedForm(dict):
    """A request form (``{"grant_type": ..., "refresh_token": ...}``) whose repr masks every value."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{key!r}: {MASK}" for key in self) + "}"

    __str__ = __repr__


def snippet(text: object, limit: int = 200, also: Iterable[str] = ()) -> str:
    """Redacted, single-line, length-capped excerpt for error messages."""
    flat = " ".join(redact(text, also).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record and masks secrets in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the record, drop args
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactingFilter()
_NAMESPACES = ("nb_oauth2", "requests_oauthlib", "oauthlib", "urllib3")


def install_log_redaction(*, http_client: bool = False) -> None:
    """Attach the filter to every logger of ours and of the OAuth/HTTP libraries.

    Filters on a logger only see records created on that logger, so the filter
    goes on each existing logger in those namespaces (requests-oauthlib logs
    tokens at DEBUG: its issue #536). ``import nb_oauth2`` does this much.

    ``http_client=True`` (opt-in) also redacts what ``http.client`` prints at
    ``HTTPConnection.debuglevel > 0`` (request headers, Authorization included):
    it sets a ``print`` in the ``http.client`` module, which that module looks up
    before the builtin, so only its debug lines change, for the whole process.
    """
    import requests_oauthlib  # noqa: F401  (make sure its loggers exist)

    if http_client:
        _quiet_http_client_debug()
    manager = logging.Logger.manager
    names = [n for n in list(manager.loggerDict) if n.split(".")[0] in _NAMESPACES]
    for name in set(names) | set(_NAMESPACES):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def _redacting_print(*args: object, **kwargs: object) -> None:
    import builtins

    builtins.print(*(redact(arg) for arg in args), **kwargs)  # type: ignore[call-overload]


def _quiet_http_client_debug() -> None:
    """``http.client`` prints headers (Authorization included) at debuglevel > 0.

    It looks ``print`` up in its own module first, so a module-level name there
    redacts exactly those lines and nothing else (only on request: see install_log_redaction).
    """
    import http.client

    http.client.print = _redacting_print  # type: ignore[attr-defined]
