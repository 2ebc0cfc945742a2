"""Where the revalidation cache keeps its entries: requests-cache backends, opened for one partition.

* **Memory** (the default): a dict bounded to ``max_bytes`` of bodies, oldest entries dropped first.
* **Disk** (opt-in): one SQLite file per partition, mode 0600 in a 0700 directory (a symlink in its
  place is refused). A damaged file (``SQLITE_CORRUPT`` / ``SQLITE_NOTADB``) is replaced by an empty
  one; a busy or locked one (another kernel writing) raises ``sqlite3.OperationalError`` and is left
  alone: the caller sends that request uncached.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from .store_dirs import ensure_private_dir, token_file_stem

if TYPE_CHECKING:  # requests-cache is imported on first use (80 ms off `import nb_oauth2`)
    from requests_cache.backends import BaseCache

__all__ = ["open_backend", "rebuilt_sqlite", "is_damage", "drop_entry", "default_cache_dir"]


def default_cache_dir() -> Path:
    """The platform's user cache dir for nb_oauth2, ``http`` below it (``~/.cache/nb_oauth2/http``)."""
    return Path(platformdirs.user_cache_dir("nb_oauth2", appauthor=False)).expanduser() / "http"


def _body_size(response: Any) -> int:
    return len(getattr(response, "_content", None) or b"") if response is not None else 0


@lru_cache(maxsize=None)
def _bounded_memory() -> type:
    """requests-cache's in-memory storage, bounded in body bytes (oldest entries dropped first)."""
    from requests_cache.backends.base import DictStorage

    class BoundedMemory(DictStorage):
        def __init__(self, max_bytes: int) -> None:
            super().__init__()
            self.max_bytes = max_bytes
            self.size = 0
            self._lock = threading.Lock()

        def __setitem__(self, key: str, value: Any) -> None:
            with self._lock:
                old = self.data.pop(key, None)
                self.size -= _body_size(old)
                self.data[key] = value
                self.size += _body_size(value)
                while self.size > self.max_bytes and len(self.data) > 1:
                    self.size -= _body_size(self.data.pop(next(iter(self.data))))

        def __delitem__(self, key: str) -> None:
            with self._lock:
                self.size -= _body_size(self.data.pop(key))

        def clear(self) -> None:
            with self._lock:
                self.data.clear()
                self.size = 0

    return BoundedMemory


def drop_entry(backend: BaseCache, key: str) -> None:
    """Delete the entry under ``key``, if there is one."""
    try:
        del backend.responses[key]
    except KeyError:
        pass


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Is the SQLite file damaged (not a database, malformed), not just busy or locked?"""
    name = getattr(exc, "sqlite_errorname", "")
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or (not name and type(exc) is sqlite3.DatabaseError)


def open_backend(directory: Path | None, name: str, *, max_memory_bytes: int, settings: Any) -> BaseCache:
    """The store of partition ``name``: bounded memory when ``directory`` is None, else its SQLite file there.

    Raises ``sqlite3.OperationalError`` when the file is busy or locked (not a reason to delete its entries).
    """
    from requests_cache.backends import BaseCache, SQLiteCache

    if directory is None:
        cache = BaseCache()
        cache.responses = _bounded_memory()(max_memory_bytes)
    else:
        directory = ensure_private_dir(directory)
        path = directory / f"{token_file_stem(name or 'default')}.sqlite"
        # created private (sqlite's journals copy its mode); a symlink in its place is refused
        fd = os.open(path, os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        try:
            cache = SQLiteCache(path, serializer="json")
            len(cache.responses)  # a damaged file fails here (or on first use: HttpCache rebuilds it then)
        except sqlite3.DatabaseError as exc:  # it is a cache: rebuilt empty, never a failed request
            if not is_damage(exc):
                raise  # busy or locked by another process: not a reason to delete its entries
            return rebuilt_sqlite(path, settings)
    cache._settings = settings
    return cache


def rebuilt_sqlite(path: Path, settings: Any) -> BaseCache:
    """An empty SQLite cache in place of the damaged file at ``path`` (its journals too)."""
    from requests_cache.backends import SQLiteCache

    for stale in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))):
        try:
            stale.unlink()
        except FileNotFoundError:
            pass
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.close(fd)
    cache = SQLiteCache(path, serializer="json")
    cache._settings = settings
    return cache
