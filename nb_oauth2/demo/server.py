"""The demo provider: oauthlib's endpoints and the data API on a loopback port.

:func:`start` binds ``127.0.0.1`` (or ``::1``), serves from a daemon thread
with werkzeug, and returns a running :class:`DemoProvider`. Nothing is logged
to stderr. See the package docstring for the endpoints.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from typing import Any
from urllib.parse import quote

from oauthlib.oauth2 import MetadataEndpoint, Server
from oauthlib.oauth2.rfc6749 import errors as oauth_errors
from oauthlib.oauth2.rfc8628.endpoints import DeviceAuthorizationEndpoint
from oauthlib.oauth2.rfc8628.grant_types import DeviceCodeGrant
from werkzeug.wrappers import Request, Response

from ..core.errors import ConfigurationError
from ..core.providers import NOTEBOOK_ORIGIN
from . import pages
from .api import DemoAPI, json_response
from .browser import BrowserFlows, html_response
from .data import Dataset
from .certs import peer_headers
from .clients import DEMO_SCOPES, PEER_CERT_HEADERS, TLS_AUTH_METHODS, DemoClient, basic_credentials
from .clients import generate_user_code, make_clients
from .listeners import accept_until, base_url, serve_quietly
from .validator import DemoValidator

__all__ = ["DEMO_USERS", "DemoProvider", "start"]

DEMO_USERS: dict[str, str] = {"alice": "wonderland", "bob": "builder"}
_PROFILES = {
    "alice": {"name": "Alice Liddell", "email": "alice@example.org"},
    "bob": {"name": "Bob Builder", "email": "bob@example.org"},
}
_LOOPBACK = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "::1", "[::1]": "::1"}
_MAX_BODY = 1 << 20

#: oauthlib 4 serves RFC 8628's token polling (pending, slow_down, expiry, denial); 3.3 does not
DEVICE_GRANT_SUPPORTED = hasattr(DeviceCodeGrant, "DEVICE_CODE_AUTHORIZED")


def _token(_request: Any = None) -> str:
    return secrets.token_urlsafe(32)


def _browser_base(url: str, port: int, public_url: str | None) -> str:
    if public_url:
        return public_url.rstrip("/")
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix:
        return f"{prefix.rstrip('/')}/proxy/{port}"
    return url


class DemoProvider:
    """A running demo authorization server and API. Use :func:`start`."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, access_token_ttl: int = 3600,
                 refresh_token_ttl: int = 86400, device_code_ttl: int = 600, device_interval: int = 5,
                 records: int = 5000, seed: int = 0, rotate_refresh_tokens: bool = True,
                 public_url: str | None = None, https: bool = False, mtls: bool = False) -> None:
        bind = _LOOPBACK.get(str(host).strip().lower())
        if bind is None:
            raise ConfigurationError(
                f"The demo provider only listens on loopback (127.0.0.1, ::1 or localhost), not {host!r}.")
        self.tls: Any = None
        if https or mtls:
            from .certs import DemoCertificates

            self.tls = DemoCertificates()
        self._httpd = serve_quietly(bind, int(port), self._wsgi, self.tls.server_context(mtls=False) if self.tls else None)
        self.port: int = self._httpd.socket.getsockname()[1]
        self.url = base_url("https" if self.tls else "http", bind, self.port)
        self._mtls_httpd: Any = None
        self.mtls_url: str | None = None
        if mtls:  # RFC 8705 5: mTLS endpoint aliases on a second port that asks for a client certificate
            self._mtls_httpd = serve_quietly(bind, 0, self._wsgi_mtls, self.tls.server_context(mtls=True))
            self.mtls_url = base_url("https", bind, self._mtls_httpd.socket.getsockname()[1])
        self.issuer = self.url
        self.browser_url = _browser_base(self.url, self.port, public_url)
        absolute = self.browser_url.startswith(("http://", "https://"))
        self._public_base = self.browser_url if absolute else self.url
        self.metadata_url = f"{self.url}/.well-known/oauth-authorization-server"
        self.callback_url = f"{self.browser_url}/callback"
        #: what clients send as redirect_uri: the callback, absolute (behind the hub's proxy the
        #: notebook's origin is unknown here, so it is NOTEBOOK_ORIGIN, turned relative on redirect)
        self.redirect_uri = self.callback_url if absolute else NOTEBOOK_ORIGIN + self.callback_url
        self.users = dict(DEMO_USERS)
        self.records, self.seed = records, seed
        self.token_requests = 0
        self._counter_lock = threading.Lock()
        self._dataset: Dataset | None = None
        self._dataset_lock = threading.Lock()
        self._driver: Any = None
        self._stopped = False
        redirect_uris = tuple(dict.fromkeys([self.redirect_uri, f"{self.url}/callback"]))
        self.clients: dict[str, DemoClient] = make_clients(redirect_uris)
        if mtls:
            self.clients.update(self.tls.clients(redirect_uris))
        self._build_endpoints(access_token_ttl, refresh_token_ttl, device_code_ttl, device_interval,
                              rotate_refresh_tokens, proxy_path=None if absolute else self.callback_url)
        self._stopping = threading.Event()
        self._wake, self._waker = socket.socketpair()  # stop() writes to _waker: the accept loops wake at once
        self._threads = [threading.Thread(target=accept_until, args=(httpd, self._stopping, self._wake),
                                          name=f"nb_oauth2-demo-{self.port}", daemon=True)
                         for httpd in (self._httpd, self._mtls_httpd) if httpd is not None]
        self._thread = self._threads[0]
        for thread in self._threads:
            thread.start()

    def _build_endpoints(self, access_ttl: int, refresh_ttl: int, device_ttl: int, interval: int,
                         rotate: bool, proxy_path: str | None) -> None:
        self.validator = DemoValidator(clients=self.clients, users=self.users, issuer=self.issuer,
                                       refresh_token_ttl=refresh_ttl, rotate_refresh_tokens=rotate,
                                       proxy_callback_path=proxy_path)
        self.oauth = Server(self.validator, token_expires_in=lambda _req: access_ttl,
                            token_generator=_token, refresh_token_generator=_token)
        self.oauth.catch_errors = True
        verification_uri = f"{self._public_base}/device"
        self.device_endpoint = DeviceAuthorizationEndpoint(
            self.validator, verification_uri=verification_uri, expires_in=device_ttl, interval=interval,
            verification_uri_complete=lambda code: f"{verification_uri}?user_code={quote(code)}",
            user_code_generator=generate_user_code)
        self.metadata = self._metadata()
        self.browser = BrowserFlows(server=self.oauth, validator=self.validator, issuer=self.issuer,
                                    internal_url=self.url, users=self.users,
                                    browser_prefix=None if proxy_path is None else self.browser_url)
        self.api = DemoAPI(base_url=self.url, dataset=self._get_dataset, verify=self._verify_bearer,
                           profiles=self._profile)

    def _metadata(self) -> dict[str, Any]:
        base = self.url
        claims = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self._public_base}/authorize",
            "token_endpoint": f"{base}/token",
            "revocation_endpoint": f"{base}/revoke",
            "introspection_endpoint": f"{base}/introspect",
            "device_authorization_endpoint": f"{base}/device_authorization",
            "userinfo_endpoint": f"{base}/userinfo",
            "scopes_supported": list(DEMO_SCOPES),
            "code_challenge_methods_supported": ["S256", "plain"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "authorization_response_iss_parameter_supported": True,
            "service_documentation": f"{self._public_base}/",
        }
        if not DEVICE_GRANT_SUPPORTED:
            del claims["device_authorization_endpoint"]
        if self.mtls_url:
            for key in ("token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported",
                        "introspection_endpoint_auth_methods_supported"):
                claims[key] = [*claims[key], *TLS_AUTH_METHODS]
        # raise_errors=False: oauthlib would insist on an https issuer; loopback http is the point here
        metadata = dict(MetadataEndpoint([self.oauth], claims=claims, raise_errors=False).claims)
        if self.mtls_url:
            names = ("token", "revocation", "introspection", "device_authorization", "userinfo")
            paths = ("/token", "/revoke", "/introspect", "/device_authorization", "/userinfo")
            metadata["mtls_endpoint_aliases"] = {f"{n}_endpoint": f"{self.mtls_url}{p}" for n, p in zip(names, paths)}
            metadata["tls_client_certificate_bound_access_tokens"] = True
        return metadata

    # -- public controls ----------------------------------------------------------

    @property
    def ca_path(self) -> str | None:
        """HTTPS mode: the demo CA's PEM bundle, for ``verify=``."""
        return self.tls.ca_path if self.tls else None

    @property
    def client_cert(self) -> tuple[str, str] | None:
        """mTLS mode: ``(cert_path, key_path)`` of the ``tls`` client (tls_client_auth)."""
        return self.tls.client_cert if self.mtls_url else None

    @property
    def self_signed_cert(self) -> tuple[str, str] | None:
        """mTLS mode: ``(cert_path, key_path)`` of the ``self_signed_tls`` client."""
        return self.tls.self_signed_cert if self.mtls_url else None

    def issue_client_cert(self, common_name: str, **options: Any) -> tuple[str, str]:
        """HTTPS mode: another client certificate from the demo CA (``not_before``/``not_after``)."""
        if self.tls is None:
            raise ConfigurationError("Start the demo with https=True to issue client certificates.")
        return self.tls.issue_client_cert(common_name, **options)

    @property
    def requests_without_auth(self) -> int:
        return self.api.requests_without_auth

    @property
    def driver(self) -> Any:
        """A test driver that plays the browser's part over HTTP (see :mod:`.driver`)."""
        if self._driver is None:
            from .driver import Driver

            self._driver = Driver(self)
        return self._driver

    def set_rate_limit(self, limit: int | None, window: float = 1.0, retry_after: int = 1) -> None:
        """Answer API requests past ``limit`` per ``window`` seconds with 429 + Retry-After."""
        self.api.rate.configure(limit, window, retry_after)

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired (forces a refresh)."""
        with self.validator.lock:
            self.validator.expire_access_tokens()

    def revoke_all(self) -> None:
        """Revoke every access and refresh token issued so far."""
        with self.validator.lock:
            self.validator.revoke_all()

    def stop(self) -> None:
        """Close the port and join the thread (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._waker.send(b"\0")
        for thread in self._threads:
            thread.join(timeout=1.0)
        for httpd in (self._httpd, self._mtls_httpd):
            if httpd is not None:
                httpd.server_close()
        self._wake.close()
        self._waker.close()
        if self.tls is not None:
            self.tls.cleanup()

    @property
    def running(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def __enter__(self) -> DemoProvider:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<DemoProvider {self.url} {state}>"

    # -- internals --------------------------------------------------------------------

    def _get_dataset(self) -> Dataset:
        if self._dataset is None:
            with self._dataset_lock:
                if self._dataset is None:
                    self._dataset = Dataset(records=self.records, seed=self.seed)
        return self._dataset

    def _profile(self, user: str) -> dict[str, Any]:
        extra = _PROFILES.get(user, {})
        return {"sub": user, "preferred_username": user, **extra}

    def _oauth_args(self, req: Request) -> tuple[str, str, dict[str, str]]:
        query = req.query_string.decode("latin-1")
        uri = f"{self.url}{req.path}" + (f"?{query}" if query else "")
        body = req.get_data(as_text=True) if req.method == "POST" else ""
        drop = {name.lower() for name in PEER_CERT_HEADERS}  # only the TLS layer may set these
        headers = {k: v for k, v in req.headers.items() if k.lower() not in drop}
        headers.update(peer_headers(req.environ))
        return uri, body, headers

    def _verify_bearer(self, req: Request, scopes: list[str]) -> tuple[bool, Any]:
        uri, _, headers = self._oauth_args(req)
        with self.validator.lock:
            return self.oauth.verify_request(uri, http_method=req.method, headers=headers, scopes=scopes)

    def _call(self, method: Any, req: Request) -> Response:
        uri, body, headers = self._oauth_args(req)
        try:
            with self.validator.lock:
                out_headers, out_body, status = method(uri, http_method=req.method, body=body, headers=headers)
        except oauth_errors.OAuth2Error as exc:
            out_headers, out_body, status = dict(exc.headers), exc.json, exc.status_code
        if isinstance(out_body, dict):
            out_body = json.dumps(out_body)
        resp = Response(out_body or "", status=status)
        for key, value in (out_headers or {}).items():
            resp.headers[key] = value
        if out_body and "Content-Type" not in resp.headers:
            resp.headers["Content-Type"] = "application/json"
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    def _device_authorization(self, req: Request) -> Response:
        if not DEVICE_GRANT_SUPPORTED:
            return json_response({"error": "unsupported_grant_type", "error_description":
                                  "the demo provider's device grant needs oauthlib>=4"}, 400)
        resp = self._call(self.device_endpoint.create_device_authorization_response, req)
        if resp.status_code == 200:
            data = json.loads(resp.get_data(as_text=True))
            basic = basic_credentials(req.headers)
            client_id = basic[0] if basic else req.form.get("client_id", "")
            with self.validator.lock:
                self.validator.save_device_code(client_id, data, (data.get("scope") or "").split())
        return resp

    def _route(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
            return json_response(self.metadata, 200, {"Access-Control-Allow-Origin": "*",
                                                      "Cache-Control": "max-age=60"})
        if path == "/authorize":
            return self.browser.authorize(req)
        if path == "/device":
            return self.browser.device(req)
        if path == "/callback":
            query = req.query_string.decode("latin-1")
            return html_response(pages.callback_page(self.callback_url + (f"?{query}" if query else "")))
        if path == "/userinfo" or path.startswith("/api/"):
            return self.api.handle(req)
        if path == "/":
            return html_response(pages.message_page(
                "nb_oauth2 demo provider", f"Metadata: {self.metadata_url}. Demo users: "
                + ", ".join(f"{u} / {p}" for u, p in self.users.items())))
        post = {"/token": self.oauth.create_token_response, "/revoke": self.oauth.create_revocation_response,
                "/introspect": self.oauth.create_introspect_response}
        if path in post or path == "/device_authorization":
            if req.method != "POST":
                return json_response({"error": "invalid_request", "error_description": "Use POST."}, 405,
                                     {"Allow": "POST"})
            if path == "/token":
                with self._counter_lock:
                    self.token_requests += 1
            if path == "/device_authorization":
                return self._device_authorization(req)
            return self._call(post[path], req)
        return json_response({"error": "not_found", "error_description": f"Nothing at {req.path}."}, 404)

    def _wsgi_mtls(self, environ: dict, start_response: Any) -> Any:
        environ["nb_oauth2.mtls"] = True
        environ["nb_oauth2.base_url"] = self.mtls_url
        return self._wsgi(environ, start_response)

    def _wsgi(self, environ: dict, start_response: Any) -> Any:
        req = Request(environ)
        req.max_content_length = _MAX_BODY
        try:
            resp = self._route(req)
        except Exception as exc:  # never let werkzeug print a traceback into a notebook cell
            resp = json_response({"error": "server_error", "error_description": type(exc).__name__}, 500)
        return resp(environ, start_response)


def start(*, host: str = "127.0.0.1", port: int = 0, access_token_ttl: int = 3600,
          refresh_token_ttl: int = 86400, device_code_ttl: int = 600, device_interval: int = 5,
          records: int = 5000, seed: int = 0, rotate_refresh_tokens: bool = True,
          public_url: str | None = None, https: bool = False, mtls: bool = False) -> DemoProvider:
    """Start a demo provider on loopback and return it, already accepting connections.

    ``https=True`` serves over TLS with a throwaway CA (``p.ca_path`` for ``verify=``);
    ``mtls=True`` adds RFC 8705 mutual TLS: endpoint aliases on a second port
    (``p.mtls_url``), the ``tls`` and ``self_signed_tls`` clients (``p.client_cert``,
    ``p.self_signed_cert``) and certificate-bound access tokens. Needs ``trustme``.
    """
    return DemoProvider(host=host, port=port, access_token_ttl=access_token_ttl,
                        refresh_token_ttl=refresh_token_ttl, device_code_ttl=device_code_ttl,
                        device_interval=device_interval, records=records, seed=seed,
                        rotate_refresh_tokens=rotate_refresh_tokens, public_url=public_url,
                        https=https, mtls=mtls)
