"""The login behind a JupyterHub that runs the nb-oauth2 service (issue 14).

:func:`nb_oauth2.login` and ``%oauth2 login`` come here when :func:`service_for` finds the
service and it signs users in to the profile: the service owns the redirect and the client
secret, so the kernel only shows the service's sign-in link and waits (long-polls) until the
browser has finished; no paste box, no loopback port, no NB_OAUTH2_PUBLIC_URL. A user already
signed in on the hub (from another notebook or kernel) is signed in at once, without a link, also
in a run nobody can answer (``jupyter execute``). The session is the service client's
:class:`~nb_oauth2.hub.client.HubSession`, registered under the usual name; ``logout(revoke=True)``
signs every kernel of the user out, ``logout()`` only this one.
"""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..auth.registry import register, remember_login_call
from ..core.errors import OAuth2Error, ReauthRequired
from ..core.names import split_list
from ..core.redact import redact
from .login_text import LINK_STYLE, pending_html, until

if TYPE_CHECKING:
    from ..hub.client import HubLogin, HubService, HubSession

__all__ = ["service_for", "hub_login", "HubLoginView"]

_POLL = 5.0  # seconds per long-poll while a cell waits (Stop is felt within this)
_NO_TIMEOUT = 365 * 24 * 3600.0
_CSS = "nb-oauth2-"
_detected: dict[tuple[str, ...], "HubService | None"] = {}


def _detect() -> "HubService | None":
    """:meth:`HubService.detect` once per kernel and environment (it may ask the hub API)."""
    import os

    from ..hub.client import URL_ENV, HubService

    key = tuple(os.environ.get(k, "") for k in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", URL_ENV))
    if key not in _detected:
        _detected[key] = HubService.detect()
    return _detected[key]


def service_for(profile: object, *, flow: str | None, via: str, local_only: bool,
                options: Mapping[str, Any]) -> "HubService | None":
    """The hub's service when it signs this kernel's user in to ``profile``; None for a login in the kernel.

    Only a profile named by a string, with no grant, ``via``, client or issuer given in the call
    (``local_only``: a device hook, a username or password), goes through the service.
    """
    if not isinstance(profile, str) or flow or via != "auto" or local_only or options:
        return None
    service = _detect()
    if service is None:
        return None
    return service if profile in service.profiles() else None


def _login_call(profile: str, name: str) -> str:
    return f"nb_oauth2.login({profile!r}" + (f", name={name!r})" if name != profile else ")")


def hub_login(service: "HubService", profile: str, *, scope: Sequence[str] | str | None, name: str | None,
              browser: Callable[[str], Any] | None, timeout: float | None, wait: bool, notebook: bool,
              unattended: bool) -> "HubSession":
    """Sign in through the service: at once when the user is signed in on the hub, else by its link.

    ``browser(url)`` (tests, headless runs) opens the service's link in the browser signed in to
    the hub and finishes the sign-in there (what it returns is not used: the service catches the
    redirect). In a notebook the widget shows the link and the cell waits (``wait=False``: returns
    the pending session at once); elsewhere the link is printed. Stop (KeyboardInterrupt) ends the wait.
    """
    name = name or profile
    call = _login_call(profile, name)
    remember_login_call(name, call)
    session = service.session(profile, name=name)
    session.sign_in_call = call
    try:
        _install(session, *service.token_and_user(profile))
    except ReauthRequired:
        pass
    else:
        if notebook:
            from IPython.display import HTML, display

            display(HTML(f'<div class="{_CSS}login {_CSS}hub-signed-in">{html.escape(signed_in_line(session))}</div>'))
        return session
    if unattended:
        raise ReauthRequired(
            f"Not signed in to {profile} on this hub, and this run cannot show a sign-in link (nbclient, "
            "papermill and jupyter execute take no input).",
            hint=f"Run {call} once in a notebook on this hub: the hub's nb-oauth2 service then signs in every "
                 "kernel of yours, this run included")
    pending = service.start_login(profile, split_list(scope))
    limit = _NO_TIMEOUT if timeout is None else timeout
    if not notebook:
        if browser is not None:
            browser(pending.url)
        else:
            print(f"Open this link in the browser where you use the hub to sign in to {profile}: {pending.url}")
        _complete(service, pending, session, limit)
        return session
    from IPython.display import display

    view = HubLoginView(session.name, profile, pending.url, waiting_cell=wait)
    display(view)
    if not wait:
        threading.Thread(target=_complete_in_background, args=(service, pending, session, limit, view),
                         name="nb_oauth2-hub-login", daemon=True).start()
        return session
    try:
        _complete(service, pending, session, limit)
    except KeyboardInterrupt:
        view.end("Login cancelled (Stop). Run the login again to start over.", kind="error")
        raise
    except OAuth2Error as exc:
        view.end(f"{redact(exc.message)} {exc.hint or ''}".strip(), kind="error")
        raise
    view.end(signed_in_line(session), kind="ok")
    return session


def _install(session: "HubSession", token: Any, user: str | None = None) -> None:
    session.flow.remember(token)
    session.flow.user = user
    session.set_token(token)
    register(session)


def _complete(service: "HubService", pending: "HubLogin", session: "HubSession", timeout: float) -> None:
    service.wait(pending, timeout=timeout, poll=_POLL)
    _install(session, *service.token_and_user(pending.profile))


def _complete_in_background(service: "HubService", pending: "HubLogin", session: "HubSession", timeout: float,
                            view: "HubLoginView") -> None:
    try:
        _complete(service, pending, session, timeout)
    except OAuth2Error as exc:
        view.end(f"{redact(exc.message)} {exc.hint or ''}".strip(), kind="error")
        return
    view.end(signed_in_line(session), kind="ok")


def signed_in_line(session: "HubSession") -> str:
    """``Signed in as profile demo through this hub's nb-oauth2 service (until 14:05, renews by itself; sha256:…).``"""
    status = session.status()
    renews = ", renews by itself" if status.get("refreshable") else ""
    return (f"Signed in as profile {session.name} through this hub's nb-oauth2 service "
            f"({until(status['expires_in'])}{renews}; {status['fingerprint']}).")


def _styled(widget: Any, name: str) -> Any:
    widget.add_class(_CSS + name)
    return widget


class HubLoginView:
    """The sign-in widget of a hub login: the service's link, the pending line, the outcome.

    It holds no secret: the link names a login that only its own hub user can complete."""

    def __init__(self, session_name: str, profile: str, url: str, *, waiting_cell: bool) -> None:
        import ipywidgets as widgets

        self.url = url
        named = f"session <code>{html.escape(session_name)}</code>"
        if session_name != profile:
            named += f", profile <code>{html.escape(profile)}</code>"
        self._title_html = f"<b>Sign in to {html.escape(profile)}</b> ({named}, through this hub)"
        self._title = _styled(widgets.HTML(self._title_html), "title")
        self._link = _styled(widgets.HTML(
            f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer" '
            f'style="{LINK_STYLE}">Sign in to {html.escape(profile)} ↗</a>'), "link")
        self._method = _styled(widgets.HTML(
            "<small>The hub's nb-oauth2 service finishes this login: after you sign in, this notebook goes on by "
            "itself (nothing to paste), and your other notebooks on this hub are signed in too.</small>"), "method")
        text = "Waiting for you to sign in…" + (" Stop (■) cancels." if waiting_cell else "")
        self._pending = _styled(widgets.HTML(pending_html(text, 0)), "pending")
        self._status = _styled(widgets.HTML(""), "status")
        self.box = _styled(widgets.VBox([self._title, self._link, self._method, self._pending, self._status]),
                           "login")
        self._ended = threading.Event()
        threading.Thread(target=self._tick, args=(text, time.monotonic()), name="nb_oauth2-hub-pending",
                         daemon=True).start()

    @property
    def status_text(self) -> str:
        return html.unescape(self._status.value.split(">", 1)[-1].rsplit("<", 1)[0])

    def _tick(self, text: str, started: float) -> None:
        while not self._ended.wait(1.0):
            self._pending.value = pending_html(text, time.monotonic() - started)

    def end(self, text: str, *, kind: str) -> None:
        """The login is over: show ``text`` (already redacted), drop the link and the pending line."""
        self._ended.set()
        colour = {"error": "#b00020", "ok": "#1b5e20"}.get(kind, "inherit")
        self._status.value = f'<span style="color:{colour}">{html.escape(text)}</span>'
        self.box.children = (self._title, self._status)
        for widget in (self._link, self._method, self._pending):
            widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.box._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = f"Sign in through the hub: {self._status.value and self.status_text or 'waiting'}"
        bundle["text/html"] = (f'<div class="{_CSS}login-static">{self._title_html}<br><small>This sign-in panel '
                               "works only with the kernel that showed it; run the cell again to sign in.</small></div>")
        return bundle
