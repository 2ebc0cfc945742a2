"""Pagination decisions, fed recorded API shapes (no HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from nb_oauth2.errors import ConfigurationError, UnsafeNextLink
from nb_oauth2.pagination import (
    AutoPaginator,
    CursorPaginator,
    OffsetPaginator,
    PageInfo,
    PagePaginator,
    check_next_url,
    make_paginator,
    parse_link_header,
    set_param,
)

SHAPES = Path(__file__).parent / "data" / "api_shapes"
BASE = "https://api.example.com"


def _load(name: str) -> dict:
    return json.loads((SHAPES / f"{name}.json").read_text().replace("{base}", BASE))


def _url(page: dict) -> str:
    query = urlencode(page["query"])
    return BASE + page["path"] + (f"?{query}" if query else "")


def _info(page: dict, url: str | None = None) -> PageInfo:
    from nb_oauth2.frames import extract_records

    body = page["body"]
    return PageInfo(url=url or _url(page), headers=page.get("headers", {}), body=body,
                    n_records=len(extract_records(body)))


def _same_request(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.netloc, pa.path, sorted(parse_qsl(pa.query))) == (pb.netloc, pb.path, sorted(parse_qsl(pb.query)))


@pytest.mark.parametrize("name", sorted(p.stem for p in SHAPES.glob("*.json")))
def test_auto_detects_each_recorded_api_and_walks_every_page(name):
    shape = _load(name)
    paginator = AutoPaginator()
    url = _url(shape["pages"][0])
    for i, page in enumerate(shape["pages"]):
        nxt = paginator.next_url(_info(page, url))
        if i + 1 < len(shape["pages"]):
            assert nxt is not None and _same_request(nxt, _url(shape["pages"][i + 1])), (name, i, nxt)
            url = nxt
        else:
            assert nxt is None
    assert paginator.chosen.name == shape["style"]


def test_link_header_rel_last_plans_the_remaining_github_pages():
    shape = _load("github")
    first = _info(shape["pages"][0])
    paginator = AutoPaginator()
    nxt = paginator.next_url(first)
    plan = paginator.plan(first, nxt)
    assert [dict(parse_qsl(urlsplit(u).query))["page"] for u in plan] == ["2", "3"]


def test_offset_and_total_in_the_body_plan_spotify_offsets():
    shape = _load("spotify")
    first = _info(shape["pages"][0])
    paginator = AutoPaginator()
    plan = paginator.plan(first, paginator.next_url(first))
    assert [dict(parse_qsl(urlsplit(u).query))["offset"] for u in plan] == ["2", "4"]


def test_total_pages_plans_page_numbers():
    shape = _load("reqres")
    first = _info(shape["pages"][0])
    paginator = AutoPaginator()
    plan = paginator.plan(first, paginator.next_url(first))
    assert [dict(parse_qsl(urlsplit(u).query))["page"] for u in plan] == ["2", "3"]


def test_cursor_styles_are_never_planned():
    shape = _load("google")
    first = _info(shape["pages"][0])
    paginator = AutoPaginator()
    nxt = paginator.next_url(first)
    assert dict(parse_qsl(urlsplit(nxt).query))["pageToken"] == "CAIQAA"
    assert paginator.plan(first, nxt) is None


def test_unknown_counter_name_is_not_guessed():
    page = PageInfo(url=f"{BASE}/x", body={"data": [{}] * 2, "total": 10, "next": f"{BASE}/x?n=7"}, n_records=2)
    assert AutoPaginator().plan(page, f"{BASE}/x?n=7") is None


def test_parse_link_header_reads_several_rels():
    links = parse_link_header('<https://a/x?page=2>; rel="next", <https://a/x?page=9>; rel="last"')
    assert links == {"next": "https://a/x?page=2", "last": "https://a/x?page=9"}


def test_offset_without_total_stops_on_a_short_page():
    paginator = OffsetPaginator()
    full = PageInfo(url=f"{BASE}/x?offset=0&limit=3", body=[1, 2, 3], n_records=3)
    short = PageInfo(url=f"{BASE}/x?offset=3&limit=3", body=[4], n_records=1)
    assert dict(parse_qsl(urlsplit(paginator.next_url(full)).query))["offset"] == "3"
    assert paginator.next_url(short) is None


def test_page_without_total_stops_on_an_empty_page():
    paginator = PagePaginator()
    assert paginator.next_url(PageInfo(url=f"{BASE}/x?page=4", body=[], n_records=0)) is None
    nxt = paginator.next_url(PageInfo(url=f"{BASE}/x?page=4", body=[{}], n_records=1))
    assert dict(parse_qsl(urlsplit(nxt).query))["page"] == "5"


def test_empty_cursor_ends_the_walk():
    page = PageInfo(url=f"{BASE}/x?cursor=a", body={"members": [{}], "response_metadata": {"next_cursor": ""}},
                    n_records=1)
    assert CursorPaginator().next_url(page) is None


def test_case_34_next_link_to_another_origin_is_refused():
    """Case 34: a next link to another origin is refused before any request."""
    with pytest.raises(UnsafeNextLink) as err:
        check_next_url(f"{BASE}/x?page=1", "https://evil.example.net/x?page=2&access_token=abc")
    assert "abc" not in str(err.value)


def test_case_34_https_to_http_downgrade_is_refused():
    """Case 34: https -> http on the same host is refused (the token would travel in clear)."""
    with pytest.raises(UnsafeNextLink):
        check_next_url(f"{BASE}/x", "http://api.example.com/x?page=2")


def test_relative_next_link_resolves_against_the_page():
    assert check_next_url(f"{BASE}/v1/x?page=1", "/v1/x?page=2") == f"{BASE}/v1/x?page=2"


def test_set_param_replaces_an_existing_value():
    assert set_param(f"{BASE}/x?a=1&page=1", "page", 2) == f"{BASE}/x?a=1&page=2"


def test_unknown_style_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        make_paginator("sideways")
