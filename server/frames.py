"""Frames captured from a playing video in the browser (POST /v1/checks/frames).

The server only looks at each frame's header as it arrives (type, size, that it is complete) and
stores the frames encrypted, as one container, like an upload; the pixels are decoded in the
inference worker alone, where a hostile image can crash nothing but the worker.

The container (the plaintext inside the encrypted file): for each frame in the order received, a
4-byte big-endian length, then the image's bytes.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from dataclasses import dataclass

from .containers import problem_of
from .errors import ApiError

# what the browser's canvas encodes (toBlob / convertToBlob): JPEG by default, PNG and WebP too
KINDS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: a PNG's last 12 bytes
LENGTH = struct.Struct(">I")
MAX_TIMES_BYTES = 16 * 1024  # the `times` part: 100 numbers as JSON


@dataclass(frozen=True)
class FrameInfo:
    """What a frame's header says."""

    kind: str  # jpeg | png | webp
    width: int
    height: int


def sniff_frame(head: bytes) -> str | None:
    """jpeg/png/webp from a frame's first bytes, whatever its part's name or content type says."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    return None


def complete(kind: str, data: bytes) -> bool:
    """Whether a frame's bytes run to its format's end marker: a frame cut short in transit (or on
    purpose) is refused here, without decoding it."""
    if kind == "jpeg":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")  # EOI; some encoders pad after it
    if kind == "png":
        return data.endswith(PNG_END)
    if kind == "webp":
        size = int.from_bytes(data[4:8], "little") + 8
        return size == len(data) or size + 1 == len(data)  # RIFF sizes are even; a pad byte may follow
    return False


def inspect(data: bytes, index: int, max_side: int) -> FrameInfo:
    """The frame's type and size from its header (no pixels are decoded), or ApiError:
    415 for anything but a JPEG, PNG or WebP; 400 for a damaged or truncated one; 413 for one larger
    than max_side on its longer side (which also refuses decompression bombs: tiny files that
    declare huge images)."""
    from PIL import Image, UnidentifiedImageError

    n = index + 1
    kind = sniff_frame(data[:16])
    if kind is None:
        raise ApiError(415, "unsupported_media", f"Frame {n} is not a JPEG, PNG or WebP image.")
    if not complete(kind, data):
        raise ApiError(400, "bad_request", f"Frame {n} is truncated or damaged ({kind.upper()} without its end).")
    if problem := problem_of(data):  # its segments or chunks, from start to end: no other file inside
        raise ApiError(400, "bad_request", f"Frame {n} is damaged ({kind.upper()}: {problem}).")
    try:
        with Image.open(io.BytesIO(data), formats=list(KINDS)) as im:
            width, height = im.size
            if getattr(im, "n_frames", 1) > 1:
                raise ApiError(415, "unsupported_media", f"Frame {n} is an animation; send still images.")
    except Image.DecompressionBombError:
        raise ApiError(413, "too_large", f"Frame {n} declares far more pixels than it could hold; refused.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApiError(400, "bad_request", f"Frame {n} is damaged: its header cannot be read.") from None
    if max(width, height) > max_side:
        raise ApiError(413, "too_large", f"Frame {n} is {width}x{height} pixels; at most {max_side} on the longer side.")
    if min(width, height) < 1:
        raise ApiError(400, "bad_request", f"Frame {n} has no pixels.")
    return FrameInfo(kind, width, height)


def parse_times(raw: bytes, count: int) -> list[float]:
    """The `times` part: a JSON array of each frame's time in the video (seconds), one per frame."""
    try:
        times = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        times = None
    if (not isinstance(times, list) or len(times) != count
            or not all(isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and t >= 0 for t in times)):
        raise ApiError(400, "bad_request", f"times must be a JSON array of {count} non-negative numbers "
                                           "(each frame's time in the video, in seconds).")
    return [float(t) for t in times]


def times_digest(times: list[float]) -> str:
    """Part of a frames check's cache key: the same pictures at other times are another check."""
    return hashlib.sha256(json.dumps([round(t, 3) for t in times]).encode()).hexdigest()


def pack(data: bytes) -> bytes:
    """One frame's record in the container."""
    return LENGTH.pack(len(data)) + data


def unpack(blob: bytes) -> list[bytes]:
    """The frames of a container, in order."""
    frames, at = [], 0
    while at < len(blob):
        (n,) = LENGTH.unpack_from(blob, at)
        frames.append(blob[at + 4:at + 4 + n])
        at += 4 + n
    if at != len(blob):
        raise ValueError("container truncated")
    return frames


def decode(frames: list[bytes], times: list[float]):
    """The model's Frames from the images (in the inference worker). Each is decoded and scaled
    down at once to its share of the memory a check may hold (model.video.decode_size), so 100 big
    frames never sit in memory at full size; the result reports the frames' own size, and face boxes
    are in their pixels. Raises model.MediaError for a frame that does not decode."""
    import cv2
    import numpy as np
    from PIL import Image

    from model import MediaError, decode_size, frames_from_images

    images, size, source = [], None, None
    for i, data in enumerate(frames):
        try:
            with Image.open(io.BytesIO(data), formats=list(KINDS)) as im:
                if source is None:
                    source = im.size
                    size = decode_size(*source, len(frames))
                if im.size != source:
                    raise MediaError("The frames do not all have the same size.")
                if size != source and im.format == "JPEG":
                    im.draft("RGB", size)  # decode at a fraction of the size directly
                rgb = np.asarray(im.convert("RGB"))
        except MediaError:
            raise
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise MediaError(f"Frame {i + 1} could not be decoded ({type(e).__name__}).") from None
        if rgb.shape[1::-1] != size:
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        images.append(rgb)
    return frames_from_images(images, times, source_size=source)
