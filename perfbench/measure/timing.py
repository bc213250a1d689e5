"""Timing one callable honestly: warm up, then repeat until the median is tight or the budget is spent.

Measuring, the result and presenting are separate (as in torch.utils.benchmark): `measure` returns
a `Measurement` holding the raw per-call times; the statistics are derived from them, never stored
twice. On CUDA every sample is bracketed by CUDA events and the host waits on the end event before
reading it (rule 3: no bare host clock around asynchronous work). On CPU `time.perf_counter` is used.

Stopping rule: after `min_reps` samples, stop once the distribution-free 95% confidence interval of
the median (order statistics n/2 ± 0.98·sqrt(n)) is narrower than `target_ci` of the median, or when
`budget_s` of timed work is spent, or at `max_reps`. Fast steps are timed `number` calls per sample
(calibrated so a sample lasts at least `min_sample_s`), so timer resolution and per-sample overhead
stay small against what is measured.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

NOISE_WARN = (
    0.10  # IQR/median above this "could indicate system fluctuation" (torch.utils.benchmark)
)
NOISE_BAD = 0.25


@dataclass(frozen=True)
class TimingSettings:
    """How hard to try for one point; defaults suit a 2-core CPU sweep that ends within a minute."""

    budget_s: float = 2.0  # timed work per point, warm-up excluded
    warmup_s: float = 0.3
    min_warmup: int = 2
    min_reps: int = 7
    max_reps: int = 10_000
    target_ci: float = 0.01  # stop when the median's 95% CI is within ±1% of the median
    min_sample_s: float = 1e-3
    # practical margin of a verdict: a speedup inside [1/(1+margin), 1+margin] is "same"
    margin: float = 0.03
    # without --timeout: a step may take this many times the slowest step so far, a phase
    # (build, compile, profiling) this many seconds (perfbench.measure.step_limit)
    timeout_factor: float = 50.0
    timeout_floor_s: float = 600.0
    # --wait-quiet: wait up to this many seconds before a group for others to leave its threads
    # free (perfbench.measure.quiet); 0 = do not wait
    wait_quiet_s: float = 0.0


@dataclass
class Measurement:
    """Raw per-call times (seconds, already divided by `number`) and the statistics derived from them."""

    times_s: list[float]
    number: int  # calls per sample
    timer: str  # "cuda_event" | "perf_counter"
    warmup_calls: int = 0
    stop_reason: str = ""

    def quantile(self, q: float) -> float:
        data = sorted(self.times_s)
        if len(data) == 1:
            return data[0]
        pos = q * (len(data) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(data) - 1)
        return data[lo] + (data[hi] - data[lo]) * (pos - lo)

    @property
    def median(self) -> float:
        return statistics.median(self.times_s)

    @property
    def iqr(self) -> float:
        return self.quantile(0.75) - self.quantile(0.25)

    @property
    def noise(self) -> float:
        """IQR / median: the relative spread used to judge significance and to warn."""
        med = self.median
        return self.iqr / med if med > 0 else math.inf

    def median_ci(self) -> tuple[float, float]:
        """Distribution-free ~95% confidence interval of the median from order statistics."""
        return median_ci(self.times_s)

    def noise_warning(self) -> str | None:
        if self.noise > NOISE_BAD:
            return f"IQR is {self.noise:.0%} of the median: the machine is noisy, do not trust small differences"
        if self.noise > NOISE_WARN:
            return f"IQR is {self.noise:.0%} of the median: could indicate system fluctuation"
        return None


def median_ci(values: list[float]) -> tuple[float, float]:
    data = sorted(values)
    n = len(data)
    if n < 3:
        return (data[0], data[-1])
    half = 0.98 * math.sqrt(n)  # 1.96 * sqrt(n) / 2
    lo = max(math.floor(n / 2 - half), 0)
    hi = min(math.ceil(n / 2 + half), n - 1)
    return (data[lo], data[hi])


class Timer:
    """Times `number` calls of fn and returns seconds per call. One class per clock."""

    name = "perf_counter"

    def __call__(self, fn: Callable[[], Any], number: int) -> float:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - start) / number


class CudaEventTimer(Timer):
    """CUDA events around the calls; synchronises on the end event before reading it."""

    name = "cuda_event"

    def __init__(self) -> None:
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def __call__(self, fn: Callable[[], Any], number: int) -> float:
        self.start.record()
        for _ in range(number):
            fn()
        self.end.record()
        self.end.synchronize()
        return self.start.elapsed_time(self.end) / 1e3 / number


def timer_for(device: str) -> Timer:
    if device.startswith("cuda"):
        return CudaEventTimer()
    return Timer()


def warm_up(fn: Callable[[], Any], sync: Callable[[], None], settings: TimingSettings) -> int:
    """Run fn until warmup_s has passed and at least min_warmup calls were made; return the count."""
    calls = 0
    start = time.perf_counter()
    while calls < settings.min_warmup or time.perf_counter() - start < settings.warmup_s:
        fn()
        calls += 1
        if calls >= settings.min_warmup and calls >= 1000:
            break
    sync()
    return calls


def calibrate_number(fn: Callable[[], Any], timer: Timer, min_sample_s: float) -> int:
    """Calls per sample so that one sample lasts at least min_sample_s (powers of two)."""
    number = 1
    while number < 1 << 16:
        if timer(fn, number) * number >= min_sample_s:
            break
        number *= 2
    return number


def measure(
    fn: Callable[[], Any],
    device: str = "cpu",
    settings: TimingSettings | None = None,
    sync: Callable[[], None] | None = None,
    before_timing: Callable[[], None] | None = None,
) -> Measurement:
    """Warm up fn, then time it per the stopping rule in the module docstring.

    `before_timing` runs once between warm-up and timing (e.g. to reset data-wait counters or
    peak-memory statistics so they cover the timed phase only).
    """
    settings = settings or TimingSettings()
    sync = sync or (torch.cuda.synchronize if device.startswith("cuda") else (lambda: None))
    timer = timer_for(device)
    warmup_calls = warm_up(fn, sync, settings)
    number = calibrate_number(fn, timer, settings.min_sample_s)
    if before_timing is not None:
        before_timing()
    times: list[float] = []
    spent = 0.0
    stop = "max_reps"
    while len(times) < settings.max_reps:
        per_call = timer(fn, number)
        times.append(per_call)
        spent += per_call * number
        if len(times) >= settings.min_reps:
            lo, hi = median_ci(times)
            med = statistics.median(times)
            if med > 0 and (hi - lo) / 2 <= settings.target_ci * med:
                stop = "ci_tight"
                break
            if spent >= settings.budget_s:
                stop = "budget"
                break
    sync()
    return Measurement(
        times_s=times, number=number, timer=timer.name, warmup_calls=warmup_calls, stop_reason=stop
    )


def timer_overhead_s(device: str = "cpu", samples: int = 200) -> float:
    """Median cost of timing an empty call with the device's timer (one call per sample)."""
    timer = timer_for(device)

    def noop() -> None:
        return None

    for _ in range(10):
        timer(noop, 1)
    return statistics.median(timer(noop, 1) for _ in range(samples))


def is_significant(ratio: float, noise_a: float, noise_b: float) -> bool:
    """A change B/A - 1 is significant when its size exceeds the noise of *both* runs.

    This is no verdict rule any more. Verdicts come from paired interleaved rounds
    (`perfbench.stats.speedup`, `perfbench.stats.verdict`): points timed minutes apart drift by more than
    either one's IQR, which is why this rule once called noise a speedup. It remains only where
    no paired rounds exist, and every caller says so next to its output: a results.csv written
    before the verdict columns (the report's and the advisor's fallback), and `perfbench compare` between two runs
    that were not made with `--repeat` (where runs cannot be the unit). It is a screen, not a
    test: it has no error rate.

    Noise is each run's IQR / median of the per-step times: the relative width of the middle
    half of what that run measured. The standard error of a median is far smaller (about
    1.25 * IQR / sqrt(n)), but it only describes sampling within one run; between two runs the
    machine itself moves (clocks, thermal state, neighbours, allocator and cache state), which is
    what the step-to-step spread shows and what the standard error hides. So a change is called
    real only when it is wider than the spread of each run: a change inside either run's IQR
    could have been drawn from that run alone. Unknown noise (NaN) is never significant: without
    a spread there is nothing to call a change larger than.
    """
    if any(math.isnan(x) for x in (ratio, noise_a, noise_b)):
        return False
    return abs(ratio - 1.0) > max(noise_a, noise_b)
