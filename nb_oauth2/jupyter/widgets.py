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
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

import ipywidgets as widgets

from ..auth import identity
from ..core.errors import CallbackError, InvalidCallbackURL, IssuerMismatch, LoginCancelled, OAuth2Error
from ..core.redact import redact
from .login_text import LINK_STYLE, code_html, device_link, device_link_html, echo, how_html, pending_html, shown, until

if TYPE_CHECKING:
    from ..core.flows import Step
    from ..core.loopback import LoopbackCatcher
    from ..auth.attempt import LoginAttempt
    from ..auth.session import Session

__all__ = ["LoginWidget"]

_CSS = "nb-oauth2-"


def _styled(widget: widgets.DOMWidget, name: str) -> Any:
    widget.add_class(_CSS + name)
    return widget


def _message(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, OAuth2Error) else f"{type(exc).__name__}"
    return redact(text)


def _refusal(exc: CallbackError, pasted: str, step: "Step | None") -> str:
    """What the widget says about a paste the login refused while it keeps waiting.

    The message is the package's own: it built it with the pasted text already redacted and cut to 60
    characters (:mod:`nb_oauth2.core.callback`'s echo). It is not redacted a second time: a whole sentence
    run through ``redact()`` masks the word after ``code:`` as if it were a secret (``hello world`` showed
    as ``*** world``). "Start the login again" gives way to what is true here: this login still waits.
    """
    text = exc.message.replace(" Start the login again.", "").strip()
    expected = step.redirect_uri if step is not None else None
    try:
        host = urlsplit(pasted.strip()).hostname if "://" in pasted else None
    except ValueError:  # "http://[::1" and the like: no host to name
        host = None
    unrelated = isinstance(exc, (IssuerMismatch, InvalidCallbackURL)) and pasted.strip().lower().startswith("http")
    if unrelated and expected and host and host != urlsplit(expected).hostname:
        text = (f"That address (on {echo(host, 40)}) is not where this login sends you back "
                f"(an address starting with {expected}).")
    return f"{text} This login is still waiting: sign in with the button above, then paste the address you land on."


class LoginWidget:
    """Sign-in UI for one pending login: link + paste box, device code, password form or status."""

    def __init__(self, attempt: "LoginAttempt", *, via: str = "auto",
                 catcher_factory: Callable[[], "LoopbackCatcher"] | None = None, waiting_cell: bool = False) -> None:
        """``waiting_cell=True``: the cell that shows this widget blocks until the login ends, so widget clicks
        would not reach the kernel (ipykernel 7): no paste box and no Cancel button; the hints point to the
        prompt below and to Stop (■)."""
        self.attempt = attempt
        self.waiting_cell = waiting_cell
        self._callbacks: list[Callable[["Session"], Any]] = []
        self._cancel_event = threading.Event()
        self._end_lock = threading.Lock()
        self._ended = False
        self._shown = threading.Event()  # the final phase is on screen
        self._threads: list[threading.Thread] = []
        self._pasted = False  # the paste box submitted (Enter, or leaving it) since the last Submit click
        self._title = _styled(widgets.HTML(self._title_html()), "title")
        self._status = _styled(widgets.HTML(""), "status")
        self._pending = _styled(widgets.HTML(""), "pending")
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

    def _title_html(self) -> str:
        attempt, session = self.attempt, self.attempt.session.name
        named = f"session <code>{html.escape(session)}</code>"
        if session != attempt.profile_name:
            named += f", profile <code>{html.escape(attempt.profile_name)}</code>"
        return f"<b>Sign in to {html.escape(attempt.provider_name)}</b> ({named})"

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

    @property
    def pending_text(self) -> str:
        """The pending line as plain text ("Waiting for you to sign in… 0:42"), empty once the login ended."""
        return _plain(self._pending.value).split("This login is not connected")[0].strip()

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
        # what a page without the widget's live model shows (nbviewer, GitHub, an export): it needs a kernel
        bundle["text/html"] = (f"<div class=\"nb-oauth2-login-static\">{self._title_html()}<br><small>This sign-in "
                               "panel works only with the kernel that showed it; if that kernel restarted or this "
                               "notebook was reopened, run the cell again to sign in.</small></div>")
        return bundle

    def __repr__(self) -> str:
        step = self.step
        title = _plain(self._title_html())
        lines = [f"{title}: {self.phase}"]
        if self.phase == "waiting" and step is not None:
            if step.kind == "redirect" and step.authorization_url:
                lines.append(f"Open {step.authorization_url} and paste back the address you are sent to.")
            elif step.kind == "device":
                link = device_link(step)
                where = link or f"the provider's device page (it sent {shown(step.verification_uri)}, not a web address)"
                lines.append(f"Open {where} and enter the code {step.user_code}.")
        status = _plain(self._status.value)
        if status:
            lines.append(status)
        return "\n".join(lines)

    # -- building ----------------------------------------------------------------------

    def _show(self, *children: widgets.Widget) -> None:
        self._inputs = [c for c in children if c not in (self._status, self._pending)]
        self.box.children = (self._title, *children)

    def _say(self, text: str, *, kind: str = "info", redacted: bool = False) -> None:
        """Show ``text`` on the status line; ``redacted=True``: the package built it redacted already."""
        colour = {"error": "#b00020", "ok": "#1b5e20"}.get(kind, "inherit")
        text = text if redacted else redact(text)
        safe = html.escape(html.unescape(text))  # messages may be escaped already: escape exactly once
        self._status.value = f'<span style="color:{colour}">{safe}</span>'

    def _build_redirect(self) -> None:
        step, captured = self.attempt.step, self.attempt.catcher is not None
        assert step is not None
        href = html.escape(step.authorization_url or "", quote=True)
        self._link = _styled(widgets.HTML(
            f'<a href="{href}" target="_blank" rel="noopener noreferrer" style="{LINK_STYLE}">'
            f'Sign in to {html.escape(self.attempt.provider_name)} ↗</a>'), "link")
        self._method = _styled(widgets.HTML(how_html(self.via, self.via_reason, step.redirect_uri or "",
                                                     prompt=self.waiting_cell)), "method")
        self._paste = _styled(widgets.Text(placeholder="Paste the address your browser shows, then press Enter",
                                           continuous_update=False, layout=widgets.Layout(width="60%")), "paste")
        self._paste.observe(self._on_paste_value, "value")  # Enter (or leaving the box) submits
        self._submit = _styled(widgets.Button(description="Submit", button_style="primary"), "submit")
        self._submit.on_click(self._on_submit_click)
        row = _styled(widgets.HBox([self._paste, self._submit, self._cancel]), "paste-row")
        if self.waiting_cell:
            self._show(self._link, self._method, self._pending, self._status)
        else:
            self._show(self._link, self._method, row, self._pending, self._status)
        self._inputs += [self._paste, self._submit, self._cancel]
        self._start_pending("Waiting for you to sign in…" + (" Stop (■) cancels." if self.waiting_cell else ""))
        if captured:
            self._spawn(self._wait_for_redirect, "loopback")

    def _build_device(self) -> None:
        step = self.attempt.step
        assert step is not None
        self._link = _styled(widgets.HTML(device_link_html(step)), "link")
        self._user_code = _styled(widgets.HTML(code_html(step.user_code or "")), "user-code")
        self._countdown = _styled(widgets.HTML(""), "countdown")
        controls = () if self.waiting_cell else (self._cancel,)
        self._show(self._user_code, self._link, self._countdown, self._pending, *controls, self._status)
        self._inputs += [self._cancel] if self.waiting_cell else []
        deadline = time.monotonic() + (step.expires_in or 0)
        self._spawn(lambda: self._run_countdown(deadline), "countdown")
        self._start_pending("Waiting for you to approve the code…" + (" Stop (■) cancels." if self.waiting_cell else ""))
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

    def _on_paste_value(self, change: dict) -> None:
        """The paste box's value arrived (Enter, or the box lost focus): submit it."""
        text = change.get("new") or ""
        if not text or self.attempt.phase != "waiting":
            return
        self._pasted = True
        self._submit_text(text)

    def _on_submit_click(self, _button: Any) -> None:
        text = self._paste.value
        if not text and self._pasted:  # the box submitted as it lost focus to this button: done already
            self._pasted = False
            return
        self._pasted = False
        self._submit_text(text)

    def _submit_text(self, text: str) -> None:
        self._paste.value = ""  # the pasted URL never stays in widget state
        if not text.strip():
            self._say("Paste the address the browser shows after signing in, then press Enter.", kind="error")
            return
        try:
            self._finish(lambda: self.attempt.complete_redirect(text), pasted=text)
        except ValueError:  # urllib refuses some malformed URLs ("http://[::1") before the package's checks
            self._say("That is not a redirect URL. This login is still waiting: sign in with the button above, "
                      "then paste the address you land on.", kind="error")

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

    def _start_pending(self, text: str) -> None:
        started = time.monotonic()
        self._pending.value = pending_html(text, 0)
        self._spawn(lambda: self._run_pending(text, started), "pending")

    def _run_pending(self, text: str, started: float) -> None:
        """Rewrite the pending line every second until the login ends (Cancel ends the wait at once)."""
        while not self._cancel_event.wait(1.0) and self.attempt.phase == "waiting":
            if not self._ended:
                self._pending.value = pending_html(text, time.monotonic() - started)

    # -- outcome ---------------------------------------------------------------------------

    def _finish(self, action: Callable[[], "Session"], *, pasted: str | None = None) -> None:
        """Run one completion of the attempt (it lets only one succeed); errors that keep it waiting go to
        the status line, a final phase is shown."""
        if self.attempt.phase != "waiting":
            return
        try:
            action()
        except CallbackError as exc:  # the pending login is unchanged: try again
            if self.attempt.phase == "waiting":
                self._say(_refusal(exc, pasted or "", self.step), kind="error", redacted=True)
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
            self._say(self._signed_in_line(), kind="ok")
            self._spawn(self._name_the_user, "identity")
        elif attempt.phase == "failed" and attempt.error is not None:
            hint = getattr(attempt.error, "hint", "") or "Run the login again to retry."
            self._say(f"{_message(attempt.error)} {hint}", kind="error")
        else:
            self._say("Login cancelled. Run the login again to start over.")
        self._shown.set()
        if attempt.phase == "done":
            for callback in self._callbacks:
                callback(attempt.session)

    def _signed_in_line(self, user: str | None = None) -> str:
        """Who, which session, until when: from the session's status() (the view never holds the token)."""
        session = self.attempt.session
        status = session.status()
        if not status["signed_in"]:
            return f"Signed in as profile {session.name} (no token)."
        who = f"{user}, " if user else ""
        renews = ", renews by itself" if status.get("refreshable") else ""
        return f"Signed in as profile {session.name} ({who}{until(status['expires_in'])}{renews}; {status['fingerprint']})."

    def _name_the_user(self) -> None:
        """Best-effort: one look at the id_token or the userinfo endpoint, then the signed-in line names the user."""
        user = identity.who(self.attempt.session)
        if user and self.attempt.phase == "done":
            self._say(self._signed_in_line(user), kind="ok")

    def _close_inputs(self) -> None:
        for name in ("_paste", "_password", "_username"):
            field = getattr(self, name, None)
            if field is not None:
                field.value = ""
        self.box.children = (self._title, self._status)
        for widget in self._inputs:
            widget.close()
        for name in ("_link", "_method", "_user_code", "_countdown", "_pending"):
            widget = getattr(self, name, None)
            if widget is not None:
                widget.close()
        self._inputs = []


def _plain(markup: str) -> str:
    return html.unescape(re.sub(r"<style>.*?</style>|<[^>]+>", "", markup, flags=re.S))
