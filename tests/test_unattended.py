"""Unattended runs never hang: the tutorials under plain ``jupyter execute``, without the demo autopilot.

``jupyter execute`` (nbclient) sends execute requests with ``allow_stdin`` False: nobody can answer a
sign-in. Each login then uses the token seeded into a file store beforehand (``NB_OAUTH2_STORE=file``,
``NB_OAUTH2_STATE_DIR``), as a CI job or a cron run would. The demo provider must outlive the kernels
for its tokens to stay valid: the test runs one per notebook in this process and shares it with the
kernel (``share_demo`` -> ``NB_OAUTH2_DEMO_SHARED``). Without a seeded token the login cell fails at
once with the advice on how to seed one, instead of waiting for a click that never comes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import pytest

import nb_oauth2 as oa
from nb_oauth2 import demo
from nb_oauth2.auth import registry
from nb_oauth2.auth.demo_profile import share_demo
from nb_oauth2.core.flows import LegacyGrantWarning

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not (find_spec("nbclient") and find_spec("ipykernel")),
                                 reason="nbclient or ipykernel is not installed (see the test extra)")]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

#: the sessions each tutorial signs in (name -> login options); client credentials need no seed
SEEDS = {
    "01_quickstart.ipynb": {"demo": {}},
    "02_grants.ipynb": {"code": {}, "device": {}, "implicit": {"flow": "implicit"}, "password": {}},
    "03_tokens_over_time.ipynb": {"demo": {}, "stock": {}, "kept": {}},
    "04_apis_to_dataframes.ipynb": {"demo": {}, "users-only": {"scope": "read:users"}},
}


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _kernel_env(tmp: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NB_OAUTH2_")}  # no autopilot, no real providers
    env.update({"XDG_CACHE_HOME": str(tmp / "cache"), "XDG_CONFIG_HOME": str(tmp / "config"),
                "XDG_DATA_HOME": str(tmp / "data"), "XDG_STATE_HOME": str(tmp / "xdg-state"),
                "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "MPLBACKEND": "Agg"})
    env.pop("JUPYTERHUB_SERVICE_PREFIX", None)
    env.update(extra)
    return env


def _seed(share, state_dir: Path, sessions: dict[str, dict]) -> None:
    """Sign in once per session into the file store, as a person would before the unattended runs."""
    saved_demo = getattr(registry._state(), "demo", None)
    try:
        with _environment({**share.env, "NB_OAUTH2_STATE_DIR": str(state_dir)}), warnings.catch_warnings():
            warnings.simplefilter("ignore", LegacyGrantWarning)
            driver = oa.running_demo().driver
            for name, options in sessions.items():
                oa.login("demo", name=name, store="file", browser=driver.authorize, **options)
    finally:
        state = registry._state()
        with state.lock:  # unregister without forgetting (registry.clear() would delete the stored tokens)
            state.sessions.clear()
            state.default = None
        state.demo = saved_demo


def _execute(notebook: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jupyter", "execute", "--timeout=120", str(notebook)],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=240)


def test_tutorials_run_unattended_with_a_seeded_store(tmp_path):
    """Tutorials 01-04 under `jupyter execute`, no autopilot: every login uses its seeded token."""
    jobs = {}
    providers = []
    try:
        for name, sessions in SEEDS.items():
            work = tmp_path / Path(name).stem
            work.mkdir()
            provider = demo.start(device_interval=1)
            share = share_demo(provider)
            providers.append((provider, share))
            _seed(share, work / "state", sessions)
            shutil.copy(NOTEBOOKS / name, work / name)
            env = _kernel_env(work, {**share.env, "NB_OAUTH2_STORE": "file", "NB_OAUTH2_STATE_DIR": str(work / "state")})
            jobs[name] = (work / name, env, work)
        with ThreadPoolExecutor(len(jobs)) as pool:
            results = dict(zip(jobs, pool.map(lambda job: _execute(*job), jobs.values())))
    finally:
        for provider, share in providers:
            share.close()
            provider.stop()
    failed = {name: (r.stderr or r.stdout)[-3000:] for name, r in results.items() if r.returncode != 0}
    assert not failed, failed


def test_without_a_seeded_store_the_login_cell_fails_at_once_with_advice(tmp_path):
    """No stored token and nobody to answer: the quickstart's login cell raises ReauthRequired with the seeding
    advice; the run ends (no hang until the cell timeout)."""
    shutil.copy(NOTEBOOKS / "01_quickstart.ipynb", tmp_path / "01_quickstart.ipynb")
    env = _kernel_env(tmp_path, {"NB_OAUTH2_STATE_DIR": str(tmp_path / "state")})
    result = _execute(tmp_path / "01_quickstart.ipynb", env, tmp_path)
    assert result.returncode != 0
    output = result.stderr + result.stdout
    assert "ReauthRequired" in output and "seed a token for unattended runs" in output
    assert "store='file'" in output and "NB_OAUTH2_STORE=file" in output
