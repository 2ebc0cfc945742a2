"""%oauth2 in a real IPython InteractiveShell (history in memory) against the demo provider.

Cases 35 (secrets on the line), 36 (Out/_/_oh), 37 (tracebacks in every xmode).
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.testing import globalipapp

import nb_oauth2.jupyter.magics as magics
from nb_oauth2.auth import registry

SECRET = "canarySECRET-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.fixture
def demo(demo_provider):
    registry._state().demo = demo_provider
    return demo_provider


@pytest.fixture
def ip(demo, monkeypatch):
    """The shared test shell, extension loaded; the browser's part done by the demo driver."""
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "nb_oauth2")
    seen: list[str] = []

    def browser(url: str) -> str:
        seen.append(demo.driver.authorize(url))
        return seen[-1]

    def device(step) -> None:
        threading.Timer(0.2, demo.driver.approve_device, args=(step.user_code,)).start()

    monkeypatch.setattr(magics, "BROWSER_HOOK", browser)
    monkeypatch.setattr(magics, "DEVICE_HOOK", device)
    shell.redirects = seen
    shell.run_line_magic("config", "OAuth2Magics.show_traceback = False")
    shell.run_line_magic("xmode", "Context")
    yield shell
    shell.run_line_magic("xmode", "Context")
    shell.run_line_magic("config", "OAuth2Magics.show_traceback = False")


def _secrets(ip) -> list[str]:
    out = [SECRET]
    for url in ip.redirects:
        out.append(dict(parse_qsl(urlsplit(url).query)).get("code", ""))
    for session in registry.sessions():
        token = session.token_info
        if token:
            out += [token.access_token, token.refresh_token or ""]
    return [s for s in out if s]


def _run(ip, code: str):
    result = ip.run_cell(code, store_history=True)
    return result


@pytest.mark.filterwarnings("ignore:Returning the")
def test_login_status_get_logout(ip, demo, capsys):
    """The three-line promise: login, get a DataFrame, status, logout --revoke."""
    assert ip.run_line_magic("oauth2", "login demo --scope 'read:events read:users'") is None
    assert re.search(r"Signed in as profile demo \(Alice Liddell \(alice\), until \d\d:\d\d; sha256:",
                     capsys.readouterr().out)
    table = ip.run_line_magic("oauth2", "status")
    assert "demo *" in repr(table) and "read:events read:users" in repr(table)
    assert "Alice Liddell (alice)" in repr(table) and re.search(r"until \d\d:\d\d \(expires in", repr(table))
    assert "<table" in table._repr_html_() and "sha256:" in table._repr_html_()
    df = ip.run_line_magic("oauth2", f"get {demo.url}/api/events --no-progress --max-pages 2 --partial")
    assert isinstance(df, pd.DataFrame) and len(df) > 0
    token = registry.session("demo").token_info.access_token
    ip.run_line_magic("oauth2", "logout --revoke")
    assert "revoked" in capsys.readouterr().out
    assert registry.sessions() == []
    assert demo.driver is not None and token  # the revoked token no longer works:
    import requests

    assert requests.get(f"{demo.url}/api/events", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_device_login_named_session_use_and_refresh(ip, capsys):
    ip.run_line_magic("oauth2", "login demo --flow device --name dev")
    ip.run_line_magic("oauth2", "login demo --name web")
    assert {s.name for s in registry.sessions()} == {"dev", "web"}
    ip.run_line_magic("oauth2", "use dev")
    assert registry.session().name == "dev"
    before = registry.session("dev").token_info.fingerprint
    capsys.readouterr()
    ip.run_line_magic("oauth2", "refresh")
    out = capsys.readouterr().out
    assert out.startswith("Refreshed dev (sha256:")
    assert registry.session("dev").token_info.fingerprint != before


def test_via_device_selects_the_device_grant(ip):
    ip.run_line_magic("oauth2", "login demo --via device")
    assert registry.session("demo").flow.grant == "device_code"


def test_help_lists_subcommands_and_options(ip, capsys):
    """%oauth2? prints real help: the sub-commands and their options."""
    ip.run_cell("%oauth2?")
    shown = capsys.readouterr().out + (magics.OAuth2Magics.oauth2.__doc__ or "")
    for word in ("login", "status", "refresh", "logout", "providers", "use", "redirect-uri", "get",
                 "--scope", "--flow", "--via", "--revoke", "--record-path", "--max-pages", "--partial", "--paginate"):
        assert word in shown
    ip.run_line_magic("oauth2", "")
    assert "usage: %oauth2" in capsys.readouterr().out


def test_sub_command_help_does_not_raise(ip, capsys):
    assert ip.run_line_magic("oauth2", "login --help") is None
    assert "--client-id" in capsys.readouterr().out


@pytest.mark.parametrize("line", [
    f"login demo --client-secret {SECRET}",
    f"login demo --client_secret={SECRET}",
    f"login github --password {SECRET}",
    f"login demo --token {SECRET}",
    f"login demo --refresh-token {SECRET}",
])
def test_secrets_on_the_line_are_refused(ip, line):
    """Case 35: refused, pointing to env var / keyring / getpass, warning about history.sqlite."""
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("oauth2", line)
    message = str(info.value)
    assert "SecretOnCommandLine" in message and "history.sqlite" in message
    assert "NB_OAUTH2_" in message and "_CLIENT_SECRET" in message
    assert "keyring" in message and "getpass" in message
    assert SECRET not in message
    assert registry.sessions() == []


def test_profile_cell_magic_defines_a_profile_and_refuses_secrets(ip, capsys):
    """Case 35: a cell body is history too: client_secret/password keys are refused."""
    ip.run_cell_magic("oauth2", "profile acme", 'provider = "github"\nclient_id = "abc123"\nscope = "repo"\n')
    assert "Profile 'acme' defined" in capsys.readouterr().out
    from nb_oauth2.auth.config import load_profile

    assert load_profile("acme").client.client_id == "abc123"
    for body in (f'client_id = "x"\nclient_secret = "{SECRET}"\n', f'[client]\npassword = "{SECRET}"\n'):
        with pytest.raises(UsageError) as info:
            ip.run_cell_magic("oauth2", "profile acme2", body)
        assert "SecretOnCommandLine" in str(info.value) and SECRET not in str(info.value)


def test_errors_become_one_line_usage_errors(ip, capsys):
    """Bad lines are UsageErrors; nb_oauth2's own errors are raised as they are and shown short (error_display),
    so %tb has their traceback."""
    from nb_oauth2.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="No session"):
        ip.run_line_magic("oauth2", "get http://127.0.0.1:9/api")
    capsys.readouterr()
    result = ip.run_cell("%oauth2 get http://127.0.0.1:9/api")
    assert isinstance(result.error_in_exec, ConfigurationError)
    shown = capsys.readouterr()
    text = (shown.out + shown.err).strip()
    assert "ConfigurationError: No session" in text and "%tb" in text and len(text.splitlines()) <= 4
    assert "Traceback" not in text
    with pytest.raises(UsageError, match="unrecognized arguments"):
        ip.run_line_magic("oauth2", "status --bogus")
    with pytest.raises(UsageError, match="invalid choice"):
        ip.run_line_magic("oauth2", "login demo --flow magic")


def test_braces_and_dollars_in_urls_are_not_expanded(ip, monkeypatch):
    """@no_var_expand: {x} and $y reach the API untouched."""
    ip.run_line_magic("oauth2", "login demo")
    seen = {}

    def fake_read_json(url, **kwargs):
        seen["url"] = url
        return pd.DataFrame()

    monkeypatch.setattr("nb_oauth2.api.read_json", fake_read_json)
    ip.user_ns.update(x="EXPANDED", y="DOLLAR")
    ip.run_cell("%oauth2 get http://127.0.0.1:1/api/{x}?filter=$y --no-progress")
    assert seen["url"] == "http://127.0.0.1:1/api/{x}?filter=$y"


def test_providers_and_redirect_uri(ip, capsys):
    table = ip.run_line_magic("oauth2", "providers")
    assert "github" in repr(table) and "demo" in repr(table)
    ip.run_line_magic("oauth2", "redirect-uri")
    out = capsys.readouterr().out
    assert "This environment:" in out and "http://127.0.0.1:8765/callback" in out


def test_config_traitlets(ip):
    ip.run_line_magic("config", "OAuth2Magics.default_profile = 'demo'")
    ip.run_line_magic("config", "OAuth2Magics.progress = False")
    ip.run_line_magic("oauth2", "login")
    assert registry.session().name == "demo"
    ip.run_line_magic("config", "OAuth2Magics.progress = True")


def test_out_history_holds_no_token(ip, demo):
    """Case 36: login returns nothing; Out/_/_oh reprs of status, sessions and frames show no secret."""
    count = ip.execution_count
    for stale in [k for k in ip.user_ns["Out"] if k >= count]:  # the shared shell may reuse counts
        del ip.user_ns["Out"][stale]
    assert _run(ip, "%oauth2 login demo").result is None
    assert count not in ip.user_ns["Out"]
    _run(ip, "%oauth2 status")
    _run(ip, "import nb_oauth2; nb_oauth2.session('demo')")
    _run(ip, "nb_oauth2.session('demo').token_info")
    _run(ip, "nb_oauth2.session('demo').token")
    _run(ip, f"%oauth2 get {demo.url}/api/users --no-progress")
    outputs = [v for k, v in ip.user_ns["Out"].items() if k > count]
    assert len(outputs) == 5
    text = " ".join(repr(v) + str(getattr(v, "_repr_html_", lambda: "")()) for v in outputs)
    text += repr(ip.user_ns["_"]) + repr(ip.user_ns.get("__")) + repr(ip.user_ns.get("_oh"))
    for secret in _secrets(ip):
        assert secret not in text


@pytest.mark.parametrize("mode", ["Plain", "Context", "Verbose", "Minimal"])
@pytest.mark.parametrize("show_traceback", [False, True])
def test_tracebacks_hold_no_secret_in_any_xmode(ip, demo, capsys, mode, show_traceback):
    """Case 37: failing calls after login, in every xmode (Verbose prints locals), show no secret."""
    ip.run_line_magic("oauth2", "login demo")
    ip.run_line_magic("xmode", mode)
    ip.run_line_magic("config", f"OAuth2Magics.show_traceback = {show_traceback}")
    capsys.readouterr()
    _run(ip, f"%oauth2 get {demo.url}/api/no-such-thing --no-progress")
    _run(ip, f"%oauth2 get {demo.url}/api/events?per_page=notanumber --no-progress")
    _run(ip, "%oauth2 login demo --flow password --via paste --name pw --issuer http://127.0.0.1:9")
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "Error" in shown
    if not show_traceback:
        assert "Traceback" not in shown
    for secret in _secrets(ip):
        assert secret not in shown


MISSPELLED_SECRET_LINES = [
    f"login demo --clientsecret {SECRET}",
    f"login demo --client-secrets {SECRET}",
    f"login demo --secret={SECRET}",
    f"login demo --password {SECRET}",
    f"login demo --token {SECRET}",
    f"login --clientSecret {SECRET}",
    f"login demo --name web --api_key={SECRET}",
]
VALUE_ERROR_LINES = [
    f"login demo {SECRET}",                     # a stray positional value
    f"login demo --client-sec {SECRET}",        # an unknown option with its value
    f"login demo --c={SECRET}",                 # no silent abbreviation: '--c' is unknown, its value hidden
    f"login demo --flow {SECRET}",              # invalid choice
    f"login demo --via={SECRET}",
    f"get http://127.0.0.1:1/api --max-pages {SECRET}",  # invalid int value
    f"lgoin {SECRET}",                          # invalid command
    f"status --bogus={SECRET} '{SECRET} x'",
]


@pytest.mark.parametrize("line", MISSPELLED_SECRET_LINES)
def test_misspelled_secret_options_are_refused_without_echo(ip, line):
    """Case 59: a misspelled secret option is refused as a secret, naming the option, never the value."""
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("oauth2", line)
    message = str(info.value)
    assert "SecretOnCommandLine" in message and "history.sqlite" in message
    assert SECRET not in message and SECRET[:12] not in message
    assert registry.sessions() == []


@pytest.mark.parametrize("line", VALUE_ERROR_LINES)
def test_parse_errors_never_echo_values_from_the_line(ip, line):
    """Case 59: argparse's errors (unrecognized arguments, invalid choice/int) name options, not values."""
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("oauth2", line)
    message = str(info.value)
    assert SECRET not in message and SECRET[:12] not in message
    assert "not shown" in message or "not repeated" in message
    assert registry.sessions() == []


@pytest.mark.parametrize("line", MISSPELLED_SECRET_LINES[:2] + VALUE_ERROR_LINES[:2])
def test_refused_lines_leave_no_value_in_output_or_history_outputs(ip, capsys, line):
    """Case 59: run as a cell: the value is in no error, stdout/stderr, Out, or history output."""
    count = ip.execution_count
    result = ip.run_cell(f"%oauth2 {line}", store_history=True)
    out = capsys.readouterr()
    assert isinstance(result.error_in_exec, UsageError)
    assert "UsageError" in out.out + out.err  # the refusal was shown...
    shown = out.out + out.err + str(result.error_in_exec) + repr(result.error_in_exec) + repr(result.result)
    shown += repr(ip.user_ns["Out"]) + repr(ip.history_manager.output_hist) + repr(ip.user_ns.get("_"))
    shown += repr(ip.history_manager.output_hist_reprs)
    assert SECRET not in shown and SECRET[:12] not in shown  # ...without the value
    assert count not in ip.user_ns["Out"]


def test_paginate_offers_only_the_styles_that_exist(ip):
    """--paginate takes exactly the styles read_json accepts (0.1's help offered 'pages' and 'odata', which raise)."""
    from nb_oauth2.frames.pagination import PAGINATION_STYLES, make_paginator

    for style in PAGINATION_STYLES:
        make_paginator(style)
    with pytest.raises(UsageError, match="invalid choice"):
        ip.run_line_magic("oauth2", "get http://127.0.0.1:9/api --paginate pages")
    assert "pages" not in magics.full_help().split("--paginate", 1)[1].split("\n")[0]


def test_status_is_left_aligned_and_does_not_wrap(ip):
    ip.run_line_magic("oauth2", "login demo")
    markup = ip.run_line_magic("oauth2", "status")._repr_html_()
    cells = re.findall(r"<t[hd] style=\"([^\"]*)\"", markup)
    assert cells and all("text-align:left" in c and "white-space:nowrap" in c for c in cells)
    assert "<th style" in markup and ">user<" in markup and "Alice Liddell (alice)" in markup


def test_status_of_a_session_without_a_known_user_shows_a_dash(ip):
    """A provider that names nobody (no id_token, no userinfo endpoint): '-' in the user column."""
    import dataclasses

    ip.run_line_magic("oauth2", "login demo --flow client_credentials --name svc")
    table = ip.run_line_magic("oauth2", "status")
    row = next(r for r in table.rows if r[0].startswith("svc"))
    session = registry.session("svc")
    assert row[1] == session.client_auth.client_id  # the demo's userinfo names the client (sub) for client credentials
    session.provider = dataclasses.replace(session.provider, userinfo_endpoint=None)
    from nb_oauth2.auth import identity

    assert identity.who(session, refresh=True) is None
    row = next(r for r in ip.run_line_magic("oauth2", "status").rows if r[0].startswith("svc"))
    assert row[1] == "-"


def test_store_choices_are_the_stores_that_exist(ip):
    """--store and OAuth2Magics.default_store offer exactly what make_store accepts (memory, file, keyring)."""
    from nb_oauth2.auth.store import make_store
    from nb_oauth2.core.names import STORE_CHOICES

    assert magics.STORE_CHOICES == STORE_CHOICES
    from nb_oauth2.core.errors import ConfigurationError

    for kind in magics.STORE_CHOICES:
        try:
            make_store(kind)
        except ConfigurationError as exc:  # keyring without the keyring package: known, just not installed
            assert "Unknown token store" not in exc.message
    login = next(a for a in magics.build_parser()._subparsers._group_actions[0].choices["login"]._actions
                 if "--store" in a.option_strings)
    assert tuple(login.choices) == magics.STORE_CHOICES


@pytest.mark.parametrize("setting", ["default_store = 'sqlite'", "default_store = 'File'", "default_profile = ''",
                                     "default_profile = 'my profile'", "progress = 'maybe'"])
def test_config_options_are_validated_when_set(ip, setting, caplog):
    """A bad value is refused as it is set: %config shows the trait's error and the option keeps its value."""
    magic = next(m for m in ip.configurables if isinstance(m, magics.OAuth2Magics))
    before = (magic.default_store, magic.default_profile, magic.progress)
    ip.run_line_magic("config", f"OAuth2Magics.{setting}")
    assert (magic.default_store, magic.default_profile, magic.progress) == before
    refused = " ".join(r.getMessage() for r in caplog.records)
    assert "expected any of ['', 'memory', 'file', 'keyring']" in refused or "profile name" in refused \
        or "expected a boolean" in refused


def test_config_accepts_every_store(ip):
    magic = next(m for m in ip.configurables if isinstance(m, magics.OAuth2Magics))
    try:
        for kind in magics.STORE_CHOICES:
            ip.run_line_magic("config", f"OAuth2Magics.default_store = {kind!r}")
            assert magic.default_store == kind
    finally:
        ip.run_line_magic("config", "OAuth2Magics.default_store = ''")


def test_no_wait_is_passed_only_when_given(ip, monkeypatch):
    """--no-wait passes wait=False to nb_oauth2.login; without it, login() gets no wait= at all (its default)."""
    import nb_oauth2.jupyter.login_ui as login_ui

    calls = []
    real = login_ui.login

    def recording(profile, **kwargs):
        calls.append(dict(kwargs))
        kwargs.pop("wait", None)
        return real(profile, **kwargs)

    monkeypatch.setattr(login_ui, "login", recording)
    ip.run_line_magic("oauth2", "login demo --no-wait")
    ip.run_line_magic("oauth2", "login demo --name other")
    assert calls[0]["wait"] is False and "wait" not in calls[1]


def test_login_without_a_store_setting_follows_the_environment(ip, monkeypatch, tmp_path):
    """default_store unset: %oauth2 login passes store=None, so NB_OAUTH2_STORE (or the profile's) applies."""
    import nb_oauth2.jupyter.login_ui as login_ui

    seen = {}

    class Stop(Exception):
        pass

    def fake_login(profile, **options):
        seen.update(options)
        raise Stop

    monkeypatch.setattr(login_ui, "login", fake_login)
    magic = next(m for m in ip.configurables if isinstance(m, magics.OAuth2Magics))
    monkeypatch.setattr(magic, "default_store", "")
    with pytest.raises(Stop):
        ip.run_line_magic("oauth2", "login demo")
    assert seen["store"] is None
    with pytest.raises(Stop):
        ip.run_line_magic("oauth2", "login demo --store file")
    assert seen["store"] == "file"


def test_logout_says_how_to_sign_in_again(ip, capsys):
    ip.run_line_magic("oauth2", "login demo --name again")
    ip.run_line_magic("oauth2", "logout again")
    assert "Sign in again with %oauth2 login, or nb_oauth2.login('demo', name='again')." in capsys.readouterr().out


# -- %%oauth2 graphql (issue 13 item 2) ----------------------------------------------------------------


def _graphql_server(scripted, token: str) -> str:
    from tests.test_graphql import github

    scripted.script("/graphql", [github(token)])
    return scripted.url + "/graphql"


def test_graphql_cell_magic_returns_every_page_as_a_dataframe(ip, scripted):
    """The cell is the query; the value is the DataFrame (displayed, in _, so df = _ works); --var values
    are JSON when they parse (first=3 an int), text otherwise."""
    from tests.test_graphql import QUERY, RECORDS, cursor

    ip.run_line_magic("oauth2", "login demo")
    url = _graphql_server(scripted, registry.session("demo").token_info.access_token)
    result = ip.run_cell(f"%%oauth2 graphql {url} --session demo --path repository.issues --var owner=octocat "
                         f"--var name=Hello-World --var first=3 --no-progress\n{QUERY}", store_history=True)
    assert result.success and isinstance(result.result, pd.DataFrame) and len(result.result) == RECORDS
    ip.run_cell("df = _")
    assert ip.user_ns["df"] is result.result
    assert {"number", "author.login", "labels.nodes"} <= set(result.result.columns)
    import json

    sent = [json.loads(s.body)["variables"] for s in scripted.seen]
    assert sent[0] == {"owner": "octocat", "name": "Hello-World", "first": 3}
    assert [v.get("after") for v in sent] == [None, cursor(3), cursor(6)]


def test_graphql_cell_magic_takes_variables_from_a_notebook_dict(ip, scripted):
    from tests.test_graphql import QUERY, RECORDS

    ip.run_line_magic("oauth2", "login demo")
    url = _graphql_server(scripted, registry.session("demo").token_info.access_token)
    ip.user_ns["gh_vars"] = {"owner": "octocat", "name": "Hello-World", "first": 1}
    frame = ip.run_cell_magic("oauth2", f"graphql {url} --variables gh_vars --var first=3 --no-progress", QUERY)
    assert len(frame) == RECORDS and ip.user_ns["gh_vars"]["first"] == 1  # --var overrides, the dict is untouched


@pytest.mark.parametrize("line, cell, match", [
    ("graphql http://127.0.0.1:9/graphql", None, "is a cell magic"),
    ("graphql http://127.0.0.1:9/graphql", "  \n", "the cell is empty"),
    ("graphql http://127.0.0.1:9/graphql --var novalue", "{ viewer { login } }", "NAME=VALUE"),
    ("graphql http://127.0.0.1:9/graphql --variables missing_dict", "{ viewer { login } }", "no dict named"),
    ("graphql", "{ viewer { login } }", "required: url"),
    ("status", "{ viewer { login } }", "only supports"),
])
def test_graphql_cell_magic_usage_errors(ip, line, cell, match):
    with pytest.raises(UsageError, match=match):
        if cell is None:
            ip.run_line_magic("oauth2", line)
        else:
            ip.run_cell_magic("oauth2", line, cell)


@pytest.mark.parametrize("line", [
    f"graphql http://127.0.0.1:9/graphql --var token={SECRET}",
    f"graphql http://127.0.0.1:9/graphql --var apiKey={SECRET}",
    f"graphql http://127.0.0.1:9/graphql --token {SECRET}",
])
def test_graphql_cell_magic_refuses_secrets_without_echo(ip, capsys, line):
    """Cases 35 and 59: a secret-named variable or option is refused; no value from the line is repeated."""
    result = ip.run_cell(f"%%oauth2 {line}\n{{ viewer {{ login }} }}", store_history=True)
    assert isinstance(result.error_in_exec, UsageError) and "SecretOnCommandLine" in str(result.error_in_exec)
    shown = capsys.readouterr()
    assert SECRET not in str(result.error_in_exec) and SECRET not in shown.out + shown.err


def test_graphql_errors_in_the_answer_are_shown_short(ip, scripted, capsys):
    from nb_oauth2.core.errors import APIError
    from tests.scripted_server import Reply

    scripted.script("/graphql", [Reply(200, {"errors": [{"type": "NOT_FOUND", "message": "Could not resolve to a "
                                                          "Repository with the name 'octocat/nope'."}],
                                             "data": {"repository": None}})])
    ip.run_line_magic("oauth2", "login demo")
    result = ip.run_cell(f"%%oauth2 graphql {scripted.url}/graphql --no-progress\n{{ repository {{ id }} }}")
    assert isinstance(result.error_in_exec, APIError)
    text = "".join(capsys.readouterr())
    assert "Could not resolve to a Repository" in text and "Traceback" not in text


def test_help_lists_the_graphql_cell_magic(ip, capsys):
    ip.run_cell("%oauth2?")
    shown = capsys.readouterr().out + (magics.OAuth2Magics.oauth2.__doc__ or "")
    for word in ("graphql", "%%oauth2 graphql URL", "--var", "--variables", "--path", "--cursor-variable"):
        assert word in shown
