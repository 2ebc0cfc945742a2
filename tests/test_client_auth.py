"""Client authentication at the token endpoint: the method is chosen, configurable and named.

Against Authlib's authorization server (a third-party implementation) with a client that
is registered for ``client_secret_post`` only, as strict servers (Okta, Keycloak) register
one method per client; and a scripted server for what the client sends.
"""

from __future__ import annotations

import base64

import pytest

import nb_oauth2 as oa
from nb_oauth2 import ClientAuth, Provider
from nb_oauth2.core.errors import ConfigurationError, InvalidClient
from nb_oauth2.core.providers import provider_from_metadata
from tests.scripted_server import Reply


@pytest.fixture
def strict(authlib_provider):
    """(server, the client registered for client_secret_post only)."""
    return authlib_provider, authlib_provider.clients["service-post"]


def cc_login(server, client, name="svc", **options):
    return oa.login(name, issuer=server.issuer, client_id=client.client_id, client_secret=client.client_secret,
                    flow="client_credentials", **options)


def test_invalid_client_names_the_method_used_and_the_alternative(strict):
    """A strict server refuses Basic for a client registered for post: the error names both methods."""
    server, client = strict
    with pytest.raises(InvalidClient) as info:
        cc_login(server, client)
    message = str(info.value)
    assert "client_secret_basic" in message and "client_secret_post" in message
    assert "TOKEN_ENDPOINT_AUTH_METHOD" in message
    assert client.client_secret not in message + repr(info.value)


def test_method_from_the_environment_is_used(strict, monkeypatch):
    server, client = strict
    monkeypatch.setenv("NB_OAUTH2_SVC_TOKEN_ENDPOINT_AUTH_METHOD", "client_secret_post")
    session = cc_login(server, client)
    assert session.get(f"{server.url}/api/me", timeout=5).json()["sub"] == client.client_id


def test_method_from_a_profile_and_a_keyword_is_used(strict):
    server, client = strict
    oa.define_profile("svc-profile", {"token_endpoint_auth_method": "client_secret_post"})
    session = cc_login(server, client, name="svc-profile")
    assert session.get(f"{server.url}/api/me", timeout=5).status_code == 200
    keyword = cc_login(server, client, name="svc-kw", token_endpoint_auth_method="client_secret_post")
    assert keyword.get(f"{server.url}/api/me", timeout=5).status_code == 200


def test_unknown_or_unadvertised_method_is_refused_before_any_request(strict):
    server, client = strict
    with pytest.raises(ConfigurationError, match="is not one of"):
        cc_login(server, client, token_endpoint_auth_method="client_secret_jwt_typo")
    provider = provider_from_metadata({"issuer": "https://as.example", "token_endpoint": "https://as.example/t",
                                       "token_endpoint_auth_methods_supported": ["client_secret_basic"]})
    with pytest.raises(ConfigurationError, match="not one the server offers"):
        ClientAuth("cid", "secret", method="client_secret_post").resolve_method(provider)


@pytest.mark.parametrize("advertised, secret, expected", [
    (["client_secret_post"], "s3cret-value", "client_secret_post"),
    (["client_secret_basic", "client_secret_post"], "s3cret-value", "client_secret_basic"),
    (["private_key_jwt", "client_secret_post"], "s3cret-value", "client_secret_post"),
    ([], "s3cret-value", "client_secret_basic"),
    (["client_secret_basic", "none"], None, "none"),
    (["client_secret_post"], None, "none"),
])
def test_default_method_honours_what_the_server_advertises(advertised, secret, expected):
    provider = provider_from_metadata({"issuer": "https://as.example", "token_endpoint": "https://as.example/t",
                                       "token_endpoint_auth_methods_supported": advertised})
    assert ClientAuth("cid", secret).resolve_method(provider) == expected


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_what_each_method_sends(scripted, method):
    """The secret travels in exactly one place: the Basic header or the form body."""
    scripted.script("/token", [Reply(200, {"access_token": "tok-1234567", "token_type": "Bearer"})])
    provider = Provider(name="s", token_endpoint=scripted.url + "/token",
                        token_endpoint_auth_methods=("client_secret_basic", "client_secret_post"))
    session = oa.login("what-is-sent", provider=provider, client_id="cid", client_secret="s3cret-value",
                       flow="client_credentials", token_endpoint_auth_method=method)
    assert session.token_info is not None
    seen = scripted.seen[-1]
    basic = seen.headers.get("Authorization", "")
    if method == "client_secret_basic":
        assert base64.b64decode(basic.split()[1]).decode() == "cid:s3cret-value"
        assert "client_secret" not in seen.body
    else:
        assert not basic and "client_secret=s3cret-value" in seen.body
