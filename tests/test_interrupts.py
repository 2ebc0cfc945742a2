"""Kernel interrupts (SECURITY_CASES 44): Ctrl-C during a token POST or device polling."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from nb_oauth2 import ClientAuth, Provider
from nb_oauth2.core.endpoint import Endpoints
from nb_oauth2.core.flows import DeviceFlow
from nb_oauth2.auth.session import Session
from nb_oauth2.core.token import Token
from tests.conftest import CANARY_REFRESH, CANARY_TOKEN
from tests.scripted_server import Reply


def interrupt_after(seconds: float) -> threading.Timer:
    """A real SIGINT to the main thread, as Jupyter's interrupt button sends."""
    main = threading.main_thread().ident
    timer = threading.Timer(seconds, signal.pthread_kill, args=(main, signal.SIGINT))
    timer.start()
    return timer


def client_threads() -> int:
    """Threads other than the scripted server's request handlers."""
    return sum(1 for t in threading.enumerate() if "process_request" not in t.name)


def test_interrupt_during_refresh_post_returns_fast_and_leaves_session_unchanged(scripted):
    """Case 44: KeyboardInterrupt during the token POST -> back within 1 s, session unchanged."""
    scripted.script("/token", [Reply(200, {"access_token": "late-123456"}, delay=5)])
    provider = Provider(name="s", token_endpoint=scripted.url + "/token")
    client = ClientAuth("cid")
    token = Token.from_response({"access_token": CANARY_TOKEN, "refresh_token": CANARY_REFRESH, "expires_in": 3600})
    session = Session(name="int", provider=provider, client=client, token=token,
                      endpoints=Endpoints(provider, client, timeout=(2, 10)))
    before = client_threads()
    interrupt_after(0.3)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        session.refresh()
    assert time.monotonic() - started < 1.3
    assert session.token_info is token
    assert session.store.load("int")["refresh_token"] == CANARY_REFRESH
    time.sleep(0.1)
    assert client_threads() <= before  # nothing of ours left running


def test_interrupt_during_device_polling_returns_fast(scripted):
    """Case 44: KeyboardInterrupt while waiting between device polls -> back within 1 s."""
    scripted.script("/device", [Reply(200, {"device_code": "dc-12345678", "user_code": "WXYZ-1234",
                                            "verification_uri": scripted.url + "/verify", "interval": 5})])
    scripted.script("/token", [Reply(400, {"error": "authorization_pending"})])
    provider = Provider(name="s", token_endpoint=scripted.url + "/token",
                        device_authorization_endpoint=scripted.url + "/device")
    flow = DeviceFlow(provider, ClientAuth("dev"))
    flow.start()
    interrupt_after(0.3)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        flow.complete()
    assert time.monotonic() - started < 1.3
    assert scripted.count("/token") == 0
