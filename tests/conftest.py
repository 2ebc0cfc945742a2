"""Shared fixtures: canary secrets, registry reset, real servers on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.scripted_server import ScriptedServer  # noqa: E402

CANARY_TOKEN = "canaryTOKEN-4f7d1e0b9a8c7d6e5f4a3b2c1d0e9f8a"
CANARY_REFRESH = "canaryREFRESH-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"
CANARY_SECRET = "canarySECRET-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CANARY_CODE = "canaryCODE-77aa88bb99cc00dd11ee22ff33aa44bb"


@pytest.fixture(autouse=True)
def _reset_registry():
    """Each test starts with no sessions in the kernel registry."""
    from nb_oauth2 import registry

    registry.clear()
    yield
    registry.clear()


@pytest.fixture
def scripted():
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def authlib_provider():
    from tests.servers.authlib_server import start_authlib_server

    server = start_authlib_server()
    yield server
    server.stop()


@pytest.fixture(params=["demo", "authlib"])
def auth_server(request):
    """Every grant runs against our demo provider and a third-party server (Authlib)."""
    return request.getfixturevalue("demo_provider" if request.param == "demo" else "authlib_provider")
