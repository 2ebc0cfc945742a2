"""Next-page URLs as pure decisions: build, read, resolve and check them (no I/O, no threads).

:func:`set_param` moves a query counter or cursor; :func:`parse_link_header` reads RFC 8288
``Link`` headers; :func:`join_link` resolves a link found in a page; :func:`check_next_url`
refuses a next link to another origin or from https to http (the token would follow it, cases 34,
46, 47); :func:`check_link_syntax` and :func:`url_problem` name what is wrong with a malformed
link (case 58); :func:`varying_counter` finds the one page/offset counter two URLs differ by, and
:func:`seen_key` what makes two requests the same (loop detection).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urljoin, urlsplit, urlunsplit

from requests.models import PreparedRequest
from requests.utils import parse_header_links

from ..core.errors import PaginationError, UnsafeNextLink, UnsafeURL
from ..core.redact import redact_url
from ..core.urls import checked_url, join
from .page_fields import as_int

__all__ = ["set_param", "query_of", "check_next_url", "parse_link_header", "shown_url", "join_link",
           "check_link_syntax", "url_problem", "varying_counter", "seen_key"]


def set_param(url: str, name: str, value: object) -> str:
    """``url`` with query parameter ``name`` set to ``value``: replaced where the API put it (a repeat
    of it dropped), else appended; every other parameter is kept as sent, in its order and encoding."""
    parts = urlsplit(url)
    pair = urlencode([(name, str(value))])
    query: list[str] = []
    for item in parts.query.split("&") if parts.query else []:
        if unquote_plus(item.split("=", 1)[0]) != name:
            query.append(item)
        elif pair:
            query.append(pair)
            pair = ""
    if pair:
        query.append(pair)
    return urlunsplit(parts._replace(query="&".join(query)))


def query_of(url: str) -> dict[str, str]:
    """The query parameters of ``url`` as a dict (the last of a repeated name wins)."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) as requests sends ``url``; :class:`UnsafeURL` if parsers disagree (case 46)."""
    return checked_url(url).origin


def check_next_url(base_url: str, next_url: str) -> str:
    """Resolve ``next_url`` against ``base_url``; refuse another origin, a downgrade, userinfo or a
    link that parsers read differently (cases 34, 46, 47): the token would follow it."""
    base = _origin(base_url)
    try:
        resolved = join(base_url, next_url)
    except UnsafeURL as exc:
        raise UnsafeNextLink(f"The next-page link was not followed, so the token was not sent: {exc.message}") from None
    if _origin(resolved) != base:
        raise UnsafeNextLink(
            f"The next-page link {redact_url(resolved)} leaves {redact_url(base_url)} "
            "(another origin or https -> http); it was not followed, so the token was not sent there.",
            url=redact_url(resolved))
    return resolved


def parse_link_header(value: str | None) -> dict[str, str]:
    """``{rel: url}`` from an RFC 8288 ``Link`` header (:func:`requests.utils.parse_header_links`;
    a space-separated ``rel`` names each relation, the first link of a relation wins)."""
    out: dict[str, str] = {}
    for link in parse_header_links(value or ""):
        url = link.get("url", "")
        for key, val in link.items():
            if key.strip().lower() == "rel":
                for rel in val.split():
                    out.setdefault(rel.lower(), url)
    return out


def shown_url(url: str) -> str:
    """``url`` as it may appear in a message: redacted, or ``***`` when it cannot even be parsed."""
    try:
        return redact_url(url)
    except ValueError:
        return "***"


def join_link(base: str, link: str, field_name: str) -> str:
    """``link`` resolved against ``base``; a link no parser can read is a PaginationError naming its field
    (an absolute link is checked as sent: ``urljoin`` would read ``http://`` as "this page again")."""
    text = link.strip()
    if _ABSOLUTE.match(text):
        return check_link_syntax(text, field_name)
    try:
        return urljoin(base, text)
    except ValueError:
        raise PaginationError(f"The next-page link in {field_name!r} is not a valid URL (it cannot be parsed: "
                              "brackets, port or characters); it was not followed.", url=shown_url(base)) from None


_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def check_link_syntax(url: str, field_name: str) -> str:
    """``url`` if it is a well-formed http(s) URL as requests would send it; else PaginationError
    naming the field it came from (case 58: never a raw ValueError, InvalidURL or MissingSchema)."""
    reason = url_problem(url)
    if reason:
        raise PaginationError(f"The next-page link in {field_name!r} ({shown_url(url)}) is not a valid URL: {reason}. "
                              "It was not followed.", url=shown_url(url))
    return url


def url_problem(url: Any) -> str | None:
    """Why ``url`` is not a well-formed http(s) URL that requests can send, or None."""
    if not isinstance(url, str):
        return f"a {type(url).__name__}, not a string"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError when out of range
    except ValueError:
        return "it cannot be parsed (brackets, port or characters)"
    if not parts.scheme:
        return "it has no scheme (http:// or https://)"
    if parts.scheme.lower() not in ("http", "https"):
        return f"the scheme {parts.scheme[:10]!r} is not http or https"
    if not parts.hostname:
        return "it has no host"
    try:
        PreparedRequest().prepare_url(url, None)
    except Exception:  # requests' InvalidURL (spaces, IDNA, bad port), UnicodeError
        return "the host name is not valid (spaces, characters IDNA cannot encode, or a bad port)"
    return None


def varying_counter(earlier: str, later: str) -> tuple[str, int, int] | None:
    """(name, value in ``earlier``, value in ``later``) of the single integer query parameter that differs
    between two URLs of one path and grows; None when there is no such counter."""
    parts_earlier, parts_later = urlsplit(earlier), urlsplit(later)
    if (parts_earlier.scheme, parts_earlier.netloc, parts_earlier.path) != (
            parts_later.scheme, parts_later.netloc, parts_later.path):
        return None
    query_earlier, query_later = query_of(earlier), query_of(later)
    differing = [key for key in set(query_earlier) | set(query_later) if query_earlier.get(key) != query_later.get(key)]
    if len(differing) != 1 or as_int(query_later.get(differing[0])) is None:
        return None
    name = differing[0]
    value_later = as_int(query_later[name])
    if name in query_earlier:
        value_earlier = as_int(query_earlier[name])
    elif any(word in name.lower() for word in ("offset", "skip", "start", "from")):
        value_earlier = 0
    elif "page" in name.lower():
        value_earlier = value_later - 1  # the first page had no counter: it was the page before the next one
    else:
        return None  # an unknown counter: do not guess
    return (name, value_earlier, value_later) if value_earlier is not None and value_later > value_earlier else None


def seen_key(url: str) -> tuple:
    """The same request whatever the order of its query parameters (a loop that reorders them is a loop)."""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))
