"""Real runs (slow: each runs `perfbench run`): a model whose weights exceed the last-level cache
is never called overhead-bound, a chain of tiny ops is, and the first finding of a sweep answers
which backend is fastest. Timing-dependent outcomes are asserted on the numbers the run itself
recorded (the copy ceiling measured here, the step medians), never on absolute times."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from perfbench.advisor import RunData, advise
from perfbench.advisor.bound import MEMORY, OVERHEAD, UNKNOWN, classify
from perfbench.cli.main import main
from perfbench.measure.ceilings import last_level_cache_bytes, measure_ceilings

HERE = Path(__file__).parent / "scenarios"
BIG_WEIGHTS = 2 * (4096 * 4096 + 4096) * 4  # two Linear(4096, 4096), float32


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A measured 1-thread copy ceiling in a private cache: the runs record it in run.json."""
    path = tmp_path_factory.mktemp("ceilings")
    mp = pytest.MonkeyPatch()
    mp.setenv("PERFBENCH_CACHE_DIR", str(path))
    measure_ceilings("cpu", threads=1, rounds=1, budget_s=0.2)
    yield path
    mp.undo()


def _run(out: Path, scenario: str, *sets: str) -> RunData:
    args = ["run", str(HERE / scenario), "--out", str(out), "--budget", "0.2", "-q"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return RunData.load(out)


def _rows(data: RunData, backend: str = "eager") -> list[dict]:
    return sorted((r for r in data.ok() if r["backend"] == backend), key=lambda r: r["batch_size"])


@pytest.mark.slow
def test_weights_above_the_cache_are_memory_bound(tmp_path: Path, cache_dir: Path) -> None:
    llc = last_level_cache_bytes()
    if not llc or llc >= BIG_WEIGHTS:
        pytest.skip(f"last-level cache {llc} bytes: the scenario's weights would fit in it")
    data = _run(tmp_path / "big", "big_weights.py")
    small = _rows(data)[0]
    assert small["extra"]["step_bytes"]["weights"] == BIG_WEIGHTS
    assert data.meta["ceilings_by_threads"]["1"]["copy_gbps"] > 0
    # the largest fixed cost the step can have is all of it (its fastest sample: the box is shared)
    bound = classify(data, small, min(small["times_ms"]))
    # quiet: memory-bound; contended (others stretch the step, not the ceiling): cannot tell;
    # never overhead-bound
    expected = {UNKNOWN, MEMORY} if small.get("contended") is True else {MEMORY}
    assert bound.kind in expected, (bound, small["times_ms"][:20])
    assert "overhead_bound" not in {f.rule for f in advise(data)}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> RunData:
    out = tmp_path_factory.mktemp("tiny") / "run"
    # one batch size: each ONNX Runtime group pays an export (seconds on this shared box)
    return _run(out, "tiny_ops.py", "backend=eager,onnxruntime", "batch_size=1")


@pytest.mark.slow
def test_tiny_ops_are_overhead_bound(tiny_run: RunData) -> None:
    small = _rows(tiny_run)[0]
    assert small["extra"]["step_bytes"]["weights"] == (16 * 16 + 16) * 4
    assert classify(tiny_run, small, min(small["times_ms"])).kind == OVERHEAD


@pytest.mark.slow
def test_first_finding_answers_which_backend_is_fastest(tiny_run: RunData) -> None:
    first = advise(tiny_run)[0]
    assert first.rule == "answer", first
    rows = _rows(tiny_run, "onnxruntime")
    callable_ = [r for r in rows if not r.get("contended") and not r["extra"].get("too_noisy")]
    if any(r["verdict"] == "faster" for r in callable_):
        best = max(
            (r for r in callable_ if r["verdict"] == "faster"), key=lambda r: r["speedup_vs_eager"]
        )
        assert first.sentence.startswith("onnxruntime is the fastest backend here: ")
        assert f"CI {best['speedup_ci_low']:.2f}–{best['speedup_ci_high']:.2f}" in first.sentence
    elif callable_:
        assert first.sentence.startswith("No backend beat eager with confidence at these settings")
    else:  # this shared machine was busy: no call, and the finding says why
        assert first.sentence.startswith("No backend beat eager with confidence: no comparison")
        assert "onnxruntime" in first.evidence[-1]
