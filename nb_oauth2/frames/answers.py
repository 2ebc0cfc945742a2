"""One HTTP answer read into a :class:`Response`, or into the typed error that says what went wrong.

No retries and no waits here (that is :class:`~nb_oauth2.frames.fetch.Fetcher`'s loop): the body is
read in chunks under a byte cap (:func:`read_body`), checked for its type, size and nesting and parsed
(:func:`decode`, :func:`parse_json`); an error status becomes :class:`~nb_oauth2.core.errors.APIError`,
:class:`~nb_oauth2.core.errors.InvalidToken` or :class:`~nb_oauth2.core.errors.InsufficientScope` with
what the body says in one line (:func:`api_error`). Every message names the URL redacted; the
redaction is computed only when an error is raised.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import requests

from ..core.challenges import parse_www_authenticate
from ..core.errors import APIError, InsufficientScope, InvalidToken, ResultTooLarge, TransportError, UnexpectedContentType
from ..core.http_errors import map_request_error, transport_error
from ..core.redact import redact_url, snippet
from .nesting import check_nesting

__all__ = ["Response", "loads", "fast_enabled", "decode", "parse_json", "read_body", "api_error",
           "not_modified_error", "too_large_error", "deadline_error"]

_CHUNK = 1 << 18
#: the next step an API error's status suggests (5xx: any server error)
_STATUS_HINTS = {
    400: "Check the URL's query parameters.",
    404: "Check the URL: the API has nothing at this path.",
    405: "This URL does not answer GET.",
    500: "The server failed, not the request: try again later.",
}
_DETAIL_KEYS = ("error_description", "message", "detail", "title", "error")
_TITLE = re.compile(r"<title[^>]*>([^<]{1,300})</title>", re.IGNORECASE)
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]{0,1000}>")


@dataclass
class Response:
    """A decoded JSON answer: final URL, status, headers, raw bytes and parsed body.

    One HTTP response, as fetched and decoded; readers' ``Page`` is what users are handed
    instead: the records of one page of a paginated result, with its place in the walk.
    """

    url: str
    status: int
    headers: Mapping[str, str]
    raw: bytes = field(repr=False)
    data: Any = field(repr=False)


def fast_enabled() -> bool:
    """False when ``NB_OAUTH2_NO_FAST=1``: ignore orjson and pyarrow even if installed."""
    return os.environ.get("NB_OAUTH2_NO_FAST", "") in ("", "0")


def loads(data: bytes) -> Any:
    """Parse JSON bytes with orjson when installed (and allowed), else :mod:`json`."""
    if fast_enabled():
        try:
            import orjson
        except ImportError:
            pass
        else:
            return orjson.loads(data)
    return json.loads(data)


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json", "text/javascript", "application/javascript") or \
        media.endswith("+json")


def _error_detail(text: str) -> str:
    """What an error body says, in one short line: a JSON body's message field, else the text's start."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in _DETAIL_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return snippet(value, 200)
    if text.lstrip().startswith("<"):  # an HTML error page: its title, else its text without the markup
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", _SCRIPT.sub(" ", text))
    return snippet(text, 200)


def too_large_error(url: str, what: str, max_bytes: int | None) -> ResultTooLarge:
    return ResultTooLarge(
        f"A page of {redact_url(url)} is {what} (max_page_bytes={max_bytes:,}).", hint="Ask for smaller "
        "pages (e.g. a per_page/limit parameter) or raise max_page_bytes=.", url=redact_url(url))


def deadline_error(url: str, deadline: float) -> TransportError:
    return transport_error(
        f"GET {redact_url(url)} did not finish within deadline={deadline:g} s (the server sends too "
        "slowly).", hint="Try again later or raise deadline=.", retryable=False, reason="deadline")


def not_modified_error(url: str, method: str) -> APIError:
    """A 304 that reached the reader: nothing cached was offered (the session's cache serves its own 304s)."""
    return APIError(f"{method} {redact_url(url)} answered 304 Not Modified, but no cached copy was offered "
                    "for it: there is no body to read (a misbehaving server or proxy, or an If-None-Match "
                    "set on the session's headers).", hint="Remove If-None-Match / If-Modified-Since from "
                    "session.headers, or report the server's behaviour.", url=redact_url(url), status=304)


def read_body(resp: requests.Response, url: str, *, limit: int | None, raise_over: bool = True) -> bytes:
    """Read the body in chunks, stopping past ``limit`` bytes (memory stays bounded): ResultTooLarge, or
    with ``raise_over=False`` the first ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in resp.iter_content(chunk_size=_CHUNK):
            size += len(chunk)
            if limit is not None and size > limit:
                if raise_over:
                    raise too_large_error(url, f"more than {limit:,} bytes", limit)
                chunks.append(chunk[: max(0, limit - (size - len(chunk)))])
                break
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise map_request_error(exc, url=url, what=f"Reading {redact_url(url)}") from None
    finally:
        resp.close()
    return b"".join(chunks)


def api_error(resp: requests.Response, url: str, method: str = "GET") -> APIError:
    """The typed error of an error status the reader will not retry (its body read, at most 2,000 bytes)."""
    status = resp.status_code
    safe_url = redact_url(url)
    challenge = parse_www_authenticate(resp.headers.get("WWW-Authenticate"))
    code = challenge.get("error")
    if status == 401:
        return InvalidToken(
            f"{method} {safe_url} answered 401 ({code or 'unauthorized'}) even after the session's refresh.",
            hint="Sign in again.", url=safe_url, status=status, error=code or "invalid_token")
    if status == 403 and code == "insufficient_scope":
        scope = challenge.get("scope")
        need = f"the scope {scope!r}" if scope else "a broader scope"
        return InsufficientScope(
            f"{method} {safe_url} needs {need}; sign in again asking for it.", url=safe_url, status=status,
            error=code, description=scope)
    body = read_body(resp, url, limit=2000, raise_over=False)
    detail = _error_detail(body.decode("utf-8", "replace"))
    said = f": {detail.rstrip(' .;:,')}" if detail else ""
    hint = _STATUS_HINTS.get(500 if status >= 500 else status)
    return APIError(f"{method} {safe_url} answered HTTP {status}{said}.", hint=hint, url=safe_url, status=status,
                    error=code)


def parse_json(resp: Response) -> Response:
    """Parse ``resp.raw`` into ``resp.data`` (UnexpectedContentType when it is not JSON)."""
    try:
        resp.data = loads(resp.raw) if resp.raw.strip() else None
    except ValueError:
        raise UnexpectedContentType(
            f"GET {redact_url(resp.url)} answered HTTP {resp.status} with a body that is not JSON: "
            f"{snippet(resp.raw[:300].decode('utf-8', 'replace'), 120)}", url=redact_url(resp.url),
            status=resp.status) from None
    return resp


def decode(resp: requests.Response, url: str, *, max_bytes: int | None, parse: bool = True,
           method: str = "GET") -> Response:
    """``resp``'s body as a :class:`Response` (parsed unless ``parse=False``): a JSON type (or none, text/plain,
    octet-stream), at most ``max_bytes``, nested no deeper than the parsers allow (case 55)."""
    ctype = resp.headers.get("Content-Type", "")
    if ctype and not _is_json_type(ctype) and not ctype.lower().startswith(("text/plain", "application/octet")):
        preview = snippet(read_body(resp, url, limit=300, raise_over=False).decode("utf-8", "replace"), 120)
        safe_url = redact_url(url)
        raise UnexpectedContentType(
            f"{method} {safe_url} answered HTTP {resp.status_code} with {snippet(ctype.split(';')[0].strip(), 60)}, "
            f"not JSON (often a login page, a proxy page or a wrong URL): {preview}", url=safe_url,
            status=resp.status_code)
    length = resp.headers.get("Content-Length")
    if max_bytes is not None and length and length.isdigit() and int(length) > max_bytes:
        resp.close()
        raise too_large_error(url, f"{int(length):,} bytes", max_bytes)
    raw = read_body(resp, url, limit=max_bytes)
    check_nesting(raw, url=resp.url or url)  # before any parser sees the bytes (case 55)
    out = Response(url=resp.url or url, status=resp.status_code, headers=resp.headers, raw=raw, data=None)
    return parse_json(out) if parse else out
