"""Pagination decisions, fed recorded API shapes and hostile ones (no HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from nb_oauth2.core.errors import ConfigurationError, PaginationError, UnsafeNextLink
from nb_oauth2.frames.page_fields import is_url, more_signal
from nb_oauth2.frames.pagination import (
    AutoPaginator,
    BodyNextPaginator,
    CursorPaginator,
    LinkPaginator,
    NoPaginator,
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
    from nb_oauth2.frames.readers import extract_records

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


# -- case 62: what a page says about more, decided without HTTP ------------------------------


@pytest.mark.parametrize("body,field", [
    ({"data": [1], "has_more": True}, "has_more"),
    ({"data": [1], "hasMore": "true"}, "hasMore"),
    ({"records": [1], "done": False}, "done"),
    ({"values": [1], "isLast": False}, "isLast"),
    ({"items": [1], "pageInfo": {"hasNextPage": True, "endCursor": "Y3Vy"}}, "pageInfo.hasNextPage"),
    ({"items": [1], "nextPageToken": "CAIQAA"}, "nextPageToken"),
    ({"members": [1], "response_metadata": {"next_cursor": "dXNlcg=="}}, "response_metadata.next_cursor"),
    ({"data": [1], "next": "opaque"}, "next"),
    ({"data": [1], "links": {"next": {"href": "/x?page=2"}}}, "links.next"),
    ({"Items": [1], "NextToken": "t"}, "NextToken"),
    ({"results": [1], "page": 1, "total_pages": 3}, "page < total_pages"),
])
def test_case_62_more_signal_names_the_field(body, field):
    """Case 62: every shape of "there is more" is recognised and named."""
    assert more_signal(body) == field


@pytest.mark.parametrize("body", [
    {"data": [1], "has_more": False, "next_cursor": "stale"},  # the explicit flag wins
    {"records": [1], "done": True, "nextRecordsUrl": "/services/x"},
    {"data": [1], "next": None, "next_cursor": ""},
    {"results": [1], "page": 3, "total_pages": 3},
    {"values": [1], "isLast": True},
    [{"id": 1}],
])
def test_last_pages_signal_nothing(body):
    assert more_signal(body) is None


def test_a_body_that_is_the_record_is_data():
    assert more_signal({"id": 1, "done": False}, body_is_record=True) is None
    assert more_signal({"id": 1}, link_next=True, body_is_record=True) == 'Link rel="next"'


def test_opaque_next_is_a_cursor_and_url_like_values_are_links():
    assert not is_url("b3BhcXVl==") and not is_url("o:300") and not is_url("2024-01-02T03:04:05Z")
    assert is_url("https://api.example.com/x?page=2") and is_url("/x?page=2") and is_url("?page=2")
    page = PageInfo(url=f"{BASE}/x?limit=3", body={"data": [{}], "next": "b3Bh/cXVl+3=="}, n_records=1)
    nxt = BodyNextPaginator().next_url(page)
    assert dict(parse_qsl(urlsplit(nxt).query)) == {"limit": "3", "cursor": "b3Bh/cXVl+3=="}
    cursor = CursorPaginator()
    assert dict(parse_qsl(urlsplit(cursor.next_url(page)).query))["cursor"] == "b3Bh/cXVl+3==" and cursor.field == "next"


def test_named_cursor_field_and_param():
    """CursorPaginator(field=..., param=...): a dotted path, or a key with a dot in it, and its parameter."""
    page = PageInfo(url=f"{BASE}/x", body={"data": [{}], "paging": {"token": "https://x/?a=1"}}, n_records=1)
    nxt = CursorPaginator(field="paging.token", param="after").next_url(page)
    assert dict(parse_qsl(urlsplit(nxt).query)) == {"after": "https://x/?a=1"}
    odd = PageInfo(url=f"{BASE}/x", body={"data": [{}], "@odata.skipToken": "S1"}, n_records=1)
    assert "skip=S1" in CursorPaginator(field="@odata.skipToken", param="skip").next_url(odd)
    known = PageInfo(url=f"{BASE}/x", body={"items": [{}], "nextPageToken": "T"}, n_records=1)
    assert "pageToken=T" in CursorPaginator(field="nextPageToken").next_url(known)
    relay_last = PageInfo(url=f"{BASE}/x", body={"n": [{}], "pageInfo": {"hasNextPage": False, "endCursor": "E"}},
                          n_records=1)
    assert CursorPaginator(field="pageInfo.endCursor", param="after").next_url(relay_last) is None


def test_paginators_that_cannot_follow_say_what_is_pending():
    link_only = PageInfo(url=f"{BASE}/x", headers={"Link": f'<{BASE}/x?page=2>; rel="next"'}, body=[{}],
                         n_records=1)
    cursor = CursorPaginator()
    assert cursor.next_url(link_only) is None and cursor.pending(link_only) == 'Link rel="next"'
    assert NoPaginator().pending(link_only) is None  # paginate="none" reads one page on purpose
    token = PageInfo(url=f"{BASE}/x", body={"items": [{}], "nextPageToken": "T"}, n_records=1)
    assert LinkPaginator().next_url(token) is None and LinkPaginator().pending(token) == "nextPageToken"
    stripe = PageInfo(url=f"{BASE}/x", body={"data": [{}], "has_more": True}, n_records=1)
    auto = AutoPaginator()
    assert auto.next_url(stripe) is None and auto.pending(stripe) == "has_more"


def test_offset_moves_by_what_the_server_sent_when_it_caps_the_limit():
    """Case 62: limit=1000 asked, 100 served, a total: the next offset is 100, not 1000."""
    page = PageInfo(url=f"{BASE}/x?offset=0&limit=1000", body={"records": [{}] * 100, "total": 250}, n_records=100)
    assert dict(parse_qsl(urlsplit(OffsetPaginator().next_url(page)).query))["offset"] == "100"
    served = PageInfo(url=f"{BASE}/x?offset=0&limit=1000", body={"records": [{}] * 90, "limit": 100, "total": 250},
                      n_records=90)  # the server filtered after paging: move by its page size
    assert dict(parse_qsl(urlsplit(OffsetPaginator().next_url(served)).query))["offset"] == "100"


def test_page_counter_follows_has_more_over_short_pages():
    short = PageInfo(url=f"{BASE}/x?page=1&per_page=5", body={"data": [{}], "has_more": True}, n_records=1)
    assert dict(parse_qsl(urlsplit(PagePaginator().next_url(short)).query))["page"] == "2"
    done = PageInfo(url=f"{BASE}/x?page=1&per_page=1", body={"data": [{}], "has_more": False}, n_records=1)
    assert PagePaginator().next_url(done) is None


@pytest.mark.parametrize("link", ["http://", "http://[::1", "http://exa mple.com/x", "http://127.0.0.1:99999/",
                                  "http://exa\u2100mple.com/", "ftp://files.example.com/x"])
def test_case_58_malformed_links_are_pagination_errors_naming_the_field(link):
    """Case 58: LinkPaginator on a malformed Link header -> PaginationError naming it, no ValueError."""
    page = PageInfo(url=f"{BASE}/x", headers={"Link": f'<{link}>; rel="next"'}, body=[{}], n_records=1)
    with pytest.raises(PaginationError, match="Link rel=\"next\""):
        LinkPaginator().next_url(page)


# -- the page count page 1 tells (for the progress bar) ----------------------------------------------


@pytest.mark.parametrize("body, headers, url, n_records, expected", [
    ({"data": [], "total_pages": 7}, {}, "/x", 10, 7),
    ({"data": [], "meta": {"total": 95, "per_page": 10}}, {}, "/x", 10, 10),
    ({"data": []}, {"x-total-pages": "4"}, "/x", 10, 4),  # any case
    ({"data": []}, {"X-Total-Count": "95"}, "/x?per_page=10", 10, 10),
    ({"data": []}, {"X-Total": "95", "X-Per-Page": "20"}, "/x", 20, 5),  # GitLab
    ({"value": [], "@odata.count": 250}, {}, "/x?$top=100", 100, 3),
    ({"items": [], "total": 30}, {}, "/x", 10, 3),  # size from the page's own records
    ({"items": [], "total": 0}, {}, "/x", 0, None),
    ({"items": [], "total": "many"}, {}, "/x", 10, None),
    ({"items": [], "total_pages": True}, {}, "/x", 10, None),
    ({"items": []}, {}, "/x", 10, None),
])
def test_total_pages_from_page_1(body, headers, url, n_records, expected):
    page = PageInfo(url=BASE + url, headers=headers, body=body, n_records=n_records)
    assert BodyNextPaginator().total_pages(page, None) == expected


def test_a_body_that_is_the_record_tells_no_count():
    page = PageInfo(url=BASE + "/me", body={"login": "x", "total": 40}, n_records=1, body_is_record=True)
    assert AutoPaginator().total_pages(page, None) is None


@pytest.mark.parametrize("first, nxt, last, expected", [
    ("/r?per_page=100", "/r?per_page=100&page=2", "/r?per_page=100&page=34", 34),
    ("/r", "/r?page=2", "/r?page=34", 34),  # page 1 without its counter (GitHub)
    ("/r", "/r?page=2", "/r?page=2", 2),
    ("/r?limit=10", "/r?limit=10&offset=10", "/r?limit=10&offset=90", 10),
    ("/r", "/r?cursor=abc", "/r?cursor=zzz", None),  # no counter: no count
])
def test_total_pages_from_link_rel_last(first, nxt, last, expected):
    page = PageInfo(url=BASE + first, headers={"Link": f'<{BASE}{nxt}>; rel="next", <{last}>; rel="last"'},
                    body=[], n_records=10)
    paginator = AutoPaginator()
    assert paginator.next_url(page) == BASE + nxt
    assert paginator.total_pages(page, BASE + nxt) == expected


# -- conventions of one API family, detected (issue 13 item 2) ------------------------------------------


def _query(url: str | None) -> dict:
    return dict(parse_qsl(urlsplit(url or "").query))


def test_stripe_list_is_detected_and_a_plain_has_more_is_not():
    """Stripe's list object -> starting_after=<last id>; has_more alone (no "object": "list") stays pending."""
    stripe = PageInfo(url=f"{BASE}/v1/customers?limit=3", n_records=2,
                      body={"object": "list", "url": "/v1/customers", "has_more": True,
                            "data": [{"id": "cus_1"}, {"id": "cus_2"}]})
    auto = AutoPaginator()
    assert _query(auto.next_url(stripe)) == {"limit": "3", "starting_after": "cus_2"}
    assert auto.name == "auto:starting_after" and auto.plan(stripe, auto.next_url(stripe)) is None
    envelope = PageInfo(url=stripe.url, body={"object": "list", "has_more": True}, n_records=2, last_id="cus_9")
    assert _query(AutoPaginator().next_url(envelope))["starting_after"] == "cus_9"  # Arrow: the walk's last_id
    last = PageInfo(url=stripe.url, body={**stripe.body, "has_more": False}, n_records=2)
    assert AutoPaginator().next_url(last) is None
    no_ids = PageInfo(url=stripe.url, body={"object": "list", "has_more": True, "data": [{"email": "a@b"}]},
                      n_records=1)
    with pytest.raises(PaginationError, match="'has_more'.*no 'id'"):
        AutoPaginator().next_url(no_ids)


def test_odata_client_driven_skip_is_planned_from_the_count():
    """OData v4 with @odata.count and no next link: $skip by the records served, planned up to the count."""
    first = PageInfo(url=f"{BASE}/People?$top=3&$count=true", body={"@odata.count": 7, "value": [{}] * 3},
                     n_records=3)
    auto = AutoPaginator()
    nxt = auto.next_url(first)
    assert auto.name == "auto:skip" and _query(nxt) == {"$top": "3", "$count": "true", "$skip": "3"}
    assert [_query(u)["$skip"] for u in auto.plan(first, nxt)] == ["3", "6"]
    last = PageInfo(url=f"{BASE}/People?$top=3&$count=true&$skip=6", body={"@odata.count": 7, "value": [{}]},
                    n_records=1)
    assert auto.next_url(last) is None
    empty = PageInfo(url=f"{BASE}/People?$skip=3", body={"@odata.count": 7, "value": []}, n_records=0)
    assert auto.next_url(empty) is None  # the count went stale: an empty page ends the read
    capped = PageInfo(url=f"{BASE}/People?$top=1000", body={"odata.count": "250", "value": [{}] * 100},
                      n_records=100)  # v3's count, a string; the server served 100 of the 1000 asked
    assert [_query(u)["$skip"] for u in AutoPaginator().plan(capped, f"{BASE}/People?$top=1000&$skip=100")] \
        == ["100", "200"]


def test_odata_next_link_moving_skip_is_planned_from_the_count():
    """Server-driven paging whose @odata.nextLink only moves $skip: the rest planned from @odata.count."""
    first = PageInfo(url=f"{BASE}/Products?$count=true", n_records=3,
                     body={"@odata.count": 7, "value": [{}] * 3,
                           "@odata.nextLink": f"{BASE}/Products?$count=true&$skip=3"})
    auto = AutoPaginator()
    nxt = auto.next_url(first)
    assert auto.name == "auto:next" and [_query(u)["$skip"] for u in auto.plan(first, nxt)] == ["3", "6"]
    token = PageInfo(url=first.url, n_records=3, body={"@odata.count": 7, "value": [{}] * 3,
                                                       "@odata.nextLink": f"{BASE}/Products?$skiptoken=X3"})
    assert AutoPaginator().plan(token, f"{BASE}/Products?$skiptoken=X3") is None  # an opaque token: in turn


@pytest.mark.parametrize("body, expected", [
    ({"odata.count": "7", "value": [{}], "odata.nextLink": "Products?$skip=3"},
     f"{BASE}/odata/Products?$skip=3"),  # v3: relative to the service root, never a cursor
    ({"d": {"__count": "7", "results": [{}], "__next": "Products?$skiptoken=3"}},
     f"{BASE}/odata/Products?$skiptoken=3"),  # v2 verbose
    ({"d": {"results": [{}], "__next": None}}, None),
])
def test_odata_v3_and_v2_next_links(body, expected):
    page = PageInfo(url=f"{BASE}/odata/Products?$inlinecount=allpages", body=body, n_records=1)
    assert AutoPaginator().next_url(page) == expected


def test_spotify_search_with_two_types_follows_one_next_only_when_they_agree():
    """{"tracks": {...}, "artists": {...}}: Spotify gives both the same next URL (one offset for all types);
    two different next links are not followed by guess: the page says there is more, naming one."""
    def paging(nxt):
        return {"href": f"{BASE}/v1/search", "items": [{}], "limit": 3, "offset": 0, "next": nxt, "total": 7}

    same = {"tracks": paging(f"{BASE}/v1/search?offset=3"), "artists": paging(f"{BASE}/v1/search?offset=3")}
    page = PageInfo(url=f"{BASE}/v1/search?q=a&type=track,artist", body=same, n_records=1)
    assert AutoPaginator().next_url(page) == f"{BASE}/v1/search?offset=3"
    one_left = {"tracks": paging(f"{BASE}/v1/search?offset=3"), "artists": paging(None)}
    assert AutoPaginator().next_url(PageInfo(url=page.url, body=one_left, n_records=1)) == f"{BASE}/v1/search?offset=3"
    differ = {"tracks": paging(f"{BASE}/v1/search?offset=3"), "artists": paging(f"{BASE}/v1/search?offset=6")}
    auto, odd = AutoPaginator(), PageInfo(url=page.url, body=differ, n_records=1)
    assert auto.next_url(odd) is None and auto.pending(odd) == "tracks.next"
