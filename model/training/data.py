"""Training data: splits by identity/clip, clip sampling, self-blended fakes, augmentation.

Works on prepared caches (prepare.py). Labels here: 1 = fake, 0 = real; the network's class
order (index 0 = FAKE) is applied only where logits meet labels (train.py, evaluate.py).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

from .blend import sample_params, self_blend
from .prepare import Cache

SPLITS = ("train", "val", "test")


def split_of(group: str, fractions: tuple[float, float, float], salt: str = "deepfake-check") -> str:
    """Deterministic split of a group (identity or source clip): never frames of one on two sides."""
    h = int(hashlib.sha256(f"{salt}:{group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    train, val, _ = fractions
    if h < train:
        return "train"
    return "val" if h < train + val else "test"


@dataclass
class Clip:
    """Frames of one source (a video's track, or one still) with landmarks and a label."""

    frames: np.ndarray  # (T, S, S, 3) uint8 RGB
    landmarks: np.ndarray  # (T, 68, 2)
    label: int
    group: str
    source: str


def clips_from_cache(cache: Cache, source: str, fractions: tuple[float, float, float], group_frames: bool) -> dict[str, list[Clip]]:
    """Clips per split. With group_frames, stills named <video>_<frame> become one clip per video."""
    out: dict[str, list[Clip]] = {s: [] for s in SPLITS}
    if group_frames:
        by_group: dict[tuple[str, int], list[int]] = {}
        for i, rec in enumerate(cache.records):
            by_group.setdefault((rec["group"], rec["label"]), []).append(i)
        for (group, label), idx in sorted(by_group.items()):
            idx.sort(key=lambda i: cache.records[i]["frame_no"])
            frames = np.concatenate([cache.crops[i][:1] for i in idx])
            lms = np.concatenate([cache.landmarks[i][:1] for i in idx])
            out[split_of(group, fractions)].append(Clip(frames, lms, label, group, source))
    else:
        for i, rec in enumerate(cache.records):
            out[split_of(rec["group"], fractions)].append(
                Clip(cache.crops[i], cache.landmarks[i], rec["label"], rec["group"], source))
    return out


@dataclass(frozen=True)
class Augment:
    """Per-clip augmentation: what a re-uploaded social-media clip goes through."""

    jpeg: tuple[int, int] = (40, 100)
    p_jpeg: float = 0.8
    downscale: tuple[float, float] = (0.5, 1.0)
    p_downscale: float = 0.3
    jitter: float = 0.1  # brightness/contrast/saturation amplitude
    p_flip: float = 0.5
    shift_px: int = 2  # per-frame wobble for sequences made from one still


def augment_clip(frames: list[np.ndarray], rng: np.random.Generator, aug: Augment) -> list[np.ndarray]:
    """The same photometric changes for every frame (one clip, one encoder), a small per-frame wobble."""
    flip = rng.random() < aug.p_flip
    q = int(rng.integers(aug.jpeg[0], aug.jpeg[1] + 1)) if rng.random() < aug.p_jpeg else None
    ds = float(rng.uniform(*aug.downscale)) if rng.random() < aug.p_downscale else None
    b, c, s = (1 + rng.uniform(-aug.jitter, aug.jitter, 3)).tolist()
    out = []
    for img in frames:
        x = img[:, ::-1] if flip else img
        x = x.astype(np.float32)
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * s
        x = (x - 128) * c + 128
        x = np.clip(x * b, 0, 255).astype(np.uint8)
        h, w = x.shape[:2]
        if ds is not None:
            small = cv2.resize(x, (max(8, int(w * ds)), max(8, int(h * ds))), interpolation=cv2.INTER_AREA)
            x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        if q is not None:
            ok, buf = cv2.imencode(".jpg", x[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
            x = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        out.append(np.ascontiguousarray(x))
    return out


def wobble(img: np.ndarray, rng: np.random.Generator, px: int) -> np.ndarray:
    if px <= 0:
        return img
    dx, dy = rng.integers(-px, px + 1, 2)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT_101)


def take_frames(clip: Clip, t: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """t consecutive-in-order frames of a clip; a still is repeated with a small wobble."""
    n = len(clip.frames)
    if n == 1:
        base, lm = clip.frames[0], clip.landmarks[0]
        return [base] + [wobble(base, rng, 2) for _ in range(t - 1)], [lm] * t
    if n >= t:
        start = int(rng.integers(0, n - t + 1))
        idx = list(range(start, start + t))
    else:
        idx = sorted(rng.integers(0, n, t).tolist())
    return [clip.frames[i] for i in idx], [clip.landmarks[i] for i in idx]


def make_sample(clip: Clip, t: int, rng: np.random.Generator, aug: Augment | None, blend: bool) -> tuple[np.ndarray, int]:
    """(T, S, S, 3) uint8 frames and label; `blend` turns a real clip into a self-blended fake."""
    frames, lms = take_frames(clip, t, rng)
    label = clip.label
    if blend:
        p = sample_params(rng)  # one swap for the whole clip
        frames = [self_blend(f, lm, p)[0] for f, lm in zip(frames, lms, strict=True)]
        label = 1
    if aug is not None:
        frames = augment_clip(frames, rng, aug)
    return np.stack(frames), label
