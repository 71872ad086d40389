"""Benchmark: our check pipeline vs the original project's prediction flow, on this machine.

    python -m bench.pipeline                 # the full run (tens of minutes on 2 cores)
    python -m bench.pipeline --quick         # a smoke run: one small clip, 2 runs
    python -m bench.pipeline --help

Every measurement runs in a fresh subprocess (`python -m bench.pipeline _run ...`) so that peak
memory is that configuration's own: `resource.getrusage(RUSAGE_SELF).ru_maxrss`, the process's
high-water resident set (it includes Python, torch and the loaded model). Within a subprocess the
frame counts run in increasing order, so the peak reported for 100 frames includes the 20-frame runs.
Stage times are the median of `--runs` runs after one warm-up run (the warm-up pays the face
detector's ~1 s set-up and torch's first-call costs).

The baseline ("orig") reproduces the original ResNeXt-LSTM project's prediction view: read every
frame of the video into a list with cv2.VideoCapture, run face_recognition's HOG detector with its
default 1x upsampling on full-resolution frames for the first N frames, crop the first face tightly
(the whole frame when none is found), torchvision Resize((112, 112)) + Normalize, then the legacy
ResNeXt50-LSTM(2048). Its weights are random: speed does not depend on weight values. Two of the
original's costs are left out, so the baseline is, if anything, faster than the original: it ran
face detection twice per frame (once for the preview crops it saved as PNGs, once in its dataset
class) and ran the model with autograd on; here detection runs once, nothing is written and the
model runs under torch.no_grad().

Generated clips: a real 16:9 talking-head clip from ../shared/data/real scaled to the target size,
looped to the target length, H.264 (libx264 preset veryfast, a keyframe every 2 s, like
streaming-site encodes), cached in ~/.cache/deepfake-check/bench/ (never in the repository).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("DEEPFAKE_CHECK_CACHE", Path.home() / ".cache" / "deepfake-check")) / "bench"
DATA = Path(os.environ.get("DEEPFAKE_CHECK_DATA", ROOT.parent / "shared" / "data"))
SOURCE_CLIP = "liveportrait-source-s18.mp4"  # 1280x720 talking head, 9.4 s
RESOLUTIONS = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
LENGTHS_S = (10, 30, 120)
GOP_S = 2.0
STAGES = ("decode", "detect", "crop", "model")


# --- clips ----------------------------------------------------------------------------------------
def make_clip(res: str, seconds: int, source: Path | None = None, gop_s: float = GOP_S) -> Path:
    """The source clip scaled to `res` and looped to `seconds`; cached."""
    source = source or DATA / "real" / SOURCE_CLIP
    w, h = RESOLUTIONS[res]
    out = CACHE / f"{source.stem}-{res}-{seconds}s-gop{gop_s:g}.mp4"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    return encode_clip(source, out, (w, h), seconds, crf=23, gop_s=gop_s)


def encode_clip(source: Path, out: Path, size: tuple[int, int], seconds: float, crf: int = 23,
                gop_s: float | None = None, skip: int = 0) -> Path:
    """`seconds` of `source` from frame `skip` on, scaled to size, looped when the source is
    shorter; H.264 (libx264 veryfast) at the source's frame rate, a keyframe every gop_s seconds
    when given. Written beside `out` and renamed, so a cut-short run leaves no half file."""
    import av

    w, h = size
    tmp = out.with_suffix(".tmp.mp4")
    with av.open(str(source)) as probe_:
        rate = Fraction(probe_.streams.video[0].average_rate or 25)
    total = int(round(seconds * float(rate)))
    n = j = 0
    with av.open(str(tmp), mode="w") as dst:
        st = dst.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"preset": "veryfast", "crf": str(crf)}
        if gop_s:
            st.options = {**st.options, "g": str(int(round(gop_s * float(rate))))}
        while n < total:
            with av.open(str(source)) as src:
                for frame in src.decode(video=0):
                    j += 1
                    if j <= skip:
                        continue
                    f = frame.reformat(width=w, height=h, format="yuv420p")
                    f.pts, f.time_base = n, Fraction(1, 1) / rate
                    for p in st.encode(f):
                        dst.mux(p)
                    n += 1
                    if n >= total:
                        break
        for p in st.encode():
            dst.mux(p)
    os.replace(tmp, out)
    return out


def probe(path: Path) -> dict:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        dur = float(s.duration * s.time_base) if s.duration else (c.duration or 0) / 1e6
        return {"width": s.codec_context.width, "height": s.codec_context.height, "duration": round(dur, 1),
                "fps": round(float(s.average_rate or 0), 2), "frames": s.frames}


# --- models -----------------------------------------------------------------------------------------
def stand_in_checkpoint(kind: str) -> Path:
    """Random-weight checkpoints with the shipped architectures (speed does not depend on weights)."""
    import torch

    from model.network import DeepfakeDetector
    from model.spec import LEGACY_SPEC, ModelSpec
    from model.weights import save_checkpoint

    spec = {"mnv2": ModelSpec(backbone="mobilenet_v2", hidden=256, name="stand-in-mobilenet_v2"),
            "legacy": LEGACY_SPEC}[kind]
    path = CACHE / f"random-{kind}.pt"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        save_checkpoint(path, DeepfakeDetector(spec), half=True)
    return path


def default_model_ref() -> tuple[str, str]:
    """(weights argument, description): the registered default, else a same-architecture stand-in."""
    from model import weights

    if weights.DEFAULT_MODEL is not None:
        return weights.DEFAULT_MODEL, f"{weights.DEFAULT_MODEL} (registered default)"
    return str(stand_in_checkpoint("mnv2")), "MobileNetV2-LSTM(256) random weights (default's architecture; no default registered)"


# --- one configuration, in its own process -----------------------------------------------------------
def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def original_flow(path: str, frames: int, net, transform) -> dict:
    """The original project's predict view (see the module docstring), timed by stage."""
    import cv2
    import face_recognition
    import torch

    t: dict[str, float] = {}
    t0 = time.perf_counter()
    cap = cv2.VideoCapture(path)
    video: list = []
    while cap.isOpened():
        ok, frame = cap.read()
        if not ok:
            break
        video.append(frame)
    cap.release()
    t1 = time.perf_counter()
    t["decode"] = (t1 - t0) * 1000
    first = video[:frames]
    locations = [face_recognition.face_locations(f) for f in first]  # hog, number_of_times_to_upsample=1
    t2 = time.perf_counter()
    t["detect"] = (t2 - t1) * 1000
    found = sum(1 for loc in locations if loc)
    result = {"frames_analysed": len(first), "frames_with_face": found, "decoded_frames": len(video)}
    if found == 0:  # the original stops here: "No faces detected"
        t["crop"] = t["model"] = 0.0
    else:
        crops = []
        for f, loc in zip(first, locations, strict=True):
            if loc:
                top, right, bottom, left = loc[0]
                f = f[top:bottom, left:right, :]
            crops.append(transform(f))
        x = torch.stack(crops).unsqueeze(0)
        t3 = time.perf_counter()
        t["crop"] = (t3 - t2) * 1000
        with torch.no_grad():
            _, logits = net(x)
            torch.softmax(logits, 1)
        t["model"] = (time.perf_counter() - t3) * 1000
    del video
    t["total"] = (time.perf_counter() - t0) * 1000
    result["timings_ms"] = t
    return result


def ours_on_first_frames(path: str, frames: int) -> int:
    """Frames with a face when our detector looks at the original flow's frames (the first N).

    The two pipelines analyse different frames (the first N vs N spread over the clip), so this
    compares the detectors themselves on identical input.
    """
    import cv2

    from model.faces import detect_faces
    from model.video import Frames

    cap = cv2.VideoCapture(path)
    first = []
    while len(first) < frames:
        ok, frame = cap.read()
        if not ok:
            break
        first.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return sum(1 for boxes in detect_faces(Frames(first, [0.0] * len(first))) if boxes)


def run_config(cfg: dict) -> list[dict]:
    """Run one pipeline on the clips in cfg for each frame count; returns one row per (clip, frames)."""
    import torch

    torch.set_num_threads(cfg.get("threads") or min(2, os.cpu_count() or 1))
    rows = []
    if cfg["pipeline"] == "orig":
        from torchvision import transforms

        from model.network import DeepfakeDetector
        from model.spec import LEGACY_SPEC

        torch.manual_seed(0)
        net = DeepfakeDetector(LEGACY_SPEC).eval()
        tf = transforms.Compose([transforms.ToPILImage(), transforms.Resize((112, 112)), transforms.ToTensor(),
                                 transforms.Normalize(LEGACY_SPEC.mean, LEGACY_SPEC.std)])
        run = lambda clip, n: original_flow(clip, n, net, tf)  # noqa: E731
    else:
        from model.check import check
        from model.weights import load_model

        loaded = load_model(cfg["weights"], device="cpu")

        def run(clip, n):
            v = check(clip, frames=n, model=loaded)
            if v.verdict == "ERROR":
                raise RuntimeError(f"{clip}: {v.error}")
            return {"frames_analysed": v.frames_analysed, "frames_with_face": v.frames_with_face,
                    "timings_ms": dict(v.timings_ms), "verdict": v.verdict}

    idle = _rss_mib()
    warmed = False
    for clip in cfg["clips"]:
        for n in sorted(cfg["frames"]):
            if not warmed or cfg.get("warmup_each", True):
                run(clip, n)
                warmed = True
            outs = [run(clip, n) for _ in range(cfg["runs"])]
            med = {k: statistics.median(o["timings_ms"].get(k, 0.0) for o in outs) for k in (*STAGES, "total")}
            rows.append({
                "clip": clip, "frames": n, "pipeline": cfg["pipeline"], "model": cfg.get("label"),
                "runs": cfg["runs"], "ms": {k: round(v, 1) for k, v in med.items()},
                "total_ms_all": [round(o["timings_ms"]["total"], 1) for o in outs],
                "frames_analysed": outs[-1]["frames_analysed"], "frames_with_face": outs[-1]["frames_with_face"],
                "peak_rss_mib": round(_peak_mib()), "idle_rss_mib": round(idle),
            })
            if cfg["pipeline"] == "orig":  # untimed: our detector on the very frames the original saw
                rows[-1]["ours_on_same_frames"] = ours_on_first_frames(clip, n)
    return rows


def run_isolated(cfg: dict, timeout: float = 3600) -> list[dict]:
    p = subprocess.run([sys.executable, "-m", "bench.pipeline", "_run", json.dumps(cfg)], cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({p.returncode}): {p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# --- the report ------------------------------------------------------------------------------------
def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    from model.faces import detect_threads

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {mem:.0f} GiB RAM, no GPU used; {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, torch {torch.__version__} "
            f"({min(2, os.cpu_count() or 1)} threads), face detection in {detect_threads()} threads")


def fmt_ms(x: float) -> str:
    return f"{x:,.0f}"


def stage_table(rows: list[dict]) -> list[str]:
    out = ["| clip | pipeline / model | frames | decode | detect | crop | model | **total ms** | frames/s | faces found | peak RSS MiB |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        m = r["ms"]
        fps = r["frames_analysed"] / (m["total"] / 1000) if m["total"] else 0
        out.append(f"| {r['name']} | {r['pipeline']} / {r['model']} | {r['frames']} | " + " | ".join(fmt_ms(m[k]) for k in STAGES)
                   + f" | **{fmt_ms(m['total'])}** | {fps:.1f} | {r['frames_with_face']}/{r['frames_analysed']} | {r['peak_rss_mib']} |")
    return out


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 360p 10 s only, 2 runs, no real clips")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per configuration, after one warm-up (default 5)")
    ap.add_argument("--real-runs", type=int, default=3, help="timed runs per shared real clip (default 3)")
    ap.add_argument("--resolutions", nargs="+", default=list(RESOLUTIONS), choices=list(RESOLUTIONS))
    ap.add_argument("--lengths", nargs="+", type=int, default=list(LENGTHS_S))
    ap.add_argument("--frames", nargs="+", type=int, default=[20, 100])
    ap.add_argument("--baseline-frames", nargs="+", type=int, default=[20],
                    help="frame counts for the original flow (default 20: at 100 it takes minutes per clip)")
    ap.add_argument("--baseline-max-gib", type=float, default=4.0,
                    help="skip the original flow on clips whose every decoded frame would need more RAM than this")
    ap.add_argument("--no-resnext", action="store_true", help="skip our pipeline with the ResNeXt50 (legacy) model")
    ap.add_argument("--no-real", action="store_true", help="skip the shared real clips")
    ap.add_argument("--real-clips", type=int, default=0, help="use only the first N shared real clips (0: all)")
    ap.add_argument("--no-generated", action="store_true", help="skip the generated clips (and the frames sweep)")
    ap.add_argument("--no-scaling", action="store_true", help="skip the frames-analysed sweep")
    ap.add_argument("--weights", help="model for 'ours' (default: the registered default, else a stand-in)")
    ap.add_argument("--out", type=Path, help="also write the Markdown report here")
    ap.add_argument("--json-out", type=Path, help="write every row as JSON here")
    a = ap.parse_args(argv)
    if a.quick:
        a.resolutions, a.lengths, a.runs, a.no_real, a.frames = ["360p"], [10], 2, True, [20]

    if not (DATA / "real" / SOURCE_CLIP).exists():
        print(f"shared data not found at {DATA} (set DEEPFAKE_CHECK_DATA)", file=sys.stderr)
        return 2
    started = datetime.now(UTC)
    say = lambda *x: print(*x, file=sys.stderr, flush=True)  # noqa: E731
    say(f"load average at start: {loadavg()}")
    weights, model_desc = (a.weights, a.weights) if a.weights else default_model_ref()
    legacy = str(stand_in_checkpoint("legacy"))

    clips = {}
    if a.no_generated:
        a.resolutions, a.no_scaling = [], True
    for res in a.resolutions:
        for s in a.lengths:
            say(f"clip {res} {s}s ...")
            clips[(res, s)] = make_clip(res, s)
    info = {k: probe(p) for k, p in clips.items()}

    rows: list[dict] = []
    skipped: list[str] = []
    for key, path in clips.items():
        name = f"{key[0]} {key[1]} s"
        say(f"{name}: ours/default")
        for r in run_isolated({"pipeline": "ours", "weights": weights, "label": "default", "clips": [str(path)],
                               "frames": a.frames, "runs": a.runs}):
            rows.append({**r, "name": name, "key": key})
        if not a.no_resnext:
            say(f"{name}: ours/resnext")
            for r in run_isolated({"pipeline": "ours", "weights": legacy, "label": "ResNeXt50-LSTM", "clips": [str(path)],
                                   "frames": a.frames, "runs": a.runs}):
                rows.append({**r, "name": name, "key": key})
        need = info[key]["frames"] * info[key]["width"] * info[key]["height"] * 3 / 2**30
        if need > a.baseline_max_gib:
            skipped.append(f"{name}: the original flow would hold {info[key]['frames']} decoded frames = {need:.1f} GiB "
                           f"in memory (limit --baseline-max-gib {a.baseline_max_gib:g})")
            continue
        say(f"{name}: orig")
        for r in run_isolated({"pipeline": "orig", "label": "ResNeXt50-LSTM", "clips": [str(path)],
                               "frames": a.baseline_frames, "runs": a.runs}):
            rows.append({**r, "name": name, "key": key})

    sweep_rows: list[dict] = []
    if not a.no_scaling and clips:
        key = ("720p", 30) if ("720p", 30) in clips else next(iter(clips))
        say(f"frames sweep on {key}")
        from model.video import FRAME_CHOICES

        sweep_rows = run_isolated({"pipeline": "ours", "weights": weights, "label": "default", "clips": [str(clips[key])],
                                   "frames": list(FRAME_CHOICES), "runs": a.runs})

    real_rows: list[dict] = []
    if not a.no_real:
        real = sorted((DATA / "real").glob("*.mp4"))
        real = real[:a.real_clips] if a.real_clips else real
        say(f"{len(real)} real clips: ours/default")
        ours = run_isolated({"pipeline": "ours", "weights": weights, "label": "default", "clips": list(map(str, real)),
                             "frames": [20], "runs": a.real_runs, "warmup_each": False})
        say(f"{len(real)} real clips: orig")
        orig = run_isolated({"pipeline": "orig", "label": "ResNeXt50-LSTM", "clips": list(map(str, real)),
                             "frames": [20], "runs": a.real_runs, "warmup_each": False})
        real_rows = list(zip(ours, orig, strict=True))

    finished = datetime.now(UTC)
    lines = report(a, rows, sweep_rows, real_rows, skipped, info, clips, model_desc, started, finished)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)
    if a.json_out:
        a.json_out.write_text(json.dumps({"rows": rows, "sweep": sweep_rows, "real": real_rows}, indent=1, default=str))
    return 0


def generated_tables(a, rows, skipped, info, clips) -> list[str]:
    L: list[str] = []
    L.append("Clips: " + "; ".join(f"{k[0]} {k[1]} s = {v['width']}x{v['height']} {v['fps']} fps, {v['frames']} frames"
                                   for k, v in info.items()) + ".")
    L += ["", "#### Ours vs the original flow (end to end, per clip)", ""]
    L += ["| clip | frames | original ms | ours (default) ms | **ratio** | ours (ResNeXt50) ms | ratio | faces found: original / ours |",
          "|---|---:|---:|---:|---:|---:|---:|---|"]
    by = {(r["name"], r["pipeline"], r["model"], r["frames"]): r for r in rows}
    for key in clips:
        name = f"{key[0]} {key[1]} s"
        for n in sorted(set(a.frames) | set(a.baseline_frames)):
            o = by.get((name, "orig", "ResNeXt50-LSTM", n))
            d = by.get((name, "ours", "default", n))
            x = by.get((name, "ours", "ResNeXt50-LSTM", n))
            if d is None:
                continue
            ot = o["ms"]["total"] if o else None
            orig_cell = fmt_ms(ot) if ot else ("skipped" if n in a.baseline_frames else "not run")
            ratio = f"**{ot / d['ms']['total']:.1f}×**" if ot else "–"
            x_cell = fmt_ms(x["ms"]["total"]) if x else "–"
            x_ratio = f"{ot / x['ms']['total']:.1f}×" if (ot and x) else "–"
            faces = (f"{o['frames_with_face']}/{o['frames_analysed']}" if o else "–") + f" / {d['frames_with_face']}/{d['frames_analysed']}"
            L.append(f"| {name} | {n} | {orig_cell} | {fmt_ms(d['ms']['total'])} | {ratio} | {x_cell} | {x_ratio} | {faces} |")
    if skipped:
        L += ["", "Original flow skipped: " + "; ".join(skipped) + "."]
    L += ["", "#### Per stage (ms)", ""] + stage_table(rows)
    return L


def report(a, rows, sweep_rows, real_rows, skipped, info, clips, model_desc, started, finished) -> list[str]:
    cmd = "python -m bench.pipeline " + " ".join(sys.argv[1:])
    L = [f"Measured {started:%Y-%m-%d %H:%M}–{finished:%H:%M} UTC on: {machine()}.",
         f"Load average at the end: {loadavg()}. Command: `{cmd.strip()}`.",
         f"Default model: {model_desc}. ResNeXt50: the legacy ResNeXt50-LSTM(2048) architecture with random weights.",
         f"Each figure: median of {a.runs} runs after a warm-up (shared real clips: {a.real_runs} runs); "
         "peak RSS = ru_maxrss of a fresh process per configuration.", ""]
    by = {(r["name"], r["pipeline"], r["model"], r["frames"]): r for r in rows}
    if rows:
        L += generated_tables(a, rows, skipped, info, clips)
    if sweep_rows:
        L += ["", f"#### Cost vs frames analysed ({Path(sweep_rows[0]['clip']).stem}, ours, default model)", "",
              "| frames | decode | detect | crop | model | total ms | ms per frame |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in sweep_rows:
            m = r["ms"]
            L.append(f"| {r['frames']} | " + " | ".join(fmt_ms(m[k]) for k in STAGES) + f" | {fmt_ms(m['total'])} | {m['total'] / r['frames']:.0f} |")
        xs = [r["frames"] for r in sweep_rows]
        ys = [r["ms"]["total"] for r in sweep_rows]
        if len(xs) > 2:
            slope, icpt = statistics.linear_regression(xs, ys)
            r2 = statistics.correlation(xs, ys) ** 2
            L += ["", f"Least-squares fit: total ≈ {icpt:,.0f} ms + {slope:,.1f} ms × frames (R² = {r2:.3f})."]
    lengths = sorted({k[1] for k in clips})
    if len(lengths) > 1:
        L += ["", "#### Cost vs clip length (ours, default model; seconds per check)", "",
              "| resolution | frames | " + " | ".join(f"{s} s clip" for s in lengths) + " |",
              "|---|---:|" + "---:|" * len(lengths)]
        for res in sorted({k[0] for k in clips}, key=lambda r: RESOLUTIONS[r][1]):
            for n in a.frames:
                cells = []
                for s in lengths:
                    r = by.get((f"{res} {s} s", "ours", "default", n))
                    cells.append(f"{r['ms']['total'] / 1000:.2f}" if r else "–")
                L.append(f"| {res} | {n} | " + " | ".join(cells) + " |")
    if real_rows:
        L += ["", f"#### Shared real clips (../shared/data/real), 20 frames, median of {a.real_runs} runs", "",
              "| clip | size | original ms | ours ms | ratio | faces found: original / ours | same frames (the original's): original / ours |",
              "|---|---|---:|---:|---:|---|---|"]
        ratios = []
        for ours, orig in real_rows:
            p = probe(Path(ours["clip"]))
            ratio = orig["ms"]["total"] / ours["ms"]["total"]
            ratios.append(ratio)
            L.append(f"| {Path(ours['clip']).stem} | {p['width']}x{p['height']}, {p['duration']} s | {fmt_ms(orig['ms']['total'])} | "
                     f"{fmt_ms(ours['ms']['total'])} | {ratio:.1f}× | {orig['frames_with_face']}/{orig['frames_analysed']} / "
                     f"{ours['frames_with_face']}/{ours['frames_analysed']} | "
                     f"{orig['frames_with_face']}/{orig['frames_analysed']} / {orig.get('ours_on_same_frames', '–')}/{orig['frames_analysed']} |")
        fo = sum(o["frames_with_face"] for _, o in real_rows) / max(1, sum(o["frames_analysed"] for _, o in real_rows))
        fu = sum(u["frames_with_face"] for u, _ in real_rows) / max(1, sum(u["frames_analysed"] for u, _ in real_rows))
        fs = sum(o.get("ours_on_same_frames", 0) for _, o in real_rows) / max(1, sum(o["frames_analysed"] for _, o in real_rows))
        L += ["", f"Median ratio over the real clips: {statistics.median(ratios):.1f}× (min {min(ratios):.1f}×, max {max(ratios):.1f}×). "
              f"Face-found rate: original {fo:.0%}, ours {fu:.0%} of analysed frames; on the original's own frames ours finds {fs:.0%}."]
    return L


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "_run":
        print(json.dumps(run_config(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
