"""The pipeline and the CLI end to end on generated media. No test asserts REAL/FAKE from untrained weights."""
import json
import subprocess
import sys

import numpy as np
import pytest
from testenv import ROOT

from model import check, load_model
from model.verdict import decide


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return load_model(tiny_checkpoint, device="cpu")


def test_check_on_a_face_clip_gives_a_verdict_with_timings(media_dir, tiny):
    v = check(media_dir / "face.mp4", frames=20, model=tiny, want_heatmap=True)
    assert v.verdict in ("REAL", "FAKE", "UNCERTAIN") and v.error is None
    assert 0.0 <= v.p_fake <= 1.0 and 0.5 <= v.confidence <= 1.0
    assert v.frames_analysed == 20 and v.frames_with_face >= 18
    assert len(v.faces) == 1 and v.faces[0].frames >= 18
    assert set(v.timings_ms) >= {"decode", "detect", "crop", "model", "heatmap", "total"}
    assert v.heatmap_png.startswith(b"\x89PNG")


def test_no_face_clip_gives_no_face_verdict(media_dir, tiny):
    v = check(media_dir / "noface.mp4", model=tiny)
    assert v.verdict == "NO_FACE" and v.error == "No faces detected. Cannot process the video."
    assert v.p_fake is None


def test_image_with_no_face_gives_no_face_verdict(media_dir, tiny):
    assert check(media_dir / "noface.png", model=tiny).verdict == "NO_FACE"


def test_text_file_named_mp4_gives_an_error_verdict_not_a_traceback(media_dir, tiny):
    v = check(media_dir / "notes.mp4", model=tiny)
    assert v.verdict == "ERROR" and "Only video or image files" in v.error


def test_two_face_clip_reports_each_face(media_dir, tiny):
    v = check(media_dir / "twofaces.mp4", frames=10, model=tiny)
    assert len(v.faces) == 2
    assert v.p_fake == max(f.p_fake for f in v.faces)


@pytest.mark.parametrize(
    "p, expected",
    [(0.95, ("FAKE", 0.95)), (0.05, ("REAL", 0.95)), (0.55, ("UNCERTAIN", 0.55)), (0.45, ("UNCERTAIN", 0.55)),
     (0.6, ("FAKE", 0.6)), (0.4, ("REAL", 0.6))],
)
def test_decide_reports_the_probability_of_the_stated_verdict(p, expected):
    verdict, conf = decide(p, 0.5, 0.1)
    assert verdict == expected[0] and conf == pytest.approx(expected[1])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "model", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_cli_prints_one_json_object_per_file_and_keeps_going_after_a_bad_one(media_dir, tiny_checkpoint, tmp_path):
    heat = tmp_path / "heat.png"
    r = _cli("check", str(media_dir / "face.mp4"), str(media_dir / "notes.mp4"), str(media_dir / "noface.mp4"),
             "--weights", str(tiny_checkpoint), "--json", "--heatmap", str(heat))
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["verdict"] for d in lines][1:] == ["ERROR", "NO_FACE"]
    assert lines[0]["verdict"] in ("REAL", "FAKE", "UNCERTAIN")
    for d in lines:
        assert {"file", "verdict", "p_fake", "confidence", "faces", "frames_analysed", "model", "timings_ms", "error"} <= set(d)
    assert r.returncode == 2  # one file could not be read
    assert (tmp_path / "heat-0.png").read_bytes().startswith(b"\x89PNG")


def test_cli_exit_code_is_zero_when_every_file_got_a_verdict(media_dir, tiny_checkpoint):
    r = _cli("check", str(media_dir / "face.jpg"), "--weights", str(tiny_checkpoint))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("face.jpg: ") and "confidence" in r.stdout


def test_cli_with_a_missing_checkpoint_fails_with_a_message(media_dir, tmp_path):
    r = _cli("check", str(media_dir / "face.jpg"), "--weights", str(tmp_path / "none.pt"))
    assert r.returncode == 2 and "none.pt: no such file" in r.stderr


def test_stages_are_reported_in_order_as_they_start(media_dir, tiny):
    seen = []
    check(media_dir / "face.jpg", model=tiny, on_stage=seen.append)
    assert seen == ["decode", "detect", "crop", "model"]


def test_grad_cam_equals_a_full_backward_pass_through_the_network(tiny):
    """The heatmap differentiates only the layers after the CNN; the gradient it needs (FAKE logit
    with respect to the feature maps) must be exactly what a backward pass through everything gives."""
    import numpy as np
    import torch

    from model.cam import _colourise, heatmap
    from model.network import preprocess
    from model.spec import FAKE

    rng = np.random.default_rng(0)
    size = tiny.spec.crop.size
    crops = rng.integers(0, 255, (6, size, size, 3), dtype=np.uint8)
    x = preprocess(crops, tiny.spec, tiny.device)
    png, frame = heatmap(tiny.net, x, crops)

    with torch.enable_grad():  # the straightforward Grad-CAM: the CNN inside the graph too
        fmap = tiny.net.model(x.reshape(6, 3, size, size))
        fmap.retain_grad()
        logits = tiny.net.head(tiny.net.avgpool(fmap).reshape(1, 6, tiny.net.channels))
        logits[0, FAKE].backward()
        cams = torch.relu((fmap.grad.mean(dim=(2, 3), keepdim=True) * fmap).sum(dim=1)).detach().numpy()
    tiny.net.zero_grad(set_to_none=True)
    expected = int(np.argmax(cams.reshape(6, -1).sum(axis=1)))
    assert frame == expected
    assert png == _colourise(cams[expected], crops[expected])


def test_frames_captured_elsewhere_go_through_the_same_pipeline(media_dir):
    import media

    from model import check
    from model.video import frames_from_images

    images = media.face_frames(8)
    times = [0.5 * i for i in range(8)][::-1]  # out of order: sorted by time
    fr = frames_from_images(images[::-1], times)
    assert fr.times == sorted(times) and fr.kind == "frames"
    v = check(fr)
    assert v.file == "frames" and v.verdict in ("REAL", "FAKE", "UNCERTAIN") and v.frames_analysed == 8
    assert v.faces and v.faces[0].boxes[0]["t"] == 0.0
    assert v.provenance is None and "provenance" not in v.timings_ms  # frames carry no credentials


def test_no_frames_or_mixed_sizes_are_clear_errors():
    import numpy as np

    from model.video import MediaError, frames_from_images

    with pytest.raises(MediaError, match="No frames"):
        frames_from_images([], [])
    with pytest.raises(MediaError, match="same size"):
        frames_from_images([np.zeros((10, 10, 3), np.uint8), np.zeros((12, 10, 3), np.uint8)], [0.0, 1.0])


@pytest.fixture(scope="module")
def two_heads(tmp_path_factory):
    """An untrained two-head model (blend and generation) with a calibration map per head."""
    import torch

    from model.network import DeepfakeDetector
    from model.spec import CropSpec, ModelSpec
    from model.weights import save_checkpoint

    torch.manual_seed(3)
    spec = ModelSpec(backbone="mobilenet_v3_small", mode="frames", hidden=0, frame_head=True, crop=CropSpec(size=64),
                     gen_branch=3, name="tiny-two-heads")
    net = DeepfakeDetector(spec)
    with torch.no_grad():  # heads that disagree, so the combination has something to choose
        net.gen_head.bias.copy_(torch.tensor([1.5, -1.5]))
    path = tmp_path_factory.mktemp("two") / "two.pt"
    calibration = {"heads": {"blend": {"platt": [1.0, 0.0]}, "generation": {"platt": [0.5, 0.2]}}, "platt": [1.0, 0.0],
                   "threshold": 0.5, "uncertain_band": 0.1}
    save_checkpoint(path, net, extra={"calibration": calibration})
    return load_model(path, device="cpu")


def test_a_two_head_model_scores_by_its_larger_calibrated_head_and_says_which_spoke(media_dir, two_heads):
    from model.calibration import platt
    from model.check import score_crops

    v = check(media_dir / "face.mp4", frames=20, model=two_heads, want_heatmap=True)
    assert v.verdict in ("REAL", "FAKE", "UNCERTAIN") and len(v.faces) == 1
    face = v.faces[0]
    assert set(face.signals) == {"blend", "generation"} and v.signals == face.signals
    assert v.p_fake == pytest.approx(max(face.signals.values()), abs=1e-6)
    assert v.signal == max(face.signals, key=face.signals.get) == "generation"  # its bias leans FAKE
    assert v.heatmap_png.startswith(b"\x89PNG")  # explaining the head that spoke
    # each head through its own map, from the raw scores the network gives
    crops = np.zeros((20, 64, 64, 3), np.uint8) + 128
    raw = score_crops(two_heads, crops)
    assert set(raw) == {"blend", "generation"}
    assert two_heads.calibrated_signals(raw)["generation"] == pytest.approx(platt(raw["generation"], 0.5, 0.2))
    assert two_heads.calibrated(raw) == pytest.approx(max(raw["blend"], platt(raw["generation"], 0.5, 0.2)))
    from model.__main__ import _verdict_line

    assert "from the generation head [blend " in _verdict_line(v)  # the CLI says it too
    d = v.to_dict()
    assert d["signal"] == "generation" and set(d["faces"][0]["signals"]) == {"blend", "generation"}


def test_a_one_head_model_reports_no_signals(media_dir, tiny):
    v = check(media_dir / "face.mp4", frames=20, model=tiny)
    assert v.signals is None and v.signal is None and v.faces[0].signals is None


def test_the_generation_heatmap_explains_the_generation_head():
    """Grad-CAM over the generation branch's feature maps for its FAKE logit (the blend's is the default)."""
    import torch

    from model.cam import _colourise, heatmap
    from model.network import DeepfakeDetector, preprocess
    from model.spec import FAKE, CropSpec, ModelSpec

    torch.manual_seed(4)
    spec = ModelSpec(backbone="mobilenet_v3_small", mode="frames", hidden=0, frame_head=True, crop=CropSpec(size=64), gen_branch=3)
    net = DeepfakeDetector(spec).eval()
    for p in net.gen_branch.parameters():
        p.data.add_(torch.randn_like(p) * 0.3)
    crops = np.random.default_rng(1).integers(0, 255, (5, 64, 64, 3), dtype=np.uint8)
    x = preprocess(crops, spec)
    png, frame = heatmap(net, x, crops, head="generation")
    with torch.enable_grad():
        fmap = net.generation_fmap(x).detach().requires_grad_(True)
        logits = net.generation_head(fmap, 1, 5)
        (g,) = torch.autograd.grad(logits[0, FAKE], fmap)
        cams = torch.relu((g.mean(dim=(2, 3), keepdim=True) * fmap).sum(dim=1)).detach().numpy()
    assert frame == int(np.argmax(cams.reshape(5, -1).sum(axis=1)))
    assert png == _colourise(cams[frame], crops[frame])
    assert heatmap(net, x, crops)[0] != png  # the blend head's map is another one
