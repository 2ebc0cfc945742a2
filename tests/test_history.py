"""history.sqlite holds no token (SECURITY_CASES figure "leakage"), even with outputs logged."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

SESSION = """\
%load_ext nb_oauth2
import nb_oauth2 as oa, nb_oauth2.jupyter.magics as m
demo = oa.running_demo()
m.BROWSER_HOOK = demo.driver.authorize
%oauth2 login demo
%oauth2 status
oa.session("demo")
oa.session("demo").token_info
oa.session("demo").token
df = oa.read_json(demo.url + "/api/users", session="demo", progress=False); df.shape
%oauth2 login demo --client-secret typed-by-mistake-1234
open(SECRETS, "w").write(oa.session("demo").token_info.access_token + " " + oa.session("demo").token_info.refresh_token)
"""


def test_terminal_ipython_history_sqlite_holds_no_token(tmp_path: Path):
    """Case 36 / leakage figure: a real terminal IPython with db_log_output=True keeps no token in history.sqlite."""
    hist, secrets = tmp_path / "history.sqlite", tmp_path / "secrets.txt"
    script = f"SECRETS = {str(secrets)!r}\n" + SESSION
    env = {k: v for k, v in os.environ.items() if not k.startswith("NB_OAUTH2_")}
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    out = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", f"--HistoryManager.hist_file={hist}",
         "--HistoryManager.db_log_output=True"],
        input=script, capture_output=True, text=True, timeout=120, env=env)
    tokens = secrets.read_text().split()
    assert len(tokens) == 2, out.stdout[-2000:] + out.stderr[-2000:]
    with sqlite3.connect(hist) as db:
        lines = db.execute("select count(*) from history").fetchone()[0]
        outputs = db.execute("select count(*) from output_history").fetchone()[0]
    assert lines >= 12 and outputs >= 4  # the session really was recorded, outputs included
    data = hist.read_bytes()
    for token in tokens:
        assert token.encode() not in data
        assert token not in out.stdout and token not in out.stderr
    assert "history" in out.stderr and "keyring" in out.stderr  # case 35: refused, with where secrets go
    assert "typed-by-mistake-1234" not in out.stderr + out.stdout
