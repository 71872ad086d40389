"""Evaluate a model: video-level ROC AUC, accuracy at the threshold, confusion matrix, per source.

Two ways in:
    python -m model.training.evaluate --weights W --source meso-val=CACHE,grouped,split=0/0.5/0.5 --split test --out DIR
        scores prepared face-crop caches (the same splits train.py used);
    python -m model.training.evaluate --weights W --real-dir DIR --fake-dir DIR --out DIR
        runs the full pipeline (`model.check`) on every video file, as a user would.
Writes DIR/metrics.json, DIR/roc.png and DIR/confusion.png.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.network import DeepfakeDetector, preprocess
from model.spec import FAKE
from model.verdict import DEFAULT_THRESHOLD

from .data import Augment, Clip, augment_clip, clips_from_cache, make_sample

log = logging.getLogger(__name__)


# ---- metrics (hand-checked in tests) ---------------------------------------------------------
def roc_auc(labels: list[int] | np.ndarray, scores: list[float] | np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random fake > score of a random real), ties count half."""
    y = np.asarray(labels, int)
    s = np.asarray(scores, float)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) over all thresholds, from (0,0) to (1,1)."""
    y = np.asarray(labels, int)
    s = np.asarray(scores, float)
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    distinct = np.r_[np.where(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    p, n = max(1, y.sum()), max(1, len(y) - y.sum())
    return np.r_[0.0, fps / n], np.r_[0.0, tps / p]


def confusion(labels, scores, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Counts with FAKE as the positive class (score = P(fake))."""
    y = np.asarray(labels, int)
    pred = (np.asarray(scores, float) >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    total = max(1, len(y))
    return {"tp": tp, "tn": tn, "fp": fp, "fn": fn, "accuracy": (tp + tn) / total,
            "fake_recall": tp / max(1, tp + fn), "real_recall": tn / max(1, tn + fp)}


def summarise(labels, scores, threshold: float = DEFAULT_THRESHOLD) -> dict:
    return {"n": len(labels), "n_fake": int(np.sum(labels)), "n_real": int(len(labels) - np.sum(labels)),
            "auc": roc_auc(labels, scores), **confusion(labels, scores, threshold)}


# ---- scoring ---------------------------------------------------------------------------------------
@torch.inference_mode()
def score_batch(net: DeepfakeDetector, frames: np.ndarray) -> np.ndarray:
    x = preprocess(frames, net.spec, next(net.parameters()).device)
    _, logits = net(x)
    return torch.softmax(logits.float(), dim=1)[:, FAKE].cpu().numpy()


def even_frames(clip: Clip, t: int) -> np.ndarray:
    """Up to t frames evenly spaced over the clip, as inference samples them."""
    n = len(clip.frames)
    idx = np.linspace(0, n - 1, num=min(t, n)).round().astype(int)
    return clip.frames[idx]


def score_video_clips(net, clips: list[Clip], t: int = 20) -> np.ndarray:
    """P(fake) per clip from up to t evenly spaced frames (one sequence per clip, like inference)."""
    return np.array([float(score_batch(net, even_frames(c, t)[None])[0]) for c in clips])


@dataclass
class SbiPairs:
    """A fixed validation set of self-blended fakes: each real clip and its blended twin."""

    frames: np.ndarray  # (2N, T, S, S, 3)
    labels: np.ndarray


def sbi_pairs(real_clips: list[Clip], t: int = 8, seed: int = 1234, limit: int = 400) -> SbiPairs:
    rng = np.random.default_rng(seed)
    fixed = Augment(jpeg=(75, 75), p_jpeg=1.0, p_downscale=0.0, jitter=0.0, p_flip=0.0, shift_px=2)
    frames, labels = [], []
    for clip in real_clips[:limit]:
        for blend in (False, True):
            x, y = make_sample(clip, t, rng, None, blend)
            frames.append(np.stack(augment_clip(list(x), rng, fixed)))
            labels.append(y)
    return SbiPairs(np.stack(frames), np.asarray(labels))


def score_array(net, frames: np.ndarray, batch: int = 16) -> np.ndarray:
    return np.concatenate([score_batch(net, frames[i:i + batch]) for i in range(0, len(frames), batch)])


# ---- sources ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    grouped: bool
    fractions: tuple[float, float, float]


def parse_source(text: str) -> Source:
    """NAME=DIR[,grouped][,split=TRAIN/VAL/TEST]"""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=DIR[,grouped][,split=a/b/c]")
    name, rest = text.split("=", 1)
    parts = rest.split(",")
    grouped, fractions = False, (0.8, 0.1, 0.1)
    for opt in parts[1:]:
        if opt == "grouped":
            grouped = True
        elif opt.startswith("split="):
            fr = tuple(float(v) for v in opt[6:].split("/"))
            if len(fr) != 3 or abs(sum(fr) - 1) > 1e-6:
                raise argparse.ArgumentTypeError(f"{opt}: three fractions that sum to 1")
            fractions = fr
        else:
            raise argparse.ArgumentTypeError(f"unknown source option {opt!r}")
    return Source(name, Path(parts[0]).expanduser(), grouped, fractions)


def load_sources(sources: list[Source]) -> dict[str, dict[str, list[Clip]]]:
    from .prepare import load_cache

    return {s.name: clips_from_cache(load_cache(s.path), s.name, s.fractions, s.grouped) for s in sources}


def evaluate_split(net, splits: dict[str, dict[str, list[Clip]]], split: str, t: int = 20,
                   sbi_limit: int = 400, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Per-source metrics on one split: labelled clips, and self-blended pairs of the real clips."""
    out: dict = {}
    for name, by_split in splits.items():
        clips = by_split[split]
        labels = [c.label for c in clips]
        if clips and 0 < sum(labels) < len(labels):
            scores = score_video_clips(net, clips, t)
            out[name] = summarise(labels, scores, threshold)
            out[name]["scores"] = {"labels": labels, "p_fake": [round(float(s), 5) for s in scores]}
        reals = [c for c in clips if c.label == 0 and len(c.frames) == 1]
        if reals:
            pairs = sbi_pairs(reals, limit=sbi_limit)
            scores = score_array(net, pairs.frames)
            out[f"{name}/self-blended"] = summarise(pairs.labels, scores, threshold)
            out[f"{name}/self-blended"]["scores"] = {"labels": pairs.labels.tolist(), "p_fake": [round(float(x), 5) for x in scores]}
    return out


def evaluate_files(weights: str | None, real_dir: Path | None, fake_dir: Path | None, frames: int = 20) -> dict:
    """The full pipeline on video files; NO_FACE/ERROR files are counted, not scored."""
    from model import check, load_model

    loaded = load_model(weights)
    out: dict = {"model": loaded.name}
    labels, scores, per_file = [], [], []
    for label, folder in ((0, real_dir), (1, fake_dir)):
        if folder is None:
            continue
        for f in sorted(Path(folder).glob("*")):
            if not f.is_file():
                continue
            v = check(f, frames=frames, model=loaded)
            per_file.append({"file": f.name, "label": "FAKE" if label else "REAL", "verdict": v.verdict, "p_fake": v.p_fake})
            if v.p_fake is not None:
                labels.append(label)
                scores.append(v.p_fake)
    out["files"] = per_file
    verdicts = [p["verdict"] for p in per_file]
    out["verdict_counts"] = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    for name in ("real", "fake"):
        sub = [p for p in per_file if p["label"] == name.upper()]
        if sub:
            called = sum(1 for p in sub if p["verdict"] == name.upper())
            out[f"fraction_called_{name}"] = called / len(sub)
    if labels and 0 < sum(labels) < len(labels):
        out["overall"] = summarise(labels, scores)
        out["overall"]["scores"] = {"labels": labels, "p_fake": scores}
    return out


# ---- plots -----------------------------------------------------------------------------------------
def plot(metrics: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    scored = {k: v for k, v in metrics.items() if isinstance(v, dict) and "scores" in v}
    if isinstance(metrics.get("files"), dict) and "scores" in metrics["files"].get("overall", {}):
        scored["video files"] = metrics["files"]["overall"]
    if not scored:
        return written
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, m in scored.items():
        fpr, tpr = roc_curve(m["scores"]["labels"], m["scores"]["p_fake"])
        ax.plot(fpr, tpr, label=f"{name} (AUC {m['auc']:.3f}, n={m['n']})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false-positive rate (real called fake)", ylabel="true-positive rate (fake caught)", title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "roc.png", dpi=110)
    written.append(out_dir / "roc.png")
    plt.close(fig)

    fig, axes = plt.subplots(1, len(scored), figsize=(3.4 * len(scored), 3.4), squeeze=False)
    for ax, (name, m) in zip(axes[0], scored.items(), strict=True):
        cm = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="black", fontsize=12)
        ax.set_xticks([0, 1], ["pred REAL", "pred FAKE"])
        ax.set_yticks([0, 1], ["REAL", "FAKE"])
        ax.set_title(f"{name}\nacc {m['accuracy']:.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "confusion.png", dpi=110)
    written.append(out_dir / "confusion.png")
    plt.close(fig)
    return written


def main(argv: list[str] | None = None) -> int:
    from model.weights import load_model

    ap = argparse.ArgumentParser(prog="python -m model.training.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", help="checkpoint or registered model (default: the default model)")
    ap.add_argument("--source", action="append", type=parse_source, default=[], help="NAME=CACHE[,grouped][,split=a/b/c]")
    ap.add_argument("--split", default="test", choices=["train", "val", "test"])
    ap.add_argument("--real-dir", type=Path, help="folder of real videos (full pipeline)")
    ap.add_argument("--fake-dir", type=Path, help="folder of fake videos (full pipeline)")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.source and not (args.real_dir or args.fake_dir):
        ap.error("give --source caches or --real-dir/--fake-dir")
    args.out.mkdir(parents=True, exist_ok=True)
    metrics: dict = {}
    if args.source:
        loaded = load_model(args.weights, device="cpu")
        metrics.update(evaluate_split(loaded.net, load_sources(args.source), args.split, args.frames))
        metrics["model"] = loaded.name
    if args.real_dir or args.fake_dir:
        metrics["files"] = evaluate_files(args.weights, args.real_dir, args.fake_dir, args.frames)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    plot(metrics, args.out)
    brief = {k: {kk: v[kk] for kk in ("auc", "accuracy", "n") if kk in v} for k, v in metrics.items() if isinstance(v, dict) and "auc" in v}
    print(json.dumps(brief, indent=1))
    if "files" in metrics:
        f = metrics["files"]
        brief = {k: f[k] for k in f if k.startswith("fraction") or k == "verdict_counts"}
        if "overall" in f:
            brief["overall"] = {k: v for k, v in f["overall"].items() if k != "scores"}
        print(json.dumps(brief, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
