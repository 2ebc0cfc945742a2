"""Column chunks -> one Parquet file whose schema survives drift: the writer behind
:func:`nb_oauth2.frames.readers.to_parquet`.

No HTTP here: :func:`write_chunks` takes the page-by-page column chunks the readers produce
(Arrow tables, or ``(rows, {column: values})`` without the Arrow fast path).

Real APIs drift: an object null on page 1 and filled later (new dotted columns), a list that
first appears on page 2, an int on one page and a float on the next. The writer keeps a running
schema and widens it: a new column joins it, a null-typed column takes the first real type, int
and float become float, lists and structs merge their items' fields. Values that cannot share a
type (a string on one page, a number on another) are kept as strings, with a warning naming the
column. Batches are written while the schema holds; a batch that widens it starts a new part file.
At the end, one part with the final schema is renamed into place; several are rewritten, one part
at a time, into one file with the final schema. Memory: one page's chunk during the pull, and at
most ``ROW_GROUP_ROWS`` rows (or one page, if larger) buffered per row group; never the whole
result. Disk: a drifting pull is written twice (parts, then the file).

With ``partition_by`` the final pass splits the parts' row groups, conformed to the final schema, into a
hive-partitioned folder instead of one file (:mod:`nb_oauth2.frames.partitions`: one schema in every
file, the same widening, since the schema is decided here). The pull itself is the same; the final pass
holds one part row group, its split copy and at most ``ROW_GROUP_ROWS`` rows buffered across all
partitions, with at most ``MAX_OPEN_PARTITIONS`` files open. Disk: always written twice.

With a ``journal`` (``resume=True``, :class:`nb_oauth2.frames.resume.Journal`) the parts folder sits at a
fixed place beside the target and each chunk comes with its mark (the next URL after its page). A
checkpoint closes the open part and saves the parts, rows and the last page's mark: every
``ROW_GROUP_ROWS`` rows, every ``CHECKPOINT_SECONDS``, when the pull fails or is interrupted, and before
the final rewrite. A resumed write starts from the saved parts and the last part's schema; after a
process death at most the pages since the last checkpoint are fetched again.

Column names and order are :func:`~nb_oauth2.frames.readers.read_json`'s: an all-null parent
column whose object turned up later as dotted columns is dropped, as read_json drops it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from typing import Any, Callable, Iterable, Iterator

from ..core.errors import ConfigurationError
from ..core.warn import warn_user
from .partitions import PartitionedSink, install

__all__ = ["write_chunks", "ROW_GROUP_ROWS", "CHECKPOINT_SECONDS"]

#: rows buffered before a row group is written (bounds the writer's memory in rows)
ROW_GROUP_ROWS = 65_536
#: with a journal (``resume=True``): seconds between checkpoints, whatever the rows
CHECKPOINT_SECONDS = 30.0


def _pyarrow() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or ConfigurationError when pyarrow is missing."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigurationError("to_parquet needs pyarrow: pip install pyarrow") from None
    return pa, pq


def _widen(pa, old, new) -> tuple[Any, bool]:
    """(the type holding both ``old`` and ``new``, whether they are mixed scalars kept as strings)."""
    if old == new or pa.types.is_null(new):
        return old, False
    if pa.types.is_null(old):
        return new, False
    try:
        merged = pa.unify_schemas([pa.schema([("x", old)]), pa.schema([("x", new)])],
                                  promote_options="permissive").field("x").type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.string(), True
    if pa.types.is_large_string(merged) and not (pa.types.is_large_string(old) or pa.types.is_large_string(new)):
        merged = pa.string()
    return merged, False


def _as_strings(pa, column):
    """A column as strings: Arrow's cast, or JSON text for values Arrow cannot cast (lists, objects)."""
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array([v if v is None or isinstance(v, str) else json.dumps(v, default=str)
                         for v in column.to_pylist()], pa.string())


def _cast(pa, column, target):
    if column.type == target:
        return column
    if pa.types.is_string(target) and not pa.types.is_null(column.type):
        return _as_strings(pa, column)
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array(column.to_pylist(), type=target)


class _Writer:
    """Chunks in, one Parquet file out; see the module docstring."""

    def __init__(self, pa, pq, path: str, sep: str, journal: Any = None) -> None:
        self.pa, self.pq, self.path, self.sep = pa, pq, path, sep
        self.types: dict[str, Any] = {}  # the running schema, in order of first appearance
        self.mixed: set[str] = set()  # columns kept as strings
        self.filled: set[str] = set()  # columns with at least one non-null value
        self.rows = 0
        self.parts: list[str] = []  # closed part files
        self.folder: str | None = None
        self.writer = None
        self.writing: str | None = None  # the open part (renamed to its final name when closed)
        self.buffer: list = []
        self.buffered = 0
        self.journal, self.pages, self.mark = journal, 0, None
        self.checkpointed = time.monotonic()
        if journal is not None:
            self._resume(journal.start())

    def _resume(self, state: dict) -> None:
        """Start from a journal's saved parts: their rows, and the last part's schema as the running one."""
        self.folder = self.journal.folder
        self.parts = [os.path.join(self.folder, name) for name in state.get("parts", [])]
        if self.parts:
            self.types = {f.name: f.type for f in self.pq.read_schema(self.parts[-1])}
        self.rows, self.pages, self.mark = state.get("rows", 0), state.get("pages", 0), state.get("next_url")
        self.filled, self.mixed = set(state.get("filled", [])), set(state.get("mixed", []))

    def _table(self, chunk):
        """A chunk as an Arrow table (a column Arrow cannot type as one is kept as strings)."""
        pa = self.pa
        if not isinstance(chunk, tuple):
            return chunk
        n, cols = chunk
        arrays = {}
        for name, values in cols.items():
            try:
                arrays[name] = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
                arrays[name] = pa.array([v if v is None or isinstance(v, str) else json.dumps(v, default=str)
                                         for v in values], pa.string())
                self._mixed(name)
        return pa.table(arrays) if arrays else None

    def _mixed(self, name: str) -> None:
        if name not in self.mixed:
            self.mixed.add(name)
            warn_user(f"to_parquet: column {name!r} holds values of different types across pages; "
                      "they are kept as strings.")

    def add(self, chunk, mark: str | None = None) -> None:
        """One page's chunk; ``mark``: the next URL after that page (journal only)."""
        table = self._table(chunk)
        if table is None or table.num_rows == 0:
            self.pages, self.mark = self.pages + 1, mark
            return
        widened = False
        for field in table.schema:
            old = self.types.get(field.name)
            if old is None:
                self.types[field.name] = field.type
                widened = widened or self.writer is not None
            else:
                merged, mixed = _widen(self.pa, old, field.type)
                if mixed:
                    self._mixed(field.name)
                if merged != old:
                    self.types[field.name] = merged
                    widened = True
            if field.name not in self.filled and table.column(field.name).null_count < table.num_rows:
                self.filled.add(field.name)
        if widened:
            self._close_part()
        if self.writer is None:
            self._open_part()
        self.buffer.append(self._conform(table, self.writer.schema))
        self.buffered += table.num_rows
        self.rows, self.pages, self.mark = self.rows + table.num_rows, self.pages + 1, mark
        if self.journal is not None and (self.buffered >= ROW_GROUP_ROWS or
                                         time.monotonic() - self.checkpointed >= CHECKPOINT_SECONDS):
            self.checkpoint()
        elif self.buffered >= ROW_GROUP_ROWS:
            self._flush()

    def checkpoint(self, **facts: Any) -> None:
        """Close the open part and save what the parts hold (journal only)."""
        self._close_part()
        self.journal.commit(parts=[os.path.basename(p) for p in self.parts], rows=self.rows, pages=self.pages,
                            next_url=self.mark, filled=sorted(self.filled), mixed=sorted(self.mixed), **facts)
        self.checkpointed = time.monotonic()

    def _schema(self, types: dict[str, Any]):
        return self.pa.schema([(name, typ) for name, typ in types.items()])

    def _open_part(self) -> None:
        if self.folder is None:
            parent = os.path.dirname(os.path.abspath(self.path))
            self.folder = tempfile.mkdtemp(prefix="." + os.path.basename(self.path) + ".parts-", dir=parent)
        self.writing = os.path.join(self.folder, f"part-{len(self.parts):05d}.parquet")
        self.writer = self.pq.ParquetWriter(self.writing + ".tmp", self._schema(self.types))

    def _buffer(self, table) -> None:
        self.buffer.append(table)
        self.buffered += table.num_rows
        if self.buffered >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.buffer:
            self.writer.write_table(self.pa.concat_tables(self.buffer))
            self.buffer, self.buffered = [], 0

    def _close_part(self) -> None:
        if self.writer is not None:
            self._flush()
            self.writer.close()
            self.writer = None
            if self.writing is not None:
                os.replace(self.writing + ".tmp", self.writing)
                self.parts.append(self.writing)
                self.writing = None

    def _conform(self, table, schema):
        pa = self.pa
        names = set(table.column_names)
        cols = [_cast(pa, table.column(f.name), f.type) if f.name in names else pa.nulls(table.num_rows, f.type)
                for f in schema]
        return pa.Table.from_arrays(cols, schema=schema)

    def finish(self, order, partition_by: list[str] | None = None) -> int:
        """Close the parts and put one file with the final schema at ``path`` (with ``partition_by``: a
        hive-partitioned folder of files with that schema, :mod:`nb_oauth2.frames.partitions`)."""
        pa, pq = self.pa, self.pq
        self._close_part()
        if not self.parts:
            return 0
        names = order(list(self.types))
        parents = {n for n in names for m in names if m.startswith(n + self.sep)}
        final = pa.schema([(n, pa.string() if pa.types.is_null(self.types[n]) else self.types[n])
                           for n in names if n in self.filled or n not in parents])
        if partition_by:
            return self._finish_partitioned(final, partition_by)
        if len(self.parts) == 1 and pq.read_schema(self.parts[0]).equals(final):
            os.replace(self.parts[0], self.path)
            return self.rows
        staged = os.path.join(self.folder, "final.parquet")
        self.writer = pq.ParquetWriter(staged, final)
        for table in self._rewritten(final):
            self._buffer(table)
        self._close_part()
        os.replace(staged, self.path)
        return self.rows

    def _rewritten(self, final) -> Iterator[Any]:
        """Every row group of the parts, conformed to ``final``; a part is deleted once read (a journal's
        parts stay until the result is in place)."""
        for part in self.parts:
            source = self.pq.ParquetFile(part)
            for group in range(source.num_row_groups):
                yield self._conform(source.read_row_group(group), final)
            if self.journal is None:
                os.remove(part)

    def _finish_partitioned(self, final, partition_by: list[str]) -> int:
        staged = os.path.join(self.folder, "dataset")
        shutil.rmtree(staged, ignore_errors=True)
        sink = PartitionedSink(self.pa, self.pq, staged, final, partition_by, ROW_GROUP_ROWS)
        try:
            for table in self._rewritten(final):
                sink.write(table)
            sink.close()
        except BaseException:
            sink.abort()
            raise
        install(staged, self.path)
        return self.rows

    def cleanup(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.folder is not None and self.journal is None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def save_on_failure(self) -> None:
        """The pull stopped: keep every page added so far for the resume (best effort: on a failure here the
        last checkpoint stands, and the half-written part is deleted when the pull resumes)."""
        try:
            if self.pages:
                self.checkpoint()
            else:
                self.journal.clear()
        except Exception:
            pass


def write_chunks(chunks: Iterable[Any], path: str, *, sep: str = ".",
                 order: Callable[[list[str]], list[str]] | None = None, journal: Any = None,
                 partition_by: list[str] | None = None) -> int:
    """Write every chunk to the Parquet file ``path``, widening the schema as columns drift; returns the
    number of rows written. ``order(names)`` gives the final column order (default: first appearance);
    ``sep`` joins nested names (an all-null ``a`` beside ``a.b`` is dropped).

    With a ``journal`` (:class:`nb_oauth2.frames.resume.Journal`) ``chunks`` yields ``(chunk, mark)``: the
    write goes on from the journal's saved parts, checkpoints as it goes and on failure, and the journal
    is cleared once the file is in place.

    With ``partition_by`` (column names) ``path`` becomes a hive-partitioned dataset folder
    (``path/col=value/part-NNNNN.parquet``, :mod:`nb_oauth2.frames.partitions`), every file with the final
    schema minus the partition columns; the parts are split into it when the pull ends."""
    pa, pq = _pyarrow()
    writer = _Writer(pa, pq, path, sep, journal)
    atomic = journal.atomic if journal is not None else nullcontext
    try:
        for item in chunks:
            with atomic():
                writer.add(*item) if journal is not None else writer.add(item)
        if journal is not None:
            with atomic():
                writer.checkpoint(complete=True)  # a crash from here on only has the finish left
        rows = writer.finish(order or list, partition_by)
    except BaseException:
        if journal is not None:
            with atomic():
                writer.save_on_failure()
        raise
    finally:
        writer.cleanup()
    if journal is not None:
        journal.clear()
    return rows
