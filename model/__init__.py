"""Deepfake Check's detector: face crops -> CNN features -> LSTM -> REAL/FAKE.

Public API (what the server and the CLI use):
    check(path, frames=20, model=None, ...) -> Verdict
    prepare(path, frames, crop) -> Prepared; score(prepared, loaded) -> Verdict: check's CPU stages
        and its model stage apart (a batch pipeline runs them in different processes);
        score_tracks(loaded, crops): many files' face tracks in batched forward passes
    load_model(name_or_path=None, device=None) -> LoadedModel
    warm_up(loaded): pay one-off start-up costs before the first check (a server calls it once)
    optimise_for_cpu(loaded): trace the network for the CPU (warm_up does it; a batch job may too)
    frames_from_images(images, times, source_size=None) -> Frames: captured frames for check()
    decode_size(width, height, n): the size n frames of a source are held at (decode them that small)
    read_spec(name_or_path): a model's spec (crop size, detector) without loading it
    available_models(), Verdict, MediaError, NoFaceError, CheckpointError
    load_trust_anchors(path) -> PEM text for check(trust_anchors=...); Provenance, TrustAnchorsError
    decide(p_fake, threshold, band) -> (verdict, confidence): the verdict rule, for cuts other than the model's
    conformal_fake_cut, real_cut, threshold_and_band: the calibration's cuts (model/calibration.py), for a
        user's personal calibration
"""
import importlib
import sys
import types

# Public names -> the module that holds them. Imported on first use (PEP 562), so that the light parts
# (the verdict rule, the calibration's cuts: numpy only) can be used by a process that must never load
# torch, such as the server's listening process.
_WHERE = {
    "conformal_fake_cut": "calibration", "real_cut": "calibration", "threshold_and_band": "calibration",
    "Prepared": "check", "check": "check", "prepare": "check", "score": "check", "score_tracks": "check",
    "warm_up": "check", "optimise_for_cpu": "check", "NO_FACE_MESSAGE": "faces", "NoFaceError": "faces", "Provenance": "provenance",
    "TrustAnchorsError": "provenance", "load_trust_anchors": "provenance", "VERDICTS": "verdict",
    "Verdict": "verdict", "decide": "verdict", "FRAME_CHOICES": "video", "Frames": "video",
    "MediaError": "video", "decode_size": "video", "frames_from_images": "video", "CheckpointError": "weights",
    "LoadedModel": "weights", "NoDefaultModelError": "weights", "available_models": "weights",
    "load_model": "weights", "read_spec": "weights",
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_WHERE))


class _Package(types.ModuleType):
    """`model.check` is the function, never the submodule of the same name: importing a submodule makes
    it an attribute of its package, which would shadow the lazily bound function."""

    def __setattr__(self, name: str, value) -> None:
        if name == "check" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "check", "warm_up", "optimise_for_cpu", "load_model", "available_models", "LoadedModel", "Verdict", "VERDICTS", "MediaError",
    "NoFaceError", "CheckpointError", "NoDefaultModelError", "FRAME_CHOICES", "NO_FACE_MESSAGE", "Frames",
    "frames_from_images", "decode_size", "prepare", "score", "score_tracks", "Prepared", "read_spec",
    "Provenance", "TrustAnchorsError", "load_trust_anchors", "decide", "conformal_fake_cut", "real_cut",
    "threshold_and_band",
]
