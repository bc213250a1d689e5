"""pytest plugin (entry point `perfbench`, pytest11): gate a scenario point with pytest-benchmark.

Two fixtures:

`perfbench_point` times one point inside `benchmark.pedantic`, after the harness's build, correctness
check against the eager float32 reference and warm-up, so pytest-benchmark's own storage and
compare flags work on it unchanged::

    def test_mlp_compile(perfbench_point, benchmark):
        perfbench_point(benchmark, "scenarios/mlp.py", backend="compile", batch_size=64)

    # pytest --benchmark-autosave                      (record a baseline on this machine)
    # pytest --benchmark-compare --benchmark-compare-fail=median:10%   (gate against it)

`perfbench_ratio` measures two points (or two callables, `measure_ratio`) interleaved in the
same process and returns their ratio with a 95% confidence interval, from the same code as the
sweep's verdicts (`perfbench.interleave`, `perfbench.speedup`): the gate to use where absolute
times move between machines (CI). `assert_at_most(1.10)` reads "A is at most 10% slower than B
with 95% confidence": it fails only when the whole interval lies above 1.10::

    def test_compile_not_slower(perfbench_ratio):
        r = perfbench_ratio("scenarios/mlp.py", {"backend": "compile"}, {"backend": "eager"},
                            batch_size=64)
        r.assert_at_most(1.10)

Absolute times only mean something against a baseline recorded on the same, quiet machine; a
ratio of two things measured side by side cancels most of what differs between machines.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DEFAULT_ROUNDS_BUDGET_S = 1.0  # timed work per point in perfbench_point when rounds is not given


def _resolve(path: str | Path, rootpath: Path) -> Path:
    """A scenario path as written in a test: relative to the cwd, else to the pytest rootdir."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return rootpath / p


def make_point(axes: dict[str, Any]) -> Any:
    """Validate axis values as the CLI does (a typo is an error listing the valid values)."""
    from perfbench.axes import Point, parse_axis_value
    from perfbench.backends import backend_names

    typed = {k: parse_axis_value(k, v, backend_names()) for k, v in axes.items()}
    return Point(**typed)


@dataclass
class PreparedPoint:
    """A point built and checked by the harness, ready to time; `close()` releases it."""

    label: str
    step: Callable[[], Any]
    sync: Callable[[], None]
    device: str
    info: dict[str, Any]
    close: Callable[[], None]


def prepare_point(scenario_path: Path, seed: int = 0, **axes: Any) -> PreparedPoint:
    """Load, build, correctness-check (raises on mismatch) and warm up one point.

    Skips the test (pytest.skip) when the point makes no sense here, with the harness's reason,
    and when the backend's timings on this device are not performance (Triton interpreter).
    """
    from perfbench.backends import BACKENDS
    from perfbench.backends.base import BackendNotApplicable
    from perfbench.scenario import load_scenario
    from perfbench.timing import TimingSettings, warm_up
    from perfbench.workload import build_workload, skip_reason

    scenario = load_scenario(scenario_path)
    point = make_point(axes)
    reason = skip_reason(point, scenario)
    if reason:
        pytest.skip(f"{point.label()}: {reason}")
    backend = BACKENDS[point.backend]
    if backend.correctness_only(point):
        pytest.skip(f"{point.label()}: timing here is interpreter timing, not performance")
    try:  # the sweep's own build and check: raises MismatchError on a wrong result
        workload = build_workload(scenario, point, seed=seed)
        warm_up(workload.step, workload.sync, TimingSettings())
    except BackendNotApplicable as err:  # found out only by trying (tracing, torch.export)
        backend.teardown()
        pytest.skip(f"{point.label()}: {err}")
    except BaseException:
        backend.teardown()
        raise

    def close() -> None:
        workload.close()
        backend.teardown()  # e.g. dynamo's caches: the next point compiles from scratch

    info = {
        "perfbench_point": point.label(),
        "scenario": str(scenario_path),
        "rel_err": workload.check.rel_err,
        "cold_start_s": workload.cold_start_s,
        **{k: v for k, v in workload.info.items() if isinstance(v, (int, float, str, bool))},
    }
    return PreparedPoint(
        point.label(), workload.step, workload.sync, point.device.value, info, close
    )


def synced(step: Callable[[], Any], sync: Callable[[], None]) -> Callable[[], None]:
    """One step that returns only when the device is done: pytest-benchmark's host timer reads
    the clock right after the call, so on CUDA the call itself must wait (rule 3)."""

    def run() -> None:
        step()
        sync()

    return run


def _rounds_for(fn: Callable[[], None], budget_s: float) -> int:
    start = time.perf_counter()
    fn()
    one = max(time.perf_counter() - start, 1e-6)
    return int(min(1000, max(5, budget_s / one)))


@pytest.fixture
def perfbench_point(request: pytest.FixtureRequest) -> Iterator[Callable[..., PreparedPoint]]:
    """`perfbench_point(benchmark, scenario, rounds=None, warmup_rounds=2, seed=0, **axes)`:
    build, check and warm up the point, then time it with `benchmark.pedantic`."""
    opened: list[PreparedPoint] = []

    def run(
        benchmark: Any,
        scenario: str | Path,
        rounds: int | None = None,
        warmup_rounds: int = 2,
        seed: int = 0,
        **axes: Any,
    ) -> PreparedPoint:
        prepared = prepare_point(_resolve(scenario, request.config.rootpath), seed=seed, **axes)
        opened.append(prepared)
        target = synced(prepared.step, prepared.sync)
        benchmark.extra_info.update(prepared.info)
        benchmark.pedantic(
            target,
            setup=prepared.sync,  # the device is idle when the clock starts
            rounds=rounds or _rounds_for(target, DEFAULT_ROUNDS_BUDGET_S),
            warmup_rounds=warmup_rounds,
            iterations=1,
        )
        return prepared

    yield run
    for prepared in opened:
        prepared.close()


@dataclass
class Ratio:
    """time(A) / time(B) from interleaved rounds, with its confidence interval.

    `ratio` is exp(mean of the per-round log ratios) and [`ci_low`, `ci_high`] its interval at
    `level`, both from `perfbench.speedup` (the estimator the sweep's verdicts use: winsorized log
    ratios, averaged per period of the ABBA order, batch means over `blocks` blocks, t-interval).
    `noise` is the IQR/median of the per-round ratios, for reading only."""

    label: str
    ratio: float
    noise: float
    median_a_s: float
    median_b_s: float
    pairs: int  # timed rounds (one sample of each side per round)
    pair_ratios: list[float] = field(repr=False, default_factory=list)
    ci_low: float = math.nan
    ci_high: float = math.nan
    level: float = 0.95
    blocks: int = 0

    @property
    def half_width(self) -> float:
        """Relative half-width of the interval on the log scale: 0.02 reads "±2%"."""
        return math.expm1(math.log(self.ci_high / self.ci_low) / 2.0)

    def assert_at_most(self, limit: float) -> None:
        """Fail when A is slower than `limit` × B with confidence `level` (95%): only when the
        whole interval lies above `limit`. An interval that reaches below it passes: the
        measurement could not show a slowdown that large. Every number is in the message."""
        assert not self.ci_low > limit, (
            f"{self.label}: A/B {self.ratio:.3f} ({self.level:.0%} CI "
            f"{self.ci_low:.3f}-{self.ci_high:.3f}) is above the allowed {limit:.3f} with "
            f"{self.level:.0%} confidence (A {self.median_a_s * 1e3:.3f} ms, B "
            f"{self.median_b_s * 1e3:.3f} ms, {self.pairs} rounds in {self.blocks} blocks, "
            f"per-round ratio IQR/median {self.noise:.1%})"
        )


class _CallableTimer:
    """A plain `timer(fn, number) -> s per call` as the interleaver's Timer (it needs a name)."""

    name = "custom"

    def __init__(self, fn: Callable[[Callable[[], Any], int], float]) -> None:
        self.fn = fn

    def __call__(self, fn: Callable[[], Any], number: int) -> float:
        return self.fn(fn, number)


def measure_ratio(
    fn_a: Callable[[], Any],
    fn_b: Callable[[], Any],
    device: str = "cpu",
    budget_s: float = 3.0,
    min_pairs: int = 10,
    label: str = "A/B",
    timer: Callable[[Callable[[], Any], int], float] | None = None,
    level: float = 0.95,
    threads: int | None = None,
) -> Ratio:
    """Time two callables interleaved with `perfbench.interleave` and estimate A/B with
    `perfbench.speedup`: the same code, and the same interval, as the sweep's verdicts.

    Interleaving is the point: frequency changes, a neighbour's load or thermal drift hit both
    sides of a round alike and cancel in the round's ratio, where two back-to-back measurements
    would each see a different machine. Each side is warmed up and calibrated (a sample lasts
    >= 1 ms, so timer resolution does not enter), then the rounds run in ABBA order (the side
    that runs first after a switch pays for cold caches; over a period both do equally), one
    warm-up period dropped, as many whole periods as fit in `budget_s` (at least `min_pairs`
    rounds and five periods), fixed before the first timed round (no optional stopping).
    `timer(fn, number) -> s per call` defaults to the harness's timer for `device` (CUDA events
    on CUDA). Preempted samples on an oversubscribed machine are winsorized, and the batch-means
    interval carries the rest: a noisy machine gives a wide interval, not a false result.
    `threads`: torch's thread count for the rounds, checked after every sample (a side that
    changes it raises: the ratio would measure threads); None leaves it alone.
    """
    from perfbench.interleave import InterleaveSettings, interleave

    periods = max(InterleaveSettings.min_periods, math.ceil(min_pairs / 2))
    # a gate asked for min_pairs: never fewer periods, whatever the budget (round_plan)
    settings = InterleaveSettings(budget_s=budget_s, min_periods=periods, floor_periods=periods)
    inter = interleave(
        {"A": fn_a, "B": fn_b},
        device=device,
        threads=threads,
        settings=settings,
        timer=_CallableTimer(timer) if timer is not None else None,
    )
    est = inter.estimate("A", baseline="B")  # speedup of A over B = t_B / t_A
    low, high = est.interval(level)
    a_times, b_times = inter.times_s["A"], inter.times_s["B"]
    ratios = sorted(x / y for x, y in zip(a_times, b_times, strict=True))
    med = statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return Ratio(
        label=label,
        ratio=1.0 / est.speedup,
        noise=(q3 - q1) / med if med > 0 else math.inf,
        median_a_s=statistics.median(a_times),
        median_b_s=statistics.median(b_times),
        pairs=len(ratios),
        pair_ratios=ratios,
        ci_low=1.0 / high,
        ci_high=1.0 / low,
        level=level,
        blocks=est.blocks,
    )


@pytest.fixture
def perfbench_ratio(request: pytest.FixtureRequest) -> Iterator[Callable[..., Ratio]]:
    """`perfbench_ratio(scenario, a_axes, b_axes, budget_s=3.0, **common_axes) -> Ratio`:
    build and check both points, warm both, then `measure_ratio` them interleaved."""
    opened: list[PreparedPoint] = []

    def run(
        scenario: str | Path,
        a: dict[str, Any],
        b: dict[str, Any],
        budget_s: float = 3.0,
        **common: Any,
    ) -> Ratio:
        path = _resolve(scenario, request.config.rootpath)
        pa = prepare_point(path, **{**common, **a})
        opened.append(pa)
        pb = prepare_point(path, **{**common, **b})
        opened.append(pb)
        if pa.device != pb.device:
            raise ValueError("a ratio compares points on one device")
        threads = {make_point({**common, **side}).threads for side in (a, b)}
        return measure_ratio(
            synced(pa.step, pa.sync),
            synced(pb.step, pb.sync),
            device=pa.device,
            budget_s=budget_s,
            label=f"{pa.label} / {pb.label}",
            threads=threads.pop() if len(threads) == 1 else None,  # else threads are compared
        )

    yield run
    for prepared in opened:
        prepared.close()
