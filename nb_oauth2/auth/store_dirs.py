"""Where persistent token stores live, and the checks that keep that place private (case 63).

:func:`default_store_dir` picks the directory; :func:`ensure_private_dir` creates it 0700 or refuses
one that is a symlink, shared, or below parents other users could swap (:func:`check_ancestors`).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import platformdirs

from ..core.errors import InsecureStoreError, StoreError
from ..core.warn import warn_user

__all__ = ["InsecureStoreWarning", "POSIX", "default_store_dir", "token_file_stem", "ensure_private_dir",
           "check_private_dir", "check_ancestors"]

POSIX = os.name == "posix"


class InsecureStoreWarning(UserWarning):
    """The token store works, but where it lives deserves a look (shared or symlinked parents)."""


def default_store_dir() -> Path:
    """``$NB_OAUTH2_STATE_DIR``, else the platform's user state dir for nb_oauth2 (:mod:`platformdirs`:
    ``$XDG_STATE_HOME/nb_oauth2`` or ``~/.local/state/nb_oauth2`` on Linux)."""
    explicit = os.environ.get("NB_OAUTH2_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_state_dir("nb_oauth2", appauthor=False)).expanduser()


def token_file_stem(key: str) -> str:
    """A safe file stem for ``key``: readable slug plus a hash prefix (no collisions, no traversal)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", key).strip("_")[:40] or "token"
    return f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def ensure_private_dir(directory: Path) -> Path:
    """Create ``directory`` 0700 (missing parents at most 0755), or refuse an existing one that is a
    symlink or shared, or whose parents let other users replace it (case 63)."""
    directory = Path(os.path.abspath(directory.expanduser()))
    if not os.path.lexists(directory):
        check_ancestors(directory)  # refuse before creating anything in a shared place
        missing = [p for p in (directory, *directory.parents) if not os.path.lexists(p)]
        for path, mode in [(p, 0o755) for p in reversed(missing[1:])] + [(directory, 0o700)]:
            try:
                os.mkdir(path, mode)  # never group/world-writable, whatever the umask
            except FileExistsError:
                pass
            except OSError as exc:
                raise StoreError(f"Cannot create the token store directory {path}: {exc.strerror}.") from None
    check_private_dir(directory)
    for note in check_ancestors(directory):
        warn_user(note, InsecureStoreWarning)
    return directory


def check_ancestors(directory: Path) -> list[str]:
    """Case 63: every directory above the store, as written and as resolved, up to ``/``.

    Refused (InsecureStoreError): a parent writable by all users without the sticky bit (anyone
    could swap the store for theirs), a direct parent owned by another user, a symlink on the way
    owned by another user. Warned (returned): the store directly in a sticky shared directory such
    as ``/tmp``, a higher parent owned by another user or writable by a group with other members,
    a symlink of ours on the way (set NB_OAUTH2_STATE_DIR to the real path). Sticky world-writable
    directories higher up (``/tmp/pytest-of-me/...``) are normal and pass.
    """
    if not POSIX:
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
            notes += _check_one_ancestor(ancestor, st, direct=ancestor == parent)
    return list(dict.fromkeys(notes))


def _check_one_ancestor(path: Path, st: os.stat_result, *, direct: bool) -> list[str]:
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


def check_private_dir(directory: Path) -> None:
    try:
        st = os.lstat(directory)
    except OSError as exc:
        raise StoreError(f"Cannot use the token store directory {directory}: {exc.strerror}.") from None
    if os.path.islink(directory):
        raise InsecureStoreError(f"The token store directory {directory} is a symlink; refusing to use it. "
                                 "Point NB_OAUTH2_STATE_DIR at a real directory.")
    if not os.path.isdir(directory):
        raise StoreError(f"The token store path {directory} is not a directory.")
    if POSIX and st.st_mode & 0o077:
        raise InsecureStoreError(f"The token store directory {directory} is accessible to other users "
                                 f"(mode {st.st_mode & 0o777:o}); run `chmod 700 {directory}` and retry.")
    if POSIX and st.st_uid != os.getuid():
        raise InsecureStoreError(f"The token store directory {directory} belongs to another user.")
