"""What a trend says: flagged steps (with the commits and the commands to confirm them) and
status changes, for one PointHistory.

Two kinds of evidence flag a step, both only from evidence records (trend.caveat):

- a *level shift* (perfbench.history.steps): eager's median, or a backend's speedup, moved
  between segments by more than the records' own spread, with a 95% interval over the records
  (run-to-run noise) that excludes no change. The records' own spread is the median relative
  half-width of their own intervals (eager's median CI; a backend's speedup CI), at least 5%.
- a *verdict change*: a backend's verdict flips between faster and same/slower, with at least
  two evidence records agreeing on each side (each verdict already cleared its own interval
  and A/A control when it was measured).
"""

from __future__ import annotations

import shlex
import statistics
from dataclasses import dataclass, field
from typing import Any

from perfbench.history.steps import MIN_SIDE, find_shifts
from perfbench.history.trend import PointHistory, Position, caveat, evidence

MIN_STEP = 0.05  # never flag a shift under 5%, whatever the records' spread


@dataclass(frozen=True)
class Step:
    """A flagged step of one metric of one point."""

    point: str
    metric: str  # "eager median" or "speedup of <backend>"
    backend: str
    before: Position  # last position of the segment before (last good, for a regression)
    after: Position  # first position of the segment after (first bad)
    ratio: float
    low: float
    high: float
    regression: bool
    evidence: str
    commands: list[str] = field(default_factory=list)

    def describe(self) -> str:
        word = "REGRESSION" if self.regression else "improvement"
        kind = "time x" if self.metric == "eager median" else "speedup x"
        return (
            f"{word} in {self.metric} at {self.point}: {self.before.label} -> "
            f"{self.after.label}, {kind} {self.ratio:.3f} (95% CI {self.low:.3f}-{self.high:.3f}); "
            f"{self.evidence}"
        )


def _spread(history: PointHistory, backend: str) -> float:
    """The records' own spread of the trended number: the median relative half-width of eager's
    median confidence interval (IQR/median / 2 where a record has none), or of a backend's
    speedup interval; never under MIN_STEP."""
    values = []
    for pos in history.positions:
        for rec in pos.records:
            if rec["backend"] != backend or caveat(rec) is not None:
                continue
            low, high, mid = (
                (rec.get("median_ci_low_ms"), rec.get("median_ci_high_ms"), rec.get("median_ms"))
                if backend == "eager"
                else (rec.get("speedup_ci_low"), rec.get("speedup_ci_high"), rec.get("speedup"))
            )
            if low and high and mid:
                values.append((high - low) / 2 / mid)
            elif backend == "eager" and rec.get("noise") is not None:
                values.append(float(rec["noise"]) / 2)
    return max(MIN_STEP, statistics.median(values)) if values else MIN_STEP


def _command(pos: Position, backend: str) -> str | None:
    return next(
        (r["command"] for r in pos.records if r["backend"] == backend and r.get("command")), None
    )


def rerun_commands(
    history: PointHistory, before: Position, after: Position, backend: str
) -> list[str]:
    """Shell lines that rerun the point at both ends, interleaved, then compare them."""
    command = _command(after, backend) or _command(before, backend)
    if not command:
        return []
    words = shlex.split(command)
    if before.commit is None or after.commit is None or "run" not in words:
        return [f"{command} --repeat 3   # no commits known: rerun here and compare"]
    root = before.repo_root or "."
    scen = words.index("run") + 1
    lines = []
    for tag, pos in (("good", before), ("bad", after)):
        lines.append(f"git -C {shlex.quote(root)} worktree add --detach /tmp/pb-{tag} {pos.commit}")
    loop = []
    for tag in ("good", "bad"):
        argv = list(words)
        argv[scen] = f"/tmp/pb-{tag}/{history.scenario}"
        loop.append(shlex.join([*argv, "--no-history", "-q"]) + f' --out "/tmp/pb-{tag}-$i"')
    lines.append(f"for i in 1 2 3; do {loop[0]}; {loop[1]}; done")
    lines.append("for i in 1 2 3; do perfbench compare /tmp/pb-good-$i /tmp/pb-bad-$i; done")
    return lines


def _shift_steps(history: PointHistory, backend: str) -> list[Step]:
    blocks = [evidence(p, backend) for p in history.positions]
    spread = _spread(history, backend)
    metric = "eager median" if backend == "eager" else f"speedup of {backend}"
    steps = []
    for s in find_shifts(blocks, spread):
        regression = s.ratio > 1 if backend == "eager" else s.ratio < 1
        # the step lies between the last position with evidence before the boundary and the
        # first with evidence after it: positions without evidence between them are unjudged
        before = max(i for i in range(s.index) if blocks[i])
        after = min(i for i in range(s.index, len(blocks)) if blocks[i])
        why = (
            f"shift clears the 95% interval and the records' spread ({spread:.1%}); "
            f"{s.n_before} records before, {s.n_after} after"
        )
        if after - before > 1:
            why += f"; {after - before - 1} positions between them have no evidence"
        steps.append(
            Step(
                history.label,
                metric,
                backend,
                history.positions[before],
                history.positions[after],
                s.ratio,
                s.low,
                s.high,
                regression,
                why,
                rerun_commands(
                    history, history.positions[before], history.positions[after], backend
                ),
            )
        )
    return steps


def _verdicts(history: PointHistory, backend: str) -> list[tuple[int, str]]:
    out = []
    for i, pos in enumerate(history.positions):
        for rec in pos.records:
            if rec["backend"] == backend and caveat(rec) is None and rec.get("verdict"):
                out.append((i, "faster" if rec["verdict"] == "faster" else "not faster"))
    return out


def verdict_steps(history: PointHistory, backend: str, shifts: list[Step]) -> list[Step]:
    """Flips between faster and not faster with MIN_SIDE agreeing records on each side."""
    seq, steps = _verdicts(history, backend), []
    for k in range(MIN_SIDE, len(seq) - MIN_SIDE + 1):
        left, right = seq[k - MIN_SIDE : k], seq[k : k + MIN_SIDE]
        kinds = {v for _, v in left}, {v for _, v in right}
        if len(kinds[0]) != 1 or len(kinds[1]) != 1 or kinds[0] == kinds[1]:
            continue
        if left[-1][0] == right[0][0]:
            continue  # the flip is inside one position: noise there, not a step
        before, after = history.positions[left[-1][0]], history.positions[right[0][0]]
        if any(s.after is after for s in shifts):
            continue
        lost = kinds[0] == {"faster"}
        ratio = float("nan")
        steps.append(
            Step(
                history.label,
                f"verdict of {backend}",
                backend,
                before,
                after,
                ratio,
                ratio,
                ratio,
                lost,
                f"verdict {next(iter(kinds[0]))} -> {next(iter(kinds[1]))} "
                f"({MIN_SIDE}+ evidence records each side)",
                rerun_commands(history, before, after, backend),
            )
        )
    return steps


def find_steps(history: PointHistory) -> list[Step]:
    """Every flagged step of a point, in position order."""
    steps: list[Step] = []
    for backend in history.backends:
        shifts = _shift_steps(history, backend)
        steps += shifts
        if backend != "eager":
            steps += verdict_steps(history, backend, shifts)
    order = {id(p): i for i, p in enumerate(history.positions)}
    return sorted(steps, key=lambda s: (order[id(s.after)], s.metric))


def status_changes(history: PointHistory) -> list[str]:
    """Lines for each backend whose status changed between positions (ok -> failed ...)."""
    lines = []
    for backend in history.backends:
        last: tuple[str, str] | None = None
        for pos in history.positions:
            status = ",".join(sorted({r["status"] for r in pos.records if r["backend"] == backend}))
            if status and last and status != last[1]:
                lines.append(f"{backend}: {last[1]} at {last[0]} -> {status} at {pos.label}")
            if status:
                last = (pos.label, status)
    return lines


def summary(history: PointHistory) -> dict[str, Any]:
    """Steps and status changes of one history, for the page and the CLI."""
    return {"steps": find_steps(history), "status_changes": status_changes(history)}
