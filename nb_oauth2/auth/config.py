"""Profiles: which provider, which client, which scopes, and where secrets come from.

Client secrets come from, in order: a keyword argument (Python code only), the
environment (``NB_OAUTH2_<PROFILE>_CLIENT_SECRET``), the profiles file (TOML,
refused when group/world readable), or keyring. Never from a magic line or a
cell body: those are kept in IPython's history.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import platformdirs

from ..core.endpoint import ClientAuth
from ..core.errors import ConfigurationError, DiscoveryError, SecretOnCommandLine
from ..core.names import env_name, grant_name, split_list
from ..core.providers import PRESETS, Provider, discover, preset, provider_from_metadata, suggest
from ..core.token import parse_leeway
from .demo_profile import demo_profile
from .profile import Profile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Profile",
    "load_profile",
    "define_profile",
    "profiles_path",
    "env_name",
    "SECRET_KEYS",
    "check_no_secrets",
    "STORE_ENV",
    "store_setting",
]

#: the token store of logins that name none, for every profile (``file``, ``keyring`` or ``memory``)
STORE_ENV = "NB_OAUTH2_STORE"

#: client authentication methods at the token endpoint (RFC 7591 2, RFC 8705 2)
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none", "tls_client_auth", "self_signed_tls_client_auth")

SECRET_KEYS = frozenset({"client_secret", "password", "token", "access_token", "refresh_token", "key_passphrase"})

_defined: dict[str, dict[str, Any]] = {}


def profiles_path() -> Path:
    """``$NB_OAUTH2_PROFILES``, else ``profiles.toml`` in the platform's user config dir for nb_oauth2
    (:mod:`platformdirs`: ``$XDG_CONFIG_HOME/nb_oauth2`` or ``~/.config/nb_oauth2`` on Linux)."""
    explicit = os.environ.get("NB_OAUTH2_PROFILES")
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_config_dir("nb_oauth2", appauthor=False)) / "profiles.toml"


def _read_profiles_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) and os.name == "posix":
        raise ConfigurationError(f"{path} is a symbolic link; nb_oauth2 reads profiles only from a regular file.")
    if os.name == "posix" and info.st_mode & 0o077:
        raise ConfigurationError(
            f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):o}); it may hold client "
            f"secrets. Run: chmod 600 {path}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"Could not read {path}: {type(exc).__name__}.") from None
    return dict(data.get("profiles", data))


def check_no_secrets(mapping: Mapping[str, Any], *, where: str, profile: str) -> None:
    """Refuse secret keys typed where IPython keeps history (case 35)."""
    found = sorted(k for k in mapping if k.replace("-", "_").lower() in SECRET_KEYS)
    if found:
        raise SecretOnCommandLine(
            f"{', '.join(found)} must not be typed in a {where}: IPython has already saved it to its history "
            f"(history.sqlite); rotate that secret. Put it in the environment ({env_name(profile, 'client_secret')}), "
            "in keyring (keyring set nb_oauth2 <profile>:client_secret), or let nb_oauth2 prompt for it."
        )


def define_profile(name: str, settings: Mapping[str, Any]) -> None:
    """Define a profile in this kernel (the ``%%oauth2 profile`` cell magic); secrets refused."""
    check_no_secrets(settings, where="cell or magic line", profile=name)
    _defined[name] = dict(settings)


def _keyring_secret(name: str) -> str | None:
    try:
        import keyring
    except ImportError:
        return None
    try:
        return keyring.get_password("nb_oauth2", f"{name}:client_secret")
    except Exception:  # no backend configured
        return None


def _settings_for(name: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    settings.update(_read_profiles_file(profiles_path()).get(name, {}))
    settings.update(_defined.get(name, {}))
    for key in ("client_id", "client_secret", "issuer", "tenant", "base_url", "scope", "redirect_uri", "provider",
                "token_endpoint_auth_method"):
        value = os.environ.get(env_name(name, key))
        if value:
            settings[key] = value
    return settings


def _discover(issuer: str, name: str, verify: bool | str) -> Provider:
    """Discovery with the profile's trust; a TLS failure is reported as one (not "unreachable")."""
    from ..core.tls import http_session, is_tls_failure, tls_error

    try:
        return discover(issuer, name=name, session=http_session(verify))
    except DiscoveryError as exc:
        cause = exc.__context__
        if cause is not None and is_tls_failure(cause):
            raise tls_error(issuer, cause) from None
        raise


def _check_verify(verify: Any) -> bool | str:
    if isinstance(verify, bool):
        return verify
    path = os.path.expanduser(str(verify))
    if not os.path.exists(path):
        raise ConfigurationError(f"The CA bundle {path!r} given as verify= does not exist.")
    return path


def _known_profiles() -> list[str]:
    """Every name a profile may have here: presets, demo, define_profile() and the profiles file."""
    try:
        from_file = list(_read_profiles_file(profiles_path()))
    except ConfigurationError:  # an unreadable profiles file has its own error elsewhere
        from_file = []
    return [*PRESETS, "demo", *_defined, *from_file]


def _provider_for(name: str, settings: Mapping[str, Any], verify: bool | str = True) -> Provider:
    kind = str(settings.get("provider") or name).lower()
    if settings.get("issuer"):
        return _discover(str(settings["issuer"]), name, verify)
    if settings.get("metadata"):
        return provider_from_metadata(settings["metadata"], name=name)
    if kind in PRESETS:
        options = {k: str(settings[k]) for k in ("tenant", "base_url") if settings.get(k)}
        return preset(kind, **options)
    if settings.get("token_endpoint") or settings.get("authorization_endpoint"):
        fields = {k: settings[k] for k in Provider.__dataclass_fields__ if k in settings and k != "name"}
        return Provider(name=name, **fields)
    raise ConfigurationError(
        f"Profile {name!r} is not defined. {suggest(name, _known_profiles())}"
        f"Use a preset ({', '.join(PRESETS)}, demo), pass issuer=<url>, "
        f"or add [profiles.{name}] to {profiles_path()}."
    )


def load_profile(
    name: str,
    *,
    flow: str | None = None,
    provider: Provider | str | None = None,
    issuer: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    scope: Sequence[str] | str | None = None,
    redirect_uri: str | None = None,
    cert: str | tuple[str, str] | None = None,
    verify: bool | str | None = None,
    token_endpoint_auth_method: str | None = None,
    **provider_options: str,
) -> Profile:
    """Resolve a profile from arguments, environment, profiles file and keyring.

    ``cert``: TLS client certificate (RFC 8705), one PEM path or ``(cert_path, key_path)``;
    checked when a login starts (an encrypted key's passphrase from
    ``NB_OAUTH2_<PROFILE>_KEY_PASSPHRASE`` or a prompt). ``verify``: CA bundle path (or
    False) for the provider's https. ``token_endpoint_auth_method`` (also the profile key and
    ``NB_OAUTH2_<PROFILE>_TOKEN_ENDPOINT_AUTH_METHOD``): how the client authenticates at the
    token endpoint (``client_secret_basic``, ``client_secret_post``, ``none``,
    ``tls_client_auth``, ``self_signed_tls_client_auth``); by default chosen from the
    client's credentials and the methods the server advertises.
    """
    if name == "demo" and provider is None and issuer is None:
        return demo_profile(flow=grant_name(flow), scope=split_list(scope), redirect_uri=redirect_uri)
    settings = _settings_for(name)
    if os.environ.get(env_name(name, "leeway")):
        settings["leeway"] = os.environ[env_name(name, "leeway")]
    settings.update({k: v for k, v in provider_options.items() if v})
    if "leeway" in settings:  # seconds before expiry to renew (at most half the token's lifetime)
        settings["leeway"] = parse_leeway(settings["leeway"])
    if token_endpoint_auth_method:
        settings["token_endpoint_auth_method"] = token_endpoint_auth_method
    method = settings.get("token_endpoint_auth_method")
    if method is not None and method not in AUTH_METHODS:
        raise ConfigurationError(f"token_endpoint_auth_method={str(method)[:40]!r} is not one of {', '.join(AUTH_METHODS)}.")
    if issuer:
        settings["issuer"] = issuer
    trust = _check_verify(verify if verify is not None else settings.get("verify", True))
    client_cert = cert or _cert_setting(settings)  # checked when a login uses it (nb_oauth2.core.tls)
    if isinstance(provider, Provider):
        resolved = provider
    else:
        if isinstance(provider, str):
            settings["provider"] = provider
        resolved = _provider_for(name, settings, trust)
    cid = client_id or settings.get("client_id")
    if not cid:
        raise ConfigurationError(
            f"No client id for profile {name!r}: register an app at {resolved.name} ({resolved.docs or 'see its docs'}) "
            f"and set {env_name(name, 'client_id')}, or pass client_id=."
        )
    secret = client_secret or settings.get("client_secret") or _keyring_secret(name)
    chosen_flow = grant_name(flow or settings.get("flow")) or "authorization_code"
    return Profile(
        name=name,
        provider=resolved,
        client=ClientAuth(str(cid), secret, method=settings.get("token_endpoint_auth_method"), cert=client_cert),
        flow=chosen_flow,
        scope=split_list(scope if scope is not None else settings.get("scope")),
        redirect_uri=redirect_uri or settings.get("redirect_uri"),
        options={k: v for k, v in settings.items() if k not in SECRET_KEYS},
        verify=trust,
    )


def store_setting(profile: Profile) -> str:
    """The token store of a login that names none (``store=None``): ``NB_OAUTH2_<PROFILE>_STORE``, else the
    profile's ``store`` setting (profiles file, ``%%oauth2 profile``), else ``NB_OAUTH2_STORE``, else
    ``"memory"``. Unattended runs (nbclient, papermill, CI) find their stored token there."""
    return str(os.environ.get(env_name(profile.name, "store")) or profile.options.get("store")
               or os.environ.get(STORE_ENV) or "memory")


def _cert_setting(settings: Mapping[str, Any]) -> str | tuple[str, str] | None:
    cert, key = settings.get("cert"), settings.get("key")
    if cert and key:
        return (str(cert), str(key))
    return str(cert) if cert else None
