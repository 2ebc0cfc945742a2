"""One GET: retries, rate-limit waits, content checks and byte caps, against a loopback server."""

from __future__ import annotations

import dataclasses
import email.utils
import socket
import time
import tracemalloc
from typing import Callable

import pytest
import requests

from nb_oauth2.frames import fetch
from nb_oauth2.core.endpoint import ClientAuth
from nb_oauth2.core.errors import (
    APIError,
    ConfigurationError,
    InsecureTransportError,
    InsufficientScope,
    InvalidToken,
    RateLimited,
    ResultTooLarge,
    TransportError,
    UnexpectedContentType,
)
from nb_oauth2.core.challenges import parse_www_authenticate
from nb_oauth2.frames.fetch import Fetcher, parse_retry_after
from nb_oauth2.core.providers import Provider
from nb_oauth2.auth.session import Session
from nb_oauth2.core.token import Token
from tests.scripted_server import Reply, ScriptedServer, Seen


def _reply(step) -> Reply | Callable[[Seen], Reply]:
    """A script step: ``(status, headers, body)`` (JSON unless headers say otherwise; an iterable
    body streams chunked), a :class:`Reply`, or a callable of the request returning either."""
    if isinstance(step, Reply):
        return step
    if callable(step):
        return lambda seen: _reply(step(seen))
    status, headers, body = step
    return Reply(status, body, {"Content-Type": "application/json", **headers})


@pytest.fixture
def serve():
    """``serve(step, ...)``: a keep-alive loopback server answering every path with the steps in order
    (the last one repeats); ``srv.seen`` records each request."""
    servers = []

    def start(*script):
        s = ScriptedServer(http11=True)
        s.script("*", [_reply(step) for step in script])
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def late(seconds: float, step=None) -> Reply:
    """``step`` (default OK) sent after ``seconds`` of silence."""
    return dataclasses.replace(_reply(step or OK), delay=seconds)


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def plain_session() -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = "Bearer test-token-123"
    return session


def nb_session() -> Session:
    """nb_oauth2's own Session, signed in (a token valid for an hour; no refresh needed)."""
    provider = Provider(name="scripted", token_endpoint="http://127.0.0.1:9/token")
    token = Token.from_response({"access_token": "test-token-123", "expires_in": 3600})
    return Session(name="fetch-test", provider=provider, client=ClientAuth("cid"), token=token)


SESSIONS = {"requests": plain_session, "nb_oauth2": nb_session}


@pytest.fixture(params=sorted(SESSIONS))
def kind(request):
    """Retry and status behaviour is the same through a plain requests.Session and nb_oauth2's Session."""
    return request.param


def fetcher(clock: Clock | None = None, *, kind: str = "requests", **kw) -> Fetcher:
    clock = clock or Clock()
    return Fetcher(SESSIONS[kind](), sleep=clock.sleep, clock=clock, rng=lambda: 0.5, **kw)


OK = (200, {}, '{"data": [1, 2]}')


def test_ok_json_is_parsed(serve, kind):
    srv = serve(OK)
    resp = fetcher(kind=kind).get(srv.url + "/x")
    assert resp.status == 200 and resp.data == {"data": [1, 2]}
    assert srv.seen[0].auth == "Bearer test-token-123"


def test_case_29_retry_after_seconds_is_waited_in_full(serve, kind):
    """Case 29: 429 + Retry-After seconds -> wait at least that long, then one retry."""
    srv = serve((429, {"Retry-After": "7"}, "{}"), OK)
    clock = Clock()
    assert fetcher(clock, kind=kind).get(srv.url + "/x").data == {"data": [1, 2]}
    assert len(srv.seen) == 2 and clock.sleeps and min(clock.sleeps) >= 7


def test_case_29_retry_after_http_date_is_waited_until_that_time(serve, kind):
    """Case 29: Retry-After as an HTTP date -> nothing sent before that date."""
    clock = Clock()
    date = email.utils.formatdate(clock.now + 12, usegmt=True)
    srv = serve((429, {"Retry-After": date}, "{}"), OK)
    fetcher(clock, kind=kind).get(srv.url + "/x")
    assert sum(clock.sleeps) >= 12 - 1e-6 and len(srv.seen) == 2


def test_case_29_wait_longer_than_max_wait_fails_without_sending_early(serve, kind):
    """Case 29: a wait over max_wait raises RateLimited at once; no early second request."""
    srv = serve((429, {"Retry-After": "3600"}, "{}"), OK)
    clock = Clock()
    with pytest.raises(RateLimited) as err:
        fetcher(clock, max_wait=60, kind=kind).get(srv.url + "/x")
    assert len(srv.seen) == 1 and clock.sleeps == []
    assert "max_wait" in str(err.value)


def test_case_29_rate_limit_attempts_are_bounded(serve, kind):
    """Case 29: a 429 that never ends stops after retries + 1 requests."""
    srv = serve((429, {"Retry-After": "1"}, "{}"))
    with pytest.raises(RateLimited):
        fetcher(retries=2, kind=kind).get(srv.url + "/x")
    assert len(srv.seen) == 3


def test_case_29_github_reset_header_on_403_is_waited(serve, kind):
    """Case 29: 403 with X-RateLimit-Remaining: 0 waits until X-RateLimit-Reset."""
    clock = Clock()
    reset = str(int(clock.now) + 20)
    srv = serve((403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, "{}"), OK)
    fetcher(clock, kind=kind).get(srv.url + "/x")
    assert sum(clock.sleeps) >= 20 - 1e-6 and len(srv.seen) == 2


def test_case_30_gateway_errors_are_retried_with_growing_backoff(serve, kind):
    """Case 30: 502/503/504 on GET -> retried with exponential backoff and jitter."""
    srv = serve((502, {}, "bad"), (503, {}, "busy"), (504, {}, "slow"), OK)
    clock = Clock()
    assert fetcher(clock, kind=kind).get(srv.url + "/x").data == {"data": [1, 2]}
    assert len(srv.seen) == 4
    assert clock.sleeps == sorted(clock.sleeps) and clock.sleeps[-1] > clock.sleeps[0]


def test_case_30_at_most_three_retries(serve, kind):
    """Case 30: a gateway error that persists stops after 1 + 3 requests."""
    srv = serve((503, {}, "busy"))
    with pytest.raises(APIError) as err:
        fetcher(kind=kind).get(srv.url + "/x")
    assert len(srv.seen) == 4 and err.value.status == 503


def test_case_30_jitter_changes_the_wait():
    """Case 30: the backoff is jittered (two random draws give two waits)."""
    waits = {Fetcher(requests.Session(), rng=lambda r=r: r)._backoff(1) for r in (0.0, 0.9)}
    assert len(waits) == 2


def test_case_30_timeouts_are_retried_then_reported(serve, kind):
    """Case 30: a hung server -> read timeouts retried, then TransportError."""
    srv = serve(late(0.5))
    with pytest.raises(TransportError):
        fetcher(timeout=(1, 0.1), retries=1, kind=kind).get(srv.url + "/x")
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

    def auth(seen):
        if seen.auth == "Bearer fresh-token-456":
            return OK
        return (401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, "{}")

    srv = serve(auth)
    session = RefreshingSession()
    session.headers["Authorization"] = "Bearer old-token-123"
    assert Fetcher(session).get(srv.url + "/x").data == {"data": [1, 2]}
    assert session.refreshes == 1 and [s.auth for s in srv.seen] == ["Bearer old-token-123",
                                                                         "Bearer fresh-token-456"]


def test_case_28_insufficient_scope_names_the_scope_and_is_not_retried(serve, kind):
    """Case 28: 403 insufficient_scope -> InsufficientScope naming the scope, no retry."""
    challenge = 'Bearer realm="api", error="insufficient_scope", scope="repo:write"'
    srv = serve((403, {"WWW-Authenticate": challenge}, "{}"))
    with pytest.raises(InsufficientScope) as err:
        fetcher(kind=kind).get(srv.url + "/x")
    assert "repo:write" in str(err.value) and len(srv.seen) == 1


def test_case_31_html_200_is_unexpected_content_type_with_query_redacted(serve, kind):
    """Case 31: HTML with 200 -> UnexpectedContentType; the URL's secret query values are redacted (issue 12
    item 8: only secret-bearing parameters; user=bob stays readable)."""
    srv = serve((200, {"Content-Type": "text/html; charset=utf-8"}, "<html><body>Sign in</body></html>"))
    with pytest.raises(UnexpectedContentType) as err:
        fetcher(kind=kind).get(srv.url + "/x?api_key=SUPERSECRET42&user=bob")
    text = str(err.value)
    assert "SUPERSECRET42" not in text and "api_key=***&user=bob" in text and "with text/html, not JSON" in text


def test_body_that_is_not_json_is_unexpected_content_type(serve, kind):
    srv = serve((200, {"Content-Type": "application/json"}, "not json at all"))
    with pytest.raises(UnexpectedContentType):
        fetcher(kind=kind).get(srv.url + "/x")


def test_case_32_declared_length_over_the_cap_is_refused_before_reading(serve, kind):
    """Case 32: a Content-Length over max_bytes -> ResultTooLarge with guidance."""
    srv = serve((200, {}, '{"data": "' + "x" * 5000 + '"}'))
    with pytest.raises(ResultTooLarge) as err:
        fetcher(max_bytes=1000, kind=kind).get(srv.url + "/x")
    assert "max_page_bytes" in str(err.value)


def test_case_32_streamed_body_over_the_cap_stops_with_bounded_memory(serve, kind):
    """Case 32: a chunked 40 MB body with a 1 MB cap stops early; memory stays bounded."""
    part = b"x" * (1 << 16)
    srv = serve((200, {}, (part for _ in range(640))))
    tracemalloc.start()
    try:
        with pytest.raises(ResultTooLarge):
            fetcher(max_bytes=1 << 20, kind=kind).get(srv.url + "/x")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_other_4xx_is_an_api_error_with_a_redacted_snippet(serve, kind):
    srv = serve((404, {}, '{"message": "Not Found", "access_token": "leaky-secret-1"}'))
    with pytest.raises(APIError) as err:
        fetcher(kind=kind).get(srv.url + "/x")
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


# -- case 50: one mapping of requests exceptions, the same retries through every session ----------


def is_retryable(err) -> bool:
    """The flag nb_oauth2.core.http_errors sets on every TransportError it makes."""
    return getattr(err, "retryable", None) is True


class CountingAdapter(requests.adapters.HTTPAdapter):
    """Counts what reaches the transport (a closed port answers nothing the server could count)."""

    def __init__(self):
        super().__init__()
        self.sends = 0

    def send(self, request, **kwargs):
        self.sends += 1
        return super().send(request, **kwargs)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/x"


def _failure(kind: str, url: str):
    session = SESSIONS[kind]()
    adapter = CountingAdapter()
    session.mount("http://", adapter)
    waits: list[str] = []
    f = Fetcher(session, timeout=(1, 0.2), retries=3, sleep=lambda s: None, rng=lambda: 0.5,
                on_wait=lambda seconds, reason: waits.append(reason))
    with pytest.raises(TransportError) as err:
        f.get(url)
    return type(err.value), str(err.value), is_retryable(err.value), getattr(err.value, "reason", None), \
        adapter.sends, waits


@pytest.mark.parametrize("failure", ["closed port", "timeout"])
def test_case_50_both_sessions_retry_network_failures_alike(serve, failure):
    """Case 50: against a closed port and a server that times out, a plain requests.Session and
    nb_oauth2's Session make the same 4 attempts (retries=3) and raise the same typed error."""
    if failure == "closed port":
        url = closed_port_url()
    else:
        srv = serve(late(0.6))
        url = srv.url + "/x?key=SECRETVALUE1"
    plain, own = _failure("requests", url), _failure("nb_oauth2", url)
    assert plain == own
    cls, message, retryable, reason, sends, waits = own
    assert cls is TransportError and retryable and sends == 4
    assert waits == ["network error, retrying"] * 3
    assert reason == ("connection" if failure == "closed port" else "timeout")
    assert "tried 4 times" in message and "SECRETVALUE1" not in message
    if failure == "timeout":
        assert len(srv.seen) == 8  # 4 per session, none lost to the session's own error mapping


def test_case_50_malformed_url_is_a_configuration_error_through_a_plain_session():
    """Case 50: requests' InvalidURL/MissingSchema become ConfigurationError, never a raw requests error."""
    f = fetcher()
    for url in ("http://", "127.0.0.1:9/no-scheme", "gopher://127.0.0.1/x"):
        with pytest.raises(ConfigurationError):
            f.get(url)


def test_case_50_endpoint_session_and_fetcher_share_the_mapping():
    """Case 50: the token endpoint and nb_oauth2's Session map a refused connection with the same rules."""
    from nb_oauth2.core.flows import ClientCredentialsFlow

    url = closed_port_url()
    with pytest.raises(TransportError) as endpoint_err:
        ClientCredentialsFlow(Provider(name="x", token_endpoint=url), ClientAuth("cid", "s3cr3t-value")).complete()
    with pytest.raises(TransportError) as session_err:
        nb_session().get(url)
    for err in (endpoint_err.value, session_err.value):
        assert is_retryable(err) and err.reason == "connection"
    assert "nothing was retried" in str(endpoint_err.value).lower()


def test_case_50_oauthlib_errors_of_a_plain_oauth2session_are_typed():
    """Case 50 neighbour: requests-oauthlib's own errors become nb_oauth2 errors (isinstance, not names)."""
    from requests_oauthlib import OAuth2Session

    expired = OAuth2Session("cid", token={"access_token": "tok-123456", "token_type": "Bearer",
                                          "expires_at": time.time() - 60})
    with pytest.raises(InvalidToken):
        Fetcher(expired).get(closed_port_url())
    with pytest.raises(InsecureTransportError):
        Fetcher(OAuth2Session("cid", token={"access_token": "tok-123456", "token_type": "Bearer"})).get(
            "http://example.invalid/x")


# -- case 57: a total deadline per exchange -------------------------------------------------------


def drip(body: bytes, *, every: float, length: str = "content-length") -> Reply:
    """A reply whose headers leave at once, then the body one byte every ``every`` seconds."""
    framing = {"content-length": "length", "chunked": "chunked", "until-close": "close"}[length]
    return Reply(200, body, {"Content-Type": "application/json"}, drip=every, framing=framing)


@pytest.mark.parametrize("length", ["content-length", "chunked", "until-close"])
def test_case_57_dripped_body_hits_the_total_deadline(serve, kind, length):
    """Case 57: a body dripped byte by byte never trips the per-read timeout; the total deadline
    ends the GET with a TransportError naming it, and it is not retried."""
    srv = serve(drip(b'{"data": "' + b"x" * 400 + b'"}', every=0.02, length=length))
    with pytest.raises(TransportError) as err:
        fetcher(timeout=(1, 5), deadline=0.5, kind=kind).get(srv.url + "/x?token=SECRETVALUE2")
    assert "deadline=0.5" in str(err.value) and "SECRETVALUE2" not in str(err.value)
    assert err.value.reason == "deadline" and not is_retryable(err.value)
    assert len(srv.seen) == 1


def test_case_57_slow_headers_hit_the_deadline_not_the_read_timeout(serve, kind):
    """Case 57: waiting for the headers counts against the deadline too (the read timeout is capped)."""
    srv = serve(late(1.5))
    with pytest.raises(TransportError) as err:
        fetcher(timeout=(1, 5), deadline=0.4, kind=kind).get(srv.url + "/x")
    assert "deadline=0.4" in str(err.value) and len(srv.seen) == 1


def test_case_57_a_body_within_the_deadline_is_read_whole(serve, kind):
    """Case 57: a slow but finished body inside the deadline is returned complete."""
    srv = serve(drip(b'{"data": [1, 2]}', every=0.01))
    assert fetcher(deadline=5, kind=kind).get(srv.url + "/x").data == {"data": [1, 2]}


def test_fetcher_refuses_a_deeply_nested_page_before_parsing_it(serve, kind):
    """Case 55: every caller of Fetcher is protected, not only read_json: typed error, no RecursionError."""
    srv = serve((200, {}, "[" * 5000 + "]" * 5000))
    with pytest.raises(ResultTooLarge, match="512"):
        fetcher(kind=kind).get(srv.url + "/deep")
