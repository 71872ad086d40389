from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import media  # noqa: E402
from testenv import ROOT, shared_data_dir  # noqa: E402,F401

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared data (../shared/data) is not present on this machine")
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """A folder of generated test media shared by the session."""
    d = tmp_path_factory.mktemp("media")
    media.write_clip(d / "face.mp4", media.face_frames(30))
    media.write_clip(d / "noface.mp4", media.no_face_frames(10))
    media.write_clip(d / "twofaces.mp4", media.two_face_frames(10))
    media.write_clip(d / "oneframe.mp4", media.face_frames(1))
    Image.fromarray(media.head()).save(d / "face.jpg", quality=92)
    Image.fromarray(media.no_face_frames(1)[0]).save(d / "noface.png")
    (d / "notes.mp4").write_text("this is a text file, not a video\n")
    data = (d / "face.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    return d


@pytest.fixture(scope="session")
def c2pa_files(media_dir, tmp_path_factory) -> dict[str, Path]:
    """Files with Content Credentials signed in the test (credentials.make_set): ai.jpg, ai.mp4,
    camera.jpg, edited.jpg, tampered.jpg, trusted.jpg (under anchor.pem), plain.jpg (none)."""
    import credentials

    return credentials.make_set(media_dir, tmp_path_factory.mktemp("c2pa"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained small model saved in this project's format (for plumbing, never for verdicts)."""
    from model.network import DeepfakeDetector
    from model.spec import ModelSpec
    from model.weights import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, DeepfakeDetector(ModelSpec(name="tiny")))
    return path


@pytest.fixture(scope="session")
def worker(tiny_checkpoint, tmp_path_factory):
    """One real inference worker process with the tiny model, shared by the in-process app tests
    of tests/server and tests/robustness."""
    from server.worker import InferenceWorker

    w = InferenceWorker(str(tiny_checkpoint), "cpu", tmp_path_factory.mktemp("plain"))
    w.start()
    yield w
    w.stop(grace_s=5)


@pytest.fixture(scope="session")
def hung_server():
    """Accepts connections and never answers: a stuck site or extractor."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/video.mp4"
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    sock.close()


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: while Playwright's sync API holds a browser open (one per session,
    since a pairing code works once), it owns this thread's event loop, and asyncio tests after it
    could not start their own."""
    e2e = ROOT / "tests" / "e2e"
    items.sort(key=lambda item: Path(str(item.path)).is_relative_to(e2e))
