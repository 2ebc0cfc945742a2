"""A loopback HTTP server that answers from a script: for malformed and faulty responses."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, dict]:
        headers = dict(self.headers)
        body = self.body
        if isinstance(body, dict):
            headers.setdefault("Content-Type", "application/json")
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        return body, headers


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: str


class ScriptedServer:
    """``server.script(path, [Reply, ...])``; the last reply of a path repeats."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply | Callable[[Seen], Reply]]] = {}
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # no stderr access log
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                seen = Seen(self.command, self.path, dict(self.headers), body)
                owner.seen.append(seen)
                path = self.path.split("?")[0]
                queue = owner.replies.get(path) or [Reply(404, {"error": "not_found"})]
                reply = queue.pop(0) if len(queue) > 1 else queue[0]
                if callable(reply):
                    reply = reply(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                data, headers = reply.encoded()
                try:
                    self.send_response(reply.status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def script(self, path: str, replies: list) -> None:
        self.replies[path] = list(replies)

    def count(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path.split("?")[0] == path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
