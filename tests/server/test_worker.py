"""The inference worker process on its own: a check, a check over its time, what it leaves behind."""
from __future__ import annotations

import pytest

from server.media import MediaStore
from server.worker import InferenceWorker, ModelUnavailable, WorkerFailed

VERDICTS = ("REAL", "FAKE", "UNCERTAIN", "NO_FACE")


def test_worker_checks_encrypted_media_and_leaves_no_plaintext(worker, media_dir, tmp_path):
    store = MediaStore(tmp_path)
    m = store.encrypt_file(media_dir / "face.jpg")
    out = worker.run(m.path, store.key, ".jpg", 10, timeout_s=60)
    assert out.verdict["verdict"] in VERDICTS and out.heatmap_png.startswith(b"\x89PNG")
    assert list(worker.plain_dir.iterdir()) == []
    assert worker.info["name"] == "tiny" and 20 in worker.frame_choices


def test_the_plaintext_of_a_running_check_is_named_on_no_filesystem(worker, tmp_path):
    """Decrypted media lives in an anonymous memory file while the worker reads it: nothing in the
    temp dir (or anywhere else) for a killed server to leave behind."""
    import media

    store = MediaStore(tmp_path)
    clip = media.write_clip(tmp_path / "slow.mp4", media.face_frames(60, (1280, 720)))
    m = store.encrypt_file(clip)
    seen = []
    worker.run(m.path, store.key, ".mp4", 40, timeout_s=120,
               on_stage=lambda stage: seen.append(sorted(p.name for p in worker.plain_dir.iterdir())))
    assert seen and seen == [[]] * len(seen)


def test_media_under_another_key_is_refused_not_decoded(worker, media_dir, tmp_path):
    m = MediaStore(tmp_path).encrypt_file(media_dir / "face.jpg")
    with pytest.raises(WorkerFailed) as e:
        worker.run(m.path, MediaStore(tmp_path).key, ".jpg", 10, timeout_s=60)
    assert e.value.code == "internal" and "could not be read" in e.value.message


def test_check_over_its_time_is_killed_and_the_worker_restarts(worker, shared_data, media_dir, tmp_path):
    store = MediaStore(tmp_path)
    m = store.encrypt_file(shared_data / "real" / "liveportrait-driving-d19.mp4")
    old = worker.pid
    with pytest.raises(WorkerFailed) as e:
        worker.run(m.path, store.key, ".mp4", 100, timeout_s=0.5)
    assert e.value.code == "timeout" and worker.pid != old
    assert list(worker.plain_dir.iterdir()) == []
    m2 = store.encrypt_file(media_dir / "face.jpg")
    assert worker.run(m2.path, store.key, ".jpg", 10, timeout_s=60).verdict["verdict"] in VERDICTS


def test_a_check_that_needs_too_much_memory_is_stopped_and_the_worker_restarts(worker, media_dir, tmp_path):
    """The worker's memory is capped per check (a watchdog reads its RSS): a file whose decoding
    would blow it up fails with too_large, and a fresh worker takes the next check."""
    from PIL import Image

    from server.worker import rss_bytes

    big = tmp_path / "big.png"
    # 8K UHD, the largest image read: 0.1 MB on disk, ~100 MB decoded (a PNG cannot be decoded smaller)
    Image.new("RGB", (7680, 4320), (90, 120, 150)).save(big)
    store = MediaStore(tmp_path)
    m = store.encrypt_file(big)
    old, cap = worker.pid, worker.max_rss_mb
    worker.max_rss_mb = rss_bytes(worker.pid) // 2**20 + 50
    try:
        with pytest.raises(WorkerFailed) as e:
            worker.run(m.path, store.key, ".png", 10, timeout_s=120)
    finally:
        worker.max_rss_mb = cap
    assert e.value.code == "too_large" and "memory" in e.value.message and worker.pid != old
    m2 = store.encrypt_file(media_dir / "face.jpg")
    assert worker.run(m2.path, store.key, ".jpg", 10, timeout_s=60).verdict["verdict"] in VERDICTS


def test_unloadable_weights_are_reported_with_the_core_message(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ModelUnavailable, match="not a readable PyTorch checkpoint"):
        InferenceWorker(str(bad), "cpu", tmp_path / "plain").start()


def test_the_server_process_itself_never_loads_torch_or_yt_dlp():
    """Only the worker holds the model and only download children run yt-dlp: the process that
    listens stays small and cannot be crashed by them."""
    import subprocess
    import sys

    from testenv import ROOT

    # the verdict rule and the calibration's cuts (numpy) may be used there (personal cuts); nothing heavier
    heavy = ('torch', 'torchvision', 'cv2', 'av', 'yt_dlp', 'model.check', 'model.network', 'model.weights', 'model.faces')
    code = f"import sys, server.app, server.__main__; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_worker_reports_the_pipeline_stages_as_they_start(worker, media_dir, tmp_path):
    store = MediaStore(tmp_path)
    media = store.encrypt_file(media_dir / "face.jpg")
    stages = []
    out = worker.run(media.path, store.key, ".jpg", 10, 120.0, on_stage=stages.append)
    assert out.verdict["verdict"] in ("REAL", "FAKE", "UNCERTAIN")
    assert stages == ["decode", "detect", "crop", "model"]


def test_the_model_leaves_one_core_free_unless_told_otherwise(monkeypatch):
    import os

    from server.worker import cpu_threads

    monkeypatch.delenv("DEEPFAKE_CHECK_THREADS", raising=False)
    assert cpu_threads() == max(1, (os.cpu_count() or 2) - 1)
    monkeypatch.setenv("DEEPFAKE_CHECK_THREADS", "3")
    assert cpu_threads() == 3
