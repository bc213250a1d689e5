"""Time several arms of a comparison group in alternating rounds, in one process, on one batch.

Drift between two measurements taken minutes apart (clocks, a neighbour's load, steal time) is
larger than either measurement's spread on a shared machine, so backends are compared the way
PyTorch's dynamo runner does it, "to handle frequency scaling and load changes": every round
takes one sample of every arm, back to back, and the speedup comes from the per-round pairs
(`perfbench.stats.speedup`).

How a group is timed:

1. Each arm is warmed up on its own (`timing.warm_up`), then its calls per sample are calibrated
   once (`timing.calibrate_number`) so a sample lasts at least `min_sample_s`.
2. The order of arms changes every round by a Williams design (`balanced_orders`): over one
   period every arm runs in every position, and right after every other arm, equally often;
   the rounds of a period are chained so that no arm runs twice in a row across a round
   boundary (a repeated arm would run with warm caches). Two arms cannot avoid it: they get
   ABBA, where each arm repeats once per period, which is again balanced.
3. One period of warm-up rounds is run and dropped; it is also the pilot that times a round.
4. The number of timed rounds is fixed then, before the first timed round: as many whole
   periods as fit in `budget_s`, at least `min_periods` (so the speedup has at least five
   blocks of whole periods). Why fixed and not "until the interval is tight": stopping on the
   data makes intervals too narrow just when the noise happened to look small (optional
   stopping); the number of rounds depends only on how long a warm-up round took. The one
   exception is a deadline (`deadline_factor` × the planned time), checked only between whole
   periods once `min_periods` are done, so that a machine that becomes very busy cannot hold a
   worker forever; it depends on elapsed time, never on the ratios, and `stop_reason` says when
   it fired. Where the minimum is far over the budget, `round_plan` times fewer calls per sample
   or fewer periods instead, and says so up front (`on_plan`).

Thread count: the group's `threads` are set before the rounds and checked after every sample; an
arm that changes it (an ONNX Runtime session with its own pool, a library calling
torch.set_num_threads) raises `ThreadsChanged`, naming the arm, because the comparison would
then measure threads.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from perfbench.measure.round_plan import RoundPlan, periods_in_budget, plan_rounds
from perfbench.measure.timing import (
    Measurement,
    Timer,
    TimingSettings,
    calibrate_number,
    timer_for,
    warm_up,
)
from perfbench.stats.speedup import DEFAULT_BLOCKS, PairedEstimate, estimate_speedup


@dataclass(frozen=True)
class InterleaveSettings:
    """How long to time a group; defaults keep the default MLP sweep (two groups of three arms,
    control included) under a minute on a 2-core CPU with a warm inductor cache."""

    budget_s: float = 3.0  # timed work of the whole group (all arms), warm-up excluded
    warmup_s: float = 0.2  # per arm, before calibration
    min_warmup: int = 2
    blocks: int = DEFAULT_BLOCKS  # the speedup's batch-means blocks (of whole periods)
    min_periods: int = 5  # at least this many periods of the order design are timed
    min_sample_s: float = 1e-3
    floor_periods: int = 3  # fewest periods when the minimum is far over budget (round_plan)
    max_rounds: int = 3000
    deadline_factor: float = 3.0  # stop (between whole periods) past this × the planned time


@dataclass
class Interleaved:
    """The raw samples of one interleaved run: one sample per arm per timed round."""

    arms: tuple[str, ...]
    times_s: dict[str, list[float]]  # per arm, in round order, seconds per call
    numbers: dict[str, int]  # calls per sample, per arm
    orders: list[tuple[str, ...]]  # the order the arms ran in, per timed round
    warmup_calls: dict[str, int]  # warm-up calls per arm, warm-up rounds included
    timer: str
    threads: int | None
    period: int  # rounds per period of the order design
    blocks: int
    planned_rounds: int
    stop_reason: str  # "planned" | "deadline"
    timed_s: float  # seconds of timed work, all arms
    wall_s: float  # seconds from the first warm-up call to the last sample
    planned_s: float = 0.0  # the timed work the plan announced (round_plan)
    plan_note: str = ""  # why the plan departed from the budget ("" when it fit)

    def summary(self) -> dict[str, Any]:
        """What results.csv's extra.interleaved keeps of the rounds."""
        return {
            "arms": list(self.arms),
            "rounds": self.rounds,
            "period": self.period,
            "blocks": self.blocks,
            "stop_reason": self.stop_reason,
            "timed_s": round(self.timed_s, 3),
            "planned_s": round(self.planned_s, 3),
            **({"plan_note": self.plan_note} if self.plan_note else {}),
        }

    @property
    def rounds(self) -> int:
        return len(self.orders)

    def measurement(self, arm: str) -> Measurement:
        """The arm's own measurement (median, IQR, quantiles, raw samples), as `timing.measure`
        would return it."""
        return Measurement(
            times_s=list(self.times_s[arm]),
            number=self.numbers[arm],
            timer=self.timer,
            warmup_calls=self.warmup_calls[arm],
            stop_reason=f"interleaved: {self.rounds} rounds ({self.stop_reason})",
        )

    def estimate(self, arm: str, baseline: str = "eager") -> PairedEstimate:
        """The arm's speedup over the baseline (t_baseline / t_arm) from these rounds."""
        return estimate_speedup(
            self.times_s[baseline], self.times_s[arm], period=self.period, blocks=self.blocks
        )


def _chain(rows: list[tuple[int, ...]]) -> list[tuple[int, ...]] | None:
    """The rows in a cyclic order where no row starts with the arm the previous one ended on
    (depth-first search from the first row), or None when there is none (one or two arms)."""
    path, used = [0], {0}

    def extend() -> bool:
        if len(path) == len(rows):
            return rows[path[-1]][-1] != rows[path[0]][0]
        for j in range(len(rows)):
            if j not in used and rows[path[-1]][-1] != rows[j][0]:
                path.append(j)
                used.add(j)
                if extend():
                    return True
                path.pop()
                used.discard(j)
        return False

    return [rows[i] for i in path] if extend() else None


def balanced_orders(n: int) -> list[tuple[int, ...]]:
    """A Williams design for n arms: n orders (2n when n is odd), each arm in each position
    equally often and each arm right after each other arm equally often within the rows; the
    rows are chained so that no arm repeats across a round boundary where that is possible
    (n >= 3; for n = 2 each arm repeats once per period)."""
    if n < 1:
        raise ValueError(f"need at least one arm, got {n}")
    first = [0]
    for k in range(1, n):
        first.append((k + 1) // 2 if k % 2 else n - k // 2)
    rows = [tuple((x + i) % n for x in first) for i in range(n)]
    if n % 2 and n > 1:
        rows += [tuple(reversed(r)) for r in rows]
    return (_chain(rows) if n >= 3 else None) or rows


def plan_periods(period_s: float, settings: InterleaveSettings, period: int) -> int:
    """Timed periods: as many as fit into the budget, at least min_periods, at most max_rounds
    (before `round_plan` shrinks a minimum that is far over budget)."""
    return periods_in_budget(period_s, settings, period)


class ThreadsChanged(RuntimeError):
    """An arm changed torch's thread count; `arm` names it, so a caller can drop that arm alone."""

    def __init__(self, arm: str, message: str) -> None:
        super().__init__(message)
        self.arm = arm


def _check_threads(name: str, threads: int | None, when: str) -> None:
    if threads is not None and torch.get_num_threads() != threads:
        raise ThreadsChanged(
            name,
            f"arm {name!r} changed torch's thread count from {threads} to "
            f"{torch.get_num_threads()} {when}: the comparison would measure threads, "
            "not backends",
        )


class _Sampler:
    """One arm's sample: sync, time `number` calls, check the thread count afterwards."""

    def __init__(self, timer: Timer, sync: Callable[[], None], threads: int | None) -> None:
        self.timer, self.sync, self.threads = timer, sync, threads

    def __call__(self, name: str, fn: Callable[[], Any], number: int) -> float:
        self.sync()  # the previous arm's queued work must not land in this sample
        per_call = self.timer(fn, number)
        _check_threads(name, self.threads, "while it was timed")
        return per_call


def _warm_and_calibrate(
    name: str,
    fn: Callable[[], Any],
    sync: Callable[[], None],
    timer: Timer,
    threads: int | None,
    settings: InterleaveSettings,
) -> tuple[int, int]:
    """(warm-up calls, calls per sample) for one arm; calibration calls count as warm-up."""
    calls = 0

    def counted() -> Any:
        nonlocal calls
        calls += 1
        return fn()

    warm = TimingSettings(warmup_s=settings.warmup_s, min_warmup=settings.min_warmup)
    warm_up(counted, sync, warm)
    _check_threads(name, threads, "during its warm-up")
    number = calibrate_number(counted, timer, settings.min_sample_s)
    _check_threads(name, threads, "during its calibration")
    return calls, number


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    torch.set_num_threads(threads)
    got = torch.get_num_threads()
    if got != threads:
        raise RuntimeError(f"asked torch for {threads} threads, it runs {got}")


def _pilot(
    orders: list[tuple[str, ...]],
    arms: Mapping[str, Callable[[], Any]],
    sample: _Sampler,
    numbers: dict[str, int],
    warmup_calls: dict[str, int],
    settings: InterleaveSettings,
) -> RoundPlan:
    """One period of warm-up rounds (dropped, counted as warm-up): the plan from its times."""
    pilot: dict[str, list[float]] = {n: [] for n in numbers}
    for order in orders:
        for n in order:
            pilot[n].append(sample(n, arms[n], numbers[n]))
            warmup_calls[n] += numbers[n]
    per_call = {n: statistics.median(t) for n, t in pilot.items()}
    return plan_rounds(per_call, numbers, settings, len(orders))


def interleave(
    arms: Mapping[str, Callable[[], Any]],
    sync: Callable[[], None] | None = None,
    device: str = "cpu",
    threads: int | None = None,
    settings: InterleaveSettings | None = None,
    timer: Timer | None = None,
    before_timing: Callable[[], None] | None = None,
    on_plan: Callable[[RoundPlan], None] | None = None,
) -> Interleaved:
    """Warm up, calibrate and time `arms` (name -> zero-argument step) in balanced rounds.

    `sync` waits for the device (CUDA: `torch.cuda.synchronize`); it runs before every sample.
    `before_timing` runs once after the warm-up rounds, before the first timed round (to reset
    data-wait counters or start a contention probe); `on_plan` gets the plan just before that
    (`round_plan`: how many rounds, how long, and why if it departs from the budget).
    """
    settings = settings or InterleaveSettings()
    if not arms:
        raise ValueError("interleave needs at least one arm")
    names = tuple(arms)
    sync = sync or (torch.cuda.synchronize if device.startswith("cuda") else (lambda: None))
    timer = timer or timer_for(device)
    _set_threads(threads)
    sample = _Sampler(timer, sync, threads)
    start_wall = time.perf_counter()

    warmup_calls, numbers = {}, {}
    for n in names:
        warmup_calls[n], numbers[n] = _warm_and_calibrate(
            n, arms[n], sync, timer, threads, settings
        )
    orders = [tuple(names[i] for i in row) for row in balanced_orders(len(names))]
    period = len(orders)

    plan = _pilot(orders, arms, sample, numbers, warmup_calls, settings)
    numbers, planned = plan.numbers, plan.rounds
    deadline = settings.deadline_factor * max(settings.budget_s, plan.planned_s)
    min_rounds = min(settings.min_periods, plan.periods) * period
    if on_plan is not None:
        on_plan(plan)

    if before_timing is not None:
        before_timing()
    times: dict[str, list[float]] = {n: [] for n in names}
    done: list[tuple[str, ...]] = []
    timed_s = 0.0
    stop = "planned"
    timing_start = time.perf_counter()
    while len(done) < planned:
        at_period_end = len(done) % period == 0 and len(done) >= min_rounds
        if at_period_end and time.perf_counter() - timing_start > deadline:
            stop = "deadline"
            break
        order = orders[len(done) % period]
        for n in order:
            per_call = sample(n, arms[n], numbers[n])
            times[n].append(per_call)
            timed_s += per_call * numbers[n]
        done.append(order)
    sync()
    return Interleaved(
        arms=names,
        times_s=times,
        numbers=numbers,
        orders=done,
        warmup_calls=warmup_calls,
        timer=timer.name,
        threads=threads,
        period=period,
        blocks=settings.blocks,
        planned_rounds=planned,
        stop_reason=stop,
        timed_s=timed_s,
        wall_s=time.perf_counter() - start_wall,
        planned_s=plan.planned_s,
        plan_note=plan.note,
    )
