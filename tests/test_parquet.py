"""to_parquet on drifting schemas (issue 15): pages from a loopback server, read back by four readers."""

from __future__ import annotations

import math
import warnings

import pytest
import requests

from nb_oauth2.frames import parquet, readers
from tests.scripted_server import Reply, ScriptedServer, Seen

pa = pytest.importorskip("pyarrow")

BUG = {"id": 208045946, "name": "bug", "color": "d73a4a"}

#: GitHub-issue-like records over three pages: ``milestone`` and ``closed_at`` null on page 1 and
#: filled later, ``labels`` first appearing on page 2 (empty on page 3), ``score`` int then float
ISSUE_PAGES = [
    [{"id": 1, "title": "Crash on start", "state": "open", "score": 3, "milestone": None, "closed_at": None},
     {"id": 2, "title": "Typo in docs", "state": "open", "score": 1, "milestone": None, "closed_at": None}],
    [{"id": 3, "title": "Slow login", "state": "closed", "score": 2, "milestone": None,
      "closed_at": "2024-05-01T10:00:00Z", "labels": [BUG]}],
    [{"id": 4, "title": "Dark mode", "state": "open", "score": 0.5, "milestone": {"id": 7, "title": "v1.0"},
      "closed_at": None, "labels": []}],
]
ISSUE_COLUMNS = {"id", "title", "state", "score", "closed_at", "labels", "milestone.id", "milestone.title"}


@pytest.fixture
def serve(scripted: ScriptedServer):
    """``serve(pages)`` -> the first page's URL; page N links to page N+1 with ``next``."""

    def start(pages: list[list[dict]]) -> str:
        def reply(seen: Seen) -> Reply:
            page = int(seen.query.get("page", 1))
            nxt = f"{scripted.url}/issues?page={page + 1}" if page < len(pages) else None
            return Reply(200, {"data": pages[page - 1], "next": nxt})

        scripted.script("*", [reply])
        return scripted.url + "/issues?page=1"

    return start


@pytest.fixture
def session():
    http = requests.Session()
    http.headers["Authorization"] = "Bearer parquet-test"
    return http


def _plain(value):
    """One cell as plain Python: numpy arrays/scalars, NaN and NaT made comparable across readers."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _rows(records: list[dict]) -> list[dict]:
    return [{k: _plain(v) for k, v in r.items()} for r in records]


def read_four_ways(path: str) -> dict[str, tuple[list[str], list[dict]]]:
    """(column names, rows) as pyarrow.dataset, polars.scan_parquet, duckdb and pandas read ``path``."""
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.dataset as ds

    table = ds.dataset(path, format="parquet").to_table()
    lazy = pl.scan_parquet(path).collect()
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    frame = pd.read_parquet(path)
    return {
        "pyarrow.dataset": (table.column_names, _rows(table.to_pylist())),
        "polars": (lazy.columns, _rows(lazy.to_dicts())),
        "duckdb": (relation.columns, _rows([dict(zip(relation.columns, row)) for row in relation.fetchall()])),
        "pandas": (list(frame.columns), _rows(frame.to_dict("records"))),
    }


def test_three_drifting_pages_read_the_same_in_four_readers_and_equal_read_json(serve, session, tmp_path):
    """The issue's case: late dotted columns, a late list, null-first columns, int -> float."""
    url = serve(ISSUE_PAGES)
    out = str(tmp_path / "issues.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mixed scalars here: no warning either
        assert readers.to_parquet(url, out, session=session, progress=False) == 4
    expected = readers.read_json(url, session=session, progress=False)
    want_columns, want_rows = list(expected.columns), _rows(expected.to_dict("records"))
    assert set(want_columns) == ISSUE_COLUMNS and len(want_rows) == 4
    for reader, (columns, rows) in read_four_ways(out).items():
        assert (reader, columns) == (reader, want_columns)
        assert (reader, rows) == (reader, want_rows)
    schema = pa.parquet.read_schema(out)
    assert pa.types.is_floating(schema.field("score").type) and pa.types.is_list(schema.field("labels").type)
    assert [f for f in (tmp_path).iterdir()] == [tmp_path / "issues.parquet"]  # no part files left behind


def test_the_python_path_drifts_the_same_way(serve, session, tmp_path, monkeypatch):
    """Without the Arrow fast path (NB_OAUTH2_NO_FAST=1) pages arrive as Python columns: same file."""
    url = serve(ISSUE_PAGES)
    fast, slow = str(tmp_path / "fast.parquet"), str(tmp_path / "slow.parquet")
    readers.to_parquet(url, fast, session=session, progress=False)
    monkeypatch.setenv("NB_OAUTH2_NO_FAST", "1")
    readers.to_parquet(url, slow, session=session, progress=False)
    assert read_four_ways(slow) == read_four_ways(fast)


def test_mixed_scalars_are_kept_as_strings_with_a_warning_naming_the_column(serve, session, tmp_path):
    url = serve([[{"id": 1, "size": 10}], [{"id": 2, "size": "large"}], [{"id": 3, "size": True}]])
    out = str(tmp_path / "mixed.parquet")
    with pytest.warns(UserWarning, match="'size'") as caught:
        assert readers.to_parquet(url, out, session=session, progress=False) == 3
    assert sum("'size'" in str(w.message) for w in caught) == 1
    for reader, (columns, rows) in read_four_ways(out).items():
        assert (reader, [r["size"] for r in rows]) == (reader, ["10", "large", "true"])
        assert (reader, [r["id"] for r in rows]) == (reader, [1, 2, 3])


def test_a_uniform_pull_is_written_once_without_a_rewrite(serve, session, tmp_path, monkeypatch):
    """No drift: the single part is renamed into place (no second pass over the data)."""
    rewrites = []
    monkeypatch.setattr(pa.parquet, "ParquetFile", lambda *a, **k: rewrites.append(a))
    url = serve([[{"id": i, "name": f"n{i}"} for i in range(p * 3, p * 3 + 3)] for p in range(4)])
    out = str(tmp_path / "uniform.parquet")
    assert readers.to_parquet(url, out, session=session, progress=False) == 12
    assert pa.parquet.read_table(out).column("id").to_pylist() == list(range(12)) and rewrites == []


def test_late_column_far_down_many_batches(tmp_path, monkeypatch):
    """A column first appearing after many row groups: earlier rows read as nulls, memory held per batch."""
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 10)
    chunks = [pa.table({"id": list(range(i * 4, i * 4 + 4))}) for i in range(9)]
    chunks.append(pa.table({"id": [36, 37], "late": [1.5, None]}))
    out = str(tmp_path / "late.parquet")
    assert parquet.write_chunks(iter(chunks), out) == 38
    table = pa.parquet.read_table(out)
    assert table.column_names == ["id", "late"] and table.column("late").null_count == 37
    assert pa.parquet.ParquetFile(out).metadata.row_group(0).num_rows == 12
