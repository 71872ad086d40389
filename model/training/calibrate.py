"""Choose a model's verdict policy on the calibration split and store it in its checkpoint.

    python -m model.training.calibrate --weights runs/NAME/best.pt --out model/weights/NAME.pt
        [--abstain runs/abstain/abstain.json] [--fpr 0.05] [--real-share 0.8] [--copies 2]

Runs the full pipeline (`model.check`, as users get it) over the `cal` split's labelled files (never
the test split) with the network's raw output; every real clip also as `--copies` copies the way feeds
and calls serve video (model/training/variants.py: H.264 CRF 23-35 at 360-720p, a webcam's noise and
low light), because a cut that holds only on pristine clips does not hold in a feed. Then:
1. the abstention cuts (`--abstain`, measured by `model.training.abstain`) decide which faces can be
   judged at all; a clip without one is UNCERTAIN with a reason, whatever its score, and takes no part
   below;
2. a Platt map of the logit (model/calibration.py), each class weighing half and, within a class, each
   person (group) the same, so a calibrated 0.5 reads "as likely fake as real". A two-head model
   (blend and generation heads) gets one map per head, fitted on the reals against the fakes of that
   head's kind (`signal_kind`), and its score is the larger calibrated head;
3. the FAKE cut: a conformal bound over real *people* (each person weighs one, however many clips and
   copies they have), so that at most `fpr` of real people not seen are called FAKE, with the
   finite-sample correction; the REAL cut where `real-share` of real people are REAL; UNCERTAIN between.
The map, the cuts, the abstention cuts and what they give on cal are saved in the checkpoint's metadata
(fp16 weights); the CLI and the server use them without flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import sys
from pathlib import Path

import numpy as np

from model import load_model
from model.calibration import (
    conformal_fake_cut,
    fit_platt,
    platt,
    platt_heads,
    real_cut,
    threshold_and_band,
    weighted_share,
)
from model.evidence import Cuts, TrackEvidence, judge
from model.verdict import SIGNALS
from model.video import Frames, read_frames
from model.weights import build_from, save_checkpoint, spec_and_state

from .abstain import Rows
from .quality import DEFAULT_DATA, DEFAULT_SYNTH_DIR, DEFAULT_VIDEO_DIR, MESO_VAL_DIR, collect, load_input
from .variants import VARIANTS

log = logging.getLogger(__name__)

__all__ = ["fit_platt", "judged_score", "main"]


def signal_kind(family: str, method: str) -> str | None:
    """The head whose kind of trace a fake carries: "blend" (swapped or blended faces, made blends),
    "generation" (talking heads, animated portraits, made lip-syncs), None for a real."""
    if family == "real":
        return None
    if family in ("talking-head", "portrait-animation") or method == "lipsync":
        return "generation"
    return "blend"


def judged_score(row: dict, cuts: Cuts, head: str | None = None) -> tuple[float | None, str | None]:
    """(the clip's raw score over the faces that can be judged, None; or None, the reason it cannot be).
    `head`: that head's raw score (a two-head model's rows carry each head's) instead of the model's."""
    if not row["faces"]:
        return None, "no_face"
    fields = {f.name for f in dataclasses.fields(TrackEvidence)}
    best, reason = None, None
    for f in row["faces"]:
        ev = TrackEvidence(**{k: f.get(k) for k in fields})
        code = judge(ev, cuts)
        if code is None:
            p = f["signals"][head] if head else f["p"]
            best = p if best is None else max(best, p)
        elif reason is None:
            reason = code
    return (best, None) if best is not None else (None, reason)


def cal_rows(raw, items, copies: int, seed: int, rows_file: Path) -> list[dict]:
    """Every cal file as it is, and every real one as `copies` copies (variants.VARIANTS in turn)."""
    rows = Rows(raw, rows_file)
    out = []
    kinds = list(VARIANTS)
    try:
        for n, it in enumerate(items):
            out.append(rows.emit(f"{it.path}|none", it, "none", None, load_input(it.path)))
            if it.label != "REAL" or copies <= 0:
                continue
            keys = [(f"{it.path}|{kinds[k % len(kinds)]}|{k}", kinds[k % len(kinds)], k) for k in range(copies)]
            if all(key in rows.done for key, _, _ in keys):
                out += [rows.done[key] for key, _, _ in keys]
                continue
            src = load_input(it.path)
            frames = src if isinstance(src, Frames) else read_frames(src, 20)
            for key, kind, k in keys:
                rng = np.random.default_rng([seed, n, k])
                out.append(rows.emit(key, it, kind, k, VARIANTS[kind](frames, rng)))
            if (n + 1) % 20 == 0:
                log.info("cal: %d/%d files", n + 1, len(items))
    finally:
        rows.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.calibrate", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="the trained checkpoint (its own calibration, if any, is ignored)")
    ap.add_argument("--out", type=Path, required=True, help="the calibrated checkpoint to write (fp16)")
    ap.add_argument("--abstain", type=Path, help="model.training.abstain's abstain.json (else: the size rule only)")
    ap.add_argument("--fpr", type=float, default=0.05, help="largest share of real people called FAKE (conformal)")
    ap.add_argument("--real-share", type=float, default=0.8, help="share of real people called REAL")
    ap.add_argument("--copies", type=int, default=2, help="feed/webcam copies of each real cal clip")
    ap.add_argument("--name", help="model name stored in the checkpoint (default: the trained one's)")
    ap.add_argument("--video-dir", type=Path, default=DEFAULT_VIDEO_DIR)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--synth-dir", type=Path, default=DEFAULT_SYNTH_DIR)
    ap.add_argument("--meso-dir", type=Path, default=MESO_VAL_DIR)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=Path, help="the checks' file (default: beside --out; abstain's rows file can be shared)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    src = Path(args.weights)
    spec, state, extra = spec_and_state(src)
    extra = {k: v for k, v in extra.items() if k != "calibration"}
    if args.name:
        spec = dataclasses.replace(spec, name=args.name)
    loaded = load_model(src)
    raw = dataclasses.replace(loaded, extra=extra)  # the network's raw output, the size rule only
    items = collect("cal", args.video_dir, args.data, args.synth_dir, meso_dir=args.meso_dir)
    if not items:
        print("error: no cal-split files found", file=sys.stderr)
        return 2
    abstain = json.loads(args.abstain.read_text()) if args.abstain else {}
    cuts = Cuts.from_dict(abstain.get("cuts"))
    rows_file = args.rows or args.out.with_suffix(".rows.jsonl")
    rows = cal_rows(raw, items, args.copies, args.seed, rows_file)

    judged = [(r, *judged_score(r, cuts)) for r in rows]
    scored = [(r, p) for r, p, _ in judged if p is not None]
    heads: dict[str, dict] = {}
    if spec.gen_branch:  # one map per head, each on the reals and the fakes of its kind
        for head in SIGNALS:
            mine = [(r, judged_score(r, cuts, head)[0]) for r, _ in scored
                    if r["label"] == "REAL" or signal_kind(_family(r), r["method"]) == head]
            y = [1 if r["label"] == "FAKE" else 0 for r, _ in mine]
            fit = fit_platt([p for _, p in mine], y, weights=_class_weights(y, [r["group"] for r, _ in mine]))
            heads[head] = {"platt": [round(fit[0], 6), round(fit[1], 6)], "n_fake": sum(y)}

    def head_scores(r: dict) -> dict[str, float] | None:
        """A two-head model's row: each head's calibrated score over the faces that can be judged."""
        raw = {h: judged_score(r, cuts, h)[0] for h in heads}
        return None if None in raw.values() else platt_heads(raw, heads)

    def calibrated(r: dict) -> float | None:
        """The row's calibrated score: the larger calibrated head of a two-head model."""
        if not heads:
            p = judged_score(r, cuts)[0]
            return None if p is None else platt(p, a, b)
        scores = head_scores(r)
        return None if scores is None else max(scores.values())

    labels = [1 if r["label"] == "FAKE" else 0 for r, _ in scored]
    groups = [r["group"] for r, _ in scored]
    a, b = fit_platt([p for _, p in scored], labels, weights=_class_weights(labels, groups)) if not heads else (1.0, 0.0)
    reals = [(r, calibrated(r)) for r, _ in scored if r["label"] == "REAL"]
    r_scores, r_groups = [p for _, p in reals], [r["group"] for r, _ in reals]
    fake_cut = conformal_fake_cut(r_scores, r_groups, args.fpr)
    lower = real_cut(r_scores, r_groups, args.real_share)
    threshold, band = threshold_and_band(lower, fake_cut)

    def verdict(row: dict, p: float | None) -> str:
        if p is None:
            return "UNJUDGED"
        q = calibrated(row)
        return "UNCERTAIN" if abs(q - threshold) < band - 1e-9 else "FAKE" if q >= threshold else "REAL"

    summary: dict = {"n_real_people": len(set(r["group"] for r in rows if r["label"] == "REAL")),
                     "n_real_rows": sum(r["label"] == "REAL" for r in rows), "n_fake_rows": sum(r["label"] == "FAKE" for r in rows)}
    for name, pick in (("real, as they are", lambda r: r["label"] == "REAL" and r["defect"] == "none"),
                       ("real, feed and webcam copies", lambda r: r["label"] == "REAL" and r["defect"] != "none")):
        sel = [(r, p) for r, p, _ in judged if pick(r)]
        vs, gs = [verdict(r, p) for r, p in sel], [r["group"] for r, _ in sel]
        summary[name] = {v: round(weighted_share([x == v for x in vs], gs), 4) for v in ("REAL", "UNCERTAIN", "FAKE", "UNJUDGED")}
    for method in sorted({r["method"] for r in rows if r["label"] == "FAKE"}):
        vs = [verdict(r, p) for r, p, _ in judged if r["method"] == method and r["label"] == "FAKE"]
        summary[f"fake/{method}"] = {"n": len(vs), "called_fake": round(vs.count("FAKE") / len(vs), 4),
                                     "unjudged": round(vs.count("UNJUDGED") / len(vs), 4)}
    if heads:  # which head decides, per kind of fake, at the cuts
        for method in sorted({r["method"] for r in rows if r["label"] == "FAKE"}):
            spoke = [max(s, key=s.get) for r, p, _ in judged if r["method"] == method and r["label"] == "FAKE"
                     and p is not None and (s := head_scores(r)) is not None]
            summary[f"fake/{method}"]["decided_by"] = {h: round(spoke.count(h) / max(1, len(spoke)), 4) for h in heads}
    calibration = {**({"heads": heads, "combine": "max of the heads' calibrated scores"} if heads else {}),
                   "platt": [round(a, 6), round(b, 6)], "threshold": round(threshold, 6), "uncertain_band": round(band, 6),
                   "fake_cut": round(fake_cut, 6), "real_cut": round(min(lower, fake_cut), 6),
                   "fpr_target": args.fpr, "real_share": args.real_share, "weighting": "per person (group)",
                   "fake_cut_rule": "conformal over real people, finite-sample corrected",
                   "copies": args.copies, "split": "cal", "frames": 20, "date": dt.date.today().isoformat(),
                   "abstain": cuts.to_dict(), "on_cal": summary}
    net = build_from(spec, state, src)
    save_checkpoint(args.out, net, extra={**extra, "calibration": calibration}, half=True)
    print(json.dumps(calibration, indent=1))
    return 0


def _family(row: dict) -> str:
    """A row's family (rows written before the field existed: real, or a fake told by its method)."""
    if "family" in row:
        return row["family"]
    return "real" if row["label"] == "REAL" else "synthetic" if row["method"] in ("sbi", "swap-lowres", "lipsync") else "face-swap"


def _class_weights(labels: list[int], groups: list[str]) -> list[float]:
    """Within each class, one unit per group (person or generator sample), shared by its rows."""
    counts: dict[tuple[int, str], int] = {}
    for y, g in zip(labels, groups, strict=True):
        counts[(y, g)] = counts.get((y, g), 0) + 1
    return [1.0 / counts[(y, g)] for y, g in zip(labels, groups, strict=True)]


if __name__ == "__main__":
    sys.exit(main())
