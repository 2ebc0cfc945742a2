"""The names users type, read in one place: scope lists, grants, ``via`` choices, environment variables."""

from __future__ import annotations

from typing import Any

from .errors import ConfigurationError

__all__ = ["split_list", "env_name", "GRANT_ALIASES", "FLOW_CHOICES", "VIA_CHOICES", "STORE_CHOICES", "grant_name"]

#: what may be typed as ``flow=`` -> the grant's name (RFC 6749, RFC 8628)
GRANT_ALIASES = {
    "code": "authorization_code",
    "authorization_code": "authorization_code",
    "implicit": "implicit",
    "password": "password",
    "client_credentials": "client_credentials",
    "device": "device_code",
    "device_code": "device_code",
}
#: the short flow names offered in help texts and error messages
FLOW_CHOICES = ("code", "device", "implicit", "password", "client_credentials")
#: how the redirect comes back: ``auto`` chooses one of the others
VIA_CHOICES = ("auto", "loopback", "proxy", "paste", "device")
#: where tokens are kept: ``store=``, ``--store``, ``OAuth2Magics.default_store``, ``NB_OAUTH2_STORE``
STORE_CHOICES = ("memory", "file", "keyring")


def split_list(value: Any) -> tuple[str, ...] | None:
    """``"a b,c"`` -> ``("a", "b", "c")`` (spaces and/or commas); a list, tuple or set -> a tuple of
    its items as str; None, or anything else -> None. Scopes, cert hosts and the like."""
    if isinstance(value, str):
        return tuple(value.replace(",", " ").split())
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(str(v) for v in value)
    return None


def env_name(profile: str, key: str) -> str:
    """``NB_OAUTH2_GITHUB_CLIENT_ID`` for profile ``github`` and key ``client_id`` (``my-api`` -> ``MY_API``)."""
    slug = "".join(c if c.isalnum() else "_" for c in profile).upper()
    return f"NB_OAUTH2_{slug}_{key.upper()}"


def grant_name(flow: str | None) -> str | None:
    """The grant a typed flow name stands for (``device`` -> ``device_code``); None stays None."""
    if flow is None:
        return None
    try:
        return GRANT_ALIASES[flow.lower()]
    except KeyError:
        raise ConfigurationError(f"Unknown flow {flow!r}; choose one of {', '.join(FLOW_CHOICES)}.") from None
