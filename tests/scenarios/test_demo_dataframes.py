"""read_json against the demo API: every pagination style, through the real auto-refreshing session."""

from __future__ import annotations

import pytest

import nb_oauth2 as oa

STYLES = ["/api/events", "/api/next/events", "/api/cursor/events", "/api/pages/events", "/api/offset/events",
          "/api/odata/events"]


@pytest.mark.parametrize("path", STYLES)
def test_every_pagination_style_reads_every_record_once(demo_provider, demo_session, path):
    frame = oa.read_json(demo_provider.url + path, session=demo_session, progress=False)
    assert len(frame) == 5000
    assert frame["id"].is_unique and frame["id"].min() == 1 and frame["id"].max() == 5000
    assert {"actor.login", "repo.stars", "payload.ok"} <= set(frame.columns)


def test_session_by_name_and_dtypes_are_stable(demo_provider, demo_session):
    frame = oa.read_json(demo_provider.url + "/api/pages/events?per_page=7", session="demo-test", progress=False)
    assert frame["amount"].dtype.kind == "f" and frame["repo.stars"].dtype.kind in "if"


def test_expired_token_mid_pull_refreshes_once(fresh_demo_provider):
    """Case 28 end to end: the server expires the token; read_json goes on after one refresh."""
    p = fresh_demo_provider
    session = oa.login("pull", issuer=p.issuer, client_id=p.clients["public"].client_id, browser=p.driver.authorize)
    p.expire_access_tokens()
    before = p.token_requests
    frame = oa.read_json(p.url + "/api/next/events", session=session, progress=False)
    assert len(frame) == 5000 and p.token_requests - before == 1


def test_rate_limited_api_is_waited_for(fresh_demo_provider):
    """Case 29 end to end: 429 + Retry-After from the demo API is waited out, nothing lost."""
    p = fresh_demo_provider
    session = oa.login("rl", issuer=p.issuer, client_id=p.clients["public"].client_id, browser=p.driver.authorize)
    p.set_rate_limit(20, window=1.0, retry_after=1)
    frame = oa.read_json(p.url + "/api/next/events?per_page=200", session=session, progress=False)
    assert len(frame) == 5000


def test_missing_scope_is_insufficient_scope(fresh_demo_provider):
    """Case 28: 403 insufficient_scope -> no refresh, the scope named."""
    p = fresh_demo_provider
    session = oa.login("narrow", issuer=p.issuer, client_id=p.clients["public"].client_id,
                       browser=p.driver.authorize, scope=["openid", "read:users"])
    before = p.token_requests
    with pytest.raises(oa.InsufficientScope, match="read:events"):
        oa.read_json(p.url + "/api/events", session=session, progress=False)
    assert p.token_requests == before


@pytest.mark.parametrize("to", ["arrow", "polars"])
def test_arrow_and_polars_outputs_match_pandas(demo_provider, demo_session, to):
    pytest.importorskip("pyarrow" if to == "arrow" else "polars")
    url = demo_provider.url + "/api/pages/events?per_page=500"
    expected = oa.read_json(url, session=demo_session, progress=False)
    table = oa.read_json(url, session=demo_session, progress=False, to=to)
    shape = table.shape if to == "polars" else (table.num_rows, table.num_columns)
    columns = table.columns if to == "polars" else table.column_names
    assert shape == expected.shape and list(columns) == list(expected.columns)


def test_to_parquet_streams_every_record(demo_provider, demo_session, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "events.parquet"
    rows = oa.to_parquet(demo_provider.url + "/api/next/events?per_page=250", str(path), session=demo_session,
                         progress=False)
    assert rows == 5000 and pq.read_table(path).num_rows == 5000
