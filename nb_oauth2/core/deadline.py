"""A total deadline for one HTTP exchange (SECURITY_CASES 57).

requests' timeouts are per socket read: a server that drips one byte a second
never trips them. :func:`arm_deadline` registers a streamed response with one
shared daemon thread that, at the deadline, shuts the response's socket down;
the reader blocked on it sees the connection end at once. The caller stops the
alarm when the exchange is over and learns whether it fired. The thread exits
after a few idle seconds.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time

import requests

__all__ = ["Alarm", "arm_deadline"]


class Alarm:
    """The pending deadline of one exchange; :meth:`stop` says whether it fired."""

    def __init__(self, watchdog: _Watchdog, sock: socket.socket | None) -> None:
        self._watchdog = watchdog
        self.sock = sock
        self.fired = self.cancelled = False

    def stop(self) -> bool:
        """Cancel the alarm; True when it had already fired (the connection was cut)."""
        with self._watchdog.cond:
            if not self.fired and not self.cancelled:
                self.cancelled = True
                self.sock = None
                self._watchdog.cancelled += 1
            return self.fired

    def cut(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            try:  # the base method: a reader blocked in another thread sees EOF at once (plain or TLS)
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:  # already closed
                pass


class _Watchdog:
    """One daemon thread that cuts the connections of exchanges past their deadline."""

    idle_exit = 5.0

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.cancelled = 0
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, when: float, resp: requests.Response) -> Alarm:
        alarm = Alarm(self, _socket_of(resp))
        with self.cond:
            self._drop_cancelled()
            entry = (when, next(self._order), alarm)
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="nb_oauth2-deadline", daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:  # earlier than what the thread waits for: wake it
                self.cond.notify()
        return alarm

    def _drop_cancelled(self) -> None:
        if self.cancelled > 64 and self.cancelled * 2 > len(self._heap):  # finished exchanges pile up
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self.cancelled = 0
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
            self.cancelled = max(0, self.cancelled - 1)

    def _run(self) -> None:
        while True:
            with self.cond:
                self._drop_cancelled()
                if not self._heap:
                    if not self.cond.wait(self.idle_exit) and not self._heap:
                        self._thread = None
                        return
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self.cond.wait(delay)
                    continue
                alarm = heapq.heappop(self._heap)[2]
                alarm.fired = True
            alarm.cut()


def _socket_of(resp: requests.Response) -> socket.socket | None:
    """The socket under a streamed response (urllib3 1.26 and 2.x)."""
    raw = getattr(resp, "raw", None)
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:  # http.client's file object over the socket
        sock = getattr(getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


_WATCHDOG = _Watchdog()


def arm_deadline(when: float, resp: requests.Response) -> Alarm:
    """Cut ``resp``'s connection at ``when`` (``time.monotonic()`` seconds) unless stopped first."""
    return _WATCHDOG.arm(when, resp)
