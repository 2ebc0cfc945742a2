"""Transport rules: https everywhere, plain http only towards loopback (RFC 8252 7.3).

oauthlib refuses every non-https URL unless the process-wide
``OAUTHLIB_INSECURE_TRANSPORT`` variable is set, which would also allow http
to any remote host. nb_oauth2 never sets it. Instead the ``is_secure_transport``
check that oauthlib's *client* modules and requests-oauthlib bound at import is
widened by exactly one rule: loopback hosts may use http. It is also narrowed
by one: a URL that parsers read differently or that carries userinfo is never
secure, whatever its scheme (SECURITY_CASES 46, 47; see :mod:`nb_oauth2.urls`).
Server-side modules are left alone.
"""

from __future__ import annotations

import importlib
from typing import Callable

from .errors import UnsafeURL
from .urls import checked_url, is_secure_or_loopback

__all__ = ["allow_loopback_http", "is_secure_or_loopback"]

_CLIENT_MODULES = (
    "oauthlib.oauth2.rfc6749.parameters",
    "oauthlib.oauth2.rfc6749.clients.base",
    "oauthlib.oauth2.rfc8628.clients.device",
    "requests_oauthlib.oauth2_session",
    "requests_oauthlib.oauth2_auth",
)
_MARK = "_nb_oauth2_loopback_ok"


def _reads_alike(uri: str) -> bool:
    try:
        checked_url(uri)
    except UnsafeURL:
        return False
    return True


def _widen(original: Callable[[str], bool]) -> Callable[[str], bool]:
    def is_secure_transport(uri: str) -> bool:
        # is_secure_or_loopback is False for unsafe URLs; oauthlib's own answer (https, or the
        # user's OAUTHLIB_INSECURE_TRANSPORT) counts only for a URL every parser reads alike.
        return is_secure_or_loopback(uri) or (original(uri) and _reads_alike(uri))

    setattr(is_secure_transport, _MARK, True)
    return is_secure_transport


def allow_loopback_http() -> None:
    """Idempotently widen oauthlib's client-side transport check to loopback http."""
    for name in _CLIENT_MODULES:
        module = importlib.import_module(name)
        current = getattr(module, "is_secure_transport", None)
        if current is not None and not getattr(current, _MARK, False):
            module.is_secure_transport = _widen(current)
