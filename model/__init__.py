"""Deepfake Check's detector: face crops -> CNN features -> LSTM -> REAL/FAKE.

Public API (what the server and the CLI use):
    check(path, frames=20, model=None, ...) -> Verdict
    prepare(path, frames, crop) -> Prepared; score(prepared, loaded) -> Verdict: check's CPU stages
        and its model stage apart (a batch pipeline runs them in different processes);
        score_tracks(loaded, crops): many files' face tracks in batched forward passes
    load_model(name_or_path=None, device=None) -> LoadedModel
    warm_up(loaded): pay one-off start-up costs before the first check (a server calls it once)
    frames_from_images(images, times, source_size=None) -> Frames: captured frames for check()
    decode_size(width, height, n): the size n frames of a source are held at (decode them that small)
    read_spec(name_or_path): a model's spec (crop size, detector) without loading it
    available_models(), Verdict, MediaError, NoFaceError, CheckpointError
    load_trust_anchors(path) -> PEM text for check(trust_anchors=...); Provenance, TrustAnchorsError
    decide(p_fake, threshold, band) -> (verdict, confidence): the verdict rule, for cuts other than the model's
    conformal_fake_cut, real_cut, threshold_and_band: the calibration's cuts (model/calibration.py), for a
        user's personal calibration
"""
from .calibration import conformal_fake_cut, real_cut, threshold_and_band
from .check import Prepared, check, prepare, score, score_tracks, warm_up
from .faces import NO_FACE_MESSAGE, NoFaceError
from .provenance import Provenance, TrustAnchorsError, load_trust_anchors
from .verdict import VERDICTS, Verdict, decide
from .video import FRAME_CHOICES, Frames, MediaError, decode_size, frames_from_images
from .weights import CheckpointError, LoadedModel, NoDefaultModelError, available_models, load_model, read_spec

__all__ = [
    "check", "warm_up", "load_model", "available_models", "LoadedModel", "Verdict", "VERDICTS", "MediaError",
    "NoFaceError", "CheckpointError", "NoDefaultModelError", "FRAME_CHOICES", "NO_FACE_MESSAGE", "Frames",
    "frames_from_images", "decode_size", "prepare", "score", "score_tracks", "Prepared", "read_spec",
    "Provenance", "TrustAnchorsError", "load_trust_anchors", "decide", "conformal_fake_cut", "real_cut",
    "threshold_and_band",
]
