"""The local CA and leaf certificate, and `python -m server trust` / `untrust` against a temp HOME."""
from __future__ import annotations

import ipaddress
import os
import ssl
import subprocess
import sys

import pytest
from cryptography import x509
from testenv import ROOT

from server.auth import PairedOrigin, TokenStore
from server.tls import CA_NAME, Certs, ensure_certs, spki_sha256


def test_first_start_creates_a_ca_and_a_leaf_for_loopback_with_private_keys(tmp_path):
    certs, created = ensure_certs(tmp_path / "tls")
    assert created
    leaf = x509.load_pem_x509_certificate(certs.cert.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    for p in (certs.key, certs.ca_key):
        assert oct(p.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "tls").stat().st_mode & 0o777) == "0o700"
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    nc = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical and x509.DNSName("localhost") in nc.value.permitted_subtrees


def test_certificates_are_reused_and_rotate_on_request(tmp_path):
    first, _ = ensure_certs(tmp_path)
    spki = first.spki_sha256()
    again, created = ensure_certs(tmp_path)
    assert not created and again.spki_sha256() == spki
    rotated, created = ensure_certs(tmp_path, rotate=True)
    assert created and rotated.spki_sha256() != spki


def test_leaf_verifies_against_the_ca_for_every_loopback_name(tmp_path):
    certs, _ = ensure_certs(tmp_path)
    leaf = x509.load_pem_x509_certificate(certs.cert.read_bytes())
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    leaf.verify_directly_issued_by(ca)
    from cryptography.x509.verification import PolicyBuilder, Store

    for name in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.IPAddress(ipaddress.ip_address("::1"))):
        verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(name)
        verifier.verify(leaf, [])


def test_spki_hash_is_base64_sha256_of_the_leaf_key(tmp_path):
    certs, _ = ensure_certs(tmp_path)
    value = certs.spki_sha256()
    assert len(value) == 44 and value.endswith("=")
    assert value == spki_sha256(x509.load_pem_x509_certificate(certs.cert.read_bytes()))


def test_token_file_is_private_and_rotation_replaces_it(tmp_path):
    t = TokenStore(tmp_path / "cfg" / "token")
    t.ensure()
    first = t.token
    assert len(first) >= 43 and oct(t.path.stat().st_mode & 0o777) == "0o600"
    t.ensure()
    assert t.token == first
    t.rotate()
    assert t.token != first and not t.verify(first)


def run_server_cli(*args, home):
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "server", *args, "--config-dir", str(home / "cfg")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def nicknames(db) -> str:
    return subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True, text=True).stdout


@pytest.mark.skipif(subprocess.run(["which", "certutil"], capture_output=True).returncode != 0,
                    reason="certutil (libnss3-tools) not installed; scripts/setup.sh installs it")
def test_trust_installs_the_ca_in_chromium_and_firefox_databases_and_untrust_removes_it(tmp_path):
    home = tmp_path / "home"
    profile = home / ".mozilla" / "firefox" / "abcd.default-release"
    profile.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{profile}", "--empty-password"], check=True)
    r = run_server_cli("trust", home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    chromium = home / ".pki" / "nssdb"
    for db in (chromium, profile):
        assert CA_NAME in nicknames(db)
        assert f"trusted in {db}" in r.stdout
    assert "security add-trusted-cert" in r.stdout and "certutil -user -addstore Root" in r.stdout
    r = run_server_cli("trust", home=home)  # idempotent: still exactly one copy
    assert nicknames(chromium).count(CA_NAME) == 1
    r = run_server_cli("untrust", home=home)
    assert r.returncode == 0
    for db in (chromium, profile):
        assert CA_NAME not in nicknames(db)


def test_rotate_token_command_replaces_the_token_and_forgets_the_paired_extension(tmp_path):
    home = tmp_path
    t = TokenStore(home / "cfg" / "token")
    t.ensure()
    old = t.token
    paired = PairedOrigin(home / "cfg" / "paired-origin")
    paired.set("chrome-extension://" + "a" * 32)
    r = run_server_cli("rotate-token", home=home)
    assert r.returncode == 0 and old not in r.stdout
    assert TokenStore(home / "cfg" / "token").token != old and paired.get() is None


def test_tls_context_offers_the_leaf(tmp_path):
    certs, _ = ensure_certs(tmp_path)
    ctx = certs.ssl_context()
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert isinstance(Certs.in_dir(tmp_path).ca_cert.read_bytes(), bytes)
