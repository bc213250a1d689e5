"""Absolute-time gates with pytest-benchmark's own storage: for a user's own, stable machine.

In CI these only run and print a table (no baseline is compared: a shared runner's absolute times
are not stable). On a quiet machine of your own:

    pytest tests/bench --benchmark-autosave                 # record a baseline (.benchmarks/)
    pytest tests/bench --benchmark-compare --benchmark-compare-fail=median:10%

The fixture runs the harness's build, correctness check and warm-up before timing, so a wrong
result fails the test before any time is compared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

MLP = Path(__file__).resolve().parents[2] / "scenarios" / "mlp.py"

pytestmark = pytest.mark.slow


@pytest.mark.benchmark(group="mlp-bs64")
def test_mlp_eager_bs64(perfbench_point, benchmark) -> None:  # type: ignore[no-untyped-def]
    perfbench_point(benchmark, MLP, backend="eager", batch_size=64, threads=1)
