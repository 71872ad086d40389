"""Checks as jobs: the queue in front of the inference worker (one check at a time; with
--backend ray, one per Ray Serve replica), downloads, the result cache.

A check by URL: (cache hit? done) -> downloading (fetch.py, at most N at once) -> encrypted into
the media store -> (cache hit by sha256? done) -> queued -> detecting (worker) -> done/failed.
An upload starts at "encrypted in the store". Media is deleted the moment its check ends.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .config import Config
from .errors import ApiError
from .fetch import FetchError, fetch
from .history import Entry, History
from .media import MediaStore, StoredMedia
from .personal import PersonalCalibration
from .worker import InferenceWorker, WorkerFailed

log = logging.getLogger(__name__)

STATUSES = ("queued", "downloading", "detecting", "analysing", "done", "failed")
# the core's stages after which a check is "analysing" (faces found, the model is running)
ANALYSING_STAGES = ("crop", "model")
FINISHED = ("done", "failed")
# parsed results of the latest cache keys, shared by every check answered from them (a parse per
# hit would also keep a copy per check)
RESULTS_IN_MEMORY = 512
# However much of the deadline a download used, the analysis gets at least this long: a slow
# first check (cold caches, a loaded machine) must not be killed for the download's sake.
MIN_ANALYSIS_S = 60.0
# bumped when a result gains what older cached results lack (2: Content Credentials, `provenance`;
# 3: `ai_generated` only for intact credentials, `ai_generated_claimed`)
RESULT_FORMAT = 3
# query parameters that only say where a link was shared from: the same video either way
TRACKING_PARAMS = {"fbclid", "gclid", "igshid", "si", "feature", "ref", "ref_src", "ref_url", "s", "t"}


def canonical_url(url: str) -> str:
    """One spelling per video: lower-case scheme and host, no fragment, default port, tracking
    parameters or www./m. prefixes; sorted query; youtu.be and /shorts/ links as watch?v= links."""
    p = urlsplit(url.strip())
    host = (p.hostname or "").lower()
    for prefix in ("www.", "m.", "mobile."):
        if host.startswith(prefix):
            host = host[len(prefix):]
    port = p.port
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    path = p.path or "/"
    query = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True)
             if k not in TRACKING_PARAMS and not k.startswith("utm_")]
    if host == "youtu.be" and path.strip("/"):
        host, netloc, query, path = "youtube.com", "youtube.com", [("v", path.strip("/"))], "/watch"
    elif host == "youtube.com" and path.startswith("/shorts/"):
        query, path = [("v", path.split("/")[2])], "/watch"
    if len(path) > 1:
        path = path.rstrip("/")
    return urlunsplit((p.scheme.lower(), netloc, path, urlencode(sorted(query)), ""))


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Check:
    id: str
    source: str  # "url" | "upload" | "frames"
    frames: int
    status: str = "queued"
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    progress: dict | None = None
    cached: bool = False
    result: dict | None = None  # shared with the result cache: never mutated
    error: dict | None = None
    heatmap_key: str | None = None  # its heatmap in JobService.heatmaps, while that keeps it
    url_key: str | None = None
    # for its history entry (server/history.py): the site's host, the keyed digest of the address,
    # the address itself only when the user asked to keep it, the media's sha256 when it was here
    site: str | None = None
    url_digest: str | None = None
    url: str | None = None
    content_sha256: str | None = None
    listeners: list[asyncio.Queue] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_json(self, has_heatmap: bool = False) -> dict:
        result = None
        if self.result is not None:
            result = dict(self.result)
            result["heatmap_url"] = f"/v1/checks/{self.id}/heatmap.png" if has_heatmap else None
        return {
            "id": self.id, "status": self.status, "progress": self.progress, "source": self.source,
            "cached": self.cached, "created": iso(self.created), "updated": iso(self.updated),
            "result": result, "error": self.error,
        }


class ResultCache:
    """Finished results in SQLite keyed by canonical URL and by media sha256, with a TTL.
    Results only: never media. Blocking; the job service calls it from one thread."""

    def __init__(self, path: Path, ttl_s: float):
        self.ttl_s = ttl_s
        self._recent: OrderedDict[str, tuple[dict, float]] = OrderedDict()  # key -> (result, created)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # results say what you watched: owner only
        os.chmod(path, 0o600)
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, result TEXT NOT NULL, created REAL NOT NULL)")

    def get(self, key: str) -> dict | None:
        """The result for key (one object, shared by its callers: read only), None when not cached."""
        hit = self._recent.get(key)
        if hit is None:
            row = self.db.execute("SELECT result, created FROM results WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            hit = (json.loads(row[0]), row[1])
        self._remember(key, hit)
        return hit[0] if time.time() - hit[1] <= self.ttl_s else None

    def put(self, keys: list[str], result: dict) -> None:
        now, blob = time.time(), json.dumps(result)
        with self.db:  # one transaction: all keys or none
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO results (key, result, created) VALUES (?, ?, ?)",
                                [(k, blob, now) for k in keys])
        for k in keys:
            self._remember(k, (result, now))

    def _remember(self, key: str, hit: tuple[dict, float]) -> None:
        self._recent[key] = hit
        self._recent.move_to_end(key)
        while len(self._recent) > RESULTS_IN_MEMORY:
            self._recent.popitem(last=False)

    def purge(self) -> int:
        cutoff = time.time() - self.ttl_s
        for k in [k for k, (_, created) in self._recent.items() if created < cutoff]:
            del self._recent[k]
        return self.db.execute("DELETE FROM results WHERE created < ?", (cutoff,)).rowcount

    def close(self) -> None:
        self.db.close()


@dataclass
class _Work:
    check: Check
    media: StoredMedia
    ext: str
    keys: list[str]
    fetch_ms: float | None
    timeout_s: float
    times: list[float] | None = None  # captured frames (server/frames.py) and their times; None: a media file


class JobService:
    def __init__(self, config: Config, store: MediaStore, worker: InferenceWorker, cache: ResultCache,
                 history: History | None = None, personal: PersonalCalibration | None = None,
                 download_dir: Path | None = None):
        """history: where finished checks are recorded (None: nowhere); personal: the user's own cuts,
        applied to every result shown (None: the model's); download_dir: a 0700 folder for downloads'
        plaintext (the app gives its RAM folder's; None: config.fetch_dir)."""
        self.config, self.store, self.worker, self.cache = config, store, worker, cache
        self.history, self.personal = history, personal
        self.download_dir = download_dir or config.fetch_dir
        self.checks: dict[str, Check] = {}
        self.in_flight: dict[str, Check] = {}  # url cache key -> its running check
        self.heatmaps: OrderedDict[str, bytes] = OrderedDict()  # by cache key, newest last
        self._heatmap_bytes = 0
        self._queue: asyncio.Queue[_Work] = asyncio.Queue()
        self._downloads = asyncio.Semaphore(config.max_downloads)
        self._tasks: set[asyncio.Task] = set()
        self._db = ThreadPoolExecutor(1, thread_name_prefix="cache")
        # one check per worker process, or one per Ray Serve replica (server/rayserve.py)
        self.concurrency = max(1, getattr(worker, "concurrency", 1))
        self._infer = ThreadPoolExecutor(self.concurrency, thread_name_prefix="infer")
        self._consumers: list[asyncio.Task] = []
        self._running: set[int] = set()  # ids of the checks being analysed
        self.closing = False
        # a file's Content Credentials are judged against these anchors: other anchors, other results
        anchors = worker.trust_anchors
        self._anchors = hashlib.sha256(Path(anchors).read_bytes()).hexdigest()[:16] if anchors else "-"

    # --- lifecycle ---
    async def start(self) -> None:
        if self.config.frames not in self.worker.frame_choices:
            raise ValueError(f"--frames must be one of {'/'.join(map(str, self.worker.frame_choices))}.")
        self._consumers = [asyncio.create_task(self._consume(), name=f"inference-consumer-{i}")
                           for i in range(self.concurrency)]

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop taking work; downloads and queued checks fail, the running check may finish."""
        self.closing = True
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._queue.empty():
            w = self._queue.get_nowait()
            self.store.delete(w.media)
            self._fail(w.check, "internal", "The server shut down before this check ran.")
        if self._consumers:
            deadline = time.monotonic() + grace_s
            while self._running and time.monotonic() < deadline:
                await asyncio.sleep(0.1)  # let the running checks finish
            for t in self._consumers:
                t.cancel()  # a check still running now is marked failed
            await asyncio.gather(*self._consumers, return_exceptions=True)
        self._infer.shutdown(wait=False)  # the owner of the worker ends a run that is still going
        for c in self.checks.values():
            if not c.finished:
                self._fail(c, "internal", "The server shut down during this check.")
        self._db.shutdown(wait=True)

    # --- helpers ---
    async def _db_call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    def _key(self, frames: int, kind: str, value: str) -> str:
        """Hashed, so the cache file is not a readable list of the URLs checked. A result belongs
        to one model, one frame count and one set of C2PA trust anchors: any changing means a new key."""
        raw = f"{self.worker.info.get('sha256', '')}:{RESULT_FORMAT}:{self._anchors}:{frames}:{kind}:{value}"
        return f"{kind}:{hashlib.sha256(raw.encode()).hexdigest()}"

    def validate_frames(self, frames) -> int:
        if frames is None:
            return self.config.frames
        if isinstance(frames, bool) or not isinstance(frames, int) or frames not in self.worker.frame_choices:
            choices = "/".join(str(f) for f in self.worker.frame_choices)
            raise ApiError(400, "bad_request", f"frames must be one of {choices}.")
        return frames

    @property
    def pending(self) -> int:
        return sum(1 for c in self.checks.values() if not c.finished)

    def ensure_capacity(self) -> None:
        if self.closing:
            raise ApiError(503, "busy", "The server is shutting down.", {"Retry-After": str(self.config.retry_after_s)})
        if self.pending >= self.config.queue_size:
            raise ApiError(503, "busy", f"Too many checks in progress ({self.pending}); try again shortly.",
                           {"Retry-After": str(self.config.retry_after_s)})

    def get(self, check_id: str) -> Check:
        c = self.checks.get(check_id)
        if c is None:
            raise ApiError(404, "not_found", "No check with this id (it may have expired).")
        return c

    def _new(self, source: str, frames: int) -> Check:
        c = Check(id=secrets.token_urlsafe(12), source=source, frames=frames)
        self.checks[c.id] = c
        excess = len(self.checks) - self.config.jobs_kept_max
        if excess > 0:  # over the cap: the oldest finished checks go now, not at the next housekeeping
            for cid in list(itertools.islice((cid for cid, k in self.checks.items() if k.finished), excess)):
                del self.checks[cid]
        return c

    # --- heatmaps: the newest, up to config.heatmap_bytes_kept in all ---
    def heatmap(self, c: Check) -> bytes | None:
        return self.heatmaps.get(c.heatmap_key) if c.heatmap_key else None

    def _keep_heatmap(self, keys: list[str], png: bytes) -> None:
        for k in keys:
            self._heatmap_bytes += len(png) - len(self.heatmaps.pop(k, b""))
            self.heatmaps[k] = png
        while self._heatmap_bytes > self.config.heatmap_bytes_kept and self.heatmaps:
            self._heatmap_bytes -= len(self.heatmaps.popitem(last=False)[1])

    def snapshot(self, c: Check) -> dict:
        """The check as the API shows it: its verdict by the personal cuts when there are some for this
        model (the cached result keeps the model's own)."""
        snap = c.to_json(has_heatmap=self.heatmap(c) is not None)
        if snap["result"] is not None:
            if self.personal is not None:
                self.personal.apply(snap["result"], self.worker.info.get("sha256"))
            else:
                snap["result"]["calibration"] = "model"
        return snap

    def _where(self, c: Check, url: str | None, remember: bool) -> None:
        """What the history may say about where a check's media came from: the host; for a URL check,
        the address's keyed digest; the address itself only when the user asked."""
        if not url:
            return
        c.site = (urlsplit(url).hostname or "").lower() or None
        if c.source == "url" and self.history is not None:
            c.url_digest = self.history.url_digest(canonical_url(url))
        if remember:
            c.url = url

    async def _record(self, c: Check) -> None:
        """The finished check into the history (before the caller says it is done: an answer may follow at once)."""
        if self.history is None or c.result is None:
            return
        shown = self.snapshot(c)["result"]
        info = self.worker.info
        entry = Entry(
            id=c.id, created=time.time(), source=c.source, verdict=shown["verdict"], calibration=shown["calibration"],
            site=c.site, url=c.url, url_digest=c.url_digest, content_sha256=c.content_sha256,
            p_fake=shown.get("p_fake"), confidence=shown.get("confidence"), model=shown.get("model"),
            model_sha256=info.get("sha256"), model_threshold=c.result.get("threshold"),
            model_band=c.result.get("uncertain_band"))
        try:
            await self._db_call(self.history.add, entry)
        except Exception:  # the check itself is fine: a history that cannot be written must not fail it
            log.exception("check %s: could not record it in the history", c.id)

    def _notify(self, c: Check) -> None:
        c.updated = time.time()
        snap = self.snapshot(c)
        for q in c.listeners:
            if q.full():
                q.get_nowait()  # a slow reader gets the newest state, not a backlog
            q.put_nowait(snap)

    def _set(self, c: Check, status: str, progress: dict | None = None) -> None:
        c.status, c.progress = status, progress
        self._notify(c)

    def _set_unless_finished(self, c: Check, status: str) -> None:
        if not c.finished:
            self._set(c, status)

    def _fail(self, c: Check, code: str, message: str) -> None:
        if c.finished:
            return
        c.status, c.error, c.progress = "failed", {"error": code, "message": message}, None
        if c.url_key and self.in_flight.get(c.url_key) is c:
            del self.in_flight[c.url_key]
        self._notify(c)
        log.info("check %s failed: %s", c.id, code)

    async def _finish_cached(self, c: Check, result: dict, key: str) -> None:
        c.cached, c.result, c.heatmap_key = True, result, key
        await self._record(c)
        self._set(c, "done")

    def _spawn(self, coro) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # --- submitting ---
    async def known_url(self, url: str, frames: int, remember_url: bool = False) -> Check | None:
        """The check for a URL that needs no fetch: the one in flight, or a finished one from the
        cache. None when the URL has to be fetched. remember_url: its history entry keeps the address."""
        key = self._key(frames, "url", canonical_url(url))
        running = self.in_flight.get(key)
        if running is not None and not running.finished:
            if remember_url:
                running.url = url
            return running
        cached = await self._db_call(self.cache.get, key)
        if cached is not None:
            c = self._new("url", frames)
            self._where(c, url, remember_url)
            await self._finish_cached(c, cached, key)
            return c
        return None

    def submit_url(self, url: str, frames: int, use_cookies: bool = False, remember_url: bool = False) -> Check:
        """Start fetching and checking a URL that `known_url` did not know. An identical request
        that started meanwhile (while the caller resolved the host) is shared, not repeated.
        use_cookies: fetch with the post's site's cookies from --cookies-from-browser, if set."""
        key = self._key(frames, "url", canonical_url(url))
        running = self.in_flight.get(key)
        if running is not None and not running.finished:
            if remember_url:
                running.url = url
            return running
        self.ensure_capacity()
        c = self._new("url", frames)
        self._where(c, url, remember_url)
        c.url_key = key
        self.in_flight[key] = c
        self._spawn(self._run_url(c, url, use_cookies))
        if self.config.log_urls:
            log.info("check %s: url %s", c.id, url)
        return c

    async def submit_upload(self, media: StoredMedia, ext: str, frames: int) -> Check:
        """An uploaded file, cached by the sha256 of its bytes."""
        return await self._submit_stored("upload", media, ext, self._key(frames, "sha", media.sha256), frames)

    async def submit_frames(self, media: StoredMedia, times: list[float], frames: int,
                            page_url: str | None = None, remember_url: bool = False) -> Check:
        """Frames captured in the browser, cached by the hash of their bytes and times. page_url: the
        page they played on (its host goes into the history; the address too with remember_url)."""
        from .frames import times_digest

        key = self._key(frames, "frames", f"{media.sha256}:{times_digest(times)}")
        return await self._submit_stored("frames", media, ".frames", key, frames, times, page_url, remember_url)

    async def _submit_stored(self, source: str, media: StoredMedia, ext: str, key: str, frames: int,
                             times: list[float] | None = None, page_url: str | None = None,
                             remember_url: bool = False) -> Check:
        """Media already in the store: a cache hit is answered even when the queue is full; anything
        else needs room in it. The media is deleted unless a queued check now owns it."""
        cached = await self._db_call(self.cache.get, key)
        if cached is not None:
            self.store.delete(media)
            c = self._new(source, frames)
            c.content_sha256 = media.sha256
            self._where(c, page_url, remember_url)
            await self._finish_cached(c, cached, key)
            return c
        try:
            self.ensure_capacity()
        except ApiError:
            self.store.delete(media)
            raise
        c = self._new(source, frames)
        c.content_sha256 = media.sha256
        self._where(c, page_url, remember_url)
        self._queue.put_nowait(_Work(c, media, ext, [key], None, max(MIN_ANALYSIS_S, self.config.deadline_s), times))
        return c

    async def download(self, url: str, encrypt_into: MediaStore) -> StoredMedia:
        """The video at url, fetched like a check's (the same limits, at most max_downloads at once)
        and encrypted into `encrypt_into` at once: a kept clip (server/feedback_api.py). FetchError."""
        async with self._downloads:
            dest = Path(tempfile.mkdtemp(dir=self.config.fetch_dir))  # 0700
            try:
                fetched = await fetch(
                    url, dest, max_bytes=self.config.max_fetch_bytes, max_duration_s=self.config.max_duration_s,
                    allow_private=self.config.allow_private_fetch, timeout_s=self.config.deadline_s,
                    verbose=self.config.log_urls)
                return await asyncio.get_running_loop().run_in_executor(None, encrypt_into.encrypt_file, fetched.path)
            finally:
                shutil.rmtree(dest, ignore_errors=True)  # the plaintext download, at once

    # --- running ---
    async def _run_url(self, c: Check, url: str, use_cookies: bool = False) -> None:
        media = None
        try:
            async with self._downloads:
                t0 = time.monotonic()  # the deadline and the fetch timing start when the download does
                self._set(c, "downloading", {"bytes": 0, "total": None, "percent": None})

                def progress(done: int, total: int | None) -> None:
                    pct = round(100.0 * done / total, 1) if total else None
                    self._set(c, "downloading", {"bytes": done, "total": total, "percent": pct})

                dest = Path(tempfile.mkdtemp(dir=self.download_dir))  # 0700
                try:
                    fetched = await fetch(
                        url, dest, max_bytes=self.config.max_fetch_bytes, max_duration_s=self.config.max_duration_s,
                        allow_private=self.config.allow_private_fetch, timeout_s=self.config.deadline_s,
                        on_progress=progress, verbose=self.config.log_urls,
                        cookies_from=self.config.cookies_from_browser if use_cookies else None,
                        cookies_configured=self.config.cookies_from_browser is not None,
                    )
                    media = await asyncio.get_running_loop().run_in_executor(None, self.store.encrypt_file, fetched.path)
                finally:
                    shutil.rmtree(dest, ignore_errors=True)  # the plaintext download, at once
            fetch_s = time.monotonic() - t0
            sniffed = media.sniffed
            if sniffed is None:
                self.store.delete(media)
                self._fail(c, "not_media", "The URL gave a file that is not a video or image.")
                return
            if media.problem:
                self.store.delete(media)
                self._fail(c, "not_media", f"The URL gave a file that is not a whole, well-formed video or image: "
                                           f"{media.problem}.")
                return
            sha_key = self._key(c.frames, "sha", media.sha256)
            c.content_sha256 = media.sha256
            cached = await self._db_call(self.cache.get, sha_key)
            if cached is not None:
                self.store.delete(media)
                await self._db_call(self.cache.put, [c.url_key], cached)
                self.in_flight.pop(c.url_key, None)
                await self._finish_cached(c, cached, sha_key)
                return
            self._set(c, "queued")
            timeout = max(MIN_ANALYSIS_S, self.config.deadline_s - fetch_s)
            self._queue.put_nowait(_Work(c, media, sniffed[1], [c.url_key, sha_key], round(fetch_s * 1000, 1), timeout))
            media = None  # the consumer owns it now
        except FetchError as e:
            self._fail(c, e.code, e.message)
        except asyncio.CancelledError:
            self._fail(c, "internal", "The server shut down during the download.")
            raise
        except Exception:
            log.exception("check %s: download failed unexpectedly", c.id)
            self._fail(c, "internal", "Something went wrong while downloading.")
        finally:
            self.store.delete(media)

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            w = await self._queue.get()
            self._running.add(id(w))
            try:
                self._set(w.check, "detecting")

                def on_stage(stage: str, c: Check = w.check) -> None:  # called on the inference thread
                    if stage in ANALYSING_STAGES:
                        loop.call_soon_threadsafe(self._set_unless_finished, c, "analysing")

                out = await loop.run_in_executor(
                    self._infer, self.worker.run, w.media.path, self.store.key, w.ext, w.check.frames, w.timeout_s,
                    on_stage, w.times)
                await self._complete(w, out.verdict, out.heatmap_png)
            except WorkerFailed as e:
                self._fail(w.check, e.code, e.message)
            except asyncio.CancelledError:
                self._fail(w.check, "internal", "The server shut down during this check.")
                raise
            except Exception:
                log.exception("check %s: analysis failed unexpectedly", w.check.id)
                self._fail(w.check, "internal", "Something went wrong during the analysis.")
            finally:
                self.store.delete(w.media)
                self._running.discard(id(w))

    async def _complete(self, w: _Work, verdict: dict, heatmap: bytes | None) -> None:
        c = w.check
        if verdict["verdict"] == "ERROR":
            self._fail(c, "not_media", verdict.get("error") or "Could not read this file.")
            return
        result = {k: v for k, v in verdict.items() if k != "file"}  # the worker's temp path is nobody's business
        timings = dict(result.get("timings_ms") or {})
        if w.fetch_ms is not None:
            timings["fetch"] = w.fetch_ms
            timings["total"] = round(timings.get("total", 0.0) + w.fetch_ms, 1)
        result["timings_ms"] = timings
        await self._db_call(self.cache.put, [k for k in w.keys if k], result)
        keys = [k for k in w.keys if k]
        if heatmap:
            self._keep_heatmap(keys, heatmap)
        c.result, c.heatmap_key = result, keys[0] if heatmap else None
        if c.url_key:
            self.in_flight.pop(c.url_key, None)
        await self._record(c)
        self._set(c, "done")
        log.info("check %s done: %s", c.id, result["verdict"])

    # --- events and housekeeping ---
    def subscribe(self, c: Check) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=16)
        q.put_nowait(self.snapshot(c))
        c.listeners.append(q)
        return q

    def unsubscribe(self, c: Check, q: asyncio.Queue) -> None:
        if q in c.listeners:
            c.listeners.remove(q)

    async def housekeeping(self) -> None:
        cutoff = time.time() - self.config.jobs_kept_s
        for cid in [cid for cid, c in self.checks.items() if c.finished and c.updated < cutoff]:
            del self.checks[cid]
        # a burst of checks (each kept answer is ~10-20 KB of Python objects) must not grow memory
        # for the whole hour: beyond the cap, the oldest finished checks go first
        finished = sorted((c.updated, cid) for cid, c in self.checks.items() if c.finished)
        for _, cid in finished[:max(0, len(finished) - self.config.jobs_kept_max)]:
            del self.checks[cid]
        await self._db_call(self.cache.purge)
        if self.history is not None:
            await self._db_call(self.history.purge, self.config.history_kept_s)
