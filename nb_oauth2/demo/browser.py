"""The browser's part of the demo provider: /authorize and /device pages.

GET /authorize validates the request with oauthlib and shows a login form;
the pending request waits server-side under a random form id (hidden field).
After login a consent page; Approve lets oauthlib issue the code (or the
implicit token), Deny redirects with ``error=access_denied``. Both carry
``iss`` (RFC 9207).

Behind jupyter-server-proxy (JupyterHub, Binder) the redirect URI is a path on
the notebook's own origin. The proxy prefixes every ``Location`` that starts
with ``/`` with its own ``{prefix}proxy/<port>``, so such a redirect is sent as
a path-relative reference (``callback?code=...``), which the proxy leaves alone
and the browser resolves against the page it posted from.
"""

from __future__ import annotations

import hmac
import posixpath
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from oauthlib.common import add_params_to_uri
from oauthlib.oauth2.rfc6749 import errors as oauth_errors
from werkzeug.wrappers import Request, Response

from ..core.providers import NOTEBOOK_ORIGIN
from . import pages
from .validator import DemoValidator

__all__ = ["BrowserFlows", "add_iss", "relative_reference"]

_PENDING_TTL = 600.0


def html_response(body: str, status: int = 200) -> Response:
    resp = Response(body, status=status, content_type="text/html; charset=utf-8")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = (
        # no form-action: browsers apply it to the redirect to the client's redirect URI too
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'")
    return resp


def relative_reference(target: str, page_path: str) -> str:
    """``target`` (an absolute path with query/fragment) as a reference relative to ``page_path``.

    ``relative_reference("/u/a/proxy/9/callback?x=1", "/u/a/proxy/9/authorize") == "callback?x=1"``;
    never starts with ``/`` and never reads as a scheme.
    """
    parts = urlsplit(target)
    rel = posixpath.relpath(parts.path or "/", posixpath.dirname(page_path) or "/")
    if rel == ".":
        rel = "./"
    elif parts.path.endswith("/") and not rel.endswith("/"):
        rel += "/"
    if ":" in rel.split("/", 1)[0]:
        rel = "./" + rel
    return urlunsplit(("", "", rel, parts.query, parts.fragment))


def _forwarded_prefix(req: Request) -> str | None:
    """The path prefix jupyter-server-proxy says it serves us under (``X-Forwarded-Prefix``)."""
    prefix = req.headers.get("X-Forwarded-Prefix", "")
    if prefix.startswith("/") and not any(c in prefix for c in "?#\\\r\n"):
        return prefix.rstrip("/")
    return None


def redirect(location: str, page_path: str | None = None) -> Response:
    """302 to ``location``.

    A redirect to the notebook's own origin (``NOTEBOOK_ORIGIN``) becomes a
    reference relative to ``page_path``, the browser's path of the page that
    asked (jupyter-server-proxy rewrites only Locations that start with ``/``).
    """
    if location.startswith(NOTEBOOK_ORIGIN + "/"):
        location = location[len(NOTEBOOK_ORIGIN):]
        if page_path:
            location = relative_reference(location, page_path)
    resp = Response("", status=302)
    resp.headers["Location"] = location
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def add_iss(location: str, issuer: str) -> str:
    """Add ``iss`` where the response parameters are (fragment for implicit)."""
    fragment = bool(urlsplit(location).fragment)
    return add_params_to_uri(location, [("iss", issuer)], fragment=fragment)


class BrowserFlows:
    """Login, consent and device-verification pages, over an oauthlib server."""

    def __init__(self, *, server: Any, validator: DemoValidator, issuer: str,
                 internal_url: str, users: dict[str, str], browser_prefix: str | None = None) -> None:
        self.server = server
        self.validator = validator
        self.issuer = issuer
        self.internal_url = internal_url
        self.users = users
        #: where the browser reaches this server behind jupyter-server-proxy (``/user/a/proxy/9``)
        self.browser_prefix = browser_prefix.rstrip("/") if browser_prefix else None
        self._pending: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -- pending forms -----------------------------------------------------------

    def _remember(self, entry: dict[str, Any]) -> str:
        form_id = secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            for key in [k for k, v in self._pending.items() if v["expires_at"] < now]:
                del self._pending[key]
            self._pending[form_id] = dict(entry, expires_at=now + _PENDING_TTL)
        return form_id

    def _lookup(self, form_id: str, kind: str, *, pop: bool = False) -> dict[str, Any] | None:
        with self._lock:
            entry = self._pending.get(form_id or "")
            if entry is None or entry["kind"] != kind or entry["expires_at"] < time.time():
                return None
            if pop:
                del self._pending[form_id]
            return entry

    def _check_user(self, username: str, password: str) -> bool:
        expected = self.users.get(username or "")
        return expected is not None and hmac.compare_digest((password or "").encode(), expected.encode())

    def _client_name(self, client_id: str) -> str:
        client = self.validator.clients.get(client_id)
        return (client.name or client.client_id) if client else client_id

    def _redirect(self, req: Request, location: str) -> Response:
        """Redirect; relative to the browser's page when behind jupyter-server-proxy."""
        prefix = _forwarded_prefix(req) or self.browser_prefix
        return redirect(location, f"{prefix}{req.path}" if prefix else None)

    # -- /authorize ----------------------------------------------------------------

    def authorize(self, req: Request) -> Response:
        if req.method == "GET":
            return self._authorize_get(req)
        if req.method == "POST":
            return self._authorize_post(req)
        return html_response(pages.message_page("Not allowed", "Use GET or POST."), 405)

    def _authorize_get(self, req: Request) -> Response:
        query = req.query_string.decode("latin-1")
        uri = f"{self.internal_url}/authorize" + (f"?{query}" if query else "")
        try:
            with self.validator.lock:
                scopes, info = self.server.validate_authorization_request(uri, http_method="GET")
        except oauth_errors.FatalClientError as exc:
            # RFC 6749 4.1.2.1: never redirect to an unverified redirect URI
            message = f"{exc.description} (error: {exc.error})"
            return html_response(pages.message_page("Invalid authorization request", message), 400)
        except oauth_errors.OAuth2Error:
            with self.validator.lock:
                headers, _, _ = self.server.create_authorization_response(uri, http_method="GET")
            return self._redirect(req, add_iss(headers["Location"], self.issuer))
        entry = {"kind": "authorize", "uri": uri, "client_id": info["client_id"], "scopes": list(scopes),
                 "redirect_uri": info["redirect_uri"], "state": info.get("state"),
                 "response_type": info.get("response_type"), "user": None}
        form_id = self._remember(entry)
        return html_response(pages.login_page(
            form_id=form_id, action="authorize", client_name=self._client_name(entry["client_id"]),
            scopes=entry["scopes"], users=self.users))

    def _authorize_post(self, req: Request) -> Response:
        form = req.form
        step = form.get("step")
        entry = self._lookup(form.get("form_id", ""), "authorize", pop=step == "consent")
        if entry is None:
            return html_response(pages.message_page(
                "Sign-in expired", "This sign-in page expired or was already used: start the login again "
                "from your notebook."), 400)
        name = self._client_name(entry["client_id"])
        if step == "login":
            username = form.get("username", "")
            if not self._check_user(username, form.get("password", "")):
                return html_response(pages.login_page(
                    form_id=form["form_id"], action="authorize", client_name=name, scopes=entry["scopes"],
                    users=self.users, error="Wrong username or password.", username=username), 401)
            entry["user"] = username
            return html_response(pages.consent_page(form_id=form["form_id"], action="authorize",
                                                    client_name=name, scopes=entry["scopes"], username=username))
        if step != "consent" or not entry["user"]:
            return html_response(pages.message_page("Bad request", "Sign in first."), 400)
        if form.get("decision") == "approve":
            with self.validator.lock:
                headers, _, _ = self.server.create_authorization_response(
                    entry["uri"], http_method="GET", scopes=entry["scopes"], credentials={"user": entry["user"]})
            return self._redirect(req, add_iss(headers["Location"], self.issuer))
        denied = oauth_errors.AccessDeniedError(description="The user denied the request.", state=entry["state"])
        location = add_params_to_uri(entry["redirect_uri"], denied.twotuples + [("iss", self.issuer)],
                                     fragment=entry["response_type"] == "token")
        return self._redirect(req, location)

    # -- /device (RFC 8628 verification page) -----------------------------------------

    def device(self, req: Request) -> Response:
        if req.method == "GET":
            return html_response(pages.device_page(users=self.users, user_code=req.args.get("user_code", "")))
        if req.method != "POST":
            return html_response(pages.message_page("Not allowed", "Use GET or POST."), 405)
        form = req.form
        if form.get("step") == "consent":
            return self._device_consent(req)
        user_code, username = form.get("user_code", ""), form.get("username", "")
        with self.validator.lock:
            device = self.validator.pending_device(user_code)
        if device is None:
            return html_response(pages.device_page(users=self.users, user_code=user_code,
                                                   error="That code is unknown, used or expired."), 400)
        if not self._check_user(username, form.get("password", "")):
            return html_response(pages.device_page(users=self.users, user_code=user_code,
                                                   error="Wrong username or password."), 401)
        form_id = self._remember({"kind": "device", "user_code": user_code, "user": username,
                                  "client_id": device["client_id"], "scopes": list(device["scopes"])})
        return html_response(pages.consent_page(
            form_id=form_id, action="device", client_name=self._client_name(device["client_id"]),
            scopes=device["scopes"], username=username))

    def _device_consent(self, req: Request) -> Response:
        entry = self._lookup(req.form.get("form_id", ""), "device", pop=True)
        with self.validator.lock:
            device = self.validator.pending_device(entry["user_code"]) if entry else None
            if device is not None:
                approved = req.form.get("decision") == "approve"
                device["status"], device["user"] = ("approved" if approved else "denied"), entry["user"]
        if device is None:
            return html_response(pages.message_page(
                "Code expired", "This code expired or was already used: start again on your device."), 400)
        if device["status"] == "approved":
            return html_response(pages.message_page("Device connected", "You can close this tab and go back "
                                                    "to your notebook."))
        return html_response(pages.message_page("Access denied", "The device was not given access."))
