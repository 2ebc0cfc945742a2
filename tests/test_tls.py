"""TLS client authentication (RFC 8705) end to end against the demo provider in mTLS mode.

The seed's ``fetch_token(token_url, include_client_id=True, cert=(cert, key))`` becomes
``nb_oauth2.login(..., flow="client_credentials", cert=..., verify=...)``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import os
import ssl
import threading
from pathlib import Path

import pytest
import requests

pytest.importorskip("trustme")

import nb_oauth2 as oa  # noqa: E402
from nb_oauth2 import demo  # noqa: E402
from nb_oauth2.core.endpoint import ClientAuth  # noqa: E402
from nb_oauth2.core.errors import (  # noqa: E402
    CertificateExpired,
    CertificateFileError,
    CertificateKeyMismatch,
    CertificateRejected,
    ConfigurationError,
    KeyPassphraseError,
    ServerCertificateUntrusted,
    TLSError,
)
from nb_oauth2.core.providers import provider_from_metadata  # noqa: E402
from nb_oauth2.core.certificates import load_client_certificate  # noqa: E402
from nb_oauth2.core.tls import ClientCertAdapter, mount_client_cert, thumbprint  # noqa: E402


@pytest.fixture(scope="module")
def p():
    provider = demo.start(https=True, mtls=True, device_interval=1)
    yield provider
    provider.stop()


def _login(p, *, client="tls", cert=None, **options):
    options.setdefault("verify", p.ca_path)
    options.setdefault("flow", "client_credentials")
    return oa.login("bank", issuer=p.issuer, client_id=p.clients[client].client_id,
                    cert=cert or p.client_cert, **options)


def _pem_body(path: str) -> list[str]:
    """The base64 lines of every PEM block in the file (what must never be echoed)."""
    lines = Path(path).read_text().splitlines()
    return [line for line in lines if line and not line.startswith("-----") and len(line) > 20]


def _assert_no_key_material(exc: BaseException, key_path: str, caplog=None) -> None:
    seen = " ".join([str(exc), repr(exc)] + ([caplog.text] if caplog is not None else []))
    for line in _pem_body(key_path):
        assert line not in seen


def _bearer(token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.access_token}"}


# -- the happy path ------------------------------------------------------------------------


def test_client_credentials_login_over_mtls_gets_a_certificate_bound_token(p):
    before = p.token_requests
    session = _login(p)
    token = session.token_info
    assert token.extra["cnf"]["x5t#S256"] == thumbprint(p.client_cert[0])
    assert session.endpoints.url("token") == f"{p.mtls_url}/token"  # RFC 8705 5: the mTLS alias
    assert p.token_requests == before + 1
    assert session.client_auth.resolve_method(session.provider) == "tls_client_auth"


def test_bound_token_works_on_the_api_with_the_certificate_and_is_refused_without(p):
    """Case 12 neighbour: a bound token presented without its certificate is 401 invalid_token."""
    session = _login(p)
    url = f"{p.mtls_url}/api/events?per_page=5"
    assert session.get(url).status_code == 200
    stolen = requests.get(url, headers=_bearer(session.token_info), verify=p.ca_path, timeout=10)
    assert stolen.status_code == 401
    assert 'error="invalid_token"' in stolen.headers["WWW-Authenticate"]
    assert "client certificate" in stolen.json()["error_description"]
    plain_listener = requests.get(f"{p.url}/api/events", headers=_bearer(session.token_info),
                                  verify=p.ca_path, timeout=10)
    assert plain_listener.status_code == 401


def test_nb_oauth2_session_without_the_certificate_gets_401_for_a_bound_token(p):
    bound = _login(p).token_info
    thief = oa.Session(name="thief", provider=provider_from_metadata(p.metadata, name="bank"),
                       client=ClientAuth(p.clients["tls"].client_id), token=bound, verify=p.ca_path,
                       auto_refresh=False)
    assert thief.get(f"{p.mtls_url}/api/events").status_code == 401


def test_introspection_shows_the_certificate_binding(p):
    session = _login(p)
    http = requests.Session()
    mount_client_cert(http, p.mtls_url, load_client_certificate(p.client_cert))
    claims = http.post(f"{p.mtls_url}/introspect", verify=p.ca_path, timeout=10,
                       data={"token": session.token_info.access_token, "client_id": "demo-tls"}).json()
    assert claims["active"] is True
    assert claims["cnf"] == {"x5t#S256": thumbprint(p.client_cert[0])}


def test_refetch_and_revocation_go_over_mtls(p):
    session = _login(p)
    first = session.token_info
    renewed = session.refresh()  # client credentials: a new token request over mTLS
    assert renewed.access_token != first.access_token
    assert renewed.extra["cnf"]["x5t#S256"] == thumbprint(p.client_cert[0])
    assert session.revoke() is True
    gone = requests.Session()
    mount_client_cert(gone, p.mtls_url, load_client_certificate(p.client_cert))
    answer = gone.get(f"{p.mtls_url}/api/events", headers=_bearer(renewed), verify=p.ca_path, timeout=10)
    assert answer.status_code == 401


def test_refresh_token_grant_over_mtls_keeps_the_binding(p):
    session = _login(p, flow="code", browser=p.driver.authorize, scope="read:events")
    first = session.token_info
    assert first.refresh_token
    renewed = session.refresh()
    assert renewed.refresh_token and renewed.refresh_token != first.refresh_token  # rotated
    assert renewed.extra["cnf"]["x5t#S256"] == thumbprint(p.client_cert[0])
    assert session.get(f"{p.mtls_url}/api/events?per_page=1").status_code == 200


def test_device_flow_over_mtls(p):
    def approve(step):
        threading.Timer(0.1, p.driver.approve_device, args=(step.user_code,)).start()

    session = _login(p, flow="device", on_device_code=approve, scope="read:users")
    assert session.token_info.extra["cnf"]["x5t#S256"] == thumbprint(p.client_cert[0])
    assert session.endpoints.url("device_authorization") == f"{p.mtls_url}/device_authorization"


def test_self_signed_client_is_matched_by_its_certificate_thumbprint(p):
    session = _login(p, client="self_signed_tls", cert=p.self_signed_cert)
    assert session.token_info.extra["cnf"]["x5t#S256"] == thumbprint(p.self_signed_cert[0])
    assert session.get(f"{p.mtls_url}/api/users?per_page=2").status_code == 200


def test_self_signed_certificate_cannot_pose_as_the_pki_client(p):
    with pytest.raises(oa.InvalidClient):
        _login(p, client="tls", cert=p.self_signed_cert)


# -- where the certificate goes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def recorder(p):
    """Another https origin (same demo CA) that records whether a client certificate came."""
    from nb_oauth2.demo.listeners import serve_quietly as _serve

    seen: list[bool] = []

    def app(environ, start_response):
        seen.append(bool(environ.get("SSL_CLIENT_CERT")))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    httpd = _serve("127.0.0.1", 0, app, p.tls.server_context(mtls=True))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.socket.getsockname()[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def test_session_does_not_set_the_certificate_for_every_request(p, recorder):
    url, seen = recorder
    session = _login(p)
    assert session.cert is None
    session.get(f"{url}/public", withhold_token=True)
    assert seen[-1] is False  # not a host that needs it
    mounted = [prefix for prefix, a in session.adapters.items() if isinstance(a, ClientCertAdapter)]
    assert mounted == []


def test_certificate_goes_with_a_bound_token_and_to_listed_hosts(p, recorder):
    url, seen = recorder
    session = _login(p)
    session.get(f"{url}/data")  # the bound token is useless there without its certificate
    assert seen[-1] is True
    listed = _login(p, cert_hosts=url)
    listed.get(f"{url}/open", withhold_token=True)
    assert seen[-1] is True


# -- bad inputs (SECURITY_CASES 12 and neighbours) ---------------------------------------------


def test_missing_certificate_file_is_named_before_any_token_request(p, tmp_path):
    """Case 12: a missing client certificate is a typed error naming the file."""
    before = p.token_requests
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(CertificateFileError) as info:
        _login(p, cert=(missing, p.client_cert[1]))
    assert missing in str(info.value) and "does not exist" in str(info.value)
    assert isinstance(info.value, TLSError) and isinstance(info.value, ConfigurationError)
    assert p.token_requests == before


def test_unreadable_key_path_is_named(p, tmp_path):
    """Case 12: an unreadable key (here a directory) names the path."""
    with pytest.raises(CertificateFileError) as info:
        _login(p, cert=(p.client_cert[0], str(tmp_path)))
    assert str(tmp_path) in str(info.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads every file")
def test_key_without_read_permission_is_named(p, tmp_path):
    key = tmp_path / "locked.key"
    key.write_bytes(Path(p.client_cert[1]).read_bytes())
    key.chmod(0)
    with pytest.raises(CertificateFileError, match="permission denied"):
        load_client_certificate((p.client_cert[0], str(key)))


def test_file_without_a_certificate_is_refused(tmp_path, p):
    bogus = tmp_path / "not-a-cert.pem"
    bogus.write_text("hello\n")
    with pytest.raises(CertificateFileError, match="no PEM certificate"):
        load_client_certificate((str(bogus), p.client_cert[1]))


def test_key_that_does_not_match_the_certificate_is_refused_without_key_material(p, caplog):
    """Case 12: bad mTLS cert/key -> TLS error without key material."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CertificateKeyMismatch) as info:
        _login(p, cert=(p.client_cert[0], p.self_signed_cert[1]))
    assert p.self_signed_cert[1] in str(info.value) and p.client_cert[0] in str(info.value)
    _assert_no_key_material(info.value, p.self_signed_cert[1], caplog)
    assert repr(info.value) == "CertificateKeyMismatch()"


def test_expired_certificate_is_refused_with_its_date(p):
    """Case 12 neighbour: an expired client certificate names the file and the expiry."""
    old = p.issue_client_cert("demo-tls-old", not_before=dt.datetime(2020, 1, 1),
                              not_after=dt.datetime(2021, 1, 1))
    with pytest.raises(CertificateExpired) as info:
        _login(p, cert=old)
    assert old[0] in str(info.value) and "2021-01-01" in str(info.value)
    _assert_no_key_material(info.value, old[1])


def test_certificate_from_another_ca_is_rejected_by_the_server(p, tmp_path, caplog):
    """Case 12: the server refuses a certificate it does not trust -> CertificateRejected."""
    import trustme

    leaf = trustme.CA().issue_cert(common_name="demo-tls")
    cert, key = tmp_path / "other.pem", tmp_path / "other.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CertificateRejected) as info:
        _login(p, cert=(str(cert), str(key)))
    assert "client certificate" in str(info.value)  # alert or EOF, depending on TLS 1.3 timing
    _assert_no_key_material(info.value, str(key), caplog)


def test_server_certificate_untrusted_without_verify(p):
    """Case 12 neighbour: https verification failure is a typed error with the next step."""
    with pytest.raises(ServerCertificateUntrusted) as info:
        _login(p, verify=True)
    assert "verify=" in str(info.value)


def test_server_certificate_untrusted_at_the_token_endpoint(p):
    provider = provider_from_metadata(p.metadata, name="bank")
    with pytest.raises(ServerCertificateUntrusted):
        oa.login("bank", provider=provider, client_id="demo-tls", flow="client_credentials",
                 cert=p.client_cert, verify=True)


def test_missing_ca_bundle_is_a_configuration_error(p, tmp_path):
    with pytest.raises(ConfigurationError, match="CA bundle"):
        _login(p, verify=str(tmp_path / "missing-ca.pem"))


def test_tls_method_without_a_certificate_is_a_configuration_error(p):
    provider = provider_from_metadata(p.metadata, name="bank")
    from nb_oauth2.core.endpoint import Endpoints

    endpoints = Endpoints(provider, ClientAuth("demo-tls", method="tls_client_auth"), verify=p.ca_path)
    with pytest.raises(ConfigurationError, match="needs a client certificate"):
        endpoints.token({"grant_type": "client_credentials"})


# -- encrypted keys ------------------------------------------------------------------------------


@pytest.fixture
def encrypted_key(p, tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(p.client_cert[1]).read_bytes(), None)
    path = tmp_path / "client-encrypted.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"correct horse")))
    return str(path)


def test_encrypted_key_with_passphrase_from_the_environment(p, encrypted_key, monkeypatch):
    monkeypatch.setenv("NB_OAUTH2_BANK_KEY_PASSPHRASE", "correct horse")
    session = _login(p, cert=(p.client_cert[0], encrypted_key))
    assert session.get(f"{p.mtls_url}/api/events?per_page=1").status_code == 200


def test_wrong_passphrase_is_a_typed_error_without_the_passphrase(p, encrypted_key, monkeypatch, caplog):
    monkeypatch.setenv("NB_OAUTH2_BANK_KEY_PASSPHRASE", "wrong-battery-staple")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KeyPassphraseError) as info:
        _login(p, cert=(p.client_cert[0], encrypted_key))
    assert encrypted_key in str(info.value) and "NB_OAUTH2_BANK_KEY_PASSPHRASE" in str(info.value)
    assert "wrong-battery-staple" not in str(info.value) + caplog.text
    _assert_no_key_material(info.value, encrypted_key, caplog)


def test_passphrase_is_prompted_with_getpass_when_not_in_the_environment(p, encrypted_key, monkeypatch):
    monkeypatch.delenv("NB_OAUTH2_BANK_KEY_PASSPHRASE", raising=False)
    asked: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": asked.append(prompt) or "correct horse")
    cert = load_client_certificate((p.client_cert[0], encrypted_key), profile="bank")
    assert asked and "client-encrypted.key" in asked[0]
    assert cert.thumbprint == thumbprint(p.client_cert[0])


def test_no_passphrase_and_no_prompt_names_the_environment_variable(p, encrypted_key):
    with pytest.raises(KeyPassphraseError, match="NB_OAUTH2_BANK_KEY_PASSPHRASE"):
        load_client_certificate((p.client_cert[0], encrypted_key), profile="bank", prompt=None)


# -- pieces --------------------------------------------------------------------------------------


def test_thumbprint_is_base64url_sha256_of_the_der_certificate(p):
    der = ssl.PEM_cert_to_DER_cert(Path(p.client_cert[0]).read_text())
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    assert thumbprint(p.client_cert[0]) == expected
    assert thumbprint(der) == expected
    assert "=" not in expected and len(expected) == 43


def test_one_pem_with_certificate_and_key_is_accepted(p, tmp_path):
    both = tmp_path / "both.pem"
    both.write_bytes(Path(p.client_cert[0]).read_bytes() + Path(p.client_cert[1]).read_bytes())
    cert = load_client_certificate(str(both))
    assert cert.thumbprint == thumbprint(p.client_cert[0])
    assert "PRIVATE" not in repr(cert)


def test_metadata_lists_mtls_aliases_and_methods(p):
    meta = requests.get(p.metadata_url, verify=p.ca_path, timeout=10).json()
    assert meta["mtls_endpoint_aliases"]["token_endpoint"] == f"{p.mtls_url}/token"
    assert {"tls_client_auth", "self_signed_tls_client_auth"} <= set(meta["token_endpoint_auth_methods_supported"])
    assert meta["tls_client_certificate_bound_access_tokens"] is True


def test_https_only_demo_serves_secret_clients_with_verify():
    with demo.start(https=True) as secure:
        assert secure.url.startswith("https://") and secure.mtls_url is None and secure.client_cert is None
        service = secure.clients["service"]
        session = oa.login("svc", issuer=secure.issuer, client_id=service.client_id, verify=secure.ca_path,
                           client_secret=service.client_secret, flow="client_credentials")
        assert session.get(f"{secure.url}/api/events?per_page=1").status_code == 200
        assert "cnf" not in session.token_info.extra


def test_plain_http_demo_has_no_tls_parts():
    with demo.start() as plain:
        assert plain.url.startswith("http://") and plain.ca_path is None and plain.client_cert is None
        assert "mtls_endpoint_aliases" not in plain.metadata and "tls" not in plain.clients
