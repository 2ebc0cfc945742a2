"""Third-party authorization servers used as test fixtures (Authlib).

Use from a test module or conftest::

    from tests.servers import authlib_provider  # noqa: F401  (session-scoped fixture)
"""

from __future__ import annotations

from typing import Iterator

import pytest

from .authlib_server import AuthlibServer, start_authlib_server

__all__ = ["AuthlibServer", "start_authlib_server", "authlib_provider", "authlib_short_ttl"]


@pytest.fixture(scope="session")
def authlib_provider() -> Iterator[AuthlibServer]:
    """Authlib's authorization server on 127.0.0.1 (one per test session)."""
    server = start_authlib_server()
    yield server
    server.stop()


@pytest.fixture
def authlib_short_ttl() -> Iterator[AuthlibServer]:
    """A fresh Authlib server whose access tokens live 2 s (refresh tests)."""
    server = start_authlib_server(access_token_ttl=2)
    yield server
    server.stop()
