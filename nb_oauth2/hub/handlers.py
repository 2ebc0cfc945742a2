"""The service's HTTP handlers: the kernel API, the browser's start and callback, the admin API.

Kernels authenticate with their server's ``JUPYTERHUB_API_TOKEN`` (``Authorization: token ...``),
checked against the hub API; browsers with the hub's OAuth (the service cookie). The API takes no
cookies, so it needs no XSRF protection; the browser pages only read (GET) and redirect.
Nothing a handler logs holds a query string: the callback's code and state never reach a log.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from ..core.errors import (
    AuthorizationDenied,
    CallbackError,
    ConfigurationError,
    OAuth2Error,
    ReauthRequired,
    TransportError,
)
from ..core.names import split_list
from ..core.redact import redact, redact_url
from .custody import public_view
from .pages import page

__all__ = ["handlers"]

log = logging.getLogger(__name__)
#: the longest a kernel's GET api/logins/<id>?wait= is held open (seconds)
MAX_WAIT = 30.0


class _Base(HubOAuthenticated, web.RequestHandler):
    """Common parts: the service object, no caching, logs without query strings."""

    def initialize(self, service: Any) -> None:
        self.service = service
        self.hub_auth = service.hub_auth

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Content-Type-Options", "nosniff")

    def _request_summary(self) -> str:  # tornado's warning/error lines name the request: redacted
        return f"{self.request.method} {redact_url(self.request.uri or '')} ({self.request.remote_ip})"

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, web.HTTPError):
            log.warning("%d %s", value.status_code, self._request_summary())
        else:  # never the request's repr (it holds the URI) nor a traceback with locals
            log.error("Uncaught %s in %s", typ.__name__ if typ else "error", self._request_summary())


class _API(_Base):
    """The JSON API: token authentication only (kernels and admin tools)."""

    model: dict[str, Any]

    def get_login_url(self) -> str:  # an API never redirects to a login page
        raise web.HTTPError(401)

    async def prepare(self) -> None:
        token = self.hub_auth.get_token(self, in_cookie=False)
        try:
            model = await self.hub_auth.user_for_token(token, sync=False) if token else None
        except web.HTTPError as exc:  # jupyterhub's HubAuth: the hub API unreachable, or refusing the service
            if exc.status_code < 500:
                raise
            self.fail(503, "hub_unavailable", "The nb-oauth2 service could not check this server's token with the "
                                              "hub's API (the hub is down, restarting, or unreachable from it).")
        if not model:
            self.fail(401, "not_authenticated", "Send the server's JUPYTERHUB_API_TOKEN as 'Authorization: token ...'.")
        self.model = model

    def fail(self, status: int, error: str, message: str) -> None:
        self.set_status(status)
        self.finish({"error": error, "message": redact(message)})
        raise web.Finish()

    def user(self) -> str:
        """The hub user the request acts for (a user's token with access to this service), else 403."""
        model = self.model
        if model.get("kind", "user") != "user" or not self.hub_auth.check_scopes(self.hub_auth.access_scopes, model):
            self.fail(403, "forbidden", "This token may not use the nb-oauth2 service.")
        return str(model["name"])

    def is_admin(self) -> bool:
        """The token's own scopes decide: the service's admin scope, or a hub admin's token that holds
        ``admin:users`` (a hub admin's full token). The model's ``admin`` flag is the owner's, not the
        token's: an admin's server token (in every notebook she runs) or a token she narrowed is no admin."""
        scopes = set(self.model.get("scopes") or ())
        return self.service.config.admin_scope in scopes or (bool(self.model.get("admin")) and "admin:users" in scopes)

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self.fail(400, "invalid_request", "The body must be a JSON object.")
        return data

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"error": "server_error" if status_code >= 500 else "error", "message": self._reason})


class ProfilesHandler(_API):
    """GET api/profiles: the profiles this hub signs users in to, and whether this user is signed in."""

    async def get(self) -> None:
        user = self.user()
        stored = self.service.vault.load(user)
        self.finish({"profiles": [{"name": name, "signed_in": name in stored}
                                  for name in sorted(self.service.config.profiles)]})


class LoginsHandler(_API):
    """POST api/logins {profile, scope} -> {id, url, status}: a kernel starts a sign-in."""

    async def post(self) -> None:
        user = self.user()
        data = self.body()
        profile = str(data.get("profile") or "")
        try:
            self.service.custody.profile(profile)
        except ConfigurationError as exc:
            self.fail(404, "unknown_profile", str(exc))
        login = self.service.logins.create(user, profile, split_list(data.get("scope")) or None)
        self.set_status(201)
        self.finish({**login.describe(), "url": self.service.start_url(login.id)})


class LoginHandler(_API):
    """GET api/logins/<id>?wait=<s>: the login's status (held open until it changes, up to ``wait``)."""

    async def get(self, login_id: str) -> None:
        user = self.user()
        login = self.service.logins.get(login_id, user)
        if login is None:
            if self.service.logins.owner(login_id) is not None:
                self.fail(403, "forbidden", "This login was started by another user.")
            self.fail(404, "unknown_login", "No such login (expired, or the service restarted).")
        try:
            wait = float(self.get_query_argument("wait", "0"))
        except ValueError:
            wait = 0.0
        wait = min(MAX_WAIT, wait) if math.isfinite(wait) and wait > 0 else 0.0
        if wait:
            await login.wait(wait)
        self.finish(login.describe())


class TokensHandler(_API):
    """GET api/tokens/<profile>[?stale=<fingerprint>]: a short-lived access token and ``user``, who signed in
    at the provider (display name, or null; ``stale``: the API refused that one, renew it unless another
    kernel already did); DELETE (?revoke=1): sign every kernel out."""

    async def get(self, profile: str) -> None:
        user = self.user()
        try:
            token = await self.service.custody.access(user, profile, stale=self.get_query_argument("stale", None))
        except ConfigurationError as exc:
            self.fail(404, "unknown_profile", str(exc))
        except ReauthRequired as exc:
            self.fail(404, "not_signed_in", exc.summary)
        except TransportError as exc:
            self.fail(502, "provider_unavailable", exc.summary)
        except OAuth2Error as exc:
            self.fail(502, exc.error or "provider_error", exc.summary)
        self.finish({**public_view(token), "user": self.service.custody.provider_user(user, profile)})

    async def delete(self, profile: str) -> None:
        user = self.user()
        revoke = self.get_query_argument("revoke", "0").lower() in ("1", "true", "yes")
        try:
            self.service.custody.profile(profile)
        except ConfigurationError as exc:
            self.fail(404, "unknown_profile", str(exc))
        self.finish(await self.service.custody.logout(user, profile, revoke=revoke))


class AdminSessionsHandler(_API):
    """GET admin/sessions: every user's sessions (fingerprints, expiry); DELETE admin/sessions/<user>."""

    def prepare_admin(self) -> None:
        if not self.is_admin():
            self.fail(403, "forbidden", "Only hub admins (or tokens with the service's admin scope) may do this.")

    async def get(self, user: str = "") -> None:
        self.prepare_admin()
        sessions = [s for s in self.service.custody.sessions() if not user or s["user"] == user]
        self.finish({"sessions": sessions})

    async def delete(self, user: str = "") -> None:
        self.prepare_admin()
        if not user:
            self.fail(400, "invalid_request", "Name the user: DELETE admin/sessions/<user>[?profile=<name>].")
        profile = self.get_query_argument("profile", None)
        revoked = await self.service.custody.revoke_user(user, profile)
        log.info("nb_oauth2.hub: admin %s revoked %s's sessions (%s)", self.model.get("name"), user,
                 ", ".join(revoked) or "none")
        self.finish({"user": user, "revoked": revoked})


class _Browser(_Base):
    """Pages for a person's browser, signed in through the hub's OAuth."""

    def show(self, status: int, title: str, message: str, *, ok: bool = False) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page(title, message, ok=ok))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(page(f"Error {status_code}", self._reason, ok=False))


class StartHandler(_Browser):
    """GET start/<id>: the browser's hub user must be the login's user; then off to the provider."""

    @web.authenticated
    async def get(self, login_id: str) -> None:
        user = self.current_user["name"]
        logins = self.service.logins
        login = logins.get(login_id, user)
        if login is None:
            if logins.owner(login_id) is not None:
                log.warning("nb_oauth2.hub: %s opened a sign-in link of another user", user)
                return self.show(403, "Not your sign-in link",
                                 "This link was started by another hub user; run the login in your own notebook.")
            return self.show(404, "Unknown sign-in link", "This link is unknown or expired; run the login again.")
        if not login.open:
            return self.show(410, "Sign-in link used or expired", "Run the login again in your notebook.")
        flow = self.service.custody.new_flow(login.profile, self.service.redirect_uri(self.request), login.scope)
        step = flow.start()
        logins.started(login, flow)
        self.redirect(step.authorization_url or "")


class CallbackHandler(_Browser):
    """GET callback?code&state[&iss]: the provider's redirect, checked against the browser's hub user."""

    async def get(self) -> None:
        model = self.current_user  # no redirect to the hub's login here: it would carry the code along
        if not model:
            return self.show(403, "Sign in to the hub first",
                             "This browser is not signed in to the hub as the user who started the login. "
                             "Run the login again from your notebook and open its link in this browser.")
        state = self.get_query_argument("state", "")
        holder = self.service.logins.holder(state) if state else None
        if holder is not None and holder != model["name"]:
            log.warning("nb_oauth2.hub: %s tried to complete a login of another user", model["name"])
            return self.show(403, "Not your sign-in", "This sign-in was started by another hub user; it was not "
                                                      "completed. Run the login in your own notebook.")
        login = self.service.logins.take(state, model["name"]) if state else None
        if login is None or login.flow is None:
            log.warning("nb_oauth2.hub: callback without a matching login of %s", model["name"])
            return self.show(400, "No matching login in progress",
                             "This sign-in does not match a login you started (used, expired, or another "
                             "user's). Run the login again from your notebook.")
        url = f"{login.flow.redirect_uri}?{self.request.query}"
        try:
            await self.service.custody.complete(login.user, login.profile, login.flow, url)
        except AuthorizationDenied as exc:
            login.finish("failed", exc.summary)
            return self.show(400, "Sign-in denied", exc.summary)
        except CallbackError as exc:  # checked before any token request: the login stays usable
            self.service.logins.give_back(login, state)
            log.warning("nb_oauth2.hub: a callback for %s failed its checks (%s)", login.user, type(exc).__name__)
            return self.show(400, "Sign-in response refused", exc.summary)
        except OAuth2Error as exc:
            login.finish("failed", exc.summary)
            return self.show(400, "Sign-in failed", exc.summary)
        login.finish("done")
        self.show(200, "Signed in", f"You are signed in to {login.profile}; return to your notebook.", ok=True)


class HealthHandler(web.RequestHandler):
    """GET (prefix)health: up (the hub's own check reads the prefix itself)."""

    def get(self) -> None:
        self.finish({"service": "nb-oauth2", "ok": True})


def handlers(prefix: str, service: Any) -> list[tuple[str, type, dict[str, Any]] | tuple[str, type]]:
    """The routes under ``prefix`` (``/services/nb-oauth2/``)."""
    from jupyterhub.services.auth import HubOAuthCallbackHandler

    ours = {"service": service}
    name = r"([^/]+)"
    return [
        (prefix + "oauth_callback", HubOAuthCallbackHandler),
        (prefix, HealthHandler),
        (prefix + "health", HealthHandler),
        (prefix + "api/profiles", ProfilesHandler, ours),
        (prefix + "api/logins", LoginsHandler, ours),
        (prefix + f"api/logins/{name}", LoginHandler, ours),
        (prefix + f"api/tokens/{name}", TokensHandler, ours),
        (prefix + "admin/sessions", AdminSessionsHandler, ours),
        (prefix + f"admin/sessions/{name}", AdminSessionsHandler, ours),
        (prefix + f"start/{name}", StartHandler, ours),
        (prefix + "callback", CallbackHandler, ours),
    ]
