#!/usr/bin/env bash
# Everything perfbench needs a GPU for, in ONE call of the device tool (device time is scarce):
#   1. scripts/fetch_gpu_wheels.sh            (here, once: py-spy and nvtx wheels into .whl/)
#   2. device run, carry [".whl"], command: bash scripts/gpu_session.sh
# Results come back under $OUT (at most 8 files, 2 folders deep): kernel benchmark tables, the
# GPU test log, the device's ceilings, and the default scenario's run folder (with --profile,
# --flamegraph, --nvtx) as a tarball. Commit the measured tables; never hand-edit a number.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/perfbench-gpu-out}
mkdir -p "$OUT" /tmp/site
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || echo "wheel install failed"
  export PATH=/tmp/site/bin:$PATH
fi
ln -sfn "$PWD/kernels" /tmp/site/perfbench_kernels   # the import name pyproject maps kernels/ to
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1

echo "== kernel benchmarks"
python3 -m perfbench_kernels.bench --out "$OUT/bench" 2>&1 | tail -40

echo "== ceilings"
python3 -m perfbench.cli ceilings --device cuda --json > "$OUT/ceilings.json" 2>&1; cat "$OUT/ceilings.json"

echo "== default scenario on the GPU, profiled"
python3 -m perfbench.cli run scenarios/mlp.py --out /tmp/mlp-gpu --timeout 300 \
  --set device=cuda --set batch_size=8,4096 --set amp=off,bf16 \
  --set backend=eager,compile,compile-reduce-overhead,fx,triton \
  --profile --flamegraph --nvtx 2>&1 | tail -30
tar czf "$OUT/mlp-gpu.tgz" -C /tmp mlp-gpu

echo "== GPU tests"
# not pip-installed there: load our pytest plugin by module (and never twice where it is installed)
python3 -m pytest -q -p no:cacheprovider -p no:perfbench -p perfbench.pytest_plugin tests/test_cuda.py tests/kernels tests/bench tests/profiling \
  > "$OUT/pytest-gpu.txt" 2>&1
tail -15 "$OUT/pytest-gpu.txt"
