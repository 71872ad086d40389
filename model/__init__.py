"""Deepfake Check's detector: face crops -> CNN features -> LSTM -> REAL/FAKE.

Public API (what the server and the CLI use):
    check(path, frames=20, model=None, ...) -> Verdict
    load_model(name_or_path=None, device=None) -> LoadedModel
    warm_up(loaded): pay one-off start-up costs before the first check (a server calls it once)
    available_models(), Verdict, MediaError, NoFaceError, CheckpointError
"""
from .check import check, warm_up
from .faces import NO_FACE_MESSAGE, NoFaceError
from .verdict import VERDICTS, Verdict
from .video import FRAME_CHOICES, MediaError
from .weights import CheckpointError, LoadedModel, NoDefaultModelError, available_models, load_model

__all__ = [
    "check", "warm_up", "load_model", "available_models", "LoadedModel", "Verdict", "VERDICTS", "MediaError",
    "NoFaceError", "CheckpointError", "NoDefaultModelError", "FRAME_CHOICES", "NO_FACE_MESSAGE",
]
