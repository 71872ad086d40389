"""Deepfake Check's detector: face crops -> CNN features -> LSTM -> REAL/FAKE.

Public API (what the server and the CLI use):
    check(path, frames=20, model=None, ...) -> Verdict
    load_model(name_or_path=None, device=None) -> LoadedModel
    available_models(), Verdict, MediaError, NoFaceError, CheckpointError
"""
import warnings

# face_recognition_models imports pkg_resources, which warns on every start; the pin to
# setuptools<81 (requirements.txt) keeps it working, so the warning is noise for users.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

from .check import check  # noqa: E402
from .faces import NO_FACE_MESSAGE, NoFaceError  # noqa: E402
from .verdict import VERDICTS, Verdict  # noqa: E402
from .video import FRAME_CHOICES, MediaError  # noqa: E402
from .weights import CheckpointError, NoDefaultModelError, available_models, load_model  # noqa: E402

__all__ = [
    "check", "load_model", "available_models", "Verdict", "VERDICTS", "MediaError", "NoFaceError",
    "CheckpointError", "NoDefaultModelError", "FRAME_CHOICES", "NO_FACE_MESSAGE",
]
