"""The login widget: a thin ipywidgets skin over :class:`nb_oauth2.sessions.attempt.LoginAttempt`.

It holds no protocol logic and no secret trait (widget state is saved with the
notebook): the paste box and the password field are cleared the moment they
are read, and every input is closed once the login is done (SECURITY_CASES 39).
Background work (loopback wait, device polling, countdown) runs in daemon
threads that wait on one ``threading.Event`` so Cancel ends them at once.
"""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qsl, urlsplit

import ipywidgets as widgets

from ..core.errors import CallbackError, ConfigurationError, LoginCancelled, OAuth2Error
from ..core.loopback import LoopbackCatcher, choose_via, public_base_url
from ..core.providers import NOTEBOOK_ORIGIN
from ..core.redact import redact

if TYPE_CHECKING:
    from ..core.flows import Step
    from ..sessions.attempt import LoginAttempt
    from ..sessions.session import Session

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


def _state_of(url: str) -> str | None:
    states = [v for k, v in parse_qsl(urlsplit(url).query) if k == "state"]
    return states[0] if len(states) == 1 else None


class LoginWidget:
    """Sign-in UI for one pending login: link + paste box, device code, password form or status."""

    def __init__(self, attempt: "LoginAttempt", *, via: str = "auto",
                 catcher_factory: Callable[..., LoopbackCatcher] = LoopbackCatcher) -> None:
        self.attempt = attempt
        self.phase = "idle"
        self.via, self.via_reason = "none", ""
        self.step: "Step | None" = None
        self._callbacks: list[Callable[["Session"], Any]] = []
        self._cancel_event = threading.Event()
        self._lock = threading.Lock()
        self._end_lock = threading.Lock()
        self._ended = False
        self._catcher: LoopbackCatcher | None = None
        self._catcher_factory = catcher_factory
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
            builders[attempt.grant](via)
        except OAuth2Error as exc:
            self._fail(exc)

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

    def _build_redirect(self, via: str) -> None:
        method, reason = choose_via(via)
        if method in ("loopback", "proxy") and self.attempt.grant != "authorization_code":
            method, reason = "paste", "the implicit grant puts the token in the URL fragment, which never reaches a server"
        if method in ("loopback", "proxy"):
            method, reason = self._start_catcher(method, reason)
        elif method == "device":
            method, reason = "paste", "a device login needs --flow device; paste the redirect back here"
        self.via, self.via_reason = method, reason
        step = self.attempt.start()
        self.step = step
        if self._catcher is not None:
            self._catcher.state = _state_of(step.authorization_url or "")
        href = html.escape(step.authorization_url or "", quote=True)
        self._link = _styled(widgets.HTML(
            f'<a href="{href}" target="_blank" rel="noopener noreferrer" style="{_LINK_STYLE}">'
            f'Sign in to {html.escape(self.attempt.provider_name)} ↗</a>'), "link")
        how = ("The redirect comes back here by itself" if self._catcher else "After signing in, copy the "
               "address your browser shows and paste it below")
        self._method = _styled(widgets.HTML(f"<small>{html.escape(how)} ({html.escape(method)}: "
                                            f"{html.escape(reason)}).</small>"), "method")
        self._paste = _styled(widgets.Text(placeholder="Paste the redirect URL (or the code) here",
                                           layout=widgets.Layout(width="60%")), "paste")
        self._submit = _styled(widgets.Button(description="Submit", button_style="primary"), "submit")
        self._submit.on_click(self._on_submit_click)
        row = _styled(widgets.HBox([self._paste, self._submit, self._cancel]), "paste-row")
        self._show(self._link, self._method, row, self._status)
        self._inputs += [self._paste, self._submit, self._cancel]
        self.phase = "waiting"
        if self._catcher is not None:
            self._spawn(self._wait_for_redirect, "loopback")

    def _start_catcher(self, method: str, reason: str) -> tuple[str, str]:
        try:
            catcher = self._catcher_factory().start()
        except ConfigurationError as exc:
            return "paste", f"auto-capture is unavailable ({exc.message})"
        if method == "proxy":
            base = public_base_url()
            by_path = (self.attempt.redirect_uri or "").startswith(NOTEBOOK_ORIGIN + "/")  # the demo behind the proxy
            if base is None and not by_path:
                catcher.close()
                return "paste", ("JupyterHub: set NB_OAUTH2_PUBLIC_URL to this server's public URL "
                                 "to enable auto-capture through jupyter-server-proxy (see nb-oauth2 redirect-uri)")
            catcher.browser_redirect_uri(None if by_path else base)
        self._catcher = catcher
        self.attempt.use_redirect_uri(catcher.redirect_uri)
        return method, reason

    def _build_device(self, via: str) -> None:
        self.via, self.via_reason = "device", "device authorization: approve the code on any device"
        step = self.attempt.start()
        self.step = step
        self._link = _styled(widgets.HTML(_device_link_html(step)), "link")
        self._user_code = _styled(widgets.HTML(f"Enter the code <code style='font-size:1.3em'>"
                                               f"{html.escape(step.user_code or '')}</code> at"), "user-code")
        self._countdown = _styled(widgets.HTML(""), "countdown")
        self._show(self._user_code, self._link, self._countdown, self._cancel, self._status)
        self.phase = "waiting"
        self._say("Waiting for you to approve the code…")
        deadline = time.monotonic() + (step.expires_in or 0)
        self._spawn(lambda: self._run_countdown(deadline), "countdown")
        self._spawn(self._poll_device, "device")

    def _build_password(self, via: str) -> None:
        self.via, self.via_reason = "password", "the password grant (legacy): the app sees your password"
        self._username = _styled(widgets.Text(description="Username", placeholder="username"), "username")
        self._password = _styled(widgets.Password(description="Password"), "password")
        self._signin = _styled(widgets.Button(description="Sign in", button_style="primary"), "submit")
        self._signin.on_click(self._on_password_click)
        self._show(self._username, self._password, widgets.HBox([self._signin, self._cancel]), self._status)
        self._inputs += [self._signin, self._cancel]
        self.phase = "waiting"

    def _build_client_credentials(self, via: str) -> None:
        self.via, self.via_reason = "none", "client credentials: no user step"
        self._show(self._status)
        self.phase = "waiting"
        self._say("Requesting a token…")
        self._finish(lambda: self.attempt.complete_client_credentials())

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
        if self.phase in ("idle", "waiting"):
            self.attempt.cancel()
        self._end("cancelled", "Login cancelled. Run the login again to start over.")

    # -- background work ------------------------------------------------------------------

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"nb_oauth2-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _wait_for_redirect(self) -> None:
        catcher = self._catcher
        assert catcher is not None
        try:
            url = catcher.wait(self._cancel_event)
        except LoginCancelled:
            if self.phase == "waiting" and not self._cancel_event.is_set():
                self._say("Auto-capture stopped waiting; paste the address the browser shows instead.")
            return
        self._finish(lambda: self.attempt.complete_redirect(url))

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
        """Run one completion; only one may succeed, errors go to the status line."""
        with self._lock:
            if self.phase != "waiting":
                return
            try:
                session = action()
            except CallbackError as exc:  # the pending login is unchanged: try again
                self._say(_message(exc), kind="error")
                return
            except LoginCancelled:
                self._end("cancelled", "Login cancelled. Run the login again to start over.")
                return
            except OAuth2Error as exc:
                self._fail(exc)
                return
        token = session.token_info
        detail = f"{token.fingerprint}, {token.describe_expiry()}" if token else "no token"
        if self._end("done", f"Signed in as profile {session.name} ({detail}).", kind="ok"):
            for callback in self._callbacks:
                callback(session)

    def _fail(self, exc: OAuth2Error) -> None:
        self._end("failed", f"{_message(exc)} Run the login again to retry.", kind="error")

    def _end(self, phase: str, text: str, *, kind: str = "info") -> bool:
        """Move to a final phase once: stop the background work, clear and close the inputs."""
        with self._end_lock:
            if self._ended:
                return False
            self._ended = True
            self.phase = phase
        self._cancel_event.set()
        if self._catcher is not None:
            self._catcher.close()
        self._close_inputs()
        self._say(text, kind=kind)
        return True

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
