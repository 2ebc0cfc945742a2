"""Pagination as pure decisions: given a page, what is the next request?

Every style answers two questions without any I/O:

* ``next_url(page)`` -> the URL of the next page, or None when done;
* ``plan(page, next_url)`` -> every remaining URL when page 1 tells the page
  count (``total_pages``, ``total``, a ``Link rel="last"``), so the caller may
  fetch them concurrently; None when only sequential following is possible.

Styles: ``Link`` header (GitHub, GitLab), a next URL in the body (``next``,
``links.next``, ``paging.next``, ``@odata.nextLink``), a token/cursor in the
body (``nextPageToken`` -> ``pageToken=``, ``next_cursor`` -> ``cursor=``),
page/per_page and offset/limit counters. :func:`check_next_url` refuses a
next link to another origin or from https to http (the token would follow it).
"""

from __future__ import annotations

import time

import math
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from .errors import ConfigurationError, PaginationError, UnsafeNextLink, UnsafeURL
from .redact import redact_url
from .urls import checked_url, join

__all__ = [
    "PageInfo", "Paginator", "LinkPaginator", "BodyNextPaginator", "CursorPaginator", "PagePaginator",
    "OffsetPaginator", "NoPaginator", "AutoPaginator", "make_paginator", "check_next_url", "set_param",
    "parse_link_header", "follow", "ordered_map",
]

_CONTAINERS = ("meta", "pagination", "paging", "page_info", "pageInfo", "response_metadata", "links", "_links")
TOTAL_PAGES_KEYS = ("total_pages", "totalPages", "last_page", "lastPage", "page_count", "pageCount", "num_pages")
TOTAL_KEYS = ("total", "total_count", "totalCount", "total_results", "totalResults", "totalItems", "total_items")
PAGE_KEYS = ("page", "current_page", "currentPage", "page_number", "pageNumber")
SIZE_KEYS = ("per_page", "perPage", "page_size", "pageSize", "limit", "size")


@dataclass(frozen=True)
class PageInfo:
    """What a paginator sees of one answer."""

    url: str
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    n_records: int = 0


def set_param(url: str, name: str, value: object) -> str:
    """``url`` with query parameter ``name`` set to ``value`` (replaced if present)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, str(value)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) as requests sends ``url``; :class:`UnsafeURL` if parsers disagree (case 46)."""
    return checked_url(url).origin


def check_next_url(base_url: str, next_url: str) -> str:
    """Resolve ``next_url`` against ``base_url``; refuse another origin, a downgrade, userinfo or a
    link that parsers read differently (cases 34, 46, 47): the token would follow it."""
    base = _origin(base_url)
    try:
        resolved = join(base_url, next_url)
    except UnsafeURL as exc:
        raise UnsafeNextLink(f"The next-page link was not followed, so the token was not sent: {exc.message}") from None
    if _origin(resolved) != base:
        raise UnsafeNextLink(
            f"The next-page link {redact_url(resolved)} leaves {redact_url(base_url)} "
            "(another origin or https -> http); it was not followed, so the token was not sent there.",
            url=redact_url(resolved))
    return resolved


_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')


def parse_link_header(value: str | None) -> dict[str, str]:
    """``{rel: url}`` from an RFC 8288 ``Link`` header."""
    out: dict[str, str] = {}
    for match in _LINK.finditer(value or ""):
        for param in match.group(2).split(";"):
            key, _, val = param.strip().partition("=")
            if key.strip().lower() == "rel":
                for rel in val.strip().strip('"').split():
                    out.setdefault(rel.lower(), match.group(1))
    return out


def _lookup(body: Any, keys: Sequence[str]) -> Any:
    """First value of ``keys`` in the body or one of its pagination containers."""
    if not isinstance(body, dict):
        return None
    places = [body] + [body[c] for c in _CONTAINERS if isinstance(body.get(c), dict)]
    for place in places:
        for key in keys:
            if place.get(key) is not None:
                return place[key]
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _varying(a: str, b: str) -> tuple[str, int, int] | None:
    """The single integer query parameter that differs between URLs a and b."""
    pa, pb = urlsplit(a), urlsplit(b)
    if (pa.scheme, pa.netloc, pa.path) != (pb.scheme, pb.netloc, pb.path):
        return None
    qa, qb = _query(a), _query(b)
    diff = [k for k in set(qa) | set(qb) if qa.get(k) != qb.get(k)]
    if len(diff) != 1 or _int(qb.get(diff[0])) is None:
        return None
    name = diff[0]
    nb = _int(qb[name])
    if name in qa:
        na = _int(qa[name])
    elif any(w in name.lower() for w in ("offset", "skip", "start", "from")):
        na = 0
    elif "page" in name.lower():
        na = nb - 1  # the first page had no counter: it was the page before the next one
    else:
        return None  # an unknown counter: do not guess
    return (name, na, nb) if na is not None and nb > na else None


def plan_from_totals(page: PageInfo, next_url: str, max_planned: int = 100_000) -> list[str] | None:
    """Remaining URLs when the next link only moves a page/offset counter and page 1 gives a total."""
    varying = _varying(page.url, next_url)
    if varying is None or page.n_records <= 0:
        return None
    name, cur, nxt = varying
    step = nxt - cur
    total_pages = _int(_lookup(page.body, TOTAL_PAGES_KEYS))
    total = _int(_lookup(page.body, TOTAL_KEYS))
    if step == 1:
        if total_pages is None and total is not None:
            size = _int(_lookup(page.body, SIZE_KEYS)) or page.n_records
            total_pages = math.ceil(total / size)
        if total_pages is None:
            return None
        values = range(nxt, cur + total_pages)
    elif total is not None and step in (page.n_records, _int(_lookup(page.body, SIZE_KEYS))):
        values = range(nxt, total, step)
    else:
        return None
    if len(values) > max_planned:
        return None
    return [set_param(next_url, name, v) for v in values]


class Paginator:
    """Base class: subclass and override ``next_url`` (and ``plan`` if the count can be known)."""

    name = "custom"

    def next_url(self, page: PageInfo) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        return plan_from_totals(page, next_url)


class NoPaginator(Paginator):
    name = "none"

    def next_url(self, page: PageInfo) -> str | None:
        return None


class LinkPaginator(Paginator):
    """``Link: <...>; rel="next"`` (GitHub, GitLab); ``rel="last"`` gives the count."""

    name = "link"

    def next_url(self, page: PageInfo) -> str | None:
        nxt = parse_link_header(page.headers.get("Link")).get("next")
        return urljoin(page.url, nxt) if nxt else None

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        last = parse_link_header(page.headers.get("Link")).get("last")
        if last:
            last = urljoin(page.url, last)
            first = _varying(page.url, next_url)
            span = _varying(next_url, last)
            if first and span and first[0] == span[0] and _varying(page.url, last):
                step = first[2] - first[1]
                return [set_param(next_url, span[0], v) for v in range(span[1], span[2] + 1, step)]
        return plan_from_totals(page, next_url)


NEXT_URL_PATHS = (("@odata.nextLink",), ("links", "next"), ("paging", "next"), ("_links", "next"), ("next",),
                  ("next_page_url",), ("nextLink",), ("meta", "next"), ("pagination", "next_url"))


def _body_next(body: Any) -> tuple[bool, str | None]:
    """(the body has a next-link field, its URL or None)."""
    if not isinstance(body, dict):
        return False, None
    for path in NEXT_URL_PATHS:
        parent: Any = body
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or path[-1] not in parent:
            continue
        value = parent[path[-1]]
        if isinstance(value, dict):
            value = value.get("href")
        if value is None or value == "":
            return True, None
        if isinstance(value, str) and value.startswith(("http://", "https://", "/", "?")):
            return True, value
    return False, None


class BodyNextPaginator(Paginator):
    """A next URL in the body: ``next``, ``links.next``, ``paging.next``, ``@odata.nextLink``."""

    name = "next"

    def next_url(self, page: PageInfo) -> str | None:
        _, nxt = _body_next(page.body)
        return urljoin(page.url, nxt) if nxt else None


CURSOR_PATHS = ((("nextPageToken",), "pageToken"), (("next_page_token",), "page_token"),
                (("response_metadata", "next_cursor"), "cursor"), (("next_cursor",), "cursor"),
                (("meta", "next_cursor"), "cursor"), (("cursor", "next"), "cursor"))


def _body_cursor(body: Any) -> tuple[str, str | None] | None:
    if not isinstance(body, dict):
        return None
    for path, param in CURSOR_PATHS:
        value: Any = body
        for key in path:
            value = value.get(key, None) if isinstance(value, dict) else None
        parent = body.get(path[0]) if len(path) > 1 else body
        if isinstance(parent, dict) and path[-1] in parent:
            return param, (str(value) if value not in (None, "") else None)
    return None


class CursorPaginator(Paginator):
    """A token in the body sent back as a query parameter (``pageToken=``, ``cursor=``)."""

    name = "cursor"

    def __init__(self, param: str | None = None) -> None:
        self.param = param

    def next_url(self, page: PageInfo) -> str | None:
        found = _body_cursor(page.body)
        if not found or found[1] is None:
            return None
        return set_param(page.url, self.param or found[0], found[1])

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        return None


class PagePaginator(Paginator):
    """``?page=N`` counters; stops at ``total_pages``/``total`` or on a short or empty page."""

    name = "page"

    def __init__(self, param: str = "page", size_param: str = "per_page", start: int = 1) -> None:
        self.param, self.size_param, self.start = param, size_param, start

    def next_url(self, page: PageInfo) -> str | None:
        if page.n_records == 0:
            return None
        cur = _int(_query(page.url).get(self.param)) or _int(_lookup(page.body, PAGE_KEYS)) or self.start
        total_pages = _int(_lookup(page.body, TOTAL_PAGES_KEYS))
        total = _int(_lookup(page.body, TOTAL_KEYS))
        size = _int(_query(page.url).get(self.size_param)) or _int(_lookup(page.body, SIZE_KEYS))
        if total_pages is None and total is not None and size:
            total_pages = math.ceil(total / size)
        if total_pages is not None and cur - self.start + 1 >= total_pages:
            return None
        if total_pages is None and size and page.n_records < size:
            return None
        return set_param(page.url, self.param, cur + 1)


class OffsetPaginator(Paginator):
    """``?offset=N&limit=M``; stops at ``total`` or on a short or empty page."""

    name = "offset"

    def __init__(self, param: str = "offset", limit_param: str = "limit") -> None:
        self.param, self.limit_param = param, limit_param

    def next_url(self, page: PageInfo) -> str | None:
        if page.n_records == 0:
            return None
        query = _query(page.url)
        offset = _int(query.get(self.param))
        if offset is None:
            offset = _int(_lookup(page.body, (self.param, "offset", "start"))) or 0
        limit = _int(query.get(self.limit_param)) or _int(_lookup(page.body, SIZE_KEYS))
        total = _int(_lookup(page.body, TOTAL_KEYS))
        step = page.n_records if limit is None else limit
        if total is not None and offset + step >= total:
            return None
        if total is None and limit and page.n_records < limit:
            return None
        return set_param(page.url, self.param, offset + step)


class AutoPaginator(Paginator):
    """Detects the style on the first page (Link, body next, cursor, page, offset) and keeps it."""

    name = "auto"

    def __init__(self) -> None:
        self.chosen: Paginator | None = None

    def detect(self, page: PageInfo) -> Paginator:
        if "next" in parse_link_header(page.headers.get("Link")) or "last" in parse_link_header(
                page.headers.get("Link")):
            return LinkPaginator()
        if _body_next(page.body)[0]:
            return BodyNextPaginator()
        if _body_cursor(page.body) is not None:
            return CursorPaginator()
        if _lookup(page.body, PAGE_KEYS) is not None and (
                _lookup(page.body, TOTAL_PAGES_KEYS) is not None or _lookup(page.body, TOTAL_KEYS) is not None):
            return PagePaginator()
        query = _query(page.url)
        if "offset" in query or (_lookup(page.body, ("offset",)) is not None and
                                 _lookup(page.body, TOTAL_KEYS + SIZE_KEYS) is not None):
            return OffsetPaginator()
        if "page" in query:
            return PagePaginator()
        return NoPaginator()

    def next_url(self, page: PageInfo) -> str | None:
        if self.chosen is None:
            self.chosen = self.detect(page)
            self.name = f"auto:{self.chosen.name}"
        return self.chosen.next_url(page)

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        return (self.chosen or self.detect(page)).plan(page, next_url)


_STYLES = {"link": LinkPaginator, "next": BodyNextPaginator, "cursor": CursorPaginator, "page": PagePaginator,
           "offset": OffsetPaginator, "none": NoPaginator, "auto": AutoPaginator}


def make_paginator(paginate: str | Paginator | None) -> Paginator:
    """A fresh paginator for ``paginate`` (a style name or a :class:`Paginator`)."""
    if isinstance(paginate, Paginator):
        return paginate
    if paginate is None or paginate is False:
        return NoPaginator()
    try:
        return _STYLES[str(paginate).lower()]()
    except KeyError:
        raise ConfigurationError(
            f"paginate={paginate!r} is not one of {sorted(_STYLES)} or a Paginator instance.") from None


def ordered_map(work: Callable[[str], Any], urls: list[str], workers: int) -> Iterator[Any]:
    """``work(url)`` for each URL on ``workers`` threads, results in order, bounded look-ahead."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nb_oauth2-page") as pool:
        pending: deque = deque()
        todo = iter(urls)
        try:
            for url in todo:
                pending.append(pool.submit(work, url))
                if len(pending) >= workers * 2:
                    break
            while pending:
                result = pending.popleft().result()
                url = next(todo, None)
                if url is not None:
                    pending.append(pool.submit(work, url))
                yield result
        finally:
            for future in pending:
                future.cancel()


def follow(url: str, work: Callable[[str], tuple[PageInfo, Any]], *, paginator: Paginator,
           concurrency: int | Callable[[float], int] = 1,
           max_pages: int | None = None, on_total: Callable[[int], None] | None = None,
           ) -> Iterator[tuple[PageInfo, Any]]:
    """Fetch page 1 with ``work(url)``, then follow ``next_url`` (or fetch a known ``plan`` on
    ``concurrency`` threads); yields (PageInfo, payload) in page order. ``work`` does the I/O;
    loops, page caps and unsafe next links stop here. ``concurrency`` may be a function of
    the seconds page 1 took (latency-bound APIs earn more threads)."""
    seen = {url}
    started = time.monotonic()
    info, payload = work(url)
    if callable(concurrency):
        concurrency = concurrency(time.monotonic() - started)
    pages = 1
    yield info, payload
    while True:
        nxt = paginator.next_url(info)
        if not nxt:
            return
        nxt = check_next_url(url, nxt)
        if nxt in seen:
            raise PaginationError(f"The API sent the same next link or cursor twice ({redact_url(nxt)}); "
                                  "stopped to avoid a loop. Pass partial=True to keep what was read.")
        if max_pages is not None and pages >= max_pages:
            raise PaginationError(f"Stopped at max_pages={max_pages} with more pages left; raise max_pages= or "
                                  "pass partial=True to keep the pages read so far.")
        plan = paginator.plan(info, nxt) if concurrency > 1 else None
        if plan and plan[0] == nxt and not seen.intersection(plan):
            plan = [check_next_url(url, u) for u in plan]
            room = len(plan) if max_pages is None else min(len(plan), max_pages - pages)
            if on_total is not None:
                on_total(pages + len(plan))
            seen.update(plan)
            for info, payload in ordered_map(work, plan[:room], concurrency):
                pages += 1
                yield info, payload
            if room < len(plan):
                raise PaginationError(f"The API has {len(plan) + 1} pages, more than max_pages={max_pages}; raise "
                                      "max_pages= or pass partial=True to keep the pages read so far.")
            continue
        seen.add(nxt)
        info, payload = work(nxt)
        pages += 1
        yield info, payload
