"""The test suite's loopback server answers as scripted, and closes at once."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.scripted_server import Reply, ScriptedServer


def test_replies_per_path_in_order_the_last_repeating_and_requests_recorded(scripted):
    scripted.script("/a", [Reply(201, "one"), lambda seen: Reply(200, {"echo": seen.body, "q": seen.query})])
    scripted.script("*", [Reply(418, b"other")])
    assert requests.post(scripted.url + "/a", data="x=1").status_code == 201
    for _ in range(2):
        assert requests.post(scripted.url + "/a?k=v", data="y=2").json() == {"echo": "y=2", "q": {"k": "v"}}
    assert requests.get(scripted.url + "/elsewhere", headers={"authorization": "Bearer t"}).status_code == 418
    assert scripted.count("/a") == 3 and scripted.seen[-1].auth == "Bearer t"
    assert [s.method for s in scripted.seen] == ["POST", "POST", "POST", "GET"]
    scripted.reset()
    assert requests.get(scripted.url + "/a").status_code == 404 and len(scripted.seen) == 1


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
@pytest.mark.parametrize("http11", [False, True])
def test_every_framing_delivers_the_whole_body_dripped_or_streamed(framing, http11):
    with ScriptedServer(http11=http11) as server:
        server.script("/drip", [Reply(200, b'{"n": 12345}', drip=0.001, framing=framing)])
        server.script("/stream", [Reply(200, (part for part in (b"ab", b"", b"cd")), framing=framing)])
        resp = requests.get(server.url + "/drip")
        assert resp.json() == {"n": 12345}
        assert ("Content-Length" in resp.headers) == (framing == "length")
        assert (resp.headers.get("Transfer-Encoding") == "chunked") == (framing == "chunked")
        assert requests.get(server.url + "/stream").content == b"abcd"


def test_close_cuts_a_delayed_reply_and_frees_the_port():
    server = ScriptedServer()
    server.script("/slow", [Reply(200, "late", delay=30)])
    outcome: list = []

    def call():
        try:
            outcome.append(requests.get(server.url + "/slow", timeout=10).status_code)
        except requests.RequestException as exc:
            outcome.append(type(exc))

    thread = threading.Thread(target=call)
    thread.start()
    while not server.seen:
        time.sleep(0.005)
    server.close()
    thread.join(5)
    assert not thread.is_alive() and outcome == [requests.ConnectionError]  # cut, not answered 30 s later
    assert not server.thread.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/slow", timeout=2)
    server.close()  # idempotent
