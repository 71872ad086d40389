"""Faces: detect with face_recognition (dlib), track across the sampled frames, crop.

`crop_face` is the one function that turns a frame and a face box into a model input crop;
training data preparation (prepare.py) and inference both call it, so they cannot drift.
"""
from __future__ import annotations

import logging
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from .spec import CropSpec
from .video import Frames

log = logging.getLogger(__name__)

# Frames are resized so their long side is this many pixels before detection: dlib's HOG
# detector finds faces from ~80 px up, so a face filling a tenth of a 720p frame is found
# without upsampling the full frame (upsampling 1x costs ~4x the time).
DETECT_LONG_SIDE = 640
# Small frames (thumbnails, 160 px face stills) are enlarged to this long side so their faces
# clear the detector's minimum size.
MIN_DETECT_LONG_SIDE = 320
# A frame where nothing is found is searched again finer: at its own resolution (up to this long
# side) when it is at least twice the detection size, else with dlib's 1x upsampling.
FALLBACK_LONG_SIDE = 1920
# When nothing is found in any frame at first sight, this many frames are searched finer before
# the rest are (see detect_faces).
FINE_PROBE_FRAMES = 5
MAX_TRACKS = 3
# A "face" seen in fewer than this fraction of the frames the main face was seen in is most
# likely a detector false positive (a pattern on a shirt); it would only add noise and time.
MIN_TRACK_FRACTION = 0.2
NO_FACE_MESSAGE = "No faces detected. Cannot process the video."


class NoFaceError(Exception):
    """No face anywhere in the sampled frames."""

    def __init__(self, message: str = NO_FACE_MESSAGE):
        super().__init__(message)


@dataclass(frozen=True)
class Box:
    """A face box in full-resolution frame pixels (face_recognition's order)."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)

    def iou(self, other: Box) -> float:
        t, b = max(self.top, other.top), min(self.bottom, other.bottom)
        l, r = max(self.left, other.left), min(self.right, other.right)
        inter = max(0, b - t) * max(0, r - l)
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    def as_list(self) -> list[int]:
        """[x, y, w, h] for JSON consumers (drawing boxes over a video)."""
        return [self.left, self.top, self.width, self.height]


@dataclass
class FaceTrack:
    """One face followed across sampled frames: frame index -> box."""

    boxes: dict[int, Box] = field(default_factory=dict)

    @property
    def last(self) -> Box:
        return self.boxes[max(self.boxes)]

    @property
    def weight(self) -> float:
        # size x persistence: a big face seen often beats a small face seen once
        return float(sum(b.area for b in self.boxes.values()))


@dataclass
class FaceCrops:
    """Crops (T, size, size, 3) RGB uint8 for one track, with the frame indices they came from."""

    track: FaceTrack
    frame_indices: list[int]
    crops: np.ndarray


def face_recognition_api():
    """The face_recognition package, imported without its start-up warning: face_recognition_models
    imports pkg_resources, which warns on every start (the setuptools<81 pin keeps it working, so
    the warning is noise). Filtered here, at the one import that needs it, not process-wide."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import face_recognition
    return face_recognition


def _detector_model() -> str:
    try:
        import dlib

        return "cnn" if getattr(dlib, "DLIB_USE_CUDA", False) else "hog"
    except ImportError:  # pragma: no cover - dlib is a hard dependency
        return "hog"


_local = threading.local()
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (threads, pool)
_pool_lock = threading.Lock()


def detect_threads() -> int:
    """Threads for face detection: one per core (dlib's HOG releases the GIL), at most 8.

    DEEPFAKE_CHECK_DETECT_THREADS overrides it (1 = detect in the calling thread).
    """
    env = os.environ.get("DEEPFAKE_CHECK_DETECT_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != threads:
            _pool = (threads, ThreadPoolExecutor(threads, thread_name_prefix="detect"))
        return _pool[1]


def _locate(img: np.ndarray, upsample: int, model: str) -> list[tuple[int, int, int, int]]:
    """(top, right, bottom, left) of each face, as face_recognition.face_locations gives them."""
    if model != "hog":
        return face_recognition_api().face_locations(img, number_of_times_to_upsample=upsample, model=model)
    # face_recognition shares one HOG detector; dlib's detectors keep scratch state while they
    # scan, so each detection thread has its own
    detector = getattr(_local, "hog", None)
    if detector is None:
        import dlib

        detector = _local.hog = dlib.get_frontal_face_detector()
    h, w = img.shape[:2]
    return [(max(r.top(), 0), min(r.right(), w), min(r.bottom(), h), max(r.left(), 0)) for r in detector(img, upsample)]


def _detect_one(img: np.ndarray, upsample: int, long_side: int, model: str) -> list[Box]:
    h, w = img.shape[:2]
    scale = min(max(max(h, w), MIN_DETECT_LONG_SIDE), long_side) / max(h, w)
    if abs(scale - 1.0) > 0.05:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
    else:
        small, scale = img, 1.0
    boxes = []
    for top, right, bottom, left in _locate(np.ascontiguousarray(small), upsample, model):
        box = Box(max(0, round(top / scale)), min(w, round(right / scale)), min(h, round(bottom / scale)), max(0, round(left / scale)))
        if box.width > 1 and box.height > 1:
            boxes.append(box)
    return boxes


def _detect_finer(img: np.ndarray, long_side: int, model: str) -> list[Box]:
    native = max(img.shape[:2])
    if native >= 2 * long_side:  # a big frame: look at more of its own pixels
        return _detect_one(img, 0, min(native, FALLBACK_LONG_SIDE), model)
    return _detect_one(img, 1, long_side, model)


def detect_faces(frames: Frames, upsample: int = 0, long_side: int = DETECT_LONG_SIDE, threads: int | None = None) -> list[list[Box]]:
    """Face boxes per frame, in full-resolution coordinates; frames are searched in parallel.

    A frame where nothing is found at the detection size is searched once more, finer: a frame
    of 1280 px or more at its own resolution (up to 1920 px), a smaller one with 1x upsampling.
    That finds faces down to ~40 px of the detection image (a person further from the camera, a
    street scene, a portrait-format clip); frames with a face found at once never pay for it.
    When no frame at all has a face at first sight, FINE_PROBE_FRAMES frames spread over the clip
    are searched finer first, and the rest only if one of them has a face: a clip without faces
    (common in a feed) costs a quarter of the finer search instead of all of it.
    """
    model = _detector_model()
    threads = 1 if model != "hog" else (threads or detect_threads())

    def run(fn, imgs: list[np.ndarray]) -> list[list[Box]]:
        if threads == 1 or len(imgs) <= 1:
            return [fn(img) for img in imgs]
        return list(_executor(threads).map(fn, imgs))

    images = frames.images
    out = run(lambda img: _detect_one(img, upsample, long_side, model), images)
    if upsample:
        return out
    missing = [i for i, boxes in enumerate(out) if not boxes]
    if len(missing) == len(out) > FINE_PROBE_FRAMES:
        probe = sorted({round(k * (len(out) - 1) / (FINE_PROBE_FRAMES - 1)) for k in range(FINE_PROBE_FRAMES)})
        for i, boxes in zip(probe, run(lambda img: _detect_finer(img, long_side, model), [images[i] for i in probe]), strict=True):
            out[i] = boxes
        if not any(out):
            return out
        missing = [i for i in missing if i not in probe]
    for i, boxes in zip(missing, run(lambda img: _detect_finer(img, long_side, model), [images[i] for i in missing]), strict=True):
        out[i] = boxes
    return out


def _match_cost(track_box: Box, box: Box) -> float | None:
    """Lower is better; None when the two boxes cannot be the same face.

    Sampled frames can be a second or more apart, so plain overlap is too strict: a box also
    continues a track when its centre moved less than one face width and its size is similar.
    """
    iou = track_box.iou(box)
    if iou >= 0.2:
        return 1.0 - iou
    (cx, cy), (nx, ny) = track_box.centre, box.centre
    size = max(track_box.width, track_box.height, 1)
    dist = np.hypot(cx - nx, cy - ny) / size
    ratio = max(box.area, 1) / max(track_box.area, 1)
    if dist < 1.0 and 0.5 <= ratio <= 2.0:
        return 1.0 + dist
    return None


def track_faces(detections: list[list[Box]], max_tracks: int = MAX_TRACKS) -> list[FaceTrack]:
    """Greedy frame-to-frame association; returns up to max_tracks tracks, biggest first."""
    tracks: list[FaceTrack] = []
    for fi, boxes in enumerate(detections):
        pairs = []
        for ti, tr in enumerate(tracks):
            for bi, box in enumerate(boxes):
                c = _match_cost(tr.last, box)
                if c is not None:
                    pairs.append((c, ti, bi))
        used_t, used_b = set(), set()
        for _, ti, bi in sorted(pairs):
            if ti in used_t or bi in used_b:
                continue
            tracks[ti].boxes[fi] = boxes[bi]
            used_t.add(ti)
            used_b.add(bi)
        for bi, box in enumerate(boxes):
            if bi not in used_b:
                tracks.append(FaceTrack({fi: box}))
    if not tracks:
        return []
    longest = max(len(t.boxes) for t in tracks)
    tracks = [t for t in tracks if len(t.boxes) >= MIN_TRACK_FRACTION * longest]
    tracks.sort(key=lambda t: t.weight, reverse=True)
    return tracks[:max_tracks]


def crop_window(box: Box, spec: CropSpec) -> tuple[float, float, float, float]:
    """(x0, y0, width, height) of the region `crop_face` takes, in frame pixels (may overhang)."""
    if spec.square:
        cx, cy = box.centre
        side = max(box.width, box.height) * (1 + 2 * spec.margin)
        return cx - side / 2, cy - side / 2, side, side
    return float(box.left), float(box.top), float(box.width), float(box.height)


def crop_points(points: np.ndarray, box: Box, spec: CropSpec) -> np.ndarray:
    """Map (x, y) frame coordinates (e.g. landmarks) into the crop's coordinates."""
    x0, y0, cw, ch = crop_window(box, spec)
    return (points - np.array([x0, y0], np.float32)) * np.array([spec.size / cw, spec.size / ch], np.float32)


def crop_face(image: np.ndarray, box: Box, spec: CropSpec) -> np.ndarray:
    """The model-input crop of one face: RGB uint8 (size, size, 3).

    Square crops take `margin` of context around the box and pad with reflected pixels at the
    frame's edge, so a face near the border is not squashed. The legacy crop is the tight box
    resized to size x size, as the original project trained on.
    """
    h, w = image.shape[:2]
    x0f, y0f, cw, ch = crop_window(box, spec)
    x0, y0 = int(round(x0f)), int(round(y0f))
    x1, y1 = int(round(x0f + cw)), int(round(y0f + ch))
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    crop = image[y0:y1, x0:x1]
    if crop.size == 0:
        raise ValueError(f"empty crop for {box}")
    ch_, cw_ = crop.shape[:2]
    interp = cv2.INTER_AREA if ch_ > spec.size or cw_ > spec.size else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(crop, (spec.size, spec.size), interpolation=interp))


def crop_tracks(frames: Frames, tracks: list[FaceTrack], spec: CropSpec) -> list[FaceCrops]:
    out = []
    for tr in tracks:
        idx = sorted(tr.boxes)
        crops = np.stack([crop_face(frames.images[i], tr.boxes[i], spec) for i in idx])
        out.append(FaceCrops(tr, idx, crops))
    return out


def find_faces(frames: Frames, max_tracks: int = MAX_TRACKS) -> tuple[list[list[Box]], list[FaceTrack]]:
    """Detect and track. Raises NoFaceError when no frame has a face."""
    detections = detect_faces(frames)
    if not any(detections):
        raise NoFaceError()
    return detections, track_faces(detections, max_tracks)
