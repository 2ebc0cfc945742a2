"""The front end of a login: a widget in a notebook, a link or code in a terminal, a driver in tests."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..core.flows import Step
from ..core.redact import MaskedForm, MaskedStr
from ..auth.attempt import Browser, LoginAttempt, complete_here
from ..auth.profile import Profile
from ..auth.registry import register
from ..auth.session import Session
from ..auth.store import TokenStore
from .autopilot import autopilot, autopilot_enabled
from .frontend import in_notebook

__all__ = ["login"]


def login(profile: str | Profile = "demo", *, scope: Sequence[str] | str | None = None, flow: str | None = None,
          via: str = "auto", store: str | TokenStore = "memory", name: str | None = None,
          browser: Browser | None = None, on_device_code: Callable[[Step], None] | None = None,
          username: str | None = None, password: str | None = None, timeout: float | None = None,
          leeway: float | None = None, **profile_options: Any) -> Session:
    """Sign in and return the named :class:`Session`.

    In a notebook (no ``browser``) the login widget is shown and the session is
    returned at once, pending until the user finishes. ``browser(url) -> redirect_url``
    does the browser's part for tests and headless runs; ``on_device_code(step)``
    is told the user code of a device login, which then waits at most ``timeout``
    seconds for the approval (Ctrl-C ends the wait at once). Elsewhere, a code login whose
    redirect the browser can send to this machine (``via``, default auto) comes back on a
    loopback port by itself (at most ``timeout`` seconds; Ctrl-C cancels), else the redirect
    is pasted at a prompt. ``leeway``: renew the token this many seconds before it expires,
    at most half its lifetime (default 45; profile setting ``leeway``).
    """
    password = MaskedStr(password) if password else password  # shown masked in verbose tracebacks (case 51)
    profile_options = MaskedForm(profile_options)  # client_secret= may be among them
    attempt = LoginAttempt(profile, scope=scope, flow=flow, store=store, name=name, leeway=leeway,
                           **profile_options)
    if browser is None and on_device_code is None and autopilot_enabled(attempt):
        browser, on_device_code, username, password = autopilot(attempt)
    restored = attempt.restore()
    if restored is not None:
        return restored
    if attempt.grant == "client_credentials":
        return attempt.complete_client_credentials()
    if attempt.grant == "password" and username and password:
        return attempt.complete_password(username, password)
    if browser is None and on_device_code is None and in_notebook():
        from ..jupyter.widgets import LoginWidget
        from IPython.display import display

        register(attempt.session)
        display(LoginWidget(attempt, via=via))
        return attempt.session
    return complete_here(attempt, browser=browser, on_device_code=on_device_code, username=username,
                         timeout=timeout, via=via)
