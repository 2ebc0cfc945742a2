"""Sessions register only on success: a cancelled or failed login leaves sessions() and the default as they were,
and the registry's advice names the profile (not the session name) and how to sign in again after a logout."""

from __future__ import annotations

import pytest

import nb_oauth2 as oa
from nb_oauth2.auth import registry
from nb_oauth2.auth.attempt import LoginAttempt
from nb_oauth2.core.errors import AuthorizationDenied, ConfigurationError, LoginCancelled
from nb_oauth2.jupyter.widgets import LoginWidget


@pytest.fixture(autouse=True)
def demo(demo_provider, monkeypatch):
    registry._state().demo = demo_provider
    for name in ("NB_OAUTH2_STORE", "NB_OAUTH2_DEMO_STORE", "NB_OAUTH2_DEMO_AUTOPILOT"):
        monkeypatch.delenv(name, raising=False)
    return demo_provider


def _before(demo):
    first = oa.login("demo", browser=demo.driver.authorize)
    return first, [s.name for s in oa.sessions()]


def test_a_cancelled_widget_login_leaves_the_registry_as_it_was(demo):
    """The issue's case: a login named pb2, then Cancel: pb2 is not listed, demo stays the default."""
    first, before = _before(demo)
    widget = LoginWidget(LoginAttempt("demo", name="pb2"), via="paste")
    widget.cancel()
    assert widget.attempt.phase == "cancelled"
    assert [s.name for s in oa.sessions()] == before and oa.session() is first
    with pytest.raises(ConfigurationError, match=r"nb_oauth2\.login\('demo', name='pb2'\)"):
        oa.session("pb2")


def test_a_denied_login_leaves_the_registry_as_it_was(demo):
    first, before = _before(demo)
    with pytest.raises(AuthorizationDenied):
        oa.login("demo", name="denied", browser=lambda url: demo.driver.authorize(url, approve=False))
    assert [s.name for s in oa.sessions()] == before and oa.session() is first


def test_a_timed_out_login_leaves_the_registry_as_it_was(demo):
    first, before = _before(demo)
    with pytest.raises(LoginCancelled):
        oa.login("demo", name="late", via="loopback", timeout=0.2)
    assert [s.name for s in oa.sessions()] == before and oa.session() is first


def test_after_logout_the_advice_is_how_to_sign_in_again(demo):
    oa.login("demo", name="pb2", flow="code", browser=demo.driver.authorize)
    oa.logout("pb2")
    with pytest.raises(ConfigurationError, match=r"logged out.*Sign in again with nb_oauth2\.login\('demo', "
                                                 r"name='pb2', flow='code'\)"):
        oa.session("pb2")
    assert registry.login_call("pb2") == "nb_oauth2.login('demo', name='pb2', flow='code')"
    assert registry.login_call("never") == "nb_oauth2.login(<profile>, name='never')"


def test_signing_in_again_after_logout_registers_the_session(demo):
    oa.login("demo", name="again", browser=demo.driver.authorize)
    oa.logout("again")
    again = oa.login("demo", name="again", browser=demo.driver.authorize)
    assert oa.session("again") is again


def test_a_session_not_signed_in_advises_its_profile_not_its_name(demo_provider):
    """Issue 12: 'run nb_oauth2.login('pb2')' failed when pb2 is a session name; the advice names the profile."""
    from nb_oauth2.auth.attempt import LoginAttempt
    from nb_oauth2.core.errors import ReauthRequired

    attempt = LoginAttempt("demo", name="pb2")
    with pytest.raises(ReauthRequired) as info:
        attempt.session.get(demo_provider.url + "/userinfo")
    assert "nb_oauth2.login('demo', name='pb2')" in info.value.message
    assert "nb_oauth2.login('pb2')" not in info.value.message
