"""Presenting TLS client certificates (RFC 8705) and naming TLS failures.

* :class:`ClientCertAdapter` is a requests adapter presenting a loaded
  :class:`~nb_oauth2.core.certificates.ClientCertificate` (loading and its checks:
  :mod:`nb_oauth2.core.certificates`); :func:`mount_client_cert` mounts it on one
  origin of a ``requests.Session`` only.
* :func:`thumbprint` is the RFC 8705 ``x5t#S256`` confirmation of a certificate;
  :func:`bound_thumbprint` the one a token is bound to.
* :func:`tls_error` turns an ``ssl``/requests TLS failure into a typed error.
"""

from __future__ import annotations

import re
import ssl
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from .certificates import ClientCertificate, read_pem_file, require_cryptography, x5t_s256
from .errors import CertificateRejected, ServerCertificateUntrusted, TLSError
from .redact import redact_url

__all__ = [
    "ClientCertAdapter",
    "mount_client_cert",
    "thumbprint",
    "tls_error",
    "is_tls_failure",
    "bound_thumbprint",
    "http_session",
]


def _der(cert: Any) -> bytes:
    require_cryptography()
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    if isinstance(cert, ClientCertificate):
        return cert.der
    if isinstance(cert, x509.Certificate):
        return cert.public_bytes(Encoding.DER)
    if isinstance(cert, str) and not cert.lstrip().startswith("-----BEGIN"):
        cert = read_pem_file(cert, "certificate")
    data = cert.encode() if isinstance(cert, str) else bytes(cert)
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    return data


def thumbprint(cert: Any) -> str:
    """RFC 8705 ``x5t#S256``: base64url (no padding) SHA-256 of the DER certificate.

    ``cert``: a :class:`ClientCertificate`, a cryptography certificate, PEM text or
    bytes, DER bytes, or a path to a PEM file.
    """
    return x5t_s256(_der(cert))


class ClientCertAdapter(HTTPAdapter):
    """A requests adapter whose https connections present one client certificate.

    ``verify`` still works per request (a context is built per trust setting);
    an explicit ``cert=`` on a request wins over the adapter's certificate.
    """

    def __init__(self, certificate: ClientCertificate, **kwargs: Any) -> None:
        self.certificate = certificate
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None):  # type: ignore[override]
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if cert is None and host_params.get("scheme") == "https":
            self.certificate.check_validity()
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
            pool_kwargs["ssl_context"] = self.certificate.ssl_context(verify)
        return host_params, pool_kwargs


class _VerifyingSession(requests.Session):
    """A requests.Session whose ``verify`` wins over REQUESTS_CA_BUNDLE (requests lets the env win)."""

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.verify is not True:
            kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


def http_session(verify: bool | str = True) -> requests.Session:
    """A plain requests session that trusts per ``verify`` (a CA bundle path, True or False)."""
    session = _VerifyingSession()
    session.verify = verify
    return session


def _origin_prefix(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.netloc:
        return None
    return f"https://{parts.netloc.lower().rsplit('@', 1)[-1]}/"


def mount_client_cert(http: requests.Session, url: str, certificate: ClientCertificate) -> bool:
    """Present ``certificate`` on every https request of ``http`` to ``url``'s origin (only).

    Returns False for non-https URLs (nothing mounted).
    """
    prefix = _origin_prefix(url)
    if prefix is None:
        return False
    current = http.adapters.get(prefix)
    if isinstance(current, ClientCertAdapter) and current.certificate is certificate:
        return True
    adapter = next((a for a in http.adapters.values()
                    if isinstance(a, ClientCertAdapter) and a.certificate is certificate), None)
    http.mount(prefix, adapter or ClientCertAdapter(certificate))
    return True


def bound_thumbprint(token: Any) -> str | None:
    """The ``x5t#S256`` a token is bound to (RFC 8705 3.1 ``cnf``), from its token response."""
    cnf = (getattr(token, "extra", None) or {}).get("cnf")
    value = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    return str(value) if value else None


# -- mapping TLS failures ---------------------------------------------------------------

_REJECTED = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "CERTIFICATE_REQUIRED",
             "CERTIFICATE_EXPIRED", "CERTIFICATE_REVOKED", "UNSUPPORTED_CERTIFICATE", "ACCESS_DENIED",
             "DECRYPT_ERROR")


def _reason(text: str) -> str:
    match = re.search(r"\[SSL: ([A-Z0-9_]+)\]", text) or re.search(r"(alert [a-z ]+)", text)
    return match.group(1) if match else ""


def is_tls_failure(exc: BaseException) -> bool:
    """True for an SSL error, possibly wrapped by requests/urllib3 in a ConnectionError."""
    if isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError)):
        return True
    text = str(exc)
    return "SSL" in text and ("alert" in text.lower() or "[SSL:" in text)


def tls_error(url: str, exc: BaseException, *, client_cert: bool = False) -> TLSError:
    """A typed, key-free TLS error for ``url`` from an ``ssl``/requests exception."""
    text = str(exc)
    reason = _reason(text)
    where = redact_url(url)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ServerCertificateUntrusted(
            f"TLS to {where} failed: the server's certificate could not be verified ({reason or 'untrusted'}). "
            "Pass verify=<path to the CA bundle> if the server uses a private CA.")
    if client_cert and any(r in text.upper().replace(" ", "_") for r in _REJECTED):
        return CertificateRejected(
            f"TLS to {where} failed: the server refused the client certificate ({reason or 'handshake'}); "
            "check that the certificate is the one registered for this client and issued by a CA the server trusts.")
    if client_cert and not reason and "EOF" in text:
        return CertificateRejected(f"TLS to {where} failed: the server closed the connection after the client "
                                   "certificate was sent; it probably does not accept it.")
    return TLSError(f"TLS to {where} failed: {reason or 'the handshake failed'}.")
