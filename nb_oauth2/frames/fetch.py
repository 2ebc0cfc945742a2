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
every session is retried alike (case 50). Reading an answer (the byte cap, its type, the typed error of
a status that is not retried) is :mod:`nb_oauth2.frames.answers`.
requests' timeouts are per read; ``deadline`` bounds a whole exchange (headers
and body): past it the connection is cut and the GET fails with a
:class:`~nb_oauth2.core.errors.TransportError` naming the deadline (case 57).
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Any, Callable

import requests

from ..core.errors import OAuth2Error, RateLimited, TransportError
from ..core.deadline import arm_deadline
from ..core.http_errors import is_retryable, map_oauthlib_error, map_request_error, timeout_parts, transport_error
from .answers import (  # Response, loads, fast_enabled: importable from here as before the split
    Response,
    api_error,
    deadline_error,
    decode,
    fast_enabled,
    loads,
    not_modified_error,
    parse_json,
)
from .rate_limits import RateBudget, RateLimit, seconds_until_reset
from ..core.redact import redact_url
from ..core.transport import loopback_http_allowed

__all__ = ["Fetcher", "Response", "loads", "fast_enabled", "parse_retry_after", "DEFAULT_DEADLINE"]

RETRY_STATUSES = frozenset({502, 503, 504})
#: seconds one GET (headers and body) may take in all, however the server drips it (case 57)
DEFAULT_DEADLINE = 120.0


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
            out = (wait, resp.status_code) if wait is not None else decode(resp, url, max_bytes=self.max_bytes,
                                                                           parse=False, method=method)
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
        return deadline_error(url, self.deadline or 0.0)

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
            raise not_modified_error(url, method)
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
        raise api_error(resp, url, method)

    def parse(self, resp: Response) -> Response:
        """Parse ``resp.raw`` into ``resp.data`` (UnexpectedContentType when it is not JSON)."""
        return parse_json(resp)
