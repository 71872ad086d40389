"""Test media made on the fly: real H.264 clips (PyAV's bundled libx264), images, broken files."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10, codec: str = "libx264", gop: int | None = None) -> Path:
    """Write RGB frames as a browser-playable H.264 MP4 (yuv420p, even dimensions).

    gop: a keyframe exactly every `gop` frames and nowhere else (default: the encoder's choice).
    """
    h, w = frames[0].shape[:2]
    h2, w2 = h - h % 2, w - w % 2
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = w2, h2
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        if gop:
            stream.options = {**stream.options, "g": str(gop), "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:h2, :w2]), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # 512x512 RGB, one clear frontal face (and a suit patch HOG may take for one)


def head() -> np.ndarray:
    """The astronaut's head and shoulders only: one face, nothing face-like beside it."""
    return np.ascontiguousarray(astronaut()[0:260, 90:350])


def face_frames(n: int = 20, size: tuple[int, int] = (640, 360)) -> list[np.ndarray]:
    """The astronaut's face drifting across a grey frame."""
    w, h = size
    face = np.asarray(Image.fromarray(head()).resize((h, h)))
    frames = []
    for i in range(n):
        canvas = np.full((h, w, 3), 90, np.uint8)
        x = int((w - h) * i / max(1, n - 1))
        canvas[:, x:x + h] = face
        frames.append(canvas)
    return frames


def no_face_frames(n: int = 10, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    w, h = size
    base = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None].repeat(h, 0).repeat(3, 2)
    return [np.clip(base.astype(int) + rng.integers(-10, 10, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def two_face_frames(n: int = 10) -> list[np.ndarray]:
    """Two faces side by side (the astronaut and her mirror image), still."""
    face = np.asarray(Image.fromarray(head()).resize((300, 300)))
    canvas = np.full((320, 680, 3), 60, np.uint8)
    canvas[10:310, 10:310] = face
    canvas[10:310, 370:670] = face[:, ::-1]
    return [canvas.copy() for _ in range(n)]


def inset_face_frames(n: int = 20, size: tuple[int, int] = (640, 360)) -> list[np.ndarray]:
    """face_frames shrunk into a small inset in the middle of a grey frame: a face of about 38 px,
    under the 48 px a face must have to be judged (a check of it ends UNCERTAIN, face_too_small)."""
    w, h = size
    inset = face_frames(n, size=(w * 5 // 16, h * 5 // 16))
    out = []
    for f in inset:
        canvas = np.full((h, w, 3), 90, np.uint8)
        y, x = (h - f.shape[0]) // 2, (w - f.shape[1]) // 2
        canvas[y:y + f.shape[0], x:x + f.shape[1]] = f
        out.append(canvas)
    return out
