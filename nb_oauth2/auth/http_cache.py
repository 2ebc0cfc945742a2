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
  cache key is computed), and one hash of the URL once something is. (The key and the stored copy:
  :mod:`~nb_oauth2.auth.cache_entries`.)
* **No secret is stored.** The stored request keeps method, URL (secret parameters masked) and
  the headers ``Vary`` may name; never ``Authorization``, cookies or a header that names or holds a secret; the
  response loses ``Set-Cookie``, its rate-limit headers (a 304 brings the current ones) and
  ``Authorization`` from ``Vary`` (the cache is one user's: the token is the partition, not a
  variant). A body that contains one of the session's own tokens is not stored.
* **One user's data, one place.** In memory the cache belongs to one Session (a new login, a new
  session, an empty cache), bounded to ``max_memory_bytes`` (oldest entries go first). On disk
  (opt-in) one SQLite file per partition (a damaged file is replaced by an empty one) (provider, client, profile and the signed-in subject when
  the id_token tells it), mode 0600 in a 0700 directory under the user cache dir. ``clear()``
  (called by logout) deletes the entries. (The memory and SQLite stores:
  :mod:`~nb_oauth2.auth.cache_backends`.)
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import requests
from requests.structures import CaseInsensitiveDict

from ..core.errors import ConfigurationError
from .cache_backends import default_cache_dir, drop_entry, is_damage, open_backend, rebuilt_sqlite
from .cache_entries import RecordingResponse, cache_key, cache_settings, redirected, sanitized, storable

if TYPE_CHECKING:  # requests-cache is imported on first use (80 ms off `import nb_oauth2`)
    from requests_cache import CachedResponse
    from requests_cache.backends import BaseCache
    from requests_cache.policy import CacheActions

__all__ = ["HttpCache", "make_http_cache", "default_cache_dir", "cache_key", "subject_of", "ENV_VAR", "MAX_MEMORY_BYTES"]

#: ``memory`` (the default), ``disk``, ``off``, or a directory for the disk cache
ENV_VAR = "NB_OAUTH2_HTTP_CACHE"
#: bytes of bodies one session keeps in memory; the oldest entries are dropped past it
MAX_MEMORY_BYTES = 256 * 1024 * 1024
_OFF = ("off", "false", "0", "no", "none")
_damage = is_damage  # its name before the split (tests/test_release_checks.py)


def subject_of(id_token: str | None) -> str:
    """The ``sub`` claim of an id_token, unverified (it only names a cache partition), or ""."""
    try:
        payload = (id_token or "").split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return ""
    return str(claims.get("sub") or "") if isinstance(claims, dict) else ""


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
        self.settings = cache_settings()
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
        return open_backend(self.directory, name, max_memory_bytes=self.max_memory_bytes, settings=self.settings)

    def _damaged(self, backend: BaseCache) -> None:
        """A disk file found damaged in use: replaced by an empty one (this session's next request uses it)."""
        with self._lock:
            if self._backend is backend and self.directory is not None:
                path = Path(backend.db_path)
                try:
                    backend.close()
                except sqlite3.Error:
                    pass
                self._backend = rebuilt_sqlite(path, self.settings)

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
            if is_damage(exc):
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
            if redirected(response):  # requests forwarded our validator to where the URL now redirects: that
                response.close()  # resource's 304, not this entry's; asked again without it
                drop_entry(backend, key)
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
            backend.save_response(sanitized(cached, cached.content), actions.cache_key, actions.expires)
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
        if not storable(response):
            if stored and key is not None:
                drop_entry(backend, key)
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
                drop_entry(backend, key)
                return
            try:
                backend.save_response(sanitized(done, body), key, actions.expires)
            except sqlite3.DatabaseError as exc:
                if is_damage(exc):
                    self._damaged(backend)

        if response._content_consumed and isinstance(response._content, bytes):  # read already (stream=False)
            store(response, response._content)
        elif type(response) is requests.Response:
            response.__class__ = RecordingResponse
            response._nb_store = store  # type: ignore[attr-defined]
        return response

    def _holds_secret(self, body: bytes) -> bool:
        return any(secret and secret.encode() in body for secret in self.secrets())


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
