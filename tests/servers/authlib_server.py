"""A third-party OAuth 2 authorization server on loopback, built on Authlib (test fixture).

nb_oauth2's flows must work against a server implementation other than its own
demo provider. This one is Authlib's ``AuthorizationServer`` (Flask) with
in-memory models: authorization code + PKCE (S256), password, client
credentials, refresh with rotation, device authorization (RFC 8628),
revocation (RFC 7009), the RFC 9207 ``iss`` parameter, RFC 8414 metadata and a
protected ``/api/me``. Its handle and driver mirror the demo provider's::

    srv = start_authlib_server(access_token_ttl=3600)
    redirect = srv.driver.authorize(authorization_url, username="alice")
    srv.driver.approve_device(user_code)
    srv.stop()

Transport: Authlib >= 1.3 accepts plain http for loopback hosts (RFC 8252 7.3),
so ``AUTHLIB_INSECURE_TRANSPORT`` is NOT needed and not set. (Were it ever
needed, it would be test-only and set here, never by the nb_oauth2 package.)
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant, DeviceCredentialDict
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from nb_oauth2.demo.driver import DriverError

__all__ = ["AuthlibServer", "AuthlibDriver", "start_authlib_server", "USERS", "SCOPES"]

USERS: dict[str, str] = {"alice": "wonderland", "bob": "builder"}
SCOPES: tuple[str, ...] = ("profile", "email", "read")
DEVICE_GRANT = DeviceCodeGrant.GRANT_TYPE
_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_TIMEOUT = 10.0


# -- in-memory models (Authlib's mixin protocols) ---------------------------------------


@dataclass
class Client:
    """A registered client; ``public`` clients have no secret and authenticate with ``none``."""

    name: str
    client_id: str
    client_secret: str | None = field(repr=False)
    grant_types: tuple[str, ...]
    own_callback: str
    #: how a confidential client may authenticate (a strict server registers one method per client)
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")

    @property
    def public(self) -> bool:
        return self.client_secret is None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.own_callback

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Any loopback http URI (RFC 8252 7.3: any port, any path) or the server's /callback."""
        parts = urlsplit(redirect_uri)
        return redirect_uri == self.own_callback or (
            parts.scheme == "http" and parts.hostname in _LOOPBACK and not parts.fragment)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if self.public else method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() > self.expires_at


@dataclass
class Token:
    client_id: str
    user: str | None
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scope: str
    expires_in: int
    issued_at: float = field(default_factory=time.time)
    access_revoked: bool = False
    refresh_revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.access_revoked

    def get_user(self) -> str | None:
        return self.user

    def get_client(self) -> Client:
        return _state().clients_by_id[self.client_id]


class State:
    """Everything the server remembers (one per server instance)."""

    def __init__(self, clients: dict[str, Client], *, interval: int) -> None:
        self.clients = clients
        self.clients_by_id = {c.client_id: c for c in clients.values()}
        self.codes: dict[str, AuthCode] = {}
        self.tokens: list[Token] = []
        self.devices: dict[str, DeviceCredentialDict] = {}
        self.device_grants: dict[str, tuple[str, bool]] = {}
        self.last_poll: dict[str, float] = {}
        self.interval = interval
        self.lock = threading.RLock()
        self.token_requests = 0

    def find(self, *, access: str | None = None, refresh: str | None = None) -> Token | None:
        with self.lock:
            for tok in self.tokens:
                if (access and tok.access_token == access) or (refresh and tok.refresh_token == refresh):
                    return tok
        return None


def _state() -> State:
    from flask import current_app

    return current_app.config["NB_TEST_STATE"]


# -- grants and endpoints ----------------------------------------------------------------


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = _AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> AuthCode:
        data = request.payload.data
        item = AuthCode(code, request.client.client_id, request.payload.redirect_uri or "",
                        request.payload.scope or "", request.user, data.get("code_challenge"),
                        data.get("code_challenge_method"), time.time() + 300)
        _state().codes[code] = item
        return item

    def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
        item = _state().codes.get(code)
        if item and item.client_id == client.client_id and not item.is_expired():
            return item
        return None

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        _state().codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthCode) -> str:
        return authorization_code.user


class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = _AUTH_METHODS

    def authenticate_user(self, username: str, password: str) -> str | None:
        expected = USERS.get(username)
        return username if expected and secrets.compare_digest(expected, password) else None


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotation: every refresh issues a new refresh token and revokes the old one.

    The old access token stays valid until it expires (requests in flight keep working).
    """

    TOKEN_ENDPOINT_AUTH_METHODS = _AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        tok = _state().find(refresh=refresh_token)
        return tok if tok and not tok.refresh_revoked else None

    def authenticate_user(self, refresh_token: Token) -> str | None:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: Token) -> None:
        refresh_token.refresh_revoked = True


class DeviceGrant(DeviceCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = _AUTH_METHODS

    def query_device_credential(self, device_code: str) -> DeviceCredentialDict | None:
        return _state().devices.get(device_code)

    def query_user_grant(self, user_code: str) -> tuple[str, bool] | None:
        return _state().device_grants.get(user_code)

    def should_slow_down(self, credential: DeviceCredentialDict) -> bool:
        """RFC 8628 3.5: polling faster than ``interval`` (with 0.3 s grace) earns ``slow_down``."""
        state, now = _state(), time.monotonic()
        with state.lock:
            last = state.last_poll.get(credential["device_code"])
            state.last_poll[credential["device_code"]] = now
        return last is not None and now - last < state.interval - 0.3


class DeviceEndpoint(DeviceAuthorizationEndpoint):
    def get_verification_uri(self) -> str:
        return request.host_url.rstrip("/") + "/device"

    def save_device_credential(self, client_id: str, scope: str, data: dict) -> None:
        cred = DeviceCredentialDict(client_id=client_id, scope=scope, **data)
        cred["expires_at"] = time.time() + data["expires_in"]
        _state().devices[data["device_code"]] = cred


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = _AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        state = _state()
        if token_type_hint == "refresh_token":
            return state.find(refresh=token_string) or state.find(access=token_string)
        return state.find(access=token_string) or state.find(refresh=token_string)

    def revoke_token(self, token: Token, request: Any) -> None:
        """Revoking either token of a pair ends both (a common server policy)."""
        token.access_revoked = token.refresh_revoked = True


class Issuer(IssuerParameter):
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class _Validator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> Token | None:
        return _state().find(access=token_string)


# -- the Flask app ---------------------------------------------------------------------------


def _page(title: str, body: str, status: int = 200) -> tuple[str, int, dict[str, str]]:
    text = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return text, status, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}


def _login_form(action: str, intro: str, extra: str = "") -> str:
    return (f"<p>{intro}</p><form method='post' action='{html.escape(action)}'>{extra}"
            "<label>User <input name='username'></label> <label>Password "
            "<input name='password' type='password'></label> "
            "<button name='decision' value='approve'>Approve</button> "
            "<button name='decision' value='deny'>Deny</button></form>")


def _signed_in_user() -> str | None:
    username, password = request.form.get("username", ""), request.form.get("password", "")
    expected = USERS.get(username)
    return username if expected and secrets.compare_digest(expected, password) else None


def _metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "revocation_endpoint": f"{issuer}/revoke",
        "device_authorization_endpoint": f"{issuer}/device_authorization",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "password", "client_credentials", "refresh_token",
                                  DEVICE_GRANT],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(_AUTH_METHODS),
        "authorization_response_iss_parameter_supported": True,
    }


def build_app(state: State, *, issuer: str, access_token_ttl: int) -> Flask:
    """The Flask app: Authlib's server, its endpoints, a login/consent page and /api/me."""
    app = Flask("nb_oauth2_authlib_test_server")
    ttl = {g: access_token_ttl for g in ("authorization_code", "password", "client_credentials",
                                         "refresh_token", DEVICE_GRANT)}
    app.config.update(NB_TEST_STATE=state, OAUTH2_REFRESH_TOKEN_GENERATOR=True, OAUTH2_TOKEN_EXPIRES_IN=ttl,
                      OAUTH2_SCOPES_SUPPORTED=list(SCOPES))

    def save_token(token: dict, req: Any) -> None:
        with state.lock:
            state.tokens.append(Token(req.client.client_id, getattr(req, "user", None), token["access_token"],
                                      token.get("refresh_token"), token.get("scope", ""), int(token["expires_in"])))

    server = AuthorizationServer(app, query_client=state.clients_by_id.get, save_token=save_token)
    server.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=False)])
    for grant in (PasswordGrant, ClientCredentialsGrant, RefreshTokenGrant, DeviceGrant):
        server.register_grant(grant)
    server.register_endpoint(Revocation)
    endpoint = DeviceEndpoint(server)
    endpoint.INTERVAL = state.interval
    server.register_endpoint(endpoint)
    server.register_extension(Issuer(issuer))
    protector = ResourceProtector()
    protector.register_token_validator(_Validator())

    @app.before_request
    def _count() -> None:
        if request.path == "/token" and request.method == "POST":
            with state.lock:
                state.token_requests += 1

    @app.get("/.well-known/oauth-authorization-server")
    def metadata() -> Any:
        return jsonify(_metadata(issuer))

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        user = _signed_in_user() if request.method == "POST" else None
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            return server.handle_error_response(request, error)
        if request.method == "GET" or user is None:
            intro = f"Sign in to let {html.escape(grant.client.name)} read your data."
            status = 401 if request.method == "POST" else 200
            return _page("Sign in", _login_form(request.full_path, intro), status)
        approved = request.form.get("decision") == "approve"
        return server.create_authorization_response(grant=grant, grant_user=user if approved else None)

    @app.post("/token")
    def token() -> Any:
        return server.create_token_response()

    @app.post("/revoke")
    def revoke() -> Any:
        return server.create_endpoint_response(Revocation.ENDPOINT_NAME)

    @app.post("/device_authorization")
    def device_authorization() -> Any:
        return server.create_endpoint_response(DeviceEndpoint.ENDPOINT_NAME)

    @app.route("/device", methods=["GET", "POST"])
    def device() -> Any:
        code = (request.values.get("user_code") or "").strip().upper()
        field_ = f"<label>Code <input name='user_code' value='{html.escape(code)}'></label> "
        if request.method == "GET":
            return _page("Device sign-in", _login_form("/device", "Enter the code shown on your device.", field_))
        cred = next((c for c in state.devices.values() if c["user_code"] == code and not c.is_expired()), None)
        if cred is None:
            return _page("Unknown or expired code", "", 400)
        user = _signed_in_user()
        if user is None:
            return _page("Sign-in failed", _login_form("/device", "Try again.", field_), 401)
        approved = request.form.get("decision") == "approve"
        state.device_grants[code] = (user, approved)
        return _page("Approved" if approved else "Denied", "<p>You can close this tab.</p>")

    @app.get("/callback")
    def callback() -> Any:
        return _page("Signed in", "<p>Copy this page's URL back into your notebook.</p>")

    @app.get("/api/me")
    @protector()
    def me() -> Any:
        tok = current_token
        return jsonify(sub=tok.user or tok.client_id, client_id=tok.client_id, scope=tok.scope,
                       name=(tok.user or "service").title())

    return app


# -- the handle and driver (same interface as the demo provider's) -------------------------------


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (it would land in notebook cell output)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002
        pass


def _make_clients(callback: str) -> dict[str, Client]:
    def client(name: str, grant_types: tuple[str, ...], public: bool) -> Client:
        return Client(name, f"authlib-{name}", None if public else secrets.token_urlsafe(24), grant_types, callback)

    return {
        "web": client("web", ("authorization_code", "refresh_token"), False),
        "public": client("public", ("authorization_code", "refresh_token"), True),
        "password": client("password", ("password", "refresh_token"), False),
        "service": client("service", ("client_credentials",), False),
        "service-post": replace(client("service-post", ("client_credentials",), False),
                                auth_methods=("client_secret_post",)),
        "device": client("device", (DEVICE_GRANT, "refresh_token"), True),
    }


class AuthlibServer:
    """Authlib's authorization server on 127.0.0.1:<ephemeral> in a daemon thread."""

    def __init__(self, *, access_token_ttl: int = 3600, device_interval: int = 1, host: str = "127.0.0.1") -> None:
        self._app: Flask | None = None
        self._httpd = make_server(host, 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://{host}:{self._httpd.server_port}"
        self.issuer = self.url
        self.metadata_url = f"{self.url}/.well-known/oauth-authorization-server"
        self.users = dict(USERS)
        self.clients = _make_clients(f"{self.url}/callback")
        self.state = State(self.clients, interval=device_interval)
        self._app = build_app(self.state, issuer=self.issuer, access_token_ttl=access_token_ttl)
        self.driver = AuthlibDriver(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="authlib-test-server", daemon=True)
        self._thread.start()

    def _wsgi(self, environ: dict, start_response: Any) -> Any:
        assert self._app is not None
        return self._app(environ, start_response)

    @property
    def token_requests(self) -> int:
        """POSTs received by /token so far."""
        return self.state.token_requests

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired (refresh tests without waiting)."""
        with self.state.lock:
            for tok in self.state.tokens:
                tok.issued_at -= tok.expires_in + 1

    def revoke_all(self) -> None:
        with self.state.lock:
            for tok in self.state.tokens:
                tok.access_revoked = tok.refresh_revoked = True

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> AuthlibServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"AuthlibServer(url={self.url!r})"


class AuthlibDriver:
    """Plays the browser's part against the Authlib server's login, consent and device pages."""

    def __init__(self, server: AuthlibServer) -> None:
        self._server = server

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # loopback only: never through a proxy from the environment
        return session

    def authorize(self, authorization_url: str, *, username: str = "alice", password: str | None = None,
                  approve: bool = True) -> str:
        """Sign in and approve (or deny); return the redirect URL without following it."""
        password = self._server.users.get(username, "") if password is None else password
        form = {"username": username, "password": password, "decision": "approve" if approve else "deny"}
        with self._session() as session:
            page = session.get(authorization_url, allow_redirects=False, timeout=_TIMEOUT)
            if page.is_redirect:
                return page.headers["Location"]
            if page.status_code != 200:
                raise DriverError(f"The Authlib authorization page answered HTTP {page.status_code}.",
                                  status=page.status_code)
            final = session.post(authorization_url, data=form, allow_redirects=False, timeout=_TIMEOUT)
        if not final.is_redirect:
            raise DriverError(f"Signing in as {username!r} failed (HTTP {final.status_code}).",
                              status=final.status_code)
        return final.headers["Location"]

    def approve_device(self, user_code: str, *, username: str = "alice", password: str | None = None,
                       approve: bool = True) -> None:
        """Enter ``user_code`` on the verification page, sign in, approve (or deny)."""
        password = self._server.users.get(username, "") if password is None else password
        form = {"user_code": user_code, "username": username, "password": password,
                "decision": "approve" if approve else "deny"}
        with self._session() as session:
            done = session.post(f"{self._server.url}/device", data=form, timeout=_TIMEOUT)
        if done.status_code != 200:
            raise DriverError(f"The Authlib device page answered HTTP {done.status_code}.", status=done.status_code)


def start_authlib_server(*, access_token_ttl: int = 3600, device_interval: int = 1) -> AuthlibServer:
    """Start the server; ``srv.stop()`` when done (or use it as a context manager)."""
    return AuthlibServer(access_token_ttl=access_token_ttl, device_interval=device_interval)
