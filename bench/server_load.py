"""Bounded load test of the real server on loopback (run by hand, not part of the test suite).

    .venv/bin/python -m bench.server_load                 # 3 rounds x 500 checks, 50 clients
    .venv/bin/python -m bench.server_load --quick         # 1 round x 60 checks, 10 clients

What runs: `server.__main__.serve()` in a child process (TLS on 127.0.0.1, the default model, one
inference worker), a plain HTTP server in this process serving clips for URL checks, and N
concurrent aiohttp clients. Each round submits a shuffled mix of
  - new uploads   (clip bytes the server has never seen: the model runs),
  - new URLs      (a clip URL never checked: the fetch process downloads it, then the model runs),
  - upload hits   (bytes checked before: answered from the result cache by sha256),
  - URL hits      (a URL checked before: answered from the result cache by URL).
A new check's latency runs from the first POST until its events stream says done; a 503 busy
(queue full) is counted and the same request is retried after 1 s (Retry-After says 10 s; the
shorter wait keeps the run bounded), its latency including the waits.

Differences from the shipped defaults, both needed for a loopback load test: URL fetches from
127.0.0.1 are allowed (--allow-private-fetch), and the per-token rate limit (600 requests/minute:
one browser never comes close) is raised, since all clients here share one token.
RSS: /proc/PID/status VmRSS of the server process and of its inference worker, before the first
round and after each, to show whether memory grows (the server's caches are bounded: kept checks,
parsed results, heatmaps up to 4 MiB, so it levels off once they are full).
Clips: cut from ../shared/data/real when present, else the tests' synthetic face clip.
During each round a probe client asks for one cached answer every 50 ms (latency for one person
while the server is busy). After the mixed rounds, cache hits alone (half by URL, half by upload): first from one client
(the server's own latency per hit), then from all the clients at once.
"""
from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("DEEPFAKE_CHECK_CACHE", Path.home() / ".cache" / "deepfake-check")) / "bench" / "load"
DATA = Path(os.environ.get("DEEPFAKE_CHECK_DATA", ROOT.parent / "shared" / "data"))
SOURCES = ["liveportrait-source-s18.mp4", "liveportrait-source-s32.mp4", "liveportrait-driving-d6.mp4",
           "liveportrait-driving-d9.mp4", "liveportrait-driving-d14.mp4"]
KINDS = ("url_hit", "upload_hit", "new_upload", "new_url")


def make_clips(n: int, seconds: float = 3.0) -> list[Path]:
    """n distinct 640x360 H.264 clips cut from real talking-head clips at different offsets; where
    those are not on the machine, the tests' synthetic face clip, a shade brighter per clip."""
    CACHE.mkdir(parents=True, exist_ok=True)
    real = (DATA / "real" / SOURCES[0]).exists()
    out = []
    for i in range(n):
        path = CACHE / (f"clip-{i:04d}.mp4" if real else f"synthetic-{i:04d}.mp4")
        out.append(path)
        if path.exists():
            continue
        if real:  # a different start frame per clip: (i // sources) frames in
            from bench.pipeline import encode_clip

            encode_clip(DATA / "real" / SOURCES[i % len(SOURCES)], path, (640, 360), seconds, crf=26,
                        skip=i // len(SOURCES))
        else:
            _synthetic_clip(path, i, seconds)
    return out


def _synthetic_clip(path: Path, i: int, seconds: float, fps: int = 10) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import media
    import numpy as np

    frames = [np.roll(np.clip(f.astype(int) + i % 100, 0, 255).astype(np.uint8), 8 * (i // 100), axis=1)
              for f in media.face_frames(int(seconds * fps), (640, 360))]
    tmp = path.with_suffix(".tmp.mp4")
    media.write_clip(tmp, frames, fps=fps)
    tmp.rename(path)


# --- the server child -------------------------------------------------------------------------
def serve_child(cfg: dict) -> None:
    import logging

    from server.__main__ import serve
    from server.config import Config

    logging.basicConfig(level=logging.WARNING)
    config = Config(port=cfg["port"], weights=cfg["weights"], device="cpu", allow_private_fetch=True,
                    config_dir=Path(cfg["config_dir"]), data_dir=Path(cfg["data_dir"]), plain_dir=Path(cfg["plain_dir"]),
                    rate_limit_per_min=1_000_000, queue_size=cfg["queue_size"], backend=cfg.get("backend", "local"),
                    replicas=cfg.get("replicas", 1))
    sys.exit(serve(config, False))


def rss_mib(pid: int) -> float:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def children(pid: int) -> list[int]:
    out = []
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(x) for x in (t / "children").read_text().split()]
        except OSError:
            pass
    return out


def worker_pid(server_pid: int) -> int | None:
    for c in children(server_pid):
        try:
            cmd = Path(f"/proc/{c}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmd:
            return c
    return None


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


# --- the clients ------------------------------------------------------------------------------
class Load:
    def __init__(self, base: str, token: str, ctx: ssl.SSLContext, url_base: str):
        self.base, self.ctx, self.url_base = base, ctx, url_base
        self.auth = {"Authorization": f"Bearer {token}"}
        self.rejected = 0
        self.rate_limited = 0
        self.failed: list[str] = []

    async def submit(self, s, kind: str, clip: Path) -> tuple[int, dict]:
        import aiohttp

        if kind in ("new_url", "url_hit"):
            async with s.post(f"{self.base}/v1/checks", json={"url": f"{self.url_base}/{clip.name}"},
                              headers=self.auth, ssl=self.ctx) as r:
                return r.status, await r.json()
        fd = aiohttp.FormData()
        fd.add_field("file", clip.read_bytes(), filename=clip.name, content_type="video/mp4")
        async with s.post(f"{self.base}/v1/checks/upload", data=fd, headers=self.auth, ssl=self.ctx) as r:
            return r.status, await r.json()

    async def follow(self, s, cid: str) -> dict:
        async with s.get(f"{self.base}/v1/checks/{cid}/events", headers=self.auth, ssl=self.ctx,
                         timeout=__import__("aiohttp").ClientTimeout(total=600)) as r:
            last = None
            async for line in r.content:
                if line.startswith(b"data: "):
                    last = json.loads(line[6:])
                    if last["status"] in ("done", "failed"):
                        return last
        return last or {}

    async def one(self, s, kind: str, clip: Path) -> float:
        t0 = time.perf_counter()
        while True:
            status, body = await self.submit(s, kind, clip)
            if status == 503:
                self.rejected += 1
                await asyncio.sleep(1.0)
                continue
            if status == 429:
                self.rate_limited += 1
                await asyncio.sleep(1.0)
                continue
            break
        if status == 200:
            if not body.get("cached"):
                self.failed.append(f"{kind}: 200 but not cached")
        elif status == 202:
            if kind.endswith("hit"):
                self.failed.append(f"{kind}: not a cache hit")
            final = await self.follow(s, body["id"])
            if final.get("status") != "done":
                self.failed.append(f"{kind}: {final.get('status')} {final.get('error')}")
        else:
            self.failed.append(f"{kind}: HTTP {status} {body}")
        return (time.perf_counter() - t0) * 1000

    async def run(self, items: list[tuple[str, Path]], concurrency: int,
                  probe_clips: dict[str, Path] | None = None) -> tuple[dict[str, list[float]], float, list[float]]:
        """Latencies by kind, wall seconds, and the probe's latencies when probe_clips are given
        (kind -> a clip checked before)."""
        import aiohttp

        lat: dict[str, list[float]] = {k: [] for k in KINDS}
        probe_lat: list[float] = []
        q: asyncio.Queue = asyncio.Queue()
        for it in items:
            q.put_nowait(it)
        conn = aiohttp.TCPConnector(limit=concurrency * 2)
        async with aiohttp.ClientSession(connector=conn) as s:
            async def client():
                while not q.empty():
                    kind, clip = q.get_nowait()
                    lat[kind].append(await self.one(s, kind, clip))

            async def probe():
                # one more user, asking for a cached answer every 50 ms while the others load the
                # server: the latency a person sees for a hit while the server is busy
                while not clients_done.is_set():
                    kind = "url_hit" if len(probe_lat) % 2 else "upload_hit"
                    probe_lat.append(await self.one(s, kind, probe_clips[kind]))
                    await asyncio.sleep(0.05)

            async def clients():
                await asyncio.gather(*(client() for _ in range(concurrency)))
                clients_done.set()

            clients_done = asyncio.Event()
            t0 = time.perf_counter()
            await asyncio.gather(clients(), *([probe()] if probe_clips else []))
            return lat, time.perf_counter() - t0, probe_lat


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.server_load", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--checks", type=int, default=500, help="checks per round")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--new-uploads", type=int, default=30, help="new clips uploaded per round")
    ap.add_argument("--new-urls", type=int, default=10, help="new clip URLs per round")
    ap.add_argument("--hot", type=int, default=5, help="clips per kind checked before the rounds (the cache hits)")
    ap.add_argument("--queue-size", type=int, default=16)
    ap.add_argument("--hits-alone", type=int, default=400, help="cache hits in the hits-only phase (half that with 1 client)")
    ap.add_argument("--weights", help="model (default: the registered default, else a same-architecture stand-in)")
    ap.add_argument("--backend", choices=["local", "ray"], default="local",
                    help="where the server runs its checks: its worker process, or Ray Serve (embedded Ray)")
    ap.add_argument("--replicas", type=int, default=1, help="--backend ray: Ray Serve replicas")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.checks, a.clients, a.new_uploads, a.new_urls, a.hot, a.hits_alone = 1, 60, 10, 4, 2, 2, 40

    from bench.pipeline import default_model_ref, machine

    weights, model_desc = (a.weights, a.weights) if a.weights else default_model_ref()
    per_round_new = a.new_uploads + a.new_urls
    clips = make_clips(2 * a.hot + a.rounds * per_round_new)
    hot_up, hot_url = clips[:a.hot], clips[a.hot:2 * a.hot]
    fresh = iter(clips[2 * a.hot:])

    tmp = Path(tempfile.mkdtemp(prefix="dfc-load-"))
    plain = Path("/dev/shm") / f"dfc-load-{secrets.token_hex(4)}"
    www = tmp / "www"
    www.mkdir()
    for c in clips:
        os.link(c, www / c.name) if os.stat(c).st_dev == os.stat(www).st_dev else shutil.copy(c, www / c.name)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *x, **k: Quiet(*x, directory=str(www), **k))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url_base = f"http://127.0.0.1:{httpd.server_address[1]}"

    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    cfg = {"port": port, "weights": weights, "config_dir": str(tmp / "config"), "data_dir": str(tmp / "data"),
           "plain_dir": str(plain), "queue_size": a.queue_size, "backend": a.backend, "replicas": a.replicas}
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "bench.server_load", "_serve", json.dumps(cfg)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    say = lambda *x: print(*x, file=sys.stderr, flush=True)  # noqa: E731
    try:
        deadline = time.monotonic() + 300
        while "pairing code" not in (tmp / "server.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {(tmp / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        token = (tmp / "config" / "token").read_text().strip()
        ctx = ssl.create_default_context(cafile=str(tmp / "config" / "tls" / "ca.pem"))
        load = Load(f"https://127.0.0.1:{port}", token, ctx, url_base)
        wpid = worker_pid(proc.pid)
        started = datetime.now(UTC)
        say(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        # the hot set: checked once, unmeasured, so that the rounds' hits are hits
        asyncio.run(load.run([("new_upload", c) for c in hot_up] + [("new_url", c) for c in hot_url], a.clients))
        load.failed.clear()
        load.rejected = 0
        rss = [(rss_mib(proc.pid), rss_mib(wpid) if wpid else float("nan"))]
        rounds = []
        for r in range(a.rounds):
            n_hits = a.checks - per_round_new
            items = ([("new_upload", next(fresh)) for _ in range(a.new_uploads)]
                     + [("new_url", next(fresh)) for _ in range(a.new_urls)]
                     + [("upload_hit", hot_up[i % a.hot]) for i in range(n_hits // 2)]
                     + [("url_hit", hot_url[i % a.hot]) for i in range(n_hits - n_hits // 2)])
            random.Random(r).shuffle(items)
            rej0, rl0, f0 = load.rejected, load.rate_limited, len(load.failed)
            say(f"round {r + 1}: {len(items)} checks, {a.clients} clients")
            lat, wall, probe = asyncio.run(load.run(items, a.clients, {"upload_hit": hot_up[0], "url_hit": hot_url[0]}))
            wpid = worker_pid(proc.pid) or wpid
            rss.append((rss_mib(proc.pid), rss_mib(wpid) if wpid else float("nan")))
            rounds.append({"lat": lat, "wall": wall, "n": len(items), "rejected": load.rejected - rej0, "probe": probe,
                           "rate_limited": load.rate_limited - rl0, "failed": load.failed[f0:]})
        # cache hits alone: the server's own latency for a hit, without inference competing for
        # the CPU; one client (no queueing in front of the server), then all clients at once
        hits_only = []
        for clients, n in ((1, a.hits_alone // 2), (a.clients, a.hits_alone)):
            items = [(("upload_hit", hot_up[i % a.hot]) if i % 2 else ("url_hit", hot_url[i % a.hot])) for i in range(n)]
            say(f"cache hits alone: {n} checks, {clients} clients")
            f0 = len(load.failed)
            lat, wall, _ = asyncio.run(load.run(items, clients))
            hits_only.append({"clients": clients, "lat": lat, "wall": wall, "n": n, "failed": load.failed[f0:]})
        finished = datetime.now(UTC)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        httpd.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(plain, ignore_errors=True)

    L = [f"Measured {started:%Y-%m-%d %H:%M}–{finished:%H:%M} UTC on: {machine()}.",
         f"Load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}. "
         f"Command: `python -m bench.server_load {' '.join(sys.argv[1:])}`.".replace("  ", " "),
         f"Model: {model_desc}. {a.clients} concurrent clients; per round {a.checks} checks = {a.new_uploads} new uploads + "
         f"{a.new_urls} new URLs + {a.checks - per_round_new} cache hits (half by upload, half by URL); queue size {a.queue_size}; "
         "clips 640x360, 3 s, H.264; server and clients share the machine.", "",
         "| round | checks | wall s | checks/s | URL hit p50 / p95 ms | upload hit p50 / p95 ms | new upload p50 / p95 ms "
         "| new URL p50 / p95 ms | 503 busy | 429 | failed |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(rounds, 1):
        cells = [f"{pct(r['lat'][k], .5):,.0f} / {pct(r['lat'][k], .95):,.0f}" for k in KINDS]
        L.append(f"| {i} | {r['n']} | {r['wall']:.1f} | {r['n'] / r['wall']:.1f} | " + " | ".join(cells)
                 + f" | {r['rejected']} | {r['rate_limited']} | {len(r['failed'])} |")
    L += ["", "| RSS MiB | before | " + " | ".join(f"after round {i}" for i in range(1, len(rounds) + 1)) + " |",
          "|---|---:|" + "---:|" * len(rounds),
          "| server | " + " | ".join(f"{s:.0f}" for s, _ in rss) + " |",
          "| inference worker | " + " | ".join(f"{w:.0f}" for _, w in rss) + " |"]
    L += ["", "A probe client beside the others, asking for a cached answer (by upload, then by URL, in turn) "
          "every 50 ms during each round: what one person sees for a hit while the server is busy:", "",
          "| round | probe hits | p50 ms | p95 ms | max ms |", "|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(rounds, 1):
        L.append(f"| {i} | {len(r['probe'])} | {pct(r['probe'], .5):,.1f} | {pct(r['probe'], .95):,.1f} | {max(r['probe'], default=float('nan')):,.1f} |")
    L += ["", "Cache hits alone (no new checks running):", "",
          "| clients | checks | wall s | checks/s | URL hit p50 / p95 / max ms | upload hit p50 / p95 / max ms | failed |",
          "|---:|---:|---:|---:|---:|---:|---:|"]
    for h in hits_only:
        cells = [f"{pct(h['lat'][k], .5):,.1f} / {pct(h['lat'][k], .95):,.1f} / {max(h['lat'][k]):,.1f}" for k in ("url_hit", "upload_hit")]
        L.append(f"| {h['clients']} | {h['n']} | {h['wall']:.2f} | {h['n'] / h['wall']:.1f} | " + " | ".join(cells) + f" | {len(h['failed'])} |")
    fails = [f for r in [*rounds, *hits_only] for f in r["failed"]]
    if fails:
        L += ["", f"Failures ({len(fails)}): " + "; ".join(sorted(set(fails))[:10])]
    text = "\n".join(L) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)
    return 1 if fails else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "_serve":
        serve_child(json.loads(sys.argv[2]))
    sys.exit(main())
