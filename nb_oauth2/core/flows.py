"""One class per grant: ``start()`` says what the user must do, ``complete()`` returns a Token.

oauthlib's clients build every URI and body; :mod:`nb_oauth2.core.endpoint` sends
them; :mod:`nb_oauth2.core.callback` checks what comes back. Flows hold no UI.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from oauthlib.oauth2 import (
    BackendApplicationClient,
    LegacyApplicationClient,
    MobileApplicationClient,
    WebApplicationClient,
)
from oauthlib.oauth2.rfc8628.clients import DeviceClient

from .callback import Pending, check_callback
from .endpoint import ClientAuth, Endpoints, form_pairs
from .errors import (
    DeviceAccessDenied,
    DeviceCodeExpired,
    DeviceFlowError,
    IssuerMismatch,
    LoginCancelled,
    LoginTimeout,
    NoLoginInProgress,
    OAuth2Error,
    TransportError,
)
from .names import GRANT_ALIASES
from .providers import NOTEBOOK_ORIGIN, Provider
from .redact import MaskedStr, register_secret
from .token import Token
from .transport import loopback_http_allowed
from .urls import require_secure_url
from .warn import warn_user

__all__ = [
    "Step",
    "Flow",
    "AuthorizationCodeFlow",
    "ImplicitFlow",
    "PasswordFlow",
    "ClientCredentialsFlow",
    "DeviceFlow",
    "LegacyGrantWarning",
    "FLOWS",
]


class LegacyGrantWarning(UserWarning):
    """The implicit and password grants are deprecated by RFC 9700 (OAuth 2.0 Security BCP)."""


@dataclass(frozen=True)
class Step:
    """What the user must do to complete a login."""

    kind: str  # "redirect" | "device" | "password" | "none"
    authorization_url: str | None = None
    redirect_uri: str | None = None
    user_code: str | None = None
    verification_uri: str | None = None
    verification_uri_complete: str | None = None
    expires_in: float | None = None
    interval: float | None = None


class Flow:
    """Shared state of every grant: provider, client, scopes, the endpoint caller."""

    grant = ""

    def __init__(
        self,
        provider: Provider,
        client: ClientAuth,
        *,
        scope: Sequence[str] | None = None,
        endpoints: Endpoints | None = None,
    ) -> None:
        self.provider = provider
        self.client = client
        self.scope: tuple[str, ...] = tuple(scope) if scope is not None else tuple(provider.default_scopes)
        self.endpoints = endpoints or Endpoints(provider, client)

    @property
    def scope_string(self) -> str:
        return self.provider.scope_separator.join(self.scope)

    def start(self) -> Step:
        return Step(kind="none")

    def _token(self, params: dict[str, str]) -> Token:
        return self.endpoints.token(params, requested_scope=self.scope or None)

    def refetch(self) -> Token | None:
        """A new token without the user (client credentials); None when impossible."""
        return None


class _RedirectFlow(Flow):
    """Common part of the two browser-redirect grants (code and implicit)."""

    response_type = "code"

    def __init__(self, provider: Provider, client: ClientAuth, *, redirect_uri: str,
                 scope: Sequence[str] | None = None, endpoints: Endpoints | None = None) -> None:
        super().__init__(provider, client, scope=scope, endpoints=endpoints)
        self.redirect_uri = require_secure_url(redirect_uri, "redirect URI")  # https, or http to loopback (RFC 9700)
        self._pending: Pending | None = None
        self._used_states: set[str] = set()
        self._lock = threading.Lock()

    @property
    def pending(self) -> bool:
        return self._pending is not None

    @property
    def expected_state(self) -> str | None:
        """The ``state`` the pending link expects back (None when no link is pending)."""
        pending = self._pending
        return pending.state if pending is not None else None

    def _new_pending(self, **extra: str | None) -> Pending:
        if self._pending is not None:  # a restarted login retires the old link (case 9)
            self._used_states.add(self._pending.state)
        pending = Pending(
            state=secrets.token_urlsafe(24),
            redirect_uri=self.redirect_uri,
            issuer=self.provider.issuer,
            require_iss=self.provider.authorization_response_iss,
            response_type=self.response_type,
            **extra,
        )
        self._pending = pending
        return pending

    def _authorization_url(self, client, **params) -> str:
        """oauthlib builds the link; a browser-relative endpoint (JupyterHub proxy) stays relative."""
        endpoint = self.provider.endpoint("authorization")
        base = NOTEBOOK_ORIGIN if endpoint.startswith("/") else ""
        with loopback_http_allowed():  # oauthlib's transport check, widened for this call only
            url = client.prepare_request_uri(base + endpoint, redirect_uri=self.redirect_uri,
                                             scope=self.scope_string or None, **params)
        return url[len(base):]

    def _take_pending(self, text: str):
        """Validate ``text`` and consume the pending login; nothing changes on error."""
        with self._lock:
            result = check_callback(text, self._pending, used_states=frozenset(self._used_states))
            pending = self._pending
            if pending is None:
                raise NoLoginInProgress("There is no matching login in progress for this redirect.",
                                        hint="Run the login again for a new sign-in link.")
            self._used_states.add(pending.state)
            self._pending = None
            return result, pending


class AuthorizationCodeFlow(_RedirectFlow):
    """Authorization code grant with PKCE (S256 by default) and OIDC nonce."""

    grant = "authorization_code"

    def __init__(self, provider: Provider, client: ClientAuth, *, redirect_uri: str,
                 scope: Sequence[str] | None = None, endpoints: Endpoints | None = None,
                 pkce: str | None = "S256") -> None:
        super().__init__(provider, client, redirect_uri=redirect_uri, scope=scope, endpoints=endpoints)
        self.pkce = pkce
        self._oauthlib = WebApplicationClient(client.client_id)

    def start(self) -> Step:
        verifier = self._oauthlib.create_code_verifier(64) if self.pkce else None
        register_secret(verifier)
        nonce = secrets.token_urlsafe(16) if "openid" in self.scope else None
        pending = self._new_pending(code_verifier=verifier, nonce=nonce)
        extra = dict(self.provider.extra_authorization_params)
        if nonce:
            extra["nonce"] = nonce
        if verifier:
            extra["code_challenge"] = self._oauthlib.create_code_challenge(verifier, self.pkce)
            extra["code_challenge_method"] = self.pkce
        url = self._authorization_url(self._oauthlib, state=pending.state, **extra)
        return Step(kind="redirect", authorization_url=url, redirect_uri=self.redirect_uri)

    def complete(self, redirect_url_or_code: str) -> Token:
        """Check the pasted redirect (or bare code with PKCE), then make exactly one token request."""
        redirect_url_or_code = MaskedStr(redirect_url_or_code)  # it holds the code (case 51)
        result, pending = self._take_pending(redirect_url_or_code)
        body = MaskedStr(self._oauthlib.prepare_request_body(
            code=result.code, redirect_uri=pending.redirect_uri, code_verifier=pending.code_verifier,
            include_client_id=True,
        ))
        token = self._token(form_pairs(body))
        _check_id_token_nonce(token, pending.nonce)
        return token


class ImplicitFlow(_RedirectFlow):
    """Implicit grant (legacy, opt-in): the token arrives in the URL fragment."""

    grant = "implicit"
    response_type = "token"

    def __init__(self, provider: Provider, client: ClientAuth, *, redirect_uri: str,
                 scope: Sequence[str] | None = None, endpoints: Endpoints | None = None) -> None:
        warn_user(
            "The implicit grant is deprecated by RFC 9700 (tokens in URLs leak through history and "
            "referrers); prefer the authorization code grant with PKCE.",
            LegacyGrantWarning
        )
        super().__init__(provider, client, redirect_uri=redirect_uri, scope=scope, endpoints=endpoints)
        self._oauthlib = MobileApplicationClient(client.client_id)

    def start(self) -> Step:
        pending = self._new_pending()
        url = self._authorization_url(self._oauthlib, state=pending.state)
        return Step(kind="redirect", authorization_url=url, redirect_uri=self.redirect_uri)

    def complete(self, redirect_url: str) -> Token:
        """Read the token from the fragment, only after the state matched (case 5)."""
        redirect_url = MaskedStr(redirect_url)  # it holds the access token (case 51)
        result, _ = self._take_pending(redirect_url)
        return Token.from_response(result.fragment_params or {})


class PasswordFlow(Flow):
    """Resource owner password grant (legacy, opt-in)."""

    grant = "password"

    def __init__(self, provider: Provider, client: ClientAuth, *, scope: Sequence[str] | None = None,
                 endpoints: Endpoints | None = None) -> None:
        warn_user(
            "The password grant is deprecated by RFC 9700 (the app sees the user's password); "
            "use it only where the provider offers nothing else.",
            LegacyGrantWarning
        )
        super().__init__(provider, client, scope=scope, endpoints=endpoints)
        self._oauthlib = LegacyApplicationClient(client.client_id)
        self._refetch: Callable[[], Token] | None = None

    def start(self) -> Step:
        return Step(kind="password")

    def complete(self, username: str, password: str) -> Token:
        password = MaskedStr(password)  # what a verbose traceback shows of the argument (case 51)
        register_secret(password)
        params = form_pairs(self._oauthlib.prepare_request_body(
            username=username, password=password, scope=self.scope_string or None, include_client_id=True,
        ))
        token = self._token(params)
        self._refetch = lambda: self._token(params)  # kept in kernel memory only
        return token

    def refetch(self) -> Token | None:
        return self._refetch() if self._refetch else None

    def forget_password(self) -> None:
        self._refetch = None


class ClientCredentialsFlow(Flow):
    """Client credentials grant: no user; re-fetched when the token expires."""

    grant = "client_credentials"

    def __init__(self, provider: Provider, client: ClientAuth, *, scope: Sequence[str] | None = None,
                 endpoints: Endpoints | None = None) -> None:
        super().__init__(provider, client, scope=scope, endpoints=endpoints)
        self._oauthlib = BackendApplicationClient(client.client_id)

    def complete(self) -> Token:
        body = self._oauthlib.prepare_request_body(scope=self.scope_string or None, include_client_id=True)
        return self._token(form_pairs(body))

    refetch = complete


class DeviceFlow(Flow):
    """Device authorization grant (RFC 8628) with the polling rules of SECURITY_CASES 24-27."""

    grant = "device_code"
    default_interval = 5.0

    def __init__(self, provider: Provider, client: ClientAuth, *, scope: Sequence[str] | None = None,
                 endpoints: Endpoints | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(provider, client, scope=scope, endpoints=endpoints)
        self._oauthlib = DeviceClient(client.client_id)
        self._clock = clock
        self._device: dict | None = None
        self.interval = self.default_interval
        self.polls = 0

    def start(self) -> Step:
        params = {"client_id": self.client.client_id}
        if self.scope:
            params["scope"] = self.scope_string
        data = self.endpoints.device_authorization(params)
        self._device = data
        self.interval = _positive(data.get("interval"), self.default_interval)
        expires_in = _positive(data.get("expires_in"), 600.0)
        self._deadline = self._clock() + expires_in
        return Step(
            kind="device", user_code=str(data["user_code"]),
            verification_uri=str(data.get("verification_uri") or data.get("verification_url")),
            verification_uri_complete=data.get("verification_uri_complete"),
            expires_in=expires_in, interval=self.interval,
        )

    def complete(self, cancel: threading.Event | None = None, *, timeout: float | None = None) -> Token:
        """Poll until approved; wait on ``cancel`` so Cancel ends the wait at once.

        ``timeout``: give up after this many seconds (:class:`LoginTimeout`), before the
        code's own expiry. Ctrl-C (the notebook's Stop button) ends the wait at once too;
        either way the device code is dropped, so a later poll cannot complete it.
        """
        if self._device is None:
            raise NoLoginInProgress("Start the device login first.")
        cancel = cancel or threading.Event()
        give_up = None if timeout is None else self._clock() + timeout
        body = form_pairs(self._oauthlib.prepare_request_body(
            self._device["device_code"], include_client_id=True))
        try:
            while True:
                wait = self.interval if give_up is None else max(0.0, min(self.interval, give_up - self._clock()))
                if cancel.wait(wait):
                    raise LoginCancelled("The device login was cancelled.")
                if self._clock() >= self._deadline:
                    raise DeviceCodeExpired("The user code expired before it was approved.",
                                            hint="Start the device login again.")
                if give_up is not None and self._clock() >= give_up:
                    raise LoginTimeout(f"The device login was not approved within timeout={timeout:g} s.",
                                       hint="Start it again, or pass a larger timeout=.")
                token = self._poll_once(body)
                if token is not None:
                    return token
        finally:
            self._device = None

    def _poll_once(self, body: dict[str, str]) -> Token | None:
        self.polls += 1
        try:
            return self._token(body)
        except TransportError:
            self.interval *= 2  # case 27: back off, not fatal
            return None
        except OAuth2Error as exc:
            code = exc.error
            if code == "authorization_pending":
                return None
            if code == "slow_down":
                self.interval += 5  # case 25: cumulative
                return None
            self._device = None
            if code == "expired_token":
                raise DeviceCodeExpired("The user code expired.", hint="Start the device login again.",
                                        error=code) from None
            if code == "access_denied":
                raise DeviceAccessDenied("The device login was denied at the provider.", error=code) from None
            if isinstance(exc, DeviceFlowError):
                raise
            summary = exc.summary[:1].lower() + exc.summary[1:]
            raise DeviceFlowError(f"The device login stopped: {summary}", hint=exc.hint, error=code,
                                  status=exc.status) from None


def _check_id_token_nonce(token: Token, nonce: str | None) -> None:
    """OIDC: the id_token must echo this login's nonce (replay / mix-up check).

    Only the claim is compared; signature validation is the provider SDK's job.
    """
    if not nonce or not token.id_token:
        return
    try:
        payload = token.id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise IssuerMismatch("The id_token in the token response is not a JWT; refusing it.") from None
    if claims.get("nonce") != nonce:
        raise IssuerMismatch("The id_token's nonce does not match this login (replayed or mixed-up response).")


_FLOW_FOR_GRANT: dict[str, type[Flow]] = {
    flow.grant: flow for flow in (AuthorizationCodeFlow, ImplicitFlow, PasswordFlow, ClientCredentialsFlow, DeviceFlow)
}
#: every name :data:`~nb_oauth2.core.names.GRANT_ALIASES` knows -> its flow class
FLOWS: dict[str, type[Flow]] = {alias: _FLOW_FOR_GRANT[grant] for alias, grant in GRANT_ALIASES.items()}


def _positive(value: object, default: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default

