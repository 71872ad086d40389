"""create_app(config): wiring only. Resources with a lifetime live in cleanup_ctx, in start order:
media dirs -> model worker -> job service (cache, history, personal cuts, queue) -> sweeper -> the
fetcher's self-check (made when first asked for); they stop in reverse."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from aiohttp import web

from . import api, feedback_api
from .auth import PairedOrigin, Pairing, RateLimiter, TokenStore
from .config import Config
from .fetch import FetcherMonitor
from .history import History
from .jobs import JobService, ResultCache
from .keys import CONFIG, FETCHER, HISTORY, JOBS, PAIRED_ORIGIN, PAIRING, PERSONAL, PLAIN_DIR, STORE, TOKENS, WORKER
from .media import MediaStore, new_plain_dir, remove_plain_dir, sweep, wipe_dir
from .middlewares import (
    add_response_headers,
    cors_middleware,
    error_middleware,
    host_middleware,
    rate_limit_middleware,
    token_middleware,
)
from .personal import PersonalCalibration
from .private import private_dir
from .worker import InferenceWorker

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 30.0


def create_app(config: Config, worker: InferenceWorker | None = None) -> web.Application:
    """`worker`: an already started worker to share (tests); None starts one that the app owns."""
    tokens = TokenStore(config.token_path)
    tokens.ensure()
    paired = PairedOrigin(config.paired_origin_path)
    pairing = Pairing(tokens, config.pair_attempts_per_min)
    app = web.Application(
        middlewares=[
            error_middleware,
            host_middleware,
            cors_middleware(tuple(config.allow_origins), paired, pairing),
            token_middleware(tokens, paired, RateLimiter(config.auth_failures_per_min)),
            rate_limit_middleware(RateLimiter(config.rate_limit_per_min)),
        ],
        client_max_size=1024 * 1024,  # JSON bodies; uploads are streamed and limited on their own
    )
    app[CONFIG] = config
    app[TOKENS] = tokens
    app[PAIRING] = pairing
    app[PAIRED_ORIGIN] = paired
    app[FETCHER] = FetcherMonitor(config.fetcher_max_age_days, config.cookies_from_browser)
    app.on_response_prepare.append(add_response_headers)
    app.add_routes(api.routes())
    app.add_routes(feedback_api.routes())
    app.cleanup_ctx.extend([_media_ctx, _worker_ctx(worker), _jobs_ctx, _sweeper_ctx, _fetcher_ctx])
    return app


def _media_dirs(app: web.Application) -> list[Path]:
    config = app[CONFIG]
    return [config.media_dir, config.fetch_dir, app[PLAIN_DIR], _downloads(app)]


def _downloads(app: web.Application) -> Path:
    """Where yt-dlp writes a download's plaintext until it is encrypted: in this run's private RAM
    folder (not under the data dir on disk), so a killed server leaves no video on a disk, and the
    next start removes the killed run's folder with what is in it."""
    return app[PLAIN_DIR] / "downloads"


async def _media_ctx(app: web.Application):
    config = app[CONFIG]
    private_dir(config.data_dir)
    # leftovers of a crash: unreadable (encrypted under a key now gone) or plaintext; either way, they go
    # (<data dir>/fetch held downloads before they moved to the RAM folder: emptied all the same)
    removed = wipe_dir(config.media_dir) + wipe_dir(config.fetch_dir)
    if config.plain_dir is None:
        removed += remove_plain_dir(config.plain_dir_record)
        app[PLAIN_DIR] = new_plain_dir(config.data_dir, config.plain_dir_record)
    else:
        removed += wipe_dir(config.plain_dir)  # --temp-dir: the user's choice, emptied, kept
        app[PLAIN_DIR] = config.plain_dir
    wipe_dir(_downloads(app))  # created 0700, ours
    if removed:
        log.info("removed %d media leftovers from an earlier run", removed)
    app[STORE] = MediaStore(config.media_dir)
    yield
    wipe_dir(config.media_dir)
    wipe_dir(config.fetch_dir)
    if config.plain_dir is None:
        remove_plain_dir(config.plain_dir_record)
    else:
        wipe_dir(config.plain_dir)


def _worker_ctx(shared: InferenceWorker | None):
    async def ctx(app: web.Application):
        config = app[CONFIG]
        if shared is not None:
            app[WORKER] = shared
            yield
            return
        if config.backend == "ray":
            from .rayserve import RayServeWorker

            worker = RayServeWorker(config.weights, config.device, config.ray_address, config.replicas,
                                    config.gpus_per_replica, max_queued=config.queue_size,
                                    trust_anchors=config.c2pa_trust_anchors)
        else:
            worker = InferenceWorker(config.weights, config.device, app[PLAIN_DIR], config.worker_memory_mb or None,
                                     trust_anchors=config.c2pa_trust_anchors)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, worker.start)
        app[WORKER] = worker
        yield
        await loop.run_in_executor(None, worker.stop, 2.0)  # the job service already waited

    return ctx


async def _jobs_ctx(app: web.Application):
    config = app[CONFIG]
    cache = ResultCache(config.cache_path, config.cache_ttl_s)
    history = History(config.cache_path, config.kept_dir, config.clip_key_path)  # the same SQLite file, its own table
    personal = PersonalCalibration(config.personal_calibration_path)
    jobs = JobService(config, app[STORE], app[WORKER], cache, history, personal, download_dir=_downloads(app))
    await jobs.start()
    app[JOBS], app[HISTORY], app[PERSONAL] = jobs, history, personal
    yield
    await jobs.stop(SHUTDOWN_GRACE_S)
    history.close()
    cache.close()


async def _sweeper_ctx(app: web.Application):
    config, jobs = app[CONFIG], app[JOBS]

    async def loop_():
        while True:
            await asyncio.sleep(config.sweep_every_s)
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, sweep, _media_dirs(app), config.media_max_age_s)
                await jobs.housekeeping()
            except Exception:  # the sweeper must survive anything a disk does
                log.exception("sweeper failed")

    task = asyncio.create_task(loop_(), name="sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _fetcher_ctx(app: web.Application):
    yield
    await app[FETCHER].close()
