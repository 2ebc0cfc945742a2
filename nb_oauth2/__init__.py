"""nb_oauth2: OAuth 2 from Jupyter, safely.

Sign in from a notebook cell, keep a session that refreshes itself for as long
as the kernel lives, and load protected JSON APIs into pandas DataFrames::

    import nb_oauth2 as oa
    demo = oa.login("demo")                       # a widget in notebooks
    df = oa.read_json(url, session=demo)

The package itself imports neither IPython nor ipywidgets; the Jupyter front
(``%load_ext nb_oauth2``) loads them lazily.

Inside a running IPython shell (a notebook kernel, ``jupyter execute``, terminal
IPython), ``import nb_oauth2`` and ``%load_ext nb_oauth2`` make nb_oauth2's own errors
(the :class:`OAuth2Error` tree, no other exception) show as their message and hint,
with the full traceback on demand (``%tb``); ``NB_OAUTH2_FULL_TRACEBACKS=1`` keeps
IPython's full tracebacks (:mod:`nb_oauth2.jupyter.error_display`).

``__all__`` is the public API. The protocol's parts (the flow classes and ``Step``
in :mod:`nb_oauth2.core.flows`, helpers such as ``error_from_response`` in
:mod:`nb_oauth2.core.errors`) are importable from their modules.
"""

from __future__ import annotations

import sys
from typing import Any

from .core.endpoint import ClientAuth, ScopeChangedWarning
from .core.errors import *  # noqa: F403  (the error tree is public)
from .core.errors import __all__ as _error_names
from .core.flows import LegacyGrantWarning
from .core.names import env_name
from .core.providers import PRESETS, Provider, discover, preset
from .core.redact import install_log_redaction
from .core.token import Token
from .frames.api_paginators import NextPageHeaderPaginator, SkipPaginator, StartingAfterPaginator
from .frames.pagination import BodyNextPaginator, CursorPaginator, LinkPaginator, OffsetPaginator, PagePaginator
from .jupyter.login_ui import login
from .auth.attempt import LoginAttempt
from .auth.config import define_profile, load_profile
from .auth.demo_profile import running_demo
from .auth.profile import Profile
from .auth.registry import logout, sessions, set_default
from .auth.registry import session as session
from .auth.session import Session
from .auth.store import InsecureStoreWarning

__version__ = "0.1.0"

__all__ = [
    # sign in, find and end sessions
    "login",
    "LoginAttempt",
    "session",
    "sessions",
    "set_default",
    "logout",
    # protected JSON APIs into DataFrames (pandas is imported on first use)
    "read_json",
    "iter_pages",
    "iter_records",
    "to_parquet",
    "read_graphql",
    "read_json_post",
    # paginate= when auto-detection cannot tell (e.g. Stripe's starting_after)
    "LinkPaginator",
    "BodyNextPaginator",
    "CursorPaginator",
    "PagePaginator",
    "OffsetPaginator",
    "StartingAfterPaginator",
    "SkipPaginator",
    "NextPageHeaderPaginator",
    # the values behind a login
    "Session",
    "Token",
    "Provider",
    "Profile",
    "ClientAuth",
    # providers and profiles
    "PRESETS",
    "preset",
    "discover",
    "load_profile",
    "define_profile",
    "env_name",
    "running_demo",
    # logging and Jupyter
    "install_log_redaction",
    "load_ipython_extension",
    # warnings to filter, and the error tree (OAuth2Error and its subclasses)
    "LegacyGrantWarning",
    "ScopeChangedWarning",
    "InsecureStoreWarning",
    *_error_names,
    "__version__",
]

install_log_redaction()  # logger filters only; http.client is left alone unless asked (http_client=True)

_LAZY = {"read_json", "iter_pages", "iter_records", "to_parquet", "read_graphql", "read_json_post"}


def __getattr__(name: str) -> Any:
    """The DataFrame helpers import pandas on first use only."""
    if name in _LAZY:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'nb_oauth2' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nb_oauth2``: register the ``%oauth2`` magics; nb_oauth2's errors show short."""
    from .jupyter.error_display import install
    from .jupyter.magics import load_ipython_extension as _load

    _load(ipython)
    install(ipython)


def _short_errors_in_running_ipython() -> None:
    """In a running IPython shell, nb_oauth2's errors show short (never imports IPython itself)."""
    if "IPython" in sys.modules:
        from .jupyter.error_display import install

        install()


_short_errors_in_running_ipython()
