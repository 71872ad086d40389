"""Fetching a video by URL with yt-dlp, in a child process that can be killed at the deadline.

The parent (`fetch`) starts `python -m server.fetch`, sends a FetchJob as a JSON line on stdin
(never on the command line, where other users could read the URL) and reads JSON lines back:
Progress, then Fetched or a Failure. Without --allow-private-fetch the child refuses every connection to a
non-public address at the moment it resolves a name (socket.getaddrinfo), which covers
redirects and DNS rebinding between our check and yt-dlp's connection, not only the first URL.
That guard sees only this process's own sockets, so the child never starts another program
(ffmpeg, rtmpdump, mpv...: an audit hook refuses it) and takes only formats yt-dlp downloads
itself (ALLOWED_PROTOCOLS); AES-128 HLS is decrypted in process (pycryptodomex).
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import socket
import sys
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
SOCKET_TIMEOUT_S = 20.0
PROGRESS_EVERY_S = 0.25


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


MESSAGES = {cls.__name__: cls for cls in (FetchJob, Progress, Fetched, Failure)}


def encode(msg: FetchJob | Progress | Fetched | Failure) -> str:
    return json.dumps({"type": type(msg).__name__, **asdict(msg)}) + "\n"


def decode(line: bytes | str) -> FetchJob | Progress | Fetched | Failure:
    """ValueError for anything that is not one of MESSAGES."""
    try:
        fields = json.loads(line)
        return MESSAGES[fields.pop("type")](**fields)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a fetch message: {type(e).__name__}") from None


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
) -> Fetched:
    """Download url's video into dest (a 0700 directory). Raises FetchError."""
    job = FetchJob(url, str(dest), max_bytes, max_duration_s, allow_private, min(SOCKET_TIMEOUT_S, max(1.0, timeout_s)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.fetch",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
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
            proc.kill()
            await proc.wait()
        err = await stderr_task
        if err.strip() and verbose:  # extractor output can contain the URL: only with --log-urls
            log.info("fetch stderr: %s", err.decode(errors="replace")[-2000:])
    if isinstance(result, Failure):
        raise FetchError(result.code, result.message)
    return result


# --- the child process --------------------------------------------------------------------------
class _TooLarge(Exception):
    pass


class _Blocked(OSError):
    pass


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
                              "age-restricted", "members-only", "authentication")):
        return "login_required", "This video needs a login; the server does not use your accounts."
    if "timed out" in low or "timeout" in low:
        return "timeout", "The site did not answer in time."
    if "http error" in low:
        code = low.split("http error", 1)[1].strip().split(":")[0].strip()
        return "fetch_failed", f"The site answered HTTP {code}."
    return "fetch_failed", f"Could not download the video: {short}"


def _child(job: FetchJob, out) -> Fetched | Failure:
    import yt_dlp

    dest = Path(job.dest)
    max_bytes, max_dur = job.max_bytes, job.max_duration_s
    state: dict = {}

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

    class Quiet:
        def debug(self, msg): pass
        def info(self, msg): pass
        def warning(self, msg): pass
        def error(self, msg): state.setdefault("errors", []).append(msg)

    opts = {
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
        "logger": Quiet(), "quiet": True, "no_warnings": True, "noprogress": True,
        "cachedir": False, "nopart": False, "overwrites": True, "writethumbnail": False,
        # yt-dlp's own downloaders (Python sockets, so the address guard sees every connection), never
        # ffmpeg or another program (which would resolve and connect on its own): see _no_programs
        "external_downloader": {"default": "native"}, "hls_prefer_native": True,
        "ffmpeg_location": NO_FFMPEG, "fixup": "never",
        "restrictfilenames": True, "ignoreerrors": False, "color": "never",
    }

    def too_large() -> Failure:
        return Failure("too_large", f"The video is larger than {max_bytes // 2**20}MB.")

    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
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


def _no_programs(event: str, _args) -> None:
    """An audit hook: this process starts no other program, whatever yt-dlp or an extractor would
    like to run. Raised as OSError, which yt-dlp takes for "not installed"."""
    if event in PROGRAM_EVENTS:
        raise PermissionError(f"the fetch process runs no external programs ({event})")


def main() -> None:
    sys.addaudithook(_no_programs)  # first: it cannot be removed later
    # yt-dlp and extractors may print: keep the real stdout for our messages only
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        job = decode(sys.stdin.readline())
        if not isinstance(job, FetchJob):
            raise ValueError("expected a FetchJob")
        result = _child(job, out)
    except Exception as e:  # never die silently: the parent shows this message
        result = Failure("fetch_failed", f"Download failed ({type(e).__name__}).")
    out.write(encode(result))
    out.flush()


if __name__ == "__main__":
    main()
