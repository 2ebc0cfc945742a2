"""POST-body pagination: a query endpoint that pages by a cursor in its JSON body (Notion's style).

:func:`read_json_post` POSTs a JSON body and reads the records of the answer; while the answer says
there is more (``has_more``) it POSTs the same body again with the answer's cursor (``next_cursor``)
as ``start_cursor``. That is Notion's database query (``POST /v1/databases/{id}/query``); other
APIs that page a POST this way are declared with ``cursor_field`` / ``more_field`` / ``cursor_param``.
Requests go through :class:`~nb_oauth2.frames.fetch.Fetcher` (retries, waits, byte cap, deadline) and
records become one frame as in :func:`~nb_oauth2.frames.readers.read_json`
(:mod:`nb_oauth2.frames.columns`: nested objects as ``sep``-joined columns, ``meta``, ``max_level``).

The loop (:func:`walk_posts`) and the records -> frame step (:func:`frame_of`) are shared with
:mod:`nb_oauth2.frames.graphql`, which feeds ``pageInfo.endCursor`` back as a query variable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import requests
from requests.structures import CaseInsensitiveDict

from ..core.errors import ConfigurationError, PaginationError, ResultTooLarge
from ..core.redact import is_secret_param, register_secret
from ..core.urls import checked_url
from ..core.warn import warn_user
from .columns import _Columns, extract_records, frame_from_chunks
from .fetch import Fetcher
from .next_links import shown_url, url_problem
from .page_fields import field_path, get_path
from .progress import ProgressBar
from .walk_rules import DEFAULT_MAX_PAGES, MAX_EMPTY_PAGES, page_cap_error

__all__ = ["PostPage", "read_json_post", "walk_posts", "frame_of", "post_fetcher", "register_body_secrets",
           "DEFAULT_MAX_PAGES"]

_TO = ("pandas", "polars", "arrow")


@dataclass(frozen=True)
class PostPage:
    """What one answer says: its records, whether there is more, the cursor to send for the rest.

    ``body`` is the parsed answer (``meta=`` reads it); ``total_pages`` the page count when the answer
    tells it (the progress bar's total)."""

    records: list
    more: bool
    cursor: Any = None
    body: Any = None
    total_pages: int | None = None


# -- set-up shared with graphql ----------------------------------------------------------------


class _WithHeaders:
    """``session`` sending ``headers`` (e.g. ``Notion-Version``) with every request, left unchanged itself."""

    def __init__(self, session: Any, headers: Mapping[str, str]) -> None:
        self._session = session
        self._extra = dict(headers)
        self.headers = CaseInsensitiveDict({**session.headers, **self._extra})  # what Fetcher consults

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs["headers"] = {**self._extra, **(kwargs.get("headers") or {})}
        return self._session.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def _check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """``headers`` as a dict; the values of secret ones (Authorization, X-API-Key) are registered for
    redaction, so they never show in a message."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError("headers= must be a mapping of header names to values.")
    for name, value in headers.items():
        if isinstance(value, str) and (is_secret_param(str(name)) or str(name).lower() == "authorization"):
            register_secret(value)
            register_secret(value.split(" ", 1)[-1])  # the credential after "Bearer "
    return dict(headers)


def register_body_secrets(value: Any, depth: int = 0) -> None:
    """Register for redaction the string values of secret-named keys (``api_key``, ``token``, ...) anywhere in a
    POST body or GraphQL variables: a server's error that echoes them never shows them."""
    if depth > 32:
        return
    if isinstance(value, Mapping):
        for key, child in value.items():
            if isinstance(child, str) and isinstance(key, str) and is_secret_param(key):
                register_secret(child)
            else:
                register_body_secrets(child, depth + 1)
    elif isinstance(value, (list, tuple)):
        for child in value:
            register_body_secrets(child, depth + 1)


def post_fetcher(url: Any, *, session: Any, who: str, params: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | tuple[float, float] = (5, 30),
                 retries: int = 3, max_wait: float = 60, max_page_bytes: int | None = 50_000_000,
                 bar: ProgressBar | None = None, fetcher_options: Mapping[str, Any] | None = None,
                 ) -> tuple[str, Fetcher]:
    """(the checked URL with ``params``, a Fetcher sending through ``session`` with ``headers``).
    ConfigurationError for a malformed URL or a session that is not a requests.Session (case 58)."""
    problem = url_problem(url)
    full = url
    if problem is None and params:
        try:
            full = requests.Request("POST", url, params=params).prepare().url
        except (requests.RequestException, ValueError, TypeError):
            problem = "requests cannot build a request from it and params="
    if problem is not None:
        shown = shown_url(url) if isinstance(url, str) else type(url).__name__
        raise ConfigurationError(f"{who} needs an http(s) URL; {shown!r} is not one: {problem}.")
    if isinstance(session, str) or not hasattr(session, "request") or not hasattr(session, "headers"):
        raise ConfigurationError(f"session= must be a requests.Session (e.g. from nb_oauth2.login); "
                                 f"nb_oauth2.{who} also takes a session's name.")
    checked_url(full)  # cases 46, 47: the request goes where requests sends it
    extra = _check_headers(headers)
    http = _WithHeaders(session, extra) if extra else session
    fetcher = Fetcher(http, timeout=timeout, retries=retries, max_wait=max_wait, max_bytes=max_page_bytes,
                      on_wait=bar.wait if bar is not None else None, on_rate=bar.rate if bar is not None else None, **(fetcher_options or {}))
    return full, fetcher


def check_to(to: str) -> None:
    """ConfigurationError, before any request, when ``to=`` is unknown or its library is missing."""
    if to not in _TO:
        raise ConfigurationError(f"to={to!r} must be 'pandas', 'polars' or 'arrow'.")
    needed = {"arrow": ("pyarrow",), "polars": ("polars", "pyarrow")}.get(to, ())
    for module in needed:
        try:
            __import__(module)
        except ImportError:
            raise ConfigurationError(f"to={to!r} needs {needed[0]} (and pyarrow): pip install "
                                     f"{' '.join(needed)}") from None


# -- the loop ------------------------------------------------------------------------------------


def walk_posts(send: Callable[[Any], PostPage], body: Any, *, with_cursor: Callable[[Any, Any], Any],
               url: str, more_name: str, cursor_name: str, max_pages: int | None = DEFAULT_MAX_PAGES,
               max_empty_pages: int | None = MAX_EMPTY_PAGES) -> Iterator[PostPage]:
    """``send(body)``, then ``send(with_cursor(body, cursor))`` while the last page says there is more.

    Never silently short and never endless: more without a cursor, a cursor sent twice (a loop),
    ``max_empty_pages`` empty pages in a row that still say more, and ``max_pages`` raise
    PaginationError. ``more_name`` / ``cursor_name`` name the fields in those messages."""
    page = send(body)
    pages, empty, sent = 1, 0 if page.records else 1, set()
    yield page
    while page.more:
        cursor = page.cursor
        shown = shown_url(url)
        if cursor is None or cursor == "":
            raise PaginationError(
                f"Page {pages} of {shown} says there is more ({more_name!r}) but gives no cursor in "
                f"{cursor_name!r}, so the result would be silently short. Name the answer's fields with "
                "cursor_field= and more_field=, or pass partial=True to keep the rows read so far.", url=shown)
        key = json.dumps(cursor, sort_keys=True, default=str)
        if key in sent:
            raise PaginationError(f"The API sent the same cursor twice (in {cursor_name!r}); stopped to avoid a "
                                  "loop. Pass partial=True to keep what was read.", url=shown)
        if max_empty_pages is not None and empty >= max_empty_pages:
            raise PaginationError(
                f"The API sent {empty} empty pages in a row and still says there is more ({more_name!r}); stopped "
                "as it may never end. Pass a larger max_empty_pages= or partial=True to keep the rows read so far.",
                url=shown)
        if max_pages is not None and pages >= max_pages:
            raise page_cap_error(max_pages)
        sent.add(key)
        page = send(with_cursor(body, cursor))
        pages += 1
        empty = 0 if page.records else empty + 1
        yield page


def frame_of(pages: Iterator[PostPage], *, bar: ProgressBar, sep: str = ".", max_level: int | None = None,
             meta: Sequence[str | Sequence[str]] | None = None, max_rows: int | None = None,
             partial: bool = False, to: str = "pandas", parse_dates: bool | Sequence[str] = False) -> Any:
    """Every page's records as one frame, column types decided over all pages (as read_json does).

    ``max_rows`` stops the read with ResultTooLarge; with ``partial=True`` that, a page cap or a
    pagination error returns the rows read so far with a warning."""
    columns = _Columns(sep=sep, max_level=max_level, meta=meta)
    chunks: list = []
    rows = read = 0
    try:
        for page in pages:
            records = page.records
            read += 1
            if page.total_pages:
                bar.total(page.total_pages)
            bar.page(len(records))
            if max_rows is not None and rows + len(records) > max_rows:
                if not partial:
                    raise ResultTooLarge(f"The result passed max_rows={max_rows:,}; narrow the query (filter, "
                                         "date range) or raise max_rows=, or pass partial=True to keep the first "
                                         f"{max_rows:,} rows.")
                warn_user(f"Stopped at max_rows={max_rows:,}; the result is partial.")
                chunks.append(columns.convert(records[:max_rows - rows], page.body))
                break
            rows += len(records)
            chunks.append(columns.convert(records, page.body))
        else:
            bar.total(read)  # complete: the count is known now, whatever page 1 said
    except (PaginationError, ResultTooLarge) as exc:
        if not partial or rows == 0:
            raise
        warn_user(f"Returning the {rows:,} rows read before: {exc.message}")
    finally:
        pages.close()  # type: ignore[attr-defined]
    return frame_from_chunks(columns, chunks, to=to, parse_dates=parse_dates)


# -- Notion-style cursors in the body --------------------------------------------------------------


def _body_with(body: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict:
    """A copy of ``body`` with ``value`` at ``path`` (nested objects copied, never changed in place)."""
    out = dict(body)
    inner = out
    for key in path[:-1]:
        child = inner.get(key)
        inner[key] = dict(child) if isinstance(child, Mapping) else {}
        inner = inner[key]
    inner[path[-1]] = value
    return out


def read_json_post(url: str, body: Mapping[str, Any] | None = None, *, session: Any,
                   cursor_field: str | Sequence[str] = "next_cursor",
                   more_field: str | Sequence[str] | None = "has_more",
                   cursor_param: str | Sequence[str] = "start_cursor",
                   record_path: str | Sequence[str] | None = None, meta: Sequence[str | Sequence[str]] | None = None,
                   sep: str = ".", max_level: int | None = None, headers: Mapping[str, str] | None = None,
                   params: Mapping[str, Any] | None = None, paginate: str = "auto",
                   max_pages: int | None = DEFAULT_MAX_PAGES, max_rows: int | None = None,
                   max_page_bytes: int | None = 50_000_000, progress: bool = True,
                   parse_dates: bool | Sequence[str] = False, partial: bool = False,
                   timeout: float | tuple[float, float] = (5, 30), retries: int = 3, max_wait: float = 60,
                   to: str = "pandas", max_empty_pages: int | None = MAX_EMPTY_PAGES,
                   fetcher_options: Mapping[str, Any] | None = None) -> Any:
    """POST ``body`` to a query endpoint and read every page of the answer into one DataFrame.

    Notion's database query by default: the answer's records (``results``, or ``record_path``), and while
    ``more_field`` (``has_more``) is true, the same body again with ``cursor_param`` (``start_cursor``) set
    to the answer's ``cursor_field`` (``next_cursor``). The fields may be dotted paths
    (``"meta.next_cursor"``); ``cursor_param`` a body key or a list of keys (a nested place);
    ``more_field=None``: go on while the cursor is not empty. ``headers`` are sent with every request
    (``{"Notion-Version": "2022-06-28"}``; or set them on the session). ``paginate="none"`` reads one page on
    purpose. The other options are :func:`~nb_oauth2.frames.readers.read_json`'s; the POST is retried like
    a GET, so use it only for read-only queries.
    """
    if paginate not in ("auto", "cursor", "none"):
        raise ConfigurationError(f"paginate={paginate!r}: a POST query pages by the cursor in its body; use "
                                 "paginate='auto' (with cursor_field=, more_field=, cursor_param=) or 'none'.")
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise ConfigurationError("The POST body must be a JSON object (a dict): the cursor goes into it.")
    check_to(to)
    register_body_secrets(body)
    cursor_path, where = field_path(cursor_field), field_path(cursor_param)
    more_path = field_path(more_field) if more_field is not None else None
    if not cursor_path or not where or not all(isinstance(k, str) and k for k in (*cursor_path, *where)):
        raise ConfigurationError("cursor_field= and cursor_param= must name a field (a dotted path or a list).")
    with ProgressBar(progress) as bar:
        full, fetcher = post_fetcher(url, session=session, who="read_json_post", params=params, headers=headers,
                                     timeout=timeout, retries=retries, max_wait=max_wait,
                                     max_page_bytes=max_page_bytes, bar=bar, fetcher_options=fetcher_options)
        bar.start(full)

        def send(request_body: Any) -> PostPage:
            answer = fetcher.post(full, request_body).data
            records = extract_records(answer, record_path)
            _, cursor = get_path(answer, cursor_path)
            if paginate == "none":
                return PostPage(records, False, body=answer)
            found, more = get_path(answer, more_path) if more_path else (False, None)
            more = more is True or more in ("true", 1) if found else cursor not in (None, "", [], {})
            return PostPage(records, bool(more), cursor, body=answer)

        pages = walk_posts(send, dict(body), with_cursor=lambda b, c: _body_with(b, where, c), url=full,
                           more_name=".".join(more_path) if more_path else ".".join(cursor_path),
                           cursor_name=".".join(cursor_path), max_pages=max_pages, max_empty_pages=max_empty_pages)
        return frame_of(pages, bar=bar, sep=sep, max_level=max_level, meta=meta, max_rows=max_rows,
                        partial=partial, to=to, parse_dates=parse_dates)
