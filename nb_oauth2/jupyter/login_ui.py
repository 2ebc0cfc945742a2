"""The front end of a login: a widget in a notebook, a link or code in a terminal, a driver in tests.

In a notebook :func:`login` shows the login widget and, by default, blocks the cell until the login
is over, so Run All and every later cell work. The wait completes through channels that need no
widget message (on ipykernel 7 no comm message reaches a cell that is still running): the loopback
catcher or the device poll in the widget's own thread, and for paste-back the frontend's own stdin
box. The kernel's Stop button (KeyboardInterrupt) cancels. A run nobody can answer (nbclient,
papermill, ``jupyter execute``: the execute request does not allow stdin) never waits: a stored
token is used, else a typed error says how to seed one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..core.errors import CallbackError, LoginCancelled, LoginTimeout, OAuth2Error
from ..core.flows import Step
from ..core.redact import MaskedForm, MaskedStr, redact
from ..auth.attempt import Browser, LoginAttempt, complete_here
from ..auth.capture import REDIRECT_GRANTS
from ..auth.config import store_setting
from ..auth.profile import Profile
from ..auth.session import Session
from ..auth.store import TokenStore
from .autopilot import autopilot, autopilot_enabled
from .frontend import frontend_can_prompt, in_notebook
from .hub_login import hub_login, service_for

if TYPE_CHECKING:
    from .widgets import LoginWidget

__all__ = ["login", "PASTE_PROMPT"]

#: the stdin prompt of a waiting paste-back login (getpass: the frontend masks what is typed, so the
#: redirect, which holds a one-time code or, for the implicit grant, a token, is not kept in the outputs)
PASTE_PROMPT = "Paste the address your browser shows after signing in, then press Enter (Stop ■ cancels): "
_SLICE = 0.25  # seconds between looks at a catcher that may have stopped by itself


def login(profile: str | Profile = "demo", *, scope: Sequence[str] | str | None = None, flow: str | None = None,
          via: str = "auto", store: str | TokenStore | None = None, name: str | None = None,
          browser: Browser | None = None, on_device_code: Callable[[Step], None] | None = None,
          username: str | None = None, password: str | None = None, timeout: float | None = None,
          leeway: float | None = None, wait: bool = True, **profile_options: Any) -> Session:
    """Sign in and return the named :class:`Session`; it is registered only when the login succeeds.

    In a notebook (no ``browser``) the login widget is shown and the cell waits until you are signed
    in (the redirect caught on a loopback port, the device code approved, or the redirect pasted into
    the prompt below the widget), the kernel is interrupted (Stop: the login is cancelled and
    KeyboardInterrupt re-raised) or ``timeout`` seconds pass (:class:`~nb_oauth2.core.errors.LoginTimeout`).
    ``wait=False`` returns the pending session at once; finish in the widget. A run nobody can answer
    (nbclient, papermill, ``jupyter execute``, CI) uses the stored token (``store``; by default the
    profile's setting, ``NB_OAUTH2_<PROFILE>_STORE`` or ``NB_OAUTH2_STORE``, else memory) and otherwise
    fails at once with :class:`~nb_oauth2.core.errors.ReauthRequired` saying how to seed one.

    ``browser(url) -> redirect_url`` does the browser's part for tests and headless runs;
    ``on_device_code(step)`` is told the user code of a device login, which then waits at most
    ``timeout`` seconds for the approval (Ctrl-C ends the wait at once). Elsewhere, a code login whose
    redirect the browser can send to this machine (``via``, default auto) comes back on a loopback port
    by itself (at most ``timeout`` seconds; Ctrl-C cancels), else the redirect is pasted at a prompt.
    ``leeway``: renew the token this many seconds before it expires, at most half its lifetime
    (default 45; profile setting ``leeway``).

    Behind a JupyterHub that runs the nb-oauth2 service for this profile (named by a string, with no
    ``flow``, ``via``, client or issuer options), the service signs in: its link, no paste, and at once
    when the user is already signed in on the hub (:mod:`nb_oauth2.jupyter.hub_login`).
    """
    password = MaskedStr(password) if password else password  # shown masked in verbose tracebacks (case 51)
    profile_options = MaskedForm(profile_options)  # client_secret= may be among them
    hub = service_for(profile, flow=flow, via=via, options=profile_options,
                      local_only=on_device_code is not None or bool(username or password))
    if hub is not None:  # behind a JupyterHub whose nb-oauth2 service signs users in to this profile
        notebook = browser is None and in_notebook()
        return hub_login(hub, str(profile), scope=scope, name=name, browser=browser, timeout=timeout, wait=wait,
                         notebook=notebook, unattended=notebook and not frontend_can_prompt())
    attempt = LoginAttempt(profile, scope=scope, flow=flow, store=store, name=name, leeway=leeway,
                           **profile_options)
    if browser is None and on_device_code is None and autopilot_enabled(attempt):
        browser, on_device_code, username, password = autopilot(attempt)
    notebook = browser is None and on_device_code is None and in_notebook()
    unattended = notebook and not frontend_can_prompt()
    if unattended and attempt.store_kind == "memory" and store_setting(attempt.profile) != "memory":
        # a new memory store holds nothing: an unattended run looks in the configured store
        attempt = LoginAttempt(attempt.profile, scope=scope, store=store_setting(attempt.profile), name=name,
                               leeway=leeway)
    restored = attempt.restore()
    if restored is not None:
        return restored
    if attempt.grant == "client_credentials":
        return attempt.complete_client_credentials()
    if attempt.grant == "password" and username and password:
        return attempt.complete_password(username, password)
    if notebook:
        if unattended:
            raise attempt.unattended_error()
        if not wait:
            _show(attempt, via)
            return attempt.session
        return _wait_in_notebook(attempt, via=via, timeout=timeout, username=username)
    return complete_here(attempt, browser=browser, on_device_code=on_device_code, username=username,
                         timeout=timeout, via=via)


def _show(attempt: LoginAttempt, via: str, *, waiting_cell: bool = False) -> "LoginWidget":
    from IPython.display import display

    from .widgets import LoginWidget

    widget = LoginWidget(attempt, via=via, waiting_cell=waiting_cell)
    display(widget)
    return widget


def _wait_in_notebook(attempt: LoginAttempt, *, via: str, timeout: float | None, username: str | None) -> Session:
    """Show the widget, then block until the login is over (Stop cancels it: case 44)."""
    if attempt.grant == "password":  # the frontend's stdin boxes: input() for the name, getpass() for the password
        try:
            return complete_here(attempt, username=username)
        except KeyboardInterrupt:
            attempt.cancel()
            raise
    widget = _show(attempt, via, waiting_cell=True)  # no paste box or Cancel: their clicks would not arrive
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not attempt.finished:
            if _must_paste(attempt):
                _prompt_for_redirect(attempt)
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                attempt.cancel(LoginTimeout(f"The login was not finished within timeout={timeout:g} s; it was "
                                            "cancelled.", hint=f"Run {attempt.login_call} again"))
                break
            attempt.wait_finished(_SLICE if left is None else min(_SLICE, left))
    finally:
        widget.cancel()  # stops the widget's background work and shows the final phase (cancels a waiting login)
    return _outcome(attempt)


def _must_paste(attempt: LoginAttempt) -> bool:
    """A redirect login that only a paste can finish: paste-back, or a catcher that stopped without a redirect."""
    if attempt.grant not in REDIRECT_GRANTS or attempt.phase != "waiting":
        return False
    catcher = attempt.catcher
    return catcher is None or (catcher.closed and not catcher.received)


def _prompt_for_redirect(attempt: LoginAttempt) -> None:
    """One paste into the frontend's stdin box (masked: the frontend keeps what is typed in the outputs)."""
    import getpass

    text = getpass.getpass(PASTE_PROMPT).strip()
    if not text:
        print("Nothing was pasted. Open the sign-in link above, then paste the address you land on.")
        return
    try:
        attempt.complete_redirect(text)
    except CallbackError as exc:  # the login is still waiting: say why and ask again
        print(redact(exc.message))
    except OAuth2Error:
        pass  # the attempt is failed or cancelled now: _outcome raises its error


def _outcome(attempt: LoginAttempt) -> Session:
    if attempt.phase == "done":
        return attempt.session
    if attempt.error is not None:
        raise attempt.error
    raise LoginCancelled("The login was cancelled.", hint=f"Run {attempt.login_call} again")
