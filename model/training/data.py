"""Training data: clips from prepared caches, their fixed splits, fakes made from real clips, and
the one augmentation every clip goes through.

Works on prepared caches (prepare.py). Labels here: 1 = fake, 0 = real; the network's class
order (index 0 = FAKE) is applied only where logits meet labels (train.py, evaluate.py).
"""
from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from model.spec import CropSpec

from . import TrainingError
from .blend import synthesise
from .prepare import Cache, load_cache
from .splits import SPLITS, Splits, hashed_split


@dataclass
class Clip:
    """Frames of one source (a video's main face track, or one still) with landmarks and a label."""

    frames: np.ndarray  # (T, S, S, 3) uint8 RGB, at the cache's crop size
    landmarks: np.ndarray  # (T, 68, 2), in crop pixels
    label: int
    group: str
    source: str  # the source's name in splits.csv ("video", "utkface", ...)
    split: str = "train"
    family: str | None = None  # face-swap / talking-head / real (extract.py's labels)
    method: str | None = None  # Celeb-DF-v2, VASA-1, MEAD, ...
    file: str | None = None

    @property
    def kind(self) -> str:
        """What the clip is, for reporting: its method, else its source."""
        return self.method or self.source


# ---- sources --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    grouped: bool = False  # stills named <video>_<frame> become one clip per video
    fractions: tuple[float, float, float] | None = None  # a hash split of this cache's groups (else splits.csv)


def parse_source(text: str) -> Source:
    """NAME=DIR[,grouped][,split=TRAIN/CAL/TEST]. NAME is the source's name in splits.csv; `split=`
    splits a cache splits.csv does not know (your own data) by a hash of its groups."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=DIR[,grouped][,split=a/b/c]")
    name, rest = text.split("=", 1)
    parts = rest.split(",")
    grouped, fractions = False, None
    for opt in parts[1:]:
        if opt == "grouped":
            grouped = True
        elif opt.startswith("split="):
            fr = tuple(float(v) for v in opt[6:].split("/"))
            if len(fr) != 3 or abs(sum(fr) - 1) > 1e-6:
                raise argparse.ArgumentTypeError(f"{opt}: three fractions that sum to 1")
            fractions = fr
        else:
            raise argparse.ArgumentTypeError(f"unknown source option {opt!r}")
    return Source(name, Path(parts[0]).expanduser(), grouped, fractions)


def clips_from_cache(cache: Cache, source: Source, splits: Splits | None) -> list[Clip]:
    """The cache's clips, each with its split (from splits.csv, or the source's hash fractions)."""

    def split_of(group: str) -> str:
        if source.fractions is not None:
            return hashed_split(group, source.fractions)
        return splits.of(source.name, group)

    out = []
    if source.grouped:
        by_group: dict[tuple[str, int], list[int]] = {}
        for i, rec in enumerate(cache.records):
            by_group.setdefault((rec["group"], rec["label"]), []).append(i)
        for (group, label), idx in sorted(by_group.items()):
            idx.sort(key=lambda i: cache.records[i]["frame_no"])
            frames = np.concatenate([cache.crops[i][:1] for i in idx])
            lms = np.concatenate([cache.landmarks[i][:1] for i in idx])
            out.append(Clip(frames, lms, label, group, source.name, split_of(group)))
    else:
        for i, rec in enumerate(cache.records):
            out.append(Clip(cache.crops[i], cache.landmarks[i], rec["label"], rec["group"], source.name,
                            split_of(rec["group"]), rec.get("family"), rec.get("method"), rec.get("file")))
    return out


def load_clips(sources: list[Source], splits: Splits | None = None) -> tuple[list[Clip], CropSpec]:
    """Every clip of the sources; the caches must share one crop spec."""
    splits = splits if splits is not None or all(s.fractions for s in sources) else Splits()
    clips, crops = [], set()
    for s in sources:
        crops.add(json.dumps(json.loads((s.path / "cache.json").read_text())["crop"], sort_keys=True))
        clips += clips_from_cache(load_cache(s.path), s, splits)
    if len(crops) != 1:
        raise TrainingError(f"the caches were prepared with different crops: {sorted(crops)}")
    return clips, CropSpec(**json.loads(crops.pop()))


def by_split(clips: list[Clip]) -> dict[str, list[Clip]]:
    return {s: [c for c in clips if c.split == s] for s in SPLITS}


# ---- augmentation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Augment:
    """What a clip goes through before the network sees it: the same for real and fake, so that
    no encoding or resolution is a cue. One draw per clip (one clip, one encoder)."""

    p_downscale: float = 0.7
    downscale: tuple[float, float] = (0.35, 1.0)  # effective resolution, as a fraction of the input size
    p_reencode: float = 0.9
    crf: tuple[int, int] = (18, 40)  # H.264 quality (libx264 CRF: 18 near-lossless .. 40 a poor stream)
    jitter: float = 0.1  # brightness/contrast/saturation amplitude
    p_flip: float = 0.5
    shift_px: int = 2  # per-frame wobble for sequences made from one still
    # what phones and platforms do to real uploads, so that it is never a cue: a beauty filter's
    # edge-preserving smoothing, sharpening, sensor noise (webcams, low light) with darkening
    p_smooth: float = 0.0
    p_sharpen: float = 0.0
    p_noise: float = 0.0
    noise_sigma: tuple[float, float] = (1.5, 7.0)
    dark_gamma: tuple[float, float] = (1.0, 1.8)  # >1 darkens the midtones (low light), drawn with noise


# The augmentation of the 224-px recipes: every treatment above, on reals and fakes alike.
PLATFORM_AUGMENT = Augment(p_smooth=0.15, p_sharpen=0.15, p_noise=0.2)


def h264_encode(frames: list[np.ndarray], crf: int) -> bytes:
    """Frames (even width and height) as a raw H.264 stream from PyAV's libx264."""
    import av

    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="h264") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": str(crf)}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def h264_roundtrip(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """Encode frames as an H.264 stream and decode them again."""
    import av

    with av.open(io.BytesIO(h264_encode(frames, crf)), mode="r", format="h264") as inp:
        decoded = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
    if len(decoded) != len(frames):  # pragma: no cover - the encoder keeps every frame
        raise RuntimeError(f"H.264 round trip gave {len(decoded)} frames for {len(frames)}")
    return decoded


def augment_clip(frames: list[np.ndarray], rng: np.random.Generator, aug: Augment) -> list[np.ndarray]:
    """Colour jitter and flip, then a random downscale and H.264 re-encode of the whole clip."""
    flip = rng.random() < aug.p_flip
    b, c, s = (1 + rng.uniform(-aug.jitter, aug.jitter, 3)).tolist()
    h, w = frames[0].shape[:2]
    ds = float(rng.uniform(*aug.downscale)) if rng.random() < aug.p_downscale else 1.0
    crf = int(rng.integers(aug.crf[0], aug.crf[1] + 1)) if rng.random() < aug.p_reencode else None
    sw, sh = max(16, round(w * ds / 2) * 2), max(16, round(h * ds / 2) * 2)
    # drawn only when asked for, so recipes without them keep their random stream
    smooth = float(rng.uniform(15, 45)) if aug.p_smooth and rng.random() < aug.p_smooth else 0.0
    sharpen = float(rng.uniform(0.3, 1.0)) if aug.p_sharpen and rng.random() < aug.p_sharpen else 0.0
    noise, gamma = (float(rng.uniform(*aug.noise_sigma)), float(rng.uniform(*aug.dark_gamma))) \
        if aug.p_noise and rng.random() < aug.p_noise else (0.0, 1.0)
    out = []
    for img in frames:
        x = img[:, ::-1] if flip else img
        if smooth:  # a beauty filter: edge-preserving skin smoothing
            x = cv2.bilateralFilter(np.ascontiguousarray(x), 5, smooth, smooth)
        x = x.astype(np.float32)
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * s
        x = (x - 128) * c + 128
        x = np.clip(x * b, 0, 255)
        if sharpen:
            x = np.clip(x + sharpen * (x - cv2.GaussianBlur(x, (0, 0), 1.2)), 0, 255)
        if noise:
            x = 255.0 * (x / 255.0) ** gamma + rng.normal(0, noise, x.shape).astype(np.float32)
            x = np.clip(x, 0, 255)
        x = x.astype(np.uint8)
        if (sw, sh) != (w, h):
            x = cv2.resize(x, (sw, sh), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(x))
    if crf is not None:
        out = h264_roundtrip(out, crf)
    if (sw, sh) != (w, h):
        out = [cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR) for x in out]
    return out


def wobble(img: np.ndarray, rng: np.random.Generator, px: int) -> np.ndarray:
    if px <= 0:
        return img
    dx, dy = rng.integers(-px, px + 1, 2)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT_101)


def take_frames(clip: Clip, t: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """t frames of a clip in order, spread as inference spreads them (a random stride and start);
    a still is repeated with a small wobble."""
    n = len(clip.frames)
    if n == 1:
        base, lm = clip.frames[0], clip.landmarks[0]
        return [base] + [wobble(base, rng, 2) for _ in range(t - 1)], [lm] * t
    if n >= t:
        stride = int(rng.integers(1, max(1, (n - 1) // max(1, t - 1)) + 1))
        start = int(rng.integers(0, n - (t - 1) * stride))
        idx = list(range(start, start + t * stride, stride))
    else:
        idx = sorted(rng.integers(0, n, t).tolist())
    return [clip.frames[i] for i in idx], [clip.landmarks[i] for i in idx]


def resize_crops(frames: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Cache crops (prepared larger) to the model's input size, as crop_face would have made them."""
    if frames[0].shape[0] == size:
        return frames
    interp = cv2.INTER_AREA if frames[0].shape[0] > size else cv2.INTER_LINEAR
    return [cv2.resize(f, (size, size), interpolation=interp) for f in frames]


def make_sample(clip: Clip, t: int, rng: np.random.Generator, aug: Augment | None, fake: str | None = None,
                size: int | None = None) -> tuple[np.ndarray, int]:
    """(T, size, size, 3) uint8 frames and label. `fake` (blend.SYNTHESES) turns a real clip into a
    fake of that kind, made at the cache's resolution before resizing and augmentation."""
    frames, lms = take_frames(clip, t, rng)
    label = clip.label
    if fake is not None:
        frames = synthesise(fake, frames, lms, rng)
        label = 1
    if size is not None:
        frames = resize_crops(frames, size)
    if aug is not None:
        frames = augment_clip(frames, rng, aug)
    return np.stack(frames), label


@dataclass
class Mixture:
    """What a training batch is made of: half real clips, half fakes.

    Reals are drawn per pool (real videos, face stills, ...) with `real_weights`; fakes are either
    made from a real clip of the batch (`synth`: kind -> share; the same face both ways, so only the
    manipulation can be learnt) or labelled fakes drawn per pool with `fake_weights`.
    """

    reals: dict[str, list[Clip]]
    fakes: dict[str, list[Clip]]
    real_weights: dict[str, float]
    fake_weights: dict[str, float]
    synth: dict[str, float]  # kind -> share of all fakes; the rest are labelled fakes
    blendable: dict[str, list[Clip]] = field(init=False)

    def __post_init__(self):
        self.reals = {k: v for k, v in self.reals.items() if v}
        self.fakes = {k: v for k, v in self.fakes.items() if v}
        if not self.reals:
            raise TrainingError("no real training clips")
        self.blendable = {k: [c for c in v if len(c.landmarks)] for k, v in self.reals.items()}

    def _pick(self, pools: dict[str, list[Clip]], weights: dict[str, float], rng: np.random.Generator) -> Clip:
        names = [k for k in pools if weights.get(k, 0) > 0] or list(pools)
        w = np.array([weights.get(k, 1.0) for k in names], float)
        pool = pools[names[int(rng.choice(len(names), p=w / w.sum()))]]
        return pool[int(rng.integers(0, len(pool)))]

    def batch(self, n_clips: int, t: int, size: int, rng: np.random.Generator,
              aug: Augment | None) -> tuple[np.ndarray, list[int], list[str]]:
        """(frames (n, t, size, size, 3), labels, what each sample is)."""
        n_fake = n_clips // 2
        items: list[tuple[Clip, str | None, str]] = []
        reals = [self._pick(self.reals, self.real_weights, rng) for _ in range(n_clips - n_fake)]
        items += [(c, None, f"real:{c.kind}") for c in reals]
        kinds = list(self.synth) + (["labelled"] if self.fakes else [])
        shares = np.array(list(self.synth.values()) + ([max(0.0, 1 - sum(self.synth.values()))] if self.fakes else []))
        for i in range(n_fake):
            kind = kinds[int(rng.choice(len(kinds), p=shares / shares.sum()))]
            if kind == "labelled":
                c = self._pick(self.fakes, self.fake_weights, rng)
                items.append((c, None, f"fake:{c.kind}"))
            else:  # made from a real of this batch when it can be, else from any real
                c = reals[i] if len(reals[i].landmarks) else self._pick(self.blendable, self.real_weights, rng)
                items.append((c, kind, f"synth:{kind}"))
        frames, labels, what = [], [], []
        for clip, fake, desc in items:
            x, y = make_sample(clip, t, rng, aug, fake, size)
            frames.append(x)
            labels.append(y)
            what.append(desc)
        return np.stack(frames), labels, what
