"""``WWW-Authenticate`` challenges (RFC 6750 3): what a resource server says about a refused token."""

from __future__ import annotations

__all__ = ["parse_www_authenticate"]


def _challenges(value: str) -> list[str]:
    """``value`` split into its challenges: an element whose text before any ``=`` holds a space (or
    that has no ``=``) starts one (``Bearer realm="x"``, ``DPoP algs="ES256"``, ``Negotiate``)."""
    from werkzeug.http import parse_list_header  # quoted commas stay inside their element

    out: list[list[str]] = []
    for item in parse_list_header(value):
        head = item.split("=", 1)[0].strip()
        if not out or "=" not in item or any(c.isspace() for c in head):
            out.append([item])
        else:
            out[-1].append(item)
    return [", ".join(parts) for parts in out]


def parse_www_authenticate(value: str | None) -> dict[str, str]:
    """Parameters of the first ``Bearer`` challenge (``error``, ``scope``, ...), unescaped.

    Several challenges may share the header (``DPoP algs="ES256", Bearer error="invalid_token"``);
    only the Bearer one's parameters count. Each challenge is read by werkzeug's
    ``WWWAuthenticate.from_header``.
    """
    from werkzeug.datastructures import WWWAuthenticate

    for text in _challenges(value or ""):
        challenge = WWWAuthenticate.from_header(text)
        if challenge is not None and challenge.type == "bearer":
            return {key.lower(): val for key, val in challenge.parameters.items() if val is not None}
    return {}
