"""Kernel-scoped registry of named sessions.

The state lives in a small module object kept in ``sys.modules`` so that a
re-import of the package (``%autoreload``, ``importlib.reload``) finds the same
sessions (SECURITY_CASES 45). A kernel restart forgets them.
"""

from __future__ import annotations

import sys
import threading
import types
from typing import TYPE_CHECKING

from ..core.errors import ConfigurationError

if TYPE_CHECKING:
    from .session import Session

__all__ = ["register", "session", "sessions", "logout", "set_default", "resolve_session", "clear"]

_STATE_MODULE = "nb_oauth2._kernel_state"


def _state() -> types.ModuleType:
    state = sys.modules.get(_STATE_MODULE)
    if state is None:
        state = types.ModuleType(_STATE_MODULE, "Kernel-scoped nb_oauth2 sessions (survives re-import).")
        state.sessions = {}
        state.default = None
        state.lock = threading.RLock()
        sys.modules[_STATE_MODULE] = state
    return state


def register(new: "Session", *, make_default: bool = True) -> "Session":
    """Keep ``new`` under its name (replacing an older session of that name)."""
    state = _state()
    with state.lock:
        state.sessions[new.name] = new
        if make_default or state.default is None:
            state.default = new.name
    return new


def session(name: str | None = None) -> "Session":
    """The named session, or the default one (the last signed in, or set by ``use``)."""
    state = _state()
    with state.lock:
        key = name or state.default
        if key is None:
            raise ConfigurationError("No session yet: sign in first with nb_oauth2.login(<profile>) or %oauth2 login.")
        try:
            return state.sessions[key]
        except KeyError:
            known = ", ".join(sorted(state.sessions)) or "none"
            raise ConfigurationError(
                f"No session named {key!r} (sessions: {known}). After a kernel restart or re-import "
                "from scratch, log in again."
            ) from None


def sessions() -> list["Session"]:
    """Every session of this kernel, in sign-in order."""
    state = _state()
    with state.lock:
        return list(state.sessions.values())


def set_default(name: str) -> "Session":
    """Make ``name`` the session that helpers use when none is given."""
    state = _state()
    found = session(name)
    with state.lock:
        state.default = name
    return found


def logout(name: str | None = None, *, revoke: bool = False) -> bool:
    """Forget a session's tokens (revoking them first when asked); True when revocation was confirmed."""
    state = _state()
    target = session(name)
    if revoke:
        confirmed = target.revoke()
    else:
        target.forget()
        confirmed = True
    with state.lock:
        state.sessions.pop(target.name, None)
        if state.default == target.name:
            state.default = next(reversed(state.sessions), None) if state.sessions else None
    return confirmed


def resolve_session(value: "str | Session | None") -> "Session":
    """Accept a session, a profile/session name, or None (the default session)."""
    if value is None or isinstance(value, str):
        return session(value)
    return value


def clear() -> None:
    """Forget every session (tests, ``%oauth2 logout --all``)."""
    state = _state()
    with state.lock:
        for item in state.sessions.values():
            item.forget()
        state.sessions.clear()
        state.default = None
