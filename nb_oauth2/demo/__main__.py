"""``python -m nb_oauth2.demo``: serve the demo provider until Ctrl-C."""

from __future__ import annotations

import sys

from .serve import main

if __name__ == "__main__":
    sys.exit(main())
