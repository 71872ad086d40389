"""The local CA and the leaf certificate the server presents on loopback."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .private import private_dir, write_private

CA_NAME = "Deepfake Check local CA"
LEAF_DAYS = 397  # under every browser's limit for locally trusted leaves
CA_DAYS = 3650
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class Certs:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, d: Path) -> Certs:
        return cls(d / "ca.pem", d / "ca-key.pem", d / "cert.pem", d / "key.pem")

    def spki_sha256(self) -> str:
        """base64(sha256(SubjectPublicKeyInfo)) of the leaf: Chromium's --ignore-certificate-errors-spki-list."""
        return spki_sha256(x509.load_pem_x509_certificate(self.cert.read_bytes()))

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def spki_sha256(cert: x509.Certificate) -> str:
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _new_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    # a unique name per machine and generation, so `untrust` and a browser's list can tell them apart
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Deepfake Check"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{CA_NAME} {secrets.token_hex(4)}"),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        # Name constraints: even a stolen CA key cannot vouch for any name but this machine's loopback.
        .add_extension(x509.NameConstraints(permitted_subtrees=[
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
            x509.IPAddress(ipaddress.ip_network("::1/128")),
        ], excluded_subtrees=None), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_leaf(ca: x509.Certificate, ca_key) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def ensure_certs(tls_dir: Path, rotate: bool = False) -> tuple[Certs, bool]:
    """Create the local CA and leaf on first start, reuse them later. Returns (certs, ca_was_created).

    `rotate` replaces both (the CA must then be trusted again). A leaf close to expiry is renewed
    under the existing CA, which needs no new trust.
    """
    private_dir(tls_dir)
    c = Certs.in_dir(tls_dir)
    ca_new = rotate or not (c.ca_cert.exists() and c.ca_key.exists())
    if ca_new:
        ca, ca_key = _new_ca()
        write_private(c.ca_key, _key_pem(ca_key))
        write_private(c.ca_cert, ca.public_bytes(serialization.Encoding.PEM))
    else:
        ca = x509.load_pem_x509_certificate(c.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(c.ca_key.read_bytes(), password=None)
    renew = ca_new or not (c.cert.exists() and c.key.exists())
    if not renew:
        leaf = x509.load_pem_x509_certificate(c.cert.read_bytes())
        expiring = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE
        renew = expiring or leaf.issuer != ca.subject
    if renew:
        leaf, key = _new_leaf(ca, ca_key)
        write_private(c.key, _key_pem(key))
        write_private(c.cert, leaf.public_bytes(serialization.Encoding.PEM))
    return c, ca_new
