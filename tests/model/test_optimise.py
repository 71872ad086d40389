"""The traced CPU network (model.check.optimise_for_cpu): the same outputs as the network itself, for
any number of tracks and frames, for one head and two; models it does not apply to are left alone."""
import numpy as np
import pytest
import torch

from model import load_model
from model.check import _p_fake, optimise_for_cpu, score_crops, warm_up
from model.network import DeepfakeDetector, preprocess
from model.spec import CropSpec, ModelSpec
from model.weights import DEFAULT_MODEL, reference_input, save_checkpoint


def _model(tmp_path, **spec_args):
    torch.manual_seed(7)
    spec = ModelSpec(crop=CropSpec(size=64), **spec_args)
    net = DeepfakeDetector(spec)
    with torch.no_grad():  # trained-looking batch norm statistics, so folding them is not a no-op
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "m.pt"
    save_checkpoint(path, net)
    return load_model(path, device="cpu")


def _batches(size):
    rng = np.random.default_rng(0)
    for b, t in [(1, 20), (3, 8), (2, 1)]:
        yield rng.integers(0, 255, (b, t, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("spec_args", [
    dict(backbone="efficientnet_lite0", mode="frames", hidden=0, frame_head=True, gen_branch=4),  # two heads
    dict(backbone="mobilenet_v3_small", mode="frames", hidden=0, frame_head=True),  # one
], ids=["two-heads", "one-head"])
def test_the_traced_network_gives_the_networks_outputs_for_any_tracks_and_frames(tmp_path, spec_args):
    loaded = _model(tmp_path, **spec_args)
    inputs = [preprocess(crops.reshape(-1, 64, 64, 3), loaded.spec).reshape(crops.shape[0], crops.shape[1], 3, 64, 64)
              for crops in _batches(64)]
    eager = [_p_fake(loaded, x) for x in inputs]
    assert optimise_for_cpu(loaded) and loaded.fast is not None
    for x, want in zip(inputs, eager, strict=True):
        got = _p_fake(loaded, x)
        assert len(got) == x.shape[0]
        for g, w in zip(got, want, strict=True):
            if isinstance(w, dict):
                assert set(g) == set(w) == {"blend", "generation"}
                for h in w:
                    assert g[h] == pytest.approx(w[h], abs=1e-5)
            else:
                assert g == pytest.approx(w, abs=1e-5)


def test_a_temporal_model_is_left_as_it_is(tmp_path):
    loaded = _model(tmp_path, backbone="mobilenet_v3_small", mode="temporal", hidden=16)
    crops = np.full((5, 64, 64, 3), 100, np.uint8)
    before = score_crops(loaded, crops)
    assert optimise_for_cpu(loaded) is False and loaded.fast is None
    assert score_crops(loaded, crops) == before


def test_warm_up_traces_a_per_frame_model(tmp_path):
    loaded = _model(tmp_path, backbone="mobilenet_v3_small", mode="frames", hidden=0, frame_head=True)
    warm_up(loaded)
    assert loaded.fast is not None


def test_the_shipped_default_gives_its_reference_output_traced():
    loaded = load_model(DEFAULT_MODEL, device="cpu")
    want = score_crops(loaded, reference_input())
    try:
        if not optimise_for_cpu(loaded):
            pytest.skip(f"{DEFAULT_MODEL} is not a per-frame CPU model")
        got = score_crops(loaded, reference_input())
        if not isinstance(want, dict):
            got, want = {"p": got}, {"p": want}
        assert got.keys() == want.keys()
        for h in want:
            assert got[h] == pytest.approx(want[h], abs=1e-5), h
    finally:
        loaded.fast = None  # the cached model, as other tests expect it
