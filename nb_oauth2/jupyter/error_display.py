"""Short errors in IPython and Jupyter: nb_oauth2's own errors as their message and hint.

An :class:`~nb_oauth2.core.errors.OAuth2Error` (any class of the tree, nothing else) raised by a
cell shows as two or three lines instead of the ~60 of a traceback through pagination, fetch and
requests::

    InsufficientScope: GET https://api.example/events needs the scope 'read:events'; sign in ...
    Sign in again asking for it.                 <- the error's hint, when it has one
    (%tb shows the full traceback)

``%tb`` right after prints the full traceback, in the current ``%xmode``. The display goes
through IPython's own hook for custom exception display (``InteractiveShell.set_custom_exc``),
per shell: a handler another package registered keeps handling its own exception types, and
every other exception is shown by IPython as before. The text is redacted
(:func:`nb_oauth2.core.redact.redact`) and the cell still fails (Run All stops, nbclient reports it).

When: ``%load_ext nb_oauth2``, and ``import nb_oauth2`` inside a running IPython shell (a
notebook kernel, ``jupyter execute``, terminal IPython); plain Python is left alone.

Opting out: ``NB_OAUTH2_FULL_TRACEBACKS=1`` in the environment (nothing is installed),
:func:`show_full_tracebacks` (this kernel, reversible), ``%config OAuth2Magics.show_traceback = True``,
or :func:`uninstall`. With ``%pdb`` on, the full traceback and the debugger are shown as usual.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any

from ..core.errors import OAuth2Error
from ..core.redact import redact

__all__ = ["install", "uninstall", "installed", "show_full_tracebacks", "short_lines", "OPT_OUT_ENV"]

#: set to 1 / true / yes before ``import nb_oauth2`` (or ``%load_ext``) to keep IPython's full tracebacks
OPT_OUT_ENV = "NB_OAUTH2_FULL_TRACEBACKS"
TB_LINE = "(%tb shows the full traceback)"
_RED, _RESET = "\x1b[0;31m", "\x1b[0m"
_full = False  # show_full_tracebacks() was called
_previous: dict[int, tuple[tuple[type[BaseException], ...], Any]] = {}  # id(shell) -> the handler before ours


def _opted_out() -> bool:
    return os.environ.get(OPT_OUT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _current_shell() -> Any:
    """The running IPython shell, without importing IPython (None when IPython is not loaded or not running)."""
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    return get_ipython() if callable(get_ipython) else None


def show_full_tracebacks(on: bool = True) -> None:
    """Show nb_oauth2's errors with IPython's full traceback (``on=False``: short again), in this kernel."""
    global _full
    _full = bool(on)


def installed(shell: Any = None) -> bool:
    """Whether ``shell`` (default: the running one) shows nb_oauth2's errors short."""
    shell = shell if shell is not None else _current_shell()
    return shell is not None and OAuth2Error in tuple(getattr(shell, "custom_exceptions", ()))


def install(shell: Any = None) -> bool:
    """Show nb_oauth2's errors short in ``shell`` (default: the running one); True when installed.

    Idempotent; does nothing outside IPython or with ``NB_OAUTH2_FULL_TRACEBACKS`` set.
    """
    shell = shell if shell is not None else _current_shell()
    if shell is None or _opted_out() or not hasattr(shell, "set_custom_exc"):
        return False
    if installed(shell):
        return True
    types = tuple(shell.custom_exceptions)
    previous = shell.CustomTB if types else None
    _previous[id(shell)] = (types, previous)

    def handler(self: Any, etype: type[BaseException], value: BaseException, tb: TracebackType | None,
                tb_offset: int | None = None) -> list[str] | None:
        if not isinstance(value, OAuth2Error):  # another package's exception type: its own handler
            return previous(etype, value, tb, tb_offset=tb_offset) if previous is not None else None
        _show(self, etype, value, tb, tb_offset)
        return None

    shell.set_custom_exc(types + (OAuth2Error,), handler)
    return True


def uninstall(shell: Any = None) -> None:
    """Give ``shell`` (default: the running one) its previous custom exception handling back."""
    shell = shell if shell is not None else _current_shell()
    if shell is None or not installed(shell):
        return
    types, previous = _previous.pop(id(shell), ((), None))
    if previous is None:
        shell.set_custom_exc((), None)  # IPython's own initial state
    else:
        shell.custom_exceptions, shell.CustomTB = types, previous


def short_lines(exc: BaseException, *, color: bool = False) -> list[str]:
    """The short display of ``exc``: ``Class: message``, the hint if any, and how to see the traceback."""
    name = type(exc).__name__
    if isinstance(exc, OAuth2Error):
        message, hint = exc.summary, exc.hint
    else:
        message, hint = str(exc), None
    head = f"{_RED}{name}{_RESET}" if color else name
    lines = [f"{head}: {redact(' '.join(message.split()))}"]
    if hint:
        lines.append(redact(hint))
    lines.append(TB_LINE)
    return lines


def _wants_full(shell: Any) -> bool:
    """Full tracebacks asked for: show_full_tracebacks(), the environment, %pdb, or OAuth2Magics.show_traceback."""
    if _full or _opted_out() or getattr(shell, "call_pdb", False):
        return True
    return any(type(c).__name__ == "OAuth2Magics" and getattr(c, "show_traceback", False)
               for c in getattr(shell, "configurables", ()))


def _show(shell: Any, etype: type[BaseException], value: BaseException, tb: TracebackType | None,
          tb_offset: int | None) -> None:
    if _wants_full(shell):
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # what %tb, %debug and pdb.pm() read
    if sys.version_info >= (3, 12):
        sys.last_exc = value
    try:
        color = str(getattr(shell, "colors", "nocolor")).lower() != "nocolor"
        lines = short_lines(value, color=color)
    except Exception:  # never lose the error: IPython would drop our handler and every custom one with it
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return
    shell._showtraceback(etype, value, lines)  # the shell's display: ipykernel sends it as the cell's error output
