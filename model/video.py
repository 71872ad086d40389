"""Reading media: decode only the frames a check needs, spread over the whole clip.

Videos are decoded with PyAV (FFmpeg). Rather than reading every frame into memory (what the
original project did), we take one frame from each of N equal slices of the clip and decode as
little as possible to get them:

1. The container's packets are read without decoding them (~3 ms per 1,000 packets) to learn
   every frame's timestamp and which frames are keyframes.
2. In each slice the cheapest frame to reach wins: a keyframe (one frame of work after a seek)
   or the slice's first frame (decoded on from the previous sample, or from the keyframe before
   it, whichever is fewer frames). See `plan`.

With keyframes every ~2 s (streaming-site encodes), 20 frames of a 30 s clip cost ~70 decoded
frames instead of ~600 (seeking to exact timestamps) or 900 (decoding everything).
A file whose packets cannot be indexed falls back to seeking to N evenly spaced timestamps.
Still images (jpg/png/webp/...) are a one-frame video.
"""
from __future__ import annotations

import bisect
import logging
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction

import cv2
import numpy as np

log = logging.getLogger(__name__)

FRAME_CHOICES = (10, 20, 40, 60, 80, 100)
DEFAULT_FRAMES = 20
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
# Without a packet index: seek instead of decoding forward when the next target is further away
# than this (seconds). With keyframes every ~2 s a seek lands ~1 s before its target on average,
# so seeking pays from half a second on. If a seek lands at or before where we already are (a
# clip with few keyframes), seeking stops for that clip and decoding simply goes forward.
SEEK_GAP_S = 0.5
# With a packet index: a seek costs about this many forward-decoded frames (measured at 720p:
# a keyframe after a seek ~4.5 ms, a frame decoded forward ~0.6-0.8 ms).
SEEK_COST_FRAMES = 6
# Reading packets costs ~3 ms per 1,000; a file with more than this many is not indexed.
MAX_INDEX_PACKETS = 500_000
# Frame threading (FFmpeg's default) decodes long runs fastest but delays the first frame after
# each seek; a plan with fewer frames than this per seek uses slice threading instead.
FRAMES_PER_SEEK_FOR_FRAME_THREADS = 30
# Refuse absurd inputs before allocating anything for them: 8K UHD is the largest frame read.
MAX_PIXELS = 7680 * 4320
# Frames are scaled down while they are converted from the decoder's output, so memory is bounded
# whatever the source's size: no frame is held larger than this long side (face detection works
# at 640-1920 px), and all the frames of one check together hold at most MAX_HELD_PIXELS (100
# frames of 1280x720; fewer frames may each be larger). A 4096x4096 clip at 100 frames used to
# hold 5 GB of frames.
MAX_LONG_SIDE = 1920
MAX_HELD_PIXELS = 100 * 1280 * 720
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
    kind: str = "video"  # "video", "image", or "frames" (captured elsewhere)
    extra: dict = field(default_factory=dict)
    scale: float = 1.0  # decoded size / source size (width, height are the source's)


def decode_size(width: int, height: int, n: int) -> tuple[int, int]:
    """The size n frames of a width x height source are held at: no larger than the source,
    MAX_LONG_SIDE, or their share of MAX_HELD_PIXELS; even, as video scalers prefer."""
    scale = min(1.0, MAX_LONG_SIDE / max(width, height), math.sqrt(MAX_HELD_PIXELS / max(1, n) / (width * height)))
    if scale >= 1.0:
        return width, height
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


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
            # the size the image is shown at (EXIF orientations 5-8 turn it a quarter), and held at
            turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
            width, height = (im.height, im.width) if turned else im.size
            size = decode_size(width, height, 1)
            raw_size = (size[1], size[0]) if turned else size
            if raw_size != im.size:
                im.draft("RGB", raw_size)  # JPEG: decoded at a fraction of its size directly
                factor = min(im.width // raw_size[0], im.height // raw_size[1])
                if factor >= 2:  # others: one cheap integer reduction first, the exact size after
                    im = im.reduce(factor)
            im = ImageOps.exif_transpose(im)
            if im.size != size:
                im = im.resize(size, Image.Resampling.BOX)
            arr = np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError as e:
        # the header declares more pixels than PIL will decode (not an OSError): refuse it as too large
        raise MediaError("Image is too large.") from e
    except (UnidentifiedImageError, OSError):
        return None
    if arr.size == 0:
        raise MediaError("The image is empty.")
    return Frames([arr], [0.0], 1, 0.0, width, height, kind="image", scale=arr.shape[1] / width)


def frames_from_images(images: list[np.ndarray], times: list[float],
                       source_size: tuple[int, int] | None = None) -> Frames:
    """Frames from RGB images taken elsewhere (a browser capturing a playing video), in time order:
    each scaled down to its share of MAX_HELD_PIXELS, as decoded frames are. All must share one size.
    `source_size` (width, height): the images' own size when the caller already scaled them down
    while decoding them (to `decode_size`), so face boxes are reported in the source's pixels."""
    if not images:
        raise MediaError("No frames were given.")
    if len(images) != len(times):
        raise ValueError("one time per image")
    order = sorted(range(len(images)), key=lambda i: times[i])
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) or im.ndim != 3 or im.shape[2] != 3 for im in images):
        raise MediaError("The frames do not all have the same size.")
    sw, sh = source_size or (w, h)
    if sw * sh > MAX_PIXELS:
        raise MediaError(f"The frames are too large ({sw}x{sh}).")
    size = decode_size(sw, sh, len(images))
    held = [np.ascontiguousarray(images[i]) if size == (w, h) else
            np.ascontiguousarray(cv2.resize(images[i], size, interpolation=cv2.INTER_AREA)) for i in order]
    t = [float(times[i]) for i in order]
    duration = t[-1] - t[0] if len(t) > 1 else 0.0
    return Frames(held, t, len(held), duration, sw, sh, kind="frames", scale=size[0] / sw)


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
        index = _scan_index(container, stream)
        stats: dict = {"indexed": index is not None, "bits_per_pixel": _bits_per_pixel(index, stream, width, height)}
        if index is not None:
            # the packets say how long the clip really is (a header may declare hours)
            duration = index.span
            steps = plan(index, n)
            # frame threading delays the first frame after a seek by a few frames' decoding, so
            # a plan that seeks often decodes faster with slice threads
            seeks, work = plan_cost(steps, index)
            if work < seeks * FRAMES_PER_SEEK_FOR_FRAME_THREADS:
                stream.thread_type = "SLICE"
            frames = _decode_planned(container, stream, steps, index, stats, n)
        elif duration is None:
            frames = _decode_all_then_pick(container, stream, n)
        else:
            frames = _decode_at(container, stream, sample_times(duration, n), n)
        if not frames and (index is not None or duration is not None):
            # bad index or lying duration: fall back to a forward pass
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
    return Frames(images, times, declared_frames, duration, width, height, extra=stats, scale=images[0].shape[1] / width)


def _bits_per_pixel(index: PacketIndex | None, stream, width: int, height: int) -> float | None:
    """The stream's bits per pixel per frame (H.264 at 720p: ~0.1 for a good upload, under 0.02 for a
    starved one), from its packets, else from the declared bit rate and frame rate."""
    if index is not None and index.size and index.frames:
        return index.size * 8 / (len(index.frames) * width * height)
    rate, fps = stream.bit_rate, stream.average_rate
    if rate and fps and float(fps) > 0:
        return float(rate) / (float(fps) * width * height)
    return None


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base:
        d = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        d = container.duration / 1_000_000
    else:
        return None
    return d if d > 0 else None


def _to_rgb(frame, n: int) -> np.ndarray:
    """The frame as RGB, scaled down (in the same conversion) to its share of memory for n frames."""
    w, h = decode_size(frame.width, frame.height, n)
    if (w, h) == (frame.width, frame.height):
        return frame.to_ndarray(format="rgb24")
    return frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")


def _frame_time(frame, stream) -> float | None:
    if frame.pts is None:
        return None
    tb = frame.time_base or stream.time_base or Fraction(1, 1)
    start = stream.start_time or 0
    return float((frame.pts - start) * tb)


EPS = 1e-6


@dataclass
class PacketIndex:
    """Presentation times (seconds from the stream's start) of every frame and of the keyframes."""

    frames: list[float]
    keys: list[float]
    key_pts: list[int]  # the keyframes' timestamps in stream time base, to seek to exactly
    size: int = 0  # bytes of all the stream's packets: how hard it is compressed

    @property
    def span(self) -> float:
        """The clip's real length: first to last frame plus one frame interval."""
        step = float(np.median(np.diff(self.frames))) if len(self.frames) > 1 else 0.0
        return max(self.frames[-1] - self.frames[0] + step, EPS)

    def count_between(self, a: float, b: float) -> int:
        """Frames with a < time <= b: what decoding forward from a frame at `a` to `b` costs."""
        return bisect.bisect_right(self.frames, b + EPS) - bisect.bisect_right(self.frames, a + EPS)

    def key_before(self, t: float) -> int:
        """Index into keys of the last keyframe at or before t (0 when t precedes them all)."""
        return max(0, bisect.bisect_right(self.keys, t + EPS) - 1)


def _scan_index(container, stream) -> PacketIndex | None:
    """Read the packets (not decode them) to learn where the frames and keyframes are.

    None when that does not work for this file (no timestamps, no keyframe, a read error, too
    many packets): the caller then decodes without a plan.
    """
    import av

    start = stream.start_time or 0
    tb = stream.time_base
    if not tb:
        return None
    frames: list[float] = []
    keys: list[tuple[float, int]] = []
    size = 0
    try:
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue  # the demuxer's final empty packet, or a packet without a timestamp
            t = float((packet.pts - start) * tb)
            frames.append(t)
            size += packet.size
            if packet.is_keyframe:
                keys.append((t, packet.pts))
            if len(frames) > MAX_INDEX_PACKETS:
                return None
    except av.error.FFmpegError:
        return None  # truncated or corrupt: the decoding fall-back gives the clear error
    finally:
        container.seek(0)
    if not frames or not keys:
        return None
    frames.sort()
    keys.sort()
    return PacketIndex(frames, [t for t, _ in keys], [p for _, p in keys], size)


@dataclass(frozen=True)
class Step:
    """Decode the frame at `time`, seeking to the keyframe before it first, or decoding on."""

    time: float
    seek: bool


def plan(index: PacketIndex, n: int) -> list[Step]:
    """One frame from each of n equal slices of the clip, each the cheapest to reach.

    In a slice the candidates are its keyframes (one frame of work after a seek) and its first
    frame (reached by decoding on from the previous sample, or from the keyframe before it);
    the cheapest wins, ties going to the one nearest the slice's middle. A sample is never
    closer than a quarter slice to the previous one, so two samples are not the same moment.
    Slices with no frame (more slices than frames) are skipped: every frame is taken once.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    first = index.frames[0]
    width = index.span / n
    steps: list[Step] = []
    pos: float | None = None  # where the decoder is after the previous step
    for i in range(n):
        lo, hi = first + i * width, first + (i + 1) * width
        if steps:
            lo = max(lo, steps[-1].time + width / 4)
        k0, k1 = bisect.bisect_left(index.keys, lo - EPS), bisect.bisect_left(index.keys, hi - EPS)
        candidates = index.keys[k0:k1]
        f = bisect.bisect_left(index.frames, lo - EPS)
        if f < len(index.frames) and index.frames[f] < hi - EPS:
            candidates = [index.frames[f], *candidates]
        if not candidates:
            continue
        mid = (lo + hi) / 2
        best = None
        for t in candidates:
            seek_cost = SEEK_COST_FRAMES + index.count_between(index.keys[index.key_before(t)], t)
            on_cost = index.count_between(pos, t) if pos is not None and pos < t - EPS else None
            seek = on_cost is None or seek_cost < on_cost
            key = (seek_cost if seek else on_cost, abs(t - mid))
            if best is None or key < best[0]:
                best = (key, Step(t, seek))
        steps.append(best[1])
        pos = best[1].time
    return steps


def plan_cost(steps: list[Step], index: PacketIndex) -> tuple[int, int]:
    """(seeks, frames decoded) to run a plan, by the index."""
    seeks = frames = 0
    pos = None
    for st in steps:
        if st.seek or pos is None:
            seeks += 1
            frames += 1 + index.count_between(index.keys[index.key_before(st.time)], st.time)
        else:
            frames += index.count_between(pos, st.time)
        pos = st.time
    return seeks, frames


class _Cursor:
    """A decoder over one stream that decodes forward to a time, within the frame budget."""

    def __init__(self, container, stream, n: int):
        self.container, self.stream, self.n = container, stream, n
        self.decoder = None
        self.decoded = self.seeks = 0
        self.last: tuple[float, object] | None = None  # the most recently decoded frame
        self.landed: float | None = None  # time of the first frame after the latest seek

    def seek(self, pts: int) -> None:
        self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        self.decoder = self.container.decode(self.stream)
        self.seeks += 1
        self.landed = None

    def until(self, target: float) -> tuple[float, object] | None:
        """The first frame at or after `target`; None at the end of the stream or the budget."""
        for frame in self.decoder:
            self.decoded += 1
            if self.decoded > MAX_DECODED_FRAMES:
                return None  # a pathological file: keep what we have, within the budget
            t = _frame_time(frame, self.stream)
            if t is None:
                continue
            if self.landed is None:
                self.landed = t
            self.last = (t, frame)
            if t + EPS >= target:
                return self.last
        return None

    def take(self, out: list[tuple[float, np.ndarray]], hit: tuple[float, object] | None) -> bool:
        """Append the hit (or, at the end, the last frame standing in for the rest) unless it is
        the frame taken before; False when decoding is over."""
        got = hit or self.last
        if got is not None and (not out or got[0] > out[-1][0] + EPS):
            out.append((got[0], _to_rgb(got[1], self.n)))
        return hit is not None


def _decode_planned(container, stream, steps: list[Step], index: PacketIndex, stats: dict,
                    n: int) -> list[tuple[float, np.ndarray]]:
    """Run a plan. Times come from the decoded frames: a seek that lands early only costs time."""
    out: list[tuple[float, np.ndarray]] = []
    cur = _Cursor(container, stream, n)
    for step in steps:
        if cur.decoder is None or step.seek or (cur.last is not None and cur.last[0] > step.time + EPS):
            cur.seek(index.key_pts[index.key_before(step.time)])
        if not cur.take(out, cur.until(step.time)):
            break
    stats.update(decoded=cur.decoded, seeks=cur.seeks)
    return out


def _decode_at(container, stream, targets: list[float], n: int) -> list[tuple[float, np.ndarray]]:
    """Without an index: the first frame at or after each target time, seeking when targets are
    far apart. A target past the real end of the stream (a duration that lies) takes the last frame.
    """
    out: list[tuple[float, np.ndarray]] = []
    tb, start = stream.time_base, stream.start_time or 0
    cur = _Cursor(container, stream, n)
    seeking = True
    for target in targets:
        if out and target <= out[-1][0] + EPS:
            continue  # several targets on one frame (e.g. a very short clip): take it once
        if cur.decoder is None or (seeking and cur.last is not None and target - cur.last[0] > SEEK_GAP_S):
            before = cur.last
            cur.seek(int(target / tb) + start)
            hit = cur.until(target)
            if before is not None and cur.landed is not None and cur.landed <= before[0] + EPS:
                seeking = False  # the nearest keyframe is behind us: seeking only re-decodes
        else:
            hit = cur.until(target)
        if not cur.take(out, hit):
            break
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
            out.append((t if t is not None else float(k), _to_rgb(frame, n)))
            nxt = next(want, None)
            if nxt is None:
                break
    return out
