#!/usr/bin/env bash
# Detector v3, blend half (issue 20): the long CPU training run, in the background, resumable.
#   scripts/train-v3.sh            # go on from runs/v3-blend/last.pt, else from the committed candidate,
#                                  # else start from ImageNet
# Needs the 224-px caches in $CACHE (python -m model.training.prepare ... --size 224; docs/training.md).
# Logs to runs/v3-blend/train.log; one JSON line per epoch in runs/v3-blend/log.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${CACHE:-$HOME/.cache/deepfake-check/prepared-v3}
CANDIDATE=model/weights/candidates/dfc-lite0-v3-blend.pt
OUT=${OUT:-runs/v3-blend}
init=imagenet
if [ ! -f "$OUT/last.pt" ] && [ -f "$CANDIDATE" ]; then
  init=$CANDIDATE  # a fresh machine: go on from the committed candidate's epoch
fi
mkdir -p "$OUT"
export OMP_WAIT_POLICY=PASSIVE
exec nice -n 10 .venv/bin/python -m model.training.train \
  --source video="$P/video" --source fake-dev="$P/fake-dev" --source utkface="$P/utkface" \
  --source meso-train="$P/meso-train" --source meso-val="$P/meso-val,grouped" \
  --recipe lite0-blend --name dfc-lite0-v3 --init "$init" --threads 2 --workers 1 --val-synth-limit 60 --out "$OUT" --resume \
  >> "$OUT/train.log" 2>&1
