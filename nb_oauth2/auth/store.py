"""Token stores: where a session keeps its token (SECURITY_CASES 18, 20, 21, 40).

* :class:`MemoryStore` (default) -- this kernel only; a restart forgets.
* :class:`~nb_oauth2.auth.file_store.FileStore` (opt-in) -- one private JSON file per key,
  written atomically, with a cross-process lock file per key so that two kernels sharing the store
  refresh once; the directories above it are checked too (case 63,
  :func:`~nb_oauth2.auth.store_dirs.check_ancestors`).
* :class:`~nb_oauth2.auth.keyring_store.KeyringStore` (opt-in) -- the OS keyring, with the same lock files.

:func:`make_store` turns ``store=`` into one of them. A store never holds a client secret or password
(:func:`~nb_oauth2.auth.store_protocol.without_secrets`), and never touches ``os.environ``.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from ..core.names import STORE_CHOICES
from ..core.errors import ConfigurationError, InsecureStoreError, StoreError
from .file_store import FileStore
from .keyring_store import KeyringStore
from .store_dirs import InsecureStoreWarning, default_store_dir
from .store_protocol import FORBIDDEN_KEYS, TokenStore, without_secrets

__all__ = [
    "TokenStore",
    "MemoryStore",
    "FileStore",
    "KeyringStore",
    "StoreError",
    "InsecureStoreError",
    "InsecureStoreWarning",
    "make_store",
    "default_store_dir",
    "FORBIDDEN_KEYS",
]


class MemoryStore:
    """Default: tokens live in this kernel only (a restart forgets them)."""

    def __init__(self) -> None:
        self._data: dict[str, dict] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}

    def load(self, key: str) -> dict | None:
        with self._guard:
            value = self._data.get(key)
            return dict(value) if value else None

    def save(self, key: str, token: dict) -> None:
        with self._guard:
            self._data[key] = without_secrets(token)

    def delete(self, key: str) -> None:
        with self._guard:
            self._data.pop(key, None)

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Exclusive per key among this kernel's threads (re-entrant)."""
        with self._guard:
            rlock = self._locks.setdefault(key, threading.RLock())
        with rlock:
            yield

    def purge_refresh_token(self, key: str) -> None:
        """Keep the access token, drop the refresh token (case 17)."""
        with self._guard:
            if key in self._data:
                self._data[key]["refresh_token"] = None

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._data)})"


def make_store(kind: str | TokenStore = "memory") -> TokenStore:
    """``"memory"`` (default), ``"file"``, ``"keyring"``, or a store object passed through."""
    if not isinstance(kind, str):
        if not isinstance(kind, TokenStore):
            raise ConfigurationError(f"store= takes one of {', '.join(STORE_CHOICES)} or a TokenStore object.")
        return kind
    name = kind.strip().lower()
    if name == "memory":
        return MemoryStore()
    if name == "file":
        return FileStore()
    if name == "keyring":
        return KeyringStore()
    raise ConfigurationError(f"Unknown token store {kind!r}; use one of: {', '.join(STORE_CHOICES)}.")
