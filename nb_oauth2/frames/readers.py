"""Protected JSON API -> pandas DataFrame: every page, one frame.

:func:`read_json` follows the API's pagination (see :mod:`nb_oauth2.frames.pagination`),
fetches pages through :class:`nb_oauth2.frames.fetch.Fetcher` (retries, rate limits,
byte caps), turns each page into columns as it arrives and concatenates them.

Dtypes do not depend on page boundaries: each column's type is decided once,
over all pages. Integers with missing values become ``float64`` (NaN), as in
``pd.json_normalize``; nested objects become dotted columns (``sep``,
``max_level``); lists stay Python lists in object columns. With pyarrow
installed pages become Arrow tables (converted once at the end), otherwise
per-column Python lists; set ``NB_OAUTH2_NO_FAST=1`` to ignore orjson/pyarrow.
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator, Mapping, Sequence

import requests
from requests.adapters import HTTPAdapter

from ..core.errors import ConfigurationError, PaginationError, ResultTooLarge, UnsafeNextLink
from .columns import _Columns, _parse_dates, extract_records, flatten_records
from .fetch import Fetcher, Response
from .next_links import check_next_url, shown_url, url_problem
from .page_batches import PageRuns, batch_size
from .pagination import PageInfo, Paginator, make_paginator
from .parquet import _pyarrow, write_chunks
from .partitions import check_partition_by, check_target
from .post_pages import read_json_post
from .progress import ProgressBar
from .resume import Journal, NextLinks
from .walk import MAX_EMPTY_PAGES, follow
from .walk_rules import DEFAULT_MAX_PAGES
from ..core.urls import checked_url
from ..core.warn import warn_user

__all__ = ["Page", "read_json", "iter_pages", "iter_records", "to_parquet", "extract_records", "flatten_records"]


@dataclass
class Page:
    """One page as :func:`iter_pages` yields it to users: final URL, HTTP status, its records, parsed
    body, raw bytes and headers. (The paginators see only a
    :class:`~nb_oauth2.frames.pagination.PageInfo`, no records or bytes; a fetch returns a
    :class:`~nb_oauth2.frames.fetch.Response`.)"""

    url: str
    status: int
    records: list
    body: Any = field(repr=False, default=None)
    raw: bytes = field(repr=False, default=b"")
    headers: Mapping[str, str] = field(repr=False, default_factory=dict)


# -- records and columns ------------------------------------------------------


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while pages are parsed: millions of fresh dicts otherwise trigger
    repeated full collections (a third of the parse time). Reference counting still frees
    every page; the GC is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- the page driver ------------------------------------------------------------


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


def _start_url(url: Any, params: Mapping[str, Any] | None) -> str:
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
_COMMON = {option.name: option.default for option in fields(ReadOptions) if option.name != "fetcher_options"}


def _pages(url: Any, *, session: Any, options: ReadOptions, bar: ProgressBar,
           columns: _Columns | None = None, first_url: str | None = None) -> Iterator[tuple[PageInfo, Any]]:
    """Shared set-up for every public reader; yields (PageInfo, payload) in page order. The payload is
    the page's records as a column chunk of ``columns``, or without ``columns`` (records, fetch.Response).
    ``bar`` is shown once the URL is checked; the caller closes it (its ``with`` knows whether it failed).
    ``first_url``: the walk starts there instead (a resumed pull; it must stay on the start URL's origin)."""
    start_url = _start_url(url, options.params)
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


def _collect(pages: Iterator[tuple[PageInfo, Any]], *, max_rows: int | None,
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


def iter_pages(url: str, *, session: Any, **options: Any) -> Iterator[Page]:
    """Every page of ``url`` in order (options as :func:`read_json`; no concurrency)."""
    opts = {**_COMMON, "progress": False, **options, "concurrency": 1}
    max_rows, partial = opts.pop("max_rows", None), opts.pop("partial", False)
    for name in ("meta", "sep", "max_level", "parse_dates", "to"):
        opts.pop(name, None)
    with ProgressBar(opts["progress"]) as bar:
        pages = _pages(url, session=session, options=ReadOptions(**opts), bar=bar)
        for (records, response), kept in _collect(pages, max_rows=max_rows, partial=partial):
            yield Page(url=response.url, status=response.status, records=records[:kept], body=response.data,
                       raw=response.raw, headers=response.headers)


def iter_records(url: str, *, session: Any, **options: Any) -> Iterator[dict]:
    """Every record of every page of ``url``, as parsed JSON objects."""
    for page in iter_pages(url, session=session, **options):
        yield from page.records


def _with_info(pages: Iterator[tuple[PageInfo, Any]]) -> Iterator[tuple[PageInfo, tuple[PageInfo, Any]]]:
    """(info, (info, payload)): the payload keeps its page's PageInfo through :func:`_collect`."""
    try:
        for info, payload in pages:
            yield info, (info, payload)
    finally:
        pages.close()  # type: ignore[attr-defined]


def _chunks(url: str, *, session: Any, bar: ProgressBar, sep: str, max_level: int | None, meta: Any,
            max_rows: int | None, partial: bool, use_arrow: bool = True, first_url: str | None = None,
            **options: Any) -> Iterator[tuple[_Columns, PageInfo, Any]]:
    """(the column builder, the page, its column chunk) for every page, cut at ``max_rows``."""
    columns = _Columns(sep=sep, max_level=max_level, meta=meta, use_arrow=use_arrow,
                       record_path=options.get("record_path"))
    pages = _pages(url, session=session, options=ReadOptions(**{**_COMMON, **options}), bar=bar, columns=columns,
                   first_url=first_url)
    for (info, chunk), kept in _collect(_with_info(pages), max_rows=max_rows, partial=partial):
        if isinstance(chunk, tuple) and kept < chunk[0]:
            chunk = (kept, {name: values[:kept] for name, values in chunk[1].items()})
        elif not isinstance(chunk, tuple) and kept < chunk.num_rows:
            chunk = chunk.slice(0, kept)
        yield columns, info, chunk


def read_json(url: str, *, session: Any, params: Mapping[str, Any] | None = None,
              record_path: str | Sequence[str] | None = None, meta: Sequence[str | Sequence[str]] | None = None,
              sep: str = ".", max_level: int | None = None, paginate: str | Paginator = "auto",
              max_pages: int | None = DEFAULT_MAX_PAGES, max_rows: int | None = None,
              max_page_bytes: int | None = 50_000_000, progress: bool = True, concurrency: int | str = "auto",
              parse_dates: bool | Sequence[str] = False, partial: bool = False,
              timeout: float | tuple[float, float] = (5, 30), retries: int = 3, max_wait: float = 60,
              to: str = "pandas", max_empty_pages: int | None = MAX_EMPTY_PAGES,
              json: Mapping[str, Any] | None = None) -> Any:
    """Read every page of a protected JSON API into one DataFrame (or polars / Arrow table).

    ``session`` is a session object or a profile/session name. Records are found in the
    common envelopes (``data``, ``items``, ``results``, ``value``, ``records``, ``entries``, a
    top-level list) or at ``record_path``; nested objects become ``sep``-joined columns as in
    ``pd.json_normalize`` (``meta`` and ``max_level`` too). ``paginate`` is detected ("auto")
    or one of "link", "next", "cursor", "page", "offset", "none", or a Paginator such as
    ``CursorPaginator(field="response_metadata.next_cursor", param="cursor")``. When page 1 reveals
    the page count, the rest is fetched on ``concurrency`` threads ("auto": 4 for a fast API, 8 when
    page 1 took 20 ms or more to arrive). 429/5xx are retried within ``retries`` and ``max_wait``.

    Never silently short: a page that says there is more (a next link, cursor or token,
    ``has_more``, ``done: false``, ``isLast: false``, ``hasNextPage``, ``Link rel="next"``) that the
    paginator cannot follow raises PaginationError naming the field; ``paginate="none"`` alone reads
    exactly one page on purpose. Loops, ``max_pages`` (default 10,000; None for no cap),
    ``max_empty_pages`` empty pages in a row that still link onwards (default 3) and ``max_rows``
    stop with an error unless ``partial=True`` (then the rows read so far come back with a warning);
    a next link to another origin or to plain http always stops. A malformed URL is a
    ConfigurationError, a malformed next link a PaginationError; a page nested deeper than 512
    levels is refused before parsing. ``parse_dates`` converts date columns to UTC datetimes.
    ``json``: POST this body instead (a query endpoint such as Notion's database query), paged by its
    body cursor: see :func:`~nb_oauth2.frames.post_pages.read_json_post`.
    """
    if json is not None:  # concurrency has no effect there: a body-cursor walk is sequential
        return read_json_post(url, json, session=session, params=params, record_path=record_path, meta=meta, sep=sep,
                              max_level=max_level, paginate=paginate, max_pages=max_pages, max_rows=max_rows,
                              max_page_bytes=max_page_bytes, progress=progress, parse_dates=parse_dates,
                              partial=partial, timeout=timeout, retries=retries, max_wait=max_wait, to=to,
                              max_empty_pages=max_empty_pages)
    if to not in ("pandas", "polars", "arrow"):
        raise ConfigurationError(f"to={to!r} must be 'pandas', 'polars' or 'arrow'.")
    if to in ("polars", "arrow"):
        _require(to)
    columns = None
    chunks: list = []
    with _gc_paused():
        with ProgressBar(progress) as bar:
            for columns, _, chunk in _chunks(url, session=session, bar=bar, sep=sep, max_level=max_level, meta=meta,
                                          max_rows=max_rows, partial=partial, params=params, record_path=record_path,
                                          paginate=paginate, max_pages=max_pages, max_page_bytes=max_page_bytes,
                                          concurrency=concurrency, timeout=timeout, retries=retries,
                                          max_wait=max_wait, max_empty_pages=max_empty_pages):
                chunks.append(chunk)
        columns = columns or _Columns(sep=sep, max_level=max_level, meta=meta)
        if to != "pandas" and not parse_dates:
            table = columns.to_arrow(chunks)
            if table is not None:
                return table if to == "arrow" else __import__("polars").from_arrow(table)
        frame = columns.to_pandas(chunks)
    if parse_dates:
        frame = _parse_dates(frame, parse_dates)
    if to == "pandas":
        return frame
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if to == "arrow":
        return table
    import polars as pl

    return pl.from_arrow(table)


def _require(to: str) -> None:
    module = "pyarrow" if to == "arrow" else "polars"
    try:
        __import__(module)
        if to == "polars":
            __import__("pyarrow")
    except ImportError:
        raise ConfigurationError(f"to={to!r} needs {module} (and pyarrow): pip install {module} pyarrow") from None


def to_parquet(url: str, path: str, *, session: Any, resume: bool = False,
               partition_by: str | Sequence[str] | None = None, **options: Any) -> int:
    """Stream every page into one Parquet file, batch by batch; columns that appear late, null-first
    columns and int/float drift widen the schema (the writer: :mod:`nb_oauth2.frames.parquet`).
    Returns the number of rows written (with ``resume=True``, in the whole file).

    ``resume=True``: an interrupted pull (Stop, a network error, a dead kernel) called again with the same
    arguments goes on after the last page saved instead of starting over, each record once. Beside ``path``
    it keeps the parts written and the next page's URL (:mod:`nb_oauth2.frames.resume`; never a token: a
    URL carrying a secret is refused with SecretInResumeState); another URL or other options for the same
    ``path`` raise ResumeMismatch. With no saved state it is a normal pull.

    ``partition_by="column"`` (or a list of columns): ``path`` becomes a hive-partitioned dataset folder,
    ``path/column=value/part-NNNNN.parquet`` (:mod:`nb_oauth2.frames.partitions`), every file with the same
    schema (the partition columns live in the folder names); rows are partitioned by the column's value as
    given (a timestamp string by its whole text, percent-encoded in the folder name); null goes to
    ``__HIVE_DEFAULT_PARTITION__``. The split happens when the pull ends, so it works with ``resume=True``.
    A dataset already at ``path`` is replaced when the pull completes; a file or another folder is refused."""
    _pyarrow()  # before any request: ConfigurationError without pyarrow
    partitions = check_partition_by(partition_by)
    if partitions:
        check_target(path, partitions)
    opts = {"sep": ".", "max_level": None, "meta": None, "max_rows": None, "partial": False, **options}
    opts.pop("to", None), opts.pop("parse_dates", None)
    builder: list[_Columns] = []  # _chunks makes it; the writer asks it for read_json's column order
    journal, links, state = None, None, {}
    if resume:
        start = _start_url(url, opts.get("params"))
        journal = Journal(path, start, {name: opts.get(name) for name in
                                        ("record_path", "sep", "max_level", "meta", "paginate")})
        state = journal.load() or {}
        links = NextLinks(opts.get("paginate", "auto"), start)
        if state.get("pages") and opts["max_rows"] is not None:
            opts["max_rows"] = max(0, opts["max_rows"] - state["rows"])
    resumed = bool(state.get("pages"))

    def chunks() -> Iterator[Any]:
        if resumed and state.get("next_url") is None:
            return  # every page is saved: only the file is left to write
        for columns, info, chunk in _chunks(url, session=session, bar=bar,
                                            first_url=state.get("next_url") if resumed else None, **opts):
            builder[:] = [columns]
            if journal is None:
                yield chunk
                continue
            if journal.state.get("order") is None and columns.order:
                journal.state["order"] = columns.order  # page 1's column order, for the final file
            yield chunk, links.after(info)  # type: ignore[union-attr]

    def order(names: list[str]) -> list[str]:
        columns = builder[0] if builder else _Columns(sep=opts["sep"], max_level=None, meta=None, use_arrow=False)
        if journal is not None and journal.state.get("order"):
            columns.order = journal.state["order"]
        return columns._ordered(names)

    with ProgressBar(opts.pop("progress", True)) as bar:
        return write_chunks(chunks(), path, sep=opts["sep"], order=order, journal=journal,
                            partition_by=partitions)
