"""Where does a model stop being better than chance? Measure it along each quality measure of a face
(model/evidence.py), and choose the cuts below which a check says "can't judge" instead of guessing.

    python -m model.training.abstain --weights W --out runs/abstain [--split cal] [--per-class 40]

On the `cal` split (never `test`), full pipeline, the model's raw network output (its calibration is
ignored; the AUC does not depend on it):
1. every file as it is (the natural spread of face sizes, light, sharpness, turn, compression);
2. a balanced subset (`--per-class` reals and fakes, seeded) again with one defect at a time, at graded
   strengths (variants.degrade; compression as real re-encoded streams; few frames by blanking frames),
   which reaches the poor end that the natural files rarely do.
Then, per measure, the files as they are and the copies with that measure's own defect (OWN_DEFECT:
never another defect's copies, whose failure is not this measure's) are cut into bins (from the poor end, a tenth of the checks each, grown until they hold 10 reals and
10 fakes); in each bin the ROC AUC of
the video's score (fakes against reals) and the share of real clips above the model's FAKE cut. A bin
fails when the model is no better than chance there (AUC below `--floor`, 0.6) or cries wolf there (at
least 25 % of its real clips above the FAKE cut: five times what the cut is fitted for), each judged only
with at least 10 clips of a class. A measure's cut is the edge of the run of failing bins that starts at
its poor end; none when the poorest bin does not fail. The face turn (yaw) cannot be made by a defect
here: without a failing bin its cut is where the `cal` data end (the model is not validated beyond the
most turned face it was measured on), said as such.

Writes OUT/rows.jsonl (every check, resumable), OUT/abstain.json (bins and cuts, which
`model.training.calibrate --abstain` stores in a checkpoint) and OUT/abstain.md (the table for
docs/model.md).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from model import check, load_model
from model.evidence import Cuts
from model.video import Frames, read_frames

from .evaluate import roc_auc
from .quality import DEFAULT_DATA, DEFAULT_SYNTH_DIR, DEFAULT_VIDEO_DIR, MESO_VAL_DIR, collect, load_input
from .variants import degrade, reencode_file

log = logging.getLogger(__name__)

# defect -> levels (variants.degrade); "frames": the face kept in only this many of 20 frames;
# "compress": CRF of a real re-encoded stream
SWEEPS: dict[str, list[float]] = {
    "small": [56, 72],
    "dark": [0.15, 0.35],
    "blur": [2.0, 4.0],
    "cover": [0.6],
    "frames": [2],
    "compress": [42, 48],
}
# measure (evidence field) -> which end is poor: "low" (small, dark, blurred, covered, compressed, brief)
MEASURES = {"face_px": "low", "brightness": "low", "sharpness": "low", "detector_score": "low",
            "bits_per_pixel": "low", "face_frames": "low", "yaw": "high"}
CUT_FIELD = {"face_px": "min_face_px", "brightness": "min_brightness", "sharpness": "min_sharpness",
             "detector_score": "min_detector_score", "bits_per_pixel": "min_bits_per_pixel",
             "face_frames": "min_face_frames", "yaw": "max_yaw"}
# measure -> the defect made along it: a measure's bins hold the files as they are and that defect's
# copies only. A dark or blurred copy of a heavily compressed clip keeps the clip's low bits per pixel;
# pooled into the compression bins, its failure (caused by the dark or the blur) would be charged to
# compression and cut clips that are only compressed. Yaw has no made defect: the files as they are.
OWN_DEFECT = {"face_px": "small", "brightness": "dark", "sharpness": "blur", "detector_score": "cover",
              "bits_per_pixel": "compress", "face_frames": "frames", "yaw": None}
FLOOR = 0.6  # AUC below this: no better than chance within a bin's sampling noise
ALARM = 0.25  # real clips above the FAKE cut in a bin: five times the 5 % the cut is fitted for
MIN_PER_CLASS = 10  # clips of a class a bin needs before its AUC or its FAKE share counts
BINS = 10


def blank_frames(frames: Frames, keep: int) -> Frames:
    """The clip with the face kept in only `keep` frames spread over it: the others are a flat grey
    picture (the face left the shot)."""
    n = len(frames.images)
    keep_idx = set(np.linspace(0, n - 1, keep).round().astype(int).tolist()) if keep > 0 else set()
    grey = np.full_like(frames.images[0], 110)
    return replace(frames, images=[im if i in keep_idx else grey for i, im in enumerate(frames.images)],
                   extra=dict(frames.extra))


def faces_of(v) -> list[dict]:
    """[{"p": raw P(fake), "signals": each head's (a two-head model), **evidence}] for the faces a check scored."""
    return [{"p": f.p_fake, **({"signals": f.signals} if f.signals else {}), **(f.evidence or {})} for f in v.faces]


class Rows:
    """Checks of (file, copy) with a model's raw output, one JSON line each, kept in a file so a run
    resumes; shared by this measurement and the calibration (`model.training.calibrate`)."""

    def __init__(self, loaded, path: Path):
        self.loaded, self.path, self.done = loaded, path, {}
        if path.exists():
            for line in path.read_text().splitlines():
                r = json.loads(line)
                self.done[r["key"]] = r
        self._out = open(path, "a")

    def close(self) -> None:
        self._out.close()

    def emit(self, key: str, it, defect: str, level: float | None, src) -> dict:
        """The row of `key`, checking `src` (a path or Frames; None: cannot be made) when it is new."""
        if key in self.done:
            return self.done[key]
        v = check(src, model=self.loaded) if src is not None else None
        row = {"key": key, "path": it.path, "label": it.label, "group": it.group, "method": it.method, "family": it.family,
               "defect": defect, "level": level, "verdict": v.verdict if v else "SKIPPED", "faces": faces_of(v) if v else []}
        self.done[key] = row
        self._out.write(json.dumps(row) + "\n")
        self._out.flush()
        return row


def run_rows(loaded, items, per_class: int, seed: int, rows_file: Path) -> list[dict]:
    rows = Rows(loaded, rows_file)
    done, emit = rows.done, rows.emit
    rng = np.random.default_rng(seed)
    reals = [i for i in items if i.label == "REAL"]
    fakes = [i for i in items if i.label == "FAKE"]
    subset = [reals[k] for k in sorted(rng.permutation(len(reals))[:per_class])] + \
             [fakes[k] for k in sorted(rng.permutation(len(fakes))[:per_class])]

    try:
        for n, it in enumerate(items):
            emit(f"{it.path}|none", it, "none", None, load_input(it.path))
            if (n + 1) % 25 == 0:
                log.info("as they are: %d/%d", n + 1, len(items))
        with tempfile.TemporaryDirectory(prefix="abstain-") as tmp:
            for n, it in enumerate(subset):
                todo = [(d, lv) for d, lvs in SWEEPS.items() for lv in lvs if f"{it.path}|{d}|{lv}" not in done]
                if not todo:
                    continue
                src = load_input(it.path)
                frames = src if isinstance(src, Frames) else read_frames(src, 20)
                item_rng = np.random.default_rng([seed, n])
                for defect, level in todo:
                    key = f"{it.path}|{defect}|{level}"
                    if defect == "compress":
                        if isinstance(src, Frames):
                            emit(key, it, defect, level, None)  # crops, not a stream
                            continue
                        dst = str(Path(tmp) / "clip.mp4")
                        try:
                            reencode_file(src, dst, int(level))
                        except Exception as e:  # a file PyAV cannot re-encode: skipped, said
                            log.warning("cannot re-encode %s: %s", Path(src).name, e)
                            emit(key, it, defect, level, None)
                            continue
                        emit(key, it, defect, level, dst)
                    elif defect == "frames":
                        emit(key, it, defect, level, blank_frames(frames, int(level)))
                    else:
                        emit(key, it, defect, level, degrade(frames, defect, level, item_rng))
                log.info("defects: %d/%d", n + 1, len(subset))
    finally:
        rows.close()
    # the rows file may be shared with the calibration, which adds feed/webcam copies: not measured here
    return [r for r in done.values() if r["defect"] == "none" or r["defect"] in SWEEPS]


def video_score(row: dict) -> tuple[float | None, dict | None]:
    """The video's raw score (its most suspicious face) and that face's evidence."""
    if not row["faces"]:
        return None, None
    f = max(row["faces"], key=lambda f: f["p"])
    return f["p"], f


def provisional_fake_cut(rows: list[dict], fpr: float = 0.05) -> float:
    """For a network not yet calibrated: the FAKE cut its calibration will put near, the conformal bound
    over the real people's raw scores of the files as they are (model.calibration), so that "crying
    wolf" in a bin is measured against the cut the model will ship with, not against an arbitrary 0.6."""
    from model.calibration import conformal_fake_cut

    reals = [(video_score(r)[0], r["group"]) for r in rows if r["label"] == "REAL" and r["defect"] == "none"]
    reals = [(p, g) for p, g in reals if p is not None]
    return conformal_fake_cut([p for p, _ in reals], [g for _, g in reals], fpr)


def bins_for(rows: list[dict], measure: str, fake_cut: float, n_bins: int = BINS) -> list[dict]:
    """The measure's bins, in increasing order of the measure: walking from its poor end, a bin closes
    once it holds a tenth of the checks **and** at least MIN_PER_CLASS reals and fakes (never between
    two equal values), and what is left at the good end joins the last bin. Every bin can then be
    judged: with deciles, a run of bins holding a handful of reals said nothing, and one chance
    failure beyond them (an AUC of 0.49 on 11 reals in the middle of the detector's confidence) carried
    the cut across all of them."""
    pts = []
    for r in rows:
        if r["defect"] not in ("none", OWN_DEFECT.get(measure)):
            continue
        p, f = video_score(r)
        if p is None or f.get(measure) is None:
            continue
        pts.append((float(f[measure]), 1 if r["label"] == "FAKE" else 0, p))
    if len(pts) < 2 * n_bins:
        return []
    high_poor = MEASURES[measure] == "high"
    pts.sort(key=lambda t: t[0], reverse=high_poor)
    target = len(pts) / n_bins
    groups: list[list[tuple[float, int, float]]] = []
    cur: list[tuple[float, int, float]] = []
    n_fake = 0
    for k, pt in enumerate(pts):
        cur.append(pt)
        n_fake += pt[1]
        full = len(cur) >= target and n_fake >= MIN_PER_CLASS and len(cur) - n_fake >= MIN_PER_CLASS
        if full and (k + 1 == len(pts) or pts[k + 1][0] != pt[0]):
            groups.append(cur)
            cur, n_fake = [], 0
    if cur:
        if groups:
            groups[-1].extend(cur)
        else:
            groups.append(cur)
    if high_poor:
        groups = [g[::-1] for g in groups[::-1]]
    out = []
    for k, g in enumerate(groups):
        lo = g[0][0]
        hi = groups[k + 1][0][0] if k + 1 < len(groups) else g[-1][0]
        ys, ps = [y for _, y, _ in g], [p for _, _, p in g]
        reals = [p for _, y, p in g if y == 0]
        out.append({"lo": float(lo), "hi": float(hi), "n": len(g), "n_fake": int(sum(ys)), "n_real": len(reals),
                    "auc": roc_auc(ys, ps), "real_fake_rate": float(np.mean([p >= fake_cut for p in reals])) if reals else float("nan")})
    return out


def failing(b: dict, floor: float = FLOOR, alarm: float = ALARM) -> bool | None:
    """Whether the model fails in a bin: no better than chance (AUC below `floor`, counted with at least
    MIN_PER_CLASS of each class), or crying wolf (at least `alarm` of its real clips, counted with at
    least MIN_PER_CLASS, above the model's FAKE cut). None: too few clips to say."""
    auc_ok = b["n_fake"] >= MIN_PER_CLASS and b["n_real"] >= MIN_PER_CLASS and not np.isnan(b["auc"])
    alarm_ok = b["n_real"] >= MIN_PER_CLASS and not np.isnan(b["real_fake_rate"])
    if not auc_ok and not alarm_ok:
        return None
    return bool((auc_ok and b["auc"] < floor) or (alarm_ok and b["real_fake_rate"] >= alarm))


def choose_cut(bins: list[dict], poor: str, floor: float = FLOOR, alarm: float = ALARM) -> float | None:
    """The edge past which the model cannot be trusted: from the poor end, the run of bins where it
    fails (`failing`; a bin too small to say neither ends nor extends the run)."""
    order = bins if poor == "low" else bins[::-1]
    cut = None
    for b in order:
        f = failing(b, floor, alarm)
        if f is None:
            continue
        if f:
            cut = b["hi"] if poor == "low" else b["lo"]
        else:
            break
    return cut


def analyse(rows: list[dict], fake_cut: float, floor: float = FLOOR) -> dict:
    result: dict = {"floor": floor, "measures": {}, "cuts": {}}
    for measure, poor in MEASURES.items():
        bins = bins_for(rows, measure, fake_cut)
        cut = choose_cut(bins, poor, floor) if bins else None
        how = "measured: no better than chance, or crying wolf" if cut is not None else "no failing bin at the poor end"
        if measure == "yaw":
            vals = [video_score(r)[1].get("yaw") for r in rows if r["defect"] == "none" and video_score(r)[1]
                    and video_score(r)[1].get("yaw") is not None]
            if cut is None and vals:
                cut, how = float(np.max(vals)), "where the cal data end (no more turned faces to measure beyond)"
        result["measures"][measure] = {"poor": poor, "bins": bins, "cut": cut, "how": how}
        if cut is not None:
            result["cuts"][CUT_FIELD[measure]] = round(float(cut), 4)
    # the pipeline never scores a face under faces.MIN_FACE_PX: the size cut is at least that
    result["cuts"]["min_face_px"] = max(result["cuts"].get("min_face_px", 0.0), Cuts().min_face_px)
    return result


def markdown(result: dict, meta: dict) -> str:
    lines = [f"Abstention measurement: `{meta['model']}`, split `{meta['split']}`, {meta['date']}; `{meta['command']}`. "
             f"{meta['n_rows']} checks ({meta['n_files']} files as they are, {meta['n_subset']} of them again with each defect). "
             f"AUC of the video's score, fakes against reals, per bin of the measure (the files as they are and the copies with the measure's own defect; from the poor end, a tenth of the checks a bin, grown to hold ≥ {MIN_PER_CLASS} reals and fakes); "
             f"real FAKE = the share of real clips at or above the model's FAKE cut ({meta['fake_cut']:.3f}"
             + ("; provisional: the network is not calibrated yet, so the cut is the conformal 5 % bound over the real "
                "people's raw scores of the files as they are" if meta.get("fake_cut_provisional") else "") + "). "
             f"Cut: from the poor end, the run of bins where the AUC is below {result['floor']} or at least "
             f"{ALARM:.0%} of the real clips are above the FAKE cut (each counted with ≥ {MIN_PER_CLASS} clips of a class).", ""]
    for measure, m in result["measures"].items():
        if not m["bins"]:
            continue
        cut = "none" if m["cut"] is None else f"{m['cut']:.4g} ({m['how']})"
        lines += [f"**{measure}** (poor end: {m['poor']}) → cut {cut}", "",
                  "| bin | n (fake/real) | AUC | real FAKE |", "|---|---|---|---|"]
        for b in m["bins"]:
            lines.append(f"| {b['lo']:.4g}–{b['hi']:.4g} | {b['n']} ({b['n_fake']}/{b['n_real']}) | "
                         f"{b['auc']:.2f} | {b['real_fake_rate']:.0%} |")
        lines.append("")
    lines.append("Cuts stored: `" + json.dumps(result["cuts"]) + "`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.abstain", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="the model (default: the default model)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split", default="cal", choices=["train", "cal"], help="never test")
    ap.add_argument("--per-class", type=int, default=15, help="reals and fakes given each defect")
    ap.add_argument("--floor", type=float, default=FLOOR)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--video-dir", type=Path, default=DEFAULT_VIDEO_DIR)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--synth-dir", type=Path, default=DEFAULT_SYNTH_DIR)
    ap.add_argument("--meso-dir", type=Path, default=MESO_VAL_DIR)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loaded = load_model(args.weights)
    fake_cut = loaded.threshold + loaded.uncertain_band
    raw_cut = loaded.extra.get("calibration", {}).get("platt")
    if raw_cut:  # the FAKE cut in raw-score terms (the rows hold the network's raw output)
        a, b = raw_cut
        z = np.log(fake_cut / (1 - fake_cut))
        fake_cut = float(1 / (1 + np.exp(-(z - b) / a)))
    raw = replace(loaded, extra={k: v for k, v in loaded.extra.items() if k != "calibration"})
    items = collect(args.split, args.video_dir, args.data, args.synth_dir, meso_dir=args.meso_dir)
    if not items:
        print(f"error: no {args.split} files found", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run_rows(raw, items, args.per_class, args.seed, args.out / f"rows-{loaded.sha256[:16]}.jsonl")
    if not raw_cut:  # a new network, not calibrated yet: its default cut means nothing on its raw scores
        fake_cut = provisional_fake_cut(rows)
        log.info("no calibration: the FAKE cut is the raw score above which 5 %% of the real people lie (%.4f)", fake_cut)
    result = analyse(rows, fake_cut, args.floor)
    meta = {"model": loaded.name, "sha256": loaded.sha256, "split": args.split, "date": dt.date.today().isoformat(),
            "command": "python -m model.training.abstain " + " ".join(argv if argv is not None else sys.argv[1:]),
            "n_rows": len(rows), "n_files": len(items), "n_subset": min(args.per_class, sum(i.label == "REAL" for i in items))
            + min(args.per_class, sum(i.label == "FAKE" for i in items)), "fake_cut": fake_cut,
            "fake_cut_provisional": not raw_cut}
    (args.out / "abstain.json").write_text(json.dumps({**meta, **result}, indent=1))
    md = markdown(result, meta)
    (args.out / "abstain.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
