"""Every page of one read, in order: the set-up and walk shared by the public readers.

:func:`walk_pages` checks the URL and the session, makes the :class:`~nb_oauth2.frames.fetch.Fetcher`,
chooses the concurrency ("auto": from how fast page 1 came) and walks the pages
(:func:`~nb_oauth2.frames.walk.follow`), turning each into a column chunk (runs of small pages parsed
at once: :mod:`nb_oauth2.frames.page_batches`); :func:`up_to_max_rows` cuts the walk at ``max_rows``
(``partial=True``: a warning instead of an error); :func:`column_chunks` is both, for the DataFrame
and Parquet readers of :mod:`nb_oauth2.frames.readers`. :class:`ReadOptions` holds the readers'
shared keywords.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterator, Mapping, Sequence

import requests
from requests.adapters import HTTPAdapter

from ..core.errors import ConfigurationError, PaginationError, ResultTooLarge, UnsafeNextLink
from ..core.urls import checked_url
from ..core.warn import warn_user
from .columns import _Columns, extract_records
from .fetch import Fetcher, Response
from .next_links import check_next_url, shown_url, url_problem
from .page_batches import PageRuns, batch_size
from .pagination import PageInfo, Paginator, make_paginator
from .progress import ProgressBar
from .walk import MAX_EMPTY_PAGES, follow
from .walk_rules import DEFAULT_MAX_PAGES

__all__ = ["ReadOptions", "READER_DEFAULTS", "walk_pages", "up_to_max_rows", "column_chunks", "first_page_url",
           "AUTO_CONCURRENCY_FAST", "MAX_AUTO_CONCURRENCY", "SLOW_FIRST_PAGE_SECONDS"]


def _session(session: Any) -> requests.Session:
    if isinstance(session, str) or not hasattr(session, "get"):
        raise ConfigurationError("session= must be a requests.Session (e.g. from nb_oauth2.login); "
                                 "nb_oauth2.read_json also takes a session's name.")
    return session


def _ensure_pool(session: requests.Session, url: str, concurrency: int) -> None:
    try:
        adapter = session.get_adapter(url)
    except Exception:  # no adapter for this scheme: the GET will say so
        return
    if isinstance(adapter, HTTPAdapter) and getattr(adapter, "_pool_maxsize", 10) < concurrency:
        parts = requests.utils.urlparse(url)
        session.mount(f"{parts.scheme}://{parts.netloc}/",
                      HTTPAdapter(pool_connections=1, pool_maxsize=concurrency, max_retries=adapter.max_retries))


#: ``concurrency="auto"``: threads for a fast API (CPU-bound: more threads only cost memory) and a slow one
AUTO_CONCURRENCY_FAST, MAX_AUTO_CONCURRENCY, SLOW_FIRST_PAGE_SECONDS = 4, 8, 0.02


def _concurrency_policy(concurrency: int | str) -> int | Callable[[float], int]:
    """An int, or for "auto" a choice made from how long page 1 took."""
    if concurrency == "auto":
        return lambda first: MAX_AUTO_CONCURRENCY if first >= SLOW_FIRST_PAGE_SECONDS else AUTO_CONCURRENCY_FAST
    return max(1, int(concurrency))


def first_page_url(url: Any, params: Mapping[str, Any] | None) -> str:
    """The first page's URL with ``params``; ConfigurationError when it is not a well-formed http(s) URL
    (case 58: never requests' MissingSchema/InvalidURL or urllib's ValueError)."""
    problem = url_problem(url)
    full = None
    if problem is None:
        try:
            full = requests.Request("GET", url, params=params).prepare().url
        except (requests.RequestException, ValueError, TypeError):
            problem = "requests cannot build a request from it and params="
    problem = problem or url_problem(full)
    if problem is not None:
        shown = shown_url(url) if isinstance(url, str) else type(url).__name__
        raise ConfigurationError(f"read_json needs an http(s) URL; {shown!r} is not one: {problem}.")
    return full  # type: ignore[return-value]


@dataclass(frozen=True)
class ReadOptions:
    """How every reader fetches and walks the pages: :func:`read_json`'s keywords, with its defaults."""

    params: Mapping[str, Any] | None = None
    record_path: str | Sequence[str] | None = None
    paginate: str | Paginator = "auto"
    max_pages: int | None = DEFAULT_MAX_PAGES
    max_page_bytes: int | None = 50_000_000
    progress: bool = True
    concurrency: int | str = "auto"
    timeout: float | tuple[float, float] = (5, 30)
    retries: int = 3
    max_wait: float = 60
    max_empty_pages: int | None = MAX_EMPTY_PAGES
    #: more keyword arguments for :class:`~nb_oauth2.frames.fetch.Fetcher`
    fetcher_options: Mapping[str, Any] | None = None


#: the reader options' defaults, by name (``fetcher_options`` aside)
READER_DEFAULTS = {option.name: option.default for option in fields(ReadOptions)
                   if option.name != "fetcher_options"}


def walk_pages(url: Any, *, session: Any, options: ReadOptions, bar: ProgressBar,
               columns: _Columns | None = None, first_url: str | None = None) -> Iterator[tuple[PageInfo, Any]]:
    """Shared set-up for every public reader; yields (PageInfo, payload) in page order. The payload is
    the page's records as a column chunk of ``columns``, or without ``columns`` (records, fetch.Response).
    ``bar`` is shown once the URL is checked; the caller closes it (its ``with`` knows whether it failed).
    ``first_url``: the walk starts there instead (a resumed pull; it must stay on the start URL's origin)."""
    start_url = first_page_url(url, options.params)
    walk_from = start_url if first_url is None else check_next_url(start_url, first_url)
    http = _session(session)
    checked_url(url)  # cases 46, 47: page 1 goes where requests sends it; a plain session has no other check
    concurrency = _concurrency_policy(options.concurrency)
    _ensure_pool(http, start_url, concurrency if isinstance(concurrency, int) else MAX_AUTO_CONCURRENCY)
    bar.start(start_url)
    fetcher = Fetcher(http, timeout=options.timeout, retries=options.retries, max_wait=options.max_wait,
                      max_bytes=options.max_page_bytes, on_wait=bar.wait, on_rate=bar.rate,
                      pages_left=bar.pages_left, **(options.fetcher_options or {}))
    record_path = options.record_path
    # the Arrow fast path: raw bytes straight to a column chunk (None when the page does not suit it)
    raw_to_chunk = columns.convert_raw if columns is not None and columns.pa else None

    first: list[float] = []  # page 1's size (how many planned pages to parse at once) and fetch seconds

    runs = PageRuns(columns) if columns is not None else None

    def to_page(response: Response, converted: tuple[Any, dict, int] | None = None) -> tuple[PageInfo, Any]:
        if converted is None and raw_to_chunk is not None:
            converted = raw_to_chunk(response.raw)
        if converted is not None:
            chunk, envelope, n_records = converted
            info = PageInfo(url=response.url, status=response.status, headers=response.headers, body=envelope,
                            n_records=n_records)
        else:
            fetcher.parse(response)
            records = extract_records(response.data, record_path)
            info = PageInfo(url=response.url, status=response.status, headers=response.headers,
                            body=response.data, n_records=len(records),
                            body_is_record=len(records) == 1 and records[0] is response.data)
            if columns is None:
                return info, (records, response)
            chunk = columns.convert(records, response.data)
        runs.note(chunk)  # type: ignore[union-attr]
        return info, chunk

    def fetch_page(page_url: str) -> tuple[PageInfo, Any]:
        started = time.monotonic()
        response = fetcher.get(page_url, parse=False)
        if not first:  # how fast the API answers, without page 1's parse (the first one pays for set-up)
            first.extend((len(response.raw), time.monotonic() - started))
        return to_page(response)

    def fetch_raw(page_url: str) -> Response:
        return fetcher.get(page_url, parse=False)

    def convert(responses: list[Response]) -> tuple[list[tuple[PageInfo, Any]], BaseException | None]:
        """Consecutive planned pages parsed at once (page by page when one parse cannot stand for them);
        the pages before a failure, and the failure."""
        converted = runs.convert([r.raw for r in responses]) if runs is not None else None
        pages: list[tuple[PageInfo, Any]] = []
        try:
            for i, response in enumerate(responses):
                pages.append(to_page(response, converted[i] if converted is not None else None))
        except Exception as exc:
            return pages, exc
        return pages, None

    def threads(first_seconds: float) -> int:
        return concurrency(first[1] if first else first_seconds)  # type: ignore[operator]

    def batch(first_seconds: float) -> int:
        return batch_size(int(first[0])) if raw_to_chunk is not None and first else 1

    for info, payload in follow(walk_from, fetch_page, paginator=make_paginator(options.paginate),
                                concurrency=threads if callable(concurrency) else concurrency,
                                max_pages=options.max_pages, on_total=bar.total,
                                max_empty_pages=options.max_empty_pages, batched=(fetch_raw, convert), batch=batch):
        bar.page(info.n_records)
        yield info, payload


def up_to_max_rows(pages: Iterator[tuple[PageInfo, Any]], *, max_rows: int | None,
             partial: bool) -> Iterator[tuple[Any, int]]:
    """Yield (payload, rows to keep of it) enforcing max_rows; with partial=True stop with a warning
    instead of raising."""
    rows = 0
    try:
        for info, payload in pages:
            page_rows = info.n_records
            if max_rows is not None and rows + page_rows > max_rows:
                if not partial:
                    raise ResultTooLarge(f"The result passed max_rows={max_rows:,}; narrow the query (filters, "
                                         "date range) or raise max_rows=, or pass partial=True to keep the first "
                                         f"{max_rows:,} rows.")
                warn_user(f"Stopped at max_rows={max_rows:,}; the result is partial.")
                yield payload, max_rows - rows
                return
            rows += page_rows
            yield payload, page_rows
    except (PaginationError, ResultTooLarge) as exc:
        if not partial or isinstance(exc, UnsafeNextLink) or rows == 0:
            raise
        warn_user(f"Returning the {rows:,} rows read before: {exc.message}")
    finally:
        pages.close()  # type: ignore[attr-defined]


def _with_info(pages: Iterator[tuple[PageInfo, Any]]) -> Iterator[tuple[PageInfo, tuple[PageInfo, Any]]]:
    """(info, (info, payload)): the payload keeps its page's PageInfo through :func:`up_to_max_rows`."""
    try:
        for info, payload in pages:
            yield info, (info, payload)
    finally:
        pages.close()  # type: ignore[attr-defined]


def column_chunks(url: str, *, session: Any, bar: ProgressBar, sep: str, max_level: int | None, meta: Any,
                  max_rows: int | None, partial: bool, use_arrow: bool = True, first_url: str | None = None,
                  **options: Any) -> Iterator[tuple[_Columns, PageInfo, Any]]:
    """(the column builder, the page, its column chunk) for every page, cut at ``max_rows``."""
    columns = _Columns(sep=sep, max_level=max_level, meta=meta, use_arrow=use_arrow,
                       record_path=options.get("record_path"))
    pages = walk_pages(url, session=session, options=ReadOptions(**{**READER_DEFAULTS, **options}), bar=bar,
                       columns=columns, first_url=first_url)
    for (info, chunk), kept in up_to_max_rows(_with_info(pages), max_rows=max_rows, partial=partial):
        if isinstance(chunk, tuple) and kept < chunk[0]:
            chunk = (kept, {name: values[:kept] for name, values in chunk[1].items()})
        elif not isinstance(chunk, tuple) and kept < chunk.num_rows:
            chunk = chunk.slice(0, kept)
        yield columns, info, chunk
