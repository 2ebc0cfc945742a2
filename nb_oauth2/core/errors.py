"""One exception tree for everything nb_oauth2 raises.

Every public function raises a subclass of :class:`OAuth2Error`, never a raw
oauthlib or requests exception. Messages say what happened and what to do
next; they never hold a token, code, password or client secret (callers pass
text through :mod:`nb_oauth2.core.redact` first).
"""

from __future__ import annotations

import html
from typing import Iterable, Mapping

import requests

from .redact import snippet

__all__ = [
    "OAuth2Error",
    "ConfigurationError",
    "InsecureTransportError",
    "DiscoveryError",
    "SecretOnCommandLine",
    "UnsafeURL",
    "CallbackError",
    "InvalidCallbackURL",
    "StateMismatch",
    "IssuerMismatch",
    "NoLoginInProgress",
    "AuthorizationDenied",
    "TokenEndpointError",
    "InvalidClient",
    "InvalidGrant",
    "InvalidScope",
    "UnexpectedTokenResponse",
    "UnsupportedTokenType",
    "ReauthRequired",
    "DeviceFlowError",
    "DeviceCodeExpired",
    "DeviceAccessDenied",
    "LoginCancelled",
    "LoginTimeout",
    "TransportError",
    "TLSError",
    "ClientCertificateError",
    "CertificateFileError",
    "CertificateKeyMismatch",
    "CertificateExpired",
    "KeyPassphraseError",
    "CertificateRejected",
    "ServerCertificateUntrusted",
    "StoreError",
    "InsecureStoreError",
    "LoopbackPortBusy",
    "ResumeMismatch",
    "SecretInResumeState",
    "APIError",
    "InsufficientScope",
    "InvalidToken",
    "RateLimited",
    "UnexpectedContentType",
    "PaginationError",
    "UnsafeNextLink",
    "ResultTooLarge",
]  # the public error tree, re-exported by nb_oauth2; error_from_response is imported by name


def sentence(text: str) -> str:
    """``text`` as one sentence: capitalised, ending in ``.``, ``!`` or ``?`` (no ``.;`` or ``..`` joins)."""
    text = " ".join(str(text).split()).rstrip(" ;:,")
    if not text:
        return text
    if text[-1] not in ".!?…":
        text += "."
    return text[0].upper() + text[1:]


class OAuth2Error(Exception):
    """Root of every nb_oauth2 error.

    ``error`` is the RFC error code when the server sent one, ``description``
    its (HTML-escaped) ``error_description``, ``uri`` its ``error_uri`` and
    ``status`` the HTTP status. The repr shows the class and the code only.
    """

    default_message = "OAuth 2 error."
    #: keyword-only attributes a branch of the tree adds (APIError: ``url``); None unless given
    extra_fields: tuple[str, ...] = ()

    def __init__(
        self,
        message: str | None = None,
        *,
        error: str | None = None,
        description: str | None = None,
        uri: str | None = None,
        status: int | None = None,
        hint: str | None = None,
        **extra: str | None,
    ) -> None:
        unknown = sorted(set(extra) - set(self.extra_fields))
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments: {', '.join(unknown)}")
        for name in self.extra_fields:
            setattr(self, name, extra.get(name))
        self.error = error
        self.description = html.escape(description) if description else None
        self.uri = uri
        self.status = status
        self.hint = sentence(hint) if hint else None
        text = message or self.default_message
        super().__init__(f"{text} {self.hint}" if self.hint else text)

    @property
    def message(self) -> str:
        """The whole text: what happened, then the hint (as ``str()``)."""
        return str(self.args[0]) if self.args else self.default_message

    @property
    def summary(self) -> str:
        """What happened, without the hint."""
        text = self.message
        if self.hint and text.endswith(" " + self.hint):
            return text[: -len(self.hint) - 1]
        return text

    def __repr__(self) -> str:
        code = f"error={self.error!r}" if self.error else ""
        return f"{type(self).__name__}({code})"


# -- configuration -----------------------------------------------------------


class ConfigurationError(OAuth2Error):
    """A profile, provider or client registration is missing or wrong."""


class InsecureTransportError(ConfigurationError):
    """A plain-http URL for a host that is not loopback."""


class DiscoveryError(ConfigurationError):
    """An OIDC / RFC 8414 discovery document could not be read or is invalid."""


class SecretOnCommandLine(ConfigurationError):
    """A secret was typed where IPython keeps history (a magic line or a cell)."""


class UnsafeURL(ConfigurationError):
    """A URL that parsers read differently or that carries userinfo (cases 46, 47): never sent to."""


# -- the redirect the user pastes back (or the loopback catcher receives) ----


class CallbackError(OAuth2Error):
    """The redirect URL does not complete the pending login."""


class InvalidCallbackURL(CallbackError):
    """What was pasted is not a redirect URL."""


class StateMismatch(CallbackError):
    """The ``state`` in the redirect is not the one this login sent (CSRF)."""


class IssuerMismatch(CallbackError):
    """The redirect came from another provider or path (mix-up attack)."""


class NoLoginInProgress(CallbackError):
    """No pending login matches this redirect (already used, or from an old run)."""


class AuthorizationDenied(OAuth2Error):
    """The user or the provider refused the authorization request."""


# -- token endpoint ----------------------------------------------------------


class TokenEndpointError(OAuth2Error):
    """The token endpoint answered with an error."""


class InvalidClient(TokenEndpointError):
    """Client authentication failed: check the client id and secret."""


class InvalidGrant(TokenEndpointError):
    """The code, refresh token or credentials were rejected."""


class InvalidScope(TokenEndpointError):
    """The requested scope is invalid or not allowed for this client."""


class UnexpectedTokenResponse(TokenEndpointError):
    """The token endpoint's answer is not a usable token response."""


class UnsupportedTokenType(TokenEndpointError):
    """The token type is not Bearer; nb_oauth2 cannot use it."""


class ReauthRequired(OAuth2Error):
    """The session can no longer refresh itself: sign in again."""


# -- device authorization (RFC 8628) -------------------------------------------


class DeviceFlowError(OAuth2Error):
    """The device authorization flow stopped."""


class DeviceCodeExpired(DeviceFlowError):
    """The user code expired before the user approved it."""


class DeviceAccessDenied(DeviceFlowError):
    """The user denied the device authorization request."""


class LoginCancelled(OAuth2Error):
    """The login was cancelled (Cancel button, interrupt or timeout)."""


class LoginTimeout(LoginCancelled):
    """The user did not finish the login within the ``timeout=`` given."""


# -- transport -----------------------------------------------------------------


class TransportError(OAuth2Error, requests.RequestException):
    """A network failure: connection refused, timeout, broken TLS.

    Also a ``requests.RequestException``, so code written for requests keeps working.
    """


class TLSError(TransportError):
    """TLS failed: certificate verification or client certificate problems."""


# -- TLS client certificates (RFC 8705) ---------------------------------------


class ClientCertificateError(TLSError, ConfigurationError):
    """The client certificate or its key cannot be used (checked before any request); ``path``: which file."""

    extra_fields = ("path",)
    path: str | None


class CertificateFileError(ClientCertificateError):
    """A certificate or key file is missing, unreadable or holds no PEM of the right kind."""


class CertificateKeyMismatch(ClientCertificateError):
    """The private key does not belong to the certificate."""


class CertificateExpired(ClientCertificateError):
    """The client certificate is expired (or not valid yet)."""


class KeyPassphraseError(ClientCertificateError):
    """The private key is encrypted and the passphrase is missing or wrong."""


class CertificateRejected(TLSError):
    """The server refused the client certificate during the TLS handshake."""


class ServerCertificateUntrusted(TLSError):
    """The server's certificate could not be verified (unknown CA, wrong host, expired)."""


# -- token stores and the loopback catcher ------------------------------------


class StoreError(ConfigurationError):
    """The token store cannot be read or written (permissions, disk, keyring)."""


class InsecureStoreError(StoreError):
    """The store's directory or file is a symlink or readable by other users (case 40)."""


class LoopbackPortBusy(ConfigurationError):
    """The fixed loopback port is taken: use port=0, or paste the redirect back."""


# -- resumable Parquet pulls (to_parquet(resume=True)) ----------------------------


class ResumeMismatch(ConfigurationError):
    """``resume=True`` found a saved pull of another URL or other options for this target."""


class SecretInResumeState(ConfigurationError):
    """A URL to be saved for ``resume=True`` carries a token or another secret."""


# -- protected resources ---------------------------------------------------------


class APIError(OAuth2Error):
    """A protected API answered with something we cannot use; ``url``: the request's URL."""

    extra_fields = ("url",)
    url: str | None


class InvalidToken(APIError):
    """401 invalid_token even after one refresh: sign in again."""


class InsufficientScope(APIError):
    """403 insufficient_scope: sign in again asking for the named scope."""


class RateLimited(APIError):
    """429 persisted past the retry budget."""


class UnexpectedContentType(APIError):
    """The API answered HTML or other non-JSON content."""


class PaginationError(APIError):
    """Pagination looped (a repeated next URL or cursor) or hit a page cap."""


class UnsafeNextLink(PaginationError):
    """A next link points to another origin or downgrades to http."""


class ResultTooLarge(APIError):
    """A page or the whole result exceeded the byte or row cap."""


_BY_CODE: Mapping[str, type[OAuth2Error]] = {
    "invalid_client": InvalidClient,
    "unauthorized_client": InvalidClient,
    "incorrect_client_credentials": InvalidClient,  # GitHub
    "invalid_grant": InvalidGrant,
    "bad_verification_code": InvalidGrant,  # GitHub
    "bad_refresh_token": InvalidGrant,  # GitHub
    "invalid_scope": InvalidScope,
    "access_denied": AuthorizationDenied,
    "expired_token": DeviceCodeExpired,
    "unsupported_token_type": TokenEndpointError,
}

_NEXT_STEP: Mapping[type[OAuth2Error], str] = {
    InvalidClient: "Check the client id and secret registered for this profile.",
    InvalidGrant: "Start the login again.",
    InvalidScope: "Ask for scopes the provider allows for this client.",
    AuthorizationDenied: "Sign in again and approve the request.",
    DeviceCodeExpired: "Start the device login again.",
}


def error_from_response(
    data: Mapping[str, object],
    *,
    status: int | None = None,
    context: str = "token endpoint",
    default: type[OAuth2Error] = TokenEndpointError,
    secrets: Iterable[str] = (),
    next_step: str | None = None,
) -> OAuth2Error:
    """Map an RFC 6749 error body (``{"error": ..., ...}``) to the matching class.

    Everything the server wrote (``error``, ``error_description``, ``error_uri``) is
    redacted against ``secrets`` — the secrets of the request that caused it — and the
    registered ones before it reaches the exception's str, repr or args (case 52): some
    servers echo the request in their error text. The message is one sentence (what the
    server answered, with its description); the hint, another, is ``next_step`` or the
    class's default advice.
    """
    secrets = tuple(secrets)
    code = snippet(data.get("error") or "unknown_error", 80, also=secrets)
    cls = _BY_CODE.get(code, default)
    raw_description = data.get("error_description")
    description = snippet(raw_description, 200, also=secrets) if raw_description else None
    uri = snippet(data["error_uri"], 200, also=secrets) if data.get("error_uri") else None
    if issubclass(cls, AuthorizationDenied):
        lead = f"Authorization denied by the {context} ({code!r}{f', HTTP {status}' if status else ''})"
    else:
        lead = f"The {context} answered {code!r}{f' (HTTP {status})' if status else ''}"
    if description:
        lead += f": {html.escape(description)}"
    return cls(sentence(lead), error=code, description=description, uri=uri, status=status,
               hint=next_step or _NEXT_STEP.get(cls))
