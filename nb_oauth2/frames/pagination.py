"""Pagination as pure decisions: given a page, what is the next request?

Every style answers two questions without any I/O:

* ``next_url(page)`` -> the URL of the next page, or None when done;
* ``plan(page, next_url)`` -> every remaining URL when page 1 tells the page
  count (``total_pages``, ``total``, a ``Link rel="last"``), so the caller may
  fetch them concurrently; None when only sequential following is possible;
* ``total_pages(page, next_url)`` -> how many pages there are, when page 1 says
  so (also in headers and OData counts), for the progress bar alone.

Styles: ``Link`` header (GitHub, GitLab), a next URL in the body (``next``, ``links.next`` (JSON:API),
``paging.next``, ``@odata.nextLink``, Spotify search's ``tracks.next``), a token/cursor in the body
(``nextPageToken`` -> ``pageToken=``, ``next_cursor`` -> ``cursor=``), page/per_page and offset/limit
counters (``startAt`` with a total: Jira), GitLab's ``X-Next-Page`` header, OData's ``$skip`` up to
``@odata.count``; :mod:`nb_oauth2.frames.api_paginators` holds the one-API styles (Stripe's
``starting_after``, detected on ``"object": "list"``; OData's ``$skip``), :mod:`nb_oauth2.frames.paginator_base`
the interface. :func:`~nb_oauth2.frames.next_links.check_next_url`
refuses a next link to another origin or from https to http (the token would follow it).

Never silently short (case 62): when a page says there is more (a non-empty
next link, cursor or token, ``has_more: true``, ``done: false``, ``isLast:
false``, ``pageInfo.hasNextPage``, a ``Link rel="next"``) and the paginator
cannot follow it, :func:`follow` raises :class:`PaginationError` naming the
field (``Paginator.pending``). A ``next`` that is not a URL is a cursor, sent
back as ``cursor=``; ``CursorPaginator(field=..., param=...)`` names any other.
Only ``paginate="none"`` (:class:`NoPaginator`) reads one page on purpose.
"""

from __future__ import annotations

import math
from typing import Any, Sequence
from urllib.parse import urljoin, urlsplit

from ..core.errors import ConfigurationError
from .api_paginators import NextPageHeaderPaginator, SkipPaginator, StartingAfterPaginator, header, is_stripe_list
from .api_paginators import is_stripe_search
from .next_links import check_link_syntax, check_next_url, join_link, parse_link_header, query_of, set_param
from .next_links import url_problem, varying_counter
from .page_fields import CURSOR_PATHS, LINK_NEXT, PAGE_KEYS, SIZE_KEYS, TOTAL_KEYS, TOTAL_PAGES_KEYS, body_cursor
from .page_fields import URL_FIELDS, as_int, body_next, field_path, flag, get_path, is_url, lookup, more_signal
from .page_fields import odata_count
from .paginator_base import PageInfo, Paginator, plan_from_totals

__all__ = [
    "PageInfo", "Paginator", "LinkPaginator", "BodyNextPaginator", "CursorPaginator", "PagePaginator",
    "OffsetPaginator", "NoPaginator", "AutoPaginator", "make_paginator", "check_next_url", "set_param",
    "parse_link_header", "plan_from_totals", "check_link_syntax", "url_problem",
]


class NoPaginator(Paginator):
    """``paginate="none"``: one request, one page, on purpose: whatever the page says about more
    pages is not read (use "auto" to read them all)."""

    name = "none"

    def next_url(self, page: PageInfo) -> str | None:
        return None

    def pending(self, page: PageInfo) -> str | None:
        return None


class LinkPaginator(Paginator):
    """``Link: <...>; rel="next"`` (GitHub, GitLab); ``rel="last"`` gives the count."""

    name = "link"
    field = LINK_NEXT

    def next_url(self, page: PageInfo) -> str | None:
        nxt = parse_link_header(page.headers.get("Link")).get("next")
        return join_link(page.url, nxt, LINK_NEXT) if nxt else None

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        last = parse_link_header(page.headers.get("Link")).get("last")
        if last:
            last = join_link(page.url, last, 'Link rel="last"')
            first = varying_counter(page.url, next_url)
            span = varying_counter(next_url, last)
            if first and span and first[0] == span[0] and varying_counter(page.url, last):
                step = first[2] - first[1]
                return [set_param(next_url, span[0], v) for v in range(span[1], span[2] + 1, step)]
        return plan_from_totals(page, next_url)

    def total_pages(self, page: PageInfo, next_url: str | None) -> int | None:
        """From ``rel="last"`` when its counter is the one ``rel="next"`` moves, else as any paginator."""
        last = parse_link_header(page.headers.get("Link")).get("last")
        if next_url and last:
            last_url = urljoin(page.url, last.strip())
            if last_url == next_url:
                return 2
            span = varying_counter(next_url, last_url)  # (name, its value in next, its value in last)
            first = varying_counter(page.url, next_url)
            if span is not None:
                step = first[2] - first[1] if first and first[0] == span[0] else 1 if "page" in span[0].lower() else 0
                if step > 0:
                    return (span[2] - span[1]) // step + 2
        return super().total_pages(page, next_url)


def _stops(body: Any) -> bool:
    """An explicit flag says this was the last page (``has_more: false``, ``done: true``)."""
    found = flag(body)
    return found is not None and not found[1]


def _cursor_value(value: Any) -> str | None:
    """A cursor to send back: strings and integers (never a bool, an object or a list)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        return None
    return str(value)


class BodyNextPaginator(Paginator):
    """A next URL in the body: ``next``, ``links.next`` (JSON:API), ``paging.next``, ``@odata.nextLink``
    (OData v4; v3 ``odata.nextLink``, v2 ``d.__next``), ``nextRecordsUrl``. A value that is not a URL is a
    cursor, sent back as ``cursor=`` (the OData and Salesforce fields always hold URLs, maybe relative)."""

    name = "next"

    def next_url(self, page: PageInfo) -> str | None:
        found = body_next(page.body)
        if found is None or found[1] is None or _stops(page.body):
            return None
        self.field, value = found
        if is_url(value) or (self.field in URL_FIELDS and isinstance(value, str)):
            return join_link(page.url, value, self.field)
        cursor = _cursor_value(value)
        return set_param(page.url, "cursor", cursor) if cursor is not None else None


class CursorPaginator(Paginator):
    """A token in the body sent back as a query parameter (``nextPageToken`` -> ``pageToken=``,
    ``next_cursor`` -> ``cursor=``, a ``next`` that is not a URL -> ``cursor=``).

    ``field`` names the token (a dotted path such as ``"response_metadata.next_cursor"`` or a
    sequence of keys) and ``param`` the query parameter it goes back in (default ``cursor``).
    A named token is always a cursor, even when it looks like a URL. An explicit "last page" flag
    (``has_more: false``, ``pageInfo.hasNextPage: false``) ends the walk even if a cursor is left.
    """

    name = "cursor"

    def __init__(self, param: str | None = None, *, field: str | Sequence[str] | None = None) -> None:
        self.param = param
        self.path = field_path(field) if field is not None else None
        self.field = ".".join(self.path) if self.path else None

    def next_url(self, page: PageInfo) -> str | None:
        if _stops(page.body):
            return None
        if self.path is not None:
            value = get_path(page.body, self.path)[1]
            param = self.param or dict((".".join(p), q) for p, q in CURSOR_PATHS).get(self.field or "", "cursor")
        else:
            found = self._found(page.body)
            if found is None:
                return None
            self.field, param, value = found
            if self.field == "meta.next_token" and "/tweets/search/" in urlsplit(page.url).path:
                param = "next_token"  # X API v2 search takes next_token=, the timelines pagination_token=
            param = self.param or param
        cursor = _cursor_value(value)
        return set_param(page.url, param, cursor) if cursor is not None else None

    @staticmethod
    def _found(body: Any) -> tuple[str, str, Any] | None:
        known = body_cursor(body)
        if known is not None:
            return known
        nxt = body_next(body)
        if nxt is not None and nxt[1] is not None and not is_url(nxt[1]):
            return nxt[0], "cursor", nxt[1]
        return None

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        return None


def _flagged_more(body: Any) -> bool | None:
    found = flag(body)
    return None if found is None else found[1]


class PagePaginator(Paginator):
    """``?page=N`` counters; stops at ``total_pages``/``total``, on a short or empty page, or when the
    body says so (``has_more: false``); ``has_more: true`` goes on."""

    name = "page"

    def __init__(self, param: str = "page", size_param: str = "per_page", start: int = 1) -> None:
        self.param, self.size_param, self.start = param, size_param, start
        self.field = f"the {param}= counter"

    def next_url(self, page: PageInfo) -> str | None:
        cur = as_int(query_of(page.url).get(self.param)) or as_int(lookup(page.body, PAGE_KEYS)) or self.start
        more = _flagged_more(page.body)
        if more is not None:
            return set_param(page.url, self.param, cur + 1) if more else None
        if page.n_records == 0:
            return None
        total_pages = as_int(lookup(page.body, TOTAL_PAGES_KEYS))
        total = as_int(lookup(page.body, TOTAL_KEYS))
        size = as_int(lookup(page.body, SIZE_KEYS)) or as_int(query_of(page.url).get(self.size_param))
        if total_pages is None and total is not None and size:
            total_pages = math.ceil(total / size)
        if total_pages is not None and cur - self.start + 1 >= total_pages:
            return None
        if total_pages is None and size and page.n_records < size:
            return None
        return set_param(page.url, self.param, cur + 1)

    def pending(self, page: PageInfo) -> str | None:  # the counters are its own to judge (start=0 or 1)
        return more_signal(page.body, body_is_record=page.body_is_record, counters=False,
                           link_next="next" in parse_link_header(page.headers.get("Link")))


class OffsetPaginator(Paginator):
    """``?offset=N&limit=M``; stops at ``total``, on a short or empty page, or when the body says so.

    The next offset moves by the page's own size as the server reports it (``limit`` in the body), else
    by the records received: a server that caps ``limit=1000`` at 100 loses no rows."""

    name = "offset"

    def __init__(self, param: str = "offset", limit_param: str = "limit") -> None:
        self.param, self.limit_param = param, limit_param
        self.field = f"the {param}= counter"

    def next_url(self, page: PageInfo) -> str | None:
        query = query_of(page.url)
        offset = as_int(query.get(self.param))
        if offset is None:
            offset = as_int(lookup(page.body, (self.param, "offset", "start"))) or 0
        served = as_int(lookup(page.body, (self.limit_param, *SIZE_KEYS)))
        step = served or page.n_records
        more = _flagged_more(page.body)
        if more is not None:
            return set_param(page.url, self.param, offset + step) if more and step else None
        if page.n_records == 0:
            return None
        limit = served or as_int(query.get(self.limit_param))
        total = as_int(lookup(page.body, TOTAL_KEYS))
        if total is not None and offset + step >= total:
            return None
        if total is None and limit and page.n_records < limit:
            return None
        return set_param(page.url, self.param, offset + step)


class AutoPaginator(Paginator):
    """Detects the style on the first page (Link, body next, cursor, page, offset) and keeps it.

    Unlike ``paginate="none"``, a page whose style was not recognised but that says there is more
    (``has_more``, ``isLast: false`` ...) stops with a PaginationError naming the field."""

    name = "auto"
    #: the walk gives every page's last record ``id`` (PageInfo.last_id), in case the API is Stripe's
    id_field = "id"

    def __init__(self) -> None:
        self.chosen: Paginator | None = None

    def detect(self, page: PageInfo) -> Paginator:
        links = parse_link_header(page.headers.get("Link"))
        if "next" in links or "last" in links:
            return LinkPaginator()
        if header(page.headers, "X-Next-Page") is not None:  # GitLab without its Link header
            return NextPageHeaderPaginator()
        if body_next(page.body) is not None:
            return BodyNextPaginator()
        if body_cursor(page.body) is not None:
            return CursorPaginator()
        if is_stripe_list(page.body):  # has_more -> starting_after=<last id>
            return StartingAfterPaginator()
        if is_stripe_search(page.body):  # Stripe's search: next_page -> page=
            return CursorPaginator("page", field="next_page")
        if odata_count(page.body) is not None:  # OData without a next link: the client moves $skip
            return SkipPaginator()
        if lookup(page.body, PAGE_KEYS) is not None and (
                lookup(page.body, TOTAL_PAGES_KEYS) is not None or lookup(page.body, TOTAL_KEYS) is not None):
            return PagePaginator()
        query = query_of(page.url)
        if lookup(page.body, ("startAt",)) is not None and lookup(page.body, TOTAL_KEYS) is not None:  # Jira
            return OffsetPaginator("startAt", "maxResults")
        if "offset" in query or (lookup(page.body, ("offset",)) is not None and
                                 lookup(page.body, TOTAL_KEYS + SIZE_KEYS) is not None):
            return OffsetPaginator()
        if "page" in query:
            return PagePaginator()
        return _Undetected()

    @property
    def field(self) -> str | None:  # type: ignore[override]
        return self.chosen.field if self.chosen is not None else None

    def next_url(self, page: PageInfo) -> str | None:
        if self.chosen is None:
            self.chosen = self.detect(page)
            self.name = f"auto:{self.chosen.name}"
        return self.chosen.next_url(page)

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        return (self.chosen or self.detect(page)).plan(page, next_url)

    def total_pages(self, page: PageInfo, next_url: str | None) -> int | None:
        return (self.chosen or self.detect(page)).total_pages(page, next_url)

    def pending(self, page: PageInfo) -> str | None:
        return (self.chosen or _Undetected()).pending(page)


class _Undetected(NoPaginator):
    """What "auto" found when no style matched: one page, unless the page says there is more."""

    pending = Paginator.pending


_STYLES = {"link": LinkPaginator, "next": BodyNextPaginator, "cursor": CursorPaginator, "page": PagePaginator,
           "offset": OffsetPaginator, "none": NoPaginator, "auto": AutoPaginator}
#: the style names ``paginate=`` takes
PAGINATION_STYLES = tuple(_STYLES)


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
