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
sweep's verdicts (`perfbench.measure.interleave`, `perfbench.stats.speedup`): the gate to use where absolute
times move between machines (CI). `assert_at_most(1.10)` reads "A is at most 10% slower than B
with 95% confidence": it fails only when the whole interval lies above 1.10::

    def test_compile_not_slower(perfbench_ratio):
        r = perfbench_ratio("scenarios/mlp.py", {"backend": "compile"}, {"backend": "eager"},
                            batch_size=64)
        r.assert_at_most(1.10)

`--perfbench-max-half-width 0.10` (or `max_half_width=` per call) also fails a gate whose interval
is wider than ±10%: too noisy to see the slowdown it guards. Every measured ratio, passing or
not, is listed in a "perfbench ratios" section at the end of the session.

Absolute times only mean something against a baseline recorded on the same, quiet machine; a
ratio of two things measured side by side cancels most of what differs between machines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from perfbench.measure.ab_ratio import Ratio, measure_ratio

DEFAULT_ROUNDS_BUDGET_S = 1.0  # timed work per point in perfbench_point when rounds is not given


def _resolve(path: str | Path, rootpath: Path) -> Path:
    """A scenario path as written in a test: relative to the cwd, else to the pytest rootdir."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return rootpath / p


def make_point(axes: dict[str, Any]) -> Any:
    """Validate axis values as the CLI does (a typo is an error listing the valid values)."""
    from perfbench.backends import backend_names
    from perfbench.results.axes import Point, parse_axis_value

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
    from perfbench.measure.timing import TimingSettings, warm_up
    from perfbench.measure.workload import build_workload, skip_reason
    from perfbench.scenario.loading import load_scenario

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


MEASURED_RATIOS = pytest.StashKey[list[tuple[str, Ratio]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perfbench", "perfbench ratio gates")
    group.addoption(
        "--perfbench-max-half-width",
        type=float,
        default=None,
        metavar="FRACTION",
        help="fail a perfbench_ratio gate whose 95%% interval is wider than ±FRACTION (e.g. 0.10): "
        "too noisy to see the slowdown it guards (default: the ini value, else no limit)",
    )
    parser.addini("perfbench_max_half_width", "default for --perfbench-max-half-width", default="")


def _max_half_width(config: pytest.Config) -> float | None:
    value = config.getoption("perfbench_max_half_width", None)
    if value is None:
        text = str(config.getini("perfbench_max_half_width") or "").strip()
        try:
            value = float(text) if text else None
        except ValueError:
            raise pytest.UsageError(
                f"ini perfbench_max_half_width must be a number such as 0.10, got {text!r}"
            ) from None
    if value is not None and not value > 0:
        raise pytest.UsageError(f"--perfbench-max-half-width must be > 0, got {value}")
    return value


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Every ratio the gates measured, passed or not, as pytest-benchmark prints its table:
    a passing gate still says how far from its limit it was, and how sure."""
    measured = terminalreporter.config.stash.get(MEASURED_RATIOS, [])
    if not measured:
        return
    terminalreporter.write_sep("-", f"perfbench ratios: {len(measured)} measured (A/B, 95% CI)")
    for nodeid, ratio in measured:
        terminalreporter.write_line(f"{nodeid}: {ratio.summary()}")


class RatioGate:
    """What the `perfbench_ratio` fixture gives: call it with a scenario and two points, or
    `.measure(fn_a, fn_b, ...)` with two callables; every Ratio is reported at the end."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.opened: list[PreparedPoint] = []
        self.max_half_width = _max_half_width(request.config)

    def _keep(self, ratio: Ratio, max_half_width: float | None) -> Ratio:
        ratio.max_half_width = max_half_width if max_half_width is not None else self.max_half_width
        self._request.config.stash.setdefault(MEASURED_RATIOS, []).append(
            (self._request.node.nodeid, ratio)
        )
        return ratio

    def __call__(
        self,
        scenario: str | Path,
        a: dict[str, Any],
        b: dict[str, Any],
        budget_s: float = 3.0,
        max_half_width: float | None = None,
        **common: Any,
    ) -> Ratio:
        """Build and check both points, warm both, then `measure_ratio` them interleaved."""
        path = _resolve(scenario, self._request.config.rootpath)
        pa = prepare_point(path, **{**common, **a})
        self.opened.append(pa)
        pb = prepare_point(path, **{**common, **b})
        self.opened.append(pb)
        if pa.device != pb.device:
            raise ValueError("a ratio compares points on one device")
        threads = {make_point({**common, **side}).threads for side in (a, b)}
        ratio = measure_ratio(
            synced(pa.step, pa.sync),
            synced(pb.step, pb.sync),
            device=pa.device,
            budget_s=budget_s,
            label=f"{pa.label} / {pb.label}",
            threads=threads.pop() if len(threads) == 1 else None,  # else threads are compared
        )
        return self._keep(ratio, max_half_width)

    def measure(
        self,
        fn_a: Callable[[], Any],
        fn_b: Callable[[], Any],
        max_half_width: float | None = None,
        **kwargs: Any,
    ) -> Ratio:
        """`measure_ratio(fn_a, fn_b, **kwargs)`, reported and guarded like a scenario ratio."""
        return self._keep(measure_ratio(fn_a, fn_b, **kwargs), max_half_width)


@pytest.fixture
def perfbench_ratio(request: pytest.FixtureRequest) -> Iterator[RatioGate]:
    """`perfbench_ratio(scenario, a_axes, b_axes, budget_s=3.0, max_half_width=None,
    **common_axes) -> Ratio`, or `perfbench_ratio.measure(fn_a, fn_b, **measure_ratio_args)`;
    `max_half_width` defaults to `--perfbench-max-half-width`."""
    gate = RatioGate(request)
    yield gate
    for prepared in gate.opened:
        prepared.close()
