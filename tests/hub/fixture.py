"""A real JupyterHub on 127.0.0.1: configurable-http-proxy, DummyAuthenticator, local user servers.

Measured recipe in /work/shared/BROWSER_TESTS.md. The hub, its proxy and the
users' JupyterLab servers run from this Python environment (``Spawner.cmd`` is
its ``jupyterhub-singleuser``, with jupyter-server-proxy enabled as installed),
on free loopback ports, with every file under one temporary directory: hub
database and cookie secret, logs, and the users' home directories (fresh
``HOME`` per user, so JupyterLab's settings, workspaces and runtime files are
fresh too; the "Jupyter news?" toast is switched off in the seeded settings).

Reuse: ``from tests.hub import jupyterhub  # noqa: F401`` in a test module gives
the module-scoped fixture ``jupyterhub`` (a started :class:`Hub`, stopped after
the module). It skips when Chromium, Playwright, JupyterHub, jupyter-server-proxy
or configurable-http-proxy are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.browser_helpers import free_port, skip_reason, stop_in_background

__all__ = ["Hub", "USERS", "hub_skip_reason", "jupyterhub"]

REPO = Path(__file__).resolve().parent.parent.parent
USERS = ("alice", "bob")
#: JupyterLab server options for every user's server (quiet, scriptable; see BROWSER_TESTS.md)
LAB_ARGS = ["--allow-root", "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True"]
_LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                 {"fetchNews": "false", "checkForUpdates": False},
                 # a saved notebook keeps its widgets' state (what a user who turned it on shares): tests check it
                 "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True}}


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _singleuser() -> str | None:
    local = Path(sys.executable).parent / "jupyterhub-singleuser"
    return str(local) if local.exists() else shutil.which("jupyterhub-singleuser")


def hub_skip_reason() -> str | None:
    """Why a hub cannot run here (None when it can); browsers are not checked."""
    if not _has_module("jupyterhub"):
        return "jupyterhub is not installed (pip install jupyterhub)"
    if _singleuser() is None:
        return "jupyterhub-singleuser is not on this environment's PATH"
    if shutil.which("configurable-http-proxy") is None:
        return "configurable-http-proxy is not installed (npm install -g configurable-http-proxy)"
    if not _has_module("jupyter_server_proxy"):
        return "jupyter-server-proxy is not installed (pip install jupyter-server-proxy)"
    if not _has_module("jupyterlab"):
        return "jupyterlab is not installed"
    return None


class Hub:
    """One JupyterHub under ``root``; :meth:`start`, :meth:`start_server`, :meth:`login`, :meth:`stop`."""

    def __init__(self, root: Path, users: tuple[str, ...] = USERS, *, extra_config: str = "",
                 extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.users = users
        #: appended to the generated jupyterhub_config.py (e.g. the nb-oauth2 service's snippet)
        self.extra_config = extra_config
        #: added to the hub's environment (after the NB_OAUTH2_/JUPYTERHUB_ variables are dropped)
        self.extra_env = dict(extra_env or {})
        self.port, self.hub_port, self.proxy_api_port = free_port(), free_port(), free_port()
        self.password = "hub-" + os.urandom(6).hex()
        self.api_token = os.urandom(24).hex()
        self.homes = root / "home"
        self.log_path = root / "hub.log"
        self.proc: subprocess.Popen | None = None
        self._server_pids: dict[str, int] = {}
        self._log: Any = None

    @property
    def url(self) -> str:
        """The hub's public address (configurable-http-proxy), e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def user_url(self, user: str, path: str = "") -> str:
        return f"{self.url}/user/{user}/{path.lstrip('/')}"

    def home(self, user: str) -> Path:
        """The user's home directory (the server's root dir), created with quiet Lab settings."""
        home = self.homes / user
        settings = home / ".jupyter" / "lab" / "user-settings"
        for name, value in _LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text(json.dumps(value))
        return home

    # -- lifecycle ------------------------------------------------------------------------

    def _config(self) -> str:
        chp = shutil.which("configurable-http-proxy")
        return "\n".join([
            "c = get_config()  # noqa",
            f"c.JupyterHub.bind_url = 'http://127.0.0.1:{self.port}/'",
            f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{self.hub_port}'",
            f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{self.proxy_api_port}'",
            f"c.ConfigurableHTTPProxy.command = [{chp!r}]",
            f"c.ConfigurableHTTPProxy.pid_file = {str(self.root / 'proxy.pid')!r}",
            f"c.JupyterHub.pid_file = {str(self.root / 'hub.pid')!r}",
            f"c.JupyterHub.db_url = 'sqlite:///{self.root / 'jupyterhub.sqlite'}'",
            f"c.JupyterHub.cookie_secret_file = {str(self.root / 'cookie_secret')!r}",
            "c.JupyterHub.authenticator_class = 'dummy'",
            f"c.DummyAuthenticator.password = {self.password!r}",
            f"c.Authenticator.allowed_users = {set(self.users)!r}",
            "c.JupyterHub.spawner_class = 'simple'",
            f"c.SimpleLocalProcessSpawner.home_dir_template = {str(self.homes / '{username}')!r}",
            f"c.Spawner.cmd = [{_singleuser()!r}]",
            f"c.Spawner.args = {LAB_ARGS!r}",
            "c.Spawner.default_url = '/lab'",
            "c.Spawner.ip = '127.0.0.1'",
            "c.Spawner.http_timeout = 90",
            "c.Spawner.start_timeout = 120",
            f"c.JupyterHub.services = [{{'name': 'tests', 'api_token': {self.api_token!r}}}]",
            "c.JupyterHub.load_roles = [{'name': 'tests', 'services': ['tests'], 'scopes': "
            "['admin:users', 'admin:servers', 'admin:server_state', 'list:users', 'tokens']}]",
            "",
            self.extra_config,
            "",
        ])

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JUPYTERHUB_", "JUPYTER_", "JPY_", "IPYTHON", "NB_OAUTH2_"))}
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")  # kept by Spawner.env_keep
        for name in ("SSH_CONNECTION", "SSH_CLIENT"):
            env.pop(name, None)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60) -> "Hub":
        self.root.mkdir(parents=True, exist_ok=True)
        for user in self.users:
            self.home(user)
        config = self.root / "jupyterhub_config.py"
        config.write_text(self._config())
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (a restart appends)
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=self.root,
                                     env=self._environment(), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterHub exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if requests.get(f"{self.url}/hub/health", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"JupyterHub did not answer in {timeout:g} s: {self.log_tail()}")

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The hub's REST API as the ``tests`` service (admin of users and servers)."""
        headers = {"Authorization": f"token {self.api_token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}/hub/api/{path.lstrip('/')}", headers=headers,
                                timeout=kwargs.pop("timeout", 30), **kwargs)

    def token(self, user: str, scopes: list[str], note: str = "tests") -> str:
        """A new API token of ``user`` with ``scopes`` (created by the ``tests`` service)."""
        resp = self.api("POST", f"users/{user}/tokens", json={"scopes": scopes, "note": note, "expires_in": 3600})
        if resp.status_code != 201:
            raise RuntimeError(f"token for {user}: HTTP {resp.status_code} {resp.text[:200]}")
        return resp.json()["token"]

    def server_environ(self, user: str) -> dict[str, str]:
        """The environment of ``user``'s running server process (its JUPYTERHUB_API_TOKEN included)."""
        pid = self._server_pids[user]
        raw = Path(f"/proc/{pid}/environ").read_bytes()
        return dict(item.split("=", 1) for item in raw.decode("utf-8", "replace").split("\0") if "=" in item)

    def start_server(self, user: str, timeout: float = 120) -> None:
        """Spawn ``user``'s server and wait until the hub routes to it."""
        resp = self.api("POST", f"users/{user}/server")
        if resp.status_code not in (201, 202, 400):  # 400: already running
            raise RuntimeError(f"spawning {user}'s server: HTTP {resp.status_code} {resp.text[:200]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"users/{user}").json()
            server = (model.get("servers") or {}).get("", {})
            pid = (server.get("state") or {}).get("pid")
            if pid:
                self._server_pids[user] = int(pid)
            if server.get("ready"):
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"{user}'s server did not start in {timeout:g} s: {self.log_tail()}")

    def login(self, page: Any, user: str) -> None:
        """Sign ``user`` in to the hub in a Playwright page, as a person would (the login form).

        The page lands on the hub's home page (not on the user's server, whose JupyterLab would load).
        """
        page.goto(f"{self.url}/hub/login?next=%2Fhub%2Fhome")
        page.fill("#username_input", user)
        page.fill("#password_input", self.password)
        page.click("#login_submit")
        page.wait_for_url(lambda url: "/hub/login" not in url)

    def session(self, user: str) -> requests.Session:
        """A requests session signed in to the hub as ``user`` (GET login, _xsrf cookie, POST)."""
        http = requests.Session()
        http.trust_env = False
        http.get(f"{self.url}/hub/login", timeout=30).raise_for_status()
        xsrf = http.cookies.get("_xsrf", "")
        resp = http.post(f"{self.url}/hub/login", data={"username": user, "password": self.password, "_xsrf": xsrf},
                         timeout=30, allow_redirects=False)
        if resp.status_code != 302:
            raise RuntimeError(f"hub login as {user}: HTTP {resp.status_code}")
        return http

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the hub's process group (hub, proxy), then any user server left running."""
        if self.proc is not None and self.proc.poll() is None:
            for user in self.users:  # record the servers' pids before the hub forgets them
                try:
                    server = self.api("GET", f"users/{user}", timeout=3).json().get("servers", {}).get("", {})
                    if (server.get("state") or {}).get("pid"):
                        self._server_pids[user] = int(server["state"]["pid"])
                except (requests.RequestException, ValueError, AttributeError):
                    pass
            os.killpg(self.proc.pid, signal.SIGTERM)  # the hub stops its users' servers and the proxy
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for pid in self._server_pids.values():  # a user server runs in its own session (start_new_session)
            _kill_group_if_ours(pid, str(self.homes))
        if self._log is not None:
            self._log.close()
            self._log = None


def _kill_group_if_ours(pid: int, marker: str) -> None:
    """SIGKILL the process group of ``pid`` if it is still a server started in our temp dir."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return  # gone
    if not cwd.startswith(marker):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="module")
def jupyterhub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A running hub for the test module (users alice and bob); skipped when a piece is missing.

    Stopped in the background after the module (the session's end waits for it)."""
    reason = skip_reason() or hub_skip_reason()
    if reason:
        pytest.skip(reason)
    hub = Hub(tmp_path_factory.mktemp("jupyterhub"))
    try:
        hub.start()
        yield hub
    finally:
        stop_in_background(hub.stop)
