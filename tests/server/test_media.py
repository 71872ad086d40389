"""The encrypted media store, content sniffing and the sweeper."""
from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import time
from pathlib import Path

import aiohttp
import pytest
from realserver import leftover_media

from server.app import create_app
from server.keys import CONFIG, JOBS, PLAIN_DIR, STORE, TOKENS
from server.media import (
    CHUNK,
    SNIFF_BYTES,
    CorruptMedia,
    MediaStore,
    decrypt_records,
    decrypted,
    new_plain_dir,
    sniff,
    sweep,
    wipe_dir,
)
from server.private import NotOwnDir


def windows(data: bytes, size: int = 32, step: int = 4096) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data) - size, step)]


def stored(store: MediaStore, data: bytes, piece: int = 10_000):
    w = store.writer()
    for i in range(0, len(data), piece):
        w.write(data[i:i + piece])
    return w.finish()


def test_stored_media_is_encrypted_and_decrypts_to_the_original(tmp_path, media_dir):
    data = (media_dir / "face.mp4").read_bytes() * 8  # several records
    assert len(data) > 2 * CHUNK
    store = MediaStore(tmp_path)
    m = stored(store, data)
    on_disk = m.path.read_bytes()
    assert not any(w in on_disk for w in windows(data))
    assert b"ftyp" not in on_disk
    assert b"".join(decrypt_records(store.key, m.path)) == data
    assert m.size == len(data) and m.head == data[:SNIFF_BYTES] and sniff(m.head) == ("video", ".mp4")
    assert oct(m.path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux's")
def test_decrypted_media_is_an_anonymous_memory_file(tmp_path, media_dir):
    data = (media_dir / "face.mp4").read_bytes()
    store = MediaStore(tmp_path)
    m = stored(store, data)
    with decrypted(store.key, m.path, tmp_path / "plain.mp4") as path:
        assert os.readlink(path).startswith("/memfd:") and Path(path).read_bytes() == data
        assert not (tmp_path / "plain.mp4").exists()


def test_without_memfd_the_plaintext_is_a_private_file_deleted_afterwards(tmp_path, media_dir, monkeypatch):
    import server.media

    monkeypatch.setattr(server.media, "_memory_file", lambda: None)  # a system without memfd
    data = (media_dir / "face.jpg").read_bytes()
    store = MediaStore(tmp_path)
    m = stored(store, data)
    fallback = tmp_path / "plain.jpg"
    with decrypted(store.key, m.path, fallback) as path:
        assert path == str(fallback) and fallback.read_bytes() == data
        assert oct(fallback.stat().st_mode & 0o777) == "0o600"
    assert not fallback.exists()


def test_media_from_an_earlier_run_cannot_be_decrypted(tmp_path, media_dir):
    m = stored(MediaStore(tmp_path), (media_dir / "face.jpg").read_bytes())
    with pytest.raises(CorruptMedia):
        b"".join(decrypt_records(MediaStore(tmp_path).key, m.path))  # a new process: a new key


@pytest.mark.parametrize("damage", ["truncate_record", "drop_last_record", "flip_byte"])
def test_tampered_media_is_detected(tmp_path, damage):
    store = MediaStore(tmp_path)
    m = stored(store, os.urandom(CHUNK * 2 + 100))
    raw = bytearray(m.path.read_bytes())
    if damage == "truncate_record":
        raw = raw[:-10]
    elif damage == "drop_last_record":
        raw = raw[: 12 + 2 * (4 + CHUNK + 16)]
    else:
        raw[40] ^= 1
    m.path.write_bytes(bytes(raw))
    with pytest.raises(CorruptMedia):
        b"".join(decrypt_records(store.key, m.path))


def test_empty_file_round_trips(tmp_path):
    store = MediaStore(tmp_path)
    m = stored(store, b"")
    assert b"".join(decrypt_records(store.key, m.path)) == b"" and m.size == 0


@pytest.mark.parametrize("name, expected", [
    ("face.mp4", ("video", ".mp4")), ("oneframe.mp4", ("video", ".mp4")), ("truncated.mp4", ("video", ".mp4")),
    ("face.jpg", ("image", ".jpg")), ("noface.png", ("image", ".png")), ("notes.mp4", None),
])
def test_sniffing_reads_content_not_names(media_dir, name, expected):
    data = (media_dir / name).read_bytes()
    assert sniff(data[:SNIFF_BYTES], len(data)) == expected


@pytest.mark.parametrize("head, expected", [
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", ("video", ".webm")),
    (b"RIFF\x00\x00\x00\x00AVI LIST", ("video", ".avi")),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", ("image", ".webp")),
    (b"GIF89a\x01\x00", ("video", ".gif")),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00", ("video", ".mov")),
    (b"%PDF-1.7\n", None), (b"PK\x03\x04", None), (b"<html>", None), (b"", None),
])
def test_sniffing_known_signatures(head, expected):
    assert sniff(head) == expected


def _text(first: bytes) -> bytes:
    return first + b" and then some more ordinary words in a text file, line after line.\n" * 20


@pytest.mark.parametrize("data", [
    _text(b"Good morning"), _text(b"GET / HTTP/1.1"), _text(b"Grocery list"),  # 'G' + a letter: one TS sync byte
    _text(b"Thisfree"), _text(b"abcdmoov"), _text(b"1234skip"), _text(b"wxyzwide"), _text(b"notamdat"),
    b"G" + bytes(187) + b"G" + bytes(400),  # two sync bytes, but not the third
    b"\x00\x00\x00\x08free" + b"plain text after a box header" * 20,  # the next "box" is text
    b"\x00\x00\x00\x04moov" + bytes(600),  # a box smaller than its own header
])
def test_text_and_junk_that_only_look_like_media_at_a_glance_are_refused(data):
    assert sniff(data[:SNIFF_BYTES], len(data)) is None


def _mpegts(path) -> bytes:
    import av
    import media
    import numpy as np

    with av.open(str(path), mode="w", format="mpegts") as out:
        st = out.add_stream("libx264", rate=10)
        st.width, st.height, st.pix_fmt = 160, 90, "yuv420p"
        for img in media.face_frames(3, (160, 90)):
            for pkt in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path.read_bytes()


def test_a_real_transport_stream_is_recognised(tmp_path):
    data = _mpegts(tmp_path / "clip.ts")
    assert sniff(data[:SNIFF_BYTES], len(data)) == ("video", ".ts")


def test_a_quicktime_file_without_ftyp_is_recognised(media_dir):
    """Old QuickTime files start with wide/free/mdat/moov boxes and no ftyp."""
    data = (media_dir / "face.mp4").read_bytes()
    rest = data[int.from_bytes(data[:4], "big"):]  # the file without its ftyp box
    wide = b"\x00\x00\x00\x08wide"
    for variant in (wide + rest, rest):
        assert sniff(variant[:SNIFF_BYTES], len(variant)) == ("video", ".mov"), variant[:16]


def test_sweeper_removes_entries_older_than_the_limit_only(tmp_path):
    old, new = tmp_path / "old.enc", tmp_path / "new.enc"
    old_dir = tmp_path / "olddir"
    for p in (old, new):
        p.write_bytes(b"x")
    old_dir.mkdir()
    (old_dir / "media.mp4").write_bytes(b"x")
    past = time.time() - 31 * 60
    os.utime(old, (past, past))
    os.utime(old_dir, (past, past))
    assert sweep([tmp_path], 30 * 60) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.enc"]


def test_leftovers_are_wiped_at_start(tmp_path):
    (tmp_path / "a.enc").write_bytes(b"x")
    (tmp_path / "d").mkdir()
    assert wipe_dir(tmp_path) == 2 and list(tmp_path.iterdir()) == []
    assert oct(tmp_path.stat().st_mode & 0o777) == "0o700"


@pytest.mark.asyncio
async def test_upload_waiting_for_the_worker_is_encrypted_on_disk_then_deleted(aiohttp_client, make_config, worker, media_dir):
    """Hold the worker busy so the uploaded file sits in the store; look at it; let the check run."""
    app = create_app(make_config(), worker=worker)
    client = await aiohttp_client(app)
    auth = {"Authorization": f"Bearer {app[TOKENS].token}"}
    data = (media_dir / "face.mp4").read_bytes()
    fd = aiohttp.FormData()
    fd.add_field("file", data, filename="face.mp4")
    fd.add_field("frames", "10")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, worker._lock.acquire)
    try:
        r = await client.post("/v1/checks/upload", data=fd, headers=auth)
        check_id = (await r.json())["id"]
        files = list(app[CONFIG].media_dir.iterdir())
        assert len(files) == 1
        on_disk = files[0].read_bytes()
        assert not any(w in on_disk for w in windows(data, step=512))
        assert b"".join(decrypt_records(app[STORE].key, files[0])) == data
    finally:
        worker._lock.release()
    for _ in range(300):
        if app[JOBS].get(check_id).finished:
            break
        await asyncio.sleep(0.1)
    assert app[JOBS].get(check_id).status == "done"
    assert leftover_media(app[CONFIG]) == []


# --- the directory for decrypted files --------------------------------------------------------
def predictable_ram_dir(data_dir) -> Path:
    """The name the server used to give its RAM directory: anyone on the machine could work it out."""
    tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return Path("/dev/shm") / f"deepfake-check-{os.getuid()}-{tag}"


@pytest.fixture
def victim(tmp_path) -> Path:
    """A folder of the user's that another local user would like emptied."""
    d = tmp_path / "victim"
    d.mkdir(mode=0o755)
    (d / "canary").write_text("still here")
    return d


async def start_and_stop(aiohttp_client, config, worker) -> Path:
    """Starts an app with this config, runs a check through it, stops it; returns its decrypted-files dir."""
    app = create_app(config, worker=worker)
    client = await aiohttp_client(app)
    auth = {"Authorization": f"Bearer {app[TOKENS].token}"}
    assert (await client.get("/v1/model", headers=auth)).status == 200
    plain = app[PLAIN_DIR]
    await client.close()
    return plain


@pytest.mark.asyncio
async def test_a_symlink_at_the_predictable_ram_path_is_not_followed(aiohttp_client, make_config, worker, tmp_path, victim):
    planted = predictable_ram_dir(tmp_path / "data")
    planted.symlink_to(victim)
    try:
        await start_and_stop(aiohttp_client, make_config(plain_dir=None), worker)
    finally:
        planted.unlink()
    assert (victim / "canary").read_text() == "still here"
    assert oct(victim.stat().st_mode & 0o777) == "0o755"


@pytest.mark.asyncio
async def test_another_users_folder_at_the_predictable_ram_path_is_neither_used_nor_emptied(
        aiohttp_client, make_config, worker, tmp_path):
    planted = predictable_ram_dir(tmp_path / "data")
    planted.mkdir()
    planted.chmod(0o777)
    (planted / "theirs").write_text("x")
    os.chown(planted, 65534, 65534)  # nobody's
    try:
        plain = await start_and_stop(aiohttp_client, make_config(plain_dir=None), worker)
        assert plain != planted and (planted / "theirs").exists()
        assert planted.stat().st_uid == 65534 and oct(planted.stat().st_mode & 0o777) == "0o777"
    finally:
        shutil.rmtree(planted)


@pytest.mark.asyncio
async def test_each_run_gets_a_new_private_ram_dir_removed_at_shutdown(aiohttp_client, make_config, worker):
    config = make_config(plain_dir=None)
    first = await start_and_stop(aiohttp_client, config, worker)
    second = await start_and_stop(aiohttp_client, config, worker)
    assert first != second and first.parent == Path("/dev/shm")
    assert not first.exists() and not second.exists()


@pytest.mark.asyncio
async def test_the_ram_dir_of_a_killed_run_is_removed_at_the_next_start(aiohttp_client, make_config, worker):
    config = make_config(plain_dir=None)
    config.data_dir.mkdir(parents=True)
    left = new_plain_dir(config.data_dir, config.plain_dir_record)  # what a run made before it was killed
    (left / "decrypted.mp4").write_bytes(b"plaintext")
    app = create_app(config, worker=worker)
    client = await aiohttp_client(app)
    assert not left.exists() and app[PLAIN_DIR] != left and app[PLAIN_DIR].is_dir()
    await client.close()


@pytest.mark.asyncio
async def test_a_symlink_planted_where_a_killed_runs_ram_dir_was_is_not_followed(
        aiohttp_client, make_config, worker, victim):
    config = make_config(plain_dir=None)
    config.data_dir.mkdir(parents=True)
    left = new_plain_dir(config.data_dir, config.plain_dir_record)
    left.rmdir()  # gone with a reboot; then someone else takes the name
    left.symlink_to(victim)
    try:
        await start_and_stop(aiohttp_client, config, worker)
        assert left.is_symlink()
    finally:
        left.unlink()
    assert (victim / "canary").read_text() == "still here"


def test_a_temp_dir_that_is_a_symlink_or_someone_elses_is_refused(tmp_path, victim):
    link = tmp_path / "link"
    link.symlink_to(victim)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 65534, 65534)
    for d in (link, foreign):
        with pytest.raises(NotOwnDir):
            wipe_dir(d)
    assert (victim / "canary").exists()
