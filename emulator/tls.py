"""Throwaway CA and localhost certificate, because the Vonage SDK only speaks https://."""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_DAYS = 90
RENEW_BEFORE = dt.timedelta(days=1)  # regenerate rather than serve a certificate about to lapse
SERVER_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class CertPaths:
    """Where the generated files live."""

    ca: Path  # trust this one: REQUESTS_CA_BUNDLE=<ca>
    cert: Path
    key: Path


def cert_paths(folder: str | os.PathLike[str]) -> CertPaths:
    """Name the three files inside folder, without touching the disk."""
    root = Path(folder)
    return CertPaths(ca=root / "ca.pem", cert=root / "server.pem", key=root / "server-key.pem")


def ensure_certificates(folder: str | os.PathLike[str]) -> CertPaths:
    """Reuse the CA and server certificate in folder if still valid, else make new ones."""
    paths = cert_paths(folder)
    paths.ca.parent.mkdir(parents=True, exist_ok=True)
    # Emulators started together over one folder must agree on one CA: let one generate.
    with open(paths.ca.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _still_valid(paths):
            _generate(paths)
    return paths


def server_context(paths: CertPaths) -> ssl.SSLContext:
    """Build the server-side TLS context once; every connection shares it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.cert, paths.key)
    return context


def _still_valid(paths: CertPaths) -> bool:
    try:
        ca = x509.load_pem_x509_certificate(paths.ca.read_bytes())
        cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    soon = dt.datetime.now(dt.UTC) + RENEW_BEFORE
    same_key = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return same_key and all(c.not_valid_after_utc > soon for c in (ca, cert))


def _generate(paths: CertPaths) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())  # P-256: cheap handshakes
    ca_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Vonage emulator throwaway CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(ca_key_id, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(n) for n in SERVER_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    cert = (
        _builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
            ca_name,
            key.public_key(),
            now,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(ca_key_id, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Key first, CA last: a reader that sees the new CA also sees a matching server pair.
    _write_atomically(paths.key, key_pem, mode=0o600)
    _write_atomically(paths.cert, cert.public_bytes(serialization.Encoding.PEM))
    _write_atomically(paths.ca, ca.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    # A server already running from this folder must never read half a file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
