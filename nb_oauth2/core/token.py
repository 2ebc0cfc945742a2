"""The token: an immutable value with expiry maths and a masked repr."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from .errors import ConfigurationError, UnexpectedTokenResponse, UnsupportedTokenType
from .names import split_list
from .redact import fingerprint, register_secret, snippet
from .warn import warn_user

__all__ = ["Token", "parse_expires_in", "parse_leeway", "DEFAULT_LEEWAY", "REFETCHED_GRANTS"]

#: renew this many seconds before the computed expiry (SECURITY_CASES 22: 30-60 s), but never more than
#: half a token's lifetime: a 5 s token is renewed 2.5 s before it expires, not on every use (case 48)
DEFAULT_LEEWAY = 45.0

#: grants whose token is fetched again without the user when it expires (it needs no refresh token);
#: ``hub``: a session of the JupyterHub service (:mod:`nb_oauth2.hub.client`), which renews for the kernel
REFETCHED_GRANTS = frozenset({"client_credentials", "hub"})

_SECRET_FIELDS = ("access_token", "refresh_token", "id_token")
_KNOWN_FIELDS = {"access_token", "token_type", "refresh_token", "expires_in", "expires_at", "scope", "id_token"}


def parse_expires_in(value: object) -> float | None:
    """``3600``, ``"3600"`` and ``"3600.0"`` give 3600.0; absent gives None.

    Negative, zero-or-less, non-finite or garbage values give None with one warning:
    the token is then treated as of unknown expiry (refreshed after a 401).
    """
    if value is None or value == "":
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        warn_user(
            f"The token endpoint sent an unusable expires_in ({snippet(value, 40)!r}); "
            "treating the token's expiry as unknown (it is refreshed after a 401).",
            RuntimeWarning
        )
        return None
    return seconds


def parse_leeway(value: object) -> float:
    """A refresh margin in seconds (``45``, ``"10"``, ``"2.5"``); ConfigurationError otherwise."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ConfigurationError(f"leeway must be a number of seconds >= 0, not {snippet(value, 40)!r}.")
    return seconds


@dataclass(frozen=True)
class Token:
    """An OAuth 2 bearer token as the package keeps it.

    ``expires_at`` is computed from the wall-clock time the response was
    received plus ``expires_in`` (a server-sent ``expires_at`` is ignored:
    SECURITY_CASES 22). repr and str show a fingerprint and the expiry only.
    """

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    scope: tuple[str, ...] | None = None
    id_token: str | None = field(default=None, repr=False)
    received_at: float = field(default_factory=time.time)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in _SECRET_FIELDS:
            register_secret(getattr(self, name))

    # -- construction -----------------------------------------------------

    @classmethod
    def from_response(
        cls,
        data: Mapping[str, Any],
        *,
        received_at: float | None = None,
        previous: "Token | None" = None,
    ) -> "Token":
        """Normalise a token endpoint (or fragment) response.

        Raises :class:`UnexpectedTokenResponse` without ``access_token`` and
        :class:`UnsupportedTokenType` for a type other than Bearer (case 14).
        With ``previous`` given, a response without a refresh token keeps the
        old one (case 18).
        """
        access_token = data.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            keys = ", ".join(sorted(str(k) for k in data)) or "none"
            raise UnexpectedTokenResponse(
                f"The token response has no access_token (keys: {snippet(keys, 120)}); restart the login.",
            )
        register_secret(access_token)
        token_type = str(data.get("token_type") or "Bearer")
        if token_type.lower() != "bearer":
            raise UnsupportedTokenType(
                f"The provider issued a {snippet(token_type, 20)!r} token; nb_oauth2 only sends Bearer tokens.",
                error="unsupported_token_type",
            )
        received = time.time() if received_at is None else received_at
        expires_in = parse_expires_in(data.get("expires_in"))
        refresh = data.get("refresh_token") or (previous.refresh_token if previous else None)
        extra = {k: v for k, v in data.items() if k not in _KNOWN_FIELDS}
        return cls(
            access_token=access_token,
            token_type="Bearer",
            refresh_token=refresh if isinstance(refresh, str) else None,
            expires_at=received + expires_in if expires_in else None,
            scope=split_list(data.get("scope")) or (previous.scope if previous else None),
            id_token=data.get("id_token") if isinstance(data.get("id_token"), str) else None,
            received_at=received,
            extra=extra,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Token":
        """Rebuild a token saved with :meth:`to_dict` (keeps its absolute expiry)."""
        scope = data.get("scope")
        return cls(
            access_token=data["access_token"],
            token_type=data.get("token_type", "Bearer"),
            refresh_token=data.get("refresh_token"),
            expires_at=data.get("expires_at"),
            scope=tuple(scope) if scope is not None else None,
            id_token=data.get("id_token"),
            received_at=data.get("received_at", time.time()),
            extra={"cnf": data["cnf"]} if data.get("cnf") else {},
        )

    @classmethod
    def from_oauthlib(cls, data: Mapping[str, Any]) -> "Token":
        """A token dict as requests-oauthlib keeps it (``session.token = {...}``, its own refresh).

        Unlike a server response, its ``expires_at`` is the client's own computation and is kept.
        """
        try:
            expires_at = float(data["expires_at"])
        except (KeyError, TypeError, ValueError):
            return cls.from_response(data)
        if not math.isfinite(expires_at):
            return cls.from_response(data)
        return replace(cls.from_response({k: v for k, v in data.items() if k != "expires_in"}), expires_at=expires_at)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a token store (no client secret ever lives here)."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "scope": list(self.scope) if self.scope is not None else None,
            "id_token": self.id_token,
            "received_at": self.received_at,
            **({"cnf": self.extra["cnf"]} if self.extra.get("cnf") else {}),
        }

    def to_oauthlib(self) -> dict[str, Any]:
        """The dict requests-oauthlib's ``OAuth2Session.token`` expects."""
        out: dict[str, Any] = {"access_token": self.access_token, "token_type": "Bearer"}
        if self.refresh_token:
            out["refresh_token"] = self.refresh_token
        if self.expires_at is not None:
            out["expires_at"] = self.expires_at
            out["expires_in"] = max(0.0, self.expires_at - time.time())
        if self.scope is not None:
            out["scope"] = list(self.scope)
        return out

    def with_changes(self, **changes: Any) -> "Token":
        return replace(self, **changes)

    # -- expiry -------------------------------------------------------------

    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds until expiry (negative once expired); None when unknown."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    @property
    def lifetime(self) -> float | None:
        """Seconds the token was issued for (``expires_at - received_at``); None when unknown."""
        if self.expires_at is None:
            return None
        return max(0.0, self.expires_at - self.received_at)

    def refresh_margin(self, leeway: float = DEFAULT_LEEWAY) -> float:
        """How long before expiry to renew: ``min(leeway, lifetime / 2)`` (0 for an unknown expiry)."""
        lifetime = self.lifetime
        return 0.0 if lifetime is None else max(0.0, min(leeway, lifetime / 2))

    def is_expired(self, leeway: float = DEFAULT_LEEWAY, now: float | None = None) -> bool:
        """True when the token is due for renewal: it expires within :meth:`refresh_margin` seconds.

        The margin scales with the lifetime (case 48): ``leeway`` for normal tokens, half the
        lifetime for short ones. ``leeway=0`` asks whether it has really expired. Unknown expiry: False.
        """
        left = self.expires_in(now)
        return left is not None and left <= self.refresh_margin(leeway)

    def can_renew(self, grant: str | None) -> bool:
        """Can it be renewed without the user: it has a refresh token, or ``grant`` is re-fetched."""
        return bool(self.refresh_token) or grant in REFETCHED_GRANTS

    def is_valid(self, now: float | None = None) -> bool:
        """True until the computed expiry (unknown expiry: always)."""
        left = self.expires_in(now)
        return left is None or left > 0

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.access_token)

    def describe_expiry(self, now: float | None = None) -> str:
        left = self.expires_in(now)
        if left is None:
            return "unknown expiry"
        if left <= 0:
            return "expired"
        minutes, seconds = divmod(int(left), 60)
        hours, minutes = divmod(minutes, 60)
        return f"expires in {hours}h{minutes:02d}m" if hours else f"expires in {minutes}m{seconds:02d}s"

    def __repr__(self) -> str:
        scope = " ".join(self.scope) if self.scope else "-"
        refresh = "yes" if self.refresh_token else "no"
        return (
            f"Token(fingerprint={self.fingerprint!r}, {self.describe_expiry()}, "
            f"scope={scope!r}, refreshable={refresh})"
        )

    __str__ = __repr__

    def _repr_html_(self) -> str:
        import html

        return f"<code>{html.escape(repr(self))}</code>"
