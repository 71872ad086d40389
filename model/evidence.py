"""Is there enough evidence to judge a face? Quality measures of a face track and the cuts below which a
check says "can't judge" (UNCERTAIN with a reason) instead of guessing.

A detector trained on sharp, lit, frontal faces reads a tiny, dark, blurred, turned or covered face as
noise, and noise often looks "manipulated" to it: that is where false alarms on real people come from.
Each measure here is cheap and computed from what the pipeline already has (the decoded frames, the
face boxes, YuNet's five landmarks and confidence, the stream's size). The cuts come from data, per
model: `python -m model.training.abstain` measures how a model's AUC and its real clips' FAKE rate change
along each measure and stores where the model stops being better than chance in the checkpoint's
calibration (`abstain`); `DEFAULT_CUTS` hold for a model without them.

Reason codes are a stable API (server/openapi.json): add new ones, never rename.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

# reason code -> (what is wrong, what would help): the sentence a result carries (`reason_text`)
REASONS: dict[str, tuple[str, str]] = {
    "face_too_small": ("The face is too small to judge.", "A larger or sharper copy of this video may work."),
    "face_in_profile": ("The face is turned away from the camera most of the time.",
                        "A part where the person faces the camera may work."),
    "too_blurred": ("The face is too blurred to judge.", "A sharper copy of this video may work."),
    "too_dark": ("The face is too dark to judge.", "A brighter copy of this video may work."),
    "few_face_frames": ("A face is visible in too few frames to judge.",
                        "A longer part where the face stays in view may work."),
    "heavy_compression": ("The video is too heavily compressed to judge.",
                          "A higher-quality copy of this video may work."),
    "face_covered": ("The face is covered or hidden most of the time.",
                     "A part where the whole face is visible may work."),
}
# codes for faces that are found but not scored for another reason than their quality (faces.py)
SECONDARY_CODES = ("secondary_brief", "secondary_small")
CODES = tuple(REASONS)


def reason_text(code: str) -> str:
    what, helps = REASONS[code]
    return f"{what} {helps}"


@dataclass
class TrackEvidence:
    """How good one face track is as evidence. None where the measure does not apply (no landmarks
    with dlib's HOG, no stream size for captured frames)."""

    face_px: float  # median short side of the face box, decoded pixels
    face_frames: float  # share of the analysed frames the face is seen in
    yaw: float | None  # median |nose - eye midpoint| / eye distance (0 frontal, ~0.3 at 45 deg, ~0.55 at 60 deg)
    sharpness: float  # median variance of the Laplacian of the face (grey, 112 px)
    brightness: float  # median mean luma of the face (0-255)
    detector_score: float | None  # median face confidence (YuNet): low when the face is covered
    bits_per_pixel: float | None  # the video stream's bits per pixel per frame

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Cuts:
    """Below (or for yaw, above) these a face cannot be judged. Order = the order reasons are checked:
    the first that fails is the one reported."""

    min_face_px: float = 48.0
    min_face_frames: float = 0.0
    max_yaw: float | None = None
    min_sharpness: float | None = None
    min_brightness: float | None = None
    min_detector_score: float | None = None
    min_bits_per_pixel: float | None = None

    @classmethod
    def from_dict(cls, d: dict | None) -> Cuts:
        if not d:
            return DEFAULT_CUTS
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)


# A model without measured cuts gets only the size rule the pipeline always had (faces.MIN_FACE_PX).
DEFAULT_CUTS = Cuts()


def judge(ev: TrackEvidence, cuts: Cuts) -> str | None:
    """The reason code this face cannot be judged for, or None when it can."""
    if ev.face_px < cuts.min_face_px:
        return "face_too_small"
    if ev.bits_per_pixel is not None and cuts.min_bits_per_pixel is not None and ev.bits_per_pixel < cuts.min_bits_per_pixel:
        return "heavy_compression"
    if cuts.min_brightness is not None and ev.brightness < cuts.min_brightness:
        return "too_dark"
    if cuts.min_sharpness is not None and ev.sharpness < cuts.min_sharpness:
        return "too_blurred"
    if ev.yaw is not None and cuts.max_yaw is not None and ev.yaw > cuts.max_yaw:
        return "face_in_profile"
    if ev.detector_score is not None and cuts.min_detector_score is not None and ev.detector_score < cuts.min_detector_score:
        return "face_covered"
    if ev.face_frames < cuts.min_face_frames:
        return "few_face_frames"
    return None


# ---- the measures --------------------------------------------------------------------------------------
MEASURE_SIZE = 112  # the face is measured at one size, so sharpness compares across resolutions


def yaw_ratio(points) -> float | None:
    """|nose tip - eye midpoint| / eye distance, from YuNet's five points (right eye, left eye, nose
    tip, mouth corners): 0 for a frontal face, growing as it turns (about 0.31 x tan(yaw))."""
    if points is None or len(points) < 3:
        return None
    (rx, ry), (lx, ly), (nx, ny) = points[0], points[1], points[2]
    eye = float(np.hypot(lx - rx, ly - ry))
    if eye < 1e-3:
        return 10.0  # both eyes at one point: a full profile
    # the nose's offset along the eye line, in eye distances
    ux, uy = (lx - rx) / eye, (ly - ry) / eye
    mx, my = (lx + rx) / 2, (ly + ry) / 2
    return abs((nx - mx) * ux + (ny - my) * uy) / eye


def face_patch(image: np.ndarray, box) -> np.ndarray | None:
    """The face box (no margin), grey, resized to MEASURE_SIZE."""
    h, w = image.shape[:2]
    x0, y0 = max(0, int(box.left)), max(0, int(box.top))
    x1, y1 = min(w, int(box.right)), min(h, int(box.bottom))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    interp = cv2.INTER_AREA if max(grey.shape) > MEASURE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(grey, (MEASURE_SIZE, MEASURE_SIZE), interpolation=interp)


def measure(images: list[np.ndarray], boxes: dict, frames_analysed: int, bits_per_pixel: float | None) -> TrackEvidence:
    """A track's evidence from its boxes (frame index -> faces.Box) over the decoded frames."""
    sharp, bright, yaws, scores = [], [], [], []
    for i, b in boxes.items():
        patch = face_patch(images[i], b)
        if patch is not None:
            sharp.append(float(cv2.Laplacian(patch, cv2.CV_64F).var()))
            bright.append(float(patch.mean()))
        y = yaw_ratio(b.points)
        if y is not None:
            yaws.append(y)
        if b.points is not None:  # YuNet's boxes carry points and a real confidence
            scores.append(float(b.score))
    size = float(np.median([min(b.width, b.height) for b in boxes.values()]))
    return TrackEvidence(
        face_px=size,
        face_frames=len(boxes) / max(1, frames_analysed),
        yaw=float(np.median(yaws)) if yaws else None,
        sharpness=float(np.median(sharp)) if sharp else 0.0,
        brightness=float(np.median(bright)) if bright else 0.0,
        detector_score=float(np.median(scores)) if scores else None,
        bits_per_pixel=bits_per_pixel,
    )
