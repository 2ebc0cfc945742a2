"""Several small pages to column chunks in one Arrow parse (issue 13: the per-page fixed costs).

A page of 100 records costs pyarrow's JSON reader about as much in set-up as in parsing, so a run
of consecutive pages fetched together is parsed at once: their bodies, one per line, make one
document of several rows (``newlines_in_values`` keeps pretty-printed pages whole), whose records
are flattened once and sliced back into one chunk per page. Each page keeps its own envelope and
record count, so paginators, ``max_rows`` and the progress bar see the same pages as before; the
chunks hold the same columns as :meth:`~nb_oauth2.frames.columns._Columns.convert_raw` would
make page by page, so the assembled frame is identical.

Whenever one parse cannot stand for the pages (a page that is not a JSON object or list, a page
without the records, columns whose types clash, a column no earlier page had (:class:`PageRuns`),
no column order decided by page 1 yet, a ``record_path`` of several keys) it returns None and the
caller converts page by page as before.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .columns import _arrow_columns, _Columns, _meta_values, _records_key

__all__ = ["PageRuns", "convert_raw_pages", "batch_size", "BATCH_BYTES", "MAX_BATCH"]

#: a run of pages parsed at once holds about this many bytes (pages of 1,000 records go alone)
BATCH_BYTES = 256 * 1024
#: and at most this many pages
MAX_BATCH = 16


def batch_size(page_bytes: int) -> int:
    """How many pages of ``page_bytes`` to parse at once."""
    return max(1, min(MAX_BATCH, BATCH_BYTES // max(1, page_bytes)))


class PageRuns:
    """One read's runs of pages: the columns its chunks have shown so far, and the run parser.

    A frame's column order is the order in which columns first appear, page after page. One parse of
    a run would place a column that first appears mid-run inside its parent object (``owner.new``
    beside ``owner.id``), where page by page it comes last; so a run that shows a column no earlier
    chunk had is converted page by page, and only runs of known columns are parsed at once."""

    def __init__(self, columns: _Columns) -> None:
        self.columns = columns
        self.seen: dict[str, None] = {}

    def note(self, chunk: Any) -> None:
        """A chunk delivered: its columns are known from now on."""
        names = chunk[1] if isinstance(chunk, tuple) else chunk.column_names
        for name in names:
            if name not in self.seen:
                self.seen[name] = None

    def convert(self, raws: Sequence[bytes]) -> list[tuple[Any, dict, int]] | None:
        """:func:`convert_raw_pages` of ``raws`` when it shows no new column, else None."""
        return convert_raw_pages(self.columns, raws, known=self.seen)


def convert_raw_pages(columns: _Columns, raws: Sequence[bytes],
                      known: Mapping[str, Any] | None = None) -> list[tuple[Any, dict, int]] | None:
    """(chunk, envelope, record count) for each of ``raws``, as ``columns.convert_raw`` gives page by
    page, from one parse; None when one parse cannot stand for these pages (or, with ``known``, when
    they hold a column not in ``known``)."""
    pa, rp = columns.pa, columns.record_path
    if pa is None or len(raws) < 2 or columns.order is None:
        return None  # page 1 (converted alone) decides the column order
    if not (rp is None or isinstance(rp, str) or (isinstance(rp, list) and len(rp) == 1)):
        return None
    rp = rp[0] if isinstance(rp, list) else rp
    starts = {raw.lstrip()[:1] for raw in raws}
    if len(starts) != 1 or not starts <= {b"[", b"{"}:
        return None
    top_list = starts == {b"["}
    joined = b"\n".join(b'{"_":' + raw + b"}" for raw in raws) if top_list else b"\n".join(raws)
    try:
        table = columns._read(joined)
        key = "_" if top_list else _records_key(pa, table, rp)
        if key is None or table.num_rows != len(raws):
            return None
        lists = table.column(key).combine_chunks()
        if lists.null_count:  # a page without its records: page by page
            return None
        arr = lists.flatten()
        if len(arr) and not pa.types.is_struct(arr.type):
            return None
        sizes = lists.value_lengths().to_pylist()
        envelopes = table.drop([key]).to_pylist() if table.num_columns > 1 else [{} for _ in raws]
        cols: dict = {}
        if len(arr):
            _arrow_columns(pa, arr, "", 0, columns.sep, columns.max_level, cols)
        if known is not None and any(name not in known for name in cols):
            return None
        out = []
        start = 0
        for raw, envelope, n in zip(raws, envelopes, sizes):
            envelope = _as_sent(envelope, raw)
            page_cols = {name: col.slice(start, n) for name, col in cols.items()} if n else {}
            for name, value in _meta_values(envelope, columns.meta, columns.sep).items():
                page_cols[name] = pa.array([value] * n)
            chunk = pa.table(page_cols) if page_cols else pa.table({"_": pa.nulls(n)}).drop(["_"])
            out.append((chunk, envelope, n))
            start += n
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError,
            ValueError):
        return None
    return out


def _as_sent(envelope: dict, raw: bytes) -> dict:
    """``envelope`` without the null keys only other pages of the run had (one parse gives every page
    every key): a null key whose name is nowhere in this page's bytes was not sent."""
    return {key: _as_sent(value, raw) if isinstance(value, dict) else value for key, value in envelope.items()
            if value is not None or _sent(key, raw)}


def _sent(key: str, raw: bytes) -> bool:
    try:
        return b'"' + key.encode() + b'"' in raw
    except UnicodeEncodeError:  # pragma: no cover - keys come from JSON text
        return True
