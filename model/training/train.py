"""Train a detector on prepared face-crop caches.

    python -m model.training.train --source NAME=CACHE[,grouped][,split=a/b/c] ... --out runs/NAME [--recipe seed|cpu-small]

Recipes (flags given explicitly override them):
- `seed`: the original project's recipe for the full model -- ResNeXt50 + LSTM(2048), Adam lr 1e-5,
  weight decay 1e-3, cross-entropy, batch 4 clips, 20 epochs, sequence lengths 10-100.
- `cpu-small`: the shipped default model's recipe -- MobileNetV2 (ImageNet start from the TFLite file)
  + LSTM(256), AdamW, short clips, a few epochs on a 2-core CPU.

What every run does: splits by group (identity / source clip; never frames of one group on two
sides), balanced batches of real clips and fakes where half the fakes are self-blended from real
training clips in the same batch, per-clip augmentation (JPEG 40-100, downscale, colour jitter,
flip), early stopping on the validation AUC, a checkpoint every epoch (`last.pt`, resumable with
--resume) and the best one (`best.pt`), fixed seeds, tqdm progress and one JSON line per epoch
in `log.jsonl`.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.network import DeepfakeDetector, preprocess
from model.spec import FAKE, REAL, CropSpec, ModelSpec
from model.weights import save_checkpoint

from . import TrainingError
from .data import Augment, Clip, make_sample
from .evaluate import evaluate_split, load_sources, parse_source

log = logging.getLogger(__name__)

RECIPES = {
    "seed": dict(backbone="resnext50_32x4d", hidden=2048, init="scratch", lr=1e-5, lr_backbone=1e-5,
                 weight_decay=1e-3, clips_per_batch=4, frames_per_batch=0, seq_lengths="10,20,40,60,80,100",
                 epochs=20, steps_per_epoch=0, patience=5, sbi_fraction=0.5, freeze_bn=False),
    "cpu-small": dict(backbone="mobilenet_v2", hidden=256, init="tflite", lr=1e-3, lr_backbone=2e-4,
                      weight_decay=1e-4, clips_per_batch=0, frames_per_batch=48, seq_lengths="2,4,8",
                      epochs=6, steps_per_epoch=250, patience=2, sbi_fraction=0.6, freeze_bn=True),
}
TFLITE_DEFAULT = os.environ.get("DEEPFAKE_CHECK_TFLITE", str(Path(__file__).resolve().parents[3] / "shared/data/weights/mobilenet_v2_1.0_224_quant.tflite"))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(spec: ModelSpec, init: str, tflite_path: str) -> DeepfakeDetector:
    net = DeepfakeDetector(spec)
    if init == "tflite":
        if spec.backbone != "mobilenet_v2":
            raise TrainingError("--init tflite needs --backbone mobilenet_v2")
        from .pretrained import mobilenet_v2_from_tflite

        net.model.load_state_dict(mobilenet_v2_from_tflite(tflite_path).features.state_dict())
    elif init != "scratch":
        raise TrainingError(f"unknown --init {init!r} (tflite or scratch)")
    return net


def labels_to_targets(labels: list[int]) -> torch.Tensor:
    """Data labels (1 = fake) -> network class indices (FAKE = 0, REAL = 1)."""
    return torch.tensor([FAKE if y == 1 else REAL for y in labels])


class BatchSampler:
    """Balanced batches: half real clips, half fakes (labelled fakes and self-blended reals).

    A self-blended fake is made from a real clip that is also in the batch, so the network sees
    the same face both ways and can only learn from the blend.
    """

    def __init__(self, reals: list[Clip], fakes: list[Clip], sbi_fraction: float, aug: Augment, rng: np.random.Generator):
        if not reals:
            raise TrainingError("no real training clips")
        self.reals, self.fakes, self.sbi, self.aug, self.rng = reals, fakes, sbi_fraction, aug, rng
        self.blendable = [c for c in reals if len(c.landmarks)]

    def batch(self, n_clips: int, t: int) -> tuple[np.ndarray, list[int]]:
        n_fake = n_clips // 2
        n_real = n_clips - n_fake
        n_sbi = n_fake if not self.fakes else int(round(n_fake * self.sbi))
        real_idx = self.rng.integers(0, len(self.reals), n_real)
        items = [(self.reals[i], False) for i in real_idx]
        # blend the first n_sbi reals of this batch (pairs), the rest of the fakes are labelled ones
        items += [(self.reals[i], True) for i in real_idx[:n_sbi]]
        if n_fake - n_sbi > 0:
            items += [(self.fakes[i], False) for i in self.rng.integers(0, len(self.fakes), n_fake - n_sbi)]
        frames, labels = [], []
        for clip, blend in items:
            x, y = make_sample(clip, t, self.rng, self.aug, blend)
            frames.append(x)
            labels.append(y)
        return np.stack(frames), labels


def lr_factor(step: int, total: int, warmup: float = 0.05) -> float:
    """Linear warm-up then cosine decay to 5%; past `total` (training extended on resume) stays at 5%."""
    w = max(1, int(total * warmup))
    if step < w:
        return (step + 1) / w
    progress = min(1.0, (step - w) / max(1, total - w))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(net: DeepfakeDetector, lr: float, lr_backbone: float, wd: float) -> list[dict]:
    return [{"params": net.model.parameters(), "lr": lr_backbone, "weight_decay": wd},
            {"params": [p for n, p in net.named_parameters() if not n.startswith("model.")], "lr": lr, "weight_decay": wd}]


def set_train_mode(net: DeepfakeDetector, freeze_bn: bool) -> None:
    net.train()
    if freeze_bn:  # keep ImageNet statistics: small CPU batches make poor BatchNorm estimates
        for m in net.model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


def val_score(metrics: dict) -> float:
    aucs = [m["auc"] for m in metrics.values() if isinstance(m, dict) and not math.isnan(m.get("auc", float("nan")))]
    return float(np.mean(aucs)) if aucs else float("nan")


def train(args: argparse.Namespace) -> Path:
    from tqdm import tqdm

    seed_everything(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    splits = load_sources(args.source)
    crops = {json.dumps(json.loads((s.path / "cache.json").read_text())["crop"], sort_keys=True) for s in args.source}
    if len(crops) != 1:
        raise TrainingError(f"the caches were prepared with different crops: {crops}")
    crop = CropSpec(**json.loads(crops.pop()))
    train_clips = [c for s in splits.values() for c in s["train"]]
    reals = [c for c in train_clips if c.label == 0]
    fakes = [c for c in train_clips if c.label == 1]
    log.info("train clips: %d real, %d fake; val clips: %d", len(reals), len(fakes),
             sum(len(s["val"]) for s in splits.values()))

    from .pretrained import TFLITE_MEAN, TFLITE_STD

    spec = ModelSpec(backbone=args.backbone, mode="temporal", hidden=args.hidden, frames=20, crop=crop, name=args.name)
    if args.init == "tflite":
        spec = replace(spec, mean=TFLITE_MEAN, std=TFLITE_STD)
    net = build_model(spec, args.init, args.tflite).to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(param_groups(net, args.lr, args.lr_backbone, args.weight_decay))
    total_steps = args.epochs * args.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, total_steps))
    start_epoch, best, bad_epochs = 0, -1.0, 0
    last = out / "last.pt"
    if args.resume and last.exists():
        state = torch.load(last, map_location=device, weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start_epoch, best, bad_epochs = state["epoch"] + 1, state["best"], state["bad_epochs"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at epoch %d", last, start_epoch)

    aug = Augment()
    sampler = BatchSampler(reals, fakes, args.sbi_fraction, aug, rng)
    seq_lengths = [int(v) for v in args.seq_lengths.split(",")]
    loss_fn = nn.CrossEntropyLoss()
    log_f = open(out / "log.jsonl", "a")
    for epoch in range(start_epoch, args.epochs):
        set_train_mode(net, args.freeze_bn)
        t0 = time.time()
        losses, correct, seen = [], 0, 0
        bar = tqdm(range(args.steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", file=sys.stderr, disable=None)
        for _ in bar:
            t = int(rng.choice(seq_lengths))
            n_clips = args.clips_per_batch or max(2, args.frames_per_batch // t)
            frames, labels = sampler.batch(n_clips, t)
            x = preprocess(frames, spec, device)
            y = labels_to_targets(labels).to(device)
            _, logits = net(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", acc=f"{correct / max(1, seen):.3f}")
        net.eval()
        metrics = evaluate_split(net, splits, "val", t=20, sbi_limit=args.val_sbi_limit)
        score = val_score(metrics)
        improved = score > best
        if improved:
            best, bad_epochs = score, 0
            save_checkpoint(out / "best.pt", net, extra={"epoch": epoch + 1, "val": _brief(metrics), "val_score": score})
        else:
            bad_epochs += 1
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "train_acc": correct / max(1, seen),
                  "val": _brief(metrics), "val_score": score, "best": best, "seconds": round(time.time() - t0, 1),
                  "lr": [g["lr"] for g in opt.param_groups]}
        log_f.write(json.dumps(record) + "\n")
        log_f.flush()
        log.info("epoch %d: loss %.4f, val %s (score %.4f%s)", epoch + 1, record["train_loss"], record["val"], score,
                 ", best" if improved else "")
        torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "epoch": epoch,
                    "best": best, "bad_epochs": bad_epochs, "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state()}, out / "last.tmp")
        os.replace(out / "last.tmp", last)
        if args.stop_after and epoch + 1 - start_epoch >= args.stop_after:
            log.info("stopping after %d epoch(s) as asked (--resume continues)", args.stop_after)
            break
        if bad_epochs >= args.patience:
            log.info("early stop: no validation improvement in %d epochs", bad_epochs)
            break
    log_f.close()
    best_path = out / "best.pt"
    if args.export and best_path.exists():
        from model.weights import build_from, spec_and_state

        bspec, bstate, extra = spec_and_state(best_path)
        save_checkpoint(args.export, build_from(bspec, bstate, best_path), extra=extra, half=True)
        log.info("exported %s (fp16)", args.export)
    return best_path


def _brief(metrics: dict) -> dict:
    return {k: {"auc": round(v["auc"], 4), "acc": round(v["accuracy"], 4), "n": v["n"]} for k, v in metrics.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--source", action="append", type=parse_source, required=True, help="NAME=CACHE[,grouped][,split=a/b/c]")
    ap.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl)")
    ap.add_argument("--recipe", choices=list(RECIPES), default="seed")
    ap.add_argument("--name", default="custom", help="model name stored in the checkpoint")
    ap.add_argument("--backbone")
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--init", help="tflite (ImageNet MobileNetV2 from --tflite) or scratch")
    ap.add_argument("--tflite", default=TFLITE_DEFAULT)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--lr-backbone", type=float)
    ap.add_argument("--weight-decay", type=float)
    ap.add_argument("--clips-per-batch", type=int, help="clips per step (0: use --frames-per-batch)")
    ap.add_argument("--frames-per-batch", type=int, help="frames per step; clips = frames // sequence length")
    ap.add_argument("--seq-lengths", help="comma-separated sequence lengths drawn per step")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--steps-per-epoch", type=int, help="0: one pass over the real training clips")
    ap.add_argument("--patience", type=int)
    ap.add_argument("--sbi-fraction", type=float, help="fraction of fakes that are self-blended")
    ap.add_argument("--freeze-bn", type=lambda s: s.lower() in ("1", "true", "yes"), help="true/false")
    ap.add_argument("--val-sbi-limit", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device")
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt (a changed --epochs re-plans the LR decay)")
    ap.add_argument("--stop-after", type=int, help="run at most this many epochs in this invocation")
    ap.add_argument("--export", help="also write the best model here in fp16")
    args = ap.parse_args(argv)
    for k, v in RECIPES[args.recipe].items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.steps_per_epoch:
        # one pass over the real clips per epoch
        splits = load_sources(args.source)
        n_real = sum(1 for s in splits.values() for c in s["train"] if c.label == 0)
        per_step = args.clips_per_batch or max(2, args.frames_per_batch // 4)
        args.steps_per_epoch = max(1, math.ceil(n_real / max(1, per_step // 2)))
    try:
        train(args)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
