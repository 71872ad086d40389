"""Copies of a decoded clip the way it reaches people, and with one defect at a time.

- `platform` and `webcam`: what feeds and calls do to a real video (H.264 at CRF 23-35, 360-720p, a
  webcam's noise and low light). The verdict cuts are fitted on the calibration reals as they are *and*
  as these copies (`model.training.calibrate`), because a cut that holds only on pristine clips does not
  hold in a feed.
- `degrade(frames, defect, level)`: one quality defect at a graded strength (a smaller face, darker,
  blurred, compressed harder, covered), for measuring where a model stops being better than chance
  (`model.training.abstain`).

Everything works on `model.video.Frames` in memory: the pipeline takes them as they are (`check(frames)`),
so a clip is decoded once for all its copies. A re-encoded copy carries its new bits per pixel.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from model.faces import find_faces
from model.video import Frames

from .data import h264_roundtrip


def _even(x: int) -> int:
    return max(2, int(round(x / 2)) * 2)


def resize_frames(frames: Frames, long_side: int) -> Frames:
    """The clip scaled so its long side is `long_side` (never enlarged), as a platform serves it."""
    h, w = frames.images[0].shape[:2]
    s = min(1.0, long_side / max(h, w))
    if s >= 1.0:
        return frames
    size = (_even(w * s), _even(h * s))
    imgs = [cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in frames.images]
    return replace(frames, images=imgs, scale=frames.scale * size[0] / w, extra=dict(frames.extra))


def reencode(frames: Frames, crf: int) -> Frames:
    """An H.264 round trip of each sampled frame (they are seconds apart: what a platform's encoder
    does to one picture). The copy's stream size is unknown (a real stream's inter frames cost far
    less than these pictures), so it carries no bits per pixel: the compression measure is left out."""
    imgs = [np.ascontiguousarray(im[: im.shape[0] // 2 * 2, : im.shape[1] // 2 * 2]) for im in frames.images]
    out = [h264_roundtrip([im], crf)[0] for im in imgs]
    extra = {k: v for k, v in frames.extra.items() if k != "bits_per_pixel"}
    return replace(frames, images=out, extra=extra)


def reencode_file(src: str, dst: str, crf: int, max_seconds: float = 6.0) -> None:
    """The first `max_seconds` of a video re-encoded as a real H.264 stream at CRF `crf` (every frame,
    so its bits per pixel are a real stream's)."""
    import av

    with av.open(src) as inp, av.open(dst, "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        rate = vin.average_rate or 25
        vout = None
        for frame in inp.decode(vin):
            if frame.time is not None and frame.time > max_seconds:
                break
            if vout is None:
                vout = out.add_stream("libx264", rate=rate)
                vout.width, vout.height = frame.width // 2 * 2, frame.height // 2 * 2
                vout.pix_fmt = "yuv420p"
                vout.options = {"preset": "veryfast", "crf": str(crf)}
            img = frame.to_ndarray(format="rgb24")[: vout.height, : vout.width]
            for packet in vout.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        if vout is not None:
            for packet in vout.encode():
                out.mux(packet)


def add_noise(frames: Frames, sigma: float, gamma: float, rng: np.random.Generator) -> Frames:
    """Sensor noise (per frame) and darker midtones: a webcam in a dim room."""
    out = []
    for im in frames.images:
        x = 255.0 * (im.astype(np.float32) / 255.0) ** gamma
        x = x + rng.normal(0, sigma, x.shape).astype(np.float32)
        out.append(np.clip(x, 0, 255).astype(np.uint8))
    return replace(frames, images=out, extra=dict(frames.extra))


def platform(frames: Frames, rng: np.random.Generator) -> Frames:
    """A feed's copy: 360-720p, H.264 at CRF 23-35."""
    long_side = int(rng.choice([640, 854, 1280]))
    return reencode(resize_frames(frames, long_side), int(rng.integers(23, 36)))


def webcam(frames: Frames, rng: np.random.Generator) -> Frames:
    """A webcam stream: 480-720p, noise, low light, H.264 at CRF 26-35."""
    f = resize_frames(frames, int(rng.choice([640, 1280])))
    f = add_noise(f, float(rng.uniform(3, 8)), float(rng.uniform(1.2, 1.8)), rng)
    return reencode(f, int(rng.integers(26, 36)))


VARIANTS = {"platform": platform, "webcam": webcam}


# ---- one defect at a time ----------------------------------------------------------------------------------
DEFECTS = ("small", "dark", "blur", "compress", "cover")


def _main_face_px(frames: Frames) -> float | None:
    try:
        _, tracks = find_faces(frames)
    except Exception:
        return None
    return float(tracks[0].size) if tracks else None


def degrade(frames: Frames, defect: str, level: float, rng: np.random.Generator) -> Frames | None:
    """The clip with one defect at `level`:
    - small: the clip scaled so the main face is `level` px (None when it is already smaller);
    - dark: each pixel times `level` (0-1) with darker midtones, and a little noise, as a dim scene;
    - blur: a Gaussian blur of sigma `level` px *of the face at 112 px*, so it is the same for every size;
    - cover: the lower `level` share of each face box covered by a flat patch (a hand, a mask)."""
    if defect == "small":
        size = _main_face_px(frames)
        if size is None or size <= level:
            return None
        h, w = frames.images[0].shape[:2]
        s = level / size
        dims = (_even(w * s), _even(h * s))
        imgs = [cv2.resize(im, dims, interpolation=cv2.INTER_AREA) for im in frames.images]
        return replace(frames, images=imgs, scale=frames.scale * dims[0] / w, extra=dict(frames.extra))
    if defect == "dark":
        out = []
        for im in frames.images:
            x = level * 255.0 * (im.astype(np.float32) / 255.0) ** 1.3 + rng.normal(0, 2.0, im.shape)
            out.append(np.clip(x, 0, 255).astype(np.uint8))
        return replace(frames, images=out, extra=dict(frames.extra))
    if defect == "blur":
        size = _main_face_px(frames) or 112.0
        sigma = level * size / 112.0
        imgs = [cv2.GaussianBlur(im, (0, 0), sigma) for im in frames.images]
        return replace(frames, images=imgs, extra=dict(frames.extra))
    if defect == "compress":  # see reencode_file: a real stream, for a real bits-per-pixel figure
        raise ValueError("compression is measured on re-encoded files (reencode_file), not on frames")
    if defect == "cover":
        try:
            detections, _ = find_faces(frames)
        except Exception:
            return None
        out = []
        for im, boxes in zip(frames.images, detections, strict=True):
            im = im.copy()
            for b in boxes:
                top = int(b.bottom - level * (b.bottom - b.top))
                colour = im[max(0, b.top):b.bottom, max(0, b.left):b.right].reshape(-1, 3).mean(axis=0) * 0.6
                im[max(0, top):b.bottom, max(0, b.left):b.right] = colour.astype(np.uint8)
            out.append(im)
        return replace(frames, images=out, extra=dict(frames.extra))
    raise ValueError(f"unknown defect {defect!r}; known: {', '.join(DEFECTS)}")
