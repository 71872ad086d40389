"""Faces: detect (YuNet by default, dlib's HOG on request), track across the sampled frames, judge
which tracks are reliable enough to score, crop.

`crop_face` is the one function that turns a frame and a face box into a model input crop;
training data preparation (prepare.py) and inference both call it, so they cannot drift.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .spec import DETECTORS, CropSpec
from .video import Frames

log = logging.getLogger(__name__)

# YuNet (OpenCV's FaceDetectorYN, MIT; opencv_zoo's face_detection_yunet 2023mar): 8.7 ms per
# 640-px frame on one thread against HOG's 24 ms, and it finds the profile, small and
# partly turned faces HOG misses (hamilton clip: faces in 20 of 20 sampled frames vs 11).
DEFAULT_DETECTOR = "yunet"
YUNET_FILE = Path(__file__).with_name("weights") / "face_detection_yunet.onnx"
YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
YUNET_SCORE = 0.7  # face confidence; opencv_zoo's demo uses 0.9, lower finds small faces, tracks weed out noise
YUNET_NMS = 0.3
YUNET_TOP_K = 500
# Frames are resized so their long side is this many pixels before detection: HOG finds faces
# from ~80 px up and YuNet from ~10 px, so a face filling a tenth of a 720p frame is found
# without searching the full frame (HOG's 1x upsampling costs ~4x the time).
DETECT_LONG_SIDE = 640
# Small frames (thumbnails, 160 px face stills) are enlarged to this long side so their faces
# clear the detector's minimum size.
MIN_DETECT_LONG_SIDE = 320
# A frame where nothing is found is searched again finer: at its own resolution (up to this long
# side) when it is at least twice the detection size, else enlarged 2x (HOG: its 1x upsampling).
FALLBACK_LONG_SIDE = 1920
# When nothing is found in any frame at first sight, this many frames are searched finer before
# the rest are (see detect_faces).
FINE_PROBE_FRAMES = 5
MAX_TRACKS = 3
# A "face" seen in fewer than this fraction of the frames the main face was seen in is most
# likely a detector false positive (a pattern on a shirt); it would only add noise and time.
MIN_TRACK_FRACTION = 0.2
# Which tracks a verdict may rest on (the others are reported, not scored). A face whose boxes are
# smaller than this (median short side, decoded pixels) holds too few pixels to judge: a 112-px
# crop of it is mostly upsampling, which the model reads as manipulation.
MIN_FACE_PX = 48
# A face beside the main (heaviest) one is scored only when it is seen in at least this share of
# the main face's frames and is at least this fraction of its size: a reference-face inset, a
# face on a poster, a passer-by in the background are not what the video is about, and the
# video's verdict must not rest on them.
MIN_SECONDARY_FRAMES = 0.5
MIN_SECONDARY_SIZE = 0.5
NO_FACE_MESSAGE = "No faces detected. Cannot process the video."
SMALL_FACES_MESSAGE = f"Faces were found, but all are too small to judge (under {MIN_FACE_PX} px)."


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
    score: float = field(default=1.0, compare=False)
    # YuNet's 5 landmarks (right eye, left eye, nose tip, mouth corners) as (x, y) frame pixels
    points: tuple[tuple[float, float], ...] | None = field(default=None, compare=False)

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

    @property
    def size(self) -> int:
        """The face's typical size: the median short side of its boxes, in pixels."""
        return int(np.median([min(b.width, b.height) for b in self.boxes.values()]))


def unscored(tracks: list[FaceTrack]) -> list[tuple[str, str] | None]:
    """Per track, (code, words) for why the verdict must not rest on it, or None when it is scored.
    Codes are the API's (evidence.REASONS and evidence.SECONDARY_CODES).

    The main face is the heaviest (size x frames) track that is large enough to judge; other
    tracks are scored only when they are comparable to it (see MIN_SECONDARY_*).
    """
    big = [t for t in tracks if t.size >= MIN_FACE_PX]
    main = max(big, key=lambda t: t.weight) if big else None
    reasons: list[tuple[str, str] | None] = []
    for t in tracks:
        if t.size < MIN_FACE_PX:
            reasons.append(("face_too_small", f"too small to judge ({t.size} px, under {MIN_FACE_PX})"))
        elif t is main:
            reasons.append(None)
        elif len(t.boxes) < MIN_SECONDARY_FRAMES * len(main.boxes):
            reasons.append(("secondary_brief", f"seen in {len(t.boxes)} frames, the main face in {len(main.boxes)}"))
        elif t.size < MIN_SECONDARY_SIZE * main.size:
            reasons.append(("secondary_small", f"much smaller than the main face ({t.size} px vs {main.size})"))
        else:
            reasons.append(None)
    return reasons


def unscored_reasons(tracks: list[FaceTrack]) -> list[str | None]:
    """Per track, in words, why the verdict must not rest on it, or None when it is scored (`unscored`)."""
    return [r[1] if r else None for r in unscored(tracks)]


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


class DetectorError(RuntimeError):
    """The face detector cannot run (its model file is missing or corrupt)."""


def _dlib_model() -> str:
    try:
        import dlib

        return "cnn" if getattr(dlib, "DLIB_USE_CUDA", False) else "hog"
    except ImportError:  # pragma: no cover - dlib is a hard dependency
        return "hog"


_yunet_verified = False
_yunet_lock = threading.Lock()


def _yunet():
    """This thread's YuNet (OpenCV's detector objects keep per-input-size state: one per thread)."""
    global _yunet_verified
    det = getattr(_local, "yunet", None)
    if det is None:
        if not _yunet_verified:
            try:
                digest = hashlib.sha256(YUNET_FILE.read_bytes()).hexdigest()
            except OSError as e:
                raise DetectorError(f"{YUNET_FILE}: the face detector's model file is missing ({e.strerror}).") from e
            if digest != YUNET_SHA256:
                raise DetectorError(f"{YUNET_FILE}: sha256 {digest[:16]}... is not the shipped detector's (corrupt or replaced).")
            _yunet_verified = True
        # OpenCV warns on stderr, at a net's first run, that its new graph engine ignores the
        # (default) target: noise for users. Quietened for that first run only, under a lock, so
        # OpenCV's log level is the caller's again afterwards.
        with _yunet_lock:
            level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
            try:
                det = cv2.FaceDetectorYN.create(str(YUNET_FILE), "", (32, 32), YUNET_SCORE, YUNET_NMS, YUNET_TOP_K)
                det.detect(np.zeros((32, 32, 3), np.uint8))
            finally:
                cv2.utils.logging.setLogLevel(level)
        _local.yunet = det
    return det


_local = threading.local()
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (threads, pool)
_pool_lock = threading.Lock()


def detect_threads() -> int:
    """Threads for face detection: one per core (dlib's HOG and OpenCV release the GIL), at most 8.

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


def _locate_hog(img: np.ndarray, upsample: int) -> list[Box]:
    """Faces as face_recognition.face_locations gives them (HOG, or dlib's CNN when dlib has CUDA)."""
    h, w = img.shape[:2]
    model = _dlib_model()
    if model != "hog":
        locs = face_recognition_api().face_locations(img, number_of_times_to_upsample=upsample, model=model)
        return [Box(*loc) for loc in locs]
    # face_recognition shares one HOG detector; dlib's detectors keep scratch state while they
    # scan, so each detection thread has its own
    detector = getattr(_local, "hog", None)
    if detector is None:
        import dlib

        detector = _local.hog = dlib.get_frontal_face_detector()
    return [Box(max(r.top(), 0), min(r.right(), w), min(r.bottom(), h), max(r.left(), 0)) for r in detector(img, upsample)]


def _locate_yunet(img: np.ndarray) -> list[Box]:
    det = _yunet()
    h, w = img.shape[:2]
    det.setInputSize((w, h))
    _, faces = det.detect(np.ascontiguousarray(img[..., ::-1]))  # YuNet reads BGR
    out = []
    for f in faces if faces is not None else []:
        x, y, bw, bh = (float(v) for v in f[:4])
        points = tuple((float(f[4 + 2 * k]), float(f[5 + 2 * k])) for k in range(5))
        out.append(Box(round(y), round(x + bw), round(y + bh), round(x), float(f[14]), points))
    return out


def _detect_one(img: np.ndarray, long_side: int, detector: str, finer: bool = False) -> list[Box]:
    """Boxes in img's pixels, searching a copy whose long side is `long_side` (HOG: upsampled
    once more when `finer`)."""
    h, w = img.shape[:2]
    scale = min(max(max(h, w), MIN_DETECT_LONG_SIDE), long_side) / max(h, w)
    if abs(scale - 1.0) > 0.05:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
    else:
        small, scale = img, 1.0
    small = np.ascontiguousarray(small)
    found = _locate_yunet(small) if detector == "yunet" else _locate_hog(small, 1 if finer else 0)
    boxes = []
    for b in found:
        box = Box(max(0, round(b.top / scale)), min(w, round(b.right / scale)), min(h, round(b.bottom / scale)),
                  max(0, round(b.left / scale)), b.score,
                  tuple((x / scale, y / scale) for x, y in b.points) if b.points else None)
        if box.width > 1 and box.height > 1:
            boxes.append(box)
    return boxes


def _detect_finer(img: np.ndarray, long_side: int, detector: str) -> list[Box]:
    native = max(img.shape[:2])
    if native >= 2 * long_side:  # a big frame: look at more of its own pixels
        return _detect_one(img, min(native, FALLBACK_LONG_SIDE), detector)
    if detector == "yunet":
        return _detect_one(img, 2 * long_side, detector)
    return _detect_one(img, long_side, detector, finer=True)


def detect_faces(frames: Frames, long_side: int = DETECT_LONG_SIDE, threads: int | None = None,
                 detector: str = DEFAULT_DETECTOR) -> list[list[Box]]:
    """Face boxes per frame, in full-resolution coordinates; frames are searched in parallel.

    A frame where nothing is found at the detection size is searched once more, finer: a frame
    of 1280 px or more at its own resolution (up to 1920 px), a smaller one enlarged 2x (HOG:
    with its 1x upsampling).
    That finds faces down to ~40 px of the detection image (a person further from the camera, a
    street scene, a portrait-format clip); frames with a face found at once never pay for it.
    When no frame at all has a face at first sight, FINE_PROBE_FRAMES frames spread over the clip
    are searched finer first, and the rest only if one of them has a face: a clip without faces
    (common in a feed) costs a quarter of the finer search instead of all of it.
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; known: {', '.join(DETECTORS)}")
    if detector == "hog" and _dlib_model() != "hog":
        threads = 1  # dlib's CNN on a GPU: one stream of work
    else:
        threads = threads or detect_threads()

    def run(fn, imgs: list[np.ndarray]) -> list[list[Box]]:
        if threads == 1 or len(imgs) <= 1:
            return [fn(img) for img in imgs]
        return list(_executor(threads).map(fn, imgs))

    images = frames.images
    out = run(lambda img: _detect_one(img, long_side, detector), images)
    missing = [i for i, boxes in enumerate(out) if not boxes]
    if len(missing) == len(out) > FINE_PROBE_FRAMES:
        probe = sorted({round(k * (len(out) - 1) / (FINE_PROBE_FRAMES - 1)) for k in range(FINE_PROBE_FRAMES)})
        for i, boxes in zip(probe, run(lambda img: _detect_finer(img, long_side, detector), [images[i] for i in probe]), strict=True):
            out[i] = boxes
        if not any(out):
            return out
        missing = [i for i in missing if i not in probe]
    for i, boxes in zip(missing, run(lambda img: _detect_finer(img, long_side, detector), [images[i] for i in missing]), strict=True):
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


def find_faces(frames: Frames, max_tracks: int = MAX_TRACKS,
               detector: str = DEFAULT_DETECTOR) -> tuple[list[list[Box]], list[FaceTrack]]:
    """Detect and track. Raises NoFaceError when no frame has a face."""
    detections = detect_faces(frames, detector=detector)
    if not any(detections):
        raise NoFaceError()
    return detections, track_faces(detections, max_tracks)
