"""Paginators for conventions of one API family that the generic styles cannot express.

* :class:`StartingAfterPaginator` -- Stripe: ``has_more: true`` and no cursor; the next page is
  ``starting_after=<id of the last record>``. The id comes from the page body (``data``) or, on the
  Arrow fast path where the body is only the envelope, from :attr:`PageInfo.last_id`, which
  :func:`nb_oauth2.frames.walk.follow` fills from the page's records (:func:`last_id_of`) for a
  paginator that names an ``id_field``. Detected by "auto" on a Stripe list object
  (:func:`is_stripe_list`); has_more with no id to start after is a PaginationError. (Stripe's search
  results carry a ``next_page`` token instead, sent back as ``page=``: :func:`is_stripe_search`.)
* :class:`NextPageHeaderPaginator` -- GitLab's offset pagination headers: ``X-Next-Page`` (empty on the
  last page) sent back as ``page=``, ``X-Page`` and ``X-Total-Pages`` to plan the rest.
* :class:`SkipPaginator` -- OData client-driven paging: no ``@odata.nextLink``, a count of every record
  (``@odata.count``, ``odata.count``, ``d.__count``); ``$skip`` moves by the records served, up to the
  count, and page 1 plans the rest.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..core.errors import PaginationError
from .next_links import query_of, set_param, shown_url
from .page_fields import as_int, flag, odata_count
from .paginator_base import PageInfo, Paginator

__all__ = ["StartingAfterPaginator", "NextPageHeaderPaginator", "SkipPaginator", "last_id_of", "header",
           "is_stripe_list", "is_stripe_search"]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A response header whatever its case (None when absent)."""
    name = name.lower()
    return next((str(v) for k, v in headers.items() if str(k).lower() == name), None)


def last_id_of(payload: Any, key: str = "id") -> Any:
    """The ``key`` of the last record of a page payload as the readers build it: (records, response),
    (n, {column: values}) or an Arrow table; None when there is none."""
    if isinstance(payload, tuple) and len(payload) == 2:
        first, second = payload
        if isinstance(first, list):
            last = first[-1] if first else None
            return last.get(key) if isinstance(last, dict) else None
        if isinstance(second, dict):
            column = second.get(key)
            return column[-1] if column else None
        return None
    names = getattr(payload, "column_names", None)
    if names and key in names and payload.num_rows:
        return payload.column(key)[-1].as_py()
    return None


def is_stripe_list(body: Any) -> bool:
    """A Stripe list object: ``{"object": "list", "data": [...], "has_more": bool, "url": ...}``."""
    return isinstance(body, dict) and body.get("object") == "list" and isinstance(body.get("has_more"), bool)


def is_stripe_search(body: Any) -> bool:
    """A Stripe search result: ``{"object": "search_result", "has_more": bool, "next_page": token | null}``."""
    return isinstance(body, dict) and body.get("object") == "search_result" and "next_page" in body


class StartingAfterPaginator(Paginator):
    """Stripe-style lists: while ``has_more`` is true, ask for ``param=<last record's id_field>``
    (``starting_after=cus_...``). ``records`` names the body's list of records (Stripe: ``data``)."""

    name = "starting_after"

    def __init__(self, param: str = "starting_after", *, id_field: str = "id", records: str = "data") -> None:
        self.param, self.id_field, self.records = param, id_field, records
        self.field = "has_more"

    def next_url(self, page: PageInfo) -> str | None:
        found = flag(page.body)
        if found is None or not found[1]:
            return None
        last = self._last_id(page)
        if isinstance(last, bool) or not isinstance(last, (str, int)) or last == "":
            raise PaginationError(
                f"The page {shown_url(page.url)} says there is more ('has_more') but its last record has no "
                f"{self.id_field!r} to send back as {self.param}=, so the result would be silently short. Pass "
                f"record_path= if the records are not in {self.records!r}, or StartingAfterPaginator(id_field=...) "
                "naming the records' id; partial=True keeps the rows read so far.", url=shown_url(page.url))
        return set_param(page.url, self.param, last)

    def _last_id(self, page: PageInfo) -> Any:
        records = page.body.get(self.records) if isinstance(page.body, dict) else None
        if isinstance(records, list) and records:
            return records[-1].get(self.id_field) if isinstance(records[-1], dict) else None
        return page.last_id

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        return None


class NextPageHeaderPaginator(Paginator):
    """GitLab's headers: ``X-Next-Page`` -> ``page=`` (empty on the last page); with ``X-Page`` and
    ``X-Total-Pages`` the remaining pages are planned (GitLab omits the totals past 10,000 records)."""

    name = "x-next-page"
    field = "X-Next-Page"

    def __init__(self, param: str = "page") -> None:
        self.param = param

    def next_url(self, page: PageInfo) -> str | None:
        value = (header(page.headers, "X-Next-Page") or "").strip()
        return set_param(page.url, self.param, value) if value else None

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        nxt = as_int((header(page.headers, "X-Next-Page") or "").strip())
        pages = as_int((header(page.headers, "X-Total-Pages") or "").strip())
        if nxt is None or pages is None or nxt > pages:
            return None
        return [set_param(next_url, self.param, n) for n in range(nxt, pages + 1)]

    def pending(self, page: PageInfo) -> str | None:
        if (header(page.headers, "X-Next-Page") or "").strip():
            return "X-Next-Page"
        return super().pending(page)


class SkipPaginator(Paginator):
    """OData client-driven paging (``$top``/``$skip`` with ``$count=true``): the body has no next link but
    counts every record (``@odata.count``; v3 ``odata.count``; v2 ``d.__count``). The next page is
    ``$skip=<skip + records served>`` until the count is reached or a page is empty; page 1 plans the rest
    (the server's page size as served, so a server that caps ``$top`` loses no rows)."""

    name = "skip"

    def __init__(self, param: str = "$skip") -> None:
        self.param = param
        self.field = f"the {param}= counter"

    def _next_skip(self, page: PageInfo) -> int | None:
        count = odata_count(page.body)
        skip = as_int(query_of(page.url).get(self.param)) or 0
        if count is None or page.n_records <= 0 or skip + page.n_records >= count:
            return None
        return skip + page.n_records

    def next_url(self, page: PageInfo) -> str | None:
        skip = self._next_skip(page)
        return None if skip is None else set_param(page.url, self.param, skip)

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        skip, count = self._next_skip(page), odata_count(page.body)
        if skip is None or count is None:
            return None
        return [set_param(next_url, self.param, v) for v in range(skip, count, page.n_records)]
