"""One pending login, with no UI, driven to a registered Session.

:class:`LoginAttempt` owns the whole login: the flow, how the redirect comes back (``via``, the
loopback catcher, the redirect URI), the expected ``state`` and the one ``phase``. The widget,
the magics, scripts and tests drive it; :func:`complete_here` completes one in this thread (a
printed link the redirect comes back to by itself, a paste prompt, a device code, or a ``browser``
callable that does the browser's part). The choice of front end (:func:`nb_oauth2.login`) lives
in :mod:`nb_oauth2.jupyter.login_ui`.
"""

from __future__ import annotations

import builtins
import sys
import threading
from typing import Any, Callable, Sequence

from .capture import REDIRECT_GRANTS, CatcherFactory, open_capture
from .config import STORE_ENV, Profile, load_profile, store_setting
from ..core.errors import (CallbackError, ConfigurationError, LoginCancelled, LoginTimeout, NoLoginInProgress,
                           OAuth2Error, ReauthRequired)
from ..core.flows import FLOWS, DeviceFlow, Flow, PasswordFlow, Step
from ..core.endpoint import Endpoints
from ..core.loopback import LoopbackCatcher
from ..core.names import env_name, split_list
from .registry import register, remember_login_call
from ..core.redirect_advice import DEFAULT_REDIRECT_URI
from .session import Session
from .store import TokenStore, make_store
from ..core.redact import MaskedForm, MaskedStr
from ..core.token import DEFAULT_LEEWAY, Token

__all__ = ["LoginAttempt", "complete_here", "terminal_can_prompt", "Browser", "PHASES"]

Browser = Callable[[str], str]

#: the phases of a login; the last three are final
PHASES = ("idle", "waiting", "done", "failed", "cancelled")


class LoginAttempt:
    """One login of one profile: start it, then complete it one way or another.

    ``profile`` is a profile name (resolved with :func:`~nb_oauth2.auth.config.load_profile`,
    with ``flow``, ``scope`` and ``profile_options`` such as ``client_id=``) or a :class:`Profile`.
    :attr:`phase` is one of :data:`PHASES`; :attr:`error` the last error (a callback error leaves
    the login waiting). :meth:`start` chooses :attr:`via` (with :attr:`via_reason`), starts the
    :attr:`catcher` when the redirect is captured, and fixes :attr:`redirect_uri`.
    ``store``: ``"memory"``, ``"file"``, ``"keyring"`` or a store object; None (the default) takes the
    profile's setting (:func:`~nb_oauth2.auth.config.store_setting`: ``NB_OAUTH2_<PROFILE>_STORE``,
    ``NB_OAUTH2_STORE``), else memory. Nothing is registered until the login succeeds.
    """

    def __init__(self, profile: str | Profile, *, scope: Sequence[str] | str | None = None,
                 flow: str | None = None, store: str | TokenStore | None = None, name: str | None = None,
                 leeway: float | None = None, **profile_options: Any) -> None:
        profile_options = MaskedForm(profile_options)  # client_secret= may be among them (case 51)
        if isinstance(profile, Profile):
            if flow is not None or profile_options:
                raise ConfigurationError("flow= and profile settings go with a profile name, not a Profile.")
        else:
            profile = load_profile(profile, flow=flow, scope=scope, **profile_options)
        self.profile = profile
        self.profile_name = profile.name
        self.provider_name = profile.provider.name
        self.grant = profile.flow
        self.scope = split_list(scope) if scope is not None else profile.scope
        self.redirect_uri: str = self._profile_redirect_uri
        self.phase = "idle"
        self.step: Step | None = None
        self.error: OAuth2Error | None = None
        self.via, self.via_reason = "none", ""
        self.catcher: LoopbackCatcher | None = None
        self._flow: Flow | None = None
        self._lock = threading.Lock()  # start() and cancel()
        self._busy = threading.Lock()  # one completion at a time: only one can succeed
        self._stop = threading.Event()  # set by cancel(): ends the waits of this start()
        self._over = threading.Event()  # set when the phase is final (done, failed, cancelled)
        self.store_kind = store if isinstance(store, str) else ("memory" if store is None else type(store).__name__)
        if store is None:
            self.store_kind = store = store_setting(profile)
        self.session = self._make_session(name, store, leeway)
        self.login_call = _login_call(profile.name, self.session.name, flow)
        remember_login_call(self.session.name, self.login_call)
        self.session.sign_in_call = self.login_call

    def _make_session(self, name: str | None, store: str | TokenStore, leeway: float | None) -> Session:
        profile = self.profile
        if profile.client.cert:  # typed errors before any token request; the passphrase is asked once
            from ..core.certificates import load_client_certificate

            load_client_certificate(profile.client.cert, profile=profile.name)
        verify = getattr(profile, "verify", True)
        return Session(
            name=name or profile.name, provider=profile.provider, client=profile.client,
            store=make_store(store), endpoints=Endpoints(profile.provider, profile.client, verify=verify),
            verify=verify, cert_hosts=split_list(profile.options.get("cert_hosts")) or (),
            leeway=leeway if leeway is not None else profile.options.get("leeway", DEFAULT_LEEWAY),
            http_cache=profile.options.get("http_cache"),
        )

    @property
    def _profile_redirect_uri(self) -> str:
        return self.profile.redirect_uri or DEFAULT_REDIRECT_URI

    @property
    def flow(self) -> Flow | None:
        return self._flow

    @property
    def expected_state(self) -> str | None:
        """The ``state`` the pending redirect login expects back (kept in kernel memory only)."""
        return getattr(self._flow, "expected_state", None)  # redirect flows only

    @property
    def finished(self) -> bool:
        return self.phase in ("done", "failed", "cancelled")

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Block until the phase is final (a completion in another thread, :meth:`cancel`); False after
        ``timeout`` seconds. Interruptible (Ctrl-C, the notebook's Stop button)."""
        return self._over.wait(timeout)

    def unattended_error(self) -> ReauthRequired:
        """The error of a login no one can answer (no prompt, no browser) and no stored token to use."""
        kind = "keyring" if self.store_kind in ("keyring", "KeyringStore") else "file"
        persistent = self.store_kind not in ("memory", "MemoryStore")
        where = f"in its {self.store_kind} store" if persistent else "(its token store is memory)"
        run_with = "" if persistent else f" and run with {STORE_ENV}={kind} (or {env_name(self.profile_name, 'store')}={kind})"
        return ReauthRequired(
            f"Nobody can answer the sign-in of session {self.session.name!r} here (an unattended run: nbclient, "
            f"papermill, jupyter execute, CI, or no terminal), and no stored token was found {where}.",
            error="interaction_required",
            hint=f"To seed a token for unattended runs, sign in once interactively with "
                 f"{self.login_call[:-1]}, store={kind!r}){run_with}, or use a client credentials profile "
                 "(flow='client_credentials') for a service account")

    def _make_flow(self) -> Flow:
        cls = FLOWS[self.grant]
        kwargs: dict[str, Any] = {"scope": self.scope, "endpoints": self.session.endpoints}
        if self.grant in REDIRECT_GRANTS:
            kwargs["redirect_uri"] = self.redirect_uri
        return cls(self.profile.provider, self.profile.client, **kwargs)

    def start(self, via: str = "paste", *, catcher_factory: CatcherFactory | None = None) -> Step:
        """Begin (or restart) the login; an earlier link stops working.

        ``via`` (redirect grants): ``"paste"`` (the default: the profile's redirect URI, completed
        with :meth:`complete_redirect`), ``"auto"``, ``"loopback"``, ``"proxy"`` or ``"device"``;
        when the redirect is captured, :meth:`wait_for_redirect` completes the login.
        """
        with self._lock:
            self._close_catcher()
            self._stop = threading.Event()
            self._over = threading.Event()
            try:
                capture = open_capture(self.grant, via, profile_redirect_uri=self._profile_redirect_uri,
                                       catcher_factory=catcher_factory or LoopbackCatcher)
                self.via, self.via_reason, self.catcher = capture.via, capture.reason, capture.catcher
                self.redirect_uri = capture.catcher.redirect_uri if capture.catcher else self._profile_redirect_uri
                if self._flow is None or self.grant not in REDIRECT_GRANTS or \
                        getattr(self._flow, "redirect_uri", None) != self.redirect_uri:
                    self._flow = self._make_flow()
                self.step = self._flow.start()
            except OAuth2Error as exc:
                self.phase, self.error = "failed", exc
                self._close_catcher()
                self._over.set()
                raise
            if self.catcher is not None:
                self.catcher.state = self.expected_state
            self.phase, self.error = "waiting", None
            return self.step

    def _close_catcher(self) -> None:
        if self.catcher is not None:
            self.catcher.close()

    def _finish(self, token: Token, *, persist: bool = True) -> Session:
        if self.phase == "cancelled":  # Cancel arrived while the token request was in flight
            raise LoginCancelled("The login was cancelled; the token it obtained was dropped.")
        self.session.flow = self._flow
        self.session.set_token(token, persist=persist)
        register(self.session)
        self.phase = "done"
        self._close_catcher()
        self._over.set()
        return self.session

    def _run(self, action: Callable[[], Token]) -> Session:
        with self._busy:
            try:
                token = action()
            except CallbackError as exc:  # the pending login is unchanged: try again
                self.error = exc
                raise
            except OAuth2Error as exc:
                self._end("cancelled" if isinstance(exc, LoginCancelled) else "failed", exc)
                raise
            return self._finish(token)

    def _end(self, phase: str, exc: OAuth2Error) -> None:
        self.phase, self.error = phase, exc
        self._close_catcher()
        self._over.set()

    def _require(self, kind: type[Flow]) -> Any:
        if not isinstance(self._flow, kind):
            self.start()
        assert isinstance(self._flow, kind)
        return self._flow

    def complete_redirect(self, url: str) -> Session:
        """Finish a code or implicit login with the pasted (or caught) redirect URL."""
        url = MaskedStr(url)  # it holds the code or token (case 51)
        if self._flow is None or self.grant not in REDIRECT_GRANTS:
            raise NoLoginInProgress("No sign-in link was issued for this login yet; start it first.")
        flow = self._flow
        return self._run(lambda: flow.complete(url))  # type: ignore[attr-defined]

    def wait_for_redirect(self, cancel: threading.Event | None = None, *, timeout: float | None = None) -> Session:
        """Wait for the browser's redirect on :attr:`catcher`, then complete the login (blocking; any thread).

        Returns the session, also when a paste completed the login meanwhile. Raises
        :class:`~nb_oauth2.core.errors.LoginCancelled` when ``cancel`` is set or :meth:`cancel` is
        called, :class:`~nb_oauth2.core.errors.LoginTimeout` after ``timeout`` seconds (the login is
        then cancelled), and ``LoginCancelled`` with the login still waiting when the catcher stops on
        its own (paste the redirect instead). Ctrl-C cancels the login and is re-raised.
        """
        catcher, stop = self.catcher, self._stop
        if catcher is None or self.phase != "waiting":
            raise NoLoginInProgress(f"This login has no loopback catcher waiting (via={self.via!r}, {self.phase}); "
                                    "complete it with the pasted redirect URL.")
        try:
            try:
                url = catcher.wait(cancel, stop, timeout=timeout)
            except LoginCancelled as exc:
                return self._after_wait(exc, cancel)
            try:
                return self.complete_redirect(url)
            except CallbackError:
                if self.phase == "done":  # a paste won the race with the same redirect
                    return self.session
                raise
        except KeyboardInterrupt:
            self.cancel()
            raise

    def _after_wait(self, exc: LoginCancelled, cancel: threading.Event | None) -> Session:
        """The catcher stopped without a redirect: say what became of the login meanwhile."""
        if self.phase == "done":  # completed by a paste
            return self.session
        if self.phase == "failed" and self.error is not None:
            raise self.error
        gave_up = isinstance(exc, LoginTimeout) or (cancel is not None and cancel.is_set())
        if self.phase == "waiting" and gave_up:  # else the catcher's own time ran out: paste-back still works
            self._end("cancelled", exc)
        raise exc

    def complete_password(self, username: str, password: str) -> Session:
        password = MaskedStr(password)  # what a verbose traceback shows of the argument (case 51)
        flow = self._require(PasswordFlow)
        return self._run(lambda: flow.complete(username, password))

    def complete_device(self, cancel: threading.Event | None = None, *, timeout: float | None = None) -> Session:
        """Poll until the user approves the code (blocking: call from a thread in notebooks).

        ``timeout`` seconds at most (:class:`~nb_oauth2.core.errors.LoginTimeout`); ``cancel`` (else
        :meth:`cancel`) and Ctrl-C end it at once and leave the attempt cancelled.
        """
        flow = self._require(DeviceFlow)
        try:
            return self._run(lambda: flow.complete(cancel or self._stop, timeout=timeout))
        except KeyboardInterrupt:
            self.cancel()
            raise

    def complete_client_credentials(self) -> Session:
        self._flow = self._flow or self._make_flow()
        flow = self._flow
        return self._run(lambda: flow.complete())  # type: ignore[attr-defined]

    def cancel(self, error: LoginCancelled | None = None) -> None:
        """End the login (unless it is over already): waits stop at once, the catcher closes. ``error``:
        what :attr:`error` says (a :class:`~nb_oauth2.core.errors.LoginTimeout` when time ran out)."""
        with self._lock:
            self._stop.set()
            if self.phase in ("idle", "waiting"):
                self.phase, self.error = "cancelled", error or LoginCancelled("The login was cancelled.")
            self._close_catcher()
            if self.finished:
                self._over.set()

    def restore(self) -> Session | None:
        """Reuse a stored token (opt-in file store) instead of signing in again."""
        data = self.session.store.load(self.session.store_key)
        if not data:
            return None
        token = Token.from_dict(data)
        if token.is_expired(self.session.leeway) and not token.can_renew(self.grant):
            return None
        self._flow = self._make_flow() if self.grant == "client_credentials" else None
        return self._finish(token, persist=False)


def complete_here(attempt: LoginAttempt, *, browser: Browser | None = None,
                  on_device_code: Callable[[Step], None] | None = None, username: str | None = None,
                  timeout: float | None = None, via: str = "auto") -> Session:
    """Scripts, terminals, tests: drive the login in this thread (``browser`` plays the browser).

    Without ``browser``, a code login the browser can reach (``via``, see
    :func:`~nb_oauth2.core.loopback.choose_via`) prints the link and waits for the redirect on a
    loopback port (Ctrl-C cancels; ``timeout`` seconds at most); otherwise (SSH, implicit,
    ``via="paste"``) the redirect is pasted at a prompt.
    """
    if attempt.grant == "password":
        import getpass

        user = username or input("Username: ")
        return attempt.complete_password(user, getpass.getpass("Password: "))
    step = attempt.start(via if browser is None else "paste")
    if attempt.grant == "device_code":
        (on_device_code or _print_device_step)(step)
        return attempt.complete_device(timeout=timeout)
    assert step.authorization_url is not None
    if browser is not None:
        return attempt.complete_redirect(browser(step.authorization_url))
    if attempt.catcher is not None:
        try:
            print(f"Open this link and sign in; the redirect comes back here by itself ({attempt.via}: "
                  f"{attempt.via_reason}). Ctrl-C cancels.\n{step.authorization_url}")
            return attempt.wait_for_redirect(timeout=timeout)
        except KeyboardInterrupt:
            attempt.cancel()
            raise
        except LoginCancelled:
            if attempt.phase != "waiting":
                raise
            print("Auto-capture stopped waiting.")  # the catcher's own time ran out: paste the address instead
    if not terminal_can_prompt():  # cron, CI, a pipe: nobody will paste anything
        attempt.cancel()
        raise attempt.unattended_error()
    print(f"Open this link, sign in, then paste the address you are sent to:\n{step.authorization_url}")
    try:
        pasted = input("Redirect URL: ")
    except EOFError:  # stdin ended: nobody is there
        attempt.cancel()
        raise attempt.unattended_error() from None
    return attempt.complete_redirect(pasted)


def terminal_can_prompt() -> bool:
    """Outside Jupyter: can a person answer ``input()``? A terminal (stdin is a tty), or a prompt that an
    application or a test replaced (``builtins.input`` is not the builtin); not a pipe, a closed or
    missing stdin (cron, CI, ``< /dev/null``)."""
    if getattr(builtins.input, "__module__", "builtins") != "builtins":
        return True
    stdin = sys.stdin
    try:
        return stdin is not None and not stdin.closed and stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _login_call(profile: str, name: str, flow: str | None) -> str:
    """``nb_oauth2.login('demo', name='pb2', flow='device')``: the call that signs this session in again."""
    parts = [repr(profile)] + ([f"name={name!r}"] if name != profile else []) + ([f"flow={flow!r}"] if flow else [])
    return f"nb_oauth2.login({', '.join(parts)})"


def _print_device_step(step: Step) -> None:
    link = step.verification_uri_complete or step.verification_uri
    print(f"Open {link} and enter the code {step.user_code} (expires in {int(step.expires_in or 0)} s).")
