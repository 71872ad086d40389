"""Do the training classes differ in format? A trivial classifier on format features, before and
after the augmentation every training clip goes through.

    python -m model.training.shortcuts --source video=CACHE --source fake-dev=CACHE [--video-dir DIR] [--samples 600]

1. The labelled training videos as files: width, height, bitrate and frame rate (what a lazy model
   could learn instead of manipulation: talking-head fakes are 512x512 or 256x256 face-centred crops,
   many reals are not). A logistic regression on these, cross-validated by group, real vs fake.
2. The samples the network is fed (the same Mixture and Augment as train.py, labelled fakes only:
   made fakes are made from the reals themselves): the format that survives in their pixels --
   sharpness (Laplacian variance), high-frequency energy, blockiness at the 8-px grid, the H.264
   size of the sample at a fixed quality (a bitrate proxy), brightness and saturation -- and the
   same classifier.
An AUC near 0.5 means the features do not separate the classes; the closer to 1, the more a model
could learn the source instead of the manipulation.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from .data import Augment, by_split, h264_encode, load_clips, make_sample, parse_source
from .evaluate import roc_auc
from .quality import DEFAULT_VIDEO_DIR
from .splits import Splits

log = logging.getLogger(__name__)


def file_features(path: Path) -> list[float]:
    """width, height, bitrate (kbit/s), frames per second."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        dur = float(c.duration / 1e6) if c.duration else float(s.duration * s.time_base) if s.duration else 1.0
        return [float(s.codec_context.width), float(s.codec_context.height),
                path.stat().st_size * 8 / 1000 / max(dur, 1e-3), float(s.average_rate or 0)]


def pixel_features(frames: np.ndarray) -> list[float]:
    """Format that survives in the pixels of a (T, S, S, 3) sample."""
    grey = frames.mean(axis=3).astype(np.float32)
    lap = np.mean([cv2.Laplacian(g, cv2.CV_32F).var() for g in grey])
    f = np.abs(np.fft.fft2(grey[0]))
    h = f.shape[0]
    high = f[h // 4: 3 * h // 4, h // 4: 3 * h // 4].sum() / max(f.sum(), 1e-6)
    d = np.abs(np.diff(grey, axis=2))
    block = d[:, :, 7::8].mean() / max(d.mean(), 1e-6)
    hsv = cv2.cvtColor(frames[0], cv2.COLOR_RGB2HSV)
    size = len(h264_encode(list(frames), 23))  # a bitrate at one fixed quality
    return [float(np.log1p(lap)), float(high), float(block), float(np.log(size)), float(grey.mean()), float(hsv[..., 1].mean())]


def logistic_cv_auc(x: np.ndarray, y: np.ndarray, groups: list[str], folds: int = 5, seed: int = 0) -> float:
    """AUC of an L2 logistic regression on standardised features, cross-validated by group."""
    rng = np.random.default_rng(seed)
    uniq = sorted(set(groups))
    rng.shuffle(uniq)
    fold_of = {g: i % folds for i, g in enumerate(uniq)}
    fold = np.array([fold_of[g] for g in groups])
    scores = np.zeros(len(y))
    for k in range(folds):
        tr, te = fold != k, fold == k
        if te.sum() == 0 or len(set(y[tr])) < 2:
            continue
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
        xt = np.c_[(x[tr] - mu) / sd, np.ones(tr.sum())]
        w = np.zeros(xt.shape[1])
        for _ in range(50):  # Newton steps
            p = 1 / (1 + np.exp(-xt @ w))
            g = xt.T @ (p - y[tr]) + 1e-2 * w
            hess = (xt * (p * (1 - p))[:, None]).T @ xt + 1e-2 * np.eye(len(w))
            w -= np.linalg.solve(hess, g)
        scores[te] = np.c_[(x[te] - mu) / sd, np.ones(te.sum())] @ w
    return roc_auc(y, scores)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.shortcuts", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", action="append", type=parse_source, required=True)
    ap.add_argument("--video-dir", type=Path, default=DEFAULT_VIDEO_DIR)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    ap.add_argument("--samples", type=int, default=600, help="training samples drawn per class")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    splits = Splits()
    report: dict = {}

    # 1. the files
    rows = [r for r in csv.DictReader(open(args.video_dir / "labels.csv", newline=""))
            if splits.of("video", r["group"]) == "train"]
    feats = [file_features(args.video_dir / r["file"]) for r in rows]
    labels = [1 if r["label"] == "FAKE" else 0 for r in rows]
    groups = [r["group"] for r in rows]
    for f in sorted((args.data / "fake-dev").glob("*.mp4")):
        from .splits import fake_dev_group

        if splits.of("fake-dev", fake_dev_group(f.name)) == "train":
            feats.append(file_features(f))
            labels.append(1)
            groups.append(fake_dev_group(f.name))
    x, y = np.asarray(feats), np.asarray(labels)
    report["files"] = {"n_real": int((y == 0).sum()), "n_fake": int(y.sum()),
                       "features": ["width", "height", "kbit/s", "fps"],
                       "auc": logistic_cv_auc(x, y, groups),
                       "auc_each": {n: logistic_cv_auc(x[:, [i]], y, groups)
                                    for i, n in enumerate(["width", "height", "kbit/s", "fps"])}}

    # 2. what the network is fed
    clips, _ = load_clips(args.source)
    train = [c for c in by_split(clips)["train"] if len(c.frames) > 1]
    reals = [c for c in train if c.label == 0]
    fakes = [c for c in train if c.label == 1]
    rng = np.random.default_rng(0)
    names = ["log sharpness", "high-frequency energy", "8-px blockiness", "log H.264 bytes", "brightness", "saturation"]
    for stage, aug in (("before augmentation", None), ("after augmentation", Augment())):
        xs, ys, gs = [], [], []
        for label, pool in ((0, reals), (1, fakes)):
            for _ in range(args.samples):
                c = pool[int(rng.integers(0, len(pool)))]
                sample, _ = make_sample(c, 8, rng, aug, None, args.size)
                xs.append(pixel_features(sample))
                ys.append(label)
                gs.append(c.group)
        xa, ya = np.asarray(xs), np.asarray(ys)
        report[stage] = {"features": names, "auc": logistic_cv_auc(xa, ya, gs),
                         "auc_each": {n: logistic_cv_auc(xa[:, [i]], ya, gs) for i, n in enumerate(names)}}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
