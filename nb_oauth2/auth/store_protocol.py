"""What every token store is: the :class:`TokenStore` protocol and the rule that no store keeps a
client secret or password (:func:`without_secrets`)."""

from __future__ import annotations

from typing import ContextManager, Protocol, runtime_checkable

__all__ = ["TokenStore", "FORBIDDEN_KEYS", "without_secrets", "PurgeUnderLock"]

#: keys a store refuses to keep (they belong to the client registration, not the token)
FORBIDDEN_KEYS = frozenset({"client_secret", "password"})


@runtime_checkable
class TokenStore(Protocol):
    """What a session needs from a store. ``token`` is ``Token.to_dict()``."""

    def load(self, key: str) -> dict | None: ...
    def save(self, key: str, token: dict) -> None: ...
    def delete(self, key: str) -> None: ...
    def lock(self, key: str) -> ContextManager[None]: ...
    def purge_refresh_token(self, key: str) -> None: ...


def without_secrets(token: dict) -> dict:
    """A copy of ``token`` without client secrets or passwords (strip, then assert)."""
    data = {k: v for k, v in dict(token).items() if k not in FORBIDDEN_KEYS}
    assert not FORBIDDEN_KEYS & data.keys()
    return data


class PurgeUnderLock:
    """``purge_refresh_token`` for persistent stores: read, drop, write back under the lock."""

    def purge_refresh_token(self, key: str) -> None:
        """Keep the access token, drop the refresh token (case 17)."""
        with self.lock(key):  # type: ignore[attr-defined]
            data = self.load(key)  # type: ignore[attr-defined]
            if data is not None and data.get("refresh_token") is not None:
                data["refresh_token"] = None
                self.save(key, data)  # type: ignore[attr-defined]
