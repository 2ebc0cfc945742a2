"""Re-runs cost nothing twice: nb_oauth2's Session revalidates with ETag / Last-Modified (issue 13 item 3).

A real HTTP server on 127.0.0.1 counts, on its side, what each run asks and what it sends back.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
import threading
import time

import pytest

import nb_oauth2 as oa
from nb_oauth2.auth.http_cache import HttpCache, cache_key
from nb_oauth2.auth.session import Session
from nb_oauth2.core.endpoint import ClientAuth
from nb_oauth2.core.errors import ResultTooLarge
from nb_oauth2.core.providers import Provider
from nb_oauth2.core.token import Token
from nb_oauth2.frames.fetch import Fetcher
from tests.scripted_server import Reply, Seen

PAGES = 50
PER_PAGE = 3


class EtagAPI:
    """``/items?page=N``: GitHub-like pages (Link next/last, Vary: Authorization, private max-age=60) that
    answer If-None-Match / If-Modified-Since with 304 and count what they send."""

    def __init__(self, server, *, etag=True, last_modified=False, pages=PAGES):
        self.server = server
        self.etag, self.last_modified = etag, last_modified
        self.pages = {n: [{"id": n * 100 + i, "name": f"r{n}-{i}"} for i in range(PER_PAGE)]
                      for n in range(1, pages + 1)}
        self.versions = {n: 1 for n in self.pages}
        self.lock = threading.Lock()
        self.log: list[tuple[int, int, Seen]] = []  # (page, status, request)
        self.body_bytes = 0
        self.tokens_seen: set[str] = set()
        self.accept_tokens: set[str] | None = None  # None: any bearer token
        server.script("/items", [self.reply])

    @property
    def url(self) -> str:
        return f"{self.server.url}/items?page=1"

    def change(self, page: int) -> None:
        self.pages[page][0]["name"] += "!"
        self.versions[page] += 1

    def reply(self, seen: Seen) -> Reply:
        page = int(seen.query.get("page", "1"))
        token = (seen.auth or "").removeprefix("Bearer ")
        if self.accept_tokens is not None and token not in self.accept_tokens:
            with self.lock:
                self.log.append((page, 401, seen))
            return Reply(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        body = json.dumps(self.pages[page]).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "private, max-age=60",
                   "Vary": "Accept, Authorization, Accept-Encoding"}
        last = len(self.pages)
        if page < last:
            headers["Link"] = (f'<{self.server.url}/items?page={page + 1}>; rel="next", '
                               f'<{self.server.url}/items?page={last}>; rel="last"')
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        modified = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(1_700_000_000 + self.versions[page]))
        if self.etag:
            headers["ETag"] = etag
        if self.last_modified:
            headers["Last-Modified"] = modified
        fresh = ((self.etag and seen.header("If-None-Match") == etag)
                 or (not self.etag and self.last_modified and seen.header("If-Modified-Since") == modified))
        status = 304 if fresh else 200
        with self.lock:
            self.tokens_seen.add(token)
            self.log.append((page, status, seen))
            if status == 200:
                self.body_bytes += len(body)
        return Reply(304, b"", headers) if fresh else Reply(200, body, headers)

    def take_log(self) -> list[tuple[int, int, Seen]]:
        with self.lock:
            log, self.log = self.log, []
            self.body_bytes = 0
        return log


def make_session(server_url: str, *, token: str = "tok-alice-0123456789", name: str = "reval",
                 refresh_token: str | None = None, **kw) -> Session:
    provider = Provider(name="scripted", token_endpoint=f"{server_url}/token")
    data = {"access_token": token, "expires_in": 3600}
    if refresh_token:
        data["refresh_token"] = refresh_token
    return Session(name=name, provider=provider, client=ClientAuth("cid"), token=Token.from_response(data), **kw)


def read(api: EtagAPI, session: Session, **kw):
    return oa.read_json(api.url, session=session, progress=False, concurrency=kw.pop("concurrency", 4), **kw)


def stored_bytes(cache: HttpCache) -> bytes:
    """Everything the cache holds, as bytes (pickled objects, their reprs, and the raw file on disk)."""
    backend = cache.backend()
    out = b""
    for key in list(backend.responses.keys()):
        response = backend.responses[key]
        out += pickle.dumps(response) + repr(response).encode() + str(response.request.headers).encode()
        out += str(response.headers).encode() + str(response.request.url).encode()
    if cache.path is not None:
        for name in os.listdir(cache.path.parent):
            with open(cache.path.parent / name, "rb") as fh:
                out += fh.read()
    return out


def test_rerun_of_50_pages_makes_50_conditional_requests_and_downloads_no_body_twice(scripted):
    """The done-when figure: run 1 = 50 GETs answered 200; run 2 = 50 GETs, each with If-None-Match,
    all answered 304 without a body; the DataFrame is the same (read on 4 threads)."""
    api = EtagAPI(scripted)
    session = make_session(scripted.url)
    first = read(api, session)
    run1 = api.take_log()
    assert len(run1) == PAGES and {status for _, status, _ in run1} == {200}
    assert not any(seen.header("If-None-Match") for _, _, seen in run1)
    second = read(api, session)
    assert api.body_bytes == 0
    run2 = api.take_log()
    assert len(run2) == PAGES
    assert sorted(page for page, _, _ in run2) == list(range(1, PAGES + 1))
    assert all(seen.header("If-None-Match") for _, _, seen in run2)
    assert {status for _, status, _ in run2} == {304}
    assert second.equals(first) and len(first) == PAGES * PER_PAGE
    assert session.http_cache.revalidated == PAGES


def test_one_changed_page_downloads_only_that_body(scripted):
    api = EtagAPI(scripted)
    session = make_session(scripted.url)
    read(api, session)
    api.take_log()
    api.change(17)
    df = read(api, session)
    log = api.take_log()
    assert [page for page, status, _ in log if status == 200] == [17]
    assert sum(status == 304 for _, status, _ in log) == PAGES - 1
    assert "r17-0!" in set(df["name"])
    third = read(api, session)  # the changed page's new body was stored too
    assert {status for _, status, _ in api.take_log()} == {304}
    assert third.equals(df)


def test_last_modified_only_server_is_revalidated_with_if_modified_since(scripted):
    api = EtagAPI(scripted, etag=False, last_modified=True, pages=5)
    session = make_session(scripted.url)
    first = read(api, session)
    api.take_log()
    second = read(api, session)
    log = api.take_log()
    assert all(seen.header("If-Modified-Since") and not seen.header("If-None-Match") for _, _, seen in log)
    assert {status for _, status, _ in log} == {304}
    assert second.equals(first)


def test_token_refresh_between_runs_still_revalidates(scripted):
    """A refresh (new access token) between runs: the cache is the same user's; the re-run revalidates."""
    scripted.script("/token", [Reply(200, {"access_token": "tok-alice-second-987654", "expires_in": 3600,
                                           "token_type": "Bearer", "refresh_token": "rt-alice-2-abcdef"})])
    api = EtagAPI(scripted, pages=5)
    session = make_session(scripted.url, refresh_token="rt-alice-1-abcdef")
    first = read(api, session)
    api.take_log()
    session.refresh()
    second = read(api, session)
    log = api.take_log()
    assert {seen.auth for _, _, seen in log} == {"Bearer tok-alice-second-987654"}
    assert {status for _, status, _ in log} == {304}
    assert second.equals(first)


def test_401_renewal_resends_the_conditional_request_and_stores_no_token(scripted):
    """Case 28 through the cache: the server stops accepting the old token between runs; one renewal,
    the re-sent request still carries If-None-Match and gets 304; neither token is in the cache."""
    scripted.script("/token", [Reply(200, {"access_token": "tok-alice-renewed-55555", "expires_in": 3600,
                                           "token_type": "Bearer", "refresh_token": "rt-alice-2-abcdef"})])
    api = EtagAPI(scripted, pages=3)
    session = make_session(scripted.url, refresh_token="rt-alice-1-abcdef")
    first = read(api, session, concurrency=1)
    api.take_log()
    api.accept_tokens = {"tok-alice-renewed-55555"}
    second = read(api, session, concurrency=1)
    log = api.take_log()
    assert [status for _, status, _ in log] == [401, 304, 304, 304]
    assert all(seen.header("If-None-Match") for _, _, seen in log)
    assert second.equals(first)
    blob = stored_bytes(session.http_cache)
    for secret in (b"tok-alice-0123456789", b"tok-alice-renewed-55555", b"rt-alice"):
        assert secret not in blob


def test_a_second_session_of_another_user_gets_no_cached_data(scripted):
    """Another login is another Session: its first read is unconditional, whatever alice's cache holds."""
    api = EtagAPI(scripted, pages=4)
    alice = make_session(scripted.url)
    read(api, alice)
    api.take_log()
    bob = make_session(scripted.url, token="tok-bob-abcdefghijkl", name="bob")
    read(api, bob)
    log = api.take_log()
    assert {status for _, status, _ in log} == {200}
    assert not any(seen.header("If-None-Match") for _, _, seen in log)
    assert len(bob.http_cache) == 4 and len(alice.http_cache) == 4


def test_authorization_and_secret_parameters_are_never_stored(scripted):
    """Case 36: the stored request keeps method, URL and plain headers; no Authorization, no access_token=."""
    api = EtagAPI(scripted, pages=2)
    session = make_session(scripted.url)
    session.get(f"{scripted.url}/items?page=1&access_token=qp-secret-value-777", timeout=5).json()
    read(api, session)
    backend = session.http_cache.backend()
    assert len(backend.responses) == 3
    for key in backend.responses.keys():
        stored = backend.responses[key]
        assert not {"authorization", "cookie"} & {name.lower() for name in stored.request.headers}
        assert not stored.cookies and not stored.request.cookies and not stored.history
    blob = stored_bytes(session.http_cache)
    assert b"tok-alice-0123456789" not in blob and b"qp-secret-value-777" not in blob
    assert b"Authorization" not in blob.replace(b"Vary", b"")
    assert "tok-alice" not in repr(session.http_cache) + repr(session) + str(session.status())


def test_logout_clears_the_cache(scripted):
    api = EtagAPI(scripted, pages=3)
    session = make_session(scripted.url)
    read(api, session)
    assert len(session.http_cache) == 3
    session.forget()
    assert len(session.http_cache) == 0


def test_a_page_still_being_read_at_logout_is_not_stored(scripted):
    api = EtagAPI(scripted, pages=1)
    session = make_session(scripted.url)
    response = session.get(api.url, timeout=5, stream=True)
    session.forget()
    assert response.json()[0]["id"] == 100
    assert len(session.http_cache) == 0


def test_disk_cache_is_private_keyed_per_profile_and_holds_no_token(scripted, tmp_path):
    """Case 40: opt-in disk cache: 0600 files in a 0700 dir; the raw SQLite bytes hold no token; the next
    kernel's session of the same profile revalidates; another profile gets nothing; logout clears."""
    directory = tmp_path / "http"
    api = EtagAPI(scripted, pages=3)
    first = make_session(scripted.url, http_cache=directory)
    df = read(api, first)
    api.take_log()
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    for name in os.listdir(directory):
        assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600, name
    assert b"tok-alice-0123456789" not in stored_bytes(first.http_cache)
    first.close()

    again = make_session(scripted.url, token="tok-alice-next-kernel-42", http_cache=directory)
    assert read(api, again).equals(df)
    assert {status for _, status, _ in api.take_log()} == {304}
    other = make_session(scripted.url, name="other-profile", http_cache=directory)
    read(api, other)
    assert {status for _, status, _ in api.take_log()} == {200}
    again.forget()
    assert len(again.http_cache) == 0


def test_env_and_off_switch(scripted, monkeypatch, tmp_path):
    api = EtagAPI(scripted, pages=2)
    off = make_session(scripted.url, http_cache=False)
    assert off.http_cache is None
    read(api, off)
    read(api, off)
    assert {status for _, status, _ in api.take_log()} == {200}
    monkeypatch.setenv("NB_OAUTH2_HTTP_CACHE", "off")
    assert make_session(scripted.url).http_cache is None
    monkeypatch.setenv("NB_OAUTH2_HTTP_CACHE", str(tmp_path / "c"))
    assert make_session(scripted.url).http_cache.kind == "disk"


def test_only_validated_200_json_gets_are_stored(scripted):
    """No validator, an error, a non-JSON body, no-store or a POST: nothing stored; an error drops the entry."""
    session = make_session(scripted.url)
    etag = {"ETag": '"v1"', "Content-Type": "application/json"}
    scripted.script("/plain", [Reply(200, {"a": 1})])
    scripted.script("/html", [Reply(200, b"<p>hi</p>", {"ETag": '"h"', "Content-Type": "text/html"})])
    scripted.script("/nostore", [Reply(200, b"{}", {**etag, "Cache-Control": "no-store"})])
    scripted.script("/gone", [Reply(200, b"[1]", etag), Reply(404, b"{}", etag)])
    scripted.script("/post", [Reply(200, b"{}", etag)])
    for path in ("/plain", "/html", "/nostore"):
        session.get(scripted.url + path, timeout=5).content
    session.post(scripted.url + "/post", json={}, timeout=5).content
    assert len(session.http_cache) == 0
    session.get(scripted.url + "/gone", timeout=5).content
    assert len(session.http_cache) == 1
    assert session.get(scripted.url + "/gone", timeout=5).status_code == 404
    assert len(session.http_cache) == 0


def test_a_body_over_the_byte_cap_or_cut_short_is_not_stored(scripted):
    """Case 32: the cache records the body as Fetcher reads it, so the cap still applies and a body
    abandoned at the cap (or delimited only by the connection's close) is never stored."""
    session = make_session(scripted.url)
    big = json.dumps(list(range(5000))).encode()
    headers = {"ETag": '"big"', "Content-Type": "application/json"}
    scripted.script("/big", [Reply(200, big, headers, framing="chunked")])
    scripted.script("/closed", [Reply(200, b"[1, 2]", headers, framing="close")])
    with pytest.raises(ResultTooLarge):
        Fetcher(session, max_bytes=1000).get(scripted.url + "/big")
    assert len(session.http_cache) == 0
    assert Fetcher(session).get(scripted.url + "/closed").data == [1, 2]
    assert len(session.http_cache) == 0
    assert Fetcher(session).get(scripted.url + "/big").data == list(range(5000))
    assert len(session.http_cache) == 1
    response = Fetcher(session, max_bytes=1000)
    with pytest.raises(ResultTooLarge):  # a cached body passes through the same cap
        response.get(scripted.url + "/big")


def test_a_callers_own_conditional_request_gets_the_servers_answer(scripted):
    api = EtagAPI(scripted, pages=1)
    session = make_session(scripted.url)
    first = session.get(api.url, timeout=5)
    mine = session.get(api.url, timeout=5, headers={"If-None-Match": first.headers["ETag"]})
    assert mine.status_code == 304 and mine.content == b""


def test_body_holding_the_token_is_not_stored(scripted):
    session = make_session(scripted.url)
    scripted.script("/echo", [Reply(200, {"you": "tok-alice-0123456789"}, {"ETag": '"e"'})])
    assert session.get(scripted.url + "/echo", timeout=5).json() == {"you": "tok-alice-0123456789"}
    assert len(session.http_cache) == 0


def test_cache_key_ignores_authorization_and_masks_secret_parameters():
    import requests

    def prepared(url, token):
        return requests.Request("GET", url, headers={"Authorization": f"Bearer {token}",
                                                     "Accept": "application/json"}).prepare()

    assert cache_key(prepared("http://h/x?page=2", "a")) == cache_key(prepared("http://h/x?page=2", "b"))
    assert cache_key(prepared("http://h/x?page=2&access_token=a", "a")) == \
        cache_key(prepared("http://h/x?page=2&access_token=b", "a"))
    assert cache_key(prepared("http://h/x?page=2", "a")) != cache_key(prepared("http://h/x?page=3", "a"))


def _id_token(sub: str) -> str:
    import base64

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none'})}.{part({'sub': sub})}.sig"


def test_another_subject_on_the_same_session_gets_an_empty_cache(scripted):
    """A token for another user (its id_token's sub) installed on the same session: no cached body of the
    first user is revalidated or served; a refresh without an id_token keeps the partition."""
    api = EtagAPI(scripted, pages=2)
    session = make_session(scripted.url)
    session.set_token(Token.from_response({"access_token": "tok-alice-0123456789", "expires_in": 3600,
                                           "id_token": _id_token("alice")}))
    read(api, session)
    session.set_token(Token.from_response({"access_token": "tok-alice-refreshed-1", "expires_in": 3600}))
    read(api, session)
    assert {status for _, status, _ in api.take_log()[2:]} == {304}
    session.set_token(Token.from_response({"access_token": "tok-bob-0123456789", "expires_in": 3600,
                                           "id_token": _id_token("bob")}))
    read(api, session)
    log = api.take_log()
    assert {status for _, status, _ in log} == {200}
    assert not any(seen.header("If-None-Match") for _, _, seen in log)


def test_a_url_with_parameters_out_of_order_is_revalidated(scripted):
    """requests-cache stores the request's URL with its query sorted; the Vary check still matches."""
    api = EtagAPI(scripted, pages=1)
    session = make_session(scripted.url)
    url = f"{scripted.url}/items?sort=name&page=1&access_token=qp-secret-value-777&direction=asc"
    first = session.get(url, timeout=5).json()
    again = session.get(url, timeout=5)
    assert [status for _, status, _ in api.take_log()] == [200, 304]
    assert again.json() == first and again.url == url


def test_debug_logs_of_the_cache_hold_no_secret(scripted, caplog):
    """Case 38: DEBUG on the root logger through a store and a revalidation: requests-cache's own log lines
    (URLs included) hold neither the token nor an access_token= value."""
    import logging

    api = EtagAPI(scripted, pages=2)
    session = make_session(scripted.url)
    url = f"{scripted.url}/items?page=1&access_token=qp-secret-value-777"
    with caplog.at_level(logging.DEBUG):
        session.get(url, timeout=5).content
        assert session.get(url, timeout=5).status_code == 200
        read(api, session)
        read(api, session)
    assert [status for _, status, _ in api.take_log()] == [200, 304, 200, 200, 304, 304]
    assert "has not been modified" in caplog.text  # requests-cache's line with the URL in it
    assert "qp-secret-value-777" not in caplog.text and "tok-alice-0123456789" not in caplog.text


def test_a_profile_setting_chooses_the_login_sessions_cache(demo_provider, monkeypatch, tmp_path):
    """``http_cache`` as a profile setting (profiles file or a login's keyword) reaches the session a login
    makes: "off" switches revalidation off, a directory keeps it on disk, none keeps the memory cache."""
    client_id = demo_provider.clients["public"].client_id
    assert oa.LoginAttempt("hc-default", issuer=demo_provider.issuer, client_id=client_id).session.http_cache.kind \
        == "memory"
    assert oa.LoginAttempt("hc-off", issuer=demo_provider.issuer, client_id=client_id,
                           http_cache="off").session.http_cache is None
    disk = oa.LoginAttempt("hc-disk", issuer=demo_provider.issuer, client_id=client_id, http_cache=str(tmp_path))
    assert disk.session.http_cache.kind == "disk"
