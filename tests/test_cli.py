"""``nb-oauth2``: the sub-commands other than the demo (tested in test_headless.py)."""

from __future__ import annotations

import pytest

from nb_oauth2.cli.main import build_parser, main
from nb_oauth2.cli.notebooks import notebooks_dir


def test_providers_lists_every_preset_and_the_demo(capsys):
    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    for name in ("github", "google", "entra", "gitlab", "spotify", "demo"):
        assert name in out


def test_redirect_uri_outside_and_inside_jupyterhub(capsys, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    assert main(["redirect-uri"]) == 0
    assert "http://127.0.0.1:8765/callback" in capsys.readouterr().out
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    assert main(["redirect-uri"]) == 0
    assert "/user/alice/proxy/<port>/" in capsys.readouterr().out


def test_demo_options_parse_and_tutorials_are_found():
    args = build_parser().parse_args(["demo", "--headless", "--records", "10"])
    assert args.headless and args.records == 10
    assert (notebooks_dir() / "01_quickstart.ipynb").exists()


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as info:
        main(["nope"])
    assert info.value.code == 2
