"""Concurrency engages whenever page 1 tells the page count, wherever the page parameter sits (issue 13).

A loopback API that builds its links with the page counter mid-query (GitLab, GitHub with extra
parameters) counts overlapping requests: read_json must fetch pages 2.. concurrently, keep the API's
parameter order in every URL it requests, and deliver each record once, in order. In memory, the
plan is built once: set_param calls grow linearly with the page count.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from nb_oauth2.frames import pagination
from nb_oauth2.frames.next_links import set_param
from nb_oauth2.frames.pagination import LinkPaginator, PageInfo, Paginator
from nb_oauth2.frames.readers import read_json
from nb_oauth2.frames.walk import follow
from tests.scripted_server import Reply, ScriptedServer, Seen

RECORDS, SIZE = 7, 2  # 4 pages, a partial last one
PAGES = -(-RECORDS // SIZE)


class CountingAPI(ScriptedServer):
    """Pages of ``SIZE`` records whose links put the counter where ``order`` says; records in-flight requests.

    Requests after the first wait (up to ``hold`` seconds) until two have been in flight at once, so a
    concurrent reader always shows an overlap and a sequential one never can (a count, not a clock)."""

    def __init__(self, style: str, order: tuple[str, ...], hold: float = 0.5) -> None:
        super().__init__(http11=True)
        self.style, self.order, self.hold = style, order, hold
        self.in_flight = self.max_in_flight = 0
        self.cond = threading.Condition()
        self.script("*", [self._page])

    def link(self, counter: int) -> str:
        values = {"page": counter, "per_page": SIZE, "offset": counter, "limit": SIZE, "sort": "id",
                  "state": "open"}
        return f"{self.url}/items?" + "&".join(f"{k}={values[k]}" for k in self.order)

    def _page(self, seen: Seen) -> Reply:
        with self.cond:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.cond.notify_all()
            if len(self.seen) > 1:
                self.cond.wait_for(lambda: self.max_in_flight > 1, timeout=self.hold)
        try:
            return self._reply(seen.query)
        finally:
            with self.cond:
                self.in_flight -= 1

    def _reply(self, query: dict) -> Reply:
        offset = int(query["offset"]) if self.style == "offset" else (int(query.get("page", 1)) - 1) * SIZE
        page = offset // SIZE + 1
        data = [{"id": i} for i in range(offset, min(offset + SIZE, RECORDS))]
        headers: dict = {}
        if self.style == "link":
            links = [f'<{self.link(page + 1)}>; rel="next"'] if page < PAGES else []
            headers["Link"] = ", ".join(links + [f'<{self.link(PAGES)}>; rel="last"'])
            return Reply(200, {"data": data}, headers)
        if self.style == "offset":
            return Reply(200, {"items": data, "offset": offset, "limit": SIZE, "total": RECORDS})
        nxt = self.link(page + 1) if page < PAGES else None  # "next": a next URL and a total in the body
        return Reply(200, {"data": data, "next": nxt, "total": RECORDS, "per_page": SIZE})

    def requested_orders(self) -> list[list[str]]:
        return [[key for key, _ in parse_qsl(urlsplit(s.path).query)] for s in self.seen]


CASES = [  # (style, the API's parameter order, the first URL's counter)
    ("next", ("page", "per_page", "sort"), 1),
    ("link", ("per_page", "page", "state"), 1),
    ("offset", ("offset", "limit", "sort"), 0),
]


@pytest.mark.parametrize("style, order, first", CASES, ids=[c[0] for c in CASES])
def test_pages_are_fetched_concurrently_with_the_page_parameter_mid_query(style, order, first):
    with CountingAPI(style, order) as api:
        frame = read_json(api.link(first), session=requests.Session(), progress=False, concurrency=4)
        assert frame["id"].tolist() == list(range(RECORDS))  # every record once, in order
        assert len(api.seen) == PAGES
        assert api.max_in_flight > 1, "pages 2.. were fetched one after another"
        assert api.requested_orders() == [list(order)] * PAGES  # the API's own parameter order


# -- in memory: the plan is built once --------------------------------------------------------------


def _link_pages(n: int):
    """A fetch_page over ``n`` pages whose Link header puts ``page`` mid-query (no HTTP)."""
    base = "https://api.example.com/items"

    def url(page: int) -> str:
        return f"{base}?per_page=100&page={page}&state=open"

    def fetch(u: str) -> tuple[PageInfo, int]:
        page = int(dict(parse_qsl(urlsplit(u).query))["page"])
        links = ([f'<{url(page + 1)}>; rel="next"'] if page < n else []) + [f'<{url(n)}>; rel="last"']
        return PageInfo(url=u, headers={"Link": ", ".join(links)}, n_records=100), page

    return url(1), fetch


def _counted_set_param(monkeypatch) -> list[int]:
    calls = [0]

    def counting(url: str, name: str, value: object) -> str:
        calls[0] += 1
        return set_param(url, name, value)

    monkeypatch.setattr(pagination, "set_param", counting)
    return calls


def test_set_param_calls_grow_linearly_with_the_page_count(monkeypatch):
    n = 1000
    calls = _counted_set_param(monkeypatch)
    start, fetch = _link_pages(n)
    pages = [payload for _, payload in follow(start, fetch, paginator=LinkPaginator(), concurrency=4,
                                              max_pages=None)]
    assert pages == list(range(1, n + 1))
    assert calls[0] <= 3 * n


class _PlanElsewhere(LinkPaginator):
    """A plan that never starts at the next link: declined, and never built again."""

    def __init__(self) -> None:
        self.plans = 0

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        self.plans += 1
        planned = super().plan(page, next_url)
        return planned[1:] if planned else None


def test_a_declined_plan_is_not_rebuilt_for_every_page(monkeypatch):
    n = 300
    calls = _counted_set_param(monkeypatch)
    start, fetch = _link_pages(n)
    paginator = _PlanElsewhere()
    pages = [payload for _, payload in follow(start, fetch, paginator=paginator, concurrency=4, max_pages=None)]
    assert pages == list(range(1, n + 1))
    assert paginator.plans == 1 and calls[0] <= 3 * n


class _Reordered(Paginator):
    """Its next link and its plan list the same query parameters in different orders."""

    name = "reordered"

    def next_url(self, page: PageInfo) -> str | None:
        current = int(dict(parse_qsl(urlsplit(page.url).query))["page"])
        return f"https://api.example.com/x?page={current + 1}&sort=id" if current < 3 else None

    def plan(self, page: PageInfo, next_url: str) -> list[str] | None:
        return [f"https://api.example.com/x?sort=id&page={p}" for p in (2, 3)]


def test_plan_and_next_link_are_compared_whatever_the_parameter_order():
    requested: list[str] = []

    def fetch(u: str) -> tuple[PageInfo, str]:
        requested.append(u)
        return PageInfo(url=u, n_records=1), u

    list(follow("https://api.example.com/x?page=1&sort=id", fetch, paginator=_Reordered(), concurrency=4))
    assert requested == ["https://api.example.com/x?page=1&sort=id", "https://api.example.com/x?page=2&sort=id",
                         "https://api.example.com/x?sort=id&page=3"]  # the next link as sent, then the plan


@pytest.mark.parametrize("url, expected", [
    ("https://a.test/x?page=1&per_page=100&sort=id", "https://a.test/x?page=2&per_page=100&sort=id"),
    ("https://a.test/x?per_page=2&page=1&state=open", "https://a.test/x?per_page=2&page=2&state=open"),
    ("https://a.test/x?q=is%3Aopen+label%3Abug&page=1&page=9", "https://a.test/x?q=is%3Aopen+label%3Abug&page=2"),
    ("https://a.test/x?sort=id", "https://a.test/x?sort=id&page=2"),
    ("https://a.test/x", "https://a.test/x?page=2"),
])
def test_set_param_replaces_the_value_where_the_api_put_it(url, expected):
    assert set_param(url, "page", 2) == expected
