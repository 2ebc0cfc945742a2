"""One pending login, with no UI, driven to a registered Session.

:class:`LoginAttempt` is driven by the widget, the magics, scripts and tests;
:func:`complete_here` completes one in this thread (a printed link or code, or a
``browser`` callable that does the browser's part). The choice of front end
(:func:`nb_oauth2.login`) lives in :mod:`nb_oauth2.jupyter.login_ui`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

from .config import Profile, load_profile
from ..core.errors import CallbackError, ConfigurationError, LoginCancelled, OAuth2Error
from ..core.flows import FLOWS, AuthorizationCodeFlow, DeviceFlow, Flow, ImplicitFlow, PasswordFlow, Step
from ..core.endpoint import Endpoints
from .registry import register
from ..core.redirect_advice import DEFAULT_REDIRECT_URI
from .session import Session
from .store import TokenStore, make_store
from ..core.redact import MaskedForm, MaskedStr
from ..core.token import DEFAULT_LEEWAY, Token

__all__ = ["LoginAttempt", "prepare_login", "complete_here", "Browser"]

Browser = Callable[[str], str]


class LoginAttempt:
    """One login of one profile: start it, then complete it one way or another."""

    def __init__(self, profile: Profile, *, name: str | None = None,
                 store: str | TokenStore = "memory", scope: Sequence[str] | None = None,
                 leeway: float | None = None) -> None:
        self.profile = profile
        self.profile_name = profile.name
        self.provider_name = profile.provider.name
        self.grant = profile.flow
        self.scope = tuple(scope) if scope is not None else profile.scope
        self.redirect_uri: str | None = profile.redirect_uri or DEFAULT_REDIRECT_URI
        self.phase = "idle"
        self.step: Step | None = None
        self.error: OAuth2Error | None = None
        self._flow: Flow | None = None
        self._lock = threading.Lock()
        if profile.client.cert:  # typed errors before any token request; the passphrase is asked once
            from ..core.tls import load_client_certificate

            load_client_certificate(profile.client.cert, profile=profile.name)
        verify = getattr(profile, "verify", True)
        endpoints = Endpoints(profile.provider, profile.client, verify=verify)
        self.session = Session(
            name=name or profile.name, provider=profile.provider, client=profile.client,
            store=make_store(store), endpoints=endpoints, verify=verify,
            cert_hosts=_cert_hosts(profile.options.get("cert_hosts")),
            leeway=leeway if leeway is not None else profile.options.get("leeway", DEFAULT_LEEWAY),
        )

    @property
    def flow(self) -> Flow | None:
        return self._flow

    def use_redirect_uri(self, uri: str) -> None:
        """Send the browser back to ``uri`` (e.g. a loopback catcher); before :meth:`start`."""
        if self._flow is not None and self.phase == "waiting":
            raise ConfigurationError("The login already started; set the redirect URI before start().")
        self.redirect_uri = uri

    def _make_flow(self) -> Flow:
        cls = FLOWS[self.grant]
        kwargs: dict[str, Any] = {"scope": self.scope, "endpoints": self.session.endpoints}
        if issubclass(cls, (AuthorizationCodeFlow, ImplicitFlow)):
            kwargs["redirect_uri"] = self.redirect_uri
        return cls(self.profile.provider, self.profile.client, **kwargs)

    def start(self) -> Step:
        """Begin (or restart) the login; an earlier link stops working."""
        with self._lock:
            if self._flow is None or self.grant not in ("authorization_code", "implicit") or \
                    getattr(self._flow, "redirect_uri", None) != self.redirect_uri:
                self._flow = self._make_flow()
            self.step = self._flow.start()
            self.phase = "waiting"
            self.error = None
            return self.step

    def _finish(self, token: Token, *, persist: bool = True) -> Session:
        if self.phase == "cancelled":  # Cancel arrived while the token request was in flight
            raise LoginCancelled("The login was cancelled; the token it obtained was dropped.")
        self.session.flow = self._flow
        self.session.set_token(token, persist=persist)
        register(self.session)
        self.phase = "done"
        return self.session

    def _run(self, action: Callable[[], Token]) -> Session:
        try:
            token = action()
        except CallbackError as exc:  # the pending login is unchanged: try again
            self.error = exc
            raise
        except LoginCancelled as exc:
            self.phase, self.error = "cancelled", exc
            raise
        except OAuth2Error as exc:
            self.phase, self.error = "failed", exc
            raise
        return self._finish(token)

    def _require(self, kind: type[Flow]) -> Any:
        if not isinstance(self._flow, kind):
            self.start()
        assert isinstance(self._flow, kind)
        return self._flow

    def complete_redirect(self, url: str) -> Session:
        """Finish a code or implicit login with the pasted (or caught) redirect URL."""
        url = MaskedStr(url)  # it holds the code or token (case 51)
        if self._flow is None or self.grant not in ("authorization_code", "implicit"):
            from ..core.errors import NoLoginInProgress

            raise NoLoginInProgress("No sign-in link was issued for this login yet; start it first.")
        flow = self._flow
        return self._run(lambda: flow.complete(url))  # type: ignore[attr-defined]

    def complete_password(self, username: str, password: str) -> Session:
        password = MaskedStr(password)  # what a verbose traceback shows of the argument (case 51)
        flow = self._require(PasswordFlow)
        return self._run(lambda: flow.complete(username, password))

    def complete_device(self, cancel: threading.Event | None = None, *, timeout: float | None = None) -> Session:
        """Poll until the user approves the code (blocking: call from a thread in notebooks).

        ``timeout`` seconds at most (:class:`~nb_oauth2.core.errors.LoginTimeout`); Ctrl-C ends it at once
        and leaves the attempt cancelled.
        """
        flow = self._require(DeviceFlow)
        try:
            return self._run(lambda: flow.complete(cancel, timeout=timeout))
        except KeyboardInterrupt:
            self.cancel()
            raise

    def complete_client_credentials(self) -> Session:
        self._flow = self._flow or self._make_flow()
        flow = self._flow
        return self._run(lambda: flow.complete())  # type: ignore[attr-defined]

    def cancel(self) -> None:
        if self.phase in ("idle", "waiting"):
            self.phase = "cancelled"

    def restore(self) -> Session | None:
        """Reuse a stored token (opt-in file store) instead of signing in again."""
        data = self.session.store.load(self.session.store_key)
        if not data:
            return None
        token = Token.from_dict(data)
        if token.is_expired(self.session.leeway) and not token.refresh_token and self.grant != "client_credentials":
            return None
        self._flow = self._make_flow() if self.grant == "client_credentials" else None
        return self._finish(token, persist=False)


def _cert_hosts(value: Any) -> tuple[str, ...]:
    """Profile ``cert_hosts``: hosts (or host:port, URLs) that get the TLS client certificate."""
    if not value:
        return ()
    if isinstance(value, str):
        return tuple(value.replace(",", " ").split())
    return tuple(str(v) for v in value)


def prepare_login(profile: str | Profile = "demo", *, scope: Sequence[str] | str | None = None,
                  flow: str | None = None, store: str | TokenStore = "memory", name: str | None = None,
                  leeway: float | None = None, **profile_options: Any) -> LoginAttempt:
    """Resolve the profile and return a :class:`LoginAttempt` that nothing has started."""
    resolved = profile if isinstance(profile, Profile) else load_profile(
        profile, flow=flow, scope=scope, **profile_options)
    if isinstance(scope, str):
        scope = scope.replace(",", " ").split()
    return LoginAttempt(resolved, name=name, store=store, scope=scope, leeway=leeway)


def complete_here(attempt: LoginAttempt, *, browser: Browser | None,
                   on_device_code: Callable[[Step], None] | None, username: str | None,
                   timeout: float | None = None) -> Session:
    """Scripts, terminals, tests: drive the login in this thread (``browser`` plays the browser)."""
    if attempt.grant == "password":
        import getpass

        user = username or input("Username: ")
        return attempt.complete_password(user, getpass.getpass("Password: "))
    step = attempt.start()
    if attempt.grant == "device_code":
        (on_device_code or _print_device_step)(step)
        return attempt.complete_device(timeout=timeout)
    assert step.authorization_url is not None
    if browser is not None:
        return attempt.complete_redirect(browser(step.authorization_url))
    print(f"Open this link, sign in, then paste the address you are sent to:\n{step.authorization_url}")
    return attempt.complete_redirect(input("Redirect URL: "))


def _print_device_step(step: Step) -> None:
    link = step.verification_uri_complete or step.verification_uri
    print(f"Open {link} and enter the code {step.user_code} (expires in {int(step.expires_in or 0)} s).")
