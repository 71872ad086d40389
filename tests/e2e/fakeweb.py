"""The fixture web: feed pages that reproduce each supported site's markup, their post pages, and
H.264 clips, served on loopback. Two listeners share one request log:

- HTTPS for the feed pages, with a self-signed certificate for the real site names (Chromium maps
  those names here with --host-resolver-rules and pins the certificate), so the content script
  sees x.com, www.youtube.com … and picks the matching site adapter;
- HTTP on 127.0.0.1 for the clips and the posts' permalinks, which is what the checking server
  fetches (started with --allow-private-fetch).
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

FIXTURES = Path(__file__).resolve().parents[1] / "extension" / "fixtures"
E2E_FIXTURES = Path(__file__).resolve().parent / "fixtures"  # pages only the browser tests use: /e2e/<name>.html
# the codec string of write_fragmented's H.264 (baseline profile, level 2.1), as MediaSource wants it
FRAGMENTED_CODEC = 'video/mp4; codecs="avc1.42C015"'

# Site name → the fixture page that reproduces its feed.
SITE_PAGES = {
    "x.com": "x-feed.html",
    "www.youtube.com": "youtube-home.html",
    "www.instagram.com": "instagram-feed.html",
    "www.tiktok.com": "tiktok-foryou.html",
    "www.facebook.com": "facebook-feed.html",
    "www.reddit.com": "reddit-feed.html",
    "blog.example": "generic-page.html",
}
HOSTS = list(SITE_PAGES)
# A post under /slow/<clip>/status/<n> answers after this long: checks that stay busy, so that which
# one starts next can be seen (the same clip under many addresses: none is a cached answer).
SLOW_POST_S = 15

POST_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Post {name}</title>
<meta property="og:type" content="video.other">
<meta property="og:video" content="{media}/media/{name}.mp4">
<meta property="og:video:type" content="video/mp4"></head>
<body><video controls src="{media}/media/{name}.mp4"></video></body></html>"""


@dataclass
class Request:
    host: str
    method: str
    path: str
    headers: dict


@dataclass
class FixtureWeb:
    http_base: str  # http://127.0.0.1:PORT (clips, permalinks)
    https_port: int
    spki: str  # of the HTTPS certificate, base64 sha256
    clips: dict[str, Path]
    ca_pem: bytes = b""  # the CA that issued the HTTPS certificate
    log: list[Request] = field(default_factory=list)

    def host_rules(self) -> str:
        return ", ".join(f"MAP {h} 127.0.0.1:{self.https_port}" for h in HOSTS)

    def page_url(self, host: str) -> str:
        return f"https://{host}/"

    def fetches_by_server(self, clip: str) -> int:
        """GETs of a clip's file not made by a browser <video> (Chromium sends Sec-Fetch-Dest: video)."""
        return sum(1 for r in self.log if r.path == f"/media/{clip}.mp4" and r.method == "GET"
                   and r.headers.get("Sec-Fetch-Dest") != "video")


def write_fragmented(path: Path, frames, fps: int = 10) -> Path:
    """A fragmented MP4 (an empty moov, then a moof+mdat per second) as MediaSource players append
    it: H.264 baseline, a keyframe every second."""
    import av
    import numpy as np

    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w", format="mp4",
                 options={"movflags": "frag_keyframe+empty_moov+default_base_moof"}) as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        st.options = {"preset": "ultrafast", "profile": "baseline", "level": "2.1", "g": str(fps),
                      "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0"}
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:st.height, :st.width]), format="rgb24")
            for packet in st.encode(frame):
                out.mux(packet)
        for packet in st.encode():
            out.mux(packet)
    return path


def site_certificate(hosts: list[str]) -> tuple[bytes, bytes, str, bytes]:
    """A certificate for the site names, issued by a CA of its own: (certificate chain PEM, key PEM,
    base64 sha256 of its SPKI, the CA's PEM). Chromium pins the SPKI; Firefox trusts the CA (it
    refuses a self-signed site certificate even when told to trust it)."""
    now = dt.datetime.now(dt.UTC)

    def build(subject: str, issuer: str, public_key, signer, ca: bool, names=()):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])).public_key(public_key)
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
             .not_valid_after(now + dt.timedelta(days=7))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in names]), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = "deepfake-check fixture sites CA"
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    cert = build("deepfake-check fixture sites", ca_name, key.public_key(), ca_key, False, hosts)
    spki_der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    spki = base64.b64encode(hashlib.sha256(spki_der).digest()).decode()
    pem = serialization.Encoding.PEM
    return (cert.public_bytes(pem) + ca.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            spki, ca.public_bytes(pem))


def start_fixture_web(clips: dict[str, Path], tmp: Path) -> tuple[FixtureWeb, callable]:
    cert_pem, key_pem, spki, ca_pem = site_certificate(HOSTS)
    (tmp / "cert.pem").write_bytes(cert_pem)
    (tmp / "key.pem").write_bytes(key_pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")

    state: dict = {}
    ready = threading.Event()
    web_ref: list[FixtureWeb] = []

    @web.middleware
    async def record(request: web.Request, handler):
        if web_ref:
            web_ref[0].log.append(Request(request.host, request.method, request.path, dict(request.headers)))
        return await handler(request)

    async def media(request: web.Request):
        name = request.match_info["name"]
        if name not in clips:
            raise web.HTTPNotFound()
        return web.FileResponse(clips[name], headers={"Content-Type": "video/mp4", "Cache-Control": "no-store"})

    def fill(html: str) -> str:
        return html.replace("{{MEDIA}}", web_ref[0].http_base)

    async def page(request: web.Request):
        host = request.host.split(":")[0]
        if request.path == "/" and host in SITE_PAGES:
            return web.Response(text=fill((FIXTURES / SITE_PAGES[host]).read_text()), content_type="text/html")
        m = re.fullmatch(r"/fixture/([\w-]+\.html)", request.path)
        if m and (FIXTURES / m[1]).is_file():
            return web.Response(text=fill((FIXTURES / m[1]).read_text()), content_type="text/html")
        m = re.fullmatch(r"/e2e/([\w-]+\.html)", request.path)
        if m and (E2E_FIXTURES / m[1]).is_file():
            return web.Response(text=fill((E2E_FIXTURES / m[1]).read_text()), content_type="text/html")
        m = re.fullmatch(r"/slow/([\w-]+)/status/(\d+)", request.path)
        if m and m[1] in clips:
            await asyncio.sleep(SLOW_POST_S)
            return web.Response(text=POST_PAGE.format(media=web_ref[0].http_base, name=m[1]), content_type="text/html")
        if request.path.startswith("/private/"):  # a post behind a login: what such sites answer a stranger
            return web.Response(status=401, reason="Login required", text="Log in to see this post.")
        # A post's permalink: the page that shows that one clip (what the checking server fetches).
        for name in clips:
            if re.search(rf"(^|[/=]){re.escape(name)}(\b|$)", request.path_qs):
                return web.Response(text=POST_PAGE.format(media=web_ref[0].http_base, name=name), content_type="text/html")
        raise web.HTTPNotFound()

    async def main():
        app = web.Application(middlewares=[record])
        app.router.add_get("/media/{name}.mp4", media)
        app.router.add_get("/{tail:.*}", page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        plain = web.TCPSite(runner, "127.0.0.1", 0)
        secure = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await plain.start()
        await secure.start()
        state["ports"] = (plain._server.sockets[0].getsockname()[1], secure._server.sockets[0].getsockname()[1])
        state["runner"] = runner
        state["stop"] = asyncio.Event()
        ready.set()
        await state["stop"].wait()
        await runner.cleanup()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    ready.wait(10)
    http_port, https_port = state["ports"]
    fw = FixtureWeb(f"http://127.0.0.1:{http_port}", https_port, spki, clips, ca_pem)
    web_ref.append(fw)

    def stop():
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(10)

    return fw, stop
