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


SECRET_BEARING = ["token", "access_token", "refresh_token", "id_token", "code", "device_code", "code_verifier",
                  "key", "api_key", "apikey", "API-Key", "secret", "client_secret", "signature", "sig", "password",
                  "passwd", "assertion", "client_assertion", "state", "nonce", "private_token", "X-Amz-Signature",
                  "X-Amz-Credential", "X-Amz-Security-Token", "x-api-key", "app_secret", "secret_param"]
PLAIN = ["page", "per_page", "filter", "q", "sort", "limit", "offset", "cursor", "since", "user", "fields",
         "country_code", "monkey", "include"]


@pytest.mark.parametrize("name", SECRET_BEARING)
def test_redact_url_masks_secret_bearing_parameters(name):
    """Issue 12 item 8: tokens, codes, keys, secrets, signatures, passwords, assertions are masked in URLs."""
    shown = redact_url(f"https://api.example/x?page=2&{name}=VALUE4secret9&per_page=50")
    assert "VALUE4secret9" not in shown and f"{name}=***" in shown
    assert "page=2" in shown and "per_page=50" in shown


@pytest.mark.parametrize("name", PLAIN)
def test_redact_url_keeps_parameters_that_hold_no_secret(name):
    """Issue 12 item 8: page=, per_page=, filter= ... stay readable (0.1 showed filter=***)."""
    shown = redact_url(f"https://api.example/x?{name}=visible-value&token=t0ken-value")
    assert f"{name}=visible-value" in shown and "t0ken-value" not in shown


def test_redact_url_keeps_templates_and_dollars_readable():
    """The URL of %oauth2 get ...?filter=$y reads back as typed."""
    assert redact_url("https://api.example/api/{x}?filter=$y") == "https://api.example/api/{x}?filter=$y"


def test_a_registered_secret_is_masked_in_any_parameter_and_the_path():
    """Case 38: a registered secret is masked wherever it appears, whatever the parameter's name."""
    register_secret(CANARY_TOKEN)
    shown = redact_url(f"https://api.example/{CANARY_TOKEN}/x?filter={CANARY_TOKEN}&page=2")
    assert CANARY_TOKEN not in shown and "page=2" in shown


def test_redact_url_drops_userinfo_and_fragment():
    shown = redact_url("https://alice:pa55word@api.example/x?page=1#access_token=tok123456")
    assert "pa55word" not in shown and "alice" not in shown and "tok123456" not in shown and "page=1" in shown
