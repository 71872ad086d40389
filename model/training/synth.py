"""Fake videos made from real test clips, for the quality benchmark's held-out made fakes.

    python -m model.training.synth --video-dir ~/.cache/deepfake-check/video --out ~/.cache/deepfake-check/synth
                                   [--kinds sbi,swap-lowres,lipsync] [--max-seconds 8]

Each real video of the split (splits.csv; test by default, cal for calibration) is re-rendered once per kind (blend.SYNTHESES): every
frame's main face found with the inference detector, its 68 landmarks, the kind's manipulation with
one parameter set per clip (seeded by the clip and the kind), the clip encoded again as H.264
(CRF 23). `lipsync` is a kind no blend head trains on (only a generation head does). Writes OUT/<kind>/<group>__<name>.mp4
and OUT/labels.csv (file,label,family,method,group) for `model.training.quality`; a made clip takes its
source clip's split. Re-running skips what is there. Training never reads these files.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import sys
from pathlib import Path

import av
import numpy as np

from model.faces import Box, detect_faces
from model.video import Frames

from .blend import (
    SYNTHESES,
    find_landmarks,
    lipsync,
    sample_lipsync,
    sample_params,
    sample_swap,
    self_blend,
    swap_lowres,
)
from .splits import Splits

log = logging.getLogger(__name__)
REGION_MARGIN = 0.6  # the face region edited, around the face box, as a fraction of its size


def _region(box: Box, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    h, w = shape
    side = max(box.width, box.height) * (1 + 2 * REGION_MARGIN)
    cx, cy = box.centre
    return (int(max(0, cx - side / 2)), int(max(0, cy - side / 2)), int(min(w, cx + side / 2)), int(min(h, cy + side / 2)))


def render(src: Path, dst: Path, kind: str, seed: int, max_seconds: float) -> int:
    """Write the fake of `kind` made from src; returns how many frames had a face manipulated."""
    rng = np.random.default_rng(seed)
    params = {"sbi": sample_params, "swap-lowres": sample_swap, "lipsync": sample_lipsync}[kind](rng)
    edited = 0
    prev: Box | None = None
    tmp = dst.with_suffix(".tmp.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        vin = inp.streams.video[0]
        rate = vin.average_rate or 25
        ostream = None
        for frame in inp.decode(vin):
            if frame.time is not None and frame.time > max_seconds:
                break
            img = frame.to_ndarray(format="rgb24")
            h, w = img.shape[:2]
            if ostream is None:
                ostream = out.add_stream("libx264", rate=rate)
                ostream.width, ostream.height, ostream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
                ostream.options = {"preset": "veryfast", "crf": "23"}
            boxes = detect_faces(Frames([img], [0.0], 1, 0.0, w, h), threads=1)[0]
            if boxes:
                # the main face: the one nearest the previous frame's, else the largest
                box = (min(boxes, key=lambda b: np.hypot(b.centre[0] - prev.centre[0], b.centre[1] - prev.centre[1]))
                       if prev is not None else max(boxes, key=lambda b: b.area))
                prev = box
                x0, y0, x1, y1 = _region(box, (h, w))
                region = np.ascontiguousarray(img[y0:y1, x0:x1])
                lm = find_landmarks(img, box) - np.array([x0, y0], np.float32)
                if kind == "sbi":
                    new = self_blend(region, lm, params)[0]
                elif kind == "swap-lowres":
                    new = swap_lowres(region, lm, params, rng)
                else:
                    new = lipsync(region, lm, params, rng)
                img = img.copy()
                img[y0:y1, x0:x1] = new
                edited += 1
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: h - h % 2, : w - w % 2]), format="rgb24")
            for packet in ostream.encode(vf):
                out.mux(packet)
        if ostream is not None:
            for packet in ostream.encode():
                out.mux(packet)
    tmp.replace(dst)
    return edited


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--video-dir", type=Path, required=True, help="extract.py's output (labels.csv)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--kinds", default=",".join(SYNTHESES))
    ap.add_argument("--max-seconds", type=float, default=8.0)
    ap.add_argument("--split", default="test")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    splits = Splits()
    rows = [r for r in csv.DictReader(open(args.video_dir / "labels.csv", newline=""))
            if r["label"] == "REAL" and splits.of("video", r["group"]) == args.split]
    labels_csv = args.out / "labels.csv"
    labels = {r["file"]: r for r in csv.DictReader(open(labels_csv, newline=""))} if labels_csv.exists() else {}
    for kind in args.kinds.split(","):
        if kind not in SYNTHESES:
            ap.error(f"unknown kind {kind!r}; known: {', '.join(SYNTHESES)}")
        (args.out / kind).mkdir(parents=True, exist_ok=True)
        for r in rows:
            name = Path(r["file"]).name
            dst = args.out / kind / name
            if not dst.exists():
                seed = int(hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:8], 16)
                n = render(args.video_dir / r["file"], dst, kind, seed, args.max_seconds)
                log.info("%s %s: %d frames edited", kind, name, n)
            labels[f"{kind}/{name}"] = {"file": f"{kind}/{name}", "label": "FAKE", "family": "synthetic", "method": kind,
                                        "group": f"synth-{r['group']}"}
    with open(labels_csv, "w", newline="") as f:  # every clip made so far, whichever split it was made for
        w = csv.DictWriter(f, ["file", "label", "family", "method", "group"])
        w.writeheader()
        w.writerows(labels[k] for k in sorted(labels))
    print(f"{len(labels)} fake clips in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
