"""Transport rules: https everywhere, plain http only towards loopback (RFC 8252 7.3).

oauthlib refuses every non-https URL unless the process-wide
``OAUTHLIB_INSECURE_TRANSPORT`` variable is set, which would also allow http
to any remote host. nb_oauth2 never sets it. Instead nb_oauth2's own calls into
oauthlib and requests-oauthlib run inside :func:`loopback_http_allowed`, and
only there the transport check is widened by exactly one rule (loopback hosts
may use http) and narrowed by one (a URL that parsers read differently or that
carries userinfo is never secure, whatever its scheme; SECURITY_CASES 46, 47,
see :mod:`nb_oauth2.core.urls`).

Importing nb_oauth2 changes nothing in oauthlib. oauthlib's client modules and
requests-oauthlib bind ``is_secure_transport`` at their import, so the first
entry into :func:`loopback_http_allowed` replaces those module attributes
(lazily, once) with a wrapper that, outside the scope, simply returns the
original function's answer: other code in the process (plain oauthlib or
requests-oauthlib) behaves exactly as without nb_oauth2, and still refuses
``http://127.0.0.1`` unless ``OAUTHLIB_INSECURE_TRANSPORT`` is set. The scope
is a context variable: it holds for the current thread or task only.
Server-side modules are never touched.
"""

from __future__ import annotations

import importlib
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

from .errors import UnsafeURL
from .urls import checked_url, is_secure_or_loopback

__all__ = ["loopback_http_allowed", "is_secure_or_loopback"]

_CLIENT_MODULES = (
    "oauthlib.oauth2.rfc6749.parameters",
    "oauthlib.oauth2.rfc6749.clients.base",
    "oauthlib.oauth2.rfc8628.clients.device",
    "requests_oauthlib.oauth2_session",
    "requests_oauthlib.oauth2_auth",
)
_MARK = "_nb_oauth2_loopback_ok"
_ALLOWED: ContextVar[bool] = ContextVar("nb_oauth2_loopback_http", default=False)
_install_lock = threading.Lock()
_installed = False


def _reads_alike(uri: str) -> bool:
    try:
        checked_url(uri)
    except UnsafeURL:
        return False
    return True


def _scoped(original: Callable[[str], bool]) -> Callable[[str], bool]:
    def is_secure_transport(uri: str) -> bool:
        if not _ALLOWED.get():  # outside nb_oauth2's own calls: oauthlib's answer, unchanged
            return original(uri)
        # is_secure_or_loopback is False for unsafe URLs; oauthlib's own answer (https, or the
        # user's OAUTHLIB_INSECURE_TRANSPORT) counts only for a URL every parser reads alike.
        return is_secure_or_loopback(uri) or (original(uri) and _reads_alike(uri))

    setattr(is_secure_transport, _MARK, True)
    is_secure_transport.__wrapped__ = original  # type: ignore[attr-defined]
    return is_secure_transport


def _install() -> None:
    """Once: wrap the check the client modules bound (identical behaviour outside the scope)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in _CLIENT_MODULES:
            module = importlib.import_module(name)
            current = getattr(module, "is_secure_transport", None)
            if current is not None and not getattr(current, _MARK, False):
                module.is_secure_transport = _scoped(current)
        _installed = True


@contextmanager
def loopback_http_allowed() -> Iterator[None]:
    """Within this block (this thread or task), oauthlib's client-side check accepts loopback http
    and refuses URLs that parsers read differently; elsewhere it is oauthlib's own."""
    if not _installed:
        _install()
    reset = _ALLOWED.set(True)
    try:
        yield
    finally:
        _ALLOWED.reset(reset)
