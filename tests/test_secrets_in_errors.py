"""Secrets in errors (SECURITY_CASES 51, 52): tracebacks in every xmode, and servers that echo requests.

The token endpoint here is hostile in the most ordinary way: its ``error_description`` and
``error_uri`` echo the request it was sent (body and Authorization header), as some servers do
in debug mode. Every failure is shown through IPython's real traceback formatter.
"""

from __future__ import annotations

import base64
import signal
import threading
import time
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from IPython.testing import globalipapp

import nb_oauth2 as oa
from nb_oauth2 import ClientAuth, Provider
from nb_oauth2.core.errors import DeviceFlowError, LoginTimeout, OAuth2Error, ReauthRequired, TokenEndpointError
from nb_oauth2.core.redirect_advice import DEFAULT_REDIRECT_URI
from nb_oauth2.auth.session import Session
from nb_oauth2.core.token import Token
from tests.conftest import CANARY_CODE, CANARY_REFRESH, CANARY_SECRET, CANARY_TOKEN
from tests.scripted_server import Reply, Seen

pytestmark = pytest.mark.filterwarnings("ignore::nb_oauth2.LegacyGrantWarning")  # the password grant, on purpose

CANARY_PASSWORD = "canaryPASSWORD-5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
CANARY_DEVICE = "canaryDEVICE-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
CANARIES = (CANARY_TOKEN, CANARY_REFRESH, CANARY_SECRET, CANARY_CODE, CANARY_PASSWORD, CANARY_DEVICE)


def forms(secret: str) -> list[str]:
    """The raw secret and the forms it takes in URLs and Basic headers."""
    return [secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode().rstrip("=")]


def assert_no_secret(text: str) -> None:
    for secret in CANARIES:
        for form in forms(secret):
            assert form not in text, f"{secret[:12]}... leaked"


def echo(status: int = 400, error: str = "invalid_grant"):
    """A token endpoint that quotes the request back in its error (body and Authorization)."""
    def reply(seen: Seen) -> Reply:
        said = f"{seen.body} auth={seen.headers.get('Authorization', '')}"
        return Reply(status, {"error": error, "error_description": f"rejected: {said}",
                              "error_uri": f"https://as.example/debug?{seen.body}"})
    return reply


def provider(scripted) -> Provider:
    return Provider(name="echo", token_endpoint=scripted.url + "/token",
                    device_authorization_endpoint=scripted.url + "/device",
                    authorization_endpoint=scripted.url + "/authorize")


# -- the four failures -------------------------------------------------------------


def refresh_failure(scripted, monkeypatch):
    """A session whose refresh is refused; the cell calls the API."""
    scripted.script("/token", [echo(400, "invalid_grant")])
    prov = provider(scripted)
    client = ClientAuth("cid", CANARY_SECRET)
    token = Token.from_response({"access_token": CANARY_TOKEN, "refresh_token": CANARY_REFRESH, "expires_in": 3600},
                                received_at=time.time() - 7200)
    session = Session(name="echo", provider=prov, client=client, token=token)
    return {"session": session, "url": scripted.url + "/api"}, "session.get(url)", ReauthRequired


def password_failure(scripted, monkeypatch):
    """The password comes from the terminal prompt (getpass), the client secret from the environment."""
    scripted.script("/token", [echo(400, "invalid_request")])
    monkeypatch.setenv("NB_OAUTH2_PW_CLIENT_SECRET", CANARY_SECRET)
    monkeypatch.setattr("builtins.input", lambda prompt="": "alice")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": CANARY_PASSWORD)
    namespace = {"oa": oa, "prov": provider(scripted)}
    return namespace, "oa.login('pw', provider=prov, client_id='cid', flow='password')", TokenEndpointError


def code_exchange_failure(scripted, monkeypatch):
    """The browser's part returns a redirect holding the code; the exchange is refused."""
    scripted.script("/token", [echo(400, "invalid_grant")])
    monkeypatch.setenv("NB_OAUTH2_CODE_CLIENT_SECRET", CANARY_SECRET)

    def browser(url: str) -> str:
        state = dict(parse_qsl(urlsplit(url).query))["state"]
        return f"{DEFAULT_REDIRECT_URI}?code={CANARY_CODE}&state={state}"

    namespace = {"oa": oa, "prov": provider(scripted), "browser": browser}
    return namespace, "oa.login('code', provider=prov, client_id='cid', browser=browser)", TokenEndpointError


def device_poll_failure(scripted, monkeypatch):
    scripted.script("/device", [Reply(200, {"device_code": CANARY_DEVICE, "user_code": "WXYZ-1234",
                                            "verification_uri": scripted.url + "/verify", "interval": 0.05})])
    scripted.script("/token", [echo(400, "server_error")])
    monkeypatch.setenv("NB_OAUTH2_DEV_CLIENT_SECRET", CANARY_SECRET)
    namespace = {"oa": oa, "prov": provider(scripted), "quiet": lambda step: None}
    return namespace, "oa.login('dev', provider=prov, client_id='dev', flow='device', on_device_code=quiet)", \
        DeviceFlowError


FAILURES = [refresh_failure, password_failure, code_exchange_failure, device_poll_failure]


@pytest.fixture
def shell():
    ip = globalipapp.start_ipython() or globalipapp.get_ipython()
    yield ip
    ip.run_line_magic("xmode", "Context")


@pytest.mark.parametrize("mode", ["Plain", "Context", "Verbose", "Minimal"])
@pytest.mark.parametrize("failure", FAILURES, ids=lambda f: f.__name__)
def test_tracebacks_of_failed_grants_hold_no_secret_in_any_xmode(shell, scripted, capsys, monkeypatch, failure,
                                                                  mode):
    """Case 51: refresh, password grant, code exchange and device polling fail in a real IPython shell;
    its traceback formatter (Verbose prints arguments and the failing lines' variables) shows no secret.
    The cells hold no secret themselves: they come from the environment, a prompt or the browser."""
    namespace, cell, expected = failure(scripted, monkeypatch)
    shell.user_ns.update(namespace)
    shell.run_line_magic("xmode", mode)
    capsys.readouterr()
    result = shell.run_cell(cell)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert isinstance(result.error_in_exec, expected)
    assert type(result.error_in_exec).__name__ in text  # the error really was shown
    assert_no_secret(text)
    shell.run_line_magic("tb", "")  # nb_oauth2's errors show short; %tb prints the full traceback in this xmode
    full = capsys.readouterr()
    full_text = full.out + full.err
    assert type(result.error_in_exec).__name__ in full_text
    if mode != "Minimal":
        assert "Traceback" in full_text or "----" in full_text  # frames, not only the one-line summary
    assert_no_secret(full_text)


@pytest.mark.parametrize("failure", FAILURES, ids=lambda f: f.__name__)
def test_echoed_request_is_redacted_in_str_repr_and_args(scripted, monkeypatch, failure):
    """Case 52: a token endpoint whose error_description and error_uri echo the request (body, Basic
    header) -> the echoed secrets are redacted in the exception's str, repr, args and attributes."""
    namespace, cell, expected = failure(scripted, monkeypatch)
    with pytest.raises(expected) as info:
        exec(cell, dict(namespace))
    exc = info.value
    seen = [exc, *(e for e in (exc.__cause__, exc.__context__) if isinstance(e, OAuth2Error))]
    for error in seen:
        assert_no_secret(" ".join([str(error), repr(error), repr(error.args), str(error.description),
                                   str(error.uri), str(error.error)]))
    if not isinstance(exc, ReauthRequired):  # ReauthRequired speaks for itself; the others quote the server
        assert "rejected" in str(exc) and "***" in str(exc)


def test_keyword_secrets_of_login_are_masked_in_its_verbose_frame(scripted):
    """Case 51: client_secret= and password= passed as keywords (Python code) show masked in login's frame."""
    from IPython.core.ultratb import VerboseTB

    scripted.script("/token", [echo(400, "invalid_request")])
    try:
        oa.login("kw", provider=provider(scripted), client_id="cid", client_secret=CANARY_SECRET, flow="password",
                 username="alice", password=CANARY_PASSWORD)
    except TokenEndpointError as exc:
        ours = exc.__traceback__.tb_next  # this test's own frame holds the literals; the package's must not
        try:
            formatter = VerboseTB(theme_name="nocolor")  # IPython 9
        except TypeError:
            formatter = VerboseTB(color_scheme="NoColor")  # IPython 8 (Python 3.10)
        text = "\n".join(formatter.structured_traceback(type(exc), exc, ours))
    else:
        pytest.fail("the password grant should have failed")
    assert "login(" in text and "password=" in text
    assert_no_secret(text)


def test_echo_of_a_secret_never_registered_is_still_redacted(scripted):
    """Case 52: the redaction uses the request's own secrets, not only the process-wide registry."""
    from nb_oauth2.core.endpoint import Endpoints

    unregistered = "neverREGISTERED-" + "7" * 24
    scripted.script("/token", [echo(400, "invalid_grant")])
    endpoints = Endpoints(provider(scripted), ClientAuth("cid"))
    with pytest.raises(TokenEndpointError) as info:
        endpoints.token({"grant_type": "urn:example:custom", "assertion": unregistered})
    assert unregistered not in str(info.value) + repr(info.value.args) + str(info.value.uri)
    assert "urn%3Aexample%3Acustom" in str(info.value)  # public values stay readable


# -- a device login through oa.login() ends: timeout= and Ctrl-C -------------------


def device_server(scripted):
    scripted.script("/device", [Reply(200, {"device_code": CANARY_DEVICE, "user_code": "WXYZ-1234",
                                            "verification_uri": scripted.url + "/verify", "interval": 0.05,
                                            "expires_in": 600})])
    scripted.script("/token", [Reply(400, {"error": "authorization_pending"})])
    return dict(provider=provider(scripted), client_id="dev", flow="device", on_device_code=lambda step: None)


def test_device_login_gives_up_after_timeout_and_registers_nothing(scripted):
    options = device_server(scripted)
    started = time.monotonic()
    with pytest.raises(LoginTimeout, match="timeout=0.5"):
        oa.login("dev-timeout", timeout=0.5, **options)
    assert time.monotonic() - started < 5  # not the code's 600 s
    assert scripted.count("/token") >= 2
    assert oa.sessions() == []


def test_ctrl_c_ends_a_device_login_at_once_and_registers_nothing(scripted):
    """Case 44: the Stop button (SIGINT) during oa.login()'s device polling returns at once."""
    options = device_server(scripted)
    main = threading.main_thread().ident
    timer = threading.Timer(0.4, signal.pthread_kill, args=(main, signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        oa.login("dev-stop", **options)
    assert time.monotonic() - started < 60  # not the code's 600 s (a generous bound: the box may be loaded)
    time.sleep(0.3)  # a poll already on the wire when Ctrl-C came may still be counted (a loaded machine)
    polls = scripted.count("/token")
    time.sleep(0.5)  # ten polling intervals (0.05 s)
    assert scripted.count("/token") == polls  # nothing keeps polling behind the user's back
    assert oa.sessions() == []
