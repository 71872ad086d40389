"""Content Credentials (C2PA) made on the fly: a test CA, ES256 signing certificates under it, and
files signed with c2pa.Builder as a generator, a camera or an editor signs them. Nothing committed."""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
MIME = {".jpg": "image/jpeg", ".mp4": "video/mp4", ".png": "image/png"}


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


def _usage(**on) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


@dataclass
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls, name: str) -> CA:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(name, name)).issuer_name(_name(name, name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def signer(self, org: str, cn: str) -> c2pa.C2paSignerInfo:
        """An ES256 leaf as C2PA wants it (digitalSignature, emailProtection, AKI/SKI), chain leaf+CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        leaf = (x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_usage(digital_signature=True), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
                .sign(self.key, hashes.SHA256()))
        chain = leaf.public_bytes(serialization.Encoding.PEM) + self.pem
        pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
        return c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=pkcs8, ta_url=None)


def manifest(tool: str, actions: list[dict]) -> dict:
    return {"claim_generator_info": [{"name": tool, "version": "1.0"}], "title": "test media",
            "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}]}


def ai_generated(tool: str = "Imagine Video") -> dict:
    return manifest(tool, [{"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia",
                            "softwareAgent": {"name": tool, "version": "1.0"}}])


def camera(tool: str = "Cam Firmware") -> dict:
    return manifest(tool, [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture",
                            "when": "2026-11-30T10:00:00Z"}])


def edited(tool: str = "Photo Editor") -> dict:
    return manifest(tool, [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"},
                           {"action": "c2pa.edited", "softwareAgent": {"name": tool}},
                           {"action": "c2pa.cropped", "softwareAgent": {"name": tool}}])


def sign(src: Path, dst: Path, signer_info: c2pa.C2paSignerInfo, manifest_json: dict) -> Path:
    """dst: src with the manifest signed into it (the same container)."""
    out = io.BytesIO()
    with c2pa.Signer.from_info(signer_info) as signer, c2pa.Builder(manifest_json) as builder, open(src, "rb") as f:
        builder.sign(signer, MIME[src.suffix], f, out)
    dst.write_bytes(out.getvalue())
    return dst


def edit_of(src: Path, dst: Path, signer_info: c2pa.C2paSignerInfo, tool: str = "Photo Editor") -> Path:
    """An editor's manifest over a signed file, which it names as its parent ingredient (the
    file's own manifest goes into the store with it)."""
    edits = manifest(tool, [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
                            {"action": "c2pa.cropped", "softwareAgent": {"name": tool}}])
    out = io.BytesIO()
    with c2pa.Signer.from_info(signer_info) as signer, c2pa.Builder(edits) as builder:
        with open(src, "rb") as parent:
            builder.add_ingredient({"title": src.name, "relationship": "parentOf", "label": "parent"}, MIME[src.suffix], parent)
        with open(src, "rb") as f:
            builder.sign(signer, MIME[src.suffix], f, out)
    dst.write_bytes(out.getvalue())
    return dst


def tamper(src: Path, dst: Path) -> Path:
    """src with one byte of its media data changed after signing (not its manifest): a JPEG's last
    scan, an MP4's last sample."""
    data = bytearray(src.read_bytes())
    data[-64] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def flip_signature(src: Path, dst: Path) -> Path:
    """src with one byte of its claim signature changed (the ES256 signature value, the last 64-byte
    string of the COSE_Sign1 after the c2pa.signature label): the manifest reads, the signature fails."""
    data = bytearray(src.read_bytes())
    label = data.find(b"c2pa.signature")
    at = data.rfind(b"\x58\x40", label, label + 8192)  # CBOR: a 64-byte string follows
    assert label != -1 and at != -1, "no ES256 claim signature found"
    data[at + 2 + 10] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def make_set(media_dir: Path, out: Path) -> dict[str, Path]:
    """The fixtures of the C2PA tests, from the session's generated media. `anchor.pem` is the CA
    of `trusted.jpg` alone; every other file is signed under a CA no test gives as an anchor."""
    out.mkdir(parents=True, exist_ok=True)
    anchor, other = CA.make("Test Anchor CA"), CA.make("Test Other CA")
    generator = other.signer("Example AI Inc", "Imagine Video signer")
    files = {
        "ai.jpg": sign(media_dir / "face.jpg", out / "ai.jpg", generator, ai_generated()),
        "ai.mp4": sign(media_dir / "face.mp4", out / "ai.mp4", generator, ai_generated()),
        "camera.jpg": sign(media_dir / "face.jpg", out / "camera.jpg", other.signer("Example Cameras", "Cam 1"), camera()),
        "edited.jpg": sign(media_dir / "face.jpg", out / "edited.jpg", other.signer("Example Software", "Editor"), edited()),
        "trusted.jpg": sign(media_dir / "face.jpg", out / "trusted.jpg", anchor.signer("Example News", "Newsroom"), camera()),
        "plain.jpg": out / "plain.jpg",
    }
    files["plain.jpg"].write_bytes((media_dir / "face.jpg").read_bytes())
    files["tampered.jpg"] = tamper(files["ai.jpg"], out / "tampered.jpg")
    files["bad-signature.jpg"] = flip_signature(files["ai.jpg"], out / "bad-signature.jpg")
    (out / "anchor.pem").write_bytes(anchor.pem)
    files["anchor.pem"] = out / "anchor.pem"
    return files
