"""One GET: retries, rate-limit waits, content checks and byte caps, against a loopback server."""

from __future__ import annotations

import email.utils
import threading
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from nb_oauth2 import fetch
from nb_oauth2.errors import (
    APIError,
    InsufficientScope,
    InvalidToken,
    RateLimited,
    ResultTooLarge,
    TransportError,
    UnexpectedContentType,
)
from nb_oauth2.fetch import Fetcher, parse_retry_after, parse_www_authenticate


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hung up: nothing on stderr
        pass


class Scripted:
    """A loopback HTTP server answering from a script: one (status, headers, body) per request."""

    def __init__(self, script):
        self.script = list(script)
        self.seen: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms stalls)

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
                step = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                status, headers, body = step if not callable(step) else step(self)
                self.send_response(status)
                chunked = not isinstance(body, (bytes, str))
                headers = {"Content-Type": "application/json", **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    try:
                        for part in body:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                        self.wfile.write(b"0\r\n\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                data = body.encode() if isinstance(body, str) else body
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(*script):
        s = Scripted(script)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def fetcher(clock: Clock | None = None, **kw) -> Fetcher:
    clock = clock or Clock()
    session = requests.Session()
    session.headers["Authorization"] = "Bearer test-token-123"
    return Fetcher(session, sleep=clock.sleep, clock=clock, rng=lambda: 0.5, **kw)


OK = (200, {}, '{"data": [1, 2]}')


def test_ok_json_is_parsed(serve):
    srv = serve(OK)
    resp = fetcher().get(srv.url + "/x")
    assert resp.status == 200 and resp.data == {"data": [1, 2]}


def test_case_29_retry_after_seconds_is_waited_in_full(serve):
    """Case 29: 429 + Retry-After seconds -> wait at least that long, then one retry."""
    srv = serve((429, {"Retry-After": "7"}, "{}"), OK)
    clock = Clock()
    assert fetcher(clock).get(srv.url + "/x").data == {"data": [1, 2]}
    assert len(srv.seen) == 2 and clock.sleeps and min(clock.sleeps) >= 7


def test_case_29_retry_after_http_date_is_waited_until_that_time(serve):
    """Case 29: Retry-After as an HTTP date -> nothing sent before that date."""
    clock = Clock()
    date = email.utils.formatdate(clock.now + 12, usegmt=True)
    srv = serve((429, {"Retry-After": date}, "{}"), OK)
    fetcher(clock).get(srv.url + "/x")
    assert sum(clock.sleeps) >= 12 - 1e-6 and len(srv.seen) == 2


def test_case_29_wait_longer_than_max_wait_fails_without_sending_early(serve):
    """Case 29: a wait over max_wait raises RateLimited at once; no early second request."""
    srv = serve((429, {"Retry-After": "3600"}, "{}"), OK)
    clock = Clock()
    with pytest.raises(RateLimited) as err:
        fetcher(clock, max_wait=60).get(srv.url + "/x")
    assert len(srv.seen) == 1 and clock.sleeps == []
    assert "max_wait" in str(err.value)


def test_case_29_rate_limit_attempts_are_bounded(serve):
    """Case 29: a 429 that never ends stops after retries + 1 requests."""
    srv = serve((429, {"Retry-After": "1"}, "{}"))
    with pytest.raises(RateLimited):
        fetcher(retries=2).get(srv.url + "/x")
    assert len(srv.seen) == 3


def test_case_29_github_reset_header_on_403_is_waited(serve):
    """Case 29: 403 with X-RateLimit-Remaining: 0 waits until X-RateLimit-Reset."""
    clock = Clock()
    reset = str(int(clock.now) + 20)
    srv = serve((403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, "{}"), OK)
    fetcher(clock).get(srv.url + "/x")
    assert sum(clock.sleeps) >= 20 - 1e-6 and len(srv.seen) == 2


def test_case_30_gateway_errors_are_retried_with_growing_backoff(serve):
    """Case 30: 502/503/504 on GET -> retried with exponential backoff and jitter."""
    srv = serve((502, {}, "bad"), (503, {}, "busy"), (504, {}, "slow"), OK)
    clock = Clock()
    assert fetcher(clock).get(srv.url + "/x").data == {"data": [1, 2]}
    assert len(srv.seen) == 4
    assert clock.sleeps == sorted(clock.sleeps) and clock.sleeps[-1] > clock.sleeps[0]


def test_case_30_at_most_three_retries(serve):
    """Case 30: a gateway error that persists stops after 1 + 3 requests."""
    srv = serve((503, {}, "busy"))
    with pytest.raises(APIError) as err:
        fetcher().get(srv.url + "/x")
    assert len(srv.seen) == 4 and err.value.status == 503


def test_case_30_jitter_changes_the_wait():
    """Case 30: the backoff is jittered (two random draws give two waits)."""
    waits = {Fetcher(requests.Session(), rng=lambda r=r: r)._backoff(1) for r in (0.0, 0.9)}
    assert len(waits) == 2


def test_case_30_timeouts_are_retried_then_reported(serve):
    """Case 30: a hung server -> read timeouts retried, then TransportError."""
    import time

    def hang(handler):
        time.sleep(0.5)
        return OK

    srv = serve(hang)
    with pytest.raises(TransportError):
        fetcher(timeout=(1, 0.1), retries=1).get(srv.url + "/x")
    assert len(srv.seen) == 2


def test_case_28_401_after_the_session_retry_is_invalid_token(serve):
    """Case 28: a 401 the session could not fix becomes InvalidToken."""
    srv = serve((401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, "{}"))
    with pytest.raises(InvalidToken):
        fetcher().get(srv.url + "/x")
    assert len(srv.seen) == 1


def test_case_28_session_refreshing_once_on_401_is_honoured(serve):
    """Case 28: a session that refreshes once and retries: success on the new token, one refresh."""

    class RefreshingSession(requests.Session):
        refreshes = 0

        def request(self, method, url, **kw):
            resp = super().request(method, url, **kw)
            if resp.status_code == 401 and not self.refreshes:
                self.refreshes += 1
                self.headers["Authorization"] = "Bearer fresh-token-456"
                resp.close()
                resp = super().request(method, url, **kw)
            return resp

    def auth(handler):
        if handler.headers.get("Authorization") == "Bearer fresh-token-456":
            return OK
        return (401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, "{}")

    srv = serve(auth)
    session = RefreshingSession()
    session.headers["Authorization"] = "Bearer old-token-123"
    assert Fetcher(session).get(srv.url + "/x").data == {"data": [1, 2]}
    assert session.refreshes == 1 and [s["auth"] for s in srv.seen] == ["Bearer old-token-123",
                                                                         "Bearer fresh-token-456"]


def test_case_28_insufficient_scope_names_the_scope_and_is_not_retried(serve):
    """Case 28: 403 insufficient_scope -> InsufficientScope naming the scope, no retry."""
    challenge = 'Bearer realm="api", error="insufficient_scope", scope="repo:write"'
    srv = serve((403, {"WWW-Authenticate": challenge}, "{}"))
    with pytest.raises(InsufficientScope) as err:
        fetcher().get(srv.url + "/x")
    assert "repo:write" in str(err.value) and len(srv.seen) == 1


def test_case_31_html_200_is_unexpected_content_type_with_query_redacted(serve):
    """Case 31: HTML with 200 -> UnexpectedContentType; the URL query is redacted."""
    srv = serve((200, {"Content-Type": "text/html; charset=utf-8"}, "<html><body>Sign in</body></html>"))
    with pytest.raises(UnexpectedContentType) as err:
        fetcher().get(srv.url + "/x?api_key=SUPERSECRET42&user=bob")
    text = str(err.value)
    assert "SUPERSECRET42" not in text and "bob" not in text and "text/html" in text


def test_body_that_is_not_json_is_unexpected_content_type(serve):
    srv = serve((200, {"Content-Type": "application/json"}, "not json at all"))
    with pytest.raises(UnexpectedContentType):
        fetcher().get(srv.url + "/x")


def test_case_32_declared_length_over_the_cap_is_refused_before_reading(serve):
    """Case 32: a Content-Length over max_bytes -> ResultTooLarge with guidance."""
    srv = serve((200, {}, '{"data": "' + "x" * 5000 + '"}'))
    with pytest.raises(ResultTooLarge) as err:
        fetcher(max_bytes=1000).get(srv.url + "/x")
    assert "max_page_bytes" in str(err.value)


def test_case_32_streamed_body_over_the_cap_stops_with_bounded_memory(serve):
    """Case 32: a chunked 40 MB body with a 1 MB cap stops early; memory stays bounded."""
    part = b"x" * (1 << 16)
    srv = serve((200, {}, (part for _ in range(640))))
    tracemalloc.start()
    try:
        with pytest.raises(ResultTooLarge):
            fetcher(max_bytes=1 << 20).get(srv.url + "/x")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_other_4xx_is_an_api_error_with_a_redacted_snippet(serve):
    srv = serve((404, {}, '{"message": "Not Found", "access_token": "leaky-secret-1"}'))
    with pytest.raises(APIError) as err:
        fetcher().get(srv.url + "/x")
    assert err.value.status == 404 and "leaky-secret-1" not in str(err.value)


def test_loads_falls_back_to_json_when_fast_is_disabled(monkeypatch):
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", "1")
    assert fetch.fast_enabled() is False
    assert fetch.loads(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}


def test_parsers_for_headers():
    assert parse_retry_after("120", now=0) == 120
    assert parse_retry_after("garbage", now=0) is None
    assert parse_www_authenticate('Bearer error="insufficient_scope", scope="a b"') == {
        "error": "insufficient_scope", "scope": "a b"}
