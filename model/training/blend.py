"""Self-blended fakes (SBI: Shiohara & Yamasaki, CVPR 2022).

A FAKE training sample is made from a REAL face by blending the face with a perturbed copy of
itself (colour and frequency changes, a slight warp) inside a blurred, randomly deformed
landmark-hull mask. Real and fake then share the identity, so a model can only tell them apart
by the blending traces (boundary, colour mismatch, resampling) that every face swap leaves.

Everything random comes from one `BlendParams`, drawn from a seeded generator, so a blend is
reproducible and a clip's frames can share one set of parameters (a swap is consistent over time).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# 68-point landmark groups (dlib order) used to build the mask hull
JAW = list(range(0, 17))
BROWS = list(range(17, 27))
NOSE = list(range(27, 36))
EYES = list(range(36, 48))
MOUTH = list(range(48, 68))
HULL_VARIANTS = {
    "full": JAW + BROWS,  # the whole face up to the brows
    "inner": JAW[3:14] + BROWS,  # narrower at the cheeks
    "lower": JAW + NOSE[:1],  # mouth and chin up to the nose bridge
    "centre": EYES + NOSE + MOUTH,  # eyes, nose, mouth: a tight swap
}


@dataclass(frozen=True)
class BlendParams:
    hull: str
    blend_ratio: float  # peak opacity of the perturbed face inside the mask
    blur_sigma: float  # mask edge softness, fraction of the face size
    deform: float  # elastic deformation of the mask edge, fraction of the face size
    deform_seed: int
    shift: tuple[float, float]  # warp of the source, fraction of the crop
    scale: float
    colour: tuple[float, float, float]  # per-channel gain
    brightness: float
    contrast: float
    freq: str  # "none" | "blur" | "sharpen" | "resample"
    freq_amount: float


def sample_params(rng: np.random.Generator) -> BlendParams:
    return BlendParams(
        hull=str(rng.choice(list(HULL_VARIANTS))),
        blend_ratio=float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])),
        blur_sigma=float(rng.uniform(0.015, 0.05)),
        deform=float(rng.uniform(0.0, 0.06)),
        deform_seed=int(rng.integers(0, 2**31 - 1)),
        shift=(float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-0.03, 0.03))),
        scale=float(rng.uniform(0.95, 1.05)),
        colour=tuple(float(v) for v in rng.uniform(0.9, 1.1, 3)),
        brightness=float(rng.uniform(-12, 12)),
        contrast=float(rng.uniform(0.9, 1.1)),
        freq=str(rng.choice(["none", "blur", "sharpen", "resample"])),
        freq_amount=float(rng.uniform(0.3, 1.0)),
    )


# dlib's 68-point model expects boxes like its HOG detector's: square, from the brows to the chin.
# A YuNet box (forehead to chin, taller than wide) is mapped to one: measured on 236 faces that both
# detectors found in the labelled videos, the HOG box is 1.075x the YuNet box's width and centred
# 0.044 of its height lower (spread 9 %).
HOG_SIDE_PER_YUNET_WIDTH = 1.075
HOG_SHIFT_PER_YUNET_HEIGHT = 0.044


def find_landmarks(image: np.ndarray, box) -> np.ndarray:
    """68 landmarks (x, y) of the face in `box` (a faces.Box), with dlib's 68-point model."""
    import dlib

    from model.faces import face_recognition_api

    left, top, right, bottom = box.left, box.top, box.right, box.bottom
    if box.points is not None:  # a YuNet box
        cx, cy = box.centre
        cy += HOG_SHIFT_PER_YUNET_HEIGHT * box.height
        half = HOG_SIDE_PER_YUNET_WIDTH * box.width / 2
        left, top, right, bottom = (round(v) for v in (cx - half, cy - half, cx + half, cy + half))
    shape = face_recognition_api().api.pose_predictor_68_point(image, dlib.rectangle(left, top, right, bottom))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def make_mask(shape: tuple[int, int], landmarks: np.ndarray, p: BlendParams) -> np.ndarray:
    """Float mask in [0, 1] (H, W): the deformed, blurred landmark hull times the blend ratio.

    The mask never leaves the face (the hull of all 68 landmarks): the deformation is clipped to
    it and the shape is eroded by two blur radii before blurring, so the soft edge fades out inside.
    """
    h, w = shape
    face = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(face, cv2.convexHull(landmarks.astype(np.int32)), 1.0)
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(landmarks[HULL_VARIANTS[p.hull]].astype(np.int32)), 1.0)
    size = float(max(np.ptp(landmarks[:, 0]), np.ptp(landmarks[:, 1]), 1.0))
    if p.deform > 0:
        mask = _elastic(mask, p.deform * size, p.deform_seed) * face
    sigma = max(0.5, p.blur_sigma * size)
    k = max(1, int(round(2 * sigma)))
    eroded = cv2.erode(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    if eroded.max() > 0:  # a small hull can vanish under erosion: then keep its core
        mask = eroded
    mask = cv2.GaussianBlur(mask, (0, 0), sigma) * face
    mask = np.clip(mask / max(mask.max(), 1e-6), 0.0, 1.0) * p.blend_ratio
    mask[mask < 1e-3] = 0.0
    return mask


def _elastic(mask: np.ndarray, amount: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = mask.shape
    coarse = rng.uniform(-1, 1, (2, 4, 4)).astype(np.float32)
    dx = cv2.resize(coarse[0], (w, h), interpolation=cv2.INTER_CUBIC) * amount
    dy = cv2.resize(coarse[1], (w, h), interpolation=cv2.INTER_CUBIC) * amount
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderValue=0)
    return (out > 0.5).astype(np.float32)


def perturb_source(image: np.ndarray, p: BlendParams) -> np.ndarray:
    """The 'other face': the same face with colour, frequency and geometry slightly changed."""
    h, w = image.shape[:2]
    img = image.astype(np.float32)
    img = img * np.asarray(p.colour, np.float32)
    img = (img - 128.0) * p.contrast + 128.0 + p.brightness
    img = np.clip(img, 0, 255)
    if p.freq == "blur":
        img = cv2.GaussianBlur(img, (0, 0), 0.5 + 1.0 * p.freq_amount)
    elif p.freq == "sharpen":
        blur = cv2.GaussianBlur(img, (0, 0), 1.0)
        img = np.clip(img + p.freq_amount * (img - blur), 0, 255)
    elif p.freq == "resample":
        f = 1.0 - 0.5 * p.freq_amount
        small = cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_LINEAR)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, p.scale)
    m[0, 2] += p.shift[0] * w
    m[1, 2] += p.shift[1] * h
    img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return img


def self_blend(image: np.ndarray, landmarks: np.ndarray, p: BlendParams) -> tuple[np.ndarray, np.ndarray]:
    """(blended uint8 image, mask). Pixels where the mask is 0 are exactly the source's."""
    mask = make_mask(image.shape[:2], landmarks, p)
    src = perturb_source(image, p)
    m = mask[..., None]
    out = image.astype(np.float32) * (1 - m) + src * m
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    out[mask == 0] = image[mask == 0]
    return out, mask


def blend_sequence(images: list[np.ndarray], landmarks: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One set of blend parameters for every frame of a clip."""
    p = sample_params(rng)
    return [self_blend(img, lm, p)[0] for img, lm in zip(images, landmarks, strict=True)]


# ---- fakes like today's swap tools -----------------------------------------------------------------
# One-shot swappers (inswapper-based roop/FaceFusion/Deep-Live-Cam, GHOST, SimSwap) and DeepFaceLab
# models generate the new face at a low resolution (64-128 px inswapper/GHOST, 96-256 DFL), smooth it,
# upsample it, match its colour to the target and paste it with a feathered mask, frame by frame. A
# self-swap does the same with the frame's own face (a re-rendered copy), so identity is no cue and
# what is left to learn is what these tools leave: the resolution and smoothness mismatch between
# the face and its surroundings, the feathered seam, a slight per-frame wobble of the pasted face.
SYNTHESES = ("sbi", "swap-lowres", "lipsync")
# What the blend head trains on. `lipsync` (a re-generated face box with a changed mouth) is never shown
# to the blend head, so it measures how that head generalises to a fake it was not shown; it is a made
# fake of the other kind, which only a generation head (recipe lite0-generation) trains on.
TRAINED_SYNTHESES = ("sbi", "swap-lowres")
GENERATION_SYNTHESES = ("lipsync",)


@dataclass(frozen=True)
class SwapParams:
    gen_px: int  # the generator's face resolution
    smooth: float  # Gaussian sigma of the generated face, in generator pixels
    sharpen: float  # unsharp-mask amount after upsampling (face enhancers), 0 = none
    colour_match: float  # 1: colour mean/std transferred fully to the target's, 0: left as generated
    colour_gain: tuple[float, float, float]  # the generated face's own colour cast before matching
    feather: float  # mask edge blur, fraction of the face size
    erode: float  # mask shrink before feathering, fraction of the face size
    hull: str
    jitter: float  # per-frame misplacement of the pasted face, fraction of the face size (s.d.)


def sample_swap(rng: np.random.Generator) -> SwapParams:
    return SwapParams(
        gen_px=int(rng.choice([64, 80, 96, 112, 128, 128])),
        smooth=float(rng.uniform(0.0, 1.2)),
        sharpen=float(rng.choice([0.0, 0.0, rng.uniform(0.2, 0.8)])),
        colour_match=float(rng.uniform(0.6, 1.0)),
        colour_gain=tuple(float(v) for v in rng.uniform(0.9, 1.1, 3)),
        feather=float(rng.uniform(0.03, 0.12)),
        erode=float(rng.uniform(0.0, 0.08)),
        hull=str(rng.choice(["full", "inner", "full"])),
        jitter=float(rng.uniform(0.0, 0.012)),
    )


def _face_square(landmarks: np.ndarray, shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): a square around the landmarks with `margin` of their size, inside the image."""
    h, w = shape
    (lx, ly), (hx, hy) = landmarks.min(axis=0), landmarks.max(axis=0)
    side = max(hx - lx, hy - ly) * (1 + 2 * margin)
    cx, cy = (lx + hx) / 2, (ly + hy) / 2
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    return x0, y0, max(x0 + 2, x1), max(y0 + 2, y1)


def _match_colour(src: np.ndarray, dst: np.ndarray, mask: np.ndarray, strength: float) -> np.ndarray:
    """Move src's colour mean/std inside mask towards dst's (in Lab), by `strength`."""
    m = mask > 0.5
    if m.sum() < 16:
        return src
    s = cv2.cvtColor(np.clip(src, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    d = cv2.cvtColor(dst.astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    for c in range(3):
        sm, ss = s[..., c][m].mean(), s[..., c][m].std() + 1e-3
        dm, ds = d[..., c][m].mean(), d[..., c][m].std() + 1e-3
        target = (s[..., c] - sm) / ss * ds + dm
        s[..., c] = s[..., c] + strength * (target - s[..., c])
    return cv2.cvtColor(np.clip(s, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)


def swap_lowres(image: np.ndarray, landmarks: np.ndarray, p: SwapParams, rng: np.random.Generator) -> np.ndarray:
    """One frame of a self-swap the way one-shot swappers paste their low-resolution face."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = _face_square(landmarks, (h, w), 0.1)
    region = image[y0:y1, x0:x1].astype(np.float32)
    rh, rw = region.shape[:2]
    gen = cv2.resize(region, (p.gen_px, p.gen_px), interpolation=cv2.INTER_AREA) * np.asarray(p.colour_gain, np.float32)
    if p.smooth > 0.05:
        gen = cv2.GaussianBlur(gen, (0, 0), p.smooth)
    up = cv2.resize(gen, (rw, rh), interpolation=cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR)
    if p.sharpen > 0:
        up = up + p.sharpen * (up - cv2.GaussianBlur(up, (0, 0), 1.5))
    size = float(max(rw, rh))
    if p.jitter > 0:  # the tool re-aligns the face every frame, never exactly
        dx, dy = rng.normal(0, p.jitter * size, 2)
        s = 1 + rng.normal(0, p.jitter)
        m = cv2.getRotationMatrix2D((rw / 2, rh / 2), float(rng.normal(0, 30 * p.jitter)), float(s))
        m[:, 2] += (dx, dy)
        up = cv2.warpAffine(up, m, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    full = image.astype(np.float32).copy()
    full[y0:y1, x0:x1] = up
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(landmarks[HULL_VARIANTS[p.hull]].astype(np.int32)), 1.0)
    face_size = float(max(np.ptp(landmarks[:, 0]), np.ptp(landmarks[:, 1]), 1.0))
    k = int(round(p.erode * face_size))
    if k > 0:
        eroded = cv2.erode(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
        if eroded.max() > 0:
            mask = eroded
    full = _match_colour(full, image.astype(np.float32), mask, p.colour_match)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, p.feather * face_size))[..., None]
    out = image.astype(np.float32) * (1 - mask) + full * mask
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class LipsyncParams:
    gen_px: int  # lip-sync models (Wav2Lip and kin) generate the whole face box at ~96 px
    mouth_scale: float  # the generated mouth opened/closed vertically by this factor
    smooth: float
    feather: float  # fraction of the box; small: the box's edges often show


def sample_lipsync(rng: np.random.Generator) -> LipsyncParams:
    return LipsyncParams(gen_px=int(rng.choice([96, 96, 128])), mouth_scale=float(rng.uniform(0.8, 1.3)),
                         smooth=float(rng.uniform(0.0, 0.8)), feather=float(rng.uniform(0.0, 0.04)))


def lipsync(image: np.ndarray, landmarks: np.ndarray, p: LipsyncParams, rng: np.random.Generator) -> np.ndarray:
    """One frame of a lip-sync fake: the face box re-generated at low resolution with a changed
    mouth (its lower half), pasted back as a box. Never shown to a blend head (see TRAINED_SYNTHESES)."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = _face_square(landmarks, (h, w), 0.05)
    region = image[y0:y1, x0:x1].astype(np.float32)
    rh, rw = region.shape[:2]
    g = p.gen_px
    gen = cv2.resize(region, (g, g), interpolation=cv2.INTER_AREA)
    mouth = (landmarks[MOUTH] - (x0, y0)) * (g / rw, g / rh)
    mcx, mcy = mouth.mean(axis=0)
    scale = p.mouth_scale * float(rng.uniform(0.95, 1.05))  # speech moves the mouth every frame
    ys, xs = np.mgrid[0:g, 0:g].astype(np.float32)
    weight = np.clip(1 - np.hypot((xs - mcx) / (0.35 * g), (ys - mcy) / (0.25 * g)), 0, 1) ** 2
    src_y = ys - (ys - mcy) * (1 - 1 / scale) * weight
    gen = cv2.remap(gen, xs, src_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if p.smooth > 0.05:
        gen = cv2.GaussianBlur(gen, (0, 0), p.smooth)
    up = cv2.resize(gen, (rw, rh), interpolation=cv2.INTER_LINEAR)
    mask = np.zeros((h, w), np.float32)
    mask[y0:y1, x0:x1] = 1.0
    if p.feather > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, p.feather * rw)) * (mask > 0)
    full = image.astype(np.float32).copy()
    full[y0:y1, x0:x1] = up
    out = image.astype(np.float32) * (1 - mask[..., None]) + full * mask[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def synthesise(kind: str, frames: list[np.ndarray], landmarks: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A fake clip of `kind` (SYNTHESES) from a real clip's frames: one parameter set per clip."""
    if kind == "sbi":
        p = sample_params(rng)
        return [self_blend(f, lm, p)[0] for f, lm in zip(frames, landmarks, strict=True)]
    if kind == "swap-lowres":
        sp = sample_swap(rng)
        return [swap_lowres(f, lm, sp, rng) for f, lm in zip(frames, landmarks, strict=True)]
    if kind == "lipsync":
        lp = sample_lipsync(rng)
        return [lipsync(f, lm, lp, rng) for f, lm in zip(frames, landmarks, strict=True)]
    raise ValueError(f"unknown synthesis {kind!r}; known: {', '.join(SYNTHESES)}")
