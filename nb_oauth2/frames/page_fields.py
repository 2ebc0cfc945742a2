"""What a page says about the next one: next links, cursors, "more" and "done" flags.

Pure lookups shared by the paginators in :mod:`nb_oauth2.frames.pagination`. Fields
are read at the top of the body or in one of the usual pagination containers
(``meta``, ``pagination``, ``paging``, ``pageInfo``, ``response_metadata``,
``links`` ...). :func:`more_signal` names the field by which a page says there
is more (case 62): a paginator that cannot follow it must say so, never stop
quietly with fewer rows.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

__all__ = ["CONTAINERS", "TOTAL_PAGES_KEYS", "TOTAL_KEYS", "PAGE_KEYS", "SIZE_KEYS", "NEXT_URL_PATHS",
           "URL_FIELDS", "CURSOR_PATHS", "LINK_NEXT", "lookup", "as_int", "is_url", "field_path", "get_path",
           "body_next", "body_cursor", "flag", "more_signal", "page_count", "odata_count", "paging_objects"]

CONTAINERS = ("meta", "pagination", "paging", "page_info", "pageInfo", "response_metadata", "links", "_links")
TOTAL_PAGES_KEYS = ("total_pages", "totalPages", "last_page", "lastPage", "page_count", "pageCount", "num_pages")
TOTAL_KEYS = ("total", "total_count", "totalCount", "total_results", "totalResults", "totalItems", "total_items")
PAGE_KEYS = ("page", "current_page", "currentPage", "page_number", "pageNumber")
SIZE_KEYS = ("per_page", "perPage", "page_size", "pageSize", "limit", "size")

#: where a next-page link lives; a value that is not a URL is a cursor (sent back as ``cursor=``)
NEXT_URL_PATHS = (("@odata.nextLink",), ("odata.nextLink",), ("d", "__next"), ("links", "next"),
                  ("paging", "next"), ("_links", "next"), ("next",), ("next_page_url",), ("nextLink",),
                  ("meta", "next"), ("pagination", "next_url"), ("nextRecordsUrl",))
#: next-link fields whose value is always a URL, relative to the page when it is not absolute (OData v3's
#: ``"odata.nextLink": "Products?$skip=20"``, Salesforce's ``nextRecordsUrl``): never read as a cursor
URL_FIELDS = frozenset({"@odata.nextLink", "odata.nextLink", "d.__next", "nextRecordsUrl"})
#: cursor fields nb_oauth2 follows by itself, with the parameter the API expects them back in
CURSOR_PATHS = ((("nextPageToken",), "pageToken"), (("next_page_token",), "page_token"),
                (("response_metadata", "next_cursor"), "cursor"), (("next_cursor",), "cursor"),
                (("meta", "next_cursor"), "cursor"), (("cursor", "next"), "cursor"),
                (("meta", "next_token"), "pagination_token"),  # X API v2
                (("paging", "next", "after"), "after"))  # HubSpot CRM v3
#: cursors whose parameter depends on what else the page holds: (path, param, sibling key or None)
_CURSOR_RULES = ((("nextPageToken",), "nextPageToken", "isLast"),  # Jira Cloud /search/jql, before Google's
                 (("offset",), "offset", None))  # Airtable: an opaque offset token (a number is a counter)
#: more fields that, when not empty, mean "there is another page" (followed only when named)
_TOKEN_KEYS = ("next", "nextLink", "@odata.nextLink", "odata.nextLink", "next_url", "next_page_url", "nextRecordsUrl",
               "next_page", "nextPage", "nextPageToken", "next_page_token", "next_cursor", "nextCursor", "next_token",
               "nextToken", "NextToken", "continuationToken", "NextContinuationToken", "NextMarker")
#: booleans: True means more (``has_more``), or True means this was the last page (``done``, ``isLast``)
_MORE_FLAGS = ("has_more", "hasMore", "has_next", "hasNext", "has_next_page", "hasNextPage", "more_available")
_DONE_FLAGS = ("done", "isLast", "is_last", "last", "isLastPage", "is_last_page", "last_page")
LINK_NEXT = 'Link rel="next"'
#: headers that give the page count, or the record count (GitHub search, GitLab, JSON:API servers, Rails)
_PAGES_HEADERS = ("X-Total-Pages", "X-Page-Count", "Total-Pages")
_TOTAL_HEADERS = ("X-Total-Count", "X-Total", "Total-Count")
_SIZE_HEADERS = ("X-Per-Page", "X-Page-Size")
#: an OData count (v4, v3; v2's is ``d.__count``) of every record: a total the page/offset counters never stop
#: at, but OData's own ``$skip`` does (:func:`odata_count`)
_ODATA_COUNTS = ("@odata.count", "odata.count")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _places(body: Any) -> list[tuple[str, Mapping]]:
    if not isinstance(body, dict):
        return []
    return [("", body)] + [(c + ".", body[c]) for c in CONTAINERS if isinstance(body.get(c), dict)]


def lookup(body: Any, keys: Sequence[str]) -> Any:
    """First non-null value of ``keys`` in the body or one of its pagination containers."""
    for _, place in _places(body):
        for key in keys:
            if place.get(key) is not None:
                return place[key]
    return None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def is_url(value: Any) -> bool:
    """A next-link value that is a URL (absolute, ``/path`` or ``?query``), not an opaque cursor."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text.startswith(("/", "?")) or bool(_SCHEME.match(text))


def _filled(value: Any) -> bool:
    """A field value that says "there is more" (not null, empty, false or zero)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value > 0
    return value not in (None, "", [], {})


def field_path(field: str | Sequence[str]) -> tuple[str, ...]:
    """``"response_metadata.next_cursor"`` -> ("response_metadata", "next_cursor")."""
    return tuple(field.split(".")) if isinstance(field, str) else tuple(field)


def get_path(body: Any, path: Sequence[str]) -> tuple[bool, Any]:
    """(present, value) of ``path`` in ``body``; a key that contains a dot is tried whole first."""
    if isinstance(body, dict) and len(path) > 1 and ".".join(path) in body:
        return True, body[".".join(path)]
    value: Any = body
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return False, None
        value = value[key]
    return True, value


def body_next(body: Any) -> tuple[str, Any] | None:
    """(field, value) of the first next-link field present; value None when it is empty.

    A ``{"href": ...}`` object gives its href; the value may be a URL or a cursor (see :func:`is_url`).
    """
    for path in NEXT_URL_PATHS:
        present, value = get_path(body, path)
        if not present:
            continue
        if isinstance(value, dict):
            if "href" not in value:
                continue
            value = value["href"]
        if isinstance(value, (list, dict, float)):
            continue
        return ".".join(path), (value if _filled(value) else None)
    nested = paging_objects(body)
    if nested and len(nested) == len(body):  # Spotify search: {"tracks": {"items": [...], "next": ...}}
        filled = {str(v["next"]) for _, v in nested if _filled(v["next"])}
        if len(filled) > 1:
            return None  # two next links (pending names them): none is followed by guess
        key = next((k for k, v in nested if _filled(v["next"])), nested[0][0])
        return f"{key}.next", (filled.pop() if filled else None)
    return None


def paging_objects(body: Any) -> list[tuple[str, Mapping]]:
    """(key, object) of each value of ``body`` that is itself a page (``items`` and ``next``): Spotify's
    search answers ``{"tracks": {...}, "artists": {...}}``, one per type searched for."""
    if not isinstance(body, dict):
        return []
    return [(key, value) for key, value in body.items()
            if isinstance(value, dict) and "next" in value and isinstance(value.get("items"), list)]


def odata_count(body: Any) -> int | None:
    """The OData count of every record: ``@odata.count`` (v4), ``odata.count`` (v3), ``d.__count`` (v2)."""
    if not isinstance(body, dict):
        return None
    for path in (("@odata.count",), ("odata.count",), ("d", "__count")):
        value = as_int(get_path(body, path)[1])
        if value is not None:
            return value
    return None


def _opaque(value: Any) -> bool:
    """A token, not a number: a non-empty string that is not all digits."""
    return isinstance(value, str) and bool(value.strip()) and not value.strip().isdigit()


def body_cursor(body: Any) -> tuple[str, str, str | None] | None:
    """(field, param, cursor or None) of the first known cursor field present in ``body``."""
    for path, param, sibling in _CURSOR_RULES:
        present, value = get_path(body, path)
        if present and (value is None or _opaque(value)) and (sibling is None or sibling in body):
            return ".".join(path), param, (str(value) if _filled(value) else None)
    for path, param in CURSOR_PATHS:
        present, value = get_path(body, path)
        if present and not isinstance(value, (dict, list)):
            return ".".join(path), param, (str(value) if _filled(value) and value is not True else None)
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def flag(body: Any) -> tuple[str, bool] | None:
    """(field, there is more) from an explicit boolean flag; any flag saying "done" wins."""
    more: tuple[str, bool] | None = None
    for prefix, place in _places(body):
        for keys, means_more in ((_DONE_FLAGS, False), (_MORE_FLAGS, True)):
            for key in keys:
                value = _bool(place.get(key))
                if value is None:
                    continue
                if value != means_more:  # has_more false / done true: the last page
                    return prefix + key, False
                more = more or (prefix + key, True)
    return more


def _counter(body: Any) -> str | None:
    """``page < total_pages`` when the body counts pages (1-based) and this is not the last one."""
    for prefix, place in _places(body):
        page = next(((k, as_int(place[k])) for k in PAGE_KEYS if as_int(place.get(k)) is not None), None)
        total = next(((k, as_int(place[k])) for k in TOTAL_PAGES_KEYS if as_int(place.get(k)) is not None), None)
        if page and total and page[1] < total[1]:  # type: ignore[operator]
            return f"{prefix}{page[0]} < {prefix}{total[0]}"
    return None


def more_signal(body: Any, *, link_next: bool = False, body_is_record: bool = False,
                counters: bool = True) -> str | None:
    """The field by which a page says there is another page, or None.

    Explicit flags decide first (``has_more: false`` or ``done: true`` ends the walk even when a stale
    cursor is left); then any non-empty next link, cursor or token; then page counters
    (``page < total_pages``, unless ``counters=False``); then a ``Link rel="next"`` (``link_next``).
    When the body is itself the record (``body_is_record``) its fields are data.
    """
    if isinstance(body, dict) and not body_is_record:
        found = flag(body)
        if found is not None:
            return found[0] if found[1] else None
        for prefix, place in _places(body):
            for key in _TOKEN_KEYS:
                value = place.get(key)
                if isinstance(value, dict):  # {"href": ...} (HAL, JSON:API), {"after": ..., "link": ...} (HubSpot)
                    value = value.get("href") or value.get("link") or value.get("after")
                if _filled(value):
                    return prefix + key
        for path in (("cursor", "next"), ("d", "__next")):
            present, value = get_path(body, path)
            if present and _filled(value):
                return ".".join(path)
        for key, value in paging_objects(body):  # Spotify search: tracks.next
            if _filled(value["next"]):
                return f"{key}.next"
        counted = _counter(body) if counters else None
        if counted:
            return counted
    return LINK_NEXT if link_next else None


def _header(headers: Mapping[str, str], names: Sequence[str]) -> int | None:
    """The first of ``names`` (any case) that holds a whole number."""
    lowered = {str(key).lower(): value for key, value in headers.items()}
    for name in names:
        value = as_int(str(lowered.get(name.lower(), "")).strip())
        if value is not None:
            return value
    return None


def page_count(body: Any, headers: Mapping[str, str], query: Mapping[str, str], n_records: int) -> int | None:
    """How many pages the whole result has, as the first page tells it; None when it does not.

    A page count (``total_pages``, ``X-Total-Pages``) is taken as is; a record count (``total``,
    ``X-Total-Count``, ``@odata.count``) is divided by the page size (``per_page`` in the body, the
    ``X-Per-Page`` header, ``per_page``/``limit``/``$top`` in the query, else this page's records).
    For the progress bar only: the walk never stops at this number.
    """
    pages = _header(headers, _PAGES_HEADERS)
    if pages is None and isinstance(body, dict):
        pages = as_int(lookup(body, TOTAL_PAGES_KEYS))
    if pages is not None:
        return pages if pages > 0 else None
    total = _header(headers, _TOTAL_HEADERS)
    if total is None and isinstance(body, dict):
        total = as_int(lookup(body, TOTAL_KEYS)) or odata_count(body)
    if total is None:
        return None
    size = (as_int(lookup(body, SIZE_KEYS)) if isinstance(body, dict) else None) or _header(headers, _SIZE_HEADERS) \
        or next((as_int(query[key]) for key in SIZE_KEYS + ("$top", "top") if as_int(query.get(key))), None) \
        or n_records
    return -(-total // size) if size > 0 and total > 0 else None
