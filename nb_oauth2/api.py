"""The DataFrame helpers as users call them: ``session=`` may name a session of this kernel.

:mod:`nb_oauth2.frames` works with any ``requests.Session``; these wrappers add
one thing, looking a session up by name (or taking the default one) in the
kernel's registry, so that frames and the session layer need not know each other.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterator, TypeVar

import requests

from .frames import graphql, post_pages, readers
from .auth.registry import resolve_session

__all__ = ["read_json", "iter_pages", "iter_records", "to_parquet", "read_graphql", "read_json_post"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _by_name(reader: _F) -> _F:
    """``reader`` with ``session=`` also accepting a session name, or None for the default session."""

    @functools.wraps(reader)
    def wrapper(url: str, *args: Any, session: "requests.Session | str | None" = None, **options: Any) -> Any:
        return reader(url, *args, session=resolve_session(session), **options)

    signature = inspect.signature(reader)
    named = signature.parameters["session"].replace(default=None, annotation="requests.Session | str | None")
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[named if p.name == "session" else p for p in signature.parameters.values()])
    return wrapper  # type: ignore[return-value]


read_json = _by_name(readers.read_json)
iter_pages: Callable[..., Iterator[readers.Page]] = _by_name(readers.iter_pages)
iter_records: Callable[..., Iterator[dict]] = _by_name(readers.iter_records)
to_parquet = _by_name(readers.to_parquet)
read_graphql = _by_name(graphql.read_graphql)
read_json_post = _by_name(post_pages.read_json_post)
