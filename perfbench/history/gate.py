"""`perfbench history --fail-on-regression [PCT]`: the CI gate.

For each point and metric (eager's median; each backend's speedup), the newest position's
evidence records are compared with the recent comparable history before it: at most ten evidence
records, and only those since the last step found there (a regression already accepted is the
new baseline). The change is the ratio of geometric means with a 95% Student t interval on the
logs, the noise pooled over both sides -- the interval rule `perfbench compare` applies with runs
as the unit. A regression fails the gate when the WHOLE interval is beyond PCT: eager slower by
more than PCT%, or a speedup smaller by more than PCT%. Too little evidence is said, never failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perfbench.history.steps import compare_last
from perfbench.history.trend import PointHistory, evidence

RECENT = 10


@dataclass(frozen=True)
class GateLine:
    """One point-and-metric judgement, with the basis it rests on."""

    point: str
    metric: str
    failed: bool
    text: str


def _judge(history: PointHistory, backend: str, pct: float) -> GateLine | None:
    blocks = [evidence(p, backend) for p in history.positions]
    if not any(blocks):
        return None
    metric = "eager median" if backend == "eager" else f"speedup of {backend}"
    newest = history.positions[-1]
    result = compare_last(blocks, RECENT) if len(blocks) > 1 else None
    if result is None:
        text = (
            f"{metric}: not judged: newest {newest.label} has {len(blocks[-1])} evidence records, "
            f"history before it {sum(len(b) for b in blocks[:-1])} (2 needed)"
        )
        return GateLine(history.label, metric, False, text)
    ratio, low, high, n_base, n_new = result
    limit = 1 + pct / 100
    if backend == "eager":
        failed, change = low > limit, f"newest/base time {ratio:.3f} (95% CI {low:.3f}-{high:.3f})"
    else:
        failed = high < 1 / limit
        change = f"newest/base speedup {ratio:.3f} (95% CI {low:.3f}-{high:.3f})"
    verdict = "REGRESSION" if failed else "ok"
    text = (
        f"{metric}: {verdict}: {change}; basis: {n_new} evidence records at {newest.label} vs "
        f"{n_base} recent comparable records before it; fails beyond {pct:g}%"
    )
    return GateLine(history.label, metric, failed, text)


def gate(histories: Sequence[PointHistory], pct: float) -> list[GateLine]:
    """Judge every point's newest position; lines for the terminal, `failed` for the exit."""
    lines = []
    for history in histories:
        for backend in history.backends:
            line = _judge(history, backend, pct)
            if line is not None:
                lines.append(line)
    return lines
