"""Throwaway certificates for the demo provider's HTTPS and mutual-TLS modes (RFC 8705).

Made with ``trustme`` at start (an optional dependency: ``pip install
nb_oauth2[tls]``), written as 0600 files into a private 0700 temporary
directory that :meth:`DemoCertificates.cleanup` (and interpreter exit) removes.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Any

from ..core.errors import ConfigurationError
from .clients import DEMO_SCOPES, DEVICE_GRANT, PEER_CERT_HEADERS, DemoClient

__all__ = ["DemoCertificates", "make_tls_clients", "peer_headers", "self_signed_cert"]


def peer_headers(environ: dict) -> dict[str, str]:
    """The mTLS listener's view of the client certificate, as the validator reads it."""
    pem = environ.get("SSL_CLIENT_CERT") if environ.get("nb_oauth2.mtls") else None
    if not pem:
        return {}
    from cryptography import x509

    from ..core.tls import thumbprint

    cert = x509.load_pem_x509_certificate(pem.encode())
    values = (thumbprint(cert), cert.subject.rfc4514_string(), cert.issuer.rfc4514_string())
    return dict(zip(PEER_CERT_HEADERS, values))


def make_tls_clients(redirect_uris: tuple[str, ...], *, subject_dn: str, issuer_dn: str,
                     self_signed_thumbprint: str) -> dict[str, DemoClient]:
    """The mutual-TLS clients (RFC 8705): no secret, authenticated by their certificate."""
    grants = ("client_credentials", "authorization_code", "refresh_token", DEVICE_GRANT)
    return {
        "tls": DemoClient("demo-tls", None, grants, redirect_uris, False, DEMO_SCOPES, "Demo mTLS client (PKI)",
                          auth_method="tls_client_auth", tls_client_auth_subject_dn=subject_dn,
                          tls_client_auth_issuer_dn=issuer_dn),
        "self_signed_tls": DemoClient("demo-self-signed-tls", None, grants, redirect_uris, False, DEMO_SCOPES,
                                      "Demo mTLS client (self-signed)", auth_method="self_signed_tls_client_auth",
                                      tls_thumbprint=self_signed_thumbprint),
    }


def _require_trustme() -> Any:
    try:
        import trustme
    except ImportError:
        raise ConfigurationError("The demo's HTTPS mode needs trustme: pip install 'nb_oauth2[tls]'.") from None
    return trustme


def self_signed_cert(common_name: str, *, days: int = 30) -> tuple[bytes, bytes]:
    """A self-signed client certificate and its unencrypted key, both PEM (RFC 8705 2.2)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class DemoCertificates:
    """A demo CA, the server's certificate, and two client certificates, as files."""

    def __init__(self) -> None:
        trustme = _require_trustme()
        self.dir = tempfile.mkdtemp(prefix="nb_oauth2-demo-tls-")  # mode 0700
        atexit.register(shutil.rmtree, self.dir, True)
        self.ca = trustme.CA(organization_name="nb_oauth2 demo CA")
        self._server = self.ca.issue_cert("127.0.0.1", "localhost", "::1")
        self.ca_path = self._write("ca.pem", self.ca.cert_pem.bytes())
        self.client_cert = self.issue_client_cert("demo-tls", name="client")
        cert_pem, key_pem = self_signed_cert("demo-self-signed")
        self.self_signed_cert = (self._write("self-signed.pem", cert_pem),
                                 self._write("self-signed.key", key_pem))
        self._self_signed_pem = cert_pem

    def _write(self, name: str, data: bytes) -> str:
        path = Path(self.dir) / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return str(path)

    def issue_client_cert(self, common_name: str, *, name: str | None = None,
                          not_before: dt.datetime | None = None,
                          not_after: dt.datetime | None = None) -> tuple[str, str]:
        """A client certificate from the demo CA: ``(cert_path, key_path)`` (tests: expired ones too)."""
        leaf = self.ca.issue_cert(common_name=common_name, organization_name="nb_oauth2 demo",
                                  not_before=not_before, not_after=not_after)
        stem = name or common_name
        return (self._write(f"{stem}.pem", leaf.cert_chain_pems[0].bytes()),
                self._write(f"{stem}.key", leaf.private_key_pem.bytes()))

    def clients(self, redirect_uris: tuple[str, ...]) -> dict[str, DemoClient]:
        """The ``tls`` and ``self_signed_tls`` registrations for these certificates."""
        from cryptography import x509

        from ..core.tls import thumbprint

        issued = x509.load_pem_x509_certificate(Path(self.client_cert[0]).read_bytes())
        return make_tls_clients(redirect_uris, subject_dn=issued.subject.rfc4514_string(),
                                issuer_dn=issued.issuer.rfc4514_string(),
                                self_signed_thumbprint=thumbprint(self.self_signed_cert[0]))

    def server_context(self, *, mtls: bool) -> ssl.SSLContext:
        """The listener's context; ``mtls``: ask for (not require) a client certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._server.configure_cert(ctx)
        if mtls:
            ctx.verify_mode = ssl.CERT_OPTIONAL
            # the demo CA (tls_client_auth) and each registered self-signed certificate
            ctx.load_verify_locations(cadata=self.ca.cert_pem.bytes().decode() + self._self_signed_pem.decode())
        return ctx

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
