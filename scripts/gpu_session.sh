#!/usr/bin/env bash
# Everything perfbench needs a GPU for, in as few device-tool calls as fit its 10-minute limit:
#   1. scripts/fetch_gpu_wheels.sh            (here, once: py-spy and nvtx wheels into .whl/)
#   2. device run, carry [".whl"], command: bash scripts/gpu_session.sh bench   (kernels, ceilings)
#   3. device run, carry [".whl"], command: bash scripts/gpu_session.sh run tests
#      (the machine stays warm between calls; `all` does the three stages in one call)
# Results come back under $OUT (at most 8 files, 2 folders deep): kernel benchmark tables, the
# device's ceilings, the default scenario's run folder (with --profile, --flamegraph, --nvtx) as a
# tarball (verdicts with intervals, A/A control, op diffs, findings), an AOTInductor group,
# and the GPU test log. Commit the measured tables; never hand-edit a number.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/perfbench-gpu-out}
STAGES=${*:-all}
mkdir -p "$OUT" /tmp/site
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || echo "wheel install failed"
  export PATH=/tmp/site/bin:$PATH
fi
ln -sfn "$PWD/kernels" /tmp/site/perfbench_kernels   # the import name pyproject maps kernels/ to
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
want() { [[ " $STAGES " == *" $1 "* || " $STAGES " == *" all "* ]]; }

if want bench; then
  echo "== kernel benchmarks (with the num_warps sweep)"
  python3 -m perfbench_kernels.bench --out "$OUT/bench" --tune 2>&1 | tail -60
  echo "== ceilings"
  python3 -m perfbench.cli ceilings --device cuda --json > "$OUT/ceilings.json" 2>&1; cat "$OUT/ceilings.json"
fi

if want run; then
  echo "== default scenario on the GPU, profiled"
  # each (batch size, amp) is one comparison group: its backends and an A/A control are timed
  # interleaved with CUDA events, so the verdicts, intervals, op diffs and findings all come back
  python3 -m perfbench.cli run scenarios/mlp.py --out /tmp/mlp-gpu --timeout 300 \
    --set device=cuda --set batch_size=8,4096 --set amp=off,bf16 \
    --set backend=eager,compile,compile-reduce-overhead,compile-freezing,fx,triton \
    --profile --flamegraph --nvtx --processes 1 2>&1 | tail -40
  echo "== the answer and the fixed-cost findings (step_bytes on CUDA, the cuda copy ceiling)"
  python3 -c "from perfbench.advisor import advise, format_findings as f; print(f([x for x in advise('/tmp/mlp-gpu') if x.rule in ('answer', 'overhead_bound', 'memory_bound', 'fixed_cost')]))"
  tar czf "$OUT/mlp-gpu.tgz" -C /tmp mlp-gpu
  echo "== intervals across processes (issue 22): default k at a short GPU step, no --processes"
  # a group with a backend to judge is timed in 3 fresh workers (the profiled run above pins 1)
  python3 -m perfbench.cli run scenarios/mlp.py --out /tmp/mlp-gpu-k --timeout 300 \
    --set device=cuda --set batch_size=8 --set backend=eager,compile 2>&1 | grep -E "processes|verdict|control" | head -12
  echo "== AOTInductor on the GPU (one group: minutes of compile)"
  python3 -m perfbench.cli run scenarios/mlp.py --out /tmp/mlp-gpu-aoti --timeout 300 \
    --set device=cuda --set batch_size=4096 --set backend=eager,aoti --processes 1 2>&1 | tail -12
  tar czf "$OUT/mlp-gpu-aoti.tgz" -C /tmp mlp-gpu-aoti
fi

if want tests; then
  echo "== GPU tests"
  # not pip-installed there: load our pytest plugin by module (and never twice where it is installed)
  python3 -m pytest -q -p no:cacheprovider -p no:perfbench -p perfbench.pytest_plugin tests/measure/test_cuda.py tests/kernels tests/bench tests/profiling tests/measure/test_group_timing.py \
    > "$OUT/pytest-gpu.txt" 2>&1
  tail -15 "$OUT/pytest-gpu.txt"
fi
