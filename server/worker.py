"""The inference worker: one process owns the model; the server feeds it one check at a time.

A separate process because the decoders and the face detector are native code: a crash or a
hang on a hostile file kills (or gets killed with) the worker, never the server, and a fresh
worker is started for the next check. The worker decrypts the media itself, into a 0700
directory in RAM when the system has one, and deletes the plaintext as soon as the check ends.
"""
from __future__ import annotations

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

log = logging.getLogger(__name__)

START_TIMEOUT_S = 300.0


class ModelUnavailable(Exception):
    """The model could not be loaded (no default model installed, bad --weights file, ...)."""


class WorkerFailed(Exception):
    """The worker died or overran its time on a check; it has been restarted."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class CheckOutput:
    verdict: dict  # Verdict.to_dict()
    heatmap_png: bytes | None


class InferenceWorker:
    """Blocking API; the job service calls it from a single thread, one check at a time."""

    def __init__(self, weights: str | None, device: str | None, plain_dir: Path):
        self.weights, self.device, self.plain_dir = weights, device, Path(plain_dir)
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
        proc = ctx.Process(target=_serve, args=(child, self.weights, self.device, str(self.plain_dir)),
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
        if msg[0] != "ready":
            proc.join(5)
            raise ModelUnavailable(msg[1])
        self._proc, self._conn = proc, parent
        self.info, self.frame_choices = msg[1], tuple(msg[2])
        return self.info

    def run(self, media: Path, key: bytes, ext: str, frames: int, timeout_s: float,
            on_stage: Callable[[str], None] | None = None) -> CheckOutput:
        """Run one check; `on_stage` is called (from this thread) with each pipeline stage as it starts."""
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._restart()
            self.calls += 1
            # the parent names the decrypted file so it can remove it even if the worker dies
            plain = self.plain_dir / f"{secrets.token_hex(16)}{ext}"
            try:
                self._conn.send(("check", str(media), key, str(plain), frames))
                deadline = time.monotonic() + timeout_s
                while True:
                    if not self._conn.poll(max(0.0, deadline - time.monotonic())):
                        self._restart()
                        raise WorkerFailed("timeout", f"The analysis did not finish within {timeout_s:.0f} seconds.")
                    msg = self._conn.recv()
                    if msg[0] != "stage":
                        break
                    if on_stage is not None:
                        on_stage(msg[1])
            except (EOFError, OSError, BrokenPipeError):
                if self._stopping:
                    raise WorkerFailed("internal", "The server shut down during the check.") from None
                log.warning("inference worker died during a check; restarting it")
                self._restart()
                raise WorkerFailed("internal", "The detector crashed on this file.") from None
            finally:
                plain.unlink(missing_ok=True)
        if msg[0] == "error":
            raise WorkerFailed(msg[1], msg[2])
        return CheckOutput(msg[1], msg[2])

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
                        self._conn.send(None)
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


def _serve(conn, weights: str | None, device: str | None, plain_dir: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle: it stops us
    from .media import CorruptMedia, decrypt_to_file

    plain = Path(plain_dir)
    plain.mkdir(parents=True, exist_ok=True)
    os.chmod(plain, 0o700)
    try:
        import torch

        from model import FRAME_CHOICES, check, load_model, warm_up

        torch.set_num_threads(cpu_threads())
        os.environ.setdefault("DEEPFAKE_CHECK_DETECT_THREADS", str(cpu_threads()))  # read by model.faces
        loaded = load_model(weights, device=device)
        warm_up(loaded)
    except Exception as e:  # CheckpointError, NoDefaultModelError, ...: report the message, not the type
        conn.send(("error", str(e)))
        return
    info = loaded.info()
    conn.send(("ready", info, list(FRAME_CHOICES)))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        _, src, key, tmp, frames = msg
        tmp = Path(tmp)
        try:
            decrypt_to_file(key, Path(src), tmp)
            v = check(tmp, frames=frames, model=loaded, want_heatmap=True,
                      on_stage=lambda stage: conn.send(("stage", stage)))
            conn.send(("result", v.to_dict(), v.heatmap_png))
        except (CorruptMedia, FileNotFoundError) as e:
            conn.send(("error", "internal", f"The stored media could not be read ({e})."))
        finally:
            tmp.unlink(missing_ok=True)
