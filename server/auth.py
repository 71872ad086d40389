"""Who may call the server: the bearer token, the pairing code that hands it out once, rate limits."""
from __future__ import annotations

import hmac
import re
import secrets
import time
from pathlib import Path

from .errors import ApiError
from .private import private_dir, write_private

PAIR_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
PAIR_CODE_TTL_S = 600
PAIR_MAX_WRONG = 5


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


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, however it is spelled: the scheme in
    any case, any whitespace around the token (RFC 9110: schemes are case-insensitive). None for another
    scheme, no token, or a token with spaces inside. Every spelling of one token resolves to it, so
    the rate limit, keyed by the resolved token, counts them all."""
    m = re.fullmatch(r"\s*(\S+)\s+(\S+)\s*", header)
    return m[2] if m and m[1].lower() == "bearer" else None


# what a browser sends from an extension's service worker or pages: Chromium's 32-letter ID, Firefox's UUID
EXTENSION_ORIGIN = re.compile(r"(chrome-extension|moz-extension)://[a-z0-9-]{8,64}")


def is_extension_origin(origin: str) -> bool:
    return EXTENSION_ORIGIN.fullmatch(origin) is not None


class PairedOrigin:
    """The origin of the extension that paired, 0600 in the config dir: once there is one, no other
    extension may call the server. Chromium's extension ID is stable for a packed extension; Firefox
    gives each profile its own UUID, so the origin is recorded at pairing and a new pairing replaces
    it. Re-read when the file changes (`rotate-token` removes it)."""

    def __init__(self, path: Path):
        self.path = path
        self._origin: str | None = None
        self._mtime: int | None = None

    def get(self) -> str | None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._origin = self._mtime = None
            return None
        if mtime != self._mtime:
            self._origin, self._mtime = self.path.read_text().strip() or None, mtime
        return self._origin

    def set(self, origin: str) -> None:
        if origin != self.get():
            write_private(self.path, origin.encode())

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


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
        wait, level, now = self._look(key)
        self.buckets[key] = (level if wait else level - 1.0, now)
        return wait

    def wait(self, key: str) -> int:
        """What take() would answer, without taking: 0 while key has requests left."""
        return self._look(key)[0]

    def _look(self, key: str) -> tuple[int, float, float]:
        now = time.monotonic()
        level, last = self.buckets.get(key, (self.capacity, now))
        level = min(self.capacity, level + (now - last) * self.rate)
        if level < 1.0:
            return max(1, int((1.0 - level) / self.rate + 0.999)), level, now
        return 0, level, now
