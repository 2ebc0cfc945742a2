"""The kernel's side of the hub service: detect it, start a login, wait, fetch short-lived tokens.

Behind a JupyterHub that runs ``nb_oauth2.hub``, a kernel has ``JUPYTERHUB_API_URL`` and its
server's ``JUPYTERHUB_API_TOKEN``; the service's address comes from ``NB_OAUTH2_HUB_URL`` (set
for every server by the hub's ``c.Spawner.environment``) or, failing that, from the hub API's
service model. A :class:`HubSession` is the package's usual :class:`~nb_oauth2.auth.session.Session`
whose renewal asks the service (a :class:`HubFlow` re-fetches; the kernel never holds a refresh
token or the client secret), so every kernel of the user shares one sign-in::

    hub = HubService.detect()
    gh = hub.login("github", show=print)       # prints the link unless already signed in on this hub
    gh.get("https://api.github.com/user")
    gh.revoke()                                # signs every kernel of the user out
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import quote

import requests

from ..auth.session import Session
from ..core.endpoint import ClientAuth
from ..core.errors import (
    AuthorizationDenied,
    ConfigurationError,
    LoginTimeout,
    OAuth2Error,
    ReauthRequired,
    TransportError,
)
from ..core.flows import Flow, Step
from ..core.http_errors import map_request_error
from ..core.providers import Provider
from ..core.redact import snippet
from ..core.token import Token

__all__ = ["HubService", "HubFlow", "HubSession", "HubLogin", "URL_ENV", "SERVICE_NAME"]

URL_ENV = "NB_OAUTH2_HUB_URL"
SERVICE_NAME = "nb-oauth2"
_TIMEOUT = (5.0, 40.0)  # the read timeout covers one long-poll (30 s)


#: what a kernel can do about the service's 5xx answers (by their ``error``)
_HINTS_5XX = {
    "provider_unavailable": "The provider could not be reached from the hub; try again in a moment (the "
                            "sign-in is kept)",
    "hub_unavailable": "The hub's API did not answer the nb-oauth2 service; try again once the hub is back",
    "": "Try again in a moment; if it persists, the hub's log has the nb-oauth2 service's lines",
}


@dataclass(frozen=True)
class HubLogin:
    """A sign-in the service started for this kernel's user: open ``url`` in the hub's browser."""

    id: str
    url: str
    profile: str


@dataclass
class HubService:
    """The nb-oauth2 service as this kernel reaches it (base ``url`` ends with ``/``)."""

    url: str
    api_token: str = field(repr=False)
    timeout: tuple[float, float] = _TIMEOUT
    http: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/") + "/"

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None) -> "HubService | None":
        """The service when this kernel runs behind a hub that has it; None otherwise."""
        env = os.environ if environ is None else environ
        token, api = env.get("JUPYTERHUB_API_TOKEN"), env.get("JUPYTERHUB_API_URL")
        if not token or not api:
            return None
        url = env.get(URL_ENV) or _lookup(api, token, env.get("NB_OAUTH2_HUB_SERVICE", SERVICE_NAME))
        return cls(url, token) if url else None

    # -- HTTP -----------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self.url + path
        try:
            response = self.http.request(method, url, headers={"Authorization": f"token {self.api_token}"},
                                         timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise map_request_error(exc, url=url, what="The hub's nb-oauth2 service", timeout=self.timeout,
                                    hint=f"Is the hub's nb-oauth2 service running at {self.url}? Its log is in the "
                                         f"hub's log; {URL_ENV} (set by the hub's c.Spawner.environment) names "
                                         "where kernels reach it") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise TransportError(f"The hub's nb-oauth2 service answered HTTP {response.status_code} without JSON: "
                                 f"{snippet(response.text, 120)!r}.", status=response.status_code)
        if response.status_code < 400:
            return data
        error, message = str(data.get("error") or ""), str(data.get("message") or "")
        if error == "not_signed_in":
            raise ReauthRequired(message or "Not signed in on this hub.", error=error, status=response.status_code)
        if response.status_code in (401, 403):
            raise ConfigurationError(
                f"The hub's nb-oauth2 service refused this server's token (HTTP {response.status_code}).",
                hint="The hub's roles must give servers the scope access:services!service=nb-oauth2 "
                     "(see README, On JupyterHub)", status=response.status_code)
        if error == "unknown_login":  # expired, or the service restarted: only a new login helps
            raise ReauthRequired(message or "The hub's nb-oauth2 service no longer knows this sign-in.", error=error,
                                 status=response.status_code, hint="Run the login again")
        if response.status_code >= 500:
            raise TransportError(f"The hub's nb-oauth2 service failed: {message or error}", error=error,
                                 status=response.status_code, hint=_HINTS_5XX.get(error, _HINTS_5XX[""]))
        raise ConfigurationError(message or f"The hub's nb-oauth2 service answered HTTP {response.status_code}.",
                                 error=error or None, status=response.status_code)

    # -- the service's API --------------------------------------------------------------

    def start_login(self, profile: str, scope: Sequence[str] | None = None) -> HubLogin:
        data = self._call("POST", "api/logins", json={"profile": profile, "scope": list(scope) if scope else None})
        return HubLogin(id=str(data["id"]), url=str(data["url"]), profile=profile)

    def status(self, login_id: str, *, wait: float = 0) -> dict[str, Any]:
        return self._call("GET", f"api/logins/{quote(login_id, safe='')}", params={"wait": f"{wait:g}"})

    def wait(self, login: HubLogin, *, timeout: float = 600, poll: float = 25) -> None:
        """Block until the browser finished ``login`` (long-polls); typed errors on failure or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoginTimeout(f"The hub sign-in was not finished within timeout={timeout:g} s.",
                                   hint="Start the login again, or pass a larger timeout=")
            data = self.status(login.id, wait=min(poll, left))
            if data.get("status") == "done":
                return
            if data.get("status") == "failed":
                message = str(data.get("error") or "The sign-in failed.")
                raise (AuthorizationDenied if "denied" in message.lower() else OAuth2Error)(message)

    def profiles(self) -> dict[str, bool]:
        """The profiles the hub signs users in to -> whether this user is signed in to it."""
        return {str(p["name"]): bool(p.get("signed_in")) for p in self._call("GET", "api/profiles")["profiles"]}

    def token(self, profile: str, *, stale: Token | None = None) -> Token:
        """A fresh access token of this user for ``profile`` (the service refreshes when due).

        ``stale``: a token the API refused (401); the service renews it unless it already did.
        """
        return self.token_and_user(profile, stale=stale)[0]

    def token_and_user(self, profile: str, *, stale: Token | None = None) -> tuple[Token, str | None]:
        """:meth:`token`, and who signed in at the provider (the service's display name, or None)."""
        params = {"stale": stale.fingerprint} if stale is not None else None
        data = self._call("GET", f"api/tokens/{quote(profile, safe='')}", params=params)
        token = Token.from_response({k: data.get(k) for k in ("access_token", "token_type", "expires_in", "scope")})
        user = data.get("user")
        return token, (user if isinstance(user, str) and user else None)

    def logout(self, profile: str, *, revoke: bool = True) -> dict[str, Any]:
        """Sign the user out of ``profile`` on the hub (every kernel); ``revoke`` at the provider too."""
        return self._call("DELETE", f"api/tokens/{quote(profile, safe='')}", params={"revoke": "1" if revoke else "0"})

    # -- sessions -----------------------------------------------------------------------

    def session(self, profile: str, *, name: str | None = None, token: Token | None = None,
                user: str | None = None) -> "HubSession":
        """A session for ``profile`` that renews through the service (signed in when ``token`` is given;
        ``user``: who signed in at the provider, as the service named them)."""
        flow = HubFlow(self, profile)
        flow.user = user
        session = HubSession(name=name or profile, provider=flow.provider, client=flow.client, flow=flow,
                             token=flow.remember(token))
        return session

    def login(self, profile: str, scope: Sequence[str] | None = None, *, name: str | None = None,
              timeout: float = 600, show: Callable[[HubLogin], None] | None = None) -> "HubSession":
        """Signed in at once when the user already is on this hub; else ``show`` the link and wait."""
        try:
            token, user = self.token_and_user(profile)
            return self.session(profile, name=name, token=token, user=user)
        except ReauthRequired:
            pass
        login = self.start_login(profile, scope)
        (show or _print_link)(login)
        self.wait(login, timeout=timeout)
        token, user = self.token_and_user(profile)
        return self.session(profile, name=name, token=token, user=user)


class HubFlow(Flow):
    """The renewal of a hub session: ask the service for the current token (no refresh token here)."""

    grant = "hub"

    def __init__(self, service: HubService, profile: str) -> None:
        super().__init__(Provider(name=profile), ClientAuth(client_id=SERVICE_NAME), scope=())
        self.service = service
        self.profile = profile
        self._last: Token | None = None
        #: who signed in at the provider, as the service's last answer named them (display only)
        self.user: str | None = None

    def start(self) -> Step:
        return Step(kind="none")

    def refetch(self) -> Token | None:
        """The service's current token; a renewal asked for while ours still looks fresh is a 401's, so
        the service is told which token the API refused (it renews that one once, for every kernel)."""
        last = self._last
        stale = last if last is not None and not last.is_expired() else None
        self._last, self.user = self.service.token_and_user(self.profile, stale=stale)
        return self._last

    def remember(self, token: Token | None) -> Token | None:
        self._last = token
        return token


class HubSession(Session):
    """A :class:`~nb_oauth2.auth.session.Session` whose tokens come from the hub service."""

    flow: HubFlow

    @property
    def user(self) -> str | None:
        """Who signed in at the provider (the service read it at sign-in: id_token claims or userinfo; no call here)."""
        return self.flow.user

    def revoke(self) -> bool:
        """Sign every kernel of this user out: the service revokes at the provider (RFC 7009) and forgets."""
        self.forget()
        return bool(self.flow.service.logout(self.flow.profile, revoke=True).get("revoked"))


def _print_link(login: HubLogin) -> None:
    print(f"Open this link in the browser where you use the hub to sign in to {login.profile}: {login.url}")


def _lookup(api_url: str, token: str, name: str) -> str | None:
    """The service's address from the hub API (needs read:services for it); None when not visible."""
    try:
        response = requests.get(f"{api_url.rstrip('/')}/services/{quote(name, safe='')}", timeout=(5, 10),
                                headers={"Authorization": f"token {token}"})
        model = response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None
    if not isinstance(model, dict) or not model.get("url"):
        return None
    prefix = str(model.get("prefix") or f"/services/{name}/")
    return str(model["url"]).rstrip("/") + "/" + prefix.strip("/") + "/"
