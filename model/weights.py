"""Weights: a registry of shipped models (like whisper.load_model), checkpoint I/O, verification.

A checkpoint saved by this project is a dict
    {"format": "deepfake-check", "version": 1, "spec": ModelSpec.to_dict(), "state_dict": ...}
so it carries its own backbone, mode, crop and normalisation. A bare state_dict in the
original ResNeXt-LSTM project's layout is recognised from its keys and loaded in legacy mode.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .calibration import platt, platt_heads
from .evidence import Cuts
from .network import BACKBONES, DeepfakeDetector, pick_device
from .spec import LEGACY_SPEC, ModelSpec
from .verdict import DEFAULT_THRESHOLD, DEFAULT_UNCERTAIN_BAND

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).with_name("weights")
FORMAT = "deepfake-check"
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file and what was expected."""


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    file: str  # relative to model/weights/
    sha256: str
    backbone: str
    mode: str
    frames: int
    input_size: int
    class_order: tuple[str, str]
    card: str  # model card, relative to model/weights/

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file


# The models this project ships. The first entry is the default.
REGISTRY: dict[str, RegistryEntry] = {}
DEFAULT_MODEL: str | None = None


class NoDefaultModelError(CheckpointError):
    pass


def reference_input(frames: int = 20, size: int = 112) -> np.ndarray:
    """A fixed input (uint8 crops) whose P(fake) each model card records, to check a model file end to end."""
    return np.random.default_rng(20261122).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)


def available_models() -> list[str]:
    return list(REGISTRY)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve(name_or_path: str | os.PathLike | None) -> tuple[Path, RegistryEntry | None]:
    """A registry name, a file path, or None for the default model."""
    if name_or_path is None:
        env = os.environ.get("DEEPFAKE_CHECK_WEIGHTS")
        if env:
            name_or_path = env
        elif DEFAULT_MODEL is None:
            raise NoDefaultModelError(
                "No default model weights are installed. Pass a checkpoint with --weights FILE "
                "(for example the original project's model_97_acc_100_frames_FF_data.pt)."
            )
        else:
            name_or_path = DEFAULT_MODEL
    key = os.fspath(name_or_path)
    if key in REGISTRY:
        entry = REGISTRY[key]
        return entry.path, entry
    path = Path(key).expanduser()
    if not path.exists():
        known = ", ".join(REGISTRY) or "none"
        raise CheckpointError(f"{key}: no such file, and not a registered model (registered: {known}).")
    return path, None


def save_checkpoint(path: str | os.PathLike, model: DeepfakeDetector, extra: dict | None = None, half: bool = False) -> None:
    """Save with metadata; `half` stores fp16 weights (they are upcast at load on CPU)."""
    sd = model.state_dict()
    if half:
        sd = {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "spec": model.spec.to_dict(), "state_dict": sd}
    if extra:
        payload["extra"] = extra
    tmp = Path(f"{path}.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)  # an --out in a folder not made yet: not a lost run
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _read(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zipfile.BadZipFile, EOFError, pickle.UnpicklingError from weights_only loading, ...
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {str(e)[:200]}).") from e


def _legacy_layout(sd: dict) -> bool:
    w = sd.get("lstm.weight_ih_l0")
    return (
        w is not None
        and tuple(w.shape) == (4 * 2048, 2048)
        and "lstm.bias_ih_l0" not in sd
        and "linear1.weight" in sd
        and tuple(sd["linear1.weight"].shape) == (2, 2048)
        and "model.0.weight" in sd
    )


def spec_and_state(path: Path) -> tuple[ModelSpec, dict, dict]:
    """Read a checkpoint file into (spec, state_dict, extra metadata)."""
    obj = _read(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj.get("version") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: checkpoint format version {obj.get('version')}, expected {FORMAT_VERSION}.")
        try:
            spec = ModelSpec.from_dict(obj["spec"])
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{path}: bad model metadata ({e}).") from e
        return spec, obj["state_dict"], obj.get("extra", {})
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        if _legacy_layout(obj):
            return LEGACY_SPEC, obj, {}
        raise CheckpointError(
            f"{path}: unrecognised state_dict ({len(obj)} keys). Expected a Deepfake Check checkpoint "
            "or the original ResNeXt-LSTM layout (model.*, lstm.weight_ih_l0 [8192, 2048] without LSTM bias, "
            "linear1.weight [2, 2048])."
        )
    raise CheckpointError(f"{path}: not a model checkpoint (found {type(obj).__name__}).")


def build_from(spec: ModelSpec, state: dict, path: Path) -> DeepfakeDetector:
    model = DeepfakeDetector(spec)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(
            f"{path}: weights do not fit a {spec.backbone} {spec.mode} model ({str(e).splitlines()[0][:300]})."
        ) from e
    return model


@dataclass
class LoadedModel:
    """A network ready for inference, with the facts a report needs."""

    net: DeepfakeDetector
    spec: ModelSpec
    name: str
    path: Path
    device: torch.device
    sha256: str
    extra: dict
    # the same network traced and frozen for the CPU (model.check.optimise_for_cpu): conv and batch
    # norm folded, the same numbers ~25 % sooner; None until a long-lived process asks for it
    fast: torch.jit.ScriptModule | None = None

    @property
    def calibration(self) -> dict:
        """{"threshold", "uncertain_band", ...}: chosen on a calibration set and stored with the weights."""
        return dict(self.extra.get("calibration") or {})

    def calibrated(self, p_fake: float | dict[str, float]) -> float:
        """The network's P(fake) mapped by the calibration's logistic fit (Platt scaling), so that it reads
        as a probability on video (0.5: as likely fake as real); unchanged without a calibration.
        A two-head model's raw scores ({"blend": p, "generation": q}) give the larger of the heads'
        calibrated scores: either kind of trace is enough to suspect a fake."""
        if isinstance(p_fake, dict):
            return max(self.calibrated_signals(p_fake).values())
        fit = self.calibration.get("platt")
        return platt(p_fake, *fit) if fit else p_fake

    def calibrated_signals(self, raw: dict[str, float]) -> dict[str, float]:
        """Each head's raw P(fake) through that head's own Platt map (calibration["heads"][head]);
        unchanged for a head without one."""
        return platt_heads(raw, self.calibration.get("heads") or {})

    @property
    def abstain_cuts(self) -> Cuts:
        """Below these a face is too poor to judge (evidence.Cuts), measured for this model; the
        pipeline's size rule alone for a model without them."""
        return Cuts.from_dict(self.calibration.get("abstain"))

    @property
    def threshold(self) -> float:
        return float(self.calibration.get("threshold", DEFAULT_THRESHOLD))

    @property
    def uncertain_band(self) -> float:
        return float(self.calibration.get("uncertain_band", DEFAULT_UNCERTAIN_BAND))

    def info(self) -> dict:
        return {
            "name": self.name,
            "backbone": self.spec.backbone,
            "mode": self.spec.mode,
            "frames": self.spec.frames,
            "input_size": self.spec.crop.size,
            "device": str(self.device),
            "sha256": self.sha256,
            "threshold": self.threshold,
            "uncertain_band": self.uncertain_band,
        }


_cache: dict[tuple[str, str], LoadedModel] = {}
_cache_lock = threading.Lock()


def load_model(name_or_path: str | os.PathLike | None = None, device: str | None = None) -> LoadedModel:
    """Load (once per process) and verify a model by registry name or file path."""
    path, entry = resolve(name_or_path)
    dev = pick_device(device)
    key = (str(path.resolve()), str(dev))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        digest = sha256_file(path)
        if entry is not None and digest != entry.sha256:
            raise CheckpointError(
                f"{path}: sha256 {digest[:16]}... does not match the registry's {entry.sha256[:16]}... "
                "(corrupt or replaced file)."
            )
        spec, state, extra = spec_and_state(path)
        net = build_from(spec, state, path).eval().to(dev)
        if dev.type == "cpu":
            net = net.to(memory_format=torch.channels_last)
        name = entry.name if entry else (spec.name if spec.name not in ("custom", "legacy") else path.stem)
        loaded = LoadedModel(net, spec, name, path, dev, digest, extra)
        _cache[key] = loaded
        log.info("loaded model %s (%s/%s) on %s", name, spec.backbone, spec.mode, dev)
        return loaded


def read_spec(name_or_path: str | os.PathLike | None = None) -> ModelSpec:
    """A model's spec (its crop spec: how `check.prepare` cuts its input) without building the
    network: for the CPU stages of a pipeline whose model runs elsewhere."""
    path, _ = resolve(name_or_path)
    return spec_and_state(path)[0]


def register(entry: RegistryEntry, default: bool = False) -> None:
    global DEFAULT_MODEL
    if entry.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {entry.backbone}")
    REGISTRY[entry.name] = entry
    if default or DEFAULT_MODEL is None:
        DEFAULT_MODEL = entry.name


# ---- the shipped models ----------------------------------------------------------------------------
# the default: detector v3's second network (the blend run's epoch 8, a generation branch over it),
# calibrated with the verdict policy (model card: dfc-lite0-v3b.md)
register(
    RegistryEntry(
        name="dfc-lite0-v3b",
        file="dfc-lite0-v3b.pt",
        sha256="d419082a7444b40e366038cea04a9371cdbdcb9ca1ac3b8bbfb7f6c933275308",
        backbone="efficientnet_lite0",
        mode="frames",
        frames=20,
        input_size=224,
        class_order=("FAKE", "REAL"),
        card="dfc-lite0-v3b.md",
    ),
    default=True,
)
# the previous default (shipped the same day): detector v3's first network (EfficientNet-Lite0 at 224 px, per frame, a blend head and a
# generation head), calibrated with the verdict policy (model card: dfc-lite0-v3.md)
register(
    RegistryEntry(
        name="dfc-lite0-v3",
        file="dfc-lite0-v3.pt",
        sha256="e7dab5351a2909fa7b74f7060fa85cea384e17975ab9af522fdd543a89a04f8e",
        backbone="efficientnet_lite0",
        mode="frames",
        frames=20,
        input_size=224,
        class_order=("FAKE", "REAL"),
        card="dfc-lite0-v3.md",
    ),
)
# the previous default: dfc-mobilenetv2-video's network re-calibrated with the verdict policy of 2026-12-07 (cuts
# fitted on 51 real people and their feed/webcam copies, abstention cuts measured for it)
register(
    RegistryEntry(
        name="dfc-mobilenetv2-video-r2",
        file="dfc-mobilenetv2-video-r2.pt",
        sha256="5fa08be1c87e6d631c6fec982ed7a73f88ade8e20a824fb74d0a68bd2c69de0d",
        backbone="mobilenet_v2",
        mode="temporal",
        frames=20,
        input_size=112,
        class_order=("FAKE", "REAL"),
        card="dfc-mobilenetv2-video-r2.md",
    ),
)
# the same network with its first calibration (2026-12-02), kept loadable by name for comparison
register(
    RegistryEntry(
        name="dfc-mobilenetv2-video",
        file="dfc-mobilenetv2-video.pt",
        sha256="740d43203141b2d674802ec1d289a44a51dbdc09a7e7417be737ce04769073d5",
        backbone="mobilenet_v2",
        mode="temporal",
        frames=20,
        input_size=112,
        class_order=("FAKE", "REAL"),
        card="dfc-mobilenetv2-video.md",
    ),
)
# the previous default (face stills only), kept loadable by name for comparison
register(
    RegistryEntry(
        name="dfc-mobilenetv2-sbi",
        file="dfc-mobilenetv2-sbi.pt",
        sha256="6decd7797d7b2b742907e27eda101f05c5ecb1b961186d096d297a81cba3c451",
        backbone="mobilenet_v2",
        mode="temporal",
        frames=20,
        input_size=112,
        class_order=("FAKE", "REAL"),
        card="dfc-mobilenetv2-sbi.md",
    ),
)
