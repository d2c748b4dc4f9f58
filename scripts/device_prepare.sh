#!/usr/bin/env bash
# Run HERE before using a lent GPU: puts what the device lacks into ignored folders that the
# device tool carries: .whl (wheels for Python 3.12: constriction) and .data (training photos).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude
grep -qx '/.data/' .git/info/exclude || echo /.data/ >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl constriction==0.5.0
rm -rf .data && mkdir -p .data && cp -r ../shared/data/images .data/images
du -sh .whl .data
echo 'then: run(command="bash scripts/device_run.sh \"walloc-rgb:2:4 walloc-rgb:3:4\"", carry=[".whl", ".data"], timeout_s=600)'
