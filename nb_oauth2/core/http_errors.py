"""The one mapping from requests (and oauthlib) exceptions to nb_oauth2's error tree.

:class:`~nb_oauth2.auth.session.Session`, :class:`~nb_oauth2.frames.fetch.Fetcher` and
:meth:`~nb_oauth2.core.endpoint.Endpoints.post` all call :func:`map_request_error`,
so a failure is the same typed error whichever session sent the request
(SECURITY_CASES 50):

* TLS failures -> the :class:`~nb_oauth2.core.errors.TLSError` family (:func:`nb_oauth2.core.tls.tls_error`);
* malformed URLs or headers (``InvalidURL``, ``MissingSchema``, ``InvalidSchema``,
  ``URLRequired``, ``InvalidHeader``) -> :class:`~nb_oauth2.core.errors.ConfigurationError`;
* timeouts, refused or dropped connections -> :class:`~nb_oauth2.core.errors.TransportError`
  with ``retryable = True``: sending an idempotent request (GET) again is safe;
* anything else requests raises -> ``TransportError`` with ``retryable = False``.

Every ``TransportError`` made here carries ``retryable`` and ``reason``
(``"timeout"``, ``"connection"``, ``"tls"``, ``"deadline"`` or ``"other"``);
:func:`is_retryable` reads the flag. Messages hold the redacted URL, never a
query value, token or secret.
"""

from __future__ import annotations

from typing import Any

import requests
from oauthlib.oauth2.rfc6749 import errors as oauthlib_errors

from .errors import (
    ConfigurationError,
    InsecureTransportError,
    InvalidToken,
    OAuth2Error,
    TLSError,
    TransportError,
    error_from_response,
)
from .redact import redact_url
from .tls import is_tls_failure, tls_error

__all__ = ["map_request_error", "map_oauthlib_error", "transport_error", "is_retryable", "timeout_parts"]

_MALFORMED = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
              requests.exceptions.URLRequired, requests.exceptions.InvalidHeader)
#: a connection that broke mid-response: a GET may be sent again
_DROPPED = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


def transport_error(message: str, *, retryable: bool, reason: str, hint: str | None = None) -> TransportError:
    """A :class:`TransportError` carrying the ``retryable`` flag, a ``reason`` and maybe a ``hint``."""
    error = TransportError(message, hint=hint or None)
    error.retryable = retryable  # type: ignore[attr-defined]
    error.reason = reason  # type: ignore[attr-defined]
    return error


def is_retryable(exc: BaseException) -> bool:
    """True for a timeout or a refused/dropped connection (a GET may be sent again)."""
    return isinstance(exc, TransportError) and bool(getattr(exc, "retryable", False))


def timeout_parts(timeout: Any) -> tuple[float | None, float | None]:
    """``(connect, read)`` seconds from a requests ``timeout=`` value."""
    if isinstance(timeout, tuple):
        return (timeout[0], timeout[1]) if len(timeout) == 2 else (None, None)
    if isinstance(timeout, (int, float)):
        return float(timeout), float(timeout)
    return None, None


def _seconds(value: float | None) -> str:
    return "the timeout" if value is None else f"{value:g} s"


def map_request_error(exc: BaseException, *, url: str, what: str | None = None, timeout: Any = None,
                      client_cert: bool = False, hint: str = "") -> OAuth2Error:
    """The nb_oauth2 error for ``exc``, raised by requests while sending to ``url``.

    ``what`` names the request in the message (default ``"The request to <url>"``),
    ``timeout`` is the requests ``timeout=`` that was used, ``client_cert`` whether a
    TLS client certificate was presented, ``hint`` a next step (a sentence) for transport errors.
    An nb_oauth2 error is returned unchanged.
    """
    if isinstance(exc, OAuth2Error):
        return exc
    where = redact_url(url)
    what = what or f"The request to {where}"
    if isinstance(exc, _MALFORMED):
        return ConfigurationError(f"{what} cannot be sent: the URL or a header is malformed "
                                  f"({type(exc).__name__}); check {where[:120]!r}.")
    if is_tls_failure(exc):
        error: TLSError = tls_error(url, exc, client_cert=client_cert)
        error.retryable, error.reason = False, "tls"  # type: ignore[attr-defined]
        return error
    connect, read = timeout_parts(timeout)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return transport_error(f"{what} could not connect within {_seconds(connect)}.", retryable=True,
                               reason="timeout", hint=hint)
    if isinstance(exc, requests.Timeout):
        return transport_error(f"{what} did not answer within {_seconds(read)}.", retryable=True, reason="timeout",
                               hint=hint)
    if isinstance(exc, _DROPPED) or (isinstance(exc, OSError) and not isinstance(exc, requests.RequestException)):
        return transport_error(f"{what} failed: the connection was refused or dropped ({type(exc).__name__}).",
                               retryable=True, reason="connection", hint=hint)
    return transport_error(f"{what} failed ({type(exc).__name__}).", retryable=False, reason="other", hint=hint)


def map_oauthlib_error(exc: BaseException, *, url: str) -> OAuth2Error | None:
    """The nb_oauth2 error for an oauthlib error a plain ``OAuth2Session`` raised; None for others."""
    where = redact_url(url)
    if isinstance(exc, oauthlib_errors.InsecureTransportError):
        return InsecureTransportError(f"Refused to send the token over plain http to {where}; use https.")
    if isinstance(exc, (oauthlib_errors.TokenExpiredError, oauthlib_errors.InvalidTokenError)):
        return InvalidToken("The access token expired and the session cannot refresh it.", hint="Sign in again.",
                            url=where, error="invalid_token")
    if isinstance(exc, oauthlib_errors.OAuth2Error):  # e.g. invalid_grant during the session's own refresh
        return error_from_response({"error": exc.error, "error_description": exc.description},
                                   status=exc.status_code or None)
    return None
