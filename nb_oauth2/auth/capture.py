"""How the browser's redirect comes back to a login: the ``via`` choice, its reason, the loopback catcher.

:func:`open_capture` decides once, for every front end (widget, terminal, script):

* a redirect grant auto-captures on a :class:`~nb_oauth2.core.loopback.LoopbackCatcher` when
  :func:`~nb_oauth2.core.loopback.choose_via` says the browser can reach this kernel (directly, or through
  jupyter-server-proxy), else the user pastes the redirect back;
* the implicit grant always pastes back (the token is in the URL fragment, which never reaches a server);
* other grants have no redirect: the device code, the password form, or no user step at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..core.errors import ConfigurationError
from ..core.loopback import LoopbackCatcher, choose_via, public_base_url
from ..core.providers import NOTEBOOK_ORIGIN

__all__ = ["Capture", "CatcherFactory", "REDIRECT_GRANTS", "open_capture"]

CatcherFactory = Callable[[], LoopbackCatcher]

#: the grants whose user step ends in a browser redirect
REDIRECT_GRANTS = ("authorization_code", "implicit")

_NO_REDIRECT = {
    "device_code": ("device", "device authorization: approve the code on any device"),
    "password": ("password", "the password grant (legacy): the app sees your password"),
    "client_credentials": ("none", "client credentials: no user step"),
}


@dataclass(frozen=True)
class Capture:
    """The outcome of the choice: ``via`` (loopback, proxy, paste, device, password, none), why, and the
    running catcher when the redirect is captured."""

    via: str
    reason: str
    catcher: LoopbackCatcher | None = None


def open_capture(grant: str, via: str = "auto", *, profile_redirect_uri: str | None = None,
                 catcher_factory: CatcherFactory = LoopbackCatcher) -> Capture:
    """Choose how the redirect of a ``grant`` login comes back; start the catcher when it is captured.

    ``via`` is checked for redirect grants only (:class:`ConfigurationError` for an unknown one).
    ``profile_redirect_uri`` tells whether the provider redirects by path on the notebook's own origin
    (the demo behind jupyter-server-proxy). A catcher that cannot listen falls back to paste-back.
    """
    if grant not in REDIRECT_GRANTS:
        return Capture(*_NO_REDIRECT.get(grant, ("none", "")))
    method, reason = choose_via(via)
    if method == "device":
        return Capture("paste", "a device login needs --flow device; paste the redirect back here")
    if method in ("loopback", "proxy") and grant != "authorization_code":
        return Capture("paste", "the implicit grant puts the token in the URL fragment, which never reaches a server")
    if method not in ("loopback", "proxy"):
        return Capture(method, reason)
    return _start_catcher(method, reason, profile_redirect_uri, catcher_factory)


def _start_catcher(method: str, reason: str, profile_redirect_uri: str | None,
                   catcher_factory: CatcherFactory) -> Capture:
    try:
        catcher = catcher_factory().start()
    except ConfigurationError as exc:
        return Capture("paste", f"auto-capture is unavailable ({exc.message})")
    if method == "proxy":
        base = public_base_url()
        by_path = (profile_redirect_uri or "").startswith(NOTEBOOK_ORIGIN + "/")  # the demo behind the proxy
        if base is None and not by_path:
            catcher.close()
            return Capture("paste", "JupyterHub: set NB_OAUTH2_PUBLIC_URL to this server's public URL "
                                    "to enable auto-capture through jupyter-server-proxy (see nb-oauth2 redirect-uri)")
        catcher.browser_redirect_uri(None if by_path else base)
    return Capture(method, reason, catcher)
