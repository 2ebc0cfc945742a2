"""HTTP revalidation for one session: re-runs ask "changed?" (ETag, Last-Modified) and reuse the body.

Built on requests-cache: its backends store the responses (memory by default, SQLite when opted
in), its :class:`~requests_cache.policy.CacheActions` decides the conditional request and merges a
304 into the cached response, and its :class:`~requests_cache.CachedResponse` serves the body
(streamed reads, ``iter_content``, ``close``) exactly as a live response. :class:`HttpCache` only
wires these into :meth:`Session.send <nb_oauth2.auth.session.Session.send>`, with the choices a
notebook needs that ``CachedSession`` does not make:

* **Always revalidate.** Nothing is served without asking: ``expire_after=0`` and
  ``always_revalidate``; ``Cache-Control: max-age`` (GitHub: ``private, max-age=60``) is ignored.
* **Only what can be revalidated**: a 200 JSON answer to a GET that carries an ``ETag`` or a
  ``Last-Modified``, without ``Cache-Control: no-store`` or ``Vary: *``, whose body was read to its
  verified end; a redirected answer under its own URL only (each hop is its own exchange).
  The body is recorded *while the caller reads it*, so the caller's byte cap and deadline apply
  (``CachedSession`` reads the whole body inside ``send``); a body abandoned over a cap, cut at a
  deadline or delimited only by the connection's close is never stored. An error answer deletes
  the URL's entry. Pages without validators cost two header lookups while nothing is stored (no
  cache key is computed), and one hash of the URL once something is.
* **No secret is stored.** The stored request keeps method, URL (secret parameters masked) and
  the headers ``Vary`` may name; never ``Authorization``, cookies or a header that names or holds a secret; the
  response loses ``Set-Cookie``, its rate-limit headers (a 304 brings the current ones) and
  ``Authorization`` from ``Vary`` (the cache is one user's: the token is the partition, not a
  variant). A body that contains one of the session's own tokens is not stored.
* **One user's data, one place.** In memory the cache belongs to one Session (a new login, a new
  session, an empty cache), bounded to ``max_memory_bytes`` (oldest entries go first). On disk
  (opt-in) one SQLite file per partition (a damaged file is replaced by an empty one) (provider, client, profile and the signed-in subject when
  the id_token tells it), mode 0600 in a 0700 directory under the user cache dir. ``clear()``
  (called by logout) deletes the entries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import platformdirs
import requests
from requests.structures import CaseInsensitiveDict

from ..core.errors import ConfigurationError
from ..core.redact import RedactingFilter, is_secret_param, redact
from .store_dirs import ensure_private_dir, token_file_stem

if TYPE_CHECKING:  # requests-cache is imported on first use (80 ms off `import nb_oauth2`)
    from requests_cache import CachedResponse
    from requests_cache.backends import BaseCache
    from requests_cache.policy import CacheActions

__all__ = ["HttpCache", "make_http_cache", "default_cache_dir", "cache_key", "subject_of", "ENV_VAR", "MAX_MEMORY_BYTES"]

#: ``memory`` (the default), ``disk``, ``off``, or a directory for the disk cache
ENV_VAR = "NB_OAUTH2_HTTP_CACHE"
#: bytes of bodies one session keeps in memory; the oldest entries are dropped past it
MAX_MEMORY_BYTES = 256 * 1024 * 1024
#: a body larger than this is never stored (the page itself may still be read)
MAX_BODY_BYTES = 50_000_000
_OFF = ("off", "false", "0", "no", "none")
_SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "dpop")
_DROPPED_RESPONSE_HEADERS = ("set-cookie", "retry-after")
_RATE_PREFIXES = ("x-ratelimit", "ratelimit", "x-rate-limit")


@lru_cache(maxsize=None)
def _redact_requests_cache_logs() -> None:
    """requests-cache logs URLs at DEBUG (``access_token=`` included): its loggers get the package's filter
    (a filter sees only its own logger's records, so each one of them)."""
    import logging

    import requests_cache  # noqa: F401  (its loggers exist once its modules are imported)
    from requests_cache.policy import actions  # noqa: F401

    names = [n for n in list(logging.Logger.manager.loggerDict) if n.split(".")[0] == "requests_cache"]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


def _settings() -> Any:
    """requests-cache's settings for a cache that always revalidates and stores only validated 200 GETs."""
    _redact_requests_cache_logs()
    from requests_cache.policy import CacheSettings
    from requests_cache.policy.settings import DEFAULT_IGNORED_PARAMS

    ignored = tuple(DEFAULT_IGNORED_PARAMS) + ("Cookie", "Set-Cookie", "authorization", "cookie")
    return CacheSettings(expire_after=0, always_revalidate=True, allowable_codes=(200,), allowable_methods=("GET",),
                         cache_control=False, ignored_parameters=ignored)


def default_cache_dir() -> Path:
    """The platform's user cache dir for nb_oauth2, ``http`` below it (``~/.cache/nb_oauth2/http``)."""
    return Path(platformdirs.user_cache_dir("nb_oauth2", appauthor=False)).expanduser() / "http"


def subject_of(id_token: str | None) -> str:
    """The ``sub`` claim of an id_token, unverified (it only names a cache partition), or ""."""
    try:
        payload = (id_token or "").split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return ""
    return str(claims.get("sub") or "") if isinstance(claims, dict) else ""


def _has_validator(headers: Any) -> bool:
    return "ETag" in headers or "Last-Modified" in headers


def _is_json(headers: Any) -> bool:
    media = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def _masked_url(url: str) -> str:
    """``url`` with the values of secret-looking query parameters masked (stored keys and URLs)."""
    if "?" not in url:
        return url
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(is_secret_param(name) for name, _ in pairs):
        return url
    query = urlencode([(k, "REDACTED" if is_secret_param(k) else v) for k, v in pairs])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _canonical_url(url: str) -> str:
    """``url`` with its query sorted and secret values masked: the same for the request as sent and for
    the stored copy (requests-cache sorts what it stores)."""
    if "?" not in url:
        return url
    parts = urlsplit(url)
    pairs = sorted((k, "REDACTED" if is_secret_param(k) else v)
                   for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(pairs), ""))


def cache_key(request: Any, match_headers: Iterable[str] | bool | None = None, **_: Any) -> str:
    """The key of a request: method, URL (query order ignored, secrets masked), ``Accept`` and the headers
    ``Vary`` names (never Authorization or cookies: one cache is one user's). No URL normalisation."""
    digest = hashlib.blake2b(digest_size=12)
    headers = request.headers or {}
    names = ["Accept"]
    if match_headers and match_headers is not True:
        names += [n for n in match_headers if n.lower() not in ("authorization", "cookie", "accept")]
    digest.update(f"{request.method}\n{_canonical_url(request.url or '')}".encode())
    for name in sorted(names, key=str.lower):
        digest.update(f"\n{name.lower()}={headers.get(name, '')}".encode())
    return digest.hexdigest()


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


def _drop(backend: BaseCache, key: str) -> None:
    try:
        del backend.responses[key]
    except KeyError:
        pass


def _damage(exc: sqlite3.DatabaseError) -> bool:
    """Is the SQLite file damaged (not a database, malformed), not just busy or locked?"""
    name = getattr(exc, "sqlite_errorname", "")
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or (not name and type(exc) is sqlite3.DatabaseError)


def _redirected(response: requests.Response) -> bool:
    """Did ``response`` come after a redirect (not after a 401 the auth object answered by a retry)?"""
    return any(hop.is_redirect for hop in response.history)


def _body_size(response: Any) -> int:
    return len(getattr(response, "_content", None) or b"") if response is not None else 0


class _RecordingResponse(requests.Response):
    """A live streamed response that gives its body to the cache once read to its verified end."""

    _nb_store: Callable[[requests.Response, bytes], None]

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
        chunks: list[bytes] | None = [] if not decode_unicode else None
        size = 0
        for chunk in super().iter_content(chunk_size, decode_unicode):
            if chunks is not None:
                size += len(chunk)
                chunks = chunks if size <= MAX_BODY_BYTES else None
                if chunks is not None:
                    chunks.append(chunk)
            yield chunk
        if chunks is not None and _read_to_verified_end(self):
            self._nb_store(self, b"".join(chunks))


def _read_to_verified_end(response: requests.Response) -> bool:
    """Did the body end as its framing says (chunked, or Content-Length bytes), not at a cut connection?"""
    raw = response.raw
    if getattr(raw, "chunked", False):
        return True  # urllib3 raises on a chunked body that ends early
    length = response.headers.get("Content-Length", "")
    tell = getattr(raw, "tell", None)
    return length.isdigit() and tell is not None and tell() == int(length)


class HttpCache:
    """The revalidation cache of one session (see the module docstring).

    ``directory``: None keeps it in memory; a directory stores one SQLite file per partition there.
    ``partition()`` names whose data this is (provider, client, profile, subject); ``secrets()`` the
    session's current token strings (a body containing one is not stored).
    """

    def __init__(self, *, directory: Path | None = None, partition: Callable[[], str] = lambda: "",
                 secrets: Callable[[], Iterable[str]] = tuple, max_memory_bytes: int = MAX_MEMORY_BYTES) -> None:
        self.directory = directory
        self.partition = partition
        self.secrets = secrets
        self.max_memory_bytes = max_memory_bytes
        self.settings = _settings()
        self._lock = threading.Lock()
        self._backend: BaseCache | None = None
        self._partition: str | None = None
        self._generation = 0  # bumped by clear(): a body still being read then is not stored after it
        self.revalidated = 0  # 304s answered from the cache (tests, status)

    @property
    def kind(self) -> str:
        return "memory" if self.directory is None else "disk"

    def __repr__(self) -> str:
        return f"<HttpCache {self.kind}, {len(self)} entries>"

    def __len__(self) -> int:
        backend = self._backend
        return len(backend.responses) if backend is not None else 0

    @property
    def path(self) -> Path | None:
        """The SQLite file of the current partition (disk only; None before the first request)."""
        backend = self._backend
        return Path(backend.db_path) if backend is not None and self.directory is not None else None

    # -- storage -----------------------------------------------------------------

    def backend(self) -> BaseCache:
        """The store of the current partition (a new one when the signed-in user changed)."""
        name = self.partition()
        backend = self._backend
        if backend is not None and name == self._partition:
            return backend
        with self._lock:
            if self._backend is None or name != self._partition:
                old, self._backend = self._backend, self._open(name)
                self._partition = name
                if old is not None:
                    if self.directory is None:
                        old.clear()  # another user's bodies: gone
                    old.close()
            return self._backend

    def _open(self, name: str) -> BaseCache:
        from requests_cache.backends import BaseCache, SQLiteCache

        if self.directory is None:
            cache = BaseCache()
            cache.responses = _bounded_memory()(self.max_memory_bytes)
        else:
            directory = ensure_private_dir(self.directory)
            path = directory / f"{token_file_stem(name or 'default')}.sqlite"
            # created private (sqlite's journals copy its mode); a symlink in its place is refused
            fd = os.open(path, os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), 0o600)
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
            try:
                cache = SQLiteCache(path, serializer="json")
                len(cache.responses)  # a damaged file fails here (or on first use: _rebuild)
            except sqlite3.DatabaseError as exc:  # it is a cache: rebuilt empty, never a failed request
                if not _damage(exc):
                    raise  # busy or locked by another process: not a reason to delete its entries
                cache = self._rebuilt(path)
        cache._settings = self.settings
        return cache

    @staticmethod
    def _rebuilt(path: Path) -> BaseCache:
        """An empty SQLite cache in place of the damaged file at ``path`` (its journals too)."""
        from requests_cache.backends import SQLiteCache

        for stale in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))):
            try:
                stale.unlink()
            except FileNotFoundError:
                pass
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        os.close(fd)
        return SQLiteCache(path, serializer="json")

    def _damaged(self, backend: BaseCache) -> None:
        """A disk file found damaged in use: replaced by an empty one (this session's next request uses it)."""
        with self._lock:
            if self._backend is backend and self.directory is not None:
                path = Path(backend.db_path)
                try:
                    backend.close()
                except sqlite3.Error:
                    pass
                self._backend = self._rebuilt(path)
                self._backend._settings = self.settings

    def clear(self) -> None:
        """Delete every stored response of this session (logout: cached bodies are the user's data)."""
        with self._lock:
            self._generation += 1
            if self._backend is not None:
                self._backend.clear()

    def close(self) -> None:
        with self._lock:
            backend, self._backend, self._partition = self._backend, None, None
        if backend is not None:
            backend.close()

    # -- the exchange ---------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, send: Callable[[requests.PreparedRequest], requests.Response],
             **kwargs: Any) -> requests.Response:
        """Send ``request`` with ``send`` (the session's own), conditionally when a validated copy is stored."""
        headers = request.headers
        if request.method != "GET" or "Range" in headers or "If-None-Match" in headers \
                or "If-Modified-Since" in headers:  # the caller's own conditional request: theirs to answer
            return send(request)
        try:
            backend = self.backend()
        except sqlite3.OperationalError:  # the disk file busy or locked past sqlite's timeout: uncached
            return send(request)
        if self.directory is None and not backend.responses:  # nothing stored yet: no key to compute
            return self._arrange_store(send(request), request, None, backend, stored=False)
        key = cache_key(request)
        try:
            cached = backend.get_response(key)
        except sqlite3.DatabaseError as exc:  # damaged: rebuilt; busy: this request goes uncached
            if _damage(exc):
                self._damaged(backend)
            return send(request)
        if cached is None:
            return self._arrange_store(send(request), request, key, backend, stored=False)
        from requests_cache.policy import CacheActions

        actions = CacheActions.from_request(key, request, self.settings)
        if actions.skip_read:  # the request said no-cache / no-store
            return self._arrange_store(send(request), request, key, backend)
        actions.update_from_cached_response(cached, cache_key, **kwargs)
        plain = request.copy()
        if actions.resend_request and not actions.vary_cache_key:
            actions.update_request(request)  # If-None-Match / If-Modified-Since
        response = send(request)
        if response.status_code == 304 and actions.resend_request and not actions.vary_cache_key:
            if _redirected(response):  # requests forwarded our validator to where the URL now redirects: that
                response.close()  # resource's 304, not this entry's; asked again without it
                _drop(backend, key)
                return self._arrange_store(send(plain), plain, key, backend)
            return self._serve(response, cached, actions, backend)
        return self._arrange_store(response, request, key, backend)

    def _serve(self, response: requests.Response, cached: CachedResponse, actions: CacheActions,
               backend: BaseCache) -> CachedResponse:
        """A 304: the stored body with the new headers; the live (bodiless) response is released."""
        from requests_cache import CachedResponse

        response.close()
        cached = CachedResponse.from_response(cached)  # a copy: threads never share one object
        cached.headers = CaseInsensitiveDict(cached.headers)
        actions.update_revalidated_response(response, cached)
        if not actions.skip_write:
            backend.save_response(self._sanitized(cached, cached.content), actions.cache_key, actions.expires)
        served = CachedResponse.from_response(cached)
        served.url, served.request, served.history = response.url, response.request, response.history
        served.revalidated = True
        with self._lock:
            self.revalidated += 1
        return served

    def _arrange_store(self, response: requests.Response, request: requests.PreparedRequest, key: str | None,
                       backend: BaseCache, *,
                       stored: bool = True) -> requests.Response:
        """Store ``response`` once its body is read, when it can be revalidated; else drop the URL's entry."""
        headers = response.headers
        if not _has_validator(headers) or response.status_code != 200 or not _is_json(headers) \
                or "no-store" in headers.get("Cache-Control", "") or _redirected(response) \
                or "*" in (v.strip() for v in headers.get("Vary", "").split(",")):
            # a redirected answer is stored by its own hop, under its own URL (never under the first one:
            # the next redirect may go elsewhere); Vary: * never matches a later request (RFC 9111 4.1)
            if stored and key is not None:
                _drop(backend, key)
            return response
        from requests_cache.policy import CacheActions

        key = key or cache_key(request)
        actions = CacheActions.from_request(key, response.request, self.settings)
        actions.update_from_response(response)
        if actions.skip_write:
            return response

        generation = self._generation

        def store(done: requests.Response, body: bytes) -> None:
            if self._backend is not backend or self._generation != generation:  # logged out, another user
                return
            if self._holds_secret(body) or any(self._holds_secret(v.encode()) for v in done.headers.values()):
                _drop(backend, key)
                return
            try:
                backend.save_response(self._sanitized(done, body), key, actions.expires)
            except sqlite3.DatabaseError as exc:
                if _damage(exc):
                    self._damaged(backend)

        if response._content_consumed and isinstance(response._content, bytes):  # read already (stream=False)
            store(response, response._content)
        elif type(response) is requests.Response:
            response.__class__ = _RecordingResponse
            response._nb_store = store  # type: ignore[attr-defined]
        return response

    def _holds_secret(self, body: bytes) -> bool:
        return any(secret and secret.encode() in body for secret in self.secrets())

    @staticmethod
    def _sanitized(response: requests.Response, body: bytes) -> CachedResponse:
        """What may be stored of ``response``: no credentials, cookies, secret parameters or rate limits."""
        from requests_cache import CachedRequest, CachedResponse

        request = response.request
        kept = CaseInsensitiveDict({name: value for name, value in request.headers.items()
                                    if name.lower() not in _SECRET_HEADERS and not is_secret_param(name)
                                    and redact(value) == value})
        headers = CaseInsensitiveDict()
        for name, value in response.headers.items():
            low = name.lower()
            if low in _DROPPED_RESPONSE_HEADERS or low.startswith(_RATE_PREFIXES) or is_secret_param(low):
                continue
            if low == "vary":
                value = ", ".join(v.strip() for v in value.split(",")
                                  if v.strip().lower() not in ("authorization", "cookie"))
                if not value:
                    continue
            headers[name] = value
        url = _masked_url(response.url or request.url or "")
        return CachedResponse(
            content=body, headers=headers, status_code=response.status_code, reason=response.reason, url=url,
            encoding=response.encoding, request=CachedRequest(method="GET", url=_masked_url(request.url or ""),
                                                               headers=kept))


def make_http_cache(setting: Any, **kwargs: Any) -> HttpCache | None:
    """The cache a ``Session(http_cache=...)`` setting asks for.

    None: ``$NB_OAUTH2_HTTP_CACHE``, else memory. True or ``"memory"``: in memory. ``"disk"``: under
    :func:`default_cache_dir`. A path: SQLite files in that directory. False or ``"off"``: none.
    """
    if setting is None:
        setting = os.environ.get(ENV_VAR, "").strip() or "memory"
    if setting is False or (isinstance(setting, str) and setting.lower() in _OFF):
        return None
    if setting is True or setting == "memory":
        return HttpCache(**kwargs)
    if setting == "disk":
        return HttpCache(directory=default_cache_dir(), **kwargs)
    if isinstance(setting, (str, os.PathLike)) and str(setting):
        return HttpCache(directory=Path(setting).expanduser(), **kwargs)
    raise ConfigurationError(f"http_cache must be True, False, 'memory', 'disk' or a directory, not "
                             f"{type(setting).__name__}.")
