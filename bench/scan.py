"""Benchmark: `python -m server scan` (Ray Data, 1 and 2 model actors) against the plain sequential
`python -m model check` over the same clips, on this machine. Prints the figures for
docs/performance.md.

    python -m bench.scan                 # 50 clips (cut from ../shared/data/real, else generated)
    python -m bench.scan --clips 10      # a smaller run
    python -m bench.scan --weights W     # another model (default: the shipped one)

Each configuration runs in a fresh process, as a user starts it: the CLI loads the model and
checks the files one after another; a scan starts an embedded Ray (its start-up is reported
apart), an actor pool that loads the model once per actor, and the pipeline. Wall times include
everything; "clips/s" is clips over wall time. Per-stage seconds are the mean over clips of the
stage's time in its worker (stages of different clips overlap in a scan, so they do not add up to
the wall time). The clips are cached in ~/.cache/deepfake-check/bench/load (bench/server_load.py).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("decode", "detect", "crop", "model", "heatmap", "total")


def _stage_means(rows: list[dict]) -> dict[str, float]:
    out = {}
    for s in STAGES:
        xs = [r["timings_ms"][s] / 1000 for r in rows if s in (r.get("timings_ms") or {})]
        if xs:
            out[s] = round(statistics.fmean(xs), 3)
    return out


def run_cli(clips: list[Path], weights: str | None) -> dict:
    cmd = [sys.executable, "-m", "model", "check", "--json", *(["--weights", weights] if weights else []), *map(str, clips)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    return {"wall_s": round(wall, 1), "clips": len(rows), "clips_per_s": round(len(rows) / wall, 3),
            "stages": _stage_means(rows), "verdicts": {r["file"]: (r["verdict"], r["p_fake"]) for r in rows}}


def run_scan(clips_dir: Path, actors: int, weights: str | None, tmp: Path) -> dict:
    out = tmp / f"scan-{actors}.jsonl"
    cmd = [sys.executable, "-m", "bench.scan", "_scan", json.dumps(
        {"inputs": [str(clips_dir)], "out": str(out), "actors": actors, "weights": weights})]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"scan failed:\n{r.stderr[-3000:]}")
    summary = json.loads(r.stdout.splitlines()[-1])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {"wall_s": round(wall, 1), "ray_start_s": summary["ray_start_s"], "clips": len(rows),
            "clips_per_s": round(len(rows) / wall, 3),
            "clips_per_s_after_start": round(len(rows) / (wall - summary["ray_start_s"]), 3),
            "stages": _stage_means(rows), "verdicts": {r["file"]: (r["verdict"], r["p_fake"]) for r in rows}}


def _scan_child(opts: dict) -> None:
    from server.scan import ScanOptions, scan

    summary = scan(ScanOptions(inputs=opts["inputs"], out=Path(opts["out"]), actors=opts["actors"],
                               weights=opts["weights"], report=False), progress_file=open(os.devnull, "w"))
    print(json.dumps(summary))


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    if sys.argv[1:2] == ["_scan"]:
        _scan_child(json.loads(sys.argv[2]))
        return 0
    ap = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=50)
    ap.add_argument("--weights", default=None)
    a = ap.parse_args()
    from bench.server_load import make_clips

    clips = make_clips(a.clips)
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp_:
        tmp = Path(tmp_)
        clips_dir = tmp / "clips"
        clips_dir.mkdir()
        for c in clips:  # the same files, in one folder for the scan
            (clips_dir / c.name).symlink_to(c)
        print(f"{a.clips} clips, {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
              f"load average before: {load_average()}", flush=True)
        results = {}
        for name, fn in (("cli", lambda: run_cli(clips, a.weights)),
                         ("scan-1", lambda: run_scan(clips_dir, 1, a.weights, tmp)),
                         ("scan-2", lambda: run_scan(clips_dir, 2, a.weights, tmp))):
            results[name] = fn()
            r = results[name]
            extra = (f", Ray start {r['ray_start_s']} s, {r['clips_per_s_after_start']} clips/s after it"
                     if "ray_start_s" in r else "")
            print(f"{name:7s} wall {r['wall_s']:6.1f} s  {r['clips_per_s']:.3f} clips/s{extra}; "
                  f"s/clip by stage: {r['stages']}; load average now: {load_average()}", flush=True)
    cli = {Path(k).name: v for k, v in results["cli"]["verdicts"].items()}
    for name in ("scan-1", "scan-2"):
        mine = {Path(k).name: v for k, v in results[name]["verdicts"].items()}
        same = sum(1 for k, v in cli.items() if mine.get(k) == v)
        verdicts = sum(1 for k, v in cli.items() if k in mine and mine[k][0] == v[0])
        diffs = [abs(mine[k][1] - v[1]) for k, v in cli.items() if k in mine and v[1] is not None and mine[k][1] is not None]
        print(f"{name}: {verdicts}/{len(cli)} verdicts as the CLI's; {same}/{len(cli)} also with the very same P(fake); "
              f"largest P(fake) difference {max(diffs, default=0):.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
