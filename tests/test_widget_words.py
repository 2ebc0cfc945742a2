"""What the login widget tells people (issue 12, item 5): Enter submits, the pending line, the title, echoes
that are not masked, an unrelated URL, the signed-in user and the absolute expiry, the device panel, plain
hints, and the note a widget shows once its kernel is gone. Driven from Python against the demo provider."""

from __future__ import annotations

import dataclasses
import html
import re
import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from nb_oauth2.auth import identity, registry
from nb_oauth2.auth.attempt import LoginAttempt
from nb_oauth2.core.redact import register_secret
from nb_oauth2.jupyter import login_text
from nb_oauth2.jupyter.widgets import LoginWidget


@pytest.fixture(autouse=True)
def demo(demo_provider, monkeypatch):
    registry._state().demo = demo_provider
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "SSH_CONNECTION", "SSH_CLIENT", "CODESPACES", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    return demo_provider


def _widget(flow: str | None = None, via: str = "paste", name: str | None = None) -> LoginWidget:
    return LoginWidget(LoginAttempt("demo", flow=flow, name=name), via=via)


def _href(widget: LoginWidget) -> str:
    return html.unescape(re.search(r'href="([^"]+)"', widget._link.value).group(1))


def _enter(widget: LoginWidget, text: str) -> None:
    """What the frontend sends when Enter is pressed in a continuous_update=False Text: the value, once."""
    widget._paste.value = text


def _wait(predicate, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert predicate()


def test_enter_in_the_paste_box_submits(demo):
    """Enter (the value arriving, continuous_update=False) completes the login without a click."""
    w = _widget()
    assert w._paste.continuous_update is False
    redirect = demo.driver.authorize(_href(w))
    _enter(w, redirect)
    assert w.phase == "done" and w._paste.value == ""


def test_submit_click_after_the_box_submitted_on_blur_says_nothing_more(demo):
    """Clicking Submit moves the focus out of the box, which submits it first; the click then has an empty
    box and must not overwrite the outcome with 'paste the address'."""
    w = _widget()
    _enter(w, "hello world")  # submitted as the box lost focus
    refused = w.status_text
    w._submit.click()
    assert w.status_text == refused
    w._submit.click()  # a second click on an empty box does ask for the address
    assert "Paste the address" in w.status_text


def test_title_names_the_session_and_the_profile():
    w = _widget(name="work")
    assert "session <code>work</code>" in w._title.value and "profile <code>demo</code>" in w._title.value
    assert "Sign in to demo" in w._title.value
    w.cancel()


def test_pending_line_counts_up_and_goes_away_at_the_end(demo):
    w = _widget()
    assert w.pending_text.startswith("Waiting for you to sign in…") and w.pending_text.endswith("0:00")
    assert w._pending in w.box.children
    _wait(lambda: not w.pending_text.endswith("0:00"), 5)  # the background thread rewrote it
    w.cancel()
    w.join(2)
    assert all(not t.is_alive() for t in w._threads)
    assert w._pending not in w.box.children and w._pending.comm is None


def test_pending_line_says_so_when_its_kernel_is_gone():
    """The rewrite every second restarts a CSS animation; when rewrites stop (restart, reopened notebook),
    the hidden note becomes visible: no script and no widget message needed."""
    markup = login_text.pending_html("Waiting for you to sign in…", 42)
    assert "0:42" in markup and "<script" not in markup.lower()
    assert "@keyframes nb-oauth2-stale" in markup
    assert f"animation:nb-oauth2-stale 0s linear {login_text.STALE_SECONDS}s forwards" in markup
    assert "visibility:hidden" in markup and "run the cell again" in markup


def test_static_fallback_says_the_panel_needs_its_kernel():
    w = _widget()
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "run the cell again" in bundle["text/html"] and "href" not in bundle["text/html"]
    w.cancel()


@pytest.mark.parametrize("text, shown", [("hello world", "hello world"), ("the code is ABC", "the code is ABC"),
                                         ("state hello", "state hello")])
def test_text_that_is_not_a_redirect_is_echoed_not_masked(demo, text, shown):
    """'hello world' showed as '*** world': the widget redacted again a message whose echo the package had
    built redacted already, and redact() took the word after 'code:' for a secret."""
    w = _widget()
    _enter(w, text)
    assert w.phase == "waiting"
    status = html.unescape(w.status_text)
    assert f"'{shown}'" in status and "***" not in status
    assert "still waiting" in status
    _enter(w, demo.driver.authorize(_href(w)))
    assert w.phase == "done"


def test_a_registered_secret_in_the_echo_is_still_masked(demo):
    """Case 1: the echo is redacted (by the package, where it is built) and at most 60 characters."""
    secret = "Zq8secretValue1234567"
    register_secret(secret)
    w = _widget()
    _enter(w, f"my {secret} " + "x" * 200)
    status = html.unescape(w.status_text)
    assert secret not in status and "***" in status and "x" * 61 not in status
    w.cancel()


def test_an_unrelated_url_keeps_the_login_and_says_so(demo):
    w = _widget()
    _enter(w, "https://example.com/some/page?x=1")
    assert w.phase == "waiting"
    status = html.unescape(w.status_text)
    assert "example.com" in status and "still waiting" in status and "Start the login again" not in status
    assert w.step.redirect_uri in status
    _enter(w, demo.driver.authorize(_href(w)))
    assert w.phase == "done"


def test_a_malformed_url_is_refused_inline(demo):
    w = _widget()
    _enter(w, "http://[::1/callback?code=x")
    assert w.phase == "waiting" and "still waiting" in w.status_text
    w.cancel()


def test_signed_in_line_names_the_user_and_an_absolute_expiry(demo):
    w = _widget()
    _enter(w, demo.driver.authorize(_href(w)))
    w.join(5)
    status = html.unescape(w.status_text)
    expires_in = w.attempt.session.status()["expires_in"]
    assert "Alice Liddell (alice)" in status and login_text.until(expires_in) in status
    assert re.search(r"until \d\d:\d\d", status)


def test_the_user_is_looked_up_once_and_a_failure_costs_nothing(demo, monkeypatch):
    """Best-effort: userinfo failing leaves the signed-in line without a name; the answer is cached."""
    w = _widget()
    _enter(w, demo.driver.authorize(_href(w)))
    w.join(5)
    session = w.attempt.session
    assert identity.known(session) == "Alice Liddell (alice)"
    calls = []
    monkeypatch.setattr(identity, "_from_userinfo", lambda *a: calls.append(a))
    assert identity.who(session) == "Alice Liddell (alice)" and calls == []
    monkeypatch.undo()
    broken = _widget(name="broken")
    session = broken.attempt.session  # a provider whose userinfo endpoint refuses connections
    session.provider = dataclasses.replace(session.provider, userinfo_endpoint="http://127.0.0.1:9/nothing")
    _enter(broken, demo.driver.authorize(_href(broken)))
    broken.join(10)
    assert broken.phase == "done" and "Signed in as profile broken (until" in broken.status_text
    assert identity.who(broken.attempt.session) is None


def test_id_token_claims_come_first_and_are_cleaned():
    import base64
    import json

    def jwt(claims):
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"eyJhbGciOiJub25lIn0.{body}.sig"

    assert identity.display_name(identity.claims_of_id_token(jwt({"sub": "42", "email": "a@b.example"}))) == "a@b.example"
    assert identity.display_name({"name": "Ann\x1b[31m Lee", "preferred_username": "ann"}) == "Ann [31m Lee (ann)"
    assert identity.display_name({"sub": "x" * 200}).endswith("…")
    assert identity.claims_of_id_token("not.a.jwt!") is None and identity.claims_of_id_token(None) is None


def test_device_panel_has_a_link_a_copy_button_and_a_countdown(demo):
    w = _widget(flow="device", via="device")
    code = w.step.user_code
    assert 'target="_blank"' in w._link.value and "href=" in w._link.value
    button = re.search(r'<button class="nb-oauth2-copy"[^>]*>', w._user_code.value).group(0)
    assert f'data-code="{code}"' in button and "navigator.clipboard.writeText(c)" in html.unescape(button)
    assert code not in html.unescape(re.search(r'onclick="([^"]*)"', button).group(1))  # data, not script
    _wait(lambda: "expires in" in w._countdown.value, 3)
    assert w.pending_text.startswith("Waiting for you to approve the code")
    w.cancel()
    w.join(2)


def test_a_hostile_user_code_cannot_break_out_of_the_copy_button():
    markup = login_text.code_html('"><img src=x onerror=alert(1)>')
    assert "<img" not in markup and "&quot;&gt;&lt;img" in markup


@pytest.mark.parametrize("via, reason, words", [
    ("loopback", "local Jupyter: the kernel and the browser share this machine", "comes back here by itself"),
    ("proxy", "JupyterHub/Binder: the browser reaches this kernel through jupyter-server-proxy",
     "comes back here by itself: it reaches this kernel through the Jupyter server (jupyter-server-proxy)"),
    ("paste", "chosen with via='paste'", "because you asked for it (via='paste')"),
    ("paste", "the kernel runs over SSH, on another machine than your browser", "Why not automatically: the kernel runs over SSH"),
])
def test_hints_are_plain_words(via, reason, words):
    shown = html.unescape(login_text.how_html(via, reason, "http://127.0.0.1:8765/callback"))
    assert words in shown
    assert f"({via}:" not in shown and "local Jupyter:" not in shown
    if via == "paste":
        assert "can't be reached: that is expected" in shown and "http://127.0.0.1:8765/callback" in shown


def test_until_is_local_clock_time():
    now = time.mktime((2030, 6, 1, 13, 0, 0, 0, 0, -1))
    assert login_text.until(65 * 60, now=now) == "until 14:05"
    assert login_text.until(48 * 3600, now=now).startswith("until 03 Jun 2030")
    assert login_text.until(None) == "no known expiry" and login_text.until(-1) == "expired"


def test_no_secret_in_any_new_piece_of_state(demo):
    """Case 39: the pending line, the copy button and the static fallback hold no code, URL or token."""
    w = _widget()
    redirect = demo.driver.authorize(_href(w))
    code = dict(parse_qsl(urlsplit(redirect).query))["code"]
    _enter(w, redirect)
    w.join(5)
    token = w.attempt.session.token_info
    states = str(w._pending.get_state()) + str(w._status.get_state()) + str(w._repr_mimebundle_()) + repr(w)
    for secret in (code, redirect, token.access_token, token.refresh_token):
        assert secret not in states


@pytest.mark.parametrize("flow, via", [(None, "paste"), (None, "loopback"), ("device", "device")])
def test_a_widget_over_a_waiting_cell_offers_no_dead_controls(demo, flow, via):
    """waiting_cell=True (login() blocks the cell, where widget clicks do not arrive on ipykernel 7): no paste
    box, no Cancel button; the hint points to the prompt below and the pending line to Stop."""
    w = LoginWidget(LoginAttempt("demo", flow=flow), via=via, waiting_cell=True)
    shown = _all_children(w.box)
    assert w._cancel not in shown and getattr(w, "_paste", None) not in shown
    assert "Stop (■) cancels" in w.pending_text
    if via == "paste":
        assert "into the prompt that appears below" in html.unescape(w._method.value)
    w.cancel()
    w.join(2)
    assert w._cancel.comm is None and all(not t.is_alive() for t in w._threads)


def _all_children(box) -> list:
    found, stack = [], [box]
    while stack:
        item = stack.pop()
        found.append(item)
        stack.extend(getattr(item, "children", ()))
    return found
