"""Token stores: where a session keeps its token (SECURITY_CASES 18, 20, 21, 40).

* :class:`MemoryStore` (default) -- this kernel only; a restart forgets.
* :class:`FileStore` (opt-in) -- one JSON file per key in a 0700 directory, each
  file 0600, written atomically (temp file, fsync, ``os.replace``), read only if
  it is a regular, private, non-symlinked file; a cross-process lock file per key
  so that two kernels sharing the store refresh once. The directories above it
  are checked too (case 63, :func:`_check_ancestors`).
* :class:`KeyringStore` (opt-in) -- the OS keyring, with the same lock files.

A store never holds a client secret or password, and never touches ``os.environ``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import stat
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ContextManager, Iterator, Protocol, runtime_checkable

import filelock
import platformdirs

from ..core.errors import ConfigurationError, InsecureStoreError, StoreError
from ..core.warn import warn_user

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
]

logger = logging.getLogger(__name__)

#: keys a store refuses to keep (they belong to the client registration, not the token)
FORBIDDEN_KEYS = frozenset({"client_secret", "password"})
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_POSIX = os.name == "posix"


class InsecureStoreWarning(UserWarning):
    """The token store works, but where it lives deserves a look (shared or symlinked parents)."""


@runtime_checkable
class TokenStore(Protocol):
    """What a session needs from a store. ``token`` is ``Token.to_dict()``."""

    def load(self, key: str) -> dict | None: ...
    def save(self, key: str, token: dict) -> None: ...
    def delete(self, key: str) -> None: ...
    def lock(self, key: str) -> ContextManager[None]: ...
    def purge_refresh_token(self, key: str) -> None: ...


def _clean(token: dict) -> dict:
    """A copy of ``token`` without client secrets or passwords (strip, then assert)."""
    data = {k: v for k, v in dict(token).items() if k not in FORBIDDEN_KEYS}
    assert not FORBIDDEN_KEYS & data.keys()
    return data


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
            self._data[key] = _clean(token)

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


def default_store_dir() -> Path:
    """``$NB_OAUTH2_STATE_DIR``, else the platform's user state dir for nb_oauth2 (:mod:`platformdirs`:
    ``$XDG_STATE_HOME/nb_oauth2`` or ``~/.local/state/nb_oauth2`` on Linux)."""
    explicit = os.environ.get("NB_OAUTH2_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_state_dir("nb_oauth2", appauthor=False)).expanduser()


def _filename(key: str) -> str:
    """A safe file stem for ``key``: readable slug plus a hash prefix (no collisions, no traversal)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", key).strip("_")[:40] or "token"
    return f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _ensure_private_dir(directory: Path) -> Path:
    """Create ``directory`` 0700 (missing parents at most 0755), or refuse an existing one that is a
    symlink or shared, or whose parents let other users replace it (case 63)."""
    directory = Path(os.path.abspath(directory.expanduser()))
    if not os.path.lexists(directory):
        _check_ancestors(directory)  # refuse before creating anything in a shared place
        missing = [p for p in (directory, *directory.parents) if not os.path.lexists(p)]
        for path, mode in [(p, 0o755) for p in reversed(missing[1:])] + [(directory, 0o700)]:
            try:
                os.mkdir(path, mode)  # never group/world-writable, whatever the umask
            except FileExistsError:
                pass
            except OSError as exc:
                raise StoreError(f"Cannot create the token store directory {path}: {exc.strerror}.") from None
    _check_private_dir(directory)
    for note in _check_ancestors(directory):
        warn_user(note, InsecureStoreWarning)
    return directory


def _check_ancestors(directory: Path) -> list[str]:
    """Case 63: every directory above the store, as written and as resolved, up to ``/``.

    Refused (InsecureStoreError): a parent writable by all users without the sticky bit (anyone
    could swap the store for theirs), a direct parent owned by another user, a symlink on the way
    owned by another user. Warned (returned): the store directly in a sticky shared directory such
    as ``/tmp``, a higher parent owned by another user or writable by a group with other members,
    a symlink of ours on the way (set NB_OAUTH2_STATE_DIR to the real path). Sticky world-writable
    directories higher up (``/tmp/pytest-of-me/...``) are normal and pass.
    """
    if not _POSIX:
        return []
    notes: list[str] = []
    real = Path(os.path.realpath(directory))
    chains = [(directory.parent, list(directory.parents))] + ([(real.parent, list(real.parents))] if real != directory else [])
    for parent, ancestors in chains:
        for ancestor in ancestors:
            try:
                st = os.lstat(ancestor)
            except FileNotFoundError:  # not created yet: it will be, at most 0755
                continue
            if stat.S_ISLNK(st.st_mode):
                if st.st_uid not in (os.getuid(), 0):
                    raise InsecureStoreError(f"The token store is reached through {ancestor}, a symlink owned by "
                                             "another user; refusing it. Point NB_OAUTH2_STATE_DIR at a private path.")
                if st.st_uid == os.getuid():  # root's links are the system's layout (macOS /tmp, /var)
                    notes.append(f"The token store is reached through the symlink {ancestor} -> "
                                 f"{os.path.realpath(ancestor)}; set NB_OAUTH2_STATE_DIR to the real path.")
                continue
            notes += _check_ancestor(ancestor, st, direct=ancestor == parent)
    return list(dict.fromkeys(notes))


def _check_ancestor(path: Path, st: os.stat_result, *, direct: bool) -> list[str]:
    sticky, mine = bool(st.st_mode & stat.S_ISVTX), st.st_uid in (os.getuid(), 0)
    if st.st_mode & stat.S_IWOTH and not sticky:
        raise InsecureStoreError(f"The token store is inside {path}, which every user can write to (mode "
                                 f"{st.st_mode & 0o7777:o}): anyone could replace the store. Use a private "
                                 f"directory (NB_OAUTH2_STATE_DIR) or `chmod o-w {path}`.")
    if direct and not mine:
        raise InsecureStoreError(f"The token store's parent {path} belongs to another user, who could replace "
                                 "the store; use a directory of your own (NB_OAUTH2_STATE_DIR).")
    if direct and st.st_mode & stat.S_IWOTH:
        return [f"The token store sits directly in the shared directory {path}; prefer a private one."]
    if not mine:
        return [f"The token store is below {path}, which belongs to another user (uid {st.st_uid})."]
    if st.st_mode & stat.S_IWGRP and not sticky and _group_has_others(st.st_gid):
        return [f"The token store is below {path}, which other members of its group can write to."]
    return []


def _group_has_others(gid: int) -> bool:
    """True unless ``gid`` is our own private group (user private groups are common)."""
    import grp
    import pwd

    try:
        me = pwd.getpwuid(os.getuid()).pw_name
        members = set(grp.getgrgid(gid).gr_mem) - {me}
    except KeyError:
        return gid != os.getgid()
    return gid != os.getgid() or bool(members)


def _check_private_dir(directory: Path) -> None:
    try:
        st = os.lstat(directory)
    except OSError as exc:
        raise StoreError(f"Cannot use the token store directory {directory}: {exc.strerror}.") from None
    if os.path.islink(directory):
        raise InsecureStoreError(f"The token store directory {directory} is a symlink; refusing to use it. "
                                 "Point NB_OAUTH2_STATE_DIR at a real directory.")
    if not os.path.isdir(directory):
        raise StoreError(f"The token store path {directory} is not a directory.")
    if _POSIX and st.st_mode & 0o077:
        raise InsecureStoreError(f"The token store directory {directory} is accessible to other users "
                                 f"(mode {st.st_mode & 0o777:o}); run `chmod 700 {directory}` and retry.")
    if _POSIX and st.st_uid != os.getuid():
        raise InsecureStoreError(f"The token store directory {directory} belongs to another user.")


class _FileLock:
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
                path = self.directory / f"{_filename(key)}.lock"
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


class _PurgeUnderLock:
    """``purge_refresh_token`` for persistent stores: read, drop, write back under the lock."""

    def purge_refresh_token(self, key: str) -> None:
        """Keep the access token, drop the refresh token (case 17)."""
        with self.lock(key):  # type: ignore[attr-defined]
            data = self.load(key)  # type: ignore[attr-defined]
            if data is not None and data.get("refresh_token") is not None:
                data["refresh_token"] = None
                self.save(key, data)  # type: ignore[attr-defined]


class FileStore(_PurgeUnderLock):
    """Tokens survive a kernel restart: one private JSON file per key (case 40)."""

    def __init__(self, directory: str | Path | None = None, *, lock_timeout: float = 120.0) -> None:
        self.directory = _ensure_private_dir(Path(directory) if directory is not None else default_store_dir())
        self._locks = _FileLock(self.directory, timeout=lock_timeout)
        self._warned: set[str] = set()

    def path(self, key: str) -> Path:
        """The JSON file that holds ``key``'s token."""
        return self.directory / f"{_filename(key)}.json"

    def load(self, key: str) -> dict | None:
        """The stored token, or None if absent or corrupt (one warning per corrupt file)."""
        _check_private_dir(self.directory)
        _check_ancestors(self.directory)
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
        return _clean(data)

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
            if _POSIX and (st.st_mode & 0o077 or st.st_uid != os.getuid()):
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
        payload = json.dumps(_clean(token), sort_keys=True).encode("utf-8")
        _check_private_dir(self.directory)
        _check_ancestors(self.directory)
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
    if not _POSIX:
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


class KeyringStore(_PurgeUnderLock):
    """Tokens in the OS keyring (``pip install nb_oauth2[keyring]``); locks are files in the state dir."""

    def __init__(self, *, service: str = "nb_oauth2", lock_dir: str | Path | None = None) -> None:
        try:
            import keyring
        except ImportError:
            raise ConfigurationError("The keyring store needs the keyring package: "
                                     "`pip install nb_oauth2[keyring]`.") from None
        self._keyring = keyring
        self.service = service
        self._locks = _FileLock(_ensure_private_dir(Path(lock_dir) if lock_dir else default_store_dir()))

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
        return _clean(data)

    def save(self, key: str, token: dict) -> None:
        self._call("save", self._keyring.set_password, key, json.dumps(_clean(token), sort_keys=True))

    def delete(self, key: str) -> None:
        if self._call("read", self._keyring.get_password, key) is not None:
            self._call("delete", self._keyring.delete_password, key)

    def lock(self, key: str) -> ContextManager[None]:
        return self._locks.hold(key)

    def __repr__(self) -> str:
        return f"KeyringStore(service={self.service!r})"


_KINDS = ("memory", "file", "keyring")


def make_store(kind: str | TokenStore = "memory") -> TokenStore:
    """``"memory"`` (default), ``"file"``, ``"keyring"``, or a store object passed through."""
    if not isinstance(kind, str):
        if not isinstance(kind, TokenStore):
            raise ConfigurationError(f"store= takes one of {', '.join(_KINDS)} or a TokenStore object.")
        return kind
    name = kind.strip().lower()
    if name == "memory":
        return MemoryStore()
    if name == "file":
        return FileStore()
    if name == "keyring":
        return KeyringStore()
    raise ConfigurationError(f"Unknown token store {kind!r}; use one of: {', '.join(_KINDS)}.")
