"""The plain-script example runs end to end with no Jupyter import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_plain_script_discovers_logs_in_with_grants_refreshes_and_revokes():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "plain_script.py")], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    for expected in ("discovered http://127.0.0.1:", "web: authorization_code", "svc: client_credentials",
                     "dev: device_code", "after forced expiry: HTTP 200, 1 token request", "read_json: 5000 rows",
                     "revoked: True", "was signed out", "bad client: InvalidClient"):
        assert expected in text, expected
