"""Protected JSON API -> pandas DataFrame: every page, one frame.

:func:`read_json` follows the API's pagination (see :mod:`nb_oauth2.frames.pagination`),
fetches pages through :class:`nb_oauth2.frames.fetch.Fetcher` (retries, rate limits,
byte caps), turns each page into columns as it arrives and concatenates them.

Dtypes do not depend on page boundaries: each column's type is decided once,
over all pages. Integers with missing values become ``float64`` (NaN), as in
``pd.json_normalize``; nested objects become dotted columns (``sep``,
``max_level``); lists stay Python lists in object columns. With pyarrow
installed pages become Arrow tables (converted once at the end), otherwise
per-column Python lists; set ``NB_OAUTH2_NO_FAST=1`` to ignore orjson/pyarrow. The walk they share
(the URL and session checks, the Fetcher, concurrency, ``max_rows``) is :mod:`nb_oauth2.frames.page_stream`.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from ..core.errors import ConfigurationError
from .columns import _Columns, extract_records, flatten_records, frame_from_chunks
from .page_stream import READER_DEFAULTS, ReadOptions, column_chunks, first_page_url, up_to_max_rows, walk_pages
from .pagination import Paginator
from .parquet import _pyarrow, write_chunks
from .partitions import check_partition_by, check_target
from .post_pages import read_json_post
from .progress import ProgressBar
from .resume import Journal, NextLinks
from .walk import MAX_EMPTY_PAGES
from .walk_rules import DEFAULT_MAX_PAGES

if TYPE_CHECKING:
    from .fetch import Response

__all__ = ["Page", "read_json", "iter_pages", "iter_records", "to_parquet", "extract_records", "flatten_records"]

_COMMON = READER_DEFAULTS  # its name before the split (tests/test_hostile_pages.py)


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


def iter_pages(url: str, *, session: Any, **options: Any) -> Iterator[Page]:
    """Every page of ``url`` in order (options as :func:`read_json`; no concurrency)."""
    opts = {**READER_DEFAULTS, "progress": False, **options, "concurrency": 1}
    max_rows, partial = opts.pop("max_rows", None), opts.pop("partial", False)
    for name in ("meta", "sep", "max_level", "parse_dates", "to"):
        opts.pop(name, None)
    with ProgressBar(opts["progress"]) as bar:
        pages = walk_pages(url, session=session, options=ReadOptions(**opts), bar=bar)
        for (records, response), kept in up_to_max_rows(pages, max_rows=max_rows, partial=partial):
            yield _as_page(response, records[:kept])


def _as_page(response: Response, records: list) -> Page:
    """What users are handed of a fetched answer: its records, with its URL, status, body, bytes and headers."""
    return Page(url=response.url, status=response.status, records=records, body=response.data, raw=response.raw,
                headers=response.headers)


def iter_records(url: str, *, session: Any, **options: Any) -> Iterator[dict]:
    """Every record of every page of ``url``, as parsed JSON objects."""
    for page in iter_pages(url, session=session, **options):
        yield from page.records


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
            for columns, _, chunk in column_chunks(url, session=session, bar=bar, sep=sep, max_level=max_level,
                                                   meta=meta, max_rows=max_rows, partial=partial, params=params,
                                                   record_path=record_path, paginate=paginate, max_pages=max_pages,
                                                   max_page_bytes=max_page_bytes, concurrency=concurrency,
                                                   timeout=timeout, retries=retries, max_wait=max_wait,
                                                   max_empty_pages=max_empty_pages):
                chunks.append(chunk)
        columns = columns or _Columns(sep=sep, max_level=max_level, meta=meta)
        return frame_from_chunks(columns, chunks, to=to, parse_dates=parse_dates)


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
    builder: list[_Columns] = []  # column_chunks makes it; the writer asks it for read_json's column order
    journal, links, state = None, None, {}
    if resume:
        start = first_page_url(url, opts.get("params"))
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
        for columns, info, chunk in column_chunks(url, session=session, bar=bar,
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
