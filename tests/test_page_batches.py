"""Small planned pages parsed several at a time (issue 13: per-page fixed costs) give the very frame that
parsing them one by one gives: same columns, dtypes, order and values, on drifting and nested pages, for
each pagination style that plans its pages (body totals, Link rel="last", offset/total)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest
import requests

from nb_oauth2.core.errors import APIError
from nb_oauth2.frames import page_batches, page_stream, readers
from nb_oauth2.frames.pagination import PageInfo, PagePaginator
from nb_oauth2.frames.walk import follow
from tests.scripted_server import Reply, ScriptedServer, Seen

PAGES, SIZE = 40, 5  # 39 planned pages of tiny bodies: runs of 16 pages (page_batches.MAX_BATCH)
EMPTY_PAGE = 30  # answers no records, mid-walk
NULL_LICENSES = 22  # every record's license is null on this page


def _record(page: int, i: int) -> dict:
    rec: dict = {"id": page * SIZE + i,
                 "score": page * 10 + i if page < 25 else page + i / 4,  # int64, then float64 mid-run
                 "created_at": f"2024-0{1 + page % 9}-1{i}T12:00:00Z",  # pyarrow would read timestamps
                 "owner": {"login": f"u{i}", "id": i},
                 "license": None if (page + i) % 3 == 0 or page == NULL_LICENSES else
                 {"key": "mit", "spdx": None if i % 2 else "MIT"},
                 "topics": [f"t{j}" for j in range(i % 3)],
                 "first_null": None if page < 3 else f"v{i}"}
    if page >= 4:
        rec["late"] = f"late-{i}"  # a top-level column that appears late ...
    if page >= 8:
        rec["owner"]["site_admin"] = i % 2 == 0  # ... then a nested one
    if page == 9 and i == 2:
        rec["extra"] = {"deep": {"er": [1, 2]}}  # in one record only
    return rec


def _records(page: int) -> list[dict]:
    return [] if page == EMPTY_PAGE else [_record(page, i) for i in range(SIZE)]


class DriftingAPI(ScriptedServer):
    """PAGES pages with the counter mid-query, in one of three planned styles."""

    def __init__(self, style: str, clash: bool = False) -> None:
        super().__init__(http11=True)
        self.style, self.clash = style, clash
        self.script("*", [self._page])

    def link(self, page: int) -> str:
        if self.style == "offset":
            return f"{self.url}/items?offset={(page - 1) * SIZE}&limit={SIZE}&sort=id"
        return f"{self.url}/items?page={page}&per_page={SIZE}&sort=id"

    def _page(self, seen: Seen) -> Reply:
        query = dict(parse_qsl(urlsplit(seen.path).query))
        page = int(query["offset"]) // SIZE + 1 if self.style == "offset" else int(query["page"])
        data = _records(page - 1)
        if self.clash and page == 27:
            for rec in data:
                rec["score"] = f"s{rec['id']}"  # a string where other pages hold numbers
        if self.style == "link":
            links = ([f'<{self.link(page + 1)}>; rel="next"'] if page < PAGES else []) + [
                f'<{self.link(PAGES)}>; rel="last"']
            return Reply(200, json.dumps(data).encode(), {"Content-Type": "application/json", "Link": ", ".join(links)})
        if self.style == "offset":
            return Reply(200, {"offset": (page - 1) * SIZE, "limit": SIZE, "total": PAGES * SIZE, "items": data})
        body = {"page": page, "per_page": SIZE, "total_pages": PAGES, "data": data}
        if page == 3:
            body["note"] = "only page 3 says this"
        return Reply(200, body)


def _read(api: DriftingAPI, *, batched: bool, monkeypatch, **options):
    calls: list = []
    real = page_batches.PageRuns.convert

    def counted(runs, raws):
        out = real(runs, raws)
        calls.append(out is not None)
        return out

    with monkeypatch.context() as m:
        m.setattr(page_batches.PageRuns, "convert", counted)
        if not batched:
            m.setattr(page_stream, "batch_size", lambda page_bytes: 1)
        frame = readers.read_json(api.link(1), session=requests.Session(), progress=False, concurrency=3,
                                  **options)
    return frame, calls


def _assert_same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Same columns, order, dtypes and values (object cells compared by repr: pandas' own comparison
    cannot walk dicts holding numpy arrays, as max_level=0 gives)."""
    assert list(left.columns) == list(right.columns)
    assert list(left.dtypes) == list(right.dtypes)
    for name in left.columns:
        if left[name].dtype == object:
            assert [repr(v) for v in left[name]] == [repr(v) for v in right[name]], name
        else:
            pd.testing.assert_series_equal(left[name], right[name], check_exact=True)


@pytest.mark.parametrize("style", ["next", "link", "offset"])
@pytest.mark.parametrize("options", [{}, {"max_level": 0}, {"sep": "__"}], ids=["nested", "max_level0", "sep"])
def test_pages_parsed_several_at_a_time_give_the_frame_page_by_page_gives(style, options, monkeypatch):
    with DriftingAPI(style) as api:
        batched, calls = _read(api, batched=True, monkeypatch=monkeypatch, **options)
        per_page, no_calls = _read(api, batched=False, monkeypatch=monkeypatch, **options)
    assert calls.count(True) >= 1, "planned pages were not parsed several at a time"
    assert no_calls == []
    _assert_same(batched, per_page)
    assert batched["id"].tolist() == [r["id"] for p in range(PAGES) for r in _records(p)]


def test_meta_from_each_pages_own_envelope(monkeypatch):
    with DriftingAPI("next") as api:
        batched, calls = _read(api, batched=True, monkeypatch=monkeypatch, meta=["page", "note"])
        per_page, _ = _read(api, batched=False, monkeypatch=monkeypatch, meta=["page", "note"])
    assert True in calls
    _assert_same(batched, per_page)
    assert batched.loc[batched["page"] == 3, "note"].eq("only page 3 says this").all()
    assert batched.loc[batched["page"] != 3, "note"].isna().all()


def test_clashing_types_fall_back_to_page_by_page(monkeypatch):
    with DriftingAPI("next", clash=True) as api:
        batched, calls = _read(api, batched=True, monkeypatch=monkeypatch)
        per_page, _ = _read(api, batched=False, monkeypatch=monkeypatch)
    assert calls.count(False) >= 2  # the runs with new columns, and the one holding page 27
    _assert_same(batched, per_page)
    assert batched["score"].dtype == object


def test_each_page_keeps_its_own_envelope():
    columns = readers._Columns(sep=".", max_level=None, meta=None)
    raws = [b'{"page":1,"next":"u2","data":[{"a":1}]}', b'{"page":2,"data":[{"a":2},{"a":3}],"x":null}',
            b'{"page":3,"data":[]}']
    assert columns.convert_raw(raws[0]) is not None  # page 1 alone decides the column order
    out = page_batches.convert_raw_pages(columns, raws)
    assert out is not None
    assert [envelope for _, envelope, _ in out] == [{"page": 1, "next": "u2"}, {"page": 2, "x": None}, {"page": 3}]
    assert [n for _, _, n in out] == [1, 2, 0]
    assert [chunk.column("a").to_pylist() for chunk, _, n in out if n] == [[1], [2, 3]]


def test_a_failed_page_ends_the_run_after_the_pages_before_it():
    """Pages fetched before a failing one in the same run are still yielded, then the error is raised."""
    def url(page: int) -> str:
        return f"https://api.example/items?page={page}&per_page=2"

    def fetch_page(u: str):
        return PageInfo(url=u, body={"page": 1, "per_page": 2, "total_pages": 9}, n_records=2), 1

    def fetch_raw(u: str) -> int:
        page = int(dict(parse_qsl(urlsplit(u).query))["page"])
        if page == 6:
            raise APIError("page 6 failed")
        return page

    def convert(pages: list) -> tuple:
        return [(PageInfo(url=url(p), body={}, n_records=2), p) for p in pages], None

    got = []
    with pytest.raises(APIError, match="page 6 failed"):
        for _, payload in follow(url(1), fetch_page, paginator=PagePaginator(), concurrency=2,
                                 batched=(fetch_raw, convert), batch=4):
            got.append(payload)
    assert got == [1, 2, 3, 4, 5]
