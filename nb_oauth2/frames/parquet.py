"""Column chunks -> Parquet: the writer behind :func:`nb_oauth2.frames.readers.to_parquet`.

No HTTP here: :func:`write_chunks` takes the page-by-page column chunks the readers produce
(Arrow tables, or ``(rows, {column: values})`` without the Arrow fast path) and writes them to
``path`` one batch at a time.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..core.errors import APIError, ConfigurationError

__all__ = ["write_chunks"]


def _pyarrow() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or ConfigurationError when pyarrow is missing."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigurationError("to_parquet needs pyarrow: pip install pyarrow") from None
    return pa, pq


def write_chunks(chunks: Iterable[Any], path: str) -> int:
    """Write every chunk to the Parquet file ``path``; returns the number of rows written."""
    pa, pq = _pyarrow()
    writer = None
    rows = 0
    try:
        for chunk in chunks:
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
        return pa.table(cols, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(cols, schema)], schema=schema)
