"""One GET of a protected JSON resource, with bounded retries and waits.

:class:`Fetcher` sends ``session.get(url, timeout=..., stream=True)`` and
returns a :class:`Response` holding the decoded JSON. It retries GETs (never
anything else) on 502/503/504, timeouts and dropped connections with
exponential backoff and jitter; it waits out 429 (``Retry-After`` in seconds
or as an HTTP date, or ``X-RateLimit-Reset``) without ever sending early, and
gives up with :class:`~nb_oauth2.core.errors.RateLimited` when the server asks for
a wait longer than ``max_wait``. Before a 429, it paces: the rate-limit headers
of each answer (:mod:`nb_oauth2.frames.rate_limits`) feed one budget shared by the
read's threads, which holds requests back until the reset when the quota is spent,
and spaces them out when fewer remain than pages are left (``pages_left``);
``on_rate`` hears each reading (the progress bar shows it). The body is read in chunks and abandoned as
soon as it passes ``max_bytes``. Sleeping and the clock are injectable so
tests never really wait.

Fetcher knows no session type: whatever ``requests.Session`` it is given sends
(nb_oauth2's Session attaches and renews the token in its auth object, as any
``session.auth`` would). Failures are mapped by :mod:`nb_oauth2.core.http_errors`, so
every session is retried alike (case 50).
requests' timeouts are per read; ``deadline`` bounds a whole exchange (headers
and body): past it the connection is cut and the GET fails with a
:class:`~nb_oauth2.core.errors.TransportError` naming the deadline (case 57).
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import requests

from ..core.errors import (
    APIError,
    InsufficientScope,
    InvalidToken,
    OAuth2Error,
    RateLimited,
    ResultTooLarge,
    TransportError,
    UnexpectedContentType,
)
from ..core.deadline import arm_deadline
from ..core.http_errors import is_retryable, map_oauthlib_error, map_request_error, timeout_parts, transport_error
from .nesting import check_nesting
from .rate_limits import RateBudget, RateLimit, seconds_until_reset
from ..core.challenges import parse_www_authenticate
from ..core.redact import redact_url, snippet
from ..core.transport import loopback_http_allowed

__all__ = ["Fetcher", "Response", "loads", "fast_enabled", "parse_retry_after", "DEFAULT_DEADLINE"]

RETRY_STATUSES = frozenset({502, 503, 504})
#: seconds one GET (headers and body) may take in all, however the server drips it (case 57)
DEFAULT_DEADLINE = 120.0
_CHUNK = 1 << 18
#: the next step an API error's status suggests (5xx: any server error)
_STATUS_HINTS = {
    400: "Check the URL's query parameters.",
    404: "Check the URL: the API has nothing at this path.",
    405: "This URL does not answer GET.",
    500: "The server failed, not the request: try again later.",
}
_DETAIL_KEYS = ("error_description", "message", "detail", "title", "error")
_TITLE = re.compile(r"<title[^>]*>([^<]{1,300})</title>", re.IGNORECASE)
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]{0,1000}>")


def _error_detail(text: str) -> str:
    """What an error body says, in one short line: a JSON body's message field, else the text's start."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in _DETAIL_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return snippet(value, 200)
    if text.lstrip().startswith("<"):  # an HTML error page: its title, else its text without the markup
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", _SCRIPT.sub(" ", text))
    return snippet(text, 200)


def fast_enabled() -> bool:
    """False when ``NB_OAUTH2_NO_FAST=1``: ignore orjson and pyarrow even if installed."""
    return os.environ.get("NB_OAUTH2_NO_FAST", "") in ("", "0")


def loads(data: bytes) -> Any:
    """Parse JSON bytes with orjson when installed (and allowed), else :mod:`json`."""
    if fast_enabled():
        try:
            import orjson
        except ImportError:
            pass
        else:
            return orjson.loads(data)
    return json.loads(data)


@dataclass
class Response:
    """A decoded JSON answer: final URL, status, headers, raw bytes and parsed body.

    One HTTP response, as fetched and decoded; readers' ``Page`` is what users are handed
    instead: the records of one page of a paginated result, with its place in the walk.
    """

    url: str
    status: int
    headers: Mapping[str, str]
    raw: bytes = field(repr=False)
    data: Any = field(repr=False)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json", "text/javascript", "application/javascript") or \
        media.endswith("+json")


class Fetcher:
    """GET JSON through ``session`` with retries, rate-limit waits, a byte cap and a total deadline.

    ``deadline``: seconds one exchange (waiting for headers and reading the body) may
    take in all (None: no limit; requests' own timeouts are per read). ``sleep``,
    ``clock`` and ``rng`` are injectable; ``on_wait(seconds, reason)`` is called
    before each wait (the progress bar shows it). ``on_rate(reading)`` hears the quota
    after each answer that tells it; ``pages_left()`` (None: unknown) lets the pacing
    start as soon as fewer requests remain than pages.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        timeout: float | tuple[float, float] = (5, 30),
        retries: int = 3,
        max_wait: float = 60,
        max_bytes: int | None = 50_000_000,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        on_wait: Callable[[float, str], None] | None = None,
        deadline: float | None = DEFAULT_DEADLINE,
        on_rate: Callable[[RateLimit], None] | None = None,
        pages_left: Callable[[], int | None] | None = None,
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.deadline = None if deadline is None else float(deadline)
        self.retries = max(0, int(retries))
        self.max_wait = max_wait
        self.max_bytes = max_bytes
        self.backoff = backoff
        self.sleep = sleep
        self.clock = clock
        self.rng = rng
        self.on_wait = on_wait
        self.on_rate = on_rate
        self.pages_left = pages_left
        self.rate_budget = RateBudget(clock)  # one per read: shared by its threads
        self.requests_sent = 0

    # -- public -----------------------------------------------------------

    def get(self, url: str, *, parse: bool = True) -> Response:
        """GET ``url`` and return its parsed JSON, retrying what is safe to retry.

        With ``parse=False`` only the raw bytes are read (``data`` stays None; call :meth:`parse`).
        """
        return self.request("GET", url, parse=parse)

    def post(self, url: str, json_body: Any, *, parse: bool = True) -> Response:
        """POST ``json_body`` to a read-only query endpoint (GraphQL, Notion's database query) and
        return its parsed JSON; retried like a GET, so only for requests that change nothing."""
        return self.request("POST", url, json_body=json_body, parse=parse)

    def request(self, method: str, url: str, *, json_body: Any = None, parse: bool = True) -> Response:
        """One JSON request with retries, waits, the byte cap and the deadline (see :meth:`get`)."""
        attempt = 0
        while True:
            try:
                outcome = self._attempt(method, url, json_body, attempt, parse=parse)
            except TransportError as exc:  # mapped the same way for every session (case 50)
                if not is_retryable(exc):
                    raise
                if attempt >= self.retries:
                    raise transport_error(
                        f"{exc.summary.rstrip('.')}, tried {attempt + 1} times.", hint="Check the network or raise "
                        "timeout=.", retryable=True, reason=getattr(exc, "reason", "connection")) from None
                self._wait(self._backoff(attempt), "network error, retrying")
                attempt += 1
                continue
            if isinstance(outcome, Response):
                return outcome
            wait, status = outcome
            self._wait(wait, f"HTTP {status}, retrying")
            attempt += 1

    # -- steps ------------------------------------------------------------

    def _attempt(self, method: str, url: str, json_body: Any, attempt: int, *,
                 parse: bool) -> Response | tuple[float, int]:
        """One exchange under the total deadline: the Response, or (seconds to wait, status) to retry."""
        self._pace(method, url)
        started = time.monotonic()
        try:
            resp = self._send(method, url, json_body, started)
        except BaseException:
            self.rate_budget.release()
            raise
        if self.rate_budget.observe(resp.headers) is not None and self.on_rate is not None:
            reading = self.rate_budget.reading()
            if reading is not None:
                self.on_rate(reading)
        alarm = arm_deadline(started + self.deadline, resp) if self.deadline is not None else None
        try:
            wait = self._retry_wait(resp, url, attempt, method)
            out = (wait, resp.status_code) if wait is not None else self._decode(resp, url, parse=False,
                                                                                 method=method)
        except BaseException as exc:
            resp.close()
            if alarm is not None and alarm.stop() and isinstance(exc, Exception):
                raise self._deadline_error(url) from None
            raise
        if alarm is not None and alarm.stop():  # cut at the deadline: what was read is incomplete
            raise self._deadline_error(url)
        resp.close()
        return self.parse(out) if parse and isinstance(out, Response) else out

    def _pace(self, method: str, url: str) -> None:
        """Wait for this request's slot in the rate-limit budget (said in the bar; never past max_wait)."""
        wait, why = self.rate_budget.acquire(self.pages_left() if self.pages_left is not None else None,
                                             max_wait=self.max_wait)
        if wait <= 0:
            return
        if wait > self.max_wait:
            raise RateLimited(
                f"{method} {redact_url(url)} would wait {wait:.0f} s for the rate limit to reset ({why}), longer "
                f"than max_wait={self.max_wait}.", hint="Try again later or pass a larger max_wait=.",
                url=redact_url(url), status=None)
        self._wait(wait, why)

    def _send(self, method: str, url: str, json_body: Any, started: float) -> requests.Response:
        headers = None
        if self.session.headers.get("Accept", "*/*") == "*/*":
            headers = {"Accept": "application/json"}
        timeout = self._capped_timeout(started)
        self.requests_sent += 1
        try:
            with loopback_http_allowed():  # a plain OAuth2Session reaches loopback http as nb_oauth2's own does
                if method == "GET":
                    resp = self.session.get(url, headers=headers, timeout=timeout, stream=True)
                else:
                    resp = self.session.request(method, url, json=json_body, headers=headers, timeout=timeout,
                                                stream=True)
        except Exception as exc:
            mapped = self._send_error(exc, url, started, timeout, method)
            if mapped is exc:
                raise
            raise mapped from None
        if self._past_deadline(started):  # the headers came slower than the deadline allows
            resp.close()
            raise self._deadline_error(url)
        return resp

    def _send_error(self, exc: Exception, url: str, started: float, timeout: Any,
                    method: str = "GET") -> Exception:
        """What sending raised, typed: requests' failures mapped (past the deadline: the deadline's
        error), errors of the session's auth object (an nb_oauth2 error) as they are, oauthlib's
        errors from a stock OAuth2Session translated; anything else unchanged."""
        if isinstance(exc, (requests.RequestException, TransportError)) and self._past_deadline(started, slack=0.05):
            return self._deadline_error(url)  # the capped read timeout tripped
        if isinstance(exc, (OAuth2Error, requests.RequestException)):
            return map_request_error(exc, url=url, what=f"{method} {redact_url(url)}", timeout=timeout)
        return map_oauthlib_error(exc, url=url) or exc

    def _capped_timeout(self, started: float) -> Any:
        """The per-read timeout, never longer than what is left of the deadline."""
        if self.deadline is None:
            return self.timeout
        left = max(0.01, started + self.deadline - time.monotonic())
        connect, read = timeout_parts(self.timeout)
        return (left if connect is None else min(connect, left), left if read is None else min(read, left))

    def _past_deadline(self, started: float, slack: float = 0.0) -> bool:
        return self.deadline is not None and time.monotonic() - started >= self.deadline - slack

    def _deadline_error(self, url: str) -> TransportError:
        return transport_error(
            f"GET {redact_url(url)} did not finish within deadline={self.deadline:g} s (the server sends too "
            "slowly).", hint="Try again later or raise deadline=.", retryable=False, reason="deadline")

    def _backoff(self, attempt: int) -> float:
        base = min(self.max_wait, self.backoff * (2 ** attempt))
        return base * (0.5 + self.rng())  # equal jitter: [0.5, 1.5) x base

    def _wait(self, seconds: float, reason: str) -> None:
        if self.on_wait is not None:
            self.on_wait(seconds, reason)
        if seconds > 0:
            self.sleep(seconds)

    def _retry_wait(self, resp: requests.Response, url: str, attempt: int, method: str = "GET") -> float | None:
        """None to accept ``resp``; seconds to wait before retrying; or raise."""
        status = resp.status_code
        if status == 304:  # nothing cached was offered (the session's cache serves its own 304s): no body
            resp.close()
            raise APIError(f"{method} {redact_url(url)} answered 304 Not Modified, but no cached copy was offered "
                           "for it: there is no body to read (a misbehaving server or proxy, or an If-None-Match "
                           "set on the session's headers).", hint="Remove If-None-Match / If-Modified-Since from "
                           "session.headers, or report the server's behaviour.", url=redact_url(url), status=status)
        if status < 400:
            return None
        headers = resp.headers
        # GitHub's primary limit: 403 with X-RateLimit-Remaining: 0; its secondary limit: 403 (or 429) with
        # Retry-After, which its docs say to wait out before retrying
        rate_limited = status == 429 or (status == 403 and (headers.get("X-RateLimit-Remaining") == "0"
                                                            or bool(headers.get("Retry-After"))))
        if rate_limited:
            now = self.clock()
            wait = parse_retry_after(headers.get("Retry-After"), now=now)
            if wait is None:
                wait = seconds_until_reset(headers, now=now)
            if wait is None:
                wait = self._backoff(attempt)
            if wait > self.max_wait:
                raise RateLimited(
                    f"{method} {redact_url(url)} is rate limited for {wait:.0f} s, longer than max_wait={self.max_wait}.",
                    hint="Try again later or pass a larger max_wait=.", url=redact_url(url), status=status)
            if attempt >= self.retries:
                raise RateLimited(
                    f"{method} {redact_url(url)} was still rate limited after {attempt + 1} attempts.",
                    hint="Try again later.", url=redact_url(url), status=status)
            return wait + self.rng() * 0.1 * min(wait, 1.0)  # never earlier than asked
        if status in RETRY_STATUSES and attempt < self.retries:
            hinted = parse_retry_after(headers.get("Retry-After"), now=self.clock())
            wait = self._backoff(attempt)
            if hinted is not None and hinted <= self.max_wait:
                wait = max(wait, hinted)
            return wait
        raise self._error(resp, url, method)

    def _error(self, resp: requests.Response, url: str, method: str = "GET") -> APIError:
        status = resp.status_code
        safe_url = redact_url(url)
        challenge = parse_www_authenticate(resp.headers.get("WWW-Authenticate"))
        code = challenge.get("error")
        if status == 401:
            return InvalidToken(
                f"{method} {safe_url} answered 401 ({code or 'unauthorized'}) even after the session's refresh.",
                hint="Sign in again.", url=safe_url, status=status, error=code or "invalid_token")
        if status == 403 and code == "insufficient_scope":
            scope = challenge.get("scope")
            need = f"the scope {scope!r}" if scope else "a broader scope"
            return InsufficientScope(
                f"{method} {safe_url} needs {need}; sign in again asking for it.", url=safe_url, status=status,
                error=code, description=scope)
        body = self._read(resp, url, limit=2000, raise_over=False)
        detail = _error_detail(body.decode("utf-8", "replace"))
        said = f": {detail.rstrip(' .;:,')}" if detail else ""
        hint = _STATUS_HINTS.get(500 if status >= 500 else status)
        return APIError(f"{method} {safe_url} answered HTTP {status}{said}.", hint=hint, url=safe_url, status=status,
                        error=code)

    def _read(self, resp: requests.Response, url: str, *, limit: int | None, raise_over: bool = True) -> bytes:
        """Read the body in chunks, stopping past ``limit`` bytes (memory stays bounded)."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_content(chunk_size=_CHUNK):
                size += len(chunk)
                if limit is not None and size > limit:
                    if raise_over:
                        raise self._too_large(url, f"more than {limit:,} bytes")
                    chunks.append(chunk[: max(0, limit - (size - len(chunk)))])
                    break
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise map_request_error(exc, url=url, what=f"Reading {redact_url(url)}") from None
        finally:
            resp.close()
        return b"".join(chunks)

    def _too_large(self, url: str, what: str) -> ResultTooLarge:
        return ResultTooLarge(
            f"A page of {redact_url(url)} is {what} (max_page_bytes={self.max_bytes:,}).", hint="Ask for smaller "
            "pages (e.g. a per_page/limit parameter) or raise max_page_bytes=.", url=redact_url(url))

    def parse(self, resp: Response) -> Response:
        """Parse ``resp.raw`` into ``resp.data`` (UnexpectedContentType when it is not JSON)."""
        try:
            resp.data = loads(resp.raw) if resp.raw.strip() else None
        except ValueError:
            raise UnexpectedContentType(
                f"GET {redact_url(resp.url)} answered HTTP {resp.status} with a body that is not JSON: "
                f"{snippet(resp.raw[:300].decode('utf-8', 'replace'), 120)}", url=redact_url(resp.url),
                status=resp.status) from None
        return resp

    def _decode(self, resp: requests.Response, url: str, *, parse: bool = True, method: str = "GET") -> Response:
        ctype = resp.headers.get("Content-Type", "")
        safe_url = redact_url(url)
        if ctype and not _is_json_type(ctype) and not ctype.lower().startswith(("text/plain", "application/octet")):
            preview = snippet(self._read(resp, url, limit=300, raise_over=False).decode("utf-8", "replace"), 120)
            raise UnexpectedContentType(
                f"{method} {safe_url} answered HTTP {resp.status_code} with {snippet(ctype.split(';')[0].strip(), 60)}, not JSON "
                f"(often a login page, a proxy page or a wrong URL): {preview}", url=safe_url, status=resp.status_code)
        length = resp.headers.get("Content-Length")
        if self.max_bytes is not None and length and length.isdigit() and int(length) > self.max_bytes:
            resp.close()
            raise self._too_large(url, f"{int(length):,} bytes")
        raw = self._read(resp, url, limit=self.max_bytes)
        check_nesting(raw, url=resp.url or url)  # before any parser sees the bytes (case 55)
        out = Response(url=resp.url or url, status=resp.status_code, headers=resp.headers, raw=raw, data=None)
        return self.parse(out) if parse else out
