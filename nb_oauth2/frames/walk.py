"""Walking the pages: the driver that fetches what the pagination decisions ask for.

:func:`follow` fetches page 1, then asks :class:`~nb_oauth2.frames.walk_rules.WalkRules` for
the next URL until it says done, fetching a known plan on several threads (:func:`ordered_map`);
a caller that can convert several small pages at once passes ``batched``: the threads then only
fetch, and runs of consecutive planned pages are converted together (pages still come out one by
one, in order).
Every decision -- which URL, when to stop, what is an error -- is made in
:mod:`nb_oauth2.frames.walk_rules` and :mod:`nb_oauth2.frames.pagination`; here are only the
requests, the threads and the clock.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

from .api_paginators import last_id_of
from .next_links import url_problem
from .pagination import PageInfo, Paginator
from .walk_rules import MAX_EMPTY_PAGES, WalkRules, page_cap_error

__all__ = ["follow", "ordered_map", "url_problem", "MAX_EMPTY_PAGES", "FetchPage", "Batched"]

#: fetches one page URL: (what the paginator is shown, what the caller wants back)
FetchPage = Callable[[str], "tuple[PageInfo, Any]"]
#: (fetch one page's raw response, convert consecutive raw responses: (the pages, the error that stopped it))
Batched = tuple[Callable[[str], Any], Callable[[list], "tuple[list[tuple[PageInfo, Any]], BaseException | None]"]]


def ordered_map(fetch: Callable[[str], Any], urls: list[str], workers: int, ahead: int = 0) -> Iterator[Any]:
    """``fetch(url)`` for each URL on ``workers`` threads, results in order, bounded look-ahead (at most
    ``max(ahead, 2 * workers)`` URLs submitted and not yet consumed)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nb_oauth2-page") as pool:
        pending: deque = deque()
        todo = iter(urls)
        try:
            for url in todo:
                pending.append(pool.submit(fetch, url))
                if len(pending) >= max(ahead, workers * 2):
                    break
            while pending:
                result = pending.popleft().result()
                url = next(todo, None)
                if url is not None:
                    pending.append(pool.submit(fetch, url))
                yield result
        finally:
            for future in pending:
                future.cancel()


def _with_last_id(fetch_page: FetchPage, id_field: str) -> FetchPage:
    """``fetch_page`` whose PageInfo carries the ``id_field`` of the page's last record."""
    def fetch(url: str) -> tuple[PageInfo, Any]:
        info, payload = fetch_page(url)
        return replace(info, last_id=last_id_of(payload, id_field)), payload
    return fetch


def _planned(fetch_page: FetchPage, urls: list[str], workers: int, batched: Batched | None,
             batch: int) -> Iterator[tuple[PageInfo, Any]]:
    """The planned pages in order, fetched on ``workers`` threads: each converted by its thread, or
    (``batched``) fetched raw by the threads and converted here ``batch`` at a time, in order (a run
    that failed yields the pages before the failure, then raises)."""
    if batched is None or batch <= 1 or len(urls) <= 1:
        yield from ordered_map(fetch_page, urls, workers)
        return
    fetch_raw, convert = batched
    raws = ordered_map(fetch_raw, urls, workers, ahead=batch + 2 * workers)  # fetching goes on while a run converts
    try:
        while True:
            run: list = []
            error: BaseException | None = None
            try:
                for raw in raws:
                    run.append(raw)
                    if len(run) == batch:
                        break
            except Exception as exc:  # the pages before it still count (partial=True keeps them)
                error = exc
            pages, failed = convert(run) if run else ([], None)
            yield from pages
            if failed is not None or error is not None:
                raise failed or error  # type: ignore[misc]
            if len(run) < batch:
                return
    finally:
        raws.close()


def _batched_with_last_id(batched: Batched, id_field: str) -> Batched:
    """``batched`` whose PageInfos carry the ``id_field`` of their page's last record."""
    fetch_raw, convert = batched

    def converted(raws: list) -> tuple[list[tuple[PageInfo, Any]], BaseException | None]:
        pages, error = convert(raws)
        return [(replace(info, last_id=last_id_of(payload, id_field)), payload) for info, payload in pages], error
    return fetch_raw, converted


def follow(url: str, fetch_page: FetchPage, *, paginator: Paginator,
           concurrency: int | Callable[[float], int] = 1,
           max_pages: int | None = None, on_total: Callable[[int], None] | None = None,
           max_empty_pages: int | None = MAX_EMPTY_PAGES, batched: Batched | None = None,
           batch: int | Callable[[float], int] = 1) -> Iterator[tuple[PageInfo, Any]]:
    """Fetch page 1 with ``fetch_page(url)``, then follow ``next_url`` (or fetch a known ``plan`` on
    ``concurrency`` threads); yields (PageInfo, payload) in page order. ``on_total(pages)`` hears the
    page count when page 1 tells it or a plan knows it, and once more when the walk is complete.
    ``fetch_page`` does the I/O; loops, page caps, ``max_empty_pages`` empty pages in a row that still
    link onwards, malformed or unsafe next links and pages that say there is more when the paginator
    cannot follow stop the walk (:class:`~nb_oauth2.frames.walk_rules.WalkRules`) with a PaginationError.
    ``concurrency`` may be a function of the seconds page 1 took (latency-bound APIs earn more threads).
    ``batched`` = (fetch_raw, convert): the threads only fetch planned pages (``fetch_raw(url)``) and
    ``convert(responses)`` turns ``batch`` consecutive ones into pages at once, returning (pages, the error
    that stopped it or None); ``batch`` may be a function of the seconds page 1 took, too."""
    id_field = getattr(paginator, "id_field", None)
    if isinstance(id_field, str):  # the paginator reads the last record's id (Stripe): PageInfo.last_id
        fetch_page = _with_last_id(fetch_page, id_field)
        batched = _batched_with_last_id(batched, id_field) if batched is not None else None
    rules = WalkRules(url, paginator, max_pages=max_pages, max_empty_pages=max_empty_pages)
    started = time.monotonic()
    info, payload = fetch_page(url)
    first_seconds = time.monotonic() - started
    if callable(concurrency):
        concurrency = concurrency(first_seconds)
    if callable(batch):
        batch = batch(first_seconds)
    rules.count(info)
    yield info, payload
    told = on_total or (lambda pages: None)
    nxt = rules.next_url(info)
    total = rules.page_total(info, nxt) if nxt is not None else None
    if total:
        told(total)
    while True:
        if nxt is None:
            told(rules.pages)  # complete: the count is known now, whatever page 1 said
            return
        plan = rules.planned_urls(info, nxt) if concurrency > 1 else None
        if plan:
            room = rules.room(len(plan))
            told(rules.pages + len(plan))
            for info, payload in _planned(fetch_page, plan[:room], concurrency, batched, batch):
                rules.count(info)
                yield info, payload
            if room < len(plan):
                raise page_cap_error(max_pages, len(plan) + 1)  # type: ignore[arg-type]
            nxt = rules.next_url(info)
            continue
        rules.claim(nxt)
        info, payload = fetch_page(nxt)
        rules.count(info)
        yield info, payload
        nxt = rules.next_url(info)
