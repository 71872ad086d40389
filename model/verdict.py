"""Scores -> verdict: per-face results, the video's P(fake), REAL / FAKE / UNCERTAIN with a confidence."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .provenance import Provenance

DEFAULT_THRESHOLD = 0.5
# p(fake) within this distance of the threshold is reported as UNCERTAIN rather than a
# confident-looking call on a coin flip.
DEFAULT_UNCERTAIN_BAND = 0.1
VERDICTS = ("REAL", "FAKE", "UNCERTAIN", "NO_FACE", "ERROR")
SIGNALS = ("blend", "generation")


@dataclass
class FaceResult:
    """One tracked face: its P(fake) and where it was seen."""

    p_fake: float
    frames: int
    boxes: list[dict] = field(default_factory=list)  # [{"t": seconds, "box": [x, y, w, h]}]
    evidence: dict | None = None  # evidence.TrackEvidence: how good the face is as evidence
    # a two-head model: each head's calibrated P(fake) ({"blend": ..., "generation": ...}); p_fake is the larger
    signals: dict[str, float] | None = None


@dataclass
class UnscoredFace:
    """A face that was found but that the verdict does not rest on, and why (too small, a brief or
    small secondary face such as an inset or a passer-by)."""

    frames: int
    size_px: int
    reason: str
    boxes: list[dict] = field(default_factory=list)
    # a stable code for the reason (evidence.REASONS, evidence.SECONDARY_CODES)
    code: str | None = None
    evidence: dict | None = None


@dataclass
class Verdict:
    """The result of checking one file. Field names are the CLI/API contract: keep them stable."""

    file: str
    verdict: str
    p_fake: float | None = None
    confidence: float | None = None
    faces: list[FaceResult] = field(default_factory=list)
    faces_not_scored: list[UnscoredFace] = field(default_factory=list)
    frames_analysed: int = 0
    frames_with_face: int = 0
    model: str | None = None
    mode: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    uncertain_band: float = DEFAULT_UNCERTAIN_BAND
    width: int = 0
    height: int = 0
    duration: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    # why a check could not judge (verdict UNCERTAIN, p_fake None): a stable code (evidence.REASONS) and
    # a sentence with what would help
    reason: str | None = None
    reason_text: str | None = None
    # the file's Content Credentials (C2PA): None when it has none, and for captured frames
    provenance: Provenance | None = None
    # a two-head model (SIGNALS): the deciding face's calibrated P(fake) per head, and the head that
    # gave the verdict's score ("blend": traces of a face blended or swapped in; "generation": of a
    # face generated or re-rendered, as talking-head and portrait-animation tools do). None otherwise.
    signals: dict[str, float] | None = None
    signal: str | None = None
    heatmap_png: bytes | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("heatmap_png")
        return d


def decide(p_fake: float, threshold: float = DEFAULT_THRESHOLD, band: float = DEFAULT_UNCERTAIN_BAND) -> tuple[str, float]:
    """(verdict, confidence). Confidence is the probability of the stated side.

    For UNCERTAIN it is the probability of the side it leans to, which is by construction
    below threshold + band.
    """
    if not 0.0 <= p_fake <= 1.0:
        raise ValueError(f"p_fake out of range: {p_fake}")
    if abs(p_fake - threshold) < band - 1e-9:  # the band edge itself is a confident call
        return "UNCERTAIN", max(p_fake, 1.0 - p_fake)
    if p_fake >= threshold:
        return "FAKE", p_fake
    return "REAL", 1.0 - p_fake


def video_p_fake(track_p_fakes: list[float]) -> float:
    """A video is as suspicious as its most suspicious scored face (one swapped face makes it fake);
    only faces the verdict can rest on are scored (faces.unscored_reasons)."""
    return max(track_p_fakes)
