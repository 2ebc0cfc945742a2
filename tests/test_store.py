"""Token stores: memory, file (0600/0700, atomic, locked) and keyring (cases 17, 18, 20, 21, 40)."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from nb_oauth2.core.errors import ConfigurationError
from nb_oauth2.auth.store import (FileStore, InsecureStoreError, KeyringStore, MemoryStore, StoreError, TokenStore,
                             default_store_dir, make_store)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and flock")

ACCESS = "canaryTOKEN-4f7d1e0b9a8c7d6e5f4a3b2c1d0e9f8a"
REFRESH = "canaryREFRESH-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"
SECRET = "canarySECRET-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def token(access: str = ACCESS, refresh: str | None = REFRESH, expires_at: float | None = None) -> dict:
    return {"access_token": access, "token_type": "Bearer", "refresh_token": refresh,
            "expires_at": expires_at if expires_at is not None else time.time() + 3600,
            "scope": ["read"], "id_token": None, "received_at": time.time()}


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "nb_oauth2"


@pytest.fixture
def file_store(store_dir: Path) -> FileStore:
    return FileStore(store_dir)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- memory -------------------------------------------------------------------------


def test_memory_store_round_trip_returns_copies():
    store = MemoryStore()
    store.save("k", token())
    loaded = store.load("k")
    loaded["access_token"] = "changed"
    assert store.load("k")["access_token"] == ACCESS
    store.delete("k")
    assert store.load("k") is None


def test_memory_store_purge_keeps_access_token():
    """Case 17: the refresh token goes, the access token stays."""
    store = MemoryStore()
    store.save("k", token())
    store.purge_refresh_token("k")
    assert store.load("k")["refresh_token"] is None
    assert store.load("k")["access_token"] == ACCESS


def test_memory_store_lock_is_exclusive_between_threads_and_reentrant():
    store = MemoryStore()
    inside, overlaps = [], []

    def work() -> None:
        for _ in range(20):
            with store.lock("k"), store.lock("k"):  # re-entrant
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.0005)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


# -- file: permissions and refusals (case 40) -----------------------------------------


@posix_only
def test_file_store_creates_private_dir_and_file(file_store: FileStore, store_dir: Path):
    """Case 40: directory 0700, token file 0600, lock file 0600."""
    file_store.save("demo", token())
    with file_store.lock("demo"):
        pass
    assert mode(store_dir) == 0o700
    files = sorted(store_dir.iterdir())
    assert {p.suffix for p in files} == {".json", ".lock"}
    assert all(mode(p) == 0o600 for p in files)


@posix_only
def test_file_mode_is_0600_even_with_permissive_umask(file_store: FileStore):
    """Case 40: created with 0600 by os.open, not chmod-ed afterwards."""
    old = os.umask(0)
    try:
        file_store.save("demo", token())
    finally:
        os.umask(old)
    assert mode(file_store.path("demo")) == 0o600


def test_round_trip_and_delete(file_store: FileStore):
    file_store.save("demo", token())
    assert file_store.load("demo")["refresh_token"] == REFRESH
    file_store.delete("demo")
    file_store.delete("demo")  # idempotent
    assert file_store.load("demo") is None


def test_key_becomes_a_safe_filename(file_store: FileStore, store_dir: Path):
    for key in ("../../etc/passwd", "a/b", "x" * 500, "", "ünïcode ✓"):
        file_store.save(key, token())
        assert file_store.path(key).parent == store_dir
        assert file_store.load(key)["access_token"] == ACCESS
    assert file_store.path("a/b") != file_store.path("a_b")


@posix_only
def test_group_readable_dir_is_refused(store_dir: Path):
    """Case 40: an existing directory other users can enter is refused."""
    store_dir.mkdir(parents=True)
    os.chmod(store_dir, 0o750)
    with pytest.raises(InsecureStoreError, match="chmod 700"):
        FileStore(store_dir)


@posix_only
def test_symlinked_dir_is_refused(tmp_path: Path):
    """Case 40: the store directory must not be a symlink."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(InsecureStoreError, match="symlink"):
        FileStore(link)


# -- file: the directories above the store (case 63) ---------------------------------------


@posix_only
@pytest.mark.parametrize("below", ["store", "a/b/store"])
def test_world_writable_parent_is_refused_before_anything_is_created(tmp_path: Path, below: str):
    """Case 63: a parent (direct or higher) that every user can write to, without the sticky bit,
    is refused like a shared store directory; nothing is created in it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(InsecureStoreError, match="every user can write"):
        FileStore(shared / below)
    assert list(shared.iterdir()) == []


@posix_only
def test_store_made_before_its_parent_became_world_writable_is_refused_on_use(tmp_path: Path):
    """Case 63: the parents are checked again on load and save, not only when the store is made."""
    store = FileStore(tmp_path / "p" / "store")
    store.save("demo", token())
    os.chmod(tmp_path / "p", 0o777)
    with pytest.raises(InsecureStoreError):
        store.load("demo")
    with pytest.raises(InsecureStoreError):
        store.save("demo", token())


@posix_only
def test_store_directly_in_a_sticky_shared_directory_warns(tmp_path: Path):
    """Case 63: directly in a /tmp-like directory (world-writable, sticky) -> a warning; it still works.
    Sticky shared directories higher up (tmp_path itself is below /tmp) pass silently."""
    from nb_oauth2.auth.store import InsecureStoreWarning

    sticky = tmp_path / "tmp"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    with pytest.warns(InsecureStoreWarning, match="shared directory"):
        store = FileStore(sticky / "store")
    store.save("demo", token())
    assert store.load("demo")["access_token"] == ACCESS


@posix_only
def test_symlinked_parent_warns_and_its_target_is_checked(tmp_path: Path):
    """Case 63: a store reached through a symlinked parent warns with the real path; a symlink to a
    world-writable directory is refused."""
    from nb_oauth2.auth.store import InsecureStoreWarning

    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.warns(InsecureStoreWarning, match="symlink") as caught:
        FileStore(tmp_path / "link" / "store")
    assert str(real) in str(caught[0].message)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    (tmp_path / "to-shared").symlink_to(shared)
    with pytest.raises(InsecureStoreError, match="every user can write"):
        FileStore(tmp_path / "to-shared" / "store")
    assert list(shared.iterdir()) == []


@posix_only
def test_symlink_as_the_store_directory_is_refused(tmp_path: Path):
    """Cases 40 and 63: the store directory itself may not be a symlink, even to a private directory."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "store").symlink_to(real)
    with pytest.raises(InsecureStoreError, match="symlink"):
        FileStore(tmp_path / "p" / "store")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_parent_owned_by_another_user_is_refused(tmp_path: Path):
    """Case 63: a direct parent that belongs to another user (who could swap the store) is refused;
    the same user higher up is only a warning."""
    from nb_oauth2.auth.store import InsecureStoreWarning

    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 54321, 54321)
    with pytest.raises(InsecureStoreError, match="another user"):
        FileStore(theirs / "store")
    (theirs / "mine").mkdir(mode=0o755)
    with pytest.warns(InsecureStoreWarning, match="another user"):
        FileStore(theirs / "mine" / "store")


@posix_only
def test_created_parents_are_never_shared_even_with_umask_0(tmp_path: Path):
    """Case 63: the parents the store creates are at most 0755 and the store 0700, whatever the umask;
    an ordinary private location gives no warning."""
    import warnings

    from nb_oauth2.auth.store import InsecureStoreWarning

    old = os.umask(0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            FileStore(tmp_path / "a" / "b" / "store").save("demo", token())
    finally:
        os.umask(old)
    assert mode(tmp_path / "a") == 0o755 and mode(tmp_path / "a" / "b") == 0o755
    assert mode(tmp_path / "a" / "b" / "store") == 0o700
    assert [w for w in caught if issubclass(w.category, InsecureStoreWarning)] == []


@posix_only
def test_symlinked_token_file_is_refused(file_store: FileStore, tmp_path: Path):
    """Case 40: a token file that is a symlink is never followed."""
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_text(json.dumps(token(access="planted-token")))
    os.chmod(elsewhere, 0o600)
    file_store.path("demo").symlink_to(elsewhere)
    with pytest.raises(InsecureStoreError, match="symlink"):
        file_store.load("demo")


@posix_only
def test_group_readable_token_file_is_refused(file_store: FileStore):
    """Case 40: a token file readable by group/others is refused, not read."""
    file_store.save("demo", token())
    os.chmod(file_store.path("demo"), 0o640)
    with pytest.raises(InsecureStoreError) as info:
        file_store.load("demo")
    assert ACCESS not in str(info.value)
    assert isinstance(info.value, ConfigurationError)


def test_client_secret_and_password_are_never_written(file_store: FileStore):
    """Case 40: no client secret in the cache."""
    file_store.save("demo", {**token(), "client_secret": SECRET, "password": "hunter2-canary"})
    raw = file_store.path("demo").read_text()
    assert SECRET not in raw and "hunter2-canary" not in raw and "client_secret" not in raw
    assert "client_secret" not in file_store.load("demo")


def test_tokens_never_reach_os_environ(file_store: FileStore):
    """Case 40: saving and loading leaves the environment untouched."""
    before = dict(os.environ)
    file_store.save("demo", token())
    file_store.load("demo")
    MemoryStore().save("demo", token())
    assert dict(os.environ) == before
    assert not any(ACCESS in v or REFRESH in v for v in os.environ.values())


# -- file: atomic writes (cases 18, 21) -------------------------------------------------


def test_crash_during_replace_keeps_old_token_and_leaves_no_temp_file(file_store: FileStore, store_dir: Path,
                                                                     monkeypatch):
    """Case 21: a failed write never leaves a half-written cache; the old token survives."""
    file_store.save("demo", token(access="old-access"))
    monkeypatch.setattr(os, "replace", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(StoreError, match="previous copy is unchanged"):
        file_store.save("demo", token(access="new-access"))
    monkeypatch.undo()
    assert file_store.load("demo")["access_token"] == "old-access"
    assert [p.name for p in store_dir.iterdir() if p.suffix == ".tmp"] == []


def test_crash_during_write_keeps_old_token(file_store: FileStore, store_dir: Path, monkeypatch):
    """Case 21: a failure while writing the temp file (disk full) leaves the old file intact."""
    file_store.save("demo", token(access="old-access"))
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(StoreError):
        file_store.save("demo", token(access="new-access"))
    monkeypatch.undo()
    assert file_store.load("demo")["access_token"] == "old-access"
    assert not list(store_dir.glob("*.tmp"))


def test_rotated_refresh_token_replaces_the_old_one(file_store: FileStore):
    """Case 18: the new refresh token is what a second reader sees."""
    file_store.save("demo", token(refresh="rt-1"))
    file_store.save("demo", token(refresh="rt-2"))
    assert FileStore(file_store.directory).load("demo")["refresh_token"] == "rt-2"


def test_reader_never_sees_a_half_written_file(file_store: FileStore):
    """Case 21: concurrent reads during many writes always parse (atomic replace)."""
    file_store.save("demo", token())
    stop, bad = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            data = file_store.load("demo")
            if data is None or not data["access_token"].startswith("tok-"):
                bad.append(data)

    big = "x" * 200_000
    file_store.save("demo", token(access="tok-0" + big))
    reader = threading.Thread(target=read)
    reader.start()
    for i in range(30):
        file_store.save("demo", token(access=f"tok-{i}" + big))
    stop.set()
    reader.join()
    assert bad == []


def test_corrupt_file_is_absent_with_one_warning(file_store: FileStore):
    """Corrupt JSON is treated as no token, warned once, never a crash."""
    file_store.save("demo", token())
    path = file_store.path("demo")
    path.write_bytes(b'{"access_token": "trunc')
    with pytest.warns(RuntimeWarning, match="corrupt") as record:
        assert file_store.load("demo") is None
        assert file_store.load("demo") is None
    assert len(record) == 1
    file_store.save("demo", token())  # a good save repairs it
    assert file_store.load("demo")["access_token"] == ACCESS


def test_purge_refresh_token_on_disk(file_store: FileStore):
    """Case 17: invalid_grant purges the refresh token from the cache too."""
    file_store.save("demo", token())
    file_store.purge_refresh_token("demo")
    data = file_store.load("demo")
    assert data["refresh_token"] is None and data["access_token"] == ACCESS
    assert REFRESH not in file_store.path("demo").read_text()


# -- cross-process lock (case 20) -----------------------------------------------------------


def _contend(directory: str, log: str, rounds: int, barrier) -> None:
    store = FileStore(directory)
    barrier.wait()  # both processes are up before either enters
    for _ in range(rounds):
        with store.lock("shared"):
            with open(log, "a") as handle:
                handle.write(f"S {os.getpid()} {time.time():.6f}\n")
            time.sleep(0.02)
            with open(log, "a") as handle:
                handle.write(f"E {os.getpid()} {time.time():.6f}\n")


def _refresh_once(directory: str, refreshes: str, barrier) -> None:
    """What a session does: lock, re-read, refresh only if still expired, save, unlock."""
    store = FileStore(directory)
    barrier.wait()
    with store.lock("shared"):
        current = store.load("shared")
        if current["expires_at"] < time.time():
            with open(refreshes, "a") as handle:
                handle.write(f"{os.getpid()}\n")
            time.sleep(0.1)  # the token request
            store.save("shared", token(access=f"fresh-{os.getpid()}", refresh="rt-2"))


def _spawn(target, *args) -> list:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=args) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    return procs


@posix_only
def test_two_processes_never_overlap_in_the_lock(file_store: FileStore, tmp_path: Path):
    """Case 20: critical sections of two processes sharing the store never overlap."""
    log = tmp_path / "log.txt"
    barrier = multiprocessing.get_context("spawn").Barrier(2)
    _spawn(_contend, str(file_store.directory), str(log), 5, barrier)
    lines = [line.split() for line in log.read_text().splitlines()]
    assert len(lines) == 20 and len({pid for _, pid, _ in lines}) == 2
    for start, end in zip(lines[::2], lines[1::2]):  # strictly S/E pairs from the same process
        assert start[0] == "S" and end[0] == "E" and start[1] == end[1]
    spans = sorted((float(s[2]), float(e[2])) for s, e in zip(lines[::2], lines[1::2]))
    assert all(nxt[0] >= prev[1] for prev, nxt in zip(spans, spans[1:]))


@posix_only
def test_two_kernels_refresh_once(file_store: FileStore, tmp_path: Path):
    """Case 20: two processes across an expiry: one refresh; the other adopts the stored token."""
    file_store.save("shared", token(access="stale", refresh="rt-1", expires_at=time.time() - 10))
    refreshes = tmp_path / "refreshes.txt"
    barrier = multiprocessing.get_context("spawn").Barrier(2)
    _spawn(_refresh_once, str(file_store.directory), str(refreshes), barrier)
    assert len(refreshes.read_text().splitlines()) == 1
    assert file_store.load("shared")["access_token"].startswith("fresh-")


def _kernel_calls_api(directory: str, issuer: str, client_id: str, client_secret: str, barrier, out: str) -> None:
    """One "kernel": restore the shared token from the file store, then call the API across its expiry."""
    import warnings

    import nb_oauth2 as oa

    warnings.simplefilter("ignore")
    session = oa.login("it", issuer=issuer, client_id=client_id, client_secret=client_secret, flow="password",
                       store=FileStore(directory), name="shared")
    barrier.wait()
    status = session.get(issuer + "/api/me").status_code
    with open(out, "a") as handle:
        handle.write(f"{status}\n")


@posix_only
def test_two_kernels_sharing_the_file_store_make_one_token_request(authlib_provider, tmp_path: Path):
    """Case 20 end to end: two processes, real Sessions, Authlib server, forced expiry -> 1 refresh, 2 successes."""
    import warnings

    import nb_oauth2 as oa

    srv, client = authlib_provider, authlib_provider.clients["password"]
    store = FileStore(tmp_path / "shared")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oa.login("it", issuer=srv.issuer, client_id=client.client_id, client_secret=client.client_secret,
                 flow="password", username="alice", password="wonderland", store=store, name="shared")
    srv.expire_access_tokens()
    store.save("shared", {**store.load("shared"), "expires_at": time.time() - 10})
    before, out = srv.token_requests, tmp_path / "status.txt"
    barrier = multiprocessing.get_context("spawn").Barrier(2)
    _spawn(_kernel_calls_api, str(store.directory), srv.issuer, client.client_id, client.client_secret,
           barrier, str(out))
    assert out.read_text().split() == ["200", "200"]
    assert srv.token_requests - before == 1


def test_lock_is_reentrant_and_threads_queue(file_store: FileStore):
    inside, overlaps = [], []

    def work() -> None:
        for _ in range(10):
            with file_store.lock("k"), file_store.lock("k"):
                inside.append(1)
                overlaps.extend([1] if len(inside) > 1 else [])
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


@posix_only
def test_lock_held_elsewhere_times_out_with_typed_error(store_dir: Path):
    import fcntl

    store = FileStore(store_dir, lock_timeout=0.2)
    with store.lock("k"):
        pass
    fd = os.open(next(store_dir.glob("*.lock")), os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: like another process
    try:
        with pytest.raises(StoreError, match="held the token store lock"):
            with store.lock("k"):
                pass
    finally:
        os.close(fd)


# -- keyring, factory, default dir ---------------------------------------------------------


class _MemoryKeyring:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, key: str) -> str | None:
        return self.data.get((service, key))

    def set_password(self, service: str, key: str, value: str) -> None:
        self.data[(service, key)] = value

    def delete_password(self, service: str, key: str) -> None:
        del self.data[(service, key)]


def test_keyring_store_round_trip_without_secrets(monkeypatch, tmp_path: Path):
    fake = _MemoryKeyring()
    monkeypatch.setitem(sys.modules, "keyring", fake)
    store = KeyringStore(lock_dir=tmp_path / "locks")
    store.save("demo", {**token(), "client_secret": SECRET})
    assert SECRET not in repr(fake.data)
    with store.lock("demo"):
        store.purge_refresh_token("demo")
    assert store.load("demo")["refresh_token"] is None
    store.delete("demo")
    assert store.load("demo") is None and fake.data == {}


def test_keyring_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keyring", None)
    with pytest.raises(ConfigurationError, match=r"pip install nb_oauth2\[keyring\]"):
        make_store("keyring")


def test_make_store_kinds(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("NB_OAUTH2_STATE_DIR", str(tmp_path / "s"))
    assert isinstance(make_store(), MemoryStore)
    file_store = make_store("file")
    assert isinstance(file_store, FileStore) and file_store.directory == tmp_path / "s"
    mine = MemoryStore()
    assert make_store(mine) is mine and isinstance(mine, TokenStore)
    with pytest.raises(ConfigurationError, match="memory, file, keyring"):
        make_store("disk")


def test_default_store_dir_precedence(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("NB_OAUTH2_STATE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_store_dir() == tmp_path / "explicit"
    monkeypatch.delenv("NB_OAUTH2_STATE_DIR")
    assert default_store_dir() == tmp_path / "xdg" / "nb_oauth2"
    monkeypatch.delenv("XDG_STATE_HOME")
    if sys.platform.startswith("linux"):
        assert default_store_dir() == Path.home() / ".local" / "state" / "nb_oauth2"
