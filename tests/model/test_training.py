"""prepare -> train (a few steps) -> evaluate on a tiny generated set; metrics against hand values."""
import json
import math
import subprocess
import sys

import media
import numpy as np
import pytest
from PIL import Image
from testenv import ROOT

from model.training.evaluate import confusion, roc_auc, roc_curve


def test_auc_matches_a_hand_computed_value():
    # fakes score 0.35 and 0.8, reals 0.1 and 0.4: of 4 fake/real pairs, 3 are ordered right
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts half
    assert roc_auc([0, 0, 1], [0.2, 0.3, 0.9]) == 1.0
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_roc_curve_runs_from_origin_to_one():
    fpr, tpr = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert (fpr[0], tpr[0]) == (0, 0) and (fpr[-1], tpr[-1]) == (1, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.75)


def test_confusion_counts_fake_as_positive():
    c = confusion([0, 0, 1, 1], [0.1, 0.6, 0.35, 0.8], threshold=0.5)
    assert (c["tp"], c["tn"], c["fp"], c["fn"]) == (1, 1, 1, 1)
    assert c["accuracy"] == 0.5


def _variants(n, seed):
    rng = np.random.default_rng(seed)
    base = media.head()
    out = []
    for _ in range(n):
        gain = rng.uniform(0.8, 1.2, 3)
        img = np.clip(base * gain, 0, 255).astype(np.uint8)
        out.append(img[:, ::-1] if rng.random() < 0.5 else img)
    return out


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    for label, seed in (("real", 0), ("fake", 1)):
        d = root / label
        d.mkdir()
        for i, img in enumerate(_variants(4, seed)):
            Image.fromarray(img).save(d / f"clip{label}{i}_{i}.jpg")
        media.write_clip(d / f"video_{label}.mp4", media.face_frames(8))
    (root / "real" / "broken.mp4").write_text("not a video")
    return root


def _run(*args, timeout=600):
    r = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_prepare_train_evaluate_end_to_end(tiny_dataset, tmp_path):
    cache = tmp_path / "cache"
    _run("model.training.prepare", str(tiny_dataset), str(cache), "--frames", "4", "--workers", "1")
    records = [json.loads(line) for line in (cache / "index.jsonl").read_text().splitlines()]
    assert len(records) == 11
    skipped = [r for r in records if "skipped" in r]
    assert [r["file"] for r in skipped] == ["real/broken.mp4"]
    video = next(r for r in records if r["file"] == "real/video_real.mp4")
    assert video["n"] == 4
    # resumable: a second run has nothing left to do
    r = _run("model.training.prepare", str(tiny_dataset), str(cache), "--workers", "1", "--frames", "4")
    assert "prepared 0 files" in r.stderr

    run = tmp_path / "run"
    export = tmp_path / "tiny-model.pt"
    source = f"tiny={cache},split=0.5/0.5/0"
    _run("model.training.train", "--source", source, "--out", str(run), "--recipe", "cpu-video", "--init", "scratch",
         "--backbone", "mobilenet_v3_small", "--hidden", "32", "--epochs", "2", "--steps-per-epoch", "2",
         "--frames-per-batch", "8", "--seq-lengths", "2", "--patience", "5", "--name", "tiny-test", "--workers", "0",
         "--export", str(export))
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
    assert all(math.isfinite(e["train_loss"]) for e in log)

    from model.weights import load_model

    loaded = load_model(export, device="cpu")
    assert loaded.name == "tiny-test" and loaded.spec.backbone == "mobilenet_v3_small" and loaded.spec.hidden == 32
    assert "cal" in loaded.extra and loaded.spec.frame_head

    # resume continues from the last checkpoint instead of starting again
    _run("model.training.train", "--source", source, "--out", str(run), "--recipe", "cpu-video", "--init", "scratch",
         "--backbone", "mobilenet_v3_small", "--hidden", "32", "--epochs", "3", "--steps-per-epoch", "2",
         "--frames-per-batch", "8", "--seq-lengths", "2", "--patience", "5", "--workers", "1", "--resume")
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2, 3]

    out = tmp_path / "eval"
    _run("model.training.evaluate", "--weights", str(export), "--source", f"tiny={cache},split=0/0/1", "--split", "test",
         "--out", str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["synth/sbi"]["auc"] <= 1.0 and metrics["synth/sbi"]["n"] >= 4
    assert (out / "roc.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "confusion.png").read_bytes().startswith(b"\x89PNG")


def test_a_per_frame_run_resumes_its_optimizer_and_goes_on_from_a_candidate_on_a_fresh_machine(tiny_dataset, tmp_path):
    import torch

    cache = tmp_path / "cache"
    _run("model.training.prepare", str(tiny_dataset), str(cache), "--frames", "4", "--workers", "1")
    source = f"tiny={cache},split=0.5/0.5/0"
    common = ["--source", source, "--recipe", "lite0-blend", "--init", "scratch", "--backbone", "mobilenet_v3_small",
              "--size", "64", "--steps-per-epoch", "2", "--frames-per-batch", "4", "--patience", "5", "--workers", "0",
              "--name", "tiny-frames", "--val-synth-limit", "4"]
    run = tmp_path / "run"
    _run("model.training.train", *common, "--out", str(run), "--epochs", "1")
    _run("model.training.train", *common, "--out", str(run), "--epochs", "2", "--resume")
    last = torch.load(run / "last.pt", weights_only=False)
    assert last["epoch"] == 1  # 0-based: the second epoch ran after the resume
    steps = {int(s["step"]) for s in last["opt"]["state"].values()}
    assert steps == {4}  # the optimizer's moments went on from epoch 1: 2 + 2 steps, not 2
    assert last["sched"]["last_epoch"] == 4

    # a fresh machine has only the committed candidate (best.pt's weights): --init it with --resume
    best = run / "best.pt"
    from model.weights import spec_and_state

    spec, _, extra = spec_and_state(best)
    assert spec.mode == "frames" and spec.hidden == 0 and extra["epoch"] in (1, 2)
    fresh = tmp_path / "fresh"
    common_fresh = [a if a != "scratch" else str(best) for a in common]
    _run("model.training.train", *common_fresh, "--out", str(fresh), "--epochs", "3", "--resume")
    log = [json.loads(line) for line in (fresh / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == list(range(extra["epoch"] + 1, 4))


def test_a_head_is_chosen_on_the_kinds_of_fake_it_is_trained_to_see():
    from model.training.train import val_score

    cal = {"video/face-swap": {"auc": 0.9}, "video/talking-head": {"auc": 0.3}, "synth/sbi": {"auc": 0.7},
           "stills/meso-val": {"auc": 0.8}, "video/DFDC": {"auc": 0.1}, "synth/lipsync": {"auc": 0.6}}
    assert val_score(cal, "blend") == pytest.approx((0.9 + 0.7 + 0.8 + 0.6) / 4)
    assert val_score(cal, "generation") == pytest.approx((0.3 + 0.6) / 2)  # lipsync is a made generation fake
    assert val_score(cal, "all") == pytest.approx((0.9 + 0.3 + 0.7 + 0.8 + 0.6) / 5)  # a method (DFDC) never counts


def test_a_run_resumed_under_another_rule_makes_its_last_epoch_best_when_it_now_wins(tmp_path):
    import torch

    from model.spec import CropSpec, ModelSpec
    from model.training.train import TFLITE_DEFAULT, build_model, rechoose_best
    from model.weights import save_checkpoint, spec_and_state

    spec = ModelSpec(backbone="mobilenet_v3_small", mode="frames", hidden=0, frames=4, crop=CropSpec(size=64), name="t",
                     frame_head=True)
    net = build_model(spec, "scratch", TFLITE_DEFAULT)
    cal = {1: {"video/face-swap": {"auc": 0.80}, "video/talking-head": {"auc": 0.9}},   # best by "all"
           2: {"video/face-swap": {"auc": 0.85}, "video/talking-head": {"auc": 0.5}}}   # best by "blend"
    (tmp_path / "log.jsonl").write_text("".join(json.dumps({"epoch": e, "cal": c}) + "\n" for e, c in cal.items()))
    save_checkpoint(tmp_path / "best.pt", net, extra={"epoch": 1, "cal": cal[1], "cal_score": 0.85})
    with torch.no_grad():
        next(net.parameters()).add_(1.0)  # epoch 2's weights differ
    assert rechoose_best(tmp_path, net, 2, "blend") == pytest.approx(0.85)
    _, state, extra = spec_and_state(tmp_path / "best.pt")
    assert extra["epoch"] == 2
    assert torch.equal(next(iter(state.values())).float(), next(iter(net.state_dict().values())).float())
    # under the rule it was chosen by, epoch 1 stays best
    save_checkpoint(tmp_path / "best.pt", net, extra={"epoch": 1, "cal": cal[1], "cal_score": 0.85})
    assert rechoose_best(tmp_path, net, 2, "all") == pytest.approx(0.85)
    assert spec_and_state(tmp_path / "best.pt")[2]["epoch"] == 1


def test_the_generation_head_trains_over_a_blend_run_and_leaves_the_blend_head_as_it_was(tiny_dataset, tmp_path):
    import torch

    from model.weights import spec_and_state

    cache = tmp_path / "cache"
    _run("model.training.prepare", str(tiny_dataset), str(cache), "--frames", "4", "--workers", "1")
    source = f"tiny={cache},split=0.5/0.5/0"
    small = ["--source", source, "--init", "scratch", "--backbone", "mobilenet_v3_small", "--size", "64",
             "--steps-per-epoch", "2", "--frames-per-batch", "4", "--workers", "0", "--val-synth-limit", "4"]
    _run("model.training.train", *small, "--recipe", "lite0-blend", "--out", str(tmp_path / "blend"), "--epochs", "1")
    blend = tmp_path / "blend" / "best.pt"
    gen = [a if a != "scratch" else str(blend) for a in small]
    r = subprocess.run([sys.executable, "-m", "model.training.train", *small, "--recipe", "lite0-generation",
                        "--out", str(tmp_path / "nogen"), "--epochs", "1"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "--init CHECKPOINT" in r.stderr  # it needs a blend-trained network to branch from
    _run("model.training.train", *gen, "--recipe", "lite0-generation", "--gen-branch", "3", "--out", str(tmp_path / "gen"),
         "--epochs", "2", "--patience", "5")

    log = [json.loads(line) for line in (tmp_path / "gen" / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2] and all(e["select"] == "generation" for e in log)
    assert "synth/lipsync" in log[0]["cal"]  # its made fakes are on cal too
    _, before, _ = spec_and_state(blend)
    spec, after, _ = spec_and_state(tmp_path / "gen" / "best.pt")
    assert spec.gen_branch == 3
    shared = [k for k in before if not k.startswith(("gen_branch.", "gen_head."))]
    assert shared and all(torch.equal(before[k].float(), after[k].float()) for k in shared)  # trunk and blend head untouched
    # the branch started as a copy of the trunk's last 3 modules (of mobilenet_v3_small's 13) and learnt
    last = torch.load(tmp_path / "gen" / "last.pt", weights_only=False)["model"]
    pairs = [(k, "model.{}.{}".format(10 + int(k.split(".")[1]), k.split(".", 2)[2])) for k in last if k.startswith("gen_branch.")]
    assert pairs and all(src in before and last[k].shape == before[src].shape for k, src in pairs)
    assert any(not torch.allclose(last[k].float(), before[src].float()) for k, src in pairs if last[k].is_floating_point())
