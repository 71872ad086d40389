"""Fetching a video by URL with yt-dlp, in a child process that can be killed at the deadline.

The parent (`fetch`) starts `python -m server.fetch`, sends a FetchJob as a JSON line on stdin
(never on the command line, where other users could read the URL) and reads JSON lines back:
Progress, then Fetched or a Failure. Without --allow-private-fetch the child refuses every connection to a
non-public address at the moment it resolves a name (socket.getaddrinfo), which covers
redirects and DNS rebinding between our check and yt-dlp's connection, not only the first URL.
That guard sees only this process's own sockets, so the child starts no other program (ffmpeg,
rtmpdump, mpv...: an audit hook refuses it) and takes only formats yt-dlp downloads itself
(ALLOWED_PROTOCOLS); AES-128 HLS is decrypted in process (pycryptodomex).

One program is let through: YouTube's JavaScript challenges need a JS runtime, and the hook lets
yt-dlp start exactly the pinned Deno binary (requirements-fetcher.txt), for its version or to run
a script from stdin, with flags that grant it nothing: Deno without --allow-* has no network, files,
environment or programs, and --no-remote/--no-npm/--cached-only keep it from loading code. The
solver scripts are the installed yt-dlp-ejs package's; nothing is downloaded at run time.

With --cookies-from-browser, yt-dlp reads the browser's cookies in the child; the child keeps only
those of the post's own site, in memory, before its first request (keep_site_cookies).
A SelfCheck message asks the child what it runs and whether it solves a known challenge.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import Failure

log = logging.getLogger(__name__)

# Only formats yt-dlp downloads itself, over Python sockets the address guard sees: plain HTTP(S),
# HLS and DASH fragments. rtmp/rtsp/mms/f4m/ism/... would go to rtmpdump, mpv or ffmpeg.
ALLOWED_PROTOCOLS = ("http", "https", "m3u8_native", "http_dash_segments")
_ONLY_ALLOWED = "[protocol~='^({})$']".format("|".join(ALLOWED_PROTOCOLS))
FORMAT = "/".join(f + _ONLY_ALLOWED for f in ("bv[height<=?720]", "bv*[height<=?720]", "b[height<=?720]", "wv*", "w"))
# An ffmpeg that cannot exist (/dev/null is no directory): yt-dlp then knows it has none.
NO_FFMPEG = "/dev/null/ffmpeg"
# Every way a Python process starts another program (audit events, PEP 578).
PROGRAM_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
                            "os.forkpty", "pty.spawn"})
# The only program the fetch process may start: the pinned Deno, as `deno --version` or as
# `deno run FLAGS -` with every flag from DENO_RUN_FLAGS (what yt-dlp passes) and at least
# DENO_REQUIRED_FLAGS. None grants a permission: Deno denies network, files, env and programs unless
# given --allow-*, and these flags also keep it from loading any module from the network or npm.
DENO_RUN_FLAGS = frozenset({"--ext=js", "--no-code-cache", "--no-prompt", "--no-remote", "--no-lock",
                            "--node-modules-dir=none", "--no-config", "--no-npm", "--cached-only",
                            "--v8-flags=--jitless"})
DENO_REQUIRED_FLAGS = frozenset({"--no-remote", "--no-npm", "--cached-only", "--no-config", "--no-prompt"})
SOCKET_TIMEOUT_S = 20.0
PROGRESS_EVERY_S = 0.25
UPDATE_COMMAND = "make update-fetcher"  # or: python -m server update-fetcher
# yt-dlp's --cookies-from-browser names. KWallet and the macOS keychain are read by running a program
# (kwallet-query, security), which the fetch process may not: Chrome-family cookies locked there
# cannot be read (Firefox's are not encrypted; GNOME's keyring is read in process).
BROWSERS = ("brave", "chrome", "chromium", "edge", "firefox", "opera", "safari", "vivaldi", "whale")
KEYRINGS = ("basictext", "gnomekeyring")
# A challenge the self-check solves through yt-dlp's own Deno provider: a player reduced to the one
# shape the EJS solver looks for (a function that builds the URL object and marks it with
# .set("alr", "yes")), whose transform reverses n. Not YouTube's code; the solver cannot tell.
SELF_CHECK_PLAYER = """(function (g) {
  var P = {
    set: function (k, v) { this.p[k] = v; },
    get: function (k) { return this.p[k]; },
    clone: function () { return this; },
    transform: function () { if (this.p.n) this.p.n = this.p.n.split("").reverse().join(""); },
  };
  var U = function (base, key, value) {
    var url = Object.create(P);
    url.p = {};
    if (value !== undefined) url.p[key] = value;
    url.set("alr", "yes");
    return url;
  };
}).call(this, {});
"""
SELF_CHECK_CHALLENGE = ("deepfake-check", "kcehc-ekafpeed")


class FetchError(Exception):
    """A download that failed; code is one of the API's check error codes."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# IPv6 forms that carry an IPv4 address in their last 32 bits: judged by that address
IPV4_IN_LAST_32_BITS = (
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated; :: and ::1 included)
    ipaddress.ip_network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64's well-known prefix (what DNS64 networks answer)
)
NOT_PUBLIC_V6 = (
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64: where the IPv4 address sits is the network's choice
    ipaddress.ip_network("fec0::/10"),  # site-local (deprecated, still routed on some networks)
)


def _wrapped_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address leads to, when it is a form that wraps one (else ())."""
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo  # (server, client), the client de-obfuscated
    if any(ip in net for net in IPV4_IN_LAST_32_BITS):
        return (ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF),)
    return ()


def is_public_ip(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in NOT_PUBLIC_V6):
            return False
        if wrapped := _wrapped_ipv4(ip):
            return all(is_public_ip(str(v4)) for v4 in wrapped)
    return ip.is_global and not ip.is_multicast


def url_host(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        return parts.hostname if parts.scheme in ("http", "https") else None
    except ValueError:
        return None


async def resolves_to_private(url: str, timeout: float = 5.0) -> bool:
    """True when the URL's host resolves to any non-public address. Unresolvable: False (the
    download then fails with its own message, and the child's guard still applies)."""
    host = url_host(url)
    if not host:
        return False
    try:
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, None), timeout)
    except (TimeoutError, OSError, UnicodeError):
        return False
    return any(not is_public_ip(info[4][0]) for info in infos)


# --- what crosses the child's stdin and stdout: one JSON object a line, named by "type" ----------
@dataclass(frozen=True)
class FetchJob:
    """server -> child, on stdin (never on the command line, where other users could read the URL)."""

    url: str
    dest: str  # a 0700 directory for the download
    max_bytes: int
    max_duration_s: float
    allow_private: bool
    socket_timeout: float
    cookies_from: str | None = None  # BROWSER[+KEYRING][:PROFILE]: use the post's site's cookies from there


@dataclass(frozen=True)
class Progress:
    """child -> server, while downloading."""

    bytes: int
    total: int | None


@dataclass(frozen=True)
class Fetched:
    """child -> server, last: the downloaded file. (Or a Failure.)"""

    file: str
    extractor: str | None
    duration: float | None

    @property
    def path(self) -> Path:
        return Path(self.file)


@dataclass(frozen=True)
class SelfCheck:
    """server -> child, instead of a FetchJob: report what you run (a FetcherReport)."""


@dataclass(frozen=True)
class FetcherReport:
    """child -> server: the fetcher's versions, and whether YouTube's JavaScript challenges can be
    solved in the fetch process itself (its audit hook, its environment, the pinned Deno)."""

    yt_dlp: str
    ejs: str | None  # yt-dlp-ejs: the challenge solver scripts
    deno: str | None  # the JS runtime's version as the binary reports it; None: no usable runtime
    challenge_solver: bool  # a known challenge was solved through yt-dlp's Deno provider
    problems: list[str]  # for people: what is missing or broken

    @property
    def ok(self) -> bool:
        return self.challenge_solver and not self.problems


Message = FetchJob | Progress | Fetched | Failure | SelfCheck | FetcherReport
MESSAGES = {cls.__name__: cls for cls in (FetchJob, Progress, Fetched, Failure, SelfCheck, FetcherReport)}


def encode(msg: Message) -> str:
    return json.dumps({"type": type(msg).__name__, **asdict(msg)}) + "\n"


def decode(line: bytes | str) -> Message:
    """ValueError for anything that is not one of MESSAGES."""
    try:
        fields = json.loads(line)
        return MESSAGES[fields.pop("type")](**fields)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a fetch message: {type(e).__name__}") from None


PARENT_ENV = "DEEPFAKE_CHECK_FETCH_PARENT"  # the pid the fetch child must die with


def _spawn_child():
    """The fetch child in a process group of its own (so a kill reaches the Deno it may be running,
    and a Ctrl-C in the terminal reaches only the server, which ends it), told its parent's pid: it
    dies with it (PR_SET_PDEATHSIG), so a server killed mid-download leaves no download running."""
    return asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.fetch",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=str(Path(__file__).resolve().parents[1]), start_new_session=True,
        env={**os.environ, PARENT_ENV: str(os.getpid())},
    )


async def _kill(proc) -> None:
    """Ends a fetch child and its process group (a Deno it started included)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


async def fetch(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    max_duration_s: float,
    allow_private: bool,
    timeout_s: float,
    on_progress: Callable[[int, int | None], None] | None = None,
    verbose: bool = False,
    cookies_from: str | None = None,
    cookies_configured: bool = False,
) -> Fetched:
    """Download url's video into dest (a 0700 directory). Raises FetchError.
    cookies_from: the browser whose cookies for url's site to send (the server's
    --cookies-from-browser, when this check asked for them); cookies_configured: whether the server
    has one at all (only to say how a login could work)."""
    job = FetchJob(url, str(dest), max_bytes, max_duration_s, allow_private, min(SOCKET_TIMEOUT_S, max(1.0, timeout_s)),
                   cookies_from)
    proc = await _spawn_child()
    proc.stdin.write(encode(job).encode())
    await proc.stdin.drain()
    proc.stdin.close()

    async def read_result() -> Fetched | Failure:
        result = None
        async for line in proc.stdout:
            try:
                msg = decode(line)
            except ValueError:
                continue
            if isinstance(msg, Progress):
                if on_progress:
                    on_progress(msg.bytes, msg.total)
            elif isinstance(msg, Fetched | Failure):
                result = msg
        await proc.wait()
        return result or Failure("fetch_failed", "The downloader stopped unexpectedly.")

    stderr_task = asyncio.create_task(proc.stderr.read())
    try:
        result = await asyncio.wait_for(read_result(), timeout_s)
    except TimeoutError:
        raise FetchError("timeout", f"The download did not finish within {timeout_s:.0f} seconds.") from None
    finally:
        if proc.returncode is None:
            await _kill(proc)
        err = await stderr_task
        if err.strip() and verbose:  # extractor output can contain the URL: only with --log-urls
            log.info("fetch stderr: %s", err.decode(errors="replace")[-2000:])
    if isinstance(result, Failure):
        if result.code == "login_required":
            raise FetchError(result.code, _login_message(cookies_from, cookies_configured))
        raise FetchError(result.code, result.message)
    return result


def _login_message(cookies_from: str | None, configured: bool) -> str:
    if cookies_from:
        browser = parse_browser_spec(cookies_from)[0]
        return (f"This post needs a login, and the site did not accept the one in {browser}'s cookies: "
                f"log in to it in {browser}, then check again.")
    if configured:
        return "This post needs a login; the server fetched it without your browser's cookies (they are off for this site)."
    return ("This post needs a login; the server fetches anonymously (it can use your browser's login for the sites "
            "you choose when started with --cookies-from-browser).")


async def self_check(timeout_s: float = 120.0) -> FetcherReport:
    """What the fetch process runs and whether it solves YouTube's JavaScript challenges: asked of a
    fetch child, the same process a download runs in."""
    try:
        proc = await _spawn_child()
    except OSError as e:
        return FetcherReport("unknown", None, None, False, [f"The fetch process could not start ({e})."])
    try:
        out, err = await asyncio.wait_for(proc.communicate(encode(SelfCheck()).encode()), timeout_s)
    except TimeoutError:
        return FetcherReport("unknown", None, None, False, [f"The fetcher's self-check did not finish in {timeout_s:.0f} s."])
    finally:
        if proc.returncode is None:  # timed out, or cancelled (the server stops)
            await _kill(proc)
    for line in reversed(out.splitlines()):
        try:
            msg = decode(line)
        except ValueError:
            continue
        if isinstance(msg, FetcherReport):
            return msg
        if isinstance(msg, Failure):
            return FetcherReport("unknown", None, None, False, [msg.message])
    tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
    return FetcherReport("unknown", None, None, False, [f"The fetch process failed its self-check ({tail[0][:200]})."])


FETCHER_PACKAGES = ("yt-dlp", "yt-dlp-ejs", "deno")


def installed_fetcher() -> dict[str, str | None]:
    """The installed versions of the fetcher's packages (from their metadata; nothing is started)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in FETCHER_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


class FetcherMonitor:
    """The fetcher's last self-check, for /v1/health. Made when first asked for (`python -m server`
    makes it before it starts: seed), and again when the installed fetcher changes: `make
    update-fetcher` while the server runs is seen within LOOK_EVERY_S."""

    LOOK_EVERY_S = 30.0

    def __init__(self, max_age_days: int, cookies_from: str | None = None):
        self.max_age_days, self.cookies_from = max_age_days, cookies_from
        self.report: FetcherReport | None = None
        self._task: asyncio.Task | None = None
        self._installed: dict | None = None
        self._looked = -float("inf")

    def seed(self, report: FetcherReport) -> None:
        self.report, self._installed, self._looked = report, installed_fetcher(), time.monotonic()

    def poll(self) -> None:
        """Starts a self-check when none was made or the installed fetcher changed (cheap to call)."""
        now = time.monotonic()
        if now - self._looked < self.LOOK_EVERY_S or (self._task is not None and not self._task.done()):
            return
        self._looked = now
        installed = installed_fetcher()
        if installed != self._installed:
            self._installed = installed
            self._task = asyncio.create_task(self._check(), name="fetcher-self-check")

    async def _check(self) -> None:
        self.report = await self_check()
        if not self.report.ok:
            log.warning("fetcher self-check: %s", "; ".join(self.report.problems) or "the challenge solver failed")

    async def current(self, wait_s: float = 3.0) -> FetcherReport | None:
        """The last report, waiting up to wait_s for the first one."""
        self.poll()
        if self.report is None and self._task is not None:
            await asyncio.wait({self._task}, timeout=wait_s)
        return self.report

    async def close(self) -> None:
        """Lets a running self-check end (a second or two): cancelled while asyncio starts its process,
        it would wait for an exit that asyncio is never told of."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=10.0)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def describe(self, report: FetcherReport | None, today: dt.date | None = None) -> dict | None:
        """What /v1/health says of the fetcher (None while its first self-check runs)."""
        if report is None:
            return None
        today = today or dt.datetime.now(dt.UTC).date()
        released = release_date(report.yt_dlp)
        age = (today - released).days if released else None
        return {
            "yt_dlp": report.yt_dlp, "ejs": report.ejs, "deno": report.deno,
            "challenge_solver": report.challenge_solver, "problems": report.problems,
            "released": released.isoformat() if released else None, "age_days": age,
            "stale": age is not None and age > self.max_age_days, "max_age_days": self.max_age_days,
            "update_command": UPDATE_COMMAND,
            "cookies_from": parse_browser_spec(self.cookies_from)[0] if self.cookies_from else None,
        }


def release_date(version: str) -> dt.date | None:
    """yt-dlp's versions are its release dates: 2026.10.26 (or 2026.10.26.1, a nightly's .232122)."""
    m = re.match(r"(\d{4})\.(\d{1,2})\.(\d{1,2})", version or "")
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None
    except ValueError:
        return None


def parse_browser_spec(spec: str) -> tuple[str, str | None, str | None, None]:
    """--cookies-from-browser's BROWSER[+KEYRING][:PROFILE] -> yt-dlp's cookiesfrombrowser tuple
    (browser, profile, keyring, container). ValueError says what is wrong."""
    m = re.fullmatch(r"(?P<browser>[^+:]+)(?:\+(?P<keyring>[^:]+))?(?::(?P<profile>.+))?", (spec or "").strip())
    if not m:
        raise ValueError("--cookies-from-browser needs BROWSER[+KEYRING][:PROFILE], e.g. firefox or chrome:Profile 1")
    browser, keyring = m["browser"].lower(), (m["keyring"] or "").lower() or None
    if browser not in BROWSERS:
        raise ValueError(f"--cookies-from-browser: unknown browser {browser!r}; use one of {', '.join(BROWSERS)}")
    if keyring is not None and keyring not in KEYRINGS:
        raise ValueError(f"--cookies-from-browser: keyring {keyring!r} cannot be read by the fetch process; use one of "
                         f"{', '.join(KEYRINGS)} (KWallet and the macOS keychain need a helper program it may not run)")
    return browser, m["profile"], keyring.upper() if keyring else None, None


def registrable_domain(host: str) -> str | None:
    """The site a host belongs to: its registrable domain by the Public Suffix List (the pinned
    publicsuffixlist package and the list it bundles; nothing is fetched), e.g. instagram.com for
    www.instagram.com, foo.github.io for a.foo.github.io; an IP address is its own site. None for a
    host that is itself a public suffix (com, co.uk, github.io) or has no suffix the list knows of
    (localhost)."""
    host = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host
    except ValueError:
        pass
    return _public_suffixes().privatesuffix(host)


@functools.cache
def _public_suffixes():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()  # the copy of the list inside the package


def same_site(cookie_domain: str, host: str) -> bool:
    """Is a cookie of cookie_domain one of host's own site's: the host itself, a domain above it up
    to its registrable domain (the cookie a browser would send it) or a host below it (e.g. www. of
    the post's address)? A public suffix (com, co.uk) is no site: a cookie set for it would go to
    every site under it, and a browser never sends one."""
    d, h = cookie_domain.lstrip(".").lower(), host.lower()
    if not d or not (d == h or h.endswith("." + d) or d.endswith("." + h)):
        return False
    site = registrable_domain(h)
    if site is None:  # the host is a public suffix itself, or unknown to the list: that host only
        return d == h
    return d == site or d.endswith("." + site)


def keep_site_cookies(jar, host: str) -> int:
    """Drops every cookie of jar (an http.cookiejar.CookieJar) that is not host's own site's; returns
    how many are kept. Called before the first request, so yt-dlp cannot send another site's cookie
    anywhere, whatever a page redirects or points to."""
    for cookie in list(jar):
        if not same_site(cookie.domain, host):
            jar.clear(cookie.domain, cookie.path, cookie.name)
    return len(jar)


# --- the child process --------------------------------------------------------------------------
class _TooLarge(Exception):
    pass


class _Blocked(OSError):
    pass


# What yt-dlp says when an extractor no longer understands a site's pages: the site changed and a
# newer yt-dlp follows it (yt-dlp asks to be updated and the issue reported in these messages).
SITE_CHANGED = ("unable to extract", "please report this issue", "confirm you are on the latest version",
                "yt-dlp -u", "nsig extraction failed", "signature extraction failed", "challenge solving failed")


def _classify(msg: str) -> tuple[str, str]:
    low = msg.lower()
    short = msg.replace("ERROR: ", "").strip()[:300]
    if any(s in low for s in ("unsupported url scheme", "ffmpeg", "rtmpdump", "no external programs")):
        return "unsupported_url", "This video is streamed in a way the server does not download."
    if "unsupported url" in low:
        return "unsupported_url", "This page is not supported or has no video."
    if any(s in low for s in ("no video formats found", "no media found", "requested format is not available",
                              "no video could be found", "there's no video")):
        return "unsupported_url", "No video found at this URL."
    if any(s in low for s in ("login", "log in", "sign in", "cookies", "private video", "confirm your age",
                              "age-restricted", "members-only", "authentication", "http error 401")):
        return "login_required", "This video needs a login."
    if "timed out" in low or "timeout" in low:
        return "timeout", "The site did not answer in time."
    if any(s in low for s in SITE_CHANGED):
        return "site_changed", ("The site seems to have changed: this server's fetcher (yt-dlp) no longer reads its "
                                f"pages. Update the fetcher (`{UPDATE_COMMAND}` or `python -m server update-fetcher`), "
                                "then check again.")
    if "http error" in low:
        code = low.split("http error", 1)[1].strip().split(":")[0].strip()
        return "fetch_failed", f"The site answered HTTP {code}."
    return "fetch_failed", f"Could not download the video: {short}"


def deno_binary() -> str | None:
    """The pinned Deno (the `deno` package of requirements-fetcher.txt), or None when not installed.
    Never a deno found on PATH: the audit hook lets exactly this file run."""
    try:
        from deno import find_deno_bin
    except ImportError:
        return None
    try:
        return os.path.abspath(find_deno_bin())
    except (FileNotFoundError, OSError):
        return None


def _sandbox_env(deno_dir: str) -> None:
    """The environment the JS runtime inherits (yt-dlp passes this process's on): no DENO_*/NPM_*
    settings from outside, its cache in deno_dir (thrown away with it), no update check."""
    for k in [k for k in os.environ if k.upper().startswith(("DENO_", "NPM_CONFIG_"))]:
        del os.environ[k]
    os.environ.update(DENO_DIR=deno_dir, DENO_NO_UPDATE_CHECK="1", DENO_NO_PROMPT="1", NO_COLOR="1")


class _Log:
    """yt-dlp's logger here: silent, but keeps the errors (and, for the self-check, warnings)."""

    def __init__(self):
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def debug(self, msg): pass
    def info(self, msg): pass
    def warning(self, msg): self.warnings.append(msg)
    def error(self, msg): self.errors.append(msg)


def _ydl_options(runtime: str | None, logger: _Log) -> dict:
    """What every yt-dlp in the fetch process is given, downloads and self-check alike."""
    return {
        # the pinned Deno by its path (never a deno on PATH), and no solver script from the network
        "js_runtimes": {"deno": {"path": runtime}} if runtime else {},
        "remote_components": set(),
        "logger": logger, "quiet": True, "no_warnings": False, "noprogress": True, "color": "never",
        "cachedir": False,
        # yt-dlp's own downloaders (Python sockets, so the address guard sees every connection), never
        # ffmpeg or another program (which would resolve and connect on its own): see _programs_guard
        "external_downloader": {"default": "native"}, "hls_prefer_native": True,
        "ffmpeg_location": NO_FFMPEG, "fixup": "never",
    }


def _child(job: FetchJob, out, runtime: str | None) -> Fetched | Failure:
    import yt_dlp

    dest = Path(job.dest)
    max_bytes, max_dur = job.max_bytes, job.max_duration_s
    state: dict = {}
    _sandbox_env(str(dest / ".deno"))

    if not job.allow_private:
        real_getaddrinfo = socket.getaddrinfo

        def guarded(host, port, *args, **kwargs):
            infos = real_getaddrinfo(host, port, *args, **kwargs)
            if any(not is_public_ip(i[4][0]) for i in infos):
                state["blocked"] = True
                raise _Blocked(f"refusing to connect to a non-public address ({host})")
            return infos

        socket.getaddrinfo = guarded

    last = [0.0]

    def progress(d: dict) -> None:
        if d.get("status") != "downloading":
            return
        done = int(d.get("downloaded_bytes") or 0)
        total = d.get("total_bytes") or d.get("total_bytes_estimate")
        if done > max_bytes or (total and total > max_bytes * 1.05):
            state["too_large"] = True
            raise _TooLarge()
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            out.write(encode(Progress(done, int(total) if total else None)))
            out.flush()

    def match(info: dict, *, incomplete: bool = False):
        dur = info.get("duration")
        if dur and dur > max_dur:
            state["too_long"] = dur
            return "too long"
        if info.get("is_live"):
            state["live"] = True
            return "live"
        size = info.get("filesize") or info.get("filesize_approx")
        if size and size > max_bytes:
            state["too_large"] = True
            return "too large"
        return None

    logger = _Log()
    opts = {
        **_ydl_options(runtime, logger),
        "outtmpl": str(dest / "media.%(ext)s"),
        "format": FORMAT,
        "format_sort": ["res:720", "vcodec:h264"],
        "noplaylist": True,
        "playlist_items": "1",
        "socket_timeout": job.socket_timeout,
        "retries": 2, "fragment_retries": 2, "extractor_retries": 1, "file_access_retries": 1,
        "max_filesize": max_bytes,
        "match_filter": match,
        "progress_hooks": [progress],
        "nopart": False, "overwrites": True, "writethumbnail": False,
        "restrictfilenames": True, "ignoreerrors": False,
    }
    if job.cookies_from:
        opts["cookiesfrombrowser"] = parse_browser_spec(job.cookies_from)
        tempfile.tempdir = str(dest)  # yt-dlp reads a copy of the cookie database: here, deleted with the download

    def too_large() -> Failure:
        return Failure("too_large", f"The video is larger than {max_bytes // 2**20}MB.")

    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            if job.cookies_from:
                try:
                    keep_site_cookies(ydl.cookiejar, url_host(job.url) or "")
                except Exception:  # yt_dlp.cookies.CookieLoadError: yt-dlp's error names the cause
                    browser = opts["cookiesfrombrowser"][0]
                    why = (logger.errors or ["unknown reason"])[-1].replace("ERROR: ", "").strip()[:200]
                    return Failure("fetch_failed", f"Could not read {browser}'s cookies: {why}")
            info = ydl.extract_info(job.url, download=True)
    except Exception as e:  # yt_dlp.utils.DownloadError and anything an extractor throws
        if state.get("too_large"):
            return too_large()
        if state.get("blocked"):
            return Failure("private_address", "The URL leads to a private or local network address; refused.")
        return Failure(*_classify(str(e)))
    if state.get("too_long"):
        return Failure("too_long", f"The video is longer than {max_dur / 60:.0f} minutes ({state['too_long'] / 60:.1f} min).")
    if state.get("live"):
        return Failure("unsupported_url", "Live streams cannot be checked.")
    if state.get("too_large"):
        return too_large()
    files = [p for p in dest.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
    if not files:
        # yt-dlp returns without a file and without an error when max_filesize refuses
        return too_large() if info else Failure("unsupported_url", "No video found at this URL.")
    f = max(files, key=lambda p: p.stat().st_size)
    if f.stat().st_size > max_bytes:
        return too_large()
    return Fetched(str(f), (info or {}).get("extractor_key"), (info or {}).get("duration"))


def _self_check(runtime: str | None) -> FetcherReport:
    """Solves SELF_CHECK_CHALLENGE as a YouTube download would: yt-dlp's Deno provider, its hash-checked
    EJS scripts, the pinned Deno started through this process's audit hook, with yt-dlp's own flags."""
    import yt_dlp
    from yt_dlp.version import __version__ as yt_dlp_version

    problems: list[str] = []
    try:
        import yt_dlp_ejs
        ejs = yt_dlp_ejs.version
    except ImportError:
        ejs = None
        problems.append("yt-dlp-ejs (YouTube's challenge solver scripts) is not installed.")
    deno, solved = None, False
    if runtime is None:
        problems.append("No JavaScript runtime: the deno package is not installed.")
    with tempfile.TemporaryDirectory(prefix="deepfake-check-selfcheck-") as tmp:
        _sandbox_env(tmp)
        logger = _Log()
        try:
            with yt_dlp.YoutubeDL(_ydl_options(runtime, logger)) as ydl:
                info = ydl._js_runtimes.get("deno").info if runtime else None
                deno = info.version if info else None
                if runtime and not info:
                    problems.append(f"The JavaScript runtime at {runtime} did not start.")
                elif info and not info.supported:
                    problems.append(f"Deno {info.version} is too old for yt-dlp.")
                if info and info.supported:
                    solved = _solve_known_challenge(ydl, logger, problems)
        except Exception as e:  # a yt-dlp whose internals moved: the self-check says so
            problems.append(f"The self-check could not run ({type(e).__name__}: {str(e)[:200]}).")
    return FetcherReport(yt_dlp_version, ejs, deno, solved, problems)


def _solve_known_challenge(ydl, logger: _Log, problems: list[str]) -> bool:
    from yt_dlp.extractor.youtube.jsc.provider import JsChallengeRequest, JsChallengeType, NChallengeInput

    ie = ydl.get_info_extractor("Youtube")
    ie.initialize()
    provider = next((p for p in ie._jsc_director.providers.values() if p.PROVIDER_NAME == "deno"), None)
    if provider is None or not provider.is_available():
        problems.append("yt-dlp's Deno challenge provider is not available.")
        return False
    provider._get_player = lambda video_id, player_url: SELF_CHECK_PLAYER  # the player, without a download
    challenge, answer = SELF_CHECK_CHALLENGE
    request = JsChallengeRequest(JsChallengeType.N, NChallengeInput(
        "https://www.youtube.com/s/player/deepfakecheck/player_ias.vflset/en_US/base.js", [challenge]), "self-check")
    for response in provider.bulk_solve([request]):
        if response.error is not None:
            problems.append(f"The challenge solver failed: {str(response.error)[:300]}")
            return False
        if response.response and response.response.output.results.get(challenge) == answer:
            return True
    problems.append("The challenge solver gave a wrong answer" + (f" ({logger.warnings[-1][:200]})" if logger.warnings else "."))
    return False


def is_sandboxed_js_runtime(runtime: str | None, executable, argv) -> bool:
    """Is this program start (subprocess.Popen's audit arguments) the pinned Deno asked for its version
    or to run a script from stdin with only flags that grant nothing?"""
    if not runtime or isinstance(argv, str | bytes) or not argv:
        return False
    try:
        args = [os.fsdecode(a) for a in argv]
        exe = os.fsdecode(executable) if executable is not None else args[0]
    except TypeError:
        return False
    if exe != runtime or args[0] != runtime:
        return False
    rest = args[1:]
    if rest == ["--version"]:
        return True
    if len(rest) < 2 or rest[0] != "run" or rest[-1] != "-":
        return False
    flags = set(rest[1:-1])
    return len(flags) == len(rest) - 2 and flags <= DENO_RUN_FLAGS and DENO_REQUIRED_FLAGS <= flags


def _programs_guard(runtime: str | None):
    def hook(event: str, args) -> None:
        """An audit hook: this process starts no other program, whatever yt-dlp or an extractor would
        like to run, but the pinned JS runtime without permissions. Raised as OSError, which yt-dlp
        takes for "not installed"."""
        if event not in PROGRAM_EVENTS:
            return
        if event == "subprocess.Popen" and is_sandboxed_js_runtime(runtime, args[0], args[1]):
            return
        raise PermissionError(f"the fetch process runs no external programs ({event})")

    return hook


def _die_with_parent() -> None:
    """Linux: be killed (SIGKILL) when the server that started us ends, however it ends: a server
    killed mid-download must not leave this process downloading into its folder. If the server is
    gone already (before the request was made), end now."""
    parent = os.environ.pop(PARENT_ENV, None)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # elsewhere: the parent's kill of the process group at its deadline still applies
    if parent and os.getppid() != int(parent):
        os._exit(1)


def main() -> None:
    _die_with_parent()
    runtime = deno_binary()  # finds a file; starts nothing
    sys.addaudithook(_programs_guard(runtime))  # before anything else runs: it cannot be removed later
    # yt-dlp and extractors may print: keep the real stdout for our messages only
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        msg = decode(sys.stdin.readline())
        if isinstance(msg, SelfCheck):
            result = _self_check(runtime)
        elif isinstance(msg, FetchJob):
            result = _child(msg, out, runtime)
        else:
            raise ValueError("expected a FetchJob or a SelfCheck")
    except Exception as e:  # never die silently: the parent shows this message
        result = Failure("fetch_failed", f"Download failed ({type(e).__name__}).")
    out.write(encode(result))
    out.flush()


if __name__ == "__main__":
    main()
