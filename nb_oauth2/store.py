"""Token stores (placeholder MemoryStore until the full module lands)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator, Protocol


class TokenStore(Protocol):
    def load(self, key: str) -> dict | None: ...
    def save(self, key: str, token: dict) -> None: ...
    def delete(self, key: str) -> None: ...
    def lock(self, key: str): ...
    def purge_refresh_token(self, key: str) -> None: ...


class MemoryStore:
    """Default: tokens live in this kernel only."""

    def __init__(self) -> None:
        self._data: dict[str, dict] = {}
        self._lock = threading.RLock()

    def load(self, key: str) -> dict | None:
        with self._lock:
            value = self._data.get(key)
            return dict(value) if value else None

    def save(self, key: str, token: dict) -> None:
        with self._lock:
            self._data[key] = {k: v for k, v in token.items() if k not in ("client_secret", "password")}

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        with self._lock:
            yield

    def purge_refresh_token(self, key: str) -> None:
        with self._lock:
            if key in self._data:
                self._data[key]["refresh_token"] = None


def make_store(kind: "str | TokenStore" = "memory") -> "TokenStore":
    if not isinstance(kind, str):
        return kind
    if kind == "memory":
        return MemoryStore()
    raise NotImplementedError(kind)
