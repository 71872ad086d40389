"""Choose a model's verdict thresholds on the calibration split and store them in its checkpoint.

    python -m model.training.calibrate --weights runs/NAME/best.pt --out model/weights/NAME.pt
                                       [--fpr 0.05] [--real-share 0.8] [--video-dir DIR] [--data DIR] [--synth-dir DIR]

Runs the full pipeline (`model.check`, as users get it) over the `cal` split's labelled videos (never
the test split), then:
1. fits P(fake) to the labels with a logistic map of its logit (Platt scaling, classes weighted
   equally), so a calibrated 0.5 means "as likely fake as real" on video and `confidence` stays the
   probability of the stated verdict;
2. puts the FAKE cut just above the calibrated scores of all but `fpr` of the real videos (at most
   5 % of real cal videos called FAKE), and the REAL cut where `real-share` of them fall below it:
   between the two, UNCERTAIN. threshold = the middle, uncertain band = half the gap.
The map, the cuts and what they give on cal are saved in the checkpoint's metadata (fp16 weights);
the CLI and the server use them without flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np

from model import load_model
from model.weights import build_from, save_checkpoint, spec_and_state

from .quality import DEFAULT_DATA, DEFAULT_SYNTH_DIR, DEFAULT_VIDEO_DIR, collect, run_model

log = logging.getLogger(__name__)


def fit_platt(raw: list[float], labels: list[int], l2: float = 1e-2, iters: int = 100) -> tuple[float, float]:
    """(a, b) of p' = sigmoid(a * logit(p) + b), by weighted logistic regression (damped Newton steps),
    each class weighing half; a small L2 pull towards the identity (a=1, b=0) keeps a tiny set sane.
    Each step is halved until the loss falls: a full Newton step from the identity can overshoot
    far when many scores sit at the network's ceiling (seen: a=201 instead of 0.51)."""
    p = np.clip(np.asarray(raw, float), 1e-6, 1 - 1e-6)
    x = np.log(p / (1 - p))
    y = np.asarray(labels, float)
    w = np.where(y == 1, 0.5 / max(1, y.sum()), 0.5 / max(1, (1 - y).sum()))
    prior = np.array([1.0, 0.0])

    def loss(t: np.ndarray) -> float:
        z = t[0] * x + t[1]
        # -log sigmoid(z) = logaddexp(0, -z): stable for any z
        return float(np.sum(w * (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))) + l2 / 2 * np.sum((t - prior) ** 2))

    theta = prior.copy()
    current = loss(theta)
    for _ in range(iters):
        z = theta[0] * x + theta[1]
        q = 1 / (1 + np.exp(-z))
        grad = np.array([np.sum(w * (q - y) * x), np.sum(w * (q - y))]) + l2 * (theta - prior)
        h = w * q * (1 - q)
        hess = np.array([[np.sum(h * x * x), np.sum(h * x)], [np.sum(h * x), np.sum(h)]]) + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(theta - scale * step) > current:
            scale /= 2
        if scale <= 1e-6:
            break
        theta = theta - scale * step
        current = loss(theta)
        if np.abs(scale * step).max() < 1e-9:
            break
    if theta[0] <= 0:  # the map must keep the model's order
        raise ValueError(f"calibration fit reversed the scores (a={theta[0]:.3f}): the model does not separate cal")
    return float(theta[0]), float(theta[1])


def choose_cuts(real_scores: list[float], fpr: float, real_share: float) -> tuple[float, float]:
    """(REAL cut, FAKE cut): at most `fpr` of the reals at or above the FAKE cut, `real_share` at or below the REAL cut."""
    r = np.sort(np.asarray(real_scores, float))[::-1]
    k = int(math.floor(fpr * len(r)))
    # halfway between the highest real left below the cut and the lowest one above it, not one ulp
    # above the former: the cuts are stored rounded, and a cut on a real's own score would flip it
    upper = (float(r[k] + r[k - 1]) / 2 if k > 0 else float(np.nextafter(r[0], 1.0))) if k < len(r) else 0.0
    lower = float(np.quantile(r, real_share, method="higher"))
    return min(lower, upper), upper


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.calibrate", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="the trained checkpoint (its own calibration, if any, is ignored)")
    ap.add_argument("--out", type=Path, required=True, help="the calibrated checkpoint to write (fp16)")
    ap.add_argument("--fpr", type=float, default=0.05, help="largest share of real cal videos called FAKE")
    ap.add_argument("--real-share", type=float, default=0.8, help="share of real cal videos called REAL")
    ap.add_argument("--name", help="model name stored in the checkpoint (default: the trained one's)")
    ap.add_argument("--video-dir", type=Path, default=DEFAULT_VIDEO_DIR)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--synth-dir", type=Path, default=DEFAULT_SYNTH_DIR)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--work", type=Path, help="where per-file results are kept (default: beside --out)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    src = Path(args.weights)
    spec, state, extra = spec_and_state(src)
    extra = {k: v for k, v in extra.items() if k != "calibration"}
    if args.name:
        spec = dataclasses.replace(spec, name=args.name)
    loaded = load_model(src)
    loaded.extra = extra  # score with the raw network output
    items = collect("cal", args.video_dir, args.data, args.synth_dir)
    if not items:
        print("error: no cal-split files found", file=sys.stderr)
        return 2
    work = args.work or args.out.with_suffix(".calibration")
    work.mkdir(parents=True, exist_ok=True)
    res = run_model(loaded, items, args.frames, work / f"results-{loaded.sha256[:16]}-{args.frames}.jsonl")
    scored = [(it, res[it.path].p_fake) for it in items if res[it.path].p_fake is not None]
    labels = [1 if it.label == "FAKE" else 0 for it, _ in scored]
    a, b = fit_platt([p for _, p in scored], labels)
    cal = loaded.calibrated
    loaded.extra = {**extra, "calibration": {"platt": [a, b]}}
    reals = [cal(p) for (it, p) in scored if it.label == "REAL"]
    lower, upper = choose_cuts(reals, args.fpr, args.real_share)
    threshold, band = (lower + upper) / 2, (upper - lower) / 2

    def verdict(p: float) -> str:
        return "UNCERTAIN" if abs(p - threshold) < band - 1e-9 else "FAKE" if p >= threshold else "REAL"

    summary: dict = {"n_real": len(reals), "n_fake": sum(labels)}
    for name, pick in (("real", lambda it: it.label == "REAL"), ("fake", lambda it: it.label == "FAKE")):
        vs = [verdict(cal(p)) for it, p in scored if pick(it)]
        summary[name] = {v: round(vs.count(v) / max(1, len(vs)), 4) for v in ("REAL", "UNCERTAIN", "FAKE")}
    for method in sorted({it.method for it, _ in scored if it.label == "FAKE"}):
        vs = [verdict(cal(p)) for it, p in scored if it.method == method]
        summary[f"fake/{method}"] = {"n": len(vs), "called_fake": round(vs.count("FAKE") / len(vs), 4)}
    calibration = {"platt": [round(a, 6), round(b, 6)], "threshold": round(threshold, 6), "uncertain_band": round(band, 6),
                   "fpr_target": args.fpr, "real_share": args.real_share, "split": "cal", "frames": args.frames,
                   "date": dt.date.today().isoformat(), "on_cal": summary}
    net = build_from(spec, state, src)
    save_checkpoint(args.out, net, extra={**extra, "calibration": calibration}, half=True)
    print(json.dumps(calibration, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
