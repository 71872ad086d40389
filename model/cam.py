"""Heatmaps: where the model looked on the most suspicious face (CAM / Grad-CAM), as a PNG."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from .network import DeepfakeDetector
from .spec import FAKE


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


def heatmap(net: DeepfakeDetector, x: torch.Tensor, crops_rgb: np.ndarray, head: str = "blend") -> tuple[bytes, int]:
    """PNG of the class-activation map over the most telling frame; returns (png, frame index).

    Legacy models use the original project's CAM: the last frame's feature map weighted by the
    linear layer's row for the predicted class (it has as many inputs as feature channels).
    Other models use Grad-CAM for the FAKE logit, which works whatever the LSTM's size, and
    show the frame with the strongest activation. `head`: the head whose FAKE logit is explained
    ("generation": over the generation branch's feature maps, for a check that head decided).
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
    generation = head == "generation" and getattr(net.spec, "gen_branch", 0)
    with torch.inference_mode():
        fmap = net.generation_fmap(x) if generation else net.model(x.reshape(b * t, c, h, w))
    # Grad-CAM needs the FAKE logit's gradient with respect to the feature maps only: the CNN runs
    # without autograd and only the pooling, LSTM and linear layer are differentiated (a backward
    # pass through the CNN's weights cost most of the heatmap's time and changed nothing)
    fmap = fmap.clone().requires_grad_(True)
    with torch.enable_grad():
        logits = net.generation_head(fmap, b, t) if generation else net.head(net.avgpool(fmap).reshape(b, t, net.channels))
        (grads,) = torch.autograd.grad(logits[0, FAKE], fmap)  # (t, C, h, w)
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cams = torch.relu((weights * fmap).sum(dim=1)).detach().float().cpu().numpy()  # (t, h, w)
    frame = int(np.argmax(cams.reshape(t, -1).sum(axis=1)))
    return _colourise(cams[frame], crops_rgb[frame]), frame
