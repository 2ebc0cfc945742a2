"""The keyring token store (opt-in): tokens in the OS keyring, lock files in the state directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ContextManager

from ..core.errors import ConfigurationError, StoreError
from ..core.warn import warn_user
from .file_store import CrossProcessLock
from .store_dirs import default_store_dir, ensure_private_dir
from .store_protocol import PurgeUnderLock, without_secrets

__all__ = ["KeyringStore"]


class KeyringStore(PurgeUnderLock):
    """Tokens in the OS keyring (``pip install nb_oauth2[keyring]``); locks are files in the state dir."""

    def __init__(self, *, service: str = "nb_oauth2", lock_dir: str | Path | None = None) -> None:
        try:
            import keyring
        except ImportError:
            raise ConfigurationError("The keyring store needs the keyring package: "
                                     "`pip install nb_oauth2[keyring]`.") from None
        self._keyring = keyring
        self.service = service
        self._locks = CrossProcessLock(ensure_private_dir(Path(lock_dir) if lock_dir else default_store_dir()))

    def _call(self, action: str, func: Any, *args: Any) -> Any:
        try:
            return func(self.service, *args)
        except Exception as exc:  # keyring backends raise their own types
            raise StoreError(f"The keyring could not {action} the token ({type(exc).__name__}).") from None

    def load(self, key: str) -> dict | None:
        raw = self._call("read", self._keyring.get_password, key)
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            warn_user("The keyring entry for this session is corrupt; ignoring it.", RuntimeWarning)
            return None
        return without_secrets(data)

    def save(self, key: str, token: dict) -> None:
        self._call("save", self._keyring.set_password, key, json.dumps(without_secrets(token), sort_keys=True))

    def delete(self, key: str) -> None:
        if self._call("read", self._keyring.get_password, key) is not None:
            self._call("delete", self._keyring.delete_password, key)

    def lock(self, key: str) -> ContextManager[None]:
        return self._locks.hold(key)

    def __repr__(self) -> str:
        return f"KeyringStore(service={self.service!r})"
