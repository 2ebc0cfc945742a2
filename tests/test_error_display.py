"""nb_oauth2's errors in a real IPython InteractiveShell: message and hint, the traceback on %tb (issue 12 item 4)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import requests
from IPython.testing import globalipapp

import nb_oauth2.jupyter.error_display as display
from nb_oauth2.core.errors import OAuth2Error
from nb_oauth2.core.redact import register_secret
from tests.conftest import CANARY_TOKEN
from tests.scripted_server import Reply

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def ip():
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "nb_oauth2")
    shell.run_line_magic("config", "OAuth2Magics.show_traceback = False")
    display.install(shell)  # the extension may have been loaded before this module's tests
    yield shell
    display.show_full_tracebacks(False)
    shell.run_line_magic("xmode", "Context")


@pytest.fixture
def api(scripted, ip):
    """A session whose token is a registered canary, and pages that fail (500, 404 echoing the token)."""
    register_secret(CANARY_TOKEN)
    scripted.script("/broken", [Reply(500, "<html><body>Internal Server Error</body></html>",
                                      {"Content-Type": "text/html"})])
    scripted.script("/missing", [Reply(404, {"error": "not_found",
                                             "error_description": f"Nothing here for Bearer {CANARY_TOKEN}"})])
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {CANARY_TOKEN}"
    ip.user_ns.update(session=session, base=scripted.url)
    return scripted


def _run(ip, capsys, cell: str):
    capsys.readouterr()
    result = ip.run_cell(cell)
    out = capsys.readouterr()
    return result, _ANSI.sub("", out.out + out.err)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(("path", "message", "hint"), [
    ("/broken?page=2&filter=open", "answered HTTP 500: Internal Server Error.", "try again later"),
    ("/missing", "answered HTTP 404: Nothing here for Bearer ***.", "Check the URL"),
])
def test_read_json_error_is_its_message_and_hint_and_tb_shows_the_traceback(ip, api, capsys, path, message, hint):
    """Case 37: the short error and the full traceback (%tb) hold no token; the cell still fails."""
    cell = f"import nb_oauth2 as oa\ndf = oa.read_json(base + {path!r}, session=session, progress=False, retries=0)"
    result, shown = _run(ip, capsys, cell)
    assert type(result.error_in_exec).__name__ == "APIError"  # the cell failed: Run All stops, nbclient reports
    lines = _lines(shown)
    assert len(lines) <= 4, shown
    assert lines[0].startswith("APIError: GET ") and message in lines[0]
    assert hint in shown and display.TB_LINE in shown and "Traceback" not in shown
    if "filter" in path:
        assert "page=2&filter=open" in lines[0]  # issue 12 item 8: only secret-bearing parameters are masked
    _, full = _run(ip, capsys, "%tb")
    assert "Traceback" in full and "fetch.py" in full and len(_lines(full)) > 20
    assert "APIError" in full and message in full
    assert CANARY_TOKEN not in shown + full


@pytest.mark.parametrize("mode", ["Plain", "Context", "Verbose", "Minimal"])
def test_no_secret_in_the_short_error_or_in_tb_in_any_xmode(ip, api, capsys, mode):
    """Case 37: every xmode; Verbose prints the frames' variables on %tb."""
    ip.run_line_magic("xmode", mode)
    _, shown = _run(ip, capsys, "import nb_oauth2 as oa\noa.read_json(base + '/missing', session=session, "
                                "progress=False, retries=0)")
    _, full = _run(ip, capsys, "%tb")
    assert "APIError" in shown and "APIError" in full
    assert CANARY_TOKEN not in shown + full and CANARY_TOKEN[:20] not in shown + full


def test_failing_oauth2_command_is_short(ip, capsys, api):
    """A failing %oauth2 command: one short line with the message, no traceback; %tb shows it in full."""
    from nb_oauth2.auth import registry

    registry.clear()
    result, shown = _run(ip, capsys, f"%oauth2 get {api.url}/missing --no-progress")
    assert result.error_in_exec is not None
    lines = _lines(shown)
    assert 1 <= len(lines) <= 4 and "ConfigurationError" in lines[0] and "sign in first" in lines[0], shown
    assert "Traceback" not in shown
    _, full = _run(ip, capsys, "%tb")
    assert "Traceback" in full and "ConfigurationError" in full and CANARY_TOKEN not in full


def test_other_exceptions_keep_ipythons_traceback(ip, capsys):
    _, shown = _run(ip, capsys, "def f():\n    return 1 / 0\nf()")
    assert "ZeroDivisionError" in shown and "Traceback" in shown and display.TB_LINE not in shown


def test_a_handler_registered_before_keeps_its_own_exceptions(ip, capsys):
    class Theirs(Exception):
        pass

    seen = []
    display.uninstall(ip)
    ip.set_custom_exc((Theirs,), lambda shell, etype, value, tb, tb_offset=None: seen.append(value) or ["theirs"])
    try:
        assert display.install(ip)
        ip.user_ns["Theirs"] = Theirs
        _run(ip, capsys, "raise Theirs('x')")
        assert len(seen) == 1
        _, shown = _run(ip, capsys, "import nb_oauth2 as oa\nraise oa.ReauthRequired('Gone.', hint='Sign in again.')")
        assert _lines(shown)[:2] == ["ReauthRequired: Gone.", "Sign in again."] and len(seen) == 1
        display.uninstall(ip)
        assert ip.custom_exceptions == (Theirs,)
    finally:
        ip.set_custom_exc((), None)
        display.install(ip)


def test_full_tracebacks_on_request(ip, capsys, monkeypatch):
    cell = "import nb_oauth2 as oa\ndef f():\n    raise oa.ReauthRequired('Gone.')\nf()"
    display.show_full_tracebacks()
    _, shown = _run(ip, capsys, cell)
    assert "Traceback" in shown and "----> 4 f()" in shown
    display.show_full_tracebacks(False)
    ip.run_line_magic("config", "OAuth2Magics.show_traceback = True")
    _, shown = _run(ip, capsys, cell)
    assert "Traceback" in shown
    ip.run_line_magic("config", "OAuth2Magics.show_traceback = False")
    _, shown = _run(ip, capsys, cell)
    assert "Traceback" not in shown and _lines(shown)[0] == "ReauthRequired: Gone."
    display.uninstall(ip)
    monkeypatch.setenv(display.OPT_OUT_ENV, "1")
    assert display.install(ip) is False and not display.installed(ip)
    monkeypatch.delenv(display.OPT_OUT_ENV)
    assert display.install(ip) and OAuth2Error in ip.custom_exceptions


def test_import_inside_a_running_shell_installs_it_and_plain_python_is_left_alone():
    code = ("import sys\n"
            "{start}"
            "import nb_oauth2\n"
            "from nb_oauth2.jupyter import error_display\n"
            "print(error_display.installed(shell), 'IPython' in sys.modules)\n")
    with_shell = code.format(start="from IPython.testing.globalipapp import start_ipython\nshell = start_ipython()\n")
    without = code.format(start="shell = None\n")
    env = {k: v for k, v in os.environ.items() if k != display.OPT_OUT_ENV}
    ran = [subprocess.run([sys.executable, "-c", c], capture_output=True, text=True, env=env, timeout=120)
           for c in (with_shell, without)]
    assert [r.stdout.split()[-2:] for r in ran] == [["True", "True"], ["False", "False"]], [r.stderr for r in ran]
    opted_out = subprocess.run([sys.executable, "-c", with_shell], capture_output=True, text=True, timeout=120,
                               env={**env, display.OPT_OUT_ENV: "1"})
    assert opted_out.stdout.split()[-2:] == ["False", "True"], opted_out.stderr
