"""read_json's progress bar: the page total as soon as page 1 tells it, and no bar left above an error.

Each test reads from the scripted loopback server and records what the tqdm bar was told (a tqdm
subclass put in place of ``tqdm.auto.tqdm``); nothing here looks at the clock.
"""

from __future__ import annotations

import json

import pytest
import requests
import tqdm
import tqdm.auto

from nb_oauth2.core.errors import APIError, PaginationError, ResultTooLarge
from nb_oauth2.frames import readers as frames
from tests.scripted_server import Reply, Seen

PAGES, PER_PAGE = 5, 2


class Recorded(tqdm.tqdm):
    """A terminal bar that remembers, for each page added, the total it showed then."""

    made: list[Recorded] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.shown: list[tuple[int, int | None]] = []  # (pages after the update, total at that moment)
        self.closed_as: bool | None = None  # the bar's `leave` when it was closed
        Recorded.made.append(self)

    def update(self, n=1):
        result = super().update(n)
        if n:
            self.shown.append((self.n, self.total))
        return result

    def close(self) -> None:
        if self.closed_as is None:
            self.closed_as = bool(self.leave)
        super().close()


@pytest.fixture
def bars(monkeypatch):
    Recorded.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", Recorded)
    return Recorded.made


def _page(seen: Seen) -> int:
    return int(seen.query.get("page", 1))


def _link(seen: Seen, base: str) -> Reply:
    """GitHub style: ``?per_page=2&page=N`` with Link rel="next" and rel="last"."""
    page = _page(seen)
    links = [f'<{base}{seen.route}?per_page={PER_PAGE}&page={PAGES}>; rel="last"']
    if page < PAGES:
        links.insert(0, f'<{base}{seen.route}?per_page={PER_PAGE}&page={page + 1}>; rel="next"')
    return Reply(200, json.dumps([{"page": page, "i": i} for i in range(PER_PAGE)]),
                 {"Content-Type": "application/json", "Link": ", ".join(links)})


def _next(seen: Seen, base: str, *, body_extra: dict | None = None, headers: dict | None = None) -> Reply:
    """A next URL in the body (so no plan), with the count told somewhere else."""
    page = _page(seen)
    nxt = f"{base}{seen.route}?page={page + 1}&per_page={PER_PAGE}" if page < PAGES else None
    body = {"data": [{"page": page, "i": i} for i in range(PER_PAGE)], "next": nxt, **(body_extra or {})}
    return Reply(200, body, headers or {})


def _odata(seen: Seen, base: str) -> Reply:
    skip = int(seen.query.get("$skip", 0))
    body = {"value": [{"skip": skip, "i": i} for i in range(PER_PAGE)], "@odata.count": PAGES * PER_PAGE}
    if skip + PER_PAGE < PAGES * PER_PAGE:
        body["@odata.nextLink"] = f"{base}{seen.route}?$top={PER_PAGE}&$skip={skip + PER_PAGE}"
    return Reply(200, body)


def _counted_pages(seen: Seen, base: str) -> Reply:
    page = _page(seen)
    return Reply(200, {"results": [{"page": page, "i": i} for i in range(PER_PAGE)], "page": page,
                       "per_page": PER_PAGE, "total": PAGES * PER_PAGE})


STYLES = {
    'Link rel="last"': _link,
    "total_pages in the body": lambda seen, base: _next(seen, base, body_extra={"total_pages": PAGES}),
    "total and per_page in the body": lambda seen, base: _next(
        seen, base, body_extra={"meta": {"total": PAGES * PER_PAGE, "per_page": PER_PAGE}}),
    "X-Total-Pages": lambda seen, base: _next(seen, base, headers={"X-Total-Pages": str(PAGES)}),
    "X-Total-Count with per_page in the query": lambda seen, base: _next(
        seen, base, headers={"X-Total-Count": str(PAGES * PER_PAGE)}),
    "@odata.count": _odata,
    "page counters with total": _counted_pages,
}


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("style", list(STYLES))
def test_the_bar_knows_the_page_total_page_1_tells(scripted, session_with_token, bars, style, concurrency):
    """From page 2 on the bar shows n/5, not n/?; read one page at a time (no plan) as well as planned."""
    scripted.script("*", [lambda seen: STYLES[style](seen, scripted.url)])
    first = scripted.url + "/items" + ("?page=1" if style == "page counters with total" else "")
    df = frames.read_json(first, session=session_with_token, concurrency=concurrency)
    assert len(df) == PAGES * PER_PAGE
    (bar,) = bars
    assert bar.shown[0] == (1, None)  # page 1 itself: nothing told yet
    assert bar.shown[1:] == [(n, PAGES) for n in range(2, PAGES + 1)]
    assert bar.closed_as is True  # a complete read leaves its bar in place


def test_a_cursor_api_that_tells_no_count_learns_it_at_the_end(scripted, session_with_token, bars):
    def cursor(seen: Seen) -> Reply:
        at = int(seen.query.get("cursor", 0))
        return Reply(200, {"items": [{"at": at}], "next_cursor": str(at + 1) if at < 2 else None})

    scripted.script("*", [cursor])
    frames.read_json(scripted.url + "/c", session=session_with_token)
    (bar,) = bars
    assert [total for _, total in bar.shown] == [None, None, None]
    assert (bar.n, bar.total, bar.closed_as) == (3, 3, True)


def _failing_at(page_failing: int):
    def reply(seen: Seen) -> Reply:
        page = _page(seen)
        if page == page_failing:
            return Reply(404, {"message": "Not Found"})
        return _next(seen, "", body_extra={"total_pages": PAGES}) if page < PAGES else Reply(200, {"data": []})
    return reply


@pytest.mark.parametrize("page_failing", [1, 3])
def test_a_failed_read_removes_its_bar(scripted, session_with_token, bars, page_failing):
    """No stale "0/?" (page 1 failing) or "2/5" bar above the error."""
    scripted.script("*", [_failing_at(page_failing)])
    with pytest.raises(APIError):
        frames.read_json(scripted.url + "/items?page=1", session=session_with_token, retries=0)
    (bar,) = bars
    assert bar.closed_as is False and bar.disable  # closed, and cleared rather than left
    assert bar.n == page_failing - 1


def test_rows_over_max_rows_remove_the_bar_but_partial_keeps_it(scripted, session_with_token, bars):
    scripted.script("*", [lambda seen: _next(seen, scripted.url, body_extra={"total_pages": PAGES})])
    with pytest.raises(ResultTooLarge):
        frames.read_json(scripted.url + "/items?page=1", session=session_with_token, max_rows=3)
    with pytest.warns(UserWarning):
        frames.read_json(scripted.url + "/items?page=1", session=session_with_token, max_rows=3, partial=True)
    failed, partial = bars
    assert failed.closed_as is False
    assert partial.closed_as is True and (partial.n, partial.total) == (2, PAGES)


def test_a_pagination_error_removes_the_bar(scripted, session_with_token, bars):
    scripted.script("*", [Reply(200, {"data": [{"a": 1}], "next": "/same"})])
    with pytest.raises(PaginationError):
        frames.read_json(scripted.url + "/same", session=session_with_token)
    assert bars[0].closed_as is False


def test_a_malformed_url_shows_no_bar_at_all(session_with_token, bars):
    with pytest.raises(Exception):
        frames.read_json("not a url", session=session_with_token)
    assert bars == []


def test_to_parquet_removes_the_bar_when_a_page_fails(scripted, session_with_token, bars, tmp_path):
    pytest.importorskip("pyarrow")

    def reply(seen: Seen) -> Reply:
        page = _page(seen)
        if page == 2:
            return Reply(500, {"error": "boom"})
        return Reply(200, {"data": [{"a": 1}], "next": f"{scripted.url}/p?page={page + 1}"})

    scripted.script("*", [reply])
    with pytest.raises(APIError):
        frames.to_parquet(scripted.url + "/p?page=1", str(tmp_path / "x.parquet"), session=session_with_token,
                          retries=0)
    assert bars[0].closed_as is False
    assert not (tmp_path / "x.parquet").exists()  # a failed pull leaves no file


def test_iter_pages_stopped_early_keeps_its_bar(scripted, session_with_token, bars):
    scripted.script("*", [lambda seen: _next(seen, scripted.url, body_extra={"total_pages": PAGES})])
    pages = frames.iter_pages(scripted.url + "/items?page=1", session=session_with_token, progress=True)
    next(pages)
    pages.close()
    assert bars[0].closed_as is True


def test_a_notebook_bar_widget_is_sized_to_the_total_and_hidden_on_error(scripted, session_with_token,
                                                                          monkeypatch):
    """tqdm.notebook keeps the widget's own max: setting ``bar.total`` alone leaves it full width at 1."""
    notebook = pytest.importorskip("tqdm.notebook")
    made = []

    class NotebookBar(notebook.tqdm_notebook):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", NotebookBar)
    scripted.script("/ok", [lambda seen: _next(seen, scripted.url, body_extra={"total_pages": PAGES})])
    scripted.script("/bad", [_failing_at(3)])
    frames.read_json(scripted.url + "/ok?page=1", session=session_with_token, concurrency=1)
    with pytest.raises(APIError):
        frames.read_json(scripted.url + "/bad?page=1", session=session_with_token, retries=0)
    good, bad = made
    assert good.container.children[1].max == PAGES and good.container.children[1].bar_style == "success"
    assert bad.container.layout.visibility == "hidden" and bad.container.children[1].bar_style != "danger"


@pytest.fixture
def session_with_token():
    session = requests.Session()
    session.headers["Authorization"] = "Bearer progress-test"
    return session
