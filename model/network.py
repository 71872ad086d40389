"""The detector: per-frame CNN features -> LSTM -> Linear(hidden, 2) -> softmax.

Class order follows the original ResNeXt-LSTM project's published checkpoints:
index 0 = FAKE, index 1 = REAL.

Three modes:
- "temporal": the LSTM is batch_first, so it really runs across the frames of a clip; the
  score comes from the mean of the LSTM outputs over time.
- "frames": the same network with a per-frame linear head trained beside the LSTM; a clip's
  logits are the mean of its frames' logits (the LSTM is kept but not used for the score).
- "legacy": the original project's forward, reproduced exactly so its checkpoints load
  unchanged. It built `nn.LSTM(2048, 2048, 1, False)` -- the fourth positional argument is
  `bias`, not `bidirectional` -- and fed it a (batch, seq, 2048) tensor without batch_first,
  so the LSTM sees each frame as a length-1 sequence and the output is that of the last frame.
"""
from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
from torch import nn
from torchvision import models

from .spec import BACKBONE_NAMES, ModelSpec


def _efficientnet_lite(variant: str) -> nn.Module:
    """Google's EfficientNet-Lite trunk (no classifier, no pooling) as timm builds it: the `tf_`
    variant pads like TensorFlow ("same"), as the ImageNet weights were trained. Built without
    weights: a checkpoint carries every one (training starts from model.training.pretrained)."""
    import timm

    return timm.create_model(f"tf_{variant}", pretrained=False, num_classes=0, global_pool="")


# name -> (constructor returning the convolutional trunk, feature channels)
BACKBONES = {
    "resnext50_32x4d": (lambda: nn.Sequential(*list(models.resnext50_32x4d(weights=None).children())[:-2]), 2048),
    "mobilenet_v3_small": (lambda: models.mobilenet_v3_small(weights=None).features, 576),
    "mobilenet_v2": (lambda: models.mobilenet_v2(weights=None).features, 1280),
    "efficientnet_lite0": (lambda: _efficientnet_lite("efficientnet_lite0"), 1280),
    "efficientnet_lite1": (lambda: _efficientnet_lite("efficientnet_lite1"), 1280),
    "efficientnet_lite2": (lambda: _efficientnet_lite("efficientnet_lite2"), 1280),
}
assert tuple(BACKBONES) == BACKBONE_NAMES


def preprocess(crops: np.ndarray, spec: ModelSpec, device: torch.device | str = "cpu") -> torch.Tensor:
    """Face crops as the model was trained to see them: the one normalisation of the project.

    (T, S, S, 3) RGB uint8 -> (1, T, 3, S, S); (B, T, S, S, 3) -> (B, T, 3, S, S). Colour order
    (legacy checkpoints read BGR), scaling and mean/std come from the model's spec.
    """
    if crops.ndim == 4:
        crops = crops[None]
    if crops.ndim != 5 or crops.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) or (B, T, H, W, 3) crops, got {crops.shape}")
    arr = crops[..., ::-1] if spec.channel_order == "BGR" else crops
    x = torch.from_numpy(np.ascontiguousarray(arr)).to(device)
    x = x.permute(0, 1, 4, 2, 3).float().div_(255.0)
    mean = torch.tensor(spec.mean, device=x.device).view(1, 1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 1, 3, 1, 1)
    return (x - mean) / std


def trunk_modules(trunk: nn.Module) -> list[nn.Module]:
    """The trunk as the flat sequence of modules it runs, stem first: a generation branch copies the
    last few, and the rest are shared (timm's EfficientNet: stem, its stages, head convolution;
    torchvision's `features`: its layers)."""
    if hasattr(trunk, "blocks") and hasattr(trunk, "conv_stem"):
        return [trunk.conv_stem, trunk.bn1, *trunk.blocks, trunk.conv_head, trunk.bn2]
    if isinstance(trunk, nn.Sequential):
        return list(trunk)
    raise ValueError(f"a generation branch cannot be cut from a {type(trunk).__name__} trunk")


class DeepfakeDetector(nn.Module):
    """Attribute names (`model`, `lstm`, `linear1`) match the published checkpoints' keys."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        make, channels = BACKBONES[spec.backbone]
        self.model = make()
        self.channels = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        if spec.mode == "legacy":
            self.lstm = nn.LSTM(channels, spec.hidden, 1, bias=False)
        elif spec.hidden:  # hidden=0: a per-frame model without the LSTM (mode "frames")
            self.lstm = nn.LSTM(channels, spec.hidden, 1, batch_first=True)
        self.dp = nn.Dropout(0.4)
        if spec.hidden:
            self.linear1 = nn.Linear(spec.hidden, 2)
        if spec.frame_head:
            self.frame_head = nn.Linear(channels, 2)
        if spec.gen_branch:
            mods = trunk_modules(self.model)
            if not 0 < spec.gen_branch < len(mods):
                raise ValueError(f"gen_branch must be 1..{len(mods) - 1} for {spec.backbone}")
            # starts as a copy of the trunk's tail (build_model copies trained weights in)
            self.gen_branch = nn.Sequential(*copy.deepcopy(mods[-spec.gen_branch:]))
            self.gen_head = nn.Linear(channels, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, frames, 3, H, W) normalised crops -> (feature maps, logits (batch, 2)). The
        network's own head: with a generation branch, that is the blend head (see `heads`)."""
        b, t, c, h, w = x.shape
        fmap = self.model(x.reshape(b * t, c, h, w))
        return fmap, self.head(self.avgpool(fmap).reshape(b, t, self.channels))

    def heads(self, x: torch.Tensor, blend: bool = True) -> dict[str, torch.Tensor]:
        """Every head's clip logits (batch, 2) in one pass over the shared trunk: {"blend": ...,
        "generation": ...}, plus "blend_fmap" (the blend trunk's feature maps, for the heatmap).
        `blend=False` skips the blend tail (training the generation head alone)."""
        if not self.spec.gen_branch:
            fmap, logits = self(x)
            return {"blend": logits, "blend_fmap": fmap}
        b, t = x.shape[:2]
        mid, tail = self._shared(x)
        out = {"generation": self.generation_head(self.gen_branch(mid), b, t)}
        if blend:
            fmap = mid
            for m in tail:
                fmap = m(fmap)
            out["blend"], out["blend_fmap"] = self.head(self.avgpool(fmap).reshape(b, t, self.channels)), fmap
        return out

    def generation_fmap(self, x: torch.Tensor) -> torch.Tensor:
        """The generation branch's feature maps (batch * frames, C, h, w) of (batch, frames, 3, H, W) crops."""
        return self.gen_branch(self._shared(x)[0])

    def _shared(self, x: torch.Tensor) -> tuple[torch.Tensor, list[nn.Module]]:
        """The shared trunk's output for (batch, frames, 3, H, W) crops, and the blend trunk's tail
        (the modules the generation branch has its own copy of)."""
        b, t, c, h, w = x.shape
        mods = trunk_modules(self.model)
        cut = len(mods) - self.spec.gen_branch
        mid = x.reshape(b * t, c, h, w)
        for m in mods[:cut]:
            mid = m(mid)
        return mid, mods[cut:]

    def generation_head(self, fmap: torch.Tensor, b: int, t: int) -> torch.Tensor:
        """Clip logits (batch, 2) of the generation head from its branch's feature maps: the mean of
        the frames' logits, as the blend head's."""
        return self.gen_head(self.dp(self.avgpool(fmap).reshape(b, t, self.channels))).mean(dim=1)

    def copy_trunk_tail_to_branch(self) -> None:
        """Start the generation branch from the trunk's trained tail (a blend-trained backbone)."""
        mods = trunk_modules(self.model)[-self.spec.gen_branch:]
        for src, dst in zip(mods, self.gen_branch, strict=True):
            dst.load_state_dict(src.state_dict())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled per-frame features (batch, frames, channels) -- for caching in training."""
        b, t, c, h, w = x.shape
        return self.avgpool(self.model(x.reshape(b * t, c, h, w))).reshape(b, t, self.channels)

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits from pooled features (the part after the CNN)."""
        if self.spec.mode == "frames":
            return self.frame_logits(feats).mean(dim=1)
        return self.lstm_logits(feats)

    def lstm_logits(self, feats: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(feats)
        if self.spec.mode == "legacy":
            return self.dp(self.linear1(out[:, -1, :]))
        return self.linear1(self.dp(out.mean(dim=1)))

    def frame_logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Per-frame logits (batch, frames, 2) from the per-frame head."""
        return self.frame_head(self.dp(feats))


def cpu_has_bf16() -> bool:
    """Native bfloat16 on this CPU (AVX-512 BF16 or AMX): where autocast to bf16 is fast. Elsewhere it
    is emulated and many times slower than fp32."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast_for(spec: ModelSpec, device: torch.device):
    """The autocast context a model runs in: bf16 on a CPU that has it when the model was made for it,
    fp16 on CUDA, otherwise none (fp32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    if spec.precision == "bf16" and device.type == "cpu" and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pick_device(prefer: str | None = None) -> torch.device:
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
