"""read_json / iter_pages / iter_records / to_parquet against recorded API shapes on loopback."""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path

import pandas as pd
import pytest

import nb_oauth2
import requests

from nb_oauth2.frames import readers as frames
from nb_oauth2.core.errors import ConfigurationError, PaginationError, ResultTooLarge, UnsafeNextLink
from tests.scripted_server import Reply, ScriptedServer, Seen

SHAPES = Path(__file__).parent / "data" / "api_shapes"
TOKEN = "frames-test-token-0123"
ALL_SHAPES = sorted(p.stem for p in SHAPES.glob("*.json"))


class API(ScriptedServer):
    """Serves pages keyed by (path, query); a page is a dict with body, headers and an optional delay.

    ``dynamic(path, query) -> page`` instead answers any request; ``{base}`` in a body or header
    becomes this server's URL; a request without the test token gets 401."""

    def __init__(self, pages=None, dynamic=None):
        super().__init__(http11=True)
        self.pages = {(page["path"], tuple(sorted(page["query"].items()))): page for page in pages or ()}
        self.dynamic = dynamic
        self.script("*", [self._page])

    def _page(self, seen: Seen) -> Reply:
        json_type = {"Content-Type": "application/json; charset=utf-8"}
        if seen.auth != f"Bearer {TOKEN}":
            return Reply(401, b'{"error": "invalid_token"}', json_type)
        query = seen.query
        page = self.dynamic(seen.route, query) if self.dynamic else \
            self.pages.get((seen.route, tuple(sorted(query.items()))))
        if page is None:
            return Reply(404, b'{"message": "Not Found"}', json_type)
        body = json.dumps(page["body"]).replace("{base}", self.url).encode()
        headers = {k: v.replace("{base}", self.url) for k, v in page.get("headers", {}).items()}
        return Reply(200, body, {**json_type, **headers}, delay=page.get("delay", 0))

    def first_url(self, shape: dict) -> str:
        from urllib.parse import urlencode

        page = shape["pages"][0]
        return self.url + page["path"] + (f"?{urlencode(page['query'])}" if page["query"] else "")


@pytest.fixture
def api():
    started = []

    def start(shape=None, dynamic=None):
        server = API(shape["pages"] if shape else None, dynamic)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def session():
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    return s


def shape(name: str) -> dict:
    return json.loads((SHAPES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ALL_SHAPES)
def test_every_recorded_api_shape_reads_into_one_frame(api, session, name):
    data = shape(name)
    server = api(data)
    df = frames.read_json(server.first_url(data), session=session, progress=False)
    assert len(df) == data["records"]
    assert len(server.seen) == len(data["pages"])  # each page exactly once
    assert all(s.auth == f"Bearer {TOKEN}" for s in server.seen)


@pytest.mark.parametrize("fast", ["0", "1"])
def test_github_shape_flattens_nested_objects_and_keeps_lists(api, session, monkeypatch, fast):
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", fast)
    data = shape("github")
    df = frames.read_json(api(data).first_url(data), session=session, progress=False)
    assert {"owner.login", "license.key", "topics"} <= set(df.columns)
    assert list(df.columns[:3]) == ["id", "node_id", "name"]
    assert df["id"].tolist() == [1296270, 1296271, 1296272, 1296273, 1296274]
    assert all(isinstance(v, list) for v in df["topics"])
    assert df["stargazers_count"].dtype == "int64"
    assert df["created_at"].iloc[0] == "2011-01-21T19:01:12Z"  # strings stay strings unless parse_dates


def _numbers_api(api, values, page_size):
    pages = [values[i:i + page_size] for i in range(0, len(values), page_size)]

    def route(path, query):
        p = int(query.get("page", 1))
        return {"body": {"data": [{"n": v, "s": None if v is None else str(v), "o": {"k": v}} for v in pages[p - 1]],
                         "page": p, "total_pages": len(pages)}}

    return api(dynamic=route)


@pytest.mark.parametrize("fast", ["0", "1"])
def test_dtypes_do_not_depend_on_page_boundaries(api, session, monkeypatch, fast):
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", fast)
    values = [None, None, 3, 4, 5, None]
    results = []
    for size in (1, 2, 6):
        server = _numbers_api(api, values, size)
        results.append(frames.read_json(server.url + "/n", session=session, progress=False))
    for df in results:
        assert df["n"].dtype == "float64" and df["o.k"].dtype == "float64"  # ints with gaps -> float64
        pd.testing.assert_frame_equal(df, results[0])


def test_fast_and_plain_paths_give_the_same_frame(api, session, monkeypatch):
    data = shape("spotify")
    server = api(data)
    fast = frames.read_json(server.first_url(data), session=session, progress=False)
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", "1")
    plain = frames.read_json(server.first_url(data), session=session, progress=False)
    pd.testing.assert_frame_equal(fast, plain)


def test_known_page_count_is_fetched_concurrently_in_stable_order(api, session):
    data = shape("reqres")
    data["pages"][1]["delay"] = 0.3  # page 2 finishes after page 3
    server = api(data)
    df = frames.read_json(server.first_url(data), session=session, progress=False, concurrency=4)
    assert df["id"].tolist() == [1, 2, 3, 4, 5]
    assert server.seen[2].t - server.seen[1].t < 0.25  # page 3 asked while page 2 was still pending


def test_parse_dates_gives_utc_datetimes(api, session):
    data = shape("github")
    df = frames.read_json(api(data).first_url(data), session=session, progress=False, parse_dates=True)
    assert str(df["created_at"].dtype) == "datetime64[ns, UTC]"


def test_record_path_and_meta_work_like_json_normalize(api, session):
    data = shape("slack")
    df = frames.read_json(api(data).first_url(data), session=session, progress=False, record_path="members",
                          meta=["cache_ts"])
    assert df["cache_ts"].tolist() == [1498777272] * 3 and "profile.email" in df.columns


def test_max_level_and_sep(api, session):
    data = shape("spotify")
    df = frames.read_json(api(data).first_url(data), session=session, progress=False, sep="__", max_level=1)
    assert "track__name" in df.columns and isinstance(df["track__album"].iloc[0], dict)


def test_case_33_repeated_next_link_stops(api, session):
    """Case 33: a next link that repeats -> PaginationError (no loop)."""
    server = api(dynamic=lambda path, q: {"body": {"data": [{"i": 1}], "next": "{base}/loop?page=2"}})
    with pytest.raises(PaginationError):
        frames.read_json(server.url + "/loop", session=session, progress=False)
    assert len(server.seen) == 2


def test_case_33_partial_returns_pages_read_with_a_warning(api, session):
    """Case 33: with partial=True a loop returns what was read, with a warning."""
    server = api(dynamic=lambda path, q: {"body": {"data": [{"i": 1}], "next": "{base}/loop?page=2"}})
    with pytest.warns(UserWarning, match="rows read"):
        df = frames.read_json(server.url + "/loop", session=session, progress=False, partial=True)
    assert len(df) == 2


def test_case_33_page_cap_stops_unless_partial(api, session):
    """Case 33: max_pages with more pages left -> PaginationError; partial=True keeps the pages."""
    data = shape("github")
    server = api(data)
    with pytest.raises(PaginationError):
        frames.read_json(server.first_url(data), session=session, progress=False, max_pages=2)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        df = frames.read_json(server.first_url(data), session=session, progress=False, max_pages=2, partial=True)
    assert len(df) == 4


def test_case_32_rows_over_max_rows_stop_with_guidance(api, session):
    """Case 32: more rows than max_rows -> ResultTooLarge; partial=True keeps the first max_rows."""
    data = shape("reqres")
    server = api(data)
    with pytest.raises(ResultTooLarge, match="max_rows"):
        frames.read_json(server.first_url(data), session=session, progress=False, max_rows=3)
    with pytest.warns(UserWarning):
        df = frames.read_json(server.first_url(data), session=session, progress=False, max_rows=3, partial=True)
    assert df["id"].tolist() == [1, 2, 3]


def test_case_34_next_link_to_another_origin_never_reaches_it(api, session):
    """Case 34: a next link to another origin -> UnsafeNextLink; the foreign server gets zero requests."""
    foreign = api(dynamic=lambda path, q: {"body": {"data": [{"stolen": True}]}})
    server = api(dynamic=lambda path, q: {"body": {"data": [{"i": 1}], "next": foreign.url + "/steal?page=2"}})
    for partial in (False, True):
        with pytest.raises(UnsafeNextLink):
            frames.read_json(server.url + "/x", session=session, progress=False, partial=partial)
    assert foreign.seen == []


def test_iter_pages_and_iter_records(api, session):
    data = shape("facebook")
    server = api(data)
    pages = list(frames.iter_pages(server.first_url(data), session=session))
    assert [len(p.records) for p in pages] == [2, 1] and pages[0].status == 200
    assert pages[0].body["paging"]["cursors"]["after"] == "QVFIUmxy" and pages[0].raw.startswith(b"{")
    records = list(frames.iter_records(server.first_url(data), session=session))
    assert [r["id"] for r in records] == ["10150_1", "10150_2", "10150_3"]


def test_to_parquet_streams_every_row(api, session, tmp_path):
    data = shape("msgraph")
    out = tmp_path / "users.parquet"
    rows = frames.to_parquet(api(data).first_url(data), str(out), session=session, progress=False)
    assert rows == 3 and pd.read_parquet(out)["displayName"].tolist()[-1] == "Adele Vance 3"


def test_to_arrow(api, session):
    data = shape("google")
    table = frames.read_json(api(data).first_url(data), session=session, progress=False, to="arrow")
    assert table.num_rows == 4 and "snippet.title" in table.column_names


def test_missing_polars_is_a_configuration_error(api, session, monkeypatch):
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ConfigurationError, match="polars"):
        frames.read_json("http://127.0.0.1:1/x", session=session, to="polars")


def test_session_name_is_resolved_through_the_registry(api, session, monkeypatch):
    from nb_oauth2.auth.registry import _state

    data = shape("jsonapi")
    monkeypatch.setitem(_state().sessions, "by-name", session)
    df = nb_oauth2.read_json(api(data).first_url(data), session="by-name", progress=False)
    assert df["attributes.title"].tolist()[-1] == "JSON:API paints my bikeshed 3"
    with pytest.raises(ConfigurationError, match="No session named 'elsewhere'"):
        nb_oauth2.read_json(api(data).first_url(data), session="elsewhere", progress=False)
    with pytest.raises(ConfigurationError, match="requests.Session"):  # frames itself knows no names
        frames.read_json(api(data).first_url(data), session="by-name", progress=False)


def test_progress_bar_runs(api, session, capsys):
    data = shape("reqres")
    df = frames.read_json(api(data).first_url(data), session=session, progress=True)
    assert len(df) == 5 and "page" in capsys.readouterr().err


@pytest.mark.parametrize("fast", ["0", "1"])
def test_mixed_types_big_ints_and_empty_last_page_are_kept(api, session, monkeypatch, fast):
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", fast)
    pages = [[{"v": 1, "big": 2**70}, {"v": "one", "big": 1}], [{"v": 2.5, "when": "2024-01-01"}], []]

    def route(path, query):
        p = int(query.get("page", 1))
        return {"body": {"data": pages[p - 1], "next": "{base}/m?page=%d" % (p + 1) if p < len(pages) else None}}

    df = frames.read_json(api(dynamic=route).url + "/m", session=session, progress=False)
    assert df["v"].tolist() == [1, "one", 2.5] and df["big"].tolist()[0] == 2**70
    assert df["when"].tolist()[2] == "2024-01-01"


@pytest.mark.parametrize("fast", ["0", "1"])
def test_null_object_on_a_whole_page_adds_no_column_of_its_own(api, session, monkeypatch, fast):
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", fast)
    pages = [[{"id": 1, "license": None}], [{"id": 2, "license": {"key": "mit"}}]]

    def route(path, query):
        p = int(query.get("page", 1))
        return {"body": {"data": pages[p - 1], "next": "{base}/l?page=2" if p == 1 else None}}

    df = frames.read_json(api(dynamic=route).url + "/l", session=session, progress=False)
    assert list(df.columns) == ["id", "license.key"] and df["license.key"].tolist()[1] == "mit"


def test_timestamp_looking_cursor_is_sent_back_verbatim(api, session):
    def route(path, query):
        if "cursor" not in query:
            return {"body": {"members": [{"at": "2024-01-01"}],
                             "response_metadata": {"next_cursor": "2024-01-02T03:04:05Z"}}}
        return {"body": {"members": [{"at": "2024-01-03"}], "response_metadata": {"next_cursor": ""}}}

    server = api(dynamic=route)
    df = frames.read_json(server.url + "/c", session=session, progress=False)
    assert server.seen[1].query["cursor"] == "2024-01-02T03:04:05Z"
    assert df["at"].tolist() == ["2024-01-01", "2024-01-03"]
