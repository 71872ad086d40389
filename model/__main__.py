"""Command line: `python -m model check PATH... [--frames N] [--weights FILE] [--json] [--heatmap OUT.png]`."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import FRAME_CHOICES, CheckpointError, TrustAnchorsError, available_models, check, load_model, load_trust_anchors
from .faces import DETECTORS
from .provenance import describe

EXIT_OK, EXIT_INPUT = 0, 2


def _line(v) -> str:
    credentials = describe(v.provenance)
    return _verdict_line(v) + (f"; {credentials}" if credentials else "")


def _verdict_line(v) -> str:
    name = Path(v.file).name
    if v.verdict in ("NO_FACE", "ERROR"):
        return f"{name}: {v.verdict} - {v.error}"
    if v.reason:  # the check could not judge: no score to show
        return f"{name}: UNCERTAIN - can't judge ({v.reason}): {v.reason_text}"
    faces = ", ".join(f"{f.p_fake:.2f}" for f in v.faces)
    if v.faces_not_scored:
        faces += f"; {len(v.faces_not_scored)} more not scored"
    t = v.timings_ms
    stages = " ".join(f"{k} {t[k]:.0f}" for k in ("decode", "detect", "crop", "model") if k in t)
    return (
        f"{name}: {v.verdict} (confidence {v.confidence:.0%}, P(fake) {v.p_fake:.3f}"
        + (f" from the {v.signal} head [" + ", ".join(f"{k} {q:.2f}" for k, q in v.signals.items()) + "]" if v.signal else "")
        + "; "
        f"{len(v.faces)} face(s) [{faces}]; {v.frames_with_face}/{v.frames_analysed} frames with a face; "
        f"model {v.model}; ms: {stages}, total {t.get('total', 0):.0f})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model", description="Check videos or images for face manipulation.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="check video or image files")
    c.add_argument("paths", nargs="+", metavar="PATH")
    c.add_argument("--frames", type=int, default=20, choices=FRAME_CHOICES, help="frames sampled over the clip")
    c.add_argument("--weights", help=f"checkpoint file or registered model ({', '.join(available_models()) or 'none'})")
    c.add_argument("--json", action="store_true", help="one JSON object per line")
    c.add_argument("--heatmap", metavar="OUT.png", help="write the CAM heatmap of the most suspicious face "
                   "(with several files: OUT-<n>.png)")
    c.add_argument("--threshold", type=float, help="P(fake) from which a video is FAKE (default: the model's calibration)")
    c.add_argument("--uncertain-band", type=float, help="half-width of the UNCERTAIN band around the threshold "
                   "(default: the model's calibration)")
    c.add_argument("--detector", choices=DETECTORS, help="face detector (default: the one the model was trained with)")
    c.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    c.add_argument("--c2pa-trust-anchors", metavar="FILE.pem",
                   help="CA certificates whose Content Credentials signers count as trusted (e.g. the C2PA trust "
                        "list); without it, intact credentials are reported as untrusted-signer")
    sub.add_parser("models", help="list registered models")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.cmd == "models":
        for name in available_models():
            print(name)
        return EXIT_OK

    try:
        anchors = load_trust_anchors(args.c2pa_trust_anchors) if args.c2pa_trust_anchors else None
        loaded = load_model(args.weights, device=args.device)
    except (CheckpointError, TrustAnchorsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT

    paths = args.paths
    progress = None
    if len(paths) > 1:
        from tqdm import tqdm

        progress = tqdm(total=len(paths), unit="file", file=sys.stderr, disable=None)
    status = EXIT_OK
    for n, path in enumerate(paths):
        v = check(path, frames=args.frames, model=loaded, threshold=args.threshold,
                  uncertain_band=args.uncertain_band, want_heatmap=bool(args.heatmap), detector=args.detector,
                  trust_anchors=anchors)
        if v.verdict == "ERROR":
            status = EXIT_INPUT
        if args.heatmap and v.heatmap_png:
            out = Path(args.heatmap)
            if len(paths) > 1:
                out = out.with_name(f"{out.stem}-{n}{out.suffix}")
            out.write_bytes(v.heatmap_png)
        text = json.dumps(v.to_dict()) if args.json else _line(v)
        if progress is not None:
            progress.write(text, file=sys.stdout)
            progress.update()
        else:
            print(text, flush=True)
    if progress is not None:
        progress.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
