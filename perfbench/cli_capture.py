"""What the command line shows of output it captured instead of printing: the scenario loaded with
fds 1 and 2 captured (what it, or a library it imports, prints goes to RUN_DIR/logs/load.log), and
the notes about a point's captured output (line count, a flag when the step printed while timed).
Kept apart from cli.py, which owns the commands; nothing here imports torch at import time.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfbench.catalog import DEFAULT_LOAD_TIMEOUT_S
from perfbench.worker_output import OutputCapture, PointOutput, log_path


@dataclass(frozen=True)
class LoadedScenario:
    """A scenario loaded by `load_capturing_output`, with what it printed while loading."""

    scenario: Any
    output: PointOutput
    log: bytes  # logs/load.log's content (the run folder did not exist while loading)

    def keep(self, run_dir: Path, write: bool = True) -> list[str]:
        """Write logs/load.log into the run folder (logs/load-2.log ... when an earlier run in
        the folder left one: nothing is overwritten); returns the terminal's note about it."""
        if not self.log:
            return []
        path = Path(run_dir) / self.output.log
        n = 1
        while path.exists():
            n += 1
            path = path.with_name(f"load-{n}.log")
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.log)
        extra = self.output.annotate({}).get("extra", {})
        extra["output_log"] = path.relative_to(run_dir).as_posix()
        notes = output_notes(extra, run_dir)
        return [note.replace("    output:", "    scenario import output:") for note in notes]


def load_limit(timeout: float | None) -> tuple[float, str]:
    """Seconds allowed for importing the scenario, and where that number came from."""
    if timeout is not None:
        return timeout, "--timeout"
    return DEFAULT_LOAD_TIMEOUT_S, "the default limit; --timeout sets it"


def load_capturing_output(
    path: str, timeout: float | None, end_process_on_hang: bool = True
) -> LoadedScenario:
    """Load the scenario within `load_limit(timeout)`, fds 1 and 2 captured. Raises
    `ScenarioError` as loading does; the last lines of what it printed go to stderr first.
    `end_process_on_hang`: the command line's last resort for a hang in C code (ends the
    process); the Python API passes False, since ending a notebook's kernel is worse."""
    from perfbench.bounded_load import load_bounded, load_for_command

    with tempfile.TemporaryDirectory(prefix="perfbench-load-") as tmp:
        log = log_path(tmp, "load")
        capture = OutputCapture.install()
        capture.begin(tmp, "load")
        loaded = False
        try:
            limit, limit_from = load_limit(timeout)
            if end_process_on_hang:
                scenario = load_for_command(path, limit, limit_from, capture.terminal_fds[1])
            else:
                scenario = load_bounded(path, limit, limit_from)
            loaded = True
        finally:  # the terminal comes back whatever happened (a ScenarioError, Ctrl-C)
            output = capture.end()
            capture.restore()
            if not loaded and output.bytes:
                lines = log.read_text(errors="replace").splitlines()[-20:]
                print(
                    f"perfbench: what the scenario printed while loading (last {len(lines)} of "
                    f"{output.lines:,} lines):",
                    *lines,
                    sep="\n",
                    file=sys.stderr,
                )
        return LoadedScenario(scenario, output, log.read_bytes() if log.exists() else b"")


def _size(n: int) -> str:
    return (
        f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB" if n >= 2**10 else f"{n} B"
    )


def shown_path(path: Path) -> str:
    """`path` as the terminal shows it: relative to the working directory when it lies below it
    (and that is shorter), else as given."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return rel if len(rel) < len(str(path)) and not rel.startswith("..") else str(path)


def output_notes(extra: dict[str, Any], run_dir: Path | None = None) -> list[str]:
    """What a point's worker wrote to stdout/stderr (kept in the run folder's logs/, not shown),
    from the row's `extra`; nothing when it wrote nothing. The log's path is shown in full
    (relative when shorter) when `run_dir` is given."""
    notes = []
    if extra.get("output_bytes"):
        lines = extra["output_lines"]
        cut = extra.get("output_cut_bytes")
        kept = f", {_size(cut)} of it cut from the middle" if cut else ""
        notes.append(
            f"    output: {lines:,} line{'' if lines == 1 else 's'}"
            f" ({_size(extra['output_bytes'])}{kept}) in "
            + (shown_path(Path(run_dir) / extra["output_log"]) if run_dir else extra["output_log"])
        )
    if extra.get("printed_during_timing_bytes"):
        notes.append(
            f"    warning: the step printed {_size(extra['printed_during_timing_bytes'])} while it"
            " was timed: its time includes writing that output"
        )
    return notes
