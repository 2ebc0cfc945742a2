"""Where the tutorial notebooks are: beside the package in a checkout, or the installed copy."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["QUICKSTART", "HUB_TUTORIALS", "notebooks_dir"]

QUICKSTART = "01_quickstart.ipynb"
#: tutorials that need a JupyterHub running the nb-oauth2 service (elsewhere their cells say "skipped"):
#: tests run them against a real hub (tests/test_hub_service.py), not against the embedded demo
HUB_TUTORIALS = ("06_on_jupyterhub.ipynb",)


def notebooks_dir() -> Path | None:
    """The folder holding the tutorials (checkout, working directory, then ``share/nb_oauth2``)."""
    checkout = Path(__file__).resolve().parents[2]
    installed = Path(sys.prefix) / "share" / "nb_oauth2" / "notebooks"
    for candidate in (checkout / "notebooks", Path.cwd() / "notebooks", installed):
        if (candidate / QUICKSTART).exists():
            return candidate
    return None
