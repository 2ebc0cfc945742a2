"""Hostile and odd pages through read_json, iter_pages and to_parquet, on real loopback servers.

SECURITY_CASES 55 (deep nesting), 56 (endless cursors, empty pages, page cap), 58 (malformed URLs)
and 62 (never silently short). Each scenario runs through a plain requests.Session and through
nb_oauth2's own signed-in Session (the demo provider's token, sent to a scripted API on 127.0.0.1).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

import nb_oauth2 as oa
from nb_oauth2.frames import readers as frames
from nb_oauth2.core.errors import ConfigurationError, PaginationError, ResultTooLarge
from tests.scripted_server import Reply, ScriptedServer

ROOT = Path(__file__).resolve().parent.parent
READERS = ["read_json", "iter_pages", "to_parquet"]


# -- helpers -----------------------------------------------------------------------------


@pytest.fixture
def plain():
    return requests.Session()


@pytest.fixture
def nb_session(demo_provider):
    """nb_oauth2's own Session, signed in at the demo provider (its token goes to the scripted API)."""
    p = demo_provider
    s = oa.login("hostile", issuer=p.issuer, client_id=p.clients["public"].client_id, browser=p.driver.authorize)
    yield s
    s.forget()


@pytest.fixture(params=["requests", "nb_oauth2"])
def session(request):
    """A plain requests.Session, or nb_oauth2's signed-in Session."""
    return request.getfixturevalue("plain" if request.param == "requests" else "nb_session")


def serve(scripted, path: str, page) -> str:
    """Route ``path`` to ``page(query) -> body | (body, headers) | Reply``; returns the URL."""

    def reply(seen):
        out = page(dict(parse_qsl(urlsplit(seen.path).query, keep_blank_values=True)))
        if isinstance(out, Reply):
            return out
        body, headers = out if isinstance(out, tuple) else (out, {})
        text = json.dumps(body).replace("{base}", scripted.url)
        return Reply(200, text, {"Content-Type": "application/json", **headers})

    scripted.script(path, [reply])
    return scripted.url + path


def queries(scripted, path: str) -> list[dict]:
    return [dict(parse_qsl(urlsplit(s.path).query, keep_blank_values=True)) for s in scripted.seen
            if s.path.split("?")[0] == path]


def read(reader: str, url: str, session, tmp_path=None, **options) -> list:
    """Rows (as dicts) read by one of the public readers."""
    if reader == "read_json":
        return frames.read_json(url, session=session, progress=False, **options).to_dict("records")
    if reader == "iter_pages":
        return [r for page in frames.iter_pages(url, session=session, **options) for r in page.records]
    import pandas as pd

    out = str((tmp_path or Path("/tmp")) / f"out-{random.random()}.parquet")
    rows = frames.to_parquet(url, out, session=session, progress=False, **options)
    return pd.read_parquet(out).to_dict("records") if rows else []


def _bad_request_after(limit: int):
    """A guard so a client that never stops (nb_oauth2 0.1) fails instead of hanging the test run."""
    counter = itertools.count(1)
    return lambda: next(counter) > limit


# -- case 55: nesting ----------------------------------------------------------------------


CHILD = r"""
import os
import sys
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "not-installed":
    sys.modules["pyarrow"] = None
    sys.modules["orjson"] = None
import requests
from nb_oauth2.frames import readers as frames
base, out = sys.argv[3], sys.argv[4]
for scenario in sys.argv[5:]:
    shape, reader, mode = scenario.split(":")
    os.environ["NB_OAUTH2_NO_FAST"] = "1" if mode == "no-fast" else "0"
    url = base + "/deep/" + shape
    print("BEGIN", scenario, flush=True)
    try:
        if reader == "read_json":
            frames.read_json(url, session=requests.Session(), progress=False)
        elif reader == "iter_pages":
            list(frames.iter_pages(url, session=requests.Session()))
        else:
            frames.to_parquet(url, os.path.join(out, scenario.replace(":", "-") + ".parquet"),
                              session=requests.Session(), progress=False)
        print("RESULT", scenario, "none", flush=True)
    except BaseException as exc:
        print("RESULT", scenario, type(exc).__name__, str(exc)[:300].replace("\n", " "), flush=True)
    ok = frames.read_json(base + "/ok", session=requests.Session(), progress=False)
    print("ALIVE", scenario, len(ok), flush=True)
"""


def _deep(depth: int, shape: str) -> bytes:
    if shape == "arrays":
        return b'{"data": [' + b"[" * depth + b"]" * depth + b"]}"
    return b'{"data": [' + b'{"a":' * depth + b"1" + b"}" * depth + b"]}"


#: (shape, reader, mode) read by the child processes; "not-installed" needs a process of its own
DEEP_SCENARIOS = [(shape, "read_json", mode) for mode in ("no-fast", "fast", "not-installed")
                  for shape in ("arrays", "objects")]
DEEP_SCENARIOS += [("arrays", "iter_pages", "fast"), ("arrays", "to_parquet", "fast")]


@pytest.fixture(scope="module")
def deep_children(tmp_path_factory):
    """Two child processes (modules installed, and orjson/pyarrow blocked) read every deep page of
    DEEP_SCENARIOS in turn, each followed by a normal page; started once, read by the case-55 tests.

    A segfault kills its child, so it fails the tests of that child, never pytest."""
    out = tmp_path_factory.mktemp("deep")
    with ScriptedServer() as server:
        server.script("/ok", [Reply(200, {"data": [{"a": 1}]})])
        for shape in ("arrays", "objects"):
            server.script(f"/deep/{shape}", [Reply(200, _deep(10_000, shape), {"Content-Type": "application/json"})])
        children = {}
        for installed in ("installed", "not-installed"):
            scenarios = [":".join(s) for s in DEEP_SCENARIOS
                         if (s[2] == "not-installed") == (installed == "not-installed")]
            children[installed] = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(ROOT), installed, server.url, str(out), *scenarios],
                env={k: v for k, v in os.environ.items() if k != "NB_OAUTH2_NO_FAST"}, cwd=ROOT,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        done = {name: (proc, *proc.communicate(timeout=240)) for name, proc in children.items()}
    return done


def _deep_run(deep_children, shape: str, reader: str, mode: str) -> tuple[str, str]:
    """This scenario's RESULT line and its child's stdout; fails if that child died."""
    proc, stdout, stderr = deep_children["not-installed" if mode == "not-installed" else "installed"]
    scenario = f"{shape}:{reader}:{mode}"
    begun = [line.split()[1] for line in stdout.splitlines() if line.startswith("BEGIN")]
    assert proc.returncode == 0, (f"the process died (exit {proc.returncode}) reading {begun[-1:]}: "
                                  f"{stderr[-1500:]}")
    result = next(line for line in stdout.splitlines() if line.startswith(f"RESULT {scenario} "))
    return result.replace(f" {scenario}", "", 1), stdout


@pytest.mark.parametrize("mode", ["fast", "no-fast", "not-installed"])
@pytest.mark.parametrize("shape", ["arrays", "objects"])
def test_case_55_page_nested_10000_deep_is_refused_and_the_process_lives(deep_children, shape, mode):
    """Case 55: a 20 kB page nested 10,000 levels deep -> ResultTooLarge naming the limit (512), with
    orjson/pyarrow, with NB_OAUTH2_NO_FAST=1 and with neither installed; the process (the kernel)
    lives on and reads the next API. In a subprocess, so a segfault fails this test, not pytest."""
    result, stdout = _deep_run(deep_children, shape, "read_json", mode)
    assert result.startswith("RESULT ResultTooLarge") and "512" in result, result
    assert f"ALIVE {shape}:read_json:{mode} 1" in stdout


@pytest.mark.parametrize("reader", ["iter_pages", "to_parquet"])
def test_case_55_every_reader_refuses_the_deep_page(deep_children, reader):
    """Case 55: iter_pages (parsed by orjson) and to_parquet (pyarrow) refuse it too, process alive."""
    result, stdout = _deep_run(deep_children, "arrays", reader, "fast")
    assert "RESULT ResultTooLarge" in result and "512" in result and f"ALIVE arrays:{reader}:fast 1" in stdout


@pytest.mark.parametrize("fast", ["0", "1"])
def test_case_55_limit_is_512_levels_and_the_message_names_it(scripted, monkeypatch, fast):
    """Case 55: 512 levels (envelope included) still read on both paths; 513 -> ResultTooLarge naming 512."""
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", fast)
    scripted.script("/at", [Reply(200, _deep(510, "objects"), {"Content-Type": "application/json"})])
    scripted.script("/over", [Reply(200, _deep(511, "objects"), {"Content-Type": "application/json"})])
    frame = frames.read_json(scripted.url + "/at", session=requests.Session(), progress=False)
    assert len(frame) == 1 and frame.iloc[0, 0] == 1
    with pytest.raises(ResultTooLarge, match="513 levels deep, more than the limit of 512"):
        frames.read_json(scripted.url + "/over", session=requests.Session(), progress=False)


def test_brackets_inside_strings_do_not_count_as_nesting(scripted, session):
    """A string of 10,000 '[' (and escaped quotes around it) is data, not depth."""
    text = '\\"' + "[" * 10_000 + "{" * 5
    body = '{"data": [{"id": 1, "text": "' + text + '"}, {"id": 2, "text": "]]]"}]}'
    scripted.script("/s", [Reply(200, body, {"Content-Type": "application/json"})])
    frame = frames.read_json(scripted.url + "/s", session=session, progress=False)
    assert frame["id"].tolist() == [1, 2] and frame["text"].iloc[0] == json.loads('"' + text + '"')


def _reference_depth(value, level=0) -> int:
    if isinstance(value, dict):
        return max([level + 1] + [_reference_depth(v, level + 1) for v in value.values()])
    if isinstance(value, list):
        return max([level + 1] + [_reference_depth(v, level + 1) for v in value])
    return level


def test_nesting_scan_matches_a_parser_on_random_documents():
    """The byte scan agrees with the parsed structure, strings full of brackets, quotes and backslashes."""
    from nb_oauth2.frames.nesting import _depth_python, nesting_depth

    rng = random.Random(55)
    alphabet = ['[', ']', '{', '}', '"', '\\', 'a', ' ', '\\"', '\\\\', 'é']

    def make(level):
        kind = rng.random()
        if level > 12 or kind < 0.3:
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        if kind < 0.65:
            return [make(level + 1) for _ in range(rng.randint(0, 3))]
        return {"".join(rng.choice(alphabet) for _ in range(3)): make(level + 1) for _ in range(rng.randint(0, 3))}

    for _ in range(400):
        doc = make(0)
        raw = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()
        assert nesting_depth(raw) == _reference_depth(doc), raw
        skeleton = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
        skeleton = skeleton.translate(None, bytes(b for b in range(256) if b not in b'"[]{}')).replace(b'""', b"")
        assert _depth_python(skeleton) == _reference_depth(doc)


# -- case 56: endless cursors and empty pages ------------------------------------------------


@pytest.mark.parametrize("reader,who", [(r, "requests") for r in READERS] + [("read_json", "nb_oauth2")])
@pytest.mark.parametrize("style", ["next_cursor", "opaque next", "has_more"])
def test_case_56_endless_fresh_cursor_with_empty_pages_stops_by_itself(request, scripted, tmp_path, reader, who,
                                                                       style):
    """Case 56: an endless, never-repeating cursor on empty pages and no max_pages -> PaginationError
    after 3 empty pages in a row (the guard answers 500 from request 40 on, so an old client fails)."""
    over = _bad_request_after(40)
    fresh = itertools.count()

    def page(query):
        if over():
            return Reply(500, {"error": "the client never stopped"})
        token = f"c{next(fresh)}-{random.random()}"
        if style == "next_cursor":
            return {"items": [], "next_cursor": token}
        if style == "opaque next":
            return {"data": [], "next": token}
        return {"data": [], "has_more": True, "page": int(query.get("page", 1))}

    url = serve(scripted, "/endless", page) + ("?page=1" if style == "has_more" else "")
    session = request.getfixturevalue("plain" if who == "requests" else "nb_session")
    with pytest.raises(PaginationError, match="3 empty pages in a row"):
        read(reader, url, session, tmp_path, retries=0)
    assert scripted.count("/endless") == 3


def test_case_56_a_few_empty_pages_between_full_ones_are_read_through(scripted, session):
    """Case 56: two empty pages in a row are tolerated (APIs that filter after paging send them)."""
    pages = [[1, 2], [], [], [3, 4, 5], [], [6]]

    def page(query):
        i = int(query.get("cursor", "0"))
        return {"data": [{"n": n} for n in pages[i]], "next_cursor": str(i + 1) if i + 1 < len(pages) else None}

    frame = frames.read_json(serve(scripted, "/gaps", page), session=session, progress=False)
    assert frame["n"].tolist() == [1, 2, 3, 4, 5, 6]


def test_case_56_max_empty_pages_can_be_raised_for_apis_that_skip(scripted, session):
    """Case 56: max_empty_pages= lets a scan through a longer run of empty pages."""
    pages = [[1]] + [[]] * 5 + [[2]]

    def page(query):
        i = int(query.get("cursor", "0"))
        return {"data": [{"n": n} for n in pages[i]], "next_cursor": str(i + 1) if i + 1 < len(pages) else None}

    url = serve(scripted, "/skip", page)
    with pytest.raises(PaginationError, match="max_empty_pages"):
        frames.read_json(url, session=session, progress=False)
    frame = frames.read_json(url, session=session, progress=False, max_empty_pages=6)
    assert frame["n"].tolist() == [1, 2]


def test_case_56_default_page_cap_is_10000_for_every_reader():
    """Case 56: read_json, iter_pages and to_parquet stop at 10,000 pages unless told otherwise."""
    import inspect

    assert inspect.signature(frames.read_json).parameters["max_pages"].default == 10_000
    assert frames._COMMON["max_pages"] == frames.DEFAULT_MAX_PAGES == 10_000


def test_case_56_default_cap_stops_an_endless_cursor_at_10000_pages_and_says_how_to_raise_it():
    """Case 56: an endless fresh cursor with full pages stops at the default cap; the message explains
    max_pages= (larger, or None) and partial=True. Driven in memory: 10,000 loopback requests take minutes."""
    from nb_oauth2.frames.pagination import CursorPaginator, PageInfo
    from nb_oauth2.frames.walk import follow

    calls = itertools.count()

    def work(url):
        n = next(calls)
        return PageInfo(url=url, body={"items": [{"n": n}], "next_cursor": f"fresh-{n}"}, n_records=1), n

    pages = []
    with pytest.raises(PaginationError) as err:
        for _info, n in follow("https://api.example/x", work, paginator=CursorPaginator(),
                               max_pages=frames.DEFAULT_MAX_PAGES):
            pages.append(n)
    assert len(pages) == 10_000
    assert "max_pages=10,000" in err.value.message and "max_pages=None" in err.value.message
    assert "partial=True" in err.value.message


def test_case_56_endless_full_pages_stop_at_max_pages_with_guidance(scripted, session):
    """Case 56: over HTTP, the cap stops an endless fresh cursor; the message says how to raise it."""
    over = _bad_request_after(200)
    fresh = itertools.count()

    def page(query):
        if over():
            return Reply(500, {"error": "the client never stopped"})
        return {"data": [{"n": 1}], "next_cursor": f"fresh-{next(fresh)}"}

    with pytest.raises(PaginationError, match=r"max_pages=None for no cap"):
        frames.read_json(serve(scripted, "/full", page), session=session, progress=False, max_pages=25,
                         retries=0)
    assert scripted.count("/full") == 25


# -- case 58: malformed URLs ---------------------------------------------------------------


BAD_START_URLS = ["http://", "api.example.com/v1/items", "http://exa mple.com/items", "http://[::1",
                  "http://exa\u2100mple.com/items", "http://\u2603.example/items", "http://127.0.0.1:99999/x", ""]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("url", BAD_START_URLS)
def test_case_58_malformed_start_url_is_a_configuration_error(tmp_path, reader, url):
    """Case 58: a malformed start URL -> ConfigurationError (never MissingSchema, InvalidURL or ValueError)."""
    with pytest.raises(ConfigurationError, match="needs an http\\(s\\) URL") as err:
        read(reader, url, requests.Session(), tmp_path)
    assert not isinstance(err.value, (requests.RequestException, ValueError))


BAD_NEXT_LINKS = ["http://", "http://exa mple.com/items?page=2", "http://[::1", "http://[::1/items?page=2",
                  "http://exa\u2100mple.com/items", "http://\u2603.example/items", "http://127.0.0.1:99999/x",
                  "https://"]


@pytest.mark.parametrize("reader,who", [(r, "requests") for r in READERS] + [("read_json", "nb_oauth2")])
@pytest.mark.parametrize("link", BAD_NEXT_LINKS)
def test_case_58_malformed_next_link_is_a_pagination_error_naming_the_field(request, scripted, tmp_path,
                                                                            reader, who, link):
    """Case 58: a malformed next link -> PaginationError naming the field, never a raw ValueError /
    InvalidURL; it is not followed (the API saw one request)."""
    url = serve(scripted, "/p", lambda q: {"data": [{"id": 1}, {"id": 2}], "next": link})
    session = request.getfixturevalue("plain" if who == "requests" else "nb_session")
    with pytest.raises(PaginationError, match=r"next-page link in 'next' .*not a valid URL"):
        read(reader, url, session, tmp_path)
    assert scripted.count("/p") == 1


@pytest.mark.parametrize("where", ["Link", "@odata.nextLink", "links.next"])
def test_case_58_malformed_link_in_other_fields_names_them(scripted, session, where):
    """Case 58: the Link header and nested body fields are named too."""
    bad = "http://[::1/items?page=2"
    body, headers = {"value": [{"id": 1}]}, {}
    if where == "Link":
        headers = {"Link": f'<{bad}>; rel="next"'}
    elif where == "links.next":
        body = {"data": [{"id": 1}], "links": {"next": bad}}
    else:
        body["@odata.nextLink"] = bad
    url = serve(scripted, "/p", lambda q: (body, headers))
    field = 'Link rel="next"' if where == "Link" else where
    with pytest.raises(PaginationError, match=f"next-page link in '{field}'"):
        frames.read_json(url, session=session, progress=False)


def test_case_58_partial_keeps_the_rows_read_before_a_malformed_link(scripted, session):
    """Case 58: with partial=True the rows before the bad link come back, with a warning."""
    def page(query):
        if query.get("page") == "2":
            return {"data": [{"id": 3}], "next": "http://[::1"}
        return {"data": [{"id": 1}, {"id": 2}], "next": "{base}/p?page=2"}

    with pytest.warns(UserWarning, match="not a valid URL"):
        frame = frames.read_json(serve(scripted, "/p", page), session=session, progress=False, partial=True)
    assert frame["id"].tolist() == [1, 2, 3]


# -- case 62: never silently short ---------------------------------------------------------


def cursor_api(scripted, path: str, n: int, size: int, write, *, cursor_param: str = "cursor"):
    """``n`` records, ``size`` a page; ``write(body, cursor or None)`` puts the next cursor in the body.
    Cursors are opaque tokens issued by the server (never offsets the client could guess)."""
    issued: dict[str, int] = {}

    def page(query):
        start = issued[query[cursor_param]] if query.get(cursor_param) else 0  # '' is the start
        body: dict = {"data": [{"id": i, "name": f"r{i}"} for i in range(start, min(start + size, n))]}
        token = None
        if start + size < n:
            token = f"b3Bh/cXVl+{start + size}=="
            issued[token] = start + size
        write(body, token)
        return body

    return serve(scripted, path, page)


@pytest.mark.parametrize("paginate", ["auto", "next", "cursor"])
@pytest.mark.parametrize("n,size,who", [(7, 3, "nb_oauth2"), (9, 3, "requests"), (1, 5, "requests"),
                                        (11, 4, "requests")])
def test_case_62_next_that_is_not_a_url_is_followed_as_a_cursor(request, scripted, paginate, n, size, who):
    """Case 62: {"data": [...], "next": "<opaque cursor>"} -> every page, the cursor sent back as cursor=
    (partial last pages, odd counts); 0.1 returned page 1 without a word."""
    url = cursor_api(scripted, "/c", n, size, lambda body, token: body.update(next=token))
    session = request.getfixturevalue("plain" if who == "requests" else "nb_session")
    frame = frames.read_json(url + "?limit=%d&q=x" % size, session=session, progress=False, paginate=paginate)
    assert frame["id"].tolist() == list(range(n))
    sent = queries(scripted, "/c")
    assert len(sent) == -(-n // size)
    assert all(q["limit"] == str(size) and q["q"] == "x" for q in sent)
    assert [q.get("cursor") for q in sent[1:]] == [f"b3Bh/cXVl+{i}==" for i in range(size, n, size)]


@pytest.mark.parametrize("reader", READERS)
def test_case_62_every_reader_follows_an_opaque_next(scripted, plain, tmp_path, reader):
    """Case 62: iter_pages and to_parquet follow the opaque cursor too."""
    url = cursor_api(scripted, "/c", 8, 3, lambda body, token: body.update(next=token))
    assert [r["id"] for r in read(reader, url + "?q=a%20b&limit=3", plain, tmp_path)] == list(range(8))


@pytest.mark.parametrize("order", ["cursor_first", "cursor_last", "cursor_given"])
def test_case_62_query_parameter_order_does_not_matter(scripted, plain, order):
    """Case 62: the cursor replaces or joins the query whatever its place; the other parameters stay."""
    url = cursor_api(scripted, "/c", 5, 2, lambda body, token: body.update(next_cursor=token))
    query = {"cursor_first": "?sort=id&limit=2", "cursor_last": "?limit=2&sort=id",
             "cursor_given": "?cursor=&limit=2&sort=id"}[order]
    frame = frames.read_json(url + query, session=plain, progress=False)
    assert frame["id"].tolist() == [0, 1, 2, 3, 4]
    assert all(q["sort"] == "id" and q["limit"] == "2" for q in queries(scripted, "/c"))


def test_case_62_cursor_that_looks_like_a_url_is_sent_back_verbatim(scripted, session):
    """Case 62: a cursor field whose value looks like a URL is a cursor: sent back exactly, never fetched."""
    tokens = ["https://elsewhere.example/?a=1&b=2#x", "/relative/path?x=1", ""]

    def page(query):
        i = tokens.index(query["cursor"]) + 1 if "cursor" in query else 0
        return {"members": [{"i": i}], "response_metadata": {"next_cursor": tokens[i]}}

    frame = frames.read_json(serve(scripted, "/slack", page), session=session, progress=False)
    assert frame["i"].tolist() == [0, 1, 2]
    assert [q.get("cursor") for q in queries(scripted, "/slack")] == [None] + tokens[:2]


def test_case_62_named_cursor_field_and_param(scripted, session):
    """Case 62: CursorPaginator(field="response_metadata.next_cursor", param="cursor"), exported from
    pagination, names a cursor nb_oauth2 would not guess; param names where it goes back."""
    from nb_oauth2.frames.pagination import CursorPaginator

    url = cursor_api(scripted, "/named", 7, 3, lambda body, token: body.update(
        response_metadata={"next_cursor": token or ""}, paging={"token": token}), cursor_param="from")
    paginator = CursorPaginator(field="paging.token", param="from")
    frame = frames.read_json(url, session=session, progress=False, paginate=paginator)
    assert frame["id"].tolist() == list(range(7))
    assert [q.get("from") for q in queries(scripted, "/named")][1:] == ["b3Bh/cXVl+3==", "b3Bh/cXVl+6=="]


def test_case_62_relay_page_info_with_named_end_cursor(scripted, session):
    """Case 62: pageInfo {hasNextPage, endCursor}: auto refuses to guess (names pageInfo.hasNextPage);
    CursorPaginator(field="pageInfo.endCursor", param="after") reads all and stops on hasNextPage false
    although the last page still carries an endCursor."""
    from nb_oauth2.frames.pagination import CursorPaginator

    def page(query):
        start = int(query.get("after", "c0")[1:])
        rows = list(range(start, min(start + 3, 7)))
        return {"nodes": [{"id": i} for i in rows],
                "pageInfo": {"hasNextPage": start + 3 < 7, "endCursor": f"c{rows[-1] + 1}"}}

    url = serve(scripted, "/relay", page)
    with pytest.raises(PaginationError, match="pageInfo.hasNextPage"):
        frames.read_json(url, session=session, progress=False)
    frame = frames.read_json(url, session=session, progress=False,
                             paginate=CursorPaginator(field="pageInfo.endCursor", param="after"))
    assert frame["id"].tolist() == list(range(7))
    assert [q.get("after") for q in queries(scripted, "/relay")][-3:] == [None, "c3", "c6"]


SIGNALS = {  # name: (paginate, body, headers, field named in the error)
    "has_more without a cursor": ("auto", {"results": [{"name": "a"}, {"name": "b"}], "has_more": True}, {},
                                  "has_more"),
    "has_more, a Stripe list without ids": ("auto", {"object": "list", "data": [{"email": "a@example.com"}],
                                                     "has_more": True, "url": "/v1/customers"}, {}, "has_more"),
    "done false (Salesforce)": ("auto", {"totalSize": 9, "done": False, "records": [{"id": 1}]}, {}, "done"),
    "isLast false (Jira)": ("auto", {"startAt": 0, "maxResults": 1, "isLast": False, "values": [{"id": 1}]}, {},
                            "isLast"),
    "pageInfo.hasNextPage": ("auto", {"items": [{"id": 1}], "pageInfo": {"hasNextPage": True}}, {},
                             "pageInfo.hasNextPage"),
    "nextToken (AWS)": ("auto", {"Items": [{"id": 1}], "nextToken": "AAAA"}, {}, "nextToken"),
    "meta.next_page": ("auto", {"data": [{"id": 1}], "meta": {"next_page": "p2"}}, {}, "meta.next_page"),
    "nextPageToken with paginate=link": ("link", {"items": [{"id": 1}], "nextPageToken": "CAIQAA"}, {},
                                         "nextPageToken"),
    "next_cursor with paginate=next": ("next", {"items": [{"id": 1}], "next_cursor": "dXNlcg=="}, {},
                                       "next_cursor"),
    "next URL with paginate=cursor": ("cursor", {"data": [{"id": 1}], "next": "{base}/s?page=2"}, {}, "next"),
    "Link rel=next with paginate=cursor": ("cursor", {"data": [{"id": 1}]},
                                           {"Link": '<{base}/s?page=2>; rel="next"'}, 'Link rel="next"'),
    "Link rel=next with paginate=page": ("page", {"data": [{"id": 1}], "page": 1, "total_pages": 1},
                                         {"Link": '<{base}/s?page=2>; rel="next"'}, 'Link rel="next"'),
}


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_case_62_more_that_cannot_be_followed_is_an_error_naming_the_field(scripted, session, name):
    """Case 62: a page that says there is more, which the paginator cannot follow -> PaginationError
    naming the field (0.1 returned page 1 alone, silently)."""
    paginate, body, headers, field = SIGNALS[name]
    url = serve(scripted, "/s", lambda q: (body, {k: v.replace("{base}", scripted.url)
                                                  for k, v in headers.items()}))
    with pytest.raises(PaginationError, match=f"says there is more \\('{field}'\\)"):
        frames.read_json(url, session=session, progress=False, paginate=paginate)
    assert scripted.count("/s") == 1


@pytest.mark.parametrize("reader", READERS)
def test_case_62_partial_returns_page_one_with_a_warning(scripted, plain, tmp_path, reader):
    """Case 62: partial=True keeps the rows it could read, and says why it stopped."""
    url = serve(scripted, "/s", lambda q: {"data": [{"id": 1}, {"id": 2}], "has_more": True})
    with pytest.warns(UserWarning, match="has_more"):
        rows = read(reader, url, plain, tmp_path, partial=True)
    assert [r["id"] for r in rows] == [1, 2]


@pytest.mark.parametrize("reader,who", [(r, "requests") for r in READERS] + [("read_json", "nb_oauth2")])
def test_case_62_paginate_none_reads_exactly_one_page_on_purpose(request, scripted, tmp_path, reader, who):
    """Case 62, decided: paginate="none" means "this one response": one request, its rows, no error and
    no warning, whatever the page says about more (documented in read_json and NoPaginator)."""
    url = serve(scripted, "/one", lambda q: ({"data": [{"id": 1}, {"id": 2}], "has_more": True,
                                             "next": "{base}/one?page=2"},
                                            {"Link": f'<{scripted.url}/one?page=2>; rel="next"'}))
    session = request.getfixturevalue("plain" if who == "requests" else "nb_session")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = read(reader, url, session, tmp_path, paginate="none")
    assert [r["id"] for r in rows] == [1, 2] and scripted.count("/one") == 1


def test_case_62_explicit_last_page_flag_wins_over_a_stale_cursor(scripted, session):
    """Case 62: has_more false with a cursor left over ends the walk (the API's explicit word)."""
    url = serve(scripted, "/stale", lambda q: {"data": [{"id": 1}], "has_more": False, "next_cursor": "stale"})
    assert frames.read_json(url, session=session, progress=False)["id"].tolist() == [1]
    assert scripted.count("/stale") == 1


def test_case_62_a_single_record_body_is_data_not_pagination(scripted, session):
    """Case 62: GET of one object whose own fields are called done/isLast is one row, not an error."""
    url = serve(scripted, "/todo/1", lambda q: {"id": 1, "title": "water plants", "done": False,
                                                "isLast": False, "tags": ["home"]})
    frame = frames.read_json(url, session=session, progress=False)
    assert frame["id"].tolist() == [1] and frame["done"].tolist() == [False]


def test_case_62_offset_api_that_caps_the_limit_loses_no_rows(scripted, session):
    """Case 62: limit=1000 asked, the server sends 3 a page and a total: the offset moves by what came
    (0.1 jumped by 1000 and returned the first 3 of 7 rows without a word)."""
    def page(query):
        offset = int(query.get("offset", 0))
        return {"records": [{"id": i} for i in range(offset, min(offset + 3, 7))], "offset": offset, "total": 7}

    frame = frames.read_json(serve(scripted, "/o", page) + "?offset=0&limit=1000", session=session,
                             progress=False, concurrency=1)
    assert frame["id"].tolist() == list(range(7))


def test_case_62_page_counter_goes_on_while_the_page_says_has_more(scripted, session):
    """Case 62: ?page=N with short pages (fewer than per_page) and has_more true keeps going until false."""
    pages = {1: [1, 2], 2: [3], 3: [4, 5]}

    def page(query):
        p = int(query.get("page", 1))
        return {"data": [{"id": i} for i in pages[p]], "has_more": p < 3}

    frame = frames.read_json(serve(scripted, "/pg", page) + "?page=1&per_page=5", session=session, progress=False)
    assert frame["id"].tolist() == [1, 2, 3, 4, 5]


# -- the demo API through nb_oauth2's own Session ------------------------------------------


@pytest.mark.parametrize("path,paginate,field", [("/api/events?per_page=500", "cursor", 'Link rel="next"'),
                                                  ("/api/cursor/events?limit=500", "link", "next_cursor"),
                                                  ("/api/next/events?per_page=500", "link", "next"),
                                                  ("/api/pages/events?per_page=500", "cursor", "page < total_pages"),
                                                  ("/api/odata/events?$top=500", "cursor", "@odata.nextLink")])
def test_case_62_demo_api_with_the_wrong_style_names_the_field(demo_provider, demo_session, path, paginate,
                                                               field):
    """Case 62 end to end: the demo API through the signed-in Session, with a style that cannot follow it."""
    with pytest.raises(PaginationError, match=f"\\('{field}'\\)"):
        oa.read_json(demo_provider.url + path, session=demo_session, progress=False, paginate=paginate)


def test_case_62_demo_cursor_api_with_a_named_cursor(demo_provider, demo_session):
    """Case 62 end to end: the demo cursor API read with CursorPaginator(field=..., param=...)."""
    from nb_oauth2.frames.pagination import CursorPaginator

    frame = oa.read_json(demo_provider.url + "/api/cursor/events?limit=777", session=demo_session,
                         progress=False, paginate=CursorPaginator(field="next_cursor", param="cursor"))
    assert len(frame) == 5000 and frame["id"].is_unique


# -- the same in a notebook: %oauth2 get ---------------------------------------------------


@pytest.fixture
def ip():
    from IPython.testing import globalipapp

    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "nb_oauth2")
    shell.run_line_magic("config", "OAuth2Magics.show_traceback = False")
    return shell


def test_case_56_oauth2_get_keeps_the_default_page_cap(ip, nb_session, scripted, monkeypatch):
    """Case 56 in a notebook: %oauth2 get without --max-pages reads under the 10,000-page cap."""
    seen: dict = {}
    from nb_oauth2 import api

    real = api.read_json

    def spy(url, **options):
        seen.update(options)
        return real(url, **options)

    monkeypatch.setattr(api, "read_json", spy)
    url = serve(scripted, "/one", lambda q: {"data": [{"id": 1}], "next": None})
    frame = ip.run_line_magic("oauth2", f"get {url} --no-progress")
    assert frame["id"].tolist() == [1] and seen["max_pages"] == 10_000
    ip.run_line_magic("oauth2", f"get {url} --no-progress --max-pages 3")
    assert seen["max_pages"] == 3


@pytest.mark.parametrize("url", ["http://[::1/items", "api.example.com/items", "http://127.0.0.1:99999/x"])
def test_case_58_oauth2_get_with_a_malformed_url_is_a_usage_error(ip, nb_session, url):
    """Case 58 in a notebook: %oauth2 get on a malformed URL -> a ConfigurationError naming the problem (shown
    in one line by error_display)."""
    from nb_oauth2.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="read_json needs an http\\(s\\) URL"):
        ip.run_line_magic("oauth2", f"get {url} --no-progress")


def test_case_58_custom_paginator_on_a_malformed_link_is_typed(scripted, plain):
    """Case 58: a user's Paginator whose urljoin fails on a hostile link -> PaginationError, not ValueError."""
    from urllib.parse import urljoin

    from nb_oauth2.frames.pagination import Paginator

    class NextHref(Paginator):
        name = "next-href"

        def next_url(self, page):
            href = (page.body.get("more") or {}).get("href")
            return urljoin(page.url, href) if href else None

        def pending(self, page):
            return None

    url = serve(scripted, "/custom", lambda q: {"data": [{"id": 1}], "more": {"href": "http://[::1/x"}})
    with pytest.raises(PaginationError, match="'next-href' paginator could not read"):
        frames.read_json(url, session=plain, progress=False, paginate=NextHref())
