"""The inference worker: one process owns the model; the server feeds it one check at a time.

A separate process because the decoders and the face detector are native code: a crash or a
hang on a hostile file kills (or gets killed with) the worker, never the server, and a fresh
worker is started for the next check. The worker decrypts the media itself, into an anonymous
memory file (Linux memfd: named on no filesystem, gone with the worker however it ends), else into
a 0700 directory in RAM when the system has one, and drops the plaintext as soon as the check ends.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import Failure

log = logging.getLogger(__name__)

START_TIMEOUT_S = 300.0
# How often the server looks at the worker's memory during a check. A decoder can allocate GBs in
# a second; 50 ms keeps the overshoot small, and reading /proc/PID/statm costs microseconds.
WATCH_EVERY_S = 0.05
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process (Linux /proc); None where unknown.

    Resident, not virtual: torch alone maps ~4 GB of address space in the worker (measured: 3.9 GB
    virtual, 1.0 GB resident with the tiny test model), so RLIMIT_AS cannot tell a hostile file
    from a normal start."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


class ModelUnavailable(Exception):
    """The model could not be loaded (no default model installed, bad --weights file, ...)."""


class WorkerFailed(Exception):
    """The worker died or overran its time on a check; it has been restarted."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# --- what crosses the pipe (pickled; one type per message) ----------------------------------------
@dataclass(frozen=True)
class Ready:
    """worker -> server, once: the model is loaded and warm."""

    info: dict
    frame_choices: tuple[int, ...]


@dataclass(frozen=True)
class CheckRequest:
    """server -> worker: check this encrypted file."""

    media: str  # the encrypted file in the store
    key: bytes
    plain: str  # where the plaintext goes without memfd: the server names it, so it can remove it if the worker dies
    frames: int


@dataclass(frozen=True)
class FramesRequest:
    """server -> worker: check the frames in this encrypted container (server/frames.py). Decrypted
    into this process's memory only: no plaintext file at all."""

    media: str
    key: bytes
    times: tuple[float, ...]  # each frame's time in the video, in container order
    frames: int


@dataclass(frozen=True)
class Stage:
    """worker -> server, during a check: a pipeline stage starts."""

    name: str


@dataclass(frozen=True)
class Result:
    """worker -> server: the check's outcome (a Verdict, ERROR and NO_FACE included)."""

    verdict: dict  # Verdict.to_dict()
    heatmap_png: bytes | None


@dataclass(frozen=True)
class Stop:
    """server -> worker: exit."""


class InferenceWorker:
    """Blocking API; the job service calls it from a single thread, one check at a time."""

    def __init__(self, weights: str | None, device: str | None, plain_dir: Path, max_rss_mb: int | None = None,
                 trust_anchors: Path | None = None):
        """max_rss_mb: a check whose worker grows past this much resident memory is stopped (None: no cap).
        trust_anchors: a PEM file of CAs whose Content Credentials signers count as trusted, read by
        the worker as it starts (a file it cannot use stops the start: ModelUnavailable says why)."""
        self.weights, self.device, self.plain_dir = weights, device, Path(plain_dir)
        self.max_rss_mb = max_rss_mb
        self.trust_anchors = str(trust_anchors) if trust_anchors else None
        self.info: dict = {}
        self.frame_choices: tuple[int, ...] = ()
        self.calls = 0  # checks handed to the model (tests assert a cache hit does not add one)
        self._proc = None
        self._conn = None
        self._lock = threading.Lock()
        self._stopping = False

    def start(self) -> dict:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, self.weights, self.device, str(self.plain_dir), self.trust_anchors),
                           name="deepfake-check-worker", daemon=True)
        proc.start()
        child.close()
        if not parent.poll(START_TIMEOUT_S):
            proc.kill()
            raise ModelUnavailable("The model did not load in time.")
        try:
            msg = parent.recv()
        except EOFError:
            raise ModelUnavailable("The model worker exited while loading.") from None
        if not isinstance(msg, Ready):
            proc.join(5)
            raise ModelUnavailable(msg.message if isinstance(msg, Failure) else "The model worker did not start.")
        self._proc, self._conn = proc, parent
        self.info, self.frame_choices = msg.info, msg.frame_choices
        return self.info

    def run(self, media: Path, key: bytes, ext: str, frames: int, timeout_s: float,
            on_stage: Callable[[str], None] | None = None, times: list[float] | None = None) -> Result:
        """Run one check; `on_stage` is called (from this thread) with each pipeline stage as it starts.
        `times`: media is a container of captured frames (server/frames.py) taken at these times."""
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._restart()
            self.calls += 1
            # the parent names the decrypted file so it can remove it even if the worker dies
            plain = self.plain_dir / f"{secrets.token_hex(16)}{ext}"
            try:
                if times is None:
                    self._conn.send(CheckRequest(str(media), key, str(plain), frames))
                else:
                    self._conn.send(FramesRequest(str(media), key, tuple(times), frames))
                deadline = time.monotonic() + timeout_s
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._restart()
                        raise WorkerFailed("timeout", f"The analysis did not finish within {timeout_s:.0f} seconds.")
                    if self._over_memory():
                        log.warning("inference worker over %d MB during a check; restarting it", self.max_rss_mb)
                        self._restart()
                        raise WorkerFailed("too_large", f"Analysing this file needs more memory than the server allows "
                                                        f"({self.max_rss_mb} MB); it was stopped.")
                    if not self._conn.poll(min(left, WATCH_EVERY_S)):
                        continue
                    msg = self._conn.recv()
                    if not isinstance(msg, Stage):
                        break
                    if on_stage is not None:
                        on_stage(msg.name)
            except (EOFError, OSError, BrokenPipeError):
                if self._stopping:
                    raise WorkerFailed("internal", "The server shut down during the check.") from None
                log.warning("inference worker died during a check; restarting it")
                self._restart()
                raise WorkerFailed("internal", "The detector crashed on this file.") from None
            finally:
                with contextlib.suppress(NotADirectoryError):  # the temp dir is gone (memfd needs none)
                    plain.unlink(missing_ok=True)
        if isinstance(msg, Failure):
            raise WorkerFailed(msg.code, msg.message)
        return msg

    def _over_memory(self) -> bool:
        if not self.max_rss_mb or self._proc is None:
            return False
        rss = rss_bytes(self._proc.pid)
        return rss is not None and rss > self.max_rss_mb * 2**20

    def _restart(self) -> None:
        self._kill()
        if self._stopping:
            raise WorkerFailed("internal", "The server is shutting down.")
        self.start()

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self, grace_s: float = 30.0) -> None:
        """Let a running check finish (up to grace_s), then end the worker; a later run() will not restart it."""
        self._stopping = True
        if self._lock.acquire(timeout=grace_s):
            try:
                if self._conn is not None and self._proc is not None and self._proc.is_alive():
                    try:
                        self._conn.send(Stop())
                        self._proc.join(5)
                    except (OSError, BrokenPipeError):
                        pass
                self._kill()
            finally:
                self._lock.release()
        elif self._proc is not None:
            self._proc.kill()  # the running check fails with "shut down"; run() cleans up


# --- the worker process ---------------------------------------------------------------------------
def cpu_threads() -> int:
    """Threads for the model (torch) and for face detection: all cores but one
    (DEEPFAKE_CHECK_THREADS overrides; DEEPFAKE_CHECK_DETECT_THREADS overrides detection alone).

    The browser the user is watching in, the face detector and the server need a core too; torch's
    threads wait on each other when one of them is preempted. Measured on 2 cores: the default model
    takes 52 ms per 20 frames with 2 threads and 84 ms with 1 when the machine is idle, but 1.3 s
    with 2 threads and 82 ms with 1 while another process keeps one core busy.
    """
    env = os.environ.get("DEEPFAKE_CHECK_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 2) - 1)


def _serve(conn, weights: str | None, device: str | None, plain_dir: str, trust_anchors: str | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle: it stops us
    from . import frames as captured
    from .media import CorruptMedia, decrypt_records, decrypted
    from .private import own_dir

    own_dir(Path(plain_dir))  # the fallback's folder when memfd is missing: ours, private, never a link
    try:
        import torch

        from model import FRAME_CHOICES, MediaError, check, load_model, load_trust_anchors, warm_up

        torch.set_num_threads(cpu_threads())
        os.environ.setdefault("DEEPFAKE_CHECK_DETECT_THREADS", str(cpu_threads()))  # read by model.faces
        anchors = load_trust_anchors(trust_anchors) if trust_anchors else None
        loaded = load_model(weights, device=device)
        warm_up(loaded)
    except Exception as e:  # CheckpointError, NoDefaultModelError, TrustAnchorsError...: the message, not the type
        conn.send(Failure("model_unavailable", str(e)))
        return
    conn.send(Ready(loaded.info(), tuple(FRAME_CHOICES)))
    while True:
        try:
            req = conn.recv()
        except EOFError:
            return
        if isinstance(req, Stop):
            return
        on_stage = lambda stage: conn.send(Stage(stage))  # noqa: E731
        try:
            if isinstance(req, FramesRequest):
                on_stage("decode")
                t0 = time.perf_counter()
                blob = b"".join(decrypt_records(req.key, Path(req.media)))
                fr = captured.decode(captured.unpack(blob), list(req.times))
                del blob
                decode_ms = (time.perf_counter() - t0) * 1000
                v = check(fr, frames=req.frames, model=loaded, want_heatmap=True, on_stage=on_stage)
                for stage in ("decode", "total"):  # the frames' decoding is this check's decode stage
                    v.timings_ms[stage] = round(v.timings_ms.get(stage, 0.0) + decode_ms, 1)
            else:
                with decrypted(req.key, Path(req.media), Path(req.plain)) as path:
                    # the credentials are read from the same plaintext in memory as the detector reads
                    v = check(path, frames=req.frames, model=loaded, want_heatmap=True, on_stage=on_stage,
                              trust_anchors=anchors)
            conn.send(Result(v.to_dict(), v.heatmap_png))
        except MediaError as e:  # a captured frame that does not decode
            conn.send(Failure("not_media", str(e)))
        except (CorruptMedia, FileNotFoundError, ValueError) as e:
            conn.send(Failure("internal", f"The stored media could not be read ({e})."))
