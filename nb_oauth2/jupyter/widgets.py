"""The login widget: a pure ipywidgets view of a :class:`nb_oauth2.auth.attempt.LoginAttempt`.

It renders the attempt's step, ``via`` and phase, and forwards clicks, pastes and
background waits to the attempt's methods; the attempt decides everything else
(redirect capture, state, phase). It holds no secret trait (widget state is saved
with the notebook): the paste box and the password field are cleared the moment
they are read, and every input is closed once the login is over (SECURITY_CASES 39).
Background work (loopback wait, device polling, countdown) runs in daemon threads
that wait on one ``threading.Event`` so Cancel ends them at once.
"""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

import ipywidgets as widgets

from ..core.errors import CallbackError, LoginCancelled, OAuth2Error
from ..core.redact import redact

if TYPE_CHECKING:
    from ..core.flows import Step
    from ..core.loopback import LoopbackCatcher
    from ..auth.attempt import LoginAttempt
    from ..auth.session import Session

__all__ = ["LoginWidget"]

_CSS = "nb-oauth2-"
#: the sign-in link looks like a button (JupyterLab shows plain anchors as body text)
_LINK_STYLE = ("display:inline-block;padding:4px 14px;margin:4px 0;border-radius:4px;background:#1976d2;"
               "color:#fff;text-decoration:none;font-weight:600")


def _styled(widget: widgets.DOMWidget, name: str) -> Any:
    widget.add_class(_CSS + name)
    return widget


def _message(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, OAuth2Error) else f"{type(exc).__name__}"
    return redact(text)


def _is_web_link(uri: object) -> bool:
    """An absolute http(s) URL with a host and no whitespace or control characters (case 60)."""
    if not isinstance(uri, str) or not uri or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        return False
    parts = urlsplit(uri)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _device_link(step: "Step") -> str | None:
    """The device page to link to: ``verification_uri_complete``, else ``verification_uri``, if http(s)."""
    for uri in (step.verification_uri_complete, step.verification_uri):
        if _is_web_link(uri):
            return uri
    return None


def _shown(uri: object, limit: int = 120) -> str:
    text = redact(str(uri or ""))
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def _device_link_html(step: "Step") -> str:
    """The device page as a link, or as escaped text with a warning when it is not http(s) (case 60)."""
    link = _device_link(step)
    shown = step.verification_uri if _is_web_link(step.verification_uri) else link
    bad = [u for u in (step.verification_uri, step.verification_uri_complete) if u and not _is_web_link(u)]
    warning = ""
    if bad:
        warning = (f'<br><small style="color:#b00020">The provider sent a verification address that is not an '
                   f"http(s) web address, so it is not a link: <code>{html.escape(_shown(bad[0]))}</code>. "
                   + ("Enter the code on the page above.</small>" if link else
                      "Open your provider's device page yourself.</small>"))
    if link is None:
        return f"<span>your provider's device page</span>{warning}"
    return (f'<a href="{html.escape(link, quote=True)}" target="_blank" rel="noopener noreferrer">'
            f"{html.escape(shown or link)}</a>{warning}")


class LoginWidget:
    """Sign-in UI for one pending login: link + paste box, device code, password form or status."""

    def __init__(self, attempt: "LoginAttempt", *, via: str = "auto",
                 catcher_factory: Callable[[], "LoopbackCatcher"] | None = None) -> None:
        self.attempt = attempt
        self._callbacks: list[Callable[["Session"], Any]] = []
        self._cancel_event = threading.Event()
        self._end_lock = threading.Lock()
        self._ended = False
        self._shown = threading.Event()  # the final phase is on screen
        self._threads: list[threading.Thread] = []
        self._title = _styled(widgets.HTML(f"<b>Sign in to {html.escape(attempt.provider_name)}</b> "
                                           f"(profile {html.escape(attempt.profile_name)})"), "title")
        self._status = _styled(widgets.HTML(""), "status")
        self._cancel = _styled(widgets.Button(description="Cancel", icon="times"), "cancel")
        self._cancel.on_click(self._on_cancel_click)
        self._inputs: list[widgets.Widget] = []
        self.box = _styled(widgets.VBox([self._title]), "login")
        builders = {"authorization_code": self._build_redirect, "implicit": self._build_redirect,
                    "device_code": self._build_device, "password": self._build_password,
                    "client_credentials": self._build_client_credentials}
        try:
            attempt.start(via, catcher_factory=catcher_factory)
        except OAuth2Error:
            self._settle()
            return
        builders[attempt.grant]()

    # -- what the attempt holds, as shown ------------------------------------------------

    @property
    def phase(self) -> str:
        """The attempt's phase as shown: a final phase once the widget has rendered it."""
        phase = self.attempt.phase
        return phase if phase in ("idle", "waiting") or self._shown.is_set() else "waiting"

    @property
    def step(self) -> "Step | None":
        return self.attempt.step

    @property
    def via(self) -> str:
        return self.attempt.via

    @property
    def via_reason(self) -> str:
        return self.attempt.via_reason

    # -- public -------------------------------------------------------------------------

    def on_success(self, callback: Callable[["Session"], Any]) -> None:
        """Call ``callback(session)`` once signed in (at once if already signed in)."""
        if self.phase == "done":
            callback(self.attempt.session)
        else:
            self._callbacks.append(callback)

    @property
    def status_text(self) -> str:
        return self._status.value

    def cancel(self) -> None:
        """Stop every background wait and close the inputs (same as the Cancel button)."""
        self._on_cancel_click(self._cancel)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the background threads (tests)."""
        for thread in list(self._threads):
            thread.join(timeout)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.box._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        step = self.step
        lines = [f"Sign in to {self.attempt.provider_name} (profile {self.attempt.profile_name}): {self.phase}"]
        if self.phase == "waiting" and step is not None:
            if step.kind == "redirect" and step.authorization_url:
                lines.append(f"Open {step.authorization_url} and paste back the address you are sent to.")
            elif step.kind == "device":
                link = _device_link(step)
                where = link or f"the provider's device page (it sent {_shown(step.verification_uri)}, not a web address)"
                lines.append(f"Open {where} and enter the code {step.user_code}.")
        status = self._plain_status()
        if status:
            lines.append(status)
        return "\n".join(lines)

    def _plain_status(self) -> str:
        import re

        return html.unescape(re.sub(r"<[^>]+>", "", self._status.value))

    # -- building ----------------------------------------------------------------------

    def _show(self, *children: widgets.Widget) -> None:
        self._inputs = [c for c in children if c is not self._status]
        self.box.children = (self._title, *children)

    def _say(self, text: str, *, kind: str = "info") -> None:
        colour = {"error": "#b00020", "ok": "#1b5e20"}.get(kind, "inherit")
        safe = html.escape(html.unescape(redact(text)))  # messages may be escaped already: escape exactly once
        self._status.value = f'<span style="color:{colour}">{safe}</span>'

    def _build_redirect(self) -> None:
        step, captured = self.attempt.step, self.attempt.catcher is not None
        assert step is not None
        href = html.escape(step.authorization_url or "", quote=True)
        self._link = _styled(widgets.HTML(
            f'<a href="{href}" target="_blank" rel="noopener noreferrer" style="{_LINK_STYLE}">'
            f'Sign in to {html.escape(self.attempt.provider_name)} ↗</a>'), "link")
        how = ("The redirect comes back here by itself" if captured else "After signing in, copy the "
               "address your browser shows and paste it below")
        self._method = _styled(widgets.HTML(f"<small>{html.escape(how)} ({html.escape(self.via)}: "
                                            f"{html.escape(self.via_reason)}).</small>"), "method")
        self._paste = _styled(widgets.Text(placeholder="Paste the redirect URL (or the code) here",
                                           layout=widgets.Layout(width="60%")), "paste")
        self._submit = _styled(widgets.Button(description="Submit", button_style="primary"), "submit")
        self._submit.on_click(self._on_submit_click)
        row = _styled(widgets.HBox([self._paste, self._submit, self._cancel]), "paste-row")
        self._show(self._link, self._method, row, self._status)
        self._inputs += [self._paste, self._submit, self._cancel]
        if captured:
            self._spawn(self._wait_for_redirect, "loopback")

    def _build_device(self) -> None:
        step = self.attempt.step
        assert step is not None
        self._link = _styled(widgets.HTML(_device_link_html(step)), "link")
        self._user_code = _styled(widgets.HTML(f"Enter the code <code style='font-size:1.3em'>"
                                               f"{html.escape(step.user_code or '')}</code> at"), "user-code")
        self._countdown = _styled(widgets.HTML(""), "countdown")
        self._show(self._user_code, self._link, self._countdown, self._cancel, self._status)
        self._say("Waiting for you to approve the code…")
        deadline = time.monotonic() + (step.expires_in or 0)
        self._spawn(lambda: self._run_countdown(deadline), "countdown")
        self._spawn(self._poll_device, "device")

    def _build_password(self) -> None:
        self._username = _styled(widgets.Text(description="Username", placeholder="username"), "username")
        self._password = _styled(widgets.Password(description="Password"), "password")
        self._signin = _styled(widgets.Button(description="Sign in", button_style="primary"), "submit")
        self._signin.on_click(self._on_password_click)
        self._show(self._username, self._password, widgets.HBox([self._signin, self._cancel]), self._status)
        self._inputs += [self._signin, self._cancel]

    def _build_client_credentials(self) -> None:
        self._show(self._status)
        self._say("Requesting a token…")
        self._finish(self.attempt.complete_client_credentials)

    # -- handlers -----------------------------------------------------------------------

    def _on_submit_click(self, _button: Any) -> None:
        text = self._paste.value
        self._paste.value = ""  # the pasted URL never stays in widget state
        if not text.strip():
            self._say("Paste the address the browser shows after signing in, then click Submit.", kind="error")
            return
        self._finish(lambda: self.attempt.complete_redirect(text))

    def _on_password_click(self, _button: Any) -> None:
        username, password = self._username.value, self._password.value
        self._password.value = ""
        self._username.value = ""
        if not username or not password:
            self._say("Enter a username and a password.", kind="error")
            return
        self._say("Signing in…")
        self._finish(lambda: self.attempt.complete_password(username, password))

    def _on_cancel_click(self, _button: Any) -> None:
        self._cancel_event.set()
        self.attempt.cancel()
        self._settle()

    # -- background work ------------------------------------------------------------------

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"nb_oauth2-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _wait_for_redirect(self) -> None:
        self._finish(lambda: self.attempt.wait_for_redirect(self._cancel_event))

    def _poll_device(self) -> None:
        self._finish(lambda: self.attempt.complete_device(self._cancel_event))

    def _run_countdown(self, deadline: float) -> None:
        while self.phase == "waiting":
            left = max(0, int(deadline - time.monotonic()))
            self._countdown.value = f"<small>The code expires in {left // 60}:{left % 60:02d}.</small>"
            if left <= 0 or self._cancel_event.wait(1.0):
                return

    # -- outcome ---------------------------------------------------------------------------

    def _finish(self, action: Callable[[], "Session"]) -> None:
        """Run one completion of the attempt (it lets only one succeed); errors that keep it waiting go to
        the status line, a final phase is shown."""
        if self.attempt.phase != "waiting":
            return
        try:
            action()
        except CallbackError as exc:  # the pending login is unchanged: try again
            if self.attempt.phase == "waiting":
                self._say(_message(exc), kind="error")
            return
        except LoginCancelled:
            if self.attempt.phase == "waiting":  # the catcher stopped on its own; the paste box still works
                self._say("Auto-capture stopped waiting; paste the address the browser shows instead.")
                return
        except OAuth2Error as exc:
            if self.attempt.phase == "waiting":
                self._say(_message(exc), kind="error")
                return
        self._settle()

    def _settle(self) -> None:
        """Show the attempt's final phase once: stop the background work, clear and close the inputs."""
        attempt = self.attempt
        if not attempt.finished:
            return
        with self._end_lock:
            if self._ended:
                return
            self._ended = True
        self._cancel_event.set()
        self._close_inputs()
        if attempt.phase == "done":
            status = attempt.session.status()  # the fingerprint and expiry: the view never holds the token
            detail = f"{status['fingerprint']}, {status['expiry']}" if status["signed_in"] else "no token"
            self._say(f"Signed in as profile {attempt.session.name} ({detail}).", kind="ok")
        elif attempt.phase == "failed" and attempt.error is not None:
            self._say(f"{_message(attempt.error)} Run the login again to retry.", kind="error")
        else:
            self._say("Login cancelled. Run the login again to start over.")
        self._shown.set()
        if attempt.phase == "done":
            for callback in self._callbacks:
                callback(attempt.session)

    def _close_inputs(self) -> None:
        for name in ("_paste", "_password", "_username"):
            field = getattr(self, name, None)
            if field is not None:
                field.value = ""
        self.box.children = (self._title, self._status)
        for widget in self._inputs:
            widget.close()
        for name in ("_link", "_method", "_user_code", "_countdown"):
            widget = getattr(self, name, None)
            if widget is not None:
                widget.close()
        self._inputs = []
