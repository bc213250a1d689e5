"""What `perfbench run` prints while it runs: a line per comparison group, then per point its
result (or why it was skipped or failed) and what its step printed. Silent with -q."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfbench.cli.capture import load_notes, output_notes
from perfbench.execute.events import (
    GroupStarted,
    Interrupted,
    Phase,
    PointDone,
    ProgressEvent,
    RepetitionStarted,
    RunWarning,
)
from perfbench.measure.compile_watch import partly_eager
from perfbench.results import facts

if TYPE_CHECKING:
    from pathlib import Path

    from perfbench.launch import RunStart
    from perfbench.results.row import Row


def _fmt_ms(ms: float) -> str:
    return f"{ms * 1e3:.1f} µs" if ms < 1 else f"{ms:.3f} ms"


class Progress:
    """Prints a line per group and per point on stdout; silent with -q."""

    def __init__(self, quiet: bool, run_dir: Path | None = None) -> None:
        self.quiet = quiet
        self.run_dir = run_dir  # where the logs the notes name are

    def __call__(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        match event:
            case GroupStarted():
                self._on_group(event)
            case RepetitionStarted():  # --repeat N: the sweep starts again in fresh workers
                print(f"repetition {event.number}/{event.of} (fresh workers)", flush=True)
            case Phase():  # inside a long group: preparing / warming up / timing round n of m
                print(f"    ... {event.text}", flush=True)
            case RunWarning():
                print(f"perfbench: warning: {event.message}", flush=True)
            case PointDone():
                self._on_done(event)
            case Interrupted():
                print(f"interrupted: kept {event.done} of {event.total} points", flush=True)

    def _on_group(self, event: GroupStarted) -> None:
        backends = ", ".join(event.group.backends)
        where = f" on {event.host}" if event.host else ""
        print(
            f"group {event.number}/{event.groups}: {event.group.group_id} [{backends}]{where}",
            flush=True,
        )

    def _on_done(self, event: PointDone) -> None:
        row = event.row
        print(f"[{event.index + 1}/{event.total}] {event.point.label()}", flush=True)
        print(_result_line(row), flush=True)
        if row.status == "ok" and row.verdict_reason:
            kind = "control" if row.backend == "eager" else "verdict"  # eager: the A/A line
            print(f"    {kind}: {row.verdict_reason}", flush=True)
        hit = row.extra.get(facts.RECOMPILE_LIMIT)
        if row.status == "ok" and hit and partly_eager(hit) not in row.verdict_reason:
            print(f"    note: {partly_eager(hit)}", flush=True)  # no verdict line says it
        procs = row.extra.get(facts.PROCESSES) or {}
        if procs and (row.backend == "eager" or procs.get("count", 1) > 1):
            print(f"    processes: {procs.get('count')} ({_processes_text(procs)})", flush=True)
        if row.contended:
            why = row.extra.get(facts.CONTENTION) or "other processes took CPU"
            print(f"    contended: {why}", flush=True)
        if row.caveat and row.caveat not in row.verdict_reason:
            print(f"    caveat: {row.caveat}", flush=True)  # perfbench.measure.caveat
        for note in output_notes(row.extra, self.run_dir):
            print(note, flush=True)

    def start(self, start: RunStart) -> None:
        """The run folder exists (perfbench.launch's `on_start`): what runs where, and what the
        scenario printed while it was imported (and a stale lock it took over)."""
        self.run_dir = start.run_path
        if not self.quiet:
            if start.took_over:
                print(f"perfbench: {start.run_path}: {start.took_over}", flush=True)
            print(f"perfbench: {start.points} points of {start.scenario_path} -> {start.run_path}")
            notes = load_notes(start.load_output, start.run_path)
            print(*notes, sep="\n", end="\n" if notes else "", flush=True)


def _result_line(row: Row) -> str:
    if row.status == "skipped":
        return f"    skipped: {row.reason}"
    if row.status != "ok":
        return f"    {row.status}: {row.error}"
    line = (
        f"    ok  median {_fmt_ms(row.median_ms or 0.0)}  IQR {_fmt_ms(row.iqr_ms or 0.0)}"
        f"  {row.throughput or 0.0:,.0f} samples/s  rel_err {row.rel_err or 0.0:.1e}"
        f"  cold start {row.cold_start_s or 0.0:.2f} s"
    )
    if row.correctness_only:
        line += "  (interpreter: not performance)"
    return line


def _processes_text(procs: dict[str, Any]) -> str:
    """Why this many processes, and (k > 1) which branch of the two-level model gave the interval."""
    method = procs.get("method")
    if procs.get("count", 1) > 1 and method:
        spread = "their spread" if method == "between" else "their own noise (they agree)"
        kind = f"t({procs['count'] - 1}) on the per-process estimates, variance from {spread}"
        return f"{procs.get('why')}; interval: {kind}, perfbench/stats/two_level.py"
    return str(procs.get("why"))
