"""The paginator interface: :class:`PageInfo` (what a paginator is shown of one response) and
:class:`Paginator` (the base class), with :func:`plan_from_totals`, the plan any counter-moving style
can make when page 1 tells a total.

The styles are in :mod:`nb_oauth2.frames.pagination` (generic) and
:mod:`nb_oauth2.frames.api_paginators` (one API family each); both build on this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .next_links import parse_link_header, query_of, set_param, varying_counter
from .page_fields import SIZE_KEYS, TOTAL_KEYS, TOTAL_PAGES_KEYS, as_int, lookup, more_signal, odata_count
from .page_fields import page_count

__all__ = ["PageInfo", "Paginator", "plan_from_totals"]


@dataclass(frozen=True)
class PageInfo:
    """What a paginator is shown of one response: enough to decide the next request, nothing more.

    Not the :class:`nb_oauth2.frames.readers.Page` that ``iter_pages`` yields to users (which carries
    the records and raw bytes), nor the :class:`nb_oauth2.frames.fetch.Response` a fetch returns.
    ``body`` is the parsed body (on the Arrow fast path only its envelope, without the records);
    ``n_records`` how many records the page held; ``body_is_record``: the body itself was the one
    record, so its fields are data, not pagination; ``last_id``: the last record's id, filled by the
    walk for a paginator that names an ``id_field`` (Stripe's ``starting_after``).
    """

    url: str
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    n_records: int = 0
    body_is_record: bool = False
    last_id: Any = None


def plan_from_totals(page: PageInfo, next_url: str, max_planned: int = 100_000) -> list[str] | None:
    """Remaining URLs when the next link only moves a page/offset counter and page 1 gives a total (a page
    counter is planned from the first page only: from page k, ``total_pages`` would overshoot by k - 1).
    OData's ``$skip`` in an ``@odata.nextLink`` is planned from the OData count of every record."""
    varying = varying_counter(page.url, next_url)
    if varying is None or page.n_records <= 0:
        return None
    name, cur, nxt = varying
    step = nxt - cur
    if step == 1 and cur > 1 and name in query_of(page.url):
        return None  # a page count counts from the first page, and this page is not the first
    total_pages = as_int(lookup(page.body, TOTAL_PAGES_KEYS))
    total = as_int(lookup(page.body, TOTAL_KEYS))
    if total is None and name.lower() in ("$skip", "skip"):
        total = odata_count(page.body)
    if step == 1:
        if total_pages is None and total is not None:
            size = as_int(lookup(page.body, SIZE_KEYS)) or page.n_records
            total_pages = math.ceil(total / size)
        if total_pages is None:
            return None
        values = range(nxt, cur + total_pages)
    elif total is not None and step in (page.n_records, as_int(lookup(page.body, SIZE_KEYS))):
        values = range(nxt, total, step)
    else:
        return None
    if len(values) > max_planned:
        return None
    return [set_param(next_url, name, v) for v in values]


class Paginator:
    """Base class: subclass and override ``next_url`` (and ``plan`` if the count can be known).

    ``field`` names where the last next link came from (for messages). ``pending(page)`` names the
    field by which a page says there is more; :func:`follow` raises when ``next_url`` gave None
    while ``pending`` names one (override it to return None if your paginator stops on purpose).
    """

    name = "custom"
    field: str | None = None

    def next_url(self, page: PageInfo) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        return plan_from_totals(page, next_url)

    def total_pages(self, page: PageInfo, next_url: str | None) -> int | None:
        """The page count page 1 tells (``total_pages``, ``X-Total-Pages``, ``total`` or ``X-Total-Count`` or
        ``@odata.count`` over the page size), for the progress bar; None when it tells none."""
        return page_count(None if page.body_is_record else page.body, page.headers, query_of(page.url),
                          page.n_records)

    def pending(self, page: PageInfo) -> str | None:
        return more_signal(page.body, body_is_record=page.body_is_record,
                           link_next="next" in parse_link_header(page.headers.get("Link")))
