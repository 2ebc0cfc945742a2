"""The one loopback HTTP server of the test suite: it answers from a script.

``ScriptedServer`` (the ``scripted`` fixture in conftest) serves 127.0.0.1 on a free port:

- ``server.script(path, [reply, ...])``: the replies of one path in order, the last one repeating;
  ``path="*"`` scripts every path nothing more specific was scripted for. A reply is a
  :class:`Reply` or a callable ``f(seen) -> Reply`` (the request as recorded: method, path,
  headers, body, query, arrival time).
- ``Reply(delay=...)`` waits before the status line; ``Reply(drip=...)`` sends the headers at
  once, then the body one byte (or one part of an iterable body) at a time; ``framing`` picks
  Content-Length, chunked transfer or read-until-close; an iterable body streams chunked.
- ``server.seen``: every request, as :class:`Seen`; ``server.count(path)``; ``server.reset()``.
- ``close()`` returns at once: the accept loop sleeps in ``select()`` until a connection or
  ``close()`` wakes it (``serve_forever`` would poll a stop flag every 0.5 s), and delays and
  drips wake up at once instead of sleeping on.

``http11=True`` keeps connections alive (HTTP/1.1); the default answers one request per
connection (HTTP/1.0). Nagle's algorithm is off: headers and body leave at once.
"""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Union
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Reply", "Seen", "ScriptedServer"]

_FRAMINGS = ("length", "chunked", "close")


@dataclass
class Reply:
    """One scripted response.

    ``body``: bytes, str, a dict (sent as JSON with ``Content-Type: application/json`` unless
    headers say otherwise) or any other iterable of bytes parts (streamed chunked).
    ``delay``: seconds before the status line. ``drip``: seconds between body pieces.
    ``framing``: "length" (Content-Length), "chunked" or "close" (no length; the connection
    closes after the body); by default "chunked" for an iterable body, else "length".
    """

    status: int = 200
    body: Any = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0
    framing: str | None = None

    def encoded(self) -> tuple[bytes | Iterable[bytes], dict]:
        headers = dict(self.headers)
        body = self.body
        if isinstance(body, dict):
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        return body, headers


@dataclass
class Seen:
    """A request as the server received it."""

    method: str
    path: str
    headers: dict
    body: str
    t: float = field(default_factory=time.monotonic)  # arrival, time.monotonic()

    @property
    def route(self) -> str:
        """The path without its query string."""
        return self.path.split("?")[0]

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))

    def header(self, name: str, default: str | None = None) -> str | None:
        """A request header, whatever its case."""
        name = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == name), default)

    @property
    def auth(self) -> str | None:
        return self.header("Authorization")


Step = Union[Reply, Callable[[Seen], Reply]]
_NOT_FOUND = Reply(404, {"error": "not_found"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # a client that hung up
            super().handle_error(request, client_address)


class ScriptedServer:
    """A threaded HTTP server on 127.0.0.1 answering from a script (see the module docstring)."""

    def __init__(self, *, http11: bool = False) -> None:
        self.replies: dict[str, list[Step]] = {}
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if http11 else "HTTP/1.0"
            disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms stalls)

            def log_message(self, *args: Any) -> None:  # no stderr access log
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                seen = Seen(self.command, self.path, dict(self.headers), body)
                reply = owner._next(seen)
                try:
                    owner._send(self, reply)
                except OSError:  # the client hung up, or the server is closing
                    self.close_connection = True

            do_GET = do_POST = _answer

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._wake_r, self._wake_w = socket.socketpair()
        self.thread = threading.Thread(target=self._serve, name=f"scripted-{self.httpd.server_address[1]}",
                                       daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        """Accept until ``close()``: asleep in select() between connections, no polling."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.httpd, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self.httpd and not self.stopping.is_set():
                        self.httpd._handle_request_noblock()  # accept, then a handler thread (as serve_forever)

    # -- the script ------------------------------------------------------------------------

    def script(self, path: str, replies: list[Step]) -> None:
        """Answer ``path`` (``"*"``: any path) with ``replies`` in order; the last one repeats."""
        with self._lock:
            self.replies[path] = list(replies)

    def count(self, path: str) -> int:
        """Requests seen for ``path`` (query string ignored)."""
        return sum(1 for s in self.seen if s.route == path)

    def reset(self) -> None:
        """Forget the script and the requests seen (a server shared between tests)."""
        with self._lock:
            self.replies.clear()
            self.seen.clear()

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            queue = self.replies.get(seen.route) or self.replies.get("*") or [_NOT_FOUND]
            step = queue.pop(0) if len(queue) > 1 else queue[0]
        return step(seen) if callable(step) else step

    # -- sending ---------------------------------------------------------------------------

    def _pause(self, seconds: float) -> None:
        if seconds > 0 and self.stopping.wait(seconds):
            raise ConnectionResetError("the server is closing")

    def _send(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        self._pause(reply.delay)
        body, headers = reply.encoded()
        streamed = not isinstance(body, bytes)
        framing = reply.framing or ("chunked" if streamed else "length")
        if framing not in _FRAMINGS:
            raise ValueError(f"framing must be one of {_FRAMINGS}, not {framing!r}")
        handler.send_response(reply.status)
        for key, value in headers.items():
            handler.send_header(key, value)
        if framing == "length":
            if streamed:
                body, streamed = b"".join(body), False
            handler.send_header("Content-Length", str(len(body)))
        elif framing == "chunked":
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        if reply.drip and not streamed:
            parts: Iterable[bytes] = (body[i:i + 1] for i in range(len(body)))
        else:
            parts = [body] if not streamed else body
        for i, part in enumerate(parts):
            if i and reply.drip:
                self._pause(reply.drip)
            if not part:
                continue
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if framing == "chunked" else part)
            if reply.drip:
                handler.wfile.flush()
        if framing == "chunked":
            handler.wfile.write(b"0\r\n\r\n")

    def close(self) -> None:
        """Stop accepting, wake every delayed reply, free the port (idempotent)."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self._wake_w.send(b"x")
        self.thread.join(5)
        self.httpd.server_close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
