"""The preprocessing contract that travels with a model's weights.

A checkpoint saved by this project carries its ModelSpec (backbone, mode, crop, colour order,
normalisation, class order), so inference feeds a network exactly what it was trained on and
training, evaluation and inference read the same values from one place. Pure data: no torch,
no OpenCV.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Class order follows the original ResNeXt-LSTM project's published checkpoints.
FAKE, REAL = 0, 1
CLASS_ORDER = ("FAKE", "REAL")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONE_NAMES = ("resnext50_32x4d", "mobilenet_v3_small", "mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1",
                  "efficientnet_lite2")
MODES = ("temporal", "frames", "legacy")
# the numerics a model runs (and was calibrated) in on the CPU: "bf16" autocasts where the CPU has
# native bfloat16 (AVX-512 BF16, AMX) and falls back to fp32 elsewhere
PRECISIONS = ("fp32", "bf16")
DETECTORS = ("yunet", "hog")


@dataclass(frozen=True)
class CropSpec:
    """How a model's input crops are made from a frame and a face box."""

    size: int = 112
    # extra context on each side, as a fraction of the box's long side; modest, because face
    # datasets are tight crops and padding them out would teach the model mirrored borders
    margin: float = 0.15
    square: bool = True  # legacy checkpoints were trained on the tight, non-square box
    # the face detector whose boxes the crops are cut around (faces.DETECTORS): boxes differ between
    # detectors, so a model is fed crops made the way it was trained. Checkpoints from before the
    # field existed were trained on dlib's HOG boxes.
    detector: str = "hog"


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
    # a per-frame linear head beside the LSTM (trained jointly); mode "frames" scores a clip by it
    frame_head: bool = False
    precision: str = "fp32"
    # a generation head (issue 20): 0 = none. Otherwise the number of trailing trunk modules
    # (network.trunk_modules) the generation branch has its own copy of; the modules before them are
    # shared with the blend head, which is the network's own (`forward`).
    gen_branch: int = 0

    def __post_init__(self):
        if self.crop.detector not in DETECTORS:
            raise ValueError(f"unknown face detector {self.crop.detector!r}; known: {', '.join(DETECTORS)}")
        if self.backbone not in BACKBONE_NAMES:
            raise ValueError(f"unknown backbone {self.backbone!r}; known: {', '.join(BACKBONE_NAMES)}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; known: {', '.join(MODES)}")
        if self.mode == "frames" and not self.frame_head:
            raise ValueError("mode 'frames' needs frame_head")
        if self.hidden == 0 and self.mode != "frames":
            raise ValueError("only mode 'frames' can do without the LSTM (hidden=0)")
        if self.gen_branch < 0 or (self.gen_branch and self.mode != "frames"):
            raise ValueError("a generation branch (gen_branch > 0) needs mode 'frames'")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
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


# The original project's checkpoints: tight boxes, BGR, ImageNet normalisation, last-frame output.
LEGACY_SPEC = ModelSpec(
    backbone="resnext50_32x4d",
    mode="legacy",
    hidden=2048,
    frames=20,
    crop=CropSpec(size=112, margin=0.0, square=False),
    channel_order="BGR",
    name="legacy",
)
