"""The protected JSON API of the demo provider, in every common pagination style.

``/api/<resource>`` pages GitHub-style (``Link`` header), and
``/api/<style>/<resource>`` serves the same records in another style:
``next`` (body next URL), ``cursor``, ``pages``, ``offset`` and ``odata``.
Resources are ``events`` (scope ``read:events``) and ``users`` (``read:users``).

Pages carry an ``ETag`` (a hash of the body) and ``Cache-Control: private, no-cache``; a request
whose ``If-None-Match`` names the current one gets ``304 Not Modified`` without a body (after the
token check), as GitHub's API does. With a rate limit configured, every answer carries GitHub's
``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (epoch seconds).
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import json
import math
import threading
import time
from typing import Any, Callable
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

__all__ = ["DemoAPI", "RateLimiter", "json_response"]

_SCOPES = {"events": "read:events", "users": "read:users"}
_REALM = "nb_oauth2-demo"
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000


class BadParameter(ValueError):
    """A query parameter is not a usable number or cursor."""


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    resp = Response(body, status=status, content_type="application/json; charset=utf-8")
    resp.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


class RateLimiter:
    """At most ``limit`` requests per ``window`` seconds (sliding window); None = off."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: collections.deque[float] = collections.deque()
        self.limit: int | None = None
        self.window = 1.0
        self.retry_after = 1

    def configure(self, limit: int | None, window: float, retry_after: int) -> None:
        with self._lock:
            self.limit, self.window, self.retry_after = limit, float(window), int(retry_after)
            self._hits.clear()

    def allow(self) -> bool:
        with self._lock:
            if self.limit is None:
                return True
            now = time.monotonic()
            while self._hits and now - self._hits[0] >= self.window:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                return False
            self._hits.append(now)
            return True

    def headers(self) -> dict[str, str]:
        """GitHub's rate-limit headers for the window as it stands (none when the limit is off)."""
        with self._lock:
            if self.limit is None:
                return {}
            now = time.monotonic()
            frees_in = self.window - (now - self._hits[0]) if self._hits else self.window
            return {"X-RateLimit-Limit": str(self.limit),
                    "X-RateLimit-Remaining": str(max(0, self.limit - len(self._hits))),
                    "X-RateLimit-Reset": str(math.ceil(time.time() + max(0.0, frees_in)))}


def _int_arg(req: Request, name: str, default: int, *, low: int, high: int | None = None) -> int:
    raw = req.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name} must be an integer") from None
    if value < low:
        raise BadParameter(f"{name} must be at least {low}")
    return min(value, high) if high is not None else value


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "o":
            raise ValueError(text)
        return max(0, int(value))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadParameter("cursor is not one this API issued") from None


class DemoAPI:
    """Routes ``/api/...`` and ``/userinfo`` requests (Bearer required)."""

    def __init__(self, *, base_url: str, dataset: Callable[[], Any], verify: Callable,
                 profiles: Callable[[str], dict[str, Any]]) -> None:
        self.base_url = base_url
        self._dataset = dataset
        self._verify = verify  # (werkzeug request, scopes) -> (ok, oauthlib request)
        self._profiles = profiles
        self.rate = RateLimiter()
        self.requests_without_auth = 0
        self.not_modified = 0  # 304 answers to If-None-Match (a re-run that downloaded nothing)
        self._count_lock = threading.Lock()

    # -- auth --------------------------------------------------------------------

    def _authorize(self, req: Request, scope: str | None) -> tuple[Response | None, Any]:
        if not req.headers.get("Authorization"):
            with self._count_lock:
                self.requests_without_auth += 1
            if not req.args.get("access_token"):
                return json_response(
                    {"error": "unauthorized", "error_description": "Send 'Authorization: Bearer <token>'."},
                    401, {"WWW-Authenticate": f'Bearer realm="{_REALM}"'}), None
        ok, oreq = self._verify(req, [scope] if scope else [])
        if ok:
            return None, oreq
        error = getattr(oreq, "nb_error", None) or "invalid_token"
        if error == "insufficient_scope":
            challenge = f'Bearer realm="{_REALM}", error="insufficient_scope", scope="{scope}"'
            body = {"error": error, "error_description": f"This endpoint needs the '{scope}' scope.",
                    "scope": scope}
            return json_response(body, 403, {"WWW-Authenticate": challenge}), oreq
        description = (getattr(oreq, "nb_error_description", None)
                       or "The access token is expired, revoked or unknown.")
        challenge = f'Bearer realm="{_REALM}", error="invalid_token", error_description="{description}"'
        return json_response({"error": "invalid_token", "error_description": description}, 401,
                             {"WWW-Authenticate": challenge}), oreq

    # -- routing -------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        response = self._route(req)
        for key, value in self.rate.headers().items():
            response.headers[key] = value
        return response

    def _route(self, req: Request) -> Response:
        if req.method not in ("GET", "HEAD"):
            return json_response({"error": "method_not_allowed"}, 405, {"Allow": "GET, HEAD"})
        if not self.rate.allow():
            retry = str(self.rate.retry_after)
            return json_response({"error": "rate_limited", "error_description": "Too many requests.",
                                  "retry_after": self.rate.retry_after}, 429, {"Retry-After": retry})
        if req.path == "/userinfo":
            denied, oreq = self._authorize(req, None)
            return denied or self._userinfo(oreq)
        parts = req.path.strip("/").split("/")[1:]
        style, resource = ("link", parts[0]) if len(parts) == 1 else (tuple(parts) + ("", ""))[:2]
        handler = getattr(self, f"_style_{style}", None)
        if resource not in _SCOPES or handler is None or len(parts) > 2:
            return json_response({"error": "not_found", "error_description": f"No API at {req.path}."}, 404)
        denied, _ = self._authorize(req, _SCOPES[resource])
        if denied is not None:
            return denied
        records = getattr(self._dataset(), resource)
        try:
            return self._validated(req, handler(req, records))
        except BadParameter as exc:
            return json_response({"error": "invalid_request", "error_description": str(exc)}, 400)

    def _validated(self, req: Request, response: Response) -> Response:
        """An ETag on a 200 page; 304 without a body when the request's If-None-Match names it."""
        if response.status_code != 200:
            return response
        etag = '"' + hashlib.sha256(response.get_data()).hexdigest()[:32] + '"'
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = "private, no-cache"
        response.headers["Vary"] = "Accept, Authorization"
        asked = [tag.strip() for tag in req.headers.get("If-None-Match", "").split(",")]
        if etag in asked or f"W/{etag}" in asked:
            with self._count_lock:
                self.not_modified += 1
            headers = {k: v for k, v in response.headers.items()
                       if k in ("ETag", "Cache-Control", "Vary", "Link", "X-Total-Count")}
            return Response(status=304, headers=headers)
        return response

    def _userinfo(self, oreq: Any) -> Response:
        rec = oreq.nb_token
        if rec["user"] is None:
            return json_response({"sub": rec["client_id"], "client_id": rec["client_id"]})
        return json_response(self._profiles(rec["user"]))

    def _url(self, req: Request, **params: Any) -> str:
        merged = {k: v for k, v in req.args.items() if k not in params and k != "access_token"}
        merged.update({k: v for k, v in params.items() if v is not None})
        base = req.environ.get("nb_oauth2.base_url") or self.base_url  # the listener it came in on
        return f"{base}{req.path}?{urlencode(merged)}"

    # -- styles ----------------------------------------------------------------------

    def _page_args(self, req: Request) -> tuple[int, int]:
        page = _int_arg(req, "page", 1, low=1)
        per_page = _int_arg(req, "per_page", DEFAULT_PER_PAGE, low=1, high=MAX_PER_PAGE)
        return page, per_page

    def _style_link(self, req: Request, records: list) -> Response:
        page, per_page = self._page_args(req)
        last = max(1, math.ceil(len(records) / per_page))
        links = []
        if page < last:
            links.append(f'<{self._url(req, page=page + 1, per_page=per_page)}>; rel="next"')
            links.append(f'<{self._url(req, page=last, per_page=per_page)}>; rel="last"')
        if page > 1:
            links.append(f'<{self._url(req, page=1, per_page=per_page)}>; rel="first"')
            links.append(f'<{self._url(req, page=min(page - 1, last), per_page=per_page)}>; rel="prev"')
        headers = {"X-Total-Count": str(len(records))}
        if links:
            headers["Link"] = ", ".join(links)
        return json_response(records[(page - 1) * per_page: page * per_page], 200, headers)

    def _style_next(self, req: Request, records: list) -> Response:
        page, per_page = self._page_args(req)
        more = page * per_page < len(records)
        nxt = self._url(req, page=page + 1, per_page=per_page) if more else None
        return json_response({"data": records[(page - 1) * per_page: page * per_page], "next": nxt})

    def _style_cursor(self, req: Request, records: list) -> Response:
        limit = _int_arg(req, "limit", DEFAULT_PER_PAGE, low=1, high=MAX_PER_PAGE)
        cursor = req.args.get("cursor")
        offset = _decode_cursor(cursor) if cursor else 0
        end = offset + limit
        return json_response({"items": records[offset:end],
                              "next_cursor": _encode_cursor(end) if end < len(records) else None})

    def _style_pages(self, req: Request, records: list) -> Response:
        page, per_page = self._page_args(req)
        return json_response({"results": records[(page - 1) * per_page: page * per_page], "page": page,
                              "per_page": per_page, "total": len(records),
                              "total_pages": max(1, math.ceil(len(records) / per_page))})

    def _style_offset(self, req: Request, records: list) -> Response:
        offset = _int_arg(req, "offset", 0, low=0)
        limit = _int_arg(req, "limit", DEFAULT_PER_PAGE, low=1, high=MAX_PER_PAGE)
        return json_response({"records": records[offset:offset + limit], "offset": offset,
                              "limit": limit, "total": len(records)})

    def _style_odata(self, req: Request, records: list) -> Response:
        top = _int_arg(req, "$top", DEFAULT_PER_PAGE, low=1, high=MAX_PER_PAGE)
        skip = _int_arg(req, "$skip", 0, low=0)
        body: dict[str, Any] = {"@odata.count": len(records), "value": records[skip:skip + top]}
        if skip + top < len(records):
            body["@odata.nextLink"] = self._url(req, **{"$top": top, "$skip": skip + top})
        return json_response(body)
