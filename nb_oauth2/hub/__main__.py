"""``python -m nb_oauth2.hub``: run the JupyterHub service (see :mod:`nb_oauth2.hub.app`)."""

from __future__ import annotations

import sys

from .app import main

if __name__ == "__main__":
    sys.exit(main())
