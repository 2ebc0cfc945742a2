"""Per-user token records, encrypted at rest (Fernet), one file per hub user.

A file ``<sha256(user)>.vault`` in a 0700 directory holds, encrypted, ``{"user": name,
"profiles": {profile: token dict}}``. Writes go to a 0600 temporary file in the same
directory, then ``os.replace`` (atomic). A file that cannot be decrypted (another key,
tampering) reads as empty and is reported once; nothing else about it is logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

from cryptography.fernet import InvalidToken, MultiFernet

__all__ = ["Vault"]

log = logging.getLogger(__name__)
_SUFFIX = ".vault"


class Vault:
    """Encrypted token records under ``directory`` (created 0700)."""

    def __init__(self, directory: Path, key: MultiFernet) -> None:
        self.directory = Path(directory)
        self._key = key
        self._lock = threading.Lock()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def __repr__(self) -> str:
        return f"<Vault {str(self.directory)!r}>"

    def _path(self, user: str) -> Path:
        return self.directory / (hashlib.sha256(user.encode("utf-8")).hexdigest() + _SUFFIX)

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(self._key.decrypt(blob))
        except (InvalidToken, ValueError):
            log.warning("nb_oauth2.hub: a vault record could not be decrypted (another key?); it is ignored")
            return None
        return data if isinstance(data, dict) else None

    def load(self, user: str) -> dict[str, dict[str, Any]]:
        """``{profile: token dict}`` of ``user`` (empty when none)."""
        data = self._read(self._path(user))
        return dict(data.get("profiles") or {}) if data and data.get("user") == user else {}

    def get(self, user: str, profile: str) -> dict[str, Any] | None:
        return self.load(user).get(profile)

    def put(self, user: str, profile: str, token: dict[str, Any]) -> None:
        with self._lock:
            profiles = self.load(user)
            profiles[profile] = token
            self._write(user, profiles)

    def delete(self, user: str, profile: str | None = None) -> bool:
        """Forget one profile of ``user`` (or all of them); True when something was there."""
        with self._lock:
            profiles = self.load(user)
            found = bool(profiles) if profile is None else profile in profiles
            if profile is None:
                profiles = {}
            else:
                profiles.pop(profile, None)
            if profiles:
                self._write(user, profiles)
            else:
                self._path(user).unlink(missing_ok=True)
            return found

    def records(self) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
        """Every ``(user, {profile: token dict})`` (for the admin listing)."""
        for path in sorted(self.directory.glob("*" + _SUFFIX)):
            if path.name.startswith("."):  # a write in progress
                continue
            data = self._read(path)
            if data and isinstance(data.get("user"), str):
                yield data["user"], dict(data.get("profiles") or {})

    def wipe(self) -> int:
        """Delete every record (``forget_on_restart``); returns how many files went."""
        count = 0
        with self._lock:
            for path in self.directory.glob("*" + _SUFFIX):
                path.unlink(missing_ok=True)
                count += 1
        return count

    def _write(self, user: str, profiles: dict[str, dict[str, Any]]) -> None:
        blob = self._key.encrypt(json.dumps({"user": user, "profiles": profiles}).encode("utf-8"))
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=_SUFFIX)  # created 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path(user))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
