"""Benchmark: the model stage alone (preprocessing and the network on one 20-frame face track), per
model, per torch thread count, with the network as it is and traced for the CPU.

    python -m bench.model_stage                                   # the default model
    python -m bench.model_stage --weights dfc-lite0-v3 --weights dfc-mobilenetv2-video-r2 --threads 1 2

`score_crops` on 20 random crops at the model's input size: the median (min–max) of `--runs` runs
after 2 warm-up runs. "traced" is `model.check.optimise_for_cpu` (what the server's worker, a Ray
replica and a scan use after `warm_up`); "as is" is the network itself (a one-file CLI run). Run it on
a quiet machine: it prints the load average at the start and the end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np


def _times(fn, runs: int) -> list[float]:
    for _ in range(2):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _cell(ts: list[float]) -> str:
    return f"{statistics.median(ts):.0f} ms ({min(ts):.0f}–{max(ts):.0f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.model_stage", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", action="append", help="a registered model or checkpoint (repeat; default: the default model)")
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args(argv)

    import torch

    from bench.pipeline import machine
    from model import load_model
    from model.check import optimise_for_cpu, score_crops
    from model.weights import DEFAULT_MODEL

    print(f"Model stage, {a.frames} crops, median (min–max) of {a.runs} runs after 2 warm-up runs; {machine()}; "
          f"load average at the start {os.getloadavg()[0]:.2f}")
    print()
    print("| model | input | torch threads | as is | traced for the CPU | traced / as is |")
    print("|---|---|---|---|---|---|")
    for ref in a.weights or [DEFAULT_MODEL]:
        loaded = load_model(ref, device="cpu")
        size = loaded.spec.crop.size
        crops = np.random.default_rng(0).integers(0, 255, (a.frames, size, size, 3), dtype=np.uint8)
        for threads in a.threads:
            torch.set_num_threads(threads)
            loaded.fast = None
            eager = _times(lambda m=loaded, c=crops: score_crops(m, c), a.runs)
            traced = None
            if optimise_for_cpu(loaded):
                traced = _times(lambda m=loaded, c=crops: score_crops(m, c), a.runs)
            loaded.fast = None
            ratio = f"{statistics.median(traced) / statistics.median(eager):.2f}" if traced else "–"
            print(f"| `{loaded.name}` | {loaded.spec.backbone}, {loaded.spec.mode}, {size} px | {threads} | {_cell(eager)} | "
                  f"{_cell(traced) if traced else 'not applied (not a per-frame fp32 CPU model)'} | {ratio} |", flush=True)
    print()
    print(f"Load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
