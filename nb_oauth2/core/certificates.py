"""Loading TLS client certificates (RFC 8705): read and check them before any request uses them.

:func:`load_client_certificate` reads ``cert=(cert_path, key_path)`` or one PEM holding both, and
refuses -- with a typed error naming the file, never its contents -- a missing or unreadable file,
a key that does not match the certificate, an expired certificate, or a wrong passphrase. An
encrypted key's passphrase comes from ``NB_OAUTH2_<PROFILE>_KEY_PASSPHRASE`` or a getpass prompt,
never from a magic line; the key is decrypted by OpenSSL into an :class:`ssl.SSLContext` (no
decrypted key file is written). Presenting the loaded :class:`ClientCertificate` on a session is
:mod:`nb_oauth2.core.tls`'s job.
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import hashlib
import os
import re
import ssl
import threading
from pathlib import Path
from typing import Any, Callable, Union

import requests

from .errors import (
    CertificateExpired,
    CertificateFileError,
    CertificateKeyMismatch,
    ClientCertificateError,
    ConfigurationError,
    KeyPassphraseError,
)
from .names import env_name
from .redact import register_secret

__all__ = ["CertSetting", "ClientCertificate", "load_client_certificate", "passphrase_env_name",
           "read_pem_file", "require_cryptography", "x5t_s256"]

#: ``"both.pem"`` or ``("cert.pem", "key.pem")``
CertSetting = Union[str, "os.PathLike[str]", tuple[str, str]]


def passphrase_env_name(profile: str) -> str:
    """``NB_OAUTH2_BANK_KEY_PASSPHRASE`` for profile ``bank``."""
    return env_name(profile, "key_passphrase")


def require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise ConfigurationError("TLS client certificates need the cryptography package: "
                                 "pip install 'nb_oauth2[tls]'.") from None


def x5t_s256(der: bytes) -> str:
    """RFC 8705 ``x5t#S256`` of DER bytes: base64url (no padding) of their SHA-256."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode("ascii").rstrip("=")


def read_pem_file(path: str | os.PathLike[str], what: str) -> bytes:
    """The file's bytes, or a CertificateFileError naming the file (never its contents)."""
    name = os.fspath(path)
    resolved = Path(name).expanduser()
    try:
        return resolved.read_bytes()
    except FileNotFoundError:
        message = f"The client {what} file {name!r} does not exist."
    except IsADirectoryError:
        message = f"The client {what} path {name!r} is a directory, not a PEM file."
    except PermissionError:
        message = f"The client {what} file {name!r} cannot be read (permission denied)."
    except OSError as exc:
        message = f"The client {what} file {name!r} cannot be read ({type(exc).__name__})."
    raise CertificateFileError(message + " Check the cert=/key= paths of this profile.", path=name)


def _split_setting(cert: CertSetting) -> tuple[str, str]:
    if isinstance(cert, (tuple, list)):
        if len(cert) != 2 or not all(cert):
            raise ConfigurationError("cert= takes one PEM path or a (cert_path, key_path) pair.")
        return (os.path.abspath(Path(os.fspath(cert[0])).expanduser()),
                os.path.abspath(Path(os.fspath(cert[1])).expanduser()))
    if not cert:
        raise ConfigurationError("cert= is empty; pass a PEM path or a (cert_path, key_path) pair.")
    path = os.path.abspath(Path(os.fspath(cert)).expanduser())
    return path, path


class ClientCertificate:
    """A checked client certificate and key, ready to be presented by requests."""

    def __init__(self, *, cert_path: str, key_path: str, certificate: Any,
                 password: str | None = None) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding

        self.cert_path = cert_path
        self.key_path = key_path
        self.der: bytes = certificate.public_bytes(Encoding.DER)
        self.subject: str = certificate.subject.rfc4514_string()
        self.issuer: str = certificate.issuer.rfc4514_string()
        self.not_before: dt.datetime = certificate.not_valid_before_utc
        self.not_after: dt.datetime = certificate.not_valid_after_utc
        self.thumbprint: str = x5t_s256(self.der)
        self._password = password
        self._contexts: dict[Any, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def check_validity(self, now: dt.datetime | None = None) -> None:
        """Raise :class:`CertificateExpired` outside notBefore..notAfter."""
        now = now or dt.datetime.now(dt.timezone.utc)
        if now > self.not_after:
            raise CertificateExpired(
                f"The client certificate {self.cert_path!r} ({self.subject}) expired on "
                f"{self.not_after:%Y-%m-%d %H:%M} UTC; ask for a new one and update cert= in this profile.",
                path=self.cert_path)
        if now < self.not_before:
            raise CertificateExpired(
                f"The client certificate {self.cert_path!r} is not valid before "
                f"{self.not_before:%Y-%m-%d %H:%M} UTC; check the system clock.", path=self.cert_path)

    def ssl_context(self, verify: bool | str | None = True) -> ssl.SSLContext:
        """A client SSLContext presenting this certificate, trusting per ``verify`` (cached)."""
        key = verify if isinstance(verify, str) else bool(verify is None or verify)
        with self._lock:
            ctx = self._contexts.get(key)
            if ctx is None:
                ctx = self._contexts[key] = self._build_context(key)
            return ctx

    def _build_context(self, verify: bool | str) -> ssl.SSLContext:
        if verify is False:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            bundle = requests.utils.DEFAULT_CA_BUNDLE_PATH if verify is True else verify
            try:
                if os.path.isdir(bundle):
                    ctx = ssl.create_default_context(capath=bundle)
                else:
                    ctx = ssl.create_default_context(cafile=bundle)
            except (OSError, ssl.SSLError):
                raise ConfigurationError(f"The CA bundle {bundle!r} (verify=) cannot be read.") from None
        try:
            ctx.load_cert_chain(self.cert_path, self.key_path, password=self._password)
        except ssl.SSLError as exc:  # checked before; a file changed underneath
            raise ClientCertificateError(
                f"OpenSSL refused the client certificate {self.cert_path!r} or key {self.key_path!r} "
                f"({exc.reason or 'unknown reason'}).", path=self.cert_path) from None
        except OSError:
            raise CertificateFileError(f"The client certificate {self.cert_path!r} or key {self.key_path!r} "
                                       "can no longer be read.", path=self.cert_path) from None
        return ctx

    def __repr__(self) -> str:
        return (f"ClientCertificate(subject={self.subject!r}, not_after={self.not_after:%Y-%m-%d}, "
                f"x5t#S256={self.thumbprint[:12]}…)")


# -- loading ----------------------------------------------------------------------------

_cache: dict[tuple, ClientCertificate] = {}
_cache_lock = threading.Lock()
Prompt = Callable[[str], str]


def _stamp(path: str) -> tuple:
    try:
        info = os.stat(path)
    except OSError:
        return (path, None)
    return (path, info.st_mtime_ns, info.st_size)


def _getpass(text: str) -> str:
    return getpass.getpass(text)  # looked up at call time (tests replace getpass.getpass)


def load_client_certificate(cert: CertSetting | ClientCertificate, *, profile: str | None = None,
                            passphrase: str | None = None, prompt: Prompt | None = _getpass,
                            ) -> ClientCertificate:
    """Read and check a client certificate and key (cached until the files change).

    The passphrase of an encrypted key: ``passphrase=`` (Python code only), then
    ``NB_OAUTH2_<PROFILE>_KEY_PASSPHRASE``, then ``prompt`` (getpass; None: no prompt).
    """
    if isinstance(cert, ClientCertificate):
        cert.check_validity()
        return cert
    cert_path, key_path = _split_setting(cert)
    key = (_stamp(cert_path), _stamp(key_path))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = _load(cert_path, key_path, profile=profile, passphrase=passphrase, prompt=prompt)
            _cache[key] = cached
    cached.check_validity()
    return cached


def _load(cert_path: str, key_path: str, *, profile: str | None, passphrase: str | None,
          prompt: Prompt | None) -> ClientCertificate:
    require_cryptography()
    from cryptography import x509

    cert_pem = read_pem_file(cert_path, "certificate")
    match = re.search(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", cert_pem, re.S)
    if match is None:
        raise CertificateFileError(f"The client certificate file {cert_path!r} holds no PEM certificate "
                                   "(-----BEGIN CERTIFICATE-----).", path=cert_path)
    try:
        certificate = x509.load_pem_x509_certificate(match.group(0))
    except ValueError:
        raise CertificateFileError(f"The client certificate file {cert_path!r} holds a damaged PEM "
                                   "certificate.", path=cert_path) from None
    key_pem = cert_pem if key_path == cert_path else read_pem_file(key_path, "key")
    if not re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", key_pem):
        where = "certificate file" if key_path == cert_path else "key file"
        raise CertificateFileError(f"The client {where} {key_path!r} holds no PEM private key; pass "
                                   "cert=(cert_path, key_path).", path=key_path)
    password, private_key = _decrypt(key_pem, key_path, profile=profile, passphrase=passphrase, prompt=prompt)
    _check_pair(certificate, private_key, cert_path, key_path)
    loaded = ClientCertificate(cert_path=cert_path, key_path=key_path, certificate=certificate, password=password)
    loaded.check_validity()
    loaded.ssl_context(True)  # OpenSSL's own check of the pair, once
    return loaded


def _is_encrypted(key_pem: bytes) -> bool:
    return b"ENCRYPTED" in key_pem


def _decrypt(key_pem: bytes, key_path: str, *, profile: str | None, passphrase: str | None,
             prompt: Prompt | None) -> tuple[str | None, Any]:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    block = re.search(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", key_pem, re.S)
    data = block.group(0) if block else key_pem
    password = None
    if _is_encrypted(data):
        password = _passphrase(key_path, profile=profile, passphrase=passphrase, prompt=prompt)
        register_secret(password)
    try:
        return password, load_pem_private_key(data, password.encode() if password is not None else None)
    except (TypeError, ValueError) as exc:
        if password is not None:
            env = f" (check {passphrase_env_name(profile)})" if profile else ""
            raise KeyPassphraseError(f"The passphrase for the client key {key_path!r} is wrong{env}.",
                                     path=key_path) from None
        raise CertificateFileError(f"The client key file {key_path!r} holds a damaged or unsupported private "
                                   f"key ({type(exc).__name__}).", path=key_path) from None


def _passphrase(key_path: str, *, profile: str | None, passphrase: str | None, prompt: Prompt | None) -> str:
    if passphrase:
        return passphrase
    if profile:
        value = os.environ.get(passphrase_env_name(profile))
        if value:
            return value
    hint = f"set {passphrase_env_name(profile)}" if profile else "set NB_OAUTH2_<PROFILE>_KEY_PASSPHRASE"
    if prompt is None:
        raise KeyPassphraseError(f"The client key {key_path!r} is encrypted and no passphrase was given; {hint}.",
                                 path=key_path)
    try:
        value = prompt(f"Passphrase for {Path(key_path).name}: ")
    except (EOFError, OSError, KeyboardInterrupt):
        value = ""
    if not value:
        raise KeyPassphraseError(f"The client key {key_path!r} is encrypted and no passphrase was entered; "
                                 f"{hint} or enter it at the prompt.", path=key_path)
    return value


def _check_pair(certificate: Any, private_key: Any, cert_path: str, key_path: str) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    try:
        ours = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except (AttributeError, ValueError, TypeError):
        ours = b""
    theirs = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if ours != theirs:
        raise CertificateKeyMismatch(
            f"The private key {key_path!r} does not belong to the certificate {cert_path!r}; pass the key the "
            "certificate was issued for.", path=key_path)
