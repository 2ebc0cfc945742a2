"""The login that waits: oa.login() / %oauth2 login in a notebook block the cell until the login is over.

Run in-process in a real IPython InteractiveShell made to look like a notebook kernel whose frontend
answers stdin (``shell.kernel._allow_stdin``, as ipykernel sets it per execute request), against the
demo provider. Another thread plays the user: the demo's driver completes the redirect, which reaches
the loopback catcher over HTTP, or approves the device code; the paste-back goes through the
frontend's stdin box (``getpass.getpass``, which ipykernel forwards to the frontend and which the
frontend masks, so the redirect is not kept in the notebook's outputs); Stop is a SIGINT to the main
thread, as ipykernel's interrupt sends.
"""

from __future__ import annotations

import queue
import signal
import threading
import types
import warnings

import pytest
import requests
from IPython.testing import globalipapp

import nb_oauth2 as oa
from nb_oauth2.auth import registry
from nb_oauth2.core.errors import LoginCancelled, LoginTimeout, ReauthRequired
from nb_oauth2.core.flows import LegacyGrantWarning
from nb_oauth2.jupyter import login_ui

WAIT = 30  # seconds a helper thread waits for the widget to appear (a bound, not a budget)


class Notebook:
    """The shell, the widgets login() displayed, and the user's stdin answers."""

    def __init__(self, shell, monkeypatch) -> None:
        self.shell = shell
        self.shown: queue.Queue = queue.Queue()
        self.prompts: list[str] = []
        self.answers: list = []
        monkeypatch.setattr(login_ui, "in_notebook", lambda: True)
        monkeypatch.setattr(shell, "kernel", types.SimpleNamespace(_allow_stdin=True), raising=False)
        monkeypatch.setattr("IPython.display.display", lambda obj, **kw: self.shown.put(obj))
        monkeypatch.setattr("getpass.getpass", self._stdin_box)

    def _stdin_box(self, prompt: str = "") -> str:
        self.prompts.append(prompt)
        answer = self.answers.pop(0) if self.answers else pytest.fail("an unexpected stdin prompt")
        return answer() if callable(answer) else answer

    def widget(self):
        return self.shown.get(timeout=WAIT)

    def run(self, code: str):
        result = self.shell.run_cell(code)
        return result.error_in_exec

    def in_background(self, target) -> threading.Thread:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def notebook(demo_provider, monkeypatch):
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    registry._state().demo = demo_provider
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "SSH_CONNECTION", "SSH_CLIENT", "CODESPACES", "KUBERNETES_SERVICE_HOST",
                 "NB_OAUTH2_STORE", "NB_OAUTH2_DEMO_STORE", "NB_OAUTH2_DEMO_AUTOPILOT"):
        monkeypatch.delenv(name, raising=False)
    shell.user_ns["oa"] = oa
    shell.user_ns.pop("x", None)  # the shell is the process's one IPython: an earlier test may have set x
    return Notebook(shell, monkeypatch)


def _href(widget) -> str:
    return widget.attempt.step.authorization_url


def test_loopback_login_blocks_the_cell_until_the_redirect_is_caught(notebook, demo_provider):
    """Run All: the login cell returns only once signed in, so the next cell can use the session."""
    seen = {}

    def user() -> None:
        widget = notebook.widget()
        seen["phase_while_waiting"] = widget.attempt.phase
        seen["waiting_cell"] = widget.waiting_cell  # no paste box or Cancel: their clicks would not arrive
        redirect = demo_provider.driver.authorize(_href(widget))
        seen["page"] = requests.get(redirect, timeout=10).status_code  # the browser follows it to the catcher

    thread = notebook.in_background(user)
    assert notebook.run("s = oa.login('demo', via='loopback')") is None
    thread.join(WAIT)
    session = notebook.shell.user_ns["s"]
    assert seen == {"phase_while_waiting": "waiting", "waiting_cell": True, "page": 200}
    assert session.is_authorized and oa.session() is session and oa.session("demo") is session
    assert notebook.run(f"status = s.get('{demo_provider.url}/userinfo').status_code") is None
    assert notebook.shell.user_ns["status"] == 200
    assert notebook.prompts == []  # a caught redirect asks nothing


def test_magic_login_waits_too(notebook, demo_provider):
    """%oauth2 login goes through the same waiting login."""
    notebook.shell.run_line_magic("load_ext", "nb_oauth2")
    thread = notebook.in_background(lambda: requests.get(
        demo_provider.driver.authorize(_href(notebook.widget())), timeout=10))
    assert notebook.run("%oauth2 login demo --via loopback") is None
    thread.join(WAIT)
    assert oa.session("demo").is_authorized


def test_device_login_blocks_until_the_code_is_approved(notebook, demo_provider):
    thread = notebook.in_background(lambda: demo_provider.driver.approve_device(notebook.widget().step.user_code))
    assert notebook.run("d = oa.login('demo', flow='device', name='dev')") is None
    thread.join(WAIT)
    assert notebook.shell.user_ns["d"].is_authorized and oa.session("dev").token_info is not None


def test_paste_back_goes_through_the_frontends_masked_stdin_box(notebook, demo_provider, capsys):
    """Paste-back without widget messages: the stdin prompt (getpass: the frontend masks and does not keep
    the text). Text that is not a redirect keeps the login waiting and the prompt comes back."""
    redirect = {}

    def paste() -> str:
        redirect["url"] = demo_provider.driver.authorize(_href(notebook.shown.queue[0]))
        return redirect["url"]

    notebook.answers = ["", "hello world", paste]
    assert notebook.run("p = oa.login('demo', via='paste', name='pasted')") is None
    out = capsys.readouterr().out
    assert oa.session("pasted").is_authorized
    assert len(notebook.prompts) == 3 and all(p == login_ui.PASTE_PROMPT for p in notebook.prompts)
    assert "Nothing was pasted" in out and "not a redirect URL" in out
    code = dict(p.split("=", 1) for p in redirect["url"].split("?", 1)[1].split("&"))["code"]
    assert code not in out and redirect["url"] not in out  # the redirect is never echoed


def test_implicit_paste_back_waits_too(notebook, demo_provider):
    warnings.simplefilter("ignore", LegacyGrantWarning)
    notebook.answers = [lambda: demo_provider.driver.authorize(_href(notebook.shown.queue[0]))]
    assert notebook.run("i = oa.login('demo', flow='implicit', name='imp')") is None
    assert oa.session("imp").is_authorized


def test_password_login_asks_the_stdin_boxes(notebook, monkeypatch):
    warnings.simplefilter("ignore", LegacyGrantWarning)
    monkeypatch.setattr("builtins.input", lambda prompt="": "alice")
    notebook.answers = ["wonderland"]
    assert notebook.run("pw = oa.login('demo', flow='password', name='pw')") is None
    assert oa.session("pw").is_authorized and notebook.prompts == ["Password: "]


def _signed_in_first(demo_provider):
    first = oa.login("demo", browser=demo_provider.driver.authorize)
    return first, [s.name for s in oa.sessions()]


def test_stop_during_the_loopback_wait_cancels_cleanly(notebook, demo_provider):
    """Case 44 in a notebook: Stop (SIGINT to the main thread) during the wait cancels the attempt, closes the
    catcher, registers nothing (the default stays) and re-raises KeyboardInterrupt."""
    first, before = _signed_in_first(demo_provider)
    main = threading.main_thread().ident

    def stop() -> None:
        notebook.shown.put(notebook.widget())  # shown: the cell is waiting
        signal.pthread_kill(main, signal.SIGINT)

    thread = notebook.in_background(stop)
    error = notebook.run("x = oa.login('demo', name='pb2', via='loopback')")
    thread.join(WAIT)
    widget = notebook.widget()
    assert isinstance(error, KeyboardInterrupt)
    assert widget.attempt.phase == "cancelled" and widget.attempt.catcher.closed
    assert [s.name for s in oa.sessions()] == before and oa.session() is first
    assert "x" not in notebook.shell.user_ns


def test_stop_at_the_paste_prompt_cancels_cleanly(notebook, demo_provider):
    """Case 44: ipykernel raises KeyboardInterrupt from the stdin prompt when the kernel is interrupted."""
    first, before = _signed_in_first(demo_provider)

    def interrupted() -> str:
        raise KeyboardInterrupt

    notebook.answers = [interrupted]
    error = notebook.run("x = oa.login('demo', name='pb2', via='paste')")
    widget = notebook.widget()
    assert isinstance(error, KeyboardInterrupt) and widget.attempt.phase == "cancelled"
    assert [s.name for s in oa.sessions()] == before and oa.session() is first


def test_timeout_cancels_the_waiting_login(notebook, demo_provider):
    error = notebook.run("x = oa.login('demo', name='slow', via='loopback', timeout=0.3)")
    widget = notebook.widget()
    assert isinstance(error, LoginTimeout) and "nb_oauth2.login('demo', name='slow')" in str(error)
    assert widget.attempt.phase == "cancelled" and widget.attempt.catcher.closed
    assert oa.sessions() == []


def test_wait_false_returns_at_once_and_registers_on_success(notebook, demo_provider):
    """wait=False keeps the non-blocking widget; its own paste box finishes the login."""
    assert notebook.run("w = oa.login('demo', name='later', via='paste', wait=False)") is None
    widget = notebook.widget()
    session = notebook.shell.user_ns["w"]
    assert widget.attempt.phase == "waiting" and not session.is_authorized
    assert oa.sessions() == []  # pending: not registered
    widget._paste.value = demo_provider.driver.authorize(_href(widget))
    widget._submit.click()
    assert widget.attempt.phase == "done" and oa.session("later") is session


def test_a_run_nobody_can_answer_fails_at_once_with_seeding_advice(notebook, monkeypatch):
    """nbclient / jupyter execute: allow_stdin is False. No widget, no wait: a typed error that says how
    to seed a token for unattended runs."""
    monkeypatch.setattr(notebook.shell, "kernel", types.SimpleNamespace(_allow_stdin=False), raising=False)
    error = notebook.run("x = oa.login('demo', name='cron')")
    assert isinstance(error, ReauthRequired) and error.error == "interaction_required"
    assert "nb_oauth2.login('demo', name='cron', store='file')" in str(error)
    assert "NB_OAUTH2_STORE=file" in str(error) and "client credentials" in str(error)
    assert notebook.shown.empty() and oa.sessions() == []


def test_a_run_nobody_can_answer_uses_the_stored_token(notebook, demo_provider, monkeypatch, tmp_path):
    """A token seeded with store='file' is used silently; the magics' memory store looks there too."""
    monkeypatch.setenv("NB_OAUTH2_STATE_DIR", str(tmp_path / "state"))
    seeded = oa.login("demo", store="file", browser=demo_provider.driver.authorize)
    monkeypatch.setattr(notebook.shell, "kernel", types.SimpleNamespace(_allow_stdin=False), raising=False)
    monkeypatch.setenv("NB_OAUTH2_STORE", "file")
    assert notebook.run("r = oa.login('demo')") is None
    restored = notebook.shell.user_ns["r"]
    assert restored is not seeded and restored.token_info.fingerprint == seeded.token_info.fingerprint
    notebook.shell.run_line_magic("load_ext", "nb_oauth2")
    assert notebook.run("%oauth2 login demo --store memory") is None  # today's magics pass store='memory'
    assert notebook.shown.empty()


def test_a_script_without_a_terminal_does_not_wait_for_a_paste(demo_provider, monkeypatch):
    """Outside Jupyter: no tty on stdin and nobody replaced input(): a paste-back login fails at once."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(ReauthRequired, match="seed a token"):
        oa.login("it", issuer=demo_provider.issuer, client_id=demo_provider.clients["public"].client_id,
                 via="paste")
    assert oa.sessions() == []


def test_a_cancelled_login_keeps_its_catcher_closed_and_the_error(notebook):
    """The attempt's error after Stop is the LoginCancelled the widget shows."""
    notebook.answers = [lambda: (_ for _ in ()).throw(KeyboardInterrupt())]
    notebook.run("x = oa.login('demo', via='paste')")
    assert isinstance(notebook.widget().attempt.error, LoginCancelled)
