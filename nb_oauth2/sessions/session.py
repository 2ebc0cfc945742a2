"""The auto-refreshing session: an ``OAuth2Session`` that keeps itself signed in.

* renews ``min(leeway, lifetime / 2)`` seconds before expiry, so a 5 s token is
  not renewed on every use (SECURITY_CASES 48), under a lock where a thread that
  waited uses the token another thread installed: many threads crossing an
  expiry cause one token request (cases 19, 49);
* re-reads a shared store under its cross-process lock first (case 20);
* re-fetches client-credentials (and password) tokens that cannot refresh; uses a
  token nothing can renew (implicit grant) until it really expires (case 48);
* on 401 ``invalid_token`` renews once and retries once (case 28);
* commits a rotated refresh token before anything else uses it (case 18);
* turns ``invalid_grant`` on refresh into :class:`ReauthRequired` and purges
  the dead refresh token (case 17);
* default connect/read timeouts; failures mapped once by :mod:`nb_oauth2.core.http_errors`
  (timeouts and dropped connections are retryable ``TransportError``, case 50);
* ``revoke()`` (RFC 7009, case 23).

Users who want requests-oauthlib's own refresh styles (TokenExpiredError,
TokenUpdated, ``token_updater``) pass ``auto_refresh=False`` and the stock
keyword arguments; the stock code path then runs unchanged.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import requests
from requests_oauthlib import OAuth2Session

from ..core.endpoint import DEFAULT_TIMEOUT, ClientAuth, Endpoints, form_pairs
from ..core.errors import (
    InsecureTransportError,
    InvalidGrant,
    OAuth2Error,
    ReauthRequired,
    TransportError,
    UnsafeURL,
)
from ..core.challenges import parse_www_authenticate
from ..core.flows import Flow
from ..core.providers import Provider
from ..core.redact import redact, redact_url
from .store import MemoryStore, StoreError, TokenStore
from ..core.http_errors import is_retryable, map_request_error
from ..core.tls import ClientCertificate, bound_thumbprint, mount_client_cert
from ..core.token import DEFAULT_LEEWAY, Token, parse_leeway
from ..core.transport import loopback_http_allowed
from ..core.urls import checked_url
from ..core.warn import warn_user

__all__ = ["Session", "MaskedTokenDict"]


class MaskedTokenDict(dict):
    """The token dict requests-oauthlib users expect, with a masked repr."""

    def __repr__(self) -> str:
        return "{token: masked}"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        return "<code>{token: masked}</code>"


def _is_invalid_token(response: requests.Response) -> bool:
    """401 with ``error="invalid_token"``, or with no error code at all (RFC 6750 3.1)."""
    if response.status_code != 401:
        return False
    error = parse_www_authenticate(response.headers.get("WWW-Authenticate")).get("error")
    return error in (None, "invalid_token")


class Session(OAuth2Session):
    """A named, kernel-scoped OAuth 2 session that refreshes itself."""

    def __init__(
        self,
        *,
        name: str,
        provider: Provider,
        client: ClientAuth,
        flow: Flow | None = None,
        token: Token | None = None,
        store: TokenStore | None = None,
        store_key: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        leeway: float = DEFAULT_LEEWAY,
        auto_refresh: bool = True,
        endpoints: Endpoints | None = None,
        verify: bool | str | None = None,
        cert_hosts: Sequence[str] = (),
        **oauth2session_kwargs: Any,
    ) -> None:
        super().__init__(client_id=client.client_id, **oauth2session_kwargs)
        self.name = name
        self.provider = provider
        self.client_auth = client
        self.flow = flow
        self.timeout = timeout
        self.leeway = parse_leeway(leeway)  # renew min(leeway, lifetime / 2) s before expiry
        self.auto_refresh = auto_refresh
        self.endpoints = endpoints or (flow.endpoints if flow else Endpoints(
            provider, client, timeout=timeout, verify=True if verify is None else verify))
        self.store = store if store is not None else MemoryStore()
        self.store_key = store_key or name
        # RFC 8705: the client certificate is not set session-wide (requests would present it to every
        # host); _cert_for() mounts it on the origins that need it.
        self.cert = None
        self.cert_hosts = tuple(cert_hosts)
        if verify is not None:
            self.verify = verify
        self.token_requests = 0
        self._renew_lock = threading.RLock()
        self._token: Token | None = None
        self._unrenewable: Token | None = None  # the token nothing could renew (used while valid)
        self._signed_out = False
        self._listeners: list[Callable[[Token], None]] = []
        if token is not None:
            self._commit(token)

    # -- token state -------------------------------------------------------------

    @property
    def token_info(self) -> Token | None:
        """The current token (masked repr), or None before login."""
        return self._token

    @property
    def is_authorized(self) -> bool:  # type: ignore[override]
        return self._token is not None

    @property
    def token(self) -> MaskedTokenDict | None:  # type: ignore[override]
        raw = getattr(self._client, "token", None)
        return MaskedTokenDict(raw) if raw else None

    @token.setter
    def token(self, value: dict | None) -> None:
        self._client.token = value
        self._client.populate_token_attributes(value or {})

    def on_token(self, callback: Callable[[Token], None]) -> None:
        """Call ``callback(token)`` after every new token (login, refresh, re-fetch)."""
        self._listeners.append(callback)

    def set_token(self, token: Token, *, persist: bool = True) -> None:
        """Install a token obtained by a flow (the end of a login).

        ``persist=False`` installs a token just read from the store without
        writing it back (a restore must not overwrite a newer token another
        kernel saved meanwhile).
        """
        with self._renew_lock:
            self._commit(token, persist=persist)

    def _install(self, token: Token) -> None:
        """Our immutable token, and the dict requests-oauthlib's own code paths read."""
        self._token = token
        self.token = token.to_oauthlib()

    def _commit(self, token: Token, *, persist: bool = True) -> None:
        """Memory first, then the store, then listeners (case 18)."""
        self._install(token)
        if persist:
            try:
                self.store.save(self.store_key, token.to_dict())
            except StoreError as exc:
                warn_user(f"The new token is kept in memory but could not be stored: {exc}", RuntimeWarning)
        for callback in list(self._listeners):
            callback(token)

    def forget(self) -> None:
        """Drop the token from memory and the store (logout without revocation)."""
        with self._renew_lock:
            self._signed_out = self._signed_out or self._token is not None
            self._token = None
            self._client.token = {}
            self._client.access_token = None
            self._client.refresh_token = None
            self.store.delete(self.store_key)
            if self.flow is not None and hasattr(self.flow, "forget_password"):
                self.flow.forget_password()

    # -- renewal -------------------------------------------------------------------

    def _not_signed_in(self) -> ReauthRequired:
        state = "was signed out (logout or revocation)" if self._signed_out else "is not signed in yet"
        return ReauthRequired(
            f"Session {self.name!r} {state}: finish the login above, or run nb_oauth2.login({self.name!r})."
        )

    def _current_token(self) -> Token:
        token = self._token
        if token is None:
            raise self._not_signed_in()
        if not token.is_expired(self.leeway):  # the margin scales with the lifetime (case 48)
            return token
        if token is self._unrenewable and token.is_valid():  # nothing can renew it: use it while valid
            return token
        return self._renew(token)

    def _renew(self, seen: Token | None, *, force: bool = False) -> Token:
        """Single-flight renewal decided by token identity (case 49).

        A thread that waited for the lock and finds another token than the one it saw
        uses that token, whatever its remaining life: one renewal per expiry, however
        short the lifetime. ``force`` (a 401, :meth:`refresh`) renews even a token that
        looks fresh. A token that cannot be renewed (implicit, no refresh token and no
        re-fetch) is returned while still valid (case 48), else :class:`ReauthRequired`.
        """
        with self._renew_lock:
            current = self._token
            if current is None:
                raise self._not_signed_in()
            if current is not seen and current.is_valid():
                return current
            with self.store.lock(self.store_key):
                adopted = self._adopt_stored(current)
                if adopted is not None and (not force or adopted.access_token != getattr(seen, "access_token", None)):
                    self._install(adopted)
                    return adopted
                new = self._obtain_new(current)
                if new is None:
                    if not force and current.is_valid():
                        self._unrenewable = current
                        return current
                    raise ReauthRequired(
                        f"The token of session {self.name!r} expired and cannot be refreshed (no refresh token); "
                        f"sign in again with nb_oauth2.login({self.name!r})."
                    )
                self._commit(new)
                return new

    def _adopt_stored(self, current: Token | None) -> Token | None:
        """A fresher token another process saved meanwhile (case 20)."""
        data = self.store.load(self.store_key)
        if not data:
            return None
        stored = Token.from_dict(data)
        if current is not None and stored.access_token == current.access_token:
            return None
        return None if stored.is_expired(self.leeway) else stored

    def _obtain_new(self, current: Token) -> Token | None:
        """A refreshed or re-fetched token; None when nothing can renew ``current``."""
        if current.refresh_token:
            return self._refresh_with(current)
        if self.flow is not None:
            token = self.flow.refetch()
            if token is not None:
                self.token_requests += 1
                return token
        return None

    def _refresh_with(self, current: Token) -> Token:
        params = form_pairs(self._client.prepare_refresh_body(refresh_token=current.refresh_token))
        for attempt in (1, 2):  # one retry on a dropped connection (case 21)
            try:
                self.token_requests += 1
                return self.endpoints.token(params, previous=current)
            except TransportError as exc:
                if attempt == 2 or not is_retryable(exc):  # a TLS failure is not retried
                    raise
            except InvalidGrant:
                self._purge_refresh_token(current)
                raise ReauthRequired(
                    f"The provider no longer accepts the refresh token of session {self.name!r} (revoked, expired, "
                    "or already rotated by another client). Sign in again.",
                    error="invalid_grant",
                ) from None
        raise AssertionError("unreachable")

    def _purge_refresh_token(self, current: Token) -> None:
        """Case 17: never try the dead refresh token again, in memory or on disk."""
        self._install(current.with_changes(refresh_token=None, expires_at=current.received_at))
        self.store.purge_refresh_token(self.store_key)

    def refresh(self) -> Token:
        """Renew the token now (refresh, or re-fetch for client credentials)."""
        return self._renew(self._token, force=True)

    # -- requests --------------------------------------------------------------------

    def request(self, method: str, url: str, data: Any = None, headers: Any = None,  # type: ignore[override]
                withhold_token: bool = False, client_id: str | None = None,
                client_secret: str | None = None, files: Any = None, **kwargs: Any) -> requests.Response:
        """Send with a fresh token; on 401 invalid_token renew once and retry once.

        The host is decided from ``url`` as requests sends it: userinfo or a URL that
        parsers read differently raises :class:`UnsafeURL` before anything is sent (cases 46, 47).
        """
        target = checked_url(url)
        kwargs.setdefault("timeout", self.timeout)
        if self.verify is not True:  # requests lets REQUESTS_CA_BUNDLE override Session.verify
            kwargs.setdefault("verify", self.verify)
        if not self.auto_refresh:
            self._cert_for(url, self._token)
            with loopback_http_allowed():  # requests-oauthlib's add_token: loopback http for this call only
                return super().request(method, url, data=data, headers=headers, withhold_token=withhold_token,
                                       client_id=client_id, client_secret=client_secret, files=files, **kwargs)
        if withhold_token:
            certificate = self._cert_for(url, None)
            try:
                return requests.Session.request(self, method, url, data=data, headers=headers, files=files, **kwargs)
            except requests.RequestException as exc:
                raise map_request_error(exc, url=url, what=f"{method} {redact_url(url)}",
                                        timeout=kwargs.get("timeout"), client_cert=certificate is not None) from None
        if not target.is_secure_or_loopback:
            raise InsecureTransportError(
                f"Refusing to send the token over plain http to {redact(url)[:80]!r}; use https."
            )
        token = self._current_token()
        response = self._send(method, url, token, data, headers, files, kwargs)
        if _is_invalid_token(response) and self._replayable(data, files):
            response.close()
            token = self._renew(token, force=True)
            response = self._send(method, url, token, data, headers, files, kwargs)
        return response

    # requests-oauthlib's own styles (fetch_token, refresh_token, authorization_url) on this session
    # accept loopback http as the package does; a plain OAuth2Session elsewhere is unaffected.
    def authorization_url(self, url: str, state: str | None = None, **kwargs: Any) -> tuple[str, str]:
        with loopback_http_allowed():
            return super().authorization_url(url, state, **kwargs)

    def fetch_token(self, token_url: str, *args: Any, **kwargs: Any) -> dict:
        with loopback_http_allowed():
            return super().fetch_token(token_url, *args, **kwargs)

    def refresh_token(self, token_url: str, *args: Any, **kwargs: Any) -> dict:  # type: ignore[override]
        with loopback_http_allowed():
            return super().refresh_token(token_url, *args, **kwargs)

    def _send(self, method: str, url: str, token: Token, data: Any, headers: Any, files: Any,
              kwargs: dict) -> requests.Response:
        merged = dict(headers or {})
        merged["Authorization"] = f"Bearer {token.access_token}"
        certificate = self._cert_for(url, token)
        try:
            return requests.Session.request(self, method, url, data=data, headers=merged, files=files, **kwargs)
        except requests.RequestException as exc:  # the package's one mapping (case 50)
            raise map_request_error(exc, url=url, what=f"{method} {redact_url(url)}", timeout=kwargs.get("timeout"),
                                    client_cert=certificate is not None) from None

    def _cert_for(self, url: str, token: Token | None) -> ClientCertificate | None:
        """Mount the client certificate on ``url``'s origin when that host needs it (RFC 8705).

        Needed: the token sent is certificate-bound (``cnf``), the origin is one of the
        provider's mTLS endpoint aliases, or the profile lists the host in ``cert_hosts``.
        """
        if not self.client_auth.cert or not url.lower().startswith("https://"):
            return None
        if not (token is not None and bound_thumbprint(token)) and not self._listed_for_cert(url):
            return None
        certificate = self.endpoints.client_certificate()
        if certificate is not None:
            mount_client_cert(self, url, certificate)
        return certificate

    def _listed_for_cert(self, url: str) -> bool:
        """Is ``url``'s host (as requests sends it) an mTLS alias or listed in ``cert_hosts``?"""
        target = checked_url(url)
        for entry in (*self.provider.mtls_endpoint_aliases.values(), *self.cert_hosts):
            is_url = "//" in entry
            try:
                listed = checked_url(entry if is_url else f"https://{entry}")
            except UnsafeURL:  # an entry that parsers read differently matches nothing
                continue
            any_port = not is_url and urlsplit(f"//{entry}").port is None  # a bare host name: every port
            if listed.host == target.host and (any_port or listed.port == target.port):
                return True
        return False

    @staticmethod
    def _replayable(data: Any, files: Any) -> bool:
        return files is None and (data is None or isinstance(data, (str, bytes, dict, list, tuple)))

    # -- revocation, status, data ---------------------------------------------------

    def revoke(self) -> bool:
        """RFC 7009: revoke refresh then access token; the local copy is wiped either way (case 23)."""
        with self._renew_lock:
            token = self._token
            self.forget()
        if token is None:
            return True
        if not self.provider.revocation_endpoint:
            warn_user(f"{self.provider.name} has no revocation endpoint; the token was wiped locally and "
                          "may remain valid until it expires.", RuntimeWarning)
            return False
        confirmed = True
        for value, hint in ((token.refresh_token, "refresh_token"), (token.access_token, "access_token")):
            if value:
                try:
                    confirmed &= self.endpoints.revoke(value, hint).status_code == 200
                except OAuth2Error:
                    confirmed = False
        if not confirmed:
            warn_user("The provider did not confirm the revocation; the token was wiped locally and may "
                          "remain valid until it expires.", RuntimeWarning)
        return confirmed

    def status(self) -> dict[str, Any]:
        token = self._token
        return {
            "name": self.name,
            "provider": self.provider.name,
            "grant": self.flow.grant if self.flow else None,
            "signed_in": token is not None,
            "scopes": " ".join(token.scope) if token and token.scope else "",
            "expires_in": token.expires_in() if token else None,
            "expiry": token.describe_expiry() if token else "not signed in",
            "fingerprint": token.fingerprint if token else "",
            "refreshable": bool(token and (token.refresh_token or (self.flow and self.flow.grant == "client_credentials"))),
        }

    def __repr__(self) -> str:
        token = self._token
        state = f"{token.fingerprint}, {token.describe_expiry()}" if token else "not signed in"
        return f"<nb_oauth2.Session {self.name!r} ({self.provider.name}): {state}>"

    def _repr_html_(self) -> str:
        import html

        return f"<code>{html.escape(repr(self))}</code>"

