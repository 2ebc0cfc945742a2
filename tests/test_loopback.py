"""The one-shot loopback redirect catcher: real HTTP on 127.0.0.1 (SECURITY_CASES 41-44)."""

from __future__ import annotations

import http.client
import socket
import sys
import threading
import time

import pytest

from nb_oauth2.core.errors import ConfigurationError, LoginCancelled
from nb_oauth2.core.loopback import LoopbackCatcher, LoopbackPortBusy, choose_via, proxied_path

STATE = "s-3f9a0c1e7b5d"


def _get(port: int, path: str, *, host: str | None = None, timeout: float = 5) -> tuple[int, dict, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Host": host} if host is not None else {}
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode()
    finally:
        conn.close()


def _port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR passes over TIME_WAIT remnants but not over a listening socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError:
            return False
        return True


def _wait_free(port: int, limit: float = 1.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if _port_is_free(port):
            return True
        time.sleep(0.02)
    return _port_is_free(port)


def _wait_in_thread(catcher: LoopbackCatcher, cancel: threading.Event | None = None) -> dict:
    out: dict = {}

    def run() -> None:
        try:
            out["url"] = catcher.wait(cancel)
        except Exception as exc:  # noqa: BLE001
            out["error"] = exc

    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out


@pytest.fixture
def catcher():
    c = LoopbackCatcher(state=STATE, timeout=30)
    c.start()
    yield c
    c.close()


def test_binds_loopback_on_an_ephemeral_port(catcher):
    """Case 41: 127.0.0.1, a port chosen by the OS, a plain-http loopback redirect URI."""
    assert catcher.port > 0
    assert catcher.redirect_uri == f"http://127.0.0.1:{catcher.port}/callback"
    assert catcher._server.server_address[0] == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.168.1.10", "example.org", "localhost"])
def test_refuses_to_listen_off_loopback(host):
    """Case 41: never 0.0.0.0 or any other non-loopback interface."""
    with pytest.raises(ConfigurationError, match="127.0.0.1 or ::1"):
        LoopbackCatcher(state=STATE, host=host)


def test_ipv6_loopback_works():
    """Case 41: ::1 is loopback too."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        c = LoopbackCatcher(state=STATE, host="::1").start()
    except LoopbackPortBusy:
        pytest.skip("::1 not configured")
    with c:
        assert c.redirect_uri.startswith("http://[::1]:")


def test_busy_fixed_port_gives_a_clear_error(catcher):
    """Case 41: a fixed port already in use is a ConfigurationError naming the fallback."""
    with pytest.raises(LoopbackPortBusy, match="paste the redirect URL back") as info:
        LoopbackCatcher(state=STATE, port=catcher.port).start()
    assert isinstance(info.value, ConfigurationError)


def test_success_returns_the_full_redirect_and_closes_the_port(catcher):
    """Case 42/43: the one good request is returned whole; the port is closed within 1 s."""
    waiter = _wait_in_thread(catcher)
    status, headers, body = _get(catcher.port, f"/callback?code=abc123&state={STATE}&iss=x")
    waiter["thread"].join(2)
    assert status == 200
    assert waiter["url"] == f"http://127.0.0.1:{catcher.port}/callback?code=abc123&state={STATE}&iss=x"
    assert "Return to the notebook" in body
    assert _wait_free(catcher.port)


def test_success_page_is_self_contained_and_sends_no_referer(catcher):
    """Case 42: no scripts or third-party resources; Referrer-Policy no-referrer."""
    _, headers, body = _get(catcher.port, f"/callback?code=abc&state={STATE}")
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for marker in ("<script", "src=", "href=", "http://", "https://", "@import"):
        assert marker not in body
    assert "abc" not in body  # the code is not echoed


def test_wrong_path_is_404_and_keeps_waiting(catcher):
    """Case 42: another path is 404; the catcher still takes the right request afterwards."""
    waiter = _wait_in_thread(catcher)
    assert _get(catcher.port, f"/other?code=a&state={STATE}")[0] == 404
    assert _get(catcher.port, "/favicon.ico")[0] == 404
    assert "url" not in waiter
    assert _get(catcher.port, f"/callback?code=a&state={STATE}")[0] == 200
    waiter["thread"].join(2)
    assert waiter["url"].endswith(f"/callback?code=a&state={STATE}")


@pytest.mark.parametrize("host", ["evil.example:80", "attacker.test", "", "127.0.0.1:1"])
def test_wrong_host_header_is_400_dns_rebinding(catcher, host):
    """Case 42: a Host header other than the loopback address and port (DNS rebinding) is 400."""
    waiter = _wait_in_thread(catcher)
    assert _get(catcher.port, f"/callback?code=a&state={STATE}", host=host)[0] == 400
    assert _get(catcher.port, f"/callback?code=b&state={STATE}", host=f"localhost:{catcher.port}")[0] == 200
    waiter["thread"].join(2)
    assert "code=b" in waiter["url"]


@pytest.mark.parametrize("query", ["code=a&state=wrong", "code=a", f"code=a&state={STATE}&state={STATE}", ""])
def test_wrong_or_missing_state_is_400_and_keeps_waiting(catcher, query):
    """Case 42: wrong, missing or duplicated state is 400 and the catcher keeps waiting."""
    waiter = _wait_in_thread(catcher)
    status, _, body = _get(catcher.port, f"/callback?{query}")
    assert status == 400
    assert "state" in body
    time.sleep(0.2)
    assert waiter["thread"].is_alive() and not catcher.closed
    assert _get(catcher.port, f"/callback?code=ok&state={STATE}")[0] == 200
    waiter["thread"].join(2)
    assert "code=ok" in waiter["url"]


def test_state_can_be_set_after_the_redirect_uri_is_known():
    """The redirect URI goes into the login before the login creates its state."""
    with LoopbackCatcher() as c:
        uri = c.redirect_uri
        assert _get(c.port, "/callback?code=a&state=x")[0] == 400
        c.state = "x"
        waiter = _wait_in_thread(c)
        assert _get(c.port, "/callback?code=a&state=x")[0] == 200
        waiter["thread"].join(2)
        assert waiter["url"] == uri + "?code=a&state=x"


def test_second_request_after_success_is_ignored(catcher):
    """Case 42: once the redirect is caught the port is closed: a replay finds nobody."""
    waiter = _wait_in_thread(catcher)
    assert _get(catcher.port, f"/callback?code=first&state={STATE}")[0] == 200
    waiter["thread"].join(2)
    assert _wait_free(catcher.port)
    with pytest.raises(OSError):
        _get(catcher.port, f"/callback?code=second&state={STATE}", timeout=1)
    assert "code=first" in waiter["url"]


def test_timeout_raises_login_cancelled_and_closes_the_port():
    """Case 43: after the timeout the wait ends with LoginCancelled and the port is closed."""
    c = LoopbackCatcher(state=STATE, timeout=0.3).start()
    with pytest.raises(LoginCancelled, match="within 0.3 s"):
        c.wait()
    assert _wait_free(c.port)
    assert not c._thread.is_alive()


def test_cancel_ends_the_wait_at_once_and_closes_the_port(catcher):
    """Case 44: Cancel (or an interrupt) ends the wait within 1 s; no thread or socket left."""
    cancel = threading.Event()
    waiter = _wait_in_thread(catcher, cancel)
    time.sleep(0.2)
    cancel.set()
    waiter["thread"].join(1)
    assert not waiter["thread"].is_alive()
    assert isinstance(waiter["error"], LoginCancelled)
    assert _wait_free(catcher.port)
    assert not catcher._thread.is_alive()


def test_close_without_wait_closes_the_port():
    """Case 43: a widget that gives up (paste-back used instead) closes the catcher's port."""
    c = LoopbackCatcher(state=STATE).start()
    port = c.port
    assert not _port_is_free(port)
    c.close()
    assert _wait_free(port)


def test_no_access_log_on_stderr(catcher, capfd):
    """Case 42: no access log (it would land in the cell output)."""
    _get(catcher.port, "/nope")
    _get(catcher.port, "/callback?state=bad", host="evil")
    conn = socket.create_connection(("127.0.0.1", catcher.port))
    conn.sendall(b"garbage\r\n\r\n")
    conn.recv(1000)
    conn.close()
    _get(catcher.port, f"/callback?code=a&state={STATE}")
    time.sleep(0.2)
    out, err = capfd.readouterr()
    assert err == "" and out == ""


def test_proxied_path_is_accepted_under_jupyterhub():
    """Behind jupyter-server-proxy the request may keep the hub prefix; the public URI is used."""
    with LoopbackCatcher(state=STATE, proxy_prefix="/user/alice/") as c:
        public = c.browser_redirect_uri("https://hub.example.org/user/alice/")
        assert public == f"https://hub.example.org/user/alice/proxy/{c.port}/callback"
        assert c.redirect_uri == public
        assert proxied_path("/user/alice/", c.port) == f"/user/alice/proxy/{c.port}/callback"
        waiter = _wait_in_thread(c)
        assert _get(c.port, f"/user/alice/proxy/{c.port}/callback?code=a&state={STATE}",
                    host="hub.example.org")[0] == 200
        waiter["thread"].join(2)
        assert waiter["url"] == f"{public}?code=a&state={STATE}"


def test_choose_via_local_jupyter_is_loopback(monkeypatch):
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "SSH_CONNECTION", "SSH_CLIENT", "CODESPACES", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    method, reason = choose_via()
    assert method == "loopback" and "local" in reason


@pytest.mark.parametrize(("env", "expected"), [
    ({"SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22"}, ("paste", "SSH")),
    ({"JUPYTERHUB_SERVICE_PREFIX": "/user/a/"}, ("paste", "jupyter-server-proxy")),
])
def test_choose_via_remote_kernels_paste(monkeypatch, env, expected):
    """Case 43: a remote kernel cannot receive the browser's loopback redirect."""
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "SSH_CONNECTION", "SSH_CLIENT", "CODESPACES", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("nb_oauth2.core.loopback._jupyter_server_proxy_available", lambda: False)
    method, reason = choose_via("auto")
    assert (method, expected[1] in reason) == (expected[0], True)


def test_choose_via_hub_with_server_proxy_and_colab(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/a/")
    monkeypatch.setattr("nb_oauth2.core.loopback._jupyter_server_proxy_available", lambda: True)
    assert choose_via()[0] == "proxy"
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX")
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", object())
    assert choose_via() == ("paste", "Colab: the kernel runs on a Google machine, not beside your browser")


def test_choose_via_explicit_choice_and_bad_value():
    assert choose_via("paste")[0] == "paste"
    with pytest.raises(ConfigurationError):
        choose_via("carrier-pigeon")


# -- case 61: idle connections never hold up the real redirect --------------------------------

def _idle_connections(port: int, count: int) -> list[socket.socket]:
    """Connections that connect and say nothing (a browser's preconnects, a port scan)."""
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def _cut_by_server(sock: socket.socket, limit: float = 2.0) -> bool:
    """True when the server ended the connection without answering (EOF, no bytes)."""
    sock.settimeout(limit)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_idle_connections_do_not_delay_the_redirect(catcher):
    """Case 61: three idle local connections (opened first, still open) delay the real redirect by
    at most 1 s; they get no answer and are cut when the catcher closes."""
    waiter = _wait_in_thread(catcher)
    idle = _idle_connections(catcher.port, 3)
    try:
        started = time.monotonic()
        status, _, _ = _get(catcher.port, f"/callback?code=abc123&state={STATE}", timeout=1.5)
        waiter["thread"].join(1.5)
        elapsed = time.monotonic() - started
        assert status == 200
        assert waiter["url"] == f"http://127.0.0.1:{catcher.port}/callback?code=abc123&state={STATE}"
        assert elapsed <= 1.5  # a timing requirement by definition; the loose bound covers a busy machine
        assert all(_cut_by_server(sock) for sock in idle)
        assert _wait_free(catcher.port)
    finally:
        for sock in idle:
            sock.close()


def test_a_flood_of_idle_connections_cannot_starve_the_redirect(catcher):
    """Case 61: past the idle limit the oldest silent connections are dropped; the redirect still lands."""
    from nb_oauth2.core import loopback

    waiter = _wait_in_thread(catcher)
    idle = _idle_connections(catcher.port, getattr(loopback, "_MAX_IDLE", 32) + 8)
    try:
        assert _cut_by_server(idle[0])  # the oldest was dropped to make room...
        status, _, _ = _get(catcher.port, f"/callback?code=abc123&state={STATE}", timeout=1.5)
        waiter["thread"].join(1.5)
        assert status == 200 and waiter["url"].endswith(f"code=abc123&state={STATE}")  # ...and the redirect landed
    finally:
        for sock in idle:
            sock.close()


def test_cancel_with_idle_connections_closes_everything(catcher):
    """Cases 44 and 61: Cancel with silent connections open closes the port and cuts them at once."""
    cancel = threading.Event()
    waiter = _wait_in_thread(catcher, cancel)
    idle = _idle_connections(catcher.port, 3)
    try:
        time.sleep(0.3)  # let the catcher accept them
        cancel.set()
        waiter["thread"].join(1)
        assert isinstance(waiter["error"], LoginCancelled)
        assert _wait_free(catcher.port) and not catcher._thread.is_alive()
        assert all(_cut_by_server(sock, 1.0) for sock in idle)
    finally:
        for sock in idle:
            sock.close()


def test_two_good_redirects_at_once_give_one_success(catcher):
    """Case 42 with parallel handlers (case 61): only one request wins; the other is told it was used."""
    waiter = _wait_in_thread(catcher)
    results: list[int] = []
    barrier = threading.Barrier(2)

    def hit() -> None:
        barrier.wait()
        try:
            results.append(_get(catcher.port, f"/callback?code=abc123&state={STATE}", timeout=3)[0])
        except OSError:
            results.append(0)  # the port closed after the winner: also not a second success

    threads = [threading.Thread(target=hit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    waiter["thread"].join(2)
    assert results.count(200) == 1 and "url" in waiter


def _get_forwarded(port: int, path: str, host: str, prefix: str | None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Host": host, **({"X-Forwarded-Prefix": prefix} if prefix else {})}
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_behind_the_proxy_without_a_public_url_the_catcher_trusts_the_proxied_prefix():
    """Issue 16: the hub's address is unknown; jupyter-server-proxy forwards with the hub's Host and its prefix."""
    from nb_oauth2.core.providers import NOTEBOOK_ORIGIN

    with LoopbackCatcher(state=STATE, proxy_prefix="/user/alice/") as c:
        uri = c.browser_redirect_uri(None)
        assert uri == f"{NOTEBOOK_ORIGIN}/user/alice/proxy/{c.port}/callback" == c.redirect_uri
        waiter = _wait_in_thread(c)
        query = f"/callback?code=a&state={STATE}"
        assert _get_forwarded(c.port, query, "127.0.0.1:8000", None) == 400  # no proxy header: not through the hub
        assert _get_forwarded(c.port, query, "127.0.0.1:8000", "/user/bob/proxy/1") == 400
        assert _get_forwarded(c.port, query, "127.0.0.1:8000", f"/user/alice/proxy/{c.port}") == 200
        waiter["thread"].join(2)
        assert waiter["url"] == f"{uri}?code=a&state={STATE}"


def test_browser_redirect_uri_without_a_prefix_or_public_url_is_a_configuration_error():
    with LoopbackCatcher(state=STATE, proxy_prefix="") as c, pytest.raises(ConfigurationError):
        c.browser_redirect_uri(None)


def test_wait_timeout_is_login_timeout_and_outlasts_the_catchers_own_limit():
    """timeout= gives LoginTimeout (not the catcher's own 'paste instead'), even past its own limit; the port closes."""
    from nb_oauth2.core.errors import LoginTimeout

    c = LoopbackCatcher(state=STATE, timeout=0.1)
    port = c.start().port
    with pytest.raises(LoginTimeout):
        c.wait(timeout=0.4)
    assert c.closed and _wait_free(port)


def test_wait_ends_when_any_of_several_cancel_events_is_set(catcher):
    """Case 44: the caller's event and the login's own both cancel the wait."""
    mine, theirs = threading.Event(), threading.Event()
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("error", _catch(catcher.wait, mine, theirs)), daemon=True)
    thread.start()
    theirs.set()
    thread.join(5)
    assert isinstance(out["error"], LoginCancelled) and catcher.closed


def _catch(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc
