"""Token custody: the service's side of every token (code exchange, refresh, revocation).

The protocol is :mod:`nb_oauth2.core`'s (flows build the link and check the callback,
:class:`~nb_oauth2.core.endpoint.Endpoints` sends the token-side requests); this module
decides when, keeps the results in the :class:`~nb_oauth2.hub.vault.Vault`, and makes
refresh single flight per user and profile: every kernel's request for a due token waits
on one lock, the first refreshes, the others read the token it stored.

Blocking HTTP runs in a thread pool so that the tornado loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, TypeVar

from oauthlib.oauth2 import WebApplicationClient

from ..auth.identity import USERINFO_TIMEOUT, claims_of_id_token, display_name
from ..core.endpoint import Endpoints, form_pairs
from ..core.errors import ConfigurationError, InvalidGrant, OAuth2Error, ReauthRequired
from ..core.flows import AuthorizationCodeFlow
from ..core.redact import MaskedStr
from ..core.token import DEFAULT_LEEWAY, Token
from ..core.urls import is_secure_or_loopback
from .config import HubConfig, HubProfile
from .vault import Vault

__all__ = ["Custody", "public_view", "record", "USER_FIELD"]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: a token that a kernel's 401 (``stale=``) had refreshed is not force-refreshed again for this long (seconds)
FORCED_REFRESH_INTERVAL = 30.0
#: after a refresh failed (provider down, 5xx), the kernels asking for the same token within this many seconds
#: get that failure instead of a new attempt each (those that waited on the lock meanwhile included)
FAILED_REFRESH_HOLD = 5.0
#: the vault record's field with the user's display name at the provider (from the id_token's claims)
USER_FIELD = "provider_user"


def record(token: Token, previous: dict[str, Any] | None = None, *, name: str | None = None) -> dict[str, Any]:
    """What the vault keeps: the token and who it belongs to at the provider, for display only.

    The name comes from the ``id_token``'s claims (:func:`~nb_oauth2.auth.identity.display_name`:
    preferred_username, email, name, sub), else ``name`` (the sign-in's userinfo answer); a refresh
    answer without an ``id_token`` keeps the ``previous`` record's name.
    """
    data = token.to_dict()
    name = display_name(claims_of_id_token(token.id_token)) or name or (previous or {}).get(USER_FIELD)
    if isinstance(name, str) and name:
        data[USER_FIELD] = name
    return data


def public_view(token: Token) -> dict[str, Any]:
    """What a kernel receives: the short-lived access token only (never the refresh token)."""
    left = token.expires_in()
    return {"access_token": token.access_token, "token_type": "Bearer",
            "expires_in": None if left is None else max(0.0, left), "expires_at": token.expires_at,
            "scope": " ".join(token.scope) if token.scope else None}


def admin_view(token: Token) -> dict[str, Any]:
    """What an admin sees: fingerprint, expiry, scope, whether it can be refreshed."""
    return {"fingerprint": token.fingerprint, "expires_at": token.expires_at, "expiry": token.describe_expiry(),
            "scope": " ".join(token.scope) if token.scope else "", "refreshable": bool(token.refresh_token)}


class Custody:
    """Per-user tokens of every profile, behind one lock per (user, profile)."""

    def __init__(self, config: HubConfig, vault: Vault, *, leeway: float = DEFAULT_LEEWAY) -> None:
        self.config = config
        self.vault = vault
        self.leeway = leeway
        self._endpoints = {name: Endpoints(p.provider, p.client) for name, p in config.profiles.items()}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        #: (user, profile) -> (fingerprint of the token a forced refresh gave, when)
        self._forced: dict[tuple[str, str], tuple[str, float]] = {}
        #: (user, profile) -> (fingerprint of the token whose refresh failed, when, the error)
        self._failed: dict[tuple[str, str], tuple[str, float, OAuth2Error]] = {}

    def profile(self, name: str) -> HubProfile:
        try:
            return self.config.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.config.profiles)) or "none"
            raise ConfigurationError(f"The hub service has no profile {name!r} (it has: {known}).") from None

    def new_flow(self, name: str, redirect_uri: str, scope: tuple[str, ...] | None = None) -> AuthorizationCodeFlow:
        profile = self.profile(name)
        return AuthorizationCodeFlow(profile.provider, profile.client, redirect_uri=redirect_uri,
                                     scope=scope or profile.scopes, endpoints=self._endpoints[name], pkce=profile.pkce)

    async def _blocking(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, call, *args)

    def _lock(self, user: str, profile: str) -> asyncio.Lock:
        return self._locks.setdefault((user, profile), asyncio.Lock())

    # -- sign-in -----------------------------------------------------------------------

    async def complete(self, user: str, profile: str, flow: AuthorizationCodeFlow, callback_url: str) -> Token:
        """Check the callback (state, iss, error) and exchange the code; the token goes to the vault."""
        token = await self._blocking(flow.complete, MaskedStr(callback_url))
        name = None
        if not display_name(claims_of_id_token(token.id_token)):
            name = await self._blocking(self._userinfo_name, profile, token)
        async with self._lock(user, profile):
            self.vault.put(user, profile, record(token, name=name))
        log.info("nb_oauth2.hub: %s signed in to profile %s (%s)", user, profile, token.fingerprint)
        return token

    def _userinfo_name(self, profile: str, token: Token) -> str | None:
        """Who signed in, from one GET of the provider's userinfo endpoint (as identity.who does in a
        kernel); best-effort: None when there is none or it fails (a name never fails a sign-in)."""
        url = self.profile(profile).provider.userinfo_endpoint
        if not url or not is_secure_or_loopback(url):
            return None
        try:
            response = self._endpoints[profile].http.get(
                url, timeout=USERINFO_TIMEOUT, allow_redirects=False,
                headers={"Authorization": f"Bearer {token.access_token}", "Accept": "application/json"})
            data = response.json() if response.status_code == 200 else None
        except Exception:  # best-effort, like identity.who
            return None
        return display_name(data) if isinstance(data, dict) else None

    # -- kernels' tokens ------------------------------------------------------------------

    async def access(self, user: str, profile: str, *, stale: str | None = None) -> Token:
        """A valid access token of ``user`` for ``profile``, refreshed first when due (single flight).

        ``stale``: the fingerprint of a token the API refused (a 401); when it is still the current
        token, it is refreshed now; when another kernel already replaced it, the new one is returned.
        """
        self.profile(profile)
        async with self._lock(user, profile):
            data = self.vault.get(user, profile)
            if not data:
                raise ReauthRequired(f"{user} is not signed in to profile {profile!r} on this hub.")
            token = Token.from_dict(data)
            forced = not token.is_expired(self.leeway)  # only a 401 (stale=) could make it renew now
            if forced and (not stale or stale != token.fingerprint or self._recently_forced(user, profile, token)):
                return token
            if not token.refresh_token:
                if token.is_valid():
                    return token
                self.vault.delete(user, profile)
                raise ReauthRequired(f"The token of profile {profile!r} expired and cannot be refreshed.")
            fingerprint, when, error = self._failed.get((user, profile), ("", 0.0, None))
            if error is not None and fingerprint == token.fingerprint and time.monotonic() - when < FAILED_REFRESH_HOLD:
                raise error  # the attempt this request waited for has just failed: no second one at once
            try:
                new = await self._blocking(self._refresh, profile, token)
            except InvalidGrant:
                self.vault.delete(user, profile)  # case 17: the dead refresh token is never tried again
                raise ReauthRequired(f"The provider no longer accepts {user}'s refresh token for profile "
                                     f"{profile!r}; sign in again.", error="invalid_grant") from None
            except OAuth2Error as exc:
                self._failed[(user, profile)] = (token.fingerprint, time.monotonic(), exc)
                raise
            self._failed.pop((user, profile), None)
            self.vault.put(user, profile, record(new, data))  # committed before anyone uses it (case 18)
            if forced:
                self._forced[(user, profile)] = (new.fingerprint, time.monotonic())
            log.info("nb_oauth2.hub: refreshed %s's token for profile %s (%s)", user, profile, new.fingerprint)
            return new

    def provider_user(self, user: str, profile: str) -> str | None:
        """Who ``user`` is at the provider of ``profile`` (display name from the sign-in's id_token), or None."""
        name = (self.vault.get(user, profile) or {}).get(USER_FIELD)
        return name if isinstance(name, str) and name else None

    def _recently_forced(self, user: str, profile: str, token: Token) -> bool:
        """Did a 401's forced refresh give ``token`` less than FORCED_REFRESH_INTERVAL ago?

        An API that refuses every token (wrong audience, a broken gateway) would otherwise cost one
        refresh per request at the provider, on the client registration every user of the hub shares;
        the kernel then gets this token again and its caller sees the API's 401.
        """
        fingerprint, when = self._forced.get((user, profile), ("", 0.0))
        return fingerprint == token.fingerprint and time.monotonic() - when < FORCED_REFRESH_INTERVAL

    def _refresh(self, profile: str, token: Token) -> Token:
        client = WebApplicationClient(self.profile(profile).client.client_id)
        params = form_pairs(client.prepare_refresh_body(refresh_token=token.refresh_token))
        return self._endpoints[profile].token(params, previous=token)

    async def logout(self, user: str, profile: str, *, revoke: bool) -> dict[str, Any]:
        """Forget (and with ``revoke``, revoke at the provider: RFC 7009) ``user``'s token."""
        async with self._lock(user, profile):
            data = self.vault.get(user, profile)
            self.vault.delete(user, profile)
        if not data:
            return {"signed_in": False, "revoked": False}
        confirmed = False
        if revoke:
            confirmed = await self._blocking(self._revoke, profile, Token.from_dict(data))
        log.info("nb_oauth2.hub: %s signed out of profile %s%s", user, profile, " (revoked)" if confirmed else "")
        return {"signed_in": False, "revoked": confirmed}

    def _revoke(self, profile: str, token: Token) -> bool:
        if not self.profile(profile).provider.revocation_endpoint:
            return False
        endpoints, confirmed = self._endpoints[profile], True
        for value, hint in ((token.refresh_token, "refresh_token"), (token.access_token, "access_token")):
            if value:
                try:
                    confirmed &= endpoints.revoke(value, hint).status_code == 200
                except OAuth2Error:
                    confirmed = False
        return confirmed

    # -- admin ---------------------------------------------------------------------------

    def sessions(self) -> list[dict[str, Any]]:
        """Every stored session: user, profile, fingerprint, expiry (no token)."""
        return [{"user": user, "profile": profile, **admin_view(Token.from_dict(data))}
                for user, profiles in self.vault.records() for profile, data in sorted(profiles.items())]

    async def revoke_user(self, user: str, profile: str | None = None) -> list[str]:
        """Revoke and forget ``user``'s tokens (every profile, or one); the profiles affected."""
        stored = self.vault.load(user)
        names = [name for name in ([profile] if profile else sorted(stored)) if name in stored]
        for name in names:
            if name in self.config.profiles:
                await self.logout(user, name, revoke=True)
            else:  # a profile removed from the config since: forget it, nothing to revoke with
                self.vault.delete(user, name)
        return names
