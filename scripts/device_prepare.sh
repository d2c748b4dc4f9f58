#!/usr/bin/env bash
# Run HERE before using a lent GPU: puts what the device lacks into ignored folders that the
# device tool carries: .whl (wheels for Python 3.12) and .data (training data).
#   bash scripts/device_prepare.sh images   # walloc-rgb and vqgan plans (photos: ~33 MB)
#   (vqgan: the autoencoder, then its restorer and the k-means codebooks from it, in one call)
#   bash scripts/device_prepare.sh images "mgm-q* bmshj2018-hyperprior-q2-*"
#                                           # keep these weights instead (what the plans start from)
#   bash scripts/device_prepare.sh audio    # walloc-stereo plans (audio + soundfile: ~21 MB)
#   bash scripts/device_prepare.sh restore  # AFTER the device calls: puts the stashed weights back
# The device takes at most 64 MiB of working tree, carried folders included, and the shipped
# weights alone are ~200 MB: the weight files that the modality's plans neither start from nor
# check wait in ../lcodec-device-stash until `restore` (run it before installing what came back).
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-images}"
stash=../lcodec-device-stash
if [ "$what" = restore ]; then
  [ -d "$stash" ] && mv "$stash"/*.pt lcodec/models/weights/ && rmdir "$stash"
  git status --short lcodec/models/weights
  exit 0
fi
grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude
grep -qx '/.data/' .git/info/exclude || echo /.data/ >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
# msssim: vqgan's loss; compressai: mgm, the hyperprior peers and clc (its cp312 wheel is
# manylinux_2_34; the device holds its needs: einops, scipy, pandas, torchvision, torch-geometric)
pkgs=(constriction==0.5.0 pytorch-msssim==1.0.0 tqdm==4.70.1 compressai==1.2.8)
[ "$what" = audio ] && pkgs+=(soundfile==0.14.0 cffi pycparser)
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${pkgs[@]}"
rm -rf .data && mkdir -p .data && cp -r "../shared/data/$what" ".data/$what"
# vqgan's plans chain from q3 (the largest codebook); walloc-rgb's weights are small and checked too
if [ "$what" = audio ]; then keep='walloc-stereo-*'; else keep='vqgan-q3-* walloc-rgb-*'; fi
keep="${2:-$keep}"
mkdir -p "$stash"
for f in lcodec/models/weights/*.pt; do
  base=$(basename "$f"); stay=no
  for k in $keep; do case "$base" in $k) stay=yes;; esac; done
  [ $stay = no ] && mv "$f" "$stash/"
done
echo "stashed $(ls "$stash" | wc -l) weight files in $stash (bash scripts/device_prepare.sh restore)"
du -sh .whl .data
(git ls-files; git ls-files --others --exclude-standard; find .whl .data -type f) | sort -u |
  while read -r f; do [ -f "$f" ] && stat -c %s "$f"; done | awk '{s += $1} END {printf "travels: %.1f MiB of 64\n", s / 2^20}'
if [ "$what" = audio ]; then plan='walloc-stereo:1:4 walloc-stereo:3:5'; else plan='vqgan:3:4 vqgan:3:1:restorer vqgan:2:0.7:codebook vqgan:1:0.7:codebook'; fi
echo "then: run(command=\"bash scripts/device_run.sh \\\"$plan\\\"\", carry=[\".whl\", \".data\"], timeout_s=600)"
