"""Walking the pages: a paginator's decisions followed, with every stop rule.

:func:`follow` fetches page 1, then asks the paginator for the next URL until it
says done, fetching a known plan on several threads. It stops with a
:class:`~nb_oauth2.core.errors.PaginationError` on a loop (the same request twice,
whatever the order of its query parameters), at ``max_pages``, after
``max_empty_pages`` empty pages in a row that still link onwards (case 56), on a
malformed next link (case 58, naming the field it came from) and when a page
says there is more but the paginator cannot follow it (case 62).
:func:`~nb_oauth2.frames.pagination.check_next_url` refuses links to another origin.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

from ..core.errors import PaginationError
from .pagination import PageInfo, Paginator, _shown, check_link_syntax, check_next_url, url_problem
from ..core.redact import redact_url

__all__ = ["follow", "ordered_map", "url_problem", "MAX_EMPTY_PAGES"]


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


#: consecutive empty pages after which a walk that still gets a next link stops (case 56)
MAX_EMPTY_PAGES = 3


def _seen_key(url: str) -> tuple:
    """The same request whatever the order of its query parameters (a loop that reorders them is a loop)."""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))


def _where(paginator: Paginator) -> str:
    """The field the paginator's last next link came from (for messages)."""
    return getattr(paginator, "field", None) or f"{paginator.name} paginator"


def _next_link(url: str, info: PageInfo, paginator: Paginator, pages: int) -> str | None:
    """The checked next URL, None when the walk is complete; PaginationError when it is not but the
    paginator cannot go on (case 62) or the link is malformed (case 58)."""
    try:
        nxt = paginator.next_url(info)
    except ValueError:  # a custom paginator's urljoin/urlsplit on a malformed link (PaginationError is no ValueError)
        raise PaginationError(f"The {paginator.name!r} paginator could not read the next-page link of page "
                              f"{pages} (a malformed URL); it was not followed.", url=_shown(url)) from None
    if not nxt:
        signal = paginator.pending(info)
        if signal:
            raise PaginationError(
                f"Page {pages} of {_shown(url)} says there is more ({signal!r}) but paginate={paginator.name!r} "
                "cannot follow it, so the result would be silently short. Use paginate='auto', or name the "
                "cursor: paginate=CursorPaginator(field='<field holding the cursor>', param='<query parameter>'); "
                "paginate='none' reads one page on purpose. Pass partial=True to keep the rows read so far.",
                url=_shown(url))
        return None
    where = _where(paginator)
    check_link_syntax(nxt, where)
    try:
        return check_next_url(url, nxt)
    except ValueError:  # a link only urllib cannot parse: still not followed, and typed
        raise PaginationError(f"The next-page link in {where!r} ({_shown(nxt)}) cannot be parsed; it was not "
                              "followed.", url=_shown(nxt)) from None


def _cap_error(max_pages: int, total: int | None = None) -> PaginationError:
    has = f"The API has {total:,} pages, more than" if total else "Stopped at"
    return PaginationError(
        f"{has} max_pages={max_pages:,} with more pages left (a cap that keeps an API that never stops from "
        f"running forever). Pass a larger max_pages= (e.g. max_pages={max_pages * 10:_}) or max_pages=None for "
        "no cap, or partial=True to keep the pages read so far.")


def follow(url: str, work: Callable[[str], tuple[PageInfo, Any]], *, paginator: Paginator,
           concurrency: int | Callable[[float], int] = 1,
           max_pages: int | None = None, on_total: Callable[[int], None] | None = None,
           max_empty_pages: int | None = MAX_EMPTY_PAGES) -> Iterator[tuple[PageInfo, Any]]:
    """Fetch page 1 with ``work(url)``, then follow ``next_url`` (or fetch a known ``plan`` on
    ``concurrency`` threads); yields (PageInfo, payload) in page order. ``work`` does the I/O;
    loops, page caps, ``max_empty_pages`` empty pages in a row that still link onwards, malformed or
    unsafe next links and pages that say there is more when the paginator cannot follow stop here,
    with a PaginationError. ``concurrency`` may be a function of the seconds page 1 took
    (latency-bound APIs earn more threads)."""
    seen = {_seen_key(url)}
    started = time.monotonic()
    info, payload = work(url)
    if callable(concurrency):
        concurrency = concurrency(time.monotonic() - started)
    pages, empty = 1, int(info.n_records == 0)
    yield info, payload
    while True:
        nxt = _next_link(url, info, paginator, pages)
        if nxt is None:
            return
        if _seen_key(nxt) in seen:
            raise PaginationError(f"The API sent the same next link or cursor twice ({redact_url(nxt)}, from "
                                  f"{_where(paginator)!r}); stopped to avoid a loop. Pass partial=True to keep what "
                                  "was read.", url=_shown(nxt))
        if max_empty_pages is not None and empty >= max_empty_pages:
            raise PaginationError(
                f"The API sent {empty} empty pages in a row and still a next page ({_where(paginator)!r}); stopped "
                "as it may never end. Pass a larger max_empty_pages= if the API really skips through empty "
                "pages, or partial=True to keep the rows read so far.", url=_shown(nxt))
        if max_pages is not None and pages >= max_pages:
            raise _cap_error(max_pages)
        plan = paginator.plan(info, nxt) if concurrency > 1 else None
        if plan and plan[0] == nxt and not seen.intersection(map(_seen_key, plan)):
            plan = [check_next_url(url, check_link_syntax(u, _where(paginator))) for u in plan]
            room = len(plan) if max_pages is None else min(len(plan), max_pages - pages)
            if on_total is not None:
                on_total(pages + len(plan))
            seen.update(map(_seen_key, plan))
            for info, payload in ordered_map(work, plan[:room], concurrency):
                pages += 1
                empty = empty + 1 if info.n_records == 0 else 0
                yield info, payload
            if room < len(plan):
                raise _cap_error(max_pages, len(plan) + 1)  # type: ignore[arg-type]
            continue
        seen.add(_seen_key(nxt))
        info, payload = work(nxt)
        pages += 1
        empty = empty + 1 if info.n_records == 0 else 0
        yield info, payload
