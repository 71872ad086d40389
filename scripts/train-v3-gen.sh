#!/usr/bin/env bash
# Detector v3, generation half (issue 20): the generation branch over a blend-trained network, in
# the background, resumable.
#   scripts/train-v3-gen.sh BLEND.pt   # start over the blend checkpoint (copied into the run folder)
#   scripts/train-v3-gen.sh            # go on from runs/v3-gen/last.pt, else from the committed candidate
# The branch learns on the blend trunk it starts from: when the blend run has a newer trunk, start
# again over it (giving BLEND.pt moves an earlier run folder aside). The blend and generation runs each
# hold the training caches in memory (~11 GB, and their batch worker): on 24 GiB, run one at a time. Logs to runs/v3-gen/train.log; one JSON line per epoch in runs/v3-gen/log.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${CACHE:-$HOME/.cache/deepfake-check/prepared-v3}
# a fresh machine goes on from the shipped two-head network (its branch's epoch; the calibration in the
# file is not used by training)
CANDIDATE=model/weights/dfc-lite0-v3b.pt
OUT=${OUT:-runs/v3-gen}
if [ $# -ge 1 ] && [ -e "$OUT" ]; then
  mv "$OUT" "$OUT.$(date +%Y%m%d-%H%M%S)"  # a new trunk: a new run (the old one is kept beside it)
fi
mkdir -p "$OUT"
if [ $# -ge 1 ]; then
  cp "$1" "$OUT/blend-init.pt"
  init=$OUT/blend-init.pt
elif [ ! -f "$OUT/last.pt" ] && [ -f "$CANDIDATE" ]; then
  init=$CANDIDATE  # a fresh machine: go on from the committed candidate's epoch
else
  init=$OUT/blend-init.pt
fi
export OMP_WAIT_POLICY=PASSIVE
exec nice -n 10 .venv/bin/python -m model.training.train \
  --source video="$P/video" --source fake-dev="$P/fake-dev" --source utkface="$P/utkface" \
  --source meso-train="$P/meso-train" --source meso-val="$P/meso-val,grouped" \
  --recipe lite0-generation --name dfc-lite0-v3 --init "$init" --threads "${THREADS:-1}" --workers 1 \
  --val-synth-limit 60 --out "$OUT" --resume \
  >> "$OUT/train.log" 2>&1
