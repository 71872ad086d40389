"""The quality benchmark, calibration and the fixed splits: metrics against hand values, the command
end to end on a tiny generated labelled set, thresholds read from a checkpoint and applied."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import media
import numpy as np
import pytest
import torch
from testenv import ROOT

from model.calibration import fit_platt
from model.training.quality import Item, Result, fake_row, real_row, recall_at_fpr, tables
from model.training.splits import SPLITS, SPLITS_FILE, Splits


def _items(n_real: int, n_fake: int) -> list[Item]:
    return ([Item(f"r{i}.mp4", "REAL", "real", "MEAD", f"g{i}", "video") for i in range(n_real)]
            + [Item(f"f{i}.mp4", "FAKE", "talking-head", "VASA-1", f"h{i}", "video") for i in range(n_fake)])


def _results(items, score) -> dict[str, Result]:
    out = {}
    for it in items:
        p = score(it)
        out[it.path] = Result(it.path, "FAKE" if p >= 0.5 else "REAL", p, 0.1)
    return out


def test_a_perfect_scorer_has_auc_one_and_a_constant_one_half():
    items = _items(20, 10)
    reals, fakes = items[:20], items[20:]
    perfect = _results(items, lambda it: 0.9 if it.label == "FAKE" else 0.1)
    row = fake_row(fakes, reals, perfect)
    assert row["auc"] == 1.0 and row["recall"] == 1.0 and row["recall_at_5fpr"] == 1.0
    constant = _results(items, lambda it: 0.3)
    row = fake_row(fakes, reals, constant)
    assert row["auc"] == 0.5 and row["recall"] == 0.0 and row["recall_at_5fpr"] == 0.0
    assert real_row(reals, perfect)["called_fake"] == 0.0


def test_a_two_head_model_is_reported_per_head_beside_the_combined_score():
    items = _items(20, 10)
    reals, fakes = items[:20], items[20:]
    res = {}
    for n, it in enumerate(items):  # the generation head ranks perfectly, the blend head not at all
        sig = {"blend": 0.4, "generation": 0.9 if it.label == "FAKE" else 0.1 + n * 0.001}
        res[it.path] = Result(it.path, "REAL", max(sig.values()), 0.1, signals=sig)
    row = fake_row(fakes, reals, res)
    assert row["auc_by_head"] == {"blend": 0.5, "generation": 1.0} and row["auc"] == 1.0
    assert "auc_by_head" not in fake_row(fakes, reals, _results(items, lambda it: 0.3))  # a one-head model


def test_recall_at_five_percent_false_positives_matches_a_hand_count():
    reals = [i / 20 for i in range(20)]  # 0.00 .. 0.95: one real (5 %) may be at or above the threshold
    fakes = [0.2, 0.92, 0.95, 0.97, 0.99]
    # the threshold sits just above 0.90 (the second highest real): 0.92, 0.95, 0.97 and 0.99 pass
    assert recall_at_fpr(reals, fakes) == pytest.approx(0.8)


def test_tables_have_a_row_per_family_method_and_real_source():
    items = _items(4, 2) + [Item("e.mp4", "FAKE", "talking-head", "EMO", "e", "video")]
    t = tables(items, _results(items, lambda it: 0.7 if it.label == "FAKE" else 0.2))
    assert "talking-head (all)" in t["fakes"] and "talking-head / EMO" in t["fakes"]
    assert any(k.startswith("talking-head, unseen generators") for k in t["fakes"])
    assert t["reals"]["MEAD"]["n"] == 4 and t["reals"]["all real videos"]["called_fake"] == 0.0


def test_networks_are_compared_alone_on_the_files_all_of_them_scored(tmp_path):
    """A policy that declines the hard files raises its AUC on the rest: the networks-alone table scores
    every file as it is (the abstention rows' raw scores), only on files every network has."""
    from model.training.quality import network_tables

    items = _items(4, 2)

    def rows(path, score, skip=()):
        path.write_text("".join(json.dumps({"path": it.path, "defect": d, "label": it.label,
                                            "faces": [{"p": score(it)}, {"p": 0.0}]}) + "\n"
                                for it in items if it.path not in skip for d in ("none", "dark")))
        return str(path)

    good = rows(tmp_path / "a.jsonl", lambda it: 0.9 if it.label == "FAKE" else 0.1)
    coin = rows(tmp_path / "b.jsonl", lambda it: 0.5, skip={"r0.mp4"})
    nets = network_tables(items, [["A", good], ["B", coin]])
    assert (nets["n_files"], nets["of"]) == (5, 6)  # r0 is missing from B's rows: left out for both
    assert nets["tables"]["A"]["talking-head (all)"]["auc"] == 1.0
    assert nets["tables"]["B"]["talking-head (all)"]["auc"] == 0.5
    assert nets["tables"]["A"]["talking-head (all)"]["n_reals"] == 3


def test_platt_fit_moves_a_shifted_score_back_to_one_half():
    # fakes score around 0.9, reals around 0.7: the fit must put 0.5 between them and keep the order
    rng = np.random.default_rng(1)
    raw = np.r_[rng.uniform(0.6, 0.8, 100), rng.uniform(0.85, 0.95, 100)]
    a, b = fit_platt(raw.tolist(), [0] * 100 + [1] * 100)
    mapped = 1 / (1 + np.exp(-(a * np.log(raw / (1 - raw)) + b)))
    assert a > 0 and mapped[:100].mean() < 0.5 < mapped[100:].mean()


def test_platt_fit_stays_put_when_many_scores_sit_at_the_networks_ceiling():
    # the scores the video model gave on cal (rounded): most fakes at its ceiling (0.993), reals over
    # the whole range; a plain Newton step from the identity overshot to a=201, b=14 (every real
    # above 0.5 became 1.0). The fit must land at the loss minimum, a mild map.
    reals = np.array([0.113, 0.119, 0.14, 0.141, 0.141, 0.149, 0.151, 0.152, 0.152, 0.153, 0.168, 0.189, 0.195, 0.227,
                      0.241, 0.245, 0.247, 0.268, 0.3, 0.301, 0.316, 0.351, 0.377, 0.497, 0.58, 0.612, 0.683, 0.685,
                      0.705, 0.73, 0.741, 0.77, 0.837, 0.863, 0.886, 0.905, 0.947, 0.953, 0.978, 0.982, 0.99, 0.993])
    fakes = np.r_[[0.104, 0.123, 0.141, 0.161, 0.174, 0.182, 0.197, 0.238, 0.249, 0.306, 0.309, 0.33, 0.341, 0.354,
                   0.394, 0.403, 0.461, 0.523, 0.542, 0.603, 0.707, 0.793, 0.814, 0.824, 0.85, 0.871, 0.887, 0.9,
                   0.907, 0.929, 0.941, 0.962, 0.965, 0.968, 0.97, 0.98, 0.981, 0.982, 0.984, 0.986, 0.988],
                  [0.952, 0.953, 0.971, 0.985, 0.989, 0.99] * 2, [0.991] * 4, [0.992] * 5, [0.993] * 31]
    raw, labels = np.r_[reals, fakes], [0] * len(reals) + [1] * len(fakes)
    a, b = fit_platt(raw.tolist(), labels)
    x = np.log(raw / (1 - raw))
    y = np.asarray(labels, float)
    w = np.where(y == 1, 0.5 / y.sum(), 0.5 / (1 - y).sum())

    def loss(a, b):
        z = a * x + b
        return np.sum(w * (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))) + 5e-3 * ((a - 1) ** 2 + b ** 2)

    grid = min(loss(ga, gb) for ga in np.linspace(0.05, 3, 60) for gb in np.linspace(-3, 3, 61))
    assert 0 < a < 3 and abs(b) < 3 and loss(a, b) <= grid + 1e-6


def test_the_split_file_puts_no_group_on_two_sides():
    seen: dict[tuple[str, str], str] = {}
    for row in csv.DictReader(r for r in open(SPLITS_FILE) if not r.startswith("#")):
        key = (row["source"], row["group"])
        assert key not in seen, f"{key} listed twice"
        seen[key] = row["split"]
        assert row["split"] in SPLITS or row["split"].startswith("hash:") or row["split"] == "as-video"
    s = Splits()
    assert s.of("video", "celebdf-id13") == "test" and s.of("video", "emo-talk_hb") == "test"
    assert s.of("synthetic", "synth-celebdf-id13") == "test"  # a made fake takes its source clip's split
    by_group: dict[str, set[str]] = {}
    for (source, group), split in seen.items():
        if source == "video":
            by_group.setdefault(group, set()).add(split)
    assert all(len(v) == 1 for v in by_group.values())


def test_calibration_stored_in_a_checkpoint_sets_the_verdict(tmp_path, media_dir):
    from model import check
    from model.network import DeepfakeDetector
    from model.spec import ModelSpec
    from model.weights import load_model, save_checkpoint

    torch.manual_seed(0)
    net = DeepfakeDetector(ModelSpec(name="calibrated", backbone="mobilenet_v3_small", hidden=16))
    plain, calibrated = tmp_path / "plain.pt", tmp_path / "calibrated.pt"
    save_checkpoint(plain, net)
    v0 = check(media_dir / "face.mp4", model=load_model(plain))
    assert (v0.threshold, v0.uncertain_band) == (0.5, 0.1)
    # a map that sends every score to ~1 and a low threshold: the same network must now say FAKE
    save_checkpoint(calibrated, net, extra={"calibration": {"platt": [1.0, 20.0], "threshold": 0.3, "uncertain_band": 0.05}})
    loaded = load_model(calibrated)
    assert (loaded.threshold, loaded.uncertain_band) == (0.3, 0.05)
    v = check(media_dir / "face.mp4", model=loaded)
    assert v.verdict == "FAKE" and v.p_fake > 0.99 and (v.threshold, v.uncertain_band) == (0.3, 0.05)
    assert v.faces[0].p_fake == v.p_fake  # faces report the same calibrated probability


def test_quality_command_on_a_tiny_generated_set(tmp_path, tiny_checkpoint):
    root = tmp_path / "videos"
    (root / "real").mkdir(parents=True)
    (root / "fake").mkdir()
    rows = []
    for i in range(2):
        media.write_clip(root / "real" / f"r{i}.mp4", media.face_frames(6))
        media.write_clip(root / "fake" / f"f{i}.mp4", media.face_frames(6)[::-1])
        rows += [[f"real/r{i}.mp4", "REAL", "real", "MEAD", f"r{i}"], [f"fake/f{i}.mp4", "FAKE", "talking-head", "VASA-1", f"f{i}"]]
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["file", "label", "family", "method", "group"], *rows])
    (tmp_path / "splits.csv").write_text("source,group,split,why\nvideo,*,test,all\n")
    out = tmp_path / "q"
    r = subprocess.run([sys.executable, "-m", "model.training.quality", "--weights", str(tiny_checkpoint), "--weights",
                        str(tiny_checkpoint), "--video-dir", str(root), "--data", str(tmp_path / "none"),
                        "--synth-dir", str(tmp_path / "none"), "--splits", str(tmp_path / "splits.csv"),
                        "--frames", "10", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((out / "quality.json").read_text())
    assert len(report["models"]) == 2 and len(report["items"]) == 4
    first = report["tables"][report["models"][0]["name"]]
    assert first["fakes"]["talking-head / VASA-1"]["n"] == 2 and first["reals"]["MEAD"]["n"] == 2
    assert 0.0 <= first["fakes"]["talking-head / VASA-1"]["auc"] <= 1.0 or math.isnan(first["fakes"]["talking-head / VASA-1"]["auc"])
    assert "| talking-head / VASA-1 | 2 / 2 |" in (out / "quality.md").read_text()


def test_the_shortcut_classifier_finds_a_format_cue_and_not_noise():
    from model.training.shortcuts import logistic_cv_auc

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60), np.ones(60)]
    groups = [f"g{i}" for i in range(120)]
    width = np.where(y == 1, 512.0, 1280.0) + rng.normal(0, 5, 120)  # fakes are all 512 px wide
    assert logistic_cv_auc(width[:, None], y, groups) > 0.95
    noise = rng.normal(0, 1, (120, 3))
    assert 0.3 < logistic_cv_auc(noise, y, groups) < 0.7
