"""`python -m server scan INPUT... --out results.jsonl`: check a folder, an archive or a list of URLs
in bulk with Ray Data, on an embedded local Ray (this machine's cores) or a cluster (--address).

The pipeline, one row per input:
    list (here) -> fetch (URLs: the server's fetcher, caps and private-address refusal included;
    files pass by path) -> prepare (decode, detect, crop: CPU tasks) -> score (an actor pool, the
    model loaded once per actor, face tracks of several files batched) -> JSONL, appended as rows
    arrive.
A row is the fields of `python -m model check --json` plus `input` (what was asked) and
`error_kind` (a stable code beside the CLI's `error` message); `provenance`, the file's Content
Credentials (C2PA), is read in the prepare stage, judged against --c2pa-trust-anchors as the CLI does. A bad input is an error row, never a
failed scan. Re-running with the same --out skips the inputs it already answers (resume). At the
end: a summary on stdout and a self-contained HTML report beside the JSONL (server/report.py).

Media stays in memory: a fetched video is read into RAM and its download folder deleted at once;
it is decoded from an anonymous memory file. Files are read where they are.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import pickle
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .containers import problem_of
from .media import RAM_DIR, SNIFF_BYTES, sniff
from .private import own_dir
from .raycluster import start_ray, stop_ray

log = logging.getLogger(__name__)

# What a folder's files are taken for without sniffing: a file named like a video that is not one
# gets an error row (the user sees it), not silence; other files in a folder are sniffed.
MEDIA_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".gif", ".flv", ".ogv", ".mpg",
                            ".mpeg", ".ts", ".wmv", ".jpg", ".jpeg", ".png", ".webp", ".bmp", ".heic", ".avif"})
# Ray resources per stage. Logical CPUs: the model on a CPU is a fraction of a clip's cost (decode
# and face detection dominate, docs/performance.md), so an actor takes half a CPU and leaves the
# rest to the prepare tasks; a fetch mostly waits on the network.
FETCH_CPUS = 0.25
PREPARE_CPUS = 1.0
ACTOR_CPUS = 0.5
BATCH_SIZE = 4  # files per call of a model actor: their face tracks of equal length share a forward pass
HEATMAP_VERDICTS = ("FAKE", "UNCERTAIN")  # a heatmap costs a backward pass: only for suspicious clips
THUMB_WIDTH = 240


# --- inputs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One input of the scan: a media file or a URL, or an entry that is an error before it starts."""

    input: str  # a file's absolute path, or the URL: the row's key (resume matches on it)
    kind: str  # "file" | "url" | "error"
    error_kind: str | None = None
    error: str | None = None


def _looks_like_url(line: str) -> bool:
    return line.startswith(("http://", "https://")) and " " not in line


def _url_list(path: Path) -> list[str] | None:
    """The URLs of a text file of URLs (one a line; blank lines and # comments skipped), or None
    when the file is not one."""
    try:
        with open(path, "rb") as f:
            raw = f.read(4 * 2**20 + 1)
        if len(raw) > 4 * 2**20:
            return None
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines or not _looks_like_url(lines[0]):
        return None
    return lines


def _is_media(path: Path) -> bool:
    if path.suffix.lower() in MEDIA_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return False
    return sniff(head, path.stat().st_size) is not None


def list_inputs(args: Iterable[str]) -> tuple[list[Item], int]:
    """Every input the scan answers, in a stable order, and how many folder files were skipped
    (neither named nor sniffed as media)."""
    items: list[Item] = []
    skipped = 0
    seen: set[str] = set()

    def add(item: Item) -> None:
        if item.input not in seen:
            seen.add(item.input)
            items.append(item)

    for arg in args:
        if _looks_like_url(arg):
            add(Item(arg, "url"))
            continue
        path = Path(arg).expanduser()
        key = str(path.resolve()) if path.exists() else str(path.absolute())
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
                if _is_media(f):
                    add(Item(str(f.resolve()), "file"))
                else:
                    skipped += 1
        elif path.is_file():
            urls = None if _is_media(path) else _url_list(path)
            if urls is None:
                add(Item(key, "file"))  # media, or not: then `check` says what it is
                continue
            for url in urls:
                if _looks_like_url(url):
                    add(Item(url, "url"))
                else:
                    add(Item(url, "error", "bad_url", "Not an http(s) URL."))
        else:
            add(Item(key, "error", "not_found", "No such file or folder."))
    return items, skipped


# --- the results file -----------------------------------------------------------------------------
def answered(out: Path) -> dict[str, dict]:
    """The rows already in `out`, by input. A last line cut short by an interrupted scan is dropped
    from the file (its input is scanned again)."""
    rows: dict[str, dict] = {}
    if not out.exists():
        return rows
    good = 0
    with open(out, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                row = json.loads(line)
            except ValueError:
                break
            if isinstance(row, dict) and isinstance(row.get("input"), str):
                rows[row["input"]] = row
            good += len(line)
    if good != out.stat().st_size:
        os.truncate(out, good)
    return rows


def error_row(item_input: str, kind: str, message: str) -> dict:
    from model import Verdict

    row = Verdict(file=item_input, verdict="ERROR", error=message).to_dict()
    return {**row, "input": item_input, "error_kind": kind}


def error_kind_of(v: dict) -> str | None:
    """The stable code of a check's own outcome: no face, not media, failed on this file."""
    if v["verdict"] == "NO_FACE":
        return "no_face"
    if v["verdict"] == "ERROR":
        return "failed" if (v.get("error") or "").startswith("Could not process") else "not_media"
    return None


# --- the pipeline's stages (run in Ray's workers) -------------------------------------------------
@dataclass(frozen=True)
class FetchSettings:
    max_bytes: int
    max_duration_s: float
    deadline_s: float
    allow_private: bool
    scan_dir: str  # this scan's folder for downloads (scan_dir()), made on the node a fetch runs on


SCAN_DIR_PREFIX = "deepfake-check-scan-"


def scan_dir() -> Path:
    """This scan's folder for its downloads' plaintext, in RAM when the system has it: named after
    this process (deepfake-check-scan-<pid>-<random>) so that a later scan can tell a killed scan's
    folder from a running one's (remove_stale_scan_dirs). Made by the fetch tasks, removed at the end."""
    parent = RAM_DIR if RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK) else Path(tempfile.gettempdir())
    return parent / f"{SCAN_DIR_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"


def remove_stale_scan_dirs(parent: Path | None = None) -> int:
    """Removes the download folders of scans that are no longer running (killed: nothing of theirs
    cleaned up), this user's own only, never following a symlink. Returns how many."""
    import re
    import stat

    parent = parent or scan_dir().parent
    removed = 0
    for d in parent.glob(f"{SCAN_DIR_PREFIX}*"):
        m = re.fullmatch(rf"{SCAN_DIR_PREFIX}(\d+)-[0-9a-f]+", d.name)
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            continue
        # a folder of a scan from before these were named after their process: stale past any deadline
        if m is None and time.time() - st.st_mtime < 2 * Config().deadline_s:
            continue
        if m is not None and _alive(int(m[1])):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fetch_stage(row: dict, settings: FetchSettings) -> dict:
    """URL -> its bytes, in memory (the download folder goes at once); files and errors pass."""
    from .fetch import FetchError, fetch

    item: Item = pickle.loads(row["item"])
    out = {"item": item, "data": None, "fetch_ms": None}
    if item.kind == "url":
        parent = own_dir(Path(settings.scan_dir))  # made 0700 here; ours, never a link planted by someone else
        dest = Path(tempfile.mkdtemp(dir=parent))  # 0700
        t0 = time.perf_counter()
        try:
            fetched = asyncio.run(fetch(item.input, dest, max_bytes=settings.max_bytes,
                                        max_duration_s=settings.max_duration_s, allow_private=settings.allow_private,
                                        timeout_s=settings.deadline_s))
            data = fetched.path.read_bytes()
            if sniff(data[:SNIFF_BYTES], len(data)) is None:  # as the server says of such a URL
                out["item"] = Item(item.input, "error", "not_media", "The URL gave a file that is not a video or image.")
            elif problem := problem_of(data):
                out["item"] = Item(item.input, "error", "not_media", "The URL gave a file that is not a whole, "
                                                                     f"well-formed video or image: {problem}.")
            else:
                out["data"] = data
        except FetchError as e:
            out["item"] = Item(item.input, "error", e.code, e.message)
        except Exception as e:  # the scan goes on: this input's row says what happened
            out["item"] = Item(item.input, "error", "fetch_failed", f"Download failed ({type(e).__name__}).")
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        out["fetch_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return {"input": item.input, "payload": pickle.dumps(out)}


def thumbnail(prepared) -> bytes | None:
    """A small JPEG of the frame in the middle of the first scored face's track (its box drawn),
    else of the first frame."""
    from PIL import Image, ImageDraw

    fr = prepared.frames
    if fr is None or not fr.images:
        return None
    i, box = 0, None
    if prepared.face_crops:
        fc = prepared.face_crops[0]
        i = fc.frame_indices[len(fc.frame_indices) // 2]
        box = fc.track.boxes[i].as_list()
    img = Image.fromarray(fr.images[i])
    if box is not None:
        x, y, w, h = box
        ImageDraw.Draw(img).rectangle([x, y, x + w, y + h], outline=(255, 60, 60), width=max(2, img.width // 160))
    img.thumbnail((THUMB_WIDTH, THUMB_WIDTH))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def prepare_stage(row: dict, frames: int, crop, trust_anchors: str | None = None) -> dict:
    """Read the Content Credentials, decode, detect and crop (model.prepare) one file or fetched
    video; drop the frames but a thumbnail. trust_anchors: PEM text (model.load_trust_anchors)."""
    from model import prepare

    from .media import in_memory

    p = pickle.loads(row["payload"])
    item: Item = p["item"]
    out = {"item": item, "fetch_ms": p["fetch_ms"], "prepared": None, "thumb": None}
    if item.kind != "error":
        try:
            if p["data"] is not None:
                with in_memory(p["data"]) as path:
                    prepared = prepare(path, frames, crop, trust_anchors=trust_anchors)
                prepared.verdict.file = item.input
            else:
                prepared = prepare(item.input, frames, crop, trust_anchors=trust_anchors)
            try:
                out["thumb"] = thumbnail(prepared)
            except Exception:  # a report without this picture, not a lost row
                log.warning("thumbnail failed", exc_info=True)
            out["prepared"] = prepared.without_frames()
        except Exception as e:
            out["item"] = Item(item.input, "error", "failed", f"Could not process this file ({type(e).__name__}).")
    return {"input": item.input, "payload": pickle.dumps(out)}


class ModelActor:
    """One per actor: the model loaded once; each call scores a batch of prepared files."""

    def __init__(self, weights: str | None, device: str | None, threads: int | None):
        import torch

        from model import load_model, optimise_for_cpu

        if threads:
            torch.set_num_threads(threads)
        self.loaded = load_model(weights, device=device)
        optimise_for_cpu(self.loaded)  # a few seconds once, a quarter off every batch after

    def __call__(self, batch):
        import pyarrow as pa

        from model import score, score_tracks

        items = [pickle.loads(b) for b in batch["payload"].to_pylist()]
        todo = [p for p in items if p["prepared"] is not None and p["prepared"].needs_model]
        crops = [fc.crops for p in todo for fc in p["prepared"].face_crops]
        t0 = time.perf_counter()
        try:
            raw = score_tracks(self.loaded, crops) if crops else []
        except Exception:  # then file by file: one file's failure is its own row
            log.warning("batched scoring failed; scoring file by file", exc_info=True)
            raw = None
        model_ms = (time.perf_counter() - t0) * 1000
        share = {id(p): model_ms * len(p["prepared"].face_crops) / max(1, len(crops)) for p in todo}
        at = 0
        rows, thumbs, heatmaps = [], [], []
        for p in items:
            item: Item = p["item"]
            heat = None
            if p["prepared"] is None:
                row = error_row(item.input, item.error_kind or "failed", item.error or "Could not process this file.")
            else:
                prepared = p["prepared"]
                n = len(prepared.face_crops)
                mine = raw[at:at + n] if raw is not None and prepared.needs_model else None
                at += n if prepared.needs_model else 0
                v = score(prepared, self.loaded, want_heatmap=HEATMAP_VERDICTS, raw_scores=mine)
                if mine is not None:
                    t = v.timings_ms
                    t["total"] = round(t["total"] - t.get("model", 0.0) + share[id(p)], 1)
                    t["model"] = round(share[id(p)], 1)
                if p["fetch_ms"] is not None:
                    v.timings_ms["fetch"] = p["fetch_ms"]
                    v.timings_ms["total"] = round(v.timings_ms["total"] + p["fetch_ms"], 1)
                heat = v.heatmap_png
                d = v.to_dict()
                row = {**d, "input": item.input, "error_kind": error_kind_of(d)}
            rows.append(json.dumps(row))
            thumbs.append(p.get("thumb") or b"")
            heatmaps.append(heat or b"")
        return pa.table({"input": [p["item"].input for p in items], "row": rows,
                         "thumb": pa.array(thumbs, pa.binary()), "heatmap": pa.array(heatmaps, pa.binary())})


# --- running it -----------------------------------------------------------------------------------
@dataclass
class ScanOptions:
    inputs: list[str]
    out: Path
    address: str | None = None
    frames: int = 20
    weights: str | None = None
    actors: int = 1
    gpus_per_actor: float = 0.0
    batch_size: int = BATCH_SIZE
    allow_private_fetch: bool = False
    num_cpus: int | None = None  # the embedded Ray's CPUs (None: all of this machine's)
    trust_anchors: Path | None = None  # C2PA trust anchors (PEM file), as the CLI's --c2pa-trust-anchors
    report: bool = True
    limit: int | None = None  # stop after this many new rows (tests: an interrupted scan)


def build_dataset(todo: list[Item], o: ScanOptions, crop, config: Config, anchors: str | None = None,
                  downloads: Path | None = None):
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours counts rows, with a rate and an ETA
    ctx.max_errored_blocks = -1  # a worker that dies on one input loses its block, not the scan
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    settings = FetchSettings(config.max_fetch_bytes, config.max_duration_s, config.deadline_s, o.allow_private_fetch,
                             str(downloads or scan_dir()))
    gpu = o.gpus_per_actor > 0
    ds = ray.data.from_items([{"item": pickle.dumps(it)} for it in todo], override_num_blocks=len(todo))
    ds = ds.map(fetch_stage, fn_kwargs={"settings": settings}, num_cpus=FETCH_CPUS)
    ds = ds.map(prepare_stage, fn_kwargs={"frames": o.frames, "crop": crop, "trust_anchors": anchors},
                num_cpus=PREPARE_CPUS)
    return ds.map_batches(
        ModelActor, fn_constructor_kwargs={"weights": o.weights, "device": "cuda" if gpu else "cpu",
                                           "threads": None if gpu else 1},
        batch_size=o.batch_size, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=o.actors),
        num_gpus=o.gpus_per_actor if gpu else 0, num_cpus=1 if gpu else ACTOR_CPUS,
    )


def scan(o: ScanOptions, progress_file=sys.stderr) -> dict:
    """Runs the scan; returns the summary (report.summarise) of every row in o.out."""
    from tqdm import tqdm

    from model import load_trust_anchors, read_spec

    from . import report

    # read here, the text goes to the tasks (a cluster's nodes need no copy); a bad file fails here
    anchors = load_trust_anchors(o.trust_anchors) if o.trust_anchors else None
    spec = read_spec(o.weights)  # the crops are cut the way this model was trained; a bad --weights fails here
    items, skipped = list_inputs(o.inputs)
    o.out.parent.mkdir(parents=True, exist_ok=True)
    done = answered(o.out)
    todo = [it for it in items if it.input not in done]
    if o.limit is not None:
        todo = todo[:o.limit]
    assets = report.Assets(report.assets_path(o.out))
    t0 = time.perf_counter()
    ray_start_s = 0.0
    new_rows: list[dict] = []
    interrupted = False
    if todo:
        print(f"scan: {len(items)} inputs, {len(done)} already answered in {o.out.name}, {len(todo)} to do"
              + (f"; {skipped} files in folders skipped (not media)" if skipped else ""), file=progress_file)
        import ray

        own_ray = not ray.is_initialized()  # a caller's Ray (tests, a notebook) is used and left running
        if own_ray:
            start_ray(o.address, o.num_cpus)
        ray_start_s = time.perf_counter() - t0
        downloads = scan_dir()
        if stale := remove_stale_scan_dirs(downloads.parent):
            log.info("removed the download folders of %d scans that were killed", stale)
        try:
            ds = build_dataset(todo, o, spec.crop, Config(), anchors, downloads)
            os.close(os.open(o.out, os.O_WRONLY | os.O_CREAT, 0o600))  # what you checked: owner only
            with open(o.out, "a", encoding="utf-8") as f, \
                    tqdm(total=len(todo), unit="clip", file=progress_file, disable=None, smoothing=0.1) as bar:
                for row in ds.iter_rows():
                    f.write(row["row"] + "\n")
                    f.flush()
                    parsed = json.loads(row["row"])
                    new_rows.append(parsed)
                    done[parsed["input"]] = parsed
                    assets.offer(parsed, row["thumb"], row["heatmap"])
                    bar.update()
                    if o.limit is not None and len(new_rows) >= o.limit:
                        interrupted = True  # as if stopped here: what is in flight is lost, the resume redoes it
                        break
                for it in [] if interrupted else [it for it in todo if it.input not in done]:
                    # their worker died (a decoder crash, say): say so, never lose them silently
                    parsed = error_row(it.input, "crashed", "The worker checking this input died or failed; it was not "
                                                            "checked (Ray's log says why).")
                    f.write(json.dumps(parsed) + "\n")
                    new_rows.append(parsed)
                    done[it.input] = parsed
        finally:
            assets.save()
            if own_ray:
                stop_ray()  # its fetch tasks end, and their fetch children with them
            shutil.rmtree(downloads, ignore_errors=True)
    elapsed = time.perf_counter() - t0
    summary = report.summarise(list(done.values()), new_rows, elapsed, ray_start_s)
    if o.report:
        report.write_html(report.html_path(o.out), list(done.values()), assets, summary)
    return summary


def parse_args(argv: list[str] | None = None) -> ScanOptions:
    from model import FRAME_CHOICES

    d = Config()
    p = argparse.ArgumentParser(prog="python -m server scan",
                                description="Check many files, folders or URL lists with Ray Data; one JSONL row per input.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a video or image file, a folder (searched recursively for media), a text file of URLs "
                        "(one a line), or a URL")
    p.add_argument("--out", type=Path, required=True, help="results (JSON lines); an existing file is resumed")
    p.add_argument("--address", default=None,
                   help="a Ray cluster: auto (a node started with `ray start` here) or ray://HOST:10001 "
                        "(default: an embedded Ray on this machine's cores)")
    p.add_argument("--frames", type=int, default=d.frames, choices=FRAME_CHOICES, help="frames sampled per clip")
    p.add_argument("--weights", help="model checkpoint file or registered name (default: the shipped model)")
    p.add_argument("--actors", type=int, default=1, help="model actors (each loads the model once; default 1)")
    p.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs per model actor (default 0: CPU)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="files per model call (default %(default)s)")
    p.add_argument("--cpus", type=int, default=None, help="the embedded Ray's CPUs (default: all cores)")
    p.add_argument("--allow-private-fetch", action="store_true",
                   help="allow URLs on loopback/private networks (off: refused, as in the server)")
    p.add_argument("--c2pa-trust-anchors", type=Path, metavar="FILE.pem",
                   help="CA certificates whose Content Credentials signers count as trusted (e.g. the C2PA trust "
                        "list), as in `python -m model check`; without it, intact credentials are untrusted-signer")
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    a = p.parse_args(argv)
    if a.actors < 1 or a.batch_size < 1:
        p.error("--actors and --batch-size must be at least 1")
    return ScanOptions(inputs=a.inputs, out=a.out, address=a.address, frames=a.frames, weights=a.weights,
                       actors=a.actors, gpus_per_actor=a.gpus_per_actor, batch_size=a.batch_size,
                       allow_private_fetch=a.allow_private_fetch, num_cpus=a.cpus, report=not a.no_report,
                       trust_anchors=a.c2pa_trust_anchors)


def main(argv: list[str] | None = None) -> int:
    from model import CheckpointError, TrustAnchorsError

    from . import report

    o = parse_args(argv)
    try:
        summary = scan(o)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the rows written so far are in {o.out}; run the same command again to go on",
              file=sys.stderr)
        return 130
    except (CheckpointError, TrustAnchorsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ConnectionError as e:
        print(f"error: cannot reach the Ray cluster at {o.address} ({e})", file=sys.stderr)
        return 1
    print(report.summary_text(summary))
    if o.report:
        print(f"report: {report.html_path(o.out)}")
    return 0
