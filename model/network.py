"""The detector: per-frame CNN features -> LSTM -> Linear(hidden, 2) -> softmax.

Class order follows the original ResNeXt-LSTM project's published checkpoints:
index 0 = FAKE, index 1 = REAL.

Two modes:
- "temporal": the LSTM is batch_first, so it really runs across the frames of a clip; the
  score comes from the mean of the LSTM outputs over time. Used for everything trained here.
- "legacy": the original project's forward, reproduced exactly so its checkpoints load
  unchanged. It built `nn.LSTM(2048, 2048, 1, False)` -- the fourth positional argument is
  `bias`, not `bidirectional` -- and fed it a (batch, seq, 2048) tensor without batch_first,
  so the LSTM sees each frame as a length-1 sequence and the output is that of the last frame.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torchvision import models

from .faces import CropSpec

FAKE, REAL = 0, 1
CLASS_ORDER = ("FAKE", "REAL")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# name -> (constructor returning the convolutional trunk, feature channels)
BACKBONES = {
    "resnext50_32x4d": (lambda: nn.Sequential(*list(models.resnext50_32x4d(weights=None).children())[:-2]), 2048),
    "mobilenet_v3_small": (lambda: models.mobilenet_v3_small(weights=None).features, 576),
    "mobilenet_v2": (lambda: models.mobilenet_v2(weights=None).features, 1280),
}
MODES = ("temporal", "legacy")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a network and feed it exactly what it was trained on."""

    backbone: str = "mobilenet_v3_small"
    mode: str = "temporal"
    hidden: int = 256
    frames: int = 20
    crop: CropSpec = field(default_factory=CropSpec)
    channel_order: str = "RGB"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    class_order: tuple[str, str] = CLASS_ORDER
    name: str = "custom"

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; known: {', '.join(BACKBONES)}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; known: {', '.join(MODES)}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be RGB or BGR, not {self.channel_order!r}")
        if tuple(self.class_order) != CLASS_ORDER:
            raise ValueError(f"class_order must be {CLASS_ORDER}, not {self.class_order!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"], d["class_order"] = list(self.mean), list(self.std), list(self.class_order)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        d = dict(d)
        d["crop"] = CropSpec(**d.get("crop", {}))
        for k in ("mean", "std", "class_order"):
            if k in d:
                d[k] = tuple(d[k])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


LEGACY_SPEC = ModelSpec(
    backbone="resnext50_32x4d",
    mode="legacy",
    hidden=2048,
    frames=20,
    crop=CropSpec(size=112, margin=0.0, square=False),
    channel_order="BGR",
    name="legacy",
)


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
        else:
            self.lstm = nn.LSTM(channels, spec.hidden, 1, batch_first=True)
        self.dp = nn.Dropout(0.4)
        self.linear1 = nn.Linear(spec.hidden, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, frames, 3, H, W) normalised crops -> (feature maps, logits (batch, 2))."""
        b, t, c, h, w = x.shape
        fmap = self.model(x.reshape(b * t, c, h, w))
        return fmap, self.head(self.avgpool(fmap).reshape(b, t, self.channels))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled per-frame features (batch, frames, channels) -- for caching in training."""
        b, t, c, h, w = x.shape
        return self.avgpool(self.model(x.reshape(b * t, c, h, w))).reshape(b, t, self.channels)

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits from pooled features (the part after the CNN)."""
        out, _ = self.lstm(feats)
        if self.spec.mode == "legacy":
            return self.dp(self.linear1(out[:, -1, :]))
        return self.linear1(self.dp(out.mean(dim=1)))


def build(spec: ModelSpec) -> DeepfakeDetector:
    return DeepfakeDetector(spec)


def pick_device(prefer: str | None = None) -> torch.device:
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
