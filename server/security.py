"""TLS certificates, the pairing token, and the access-control middlewares.

Middleware order (outermost first): errors -> Host -> CORS -> token -> rate limit.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import ApiError, json_error

log = logging.getLogger(__name__)

CA_NAME = "Deepfake Check local CA"
LEAF_DAYS = 397  # under every browser's limit for locally trusted leaves
CA_DAYS = 3650
RENEW_BEFORE = dt.timedelta(days=30)
HOSTS = ("localhost", "127.0.0.1", "[::1]")
EXTENSION_ORIGIN_PREFIXES = ("chrome-extension://", "moz-extension://")
PUBLIC_PATHS = frozenset({"/v1/health", "/v1/pair", "/v1/openapi.json", "/pair"})
PAIR_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
PAIR_CODE_TTL_S = 600
PAIR_MAX_WRONG = 5
CORS_HEADERS = web.RequestKey("cors_headers", dict)


# --- files ------------------------------------------------------------------------------------
def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by the owner only, atomically (never a world-readable moment)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# --- TLS --------------------------------------------------------------------------------------
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


# --- token and pairing ------------------------------------------------------------------------
class TokenStore:
    """The bearer token, 0600 in the config dir. Re-read when the file changes (`rotate-token`)."""

    def __init__(self, path: Path):
        self.path = path
        self._token: str | None = None
        self._mtime: int | None = None

    def ensure(self) -> None:
        private_dir(self.path.parent)
        if not self.path.exists():
            write_private(self.path, secrets.token_urlsafe(32).encode())

    def rotate(self) -> None:
        private_dir(self.path.parent)
        write_private(self.path, secrets.token_urlsafe(32).encode())

    @property
    def token(self) -> str:
        st = self.path.stat()  # a stat per request: microseconds, and a rotation takes effect at once
        if self._mtime != st.st_mtime_ns or self._token is None:
            self._token, self._mtime = self.path.read_text().strip(), st.st_mtime_ns
        return self._token

    def verify(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self.token.encode())


def new_pair_code() -> str:
    s = "".join(secrets.choice(PAIR_CODE_ALPHABET) for _ in range(8))
    return f"{s[:4]}-{s[4:]}"


class Pairing:
    """A short one-use code, valid 10 minutes, exchanged once for the token; wrong guesses burn it."""

    def __init__(self, tokens: TokenStore, attempts_per_min: int, ttl_s: float = PAIR_CODE_TTL_S):
        self.tokens = tokens
        self.code = new_pair_code()
        self.expires = time.monotonic() + ttl_s
        self.wrong = 0
        self.used = False
        self.limiter = RateLimiter(attempts_per_min)

    @property
    def active(self) -> bool:
        return not self.used and self.wrong < PAIR_MAX_WRONG and time.monotonic() < self.expires

    def exchange(self, code: str) -> str:
        wait = self.limiter.take("pair")
        if wait:
            raise ApiError(429, "rate_limited", "Too many pairing attempts; wait a minute.",
                           {"Retry-After": str(wait)})
        given = code.strip().upper().replace(" ", "").encode()
        ok = hmac.compare_digest(given, self.code.encode())  # compare before deciding: constant time
        if not self.active:
            raise ApiError(401, "unauthorized",
                           "This pairing code has expired or was used. Restart the server for a new one.")
        if not ok:
            self.wrong += 1
            raise ApiError(401, "unauthorized", "Wrong pairing code.")
        self.used = True
        return self.tokens.token


class RateLimiter:
    """Token buckets: `per_min` requests a minute, bursts up to the same number."""

    def __init__(self, per_min: int):
        self.capacity = float(per_min)
        self.rate = per_min / 60.0
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> int:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        level, last = self.buckets.get(key, (self.capacity, now))
        level = min(self.capacity, level + (now - last) * self.rate)
        if level < 1.0:
            self.buckets[key] = (level, now)
            return max(1, int((1.0 - level) / self.rate + 0.999))
        self.buckets[key] = (level - 1.0, now)
        return 0


# --- middlewares ------------------------------------------------------------------------------
@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as e:
        return e.response()
    except web.HTTPNotFound:
        return json_error(404, "not_found", "No such endpoint.")
    except web.HTTPMethodNotAllowed as e:
        return json_error(405, "method_not_allowed", "Method not allowed.", {"Allow": ", ".join(sorted(e.allowed_methods))})
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, "too_large", "Request too large.")
    except web.HTTPException:
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:  # a bug must not leak a traceback page; the log has it
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal", "Internal server error.")


def allowed_hosts(port: int) -> frozenset[str]:
    hosts = {f"{h}:{port}" for h in HOSTS}
    if port == 443:
        hosts |= set(HOSTS)
    return frozenset(hosts)


def host_middleware(port: int | None):
    """Host must name this machine's loopback and our port: a rebound DNS name never matches."""

    @web.middleware
    async def check_host(request: web.Request, handler):
        p = port
        if p is None:  # the port the request arrived on (tests bind port 0)
            sock = request.transport.get_extra_info("sockname") if request.transport else None
            p = sock[1] if sock else -1
        if (request.headers.get("Host") or "").lower() not in allowed_hosts(p):
            return json_error(403, "forbidden_host", "Host header must be localhost, 127.0.0.1 or [::1] with this server's port.")
        return await handler(request)

    return check_host


def origin_allowed(origin: str, extra: tuple[str, ...]) -> bool:
    return origin.startswith(EXTENSION_ORIGIN_PREFIXES) or origin in extra


def cors_middleware(extra_origins: tuple[str, ...]):
    @web.middleware
    async def cors(request: web.Request, handler):
        origin = request.headers.get("Origin")
        if origin is None:
            return await handler(request)
        if not origin_allowed(origin, extra_origins):
            return json_error(403, "forbidden_origin", "Requests from this origin are not allowed.")
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            headers.update({
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            })
            if request.headers.get("Access-Control-Request-Private-Network") == "true":
                headers["Access-Control-Allow-Private-Network"] = "true"
            return web.Response(status=204, headers=headers)
        request[CORS_HEADERS] = headers  # added to whatever response goes out, streams included
        return await handler(request)

    return cors


async def add_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare, so errors raised past the middlewares and streamed responses get them too:
    CORS headers for an allowed origin; results are nobody's cache's business."""
    headers = request.get(CORS_HEADERS)
    if headers:
        response.headers.update(headers)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"


def token_middleware(tokens: TokenStore):
    @web.middleware
    async def check_token(request: web.Request, handler):
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        auth = request.headers.get("Authorization", "")
        scheme, _, presented = auth.partition(" ")
        if scheme.lower() != "bearer" or not presented or not tokens.verify(presented.strip()):
            return json_error(401, "unauthorized", "Missing or wrong token. Pair the extension with the server.",
                              {"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return check_token


def rate_limit_middleware(limiter: RateLimiter):
    @web.middleware
    async def rate_limit(request: web.Request, handler):
        auth = request.headers.get("Authorization")
        if auth:  # only authenticated requests get here with a header; key by a hash, never the token
            wait = limiter.take(hashlib.sha256(auth.encode()).hexdigest()[:16])
            if wait:
                return json_error(429, "rate_limited", "Too many requests; slow down.", {"Retry-After": str(wait)})
        return await handler(request)

    return rate_limit
