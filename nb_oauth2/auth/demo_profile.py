"""The ``demo`` profile: the embedded demo provider, started once per kernel, or a shared one.

A demo provider lives in the process that started it and forgets its tokens when that process
ends, so a token stored for it is worthless in the next kernel. Unattended runs of the demo
tutorials (``jupyter execute`` with a seeded token store) therefore use a provider that outlives
the kernels: :func:`share_demo` serves a running provider's controls on loopback and gives the
environment setting ``NB_OAUTH2_DEMO_SHARED`` (``host:port:key``); a kernel that has it gets a
:class:`SharedDemo` from :func:`running_demo` instead of starting its own provider. The controls
(``revoke_all``, ``expire_access_tokens``, ``set_rate_limit``) travel over a
:mod:`multiprocessing.connection` that authenticates both ends with the key (HMAC) before any
message is read; only those names are served.
"""

from __future__ import annotations

import os
import secrets
import threading
from multiprocessing.connection import Client, Listener
from typing import TYPE_CHECKING, Any

from .profile import Profile
from ..core.endpoint import ClientAuth
from ..core.errors import ConfigurationError
from ..core.names import env_name
from ..core.providers import discover
from .registry import _state

if TYPE_CHECKING:
    from ..demo import DemoProvider

__all__ = ["running_demo", "demo_profile", "DEMO_CLIENT_FOR_FLOW", "SHARED_ENV", "SharedDemo", "DemoShare",
           "share_demo"]

#: ``host:port:key`` of a demo provider shared by :func:`share_demo` (kernels then use it, not their own)
SHARED_ENV = env_name("demo", "shared")
#: what a kernel reads of a shared provider once, and the controls it may call
_FACTS = ("url", "issuer", "port", "browser_url", "callback_url", "redirect_uri", "metadata_url", "users",
          "clients", "ca_path", "mtls_url", "records", "seed")
_CONTROLS = ("revoke_all", "expire_access_tokens", "set_rate_limit")

#: which pre-registered demo client serves each grant
DEMO_CLIENT_FOR_FLOW = {
    "authorization_code": "public",
    "implicit": "implicit",
    "password": "password",
    "client_credentials": "service",
    "device_code": "device",
}


def running_demo(**options: Any) -> DemoProvider:
    """The kernel's demo provider (``nb_oauth2.running_demo()``): the one the ``"demo"`` profile signs in to.

    Started on first use on 127.0.0.1 and a free port (``options`` go to :func:`nb_oauth2.demo.start`
    then), restarted if it was stopped. Its ``url`` serves the API under ``/api/``; ``revoke_all()``
    and ``set_rate_limit()`` stage what the tutorials show.
    """
    from .. import demo

    state = _state()
    shared = os.environ.get(SHARED_ENV)
    with state.lock:
        current = getattr(state, "demo", None)
        if shared:
            if not (isinstance(current, SharedDemo) and current.spec == shared):
                current = state.demo = SharedDemo(shared)
            return current  # type: ignore[return-value]
        if current is None or isinstance(current, SharedDemo) or not getattr(current, "running", True):
            current = demo.start(**options)
            state.demo = current
        return current


def demo_profile(*, flow: str | None = None, scope: tuple[str, ...] | None = None,
                 redirect_uri: str | None = None) -> Profile:
    """A profile for the demo provider: discovered over HTTP like any issuer."""
    provider_handle = running_demo()
    chosen = flow or "authorization_code"
    registered = provider_handle.clients[DEMO_CLIENT_FOR_FLOW[chosen]]
    provider = discover(provider_handle.issuer, name="demo")
    if provider_handle.browser_url != provider_handle.url and provider.authorization_endpoint:
        provider = provider.with_changes(
            authorization_endpoint=provider.authorization_endpoint.replace(provider_handle.url, provider_handle.browser_url, 1)
        )
    provider = provider.with_changes(default_scopes=("openid", "profile", "read:events", "read:users"))
    return Profile(
        name="demo",
        provider=provider,
        client=ClientAuth(registered.client_id, registered.client_secret),
        flow=chosen,
        scope=scope,
        redirect_uri=redirect_uri or provider_handle.redirect_uri,
    )


class DemoShare:
    """A running demo provider served to other processes (:func:`share_demo`); ``env`` goes to them."""

    def __init__(self, provider: DemoProvider, host: str = "127.0.0.1") -> None:
        self.provider = provider
        self._key = secrets.token_bytes(32)
        self._listener = Listener((host, 0), authkey=self._key)
        self._stopping = threading.Event()
        address = self._listener.address
        self.spec = f"{address[0]}:{address[1]}:{self._key.hex()}"
        self._thread = threading.Thread(target=self._serve, name="nb_oauth2-demo-share", daemon=True)
        self._thread.start()

    @property
    def env(self) -> dict[str, str]:
        """The environment setting that makes kernels use this provider."""
        return {SHARED_ENV: self.spec}

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn = self._listener.accept()  # authenticates the peer (HMAC challenge) first
            except Exception:  # a failed handshake, or stop(): closed
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: Any) -> None:
        with conn:
            try:
                name, args = conn.recv()
                if name == "facts":
                    result: Any = {key: getattr(self.provider, key, None) for key in _FACTS}
                elif name == "running":
                    result = bool(self.provider.running)
                elif name in _CONTROLS:
                    result = getattr(self.provider, name)(*args)
                else:
                    raise ValueError(f"not served: {name!r}")
                conn.send((True, result))
            except Exception as exc:  # noqa: BLE001 - told to the caller by type only
                try:
                    conn.send((False, type(exc).__name__))
                except OSError:
                    pass

    def close(self) -> None:
        """Stop serving (the provider keeps running)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        try:  # wake the accept() with a connection that fails the handshake
            Client(self._listener.address, authkey=b"closing").close()
        except Exception:  # noqa: BLE001
            pass
        self._listener.close()
        self._thread.join(timeout=2)

    def __enter__(self) -> DemoShare:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def share_demo(provider: DemoProvider | None = None) -> DemoShare:
    """Serve ``provider`` (default: this process's :func:`running_demo`) to kernels started with
    ``DemoShare.env`` in their environment: tokens stored for it stay valid across kernels, so
    unattended runs of the tutorials can use a seeded token store."""
    return DemoShare(provider if provider is not None else running_demo())


class SharedDemo:
    """A demo provider running in another process (``NB_OAUTH2_DEMO_SHARED``), used like a local one.

    It has the provider's addresses, users and clients, its ``driver`` and the controls
    ``revoke_all()``, ``expire_access_tokens()`` and ``set_rate_limit()``; ``stop()`` leaves it running.
    """

    def __init__(self, spec: str) -> None:
        try:
            host, port, key = spec.rsplit(":", 2)
            address, secret = (host, int(port)), bytes.fromhex(key)
        except (IndexError, ValueError):
            raise ConfigurationError(f"{SHARED_ENV} must read host:port:key (from nb_oauth2's share_demo()).") from None
        self.spec = spec
        self._address, self._key = address, secret
        self._driver: Any = None
        for name, value in self._call("facts").items():
            setattr(self, name, value)

    def _call(self, name: str, *args: Any) -> Any:
        try:
            with Client(self._address, authkey=self._key) as conn:
                conn.send((name, args))
                ok, value = conn.recv()
        except (OSError, EOFError) as exc:
            raise ConfigurationError(
                f"The shared demo provider ({SHARED_ENV}) at {self._address[0]}:{self._address[1]} does not answer "
                f"({type(exc).__name__}); unset {SHARED_ENV} to start a demo provider in this kernel.") from None
        if not ok:
            raise ConfigurationError(f"The shared demo provider refused {name}() ({value}).")
        return value

    def revoke_all(self) -> None:
        """Revoke every access and refresh token the shared provider issued so far."""
        self._call("revoke_all")

    def expire_access_tokens(self) -> None:
        """Make every access token the shared provider issued so far expired (forces a refresh)."""
        self._call("expire_access_tokens")

    def set_rate_limit(self, limit: int | None, window: float = 1.0, retry_after: int = 1) -> None:
        """Answer API requests past ``limit`` per ``window`` seconds with 429 + Retry-After."""
        self._call("set_rate_limit", limit, window, retry_after)

    @property
    def driver(self) -> Any:
        """The test driver that plays the browser's part over HTTP (as the local provider's)."""
        if self._driver is None:
            from ..demo.driver import Driver

            self._driver = Driver(self)
        return self._driver

    @property
    def running(self) -> bool:
        try:
            return bool(self._call("running"))
        except ConfigurationError:
            return False

    def stop(self) -> None:
        """Nothing: the shared provider belongs to the process that shared it."""

    def __repr__(self) -> str:
        return f"<DemoProvider {getattr(self, 'url', '?')} shared>"
