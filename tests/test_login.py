"""LoginAttempt: the UI-free pending login that widgets, magics and scripts drive."""

from __future__ import annotations

import _thread
import contextlib
import io
import re
import threading
import time
import warnings
from urllib.parse import urlsplit

import pytest
import requests

import nb_oauth2 as oa
from nb_oauth2.core.errors import ConfigurationError, LoginCancelled, LoginTimeout, NoLoginInProgress, StateMismatch
from nb_oauth2.core.flows import LegacyGrantWarning
from nb_oauth2.core.providers import Provider
from nb_oauth2.auth.attempt import complete_here


def attempt_for(p, **kw):
    return oa.LoginAttempt("it", issuer=p.issuer, client_id=p.clients["public"].client_id, **kw)


def test_cancel_during_the_token_request_drops_the_token(demo_provider, monkeypatch):
    """Case 44 neighbour: Cancel while the code exchange is in flight registers nothing."""
    attempt = attempt_for(demo_provider)
    redirect = demo_provider.driver.authorize(attempt.start().authorization_url)
    real_post = attempt.session.endpoints.http.post
    entered, release = threading.Event(), threading.Event()

    def slow_post(*args, **kwargs):
        entered.set()
        release.wait(5)
        return real_post(*args, **kwargs)

    monkeypatch.setattr(attempt.session.endpoints.http, "post", slow_post)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("result", _catch(attempt.complete_redirect, redirect)))
    worker.start()
    assert entered.wait(5)
    attempt.cancel()
    release.set()
    worker.join(10)
    assert isinstance(outcome["result"], LoginCancelled)
    assert attempt.session.token_info is None and attempt.phase == "cancelled"
    with pytest.raises(oa.ConfigurationError):
        oa.session("it")


def _catch(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc


def test_a_restarted_login_retires_the_old_link(demo_provider):
    """Case 9: the redirect of an earlier start() of the same login finds no matching login."""
    attempt = attempt_for(demo_provider)
    old = demo_provider.driver.authorize(attempt.start().authorization_url)
    new = demo_provider.driver.authorize(attempt.start().authorization_url)
    with pytest.raises(NoLoginInProgress):
        attempt.complete_redirect(old)
    assert attempt.complete_redirect(new).is_authorized
    with pytest.raises(NoLoginInProgress):  # and the same URL twice
        attempt.complete_redirect(new)


def test_callback_errors_leave_the_login_waiting(demo_provider):
    attempt = attempt_for(demo_provider)
    redirect = demo_provider.driver.authorize(attempt.start().authorization_url)
    with pytest.raises(StateMismatch):
        attempt.complete_redirect(redirect.replace("state=", "state=zz"))
    assert attempt.phase == "waiting"
    assert attempt.complete_redirect(redirect).is_authorized and attempt.phase == "done"


def test_file_store_login_is_restored_without_signing_in_again(demo_provider, tmp_path, monkeypatch):
    """The opt-in file store survives a kernel restart: a new login restores the saved token."""
    monkeypatch.setenv("NB_OAUTH2_STATE_DIR", str(tmp_path / "state"))
    client = demo_provider.clients["public"]
    first = oa.login("kept", issuer=demo_provider.issuer, client_id=client.client_id, store="file",
                     browser=demo_provider.driver.authorize)
    saved = first.token_info
    from nb_oauth2.auth import registry

    registry._state().sessions.clear()  # as after a kernel restart: memory forgets, the file stays

    def no_browser(url: str) -> str:
        raise AssertionError("a restored login must not ask the user again")

    again = oa.login("kept", issuer=demo_provider.issuer, client_id=client.client_id, store="file",
                     browser=no_browser)
    assert again is not first and again.token_info.access_token == saved.access_token
    assert again.get(demo_provider.url + "/userinfo").status_code == 200


def test_restore_does_not_write_the_stored_token_back(demo_provider, tmp_path, monkeypatch):
    """Case 20 neighbour: restoring reads the store but never overwrites a newer token saved meanwhile."""
    monkeypatch.setenv("NB_OAUTH2_STATE_DIR", str(tmp_path / "state"))
    client = demo_provider.clients["public"]
    oa.login("race", issuer=demo_provider.issuer, client_id=client.client_id, store="file",
             browser=demo_provider.driver.authorize)
    attempt = oa.LoginAttempt("race", issuer=demo_provider.issuer, client_id=client.client_id, store="file")
    writes = []
    monkeypatch.setattr(attempt.session.store, "save", lambda key, token: writes.append(key))
    assert attempt.restore() is not None
    assert writes == []


# -- scripts and terminals: the redirect comes back on a loopback port by itself --------------------------

_REMOTE_ENV = ("JUPYTERHUB_SERVICE_PREFIX", "SSH_CONNECTION", "SSH_CLIENT", "CODESPACES", "KUBERNETES_SERVICE_HOST")


@pytest.fixture
def local(monkeypatch):
    """The kernel looks local: choose_via says the browser can reach its loopback."""
    for name in _REMOTE_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


class _Terminal(io.StringIO):
    """What a script prints; another thread (the test's browser) reads the link from it."""

    def link(self, limit: float = 10.0) -> str:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            found = re.search(r"^(https?://\S+)$", self.getvalue(), flags=re.M)
            if found:
                return found.group(1)
            time.sleep(0.02)
        raise AssertionError(f"no link printed: {self.getvalue()!r}")


def _in_thread(fn, *args, **kwargs) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_script_login_comes_back_on_loopback_by_itself(demo_provider, local):
    """Case 42 from a script: login() prints the link, the browser's redirect reaches the loopback
    catcher over HTTP, the session signs in and the port closes; nothing is typed."""
    terminal = _Terminal()
    seen: dict = {}

    def browser() -> None:
        redirect = demo_provider.driver.authorize(terminal.link())
        seen["redirect"] = redirect
        seen["page"] = requests.get(redirect, timeout=10)

    local.setattr("builtins.input", lambda prompt="": pytest.fail("a captured login must not prompt"))
    thread, _ = _in_thread(browser)
    with contextlib.redirect_stdout(terminal):
        session = oa.login("here", issuer=demo_provider.issuer, client_id=demo_provider.clients["public"].client_id,
                           via="auto", timeout=30)
    thread.join(10)
    assert session.is_authorized and oa.session("here") is session
    assert session.get(demo_provider.url + "/userinfo").status_code == 200
    assert seen["redirect"].startswith("http://127.0.0.1:") and seen["page"].status_code == 200
    assert "comes back here by itself (loopback: local Jupyter" in terminal.getvalue()
    port = urlsplit(seen["redirect"]).port
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/callback", timeout=2)


def test_ctrl_c_cancels_the_loopback_wait_cleanly(demo_provider, local):
    """Case 44 from a terminal: Ctrl-C during the wait cancels the attempt, closes the catcher and
    is re-raised; nothing is registered."""
    attempt = attempt_for(demo_provider)
    terminal = _Terminal()

    def press_ctrl_c() -> None:
        terminal.link()
        _thread.interrupt_main()

    thread, _ = _in_thread(press_ctrl_c)
    with contextlib.redirect_stdout(terminal), pytest.raises(KeyboardInterrupt):
        complete_here(attempt)
    thread.join(5)
    assert attempt.phase == "cancelled" and isinstance(attempt.error, LoginCancelled)
    assert attempt.via == "loopback" and attempt.catcher.closed
    with pytest.raises(ConfigurationError):
        oa.session("it")


def test_timeout_ends_the_loopback_wait_with_login_timeout(demo_provider, local):
    attempt = attempt_for(demo_provider)
    with contextlib.redirect_stdout(_Terminal()), pytest.raises(LoginTimeout):
        complete_here(attempt, timeout=0.3)
    assert attempt.phase == "cancelled" and isinstance(attempt.error, LoginTimeout)
    assert attempt.catcher.closed and attempt.session.token_info is None


@pytest.mark.parametrize("env, via, flow, reason", [
    ({"SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"}, "auto", "code", "SSH"),
    ({}, "paste", "code", "via='paste'"),
    ({}, "auto", "implicit", "fragment"),
])
def test_without_loopback_the_redirect_is_pasted_at_the_prompt(demo_provider, local, env, via, flow, reason):
    """Over SSH, with via='paste' and for the implicit grant the terminal asks for the redirect, as before."""
    for name, value in env.items():
        local.setenv(name, value)
    client = demo_provider.clients["public" if flow == "code" else "implicit"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LegacyGrantWarning)
        attempt = oa.LoginAttempt("it", issuer=demo_provider.issuer, client_id=client.client_id, flow=flow)
        local.setattr("builtins.input", lambda prompt="": demo_provider.driver.authorize(attempt.step.authorization_url))
        with contextlib.redirect_stdout(_Terminal()) as terminal:
            session = complete_here(attempt, via=via)
    assert session.is_authorized and attempt.catcher is None
    assert attempt.via == "paste" and reason in attempt.via_reason
    assert "paste the address you are sent to" in terminal.getvalue()


def test_wait_for_redirect_ends_when_cancelled_from_another_thread(demo_provider, local):
    """Case 44: attempt.cancel() (a Stop button, another thread) ends the wait at once."""
    attempt = attempt_for(demo_provider)
    attempt.start(via="loopback")
    thread, out = _in_thread(attempt.wait_for_redirect)
    time.sleep(0.2)
    attempt.cancel()
    thread.join(5)
    assert isinstance(out["error"], LoginCancelled) and attempt.phase == "cancelled" and attempt.catcher.closed


def test_wait_for_redirect_returns_the_session_a_paste_completed(demo_provider, local):
    """Capture and paste race for the same login: the paste wins, the wait returns the same session."""
    attempt = attempt_for(demo_provider)
    step = attempt.start(via="loopback")
    assert attempt.redirect_uri == attempt.catcher.redirect_uri == step.redirect_uri
    assert attempt.catcher.state == attempt.expected_state and attempt.expected_state in step.authorization_url
    thread, out = _in_thread(attempt.wait_for_redirect)
    session = attempt.complete_redirect(demo_provider.driver.authorize(step.authorization_url))
    thread.join(5)
    assert out["result"] is session and attempt.phase == "done" and attempt.catcher.closed


def test_when_the_catcher_gives_up_paste_back_still_completes(demo_provider, local):
    """The catcher's own time limit leaves the login waiting: the pasted redirect still signs in."""
    from nb_oauth2.core.loopback import LoopbackCatcher

    attempt = attempt_for(demo_provider)
    step = attempt.start(via="loopback", catcher_factory=lambda: LoopbackCatcher(timeout=0.2))
    with pytest.raises(LoginCancelled) as info:
        attempt.wait_for_redirect()
    assert not isinstance(info.value, LoginTimeout) and attempt.phase == "waiting"
    assert attempt.complete_redirect(demo_provider.driver.authorize(step.authorization_url)).is_authorized


def test_a_failed_start_is_the_failed_phase():
    attempt = oa.LoginAttempt("bad-via", provider=Provider(
        name="p", authorization_endpoint="https://as.example/authorize", token_endpoint="https://as.example/token"),
        client_id="cid")
    with pytest.raises(ConfigurationError):
        attempt.start(via="carrier-pigeon")
    assert attempt.phase == "failed" and isinstance(attempt.error, ConfigurationError) and attempt.catcher is None


def test_login_attempt_takes_a_name_or_a_profile(demo_provider):
    """One way to prepare a login: a profile name with settings, or a resolved Profile."""
    named = oa.LoginAttempt("it", issuer=demo_provider.issuer, client_id=demo_provider.clients["public"].client_id,
                            scope="openid, profile read:events")
    assert named.scope == ("openid", "profile", "read:events") and named.phase == "idle"
    again = oa.LoginAttempt(named.profile, scope=["openid"], name="other")
    assert again.profile is named.profile and again.scope == ("openid",) and again.session.name == "other"
    with pytest.raises(ConfigurationError):
        oa.LoginAttempt(named.profile, flow="device")
