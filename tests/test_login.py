"""LoginAttempt: the UI-free pending login that widgets, magics and scripts drive."""

from __future__ import annotations

import threading

import pytest

import nb_oauth2 as oa
from nb_oauth2.core.errors import LoginCancelled, NoLoginInProgress, StateMismatch


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
    from nb_oauth2.sessions import registry

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
