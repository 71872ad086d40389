"""Prepare a face-crop cache for training and evaluation.

    python -m model.training.prepare DATA_DIR OUT_DIR [--labels labels.csv] [--source NAME] [--frames 20]
                                     [--size 112] [--detector yunet] [--workers 2]

DATA_DIR holds videos or images, labelled either by a CSV (`file,label` with label REAL/FAKE,
real/fake or 1/0 -- the original project's metadata style; extract.py's labels.csv also gives
`family,method,group`) or by sub-folders: `real/` and `fake/` (`df/` also counts as fake). Each
file is read with the same sampler, detector, tracker and `crop_face` the inference path uses
(training and inference cannot drift); the main face track's crops are stored with their 68
landmarks (for self-blended fakes). `--source` names the source in splits.csv.

The cache is OUT_DIR/index.jsonl (one record per source file, including the ones skipped and
why) plus OUT_DIR/crops/<id>.npz. Re-running resumes: files already in the index are skipped.
Images named `<video>_<frame>.jpg` (frames of one clip) get group `<video>`, so splits can keep
a clip's frames on one side; other files are their own group.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import logging
import multiprocessing as mp
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.faces import (
    DEFAULT_DETECTOR,
    SMALL_FACES_MESSAGE,
    NoFaceError,
    crop_face,
    crop_points,
    find_faces,
    unscored_reasons,
)
from model.spec import DETECTORS, CropSpec
from model.video import IMAGE_EXTENSIONS, MediaError, read_frames

from . import TrainingError
from .splits import fake_dev_group

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v", ".gif"}
LABEL_WORDS = {"real": 0, "fake": 1, "df": 1, "0": 0, "1": 1, "original": 0, "manipulated": 1}
FRAME_NAME = re.compile(r"^(?P<group>.+)_(?P<frame>\d+)$")


@dataclass(frozen=True)
class Item:
    path: str  # relative to the data dir
    label: int  # 1 = fake, 0 = real (prepare's own convention; the network's class order is separate)
    given_group: str | None = None  # from a labels file (extract.py's `group`: the unit of splitting)
    family: str | None = None
    method: str | None = None

    @property
    def id(self) -> str:
        return hashlib.sha1(self.path.encode()).hexdigest()[:16]

    @property
    def group(self) -> str:
        if self.given_group:
            return self.given_group
        stem = Path(self.path).stem
        m = FRAME_NAME.match(stem)
        parent = str(Path(self.path).parent)
        return f"{parent}/{m.group('group')}" if m else f"{parent}/{stem}"

    @property
    def frame_no(self) -> int:
        m = FRAME_NAME.match(Path(self.path).stem)
        return int(m.group("frame")) if m else 0


def _label(word: str) -> int:
    key = word.strip().lower()
    if key not in LABEL_WORDS:
        raise ValueError(f"unknown label {word!r} (use REAL or FAKE)")
    return LABEL_WORDS[key]


def list_items(data_dir: Path, labels: Path | None = None, all_label: str | None = None) -> list[Item]:
    media = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    if all_label is not None:  # a flat folder of one class (e.g. a face-still collection)
        label = _label(all_label)
        return [Item(str(f.relative_to(data_dir)), label) for f in sorted(data_dir.rglob("*")) if f.suffix.lower() in media]
    if labels is not None:
        with open(labels, newline="") as f:
            rows = list(csv.reader(f))
        header = [c.strip().lower() for c in rows[0]] if rows else []
        if header and header[0] in ("file", "path", "filename", "uri"):
            rows = rows[1:]
            col = {name: header.index(name) for name in ("group", "family", "method") if name in header}
            return [Item(r[0].strip(), _label(r[1]), *(r[col[k]] if k in col else None for k in ("group", "family", "method")))
                    for r in rows if len(r) >= 2]
        return [Item(r[0].strip(), _label(r[1])) for r in rows if len(r) >= 2]
    items = []
    for sub in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        if sub.name.lower() not in LABEL_WORDS:
            continue
        label = _label(sub.name)
        for f in sorted(sub.rglob("*")):
            if f.suffix.lower() in media:
                items.append(Item(str(f.relative_to(data_dir)), label))
    return items


def process(args: tuple[str, Item, int, CropSpec]) -> tuple[dict, dict | None]:
    """Read one file -> (index record, arrays or None). Runs in a worker process."""
    from .blend import find_landmarks

    data_dir, item, frames, spec = args
    rec = {"id": item.id, "file": item.path, "label": item.label, "group": item.group, "frame_no": item.frame_no,
           "family": item.family, "method": item.method}
    try:
        fr = read_frames(Path(data_dir) / item.path, frames)
        _, tracks = find_faces(fr, max_tracks=1, detector=spec.detector)
    except (MediaError, NoFaceError) as e:
        rec["skipped"] = str(e)
        return rec, None
    except Exception as e:  # a broken file must not stop a long preparation run
        rec["skipped"] = f"{type(e).__name__}: {e}"
        return rec, None
    reasons = unscored_reasons(tracks)
    if all(reasons):
        rec["skipped"] = SMALL_FACES_MESSAGE
        return rec, None
    track = tracks[reasons.index(None)]  # the main face: what inference scores first
    idx = sorted(track.boxes)
    crops, lms = [], []
    for i in idx:
        box = track.boxes[i]
        crops.append(crop_face(fr.images[i], box, spec))
        lms.append(crop_points(find_landmarks(fr.images[i], box), box, spec))
    rec["n"] = len(idx)
    arrays = {"crops": np.stack(crops), "landmarks": np.stack(lms).astype(np.float32),
              "times": np.asarray([fr.times[i] for i in idx], np.float32)}
    return rec, arrays


def prepare(data_dir: Path, out_dir: Path, labels: Path | None = None, frames: int = 20,
            workers: int = 2, spec: CropSpec | None = None, limit: int | None = None,
            all_label: str | None = None, source: str | None = None) -> int:
    """Returns the number of files newly processed."""
    from tqdm import tqdm

    spec = spec or CropSpec()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "crops").mkdir(exist_ok=True)
    index = out_dir / "index.jsonl"
    meta = out_dir / "cache.json"
    want = {"crop": dataclasses.asdict(spec), "frames": frames}
    if meta.exists() and json.loads(meta.read_text()) != want:
        raise TrainingError(f"{out_dir} was prepared with {meta.read_text()}, not {want}: use another OUT_DIR")
    meta.write_text(json.dumps(want))
    done = set()
    if index.exists():
        for line in index.read_text().splitlines():
            if line.strip():
                done.add(json.loads(line)["id"])
    items = [it for it in list_items(data_dir, labels, all_label) if it.id not in done]
    if source == "fake-dev":
        items = [dataclasses.replace(it, given_group=fake_dev_group(it.path)) for it in items]
    if limit is not None:
        items = items[:limit]
    jobs = [(str(data_dir), it, frames, spec) for it in items]
    n = 0
    ctx = mp.get_context("spawn")
    with open(index, "a") as idx_f, ctx.Pool(workers, initializer=_quiet) as pool:
        for rec, arrays in tqdm(pool.imap_unordered(process, jobs, chunksize=8), total=len(jobs),
                                desc="prepare", unit="file", file=sys.stderr, disable=None):
            if arrays is not None:
                tmp = out_dir / "crops" / f"{rec['id']}.tmp.npz"
                np.savez(tmp, **arrays)
                os.replace(tmp, out_dir / "crops" / f"{rec['id']}.npz")
            else:
                log.info("skipped %s: %s", rec["file"], rec["skipped"])
            idx_f.write(json.dumps(rec) + "\n")
            idx_f.flush()
            n += 1
    return n


def _quiet():
    import warnings

    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    import torch

    torch.set_num_threads(1)
    os.environ["DEEPFAKE_CHECK_DETECT_THREADS"] = "1"  # the pool's processes are the parallelism


@dataclass
class Cache:
    """A prepared cache in memory: one row per source file that has crops."""

    records: list[dict]
    crops: list[np.ndarray]  # per record (T, S, S, 3) uint8
    landmarks: list[np.ndarray]  # per record (T, 68, 2)
    spec: CropSpec


def load_cache(out_dir: Path) -> Cache:
    meta = json.loads((out_dir / "cache.json").read_text())
    records, crops, lms = [], [], []
    for line in (out_dir / "index.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if "skipped" in rec:
            continue
        with np.load(out_dir / "crops" / f"{rec['id']}.npz") as z:
            crops.append(z["crops"])
            lms.append(z["landmarks"])
        records.append(rec)
    return Cache(records, crops, lms, CropSpec(**meta["crop"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.prepare", description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--labels", type=Path, help="CSV file,label (else real/ and fake/ sub-folders)")
    ap.add_argument("--all", dest="all_label", metavar="LABEL", help="every file in DATA_DIR has this label (REAL/FAKE)")
    ap.add_argument("--frames", type=int, default=20, help="frames sampled per video")
    ap.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    ap.add_argument("--margin", type=float, default=CropSpec().margin)
    ap.add_argument("--size", type=int, default=CropSpec().size)
    ap.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help="face detector (default %(default)s)")
    ap.add_argument("--source", help="the source's name in splits.csv; fake-dev files are grouped by person")
    ap.add_argument("--limit", type=int, help="process at most this many new files")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.data_dir.is_dir():
        ap.error(f"{args.data_dir} is not a folder")
    try:
        n = prepare(args.data_dir, args.out_dir, args.labels, args.frames, args.workers,
                    CropSpec(size=args.size, margin=args.margin, detector=args.detector), args.limit, args.all_label,
                    args.source)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"prepared {n} files into {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
