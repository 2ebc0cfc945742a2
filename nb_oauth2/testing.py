"""pytest fixtures for code that talks to the nb_oauth2 demo provider.

Registered as a pytest plugin (entry point ``pytest11``: ``nb_oauth2 =
"nb_oauth2.testing"``), so any project with nb_oauth2 installed gets:

- ``demo_provider``: one running :class:`nb_oauth2.demo.DemoProvider` per test
  session (share it: do not change its rate limit or revoke its tokens);
- ``fresh_demo_provider``: a new provider for one test, stopped afterwards.

Both use a 1-second device polling interval so device-flow tests stay quick.
``import nb_oauth2`` never imports this module; only pytest does.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

__all__ = ["demo_provider", "fresh_demo_provider", "demo_session", "TEST_OPTIONS"]

TEST_OPTIONS: dict[str, Any] = {"device_interval": 1}


def _running_demo() -> Iterator[Any]:
    from nb_oauth2 import demo

    provider = demo.start(**TEST_OPTIONS)
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def demo_provider() -> Iterator[Any]:
    """One demo provider on 127.0.0.1 for the whole test session."""
    yield from _running_demo()


@pytest.fixture
def fresh_demo_provider() -> Iterator[Any]:
    """A demo provider of its own for one test (free to expire, revoke, rate-limit)."""
    yield from _running_demo()


@pytest.fixture
def demo_session(demo_provider: Any) -> Iterator[Any]:
    """A signed-in session against the shared demo provider (the driver plays the user).

    Use it to test your own notebook code: ``read_json(url, session=demo_session)``.
    """
    import nb_oauth2

    client = demo_provider.clients["public"]
    session = nb_oauth2.login("demo-test", issuer=demo_provider.issuer, client_id=client.client_id,
                              browser=demo_provider.driver.authorize)
    try:
        yield session
    finally:
        session.forget()
