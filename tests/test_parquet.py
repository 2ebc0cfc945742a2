"""to_parquet on drifting schemas (issue 15): pages from a loopback server, read back by four readers."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import warnings

import pytest
import requests

from nb_oauth2.core.errors import ConfigurationError, ResumeMismatch, SecretInResumeState
from nb_oauth2.core.redact import register_secret
from nb_oauth2.frames import parquet, partitions, readers
from tests.scripted_server import Reply, ScriptedServer, Seen

pa = pytest.importorskip("pyarrow")
pytest.importorskip("pyarrow.parquet")  # pa.parquet below: a submodule exists as an attribute once imported

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


# -- resume=True ------------------------------------------------------------------------------------------

#: five pages of drifting issue records: the three above, then a new nested object and a late list
RESUME_PAGES = ISSUE_PAGES + [
    [{"id": 5, "title": "Export", "state": "open", "score": 4, "milestone": {"id": 8, "title": "v1.1"},
      "closed_at": None, "labels": [BUG], "assignee": {"login": "ada"}}],
    [{"id": 6, "title": "Import", "state": "closed", "score": 1.25, "milestone": None,
      "closed_at": "2024-06-01T09:00:00Z", "labels": [], "assignee": None}],
]


@pytest.fixture
def pages_server(scripted: ScriptedServer):
    """``pages_server(pages, on_page)`` -> the first page's URL; ``on_page(n)`` may return a Reply instead
    of page n (a failure) or act (a signal); every request is in ``scripted.seen``."""

    def start(pages: list[list[dict]], on_page=lambda n: None) -> str:
        def reply(seen: Seen) -> Reply:
            page = int(seen.query.get("page", 1))
            instead = on_page(page)
            if instead is not None:
                return instead
            nxt = f"{scripted.url}/issues?page={page + 1}" if page < len(pages) else None
            return Reply(200, {"data": pages[page - 1], "next": nxt})

        scripted.script("*", [reply])
        return scripted.url + "/issues?page=1"

    return start


def _fetches(scripted: ScriptedServer) -> dict[int, int]:
    """How often each page was requested."""
    counts: dict[int, int] = {}
    for seen in scripted.seen:
        page = int(seen.query.get("page", 1))
        counts[page] = counts.get(page, 0) + 1
    return counts


def _beside(tmp_path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


def _assert_every_record_once(out: str, url: str, session) -> None:
    """The file equals read_json's frame of every page, in four readers: each record exactly once."""
    expected = readers.read_json(url, session=session, progress=False)
    want = (list(expected.columns), _rows(expected.to_dict("records")))
    assert [r["id"] for r in want[1]] == [1, 2, 3, 4, 5, 6]
    for reader, got in read_four_ways(out).items():
        assert (reader, got) == (reader, want)


def test_resume_after_a_500_on_page_3_fetches_no_saved_page_again(pages_server, scripted, session, tmp_path):
    """A pull failing on page 3 of 5 keeps pages 1-2 and the next URL beside the target; resume=True fetches
    pages 3-5 only, and the file holds every record once, the drift across the break unified."""
    failing = {3}
    url = pages_server(RESUME_PAGES, lambda n: Reply(500, {"error": "boom"}) if n in failing else None)
    out = str(tmp_path / "issues.parquet")
    with pytest.raises(Exception) as raised:
        readers.to_parquet(url, out, session=session, progress=False, retries=0, resume=True)
    assert not isinstance(raised.value, AssertionError)
    assert _fetches(scripted) == {1: 1, 2: 1, 3: 1}
    assert _beside(tmp_path) == [".issues.parquet.parts", ".issues.parquet.resume.json"]
    state = json.loads((tmp_path / ".issues.parquet.resume.json").read_text())
    assert state["next_url"] == scripted.url + "/issues?page=3" and state["rows"] == 3
    assert "parquet-test" not in json.dumps(state)  # the session's bearer token is never saved

    failing.clear()
    assert readers.to_parquet(url, out, session=session, progress=False, retries=0, resume=True) == 6
    assert _fetches(scripted) == {1: 1, 2: 1, 3: 2, 4: 1, 5: 1}
    assert _beside(tmp_path) == ["issues.parquet"]  # state and parts gone once the file is in place
    _assert_every_record_once(out, url, session)


def test_resume_after_the_stop_button(pages_server, scripted, session, tmp_path):
    """Stop (a real SIGINT to the main thread, as Jupyter sends) while page 3 is awaited: KeyboardInterrupt,
    then resume=True goes on from page 3."""
    main = threading.main_thread().ident
    stop = {3}

    def on_page(n):
        if n in stop:
            stop.clear()
            signal.pthread_kill(main, signal.SIGINT)
            return Reply(200, {"data": [], "next": None}, delay=10)  # never reaches the reader
        return None

    url = pages_server(RESUME_PAGES, on_page)
    out = str(tmp_path / "issues.parquet")
    with pytest.raises(KeyboardInterrupt):
        readers.to_parquet(url, out, session=session, progress=False, resume=True)
    assert readers.to_parquet(url, out, session=session, progress=False, resume=True) == 6
    assert _fetches(scripted) == {1: 1, 2: 1, 3: 2, 4: 1, 5: 1}
    _assert_every_record_once(out, url, session)


_KILLED_PULL = """
import sys, requests
from nb_oauth2.core.redact import register_secret
from nb_oauth2.frames import parquet, readers
parquet.CHECKPOINT_SECONDS = 0  # a checkpoint after every page
readers.to_parquet(sys.argv[1], sys.argv[2], session=requests.Session(), progress=False, resume=True)
"""


def test_resume_after_the_kernel_dies(pages_server, scripted, session, tmp_path):
    """The first pull runs in a process SIGKILLed when it asks for page 3 (a dead kernel: no cleanup runs);
    resume=True in this process goes on from page 3 with pages 1-2 from the saved parts."""
    victim: dict = {}

    def on_page(n):
        if n == 3 and "killed" not in victim:
            victim["killed"] = True
            os.kill(victim["pid"], signal.SIGKILL)
            return Reply(200, {"data": [], "next": None}, delay=10)
        return None

    url = pages_server(RESUME_PAGES, on_page)
    out = str(tmp_path / "issues.parquet")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_PULL, url, out], cwd=os.getcwd())
    victim["pid"] = proc.pid
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert _fetches(scripted) == {1: 1, 2: 1, 3: 1}
    assert readers.to_parquet(url, out, session=session, progress=False, resume=True) == 6
    assert _fetches(scripted) == {1: 1, 2: 1, 3: 2, 4: 1, 5: 1}
    _assert_every_record_once(out, url, session)


def test_resume_with_no_saved_state_is_a_normal_pull(pages_server, scripted, session, tmp_path):
    url = pages_server(RESUME_PAGES)
    out = str(tmp_path / "issues.parquet")
    assert readers.to_parquet(url, out, session=session, progress=False, resume=True) == 6
    assert _fetches(scripted) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1} and _beside(tmp_path) == ["issues.parquet"]
    _assert_every_record_once(out, url, session)


def test_resume_of_another_start_url_is_refused_before_any_request(pages_server, scripted, session, tmp_path):
    """The saved pull belongs to ?page=1&state=open; resuming with state=closed would mix two pulls."""
    failing = {2}
    url = pages_server(RESUME_PAGES, lambda n: Reply(500, {"error": "boom"}) if n in failing else None)
    out = str(tmp_path / "issues.parquet")
    with pytest.raises(Exception):
        readers.to_parquet(url, out, session=session, progress=False, retries=0, resume=True,
                           params={"state": "open"})
    failing.clear()
    before = len(scripted.seen)
    with pytest.raises(ResumeMismatch, match="another start URL"):
        readers.to_parquet(url, out, session=session, progress=False, resume=True, params={"state": "closed"})
    with pytest.raises(ResumeMismatch, match="options"):
        readers.to_parquet(url, out, session=session, progress=False, resume=True, params={"state": "open"},
                           sep="_")
    assert len(scripted.seen) == before and not (tmp_path / "issues.parquet").exists()
    assert readers.to_parquet(url, out, session=session, progress=False, resume=True,
                              params={"state": "open"}) == 6  # the same arguments still resume


def test_resume_refuses_to_save_a_url_carrying_a_secret(pages_server, scripted, session, tmp_path):
    """Never a token beside the data: a start URL with a registered secret or a credential parameter is
    refused before any request; a next link carrying one stops the pull, and no state file holds it."""
    secret = "s3cr3t-resume-token-value"
    register_secret(secret)
    url = pages_server(RESUME_PAGES)
    out = str(tmp_path / "issues.parquet")
    for params in ({"cursor": secret}, {"access_token": "not-registered"}):
        with pytest.raises(SecretInResumeState):
            readers.to_parquet(url, out, session=session, progress=False, resume=True, params=params)
    assert scripted.seen == [] and _beside(tmp_path) == []

    def leaky(seen: Seen) -> Reply:
        page = int(seen.query.get("page", 1))
        return Reply(200, {"data": RESUME_PAGES[page - 1],
                           "next": f"{scripted.url}/issues?page={page + 1}&sig_cursor={secret}"})

    scripted.script("*", [leaky])
    with pytest.raises(SecretInResumeState) as raised:
        readers.to_parquet(url, out, session=session, progress=False, resume=True)
    assert secret not in str(raised.value)
    assert all(secret not in p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())


# -- partition_by= ----------------------------------------------------------------------------------------

#: the five drifting pages, then a record with no state (a null partition value) and one more "open"
PARTITION_PAGES = RESUME_PAGES + [
    [{"id": 7, "title": "Untriaged", "state": None, "score": 2, "milestone": None, "closed_at": None,
      "labels": [BUG], "assignee": {"login": "bo"}},
     {"id": 8, "title": "Retry", "state": "open", "score": 7, "milestone": {"id": 8, "title": "v1.1"},
      "closed_at": None, "labels": [], "assignee": None}],
]


def read_dataset_four_ways(path: str) -> dict[str, list[dict]]:
    """Rows (sorted by id) as pyarrow.dataset, polars, duckdb and pandas read a hive-partitioned folder."""
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.dataset as ds

    table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    lazy = pl.scan_parquet(f"{path}/**/*.parquet", hive_partitioning=True).collect()
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}/**/*.parquet', hive_partitioning=true)")
    # pandas' default (pyarrow's hive discovery with dictionary-typed values) raises "Cannot yet unify
    # dictionaries with nulls" on a dataset with a null partition (pyarrow 26): plain strings instead
    frame = pd.read_parquet(path, partitioning=ds.HivePartitioning.discover(infer_dictionary=False))
    got = {
        "pyarrow.dataset": table.to_pylist(),
        "polars": lazy.to_dicts(),
        "duckdb": [dict(zip(relation.columns, row)) for row in relation.fetchall()],
        "pandas": frame.to_dict("records"),
    }
    return {reader: sorted(_rows(rows), key=lambda r: r["id"]) for reader, rows in got.items()}


def _text(value) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):  # polars parses a date-like folder value (try_parse_hive_dates): its instant
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _as_text(rows: list[dict], column: str) -> list[dict]:
    """The partition column's values as text (readers type folder names their own way); null stays None."""
    return [{**r, column: _text(r[column])} for r in rows]


def _assert_dataset_equals_read_json(out: str, url: str, session, column: str = "state") -> None:
    expected = readers.read_json(url, session=session, progress=False)
    want = _as_text(sorted(_rows(expected.to_dict("records")), key=lambda r: r["id"]), column)
    assert [r["id"] for r in want] == [1, 2, 3, 4, 5, 6, 7, 8] and want[6][column] is None
    for reader, rows in read_dataset_four_ways(out).items():
        assert (reader, set(rows[0])) == (reader, set(expected.columns))
        assert (reader, _as_text(rows, column)) == (reader, want)


def test_partition_by_writes_a_hive_dataset_that_four_readers_read_as_read_json(pages_server, session, tmp_path):
    """Drifting pages partitioned by a low-cardinality column: one folder per value, null in
    __HIVE_DEFAULT_PARTITION__, one schema in every file (the 'open' rows of page 1 were written before
    labels, milestone.* and assignee.login appeared), the partition column only in the folder names."""
    url = pages_server(PARTITION_PAGES)
    out = tmp_path / "issues"
    assert readers.to_parquet(url, str(out), session=session, progress=False, partition_by="state") == 8
    folders = sorted(p.name for p in out.iterdir())
    assert folders == ["state=__HIVE_DEFAULT_PARTITION__", "state=closed", "state=open"]
    files = sorted(out.rglob("*.parquet"))
    schemas = [pa.parquet.read_schema(f) for f in files]
    assert len(files) == 3 and all(s.equals(schemas[0]) for s in schemas)
    assert "state" not in schemas[0].names and {"labels", "milestone.id", "assignee.login"} <= set(schemas[0].names)
    assert pa.types.is_floating(schemas[0].field("score").type)
    assert _beside(tmp_path) == ["issues"]  # no parts or state left beside it
    _assert_dataset_equals_read_json(str(out), url, session)


def test_a_timestamp_string_partitions_by_its_text_as_given(pages_server, session, tmp_path):
    """closed_at (mostly null, then ISO timestamps): one folder per whole value, ':' percent-encoded in the
    folder name, read back as the same text by all four readers."""
    url = pages_server(PARTITION_PAGES)
    out = tmp_path / "by_closed_at"
    assert readers.to_parquet(url, str(out), session=session, progress=False, partition_by="closed_at") == 8
    assert sorted(p.name for p in out.iterdir()) == [
        "closed_at=2024-05-01T10%3A00%3A00Z", "closed_at=2024-06-01T09%3A00%3A00Z",
        "closed_at=__HIVE_DEFAULT_PARTITION__"]
    _assert_dataset_equals_read_json(str(out), url, session, column="closed_at")


def test_partition_by_resumes_after_a_500(pages_server, scripted, session, tmp_path):
    """partition_by with resume=True: the split happens when the pull ends, so a pull failing on page 3
    resumes from page 3 and the dataset holds every record once."""
    failing = {3}
    url = pages_server(PARTITION_PAGES, lambda n: Reply(500, {"error": "boom"}) if n in failing else None)
    out = str(tmp_path / "issues")
    options = dict(session=session, progress=False, retries=0, resume=True, partition_by=["state"])
    with pytest.raises(Exception) as raised:
        readers.to_parquet(url, out, **options)
    assert not isinstance(raised.value, AssertionError) and not os.path.exists(out)
    failing.clear()
    assert readers.to_parquet(url, out, **options) == 8
    assert _fetches(scripted) == {1: 1, 2: 1, 3: 2, 4: 1, 5: 1, 6: 1}
    assert _beside(tmp_path) == ["issues"]
    _assert_dataset_equals_read_json(out, url, session)


def test_partition_by_replaces_its_dataset_and_refuses_anything_else(pages_server, scripted, session, tmp_path):
    url = pages_server(PARTITION_PAGES)
    out = tmp_path / "issues"
    assert readers.to_parquet(url, str(out), session=session, progress=False, partition_by="state") == 8
    assert readers.to_parquet(url, str(out), session=session, progress=False, partition_by="state") == 8
    assert len(read_dataset_four_ways(str(out))["duckdb"]) == 8 and _beside(tmp_path) == ["issues"]
    before = len(scripted.seen)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    (tmp_path / "file.parquet").write_text("not a folder")
    for taken in ("notes", "file.parquet"):
        with pytest.raises(ConfigurationError, match="something else is there"):
            readers.to_parquet(url, str(tmp_path / taken), session=session, progress=False, partition_by="state")
    for bad in ([], ["state", "state"], [1]):
        with pytest.raises(ConfigurationError, match="partition_by"):
            readers.to_parquet(url, str(tmp_path / "x"), session=session, progress=False, partition_by=bad)
    assert len(scripted.seen) == before and (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    with pytest.raises(ConfigurationError, match="'nope' is not among the columns"):
        readers.to_parquet(url, str(tmp_path / "y"), session=session, progress=False, partition_by="nope")
    with pytest.raises(ConfigurationError, match="'labels' holds"):
        readers.to_parquet(url, str(tmp_path / "z"), session=session, progress=False, partition_by="labels")
    assert sorted(_beside(tmp_path)) == ["file.parquet", "issues", "notes"]


def test_open_partition_files_are_capped(tmp_path, monkeypatch):
    """More partitions than MAX_OPEN_PARTITIONS, rows interleaved: never more files open than the cap (the least
    recently written is closed; a partition seen again gets another part file), and every row is read back."""
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 6)
    monkeypatch.setattr(partitions, "MAX_OPEN_PARTITIONS", 2)
    opened, high = [], [0]
    real = pa.parquet.ParquetWriter

    class Counting(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)
            high[0] = max(high[0], sum(1 for w in opened if w.is_open))

    monkeypatch.setattr(pa.parquet, "ParquetWriter", Counting)
    chunks = [pa.table({"id": list(range(i * 6, i * 6 + 6)), "day": [f"2024-06-0{d}" for d in (1, 2, 3, 4, 1, 2)]})
              for i in range(4)]
    out = tmp_path / "by_day"
    assert parquet.write_chunks(iter(chunks), str(out), partition_by=["day"]) == 24
    assert high[0] <= 3  # two partition files plus the one part being read
    assert len(list((out / "day=2024-06-01").glob("*.parquet"))) > 1
    import pyarrow.dataset as ds

    table = ds.dataset(str(out), format="parquet", partitioning="hive").to_table().sort_by("id")
    assert table.column("id").to_pylist() == list(range(24))
    assert [str(d) for d in table.column("day").to_pylist()][:6] == [f"2024-06-0{d}" for d in (1, 2, 3, 4, 1, 2)]
    import pandas as pd  # no null partition: pandas' default read works too

    assert sorted(pd.read_parquet(str(out))["id"].tolist()) == list(range(24))
