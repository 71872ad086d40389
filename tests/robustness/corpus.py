"""The bad-input corpus, generated on the fly: every file a user (or a hostile page) could hand us
that is not a plain, well-formed video. Each entry says what a correct outcome looks like."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import media
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    name: str  # file name in the corpus dir (its extension is part of the test)
    expect: str  # "error": a clear ERROR; "verdict": a verdict with a face; "any": verdict or clear error


def _clip_bytes(frames, fps=10, codec="libx264", fmt="mp4", **opts) -> bytes:
    buf = io.BytesIO()
    h, w = frames[0].shape[:2]
    with av.open(buf, mode="w", format=fmt) as out:
        st = out.add_stream(codec, rate=fps)
        st.width, st.height, st.pix_fmt = w - w % 2, h - h % 2, opts.pop("pix_fmt", "yuv420p")
        st.options = opts
        for img in frames:
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: st.height, : st.width]), format="rgb24")
            for p in st.encode(f):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return buf.getvalue()


def twelve_hour_clip(path: Path) -> None:
    """Five frames whose timestamps claim the clip lasts 12 hours."""
    frames = media.face_frames(5, (320, 180))
    with av.open(str(path), mode="w") as out:
        st = out.add_stream("libx264", rate=1)
        st.width, st.height, st.pix_fmt = 320, 180, "yuv420p"
        st.time_base = Fraction(1, 1)
        st.codec_context.time_base = Fraction(1, 1)
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i * 10_800, Fraction(1, 1)
            for p in st.encode(f):
                out.mux(p)
        for p in st.encode():
            out.mux(p)


def audio_only(path: Path) -> None:
    with av.open(str(path), mode="w") as out:
        st = out.add_stream("aac", rate=44100)
        st.layout = "mono"
        t = np.arange(44100 * 2) / 44100
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        for i in range(0, samples.shape[1], 1024):
            chunk = samples[:, i:i + 1024]
            if chunk.shape[1] < 1024:
                break
            f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            f.sample_rate = 44100
            for p in st.encode(f):
                out.mux(p)
        for p in st.encode():
            out.mux(p)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(path: Path, w: int = 100_000, h: int = 100_000) -> None:
    """A valid PNG signature and header declaring w x h pixels, with a tiny (wrong) image body."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))


def _patch_sof(data: bytes, w: int, h: int) -> bytes:
    """Rewrite the frame size in every baseline JPEG SOF0 marker."""
    out = bytearray(data)
    i = out.find(b"\xff\xc0")
    while i != -1:
        out[i + 5:i + 9] = struct.pack(">HH", h, w)
        i = out.find(b"\xff\xc0", i + 2)
    return bytes(out)


def huge_jpeg(path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(media.head()).save(buf, format="JPEG", quality=80)
    path.write_bytes(_patch_sof(buf.getvalue(), 65_000, 65_000))


def huge_mjpeg_video(path: Path) -> None:
    """An MJPEG AVI whose frames declare 65000 x 65000 pixels."""
    data = _clip_bytes(media.face_frames(5, (320, 180)), codec="mjpeg", fmt="avi", pix_fmt="yuvj420p")
    path.write_bytes(_patch_sof(data, 65_000, 65_000))


def exif_rotated_face(path: Path) -> None:
    """The face stored lying on its side, with EXIF Orientation 6 (display rotated 90° clockwise)."""
    upright = Image.fromarray(media.head())
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a phone writes; viewers rotate it back
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, format="JPEG", quality=92, exif=exif.tobytes())


def animated_gif(path: Path) -> None:
    frames = [Image.fromarray(f) for f in media.face_frames(8, (320, 180))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def face_only_in_last_second(path: Path) -> None:
    """10 s at 10 fps: nine seconds of an empty room, then one second with a face."""
    empty = media.no_face_frames(90, (640, 360))
    media.write_clip(path, empty + media.face_frames(10, (640, 360)))


def twenty_faces(path: Path) -> None:
    """One frame (as a short clip) with 20 faces in a 5 x 4 grid."""
    face = np.asarray(Image.fromarray(media.head()).resize((150, 150)))
    canvas = np.full((4 * 170, 5 * 170, 3), 70, np.uint8)
    for r in range(4):
        for c in range(5):
            canvas[r * 170 + 10:r * 170 + 160, c * 170 + 10:c * 170 + 160] = face if (r + c) % 2 else face[:, ::-1]
    media.write_clip(path, [canvas] * 5)


def zero_size_video(path: Path) -> None:
    """A real MP4 whose sample description and track header claim 0 x 0 pixels."""
    data = bytearray(_clip_bytes(media.face_frames(3, (320, 180))))
    i = data.find(b"avc1")  # VisualSampleEntry: 24 bytes after the type come width, height (16-bit)
    data[i + 28:i + 32] = b"\0\0\0\0"
    j = data.find(b"tkhd")  # version 0 track header: width/height (16.16) are its last 8 bytes
    size = struct.unpack(">I", data[j - 4:j])[0]
    end = j - 4 + size
    data[end - 8:end] = b"\0" * 8
    path.write_bytes(bytes(data))


CASES = [
    Case("empty.mp4", "error"),
    Case("random.mp4", "any"),  # FFmpeg may probe noise as a raw stream (seen: a 1-frame "video"): NO_FACE is fine
    Case("random.webm", "error"),
    Case("random.mov", "error"),
    Case("truncated.mp4", "error"),
    Case("truncated.webm", "any"),
    Case("zip-named.mp4", "error"),
    Case("zero-size.mp4", "any"),
    Case("one-frame.mp4", "verdict"),
    Case("twelve-hours.mp4", "verdict"),
    Case("huge.png", "error"),
    Case("huge.jpg", "error"),
    Case("huge-mjpeg.avi", "error"),
    Case("exif-rotated.jpg", "verdict"),
    Case("animated.gif", "verdict"),
    Case("audio-only.m4a", "error"),
    Case("face-last-second.mp4", "verdict"),
    Case("twenty-faces.mp4", "verdict"),
]


def build(d: Path) -> Path:
    rng = np.random.default_rng(6)
    d.mkdir(parents=True, exist_ok=True)
    (d / "empty.mp4").write_bytes(b"")
    for ext in ("mp4", "webm", "mov"):
        (d / f"random.{ext}").write_bytes(rng.integers(0, 256, 256 * 1024, dtype=np.uint8).tobytes())
    mp4 = _clip_bytes(media.face_frames(30, (640, 360)))
    (d / "truncated.mp4").write_bytes(mp4[: len(mp4) // 2])
    webm = _clip_bytes(media.face_frames(30, (640, 360)), codec="libvpx-vp9", fmt="webm")
    (d / "truncated.webm").write_bytes(webm[: len(webm) // 2])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("video.mp4", mp4)
    (d / "zip-named.mp4").write_bytes(buf.getvalue())
    zero_size_video(d / "zero-size.mp4")
    media.write_clip(d / "one-frame.mp4", media.face_frames(1))
    twelve_hour_clip(d / "twelve-hours.mp4")
    huge_png(d / "huge.png")
    huge_jpeg(d / "huge.jpg")
    huge_mjpeg_video(d / "huge-mjpeg.avi")
    exif_rotated_face(d / "exif-rotated.jpg")
    animated_gif(d / "animated.gif")
    audio_only(d / "audio-only.m4a")
    face_only_in_last_second(d / "face-last-second.mp4")
    twenty_faces(d / "twenty-faces.mp4")
    return d


# --- odd multipart bodies for the upload endpoint ------------------------------------------------
@dataclass(frozen=True)
class Multipart:
    name: str
    content_type: str
    body: bytes


def _part(headers: str, data: bytes, boundary: bytes = b"B") -> bytes:
    return b"--" + boundary + b"\r\n" + headers.encode() + b"\r\n\r\n" + data + b"\r\n"


_FILE = 'Content-Disposition: form-data; name="file"; filename="a.mp4"'
_MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\x00\x00\x00\x00mdat" + bytes(600)
_NESTED = _part('Content-Disposition: form-data; name="file"\r\nContent-Type: multipart/mixed; boundary=C',
                _part(_FILE, _MP4_HEAD, b"C") + b"--C--")
FORM = "multipart/form-data; boundary=B"

MULTIPART_CASES = [
    Multipart("nested-multipart", FORM, _NESTED + b"--B--\r\n"),
    Multipart("nested-three-deep", FORM, _part(
        'Content-Disposition: form-data; name="file"\r\nContent-Type: multipart/mixed; boundary=C',
        _part("Content-Type: multipart/mixed; boundary=D", _part(_FILE, _MP4_HEAD, b"D") + b"--D--", b"C") + b"--C--")
        + b"--B--\r\n"),
    Multipart("nested-after-the-file", FORM, _part(_FILE, _MP4_HEAD) + _NESTED + b"--B--\r\n"),
    Multipart("part-without-content-disposition", FORM, _part("Content-Type: video/mp4", _MP4_HEAD) + b"--B--\r\n"),
    Multipart("part-without-name", FORM, _part('Content-Disposition: form-data; filename="a.mp4"', _MP4_HEAD) + b"--B--\r\n"),
    Multipart("no-closing-boundary", FORM, _part(_FILE, _MP4_HEAD)),
    Multipart("body-cut-inside-the-file", FORM, _part(_FILE, _MP4_HEAD)[:-300]),
    Multipart("boundary-never-appears", FORM, b"just some bytes that are not multipart at all\r\n" * 10),
    Multipart("empty-body", FORM, b""),
    Multipart("no-boundary-parameter", "multipart/form-data", _part(_FILE, _MP4_HEAD) + b"--B--\r\n"),
    Multipart("header-without-colon", FORM, _part("this header has no colon", _MP4_HEAD) + b"--B--\r\n"),
    Multipart("huge-part-header", FORM, _part(_FILE + "\r\nX-Pad: " + "a" * 20_000, _MP4_HEAD) + b"--B--\r\n"),
    Multipart("bare-lf-line-endings", FORM, _part(_FILE, _MP4_HEAD).replace(b"\r\n", b"\n") + b"--B--\n"),
    Multipart("base64-transfer-encoding", FORM,
              _part(_FILE + "\r\nContent-Transfer-Encoding: base64", b"AAAAGGZ0eXBpc29t") + b"--B--\r\n"),
    Multipart("two-file-parts-and-junk-frames", FORM, _part(_FILE, b"not a video") + _part(_FILE, _MP4_HEAD)
              + _part('Content-Disposition: form-data; name="frames"', b"\xff\xfe" * 5000) + b"--B--\r\n"),
]
