"""Fetching with yt-dlp from local HTTP servers (loopback needs allow_private=True), the
connect-time private-address guard, and the error messages."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from server.errors import Failure
from server.fetch import Fetched, FetchError, FetchJob, Progress, _classify, decode, encode, fetch, is_public_ip
from server.jobs import canonical_url

pytestmark = pytest.mark.asyncio


async def get(url, dest, allow_private=True, max_bytes=10 * 2**20, timeout_s=30.0, progress=None):
    return await fetch(url, dest, max_bytes=max_bytes, max_duration_s=600, allow_private=allow_private,
                       timeout_s=timeout_s, on_progress=progress)


async def test_direct_media_url_is_downloaded_with_progress(media_server, tmp_path, web_root):
    seen = []
    f = await get(f"{media_server}/face.mp4", tmp_path, progress=lambda b, t: seen.append((b, t)))
    assert f.path.read_bytes() == (web_root / "face.mp4").read_bytes()
    assert seen and seen[0][1] == f.path.stat().st_size


async def test_video_in_an_html_page_is_found_and_downloaded(media_server, tmp_path, web_root):
    f = await get(f"{media_server}/page.html", tmp_path)
    assert f.path.read_bytes() == (web_root / "face.mp4").read_bytes()


async def test_guard_refuses_loopback_at_connect_time_even_without_the_api_precheck(media_server, tmp_path):
    """What stops a redirect (or DNS rebinding) to a private address: the child's own guard."""
    with pytest.raises(FetchError) as e:
        await get(f"{media_server}/face.mp4", tmp_path, allow_private=False)
    assert e.value.code == "private_address"
    assert list(tmp_path.iterdir()) == []


EXTERNAL_PROGRAMS = ("ffmpeg", "ffprobe", "rtmpdump", "mplayer", "mpv", "aria2c", "curl", "wget", "axel", "http")
FAKE_PROGRAM = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
echo "ffmpeg version 7.1 Copyright (c) 2000-2024 the FFmpeg developers"
case "$*" in *-i*|*-r*) exit 1;; esac
exit 0
"""


@pytest.fixture
def programs_log(tmp_path, monkeypatch) -> Path:
    """Stand-ins for every program yt-dlp may hand a download to, first on PATH: each one records
    its call in the returned log (and answers a version probe, so it looks installed)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "programs.log"
    bin_dir.mkdir()
    for name in EXTERNAL_PROGRAMS:
        (bin_dir / name).write_text(FAKE_PROGRAM.format(log=log))
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return log


@pytest.mark.parametrize("page", ["aes128.m3u8", "sample-aes.m3u8", "rtmp.html", "rtsp.html", "mms.html"])
async def test_no_download_ever_runs_an_external_program(page, media_server, tmp_path, programs_log):
    """An external program resolves and connects on its own, where the address guard cannot see:
    with private fetching allowed (the test site is on loopback), nothing may start one."""
    dest = tmp_path / "dl"
    dest.mkdir()
    with contextlib.suppress(FetchError):
        await get(f"{media_server}/{page}", dest)
    assert not programs_log.exists(), programs_log.read_text()


async def test_aes_encrypted_hls_is_downloaded_and_decrypted_natively(media_server, tmp_path, web_root, programs_log):
    f = await get(f"{media_server}/aes128.m3u8", tmp_path)
    assert f.path.read_bytes() == (web_root / "segment.ts").read_bytes()


@pytest.mark.parametrize("page", ["sample-aes.m3u8", "rtmp.html", "rtsp.html", "mms.html"])
async def test_streams_only_an_external_program_could_read_are_unsupported(page, media_server, tmp_path):
    with pytest.raises(FetchError) as e:
        await get(f"{media_server}/{page}", tmp_path)
    assert e.value.code == "unsupported_url", e.value.message


async def test_page_without_video_is_unsupported(media_server, tmp_path):
    with pytest.raises(FetchError) as e:
        await get(f"{media_server}/nothing.html", tmp_path)
    assert e.value.code == "unsupported_url"


async def test_missing_file_reports_the_http_status(media_server, tmp_path):
    with pytest.raises(FetchError) as e:
        await get(f"{media_server}/gone.mp4", tmp_path)
    assert e.value.code == "fetch_failed" and "404" in e.value.message


async def test_file_over_the_byte_cap_is_too_large(media_server, tmp_path):
    with pytest.raises(FetchError) as e:
        await get(f"{media_server}/face.mp4", tmp_path, max_bytes=10_000)
    assert e.value.code == "too_large"
    assert not [p for p in tmp_path.iterdir() if p.stat().st_size > 10_000]


async def test_video_longer_than_the_cap_is_refused_before_download(media_server, tmp_path):
    with pytest.raises(FetchError) as e:
        await get(f"{media_server}/long.html", tmp_path)
    assert e.value.code == "too_long" and "longer than 10 minutes" in e.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("msg", [
    FetchJob("https://example.com/v", "/tmp/x", 10, 600.0, False, 20.0), Progress(5, None), Progress(5, 10),
    Fetched("/tmp/x/media.mp4", "Generic", 3.5), Failure("too_large", "The video is larger than 1MB."),
])
async def test_messages_to_and_from_the_fetch_child_are_typed_json_lines(msg):
    line = encode(msg)
    assert line.endswith("\n") and line.count("\n") == 1
    assert decode(line) == msg


@pytest.mark.parametrize("line", [b"not json", b"[1]", b'{"type": "Nope"}', b'{"type": "Progress", "bytes": 1}'])
async def test_a_line_that_is_no_fetch_message_is_refused(line):
    with pytest.raises(ValueError):
        decode(line)


async def test_the_url_goes_to_the_child_on_stdin_never_on_its_command_line(hung_server, tmp_path):
    import asyncio
    import os
    from pathlib import Path

    url = hung_server + "?secret-post-4711"
    task = asyncio.create_task(get(url, tmp_path, timeout_s=10.0))
    cmdlines = []
    for _ in range(100):
        await asyncio.sleep(0.05)
        for d in Path("/proc").iterdir():
            try:
                cmd = (d / "cmdline").read_bytes()
                if b"server.fetch" in cmd and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    cmdlines.append(cmd)
            except (OSError, ValueError):
                continue
        if cmdlines:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # the child is killed on the way out
    assert cmdlines and not any(b"secret-post-4711" in c for c in cmdlines)


async def test_hung_server_hits_the_deadline(hung_server, tmp_path):
    with pytest.raises(FetchError) as e:
        await get(hung_server, tmp_path, timeout_s=2.0)
    assert e.value.code == "timeout"


@pytest.mark.parametrize("addr, public", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
    ("172.16.0.1", False), ("192.168.0.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
    ("224.0.0.251", False), ("0.0.0.0", False), ("::1", False), ("fe80::1%eth0", False), ("fc00::1", False),
    ("::ffff:127.0.0.1", False), ("255.255.255.255", False),
])
async def test_only_global_unicast_addresses_are_public(addr, public):
    assert is_public_ip(addr) is public


@pytest.mark.parametrize("addr, public", [
    ("::127.0.0.1", False), ("::10.0.0.1", False), ("::8.8.8.8", True),  # IPv4-compatible
    ("::ffff:0:7f00:1", False), ("::ffff:0:c0a8:101", False), ("::ffff:0:808:808", True),  # IPv4-translated
    ("64:ff9b::7f00:1", False), ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::808:808", True),  # NAT64 (DNS64 networks)
    ("64:ff9b:1::7f00:1", False),  # local-use NAT64: where the IPv4 address sits depends on the network
    ("2002:7f00:1::1", False), ("2002:c0a8:101::1", False), ("2002:808:808::1", True),  # 6to4
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo to 127.0.0.1 (stored inverted)
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", True),  # Teredo to 8.8.8.8 through a public server
    ("2001:0:a00:1:8000:63bf:f7f7:f7f7", False),  # ... through a private one
    ("fec0::1", False),  # site-local (deprecated, but routed on some networks)
])
async def test_ipv4_addresses_wrapped_in_ipv6_are_judged_by_the_ipv4_address(addr, public):
    assert is_public_ip(addr) is public


@pytest.mark.parametrize("message, code", [
    ("ERROR: Unsupported URL: https://example.com/", "unsupported_url"),
    ("ERROR: [youtube] abc: Sign in to confirm your age", "login_required"),
    ("ERROR: [instagram] x: Requested content is not available, rate-limit reached or login required", "login_required"),
    ("ERROR: Unable to download webpage: HTTP Error 403: Forbidden", "fetch_failed"),
    ("ERROR: Unable to download webpage: <urlopen error timed out>", "timeout"),
    ("ERROR: [generic] No video formats found!", "unsupported_url"),
])
async def test_yt_dlp_errors_become_clear_codes(message, code):
    assert _classify(message)[0] == code


@pytest.mark.parametrize("a, b", [
    ("https://www.youtube.com/watch?v=abc&utm_source=x&feature=share", "https://youtube.com/watch?v=abc"),
    ("https://youtu.be/abc?si=tracking", "https://youtube.com/watch?v=abc"),
    ("https://youtube.com/shorts/abc", "https://youtube.com/watch?v=abc"),
    ("HTTPS://X.com/user/status/1/#reply", "https://x.com/user/status/1"),
    ("https://m.facebook.com/watch/?v=9&fbclid=zz", "https://facebook.com/watch?v=9"),
    ("https://example.com:443/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
])
async def test_canonical_urls_make_one_spelling_per_video(a, b):
    assert canonical_url(a) == canonical_url(b) == b
