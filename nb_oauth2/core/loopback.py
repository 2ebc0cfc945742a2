"""A one-shot loopback redirect catcher (RFC 8252 section 7.3).

:class:`LoopbackCatcher` listens on 127.0.0.1 (or ::1), on a free port by
default, for exactly one redirect of one login: the right path, a loopback
``Host`` header (DNS rebinding) and the login's ``state``. Anything else is
answered 404/400 and the catcher keeps waiting. After the one good request it
answers a self-contained page and closes its port. It never logs to stderr
(that would land in the notebook's cell output). Each connection has its own
daemon thread and a short read timeout, so idle connections (a browser's
preconnects, a local port scan) never hold up the real redirect. SECURITY_CASES
41-44, 61.

:func:`choose_via` tells whether the browser can reach the kernel's loopback
at all (local Jupyter), only through jupyter-server-proxy (JupyterHub,
Binder), or not (Colab, SSH): then the user pastes the redirect back.
"""

from __future__ import annotations

import html
import importlib.util
import logging
import os
import socket
import sys
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .errors import ConfigurationError, LoginCancelled, LoginTimeout, LoopbackPortBusy
from .names import VIA_CHOICES
from .providers import NOTEBOOK_ORIGIN
from .urls import is_loopback_host

__all__ = ["LoopbackCatcher", "LoopbackPortBusy", "choose_via", "VIA_CHOICES", "proxied_path", "public_base_url"]

log = logging.getLogger(__name__)

_POLL = 0.1
#: seconds a connection may stay silent; it only holds its own thread (case 61)
_IDLE_TIMEOUT = 3.0
#: idle connections kept at most; the oldest is dropped to make room (a local flood cannot starve the redirect)
_MAX_IDLE = 32

SUCCESS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}}
h1{{font-size:1.4em}}</style></head>
<body><h1>{title}</h1><p>{body}</p><p>You can close this tab.</p></body></html>
"""


def _is_loopback_host(host: str) -> bool:
    return is_loopback_host(host, allow_name=False)  # a literal address: 'localhost' may map off-loopback


def proxied_path(prefix: str, port: int, path: str = "/callback") -> str:
    """``{prefix}proxy/{port}{path}``: where jupyter-server-proxy exposes a kernel port."""
    return f"{prefix.rstrip('/')}/proxy/{port}{path}"


def public_base_url() -> str | None:
    """The notebook server's public URL with the user prefix, when it can be told.

    ``NB_OAUTH2_PUBLIC_URL`` wins; else ``JUPYTERHUB_PUBLIC_URL`` or
    ``JUPYTERHUB_HOST`` joined with ``JUPYTERHUB_SERVICE_PREFIX``.
    """
    env = os.environ
    if env.get("NB_OAUTH2_PUBLIC_URL"):
        return env["NB_OAUTH2_PUBLIC_URL"].rstrip("/") + "/"
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    host = env.get("JUPYTERHUB_PUBLIC_URL") or env.get("JUPYTERHUB_HOST")
    if not host or not host.startswith(("https://", "http://")):
        return None
    parts = urlsplit(host)
    return f"{parts.scheme}://{parts.netloc}/{prefix.strip('/')}/".replace("//", "/").replace(":/", "://", 1)


class _Server(ThreadingMixIn, HTTPServer):
    """One daemon thread per connection; connections still silent are cut when the catcher closes."""

    catcher: "LoopbackCatcher"
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # a burst of connections waits in the backlog, not in SYN retries

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._idle: OrderedDict[int, socket.socket] = OrderedDict()
        self._idle_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._idle_lock:
            while len(self._idle) >= _MAX_IDLE:
                _cut(self._idle.popitem(last=False)[1])
            self._idle[id(request)] = request
        super().process_request(request, client_address)

    def busy(self, request: Any) -> None:
        """The connection sent a request: it is answered even if the catcher closes meanwhile."""
        with self._idle_lock:
            self._idle.pop(id(request), None)

    def shutdown_request(self, request: Any) -> None:
        self.busy(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        with self._idle_lock:
            idle, self._idle = list(self._idle.values()), OrderedDict()
        for request in idle:
            _cut(request)

    def handle_error(self, request: Any, client_address: Any) -> None:  # no traceback on stderr
        log.debug("loopback catcher: a request failed", exc_info=True)


def _cut(request: socket.socket) -> None:
    """End a silent connection now: its handler thread's read returns at once."""
    try:
        request.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = _IDLE_TIMEOUT  # a client that connects and says nothing only holds its own thread (case 61)
    server_version = "nb_oauth2"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (no stderr access log)
        return

    def do_GET(self) -> None:  # noqa: N802
        self.server.busy(self.connection)
        status, title, body = self.server.catcher._handle(self.path, self.headers.get("Host", ""),
                                                          self.headers.get("X-Forwarded-Prefix", ""))
        page = SUCCESS_PAGE.format(title=html.escape(title), body=html.escape(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(page)

    def do_POST(self) -> None:  # noqa: N802
        self.server.busy(self.connection)
        self.send_error(405)


class LoopbackCatcher:
    """Catch one OAuth redirect on ``http://127.0.0.1:<port><path>``.

    ``state`` may be set after construction (``catcher.state = ...``): the
    redirect URI must be known before the login starts, the state only after.
    """

    def __init__(self, *, path: str = "/callback", state: str | None = None, host: str = "127.0.0.1",
                 port: int = 0, timeout: float = 300, proxy_prefix: str | None = None) -> None:
        if not _is_loopback_host(host):
            raise ConfigurationError(
                f"The loopback catcher listens on 127.0.0.1 or ::1 only, not {host!r} (RFC 8252 7.3); "
                "listening on other interfaces would let other machines send the redirect."
            )
        self.path = "/" + path.lstrip("/")
        self.state = state
        self.host = host
        self.timeout = timeout
        self.proxy_prefix = proxy_prefix if proxy_prefix is not None else os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._decide = threading.Lock()  # connections are handled in parallel: one success only
        self._closed = threading.Event()
        self._result: str | None = None
        self._public_redirect_uri: str | None = None
        self._deadline = float("inf")
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------

    def _bind(self) -> _Server:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server_cls = type("_LoopbackServer", (_Server,), {"address_family": family})
        try:
            server = server_cls((self.host, self._requested_port), _Handler)
        except OSError as exc:
            raise LoopbackPortBusy(
                f"Cannot listen on {self.host} port {self._requested_port} ({exc.strerror or exc}). "
                "Use port=0 for a free port, or paste the redirect URL back into the login box."
            ) from None
        server.catcher = self
        server.timeout = _POLL
        return server

    def start(self) -> "LoopbackCatcher":
        """Bind the port and serve in a daemon thread (idempotent)."""
        if self._server is None:
            self._server = self._bind()
            self.port = self._server.server_address[1]
            self._deadline = time.monotonic() + self.timeout
            self._thread = threading.Thread(target=self._serve, name="nb_oauth2-loopback", daemon=True)
            self._thread.start()
        return self

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        try:
            while not (self._stop.is_set() or self._done.is_set()) and time.monotonic() < self._deadline:
                server.handle_request()  # returns after _POLL when idle
        finally:
            server.server_close()
            self._closed.set()

    def close(self) -> None:
        """Stop listening; the port is closed when this returns (within about 0.1 s)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
        elif self._server is not None and thread is None:
            self._server.server_close()

    @property
    def closed(self) -> bool:
        return self._server is None or self._closed.is_set()

    @property
    def received(self) -> bool:
        """True once the redirect of this login arrived (the catcher then closes by itself)."""
        return self._done.is_set()

    def __enter__(self) -> "LoopbackCatcher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- addresses --------------------------------------------------------------------

    @property
    def redirect_uri(self) -> str:
        """What to send as ``redirect_uri``: the public proxied one when set, else the loopback one."""
        return self._public_redirect_uri or self.loopback_redirect_uri

    @property
    def loopback_redirect_uri(self) -> str:
        self.start()
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    def browser_redirect_uri(self, public_base: str | None) -> str:
        """The redirect URI through jupyter-server-proxy: ``{public_base}proxy/{port}{path}``.

        ``public_base`` is the notebook server's public URL with the user prefix
        (``https://hub.example.org/user/alice/``); ``None`` when the hub's address is
        unknown: the URI is then the proxied path on the notebook's own origin
        (``NOTEBOOK_ORIGIN``), for providers that redirect by path (the demo).
        It becomes :attr:`redirect_uri`.
        """
        self.start()
        if public_base is None:
            if not self.proxy_prefix:
                raise ConfigurationError("No JupyterHub prefix (JUPYTERHUB_SERVICE_PREFIX): this catcher is not "
                                         "behind jupyter-server-proxy.")
            public_base = NOTEBOOK_ORIGIN + "/" + self.proxy_prefix.strip("/")
        self._public_redirect_uri = public_base.rstrip("/") + f"/proxy/{self.port}{self.path}"
        return self._public_redirect_uri

    # -- one request --------------------------------------------------------------------

    def _host_ok(self, host: str, forwarded_prefix: str = "") -> bool:
        allowed = {f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"[::1]:{self.port}"}
        public = self._public_redirect_uri or ""
        by_path = public.startswith(NOTEBOOK_ORIGIN + "/")
        if public and not by_path:
            allowed.add(urlsplit(public).netloc.lower())
        if host.strip().lower() in allowed:
            return True
        # through jupyter-server-proxy on a hub whose address is unknown: the proxy names the prefix it serves
        return by_path and bool(self.proxy_prefix) and \
            forwarded_prefix.rstrip("/") == proxied_path(self.proxy_prefix or "", self.port, "")

    def _path_ok(self, path: str) -> bool:
        if path == self.path:
            return True
        return bool(self.proxy_prefix) and path == proxied_path(self.proxy_prefix, self.port, self.path)

    def _handle(self, raw_path: str, host: str, forwarded_prefix: str = "") -> tuple[int, str, str]:
        """Decide on one request: (status, page title, page text)."""
        with self._decide:
            return self._decide_one(raw_path, host, forwarded_prefix)

    def _decide_one(self, raw_path: str, host: str, forwarded_prefix: str = "") -> tuple[int, str, str]:
        if self._done.is_set():
            return 410, "Already used", "This sign-in link was already used. Return to the notebook."
        parts = urlsplit(raw_path)
        if not self._path_ok(parts.path):
            return 404, "Not found", "Nothing here."
        if not self._host_ok(host, forwarded_prefix):
            return 400, "Bad request", "This address only answers requests addressed to the loopback interface."
        states = [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "state"]
        if self.state is None or states != [self.state]:
            return 400, "Not this sign-in", (
                "This redirect does not belong to the login waiting in the notebook (state mismatch). "
                "Use the link shown in the notebook.")
        self._result = self.redirect_uri.split("?")[0] + (f"?{parts.query}" if parts.query else "")
        self._done.set()
        threading.Thread(target=self.close, name="nb_oauth2-loopback-close", daemon=True).start()
        if any(k == "error" for k, _ in parse_qsl(parts.query)):
            return 200, "Sign-in not completed", "The provider did not grant access. Return to the notebook for details."
        return 200, "Signed in", "The notebook received the sign-in. Return to the notebook."

    def wait(self, *cancel: threading.Event | None, timeout: float | None = None) -> str:
        """Block until the redirect arrives; return it as a full URL.

        Raises :class:`LoginCancelled` when any ``cancel`` event is set or the catcher's own
        time limit passes, :class:`LoginTimeout` when ``timeout`` seconds pass first (the
        catcher then stays up at least that long); the port is closed in every case.
        """
        self.start()
        events = [event for event in cancel if event is not None]
        give_up = float("inf") if timeout is None else time.monotonic() + timeout
        if timeout is not None:  # the catcher stays up while the caller waits
            self._deadline = max(self._deadline, give_up)
        try:
            while not self._done.is_set():
                if any(event.is_set() for event in events):
                    raise LoginCancelled("The login was cancelled; the loopback port is closed.")
                now = time.monotonic()
                if now >= give_up:
                    raise LoginTimeout(f"No redirect reached the loopback port within timeout={timeout:g} s; "
                                       "it is closed now. Start the login again (or pass a larger timeout=).")
                if now >= self._deadline or self._closed.is_set():
                    raise LoginCancelled(
                        f"No redirect reached the loopback port within {self.timeout:g} s; it is closed now. "
                        "Paste the address the browser shows instead, or start the login again."
                    )
                self._done.wait(_POLL)
            assert self._result is not None
            return self._result
        finally:
            self.close()

    def __repr__(self) -> str:
        return f"<LoopbackCatcher {self.loopback_redirect_uri if self._server else 'unbound'}>"


def _jupyter_server_proxy_available() -> bool:
    try:
        return importlib.util.find_spec("jupyter_server_proxy") is not None
    except (ImportError, ValueError):
        return False


def choose_via(via: str = "auto") -> tuple[str, str]:
    """How the browser's redirect gets back to the kernel: (method, reason shown to the user)."""
    if via not in VIA_CHOICES:
        raise ConfigurationError(f"via={via!r}: choose one of {', '.join(VIA_CHOICES)}.")
    if via != "auto":
        return via, f"chosen with via={via!r}"
    env = os.environ
    if env.get("JUPYTERHUB_SERVICE_PREFIX"):
        if _jupyter_server_proxy_available():
            return "proxy", "JupyterHub/Binder: the browser reaches this kernel through jupyter-server-proxy"
        return "paste", ("JupyterHub/Binder without jupyter-server-proxy: the browser cannot reach this "
                         "kernel's loopback port")
    if "google.colab" in sys.modules:
        return "paste", "Colab: the kernel runs on a Google machine, not beside your browser"
    if env.get("SSH_CONNECTION") or env.get("SSH_CLIENT"):
        return "paste", "the kernel runs over SSH, on another machine than your browser"
    if env.get("CODESPACES") or env.get("KUBERNETES_SERVICE_HOST"):
        return "paste", "the kernel runs in a remote container (Codespaces/Kubernetes)"
    return "loopback", "local Jupyter: the kernel and the browser share this machine"
