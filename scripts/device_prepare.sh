#!/usr/bin/env bash
# Run HERE before using a lent GPU: puts what the device lacks into ignored folders that the
# device tool carries: .whl (wheels for Python 3.12) and .data (training data).
#   bash scripts/device_prepare.sh images   # walloc-rgb and vqgan plans (photos: ~33 MB)
#   bash scripts/device_prepare.sh audio    # walloc-stereo plans (audio + soundfile: ~21 MB)
# The carry limit is 64 MiB, so one modality per device session.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-images}"
grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude
grep -qx '/.data/' .git/info/exclude || echo /.data/ >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
pkgs=(constriction==0.5.0 pytorch-msssim==1.0.0 tqdm==4.70.1)   # msssim: vqgan's loss
[ "$what" = audio ] && pkgs+=(soundfile==0.14.0 cffi pycparser)
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${pkgs[@]}"
rm -rf .data && mkdir -p .data && cp -r "../shared/data/$what" ".data/$what"
du -sh .whl .data
if [ "$what" = audio ]; then plan='walloc-stereo:1:4 walloc-stereo:3:5'; else plan='walloc-rgb:2:4 walloc-rgb:3:4'; fi
echo "then: run(command=\"bash scripts/device_run.sh \\\"$plan\\\"\", carry=[\".whl\", \".data\"], timeout_s=600)"
