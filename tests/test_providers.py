"""Provider presets and discovery documents of real providers (checked in as data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nb_oauth2 import PRESETS, preset
from nb_oauth2.core.errors import ConfigurationError, DiscoveryError, InsecureTransportError
from nb_oauth2.core.providers import discover, provider_from_metadata
from tests.scripted_server import Reply

DATA = Path(__file__).parent / "data" / "discovery"


@pytest.mark.parametrize("name", ["google", "entra_contoso", "keycloak_realm", "okta_oauth_server"])
def test_real_discovery_documents_build_providers(name):
    metadata = json.loads((DATA / f"{name}.json").read_text())
    provider = provider_from_metadata(metadata, issuer=metadata["issuer"])
    assert provider.token_endpoint == metadata["token_endpoint"]
    assert provider.authorization_endpoint == metadata["authorization_endpoint"]
    assert provider.device_authorization_endpoint == metadata.get("device_authorization_endpoint")
    assert provider.token_endpoint_auth_method in metadata["token_endpoint_auth_methods_supported"]


def test_keycloak_advertises_iss_and_mtls_aliases():
    metadata = json.loads((DATA / "keycloak_realm.json").read_text())
    provider = provider_from_metadata(metadata)
    assert provider.authorization_response_iss is True
    assert provider.mtls_endpoint_aliases["token_endpoint"].startswith("https://mtls.")


def test_issuer_mismatch_in_document_is_refused():
    """RFC 8414 3.3: the document's issuer must be the one asked for."""
    metadata = json.loads((DATA / "google.json").read_text())
    with pytest.raises(DiscoveryError):
        provider_from_metadata(metadata, issuer="https://evil.example")


def test_presets_cover_the_documented_providers():
    assert {"github", "google", "entra", "gitlab", "spotify"} <= set(PRESETS)
    assert preset("entra", tenant="contoso").token_endpoint.startswith("https://login.microsoftonline.com/contoso/")
    assert preset("gitlab", base_url="https://git.example.org/").token_endpoint == "https://git.example.org/oauth/token"
    assert preset("google").extra_authorization_params == {"access_type": "offline", "prompt": "consent"}
    with pytest.raises(ConfigurationError, match="Presets"):
        preset("nope")


def test_github_quirk_asks_for_json_at_the_token_endpoint():
    from nb_oauth2.core.endpoint import _HookCollector

    collector = _HookCollector()
    preset("github").apply_quirks(collector)
    (hook,) = collector.hooks["access_token_request"]
    _, headers, _ = hook("https://github.com/login/oauth/access_token", {}, "")
    assert headers["Accept"] == "application/json"


def test_quirks_register_only_what_the_endpoint_collects():
    """The endpoint applies access_token_request hooks to every token-side request; nothing else is registered
    (the never-collected refresh_token_request hook and the never-read code_challenge_methods are gone)."""
    import dataclasses

    from nb_oauth2.core.endpoint import _HookCollector
    from nb_oauth2.core.providers import Provider

    for name in PRESETS:
        collector = _HookCollector()
        preset(name).apply_quirks(collector)
        assert set(collector.hooks) <= {"access_token_request"}, name
    assert "code_challenge_methods" not in {f.name for f in dataclasses.fields(Provider)}


def test_discovery_over_http_falls_back_to_rfc8414(scripted):
    doc = {"issuer": scripted.url, "token_endpoint": scripted.url + "/token",
           "authorization_endpoint": scripted.url + "/authorize"}
    scripted.script("/.well-known/openid-configuration", [Reply(404, {"error": "nope"})])
    scripted.script("/.well-known/oauth-authorization-server", [Reply(200, doc)])
    assert discover(scripted.url).token_endpoint == scripted.url + "/token"


def test_discovery_html_is_typed_error(scripted):
    scripted.script("/.well-known/openid-configuration", [Reply(200, "<html>login</html>", {"Content-Type": "text/html"})])
    with pytest.raises(DiscoveryError, match="did not return JSON"):
        discover(scripted.url)


def test_discovery_of_remote_http_issuer_is_refused():
    with pytest.raises(InsecureTransportError):
        discover("http://example.com")


@pytest.mark.parametrize("typed, expected", [
    ("githib", "Did you mean 'github'? "),
    ("git", "Did you mean 'github' or 'gitlab'? "),
    ("gogle", "Did you mean 'google'? "),
    ("spotfy", "Did you mean 'spotify'? "),
    ("azure", "Did you mean 'entra'? "),
    ("Microsoft", "Did you mean 'entra'? "),
    ("demoo", "Did you mean 'demo'? "),
    ("my_api", "Did you mean 'my-api'? "),  # a defined profile, - and _ aside
    ("weather", ""),
])
def test_unknown_names_get_a_did_you_mean(typed, expected):
    from nb_oauth2.core.providers import suggest

    assert suggest(typed, [*PRESETS, "demo", "my-api"]) == expected


def test_an_unknown_preset_suggests_the_close_one():
    with pytest.raises(ConfigurationError, match=r"No provider preset named 'githb'\. Did you mean 'github'\? "
                                                 r"Presets: entra, github"):
        preset("githb")
    with pytest.raises(ConfigurationError) as info:
        preset("weather")
    assert "Did you mean" not in str(info.value)


def test_tutorial_05_has_a_section_for_every_preset_and_explains_paste_back():
    """Notebook 5 says what each preset needs; paste-back's browser error page is explained as expected."""
    notebook = json.loads((Path(__file__).parent.parent / "notebooks" / "05_real_providers.ipynb").read_text())
    text = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
    headings = {line[3:].split(" ")[0].lower() for line in text.splitlines() if line.startswith("## ")}
    assert {"github", "google", "microsoft", "spotify", "gitlab"} <= headings
    assert set(PRESETS) - {"entra"} <= headings and "Entra" in text
    assert "This site can't be reached" in text and "expected" in text
    for name in PRESETS:
        assert f"NB_OAUTH2_{name.upper()}_CLIENT_ID" in text, name
