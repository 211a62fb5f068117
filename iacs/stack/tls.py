"""A private certificate authority and a server certificate for the directory's TLS listener.

Why a CA of our own and not a self-signed server certificate: clients verify the server against
a CA file (``IACS_LDAP__CA_FILE``, Keycloak's ``--truststore-paths``), so a server certificate
can be re-issued (new host names, expiry) without touching any client. The launcher keeps the
CA in the run directory (the tests share one per session); a deployment that has its own PKI
puts its files at the same paths and nothing is generated.

Keys are ECDSA P-256, written 0600; the CA is valid for 5 years, a server certificate for 1.
``ensure_server_tls`` re-issues the server certificate when it lacks a requested name or is
within 30 days of expiry, and never replaces a CA that exists.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DEFAULT_NAMES", "TlsFiles", "ensure_ca", "ensure_server_tls"]

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
"""What every server certificate names: the loopback clients of a local stack use these."""

CA_DAYS = 5 * 365
SERVER_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of a TLS listener: the CA clients trust, the server's chain and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ensure_ca(directory: Path, *, name: str = "IACS directory test CA") -> tuple[Path, Path]:
    """``(ca.pem, ca.key)`` in ``directory``, created once (an existing CA is kept as it is)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _san(names: Iterable[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def _covers(path: Path, ca_path: Path, names: Iterable[str]) -> bool:
    """True when the certificate at ``path`` is from this CA, names all of ``names``, and is
    not about to expire."""
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    if certificate.issuer != ca.subject:
        return False
    if certificate.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    return all(entry in san for entry in _san(names))


def ensure_server_tls(
    directory: Path, names: Iterable[str] = (), *, loopback: bool = True
) -> TlsFiles:
    """The CA and a server certificate for ``DEFAULT_NAMES`` plus ``names`` in ``directory``
    (``loopback=False``: for ``names`` only).

    Files an operator put there are used as they are if they cover the names; a certificate
    from our own CA is re-issued when it does not (an operator's certificate that does not
    is an error, since we cannot sign for their CA).
    """
    wanted = [*(DEFAULT_NAMES if loopback else ()), *names]
    if not wanted:
        raise ValueError("a server certificate needs at least one name")
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    ca_path, ca_key_path = ensure_ca(directory)
    files = TlsFiles(ca_file=ca_path, cert_file=cert_path, key_file=key_path)
    if key_path.exists() and _covers(cert_path, ca_path, wanted):
        return files
    if not ca_key_path.exists():
        raise ValueError(
            f"{cert_path} does not name {', '.join(wanted)} and there is no CA key in "
            f"{directory} to issue one: replace the certificate"
        )
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca_key_path} is not an EC private key")
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_san(wanted)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return files
