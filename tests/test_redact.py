"""Redaction of messages and logs (SECURITY_CASES 38)."""

from __future__ import annotations

import base64
import http.client
import logging

import pytest

import nb_oauth2 as oa
from nb_oauth2.core.redact import fingerprint, redact, redact_url, register_secret, snippet
from tests.conftest import CANARY_SECRET, CANARY_TOKEN


def test_registered_secrets_are_masked_raw_urlencoded_and_base64():
    register_secret(CANARY_SECRET + "/+=")
    raw = CANARY_SECRET + "/+="
    from urllib.parse import quote

    for text in (raw, quote(raw, safe=""), base64.b64encode(raw.encode()).decode()):
        assert CANARY_SECRET not in redact(f"x {text} y")


def test_secret_looking_values_are_masked_without_registration():
    text = 'Authorization: Bearer abcdefghijkl {"access_token": "zzzzzzzz", "refresh_token":"yyyyyyyy"} code=qqqqqqqq'
    out = redact(text)
    for secret in ("abcdefghijkl", "zzzzzzzz", "yyyyyyyy", "qqqqqqqq"):
        assert secret not in out


def test_redact_url_masks_query_and_drops_fragment():
    out = redact_url("https://api.example/x?code=abc123456&page=2#access_token=tok123456")
    assert "abc123456" not in out and "tok123456" not in out and "page=" in out


def test_snippet_is_short_and_single_line():
    assert len(snippet("a\n" * 500, 200)) <= 200 and "\n" not in snippet("a\nb")


def test_fingerprint_is_stable_and_not_the_secret():
    assert fingerprint(CANARY_TOKEN) == fingerprint(CANARY_TOKEN) and CANARY_TOKEN[:8] not in fingerprint(CANARY_TOKEN)


def test_debug_logs_of_every_library_hold_no_token(demo_provider, caplog, capsys, monkeypatch):
    """Case 38: DEBUG on root, requests_oauthlib, oauthlib, urllib3 and http.client -> no token captured
    (http.client's printed lines after the documented opt-in, install_log_redaction(http_client=True))."""
    monkeypatch.setattr(http.client, "print", print, raising=False)  # undone after the test: no global left
    oa.install_log_redaction(http_client=True)
    caplog.set_level(logging.DEBUG)
    for name in ("", "requests_oauthlib", "oauthlib", "urllib3", "nb_oauth2"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    old_level = http.client.HTTPConnection.debuglevel
    http.client.HTTPConnection.debuglevel = 1
    try:
        client = demo_provider.clients["public"]
        session = oa.login("logs", issuer=demo_provider.issuer, client_id=client.client_id,
                           browser=demo_provider.driver.authorize)
        session.get(demo_provider.url + "/userinfo")
        session.refresh()
        session.get(demo_provider.url + "/userinfo")
        # requests-oauthlib's own DEBUG line with the token dict (its issue #536):
        logging.getLogger("requests_oauthlib.oauth2_session").debug("Adding token %s to request.", session.token)
        logging.getLogger("requests_oauthlib.oauth2_session").debug("raw %s", dict(session.token))
    finally:
        http.client.HTTPConnection.debuglevel = old_level
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err
    token = session.token_info
    for secret in (token.access_token, token.refresh_token):
        assert secret and secret not in text
    assert caplog.records  # the loggers did log


@pytest.mark.parametrize("url", ["http://api.example:99999/x?token=abc", "http://api.example:abc/x?key=1"])
def test_redact_url_of_a_url_with_a_broken_port_still_gives_a_message(url):
    """Error messages about malformed URLs (case 58) must not fail while they are written."""
    shown = redact_url(url)
    assert shown.startswith("http://api.example:***/x") and "abc" not in shown.split("?")[1]


def test_a_long_running_kernel_keeps_the_newest_secrets_and_compiles_lazily():
    """A kernel renewing a short-lived token all day registers thousands of secrets: the registry is bounded,
    registering compiles nothing, the next redact() compiles once, and a secret still in use stays masked."""
    from nb_oauth2.core import redact as module

    kept = "still-in-use-refresh-" + "k" * 20
    register_secret(kept)
    before = module.compilations
    for i in range(3000):
        register_secret(f"short-lived-access-token-{i:06d}")
        if i % 500 == 0:
            register_secret(kept)  # every new Token carrying it registers it again
    assert module.compilations == before
    assert len(module._secrets) <= module.MAX_SECRETS
    text = f"a={kept} b=short-lived-access-token-002999"
    assert kept not in redact(text) and "002999" not in redact(text)
    assert module.compilations == before + 1
    redact(text)
    assert module.compilations == before + 1
