"""Training, data preparation and evaluation of Deepfake Check's detector.

Imports the inference core (`model`) and never the reverse: nothing a user's check runs lives here.
    python -m model.training.prepare   face-crop caches, made with the inference path's own detector and crop
    python -m model.training.train     training runs (resumable, seeded)
    python -m model.training.evaluate  metrics on caches or on folders of files
"""


class TrainingError(ValueError):
    """Training input that cannot be used (mismatched caches, no real clips, a bad option).

    Raised by the library functions; the CLIs print the message and exit with status 2."""
