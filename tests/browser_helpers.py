"""JupyterLab on 127.0.0.1 in headless Chromium, isolated and quiet (see /work/shared/BROWSER_TESTS.md)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import requests

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_stopping: list[threading.Thread] = []


def stop_in_background(stop: Callable[[], None]) -> None:
    """Run a server's ``stop`` in a thread: the next tests need not wait for its shutdown.

    ``finish_background_stops()`` (conftest, at the end of the session) waits for every such stop.
    """
    thread = threading.Thread(target=stop, name=f"stop {getattr(stop, '__qualname__', stop)}")
    thread.start()
    _stopping.append(thread)


def finish_background_stops(timeout: float = 60) -> None:
    """Wait for the stops begun by :func:`stop_in_background`."""
    while _stopping:
        _stopping.pop().join(timeout)


def skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if shutil.which("jupyter-lab") is None and not _has_module("jupyterlab"):
        return "jupyterlab is not installed"
    return None


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


class Lab:
    """A JupyterLab server with fresh config/data/runtime/settings dirs under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.notebooks = root / "notebooks"
        self.notebooks.mkdir(parents=True)
        self.env = self._environment()
        self.log = open(root / "lab.log", "wb")  # noqa: SIM115
        self.proc: subprocess.Popen | None = None

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                    "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
            path = self.root / key.lower()
            path.mkdir()
            env[key] = str(path)
        settings = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        repo = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
        for name in ("JUPYTERHUB_SERVICE_PREFIX", "SSH_CONNECTION", "SSH_CLIENT"):
            env.pop(name, None)
        return env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Lab":
        """Launch the server and wait until it answers."""
        return self.launch().wait_until_ready(timeout)

    def launch(self) -> "Lab":
        """Start the server process without waiting (launch a browser meanwhile, then :meth:`wait_until_ready`)."""
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.notebooks}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True"]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def wait_until_ready(self, timeout: float = 60) -> "Lab":
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: see {self.root / 'lab.log'}")
            try:
                if requests.get(f"{self.url}/api/status", params={"token": self.token}, timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("JupyterLab did not start in time")

    def write_notebook(self, name: str, cells: list[str]) -> str:
        nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None,
                       "id": f"c{i}"} for i, src in enumerate(cells)]}
        (self.notebooks / name).write_text(json.dumps(nb))
        return f"{self.url}/lab/tree/{name}?token={self.token}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group: server and its kernels
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


WAIT_FOR_KERNEL = """async () => {
  const app = window.jupyterapp;
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    const panel = app && app.shell.currentWidget;
    const ctx = panel && panel.sessionContext;
    const kernel = ctx && ctx.session && ctx.session.kernel;
    if (ctx && ctx.isReady && kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected') {
      return true;
    }
    await new Promise(r => setTimeout(r, 200));
  }
  return false;
}"""

RUN_CELL = """(index) => {
  const panel = window.jupyterapp.shell.currentWidget;
  panel.content.activeCellIndex = index;
  window.jupyterapp.commands.execute('notebook:run-cell');
  return true;
}"""


CURRENT_PATH = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return panel && panel.context ? panel.context.path : null;
}"""


def open_notebook(page: Any, url: str, path: str | None = None) -> None:
    """Open a notebook in JupyterLab and wait until it is the current tab and its kernel is idle.

    ``path``: the notebook's path in Lab (e.g. ``notebooks/x.ipynb``); Lab may first restore the
    tabs of an earlier visit, and cells must not run in one of those.
    """
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    if path is not None:
        page.wait_for_function(f"() => ({CURRENT_PATH})() === {json.dumps(path)}")
    if not page.evaluate(WAIT_FOR_KERNEL):
        raise AssertionError("the notebook's kernel never became idle")


def run_cell(page: Any, index: int) -> None:
    """Run one cell of the current notebook without waiting for it (it may wait for the user)."""
    page.evaluate(RUN_CELL, index)


def demo_sign_in(page: Any, username: str = "alice") -> None:
    """The user's part on the demo provider's (already open) login page: sign in, approve."""
    from nb_oauth2.demo import DEMO_USERS

    page.fill("#username", username)
    page.fill("#password", DEMO_USERS[username])
    page.click("button.approve")
    page.wait_for_selector("button[value=approve]")
    page.click("button[value=approve]")


def stamp_address(page: Any) -> None:
    """Show the page's address (without its query) on the page, for a screenshot to tell where it was."""
    page.evaluate("""() => {
      const old = document.getElementById('test-address-stamp');
      if (old) old.remove();
      const stamp = document.createElement('div');
      stamp.id = 'test-address-stamp';
      stamp.textContent = 'address: ' + location.origin + location.pathname + (location.search ? '?\u2026' : '');
      stamp.style.cssText = 'position:fixed;right:8px;bottom:30px;z-index:100000;background:#fffbe6;' +
        'border:1px solid #d4a72c;border-radius:4px;padding:2px 6px;font:12px monospace;color:#333';
      document.body.appendChild(stamp);
    }""")


def launch_browser(playwright: Any, profile_dir: Path) -> Any:
    return playwright.chromium.launch_persistent_context(
        str(profile_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 1000})


def catch_redirect(route, caught: list[str]) -> None:
    """Playwright does not route the request a 302 leads to, so catch the 302 to /callback itself."""
    if route.request.method != "POST":
        route.continue_()
        return
    response = route.fetch(max_redirects=0)
    location = response.headers.get("location", "")
    if response.status in (302, 303) and "/callback" in location:
        caught.append(location)
        route.fulfill(status=200, content_type="text/plain", body="redirect caught by the test")
    else:
        route.fulfill(response=response)


#: Run All in the current notebook, not awaited (a login cell waits for the user); evaluate in the page.
START_RUN_ALL = """() => {
  window.jupyterapp.commands.execute('notebook:run-all-cells');  // not awaited: the cells wait for the user
  return true;
}"""

#: Run All is over: the kernel is idle and no cell is queued or running ("[*]").
RUN_ALL_OVER = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel || kernel.status !== 'idle') return false;
  const prompts = [...panel.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length > 0 && !prompts.some(p => p.textContent.includes('*'));
}"""
