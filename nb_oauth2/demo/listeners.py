"""The demo provider's HTTP(S) listeners: quiet werkzeug servers on loopback sockets.

:func:`serve_quietly` binds and wraps TLS (handshake deferred to the request thread);
:func:`accept_until` is the accept loop that sleeps in select() until a connection or stop().
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from ..core.errors import ConfigurationError

__all__ = ["serve_quietly", "accept_until", "base_url"]


class _QuietHandler(WSGIRequestHandler):
    """No access log, no error log: output would land in notebook cells."""

    protocol_version = "HTTP/1.0"  # one request per connection: stop() never waits on keep-alive

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002
        pass


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"The demo provider cannot listen on {host} port {port}: {exc.strerror}. "
                                 "Use port=0 for a free port.") from None
    return sock


def serve_quietly(bind: str, port: int, app: Any, ssl_context: ssl.SSLContext | None) -> Any:
    """A quiet threaded werkzeug server on an already bound loopback socket.

    TLS is wrapped here with the handshake deferred to the request thread, so a
    slow or broken client never stalls the accept loop.
    """
    with _listen(bind, port) as sock:  # werkzeug would sys.exit() on a busy port
        httpd = make_server(bind, sock.getsockname()[1], app, threaded=True,
                            request_handler=_QuietHandler, fd=sock.fileno())
    if ssl_context is not None:
        httpd.socket = ssl_context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        httpd.ssl_context = ssl_context
    httpd.log = lambda *args, **kwargs: None
    httpd.handle_error = lambda *args, **kwargs: None
    httpd.block_on_close = False
    return httpd


def accept_until(httpd: Any, stopping: threading.Event, wake: socket.socket) -> None:
    """``httpd``'s accept loop, asleep in select() until a connection arrives or stop() writes to
    ``wake`` (``serve_forever`` would wake every poll interval to look at a flag, and stop() wait for it)."""
    with selectors.DefaultSelector() as selector:
        selector.register(httpd, selectors.EVENT_READ)
        selector.register(wake, selectors.EVENT_READ)
        while not stopping.is_set():
            for key, _events in selector.select():
                if key.fileobj is httpd and not stopping.is_set():
                    httpd._handle_request_noblock()  # accept; the request runs in its own thread


def base_url(scheme: str, bind: str, port: int) -> str:
    return f"{scheme}://[{bind}]:{port}" if ":" in bind else f"{scheme}://{bind}:{port}"
