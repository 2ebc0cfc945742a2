"""What the revalidation cache stores, and under which key (no I/O: see cache_backends and http_cache).

* **The key** (:func:`cache_key`): method, URL with its query sorted and secret values masked,
  ``Accept`` and the headers ``Vary`` names; never ``Authorization`` or cookies (one cache is one user's).
* **What may be stored** (:func:`storable`): a 200 JSON answer to a GET that carries an ``ETag`` or a
  ``Last-Modified``, without ``Cache-Control: no-store`` or ``Vary: *``, not reached by a redirect
  (each hop is stored under its own URL); its body read to its verified end
  (:class:`RecordingResponse`), at most :data:`MAX_BODY_BYTES`.
* **The stored copy** (:func:`sanitized`): no credentials, cookies, secret parameters or rate limits.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests.structures import CaseInsensitiveDict

from ..core.redact import RedactingFilter, is_secret_param, redact

if TYPE_CHECKING:  # requests-cache is imported on first use (80 ms off `import nb_oauth2`)
    from requests_cache import CachedResponse

__all__ = ["cache_key", "cache_settings", "storable", "redirected", "sanitized", "RecordingResponse",
           "MAX_BODY_BYTES"]

#: a body larger than this is never stored (the page itself may still be read)
MAX_BODY_BYTES = 50_000_000
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


def cache_settings() -> Any:
    """requests-cache's settings for a cache that always revalidates and stores only validated 200 GETs."""
    _redact_requests_cache_logs()
    from requests_cache.policy import CacheSettings
    from requests_cache.policy.settings import DEFAULT_IGNORED_PARAMS

    ignored = tuple(DEFAULT_IGNORED_PARAMS) + ("Cookie", "Set-Cookie", "authorization", "cookie")
    return CacheSettings(expire_after=0, always_revalidate=True, allowable_codes=(200,), allowable_methods=("GET",),
                         cache_control=False, ignored_parameters=ignored)


def _has_validator(headers: Any) -> bool:
    return "ETag" in headers or "Last-Modified" in headers


def _is_json(headers: Any) -> bool:
    media = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def redirected(response: requests.Response) -> bool:
    """Did ``response`` come after a redirect (not after a 401 the auth object answered by a retry)?"""
    return any(hop.is_redirect for hop in response.history)


def storable(response: requests.Response) -> bool:
    """Can ``response`` be stored and revalidated later (validator, 200, JSON, storable, its own URL)?"""
    headers = response.headers
    # a redirected answer is stored by its own hop, under its own URL (never under the first one:
    # the next redirect may go elsewhere); Vary: * never matches a later request (RFC 9111 4.1)
    return (_has_validator(headers) and response.status_code == 200 and _is_json(headers)
            and "no-store" not in headers.get("Cache-Control", "") and not redirected(response)
            and "*" not in (v.strip() for v in headers.get("Vary", "").split(",")))


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


class RecordingResponse(requests.Response):
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


def sanitized(response: requests.Response, body: bytes) -> CachedResponse:
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
