"""The demo provider's protected JSON API: scopes, errors, rate limit, every pagination style."""

from __future__ import annotations

import time

import pytest
import requests

from nb_oauth2 import demo

RECORDS = 1234


def _token(p, scope: str = "read:events read:users") -> str:
    client = p.clients["service"]
    response = requests.post(f"{p.url}/token", data={"grant_type": "client_credentials", "scope": scope},
                             auth=(client.client_id, client.client_secret), timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _get(p, path_or_url: str, token: str | None) -> requests.Response:
    url = path_or_url if path_or_url.startswith("http") else p.url + path_or_url
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=5)


@pytest.fixture(scope="module")
def api():
    with demo.start(records=RECORDS, seed=7) as p:
        yield p, _token(p)


def _walk_link(p, token, url):
    out = []
    while url:
        response = _get(p, url, token)
        assert response.status_code == 200
        out.extend(response.json())
        url = response.links.get("next", {}).get("url")
    return out


def _ids(records):
    return [r["id"] for r in records]


def test_link_header_pagination_returns_every_record_once(api):
    p, token = api
    first = _get(p, "/api/events?per_page=100", token)
    assert 'rel="last"' in first.headers["Link"] and "page=13" in first.links["last"]["url"]
    records = _walk_link(p, token, f"{p.url}/api/events?per_page=100")
    assert _ids(records) == list(range(1, RECORDS + 1))


def test_body_next_url_pagination(api):
    p, token = api
    url, out = f"{p.url}/api/next/events?per_page=250", []
    while url:
        body = _get(p, url, token).json()
        out.extend(body["data"])
        url = body["next"]
    assert _ids(out) == list(range(1, RECORDS + 1))


def test_cursor_pagination(api):
    p, token = api
    cursor, out = None, []
    while True:
        path = "/api/cursor/events?limit=300" + (f"&cursor={cursor}" if cursor else "")
        body = _get(p, path, token).json()
        out.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert _ids(out) == list(range(1, RECORDS + 1))


def test_page_number_pagination_reports_totals(api):
    p, token = api
    first = _get(p, "/api/pages/events?per_page=500", token).json()
    assert (first["total"], first["total_pages"], first["page"], first["per_page"]) == (RECORDS, 3, 1, 500)
    out = list(first["results"])
    for page in range(2, first["total_pages"] + 1):
        out.extend(_get(p, f"/api/pages/events?per_page=500&page={page}", token).json()["results"])
    assert _ids(out) == list(range(1, RECORDS + 1))


def test_offset_limit_pagination(api):
    p, token = api
    offset, out = 0, []
    while True:
        body = _get(p, f"/api/offset/events?offset={offset}&limit=400", token).json()
        assert body["total"] == RECORDS and body["offset"] == offset and body["limit"] == 400
        if not body["records"]:
            break
        out.extend(body["records"])
        offset += len(body["records"])
    assert _ids(out) == list(range(1, RECORDS + 1))


def test_odata_next_link_pagination(api):
    p, token = api
    url, out = f"{p.url}/api/odata/events?$top=200", []
    while url:
        body = _get(p, url, token).json()
        out.extend(body["value"])
        url = body.get("@odata.nextLink")
    assert _ids(out) == list(range(1, RECORDS + 1))


def test_users_are_paged_link_style_and_need_read_users(api):
    p, token = api
    users = _walk_link(p, token, f"{p.url}/api/users?per_page=100")
    assert len(users) == 300 and len({u["login"] for u in users}) == 300
    events_only = _token(p, "read:events")
    assert _get(p, "/api/users", events_only).status_code == 403


def test_per_page_is_capped_at_1000_and_defaults_to_100():
    with demo.start(records=2500) as p:
        token = _token(p)
        assert len(_get(p, "/api/events", token).json()) == 100
        assert len(_get(p, "/api/events?per_page=5000", token).json()) == 1000


@pytest.mark.parametrize("path", ["/api/events?page=abc", "/api/events?per_page=0",
                                  "/api/cursor/events?cursor=!!!", "/api/offset/events?offset=-1"])
def test_bad_paging_parameters_are_400_json(api, path):
    p, token = api
    response = _get(p, path, token)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_unknown_api_path_is_404(api):
    p, token = api
    assert _get(p, "/api/nope/events", token).status_code == 404
    assert _get(p, "/api/widgets", token).status_code == 404


def test_records_are_nested_realistic_and_have_some_nulls(api):
    pd = pytest.importorskip("pandas")
    p, token = api
    records = _get(p, "/api/events?per_page=1000", token).json()
    frame = pd.json_normalize(records)
    assert len(frame.columns) >= 15
    for column in ("actor.login", "repo.stars", "payload.ok", "created_at", "amount", "tags"):
        assert column in frame.columns
    assert frame["payload.note"].isna().any() and frame["payload.note"].notna().any()
    assert pd.to_datetime(frame["created_at"]).is_monotonic_increasing


def test_same_seed_same_data_other_seed_other_data(api):
    p, token = api
    with demo.start(records=RECORDS, seed=7) as twin, demo.start(records=RECORDS, seed=8) as other:
        mine = _get(p, "/api/events?per_page=50", token).json()
        assert _get(twin, "/api/events?per_page=50", _token(twin)).json() == mine
        assert _get(other, "/api/events?per_page=50", _token(other)).json() != mine


def test_missing_scope_is_403_insufficient_scope_naming_the_scope(api):
    """Case 28: 403 insufficient_scope names the scope."""
    p, _ = api
    users_only = _token(p, "read:users")
    response = _get(p, "/api/events", users_only)
    assert response.status_code == 403
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="read:events"' in challenge
    assert response.json()["error"] == "insufficient_scope"


def test_unknown_token_is_401_invalid_token_with_json_body(api):
    """Case 28: 401 invalid_token with WWW-Authenticate."""
    p, _ = api
    response = _get(p, "/api/events", "not-a-token")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.json()["error"] == "invalid_token"


def test_request_without_authorization_is_401_and_counted(api):
    p, _ = api
    before = p.requests_without_auth
    response = _get(p, "/api/events", None)
    assert response.status_code == 401 and "error=" not in response.headers["WWW-Authenticate"]
    assert p.requests_without_auth == before + 1


def test_userinfo_needs_a_bearer_token(api):
    p, token = api
    assert _get(p, "/userinfo", None).status_code == 401
    assert _get(p, "/userinfo", token).json()["sub"] == p.clients["service"].client_id


def test_rate_limit_answers_429_with_retry_after_until_switched_off(fresh_demo_provider):
    """Case 29: 429 + Retry-After."""
    p = fresh_demo_provider
    token = _token(p)
    p.set_rate_limit(2, window=60, retry_after=3)
    assert [_get(p, "/api/events?per_page=1", token).status_code for _ in range(2)] == [200, 200]
    limited = _get(p, "/api/events?per_page=1", token)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert limited.json()["error"] == "rate_limited"
    p.set_rate_limit(None)
    assert _get(p, "/api/events?per_page=1", token).status_code == 200


def test_rate_limit_window_slides(demo_clock):
    with demo.start() as p:
        token = _token(p)
        p.set_rate_limit(1, window=1.0)  # the clock stands still: the two requests share one window
        assert _get(p, "/api/events?per_page=1", token).status_code == 200
        assert _get(p, "/api/events?per_page=1", token).status_code == 429
        demo_clock.advance(1.05)
        assert _get(p, "/api/events?per_page=1", token).status_code == 200


def test_five_thousand_records_over_fifty_pages(fresh_demo_provider):
    p = fresh_demo_provider  # default 5000 records; timing is measured, not asserted
    token = _token(p)
    started = time.perf_counter()
    records = _walk_link(p, token, f"{p.url}/api/events?per_page=100")
    elapsed = time.perf_counter() - started
    assert len(records) == 5000 and elapsed > 0


def test_pages_carry_an_etag_and_if_none_match_gets_304_without_a_body(api):
    p, token = api
    first = _get(p, "/api/events?per_page=10", token)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = requests.get(p.url + "/api/events?per_page=10", timeout=5,
                         headers={"Authorization": f"Bearer {token}", "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    other = requests.get(p.url + "/api/events?per_page=10&page=2", timeout=5,
                         headers={"Authorization": f"Bearer {token}", "If-None-Match": etag})
    assert other.status_code == 200 and other.headers["ETag"] != etag
    unknown = requests.get(p.url + "/api/events?per_page=10", timeout=5,
                           headers={"Authorization": "Bearer nope", "If-None-Match": etag})
    assert unknown.status_code == 401  # the token is checked before anything is revalidated


def test_a_rerun_through_a_demo_session_is_answered_304(fresh_demo_provider):
    """The tutorial's figure: the second read_json of 20 pages downloads no page body."""
    import nb_oauth2 as oa

    p = fresh_demo_provider
    client = p.clients["public"]
    session = oa.login("etag-demo", issuer=p.issuer, client_id=client.client_id, browser=p.driver.authorize,
                       scope=["read:events"])
    url = f"{p.url}/api/events?per_page=250"
    first = oa.read_json(url, session=session, progress=False)
    assert p.api.not_modified == 0
    second = oa.read_json(url, session=session, progress=False)
    assert p.api.not_modified == 20 and second.equals(first)


def test_rate_limit_headers_count_down(fresh_demo_provider):
    p = fresh_demo_provider
    token = _token(p)
    p.set_rate_limit(3, window=60, retry_after=3)
    remaining = [_get(p, "/api/events?per_page=1", token).headers["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    limited = _get(p, "/api/events?per_page=1", token)
    assert limited.status_code == 429 and limited.headers["X-RateLimit-Limit"] == "3"
    assert 0 < int(limited.headers["X-RateLimit-Reset"]) - time.time() <= 61
    p.set_rate_limit(None)
    assert "X-RateLimit-Remaining" not in _get(p, "/api/events?per_page=1", token).headers
