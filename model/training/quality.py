"""The quality benchmark: the full pipeline (`model.check`, as users get it) over labelled videos, for
one or more models side by side.

    python -m model.training.quality --weights dfc-mobilenetv2-sbi --weights NEW.pt --out runs/quality
        [--video-dir ~/.cache/deepfake-check/video] [--data ../shared/data] [--synth-dir DIR]
        [--split test] [--frames 20]

Inputs (each file's split from splits.csv; only the asked split is run):
- the labelled videos extracted by ../shared/data/video/extract.py (`labels.csv` beside them);
- ../shared/data/real (real clips, test only) and ../shared/data/fake-dev (Audio2Head, by person);
- fakes made from test-split real videos by `python -m model.training.synth` (its labels.csv).

Per fake kind (family and method): n, ROC AUC against its reals, recall at the model's own verdict
(share called FAKE), recall at a 5 % false-positive rate (the threshold that calls 5 % of those reals
FAKE), NO_FACE/ERROR counts. Per real kind: the share called FAKE and UNCERTAIN. Seconds per clip.
Writes OUT/quality.json (every file's result) and OUT/quality.md (the tables); per-file results are
kept in OUT/results-<model sha>.jsonl so an interrupted run resumes.

Reference reals of a fake kind: Celeb-DF-v2 and DFDC fakes against their own dataset's reals (the
same sources and cameras); every other kind (talking heads, made fakes) against all real videos of
the split, ../shared/data/real included.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from model import check, load_model
from model.calibration import wilson
from model.weights import LoadedModel

from .evaluate import roc_auc
from .splits import SPLITS_FILE, Splits, fake_dev_group

log = logging.getLogger(__name__)

DEFAULT_VIDEO_DIR = Path.home() / ".cache" / "deepfake-check" / "video"
DEFAULT_SYNTH_DIR = Path.home() / ".cache" / "deepfake-check" / "synth"
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
OWN_REALS = {"Celeb-DF-v2 synthesis": "Celeb-DF-v2", "DFDC": "DFDC",  # fake method -> its dataset's real method
             "MesoNet Deepfake (frames)": "MesoNet Deepfake (frames)"}
UNSEEN = ("EMO", "DreamTalk")  # talking-head generators never trained or tuned on (splits.csv)
FPR_TARGET = 0.05


@dataclass(frozen=True)
class Item:
    path: str
    label: str  # REAL / FAKE
    family: str  # face-swap / talking-head / real / synthetic
    method: str
    group: str
    source: str  # its source in splits.csv


def collect(split: str, video_dir: Path | None, data_dir: Path | None, synth_dir: Path | None,
            splits: Splits | None = None, meso_dir: Path | None = None) -> list[Item]:
    """The labelled files of one split, from every input that is present."""
    splits = splits or Splits()
    items: list[Item] = []
    if video_dir is not None and (video_dir / "labels.csv").exists():
        for r in csv.DictReader(open(video_dir / "labels.csv", newline="")):
            if splits.of("video", r["group"]) == split:
                family = "real" if r["label"] == "REAL" else r["family"]
                items.append(Item(str(video_dir / r["file"]), r["label"], family, r["method"], r["group"], "video"))
    if data_dir is not None:
        for f in sorted((data_dir / "real").glob("*.mp4")) if (data_dir / "real").is_dir() else []:
            if splits.of("real-shared", f.name) == split:
                items.append(Item(str(f), "REAL", "real", "shared real clips", f.name, "real-shared"))
        for f in sorted((data_dir / "fake-dev").glob("*.mp4")) if (data_dir / "fake-dev").is_dir() else []:
            group = fake_dev_group(f.name)
            if splits.of("fake-dev", group) == split:
                items.append(Item(str(f), "FAKE", "talking-head", "Audio2Head", group, "fake-dev"))
    if meso_dir is not None and meso_dir.is_dir() and "meso-val" in splits.rules:
        items += meso_items(meso_dir, split, splits)
    if synth_dir is not None and (synth_dir / "labels.csv").exists():
        for r in csv.DictReader(open(synth_dir / "labels.csv", newline="")):
            if splits.of("synthetic", r["group"]) == split:
                items.append(Item(str(synth_dir / r["file"]), "FAKE", "synthetic", r["method"], r["group"], "synthetic"))
    return items


MESO_VAL_DIR = Path.home() / ".cache" / "deepfake-check" / "data" / "meso-val"  # ../shared/data/train/meso-val.tar
MESO_PREFIX = "meso-val:"
MESO_FRAMES = 20


def meso_items(meso_dir: Path, split: str, splits: Splits) -> list[Item]:
    """The MesoNet validation part's videos of a split (face crops of internet videos, ~60 per video,
    `{df,real}/<video>_<frame>.jpg`), each a clip of its frames: many different people and the
    compression of real uploads. Their path is `meso-val:<dir>/<label dir>/<video>` (see load_input)."""
    videos: dict[tuple[str, str], int] = {}
    for sub in ("real", "df"):
        for f in (meso_dir / sub).glob("*.jpg") if (meso_dir / sub).is_dir() else []:
            video = f.stem.rsplit("_", 1)[0]
            videos[(sub, video)] = videos.get((sub, video), 0) + 1
    out = []
    for (sub, video), _ in sorted(videos.items()):
        if splits.of("meso-val", video) == split:  # prepare.py's group for these crops: the video's name
            label = "REAL" if sub == "real" else "FAKE"
            out.append(Item(f"{MESO_PREFIX}{meso_dir}/{sub}/{video}", label, "real" if label == "REAL" else "face-swap",
                            "MesoNet Deepfake (frames)", f"meso-{sub}-{video}", "meso-val"))
    return out


def load_input(path: str):
    """What `check` takes for an item: its file, or for a MesoNet video the Frames of its crops."""
    if not path.startswith(MESO_PREFIX):
        return path
    import cv2

    from model.video import frames_from_images

    folder, video = path[len(MESO_PREFIX):].rsplit("/", 1)
    files = sorted(Path(folder).glob(f"{video}_*.jpg"), key=lambda f: int(f.stem.rsplit("_", 1)[1]))
    pick = [files[int(round(i))] for i in np.linspace(0, len(files) - 1, min(MESO_FRAMES, len(files)))]
    imgs = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in pick]
    h, w = imgs[0].shape[:2]
    imgs = [im if im.shape[:2] == (h, w) else cv2.resize(im, (w, h)) for im in imgs]
    return frames_from_images(imgs, [i / 25.0 for i in range(len(imgs))])


@dataclass
class Result:
    path: str
    verdict: str
    p_fake: float | None
    seconds: float
    error: str | None = None
    reason: str | None = None  # why the check could not judge (an UNCERTAIN without a score)
    signals: dict[str, float] | None = None  # a two-head model: each head's calibrated score


def run_model(loaded: LoadedModel, items: list[Item], frames: int, cache_file: Path | None = None) -> dict[str, Result]:
    """check() every item with one model; results already in cache_file (same model, same frames) are reused."""
    done: dict[str, Result] = {}
    if cache_file is not None and cache_file.exists():
        for line in cache_file.read_text().splitlines():
            r = json.loads(line)
            done[r["path"]] = Result(**r)
    out = open(cache_file, "a") if cache_file is not None else None
    try:
        for n, it in enumerate(items):
            if it.path in done:
                continue
            t0 = time.perf_counter()
            v = check(load_input(it.path), frames=frames, model=loaded)
            r = Result(it.path, v.verdict, v.p_fake, round(time.perf_counter() - t0, 3), v.error, v.reason, v.signals)
            done[it.path] = r
            if out is not None:
                out.write(json.dumps(asdict(r)) + "\n")
                out.flush()
            if (n + 1) % 10 == 0:
                log.info("%s: %d/%d", loaded.name, n + 1, len(items))
    finally:
        if out is not None:
            out.close()
    return {it.path: done[it.path] for it in items}


def recall_at_fpr(real_scores: list[float], fake_scores: list[float], fpr: float = FPR_TARGET) -> float:
    """Share of fakes at or above the lowest threshold that calls at most `fpr` of the reals FAKE."""
    if not real_scores or not fake_scores:
        return float("nan")
    reals = np.sort(np.asarray(real_scores))[::-1]
    allowed = int(np.floor(fpr * len(reals)))  # reals that may be at or above the threshold
    # the threshold sits just above the (allowed+1)-th highest real score
    thr = np.nextafter(reals[allowed], 1.0) if allowed < len(reals) else -np.inf
    return float(np.mean(np.asarray(fake_scores) >= thr))


def fake_row(fakes: list[Item], reals: list[Item], res: dict[str, Result]) -> dict:
    scored_f = [res[i.path] for i in fakes if res[i.path].p_fake is not None]
    scored_r = [res[i.path] for i in reals if res[i.path].p_fake is not None]
    fs, rs = [r.p_fake for r in scored_f], [r.p_fake for r in scored_r]
    all_f = [res[i.path] for i in fakes]
    heads = sorted(set().union(*[r.signals or {} for r in scored_f + scored_r])) if scored_f and scored_r else []
    by_head = {h: roc_auc([0] * len(rs) + [1] * len(fs), [r.signals[h] for r in scored_r] + [r.signals[h] for r in scored_f])
               for h in heads if all(r.signals and h in r.signals for r in scored_f + scored_r)}
    return {
        **({"auc_by_head": by_head} if by_head else {}),
        "n": len(fakes), "n_reals": len(reals),
        "auc": roc_auc([0] * len(rs) + [1] * len(fs), rs + fs) if fs and rs else float("nan"),
        "recall": float(np.mean([r.verdict == "FAKE" for r in all_f])) if all_f else float("nan"),
        "uncertain": float(np.mean([r.verdict == "UNCERTAIN" for r in all_f])) if all_f else float("nan"),
        "abstained": float(np.mean([r.reason is not None for r in all_f])) if all_f else float("nan"),
        "recall_at_5fpr": recall_at_fpr(rs, fs),
        "no_face": sum(r.verdict == "NO_FACE" for r in all_f), "error": sum(r.verdict == "ERROR" for r in all_f),
        "seconds": float(np.mean([r.seconds for r in all_f])) if all_f else float("nan"),
    }


def real_row(reals: list[Item], res: dict[str, Result]) -> dict:
    rs = [res[i.path] for i in reals]
    k = sum(r.verdict == "FAKE" for r in rs)
    reasons: dict[str, int] = {}
    for r in rs:
        if r.reason:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
    return {
        "n": len(reals),
        "called_fake": float(np.mean([r.verdict == "FAKE" for r in rs])) if rs else float("nan"),
        "called_fake_ci95": list(wilson(k, len(rs))),
        "abstained": float(np.mean([r.reason is not None for r in rs])) if rs else float("nan"),
        "reasons": reasons,
        "called_uncertain": float(np.mean([r.verdict == "UNCERTAIN" for r in rs])) if rs else float("nan"),
        "n_fake": sum(r.verdict == "FAKE" for r in rs),
        "no_face": sum(r.verdict == "NO_FACE" for r in rs), "error": sum(r.verdict == "ERROR" for r in rs),
        "seconds": float(np.mean([r.seconds for r in rs])) if rs else float("nan"),
    }


def tables(items: list[Item], res: dict[str, Result]) -> dict:
    """{"fakes": {row name: metrics}, "reals": {row name: metrics}} for one model's results."""
    reals = [i for i in items if i.label == "REAL"]
    fakes = [i for i in items if i.label == "FAKE"]
    by_method: dict[str, list[Item]] = {}
    for i in fakes:
        by_method.setdefault(i.method, []).append(i)

    def refs(method: str) -> list[Item]:
        own = OWN_REALS.get(method)
        return [r for r in reals if r.method == own] if own else reals

    rows: dict[str, dict] = {}
    swaps = [i for i in fakes if i.family == "face-swap"]
    if swaps:
        swap_reals = [r for r in reals if r.method in OWN_REALS.values()]
        rows["face-swap (all)"] = fake_row(swaps, swap_reals, res)
    for family in ("talking-head", "synthetic"):
        group = [i for i in fakes if i.family == family]
        if group:
            rows[f"{family} (all)"] = fake_row(group, reals, res)
    unseen = [i for i in fakes if i.method in UNSEEN]
    if unseen:
        rows["talking-head, unseen generators (" + " + ".join(UNSEEN) + ")"] = fake_row(unseen, reals, res)
    for method, group in sorted(by_method.items()):
        rows[f"{group[0].family} / {method}"] = fake_row(group, refs(method), res)

    real_rows: dict[str, dict] = {}
    if reals:
        real_rows["all real videos"] = real_row(reals, res)
        held = [r for r in reals if r.source != "real-shared"]
        if held and len(held) != len(reals):
            real_rows["held-out labelled real videos"] = real_row(held, res)
    by_real: dict[str, list[Item]] = {}
    for r in reals:
        by_real.setdefault(r.method, []).append(r)
    for method, group in sorted(by_real.items()):
        real_rows[method] = real_row(group, res)
    return {"fakes": rows, "reals": real_rows}


def network_tables(items: list[Item], named_rows: list[list[str]]) -> dict:
    """The networks alone: each network's raw score (its most suspicious face) of every file as it is,
    from model.training.abstain's rows, on the files all of them scored. The fair comparison of networks
    whose policies judge different shares of the files (a policy that declines the hard files raises
    its AUC on what is left)."""
    scores: dict[str, dict[str, float]] = {}
    for name, path in named_rows:
        mine = {}
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            if r["defect"] == "none" and r["faces"]:
                mine[r["path"]] = max(f["p"] for f in r["faces"])
        scores[name] = mine
    common = [i for i in items if all(i.path in s for s in scores.values())]
    out = {"n_files": len(common), "of": len(items), "tables": {}}
    for name, s in scores.items():
        res = {i.path: Result(i.path, "SCORED", s[i.path], 0.0) for i in common}
        out["tables"][name] = tables(common, res)["fakes"]
    return out


def _ci(ci) -> str:
    if not ci or any(v is None or np.isnan(v) for v in ci):
        return "–"
    return f"{ci[0]:.0%}–{ci[1]:.0%}"


def _f(v: float, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return f"{v:.0%}" if pct else f"{v:.2f}"


def markdown(report: dict) -> str:
    models = report["models"]
    names = [m["name"] for m in models]
    lines = [f"Quality benchmark, split `{report['split']}`, {report['frames']} frames, full pipeline "
             f"(`model.check`); {report['date']}; `{report['command']}`", ""]
    head = " | ".join(f"{n}" for n in names)
    lines += ["**Fakes** (AUC against the row's reals; recall = share called FAKE by the model's own verdict; "
              "recall @5 % FPR at the threshold that calls 5 % of those reals FAKE)", "",
              f"| set | n fake / n real | AUC ({head}) | recall ({head}) | UNCERTAIN ({head}) | can't judge ({head}) "
              f"| recall @5 % FPR ({head}) | NO_FACE+ERROR ({head}) |",
              "|---|---|---|---|---|---|---|---|"]
    first = report["tables"][names[0]]["fakes"]
    for row in first:
        ms = [report["tables"][n]["fakes"].get(row, {}) for n in names]
        m0 = ms[0]
        lines.append(f"| {row} | {m0['n']} / {m0['n_reals']} | " + " / ".join(_f(m.get("auc")) for m in ms) + " | "
                     + " / ".join(_f(m.get("recall"), True) for m in ms) + " | "
                     + " / ".join(_f(m.get("uncertain"), True) for m in ms) + " | "
                     + " / ".join(_f(m.get("abstained"), True) for m in ms) + " | "
                     + " / ".join(_f(m.get("recall_at_5fpr"), True) for m in ms) + " | "
                     + " / ".join(str(m.get("no_face", 0) + m.get("error", 0)) for m in ms) + " |")
    lines += ["", "**Real videos** (share called FAKE, and UNCERTAIN)", "",
              f"| set | n | called FAKE, 95 % Wilson interval ({head}) | UNCERTAIN ({head}) | of which can't judge ({head}) "
              f"| NO_FACE+ERROR ({head}) |", "|---|---|---|---|---|---|"]
    for row in report["tables"][names[0]]["reals"]:
        ms = [report["tables"][n]["reals"].get(row, {}) for n in names]
        lines.append(f"| {row} | {ms[0]['n']} | " + " / ".join(
            f"{_f(m.get('called_fake'), True)} ({m.get('n_fake', 0)}; {_ci(m.get('called_fake_ci95'))})" for m in ms)
                     + " | " + " / ".join(_f(m.get("called_uncertain"), True) for m in ms) + " | "
                     + " / ".join(_f(m.get("abstained"), True) for m in ms) + " | "
                     + " / ".join(str(m.get("no_face", 0) + m.get("error", 0)) for m in ms) + " |")
    if report.get("networks"):
        nets = report["networks"]
        nn = list(nets["tables"])
        lines += ["", f"**The networks alone** (raw scores of the files as they are, no abstention; the same "
                  f"{nets['n_files']} of the {nets['of']} files for each: the comparison of networks whose policies "
                  "judge different shares)", "", f"| set | n fake / n real | AUC ({' | '.join(nn)}) |", "|---|---|---|"]
        for row, m0 in nets["tables"][nn[0]].items():
            lines.append(f"| {row} | {m0['n']} / {m0['n_reals']} | "
                         + " / ".join(_f(nets["tables"][n].get(row, {}).get("auc")) for n in nn) + " |")
    for n in names:  # a two-head model: each head's own AUC per kind of fake
        rows = {row: m["auc_by_head"] for row, m in report["tables"][n]["fakes"].items() if m.get("auc_by_head")}
        if not rows:
            continue
        heads = sorted({h for v in rows.values() for h in v})
        lines += ["", f"**Per head, {n}** (each head's calibrated score alone; the verdict takes the larger)", "",
                  "| set | " + " | ".join(f"AUC, {h} head" for h in heads) + " | AUC, combined |",
                  "|---|" + "---|" * (len(heads) + 1)]
        for row, v in rows.items():
            lines.append(f"| {row} | " + " | ".join(_f(v.get(h)) for h in heads) + f" | {_f(report['tables'][n]['fakes'][row].get('auc'))} |")
    lines += ["", "| model | threshold | uncertain band | seconds per clip (mean) |", "|---|---|---|---|"]
    for m in models:
        lines.append(f"| {m['name']} | {m['threshold']:.3f} | {m['uncertain_band']:.3f} | {m['seconds_per_clip']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.quality", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", action="append", required=True, help="a registered model or checkpoint (repeat: side by side)")
    ap.add_argument("--video-dir", type=Path, default=DEFAULT_VIDEO_DIR, help="extract.py's output (default %(default)s)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="../shared/data (real/, fake-dev/)")
    ap.add_argument("--synth-dir", type=Path, default=DEFAULT_SYNTH_DIR, help="model.training.synth's output")
    ap.add_argument("--split", default="test", choices=["train", "cal", "test"])
    ap.add_argument("--splits", type=Path, default=SPLITS_FILE, help="the split file (default: the committed one)")
    ap.add_argument("--meso-dir", type=Path, default=MESO_VAL_DIR, help="MesoNet's validation part (meso-val.tar, extracted)")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--limit", type=int, help="at most this many files (a smoke run)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--network-rows", action="append", default=[], metavar="NAME=ROWS",
                    help="model.training.abstain's rows file of a network (raw scores, every file as it is): adds the "
                         "networks-alone table, each on the same files, no abstention (repeat: side by side)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    items = collect(args.split, args.video_dir, args.data, args.synth_dir, Splits(args.splits), meso_dir=args.meso_dir)
    if args.limit:
        items = items[: args.limit]
    if not items:
        print(f"error: no labelled files of split {args.split!r} found (run extract.py; see --help)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"split": args.split, "frames": args.frames, "date": dt.date.today().isoformat(),
              "command": "python -m model.training.quality " + " ".join(argv if argv is not None else sys.argv[1:]),
              "models": [], "tables": {}, "files": {}}
    for w in args.weights:
        loaded = load_model(w)
        res = run_model(loaded, items, args.frames, args.out / f"results-{loaded.sha256[:16]}-{args.frames}.jsonl")
        name = loaded.name if loaded.name not in [m["name"] for m in report["models"]] else f"{loaded.name}@{loaded.sha256[:8]}"
        report["models"].append({"name": name, "weights": w, "sha256": loaded.sha256, "threshold": loaded.threshold,
                                 "uncertain_band": loaded.uncertain_band,
                                 "seconds_per_clip": float(np.mean([r.seconds for r in res.values()]))})
        report["tables"][name] = tables(items, res)
        report["files"][name] = {Path(p).name: asdict(r) | {"path": p} for p, r in res.items()}
    if args.network_rows:
        report["networks"] = network_tables(items, [spec.split("=", 1) for spec in args.network_rows])
    report["items"] = [asdict(i) for i in items]
    (args.out / "quality.json").write_text(json.dumps(report, indent=1))
    md = markdown(report)
    (args.out / "quality.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
