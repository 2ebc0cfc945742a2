"""One answer to "what redirect URI do I register?" per environment (issue 16)."""

from __future__ import annotations

import sys

import pytest

from nb_oauth2.cli.main import main
from nb_oauth2.core.redirect_advice import DEFAULT_REDIRECT_URI
from nb_oauth2.core.redirect_advice import redirect_uri_advice

_ENV = ("JUPYTERHUB_SERVICE_PREFIX", "SSH_CONNECTION", "SSH_CLIENT", "CODESPACES", "KUBERNETES_SERVICE_HOST",
        "NB_OAUTH2_PUBLIC_URL", "JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_HOST")


@pytest.fixture
def env(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr("nb_oauth2.core.loopback._jupyter_server_proxy_available", lambda: True)
    return monkeypatch


def _text() -> str:
    return "\n".join(redirect_uri_advice())


def test_local_jupyter_auto_captures_on_any_loopback_port(env):
    text = _text()
    assert text.startswith("This environment: loopback")
    assert "http://127.0.0.1:<free port>/callback" in text and f"Register {DEFAULT_REDIRECT_URI}" in text


def test_hub_without_a_public_url_demo_needs_nothing_others_paste_back(env):
    env.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    text = _text()
    assert text.startswith("This environment: proxy")
    assert "Demo provider: nothing to register" in text and "/user/alice/proxy/<port>/callback" in text
    assert f"paste-back: register {DEFAULT_REDIRECT_URI}" in text and "NB_OAUTH2_PUBLIC_URL" in text


def test_hub_with_a_public_url_offers_the_proxied_uri(env):
    env.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    env.setenv("NB_OAUTH2_PUBLIC_URL", "https://hub.example.org/user/alice/")
    text = _text()
    assert "register https://hub.example.org/user/alice/proxy/<port>/callback" in text
    assert f"--via paste and register {DEFAULT_REDIRECT_URI}" in text


def test_hub_without_jupyter_server_proxy_pastes_back_and_says_how_to_auto_capture(env):
    env.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    env.setattr("nb_oauth2.core.loopback._jupyter_server_proxy_available", lambda: False)
    text = _text()
    assert text.startswith("This environment: paste") and "install jupyter-server-proxy" in text


def test_ssh_pastes_back(env):
    env.setenv("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
    text = _text()
    assert text.startswith("This environment: paste") and f"register {DEFAULT_REDIRECT_URI}" in text


@pytest.mark.parametrize("prefix", [None, "/user/alice/"])
def test_cli_prints_the_same_answer(env, capsys, prefix):
    if prefix:
        env.setenv("JUPYTERHUB_SERVICE_PREFIX", prefix)
    assert main(["redirect-uri"]) == 0
    assert capsys.readouterr().out == _text() + "\n"


@pytest.mark.parametrize("prefix", [None, "/user/alice/"])
def test_magic_prints_the_same_answer(env, capsys, prefix):
    from IPython.testing import globalipapp

    if prefix:
        env.setenv("JUPYTERHUB_SERVICE_PREFIX", prefix)
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "nb_oauth2")
    capsys.readouterr()
    shell.run_line_magic("oauth2", "redirect-uri")
    assert capsys.readouterr().out == _text() + "\n"


@pytest.mark.parametrize("setting, widget_via", [
    ({}, "loopback"),
    ({"SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"}, "paste"),
    ({"JUPYTERHUB_SERVICE_PREFIX": "/user/alice/"}, "paste"),
    ({"JUPYTERHUB_SERVICE_PREFIX": "/user/alice/", "NB_OAUTH2_PUBLIC_URL": "https://hub.example.org/user/alice/"},
     "proxy"),
])
def test_the_widget_does_what_the_advice_says_for_a_real_provider(env, setting, widget_via):
    """The third answer: the login widget of a (non-demo) provider captures or pastes back as the advice says."""
    import nb_oauth2 as oa
    from nb_oauth2 import Provider
    from nb_oauth2.jupyter.widgets import LoginWidget

    for name, value in setting.items():
        env.setenv(name, value)
    advice = _text()
    provider = Provider(name="acme", authorization_endpoint="https://as.example/authorize",
                        token_endpoint="https://as.example/token")
    widget = LoginWidget(oa.LoginAttempt("acme", provider=provider, client_id="cid"), via="auto")
    try:
        assert widget.via == widget_via
        if widget_via == "paste":
            assert "paste-back" in advice.lower() and f"register {DEFAULT_REDIRECT_URI}" in advice
        elif widget_via == "proxy":
            uri = widget.attempt.redirect_uri
            assert uri.startswith("https://hub.example.org/user/alice/proxy/") and uri.endswith("/callback")
            assert "register https://hub.example.org/user/alice/proxy/<port>/callback" in advice
        else:
            assert widget.attempt.redirect_uri.startswith("http://127.0.0.1:")
            assert "Auto-capture" in advice and "127.0.0.1:<free port>/callback" in advice
    finally:
        widget.cancel()
