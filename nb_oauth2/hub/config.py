"""The service's configuration: profiles (with the client secrets), the vault key, the state directory.

Read once at start from the service's environment (set in jupyterhub_config.py) and an optional
TOML or JSON file named by ``NB_OAUTH2_HUB_CONFIG``::

    forget_on_restart = false          # true: the vault is wiped when the service starts
    public_url = "https://hub.example.org"   # else the hub's c.JupyterHub.public_url, else the request's host

    [profiles.github]
    preset = "github"                  # or issuer = "https://..." (discovery), or the *_endpoint keys
    client_id = "Iv1.0123"
    client_secret = "..."              # lives here only; never sent to kernels
    scopes = ["read:user"]

Environment: ``NB_OAUTH2_HUB_KEY`` (required: a Fernet key, or several separated by commas, the first
encrypting; ``python -m nb_oauth2.hub --new-key`` prints one), ``NB_OAUTH2_HUB_STATE`` (the vault's
directory), ``NB_OAUTH2_HUB_FORGET_ON_RESTART``, ``NB_OAUTH2_HUB_PUBLIC_URL``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, MultiFernet

from ..core.endpoint import ClientAuth
from ..core.errors import ConfigurationError
from ..core.names import split_list
from ..core.providers import Provider, discover, preset

__all__ = ["HubConfig", "HubProfile", "load_config", "pkce_warnings", "KEY_ENV", "CONFIG_ENV", "STATE_ENV",
           "ADMIN_SCOPE"]

KEY_ENV = "NB_OAUTH2_HUB_KEY"
CONFIG_ENV = "NB_OAUTH2_HUB_CONFIG"
STATE_ENV = "NB_OAUTH2_HUB_STATE"
FORGET_ENV = "NB_OAUTH2_HUB_FORGET_ON_RESTART"
PUBLIC_URL_ENV = "NB_OAUTH2_HUB_PUBLIC_URL"
#: the custom JupyterHub scope that lets a token list and revoke every user's sessions (hub admins may too)
ADMIN_SCOPE = "custom:nb-oauth2:admin"
_ENDPOINT_KEYS = ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "userinfo_endpoint")
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class HubProfile:
    """One provider registration the service signs users in to."""

    name: str
    provider: Provider
    client: ClientAuth
    scopes: tuple[str, ...] = ()
    pkce: str | None = "S256"


@dataclass
class HubConfig:
    """Everything the service needs to run (the key and secrets never reach a repr)."""

    profiles: dict[str, HubProfile]
    key: MultiFernet = field(repr=False)
    state_dir: Path
    forget_on_restart: bool = False
    public_url: str | None = None
    #: how long a started login waits for its callback (seconds)
    login_ttl: float = 600.0
    admin_scope: str = ADMIN_SCOPE


def load_config(environ: Mapping[str, str] | None = None) -> HubConfig:
    """The configuration from ``environ`` (default ``os.environ``) and its config file.

    Every profile uses PKCE (S256) unless it says ``pkce = false`` (for a provider that refuses it).
    Without PKCE a stolen authorization code (a leaked callback URL, a browser extension, a proxy's
    log) could be redeemed in another hub user's login, which then holds the victim's provider token;
    the service logs one WARNING per such profile at start (:func:`pkce_warnings`).
    """
    env = os.environ if environ is None else environ
    key = _key(env.get(KEY_ENV, ""))
    data = _read_file(env.get(CONFIG_ENV, ""))
    state = env.get(STATE_ENV) or data.get("state_dir")
    if not state:
        raise ConfigurationError(f"nb_oauth2.hub needs a state directory for its vault: set {STATE_ENV} "
                                 "(or state_dir in the config file).")
    forget = env.get(FORGET_ENV)
    profiles = {name: _profile(name, spec) for name, spec in dict(data.get("profiles") or {}).items()}
    return HubConfig(
        profiles=profiles, key=key, state_dir=Path(state).expanduser(),
        forget_on_restart=(forget.strip().lower() in _TRUE) if forget else bool(data.get("forget_on_restart")),
        public_url=(env.get(PUBLIC_URL_ENV) or data.get("public_url") or _origin(env.get("JUPYTERHUB_PUBLIC_URL"))),
        login_ttl=float(data.get("login_ttl", 600)),
    )


def pkce_warnings(config: HubConfig) -> list[str]:
    """One warning line per profile configured with ``pkce = false`` (names the profile, no secret)."""
    return [f"nb_oauth2.hub: profile {name!r} signs in without PKCE (pkce = false): a stolen authorization "
            "code could be redeemed in another hub user's login, who would then hold the victim's token; "
            "enable PKCE unless the provider refuses it"
            for name, profile in sorted(config.profiles.items()) if not profile.pkce]


def _origin(url: str | None) -> str | None:
    """``https://hub.example.org`` of the service's public URL (JupyterHub sets it with the service's prefix)."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _key(value: str) -> MultiFernet:
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        raise ConfigurationError(
            f"nb_oauth2.hub refuses to start without an encryption key for its token vault: set {KEY_ENV} "
            "in the service's environment (python -m nb_oauth2.hub --new-key prints a new one).")
    try:
        return MultiFernet([Fernet(k.encode("ascii")) for k in keys])
    except (ValueError, UnicodeEncodeError):
        raise ConfigurationError(f"{KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes); "
                                 "python -m nb_oauth2.hub --new-key prints one.") from None


def _read_file(path: str) -> dict[str, Any]:
    if not path:
        return {}
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the nb_oauth2.hub config file {file}: {exc.strerror}.") from None
    try:
        data = json.loads(text) if file.suffix == ".json" else _toml().loads(text)
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError; the message names a line, not a value
        raise ConfigurationError(f"The nb_oauth2.hub config file {file} is not valid "
                                 f"{'JSON' if file.suffix == '.json' else 'TOML'} ({type(exc).__name__}).") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"The nb_oauth2.hub config file {file} must hold a table/object.")
    return data


def _toml() -> Any:
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise ConfigurationError("Reading a TOML config file needs Python 3.11+ or the tomli package; "
                                     "or give NB_OAUTH2_HUB_CONFIG a .json file.") from None
    return tomllib


def _profile(name: str, spec: Mapping[str, Any]) -> HubProfile:
    if not isinstance(spec, Mapping) or not spec.get("client_id"):
        raise ConfigurationError(f"Profile {name!r} of the nb_oauth2.hub config needs a client_id.")
    provider = _provider(name, spec)
    client = ClientAuth(client_id=str(spec["client_id"]), client_secret=spec.get("client_secret") or None,
                        method=spec.get("token_endpoint_auth_method") or None)
    scopes = split_list(spec.get("scopes") or spec.get("scope")) or provider.default_scopes
    pkce = spec.get("pkce", "S256") or None
    return HubProfile(name=name, provider=provider, client=client, scopes=tuple(scopes), pkce=pkce)


def _provider(name: str, spec: Mapping[str, Any]) -> Provider:
    if spec.get("preset"):
        options = {k: str(v) for k, v in dict(spec.get("preset_options") or {}).items()}
        return preset(str(spec["preset"]), **options)
    if spec.get("issuer"):
        return discover(str(spec["issuer"]), name=name)
    endpoints = {k: spec[k] for k in _ENDPOINT_KEYS if spec.get(k)}
    if "authorization_endpoint" not in endpoints or "token_endpoint" not in endpoints:
        raise ConfigurationError(f"Profile {name!r} of the nb_oauth2.hub config needs preset=, issuer=, or "
                                 "authorization_endpoint and token_endpoint.")
    return Provider(name=name, issuer=spec.get("issuer_id"), **endpoints,
                    authorization_response_iss=bool(spec.get("authorization_response_iss")))
