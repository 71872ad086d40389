"""Reading media: decode only the frames a check needs, evenly spaced over the whole clip.

Videos are decoded with PyAV (FFmpeg). Rather than reading every frame into memory (what the
original project did), we compute N target timestamps spread over the clip's duration and seek
to each; when the next target is close, decoding forward is cheaper than seeking, so we do that.
Still images (jpg/png/webp/...) are a one-frame video.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

log = logging.getLogger(__name__)

FRAME_CHOICES = (10, 20, 40, 60, 80, 100)
DEFAULT_FRAMES = 20
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
# Seek instead of decoding forward when the next target is further away than this (seconds):
# with keyframes every ~2 s (streaming-site encodes) a seek lands ~1 s before its target on average,
# so seeking pays from half a second on. If a seek lands at or before where we already are (a
# clip with few keyframes), seeking stops for that clip and decoding simply goes forward.
SEEK_GAP_S = 0.5
# Refuse absurd inputs before allocating anything for them.
MAX_PIXELS = 8192 * 8192
# A check must end in bounded time even if a file declares hours of frames: cap decoded frames.
MAX_DECODED_FRAMES = 5000


class MediaError(Exception):
    """The file is not a readable video or image. The message is meant for the user."""


@dataclass
class Frames:
    """Sampled RGB frames (uint8, HxWx3) with their timestamps in seconds."""

    images: list[np.ndarray]
    times: list[float]
    source_frames: int | None = None  # frames in the source, when known
    duration: float | None = None
    width: int = 0
    height: int = 0
    kind: str = "video"  # "video" or "image"
    extra: dict = field(default_factory=dict)


def sample_times(duration: float, n: int) -> list[float]:
    """n timestamps evenly spread over [0, duration): the start of n equal slices.

    Slice starts (not centres) so the last target is never past the last frame of a clip that
    has at least n frames.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if duration <= 0:
        return [0.0]
    return [duration * i / n for i in range(n)]


def _open_image(path: str) -> Frames | None:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if getattr(im, "is_animated", False):
                return None  # animated GIF/WebP: read it as a video
            if im.width * im.height > MAX_PIXELS:
                raise MediaError(f"Image is too large ({im.width}x{im.height}).")
            im = ImageOps.exif_transpose(im).convert("RGB")
            arr = np.asarray(im)
    except Image.DecompressionBombError as e:
        # the header declares more pixels than PIL will decode (not an OSError): refuse it as too large
        raise MediaError("Image is too large.") from e
    except (UnidentifiedImageError, OSError):
        return None
    if arr.size == 0:
        raise MediaError("The image is empty.")
    return Frames([arr], [0.0], 1, 0.0, arr.shape[1], arr.shape[0], kind="image")


def read_frames(path: str | os.PathLike, n: int = DEFAULT_FRAMES) -> Frames:
    """Read up to n frames evenly spaced over the clip (or the image itself).

    Raises MediaError with a user-facing message for anything that is not a readable video or
    image: missing, empty, not media, corrupt, audio-only, zero frames.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError("File not found.")
    if os.path.getsize(path) == 0:
        raise MediaError("The file is empty.")

    image = _open_image(path)
    if image is not None:
        return image
    return _read_video(path, n)


def _read_video(path: str, n: int) -> Frames:
    import av

    try:
        container = av.open(path, mode="r", timeout=10.0)
    except av.error.InvalidDataError as e:
        raise MediaError("Only video or image files are supported: this file is not one.") from e
    except av.error.FFmpegError as e:
        raise MediaError(f"Cannot read this file as a video ({e.strerror or type(e).__name__}).") from e
    try:
        if not container.streams.video:
            raise MediaError("The file has no video track (audio only?).")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise MediaError("The video has no picture (0x0 frames).")
        if width * height > MAX_PIXELS:
            raise MediaError(f"The video is too large ({width}x{height}).")
        duration = _duration(container, stream)
        declared_frames = stream.frames or None
        if duration is None:
            frames = _decode_all_then_pick(container, stream, n)
        else:
            frames = _decode_at(container, stream, sample_times(duration, n))
            if not frames:  # bad index or lying duration: fall back to a forward pass
                container.seek(0)
                frames = _decode_all_then_pick(container, stream, n)
    except av.error.FFmpegError as e:
        raise MediaError(f"The video is corrupt or truncated ({e.strerror or type(e).__name__}).") from e
    finally:
        container.close()

    if not frames:
        raise MediaError("The video has no readable frames.")
    times = [t for t, _ in frames]
    images = [img for _, img in frames]
    return Frames(images, times, declared_frames, duration, images[0].shape[1], images[0].shape[0])


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base:
        d = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        d = container.duration / 1_000_000
    else:
        return None
    return d if d > 0 else None


def _to_rgb(frame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


def _frame_time(frame, stream) -> float | None:
    if frame.pts is None:
        return None
    tb = frame.time_base or stream.time_base or Fraction(1, 1)
    start = stream.start_time or 0
    return float((frame.pts - start) * tb)


def _decode_at(container, stream, targets: list[float]) -> list[tuple[float, np.ndarray]]:
    """Decode the first frame at or after each target time, seeking when targets are far apart.

    A target past the real end of the stream (a duration that lies) takes the last frame.
    """
    out: list[tuple[float, np.ndarray]] = []
    tb = stream.time_base
    start = stream.start_time or 0
    decoder = None
    last: tuple[float, object] | None = None  # the most recently decoded frame
    seeking = True
    just_sought = False
    decoded = 0
    i = 0
    while i < len(targets):
        target = targets[i]
        if decoder is None or (seeking and last is not None and target - last[0] > SEEK_GAP_S):
            container.seek(int(target / tb) + start, stream=stream, backward=True, any_frame=False)
            decoder = container.decode(stream)
            just_sought = True
        hit = None
        for frame in decoder:
            decoded += 1
            if decoded > MAX_DECODED_FRAMES:
                break  # a pathological file: keep what we have, within the budget
            t = _frame_time(frame, stream)
            if t is None:
                continue
            if just_sought:
                just_sought = False
                if last is not None and t <= last[0] + 1e-6:
                    seeking = False  # the nearest keyframe is behind us: seeking only re-decodes
            last = (t, frame)
            if t + 1e-6 >= target:
                hit = last
                break
        if hit is None:  # end of stream (or budget): the last frame stands in for the rest
            if last is not None and (not out or out[-1][0] < last[0]):
                out.append((last[0], _to_rgb(last[1])))
            break
        t_hit, img = hit[0], _to_rgb(hit[1])
        # several targets may fall on the same frame (e.g. a very short clip): take it once
        out.append((t_hit, img))
        while i < len(targets) and targets[i] <= t_hit + 1e-6:
            i += 1
    return out


def _decode_all_then_pick(container, stream, n: int) -> list[tuple[float, np.ndarray]]:
    """No usable duration: count frames in a first pass (bounded), decode the picks in a second.

    Two passes keep memory flat: holding every decoded frame of a long clip would not.
    """
    total = 0
    for _ in container.decode(stream):
        total += 1
        if total >= MAX_DECODED_FRAMES:
            break
    if total == 0:
        return []
    picks = sorted(set(np.linspace(0, total - 1, num=min(n, total)).round().astype(int).tolist()))
    container.seek(0)
    out: list[tuple[float, np.ndarray]] = []
    want = iter(picks)
    nxt = next(want)
    for k, frame in enumerate(container.decode(stream)):
        if k == nxt:
            t = _frame_time(frame, stream)
            out.append((t if t is not None else float(k), _to_rgb(frame)))
            nxt = next(want, None)
            if nxt is None:
                break
    return out
