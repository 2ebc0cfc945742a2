"""Kernel-scoped registry of named sessions.

The state lives in a small module object kept in ``sys.modules`` so that a
re-import of the package (``%autoreload``, ``importlib.reload``) finds the same
sessions (SECURITY_CASES 45). A kernel restart forgets them.

A session is registered only when its login succeeds (a cancelled or failed login leaves the
sessions and the default as they were). Each login also leaves the call that signs its session in
again (:func:`login_call`: the profile, not the session name), which messages quote after a logout,
a revocation, or for a session whose login never finished.
"""

from __future__ import annotations

import sys
import threading
import types
from typing import TYPE_CHECKING

from ..core.errors import ConfigurationError

if TYPE_CHECKING:
    from .session import Session

__all__ = ["register", "session", "sessions", "logout", "set_default", "resolve_session", "clear",
           "remember_login_call", "login_call"]

_STATE_MODULE = "nb_oauth2._kernel_state"


def _state() -> types.ModuleType:
    state = sys.modules.get(_STATE_MODULE)
    if state is None:
        state = types.ModuleType(_STATE_MODULE, "Kernel-scoped nb_oauth2 sessions (survives re-import).")
        state.sessions = {}
        state.default = None
        state.lock = threading.RLock()
        sys.modules[_STATE_MODULE] = state
    if not hasattr(state, "login_calls"):  # state made by an older version of this module (re-import)
        state.login_calls, state.logged_out = {}, set()
    return state


def remember_login_call(name: str, call: str) -> None:
    """Remember how session ``name`` is signed in (``nb_oauth2.login('demo', name='pb2')``) for messages."""
    state = _state()
    with state.lock:
        state.login_calls[name] = call


def login_call(name: str) -> str:
    """The call that signs session ``name`` in (again): its profile and name when a login of it was made
    in this kernel, else ``nb_oauth2.login(<profile>, name=...)``."""
    state = _state()
    with state.lock:
        known = state.login_calls.get(name)
    return known or f"nb_oauth2.login(<profile>, name={name!r})"


def register(new: "Session", *, make_default: bool = True) -> "Session":
    """Keep ``new`` under its name (replacing an older session of that name)."""
    state = _state()
    with state.lock:
        state.sessions[new.name] = new
        state.logged_out.discard(new.name)
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
            if key in state.logged_out:
                raise ConfigurationError(f"Session {key!r} was logged out (sessions: {known}). Sign in again with "
                                         f"{login_call(key)}.") from None
            raise ConfigurationError(
                f"No session named {key!r} (sessions: {known}): a session exists once its login succeeds. "
                f"Sign in with {login_call(key)} (after a kernel restart, sign in again)."
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
        state.logged_out.add(target.name)
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
