"""Evaluate a model on prepared caches: ROC AUC, accuracy at the threshold, confusion matrix, per kind.

    python -m model.training.evaluate --weights W --source video=CACHE ... --split cal --out DIR

Scores the split's clips from their caches (fast: no decoding or detection), the way training's
epoch-end evaluation does; writes DIR/metrics.json, DIR/roc.png and DIR/confusion.png. The product's
numbers come from the full pipeline instead: `python -m model.training.quality`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from model.network import autocast_for, preprocess
from model.spec import FAKE
from model.verdict import DEFAULT_THRESHOLD

from . import TrainingError
from .blend import TRAINED_SYNTHESES
from .data import Augment, Clip, by_split, load_clips, make_sample, parse_source, resize_crops

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
def even_frames(clip: Clip, t: int) -> np.ndarray:
    """Up to t frames evenly spaced over the clip, as inference samples them."""
    n = len(clip.frames)
    idx = np.linspace(0, n - 1, num=min(t, n)).round().astype(int)
    return clip.frames[idx]


# The fixed encoding of evaluation fakes and their twins: a typical re-uploaded clip.
EVAL_AUGMENT = Augment(p_downscale=0.0, p_reencode=1.0, crf=(23, 23), jitter=0.0, p_flip=0.0)


def synth_pairs(reals: list[Clip], kind: str, size: int, t: int = 8, seed: int = 1234,
                limit: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A fixed set of fakes of one kind made from real clips, each beside its real twin; both
    encoded the same way. (frames (2N, t, size, size, 3), labels)."""
    rng = np.random.default_rng(seed)
    frames, labels = [], []
    for clip in [c for c in reals if len(c.landmarks)][:limit]:
        state = rng.bit_generator.state  # the twin takes the same frames
        x, y = make_sample(clip, t, rng, EVAL_AUGMENT, None, size)
        rng.bit_generator.state = state
        xf, yf = make_sample(clip, t, rng, EVAL_AUGMENT, kind, size)
        frames += [x, xf]
        labels += [y, yf]
    return np.stack(frames), np.asarray(labels)


def _summary(labels, scores, threshold: float) -> dict:
    out = summarise(labels, scores, threshold)
    out["scores"] = {"labels": [int(v) for v in labels], "p_fake": [round(float(v), 5) for v in scores]}
    return out


@dataclass
class EvalSet:
    """A split's evaluation data, made once (fixed seeds) and scored after every epoch:
    named groups of sequences with labels, (frames (N, T, S, S, 3), labels)."""

    groups: dict[str, tuple[np.ndarray, np.ndarray]]
    n_real_videos: int = 0
    # per group, a key per row for rows that recur in other groups (the real videos are the reference of
    # every kind of fake): each is scored once per evaluation, not once per group
    keys: dict[str, list[int | None]] = field(default_factory=dict)


def build_eval_set(clips: list[Clip], size: int, synth: tuple[str, ...] = TRAINED_SYNTHESES, t: int = 20,
                   synth_limit: int = 120) -> EvalSet:
    """- `video/face-swap`, `video/talking-head` and `video/<method>`: each kind of labelled fake video
      against all the split's real videos (t frames spread over each clip, as inference takes them);
    - `synth/<kind>`: fakes made from the split's real clips (videos and stills alike) against those reals;
    - `stills/<source>`: labelled stills grouped by video (meso-val)."""
    seq = {id(c): np.stack(resize_crops(list(even_frames(c, t)), size)) for c in clips}
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    keys: dict[str, list[int | None]] = {}

    def pack(items: list[Clip], labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
        # clips shorter than t frames are padded by repeating their last frame, so all stack
        arrs = [seq[id(c)] for c in items]
        arrs = [np.concatenate([a, np.repeat(a[-1:], t - len(a), 0)]) if len(a) < t else a for a in arrs]
        return np.stack(arrs), np.asarray(labels)

    videos = [c for c in clips if len(c.frames) > 1 and c.source != "meso-val"]
    reals = [c for c in videos if c.label == 0]
    if reals:
        by_kind: dict[str, list[Clip]] = {}
        for c in (c for c in videos if c.label == 1):
            family = "talking-head" if c.source == "fake-dev" else (c.family or c.source)
            by_kind.setdefault(f"video/{family}", []).append(c)
            by_kind.setdefault(f"video/{'Audio2Head' if c.source == 'fake-dev' else c.kind}", []).append(c)
        for name, fakes in sorted(by_kind.items()):
            groups[name] = pack(reals + fakes, [0] * len(reals) + [1] * len(fakes))
            keys[name] = [id(c) for c in reals + fakes]
    blend_reals = [c for c in clips if c.label == 0 and len(c.landmarks)]
    if blend_reals:  # as many video twins as still twins where there are both, so neither dominates
        vids = [c for c in blend_reals if len(c.frames) > 1][: synth_limit // 2]
        stills = [c for c in blend_reals if len(c.frames) == 1][: synth_limit - len(vids)]
        for kind in synth:
            groups[f"synth/{kind}"] = synth_pairs(vids + stills, kind, size, limit=synth_limit)
    meso = [c for c in clips if c.source == "meso-val"]
    if meso and 0 < sum(c.label for c in meso) < len(meso):
        groups["stills/meso-val"] = pack(meso, [c.label for c in meso])
    return EvalSet(groups, len(reals), keys)


@torch.inference_mode()
def evaluate_set(net, es: EvalSet, threshold: float = DEFAULT_THRESHOLD, batch: int = 8) -> dict[str, dict]:
    """Metrics per group and per head: {"model": ...} (the network's own mode), with a per-frame
    head also {"lstm": ..., "frames": ...}, with a generation branch also {"generation": ...}. The
    shared CNN runs once for all heads."""
    device = next(net.parameters()).device
    two = net.spec.frame_head and net.spec.mode == "temporal"  # an LSTM and a per-frame head beside it
    gen = bool(getattr(net.spec, "gen_branch", 0))  # a generation head beside the blend head ("model")
    heads = ["model"] + (["lstm", "frames"] if two else []) + (["generation"] if gen else [])
    out: dict[str, dict] = {h: {} for h in heads}
    seen: dict[int, dict[str, float]] = {}  # row key -> score per head
    for name, (frames, labels) in es.groups.items():
        keys = es.keys.get(name) or [None] * len(frames)
        todo = [i for i, k in enumerate(keys) if k is None or k not in seen]
        row_scores: dict[int, dict[str, float]] = {}
        for j in range(0, len(todo), batch):
            idx = todo[j:j + batch]
            with autocast_for(net.spec, device):
                if gen:
                    both = net.heads(preprocess(frames[idx], net.spec, device))
                    logits = {"model": both["blend"], "generation": both["generation"]}
                else:
                    feats = net.features(preprocess(frames[idx], net.spec, device))
                    logits = {"model": net.head(feats)}
            if two:
                logits["lstm"], logits["frames"] = net.lstm_logits(feats), net.frame_logits(feats).mean(dim=1)
            probs = {h: torch.softmax(logits[h].float(), dim=1)[:, FAKE].cpu().numpy() for h in heads}
            for n, i in enumerate(idx):
                row_scores[i] = {h: float(probs[h][n]) for h in heads}
                if keys[i] is not None:
                    seen[keys[i]] = row_scores[i]
        for i, k in enumerate(keys):
            if i not in row_scores:
                row_scores[i] = seen[k]  # type: ignore[index]
        for h in heads:
            out[h][name] = _summary(labels, np.array([row_scores[i][h] for i in range(len(frames))]), threshold)
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
    ap.add_argument("--source", action="append", type=parse_source, required=True, help="NAME=CACHE[,grouped][,split=a/b/c]")
    ap.add_argument("--split", default="cal", choices=["train", "cal", "test"])
    ap.add_argument("--head", choices=["lstm", "frames"], help="score by one head of a two-headed model")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    loaded = load_model(args.weights, device="cpu")
    try:
        clips, _ = load_clips(args.source)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    es = build_eval_set(by_split(clips)[args.split], loaded.spec.crop.size, t=args.frames)
    metrics = evaluate_set(loaded.net, es, loaded.threshold)[args.head or "model"]
    metrics["model"] = loaded.name
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    plot(metrics, args.out)
    brief = {k: {kk: round(v[kk], 4) for kk in ("auc", "accuracy", "n") if kk in v}
             for k, v in metrics.items() if isinstance(v, dict) and "auc" in v}
    print(json.dumps(brief, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
