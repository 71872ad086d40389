"""The pipeline: file -> Frames -> face tracks -> crops -> scores -> Verdict.

Each stage is a small function of its own module; this one strings them together and times them.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .cam import heatmap
from .evidence import TrackEvidence, judge, measure, reason_text
from .faces import (
    NO_FACE_MESSAGE,
    FaceCrops,
    NoFaceError,
    crop_tracks,
    find_faces,
    unscored,
)
from .network import autocast_for, preprocess
from .provenance import read_provenance
from .spec import FAKE, CropSpec
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


class _Logits(torch.nn.Module):
    """The network's clip logits as a tuple, one per head (blend first): what `optimise_for_cpu` traces."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return _logits(self.net, x)


def _logits(net: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Clip logits per head, blend first (one head: a 1-tuple); the shared trunk runs once."""
    if net.spec.gen_branch:
        out = net.heads(x)
        return out["blend"], out["generation"]
    return (net(x)[1],)


def optimise_for_cpu(loaded: LoadedModel) -> bool:
    """Trace and freeze a per-frame model for the CPU (`loaded.fast`, used by every later check):
    TorchScript folds each batch norm into its convolution and drops the per-call Python, the same
    outputs (to 1e-5) about a quarter sooner on a 2-core CPU (docs/performance.md). It costs a few
    seconds once, so a long-lived process (the server's worker, a Ray replica, a scan) calls it from
    `warm_up`, not a one-file CLI run. Only fp32 on the CPU and `frames` models, whose shapes the trace
    generalises over (any number of tracks and frames, tested); False when it does not apply. The
    heatmap keeps using the network itself (it needs gradients)."""
    if loaded.fast is not None:
        return True
    if loaded.device.type != "cpu" or loaded.spec.mode != "frames" or \
            not isinstance(autocast_for(loaded.spec, loaded.device), contextlib.nullcontext):
        return False
    size = loaded.spec.crop.size
    example = torch.zeros(1, 2, 3, size, size)
    with torch.inference_mode(), warnings.catch_warnings():
        # torch.jit is marked deprecated in favour of torch.compile, which needs a C++ compiler at run
        # time; the pinned torch runs it, and tests/model/test_optimise.py holds it to the network's outputs
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded.fast = torch.jit.freeze(torch.jit.trace(_Logits(loaded.net).eval(), example))
    return True


def _p_fake(loaded: LoadedModel, x: torch.Tensor) -> list[float] | list[dict[str, float]]:
    """Raw P(fake) of each track in a preprocessed batch: a number, or for a two-head model each
    head's ({"blend": p, "generation": q}; the shared trunk runs once)."""
    with torch.inference_mode(), autocast_for(loaded.spec, loaded.device):
        out = loaded.fast(x) if loaded.fast is not None else _logits(loaded.net, x)
    probs = [torch.softmax(o.float(), dim=1)[:, FAKE].tolist() for o in out]
    if loaded.spec.gen_branch:
        return [{"blend": float(b), "generation": float(g)} for b, g in zip(*probs, strict=True)]
    return probs[0]


def score_crops(loaded: LoadedModel, crops: np.ndarray) -> float | dict[str, float]:
    """Raw P(fake) for one face track's crops (per head for a two-head model)."""
    p = _p_fake(loaded, preprocess(crops, loaded.spec, loaded.device))[0]
    return p if isinstance(p, dict) else float(p)


@dataclass
class Prepared:
    """A file after the CPU stages (decode, detect, crop): the verdict so far (final when NO_FACE or
    ERROR) and the crops of the faces to score. `frames` holds the decoded images for the caller
    (a thumbnail, say); `without_frames()` is what crosses to another process (the crops are small)."""

    verdict: Verdict
    face_crops: list[FaceCrops] = field(default_factory=list)
    face_boxes: list[list[dict]] = field(default_factory=list)  # per face crop, in the source's pixels
    evidence: list[TrackEvidence] = field(default_factory=list)  # per face crop: how good it is as evidence
    frames: Frames | None = None
    decode_scale: float = 1.0  # frames.scale, kept when the frames are dropped

    @property
    def needs_model(self) -> bool:
        return bool(self.face_crops)

    def without_frames(self) -> Prepared:
        return replace(self, frames=None)


def prepare(
    path: str | os.PathLike | Frames,
    frames: int = 20,
    crop: CropSpec | None = None,
    detector: str | None = None,
    on_stage: Callable[[str], None] | None = None,
    trust_anchors: str | None = None,
) -> Prepared:
    """The CPU stages of `check`: read the file's Content Credentials (`verdict.provenance`, judged
    against `trust_anchors`, PEM text; none for captured frames), decode, detect and track faces,
    crop the ones to score with `crop` (the model's crop spec: `LoadedModel.spec.crop` or
    `read_spec(...).crop`). Never raises for bad input: NO_FACE and ERROR come back as a final
    verdict. `score` finishes the job."""
    if frames not in FRAME_CHOICES:
        raise ValueError(f"frames must be one of {FRAME_CHOICES}, not {frames}")
    crop = crop or CropSpec()
    detector = detector or crop.detector
    name = "frames" if isinstance(path, Frames) else os.fspath(path)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    v = Verdict(file=name, verdict="ERROR", timings_ms=timings)
    out = Prepared(v)
    if not isinstance(path, Frames):  # frames captured from a page carry no credentials
        with _timed(timings, "provenance"):
            v.provenance = read_provenance(path, trust_anchors)
    try:
        with _timed(timings, "decode", on_stage):
            fr = path if isinstance(path, Frames) else read_frames(path, frames)
        out.frames, out.decode_scale = fr, fr.scale
        v.frames_analysed, v.width, v.height, v.duration = len(fr.images), fr.width, fr.height, fr.duration
        with _timed(timings, "detect", on_stage):
            detections, tracks = find_faces(fr, detector=detector)
        v.frames_with_face = sum(1 for d in detections if d)
        reasons = unscored(tracks)
        scored = [t for t, r in zip(tracks, reasons, strict=True) if r is None]
        v.faces_not_scored = [UnscoredFace(frames=len(t.boxes), size_px=round(t.size / fr.scale), reason=r[1], code=r[0],
                                           boxes=_boxes(t, fr)) for t, r in zip(tracks, reasons, strict=True) if r]
        if not scored:  # faces, all too small: the check cannot judge them
            v.verdict, v.reason = "UNCERTAIN", "face_too_small"
            v.reason_text = reason_text(v.reason)
        else:
            with _timed(timings, "crop", on_stage):
                out.face_crops = crop_tracks(fr, scored, crop)
                bpp = fr.extra.get("bits_per_pixel")
                out.evidence = [measure(fr.images, fc.track.boxes, len(fr.images), bpp) for fc in out.face_crops]
            out.face_boxes = [_boxes(fc.track, fr) for fc in out.face_crops]
    except NoFaceError as e:
        v.verdict, v.error = "NO_FACE", str(e) or NO_FACE_MESSAGE
    except MediaError as e:
        v.verdict, v.error = "ERROR", str(e)
    except (MemoryError, ValueError, OSError, RuntimeError) as e:
        # a decoder or library failure on hostile input: report it, keep serving the next file
        log.warning("check failed: %s: %s", type(e).__name__, e)
        v.verdict, v.error = "ERROR", f"Could not process this file ({type(e).__name__})."
    timings["total"] = round((time.perf_counter() - t_start) * 1000, 1)
    return out


def score_tracks(loaded: LoadedModel, crops: list[np.ndarray]) -> list[float] | list[dict[str, float]]:
    """Raw P(fake) of several face tracks (of one file or many), batching the tracks of equal shape
    into one forward pass each; the same numbers as `score_crops` track by track."""
    out: list[float | None] = [None] * len(crops)
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(crops):
        groups.setdefault(c.shape, []).append(i)
    for idx in groups.values():
        if len(idx) == 1:
            out[idx[0]] = score_crops(loaded, crops[idx[0]])
            continue
        x = preprocess(np.stack([crops[i] for i in idx]), loaded.spec, loaded.device)
        for i, p in zip(idx, _p_fake(loaded, x), strict=True):
            out[i] = p if isinstance(p, dict) else float(p)
    return out  # type: ignore[return-value]


def score(
    prepared: Prepared,
    model: LoadedModel,
    threshold: float | None = None,
    uncertain_band: float | None = None,
    want_heatmap: bool | tuple[str, ...] = False,
    on_stage: Callable[[str], None] | None = None,
    raw_scores: list[float] | list[dict[str, float]] | None = None,
) -> Verdict:
    """The model stage of `check` on a `prepare`d file: P(fake) per face, the verdict, the heatmap
    (want_heatmap: True, or the verdicts that get one, e.g. ("FAKE", "UNCERTAIN")).
    `raw_scores`: the faces' scores already computed (`score_tracks` over a batch of files); their
    share of that batch's time is the caller's to put in timings_ms["model"]. Returns (and fills)
    prepared.verdict; never raises for bad input."""
    loaded = model
    v = prepared.verdict
    v.model, v.mode = loaded.name, loaded.spec.mode
    v.threshold = loaded.threshold if threshold is None else threshold
    v.uncertain_band = loaded.uncertain_band if uncertain_band is None else uncertain_band
    if not prepared.needs_model:
        return v
    timings = v.timings_ms
    t_start = time.perf_counter()
    # faces too poor to judge (evidence.judge) are listed with their reason and not scored; when none is
    # left, the check says it cannot judge rather than guess
    cuts = loaded.abstain_cuts
    evidence = prepared.evidence or [None] * len(prepared.face_crops)
    codes = [judge(ev, cuts) if ev is not None else None for ev in evidence]
    keep = [i for i, c in enumerate(codes) if c is None]
    for i, c in enumerate(codes):
        if c is not None:
            fc = prepared.face_crops[i]
            v.faces_not_scored.append(UnscoredFace(
                frames=len(fc.frame_indices), size_px=round(evidence[i].face_px / _scale(prepared)),
                reason=reason_text(c), code=c, boxes=prepared.face_boxes[i], evidence=evidence[i].to_dict()))
    if not keep:
        v.verdict, v.reason = "UNCERTAIN", codes[0]  # the main face's reason (tracks come heaviest first)
        v.reason_text = reason_text(v.reason)
        return v
    face_crops = [prepared.face_crops[i] for i in keep]
    face_boxes = [prepared.face_boxes[i] for i in keep]
    face_evidence = [evidence[i] for i in keep]
    if raw_scores is not None:
        raw_scores = [raw_scores[i] for i in keep]
    try:
        with _timed(timings, "model", on_stage):
            raw = raw_scores if raw_scores is not None else [score_crops(loaded, fc.crops) for fc in face_crops]
            scores = [loaded.calibrated(p) for p in raw]
            signals = [{h: round(q, 6) for h, q in loaded.calibrated_signals(p).items()} if isinstance(p, dict) else None
                       for p in raw]
        v.faces = [FaceResult(p_fake=round(p, 6), frames=len(fc.frame_indices), boxes=boxes,
                              evidence=ev.to_dict() if ev is not None else None, signals=sig)
                   for p, fc, boxes, ev, sig in zip(scores, face_crops, face_boxes, face_evidence, signals, strict=True)]
        p = video_p_fake(scores)
        deciding = int(np.argmax(scores))
        if signals[deciding]:
            v.signals = signals[deciding]
            v.signal = max(v.signals, key=v.signals.get)
        v.p_fake = round(p, 6)
        v.verdict, conf = decide(p, v.threshold, v.uncertain_band)
        v.confidence = round(conf, 6)
        if want_heatmap is True or (want_heatmap and v.verdict in want_heatmap):
            with _timed(timings, "heatmap"):
                worst = face_crops[deciding]
                v.heatmap_png, _ = heatmap(loaded.net, preprocess(worst.crops, loaded.spec, loaded.device), worst.crops,
                                           head=v.signal or "blend")
    except (MemoryError, ValueError, OSError, RuntimeError) as e:
        log.warning("check failed: %s: %s", type(e).__name__, e)
        v.verdict, v.error = "ERROR", f"Could not process this file ({type(e).__name__})."
    timings["total"] = round(timings.get("total", 0.0) + (time.perf_counter() - t_start) * 1000, 1)
    return v


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
    The same as `score(prepare(...))`, which a batch pipeline runs apart.
    """
    if frames not in FRAME_CHOICES:
        raise ValueError(f"frames must be one of {FRAME_CHOICES}, not {frames}")
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    prepared = prepare(path, frames, loaded.spec.crop, detector, on_stage, trust_anchors)
    prepared.frames = None  # the decoded images can go before the model runs
    return score(prepared, loaded, threshold, uncertain_band, want_heatmap, on_stage)


def _scale(prepared: Prepared) -> float:
    """Decoded pixels per source pixel (the face sizes a result reports are the source's)."""
    return prepared.frames.scale if prepared.frames is not None else prepared.decode_scale


def _boxes(track, fr: Frames) -> list[dict]:
    """A track's boxes as [{"t": seconds, "box": [x, y, w, h]}] in the source's pixels (frames may
    have been decoded smaller than the source)."""
    return [{"t": round(fr.times[i], 3), "box": [round(c / fr.scale) for c in b.as_list()]}
            for i, b in sorted(track.boxes.items())]


def warm_up(loaded: LoadedModel) -> None:
    """Pay the one-off costs before the first user's check: the face detector's set-up (~1 s), the
    traced CPU network (`optimise_for_cpu`, a few seconds) and the first heatmap's backward pass
    (0.3-1.3 s, measured on 2 cores). Best-effort for the
    heatmap: a model that fails there fails its checks later with a reason."""
    importlib.import_module("av")  # the decoder's first import
    optimise_for_cpu(loaded)
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
