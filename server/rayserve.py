"""`python -m server --backend ray`: checks run on a Ray Serve deployment instead of the local
inference worker process (which stays the default). Same job service, API, results and cache.

The job service hands a check to `RayServeWorker.run` as it would to `InferenceWorker.run`: the
media's *encrypted* bytes and their key go to a replica through Ray; the replica decrypts them in
its own memory (an anonymous memory file, never a named one) and runs the same `model.check` as
the local worker, Content Credentials included: the C2PA trust anchors (--c2pa-trust-anchors) are
read once by the front-end and handed to each replica, which checks them as the local worker does
(a cluster's nodes need no copy of the file). Each replica loads the model once. A replica that
dies mid-check fails that check with a reason; Serve starts a new one and routes the next checks
to healthy replicas.
Ray's transport is not encrypted unless Ray's TLS is configured: the media's key crosses it with
the media (docs/server.md says so).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

# read when ray is imported: Ray's core otherwise takes the server's SIGTERM for a crash (a stack
# dump, then abort); here it is a graceful stop (aiohttp's handler)
os.environ["RAY_DISABLE_FAILURE_SIGNAL_HANDLER"] = "1"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # Ray sends nothing anywhere (also set by raycluster.start_ray)

from ray import serve  # noqa: E402

from .errors import Failure  # noqa: E402
from .worker import ModelUnavailable, Result, WorkerFailed, cpu_threads  # noqa: E402

log = logging.getLogger(__name__)

APP = "deepfake-check"
START_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class ServeRequest:
    """front-end -> replica: one check."""

    media: bytes  # the encrypted file (server/media.py's format)
    key: bytes
    frames: int
    times: tuple[float, ...] | None = None  # captured frames (server/frames.py) and their times


@serve.deployment(name="Detector", max_ongoing_requests=1)
class Detector:
    """A replica: the model loaded and warmed up once; one check at a time."""

    def __init__(self, weights: str | None, device: str | None, trust_anchors: tuple[str, bytes] | None = None):
        """trust_anchors: (the file's name, its bytes) as the front-end read them."""
        import torch

        from model import load_model, warm_up

        _replica_server_on_loopback()
        torch.set_num_threads(cpu_threads())
        os.environ.setdefault("DEEPFAKE_CHECK_DETECT_THREADS", str(cpu_threads()))  # read by model.faces
        self.anchors = _trust_anchors(*trust_anchors) if trust_anchors else None  # PEM text
        self.loaded = load_model(weights, device=device)
        warm_up(self.loaded)

    def describe(self) -> tuple[dict, tuple[int, ...], int]:
        from model import FRAME_CHOICES

        return self.loaded.info(), tuple(FRAME_CHOICES), os.getpid()

    def check(self, req: ServeRequest) -> Result | Failure:
        import time

        from model import MediaError, check

        from . import frames as captured
        from .media import CorruptMedia, decrypt_records, in_memory

        try:
            plain = b"".join(decrypt_records(req.key, req.media))
            if req.times is not None:
                t0 = time.perf_counter()
                fr = captured.decode(captured.unpack(plain), list(req.times))
                del plain
                decode_ms = (time.perf_counter() - t0) * 1000
                v = check(fr, frames=req.frames, model=self.loaded, want_heatmap=True)
                for stage in ("decode", "total"):
                    v.timings_ms[stage] = round(v.timings_ms.get(stage, 0.0) + decode_ms, 1)
            else:
                with in_memory(plain) as path:
                    del plain
                    # the credentials are read from the same plaintext in memory as the detector reads
                    v = check(path, frames=req.frames, model=self.loaded, want_heatmap=True,
                              trust_anchors=self.anchors)
            return Result(v.to_dict(), v.heatmap_png)
        except MediaError as e:
            return Failure("not_media", str(e))
        except (CorruptMedia, ValueError) as e:
            return Failure("internal", f"The stored media could not be read ({e}).")


def _replica_server_on_loopback() -> None:
    """On an embedded local Ray (its node address is loopback: raycluster.start_ray), make the gRPC
    server Serve starts in this replica once its constructor returns (for the handle's requests)
    listen on loopback as the rest of that Ray does: Ray 2.60 binds it on [::], every interface,
    with no setting to change it. On a cluster, left as it is (other nodes must reach it).
    tests/server/test_ray_backend.py checks what the replica listens on."""
    import ipaddress

    import ray
    from ray.serve._private import replica

    if not ipaddress.ip_address(ray.util.get_node_ip_address()).is_loopback:
        return
    bind = replica.add_port_to_grpc_server

    def on_loopback(server, address: str):
        return bind(server, address.replace("[::]:", "127.0.0.1:", 1))

    replica.add_port_to_grpc_server = on_loopback


def _trust_anchors(name: str, pem: bytes) -> str:
    """model.load_trust_anchors on the front-end's copy of the file (in memory): the same checks, the
    file's own name in the error."""
    from model import TrustAnchorsError, load_trust_anchors

    from .media import in_memory

    with in_memory(pem) as path:
        try:
            return load_trust_anchors(path)
        except TrustAnchorsError as e:
            raise TrustAnchorsError(str(e).replace(path, name)) from None


def _deployment_error() -> str | None:
    """The last line of why the replicas failed to start (their constructor's exception), if Serve
    kept it."""
    try:
        message = serve.status().applications[APP].deployments["Detector"].message
    except Exception:
        return None
    lines = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
    return lines[-1][:500] if lines else None


class RayServeWorker:
    """InferenceWorker's interface on a Ray Serve deployment. Blocking; the job service calls run()
    from up to `concurrency` threads at once (one check per replica)."""

    def __init__(self, weights: str | None, device: str | None, address: str | None = None, replicas: int = 1,
                 gpus_per_replica: float = 0.0, max_queued: int = 16, trust_anchors: Path | None = None):
        """trust_anchors: a PEM file of CAs whose Content Credentials signers count as trusted, read
        as the worker starts (a file it cannot use stops the start: ModelUnavailable says why)."""
        self.weights, self.device, self.address = weights, device, address
        self.trust_anchors = str(trust_anchors) if trust_anchors else None  # the job service keys its cache on it
        self.replicas, self.gpus, self.max_queued = replicas, gpus_per_replica, max_queued
        self.concurrency = replicas
        self.info: dict = {}
        self.frame_choices: tuple[int, ...] = ()
        self.calls = 0
        self.handle = None
        self._own_ray = False

    def start(self) -> dict:
        import ray

        from .raycluster import start_ray

        if self.weights and os.sep in self.weights and not os.path.exists(self.weights):
            raise ModelUnavailable(f"{self.weights}: no such file.")  # said at once, not after Ray's start-up
        anchors = None
        if self.trust_anchors:  # read here (the replicas may be on other machines), checked by the replicas
            try:
                anchors = (self.trust_anchors, Path(self.trust_anchors).read_bytes())
            except OSError as e:
                raise ModelUnavailable(f"cannot read the C2PA trust anchors {self.trust_anchors}: "
                                       f"{e.strerror or e}") from None
        if not ray.is_initialized():
            start_ray(self.address)
            self._own_ray = True
        serve.start(proxy_location="Disabled")  # no HTTP proxy: the only way in is this process's handle
        deployment = Detector.options(
            num_replicas=self.replicas, max_queued_requests=self.max_queued,
            ray_actor_options={"num_gpus": self.gpus, "num_cpus": 1 if self.gpus else 0.5})
        try:
            self.handle = serve.run(deployment.bind(self.weights, "cuda" if self.gpus and not self.device else self.device,
                                                    anchors),
                                    name=APP, route_prefix=None)
            info, choices, _ = self.handle.describe.remote().result(timeout_s=START_TIMEOUT_S)
        except Exception as e:  # the replicas could not load the model: their error says why
            why = _deployment_error() or f"{type(e).__name__}: {str(e)[-300:]}"
            self.stop()
            raise ModelUnavailable(f"The model did not load on Ray Serve: {why}") from e
        self.info, self.frame_choices = info, choices
        return self.info

    def run(self, media: Path, key: bytes, ext: str, frames: int, timeout_s: float,
            on_stage=None, times: list[float] | None = None) -> Result:
        from ray.exceptions import RayError
        from ray.serve.exceptions import BackPressureError

        self.calls += 1
        req = ServeRequest(Path(media).read_bytes(), key, frames, tuple(times) if times is not None else None)
        if on_stage is not None:
            on_stage("decode")
        response = self.handle.check.remote(req)
        try:
            out = response.result(timeout_s=timeout_s)
        except TimeoutError:
            response.cancel()
            raise WorkerFailed("timeout", f"The analysis did not finish within {timeout_s:.0f} seconds.") from None
        except BackPressureError:
            raise WorkerFailed("internal", "The detector cluster's queue is full; try again shortly.") from None
        except RayError as e:  # the replica died (ActorDiedError), or was unreachable
            log.warning("a Ray Serve replica failed during a check: %s", type(e).__name__)
            raise WorkerFailed("internal", "The detector replica running this check died; the next check goes "
                                           "to a healthy one.") from None
        if isinstance(out, Failure):
            raise WorkerFailed(out.code, out.message)
        return out

    @property
    def pid(self) -> int | None:
        return None

    def stop(self, grace_s: float = 30.0) -> None:
        import ray

        try:
            serve.delete(APP)
            serve.shutdown()
        except Exception:  # already gone (a failed start, a lost cluster)
            log.debug("serve shutdown", exc_info=True)
        if self._own_ray and ray.is_initialized():
            from .raycluster import stop_ray

            stop_ray()
