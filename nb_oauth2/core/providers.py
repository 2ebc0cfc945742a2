"""Provider descriptions, presets for well-known providers, and discovery.

A :class:`Provider` is data: endpoints, defaults and quirks. Quirks are small
hooks beside the preset (requests-oauthlib compliance hooks), never branches
inside the flows.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import requests

from .errors import ConfigurationError, DiscoveryError
from .redact import snippet
from .urls import is_loopback_url, require_secure_url  # re-exported: the one definition lives in urls

__all__ = [
    "Provider",
    "PRESETS",
    "preset",
    "suggest",
    "discover",
    "provider_from_metadata",
    "is_loopback_url",
    "NOTEBOOK_ORIGIN",
    "require_secure_url",
]

ComplianceHook = Callable[[Any], Any]

#: Stands for "the notebook page's own origin" in URLs the kernel cannot know absolutely: under
#: JupyterHub/Binder the browser reaches loopback servers at ``{prefix}proxy/<port>/`` on the hub's
#: host. Links are sent browser-relative, and a redirect URI under this origin matches by path.
NOTEBOOK_ORIGIN = "https://notebook-origin.invalid"


def _github_token_json(session: Any) -> Any:
    """GitHub answers form-encoded tokens unless asked for JSON."""

    def add_accept(url: str, headers: dict, body: str) -> tuple[str, dict, str]:
        headers = dict(headers)
        headers["Accept"] = "application/json"
        return url, headers, body

    session.register_compliance_hook("access_token_request", add_accept)  # every token-side request
    return session


@dataclass(frozen=True)
class Provider:
    """Where and how to talk to one authorization server."""

    name: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    revocation_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    introspection_endpoint: str | None = None
    issuer: str | None = None
    default_scopes: tuple[str, ...] = ()
    #: "client_secret_basic", "client_secret_post", "none", "tls_client_auth", ...
    token_endpoint_auth_method: str = "client_secret_basic"
    #: the methods the server advertises (RFC 8414 ``token_endpoint_auth_methods_supported``); () = not known
    token_endpoint_auth_methods: tuple[str, ...] = ()
    extra_authorization_params: Mapping[str, str] = field(default_factory=dict)
    #: RFC 9207: the server puts ``iss`` in the authorization response
    authorization_response_iss: bool = False
    scope_separator: str = " "
    compliance_hooks: tuple[ComplianceHook, ...] = field(default=(), repr=False)
    mtls_endpoint_aliases: Mapping[str, str] = field(default_factory=dict)
    docs: str = ""

    def with_changes(self, **changes: Any) -> "Provider":
        return replace(self, **changes)

    def endpoint(self, kind: str) -> str:
        """The named endpoint URL, checked for transport security, or a clear error."""
        url = getattr(self, f"{kind}_endpoint", None)
        if not url:
            raise ConfigurationError(
                f"Provider {self.name!r} has no {kind} endpoint; this grant is not available for it."
            )
        if kind == "authorization" and url.startswith("/") and not url.startswith("//"):
            return url  # browser-relative: a provider behind jupyter-server-proxy, on the notebook's own origin
        return require_secure_url(url, f"{kind} endpoint")

    def apply_quirks(self, session: Any) -> Any:
        for hook in self.compliance_hooks:
            hook(session)
        return session


def _entra(tenant: str = "common") -> Provider:
    base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
    return Provider(
        name="entra",
        authorization_endpoint=f"{base}/authorize",
        token_endpoint=f"{base}/token",
        device_authorization_endpoint=f"{base}/devicecode",
        userinfo_endpoint="https://graph.microsoft.com/oidc/userinfo",
        issuer=f"https://login.microsoftonline.com/{tenant}/v2.0" if tenant not in ("common", "organizations", "consumers") else None,
        default_scopes=("openid", "profile", "offline_access", "User.Read"),
        token_endpoint_auth_method="client_secret_post",
        docs="Register an app in Entra ID; add a 'Mobile and desktop' redirect http://localhost for loopback.",
    )


def _gitlab(base_url: str = "https://gitlab.com") -> Provider:
    base = base_url.rstrip("/")
    return Provider(
        name="gitlab",
        authorization_endpoint=f"{base}/oauth/authorize",
        token_endpoint=f"{base}/oauth/token",
        revocation_endpoint=f"{base}/oauth/revoke",
        device_authorization_endpoint=f"{base}/oauth/authorize_device",
        userinfo_endpoint=f"{base}/oauth/userinfo",
        issuer=base,
        default_scopes=("read_api",),
        token_endpoint_auth_method="client_secret_post",
    )


_STATIC: dict[str, Provider] = {
    "github": Provider(
        name="github",
        authorization_endpoint="https://github.com/login/oauth/authorize",
        token_endpoint="https://github.com/login/oauth/access_token",
        device_authorization_endpoint="https://github.com/login/device/code",
        default_scopes=("read:user",),
        token_endpoint_auth_method="client_secret_post",
        scope_separator=" ",
        compliance_hooks=(_github_token_json,),
        docs="Create an OAuth App (Settings > Developer settings); enable device flow for the device grant.",
    ),
    "google": Provider(
        name="google",
        authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
        token_endpoint="https://oauth2.googleapis.com/token",
        revocation_endpoint="https://oauth2.googleapis.com/revoke",
        device_authorization_endpoint="https://oauth2.googleapis.com/device/code",
        userinfo_endpoint="https://openidconnect.googleapis.com/v1/userinfo",
        issuer="https://accounts.google.com",
        default_scopes=("openid", "email", "profile"),
        token_endpoint_auth_method="client_secret_post",
        extra_authorization_params={"access_type": "offline", "prompt": "consent"},
        authorization_response_iss=True,
        docs="Create a 'Desktop app' OAuth client in Google Cloud; loopback redirects are allowed.",
    ),
    "spotify": Provider(
        name="spotify",
        authorization_endpoint="https://accounts.spotify.com/authorize",
        token_endpoint="https://accounts.spotify.com/api/token",
        default_scopes=("user-read-private",),
        token_endpoint_auth_method="client_secret_basic",
        docs="Register an app in the Spotify dashboard; redirect http://127.0.0.1:<port>/callback.",
    ),
}

_FACTORIES: dict[str, Callable[..., Provider]] = {"entra": _entra, "gitlab": _gitlab}

PRESETS: tuple[str, ...] = tuple(sorted([*_STATIC, *_FACTORIES]))


#: names people try for a preset that is called something else
_ALIASES = {"microsoft": "entra", "azure": "entra", "azuread": "entra", "azure_ad": "entra", "aad": "entra",
            "msft": "entra", "office365": "entra", "o365": "entra", "gh": "github", "gl": "gitlab"}


def suggest(name: str, known: Iterable[str]) -> str:
    """``"Did you mean 'github'? "`` (with its trailing space) for a name close to one of ``known`` (case and
    ``-``/``_`` aside; "azure" and "microsoft" lead to "entra" when it is known), else ``""``: a message puts
    it after "... is not defined. " as it is."""
    names = {str(candidate).lower().replace("-", "_"): str(candidate) for candidate in known}
    wanted = str(name).lower().replace("-", "_").strip()
    if wanted in names and names[wanted] != name:
        matches = [names[wanted]]
    elif _ALIASES.get(wanted) in names:
        matches = [names[_ALIASES[wanted]]]
    else:
        scored = sorted((-difflib.SequenceMatcher(None, wanted, key).ratio(), key) for key in names)
        scored = [(-score, key) for score, key in scored]
        best = scored[0][0] if scored else 0.0
        # the closest, and a second only when it is as close ("git": github or gitlab)
        matches = [names[key] for score, key in scored[:2] if score >= max(0.6, best - 0.05)]
    if not matches:
        return ""
    return f"Did you mean {' or '.join(repr(match) for match in matches)}? "


def preset(name: str, **options: str) -> Provider:
    """A built-in provider: github, google, spotify, ``entra`` (``tenant=``), ``gitlab`` (``base_url=``)."""
    key = name.lower()
    if key in _FACTORIES:
        return _FACTORIES[key](**options)
    if key in _STATIC:
        if options:
            raise ConfigurationError(f"Preset {name!r} takes no options (got {', '.join(options)}).")
        return _STATIC[key]
    raise ConfigurationError(
        f"No provider preset named {name!r}. {suggest(name, PRESETS)}Presets: {', '.join(PRESETS)}; "
        "for any other OIDC/OAuth server pass issuer=<url> to discover it."
    )


def provider_from_metadata(metadata: Mapping[str, Any], *, name: str | None = None, issuer: str | None = None) -> Provider:
    """Build a Provider from an RFC 8414 / OIDC discovery document."""
    doc_issuer = metadata.get("issuer")
    if issuer and doc_issuer and doc_issuer.rstrip("/") != issuer.rstrip("/"):
        raise DiscoveryError(
            f"The discovery document names issuer {snippet(doc_issuer, 80)!r}, not {snippet(issuer, 80)!r} (RFC 8414 3.3)."
        )
    if not metadata.get("token_endpoint") and not metadata.get("authorization_endpoint"):
        raise DiscoveryError("The discovery document lists neither a token nor an authorization endpoint.")
    advertised = tuple(str(m) for m in metadata.get("token_endpoint_auth_methods_supported") or ())
    methods = advertised or ("client_secret_basic",)  # RFC 8414 2: the default when none is listed
    auth_method = "client_secret_basic" if "client_secret_basic" in methods else methods[0]
    return Provider(
        name=name or urlsplit(str(doc_issuer or issuer or "")).hostname or "discovered",
        authorization_endpoint=metadata.get("authorization_endpoint"),
        token_endpoint=metadata.get("token_endpoint"),
        revocation_endpoint=metadata.get("revocation_endpoint"),
        device_authorization_endpoint=metadata.get("device_authorization_endpoint"),
        userinfo_endpoint=metadata.get("userinfo_endpoint"),
        introspection_endpoint=metadata.get("introspection_endpoint"),
        issuer=doc_issuer or issuer,
        token_endpoint_auth_method=auth_method,
        token_endpoint_auth_methods=advertised,
        authorization_response_iss=bool(metadata.get("authorization_response_iss_parameter_supported")),
        mtls_endpoint_aliases=dict(metadata.get("mtls_endpoint_aliases") or {}),
    )


def discover(issuer: str, *, name: str | None = None, session: requests.Session | None = None,
             timeout: tuple[float, float] = (5, 15)) -> Provider:
    """Read the issuer's discovery document (OIDC first, then RFC 8414)."""
    require_secure_url(issuer, "issuer")
    base = issuer.rstrip("/")
    http = session or requests.Session()
    tried = []
    for suffix in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        url = base + suffix
        tried.append(url)
        try:
            response = http.get(url, timeout=timeout, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise DiscoveryError(f"Could not reach {url}: {type(exc).__name__}.") from None
        if response.status_code == 404:
            continue
        if response.status_code != 200:
            raise DiscoveryError(f"{url} answered HTTP {response.status_code}.", status=response.status_code)
        try:
            metadata = response.json()
        except (ValueError, json.JSONDecodeError):
            raise DiscoveryError(
                f"{url} did not return JSON: {snippet(response.text)!r}", status=response.status_code
            ) from None
        if not isinstance(metadata, dict):
            raise DiscoveryError(f"{url} returned JSON that is not an object.")
        return provider_from_metadata(metadata, name=name, issuer=issuer)
    raise DiscoveryError(f"No discovery document at {' or '.join(tried)}.")
