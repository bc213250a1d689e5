"""The first finding answers the sweep's question (advisor/answer.py); a flat step is called
memory-bound, overhead-bound or "cannot tell" from bytes and the copy ceiling (advisor/bound.py);
with --repeat no finding mixes numbers of two repetitions. Crafted rows: numbers given exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfbench.advisor import RunData, advise
from perfbench.results.rundir import RunDir
from tests.advisor.runs import row, write_run


def verdict(backend: str, speedup: float, low: float, high: float, word: str, **kw: Any) -> dict:
    """A non-eager row with the interleaved rounds' verdict columns."""
    eager_ms = kw.pop("eager_ms", 50.0)
    return row(
        eager_ms / speedup,
        backend=backend,
        speedup_vs_eager=speedup,
        speedup_ci_low=low,
        speedup_ci_high=high,
        verdict=word,
        **kw,
    )


def test_first_finding_names_the_clear_winner_with_its_interval(tmp_path: Path) -> None:
    rows = [
        row(50.0, batch_size=8),
        verdict("compile", 1.30, 1.10, 1.50, "faster", batch_size=8),
        verdict("onnxruntime", 2.18, 1.68, 2.63, "faster", batch_size=8),
        row(400.0, batch_size=64),
        verdict("onnxruntime", 1.02, 0.95, 1.10, "inconclusive", batch_size=64, eager_ms=400.0),
        # bigger, but contended: never the answer
        verdict("compile", 3.0, 2.5, 3.5, "faster", batch_size=64, eager_ms=400.0, contended=True),
    ]
    first = advise(write_run(tmp_path / "r", rows))[0]
    assert first.rule == "answer" and first.priority == 0
    assert first.sentence.startswith("onnxruntime is the fastest backend here: 2.18× faster")
    assert "CI 1.68–2.63" in first.sentence and "verdict faster" in first.sentence
    assert "bs8" in first.sentence and "1 of the 2 setting(s)" in first.sentence
    assert "repetition" not in first.sentence  # one repetition: nothing to tell apart
    assert any("compile 1.30×" in e for e in first.evidence)  # the runner-up, same settings
    assert any("1 of 4 comparison(s) left out" in e for e in first.evidence)
    assert "--set backend=eager,onnxruntime" in first.command


def test_nothing_wins_says_so_first_and_names_the_closest(tmp_path: Path) -> None:
    rows = [
        row(50.0),
        verdict("compile", 0.98, 0.90, 1.05, "inconclusive"),
        verdict("fx", 1.01, 0.99, 1.03, "same"),
        verdict("int8", 2.5, 1.5, 3.5, "faster", extra={"too_noisy": True}),
    ]
    first = advise(write_run(tmp_path / "r", rows))[0]
    assert first.sentence.startswith("No backend beat eager with confidence at these settings")
    assert "closest: fx 1.01× (CI 0.99–1.03, same)" in first.sentence
    only_noisy = [row(50.0), verdict("int8", 2.5, 1.5, 3.5, "faster", contended=True)]
    first = advise(write_run(tmp_path / "n", only_noisy))[0]
    assert first.sentence.startswith("No backend beat eager with confidence: no comparison")
    assert "int8 2.50×" in first.evidence[-1]


def test_no_answer_without_comparisons(tmp_path: Path) -> None:
    """An eager-only sweep (or an older run without verdict columns) asks no such question."""
    rows = [row(50.0), row(40.0, backend="compile")]
    assert all(f.rule != "answer" for f in advise(write_run(tmp_path / "r", rows)))


def test_repetitions_are_never_mixed(tmp_path: Path) -> None:
    """--repeat: the eager median told beside a speedup is from the same repetition."""
    rows = [
        row(12.5, repeat=0),
        verdict("onnxruntime", 2.0, 1.5, 2.5, "faster", repeat=0, eager_ms=12.5),
        row(19.6, repeat=1),
        verdict("onnxruntime", 1.9, 1.4, 2.4, "faster", repeat=1, eager_ms=19.6),
    ]
    first = advise(write_run(tmp_path / "r", rows))[0]
    assert "(repetition 0)" in first.sentence
    [medians] = [e for e in first.evidence if e.startswith("medians")]
    assert "eager 12.5 ms, onnxruntime 6.2 ms" in medians and "19.6" not in medians
    # break_even's step line (the issue's `eager 12.5 ms, compile 19.6 ms`) stays in one repetition
    mode = {"compile_mode": "default"}
    timed = [
        row(12.5, repeat=0),
        row(19.6, repeat=1),
        verdict(
            "compile", 1.0, 0.9, 1.1, "same", repeat=0, eager_ms=12.5, extra=mode, cold_start_s=5
        ),
        verdict(
            "compile", 1.0, 0.9, 1.1, "same", repeat=1, eager_ms=19.6, extra=mode, cold_start_s=5
        ),
    ]
    steps = [e for f in advise(write_run(tmp_path / "c", timed)) for e in f.evidence]
    steps = [e for e in steps if e.startswith("step: eager")]
    assert steps and all(("12.5" in e) == (e.count("12.5") == 2) for e in steps), steps
    assert not any("12.5" in e and "19.6" in e for e in steps), steps
    data = RunData.load(tmp_path / "c")
    second = next(r for r in data.ok() if r["backend"] == "compile" and r["repeat"] == 1)
    assert data.same_but(second, backend="eager")["median_ms"] == 19.6
    assert all(len({r["repeat"] for r in g}) == 1 for g in data.groups("batch_size"))


# -- memory- or overhead-bound -------------------------------------------------------------------

MB = 10**6


def _flat(weights: int, llc: int | None) -> list[dict[str, Any]]:
    counted = {"step_bytes": {"weights": weights, "weight_tensors": 6, "last_level_cache": llc}}
    return [row(14.1, batch_size=8, extra=counted), row(16.0, batch_size=64, extra=counted)]


def _with_ceiling(path: Path, gbps: float | None) -> Path:
    if gbps is not None:
        run = RunDir(path)
        meta = run.read_meta()
        meta["ceilings_by_threads"] = {"2": {"copy_gbps": gbps, "threads": 2}}
        run.write_meta(meta)
    return path


def rules_of(path: Path) -> dict[str, Any]:
    return {f.rule: f for f in advise(path)}


def test_weights_above_the_cache_at_the_copy_ceiling_are_memory_bound(tmp_path: Path) -> None:
    # 100 MB of weights at 12 GB/s: at least 8.3 ms of the ~13.8 ms fixed cost
    found = rules_of(_with_ceiling(write_run(tmp_path / "m", _flat(100 * MB, 32 * MB)), 12.0))
    assert "overhead_bound" not in found
    f = found["memory_bound"]
    assert "memory-bound, not overhead-bound" in f.sentence
    assert any("12.0 GB/s takes at least 8.33 ms" in e for e in f.evidence)


def test_weights_in_cache_or_a_small_floor_are_overhead_bound(tmp_path: Path) -> None:
    in_cache = rules_of(_with_ceiling(write_run(tmp_path / "c", _flat(2 * MB, 32 * MB)), 12.0))
    assert "overhead_bound" in in_cache and "memory_bound" not in in_cache
    # above the cache but read in 0.4 ms of a 13.8 ms fixed cost: the rest is overhead
    small_floor = rules_of(_with_ceiling(write_run(tmp_path / "f", _flat(40 * MB, 32 * MB)), 100.0))
    assert "overhead_bound" in small_floor


def test_a_contended_small_floor_is_not_called_overhead(tmp_path: Path) -> None:
    """Others stretch a contended step (and share the memory bus), never the ceiling."""
    rows = [{**r, "contended": True} for r in _flat(40 * MB, 32 * MB)]
    found = rules_of(_with_ceiling(write_run(tmp_path / "c", rows), 100.0))
    assert "overhead_bound" not in found
    assert any("contended" in e for e in found["fixed_cost"].evidence)


def test_without_a_ceiling_it_says_it_cannot_tell(tmp_path: Path) -> None:
    found = rules_of(write_run(tmp_path / "u", _flat(100 * MB, 32 * MB)))
    assert "overhead_bound" not in found and "memory_bound" not in found
    f = found["fixed_cost"]
    assert "cannot tell" in f.sentence
    assert any("perfbench ceilings --device cpu --threads 2" in e for e in f.evidence)
    # a ceiling of another thread count does not apply
    other = write_run(tmp_path / "o", _flat(100 * MB, 32 * MB))
    meta = RunDir(other).read_meta()
    meta["ceilings_by_threads"] = {"1": {"copy_gbps": 12.0, "threads": 1}}
    RunDir(other).write_meta(meta)
    assert "fixed_cost" in rules_of(other)
