"""``nb-oauth2 demo``: JupyterLab on a temporary copy of the tutorials, stopped with its kernels.

The port is chosen before JupyterLab starts (8888 when free, else any free one) and JupyterLab is
told to take exactly that one (``port_retries=0``), so the printed URL is the one it listens on.
JupyterLab runs in its own process group; SIGINT (Ctrl-C) and SIGTERM are forwarded to it as
SIGTERM (its clean shutdown, which stops the kernels), and whatever of it and its kernels is still
running after :data:`STOP_SECONDS` is killed. The temporary copy is removed on the way out.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from .notebooks import QUICKSTART

__all__ = ["run_lab", "choose_port", "DEFAULT_PORT", "STOP_SECONDS"]

DEFAULT_PORT = 8888
#: seconds JupyterLab is given to shut its kernels down before it and they are killed
STOP_SECONDS = 20


#: the signals that stop the demo (SIGHUP: its terminal closed)
_STOP_SIGNALS = tuple(name for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class _Stop(Exception):
    """A signal asked the demo to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _port_free(ip: str, port: int) -> int | None:
    """``port`` (a free one for 0) if a server could listen on it at ``ip`` now, else None."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as tornado does: TIME_WAIT is free
        try:
            sock.bind((ip, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return None
            raise
        return sock.getsockname()[1]


def choose_port(ip: str, wanted: int = 0) -> int | None:
    """The port to give JupyterLab: ``wanted`` if set and free (None when it is taken), else
    :data:`DEFAULT_PORT` when free, else a free port chosen by the system."""
    if wanted:
        return _port_free(ip, wanted)
    return _port_free(ip, DEFAULT_PORT) or _port_free(ip, 0)


def _shown_host(ip: str) -> str:
    """The host to print for ``ip``: a wildcard address is reached through loopback."""
    if ip in ("", "0.0.0.0", "*"):
        return "127.0.0.1"
    if ip == "::":
        return "[::1]"
    return f"[{ip}]" if ":" in ip else ip


def _parents() -> dict[int, int]:
    """{pid: parent pid} of every process, from psutil or Linux's /proc; {} without either."""
    try:
        import psutil
    except ImportError:
        parents = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        return parents
    return {proc.info["pid"]: proc.info["ppid"] or 0 for proc in psutil.process_iter(["pid", "ppid"])}


def descendants(pid: int) -> set[int]:
    """The processes ``pid`` started, and theirs (kernels run in process groups of their own)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie has exited: only its parent's wait is left
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _end(pids: set[int], seconds: float = 5) -> None:
    """SIGTERM to each of ``pids`` still running, SIGKILL to those still running ``seconds`` later."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + seconds
        while (pids := {pid for pid in pids if _alive(pid)}) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not pids:
            return


@contextlib.contextmanager
def _signals_stop() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`_Stop` while the demo runs."""

    def stop(signum: int, _frame: Any) -> None:
        raise _Stop(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (getattr(signal, name) for name in _STOP_SIGNALS)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore_stop_signals() -> None:
    for name in _STOP_SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_IGN)


def stop_lab(process: subprocess.Popen, timeout: float = STOP_SECONDS) -> None:
    """Stop JupyterLab and every process it started: SIGTERM (a clean shutdown that stops the kernels),
    then, for what is left after ``timeout`` seconds, SIGKILL to its process group and its kernels."""
    started = descendants(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        started |= descendants(process.pid)  # a kernel starting just now
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session): the server and helpers
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
    _end(started)


def _kernel_language_info() -> dict | None:
    """What this environment's ``python3`` kernel reports as its language (ipykernel's own dict)."""
    try:
        from ipykernel.ipkernel import IPythonKernel
    except ImportError:
        return None
    info = getattr(IPythonKernel, "language_info", None)
    return dict(info) if isinstance(info, dict) else None


def copy_tutorials(notebooks: Path, target: Path) -> None:
    """Copy the tutorials to ``target``, each told the ``language_info`` its kernel will report: JupyterLab
    writes the kernel's into the notebook when it connects, which would mark a tutorial modified before
    anything was run (the installed notebooks are not touched)."""
    shutil.copytree(notebooks, target)
    language_info = _kernel_language_info()
    if language_info is None:
        return
    for path in sorted(target.glob("*.ipynb")):
        try:
            notebook = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        metadata = notebook.setdefault("metadata", {})
        if metadata.get("kernelspec", {}).get("language", "python") == "python":
            metadata["language_info"] = language_info
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def lab_command(*, ip: str, port: int, token: str, root: Path, open_browser: bool) -> list[str]:
    command = [
        sys.executable, "-m", "jupyterlab", f"--ServerApp.ip={ip}", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.default_url=/lab/tree/notebooks/{QUICKSTART}",
    ]
    if not open_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def run_lab(notebooks: Path, *, ip: str = "127.0.0.1", port: int = 0, open_browser: bool = True) -> int:
    """Run JupyterLab on a temporary copy of ``notebooks`` until it exits or a signal stops it; the exit
    status is JupyterLab's, or 128 + the signal's number."""
    try:
        chosen = choose_port(ip, port)
    except OSError as exc:  # an address this machine does not have
        print(f"JupyterLab cannot listen at {ip}: {exc.strerror or exc}.", file=sys.stderr)
        return 2
    if chosen is None:
        print(f"Port {port} is in use at {ip}; pass another --port, or none to take a free one.", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="nb-oauth2-demo-"))
    try:
        copy_tutorials(notebooks, workdir / "notebooks")
        token = secrets.token_urlsafe(16)
        print(f"Starting JupyterLab on the quickstart tutorial (working copy in {workdir}, removed on exit).")
        print(f"Open: http://{_shown_host(ip)}:{chosen}/lab/tree/notebooks/{QUICKSTART}?token={token}", flush=True)
        print("The notebook starts the embedded demo provider itself. Ctrl-C stops everything.", flush=True)
        with _signals_stop():
            process = subprocess.Popen(lab_command(ip=ip, port=chosen, token=token, root=workdir,
                                                   open_browser=open_browser), start_new_session=True)
            try:
                return process.wait()
            except _Stop as stop:
                print("Stopping JupyterLab and its kernels...", file=sys.stderr, flush=True)
                return 128 + stop.signum
            finally:
                _ignore_stop_signals()  # a second Ctrl-C does not cut the shutdown short
                stop_lab(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
