"""Scores -> verdict, and the class-activation heatmap for the most suspicious face."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch

from .network import FAKE, DeepfakeDetector

DEFAULT_THRESHOLD = 0.5
# p(fake) within this distance of the threshold is reported as UNCERTAIN rather than a
# confident-looking call on a coin flip.
DEFAULT_UNCERTAIN_BAND = 0.1
VERDICTS = ("REAL", "FAKE", "UNCERTAIN", "NO_FACE", "ERROR")


@dataclass
class FaceResult:
    """One tracked face: its P(fake) and where it was seen."""

    p_fake: float
    frames: int
    boxes: list[dict] = field(default_factory=list)  # [{"t": seconds, "box": [x, y, w, h]}]


@dataclass
class Verdict:
    """The result of checking one file. Field names are the CLI/API contract: keep them stable."""

    file: str
    verdict: str
    p_fake: float | None = None
    confidence: float | None = None
    faces: list[FaceResult] = field(default_factory=list)
    frames_analysed: int = 0
    frames_with_face: int = 0
    model: str | None = None
    mode: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    uncertain_band: float = DEFAULT_UNCERTAIN_BAND
    width: int = 0
    height: int = 0
    duration: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    heatmap_png: bytes | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("heatmap_png")
        return d


def decide(p_fake: float, threshold: float = DEFAULT_THRESHOLD, band: float = DEFAULT_UNCERTAIN_BAND) -> tuple[str, float]:
    """(verdict, confidence). Confidence is the probability of the stated side.

    For UNCERTAIN it is the probability of the side it leans to, which is by construction
    below threshold + band.
    """
    if not 0.0 <= p_fake <= 1.0:
        raise ValueError(f"p_fake out of range: {p_fake}")
    if abs(p_fake - threshold) < band - 1e-9:  # the band edge itself is a confident call
        return "UNCERTAIN", max(p_fake, 1.0 - p_fake)
    if p_fake >= threshold:
        return "FAKE", p_fake
    return "REAL", 1.0 - p_fake


def video_p_fake(track_p_fakes: list[float]) -> float:
    """A video is as suspicious as its most suspicious face (one swapped face makes it fake)."""
    return max(track_p_fakes)


def _colourise(cam: np.ndarray, crop_rgb: np.ndarray, out_size: int = 224) -> bytes:
    cam = cam - cam.min()
    cam = cam / cam.max() if cam.max() > 0 else cam
    cam8 = cv2.resize(np.uint8(255 * cam), (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap(cam8, cv2.COLORMAP_JET)  # BGR
    face = cv2.resize(crop_rgb[..., ::-1], (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    overlay = cv2.addWeighted(face, 0.6, heat, 0.4, 0)
    ok, buf = cv2.imencode(".png", overlay)
    if not ok:  # pragma: no cover - encoding a valid uint8 image does not fail
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def heatmap(net: DeepfakeDetector, x: torch.Tensor, crops_rgb: np.ndarray) -> tuple[bytes, int]:
    """PNG of the class-activation map over the most telling frame; returns (png, frame index).

    Legacy models use the original project's CAM: the last frame's feature map weighted by the
    linear layer's row for the predicted class (it has as many inputs as feature channels).
    Other models use Grad-CAM for the FAKE logit, which works whatever the LSTM's size, and
    show the frame with the strongest activation.
    """
    if net.spec.mode == "legacy":
        with torch.inference_mode():
            fmap, logits = net(x)
            idx = int(logits.argmax(dim=1)[0])
            w = net.linear1.weight[idx].float().cpu().numpy()
            f = fmap[-1].float().cpu().numpy()
        nc, h, wd = f.shape
        cam = (f.reshape(nc, h * wd).T @ w).reshape(h, wd)
        frame = x.shape[1] - 1
        return _colourise(cam, crops_rgb[frame]), frame

    b, t, c, h, w = x.shape
    with torch.inference_mode():
        fmap = net.model(x.reshape(b * t, c, h, w))
    # Grad-CAM needs the FAKE logit's gradient with respect to the feature maps only: the CNN runs
    # without autograd and only the pooling, LSTM and linear layer are differentiated (a backward
    # pass through the CNN's weights cost most of the heatmap's time and changed nothing)
    fmap = fmap.clone().requires_grad_(True)
    with torch.enable_grad():
        logits = net.head(net.avgpool(fmap).reshape(b, t, net.channels))
        (grads,) = torch.autograd.grad(logits[0, FAKE], fmap)  # (t, C, h, w)
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cams = torch.relu((weights * fmap).sum(dim=1)).detach().float().cpu().numpy()  # (t, h, w)
    frame = int(np.argmax(cams.reshape(t, -1).sum(axis=1)))
    return _colourise(cams[frame], crops_rgb[frame]), frame
