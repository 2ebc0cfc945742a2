"""Conformed tables -> a hive-partitioned Parquet dataset: ``path/col=value/part-NNNNN.parquet``.

The sink behind ``to_parquet(..., partition_by=...)``. It takes tables that already have the
pull's one final schema (:mod:`nb_oauth2.frames.parquet` decides it; nothing here widens a type)
and writes each row to the folder of its partition values, the partition columns left out of the
files (hive layout: their values live in the folder names). Every file has the same schema.

Folder names: ``quote(column)=quote(value)`` (percent-encoding, as pyarrow's hive writer; a string
such as a timestamp is partitioned by its text as given, ``:`` becoming ``%3A``); booleans are
``true``/``false``; null and the empty string go to ``__HIVE_DEFAULT_PARTITION__`` (Hive's and
pyarrow's null folder).

Memory: at most ``row_group_rows`` rows buffered across all partitions (all buffers are written as
row groups when the total reaches it) and at most ``max_open`` files open at once: beyond that the
least recently written one is closed, and a partition seen again gets another part file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import OrderedDict
from typing import Any, Sequence
from urllib.parse import quote

from ..core.errors import ConfigurationError

__all__ = ["PartitionedSink", "NULL_FOLDER", "MAX_OPEN_PARTITIONS", "check_partition_by", "check_target",
           "install"]

#: the folder of null (and empty-string) partition values
NULL_FOLDER = "__HIVE_DEFAULT_PARTITION__"
#: part files open at once while a dataset is written
MAX_OPEN_PARTITIONS = 64


def check_partition_by(partition_by: str | Sequence[str] | None) -> list[str]:
    """``partition_by`` as a list of column names ([] for none); ConfigurationError when malformed."""
    if partition_by is None:
        return []
    names = [partition_by] if isinstance(partition_by, str) else list(partition_by)
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ConfigurationError(f"partition_by={partition_by!r} must be a column name or a list of distinct "
                                 "column names.")
    return names


def _is_dataset(path: str, first: str) -> bool:
    """``path`` is a folder of ``first=...`` folders (a dataset written before, replaced by a new pull)."""
    prefix = quote(first, safe="") + "="
    return all(e.is_dir() and e.name.startswith(prefix) for e in os.scandir(path))


def check_target(path: str, partition_by: list[str]) -> None:
    """Before any request: ``path`` is free, or a dataset partitioned by the same first column (replaced
    when the pull completes); never a file or a folder of other things."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path) and _is_dataset(path, partition_by[0]):
        return
    raise ConfigurationError(f"to_parquet(partition_by=...) writes a folder at {path!r}, and something else is "
                             "there; nothing was requested. Choose another path or remove it.")


def install(staged: str, path: str) -> None:
    """Put the finished dataset folder ``staged`` at ``path`` (a previous dataset there is replaced)."""
    if not os.path.lexists(path):
        os.replace(staged, path)
        return
    old = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".old-", dir=os.path.dirname(os.path.abspath(path)))
    os.replace(path, os.path.join(old, "dataset"))
    os.replace(staged, path)
    shutil.rmtree(old, ignore_errors=True)


def _text(value: Any) -> str:
    if value is None or value == "":
        return NULL_FOLDER
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def folder_name(column: str, value: Any) -> str:
    """One path segment: ``column=value``, both percent-encoded."""
    text = _text(value)
    return f"{quote(column, safe='')}={text if text == NULL_FOLDER else quote(text, safe='')}"


class PartitionedSink:
    """Tables with ``schema`` in, one folder per partition out; see the module docstring."""

    def __init__(self, pa: Any, pq: Any, folder: str, schema: Any, partition_by: list[str],
                 row_group_rows: int, max_open: int | None = None) -> None:
        for name in partition_by:
            if name not in schema.names:
                raise ConfigurationError(f"partition_by column {name!r} is not among the columns written "
                                         f"({', '.join(schema.names)}).")
            typ = schema.field(name).type
            if pa.types.is_nested(typ):
                raise ConfigurationError(f"partition_by column {name!r} holds {typ} values; partition by a column "
                                         "of scalars (a string, number, boolean or date).")
        self.pa, self.pq, self.folder, self.by = pa, pq, folder, partition_by
        self.kept = [n for n in schema.names if n not in partition_by]
        self.schema = pa.schema([schema.field(n) for n in self.kept])
        self.row_group_rows, self.max_open = max(1, row_group_rows), max(1, max_open or MAX_OPEN_PARTITIONS)
        self.open: OrderedDict[tuple, Any] = OrderedDict()  # key -> writer, least recently written first
        self.buffers: dict[tuple, list] = {}
        self.buffered = 0
        self.files: dict[tuple, int] = {}  # part files per partition so far
        os.makedirs(folder, exist_ok=True)

    def write(self, table: Any) -> None:
        """Split ``table`` by its partition values and buffer each slice."""
        if table.num_rows == 0:
            return
        keys = list(zip(*(table.column(n).to_pylist() for n in self.by)))
        rows: dict[tuple, list[int]] = {}
        for i, key in enumerate(keys):
            rows.setdefault(tuple(folder_name(n, v) for n, v in zip(self.by, key)), []).append(i)
        data = table.select(self.kept)
        for key, indices in rows.items():
            self.buffers.setdefault(key, []).append(data.take(self.pa.array(indices, self.pa.int64())))
            self.buffered += len(indices)
        if self.buffered >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        for key in list(self.buffers):
            self._writer(key).write_table(self.pa.concat_tables(self.buffers.pop(key)))
        self.buffered = 0

    def _writer(self, key: tuple) -> Any:
        writer = self.open.get(key)
        if writer is not None:
            self.open.move_to_end(key)
            return writer
        while len(self.open) >= self.max_open:
            _, oldest = self.open.popitem(last=False)
            oldest.close()
        folder = os.path.join(self.folder, *key)
        os.makedirs(folder, exist_ok=True)
        number = self.files.get(key, 0)
        self.files[key] = number + 1
        writer = self.open[key] = self.pq.ParquetWriter(os.path.join(folder, f"part-{number:05d}.parquet"),
                                                        self.schema)
        return writer

    def close(self) -> None:
        """Write what is buffered and close every file."""
        self._flush()
        while self.open:
            self.open.popitem(last=False)[1].close()

    def abort(self) -> None:
        while self.open:
            try:
                self.open.popitem(last=False)[1].close()
            except Exception:
                pass
