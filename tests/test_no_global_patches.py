"""Importing nb_oauth2 leaves http.client and oauthlib as they were; its loopback-http permission is scoped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from oauthlib.oauth2 import WebApplicationClient
from oauthlib.oauth2.rfc6749.errors import InsecureTransportError
from requests_oauthlib import OAuth2Session

import nb_oauth2 as oa
from nb_oauth2.core.transport import loopback_http_allowed

_PROBE = """
import json, sys, importlib, http.client
names = ("oauthlib.oauth2.rfc6749.parameters", "oauthlib.oauth2.rfc6749.clients.base",
         "oauthlib.oauth2.rfc8628.clients.device", "requests_oauthlib.oauth2_session",
         "requests_oauthlib.oauth2_auth", "oauthlib.oauth2")
before = {n: id(importlib.import_module(n).is_secure_transport) for n in names}
import nb_oauth2, nb_oauth2.auth.session, nb_oauth2.core.flows, nb_oauth2.auth.attempt, nb_oauth2.frames.fetch, nb_oauth2.auth.store
after = {n: id(importlib.import_module(n).is_secure_transport) for n in names}
print(json.dumps({"print_in_http_client": "print" in http.client.__dict__,
                  "changed": sorted(n for n in names if before[n] != after[n])}))
"""


def _fresh_python(code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OAUTHLIB_INSECURE_TRANSPORT"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_leaves_http_client_and_oauthlib_untouched():
    """A fresh interpreter: after `import nb_oauth2` (and its session, flow and login modules) http.client
    has no module-level print and every is_secure_transport oauthlib's modules bound is the same object."""
    result = _fresh_python(_PROBE)
    assert result == {"print_in_http_client": False, "changed": []}


def test_http_client_redaction_is_an_explicit_opt_in():
    """install_log_redaction(http_client=True) is the one documented way to mask http.client's debug prints."""
    code = ("import json, http.client, nb_oauth2; a = 'print' in http.client.__dict__;"
            "nb_oauth2.install_log_redaction(http_client=True);"
            "print(json.dumps({'before': a, 'after': 'print' in http.client.__dict__}))")
    assert _fresh_python(code) == {"before": False, "after": True}


@pytest.fixture
def no_insecure_env(monkeypatch):
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)


def _refusals(demo, token: dict) -> list[str]:
    """What plain oauthlib/requests-oauthlib code does with the demo's http://127.0.0.1 endpoints."""
    client_id = demo.clients["public"].client_id
    attempts = {
        "oauthlib authorization URL": lambda: WebApplicationClient(client_id).prepare_request_uri(
            demo.url + "/authorize", redirect_uri=demo.callback_url),
        "requests-oauthlib authorization_url": lambda: OAuth2Session(
            client_id, redirect_uri=demo.callback_url).authorization_url(demo.url + "/authorize"),
        "requests-oauthlib fetch_token": lambda: OAuth2Session(client_id).fetch_token(
            demo.url + "/token", code="x", include_client_id=True),
        "requests-oauthlib get": lambda: OAuth2Session(client_id, token=token).get(demo.url + "/userinfo"),
    }
    refused = []
    for name, attempt in attempts.items():
        try:
            attempt()
        except InsecureTransportError:
            refused.append(name)
    return refused


ALL_REFUSED = ["oauthlib authorization URL", "requests-oauthlib authorization_url", "requests-oauthlib fetch_token",
               "requests-oauthlib get"]


def test_plain_requests_oauthlib_still_refuses_loopback_http_after_nb_oauth2_signed_in(demo_provider,
                                                                                       no_insecure_env):
    """nb_oauth2's own flows and Session work on the demo's loopback http, and afterwards plain
    oauthlib/requests-oauthlib code in the same process still refuses that http (as without nb_oauth2)."""
    demo = demo_provider
    session = oa.login("scoped", issuer=demo.issuer, client_id=demo.clients["public"].client_id,
                       browser=demo.driver.authorize)
    assert session.get(demo.url + "/userinfo").status_code == 200
    session.auto_refresh = False  # requests-oauthlib's own request/add_token path, inside the scope
    assert session.get(demo.url + "/userinfo").status_code == 200
    assert _refusals(demo, dict(session.token)) == ALL_REFUSED


def test_the_scope_is_per_thread(demo_provider, no_insecure_env):
    """While one thread is inside nb_oauth2's scope, plain code in another thread is still refused."""
    token = {"access_token": "not-a-real-token", "token_type": "Bearer"}
    inside, done, seen = threading.Event(), threading.Event(), []

    def nb_call() -> None:
        with loopback_http_allowed():
            seen.append(WebApplicationClient("c").prepare_request_uri(demo_provider.url + "/authorize"))
            inside.set()
            done.wait(30)

    worker = threading.Thread(target=nb_call)
    worker.start()
    try:
        assert inside.wait(30) and seen[0].startswith(demo_provider.url)
        assert _refusals(demo_provider, token) == ALL_REFUSED
    finally:
        done.set()
        worker.join(30)


def test_outside_the_scope_oauthlib_keeps_its_own_answer_with_the_env_switch(monkeypatch):
    """The wrapper, once installed, answers as oauthlib does outside the scope (the env switch included)."""
    from oauthlib.oauth2.rfc6749 import parameters

    with loopback_http_allowed():
        pass  # the lazy wrapper is in place from here on
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    assert parameters.is_secure_transport("http://example.com/x")
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT")
    assert not parameters.is_secure_transport("http://127.0.0.1:5/x")
    assert parameters.is_secure_transport("https://idp.example/x")
