#!/usr/bin/env bash
# Run ON THE DEVICE (device tool, carry .whl and .data; see device_prepare.sh):
#   bash scripts/device_run.sh "MODEL:QUALITY:MINUTES[:STAGE] ..."   (STAGE: vqgan's restorer or codebook)
# Fine-tunes each model on the GPU (data from .data/images or .data/audio by the model's
# modality), writes fp16 weights + tables + records.json and device_check.json (GPU-encode /
# CPU-decode byte identity) to $OUT.
# Back here: python -m lcodec.train.device install FILES_AT --data-root ../shared/data
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
plans=()
for p in $1; do plans+=(--plan "$p"); done
nvidia-smi -L || true
python3 -m lcodec.train.device train "${plans[@]}" --data-root .data \
  --out "${OUT:-device-out}" 2>&1 | tee /tmp/device.log   # not in $OUT: 8 files come back, 6 are weights
