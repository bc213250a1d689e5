#!/usr/bin/env bash
# Run HERE (a machine with the package registries): downloads the wheels the GPU machine lacks
# (py-spy, nvtx; Python 3.12 there) into .whl/, which git ignores and the device tool carries.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d .whl py-spy nvtx
ls -la .whl
