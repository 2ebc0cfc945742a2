"""The file token store (opt-in, case 40): one private JSON file per key, and a cross-process lock.

Each file is 0600 in a 0700 directory (:mod:`nb_oauth2.auth.store_dirs`), written atomically
(temp file, fsync, ``os.replace``) and read only if it is a regular, private, non-symlinked file.
:class:`CrossProcessLock` (one ``.lock`` file per key, :mod:`filelock`) lets two kernels sharing
the store refresh once (case 20).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import ContextManager, Iterator

import filelock

from ..core.errors import InsecureStoreError, StoreError
from ..core.warn import warn_user
from .store_dirs import POSIX, check_ancestors, check_private_dir, default_store_dir, ensure_private_dir
from .store_dirs import token_file_stem
from .store_protocol import PurgeUnderLock, without_secrets

__all__ = ["FileStore", "CrossProcessLock"]

logger = logging.getLogger(__name__)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class CrossProcessLock:
    """Cross-process exclusive lock on ``<stem>.lock`` files (:mod:`filelock`: flock, or msvcrt on Windows).

    The lock file is created 0600, never followed through a symlink, and kept after release
    (removing it would race other holders). Re-entrant within a thread; threads of one process
    queue on a per-key RLock first.
    """

    def __init__(self, directory: Path, *, timeout: float = 120.0) -> None:
        self.directory = directory
        self.timeout = timeout
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.RLock, filelock.BaseFileLock]] = {}

    def _pair(self, key: str) -> tuple[threading.RLock, filelock.BaseFileLock]:
        with self._guard:
            pair = self._locks.get(key)
            if pair is None:
                path = self.directory / f"{token_file_stem(key)}.lock"
                # short polls keep Ctrl-C responsive while another kernel holds the lock (case 44)
                pair = self._locks[key] = (threading.RLock(), filelock.FileLock(
                    path, timeout=self.timeout, mode=0o600, thread_local=False, poll_interval=0.02,
                    preserve_lock_file=True))
            return pair

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        rlock, lock = self._pair(key)
        with rlock:
            name = Path(lock.lock_file).name
            try:
                lock.acquire()
            except filelock.Timeout:
                raise StoreError(f"Another process has held the token store lock {name} for over "
                                 f"{self.timeout:.0f} s; close the other kernel or delete the lock file.") from None
            except OSError as exc:
                raise StoreError(f"Cannot open the lock file {name}: {exc.strerror or exc}.") from None
            try:
                yield
            finally:
                lock.release()


class FileStore(PurgeUnderLock):
    """Tokens survive a kernel restart: one private JSON file per key (case 40)."""

    def __init__(self, directory: str | Path | None = None, *, lock_timeout: float = 120.0) -> None:
        self.directory = ensure_private_dir(Path(directory) if directory is not None else default_store_dir())
        self._locks = CrossProcessLock(self.directory, timeout=lock_timeout)
        self._warned: set[str] = set()

    def path(self, key: str) -> Path:
        """The JSON file that holds ``key``'s token."""
        return self.directory / f"{token_file_stem(key)}.json"

    def load(self, key: str) -> dict | None:
        """The stored token, or None if absent or corrupt (one warning per corrupt file)."""
        check_private_dir(self.directory)
        check_ancestors(self.directory)
        path = self.path(key)
        raw = self._read_private(path)
        if raw is None:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            self._warn_corrupt(path)
            return None
        return without_secrets(data)

    def _read_private(self, path: Path) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if os.path.islink(path):
                raise InsecureStoreError(f"The token file {path.name} is a symlink; refusing to read it. "
                                         "Delete it and sign in again.") from None
            raise StoreError(f"Cannot read the token file {path.name}: {exc.strerror}.") from None
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise InsecureStoreError(f"The token file {path.name} is not a regular file; refusing it.")
            if POSIX and (st.st_mode & 0o077 or st.st_uid != os.getuid()):
                raise InsecureStoreError(
                    f"The token file {path.name} is readable by other users (mode {st.st_mode & 0o777:o}); "
                    f"refusing to use it. Delete it (`rm {path}`) and sign in again.")
            return handle.read()

    def _warn_corrupt(self, path: Path) -> None:
        if path.name in self._warned:
            return
        self._warned.add(path.name)
        warn_user(f"The token file {path.name} is corrupt; ignoring it (sign in again to replace it).",
                      RuntimeWarning)

    def save(self, key: str, token: dict) -> None:
        """Write atomically: 0600 temp file in the same directory, fsync, ``os.replace`` (cases 18, 21)."""
        payload = json.dumps(without_secrets(token), sort_keys=True).encode("utf-8")
        check_private_dir(self.directory)
        check_ancestors(self.directory)
        path = self.path(key)
        tmp = self.directory / f".{path.stem}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _NOFOLLOW | _CLOEXEC, 0o600)
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise StoreError(f"Could not save the token to {path.name} ({exc.strerror or exc}); "
                             "the previous copy is unchanged.") from None
        _fsync_dir(self.directory)

    def delete(self, key: str) -> None:
        """Remove the stored token (the lock file stays: removing it would race other holders)."""
        _unlink_quietly(self.path(key))

    def lock(self, key: str) -> ContextManager[None]:
        """Cross-process exclusive lock around "re-read, refresh if still expired, save" (case 20)."""
        return self._locks.hold(key)

    def __repr__(self) -> str:
        return f"FileStore({str(self.directory)!r})"


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("Could not remove %s: %s", path.name, exc.strerror)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX; best effort)."""
    if not POSIX:
        return
    try:
        fd = os.open(directory, os.O_RDONLY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
