"""Protected JSON API -> pandas DataFrame: every page, one frame.

:func:`read_json` follows the API's pagination (see :mod:`nb_oauth2.pagination`),
fetches pages through :class:`nb_oauth2.fetch.Fetcher` (retries, rate limits,
byte caps), turns each page into columns as it arrives and concatenates them.

Dtypes do not depend on page boundaries: each column's type is decided once,
over all pages. Integers with missing values become ``float64`` (NaN), as in
``pd.json_normalize``; nested objects become dotted columns (``sep``,
``max_level``); lists stay Python lists in object columns. With pyarrow
installed pages become Arrow tables (converted once at the end), otherwise
per-column Python lists; set ``NB_OAUTH2_NO_FAST=1`` to ignore orjson/pyarrow.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import requests
from requests.adapters import HTTPAdapter

from .errors import APIError, ConfigurationError, PaginationError, ResultTooLarge, UnsafeNextLink
from .fetch import Fetcher, fast_enabled
from .pagination import PageInfo, Paginator, follow, make_paginator
from .redact import redact_url

__all__ = ["Page", "read_json", "iter_pages", "iter_records", "to_parquet", "extract_records", "flatten_records"]

ENVELOPES = ("data", "items", "results", "value", "records", "entries")


@dataclass
class Page:
    """One page: final URL, HTTP status, its records, parsed body and raw bytes."""

    url: str
    status: int
    records: list
    body: Any = field(repr=False, default=None)
    raw: bytes = field(repr=False, default=b"")
    headers: Mapping[str, str] = field(repr=False, default_factory=dict)


# -- records and columns ------------------------------------------------------


def extract_records(body: Any, record_path: str | Sequence[str] | None = None) -> list:
    """The list of records in a page body (``record_path`` or a common envelope)."""
    if record_path is not None:
        value = body
        for key in [record_path] if isinstance(record_path, str) else record_path:
            if not isinstance(value, dict) or key not in value:
                keys = sorted(value)[:10] if isinstance(value, dict) else type(value).__name__
                raise APIError(f"record_path {record_path!r} is not in the answer (found {keys}).")
            value = value[key]
        return value if isinstance(value, list) else ([] if value is None else [value])
    if isinstance(body, list):
        return body
    if not isinstance(body, dict):
        return [] if body is None else [{"value": body}]
    for key in ENVELOPES:
        if isinstance(body.get(key), list):
            return body[key]
    lists = [v for v in body.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
    if len(lists) == 1:
        return lists[0]
    if isinstance(body.get("data"), dict):
        return [body["data"]]
    return [body]


def _meta_values(body: Any, meta: Sequence[str | Sequence[str]] | None, sep: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in meta or ():
        path = [spec] if isinstance(spec, str) else list(spec)
        value = body
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        out[sep.join(path)] = value
    return out


def flatten_records(records: list, *, sep: str = ".", max_level: int | None = None) -> dict[str, list]:
    """Columns (name -> list) from records, nested dicts flattened like json_normalize.

    Column by column (one list comprehension per key), not record by record: several times
    faster in pure Python. A null where other records hold an object adds no column of its own.
    """
    cols: dict[str, list] = {}
    dicts = [r if type(r) is dict else _EMPTY for r in records]
    if any(d is _EMPTY for d in dicts):
        cols["value"] = [None if type(r) is dict else r for r in records]
    _flatten_into(dicts, "", 0, cols, sep, max_level)
    return cols


_EMPTY: dict = {}


def _flatten_into(records: list, prefix: str, level: int, cols: dict, sep: str, max_level: int | None) -> None:
    union: dict = {}
    for rec in records:
        if len(rec) != len(union) or rec.keys() != union.keys():
            union.update(rec)
    deeper = max_level is None or level < max_level
    for key in union:
        values = [rec.get(key) for rec in records]
        if deeper and dict in set(map(type, values)):
            scalars = [None if type(v) is dict else v for v in values]
            if any(v is not None for v in scalars):
                cols[prefix + key] = scalars
            _flatten_into([v if type(v) is dict else _EMPTY for v in values], prefix + key + sep, level + 1,
                          cols, sep, max_level)
        else:
            cols[prefix + key] = values


def _arrow():
    if not fast_enabled():
        return None
    try:
        import pyarrow
    except ImportError:
        return None
    return pyarrow


def _arrow_columns(pa, arr, prefix: str, level: int, sep: str, max_level: int | None, out: dict) -> None:
    for child, fld in zip(arr.flatten(), arr.type):
        name = prefix + fld.name
        if pa.types.is_struct(fld.type) and (max_level is None or level < max_level):
            _arrow_columns(pa, child, name + sep, level + 1, sep, max_level, out)
        else:
            out[name] = child


class _Columns:
    """Per-page column chunks, assembled once at the end (Arrow when possible)."""

    def __init__(self, *, sep: str, max_level: int | None, meta, use_arrow: bool = True,
                 record_path: Any = None) -> None:
        self.sep, self.max_level, self.meta = sep, max_level, meta
        self.pa = _arrow() if use_arrow else None
        self.record_path = record_path
        self.order: list[str] | None = None
        self._forced: dict = {}  # fields pyarrow.json would read as timestamps: forced to string
        self._lock = threading.Lock()

    def convert_raw(self, raw: bytes) -> tuple[Any, dict, int] | None:
        """(chunk, envelope, n) parsed straight from bytes by pyarrow.json; None to use the dict path.

        No Python object per value is made (and the GIL is released), which is what makes this
        path fast. Strings pyarrow would turn into timestamps are re-read as strings.
        """
        pa, rp = self.pa, self.record_path
        if pa is None or not (rp is None or isinstance(rp, str) or (isinstance(rp, list) and len(rp) == 1)):
            return None
        rp = rp[0] if isinstance(rp, list) else rp
        top_list = raw.lstrip()[:1] == b"["
        wrapped = b'{"_":' + raw + b"}" if top_list else raw
        try:
            table = self._read(wrapped)
            key = "_" if top_list else _records_key(pa, table, rp)
            if key is None or table.num_rows != 1:
                return None
            arr = table.column(key).combine_chunks().flatten()
            if not pa.types.is_struct(arr.type) and len(arr):
                return None
            envelope = table.drop([key]).to_pylist()[0] if table.num_columns > 1 else {}
            cols: dict = {}
            if len(arr) and pa.types.is_struct(arr.type):
                _arrow_columns(pa, arr, "", 0, self.sep, self.max_level, cols)
            for name, value in _meta_values(envelope, self.meta, self.sep).items():
                cols[name] = pa.array([value] * len(arr))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError,
                ValueError):
            return None
        chunk = pa.table(cols) if cols else pa.table({"_": pa.nulls(len(arr))}).drop(["_"])
        return chunk, envelope, len(arr)

    def _read(self, data: bytes):
        import io

        import pyarrow.json as pajson

        read = pajson.ReadOptions(block_size=max(1 << 20, len(data) + 64), use_threads=False)
        for _ in range(8):
            with self._lock:
                forced = _forced_schema(self.pa, self._forced)
            parse = pajson.ParseOptions(explicit_schema=forced, unexpected_field_behavior="infer",
                                        newlines_in_values=True)
            table = pajson.read_json(io.BytesIO(data), read_options=read, parse_options=parse)
            with self._lock:
                if self.order is None and forced is None:
                    self.order = _flat_names(self.pa, table.schema, self.sep, self.max_level)
                if not _find_timestamps(self.pa, table.schema, self._forced):
                    return table
        raise self.pa.ArrowInvalid("timestamp fields kept appearing")

    def convert(self, records: list, body: Any) -> Any:
        """Columnar chunk of one page: a pyarrow Table, or (n, {name: list})."""
        metas = _meta_values(body, self.meta, self.sep)
        pa = self.pa
        if pa is not None and records:
            try:
                arr = pa.array(records)
                if pa.types.is_struct(arr.type):
                    cols: dict = {}
                    _arrow_columns(pa, arr, "", 0, self.sep, self.max_level, cols)
                    for name, value in metas.items():
                        cols[name] = pa.array([value] * len(records))
                    return pa.table(cols) if cols else pa.table({"_": pa.nulls(len(records))}).drop(["_"])
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError):
                pass
        cols = flatten_records(records, sep=self.sep, max_level=self.max_level)
        for name, value in metas.items():
            cols[name] = [value] * len(records)
        return (len(records), cols)

    def _python(self, chunk) -> tuple[int, dict[str, list]]:
        if isinstance(chunk, tuple):
            return chunk
        return chunk.num_rows, {name: chunk.column(name).to_pylist() for name in chunk.column_names}

    def to_arrow(self, chunks: list):
        pa = self.pa
        if pa is None or not chunks or any(isinstance(c, tuple) for c in chunks):
            return None
        try:
            table = pa.concat_tables(chunks, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return None
        names = self._ordered(table.column_names)
        return table.select([n for n in names if not (n in self._parents(names) and
                                                      table.column(n).null_count == table.num_rows)])

    def _parents(self, names: list[str]) -> set[str]:
        """Names that also have dotted children: an all-null one is dropped (page boundaries must not
        decide whether a missing object shows up as a column of its own)."""
        return {n for n in names for m in names if m.startswith(n + self.sep)}

    def _ordered(self, names: list[str]) -> list[str]:
        if not self.order:
            return names
        present = set(names)
        first = [n for n in self.order if n in present]
        known = set(first)
        return first + [n for n in names if n not in known]

    def to_pandas(self, chunks: list):
        import pandas as pd

        table = self.to_arrow(chunks)
        if table is not None:
            pa = self.pa
            listish = [f.name for f in table.schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)]
            frame = table.drop(listish).to_pandas() if listish else table.to_pandas()
            for name in listish:
                frame[name] = pd.Series(_pylists(pa, table.column(name)), dtype=object)
            return frame[table.column_names] if listish else frame
        columns: dict[str, list] = {}
        total = 0
        for chunk in chunks:
            n, cols = self._python(chunk)
            for name, values in cols.items():
                col = columns.get(name)
                if col is None:
                    col = columns[name] = [None] * total
                col.extend(values)
            total += n
            for col in columns.values():
                if len(col) < total:
                    col.extend([None] * (total - len(col)))
        chunks.clear()
        parents = self._parents(list(columns))
        for name in parents:
            if all(v is None for v in columns[name]):
                del columns[name]
        return pd.DataFrame({name: pd.Series(columns[name], dtype=None if columns[name] else object)
                             for name in self._ordered(list(columns))}, index=pd.RangeIndex(total))


def _pylists(pa, column) -> list:
    """A list column as Python lists (None for nulls), sliced from one flat conversion."""
    out: list = []
    for chunk in column.chunks:
        if pa.types.is_large_list(chunk.type):
            chunk = chunk.cast(pa.list_(chunk.type.value_type))
        offsets = chunk.offsets.to_pylist()
        values = chunk.values.to_pylist()
        valid = chunk.is_valid().to_pylist() if chunk.null_count else None
        lists = [values[a:b] for a, b in zip(offsets, offsets[1:])]
        if valid is not None:
            lists = [v if ok else None for v, ok in zip(lists, valid)]
        out.extend(lists)
    return out


def _records_key(pa, table, record_path: str | None) -> str | None:
    names = table.column_names
    listy = [n for n in names if pa.types.is_list(table.schema.field(n).type)]
    if record_path is not None:
        return record_path if record_path in listy else None
    for key in ENVELOPES:
        if key in listy:
            return key
    structs = [n for n in listy if pa.types.is_struct(table.schema.field(n).type.value_type)]
    return structs[0] if len(structs) == 1 else None


def _find_timestamps(pa, schema_or_type, tree: dict) -> bool:
    """Add to ``tree`` every timestamp field (nested in structs/lists); True if any was new."""
    new = False
    fields = schema_or_type if isinstance(schema_or_type, pa.Schema) else schema_or_type
    for fld in fields:
        typ = fld.type
        kind = "list" if pa.types.is_list(typ) else None
        inner = typ.value_type if kind else typ
        if pa.types.is_timestamp(inner):
            if fld.name not in tree:
                tree[fld.name] = (kind, "string")
                new = True
        elif pa.types.is_struct(inner):
            sub = tree.setdefault(fld.name, (kind, {}))[1]
            if isinstance(sub, dict):
                new = _find_timestamps(pa, inner, sub) or new
            if not sub:
                del tree[fld.name]
    return new


def _forced_schema(pa, tree: dict):
    def typ(node):
        kind, sub = node
        inner = pa.string() if sub == "string" else pa.struct([pa.field(k, typ(v)) for k, v in sub.items()])
        return pa.list_(inner) if kind == "list" else inner

    return pa.schema([pa.field(k, typ(v)) for k, v in tree.items()]) if tree else None


def _flat_names(pa, schema, sep: str, max_level: int | None) -> list[str]:
    out: list[str] = []

    def walk(fields, prefix: str, level: int) -> None:
        for fld in fields:
            if pa.types.is_struct(fld.type) and (max_level is None or level < max_level):
                walk(fld.type, prefix + fld.name + sep, level + 1)
            else:
                out.append(prefix + fld.name)

    for fld in schema:
        if pa.types.is_list(fld.type) and pa.types.is_struct(fld.type.value_type):
            walk(fld.type.value_type, "", 0)
    return out


def _parse_dates(frame, parse_dates: bool | Sequence[str]):
    import pandas as pd

    if parse_dates is True:
        names = [c for c in frame.columns if _looks_like_dates(frame[c])]
    else:
        names = [c for c in parse_dates if c in frame.columns]
    for name in names:
        col = frame[name]
        try:
            if pd.api.types.is_numeric_dtype(col):
                frame[name] = pd.to_datetime(col, unit="s", utc=True).astype("datetime64[ns, UTC]")
            else:
                frame[name] = pd.to_datetime(col, utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
        except (ValueError, TypeError, OverflowError):
            if parse_dates is not True:
                raise ConfigurationError(f"Column {name!r} does not hold ISO 8601 dates or epoch seconds.") from None
    return frame


def _looks_like_dates(col) -> bool:
    import re

    if col.dtype.kind not in "OT" and str(col.dtype) != "str":
        return False
    first = col.dropna().head(1)
    return bool(len(first)) and isinstance(first.iloc[0], str) and bool(
        re.match(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?", first.iloc[0]))


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while pages are parsed: millions of fresh dicts otherwise trigger
    repeated full collections (a third of the parse time). Reference counting still frees
    every page; the GC is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- the page driver ------------------------------------------------------------


def _session(session: Any) -> requests.Session:
    if isinstance(session, str):
        from .registry import resolve_session

        return resolve_session(session)
    if not hasattr(session, "get"):
        raise ConfigurationError("session= must be a requests.Session (e.g. from nb_oauth2.login) or a profile name.")
    return session


def _ensure_pool(session: requests.Session, url: str, concurrency: int) -> None:
    try:
        adapter = session.get_adapter(url)
    except Exception:  # no adapter for this scheme: the GET will say so
        return
    if isinstance(adapter, HTTPAdapter) and getattr(adapter, "_pool_maxsize", 10) < concurrency:
        parts = requests.utils.urlparse(url)
        session.mount(f"{parts.scheme}://{parts.netloc}/",
                      HTTPAdapter(pool_connections=1, pool_maxsize=concurrency, max_retries=adapter.max_retries))


class _Progress:
    def __init__(self, enabled: bool, url: str) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(desc=redact_url(url)[:60], unit="page", leave=True)
        self.rows = 0

    def total(self, pages: int) -> None:
        if self.bar is not None:
            self.bar.total = pages
            self.bar.refresh()

    def page(self, rows: int) -> None:
        self.rows += rows
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(rows=self.rows, refresh=False)

    def wait(self, seconds: float, reason: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"rows={self.rows}, {reason}: waiting {seconds:.1f}s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _pages(url, *, session, params, record_path, paginate, max_pages, max_page_bytes, progress, concurrency,
           timeout, retries, max_wait, convert: Callable[[list, Any], Any] | None, fetcher_options=None):
    """Shared set-up for every public reader; yields (PageInfo, records or converted chunk, Response)."""
    sess = _session(session)
    full = requests.Request("GET", url, params=params).prepare().url
    if not full or not full.lower().startswith(("http://", "https://")):
        raise ConfigurationError(f"read_json needs an http(s) URL, not {redact_url(str(url))!r}.")
    concurrency = max(1, int(concurrency))
    if concurrency > 1:
        _ensure_pool(sess, full, concurrency)
    bar = _Progress(progress, full)
    fetcher = Fetcher(sess, timeout=timeout, retries=retries, max_wait=max_wait, max_bytes=max_page_bytes,
                      on_wait=bar.wait, **(fetcher_options or {}))

    convert_raw = getattr(convert, "__self__", None)
    convert_raw = convert_raw.convert_raw if isinstance(convert_raw, _Columns) and convert_raw.pa else None

    def work(page_url: str):
        resp = fetcher.get(page_url, parse=convert_raw is None)
        if convert_raw is not None:
            done = convert_raw(resp.raw)
            if done is not None:
                chunk, envelope, n = done
                info = PageInfo(url=resp.url, status=resp.status, headers=resp.headers, body=envelope, n_records=n)
                return info, chunk, n
            fetcher.parse(resp)
        records = extract_records(resp.data, record_path)
        info = PageInfo(url=resp.url, status=resp.status, headers=resp.headers, body=resp.data,
                        n_records=len(records))
        return info, (convert(records, resp.data) if convert else (records, resp)), len(records)

    def work2(page_url: str):
        info, payload, n = work(page_url)
        return info, (payload, n)

    try:
        for info, (payload, n) in follow(full, work2, paginator=make_paginator(paginate), concurrency=concurrency,
                                         max_pages=max_pages, on_total=bar.total):
            bar.page(n)
            yield info, payload, n
    finally:
        bar.close()


_COMMON = dict(params=None, record_path=None, paginate="auto", max_pages=None, max_page_bytes=50_000_000,
               progress=True, concurrency=4, timeout=(5, 30), retries=3, max_wait=60)


def _collect(gen, *, max_rows: int | None, partial: bool) -> Iterator[tuple[Any, int]]:
    """Yield (payload, rows) enforcing max_rows; with partial=True stop with a warning instead of raising."""
    rows = 0
    try:
        for _info, payload, n in gen:
            if max_rows is not None and rows + n > max_rows:
                if not partial:
                    raise ResultTooLarge(f"The result passed max_rows={max_rows:,}; narrow the query (filters, "
                                         "date range) or raise max_rows=, or pass partial=True to keep the first "
                                         f"{max_rows:,} rows.")
                warnings.warn(f"Stopped at max_rows={max_rows:,}; the result is partial.", stacklevel=4)
                yield payload, max_rows - rows
                return
            rows += n
            yield payload, n
    except (PaginationError, ResultTooLarge) as exc:
        if not partial or isinstance(exc, UnsafeNextLink) or rows == 0:
            raise
        warnings.warn(f"Returning the {rows:,} rows read before: {exc.message}", stacklevel=4)
    finally:
        gen.close()


def iter_pages(url: str, *, session: Any, **options: Any) -> Iterator[Page]:
    """Every page of ``url`` in order (options as :func:`read_json`; no concurrency)."""
    opts = {**_COMMON, "progress": False, **options, "concurrency": 1}
    max_rows, partial = opts.pop("max_rows", None), opts.pop("partial", False)
    for name in ("meta", "sep", "max_level", "parse_dates", "to"):
        opts.pop(name, None)
    gen = _pages(url, session=session, convert=None, **opts)
    for (records, resp), n in _collect(gen, max_rows=max_rows, partial=partial):
        yield Page(url=resp.url, status=resp.status, records=records[:n], body=resp.data, raw=resp.raw,
                   headers=resp.headers)


def iter_records(url: str, *, session: Any, **options: Any) -> Iterator[dict]:
    """Every record of every page of ``url``, as parsed JSON objects."""
    for page in iter_pages(url, session=session, **options):
        yield from page.records


def _chunks(url, *, session, sep, max_level, meta, max_rows, partial, use_arrow=True, **opts):
    builder = _Columns(sep=sep, max_level=max_level, meta=meta, use_arrow=use_arrow,
                       record_path=opts.get("record_path"))
    gen = _pages(url, session=session, convert=builder.convert, **{**_COMMON, **opts})
    for chunk, n in _collect(gen, max_rows=max_rows, partial=partial):
        if isinstance(chunk, tuple) and n < chunk[0]:
            chunk = (n, {k: v[:n] for k, v in chunk[1].items()})
        elif not isinstance(chunk, tuple) and n < chunk.num_rows:
            chunk = chunk.slice(0, n)
        yield builder, chunk


def read_json(url: str, *, session: Any, params: Mapping[str, Any] | None = None,
              record_path: str | Sequence[str] | None = None, meta: Sequence[str | Sequence[str]] | None = None,
              sep: str = ".", max_level: int | None = None, paginate: str | Paginator = "auto",
              max_pages: int | None = None, max_rows: int | None = None, max_page_bytes: int | None = 50_000_000,
              progress: bool = True, concurrency: int = 4, parse_dates: bool | Sequence[str] = False,
              partial: bool = False, timeout: float | tuple[float, float] = (5, 30), retries: int = 3,
              max_wait: float = 60, to: str = "pandas") -> Any:
    """Read every page of a protected JSON API into one DataFrame (or polars / Arrow table)."""
    if to not in ("pandas", "polars", "arrow"):
        raise ConfigurationError(f"to={to!r} must be 'pandas', 'polars' or 'arrow'.")
    if to in ("polars", "arrow"):
        _require(to)
    builder = None
    chunks: list = []
    with _gc_paused():
        for builder, chunk in _chunks(url, session=session, sep=sep, max_level=max_level, meta=meta, max_rows=max_rows,
                                      partial=partial, params=params, record_path=record_path, paginate=paginate,
                                      max_pages=max_pages, max_page_bytes=max_page_bytes, progress=progress,
                                      concurrency=concurrency, timeout=timeout, retries=retries,
                                      max_wait=max_wait):
            chunks.append(chunk)
        builder = builder or _Columns(sep=sep, max_level=max_level, meta=meta)
        if to != "pandas" and not parse_dates:
            table = builder.to_arrow(chunks)
            if table is not None:
                return table if to == "arrow" else __import__("polars").from_arrow(table)
        frame = builder.to_pandas(chunks)
    if parse_dates:
        frame = _parse_dates(frame, parse_dates)
    if to == "pandas":
        return frame
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if to == "arrow":
        return table
    import polars as pl

    return pl.from_arrow(table)


def _require(to: str) -> None:
    module = "pyarrow" if to == "arrow" else "polars"
    try:
        __import__(module)
        if to == "polars":
            __import__("pyarrow")
    except ImportError:
        raise ConfigurationError(f"to={to!r} needs {module} (and pyarrow): pip install {module} pyarrow") from None


def to_parquet(url: str, path: str, *, session: Any, **options: Any) -> int:
    """Stream every page into a Parquet file, batch by batch; returns the number of rows written."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigurationError("to_parquet needs pyarrow: pip install pyarrow") from None
    opts = {"sep": ".", "max_level": None, "meta": None, "max_rows": None, "partial": False, **options}
    opts.pop("to", None), opts.pop("parse_dates", None)
    writer = None
    rows = 0
    try:
        for builder, chunk in _chunks(url, session=session, **opts):
            table = chunk if not isinstance(chunk, tuple) else pa.table(chunk[1]) if chunk[1] else None
            if table is None or table.num_rows == 0:
                continue
            if writer is None:
                schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                                    for f in table.schema])
                writer = pq.ParquetWriter(path, schema)
            writer.write_table(_conform(pa, table, writer.schema))
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


def _conform(pa, table, schema):
    extra = [name for name in table.column_names if schema.get_field_index(name) < 0]
    if extra:
        raise APIError(f"Columns {extra[:5]} appeared after the first page; Parquet needs one schema. Use "
                       "read_json() (which unifies columns) and DataFrame.to_parquet instead.")
    cols = [table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
            for f in schema]
    try:
        return pa.table(cols, schema=schema) if not extra else table
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(cols, schema)], schema=schema)
