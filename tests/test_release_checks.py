"""Independent checks of the 0.2 release's cache, pacing and POST readers against shapes its own tests did not use.

Each test pins one behaviour a server the team does not see could break: a redirect whose target
shares a trivial ETag with another resource, ``Vary: *``, a 304 nobody asked for, a corrupted disk
cache, GitHub's secondary rate limit (403 + Retry-After), a POST answered with an error, GraphQL
edges without ``node``, and a secret in the POST body echoed by the server.
"""

from __future__ import annotations

import json
import logging

import pytest

import nb_oauth2 as oa
from nb_oauth2.core.errors import APIError, OAuth2Error, RateLimited
from nb_oauth2.frames.fetch import Fetcher
from nb_oauth2.frames.graphql import read_graphql
from nb_oauth2.frames.post_pages import read_json_post
from tests.scripted_server import Reply
from tests.test_revalidation import make_session

SECRET = "sk_live_QWERTY0123456789zyxwvu"


def _versioned(body: bytes, etag: str = '"1"'):
    """A resource whose ETag is a version counter (``"1"``): many APIs' ETags, equal across resources."""
    def reply(seen):
        headers = {"Content-Type": "application/json", "ETag": etag}
        if seen.header("If-None-Match") == etag:
            return Reply(304, b"", headers)
        return Reply(200, body, headers)
    return reply


# -- the revalidation cache ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_redirect_to_another_resource_with_the_same_etag_serves_that_resource(scripted, stream):
    """/latest redirected to /items/5 on the first run and to /items/6 on the second; both have ETag "1".
    The second run must get item 6 (was: item 5's body, stored under /latest's key and served on the
    304 that item 6 legitimately answered to the forwarded If-None-Match)."""
    scripted.script("/items/5", [_versioned(b'[{"id": 5}]')])
    scripted.script("/items/6", [_versioned(b'[{"id": 6}]')])
    scripted.script("/latest", [Reply(302, b"", {"Location": f"{scripted.url}/items/5"}),
                                Reply(302, b"", {"Location": f"{scripted.url}/items/6"})])
    session = make_session(scripted.url)
    first = session.get(f"{scripted.url}/latest", stream=stream)
    assert json.loads(first.content) == [{"id": 5}]
    second = session.get(f"{scripted.url}/latest", stream=stream)
    assert json.loads(second.content) == [{"id": 6}]
    assert second.url == f"{scripted.url}/items/6"
    # the target itself is still revalidated on a re-run of the same redirect
    third = session.get(f"{scripted.url}/latest", stream=stream)
    assert json.loads(third.content) == [{"id": 6}]
    assert scripted.seen[-1].header("If-None-Match") == '"1"' and scripted.seen[-1].route == "/items/6"


def test_a_redirect_never_sends_the_token_to_another_host(scripted):
    from tests.scripted_server import ScriptedServer

    with ScriptedServer() as other:
        other.script("/x", [_versioned(b'[{"id": 1}]')])
        scripted.script("/old", [Reply(301, b"", {"Location": other.url.replace("127.0.0.1", "localhost") + "/x"})])
        session = make_session(scripted.url)
        for _ in range(2):
            assert session.get(f"{scripted.url}/old").json() == [{"id": 1}]
        assert other.seen and not any(seen.auth for seen in other.seen)


def test_vary_star_is_never_served_from_the_cache(scripted):
    """``Vary: *``: the answer depends on more than the request (RFC 9111 4.1: it never matches); not stored."""
    def reply(seen):
        headers = {"Content-Type": "application/json", "ETag": '"1"', "Vary": "Accept, *"}
        if seen.header("If-None-Match") == '"1"':
            return Reply(304, b"", headers)
        return Reply(200, b'[{"id": 1}]', headers)

    scripted.script("/x", [reply])
    session = make_session(scripted.url)
    session.get(f"{scripted.url}/x")
    second = session.get(f"{scripted.url}/x")
    assert second.json() == [{"id": 1}]
    assert scripted.seen[-1].header("If-None-Match") is None
    assert len(session.http_cache) == 0


def test_an_unsolicited_304_is_an_error_not_an_empty_frame(scripted):
    """A 304 to a request that carried no validator (nothing cached; a misbehaving server or proxy) has no
    body to read: read_json raised nothing and returned 0 rows (a silently short DataFrame)."""
    scripted.script("/x", [Reply(304, b"", {"ETag": '"z"', "Content-Type": "application/json"})])
    session = make_session(scripted.url)
    with pytest.raises(APIError, match="304"):
        oa.read_json(f"{scripted.url}/x", session=session, progress=False)


def test_a_callers_own_if_none_match_still_gets_the_raw_304(scripted):
    scripted.script("/x", [_versioned(b'[{"id": 1}]')])
    session = make_session(scripted.url)
    session.get(f"{scripted.url}/x")
    assert session.get(f"{scripted.url}/x", headers={"if-none-match": '"1"'}).status_code == 304


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupted_disk_cache_is_rebuilt_not_a_crash(scripted, tmp_path, damage):
    """A damaged SQLite file (a crash mid-write, a full disk, another program) raised sqlite3.DatabaseError
    from every request of the session; it is a cache: rebuilt empty, the request answered."""
    scripted.script("/x", [_versioned(b'[{"id": 1}]')])
    session = make_session(scripted.url, http_cache=tmp_path)
    session.get(f"{scripted.url}/x")
    path = session.http_cache.path
    session.close()
    data = path.read_bytes()
    path.write_bytes(b"not a database " * 200 if damage == "garbage" else data[: len(data) // 3])
    again = make_session(scripted.url, http_cache=tmp_path)
    assert again.get(f"{scripted.url}/x").json() == [{"id": 1}]
    assert again.get(f"{scripted.url}/x").json() == [{"id": 1}]
    assert scripted.seen[-1].header("If-None-Match") == '"1"'  # the rebuilt cache works
    again.close()


# -- rate limits ------------------------------------------------------------------------------------------


def _fetcher(session, waits, **kw):
    return Fetcher(session, sleep=waits.append, rng=lambda: 0.0, **kw)


def test_github_secondary_limit_403_with_retry_after_is_waited(scripted):
    """GitHub's secondary rate limit: 403 (or 429) with Retry-After, X-RateLimit-Remaining not 0. Its docs:
    do not retry before Retry-After. Was an APIError at once."""
    scripted.script("/x", [Reply(403, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "7"}),
                           Reply(200, '[{"id": 1}]', {"Content-Type": "application/json"})])
    waits: list[float] = []
    response = _fetcher(make_session(scripted.url), waits).get(f"{scripted.url}/x")
    assert response.data == [{"id": 1}] and waits == [7]


def test_github_secondary_limit_longer_than_max_wait_is_rate_limited(scripted):
    scripted.script("/x", [Reply(403, {"message": "secondary rate limit"}, {"Retry-After": "600"})])
    with pytest.raises(RateLimited, match="600 s"):
        _fetcher(make_session(scripted.url), [], max_wait=60).get(f"{scripted.url}/x")


def test_a_plain_403_is_still_an_error_at_once(scripted):
    scripted.script("/x", [Reply(403, {"message": "Resource not accessible"})])
    waits: list[float] = []
    with pytest.raises(APIError) as info:
        _fetcher(make_session(scripted.url), waits).get(f"{scripted.url}/x")
    assert not isinstance(info.value, RateLimited) and waits == [] and scripted.count("/x") == 1


def test_429_without_any_header_backs_off_and_ends_rate_limited(scripted):
    scripted.script("/x", [Reply(429, b"")])
    waits: list[float] = []
    with pytest.raises(RateLimited):
        _fetcher(make_session(scripted.url), waits, retries=2).get(f"{scripted.url}/x")
    assert len(waits) == 2 and all(0 < w <= 60 for w in waits)


@pytest.mark.parametrize("reset", ["1e300", "inf", "99999999999999999999"])
def test_a_huge_reset_never_waits_past_max_wait_silently(scripted, reset):
    scripted.script("/x", [Reply(429, b"", {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})])
    waits: list[float] = []
    with pytest.raises(RateLimited):
        _fetcher(make_session(scripted.url), waits, max_wait=60).get(f"{scripted.url}/x")
    assert all(w <= 60 for w in waits)


# -- POST readers ------------------------------------------------------------------------------------------


def test_a_post_error_names_the_post(scripted):
    """Errors of read_json_post / read_graphql said "GET <url> answered HTTP 502" of a POST."""
    scripted.script("/q", [Reply(502, "<html><body>Bad gateway</body></html>", {"Content-Type": "text/html"})])
    with pytest.raises(APIError) as info:
        read_json_post(f"{scripted.url}/q", {}, session=make_session(scripted.url), progress=False, retries=1,
                       fetcher_options={"sleep": lambda s: None})
    assert str(info.value).startswith("POST ") and "GET" not in str(info.value)


def test_a_secret_in_the_post_body_is_not_echoed_in_the_error(scripted):
    """A filter or variable named like a secret (api_key, token) echoed back by the server's error message
    appeared verbatim in the APIError (and so in the notebook's output)."""
    scripted.script("/q", [Reply(400, {"message": f"invalid value {SECRET} for filter.api_key"})])
    with pytest.raises(APIError) as info:
        read_json_post(f"{scripted.url}/q", {"filter": {"and": [{"api_key": SECRET}]}},
                       session=make_session(scripted.url), progress=False)
    assert SECRET not in str(info.value) and "invalid value" in str(info.value)


def test_a_secret_graphql_variable_is_not_echoed_in_the_error(scripted):
    scripted.script("/g", [Reply(200, {"errors": [{"message": f'Variable "$token" got invalid value "{SECRET}"',
                                                   "path": ["repository", "issues"]}]})])
    with pytest.raises(APIError) as info:
        read_graphql(f"{scripted.url}/g", "query($token: String!) { x }", {"token": SECRET},
                     session=make_session(scripted.url), progress=False)
    assert SECRET not in str(info.value) and "invalid value" in str(info.value)


def test_graphql_edges_without_node_keep_their_fields(scripted):
    """``edges { cursor title }`` (no ``node``): each edge was read as None, a frame of empty rows."""
    query = "query($after: String) { r { c(first: 2, after: $after) { edges { cursor title } pageInfo { hasNextPage } } } }"
    scripted.script("/g", [Reply(200, {"data": {"r": {"c": {"edges": [{"cursor": "a", "title": "A"},
                                                                       {"cursor": "b", "title": "B"}],
                                                             "pageInfo": {"hasNextPage": False}}}}})])
    frame = read_graphql(f"{scripted.url}/g", query, session=make_session(scripted.url), progress=False)
    assert list(frame["title"]) == ["A", "B"]


def test_graphql_null_nodes_and_edges_stay_rows(scripted):
    """A null node (GitHub: an item the token may not see) stays a row: the count matches totalCount."""
    query = "query($after: String) { r { c(first: 3, after: $after) { edges { node { id } } pageInfo { hasNextPage } } } }"
    scripted.script("/g", [Reply(200, {"data": {"r": {"c": {"edges": [{"node": None}, {"node": {"id": 3}}],
                                                             "pageInfo": {"hasNextPage": False}}}}})])
    frame = read_graphql(f"{scripted.url}/g", query, session=make_session(scripted.url), progress=False)
    assert len(frame) == 2 and frame["id"].iloc[1] == 3


def test_post_401_renewal_resends_the_same_body_with_a_5_s_token(scripted):
    state = {"current": "tok-0000-abcdefghijkl", "n": 0}

    def token(seen):
        state["n"] += 1
        state["current"] = f"tok-{state['n']:04d}-abcdefghijkl"
        return Reply(200, {"access_token": state["current"], "expires_in": 5, "token_type": "Bearer",
                           "refresh_token": "rt-xyzxyzxyzxyz"})

    bodies: list[str] = []

    def api(seen):
        bodies.append(seen.body)
        if seen.auth != f"Bearer {state['current']}":
            return Reply(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if json.loads(seen.body).get("start_cursor") is None:
            state["current"] = "revoked-by-the-server"  # the 5 s token expired between the pages
            return Reply(200, {"results": [{"i": 1}], "has_more": True, "next_cursor": "c2"})
        return Reply(200, {"results": [{"i": 2}], "has_more": False})

    scripted.script("/token", [token])
    scripted.script("/q", [api])
    session = make_session(scripted.url, token="tok-0000-abcdefghijkl", refresh_token="rt-xyzxyzxyzxyz")
    frame = read_json_post(f"{scripted.url}/q", {"filter": {"a": "ü"}}, session=session, progress=False)
    assert list(frame["i"]) == [1, 2]
    assert bodies[-1] == bodies[-2] and json.loads(bodies[-1]) == {"filter": {"a": "ü"}, "start_cursor": "c2"}


def test_cache_logs_and_errors_hold_no_secret(scripted, caplog):
    scripted.script("/x", [_versioned(b'[{"id": 1}]')])
    session = make_session(scripted.url, token=SECRET)
    with caplog.at_level(logging.DEBUG):
        session.get(f"{scripted.url}/x", params={"api_key": "k-0123456789abcdef"})
        session.get(f"{scripted.url}/x", params={"api_key": "k-0123456789abcdef"})
    assert SECRET not in caplog.text and "k-0123456789abcdef" not in caplog.text
    assert isinstance(OAuth2Error, type)


@pytest.mark.parametrize("leaf", ["nodes", "edges"])
def test_graphql_path_to_the_node_list_still_pages_by_its_connections_page_info(scripted, leaf):
    """path='repository.issues.nodes' (the list itself): pageInfo sits one level up. Was read as a
    connection without pageInfo: page 1 only, no error (a silently short frame)."""
    query = "query($after: String) { r { c(first: 1, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } } }"

    def reply(seen):
        after = json.loads(seen.body)["variables"].get("after")
        n = 1 if after is None else int(after) + 1
        items = [{"id": n}] if leaf == "nodes" else None
        edges = [{"node": {"id": n}}] if leaf == "edges" else None
        conn = {"nodes": items, "edges": edges, "pageInfo": {"hasNextPage": n < 3, "endCursor": str(n)}}
        return Reply(200, {"data": {"r": {"c": conn}}})

    scripted.script("/g", [reply])
    frame = read_graphql(f"{scripted.url}/g", query, session=make_session(scripted.url), progress=False,
                         path=f"r.c.{leaf}")
    assert len(frame) == 3 and scripted.count("/g") == 3


def test_graphql_error_paths_are_named(scripted):
    scripted.script("/g", [Reply(200, {"data": {"r": None}, "errors": [
        {"message": "Could not resolve to a Repository", "path": ["r", "issues", 0, "author"]}]})])
    with pytest.raises(APIError, match=r"r\.issues\.0\.author"):
        read_graphql(f"{scripted.url}/g", "query { r { issues { nodes { id } } } }", path="r.issues",
                     session=make_session(scripted.url), progress=False)


@pytest.mark.parametrize("header", ["X-RateLimit-Reset", "RateLimit-Reset"])
def test_a_reset_in_epoch_milliseconds_is_read_as_such(header):
    """Some APIs send the reset as epoch milliseconds (13 digits): read as seconds it was a wait of ~57,000
    years, so the first 429 ended in RateLimited instead of waiting the few seconds asked."""
    from nb_oauth2.frames.rate_limits import parse_rate_limit, seconds_until_reset

    now = 1_800_000_000.0
    headers = {header.replace("Reset", "Remaining"): "0", header: str(int((now + 12) * 1000))}
    assert seconds_until_reset(headers, now=now) == pytest.approx(12)
    assert parse_rate_limit(headers, now=now).reset_in == pytest.approx(12)


def test_a_locked_disk_cache_is_not_deleted(scripted, tmp_path, monkeypatch):
    """A file another process holds locked (sqlite3.OperationalError, a DatabaseError too) is not damage: the
    request goes uncached and the other process's entries stay."""
    import sqlite3

    from nb_oauth2.auth import http_cache

    scripted.script("/x", [_versioned(b'[{"id": 1}]')])
    session = make_session(scripted.url, http_cache=tmp_path)
    session.get(f"{scripted.url}/x")
    path = session.http_cache.path

    def locked(self, key):
        raise sqlite3.OperationalError("database is locked")

    from requests_cache.backends import SQLiteCache

    monkeypatch.setattr(SQLiteCache, "get_response", locked)
    assert session.get(f"{scripted.url}/x").json() == [{"id": 1}]
    assert scripted.seen[-1].header("If-None-Match") is None
    monkeypatch.undo()
    assert path.exists() and len(session.http_cache) == 1
    assert http_cache._damage(sqlite3.DatabaseError("file is not a database"))
