"""The pipeline: file -> Frames -> face tracks -> crops -> scores -> Verdict.

Each stage is a small function of its own module; this one strings them together and times them.
"""
from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch

from .cam import heatmap
from .faces import (
    NO_FACE_MESSAGE,
    SMALL_FACES_MESSAGE,
    FaceCrops,
    NoFaceError,
    crop_tracks,
    find_faces,
    unscored_reasons,
)
from .network import preprocess
from .provenance import read_provenance
from .spec import FAKE
from .verdict import FaceResult, UnscoredFace, Verdict, decide, video_p_fake
from .video import FRAME_CHOICES, Frames, MediaError, read_frames
from .weights import LoadedModel, load_model

log = logging.getLogger(__name__)

@contextmanager
def _timed(timings: dict, stage: str, on_stage: Callable[[str], None] | None = None):
    if on_stage is not None:
        on_stage(stage)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round((time.perf_counter() - t0) * 1000, 1)


def score_crops(loaded: LoadedModel, crops: np.ndarray) -> float:
    """P(fake) for one face track's crops."""
    x = preprocess(crops, loaded.spec, loaded.device)
    with torch.inference_mode():
        if loaded.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                _, logits = loaded.net(x)
        else:
            _, logits = loaded.net(x)
        probs = torch.softmax(logits.float(), dim=1)[0]
    return float(probs[FAKE])


def check(
    path: str | os.PathLike | Frames,
    frames: int = 20,
    model: LoadedModel | str | None = None,
    threshold: float | None = None,
    uncertain_band: float | None = None,
    want_heatmap: bool = False,
    on_stage: Callable[[str], None] | None = None,
    detector: str | None = None,
    trust_anchors: str | None = None,
) -> Verdict:
    """Check one video or image file, or frames already decoded (`Frames`, e.g. captured from a
    playing video: `video.frames_from_images`). Never raises for bad input: errors become the verdict.

    verdict is REAL / FAKE / UNCERTAIN, NO_FACE when no face (or none large enough to judge) was
    found, or ERROR with `error` set to a message meant for the user (not a video, corrupt, ...).
    `threshold` and `uncertain_band` default to the model's own calibration (its checkpoint), else
    to 0.5 and 0.1; `detector` to the one the model was trained with (its crop spec). `on_stage` is called with "decode", "detect", "crop" and "model" as each stage
    starts (progress for a UI). A file's Content Credentials (C2PA) are read first, beside the
    detector and whatever it finds (`provenance`); `trust_anchors` is the PEM text of the CA
    certificates whose signers count as trusted (`provenance.load_trust_anchors`).
    """
    if frames not in FRAME_CHOICES:
        raise ValueError(f"frames must be one of {FRAME_CHOICES}, not {frames}")
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    if threshold is None:
        threshold = loaded.threshold
    if uncertain_band is None:
        uncertain_band = loaded.uncertain_band
    detector = detector or loaded.spec.crop.detector
    name = "frames" if isinstance(path, Frames) else os.fspath(path)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    v = Verdict(file=name, verdict="ERROR", model=loaded.name, mode=loaded.spec.mode,
                threshold=threshold, uncertain_band=uncertain_band, timings_ms=timings)
    if not isinstance(path, Frames):  # frames captured from a page carry no credentials
        with _timed(timings, "provenance"):
            v.provenance = read_provenance(path, trust_anchors)
    try:
        with _timed(timings, "decode", on_stage):
            fr = path if isinstance(path, Frames) else read_frames(path, frames)
        v.frames_analysed, v.width, v.height, v.duration = len(fr.images), fr.width, fr.height, fr.duration
        with _timed(timings, "detect", on_stage):
            detections, tracks = find_faces(fr, detector=detector)
        v.frames_with_face = sum(1 for d in detections if d)
        reasons = unscored_reasons(tracks)
        scored = [t for t, r in zip(tracks, reasons, strict=True) if r is None]
        v.faces_not_scored = [UnscoredFace(frames=len(t.boxes), size_px=round(t.size / fr.scale), reason=r,
                                           boxes=_boxes(t, fr)) for t, r in zip(tracks, reasons, strict=True) if r]
        if not scored:
            raise NoFaceError(SMALL_FACES_MESSAGE)
        with _timed(timings, "crop", on_stage):
            face_crops: list[FaceCrops] = crop_tracks(fr, scored, loaded.spec.crop)
        with _timed(timings, "model", on_stage):
            scores = [loaded.calibrated(score_crops(loaded, fc.crops)) for fc in face_crops]
        v.faces = [FaceResult(p_fake=round(p, 6), frames=len(fc.frame_indices), boxes=_boxes(fc.track, fr))
                   for p, fc in zip(scores, face_crops, strict=True)]
        p = video_p_fake(scores)
        v.p_fake = round(p, 6)
        v.verdict, conf = decide(p, threshold, uncertain_band)
        v.confidence = round(conf, 6)
        if want_heatmap:
            with _timed(timings, "heatmap"):
                worst = face_crops[int(np.argmax(scores))]
                v.heatmap_png, _ = heatmap(loaded.net, preprocess(worst.crops, loaded.spec, loaded.device), worst.crops)
    except NoFaceError as e:
        v.verdict, v.error = "NO_FACE", str(e) or NO_FACE_MESSAGE
    except MediaError as e:
        v.verdict, v.error = "ERROR", str(e)
    except (MemoryError, ValueError, OSError, RuntimeError) as e:
        # a decoder or library failure on hostile input: report it, keep serving the next file
        log.warning("check failed: %s: %s", type(e).__name__, e)
        v.verdict, v.error = "ERROR", f"Could not process this file ({type(e).__name__})."
    timings["total"] = round((time.perf_counter() - t_start) * 1000, 1)
    return v


def _boxes(track, fr: Frames) -> list[dict]:
    """A track's boxes as [{"t": seconds, "box": [x, y, w, h]}] in the source's pixels (frames may
    have been decoded smaller than the source)."""
    return [{"t": round(fr.times[i], 3), "box": [round(c / fr.scale) for c in b.as_list()]}
            for i, b in sorted(track.boxes.items())]


def warm_up(loaded: LoadedModel) -> None:
    """Pay the one-off costs before the first user's check: the face detector's set-up (~1 s) and
    the first heatmap's backward pass (0.3-1.3 s, measured on 2 cores). Best-effort for the
    heatmap: a model that fails there fails its checks later with a reason."""
    importlib.import_module("av")  # the decoder's first import
    grey = np.full((64, 64, 3), 128, np.uint8)
    try:
        find_faces(Frames([grey], [0.0], 1, 0.0, 64, 64, kind="image"), detector=loaded.spec.crop.detector)
    except NoFaceError:
        pass  # expected: a grey square has no face; the detector is now loaded
    size = loaded.spec.crop.size
    crops = np.full((2, size, size, 3), 128, np.uint8)
    try:
        heatmap(loaded.net, preprocess(crops, loaded.spec, loaded.device), crops)
    except Exception as e:
        log.warning("heatmap warm-up failed: %s", type(e).__name__)
