"""Calls to the authorization server's back-channel endpoints.

oauthlib builds every request body; this module sends it with a timeout,
authenticates the client the way the provider wants, parses the answer
tolerantly and maps every failure to the package's error tree (SECURITY_CASES
10-16, 23).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode

import requests

from .errors import (
    ConfigurationError,
    TokenEndpointError,
    UnexpectedTokenResponse,
    error_from_response,
)
from .providers import Provider
from .redact import MaskedForm, MaskedStr, register_secret, snippet
from .http_errors import map_request_error
from .certificates import ClientCertificate, load_client_certificate
from .tls import mount_client_cert
from .token import Token
from .urls import require_secure_url
from .warn import warn_user

__all__ = ["ClientAuth", "Endpoints", "ScopeChangedWarning", "DEFAULT_TIMEOUT", "TLS_AUTH_METHODS"]

log = logging.getLogger(__name__)

#: (connect, read) seconds for every back-channel call (case 16)
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)

#: RFC 8705 2: the client is authenticated by its TLS certificate; client_id goes in the body
TLS_AUTH_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")

#: form fields that are no secret (everything else a client sends may be one: code, verifier, tokens, ...)
_PUBLIC_PARAMS = frozenset({"grant_type", "scope", "redirect_uri", "client_id", "token_type_hint", "response_type",
                            "code_challenge_method", "username"})


class ScopeChangedWarning(UserWarning):
    """The provider granted other scopes than were asked for (RFC 6749 3.3)."""


@dataclass(frozen=True)
class ClientAuth:
    """A client registration: id, optional secret, how to authenticate, TLS cert."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    #: None: take the provider's method ("none" for a client without secret)
    method: str | None = None
    #: TLS client certificate: path to one PEM or (cert, key) paths
    cert: str | tuple[str, str] | None = None

    def __post_init__(self) -> None:
        register_secret(self.client_secret)

    @property
    def is_public(self) -> bool:
        return not self.client_secret

    def resolve_method(self, provider: Provider) -> str:
        """The client authentication method for ``provider``'s token endpoint.

        An explicit ``method`` wins but must be one the server advertises (when it
        advertises any); otherwise the client's credentials and the server's list decide:
        mutual TLS for a certificate without secret, ``none`` for a public client,
        ``client_secret_basic`` when offered (RFC 6749 2.3.1), else ``client_secret_post``.
        """
        offered = provider.token_endpoint_auth_methods
        if self.method:
            if offered and self.method not in offered:
                raise ConfigurationError(
                    f"token_endpoint_auth_method={self.method!r} is not one the server offers "
                    f"({', '.join(offered)}); choose one of those.")
            return self.method
        if self.cert and self.is_public:  # a certificate and no secret: mutual TLS (RFC 8705)
            listed = [m for m in (provider.token_endpoint_auth_method, *offered) if m in TLS_AUTH_METHODS]
            return listed[0] if listed else "tls_client_auth"
        if self.is_public:
            return "none" if provider.token_endpoint_auth_method.startswith("client_secret") or not offered \
                or "none" in offered else provider.token_endpoint_auth_method
        for method in (provider.token_endpoint_auth_method, "client_secret_basic", "client_secret_post"):
            if method.startswith("client_secret_") and (not offered or method in offered):
                return method
        return provider.token_endpoint_auth_method

    def __repr__(self) -> str:
        secret = "set" if self.client_secret else "none"
        return f"ClientAuth(client_id={self.client_id!r}, secret={secret}, method={self.method!r})"


class Endpoints:
    """Sends form posts to one provider's token-side endpoints for one client."""

    def __init__(
        self,
        provider: Provider,
        client: ClientAuth,
        *,
        http: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        verify: bool | str = True,
    ) -> None:
        self.provider = provider
        self.client = client
        self.http = http or requests.Session()
        self.timeout = timeout
        self.verify = verify
        self.calls = 0
        self._quirks = _token_request_hooks(provider)

    # -- helpers -------------------------------------------------------------

    def url(self, kind: str) -> str:
        """Endpoint URL, preferring the RFC 8705 mTLS alias when a cert is used."""
        alias = self.provider.mtls_endpoint_aliases.get(f"{kind}_endpoint")
        if self.client.cert and alias:
            return require_secure_url(alias, f"{kind} endpoint")
        return self.provider.endpoint(kind)

    def _authenticate(self, params: Mapping[str, str]) -> tuple[MaskedForm, Any]:
        """Add client authentication to ``params``; return (params, requests auth)."""
        method = self.client.resolve_method(self.provider)
        params = MaskedForm(params)
        if method == "client_secret_basic" and self.client.client_secret:
            params.pop("client_id", None)
            params.pop("client_secret", None)
            return params, requests.auth.HTTPBasicAuth(self.client.client_id, self.client.client_secret)
        params["client_id"] = self.client.client_id
        if method in TLS_AUTH_METHODS and not self.client.cert:
            raise ConfigurationError(f"Client authentication {method!r} needs a client certificate: pass "
                                     "cert=(cert_path, key_path) or set cert/key in the profile.")
        if method == "client_secret_post" and self.client.client_secret:
            params["client_secret"] = self.client.client_secret
        else:
            params.pop("client_secret", None)
        return params, None

    def post(self, kind: str, params: Mapping[str, str], *, authenticate: bool = True) -> requests.Response:
        """POST a form to the named endpoint; transport failures become TransportError."""
        url = self.url(kind)
        body, auth = self._authenticate(params) if authenticate else (MaskedForm(params), None)
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        data = MaskedStr(urlencode(body))  # masked in verbose tracebacks (case 51)
        for hook in self._quirks:
            url, headers, data = hook(url, headers, data)
            data = MaskedStr(data)
        certificate = self.client_certificate()
        if certificate is not None:  # presented on this endpoint's origin only (RFC 8705)
            mount_client_cert(self.http, url, certificate)
        self.calls += 1
        try:
            return self.http.post(
                url, data=data, headers=headers, auth=auth, timeout=self.timeout,
                verify=self.verify, allow_redirects=False,
            )
        except OSError as exc:  # requests' exceptions included: the package's one mapping (case 50)
            raise map_request_error(exc, url=url, what=f"The {kind} endpoint", timeout=self.timeout,
                                    client_cert=certificate is not None, hint="nothing was retried") from None

    def client_certificate(self) -> ClientCertificate | None:
        """The client's checked TLS certificate (loaded once; typed errors for bad files)."""
        if not self.client.cert:
            return None
        return load_client_certificate(self.client.cert)

    # -- token endpoint ---------------------------------------------------------

    def token(self, params: Mapping[str, str], *, previous: Token | None = None,
              requested_scope: tuple[str, ...] | None = None) -> Token:
        """Run one token request and return the Token (never retried: case 11)."""
        params = MaskedForm(params)  # what a verbose traceback shows of the argument (case 51)
        response = self.post("token", params)
        received = time.time()
        sent = self.request_secrets(params)
        data = parse_json_body(response, context="token endpoint", secrets=sent)
        if "error" in data:
            raise error_from_response(data, status=response.status_code, secrets=sent,
                                      next_step=self._next_step(str(data.get("error"))))
        if response.status_code >= 400:
            raise TokenEndpointError(
                f"The token endpoint answered HTTP {response.status_code} without an error code; restart the login.",
                status=response.status_code,
            )
        token = Token.from_response(data, received_at=received, previous=previous)
        _note_scope_change(requested_scope, token)
        log.debug("token received: %s, %s", token.fingerprint, token.describe_expiry())
        return token

    def device_authorization(self, params: Mapping[str, str]) -> dict[str, Any]:
        response = self.post("device_authorization", params)
        sent = self.request_secrets(params)
        data = parse_json_body(response, context="device authorization endpoint", secrets=sent)
        if "error" in data:
            raise error_from_response(data, status=response.status_code, context="device authorization endpoint",
                                      secrets=sent, next_step=self._next_step(str(data.get("error"))))
        for key in ("device_code", "user_code", "verification_uri"):
            if not data.get(key) and not (key == "verification_uri" and data.get("verification_url")):
                raise UnexpectedTokenResponse(
                    f"The device authorization response has no {key}; the provider may not support the device grant.",
                    status=response.status_code,
                )
        register_secret(str(data["device_code"]))
        return data

    def revoke(self, token: str, hint: str) -> requests.Response:
        return self.post("revocation", {"token": MaskedStr(token), "token_type_hint": hint})

    def request_secrets(self, params: Mapping[str, str]) -> tuple[str, ...]:
        """The secret values of a request (for redacting a server's echo of it: case 52)."""
        found = [str(v) for k, v in params.items() if k not in _PUBLIC_PARAMS and v]
        found += [self.client.client_secret] if self.client.client_secret else []
        return tuple(MaskedStr(v) for v in found)

    def _next_step(self, code: str) -> str | None:
        """For invalid_client: name the authentication method used and how to choose another."""
        if code not in ("invalid_client", "unauthorized_client"):
            return None
        method = self.client.resolve_method(self.provider)
        offered = self.provider.token_endpoint_auth_methods
        others = [m for m in offered if m != method] if offered else ["client_secret_basic", "client_secret_post"]
        return (f"the client authenticated with {method}; check the client id and secret, or, if they are right, "
                f"choose the method the client is registered for ({', '.join(others)}) with "
                "token_endpoint_auth_method= in the profile or NB_OAUTH2_<PROFILE>_TOKEN_ENDPOINT_AUTH_METHOD")


class _HookCollector:
    """Stands in for a session so provider quirks can register their hooks."""

    def __init__(self) -> None:
        self.hooks: dict[str, list] = {}

    def register_compliance_hook(self, kind: str, hook: Any) -> None:
        self.hooks.setdefault(kind, []).append(hook)


def _token_request_hooks(provider: Provider) -> list:
    """The provider's quirks for requests to its token-side endpoints (collected once per client)."""
    collector = _HookCollector()
    provider.apply_quirks(collector)
    return collector.hooks.get("access_token_request", [])


def form_pairs(body: str) -> MaskedForm:
    """The fields of an oauthlib-built form body (masked in reprs and verbose tracebacks)."""
    return MaskedForm(parse_qsl(body, keep_blank_values=True))


def parse_json_body(response: requests.Response, *, context: str, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """The response's JSON object (or form-encoded pairs), else a typed error (case 10).

    The result's repr is masked: a token response (or a server's echo of the request)
    must not show in a verbose traceback (case 51).
    """
    content_type = response.headers.get("Content-Type", "")
    text = MaskedStr(response.text)
    if "application/x-www-form-urlencoded" in content_type or (
        "text/plain" in content_type and "=" in text and not text.lstrip().startswith(("{", "<"))
    ):
        return MaskedForm(parse_qsl(text, keep_blank_values=True))
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        hint = "restart the login" if response.status_code < 500 else "the server failed; restart the login"
        raise UnexpectedTokenResponse(
            f"The {context} answered HTTP {response.status_code} with "
            f"{content_type or 'no content type'}, not a JSON object: {snippet(text, also=secrets)!r}; {hint}.",
            status=response.status_code,
        )
    return MaskedForm(data)


def _note_scope_change(requested: tuple[str, ...] | None, token: Token) -> None:
    """Record and warn once when the granted scope differs (case 15)."""
    if requested is None or token.scope is None:
        return
    if set(requested) != set(token.scope):
        warn_user(
            f"The provider granted scope {' '.join(token.scope)!r} instead of {' '.join(requested)!r}; "
            "it is recorded on the session (session.token_info.scope).",
            ScopeChangedWarning
        )
