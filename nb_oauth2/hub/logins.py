"""Pending logins, each bound to the hub user who started it.

A login has an id (the kernel polls it; the browser link names it), its own
:class:`~nb_oauth2.core.flows.AuthorizationCodeFlow` (state, PKCE verifier, nonce,
iss expectations), an expiry, and a status: ``created`` (link not opened yet),
``pending`` (sent to the provider), ``completing``, ``done`` or ``failed``; kernels see
``pending``, ``done`` or ``failed``. The callback finds a login
by its state only together with the browser's hub user, and takes it once.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

from ..core.flows import AuthorizationCodeFlow

__all__ = ["Login", "Logins", "MAX_PER_USER"]

#: finished logins stay readable (for the kernel's poll) this long
_KEEP_FINISHED = 300.0
#: logins kept per user (pending or finished): starting one more drops that user's oldest
MAX_PER_USER = 20


@dataclass(eq=False)
class Login:
    """One sign-in started by a kernel of ``user`` for ``profile``."""

    id: str
    user: str
    profile: str
    scope: tuple[str, ...] | None
    expires_at: float
    #: made when the browser opens the link (the redirect URI is the hub's public address)
    flow: AuthorizationCodeFlow | None = field(default=None, repr=False)
    status: str = "created"  # created | pending | completing | done | failed
    error: str = ""
    finished_at: float | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def open(self) -> bool:
        return self.status in ("created", "pending") and time.time() < self.expires_at

    def finish(self, status: str, error: str = "") -> None:
        self.status, self.error, self.finished_at = status, error, time.time()
        self._changed.set()

    async def wait(self, timeout: float) -> None:
        """Return when the login finished, or after ``timeout`` seconds (long-poll)."""
        if self.status in ("done", "failed"):
            return
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def describe(self) -> dict[str, str]:
        status = "pending" if self.status in ("created", "completing") else self.status
        if status == "pending" and self.status != "completing" and time.time() >= self.expires_at:
            status, error = "failed", "The sign-in link expired; start the login again."
        else:
            error = self.error
        return {"id": self.id, "profile": self.profile, "status": status, **({"error": error} if error else {})}


def _state_key(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


class Logins:
    """Every pending login of the service (memory only: a restart drops unfinished logins)."""

    def __init__(self, ttl: float = 600.0) -> None:
        self.ttl = ttl
        self._by_id: dict[str, Login] = {}
        self._by_state: dict[str, str] = {}
        self._lock = threading.Lock()

    def create(self, user: str, profile: str, scope: tuple[str, ...] | None = None) -> Login:
        self._purge()
        login = Login(id=secrets.token_urlsafe(16), user=user, profile=profile, scope=scope,
                      expires_at=time.time() + self.ttl)
        with self._lock:
            mine = [other for other in self._by_id.values() if other.user == user]  # oldest first (insertion order)
            for old in mine[:max(0, len(mine) - MAX_PER_USER + 1)]:  # a kernel in a loop cannot fill the memory
                del self._by_id[old.id]
                old.finish("failed", "Too many sign-ins were started; this one was dropped.")
            dropped = set(self._by_state.values()) - set(self._by_id)
            if dropped:
                self._by_state = {k: v for k, v in self._by_state.items() if v not in dropped}
            self._by_id[login.id] = login
        return login

    def get(self, login_id: str, user: str) -> Login | None:
        """The login ``login_id`` if ``user`` started it (None otherwise: no hint that it exists)."""
        login = self._by_id.get(login_id)
        return login if login is not None and login.user == user else None

    def owner(self, login_id: str) -> str | None:
        login = self._by_id.get(login_id)
        return login.user if login is not None else None

    def started(self, login: Login, flow: AuthorizationCodeFlow) -> None:
        """The browser was sent to the provider by ``flow`` (its state now names this login)."""
        state = flow.expected_state or ""
        with self._lock:
            self._by_state = {k: v for k, v in self._by_state.items() if v != login.id}  # an older link retires
            self._by_state[_state_key(state)] = login.id
            login.flow = flow
            login.status = "pending"

    def holder(self, state: str) -> str | None:
        """The user whose pending login carries ``state`` (None when no login does)."""
        login = self._by_id.get(self._by_state.get(_state_key(state), ""))
        return login.user if login is not None else None

    def take(self, state: str, user: str) -> Login | None:
        """The open login whose link carried ``state``, started by ``user``; single use.

        Another user's state (or a used, expired or unknown one) gives None and leaves
        the owner's login as it was.
        """
        key = _state_key(state)
        with self._lock:
            login = self._by_id.get(self._by_state.get(key, ""))
            if login is None or login.user != user or not login.open or login.status != "pending":
                return None
            del self._by_state[key]
            login.status = "completing"
            return login

    def give_back(self, login: Login, state: str) -> None:
        """A callback that failed its checks (wrong iss, forged error) leaves the login usable (case 53)."""
        with self._lock:
            if login.status == "completing" and login.flow is not None and login.flow.expected_state == state:
                self._by_state[_state_key(state)] = login.id
                login.status = "pending"

    def _purge(self) -> None:
        now = time.time()
        with self._lock:
            for login_id, login in list(self._by_id.items()):
                finished = login.finished_at is not None and now - login.finished_at > _KEEP_FINISHED
                if finished or now > login.expires_at + _KEEP_FINISHED:
                    del self._by_id[login_id]
            live = set(self._by_id)
            self._by_state = {k: v for k, v in self._by_state.items() if v in live}
