"""POST-body pagination (issue 13 item 2): Notion's database query, and the same loop declared for others.

The fixture answers as Notion's API reference shows ``POST /v1/databases/{database_id}/query``: a list
object (``results``, ``next_cursor``, ``has_more``, ``type: page_or_database``), page objects with
their ``properties``, and Notion's error object. It checks the Bearer token, ``Notion-Version`` and that
every request repeats the filter/sorts/page_size with the ``start_cursor`` it handed out (a wrong or
missing cursor is a 400 validation_error, as Notion answers). 7 pages over page_size 3: 3, 3, 1.
"""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest
import requests

import nb_oauth2 as oa
from nb_oauth2.core.errors import APIError, ConfigurationError, InvalidToken, PaginationError, ResultTooLarge
from nb_oauth2.frames.post_pages import _body_with, read_json_post
from tests.scripted_server import Reply, Seen

TOKEN = "secret_nOtIoNiNtEgRaTiOn0123456789abcdefABCDEF"
VERSION = "2022-06-28"
DATABASE = "d9824bdc-8445-4327-be8b-5b47500af6ce"
RECORDS, SIZE = 7, 3
QUERY = {"filter": {"property": "Status", "select": {"does_not_equal": "Archived"}},
         "sorts": [{"property": "Created", "direction": "ascending"}], "page_size": SIZE}
PATH = f"/v1/databases/{DATABASE}/query"


def _cursor(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"notion-cursor-{i}"))


CURSORS = {_cursor(i): i for i in range(0, RECORDS, SIZE)}


def _page(i: int) -> dict:
    """A Notion page object (the shape of the API reference's example)."""
    return {
        "object": "page", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"page-{i}")),
        "created_time": f"2022-03-0{i}T19:05:00.000Z", "last_edited_time": f"2022-03-0{i}T19:07:00.000Z",
        "created_by": {"object": "user", "id": "ee5f0f84-409a-440f-983a-a5315961c6e4"},
        "last_edited_by": {"object": "user", "id": "ee5f0f84-409a-440f-983a-a5315961c6e4"},
        "cover": None, "icon": {"type": "emoji", "emoji": "🐞"},
        "parent": {"type": "database_id", "database_id": DATABASE}, "archived": False,
        "properties": {
            "Status": {"id": "Z%3ClH", "type": "select", "select": {"id": f"s{i % 2}", "name": ["Done", "Doing"][i % 2],
                                                                     "color": ["green", "blue"][i % 2]}},
            "Estimate": {"id": "%3Ee%5Bn", "type": "number", "number": i},
            "Name": {"id": "title", "type": "title", "title": [
                {"type": "text", "text": {"content": f"Task {i}", "link": None}, "plain_text": f"Task {i}",
                 "href": None}]},
        },
        "url": f"https://www.notion.so/Task-{i}", "public_url": None,
    }


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"object": "error", "status": status, "code": code, "message": message,
                          "request_id": "4f2b7a0c-2f1e-4f55-9f4f-6c1f3f3b2a10"})


def notion(token: str = TOKEN):
    """The database query endpoint, as a scripted reply: ``reply(seen)``."""

    def reply(seen: Seen) -> Reply:
        if seen.method != "POST":
            return _error(405, "invalid_request", "Unsupported request method.")
        if seen.auth != f"Bearer {token}":
            return _error(401, "unauthorized", "API token is invalid.")
        if seen.header("Notion-Version") != VERSION:
            return _error(400, "missing_version", "Notion-Version header failed validation.")
        if not (seen.header("Content-Type") or "").startswith("application/json"):
            return _error(400, "invalid_json", "Error parsing JSON body.")
        body = json.loads(seen.body)
        cursor = body.pop("start_cursor", None)
        if body != QUERY:
            return _error(400, "validation_error", "body failed validation: the query changed between pages.")
        start = 0 if cursor is None else CURSORS.get(cursor)
        if start is None or (cursor is not None and start == 0):
            return _error(400, "validation_error", "body failed validation: body.start_cursor should be a valid "
                                                   "cursor.")
        end = start + SIZE
        more = end < RECORDS
        return Reply(200, {"object": "list", "results": [_page(i) for i in range(start + 1, min(end, RECORDS) + 1)],
                           "next_cursor": _cursor(end) if more else None, "has_more": more,
                           "type": "page_or_database", "page_or_database": {},
                           "request_id": "4f2b7a0c-2f1e-4f55-9f4f-6c1f3f3b2a10"},
                     {"Content-Type": "application/json; charset=utf-8", "x-notion-request-id": "4f2b7a0c"})

    return reply


@pytest.fixture(params=["requests", "nb_oauth2"])
def signed_in(request):
    """(session, token it sends, headers= to pass): a plain requests.Session carrying Notion's integration
    token and version, or nb_oauth2's Session signed in at the demo provider (Notion-Version by headers=)."""
    if request.param == "requests":
        plain = requests.Session()
        plain.headers.update({"Authorization": f"Bearer {TOKEN}", "Notion-Version": VERSION})
        return plain, TOKEN, None
    session = request.getfixturevalue("demo_session")
    return session, session.token_info.access_token, {"Notion-Version": VERSION}


def test_notion_database_query_reads_every_page(scripted, signed_in):
    """7 pages over page_size 3 (a partial last page): every record once, in order, the cursor sent back."""
    session, token, headers = signed_in
    scripted.script(PATH, [notion(token)])
    frame = read_json_post(scripted.url + PATH, QUERY, session=session, headers=headers, progress=False)
    assert frame["properties.Estimate.number"].tolist() == list(range(1, RECORDS + 1))
    assert frame["properties.Status.select.name"].tolist()[:2] == ["Doing", "Done"]
    assert frame["properties.Name.title"].iloc[0][0]["plain_text"] == "Task 1"
    assert "parent.database_id" in frame.columns and frame["archived"].dtype == bool
    sent = [json.loads(s.body) for s in scripted.seen]
    assert [b.get("start_cursor") for b in sent] == [None, _cursor(3), _cursor(6)]
    assert all({k: v for k, v in b.items() if k != "start_cursor"} == QUERY for b in sent)
    assert all(s.method == "POST" for s in scripted.seen)


def test_read_json_with_a_json_body_posts_and_follows_the_body_cursor(scripted, signed_in):
    """``read_json(url, json=body)``, the spelling people try first, is the same POST-body read."""
    session, token, headers = signed_in
    if headers:  # Notion-Version as a session header, on a copy of the shared demo session's headers
        saved = session.headers.copy()
        session.headers.update(headers)
    scripted.script(PATH, [notion(token)])
    try:
        frame = oa.read_json(scripted.url + PATH, json=QUERY, session=session, progress=False)
    finally:
        if headers:
            session.headers = saved
    assert frame["properties.Estimate.number"].tolist() == list(range(1, RECORDS + 1))
    sent = [json.loads(s.body) for s in scripted.seen]
    assert [s.method for s in scripted.seen] == ["POST"] * 3
    assert [b.get("start_cursor") for b in sent] == [None, _cursor(3), _cursor(6)]


def test_the_callers_body_and_session_are_left_unchanged(scripted):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    query = json.loads(json.dumps(QUERY))
    scripted.script(PATH, [notion()])
    frame = read_json_post(scripted.url + PATH, query, session=session, headers={"Notion-Version": VERSION},
                           progress=False)
    assert len(frame) == RECORDS and query == QUERY
    assert "Notion-Version" not in session.headers


def test_empty_result_is_an_empty_frame_after_one_request(scripted):
    scripted.script(PATH, [Reply(200, {"object": "list", "results": [], "next_cursor": None, "has_more": False,
                                       "type": "page_or_database", "page_or_database": {}})])
    frame = read_json_post(scripted.url + PATH, QUERY, session=requests.Session(), progress=False)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 0 and len(scripted.seen) == 1


def test_wrong_token_is_invalid_token(scripted):
    scripted.script(PATH, [notion()])
    plain = requests.Session()
    plain.headers.update({"Authorization": "Bearer secret_wrong0000", "Notion-Version": VERSION})
    with pytest.raises(InvalidToken):
        read_json_post(scripted.url + PATH, QUERY, session=plain, progress=False)


def test_has_more_without_a_cursor_is_an_error_not_a_short_read(scripted, recwarn):
    page = {"object": "list", "results": [_page(1)], "next_cursor": None, "has_more": True}
    scripted.script(PATH, [Reply(200, page)])
    url = scripted.url + PATH
    with pytest.raises(PaginationError, match="has_more.*next_cursor"):
        read_json_post(url, QUERY, session=requests.Session(), progress=False)
    frame = read_json_post(url, QUERY, session=requests.Session(), progress=False, partial=True)
    assert len(frame) == 1 and "Returning the 1 rows" in str(recwarn.pop(UserWarning).message)


def test_the_same_cursor_twice_stops_the_loop(scripted):
    scripted.script(PATH, [Reply(200, {"object": "list", "results": [_page(1)], "next_cursor": "c1",
                                       "has_more": True})])
    with pytest.raises(PaginationError, match="same cursor twice"):
        read_json_post(scripted.url + PATH, QUERY, session=requests.Session(), progress=False)
    assert len(scripted.seen) == 2


def test_max_pages_and_max_rows(scripted):
    plain = requests.Session()
    plain.headers.update({"Authorization": f"Bearer {TOKEN}", "Notion-Version": VERSION})
    scripted.script(PATH, [notion()])
    url = scripted.url + PATH
    with pytest.raises(PaginationError, match="max_pages=2"):
        read_json_post(url, QUERY, session=plain, progress=False, max_pages=2)
    with pytest.raises(ResultTooLarge, match="max_rows=5"):
        read_json_post(url, QUERY, session=plain, progress=False, max_rows=5)
    with pytest.warns(UserWarning, match="max_rows=5"):
        frame = read_json_post(url, QUERY, session=plain, progress=False, max_rows=5, partial=True)
    assert frame["properties.Estimate.number"].tolist() == [1, 2, 3, 4, 5]


def test_paginate_none_reads_one_page_on_purpose(scripted):
    plain = requests.Session()
    plain.headers.update({"Authorization": f"Bearer {TOKEN}", "Notion-Version": VERSION})
    scripted.script(PATH, [notion()])
    frame = read_json_post(scripted.url + PATH, QUERY, session=plain, progress=False, paginate="none")
    assert len(frame) == SIZE and len(scripted.seen) == 1


def test_a_5xx_is_retried_and_the_body_sent_again(scripted):
    plain = requests.Session()
    plain.headers.update({"Authorization": f"Bearer {TOKEN}", "Notion-Version": VERSION})
    scripted.script(PATH, [Reply(503, {"object": "error", "status": 503, "code": "service_unavailable",
                                       "message": "Notion is unavailable."}), notion()])
    frame = read_json_post(scripted.url + PATH, QUERY, session=plain, progress=False,
                           fetcher_options={"sleep": lambda s: None})
    assert len(frame) == RECORDS and json.loads(scripted.seen[0].body) == json.loads(scripted.seen[1].body)


@pytest.mark.parametrize("to", ["arrow", "polars"])
def test_other_frame_libraries(scripted, to):
    pytest.importorskip("polars" if to == "polars" else "pyarrow")
    plain = requests.Session()
    plain.headers.update({"Authorization": f"Bearer {TOKEN}", "Notion-Version": VERSION})
    scripted.script(PATH, [notion()])
    table = read_json_post(scripted.url + PATH, QUERY, session=plain, progress=False, to=to)
    assert len(table) == RECORDS


# -- the same loop, declared for another API -----------------------------------------------------


def algolia(key: str):
    """Algolia's browse endpoint (POST /1/indexes/{index}/browse): ``hits``, and a ``cursor`` only while
    there is more (no has_more), sent back in the body as ``cursor``; the key in X-Algolia-API-Key."""

    def reply(seen: Seen) -> Reply:
        if seen.header("X-Algolia-API-Key") != key or seen.header("X-Algolia-Application-Id") != "LATENCY":
            return Reply(403, {"message": "Invalid Application-ID or API key", "status": 403})
        body = json.loads(seen.body)
        cursor = body.get("cursor")
        if body.get("hitsPerPage") != SIZE or (cursor is not None and not cursor.startswith("AkA")):
            return Reply(400, {"message": f"invalid cursor {cursor} for key {key}", "status": 400})
        start = 0 if cursor is None else int(cursor[3:])
        hits = [{"objectID": str(i), "name": f"product {i}", "_highlightResult": {"name": {"value": f"product {i}"}}}
                for i in range(start + 1, min(start + SIZE, RECORDS) + 1)]
        out = {"hits": hits, "nbHits": RECORDS, "page": 0, "nbPages": 1, "hitsPerPage": SIZE, "query": ""}
        if start + SIZE < RECORDS:
            out["cursor"] = f"AkA{start + SIZE}"
        return Reply(200, out)

    return reply


def test_a_declared_post_cursor_api_algolia_browse(scripted):
    """cursor_field/cursor_param 'cursor', no more field (go on while there is a cursor), records at 'hits'."""
    key = "algoliaKEY-5f6e7d8c9b0a1f2e3d4c5b6a"
    scripted.script("/1/indexes/products/browse", [algolia(key)])
    frame = read_json_post(scripted.url + "/1/indexes/products/browse", {"hitsPerPage": SIZE},
                           session=requests.Session(), cursor_field="cursor", more_field=None, cursor_param="cursor",
                           record_path="hits", progress=False,
                           headers={"X-Algolia-API-Key": key, "X-Algolia-Application-Id": "LATENCY"})
    assert frame["objectID"].tolist() == [str(i) for i in range(1, RECORDS + 1)]
    assert [json.loads(s.body).get("cursor") for s in scripted.seen] == [None, "AkA3", "AkA6"]


def test_a_secret_header_never_shows_in_an_error(scripted):
    """The server echoes the key it was sent: the message masks it (headers= values are registered)."""
    key = "algoliaKEY-0a9b8c7d6e5f4a3b2c1d0e9f"
    scripted.script("/1/indexes/products/browse", [algolia(key)])
    with pytest.raises(APIError) as caught:
        read_json_post(scripted.url + "/1/indexes/products/browse", {"hitsPerPage": SIZE, "cursor": "zzz"},
                       session=requests.Session(), cursor_field="cursor", more_field=None, cursor_param="cursor",
                       headers={"X-Algolia-API-Key": key, "X-Algolia-Application-Id": "LATENCY"}, progress=False)
    assert "HTTP 400" in str(caught.value) and key not in str(caught.value)


def test_cursor_param_may_be_a_nested_place_and_fields_dotted(scripted):
    def reply(seen: Seen) -> Reply:
        body = json.loads(seen.body)
        start = int(body["page"].get("cursor") or 0)
        if body["page"]["size"] != SIZE:
            return Reply(400, {"error": "page.size changed"})
        items = [{"id": i} for i in range(start + 1, min(start + SIZE, RECORDS) + 1)]
        more = start + SIZE < RECORDS
        return Reply(200, {"items": items, "meta": {"page": {"next": str(start + SIZE) if more else None,
                                                              "more": more}}})

    scripted.script("/search", [reply])
    frame = read_json_post(scripted.url + "/search", {"page": {"size": SIZE}}, session=requests.Session(),
                           cursor_field="meta.page.next", more_field="meta.page.more", cursor_param=["page", "cursor"],
                           progress=False)
    assert frame["id"].tolist() == list(range(1, RECORDS + 1))
    assert _body_with({"page": {"size": 3}}, ("page", "cursor"), "x") == {"page": {"size": 3, "cursor": "x"}}


@pytest.mark.parametrize("call, match", [
    (lambda url, s: read_json_post("ftp://example.com/q", {}, session=s), "http"),
    (lambda url, s: read_json_post(url, {}, session="notion"), "requests.Session"),
    (lambda url, s: read_json_post(url, [1, 2], session=s), "JSON object"),
    (lambda url, s: read_json_post(url, {}, session=s, paginate="link"), "paginate="),
    (lambda url, s: read_json_post(url, {}, session=s, to="excel"), "to="),
])
def test_bad_arguments_are_configuration_errors_before_any_request(scripted, call, match):
    with pytest.raises(ConfigurationError, match=match):
        call(scripted.url + PATH, requests.Session())
    assert scripted.seen == []


def test_the_public_face_resolves_session_names(scripted, demo_session):
    """nb_oauth2.read_json_post takes a session's name, as read_json does."""
    import nb_oauth2

    scripted.script(PATH, [notion(demo_session.token_info.access_token)])
    frame = nb_oauth2.read_json_post(scripted.url + PATH, QUERY, session=demo_session.name,
                                     headers={"Notion-Version": VERSION}, progress=False)
    assert len(frame) == RECORDS
