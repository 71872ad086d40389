"""Container structure (server/containers.py): every format the server sniffs, written by real
encoders, is whole; the same files cut short, with junk or another file inside them, are not."""
from __future__ import annotations

import io
import zipfile

import av
import media
import numpy as np
import pytest
from PIL import Image

from server.containers import Structure, problem_of
from server.media import sniff

FRAMES = media.face_frames(8, (320, 180))
# container, codec, pixel format: what PyAV writes, as the sites' and the browsers' encoders do
VIDEOS = {"mp4": ("mp4", "libx264", "yuv420p"), "mov": ("mov", "libx264", "yuv420p"),
          "webm": ("webm", "libvpx-vp9", "yuv420p"), "mkv": ("matroska", "libx264", "yuv420p"),
          "avi": ("avi", "mjpeg", "yuvj420p"), "flv": ("flv", "flv", "yuv420p"), "mpg": ("mpeg", "mpeg2video", "yuv420p"),
          "wmv": ("asf", "wmv2", "yuv420p"), "ts": ("mpegts", "libx264", "yuv420p"), "gif": ("gif", "gif", "rgb8")}
IMAGES = {"jpg": {"format": "JPEG"}, "progressive.jpg": {"format": "JPEG", "progressive": True},
          "png": {"format": "PNG"}, "webp": {"format": "WEBP"}, "lossless.webp": {"format": "WEBP", "lossless": True},
          "bmp": {"format": "BMP"}, "avif": {"format": "AVIF"}}


def video(fmt: str, codec: str, pix: str) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        st = out.add_stream(codec, rate=10)
        st.width, st.height, st.pix_fmt = 320, 180, pix
        for img in FRAMES:
            for pkt in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return buf.getvalue()


def image(**kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(FRAMES[0]).save(buf, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    out = {name: video(*args) for name, args in VIDEOS.items()}
    out.update({name: image(**kw) for name, kw in IMAGES.items()})
    return out


def zip_file() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.html", "<html><body>not a video</body></html>" * 50)
    return buf.getvalue()


def streamed(data: bytes, piece: int) -> str | None:
    s = Structure()
    for at in range(0, len(data), piece):
        s.feed(data[at:at + piece])
    return s.finish()


@pytest.mark.parametrize("name", [*VIDEOS, *IMAGES])
def test_what_real_encoders_write_is_whole_however_it_arrives(files, name):
    data = files[name]
    assert sniff(data[:512], len(data)) is not None
    assert (problem_of(data), streamed(data, 777), streamed(data, 64 * 1024)) == (None, None, None)


@pytest.mark.parametrize("name", [n for n in [*VIDEOS, *IMAGES] if n not in ("ts", "mpg")])
def test_a_file_cut_in_half_is_truncated(files, name):
    """(MPEG-TS and -PS have no end: a recording cut between packets is a shorter recording.)"""
    data = files[name]
    assert "truncated" in (problem_of(data[:len(data) // 2]) or "")


@pytest.mark.parametrize("name", ["mp4", "mov", "webm", "mkv", "avi", "flv", "wmv", "ts", "mpg"])
def test_another_file_appended_to_a_video_is_found(files, name):
    assert problem_of(files[name] + zip_file()) is not None


def test_a_zip_behind_the_first_boxes_of_an_mp4_is_found(files):
    """The first 512 bytes sniff as an MP4 (an ftyp and a free box), a ZIP follows them."""
    mp4 = files["mp4"]
    ftyp = mp4[:int.from_bytes(mp4[:4], "big")]
    data = ftyp + (600).to_bytes(4, "big") + b"free" + bytes(592) + zip_file()
    assert sniff(data[:512], len(data)) == ("video", ".mp4")
    assert "where a box should start there is none" in problem_of(data)


def test_zeros_after_the_last_box_are_padding_but_anything_after_them_is_not(files):
    padded = files["mp4"] + bytes(4096)
    assert problem_of(padded) is None and streamed(padded, 777) is None
    assert problem_of(padded + zip_file()) is not None


def test_an_mp4_without_its_moov_box_is_found():
    data = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\x00\x00\x00\x00mdat" + bytes(600)
    assert "no moov box" in problem_of(data)


@pytest.mark.parametrize("name", ["jpg", "png", "webp", "gif"])
def test_an_image_header_followed_by_html_is_found(files, name):
    data = files[name][:40] + b"<html><body>" + b"<p>not an image</p>" * 200 + b"</body></html>"
    assert problem_of(data) is not None


def test_a_jpeg_whose_scan_is_followed_by_html_and_no_end_is_found(files):
    jpg = files["jpg"]
    assert "truncated" in problem_of(jpg[:jpg.find(b"\xff\xda") + 200] + b"<html>" * 100)


def test_bytes_after_an_images_end_are_not_the_images(files):
    """Motion photos append a video after the JPEG's end marker: the image itself is whole."""
    assert problem_of(files["jpg"] + files["mp4"]) is None
