"""Where a URL really goes: hosts decided exactly as requests sends them (SECURITY_CASES 46, 47).

A bearer token may only travel to the origin that was checked. Checking with
:func:`urllib.parse.urlsplit` while requests connects with urllib3 lets the two
disagree: for ``http://evil\\@api.example/x`` urllib.parse reads host
``api.example`` while requests connects to ``evil``. So every origin question
here is answered from the URL *as requests prepares it*
(``PreparedRequest.prepare_url``, then ``urllib3.util.parse_url``, which is
what requests' adapter connects to), and a URL that urllib.parse reads
differently is refused instead of guessed at. Also refused, because parsers,
proxies, browsers or log readers take them differently: userinfo
(``user:pass@host``, ``@host``, ``a@b@c``), control characters (tab, CR, LF)
anywhere, a backslash before the query, percent-encoded host characters, and
non-ASCII hosts that NFKC or IDNA 2003 would turn into another name
(fullwidth ``ａｐｉ``, ``℀``, zero-width characters). Refusals raise
:class:`~nb_oauth2.core.errors.UnsafeURL`; the boolean helpers answer False.

Loopback means a literal address in 127.0.0.0/8 (four decimal parts), ``::1``,
or the name ``localhost`` (RFC 8252 8.3) - never a look-alike such as ``127.1``,
``0x7f.1``, ``127.0.0.1.evil.com`` or ``localhost.evil.com``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from requests.exceptions import RequestException
from requests.models import PreparedRequest
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from .errors import InsecureTransportError, UnsafeURL
from .redact import redact_url, snippet

__all__ = ["CheckedURL", "checked_url", "join", "same_origin", "is_loopback_host", "is_loopback_url",
           "is_secure_or_loopback", "require_secure_url"]

DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc: tab, CR, LF, NUL, DEL, C1
_QUERY_OR_FRAGMENT = re.compile("[?#]")
_USERINFO = "it carries userinfo (user:password@ before the host); put credentials in headers"


class _Unsafe(ValueError):
    """A reason to refuse, raised inside the parsing helpers."""


@dataclass(frozen=True)
class CheckedURL:
    """A URL that every parser reads alike: ``host`` is lowercase ASCII (IPv6 without brackets),
    ``port`` the effective port; :attr:`url` is the string requests sends."""

    scheme: str
    host: str
    port: int
    source: str = field(repr=False)  # the URL as given (its query may hold secrets: not in the repr)

    @property
    def url(self) -> str:
        """The URL as requests sends it (``PreparedRequest.prepare_url``)."""
        prepared = PreparedRequest()
        prepared.prepare_url(self.source, None)
        return prepared.url or ""

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    @property
    def is_secure_or_loopback(self) -> bool:
        """https anywhere; plain http only to loopback (RFC 8252 7.3)."""
        return self.scheme == "https" or (self.scheme == "http" and self.is_loopback)


def _refuse(url: str, why: str) -> UnsafeURL:
    return UnsafeURL(f"Refused {_shown(url)}: {why}; nothing was sent to it.")


def _shown(url: str) -> str:
    """Scheme, host and path as requests would send them; query values masked, no userinfo."""
    try:
        prepared = PreparedRequest()
        prepared.prepare_url(url, None)
        return f"the URL {redact_url(prepared.url or '')[:120]!r}"
    except Exception:  # requests cannot read it at all
        return "a URL that requests cannot read"


def _control_character(url: str) -> str | None:
    match = _CONTROL.search(url)
    return f"it holds the control character {match.group()!r}" if match else None


def _unicode_host(host: str) -> str:
    """The ASCII form of a non-ASCII host, or UnsafeURL's reason when the name is ambiguous."""
    if unicodedata.normalize("NFKC", host) != host:
        raise _Unsafe("its host changes under Unicode NFKC normalization (a look-alike of another name)")
    try:
        ascii_host = host.encode("idna").decode("ascii")
        stable = ascii_host.encode("ascii").decode("idna") == host
    except UnicodeError:
        raise _Unsafe("its host is not a valid internationalized domain name") from None
    if not stable:
        raise _Unsafe("its host changes under IDNA mapping (a look-alike of another name)")
    return ascii_host


def _split_host(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) as urllib.parse reads ``url`` (ValueError if it cannot)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        if "NFKC" in str(exc):  # a character such as U+2100 that NFKC turns into '/', '?', '#', '@' or ':'
            raise _Unsafe("its host holds a character that Unicode NFKC turns into a URL delimiter") from None
        raise
    if "@" in parts.netloc:
        raise _Unsafe(_USERINFO)
    host = parts.hostname or ""
    if "%" in host:
        raise _Unsafe("its host is percent-encoded (parsers decode it differently)")
    if not host.isascii():
        host = _unicode_host(host)
    return parts.scheme.lower(), host.lower(), parts.port


def _sent_host(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) that requests' adapter connects to for the prepared ``url``."""
    sent = parse_url(url)
    if sent.auth is not None:
        raise _Unsafe(_USERINFO)
    return (sent.scheme or "").lower(), (sent.host or "").strip("[]").lower(), sent.port


def checked_url(url: str | bytes) -> CheckedURL:
    """``url`` read as requests sends it, or :class:`UnsafeURL` if any parser could read it otherwise.

    Every parser ends the authority at the first ``?`` or ``#``, so the origin is decided
    (and cached) from the part before them; the query is only checked for control characters.
    """
    text = url.decode("utf-8") if isinstance(url, bytes) else str(url)
    reason = _control_character(text)
    if reason:
        raise _refuse(text, reason)
    scheme, host, port = _origin_of(_QUERY_OR_FRAGMENT.split(text, 1)[0])
    return CheckedURL(scheme=scheme, host=host, port=port, source=text)


@functools.lru_cache(maxsize=512)  # every request of a Session and every page of a walk asks again
def _origin_of(head: str) -> tuple[str, str, int]:
    """(scheme, host, effective port) of a URL without query or fragment, or UnsafeURL."""
    if "\\" in head:
        raise _refuse(head, "it holds a backslash before the query (urllib.parse and requests read its "
                            "host differently)")
    try:
        split = _split_host(head)
        prepared = PreparedRequest()
        prepared.prepare_url(head, None)
        sent = _sent_host(prepared.url or "")
        resplit = _split_host(prepared.url or "")
    except _Unsafe as exc:
        raise _refuse(head, str(exc)) from None
    except (RequestException, LocationParseError, UnicodeError) as exc:
        raise _refuse(head, f"requests cannot send it ({type(exc).__name__})") from None
    except ValueError:  # e.g. a port urllib.parse cannot read
        raise _refuse(head, "urllib.parse cannot read it") from None
    scheme, host, port = sent
    if scheme not in DEFAULT_PORTS:
        raise _refuse(head, "only http and https URLs may carry a token")
    if not host:
        raise _refuse(head, "it names no host")
    if split != sent or resplit != sent:
        raise _refuse(head, f"urllib.parse reads host {split[1]!r} but requests connects to {host!r}"
                      if split[1] != host else "urllib.parse and requests read its scheme or port differently")
    if ":" in host:  # an IPv6 literal: one spelling per address
        host = ipaddress.IPv6Address(host).compressed
    return scheme, host, port or DEFAULT_PORTS[scheme]


def join(base: str, link: str) -> str:
    """``link`` (absolute or relative, e.g. a next-page link) resolved against ``base``, then checked.

    The raw link is checked before :func:`urllib.parse.urljoin` sees it, because urljoin
    silently drops tab, CR and LF (``/<tab>/evil/x`` would become ``//evil/x``).
    """
    raw = link.strip()
    reason = _control_character(raw)
    if reason:
        raise _refuse(raw, reason)
    try:
        resolved = urljoin(base, raw)
    except ValueError:  # e.g. a character that NFKC turns into a delimiter
        raise _refuse(raw, "urllib.parse cannot read it") from None
    checked_url(resolved)
    return resolved


def same_origin(a: str, b: str) -> bool:
    """Same scheme, host and effective port, as requests sends both (:class:`UnsafeURL` if unsafe).

    Case, a default port and IPv6 spelling do not matter; a trailing dot does
    (``api.example.`` is another name for TLS and for the Host header).
    """
    return checked_url(a).origin == checked_url(b).origin


def is_loopback_host(host: str, *, allow_name: bool = True) -> bool:
    """127.0.0.0/8 as a literal dotted quad, ``::1``, or (with ``allow_name``) ``localhost``.

    ``127.1``, ``0x7f.1``, ``2130706433`` or ``::ffff:127.0.0.1`` are not accepted:
    strict literals leave no room for resolver tricks. A listener passes
    ``allow_name=False`` because ``localhost`` may resolve off loopback.
    """
    host = host.strip("[]") if host.startswith("[") else host
    if host.lower() == "localhost":
        return allow_name
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.version == 6:
        return address == ipaddress.IPv6Address("::1")
    return address.is_loopback


def is_loopback_url(url: str) -> bool:
    """True when requests would send ``url`` to a loopback host; False for any unsafe URL."""
    try:
        return checked_url(url).is_loopback
    except UnsafeURL:
        return False


def is_secure_or_loopback(url: str) -> bool:
    """https anywhere, or http to loopback, as requests sends ``url``; False for any unsafe URL."""
    try:
        return checked_url(url).is_secure_or_loopback
    except UnsafeURL:
        return False


def require_secure_url(url: str, what: str = "endpoint") -> str:
    """``url`` when it is https, or http to loopback (RFC 8252 7.3), as requests sends it.

    Raises :class:`UnsafeURL` for userinfo or a URL parsers read differently (cases 46, 47),
    :class:`InsecureTransportError` for plain http to another host.
    """
    if checked_url(url).is_secure_or_loopback:
        return url
    raise InsecureTransportError(
        f"The {what} {snippet(url, 80)!r} is not https; plain http is only allowed for loopback hosts."
    )
