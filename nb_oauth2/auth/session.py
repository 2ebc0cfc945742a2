"""The auto-refreshing session: an ``OAuth2Session`` that keeps itself signed in.

Its token, and every decision about renewing it, live in one
:class:`~nb_oauth2.auth.bearer_auth.BearerAuth` installed as ``session.auth``:
``get``/``request`` and a :class:`~nb_oauth2.frames.fetch.Fetcher` sending through this
session take the same path (renewal when due, single flight, the 401 retry: cases
17-20, 28, 48, 49). The session adds what is per request: the URL's origin is checked
as requests sends it (cases 46, 47), default connect/read timeouts, the client
certificate on the hosts that need it (RFC 8705), and failures mapped once by
:mod:`nb_oauth2.core.http_errors` (timeouts and dropped connections are retryable
``TransportError``, case 50). ``revoke()`` follows RFC 7009 (case 23). GETs revalidate what an
earlier run read (ETag / Last-Modified, :mod:`nb_oauth2.auth.http_cache`): an unchanged page comes
back 304 and its body from this session's cache (``http_cache=``; cleared by logout).

Users who want requests-oauthlib's own refresh styles (TokenExpiredError,
TokenUpdated, ``token_updater``) pass ``auto_refresh=False`` and the stock
keyword arguments; the stock code path then runs unchanged, reading the same token.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import requests
from requests_oauthlib import OAuth2Session

from ..core.endpoint import DEFAULT_TIMEOUT, ClientAuth, Endpoints, form_pairs
from ..core.errors import OAuth2Error, UnsafeURL
from ..core.flows import Flow
from ..core.http_errors import map_request_error
from ..core.providers import Provider
from ..core.redact import redact_url
from ..core.certificates import ClientCertificate
from ..core.tls import bound_thumbprint, mount_client_cert
from ..core.token import DEFAULT_LEEWAY, Token, parse_leeway
from ..core.transport import loopback_http_allowed
from ..core.urls import checked_url
from ..core.warn import warn_user
from .bearer_auth import BearerAuth
from .http_cache import HttpCache, make_http_cache, subject_of
from .store import TokenStore

__all__ = ["Session", "MaskedTokenDict"]


class MaskedTokenDict(dict):
    """The token dict requests-oauthlib users expect, with a masked repr."""

    def __repr__(self) -> str:
        return "{token: masked}"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        return "<code>{token: masked}</code>"


def _withheld(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """The auth of a ``withhold_token=True`` request: nothing attached (and no netrc)."""
    return request


def _kept_by_auth(name: str) -> property:
    """A Session attribute that is the auth object's (one copy of the renewal settings)."""
    return property(lambda self: getattr(self._bearer, name), lambda self, value: setattr(self._bearer, name, value))


class Session(OAuth2Session):
    """A named, kernel-scoped OAuth 2 session that refreshes itself."""

    name = _kept_by_auth("name")
    sign_in_call = _kept_by_auth("sign_in_call")
    store = _kept_by_auth("store")
    store_key = _kept_by_auth("store_key")
    leeway = _kept_by_auth("leeway")  # renew min(leeway, lifetime / 2) s before expiry
    token_requests = _kept_by_auth("token_requests")

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
        http_cache: bool | str | os.PathLike | None = None,
        **oauth2session_kwargs: Any,
    ) -> None:
        self._bearer = BearerAuth(name=name, refresh=self._refresh_grant, refetch=self._refetch, store=store,
                                  store_key=store_key, leeway=parse_leeway(leeway))
        super().__init__(client_id=client.client_id, **oauth2session_kwargs)
        self.provider = provider
        self.client_auth = client
        self.flow = flow
        self.timeout = timeout
        self.auto_refresh = auto_refresh
        self.endpoints = endpoints or (flow.endpoints if flow else Endpoints(
            provider, client, timeout=timeout, verify=True if verify is None else verify))
        # RFC 8705: the client certificate is not set session-wide (requests would present it to every
        # host); _cert_for() mounts it on the origins that need it.
        self.cert = None
        self.cert_hosts = tuple(cert_hosts)
        if verify is not None:
            self.verify = verify
        self._subject: tuple[Token | None, str] = (None, "")
        #: revalidation of GETs (None: off); ``http_cache=`` True/"memory" (default, or $NB_OAUTH2_HTTP_CACHE),
        #: "disk", a directory, or False
        self.http_cache: HttpCache | None = make_http_cache(http_cache, partition=self._cache_partition,
                                                            secrets=self._cache_secrets)
        if token is not None:
            self._bearer.set_token(token)

    @property
    def auto_refresh(self) -> bool:
        """True: the auth object sends and renews the token; False: requests-oauthlib's own code does."""
        return self.auth is self._bearer

    @auto_refresh.setter
    def auto_refresh(self, value: bool) -> None:
        self.auth = self._bearer if value else _withheld  # requests-oauthlib's own add_token attaches it

    # -- token state -------------------------------------------------------------

    @property
    def token_info(self) -> Token | None:
        """The current token (masked repr), or None before login."""
        return self._bearer.token

    @property
    def is_authorized(self) -> bool:
        return self._bearer.token is not None

    @property
    def access_token(self) -> str | None:  # type: ignore[override]
        token = self._bearer.token
        return token.access_token if token else None

    @property
    def token(self) -> MaskedTokenDict | None:  # type: ignore[override]
        """requests-oauthlib's token dict, made from :attr:`token_info` (masked repr)."""
        token = self._bearer.token
        return MaskedTokenDict(token.to_oauthlib()) if token else None

    @token.setter
    def token(self, value: dict | None) -> None:
        """requests-oauthlib's own code (``fetch_token``, its refresh) and users set the token as a dict."""
        self._bearer.install(Token.from_oauthlib(value) if value else None)
        self._sync_oauthlib_client()

    def _sync_oauthlib_client(self) -> None:
        """Give requests-oauthlib's ``add_token`` (the stock styles) the current token."""
        data = self.token or {}
        self._client.token = data
        self._client.access_token = self._client.refresh_token = None
        self._client.populate_token_attributes(data)

    def on_token(self, callback: Callable[[Token], None]) -> None:
        """Call ``callback(token)`` after every new token (login, refresh, re-fetch)."""
        self._bearer.on_token(callback)

    def set_token(self, token: Token, *, persist: bool = True) -> None:
        """Install a token obtained by a flow (the end of a login).

        ``persist=False`` installs a token just read from the store without
        writing it back (a restore must not overwrite a newer token another
        kernel saved meanwhile).
        """
        self._bearer.set_token(token, persist=persist)

    def forget(self) -> None:
        """Drop the token from memory and the store (logout without revocation)."""
        with self._bearer.lock:
            self._bearer.forget()
            self._sync_oauthlib_client()
            if self.http_cache is not None:
                self.http_cache.clear()  # cached bodies are the user's data
            if self.flow is not None and hasattr(self.flow, "forget_password"):
                self.flow.forget_password()

    # -- renewal (decided by the auth object) ------------------------------------------

    def refresh(self) -> Token:
        """Renew the token now (refresh, or re-fetch for client credentials)."""
        return self._bearer.renew(self._bearer.token, force=True)

    def _refresh_grant(self, current: Token) -> Token:
        """One refresh-token grant request (the auth object decides when, and retries)."""
        params = form_pairs(self._client.prepare_refresh_body(refresh_token=current.refresh_token))
        return self.endpoints.token(params, previous=current)

    def _refetch(self) -> Token | None:
        return self.flow.refetch() if self.flow is not None else None

    # -- the revalidation cache ----------------------------------------------------------

    def _cache_partition(self) -> str:
        """Whose cached data this is: provider, client, profile and the id_token's subject (the last one
        seen: a refreshed token without an id_token is the same user)."""
        token = self._bearer.token
        seen, subject = self._subject
        if token is not seen and token is not None and token.id_token:
            subject = subject_of(token.id_token) or subject
            self._subject = (token, subject)
        return "\n".join((self.provider.name, self.provider.token_endpoint or "", self.client_auth.client_id or "",
                          self.store_key or "", subject))

    def _cache_secrets(self) -> tuple[str, ...]:
        token = self._bearer.token
        return tuple(s for s in (token.access_token, token.refresh_token, token.id_token) if s) if token else ()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """requests' send, through the revalidation cache for GETs (requests calls it for every hop)."""
        cache = self.http_cache
        if cache is None or request.method != "GET":
            return super().send(request, **kwargs)
        return cache.send(request, lambda prepared: requests.Session.send(self, prepared, **kwargs), **kwargs)

    def close(self) -> None:
        super().close()
        if self.http_cache is not None:
            self.http_cache.close()

    # -- requests --------------------------------------------------------------------

    def request(self, method: str, url: str, data: Any = None, headers: Any = None,  # type: ignore[override]
                withhold_token: bool = False, client_id: str | None = None,
                client_secret: str | None = None, files: Any = None, **kwargs: Any) -> requests.Response:
        """Send through the auth object (fresh token; on 401 invalid_token one renewal, one retry).

        The host is decided from ``url`` as requests sends it: userinfo or a URL that
        parsers read differently raises :class:`UnsafeURL` before anything is sent (cases 46, 47).
        """
        checked_url(url)
        kwargs.setdefault("timeout", self.timeout)
        if self.verify is not True:  # requests lets REQUESTS_CA_BUNDLE override Session.verify
            kwargs.setdefault("verify", self.verify)
        certificate = self._cert_for(url, None if withhold_token else self._bearer.token)
        if not self.auto_refresh:
            self._sync_oauthlib_client()
            with loopback_http_allowed():  # requests-oauthlib's add_token: loopback http for this call only
                return super().request(method, url, data=data, headers=headers, withhold_token=withhold_token,
                                       client_id=client_id, client_secret=client_secret, files=files, **kwargs)
        if withhold_token:
            kwargs["auth"] = kwargs.get("auth") or _withheld
        try:
            return requests.Session.request(self, method, url, data=data, headers=headers, files=files, **kwargs)
        except requests.RequestException as exc:  # the package's one mapping (case 50)
            raise map_request_error(exc, url=url, what=f"{method} {redact_url(url)}", timeout=kwargs.get("timeout"),
                                    client_cert=certificate is not None) from None

    # requests-oauthlib's own styles (fetch_token, refresh_token, authorization_url) on this session
    # accept loopback http as the package does; a plain OAuth2Session elsewhere is unaffected.
    def authorization_url(self, url: str, state: str | None = None, **kwargs: Any) -> tuple[str, str]:
        with loopback_http_allowed():
            return super().authorization_url(url, state, **kwargs)

    def fetch_token(self, token_url: str, *args: Any, **kwargs: Any) -> dict:
        with loopback_http_allowed():
            return super().fetch_token(token_url, *args, **kwargs)

    def refresh_token(self, token_url: str, refresh_token: str | None = None,  # type: ignore[override]
                      *args: Any, **kwargs: Any) -> dict:
        """requests-oauthlib's refresh; a response without a refresh token keeps the one used."""
        used = refresh_token or (self.token or {}).get("refresh_token")
        with loopback_http_allowed():
            super().refresh_token(token_url, refresh_token, *args, **kwargs)
        token = self._bearer.token
        if token is not None and not token.refresh_token and used:
            self._bearer.install(token.with_changes(refresh_token=used))
            self._sync_oauthlib_client()
        return self.token or {}

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

    # -- revocation, status, data ---------------------------------------------------

    def revoke(self) -> bool:
        """RFC 7009: revoke refresh then access token; the local copy is wiped either way (case 23)."""
        with self._bearer.lock:
            token = self._bearer.token
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
        token = self._bearer.token
        return {
            "name": self.name,
            "provider": self.provider.name,
            "grant": self.flow.grant if self.flow else None,
            "signed_in": token is not None,
            "scopes": " ".join(token.scope) if token and token.scope else "",
            "expires_in": token.expires_in() if token else None,
            "expiry": token.describe_expiry() if token else "not signed in",
            "fingerprint": token.fingerprint if token else "",
            "refreshable": bool(token and token.can_renew(self.flow.grant if self.flow else None)),
        }

    def __repr__(self) -> str:
        token = self._bearer.token
        state = f"{token.fingerprint}, {token.describe_expiry()}" if token else "not signed in"
        return f"<nb_oauth2.Session {self.name!r} ({self.provider.name}): {state}>"

    def _repr_html_(self) -> str:
        import html

        return f"<code>{html.escape(repr(self))}</code>"

