"""POST /v1/checks/frames: frames captured from a playing video in the browser, through the same job
flow as uploads, on an app sharing the session's real inference worker (the tiny untrained model:
verdicts are never asserted, only outcomes). Every limit and bad input is a clear 4xx."""
from __future__ import annotations

import io
import json
import struct
import zlib

import aiohttp
import media
import numpy as np
import pytest
from PIL import Image
from realserver import leftover_media
from server_support import wait_done

from server.keys import CONFIG, STORE
from server.media import MAGIC

pytestmark = pytest.mark.asyncio
VERDICTS = ("REAL", "FAKE", "UNCERTAIN", "NO_FACE")


def encode(img: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **({"quality": 92} if fmt == "JPEG" else {}) | kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def face_jpegs() -> list[bytes]:
    """What the extension sends: a played clip's frames as JPEG (quality 0.92), the astronaut drifting."""
    return [encode(f) for f in media.face_frames(10, size=(480, 270))]


def frames_form(images: list[bytes], times: list[float] | None = None, **fields) -> aiohttp.FormData:
    fd = aiohttp.FormData(default_to_multipart=True)
    for i, data in enumerate(images):
        fd.add_field("frame", data, filename=f"frame-{i}.jpg", content_type="image/jpeg")
    fd.add_field("times", json.dumps([i * 0.4 for i in range(len(images))] if times is None else times))
    for k, v in fields.items():
        fd.add_field(k, str(v))
    return fd


async def post(client, auth, images, times=None, **fields):
    r = await client.post("/v1/checks/frames", data=frames_form(images, times, **fields), headers=auth)
    return r.status, await r.json()


def png_declaring(width: int, height: int) -> bytes:
    """A complete, tiny PNG whose header declares width x height (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


async def test_captured_frames_are_checked_like_an_upload_and_leave_no_media(api, face_jpegs, worker):
    client, app, auth = api
    calls = worker.calls
    status, created = await post(client, auth, face_jpegs, page_url="https://blog.example/post", frames=10)
    assert status == 202, created
    body = await wait_done(client, auth, created["id"])
    assert body["status"] == "done" and body["source"] == "frames" and body["cached"] is False, body
    res = body["result"]
    assert res["verdict"] in VERDICTS and res["frames_analysed"] == len(face_jpegs)
    assert (res["width"], res["height"]) == (480, 270) and res["duration"] == pytest.approx(3.6)
    assert res["frames_with_face"] > 0 and res["faces"], res  # the pipeline found and tracked the face
    assert all(0 <= b["box"][0] < 480 for f in res["faces"] for b in f["boxes"])  # in the frames' own pixels
    assert res["heatmap_url"] and res["timings_ms"]["decode"] > 0
    assert worker.calls == calls + 1
    assert leftover_media(app[CONFIG]) == []


async def test_the_same_frames_again_are_answered_from_the_cache_by_their_bytes(api, face_jpegs, worker):
    client, _, auth = api
    first = await wait_done(client, auth, (await post(client, auth, face_jpegs[:5]))[1]["id"])
    calls = worker.calls
    status, again = await post(client, auth, face_jpegs[:5])
    assert status == 200 and again["cached"] and again["result"]["p_fake"] == first["result"]["p_fake"]
    assert worker.calls == calls  # no model run
    status, other = await post(client, auth, face_jpegs[1:6])  # other bytes: a new check
    assert status == 202


async def test_png_and_webp_frames_are_accepted(api):
    client, _, auth = api
    img = media.face_frames(3, size=(320, 180))
    for fmt in ("PNG", "WEBP"):
        status, body = await post(client, auth, [encode(f, fmt) for f in img])
        assert status == 202, (fmt, body)
        assert (await wait_done(client, auth, body["id"]))["status"] == "done"


async def test_a_paused_video_sends_one_frame_and_gets_a_verdict(api, face_jpegs):
    client, _, auth = api
    status, body = await post(client, auth, face_jpegs[:1], [12.5])
    done = await wait_done(client, auth, body["id"])
    assert done["status"] == "done" and done["result"]["frames_analysed"] == 1


async def test_a_frame_that_is_not_an_image_is_refused_with_415(api, face_jpegs):
    client, app, auth = api
    status, body = await post(client, auth, [face_jpegs[0], b"<html>not a frame</html>" * 20])
    assert status == 415 and body == {"error": "unsupported_media", "message": "Frame 2 is not a JPEG, PNG or WebP image."}
    assert leftover_media(app[CONFIG]) == []  # the first frame, already stored, went too


async def test_the_type_is_sniffed_not_taken_from_the_name_or_content_type(api, face_jpegs):
    client, _, auth = api
    fd = aiohttp.FormData()
    fd.add_field("frame", face_jpegs[0], filename="notes.txt", content_type="text/plain")
    fd.add_field("times", "[0]")
    r = await client.post("/v1/checks/frames", data=fd, headers=auth)
    assert r.status in (200, 202)
    gif = io.BytesIO()
    Image.fromarray(media.head()).save(gif, "GIF")
    status, body = await post(client, auth, [gif.getvalue()])  # an image, but not one a canvas makes
    assert status == 415 and body["error"] == "unsupported_media"


async def test_a_truncated_jpeg_is_refused_with_400(api, face_jpegs):
    client, app, auth = api
    cut = face_jpegs[1][: len(face_jpegs[1]) * 2 // 3]
    status, body = await post(client, auth, [face_jpegs[0], cut])
    assert status == 400 and body == {"error": "bad_request", "message": "Frame 2 is truncated or damaged (JPEG without its end)."}
    assert leftover_media(app[CONFIG]) == []


async def test_zero_frames_are_refused_with_400(api):
    client, _, auth = api
    status, body = await post(client, auth, [], [])
    assert status == 400 and body["error"] == "bad_request" and "No frames were sent" in body["message"]


async def test_101_frames_are_refused_with_413(api):
    client, app, auth = api
    tiny = encode(np.full((8, 8, 3), 128, np.uint8))
    status, body = await post(client, auth, [tiny] * 101)
    assert status == 413 and body == {"error": "too_large", "message": "Too many frames: at most 100."}
    assert leftover_media(app[CONFIG]) == []
    status, body = await post(client, auth, [tiny] * 100)  # the limit itself is fine
    assert status == 202, body


async def test_a_frame_over_4096_pixels_is_refused_with_413(api):
    client, _, auth = api
    wide = encode(np.full((16, 4097, 3), 90, np.uint8), "PNG")
    status, body = await post(client, auth, [wide])
    assert status == 413 and body == {"error": "too_large",
                                      "message": "Frame 1 is 4097x16 pixels; at most 4096 on the longer side."}


@pytest.mark.parametrize("side", [65000, 30000])
async def test_a_decompression_bomb_is_refused_with_413_without_decoding_it(api, side, worker):
    client, _, auth = api
    bomb = png_declaring(side, side)  # ~100 bytes declaring gigapixels
    assert len(bomb) < 200
    calls = worker.calls
    status, body = await post(client, auth, [bomb])
    assert status == 413 and body["error"] == "too_large", body
    assert worker.calls == calls


async def test_a_frame_over_its_byte_limit_is_refused_with_413(app_factory):
    client, app, auth = await app_factory(max_frame_mb=1)
    noise = np.random.default_rng(0).integers(0, 255, (800, 800, 3), np.uint8)
    big = encode(noise, "PNG")
    assert len(big) > 1024 * 1024
    status, body = await post(client, auth, [big])
    assert status == 413 and body == {"error": "too_large", "message": "Frame 1 is over 1 MB."}
    assert leftover_media(app[CONFIG]) == []


async def test_frames_over_the_total_limit_are_refused_with_413(app_factory):
    client, app, auth = await app_factory(max_upload_mb=1)
    rng = np.random.default_rng(1)
    frames = [encode(rng.integers(0, 255, (300, 400, 3), np.uint8), quality=100) for _ in range(6)]
    assert sum(map(len, frames)) > 1024 * 1024 > max(map(len, frames))
    status, body = await post(client, auth, frames)
    assert status == 413 and body == {"error": "too_large", "message": "The frames are too large together. Max limit 1MB."}
    assert leftover_media(app[CONFIG]) == []


async def test_frames_of_different_sizes_are_refused_with_400(api, face_jpegs):
    client, _, auth = api
    other = encode(media.face_frames(1, size=(320, 180))[0])
    status, body = await post(client, auth, [face_jpegs[0], other])
    assert status == 400 and body["message"] == "Frame 2 is 320x180; the frames must all be 480x270 like the first."


@pytest.mark.parametrize("times", [None, "[0, 1]", "[0, -1, 2]", '["a", 1, 2]', "[0, NaN, 1]", "{}"])
async def test_times_that_do_not_give_one_time_per_frame_are_refused_with_400(api, face_jpegs, times):
    client, _, auth = api
    fd = aiohttp.FormData()
    for data in face_jpegs[:3]:
        fd.add_field("frame", data, filename="f.jpg")
    if times is not None:
        fd.add_field("times", times)
    r = await client.post("/v1/checks/frames", data=fd, headers=auth)
    body = await r.json()
    assert r.status == 400 and body["message"].startswith("times must be a JSON array of 3 non-negative numbers"), body


async def test_bad_frames_count_or_page_url_is_refused_with_400(api, face_jpegs):
    client, app, auth = api
    status, body = await post(client, auth, face_jpegs[:2], frames=13)
    assert status == 400 and body["error"] == "bad_request"
    status, body = await post(client, auth, face_jpegs[:2], page_url="javascript:alert(1)")
    assert status == 400 and body["error"] == "bad_url"
    assert leftover_media(app[CONFIG]) == []


async def test_not_multipart_is_refused_with_400(api):
    client, _, auth = api
    r = await client.post("/v1/checks/frames", json={"frames": []}, headers=auth)
    assert r.status == 400 and (await r.json())["error"] == "bad_request"


async def test_frames_need_the_token(api, face_jpegs):
    client, _, _ = api
    r = await client.post("/v1/checks/frames", data=frames_form(face_jpegs[:1]))
    assert r.status == 401


async def test_a_frame_whose_pixels_do_not_decode_fails_the_check_with_not_media(api, face_jpegs):
    """Header and end marker intact, the compressed pixels garbage: only the worker finds out."""
    client, _, auth = api
    png = encode(media.face_frames(1, size=(320, 180))[0], "PNG")
    at = png.index(b"IDAT") + 4
    broken = png[:at] + bytes(200) + png[at + 200:]
    status, body = await post(client, auth, [broken])
    assert status == 202, body
    done = await wait_done(client, auth, body["id"])
    assert done["status"] == "failed" and done["error"]["error"] == "not_media", done
    assert done["error"]["message"].startswith("Frame 1 could not be decoded")


async def test_frames_wait_encrypted_and_no_frame_bytes_stay_on_disk(app_factory, face_jpegs, worker):
    """While queued the frames are one encrypted file (DFC1); none of their bytes are anywhere in
    the data dir in the clear, during or after the check."""
    client, app, auth = await app_factory()
    config = app[CONFIG]
    # hold the worker so the check waits in the queue
    worker._lock.acquire()
    try:
        status, body = await post(client, auth, face_jpegs[:4])
        assert status == 202
        stored = list(config.media_dir.iterdir())
        assert len(stored) == 1 and stored[0].read_bytes().startswith(MAGIC)
        everything = b"".join(p.read_bytes() for p in config.data_dir.rglob("*") if p.is_file())
        assert all(f[100:200] not in everything for f in face_jpegs[:4])
    finally:
        worker._lock.release()
    assert (await wait_done(client, auth, body["id"]))["status"] == "done"
    assert leftover_media(config) == [] and list(config.media_dir.iterdir()) == []
    assert app[STORE].key  # the key never left this process but for the worker's pipe
