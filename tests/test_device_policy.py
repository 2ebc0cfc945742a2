"""Device flow polling rules (SECURITY_CASES 24-27, 44) with a fake clock and a scripted server."""

from __future__ import annotations

import threading
import time

import pytest

from nb_oauth2 import ClientAuth, Provider
from nb_oauth2.core.endpoint import Endpoints
from nb_oauth2.core.errors import DeviceAccessDenied, DeviceCodeExpired, DeviceFlowError, LoginCancelled
from nb_oauth2.core.flows import DeviceFlow
from tests.conftest import CANARY_TOKEN
from tests.scripted_server import Reply


class FakeWait:
    """Stands in for the cancel event: records each wait and advances a fake clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False

    def is_set(self) -> bool:
        return False

    def clock(self) -> float:
        return self.now


def device_flow(scripted, authorization: dict, polls: list[Reply], timeout=(2, 2)):
    scripted.script("/device", [Reply(200, authorization)])
    scripted.script("/token", polls)
    provider = Provider(name="s", token_endpoint=scripted.url + "/token",
                        device_authorization_endpoint=scripted.url + "/device")
    client = ClientAuth("device-client")
    fake = FakeWait()
    flow = DeviceFlow(provider, client, endpoints=Endpoints(provider, client, timeout=timeout), clock=fake.clock)
    return flow, fake


AUTH = {"device_code": "dc-123456789", "user_code": "ABCD-EFGH", "verification_uri": "http://127.0.0.1/device",
        "expires_in": 600}
PENDING = Reply(400, {"error": "authorization_pending"})
SLOW = Reply(400, {"error": "slow_down"})
OK = Reply(200, {"access_token": CANARY_TOKEN, "token_type": "Bearer", "expires_in": 60})


def test_pending_is_polled_at_the_interval_default_5s(scripted):
    """Case 24: never faster than interval, 5 s when absent."""
    flow, fake = device_flow(scripted, AUTH, [PENDING, PENDING, OK])
    step = flow.start()
    assert step.interval == 5 and step.user_code == "ABCD-EFGH"
    token = flow.complete(fake)
    assert token.access_token == CANARY_TOKEN
    assert fake.waits == [5, 5, 5]
    assert scripted.count("/token") == 3


def test_server_interval_is_honoured(scripted):
    """Case 24: the server's interval is the floor."""
    flow, fake = device_flow(scripted, dict(AUTH, interval=7), [PENDING, OK])
    flow.start()
    flow.complete(fake)
    assert fake.waits == [7, 7]


def test_slow_down_adds_5s_cumulatively(scripted):
    """Case 25: slow_down twice -> +5 s then +10 s."""
    flow, fake = device_flow(scripted, AUTH, [SLOW, SLOW, PENDING, OK])
    flow.start()
    flow.complete(fake)
    assert fake.waits == [5, 10, 15, 15]


@pytest.mark.parametrize("reply,cls", [
    (Reply(400, {"error": "expired_token"}), DeviceCodeExpired),
    (Reply(400, {"error": "access_denied"}), DeviceAccessDenied),
    (Reply(400, {"error": "mystery_error"}), DeviceFlowError),
])
def test_terminal_errors_stop_at_once_without_restart(scripted, reply, cls):
    """Case 26: expired_token, access_denied or an unknown error stop at once; no auto-restart."""
    flow, fake = device_flow(scripted, AUTH, [PENDING, reply])
    flow.start()
    with pytest.raises(cls):
        flow.complete(fake)
    assert scripted.count("/token") == 2 and scripted.count("/device") == 1


def test_local_expiry_stops_without_another_poll(scripted):
    """Case 26: the device code expires locally -> stop, no further request."""
    flow, fake = device_flow(scripted, dict(AUTH, expires_in=12), [PENDING])
    flow.start()
    with pytest.raises(DeviceCodeExpired):
        flow.complete(fake)
    assert scripted.count("/token") == 2  # polls at t=5 and t=10; t=15 is past expiry


def test_connection_timeout_doubles_interval_and_is_not_fatal(scripted):
    """Case 27: a timeout doubles the interval; polling goes on."""
    flow, fake = device_flow(scripted, AUTH, [Reply(200, {}, delay=1.0), OK], timeout=(1, 0.3))
    flow.start()
    token = flow.complete(fake)
    assert token.access_token == CANARY_TOKEN
    assert fake.waits == [5, 10]


def test_cancel_returns_within_a_second(scripted):
    """Case 44: Cancel during polling returns promptly and leaves no thread behind."""
    flow, _ = device_flow(scripted, AUTH, [PENDING])
    flow.start()
    cancel = threading.Event()
    outcome = {}

    def run():
        try:
            flow.complete(cancel)
        except LoginCancelled as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    cancel.set()
    worker.join(2)
    assert not worker.is_alive()
    assert time.monotonic() - started < 1.0
    assert isinstance(outcome.get("error"), LoginCancelled)
    assert scripted.count("/token") == 0
