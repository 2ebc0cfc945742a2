"""The one path a token takes onto a request: a requests auth object that renews it when due.

:class:`BearerAuth` holds the session's token (the only copy nb_oauth2 keeps) and is
installed as ``session.auth``, so every request of the session passes through it:

* ``__call__`` decides "renew now?" in one place: within ``min(leeway, lifetime / 2)``
  seconds of expiry (SECURITY_CASES 48); a token nothing can renew (implicit grant)
  is used until it really expires. It then attaches ``Authorization: Bearer``; without a
  token, or to plain http off loopback, nothing is sent.
* renewal is single flight by token identity: a thread that waited for the lock and
  finds another token than the one it saw uses that one (cases 19, 49); a shared store
  is re-read under its lock first (case 20); a new token (with a rotated refresh token)
  is committed to memory, then the store, then listeners, before anything uses it
  (case 18); ``invalid_grant`` becomes :class:`ReauthRequired` and the dead refresh token
  is purged (case 17); a dropped connection during refresh is retried once (case 21).
* a response hook turns a 401 ``invalid_token`` into one renewal and one re-send of the
  same request (case 28); the second answer is returned as it is.

How to obtain a token is given as two callables (``refresh(token)`` for the
refresh-token grant, ``refetch()`` for grants fetched again without the user), so the
decisions here are tested by feeding prepared requests and responses (tests/test_bearer_auth.py).
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable

import requests
from requests.cookies import extract_cookies_to_jar

from ..core.challenges import parse_www_authenticate
from ..core.errors import InsecureTransportError, InvalidGrant, ReauthRequired, TransportError
from ..core.http_errors import is_retryable
from ..core.redact import redact
from ..core.token import DEFAULT_LEEWAY, Token
from ..core.urls import checked_url
from ..core.warn import warn_user
from .store import MemoryStore, StoreError, TokenStore

__all__ = ["BearerAuth", "is_invalid_token"]


def is_invalid_token(response: requests.Response) -> bool:
    """401 with ``error="invalid_token"``, or with no error code at all (RFC 6750 3.1)."""
    if response.status_code != 401:
        return False
    error = parse_www_authenticate(response.headers.get("WWW-Authenticate")).get("error")
    return error in (None, "invalid_token")


def _bearer(token: Token) -> str:
    return f"Bearer {token.access_token}"


class BearerAuth(requests.auth.AuthBase):
    """Attach a fresh bearer token to every request; renew it when due or after a 401."""

    def __init__(
        self,
        *,
        name: str,
        refresh: Callable[[Token], Token],
        refetch: Callable[[], Token | None] = lambda: None,
        store: TokenStore | None = None,
        store_key: str | None = None,
        leeway: float = DEFAULT_LEEWAY,
    ) -> None:
        self.name = name
        #: the call that signs this session in again, quoted by messages (set by the login; profile, not name)
        self.sign_in_call = f"nb_oauth2.login({name!r})"
        self.refresh = refresh  # one refresh-token grant: may raise InvalidGrant or TransportError
        self.refetch = refetch  # a new token without the user, or None when the grant cannot
        self.store = store if store is not None else MemoryStore()
        self.store_key = store_key or name
        self.leeway = leeway
        self.token_requests = 0
        self.lock = threading.RLock()
        self._token: Token | None = None
        self._unrenewable: Token | None = None  # the token nothing could renew (used while valid)
        self._signed_out = False
        self._listeners: list[Callable[[Token], None]] = []

    def __repr__(self) -> str:
        return f"<BearerAuth {self.name!r}>"

    # -- requests' side ------------------------------------------------------------

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if not checked_url(request.url or "").is_secure_or_loopback:
            raise InsecureTransportError(
                f"Refusing to send the token over plain http to {redact(request.url or '')[:80]!r}; use https.")
        token = self.current()
        request.headers["Authorization"] = _bearer(token)
        request.register_hook("response", functools.partial(self._after_response, sent=token))
        return request

    def _after_response(self, response: requests.Response, *, sent: Token, **send_kwargs: Any) -> requests.Response:
        """Case 28: a 401 invalid_token to a request that carried ``sent`` -> renew once, re-send once."""
        request = response.request
        if (not is_invalid_token(response) or request.headers.get("Authorization") != _bearer(sent)
                or not isinstance(request.body, (str, bytes, type(None)))):  # a redirect that lost the token, a stream
            return response
        response.close()
        token = self.renew(sent, force=True)
        retry = request.copy()
        retry.headers["Authorization"] = _bearer(token)
        cookies = getattr(retry, "_cookies", None)
        if cookies is not None:
            extract_cookies_to_jar(cookies, request, response.raw)
            retry.prepare_cookies(cookies)
        answer = response.connection.send(retry, **send_kwargs)  # the adapter: no hooks, so no second retry
        answer.history.append(response)
        answer.request = retry
        return answer

    # -- the token -----------------------------------------------------------------

    @property
    def token(self) -> Token | None:
        return self._token

    def on_token(self, callback: Callable[[Token], None]) -> None:
        """Call ``callback(token)`` after every new token (login, refresh, re-fetch)."""
        self._listeners.append(callback)

    def install(self, token: Token | None) -> None:
        """Hold ``token`` without storing it or telling listeners (a restore, requests-oauthlib's own styles)."""
        with self.lock:
            self._token = token

    def set_token(self, token: Token, *, persist: bool = True) -> None:
        """Memory first, then the store, then listeners (case 18)."""
        with self.lock:
            self._token = token
            if persist:
                try:
                    self.store.save(self.store_key, token.to_dict())
                except StoreError as exc:
                    warn_user(f"The new token is kept in memory but could not be stored: {exc}", RuntimeWarning)
            for callback in list(self._listeners):
                callback(token)

    def forget(self) -> None:
        """Drop the token from memory and the store."""
        with self.lock:
            self._signed_out = self._signed_out or self._token is not None
            self._token = None
            self.store.delete(self.store_key)

    # -- renewal -------------------------------------------------------------------

    def due(self, token: Token) -> bool:
        """Renew now? Within the margin ``min(leeway, lifetime / 2)`` of expiry (case 48), except a
        token nothing could renew, which is used while it is valid."""
        if not token.is_expired(self.leeway):
            return False
        return not (token is self._unrenewable and token.is_valid())

    def current(self) -> Token:
        """The token to send now, renewed first when :meth:`due`."""
        token = self._token
        if token is None:
            raise self._not_signed_in()
        return self.renew(token) if self.due(token) else token

    def renew(self, seen: Token | None, *, force: bool = False) -> Token:
        """Single-flight renewal decided by token identity (case 49).

        A thread that waited for the lock and finds another token than the one it saw uses
        that token, whatever its remaining life: one renewal per expiry, however short the
        lifetime. ``force`` (a 401, ``Session.refresh()``) renews even a token that looks
        fresh. A token that cannot be renewed is returned while still valid (case 48), else
        :class:`ReauthRequired`.
        """
        with self.lock:
            current = self._token
            if current is None:
                raise self._not_signed_in()
            if current is not seen and current.is_valid():
                return current
            with self.store.lock(self.store_key):
                adopted = self._adopt_stored(current)
                if adopted is not None and (not force or adopted.access_token != getattr(seen, "access_token", None)):
                    self._token = adopted
                    return adopted
                new = self._obtain_new(current)
                if new is None:
                    if not force and current.is_valid():
                        self._unrenewable = current
                        return current
                    raise ReauthRequired(
                        f"The token of session {self.name!r} expired and cannot be refreshed (no refresh token); "
                        f"sign in again with {self.sign_in_call}.")
                self.set_token(new)
                return new

    def _adopt_stored(self, current: Token) -> Token | None:
        """A fresher token another process saved meanwhile (case 20)."""
        data = self.store.load(self.store_key)
        if not data:
            return None
        stored = Token.from_dict(data)
        if stored.access_token == current.access_token:
            return None
        return None if stored.is_expired(self.leeway) else stored

    def _obtain_new(self, current: Token) -> Token | None:
        """A refreshed or re-fetched token; None when nothing can renew ``current``."""
        if current.refresh_token:
            return self._refresh_with(current)
        token = self.refetch()
        if token is not None:
            self.token_requests += 1
        return token

    def _refresh_with(self, current: Token) -> Token:
        for attempt in (1, 2):  # one retry on a dropped connection (case 21)
            try:
                self.token_requests += 1
                return self.refresh(current)
            except TransportError as exc:
                if attempt == 2 or not is_retryable(exc):  # a TLS failure is not retried
                    raise
            except InvalidGrant:
                self._token = current.with_changes(refresh_token=None, expires_at=current.received_at)
                self.store.purge_refresh_token(self.store_key)  # case 17: never try it again, here or on disk
                raise ReauthRequired(
                    f"The provider no longer accepts the refresh token of session {self.name!r} (revoked, expired, "
                    "or already rotated by another client). Sign in again.", error="invalid_grant") from None
        raise AssertionError("unreachable")

    def _not_signed_in(self) -> ReauthRequired:
        state = "was signed out (logout or revocation)" if self._signed_out else "is not signed in yet"
        return ReauthRequired(
            f"Session {self.name!r} {state}: finish the login above, or run {self.sign_in_call}.")
