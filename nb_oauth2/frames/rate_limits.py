"""Rate-limit headers, read and shared: how much quota is left, when it resets, how to pace before a 429.

:func:`parse_rate_limit` reads the three conventions in use:

* GitHub's ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (epoch seconds);
* the IETF draft's structured fields, ``RateLimit: "default";r=50;t=30`` with
  ``RateLimit-Policy: "default";q=100;w=60`` (the most constraining policy wins), and the
  draft-07 dictionary ``RateLimit: limit=100, remaining=50, reset=30``;
* the older draft's ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (delta seconds).

A reset value larger than 10^9 is an epoch time (larger than 10^11: epoch milliseconds), a smaller one a delay. :class:`RateBudget` is the
quota of one read, shared by its fetching threads: each request takes a slot (:meth:`RateBudget.acquire`
says how long to wait for it) and each answer refreshes the count (:meth:`RateBudget.observe`). It
never lets a request go when the quota is spent before the reset, and spaces the requests out until
the reset when fewer remain than pages are still to fetch (or, the page count unknown, when fewer
than 2% of the limit remain: a guess that costs little when the read was about to end).
Decisions only: the clock is given, the waiting is the caller's.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Callable, Mapping

__all__ = ["RateLimit", "RateBudget", "parse_rate_limit", "seconds_until_reset"]

#: seconds added to a reset time before the first request of the new window (clock skew, rounding)
RESET_MARGIN = 1.0
_EPOCH = 1e9
_EPOCH_MS = 1e11
_MEMBER = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[A-Za-z*][\w.*:/-]*)((?:\s*;\s*[A-Za-z*][\w.*-]*(?:=[^;,]*)?)*)\s*')


@dataclass(frozen=True)
class RateLimit:
    """One reading of the quota: ``remaining`` of ``limit`` (None: not said), reset in ``reset_in`` s."""

    remaining: int
    limit: int | None = None
    reset_in: float | None = None

    def describe(self) -> str:
        """``"42/5000 left, resets in 120 s"`` (what the progress bar shows)."""
        out = f"{self.remaining}/{self.limit} left" if self.limit is not None else f"{self.remaining} left"
        return out if self.reset_in is None else f"{out}, resets in {self.reset_in:.0f} s"


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip().strip('"'))
    except ValueError:
        return None
    return number if number >= 0 and number == number and number != float("inf") else None


def _delay(value: float | None, now: float) -> float | None:
    """A reset value as seconds from ``now`` (epoch when larger than 10^9, else a delay; larger than 10^11,
    past the year 5000 in seconds, it is epoch milliseconds)."""
    if value is None:
        return None
    if value > _EPOCH_MS:
        value /= 1000.0
    return max(0.0, value - now) if value > _EPOCH else value


def _members(text: str) -> list[tuple[str, dict[str, str]]]:
    """An RFC 8941 list of items with parameters: ``[(item, {param: value})]`` (lenient)."""
    out = []
    for part in text.split(","):
        match = _MEMBER.fullmatch(part)
        if not match:
            continue
        params = {}
        for param in filter(None, (p.strip() for p in match.group(2).split(";"))):
            key, _, value = param.partition("=")
            params[key.strip().lower()] = value.strip()
        out.append((match.group(1).strip('"'), params))
    return out


def _structured(headers: Mapping[str, str], now: float) -> RateLimit | None:
    """The IETF draft's ``RateLimit`` field: ``"name";r=..;t=..`` (draft-08+) or ``limit=, remaining=, reset=``."""
    value = headers.get("RateLimit")
    if not value:
        return None
    members = _members(value)
    flat = {name.lower(): params for name, params in members}
    if "remaining" in value and not any("r" in params for _, params in members):  # draft-07 dictionary
        pairs = dict(part.strip().partition("=")[::2] for part in value.split(","))
        remaining = _number(pairs.get("remaining"))
        if remaining is None:
            return None
        limit = _number(pairs.get("limit"))
        return RateLimit(int(remaining), None if limit is None else int(limit), _delay(_number(pairs.get("reset")), now))
    quotas = {name: _number(params.get("q")) for name, params in _members(headers.get("RateLimit-Policy", ""))}
    best: RateLimit | None = None
    for name, params in flat.items():
        remaining = _number(params.get("r"))
        if remaining is None:
            continue
        limit = quotas.get(name)
        reading = RateLimit(int(remaining), None if limit is None else int(limit), _delay(_number(params.get("t")), now))
        if best is None or reading.remaining < best.remaining:
            best = reading
    return best


def parse_rate_limit(headers: Mapping[str, str], *, now: float) -> RateLimit | None:
    """The quota an answer's headers tell (GitHub's, the IETF draft's, the older draft's), or None."""
    reading = _structured(headers, now)
    if reading is not None:
        return reading
    for prefix in ("X-RateLimit-", "RateLimit-"):
        remaining = _number(headers.get(prefix + "Remaining"))
        if remaining is not None:
            limit = _number(headers.get(prefix + "Limit"))
            return RateLimit(int(remaining), None if limit is None else int(limit),
                             _delay(_number(headers.get(prefix + "Reset")), now))
    return None


def seconds_until_reset(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds until the quota resets (``X-RateLimit-Reset``, ``RateLimit-Reset`` or ``RateLimit``'s ``t``)."""
    value = _number(headers.get("X-RateLimit-Reset") or headers.get("RateLimit-Reset"))
    if value is not None:
        return _delay(value, now)
    reading = _structured(headers, now)
    return reading.reset_in if reading is not None else None


class RateBudget:
    """The quota of one read, shared by its threads (see the module docstring)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.remaining: int | None = None  # what may still be sent in this window, by our count
        self.reset_at: float | None = None  # clock time the window resets
        self._ended: float | None = None  # the reset time of the last window we counted past
        self._in_flight = 0  # slots taken whose answer has not come back (they may land in the next window)
        self._window = 0.0  # the longest reset delay seen: about the window's length
        self._next_slot = 0.0

    def reading(self) -> RateLimit | None:
        """The quota as it stands now (None before any answer told it)."""
        with self._lock:
            if self.remaining is None:
                return None
            reset_in = None if self.reset_at is None else max(0.0, self.reset_at - self.clock())
            return RateLimit(max(0, self.remaining), self.limit, reset_in)

    def observe(self, headers: Mapping[str, str]) -> RateLimit | None:
        """Take an answer's reading: the lower of its count and ours, the later reset; an answer from a
        window we have counted past (its reset within half a window of that one's) is ignored."""
        now = self.clock()
        reading = parse_rate_limit(headers, now=now)
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
        if reading is None:
            return None
        reset_at = None if reading.reset_in is None else now + reading.reset_in
        with self._lock:
            if reset_at is not None:
                self._window = max(self._window, reading.reset_in or 0.0)
                if reset_at <= now or (self._ended is not None
                                       and reset_at <= self._ended + max(RESET_MARGIN, self._window / 2)):
                    return reading  # an answer from a window that has ended (by the clock, or by our count)
            self.limit = reading.limit if reading.limit is not None else self.limit
            slack = max(RESET_MARGIN, self._window / 2)  # a reset told as a delay drifts by the answer's latency
            if reset_at is not None and self.reset_at is not None and reset_at > self.reset_at + slack:
                # the next window (a request sent before the reset landed after it): its count, less the
                # requests still in flight, which may land in it too
                self._ended, self.reset_at = self.reset_at, reset_at
                self.remaining = max(0, reading.remaining - self._in_flight)
                return reading
            # the same window: our count wins when lower (requests in flight), the later reset
            self.remaining = reading.remaining if self.remaining is None else min(self.remaining, reading.remaining)
            if reset_at is not None:
                self.reset_at = reset_at if self.reset_at is None else max(self.reset_at, reset_at)
        return reading

    def release(self) -> None:
        """A slot whose request got no answer (a network error)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def _refill(self) -> None:
        """The window has reset: the limit again, less the requests still in flight (they may count in it)."""
        self._ended, self.reset_at = self.reset_at, None
        self.remaining = None if self.limit is None else max(1, self.limit - self._in_flight)

    def acquire(self, pages_left: int | None = None, max_wait: float | None = None) -> tuple[float, str]:
        """Take a slot for one request: (seconds to wait first, why). (0, "") when nothing is known.

        ``max_wait``: the longest wait the caller accepts; pacing towards a reset farther off than that
        would only delay the failure (the read cannot wait for it), so the requests then go at full speed."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._next_slot)
            if self.reset_at is not None and slot >= self.reset_at + RESET_MARGIN:  # the window has reset by then
                self._refill()
            self._in_flight += 1
            if self.remaining is None:
                return 0.0, ""
            why = ""
            if self.remaining <= 0:
                if self.reset_at is None:  # spent, reset unknown: the server's 429 will say how long
                    return 0.0, ""
                why = f"rate limit spent ({self.describe(now)})"
                slot = self.reset_at + RESET_MARGIN
                self._in_flight -= 1  # this one goes in the new window: counted below, not as in flight
                self._refill()
                self._in_flight += 1
                self.remaining = self.remaining or 1
            elif self.reset_at is not None and self._short(pages_left) and \
                    (max_wait is None or self.reset_at - slot <= max_wait):
                why = f"pacing to the rate limit ({self.describe(now)})"
                self._next_slot = slot + max(0.0, self.reset_at - slot) / self.remaining
            self.remaining -= 1
            self._next_slot = max(self._next_slot, slot)
            return slot - now, why if slot > now else ""

    def _short(self, pages_left: int | None) -> bool:
        """Fewer requests left than pages to fetch (the count unknown: under 2% of the limit)?"""
        assert self.remaining is not None
        if pages_left is not None:
            return pages_left > self.remaining
        return self.limit is not None and self.remaining < max(2, self.limit // 50)

    def describe(self, now: float) -> str:
        reset_in = None if self.reset_at is None else max(0.0, self.reset_at - now)
        return RateLimit(max(0, self.remaining or 0), self.limit, reset_in).describe()
