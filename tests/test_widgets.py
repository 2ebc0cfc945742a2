"""The login widget, driven from Python against the real demo provider (cases 1-9, 39, 41-44)."""

from __future__ import annotations

import html
import re
import time
import warnings
from urllib.parse import parse_qsl, urlencode, urlsplit

import ipywidgets as widgets
import pytest
import requests

from nb_oauth2.auth import registry
from nb_oauth2.core.errors import IssuerMismatch, LoginCancelled
from nb_oauth2.core.flows import LegacyGrantWarning
from nb_oauth2.auth.attempt import LoginAttempt
from nb_oauth2.core.loopback import LoopbackPortBusy
from nb_oauth2.jupyter.widgets import LoginWidget

PASSWORD = "wonderland"


@pytest.fixture(autouse=True)
def demo(demo_provider, monkeypatch):
    """The 'demo' profile uses the session's demo provider; the kernel looks local."""
    registry._state().demo = demo_provider
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "SSH_CONNECTION", "SSH_CLIENT", "CODESPACES", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    warnings.simplefilter("ignore", LegacyGrantWarning)
    return demo_provider


def _widget(flow: str | None = None, via: str = "paste", **kw) -> LoginWidget:
    return LoginWidget(LoginAttempt("demo", flow=flow), via=via, **kw)


def _href(widget: LoginWidget) -> str:
    return html.unescape(re.search(r'href="([^"]+)"', widget._link.value).group(1))


def _paste(widget: LoginWidget, text: str) -> None:
    widget._paste.value = text
    widget._submit.click()


def _with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def _all_widgets(widget: LoginWidget) -> list[widgets.Widget]:
    found = [v for v in vars(widget).values() if isinstance(v, widgets.Widget)]
    stack = list(found)
    while stack:
        item = stack.pop()
        for child in getattr(item, "children", ()):
            if child not in found:
                found.append(child)
                stack.append(child)
    return found


def assert_no_secret_in_state(widget: LoginWidget, *secrets: str) -> None:
    """Case 39: no token, code, pasted URL or password in any widget's synced state."""
    states = [str(w.get_state()) for w in _all_widgets(widget)] + [str(widget._repr_mimebundle_()), repr(widget)]
    for secret in filter(None, secrets):
        for state in states:
            assert secret not in state


def _token_secrets() -> list[str]:
    token = registry.session("demo").token_info
    return [token.access_token, token.refresh_token or ""]


def _wait(predicate, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert predicate()


def test_paste_back_signs_in_and_clears_everything(demo):
    """Case 39: after a paste-back login the box is cleared, the inputs closed, the status safe."""
    w = _widget()
    seen = []
    w.on_success(seen.append)
    assert w.phase == "waiting" and w.via == "paste"
    redirect = demo.driver.authorize(_href(w))
    _paste(w, redirect)
    assert w.phase == "done"
    w.join(5)  # the user's name arrives from the userinfo endpoint in the background
    assert re.search(r"Signed in as profile demo \(Alice Liddell \(alice\), until \d\d:\d\d, renews by itself; "
                     r"sha256:[0-9a-f]{8}\)", w.status_text)
    assert w._paste.value == "" and w._paste.comm is None and w._submit.comm is None
    assert w.box.children == (w._title, w._status)
    assert seen == [registry.session("demo")]
    code = dict(parse_qsl(urlsplit(redirect).query))["code"]
    assert_no_secret_in_state(w, code, redirect, *_token_secrets())


def test_link_opens_a_new_tab_without_referrer_or_opener():
    w = _widget()
    assert 'target="_blank" rel="noopener noreferrer"' in w._link.value
    assert "nb-oauth2-link" in w._link._dom_classes
    for name in ("_paste", "_submit", "_cancel", "_status"):
        assert any(c.startswith("nb-oauth2-") for c in getattr(w, name)._dom_classes)


@pytest.mark.parametrize("garbage", ["hello", "javascript:alert(1)", "x" * 50_000, "   "])
def test_garbage_is_shown_inline_and_the_login_stays_usable(demo, garbage):
    """Case 1: garbage gives an inline error, the paste box is cleared, the same login still completes."""
    w = _widget()
    _paste(w, garbage)
    assert w.phase == "waiting"
    assert "redirect URL" in w.status_text or "Paste the address" in w.status_text
    assert w._paste.value == ""
    assert len(w.status_text) < 600
    _paste(w, demo.driver.authorize(_href(w)))
    assert w.phase == "done"


def test_wrong_state_is_rejected_before_any_token_request(demo):
    """Case 2: a redirect with another state is refused inline; nothing reaches the token endpoint."""
    w = _widget()
    redirect = demo.driver.authorize(_href(w))
    before = demo.token_requests
    _paste(w, _with_param(redirect, state="forged-state-value"))
    assert w.phase == "waiting"
    assert "state" in w.status_text.lower()
    assert demo.token_requests == before
    _paste(w, redirect)
    assert w.phase == "done"


def test_missing_state_and_duplicate_code_are_refused(demo):
    """Case 3."""
    w = _widget()
    redirect = demo.driver.authorize(_href(w))
    parts = urlsplit(redirect)
    no_state = parts._replace(query="&".join(p for p in parts.query.split("&") if not p.startswith("state="))).geturl()
    _paste(w, no_state)
    assert "state" in w.status_text.lower() and w.phase == "waiting"
    _paste(w, redirect + "&code=again")
    assert "twice" in w.status_text and w.phase == "waiting"


def test_denied_authorization_is_shown_escaped(demo):
    """Case 4: error=access_denied with the right state fails the login; the description is HTML-escaped."""
    w = _widget()
    redirect = demo.driver.authorize(_href(w), approve=False)
    _paste(w, _with_param(redirect, error_description="<script>alert(1)</script>"))
    assert w.phase == "failed"
    assert "access_denied" in w.status_text
    assert "<script>" not in w.status_text and "&lt;script&gt;" in w.status_text


@pytest.mark.parametrize("iss", ["https://evil.example", None])
def test_error_redirect_from_another_issuer_keeps_the_login(demo, iss):
    """Case 53: an error redirect with a wrong (or, the demo advertising RFC 9207, no) iss is shown
    as a mix-up, not a denial; the login keeps waiting and the real redirect completes."""
    w = _widget()
    state = dict(parse_qsl(urlsplit(_href(w)).query))["state"]
    forged = {"error": "access_denied", "state": state, **({"iss": iss} if iss else {})}
    _paste(w, f"{w.step.redirect_uri}?{urlencode(forged)}")
    assert w.phase == "waiting" and w.attempt.phase == "waiting"
    assert isinstance(w.attempt.error, IssuerMismatch) and "access_denied" not in w.status_text
    _paste(w, demo.driver.authorize(_href(w)))
    assert w.phase == "done"


def test_bare_code_is_accepted_while_pkce_is_pending(demo):
    """Case 6: a bare code completes a pending PKCE login."""
    w = _widget()
    redirect = demo.driver.authorize(_href(w))
    code = dict(parse_qsl(urlsplit(redirect).query))["code"]
    _paste(w, f'  "{code}"  ')
    assert w.phase == "done"
    assert_no_secret_in_state(w, code, *_token_secrets())


@pytest.mark.parametrize("text", ["undefined", "clipboard", "[object Object]", "Copy the code here please"])
def test_pasted_text_that_is_no_code_keeps_the_login(demo, text):
    """Case 54: text that cannot be a code is refused inline, nothing reaches the token endpoint,
    and the same login then completes."""
    w = _widget()
    before = demo.token_requests
    _paste(w, text)
    assert w.phase == "waiting" and "not a redirect URL" in w.status_text
    assert demo.token_requests == before
    _paste(w, demo.driver.authorize(_href(w)))
    assert w.phase == "done" and demo.token_requests == before + 1


def test_redirect_from_an_earlier_login_is_refused(demo):
    """Case 9: a URL from another (earlier) login run does not complete this one."""
    first = _widget()
    old = demo.driver.authorize(_href(first))
    _paste(first, old)
    second = _widget()
    _paste(second, old)
    assert second.phase == "waiting"
    assert "login" in second.status_text.lower()


def test_auto_capture_through_the_loopback_catcher(demo):
    """Cases 42/43: the redirect reaches the catcher, the login completes, the port closes."""
    w = _widget(via="loopback")
    assert w.via == "loopback" and w.attempt.catcher is not None
    assert "loopback" in w._method.value
    redirect = demo.driver.authorize(_href(w))
    assert redirect.startswith(w.attempt.catcher.loopback_redirect_uri + "?")
    page = requests.get(redirect, timeout=5)
    assert page.status_code == 200 and "Return to the notebook" in page.text
    w.join(5)
    assert w.phase == "done"
    assert w.attempt.catcher.closed
    assert_no_secret_in_state(w, redirect, *_token_secrets())


def test_auto_capture_leaves_paste_back_as_fallback(demo):
    """The paste box still works while the catcher waits; the catcher is closed afterwards."""
    w = _widget(via="auto")
    assert w.via == "loopback" and "local Jupyter" in w.via_reason
    _paste(w, demo.driver.authorize(_href(w)))
    assert w.phase == "done"
    w.join(2)
    assert w.attempt.catcher.closed


def test_busy_port_falls_back_to_paste_back():
    """Case 41: the catcher cannot listen: paste-back is offered and the reason shown."""
    def busy():
        raise LoopbackPortBusy("Cannot listen on 127.0.0.1 port 8765 (Address already in use).")

    w = _widget(via="loopback", catcher_factory=busy)
    assert w.via == "paste" and "8765" in w.via_reason
    assert "paste" in w._method.value


def test_remote_kernel_offers_paste_back(monkeypatch):
    """Case 43: over SSH the kernel's loopback is not the browser's: paste-back, with the reason."""
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
    w = _widget(via="auto")
    assert w.via == "paste" and "SSH" in w._method.value and w.attempt.catcher is None


def test_cancel_closes_the_catcher_and_the_inputs():
    """Case 44: Cancel stops the loopback wait at once; no thread or port left."""
    w = _widget(via="loopback")
    w._cancel.click()
    w.join(1)
    assert w.phase == "cancelled"
    assert all(not t.is_alive() for t in w._threads)
    assert w.attempt.catcher.closed
    assert "cancelled" in w.status_text


def test_implicit_grant_pastes_back_and_clears_the_box(demo):
    """Case 5: the token in the fragment is read after the state check; the box is cleared at once."""
    w = _widget(flow="implicit", via="auto")
    assert w.via == "paste" and "fragment" in w.via_reason
    redirect = demo.driver.authorize(_href(w))
    assert "#" in redirect
    _paste(w, redirect)
    assert w.phase == "done" and w._paste.value == ""
    assert_no_secret_in_state(w, redirect, *_token_secrets())


def test_device_panel_shows_code_and_completes_in_background(demo):
    """The device panel does not block; approving the code signs in."""
    w = _widget(flow="device")
    step = w.step
    assert w.phase == "waiting"
    assert step.user_code in w._user_code.value
    assert html.escape(step.verification_uri_complete) in w._link.value
    _wait(lambda: "expires in" in w._countdown.value, 3)
    demo.driver.approve_device(step.user_code)
    _wait(lambda: w.phase == "done", 15)
    assert "Signed in as profile demo" in w.status_text
    w.join(3)
    assert_no_secret_in_state(w, *_token_secrets())


def test_device_cancel_ends_polling_at_once():
    """Case 44: Cancel ends the device polling within 1 s; the login is cancelled."""
    w = _widget(flow="device")
    time.sleep(0.3)
    started = time.monotonic()
    w._cancel.click()
    w.join(2)
    assert all(not t.is_alive() for t in w._threads)
    assert w.phase == "cancelled" and w.attempt.phase == "cancelled"
    assert isinstance(w.attempt.error, LoginCancelled) or w.attempt.phase == "cancelled"
    assert time.monotonic() - started < 5  # generous bound; the real wait is one poll step


def test_password_form_is_cleared_and_the_password_kept_nowhere(demo):
    """Case 39: username and password are cleared on click, never stay in a trait."""
    w = _widget(flow="password")
    assert "nb-oauth2-password" in w._password._dom_classes
    w._username.value = "alice"
    w._password.value = PASSWORD
    w._signin.click()
    assert w.phase == "done"
    assert w._password.value == "" and w._username.value == ""
    assert w._password.comm is None
    assert_no_secret_in_state(w, PASSWORD, *_token_secrets())


def test_wrong_password_fails_with_a_message():
    w = _widget(flow="password")
    w._username.value = "alice"
    w._password.value = "not-the-password"
    w._signin.click()
    assert w.phase == "failed"
    assert "not-the-password" not in w.status_text
    assert w._password.value == ""


def test_client_credentials_shows_status_only():
    w = _widget(flow="client_credentials")
    assert w.phase == "done"
    assert "Signed in as profile demo" in w.status_text
    assert w.box.children == (w._title, w._status)


def test_display_bundle_has_a_widget_view_and_a_text_fallback(demo):
    w = _widget()
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "Open http://" in bundle["text/plain"] and "paste back" in bundle["text/plain"]


def test_jupyterhub_auto_capture_goes_through_jupyter_server_proxy(monkeypatch):
    """Under JupyterHub the redirect URI is the hub's proxied path to the catcher's port."""
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    monkeypatch.setenv("NB_OAUTH2_PUBLIC_URL", "https://hub.example.org/user/alice/")
    monkeypatch.setattr("nb_oauth2.core.loopback._jupyter_server_proxy_available", lambda: True)
    w = _widget(via="auto")
    try:
        assert w.via == "proxy"
        expected = f"https://hub.example.org/user/alice/proxy/{w.attempt.catcher.port}/callback"
        assert w.attempt.redirect_uri == expected == w.step.redirect_uri
        assert dict(parse_qsl(urlsplit(_href(w)).query))["redirect_uri"] == expected
    finally:
        w.cancel()


def test_jupyterhub_without_a_public_url_falls_back_to_paste(monkeypatch):
    """Case 43: the hub's address is unknown: paste-back, and how to enable auto-capture."""
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    for name in ("NB_OAUTH2_PUBLIC_URL", "JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("nb_oauth2.core.loopback._jupyter_server_proxy_available", lambda: True)
    w = _widget(via="auto")
    assert w.via == "paste" and "NB_OAUTH2_PUBLIC_URL" in w.via_reason and w.attempt.catcher is None


# -- case 60: a device verification address that is not http(s) is never a link ----------------

HOSTILE_URIS = ["javascript:alert(document.cookie)", "JavaScript:alert(1)", " javascript:alert(1)",
                "java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
                "file:///etc/passwd", "//evil.example/device", "device", "https:evil", "http:///no-host"]


def _device_widget(scripted, **authorization) -> LoginWidget:
    from nb_oauth2 import ClientAuth, Provider
    from nb_oauth2.auth.config import Profile
    from nb_oauth2.auth.attempt import LoginAttempt
    from tests.scripted_server import Reply

    body = {"device_code": "dc-123456789", "user_code": "ABCD-EFGH", "expires_in": 600, "interval": 5,
            **authorization}
    scripted.script("/device", [Reply(200, body)])
    scripted.script("/token", [Reply(400, {"error": "authorization_pending"})])
    provider = Provider(name="hostile", token_endpoint=scripted.url + "/token",
                        device_authorization_endpoint=scripted.url + "/device")
    profile = Profile(name="hostile", provider=provider, client=ClientAuth("device-client"), flow="device_code")
    return LoginWidget(LoginAttempt(profile), via="device")


def _html_of(widget: LoginWidget) -> str:
    """Every piece of HTML the widget shows (its HTML children and any text/html it displays)."""
    parts = [w.value for w in _all_widgets(widget) if isinstance(w, widgets.HTML)]
    return "\n".join(parts + [str(widget._repr_mimebundle_().get("text/html", ""))])


@pytest.mark.parametrize("uri", HOSTILE_URIS)
@pytest.mark.parametrize("field", ["verification_uri", "verification_uri_complete"])
def test_non_http_verification_uri_is_shown_as_text_never_as_a_link(scripted, field, uri):
    """Case 60: a javascript:/data:/file:/relative verification address from the device endpoint
    is escaped text with a warning; only an http(s) address becomes an href."""
    authorization = {"verification_uri": "https://idp.example/device", field: uri}
    w = _device_widget(scripted, **authorization)
    try:
        assert w.phase == "waiting" and w.step.user_code == "ABCD-EFGH"
        shown = _html_of(w)
        everything = shown + str(w._repr_mimebundle_())
        hrefs = [html.unescape(h) for h in re.findall(r"href\s*=\s*[\"']([^\"']*)", everything, flags=re.I)]
        assert all(h.startswith(("https://", "http://")) and "script" not in h.lower() for h in hrefs)
        assert hrefs == ([] if field == "verification_uri" else ["https://idp.example/device"])
        assert "not an http(s) web address" in w._link.value
        assert "<script>" not in shown
        assert "not a web address" in repr(w) or field == "verification_uri_complete"
    finally:
        w.cancel()
        w.join(2)


def test_http_verification_uris_stay_links(scripted):
    """Case 60 (control): http(s) verification addresses are still links, the complete one first."""
    complete = "https://idp.example/device?user_code=ABCD-EFGH"
    w = _device_widget(scripted, verification_uri="https://idp.example/device", verification_uri_complete=complete)
    try:
        assert _href(w) == complete and "not an http(s)" not in w._link.value
    finally:
        w.cancel()
        w.join(2)


def test_jupyterhub_without_a_public_url_the_demo_auto_captures_through_the_proxy(monkeypatch):
    """Issue 16: a default hub (no public URL): the demo's redirect reaches the catcher through jupyter-server-proxy."""
    from nb_oauth2 import demo as demo_pkg
    from nb_oauth2.core.providers import NOTEBOOK_ORIGIN

    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    for name in ("NB_OAUTH2_PUBLIC_URL", "JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("nb_oauth2.core.loopback._jupyter_server_proxy_available", lambda: True)
    with demo_pkg.start() as proxied:
        registry._state().demo = proxied
        w = _widget(via="auto")
        try:
            port = w.attempt.catcher.port
            assert w.via == "proxy" and w.attempt.redirect_uri == f"{NOTEBOOK_ORIGIN}/user/alice/proxy/{port}/callback"
            location = proxied.driver.authorize(_href(w))  # the browser's part, on the proxied pages
            path = f"/user/alice/proxy/{port}/callback"
            assert location.startswith(path + "?")
            # what jupyter-server-proxy sends on: the hub's Host, the path without the prefix, its prefix header
            resp = requests.get(f"http://127.0.0.1:{port}/callback?{urlsplit(location).query}", timeout=5,
                                headers={"Host": "127.0.0.1:8000", "X-Forwarded-Prefix": f"/user/alice/proxy/{port}"})
            assert resp.status_code == 200
            _wait(lambda: w.phase == "done")
            assert "Signed in as profile demo" in w.status_text
        finally:
            w.cancel()
