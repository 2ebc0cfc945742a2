"""A profile: everything a login needs except the user's part."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..core.endpoint import ClientAuth
from ..core.providers import Provider

__all__ = ["Profile"]


@dataclass(frozen=True)
class Profile:
    """Everything a login needs except the user's part."""

    name: str
    provider: Provider
    client: ClientAuth
    flow: str = "authorization_code"
    scope: tuple[str, ...] | None = None
    redirect_uri: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: TLS trust: True (system/certifi CAs), a CA bundle path, or False
    verify: bool | str = True
