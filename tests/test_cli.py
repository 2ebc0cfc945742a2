"""``nb-oauth2``: --version, --help, the sub-commands, and ``demo`` running JupyterLab (``demo --headless``
is tested in test_headless.py)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import nb_oauth2
from nb_oauth2.cli import lab as lab_module
from nb_oauth2.cli.lab import DEFAULT_PORT, choose_port, copy_tutorials, descendants
from nb_oauth2.cli.main import build_parser, main
from nb_oauth2.cli.notebooks import QUICKSTART, notebooks_dir


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


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == nb_oauth2.__version__


def test_version_from_the_installed_command():
    out = subprocess.run([sys.executable, "-m", "nb_oauth2.cli.main", "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == nb_oauth2.__version__


def test_the_lab_extra_installs_pyarrow():
    """`pip install ".[lab]"` runs the quickstart's Parquet and fast paths instead of printing "skipped"."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    lab = pyproject["project"]["optional-dependencies"]["lab"]
    assert any(re.match(r"pyarrow\b", requirement) for requirement in lab)


def test_help_shows_no_rest_markup(capsys):
    for argv in (["--help"], ["demo", "--help"], ["providers", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "usage: nb-oauth2" in text and "``" not in text and ":func:" not in text


def test_choose_port_takes_8888_when_free_else_a_free_one():
    with socket.socket() as busy:
        try:
            busy.bind(("127.0.0.1", DEFAULT_PORT))
            busy.listen()
        except OSError:  # already taken by something else: just as good
            pass
        chosen = choose_port("127.0.0.1")
        assert chosen not in (None, DEFAULT_PORT)
        assert choose_port("127.0.0.1", DEFAULT_PORT) is None  # asked for explicitly: taken, so refused
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", chosen))  # really free


def test_tutorial_copies_carry_the_language_info_the_kernel_reports(tmp_path):
    """JupyterLab writes the kernel's language_info into a notebook when the kernel connects; a copy that
    already has it opens unmodified (no unsaved-changes dot on a tutorial nobody touched)."""
    jupyter_client = pytest.importorskip("jupyter_client")
    copy_tutorials(notebooks_dir(), tmp_path / "notebooks")
    quickstart = json.loads((tmp_path / "notebooks" / QUICKSTART).read_text())
    original = json.loads((notebooks_dir() / QUICKSTART).read_text())
    assert quickstart["cells"] == original["cells"]
    manager, client = jupyter_client.manager.start_new_kernel(kernel_name=quickstart["metadata"]["kernelspec"]["name"])
    try:
        reply = client.kernel_info(reply=True, timeout=60)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert reply["content"]["language_info"] == quickstart["metadata"]["language_info"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")
@pytest.mark.parametrize("with_psutil", [True, False])
def test_descendants_are_found_with_or_without_psutil(monkeypatch, with_psutil):
    """ipykernel 7 no longer requires psutil: without it the demo reads /proc to find the kernels."""
    if not with_psutil:
        monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil -> ImportError
    else:
        pytest.importorskip("psutil")
    script = "import subprocess, sys; subprocess.Popen(['sleep', '60'], start_new_session=True).wait()"
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while len(found := descendants(child.pid)) < 1:
            assert time.monotonic() < deadline, "the grandchild never appeared"
            time.sleep(0.05)
        assert child.pid not in found and child.pid in descendants(os.getpid())
        (grandchild,) = found
        child.kill()
        child.wait()
        lab_module._end(found)
        assert not lab_module._alive(grandchild)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _read_until(stream, pattern: str, lines: list[str]) -> re.Match:
    for line in stream:
        lines.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"{pattern!r} never printed; output: {lines}")


def _started(psutil, pid: int, module: str) -> list:
    """The running processes under ``pid`` that run ``python -m <module>`` (zombies and the vanished skipped)."""
    found = []
    for process in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if module in process.cmdline():
                found.append(process)
    return found


def _wait_for(url: str, params: dict, process: subprocess.Popen, seconds: float = 90) -> requests.Response:
    """GET url until it answers 200 (a wait, not a budget: JupyterLab's start on a loaded machine)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "nb-oauth2 demo exited"
        with contextlib.suppress(requests.RequestException):
            response = requests.get(url, params=params, timeout=5)
            if response.status_code == 200:
                return response
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered 200")


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_demo_prints_the_url_lab_listens_on_and_a_signal_stops_lab_and_its_kernels(tmp_path, signum):
    """8888 taken: the printed URL is the port JupyterLab answers on; SIGTERM or SIGINT stops JupyterLab and
    its kernel (nothing orphaned) and removes the temporary copy of the tutorials."""
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("jupyterlab")
    env = dict(os.environ)
    for key in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
        (tmp_path / key).mkdir()
        env[key] = str(tmp_path / key)
    env.pop("JUPYTERHUB_SERVICE_PREFIX", None)
    busy = socket.socket()
    with contextlib.suppress(OSError):  # taken already by something else: just as good
        busy.bind(("127.0.0.1", DEFAULT_PORT))
        busy.listen()
    demo = subprocess.Popen([sys.executable, "-m", "nb_oauth2.cli.main", "demo", "--no-browser"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    try:
        workdir = Path(_read_until(demo.stdout, r"working copy in (\S+?),", lines).group(1))
        opened = _read_until(demo.stdout, r"Open: (http://127\.0\.0\.1:(\d+)(/\S+)\?token=(\S+))", lines)
        port, path, token = int(opened.group(2)), opened.group(3), opened.group(4)
        assert port != DEFAULT_PORT and (workdir / "notebooks" / QUICKSTART).exists()
        base = f"http://127.0.0.1:{port}"
        _wait_for(base + "/api/status", {"token": token}, demo)
        assert _wait_for(base + path, {"token": token}, demo).status_code == 200
        kernel = requests.post(base + "/api/kernels", params={"token": token}, json={"name": "python3"},
                               timeout=30)
        assert kernel.status_code == 201
        lab = _started(psutil, demo.pid, "jupyterlab")
        deadline = time.monotonic() + 60
        while not (kernels := _started(psutil, demo.pid, "ipykernel_launcher")):
            assert time.monotonic() < deadline, "the kernel process never appeared"
            time.sleep(0.2)
        assert len(lab) == 1 and len(kernels) == 1
        demo.send_signal(signum)
        assert demo.wait(120) == 128 + signum
        gone, alive = psutil.wait_procs(lab + kernels, timeout=10)
        assert alive == [], f"still running after the demo stopped: {alive}"
        assert not workdir.exists()
    finally:
        busy.close()
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        for child in _started(psutil, os.getpid(), "jupyterlab") + _started(psutil, os.getpid(), "ipykernel_launcher"):
            with contextlib.suppress(psutil.Error):  # never leave a Lab behind
                child.kill()
