"""GraphQL connections -> one DataFrame: every page of ``nodes``, ``pageInfo.endCursor`` fed back.

:func:`read_graphql` POSTs ``{"query", "variables"}``, finds the connection at ``path`` in the
answer's ``data`` (``"repository.issues"``; found by itself when the answer holds one connection),
takes its ``nodes`` (or ``edges[].node``) as records, and while ``pageInfo.hasNextPage`` is true
sends the query again with ``pageInfo.endCursor`` as the ``after`` variable (``cursor_variable``).
The loop and the records -> frame step are :mod:`nb_oauth2.frames.post_pages`'.

GraphQL reports failures inside a 200 answer: ``errors`` raise a typed error, also beside partial
``data`` (a result with errors would be silently incomplete). ``type`` / ``extensions.code``
choose the class: RATE_LIMITED -> RateLimited (waited out first when the reset is within
``max_wait``), INSUFFICIENT_SCOPES -> InsufficientScope, UNAUTHENTICATED -> InvalidToken, else APIError.
HTTP statuses (401, 403, 429, 5xx) are the Fetcher's.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

from ..core.errors import (APIError, ConfigurationError, InsufficientScope, InvalidToken, PaginationError,
                           RateLimited)
from ..core.redact import redact_url, snippet
from .fetch import Fetcher, Response, parse_retry_after
from .page_fields import field_path
from .post_pages import (DEFAULT_MAX_PAGES, PostPage, check_to, frame_of, post_fetcher, register_body_secrets,
                         walk_posts)
from .progress import ProgressBar
from .rate_limits import seconds_until_reset
from .walk_rules import MAX_EMPTY_PAGES

__all__ = ["read_graphql", "graphql_error", "find_connection"]

#: an error's ``type`` (GitHub) or ``extensions.code`` (Apollo, Shopify, ...) -> the error class
_ERROR_CLASSES: Mapping[str, type[APIError]] = {
    "RATE_LIMITED": RateLimited, "THROTTLED": RateLimited,
    "INSUFFICIENT_SCOPES": InsufficientScope, "FORBIDDEN": APIError,
    "UNAUTHENTICATED": InvalidToken, "UNAUTHORIZED": InvalidToken,
}
_HINTS: Mapping[type[APIError], str] = {
    RateLimited: "Wait for the rate limit's reset, or ask for fewer nodes per page (first:)",
    InsufficientScope: "Sign in again asking for the scopes the error names",
    InvalidToken: "Sign in again",
}
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def _code(error: Any) -> str | None:
    if not isinstance(error, Mapping):
        return None
    ext = error.get("extensions")
    code = error.get("type") or (ext.get("code") if isinstance(ext, Mapping) else None)
    return code if isinstance(code, str) else None


def _said(error: Any) -> str:
    """An error's message, with its ``path`` (where in the answer it happened) when it has one."""
    if not isinstance(error, Mapping):
        return snippet(error, 200)
    path = error.get("path")
    where = f" (at {snippet('.'.join(map(str, path)), 120)})" if isinstance(path, list) and path else ""
    return snippet(error.get("message"), 200) + where


def graphql_error(answer: Any, url: str) -> APIError | None:
    """The typed error for an answer's ``errors`` (None when it has none); messages redacted and capped."""
    errors = answer.get("errors") if isinstance(answer, Mapping) else None
    if not errors:
        return None
    errors = errors if isinstance(errors, list) else [errors]
    said = "; ".join(_said(e) for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    code = next((c for c in map(_code, errors) if c), None)
    cls = _ERROR_CLASSES.get(code or "", APIError)
    data = answer.get("data")
    partial = " beside partial data (not used: the result would be incomplete)" if data else ""
    safe = redact_url(url)
    return cls(f"The GraphQL API at {safe} answered {len(errors)} error(s){partial}: {said or 'no message'}{more}.",
               hint=_HINTS.get(cls, "Check the query, its variables and the path= of the connection"),
               url=safe, status=200, error=code)


def _connections(value: Any, trail: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    """Every connection (an object with nodes, edges or pageInfo) in ``value``, not looking inside one."""
    if not isinstance(value, Mapping):
        return []
    if any(key in value for key in ("nodes", "edges", "pageInfo")):
        return [(trail, value)]
    return [found for key, child in value.items() for found in _connections(child, (*trail, key))]


def find_connection(data: Any, path: tuple[str, ...] | None) -> tuple[tuple[str, ...], Any]:
    """(path, the connection or list) in ``data``: at ``path`` (a leading ``data`` may be given), or the
    one connection there is."""
    if path is None:
        found = _connections(data, ())
        if len(found) != 1:
            names = ", ".join(repr(".".join(p)) for p, _ in found[:5]) or "none"
            raise ConfigurationError(f"read_graphql needs path= to name the connection in the answer's data "
                                     f"(connections found: {names}), e.g. path='repository.issues'.")
        return found[0]
    if path[0] == "data" and len(path) > 1 and isinstance(data, Mapping) and "data" not in data:
        path = path[1:]  # "data.repository.issues" names the same place
    value = data
    for i, key in enumerate(path):
        if value is None:
            return path, None  # e.g. a repository that does not exist (null, no errors): no records
        if not isinstance(value, Mapping) or key not in value:
            keys = sorted(value)[:10] if isinstance(value, Mapping) else type(value).__name__
            raise APIError(f"path {'.'.join(path)!r} is not in the GraphQL answer's data: no {key!r} at "
                           f"{'.'.join(('data', *path[:i]))!r} (found {keys}).", hint="Check path= against the query")
        value = value[key]
    return path, value


def _records(connection: Any, path: tuple[str, ...]) -> list:
    if connection is None:
        return []
    if isinstance(connection, list):
        return connection
    if isinstance(connection, Mapping):
        if isinstance(connection.get("nodes"), list):
            return connection["nodes"]
        if isinstance(connection.get("edges"), list):
            # edges { node { ... } }; an API whose edges carry the fields themselves (no node): the edge
            return [edge["node"] if isinstance(edge, Mapping) and "node" in edge else edge
                    for edge in connection["edges"]]
    raise APIError(f"The connection at {'.'.join(path)!r} has neither nodes nor edges: ask for "
                   "nodes { ... } (or edges { node { ... } }) in the query.")


def _rate_limit_wait(response: Response, now: float) -> float | None:
    """Seconds until a 200 RATE_LIMITED answer may be retried (Retry-After or the rate-limit reset), or None."""
    headers = response.headers
    wait = parse_retry_after(headers.get("Retry-After"), now=now)
    return wait if wait is not None else seconds_until_reset(headers, now=now)


class _GraphQLPages:
    """Sends one page's query and reads its answer: errors, the connection, its records and pageInfo."""

    def __init__(self, fetcher: Fetcher, url: str, path: tuple[str, ...] | None, query: str,
                 cursor_variable: str) -> None:
        self.fetcher, self.url, self.path, self.query = fetcher, url, path, query
        self.cursor_variable = cursor_variable
        self.first = True

    def _answer(self, body: Any) -> Any:
        """The answer's data, a RATE_LIMITED answer waited out within the fetcher's retries and max_wait."""
        fetcher = self.fetcher
        for attempt in range(fetcher.retries + 1):
            response = fetcher.post(self.url, body)
            error = graphql_error(response.data, self.url)
            if error is None:
                break
            wait = _rate_limit_wait(response, fetcher.clock()) if isinstance(error, RateLimited) else None
            if wait is None or wait > fetcher.max_wait or attempt >= fetcher.retries:
                raise error
            if fetcher.on_wait is not None:
                fetcher.on_wait(wait, "GraphQL rate limited")
            fetcher.sleep(wait)
        answer = response.data
        if not isinstance(answer, Mapping) or "data" not in answer:
            raise APIError(f"The GraphQL API at {redact_url(self.url)} answered without data or errors "
                           f"({type(answer).__name__}).", hint="Check the URL: it may not be a GraphQL endpoint",
                           url=redact_url(self.url))
        return answer

    def __call__(self, body: Any) -> PostPage:
        answer = self._answer(body)
        path, connection = find_connection(answer["data"], self.path)
        self.path = path  # found once, kept: the next pages answer the same query
        records = _records(connection, path)
        holder = connection
        if isinstance(connection, list) and len(path) > 1 and path[-1] in ("nodes", "edges"):
            # path= named the list itself: its connection (pageInfo, totalCount) is one level up
            holder = find_connection(answer["data"], path[:-1])[1]
        info = holder.get("pageInfo") if isinstance(holder, Mapping) else None
        total = holder.get("totalCount") if isinstance(holder, Mapping) else None
        first, self.first = self.first, False
        if not isinstance(info, Mapping):
            if first and isinstance(total, int) and total > len(records):
                raise PaginationError(f"The connection at {'.'.join(path)!r} has {total:,} nodes, this page "
                                      f"{len(records):,}, and no pageInfo to fetch the rest: add pageInfo "
                                      "{ hasNextPage endCursor } to the query.", url=redact_url(self.url))
            return PostPage(records, False, body=answer)
        more = info.get("hasNextPage") is True
        if first and more and not re.search(rf"\${re.escape(self.cursor_variable)}\b", self.query):
            raise PaginationError(
                f"The connection at {'.'.join(path)!r} has more pages, but the query declares no "
                f"${self.cursor_variable} to send pageInfo.endCursor back in: add ${self.cursor_variable}: String "
                f"to the query's variables and {self.cursor_variable}: ${self.cursor_variable} to the connection "
                "(or name yours with cursor_variable=).", url=redact_url(self.url))
        pages = math.ceil(total / len(records)) if first and isinstance(total, int) and records else None
        return PostPage(records, more, info.get("endCursor"), body=answer, total_pages=pages)


def read_graphql(url: str, query: str, variables: Mapping[str, Any] | None = None, *, session: Any,
                 path: str | Sequence[str] | None = None, cursor_variable: str = "after",
                 operation_name: str | None = None, headers: Mapping[str, str] | None = None,
                 meta: Sequence[str | Sequence[str]] | None = None, sep: str = ".", max_level: int | None = None,
                 max_pages: int | None = DEFAULT_MAX_PAGES, max_rows: int | None = None,
                 max_page_bytes: int | None = 50_000_000, progress: bool = True,
                 parse_dates: bool | Sequence[str] = False, partial: bool = False,
                 timeout: float | tuple[float, float] = (5, 30), retries: int = 3, max_wait: float = 60,
                 to: str = "pandas", max_empty_pages: int | None = MAX_EMPTY_PAGES,
                 fetcher_options: Mapping[str, Any] | None = None) -> Any:
    """Run a GraphQL query and read every page of one connection into one DataFrame.

    ``path`` names the connection in ``data`` (``"repository.issues"`` or ``["repository", "issues"]``;
    None: the one connection the answer holds). Its ``nodes`` (or ``edges[].node``) are the records,
    nested objects ``sep``-joined columns (``author.login``), lists such as ``labels.nodes`` kept as lists.
    While ``pageInfo.hasNextPage``, the query is sent again with ``variables[cursor_variable]`` =
    ``pageInfo.endCursor``: declare it (``query($after: String) { ... issues(first: 100, after: $after)``).
    ``errors`` in the answer raise (also beside partial data): RateLimited, InsufficientScope, InvalidToken
    or APIError. The other options are :func:`~nb_oauth2.frames.readers.read_json`'s.
    """
    if not isinstance(query, str) or not query.strip():
        raise ConfigurationError("read_graphql needs the GraphQL query text as its second argument.")
    if variables is not None and not isinstance(variables, Mapping):
        raise ConfigurationError("variables= must be a dict of the query's variables.")
    if not isinstance(cursor_variable, str) or not _NAME.match(cursor_variable):
        raise ConfigurationError("cursor_variable= must be a GraphQL variable name such as 'after'.")
    keys = field_path(path) if path is not None else None
    if keys is not None and (not keys or not all(isinstance(k, str) and k for k in keys)):
        raise ConfigurationError("path= must name the connection: 'repository.issues' or a list of keys.")
    check_to(to)
    register_body_secrets(variables)  # a server's error echoing a variable named token, api_key, ...
    body: dict[str, Any] = {"query": query, "variables": dict(variables or {})}
    if operation_name:
        body["operationName"] = operation_name
    with ProgressBar(progress) as bar:
        full, fetcher = post_fetcher(url, session=session, who="read_graphql", headers=headers, timeout=timeout,
                                     retries=retries, max_wait=max_wait, max_page_bytes=max_page_bytes, bar=bar,
                                     fetcher_options=fetcher_options)
        bar.start(full)
        send = _GraphQLPages(fetcher, full, keys, query, cursor_variable)
        pages = walk_posts(send, body, url=full, with_cursor=lambda b, c: {**b, "variables": {
            **b["variables"], cursor_variable: c}}, more_name="pageInfo.hasNextPage", cursor_name="pageInfo.endCursor",
            max_pages=max_pages, max_empty_pages=max_empty_pages)
        return frame_of(pages, bar=bar, sep=sep, max_level=max_level, meta=meta, max_rows=max_rows,
                        partial=partial, to=to, parse_dates=parse_dates)
