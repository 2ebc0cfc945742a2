"""Who signed in, for display only: a user name read from the OIDC ``id_token`` or the userinfo endpoint.

:func:`who` is best-effort and never raises: it reads the ``id_token``'s claims (not verified: the
name is shown, never trusted for a decision) and, when there is no usable claim and the provider has a
``userinfo_endpoint``, makes one GET with a short timeout. The answer is cached per session (weakly: a
forgotten session takes its entry with it), so ``%oauth2 status`` asks the provider at most once.
"""

from __future__ import annotations

import base64
import json
import threading
import weakref
from typing import TYPE_CHECKING, Any, Mapping

from ..core.redact import redact

if TYPE_CHECKING:
    from .session import Session

__all__ = ["who", "known", "display_name", "claims_of_id_token", "USERINFO_TIMEOUT"]

#: (connect, read) seconds for the one userinfo request: a slow provider costs the user at most this
USERINFO_TIMEOUT = (2.0, 3.0)
_MAX_JWT = 16_384
_MAX_SHOWN = 80

_lock = threading.Lock()
_cache: "weakref.WeakKeyDictionary[Session, str | None]" = weakref.WeakKeyDictionary()


def claims_of_id_token(id_token: str | None) -> dict[str, Any] | None:
    """The payload of a JWT ``id_token`` as a dict (unverified, for display), or None."""
    if not isinstance(id_token, str) or len(id_token) > _MAX_JWT or id_token.count(".") != 2:
        return None
    payload = id_token.split(".")[1]
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _clean(value: Any) -> str | None:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return None
    text = " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())
    if not text:
        return None
    text = redact(text)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def display_name(claims: Mapping[str, Any] | None) -> str | None:
    """``"Alice Liddell (alice)"`` from OIDC claims: ``name`` with ``preferred_username`` (else ``email``),
    or the first of preferred_username, email, name, sub (also GitHub's ``login``)."""
    if not claims:
        return None
    handle = next((v for v in map(_clean, (claims.get("preferred_username"), claims.get("login"),
                                           claims.get("email"))) if v), None)
    name = _clean(claims.get("name"))
    if name and handle and name != handle:
        return f"{name} ({handle})"
    return handle or name or _clean(claims.get("sub"))


def _from_userinfo(session: "Session", timeout: Any) -> str | None:
    url = getattr(session.provider, "userinfo_endpoint", None)
    if not url or not session.is_authorized:
        return None
    try:
        response = session.get(url, timeout=timeout, headers={"Accept": "application/json"})
        if response.status_code != 200:
            return None
        data = response.json()
    except Exception:  # best-effort: a name is never worth failing a login or a status table
        return None
    return display_name(data) if isinstance(data, dict) else None


def who(session: "Session", *, timeout: Any = USERINFO_TIMEOUT, refresh: bool = False) -> str | None:
    """The signed-in user's display name, or None when unknown (never raises; at most one GET per session).

    A session that knows its user without asking (a ``user`` string, e.g. a session signed in through
    the JupyterHub service, which read it at sign-in) answers first; then the ``id_token``'s claims;
    else one GET of the provider's ``userinfo_endpoint``. ``refresh=True`` asks again instead of
    reusing the cached answer.
    """
    try:
        if not session.is_authorized:
            return None
        given = _clean(getattr(session, "user", None))
        if given:
            return given
        with _lock:
            if not refresh and session in _cache:
                return _cache[session]
        token = session.token_info
        name = display_name(claims_of_id_token(token.id_token if token else None))
        if name is None:
            name = _from_userinfo(session, timeout)
        with _lock:
            _cache[session] = name
        return name
    except Exception:
        return None


def known(session: "Session") -> str | None:
    """The cached answer of :func:`who`, without asking anyone (None when not asked yet)."""
    with _lock:
        return _cache.get(session)
