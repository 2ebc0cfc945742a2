"""The ``demo`` profile: the embedded demo provider, started once per kernel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .profile import Profile
from ..core.endpoint import ClientAuth
from ..core.providers import discover
from .registry import _state

if TYPE_CHECKING:
    from ..demo import DemoProvider

__all__ = ["running_demo", "demo_profile", "DEMO_CLIENT_FOR_FLOW"]

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
    with state.lock:
        current = getattr(state, "demo", None)
        if current is None or not getattr(current, "running", True):
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
