"""Is a notebook frontend attached to this process, and can it answer a prompt?"""

from __future__ import annotations

import sys

__all__ = ["in_notebook", "frontend_can_prompt"]


def _shell() -> object | None:
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython else None


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a widget frontend may be attached)."""
    shell = _shell()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def frontend_can_prompt() -> bool:
    """In a Jupyter kernel: does the running cell's frontend answer ``input()``/``getpass()``?

    ipykernel keeps the execute request's ``allow_stdin`` as ``kernel._allow_stdin``: True for
    JupyterLab, Notebook 7, VS Code and Colab (their stdin box, Run All included), False for
    nbclient, papermill and ``jupyter execute``, where ``input()`` raises StdinNotImplementedError.
    """
    kernel = getattr(_shell(), "kernel", None)
    return bool(getattr(kernel, "_allow_stdin", False))
