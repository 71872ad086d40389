"""Benchmark: what reading Content Credentials (C2PA) adds to a check, on this machine.

    python -m bench.provenance               # ~1 minute
    python -m bench.provenance --runs 50

Times `model.provenance.read_provenance` as the inference worker calls it (inside `check()`, before
decoding), in a process that has loaded and warmed the default model like the worker. Files: a generated H.264 clip of
a few MB and a JPEG, each without credentials and signed (an AI-generated declaration, ES256 under
a throwaway test CA made here, as tests/credentials.py does). Prints the median and the 90th
percentile in ms, the same reads in-process (what the reader process's isolation costs), and the
first read's cost, which starts the reader process; nothing is written but the clips, in a
temporary folder.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _files(tmp: Path) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "tests"))  # the tests' media and credentials helpers
    import credentials
    import media
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    # lightly noise-textured frames so the H.264 clip is a few MB, like a short social-media clip
    frames = [np.clip(f.astype(int) + rng.integers(-16, 16, f.shape), 0, 255).astype(np.uint8)
              for f in media.face_frames(100, size=(960, 540))]
    clip = media.write_clip(tmp / "clip.mp4", frames, fps=25)
    jpeg = tmp / "photo.jpg"
    Image.fromarray(media.head()).resize((1600, 1600)).save(jpeg, quality=92)
    signer = credentials.CA.make("Bench CA").signer("Example AI Inc", "bench")
    return {
        "MP4 without credentials": clip,
        "MP4 with credentials": credentials.sign(clip, tmp / "clip-signed.mp4", signer, credentials.ai_generated()),
        "JPEG without credentials": jpeg,
        "JPEG with credentials": credentials.sign(jpeg, tmp / "photo-signed.jpg", signer, credentials.ai_generated()),
    }


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.provenance", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="timed reads per file (after one warm-up read)")
    args = ap.parse_args(argv)

    from model import load_model, provenance, warm_up
    from model.provenance import _read_summary, read_provenance

    loaded = load_model()
    warm_up(loaded)
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, model {loaded.name} loaded (resident {rss_mb():.0f} MB)")
    with tempfile.TemporaryDirectory() as d:
        files = _files(Path(d))
        starts = []
        for _ in range(5):
            provenance._READER.close()
            t0 = time.perf_counter()
            read_provenance(files["JPEG with credentials"])
            starts.append((time.perf_counter() - t0) * 1000)
        print(f"first read with credentials (starts the reader process): median {statistics.median(starts):.0f} ms "
              f"of 5 ({min(starts):.0f}-{max(starts):.0f})")
        print(f"{'file':<28}{'size':>9}{'median ms':>11}{'p90 ms':>9}  result")
        for name, path in files.items():
            p = read_provenance(path)  # warm-up
            what = "none" if p is None else f"{p.state}, ai_generated={p.ai_generated}"
            _row(name, path, lambda path=path: read_provenance(path), args.runs, what)
            if p is not None:  # the same read in this process: what the reader process costs
                _row("  (in-process, unisolated)", path, lambda path=path: _read_summary(path, None), args.runs, "")
    return 0


def _row(name: str, path: Path, read, runs: int, what: str) -> None:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        read()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(f"{name:<28}{path.stat().st_size / 2**20:>7.1f}MB{statistics.median(times):>11.2f}{p90:>9.2f}  {what}")


if __name__ == "__main__":
    sys.exit(main())
