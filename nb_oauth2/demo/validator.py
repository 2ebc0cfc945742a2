"""oauthlib ``RequestValidator`` with in-memory storage for the demo provider.

oauthlib does the protocol; this class only answers its questions (is this
client known, is this code valid, ...) and remembers what it issued. Callers
hold :attr:`DemoValidator.lock` around every oauthlib endpoint call.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from typing import Any, Mapping
from urllib.parse import unquote_plus, urlsplit

from oauthlib.oauth2.rfc8628.request_validator import RequestValidator

from .clients import TLS_AUTH_METHODS, DemoClient, any_port_pattern, basic_credentials, is_loopback_redirect
from .clients import normalize_user_code, peer_cert

__all__ = ["DemoValidator"]

_CODE_TTL = 600.0


class DemoValidator(RequestValidator):
    """Answers oauthlib's questions from in-memory dicts."""

    def __init__(self, *, clients: Mapping[str, DemoClient], users: Mapping[str, str],
                 issuer: str, refresh_token_ttl: float, rotate_refresh_tokens: bool,
                 proxy_callback_path: str | None = None) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self.clients = {c.client_id: c for c in clients.values()}
        self.users = dict(users)
        self.issuer = issuer
        self.refresh_token_ttl = refresh_token_ttl
        self.rotate = rotate_refresh_tokens
        self.proxy_callback_path = proxy_callback_path
        self._proxy_callback = any_port_pattern(proxy_callback_path)
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, dict[str, Any]] = {}
        self.refresh: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.user_codes: dict[str, str] = {}
        self.revoked_families: set[str] = set()

    # -- clients ---------------------------------------------------------------

    def _credentials(self, request) -> tuple[str, str] | None:
        basic = basic_credentials(request.headers)
        if basic is not None:
            return basic
        if request.client_secret is not None:
            return request.client_id or "", request.client_secret
        return None

    def client_authentication_required(self, request, *args, **kwargs) -> bool:
        creds = self._credentials(request)
        if creds is not None:
            return True
        client = self.clients.get(request.client_id or "")
        return client is None or not client.public

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        creds = self._credentials(request)
        if creds is None:
            return self._authenticate_tls(request)
        client_id, secret = creds
        client = self.clients.get(client_id) or self.clients.get(unquote_plus(client_id))
        if client is None or client.client_secret is None:
            return False
        if request.client_id and request.client_id != client.client_id:
            return False
        expected = client.client_secret.encode()
        if not (hmac.compare_digest(secret.encode(), expected)
                or hmac.compare_digest(unquote_plus(secret).encode(), expected)):
            return False
        request.client, request.client_id = client, client.client_id
        return True

    def _authenticate_tls(self, request) -> bool:
        """RFC 8705 2: client_id in the body, the certificate from the TLS handshake."""
        client = self.clients.get(request.client_id or "")
        peer = peer_cert(request.headers)
        if client is None or client.auth_method not in TLS_AUTH_METHODS or peer is None:
            return False
        thumb, subject, issuer = peer
        if client.auth_method == "tls_client_auth":
            ok = subject == client.tls_client_auth_subject_dn and issuer == client.tls_client_auth_issuer_dn
        else:
            ok = bool(client.tls_thumbprint) and hmac.compare_digest(thumb, client.tls_thumbprint or "")
        if ok:
            request.client, request.client_id = client, client.client_id
        return ok

    def authenticate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        client = self.clients.get(client_id or "")
        if client is None or not client.public:
            return False
        request.client = client
        return True

    def validate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        client = self.clients.get(client_id or "")
        if client is not None:
            request.client = client
        return client is not None

    def _client(self, client_id, client) -> DemoClient | None:
        return client if isinstance(client, DemoClient) else self.clients.get(client_id or "")

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs) -> bool:
        client = self._client(client_id, client)
        return client is not None and grant_type in client.grant_types

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs) -> bool:
        grant = {"code": "authorization_code", "token": "implicit"}.get(response_type)
        client = self._client(client_id, client)
        return client is not None and grant is not None and grant in client.grant_types

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs) -> bool:
        client = self._client(client_id, client)
        return client is not None and all(s in client.scopes for s in scopes)

    def get_default_scopes(self, client_id, request, *args, **kwargs) -> list[str]:
        return list(self.clients[client_id].scopes)

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs) -> bool:
        client = self.clients.get(client_id)
        return client is not None and (redirect_uri in client.redirect_uris
                                       or is_loopback_redirect(redirect_uri)
                                       or self._is_proxy_callback(redirect_uri))

    def _is_proxy_callback(self, uri: str) -> bool:
        """Behind jupyter-server-proxy: the callback on the notebook's origin, any kernel port.

        ``{prefix}proxy/<port>/callback`` with the demo's own port or any other one
        (the notebook's loopback catcher, reached through the same proxy), like
        RFC 8252's any loopback port; any http(s) origin, since the hub's is unknown here.
        """
        if self._proxy_callback is None:
            return False
        try:
            parts = urlsplit(uri)
        except ValueError:
            return False
        return (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.fragment
                and self._proxy_callback.fullmatch(parts.path) is not None)

    def get_default_redirect_uri(self, client_id, request, *args, **kwargs) -> str:
        return self.clients[client_id].redirect_uris[0]

    def is_pkce_required(self, client_id, request) -> bool:
        client = self.clients.get(client_id or "")
        return client is not None and client.public

    def validate_user(self, username, password, client, request, *args, **kwargs) -> bool:
        expected = self.users.get(username or "")
        if expected is None or not hmac.compare_digest((password or "").encode(), expected.encode()):
            return False
        request.user = username
        return True

    # -- authorization codes -----------------------------------------------------

    def save_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        self.codes[code["code"]] = {
            "client_id": client_id, "redirect_uri": request.redirect_uri,
            "scopes": list(request.scopes or []), "user": request.user,
            "challenge": request.code_challenge, "method": request.code_challenge_method,
            "expires_at": time.time() + _CODE_TTL, "used": False, "family": secrets.token_hex(8),
        }

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        rec = self.codes.get(code or "")
        if rec is None or rec["client_id"] != client_id:
            return False
        if rec["used"]:  # RFC 6749 4.1.2: a replayed code revokes what it issued
            self.revoked_families.add(rec["family"])
            return False
        if rec["expires_at"] < time.time():
            return False
        request.user, request.scopes, request.nb_family = rec["user"], list(rec["scopes"]), rec["family"]
        return True

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        rec = self.codes.get(code or "")
        return rec is not None and rec["redirect_uri"] == redirect_uri

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        if code in self.codes:
            self.codes[code]["used"] = True

    def get_code_challenge(self, code, request) -> str | None:
        rec = self.codes.get(code or "")
        return rec["challenge"] if rec else None

    def get_code_challenge_method(self, code, request) -> str | None:
        rec = self.codes.get(code or "")
        return rec["method"] if rec else None

    # -- tokens ----------------------------------------------------------------

    def save_bearer_token(self, token, request, *args, **kwargs) -> None:
        now = time.time()
        family = getattr(request, "nb_family", None) or secrets.token_hex(8)
        client_id = request.client_id or getattr(request.client, "client_id", None)
        scopes = list(request.scopes or [])
        self.access[token["access_token"]] = {
            "client_id": client_id, "user": request.user, "scopes": scopes, "issued_at": now,
            "expires_at": now + float(token.get("expires_in") or 0), "family": family, "revoked": False,
        }
        peer = peer_cert(request.headers)
        if peer is not None:  # RFC 8705 3: bound to the certificate used on this request
            cnf = {"x5t#S256": peer[0]}
            self.access[token["access_token"]]["cnf"] = cnf
            token["cnf"] = dict(cnf)
        new_refresh = token.get("refresh_token")
        old_refresh = request.refresh_token if request.grant_type == "refresh_token" else None
        if old_refresh and new_refresh != old_refresh and old_refresh in self.refresh:
            self.refresh[old_refresh]["used"] = True  # rotated: reuse is detected later
        if new_refresh and new_refresh not in self.refresh:
            self.refresh[new_refresh] = {
                "client_id": client_id, "user": request.user, "scopes": scopes, "issued_at": now,
                "expires_at": now + self.refresh_token_ttl, "family": family, "used": False,
                "revoked": False,
            }

    def rotate_refresh_token(self, request) -> bool:
        return self.rotate

    def _live(self, rec: dict[str, Any] | None) -> bool:
        return (rec is not None and not rec["revoked"] and rec["family"] not in self.revoked_families
                and rec["expires_at"] > time.time())

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        rec = self.refresh.get(refresh_token or "")
        if rec is None or rec["client_id"] != client.client_id:
            return False
        if rec["used"]:  # RFC 9700 4.14.2: reuse of a rotated token revokes the grant
            self.revoked_families.add(rec["family"])
            return False
        if not self._live(rec):
            return False
        request.user, request.nb_family = rec["user"], rec["family"]
        return True

    def get_original_scopes(self, refresh_token, request, *args, **kwargs) -> list[str]:
        return list(self.refresh[refresh_token]["scopes"])

    def bearer_status(self, token: str | None, scopes: list[str] | None) -> tuple[str | None, dict | None]:
        """``(error, record)``: error is None, ``invalid_token`` or ``insufficient_scope``."""
        rec = self.access.get(token or "")
        if not self._live(rec):
            return "invalid_token", None
        if scopes and not set(scopes) <= set(rec["scopes"]):
            return "insufficient_scope", rec
        return None, rec

    def validate_bearer_token(self, token, scopes, request) -> bool:
        error, rec = self.bearer_status(token, scopes)
        bound = (rec or {}).get("cnf", {}).get("x5t#S256")
        peer = peer_cert(request.headers)
        if bound and (peer is None or not hmac.compare_digest(peer[0], bound)):
            error, rec = "invalid_token", None  # RFC 8705 3: a bound token needs its certificate
            request.nb_error_description = ("The access token is bound to a client certificate (RFC 8705); "
                                            "present that certificate on this request.")
        request.nb_error, request.nb_token = error, rec
        if rec is not None:
            request.user, request.client_id = rec["user"], rec["client_id"]
        return error is None

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs) -> None:
        client_id = getattr(request.client, "client_id", None)
        rec = self.access.get(token) or self.refresh.get(token)
        if rec is None or rec["client_id"] != client_id:
            return  # RFC 7009 2.2: unknown or foreign tokens are answered 200 and ignored
        if token in self.refresh:
            self.revoked_families.add(rec["family"])  # the grant and its access tokens
        rec["revoked"] = True

    def introspect_token(self, token, token_type_hint, request, *args, **kwargs) -> dict | None:
        client = getattr(request, "client", None)
        if client is None or client.public:
            return None
        rec = self.access.get(token)
        kind = "access_token"
        if rec is None:
            rec, kind = self.refresh.get(token), "refresh_token"
        if not self._live(rec) or (kind == "refresh_token" and rec["used"]):
            return None
        claims = {"scope": " ".join(rec["scopes"]), "client_id": rec["client_id"],
                  "token_type": "Bearer" if kind == "access_token" else "refresh_token",
                  "exp": int(rec["expires_at"]), "iat": int(rec["issued_at"]), "iss": self.issuer,
                  "sub": rec["user"] or rec["client_id"]}
        if rec["user"]:
            claims["username"] = rec["user"]
        if rec.get("cnf"):
            claims["cnf"] = dict(rec["cnf"])
        return claims

    def expire_access_tokens(self) -> None:
        now = time.time()
        for rec in self.access.values():
            rec["expires_at"] = min(rec["expires_at"], now - 1)

    def revoke_all(self) -> None:
        for rec in list(self.access.values()) + list(self.refresh.values()):
            rec["revoked"] = True
            self.revoked_families.add(rec["family"])

    # -- device authorization (RFC 8628) ----------------------------------------

    def save_device_code(self, client_id: str, data: Mapping[str, Any], scopes: list[str]) -> None:
        self.devices[data["device_code"]] = {
            "client_id": client_id, "user_code": data["user_code"], "scopes": scopes,
            "expires_at": time.time() + float(data["expires_in"]), "interval": float(data.get("interval") or 0),
            "status": "pending", "last_poll": None, "user": None,
        }
        self.user_codes[normalize_user_code(data["user_code"])] = data["device_code"]

    def pending_device(self, user_code: str) -> dict[str, Any] | None:
        rec = self.devices.get(self.user_codes.get(normalize_user_code(user_code), ""))
        if rec is None or rec["status"] != "pending" or rec["expires_at"] < time.time():
            return None
        return rec

    def validate_device_code(self, client_id, code, request, *args, **kwargs) -> str | None:
        """One of DeviceCodeGrant's statuses (its RFC 8628 3.5 error codes, or "authorized")."""
        rec = self.devices.get(code or "")
        if rec is None or rec["client_id"] != client_id or rec["status"] == "consumed":
            return None
        now = time.time()
        if now > rec["expires_at"]:
            return "expired_token"
        if rec["status"] == "denied":
            return "access_denied"
        if rec["status"] == "pending":
            too_fast = rec["last_poll"] is not None and now - rec["last_poll"] < rec["interval"] * 0.8
            rec["last_poll"] = now
            if too_fast:
                rec["interval"] += 5  # RFC 8628 3.5: the client adds 5 s as well
                return "slow_down"
            return "authorization_pending"
        rec["status"] = "consumed"
        request.user, request.scopes = rec["user"], list(rec["scopes"])
        return "authorized"
