"""Shared fixtures: canary secrets, registry reset, real servers on 127.0.0.1."""

from __future__ import annotations

import sys
import time
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
    from nb_oauth2.auth import registry

    registry.clear()
    yield
    registry.clear()


@pytest.fixture(autouse=True)
def _forget_secrets_registered_by_the_test():
    """Each test sees the redaction registry as it was before it (plus what wider fixtures set up).

    A test must register its own secrets to have them masked, as a fresh kernel would (and the
    registry stays small: its pattern is rebuilt after registrations).
    """
    from nb_oauth2.core import redact

    with redact._lock:
        saved = dict(redact._secrets)
    yield
    with redact._lock:
        if redact._secrets != saved:
            redact._secrets.clear()
            redact._secrets.update(saved)
            redact._stale = True


@pytest.fixture
def scripted():
    server = ScriptedServer()
    yield server
    server.close()


class FrozenClock:
    """The ``time`` module as seen by a module under test: standing still until ``advance()``-d."""

    def __init__(self) -> None:
        self._wall, self._monotonic = time.time(), time.monotonic()

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._monotonic += seconds

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    def __getattr__(self, name: str):
        return getattr(time, name)


@pytest.fixture
def demo_clock(monkeypatch):
    """The demo provider's clock (validator: code, token and device-code expiry; API: the rate-limit
    window), frozen and moved on by ``demo_clock.advance(seconds)`` instead of slept through."""
    from nb_oauth2.demo import api, validator

    clock = FrozenClock()
    monkeypatch.setattr(validator, "time", clock)
    monkeypatch.setattr(api, "time", clock)
    return clock


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


def pytest_sessionfinish(session):
    """Wait for the servers (JupyterLab, JupyterHub) whose tests let them stop in the background."""
    from tests.browser_helpers import finish_background_stops

    finish_background_stops()


# -- pytest-xdist (pyproject.toml: -n auto --dist loadgroup; tests/xdist_scheduling.py) ----------


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before pytest-xdist's own choice
def pytest_xdist_make_scheduler(config, log):
    """Slow modules first; modules with module-scoped fixtures whole on one worker."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.xdist_scheduling import make_scheduler

    return make_scheduler(config, log)


# -- the SECURITY_CASES.md figure: which numbered cases have passing tests ---------------

import re  # noqa: E402

_CASE_GROUPS = [("paste-back", 1, 9), ("token endpoint", 10, 16), ("refresh & revocation", 17, 23),
                ("device flow", 24, 27), ("resource fetching", 28, 34), ("secrets leakage", 35, 40),
                ("loopback catcher", 41, 44), ("kernel", 45, 45), ("origins and parsers", 46, 47),
                ("lifetimes and single flight", 48, 50), ("secrets in errors", 51, 52), ("callback", 53, 54),
                ("hostile pages and slow servers", 55, 63)]
_LAST_CASE = _CASE_GROUPS[-1][2]
_CASE_RE = re.compile(r"Cases? ((?:\d+(?:\s*[-/,]\s*|\s+and\s+)?)+)")
_node_cases: dict[str, set[int]] = {}  # test id -> the cases its docstring names
_case_failed: set[int] = set()
_case_passed: set[int] = set()


def _case_numbers(doc: str) -> set[int]:
    found: set[int] = set()
    for match in _CASE_RE.finditer(doc or ""):
        numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
        if "-" in match.group(1) and len(numbers) == 2:
            numbers = list(range(numbers[0], numbers[1] + 1))
        found.update(n for n in numbers if 1 <= n <= _LAST_CASE)
    return found


def pytest_collection_modifyitems(config, items):
    from nb_oauth2.demo.server import DEVICE_GRANT_SUPPORTED

    if not DEVICE_GRANT_SUPPORTED:  # oauthlib 3.3: the client side runs, the demo serves no device grant
        skip = pytest.mark.skip(reason="the demo provider's device grant needs oauthlib>=4")
        client_only = ("[authlib]", "test_device_policy", "test_interrupts", "test_authlib_server")
        for item in items:
            demo_device = "device" in item.nodeid and not any(part in item.nodeid for part in client_only)
            if demo_device or "test_examples" in item.nodeid or "lists_every_endpoint" in item.nodeid:
                item.add_marker(skip)
    for item in items:
        numbers = _item_cases(item)
        if numbers:
            _node_cases[item.nodeid] = numbers
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: what its scheduler sees first
        from tests.xdist_scheduling import order_items

        order_items(items)


def _item_cases(item) -> set[int]:
    return _case_numbers(getattr(getattr(item, "function", None), "__doc__", "") or "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under pytest-xdist the controller collects nothing: a worker's report carries its cases."""
    outcome = yield
    if hasattr(item.config, "workerinput"):
        numbers = _item_cases(item)  # by the item: --dist loadgroup appends "@group" to node ids
        if numbers:
            outcome.get_result().user_properties.append(("security_cases", sorted(numbers)))


def pytest_runtest_logreport(report):
    numbers = _node_cases.get(report.nodeid) or set(dict(report.user_properties).get("security_cases", ()))
    if numbers and not _node_cases.get(report.nodeid):
        _node_cases[report.nodeid] = numbers
    if numbers and (report.failed or (report.when == "call" and report.passed)):
        (_case_failed if report.failed else _case_passed).update(numbers)


def pytest_terminal_summary(terminalreporter):
    if not _node_cases:
        return
    passing = _case_passed - _case_failed
    parts = []
    for name, low, high in _CASE_GROUPS:
        total = high - low + 1
        parts.append(f"{name} {len(passing & set(range(low, high + 1)))}/{total}")
    missing = sorted(set(range(1, _LAST_CASE + 1)) - passing)
    terminalreporter.write_line(
        f"SECURITY_CASES: {len(passing)} of {_LAST_CASE} cases have passing tests ({'; '.join(parts)})"
        + (f"; without a passing test here: {missing}" if missing else ""))
