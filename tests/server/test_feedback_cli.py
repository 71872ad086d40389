"""`python -m server feedback calibrate|export` as a user runs it, on a history written by the
server's own store (server/history.py) in a temporary data folder; the export is read back by
`python -m model.training.prepare`, for real."""
from __future__ import annotations

import csv
import json
import os
import re
import stat
import subprocess
import sys

import media
import pytest
from testenv import ROOT

from server.config import Config
from server.history import Entry, History
from server.personal import MIN_ANSWERS


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(config_dir=tmp_path / "config", data_dir=tmp_path / "data")


def history_of(config: Config) -> History:
    return History(config.cache_path, config.kept_dir, config.clip_key_path)


def dirs(config: Config) -> list[str]:
    return ["--config-dir", str(config.config_dir), "--data-dir", str(config.data_dir)]


def add_answers(config: Config, answers: list[tuple[float, str]], start: int = 0, verdict: str = "UNCERTAIN") -> None:
    h = history_of(config)
    for i, (p, label) in enumerate(answers, start):
        h.add(Entry(id=f"{i:016d}", created=1000.0 + i, source="url", verdict=verdict, p_fake=p, model="tiny",
                    model_sha256="ab" * 32, model_threshold=0.5, model_band=0.1))
        h.answer(f"{i:016d}", label, None)
    h.close()


def test_export_writes_the_kept_clips_with_their_labels_and_prepare_reads_them(config, tmp_path):
    clip = media.write_clip(tmp_path / "kept-face.mp4", media.face_frames(8, size=(320, 180)))
    h = history_of(config)
    h.add(Entry(id="kept000000000000", created=1.0, source="upload", verdict="FAKE", p_fake=0.9,
                content_sha256="c0ffee" * 10 + "abcd"))
    h.add(Entry(id="unkept0000000000", created=2.0, source="upload", verdict="FAKE", p_fake=0.9))
    h.add(Entry(id="unanswered000000", created=3.0, source="upload", verdict="REAL", p_fake=0.1))
    h.answer("kept000000000000", "REAL", "my own video")
    h.answer("unkept0000000000", "REAL", None)
    h.keep_clip("kept000000000000", h.encrypt_clip(clip), ".mp4")
    h.keep_clip("unanswered000000", h.encrypt_clip(clip), ".mp4")  # kept, but no label: nothing to train with
    h.close()
    out = tmp_path / "export"
    r = run("server", "feedback", "export", "--out", str(out), *dirs(config))
    assert r.returncode == 0, r.stderr
    assert "Exported 1 kept clips" in r.stdout and "1 answers without a kept clip" in r.stdout
    with open(out / "labels.csv", newline="") as f:
        assert list(csv.reader(f)) == [["file", "label", "group"],
                                       ["clips/kept000000000000.mp4", "REAL", "feedback/c0ffeec0ffeec0ff"]]
    assert (out / "clips" / "kept000000000000.mp4").read_bytes() == clip.read_bytes()
    assert stat.S_IMODE((out / "clips" / "kept000000000000.mp4").stat().st_mode) == 0o600
    assert "my own video" not in (out / "labels.csv").read_text()  # notes stay in the history

    prepared = tmp_path / "prepared"
    r = run("model.training.prepare", str(out), str(prepared), "--labels", str(out / "labels.csv"),
            "--workers", "1", "--frames", "10", timeout=600)
    assert r.returncode == 0, r.stderr
    [record] = [json.loads(line) for line in (prepared / "index.jsonl").read_text().splitlines()]
    assert (record["file"], record["label"], record["group"]) == ("clips/kept000000000000.mp4", 0, "feedback/c0ffeec0ffeec0ff")
    assert "skipped" not in record and record["n"] >= 1, record
    assert (prepared / "crops" / f"{record['id']}.npz").is_file()


def test_calibrate_refuses_fewer_than_20_answers_and_writes_nothing(config):
    add_answers(config, [(0.3 + 0.01 * i, "REAL") for i in range(MIN_ANSWERS - 1)])
    r = run("server", "feedback", "calibrate", *dirs(config))
    assert r.returncode == 2 and f"at least {MIN_ANSWERS} videos" in r.stderr and "there are 19" in r.stderr
    assert not config.personal_calibration_path.exists()


def test_calibrate_shows_before_and_after_on_the_answers_writes_the_cuts_and_undo_removes_them(config):
    # the user's real videos score up to 0.68: the model's FAKE cut (0.6) calls five of them FAKE
    reals = [(0.3 + 0.02 * i, "REAL") for i in range(20)]
    fakes = [(0.8, "FAKE")] * 5
    add_answers(config, reals + fakes)
    r = run("server", "feedback", "calibrate", "--dry-run", *dirs(config))
    assert r.returncode == 0, r.stderr
    assert "25 answered videos (20 real, 5 fake)" in r.stdout and "nothing written" in r.stdout
    assert not config.personal_calibration_path.exists()
    r = run("server", "feedback", "calibrate", *dirs(config))
    assert r.returncode == 0, r.stderr
    cuts = json.loads(config.personal_calibration_path.read_text())
    assert stat.S_IMODE(os.stat(config.personal_calibration_path).st_mode) == 0o600
    assert cuts["threshold"] + cuts["uncertain_band"] > 0.6 and cuts["answers"] == 25
    assert cuts["before"]["real"]["FAKE"] == 5 and cuts["after"]["real"]["FAKE"] < cuts["before"]["real"]["FAKE"]
    for truth, n in (("real", 20), ("fake", 5)):  # the table says the same as the file
        for v in ("REAL", "UNCERTAIN", "FAKE"):
            assert re.search(rf"{truth} \({n}\)\s+{v}\s+{cuts['before'][truth][v]}\s+{cuts['after'][truth][v]}\n", r.stdout), r.stdout
    r = run("server", "feedback", "calibrate", "--undo", *dirs(config))
    assert r.returncode == 0 and "removed" in r.stdout and not config.personal_calibration_path.exists()
