"""The demo provider's registered clients and the request facts its validator reads.

:func:`make_clients` registers one client per grant; :func:`basic_credentials`, :func:`peer_cert`
and :func:`is_loopback_redirect` read a request; :func:`generate_user_code` and
:func:`normalize_user_code` make and compare RFC 8628 user codes. No state, no clock.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

__all__ = ["DEMO_SCOPES", "DEVICE_GRANT", "DemoClient", "is_loopback_redirect", "make_clients", "peer_cert",
           "PEER_CERT_HEADERS", "TLS_AUTH_METHODS", "basic_credentials", "any_port_pattern",
           "normalize_user_code", "generate_user_code"]

DEMO_SCOPES: tuple[str, ...] = ("openid", "profile", "read:events", "read:users")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
TLS_AUTH_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")
#: set by the server from the TLS connection (never from the client: incoming copies are dropped)
PEER_CERT_HEADERS = ("X-Nb-Demo-Peer-Cert-S256", "X-Nb-Demo-Peer-Cert-Subject", "X-Nb-Demo-Peer-Cert-Issuer")


@dataclass(frozen=True)
class DemoClient:
    """A pre-registered client of the demo provider."""

    client_id: str
    client_secret: str | None = field(repr=False)
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    public: bool
    scopes: tuple[str, ...] = DEMO_SCOPES
    name: str = ""
    #: RFC 8705: "tls_client_auth" (subject + issuer DN) or "self_signed_tls_client_auth" (thumbprint)
    auth_method: str = ""
    tls_client_auth_subject_dn: str | None = None
    tls_client_auth_issuer_dn: str | None = None
    tls_thumbprint: str | None = field(default=None, repr=False)


def make_clients(redirect_uris: tuple[str, ...]) -> dict[str, DemoClient]:
    """One client per grant; confidential ones get a fresh random secret."""

    def client(name: str, grants: tuple[str, ...], public: bool, label: str) -> DemoClient:
        secret = None if public else secrets.token_urlsafe(24)
        return DemoClient(f"demo-{name}", secret, grants, redirect_uris, public, DEMO_SCOPES, label)

    return {
        "web": client("web", ("authorization_code", "refresh_token"), False, "Demo web app"),
        "public": client("public", ("authorization_code", "refresh_token"), True, "Demo notebook (PKCE)"),
        "implicit": client("implicit", ("implicit",), True, "Demo implicit app (legacy)"),
        "password": client("password", ("password", "refresh_token"), False, "Demo password app (legacy)"),
        "service": client("service", ("client_credentials",), False, "Demo service account"),
        "device": client("device", (DEVICE_GRANT, "refresh_token"), True, "Demo device"),
    }


def peer_cert(headers: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(x5t#S256, subject DN, issuer DN) of the client certificate the TLS layer saw, if any."""
    values = tuple(headers.get(name) or "" for name in PEER_CERT_HEADERS)
    return values if values[0] else None  # type: ignore[return-value]


def is_loopback_redirect(uri: str) -> bool:
    """RFC 8252 7.3: ``http`` on a loopback host, any port and path, no fragment."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return False
    return (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
            and not parts.fragment and not parts.username and not parts.password)


def basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return ("", "")
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def any_port_pattern(callback_path: str | None) -> re.Pattern[str] | None:
    """``/user/a/proxy/9/callback`` -> a pattern for the same path with any port in place of 9."""
    if not callback_path:
        return None
    match = re.fullmatch(r"(.*/proxy/)\d+(/callback)", callback_path)
    if match is None:
        return re.compile(re.escape(callback_path))
    return re.compile(re.escape(match.group(1)) + r"[1-9][0-9]{0,4}" + re.escape(match.group(2)))


def normalize_user_code(user_code: str) -> str:
    """Upper-case, without dashes or spaces (users type codes loosely)."""
    return "".join(ch for ch in (user_code or "").upper() if ch.isalnum())


_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels: no words, no 0/O or 1/I


def generate_user_code() -> str:
    """An 8-letter code shown as ``WDJB-MJHT``."""
    letters = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"
