"""Turning pages of JSON records into columns: envelopes, flattening, Arrow, dates.

Each page becomes columns as it arrives (pyarrow tables when installed, else
per-column Python lists); the column types are decided once over all pages, so
dtypes never depend on page boundaries.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

from ..core.errors import APIError, ConfigurationError
from .fetch import fast_enabled
from .page_fields import paging_objects

__all__ = ["ENVELOPES", "extract_records", "flatten_records", "frame_from_chunks"]

#: where records live in the common API envelopes (a top-level list works too)
ENVELOPES = ("data", "items", "results", "value", "records", "entries")


def extract_records(body: Any, record_path: str | Sequence[str] | None = None) -> list:
    """The list of records in a page body (``record_path`` or a common envelope).

    Also found without ``record_path``: OData v2's ``{"d": {"results": [...]}}`` (and v1's ``{"d": [...]}``),
    and the ``items`` of a body whose one value is a paging object (Spotify search: ``{"tracks": {"items":
    [...], "next": ...}}``); a body with several (``tracks`` and ``artists``) is a ConfigurationError naming
    the ``record_path`` to pass."""
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
    odata_v2 = body.get("d") if len(body) == 1 else None
    if isinstance(odata_v2, dict) and isinstance(odata_v2.get("results"), list):
        return odata_v2["results"]
    pages = paging_objects(body)
    if len(pages) == 1 and len(body) == 1:
        return pages[0][1]["items"]
    if len(pages) > 1:
        keys = [key for key, _ in pages]
        raise ConfigurationError(
            f"The answer holds {len(keys)} lists of records ({', '.join(repr(k) for k in keys)}: one per type "
            f"searched for); say which one to read, e.g. record_path={[keys[0], 'items']!r} (or search one type "
            "at a time).")
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


def frame_from_chunks(columns: _Columns, chunks: list, *, to: str, parse_dates: bool | Sequence[str]) -> Any:
    """The reader's result from its column chunks: a pandas frame (dates parsed), or an Arrow / polars table
    (straight from the chunks when no dates are parsed and they allow it)."""
    if to != "pandas" and not parse_dates:
        table = columns.to_arrow(chunks)
        if table is not None:
            return table if to == "arrow" else __import__("polars").from_arrow(table)
    frame = columns.to_pandas(chunks)
    if parse_dates:
        frame = _parse_dates(frame, parse_dates)
    if to == "pandas":
        return frame
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table if to == "arrow" else __import__("polars").from_arrow(table)


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
