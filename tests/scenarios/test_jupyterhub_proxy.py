"""Under JupyterHub/Binder the browser reaches the demo only through jupyter-server-proxy.

Simulated here: JUPYTERHUB_SERVICE_PREFIX is set, the browser-facing links are
relative to the hub's origin, and the pasted redirect is the hub's absolute URL.
"""

from __future__ import annotations

import pytest

import nb_oauth2 as oa
from nb_oauth2 import demo
from nb_oauth2.errors import IssuerMismatch

HUB = "https://hub.example.org"
PREFIX = "/user/alice/"


@pytest.fixture
def hub_demo(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", PREFIX)
    with demo.start() as provider:
        yield provider


def browser_to_kernel(provider, path: str) -> str:
    """What jupyter-server-proxy does: {prefix}proxy/<port>/x -> http://127.0.0.1:<port>/x."""
    proxied = f"{PREFIX}proxy/{provider.port}"
    assert path.startswith(proxied), path
    return provider.url + path[len(proxied):]


def test_links_are_browser_relative_and_paste_back_completes(hub_demo, monkeypatch):
    from nb_oauth2 import demo_profile, registry

    monkeypatch.setattr(registry._state(), "demo", hub_demo, raising=False)
    assert demo_profile.running_demo() is hub_demo
    attempt = oa.prepare_login("demo")
    step = attempt.start()
    assert step.authorization_url.startswith(f"{PREFIX}proxy/{hub_demo.port}/authorize?")
    location = hub_demo.driver.authorize(browser_to_kernel(hub_demo, step.authorization_url))
    assert location.startswith(f"{PREFIX}proxy/{hub_demo.port}/callback?")  # relative: the hub's origin
    session = attempt.complete_redirect(HUB + location)
    assert session.get(hub_demo.url + "/userinfo").status_code == 200


def test_redirect_to_another_path_on_the_hub_is_still_a_mix_up(hub_demo, monkeypatch):
    from nb_oauth2 import registry

    monkeypatch.setattr(registry._state(), "demo", hub_demo, raising=False)
    attempt = oa.prepare_login("demo")
    step = attempt.start()
    location = hub_demo.driver.authorize(browser_to_kernel(hub_demo, step.authorization_url))
    with pytest.raises(IssuerMismatch):
        attempt.complete_redirect(HUB + location.replace("/callback", "/elsewhere"))
