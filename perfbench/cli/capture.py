"""What the command line shows of output it captured instead of printing: the notes about what
the scenario printed while it was loaded (perfbench.execute.scenario_capture keeps it in
RUN_DIR/logs/load.log) and about a point's captured output (line count, a flag when the step
printed while timed). Kept apart from cli.py, which owns the commands; nothing here imports torch
at import time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from perfbench.results import facts


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
    if extra.get(facts.OUTPUT_BYTES):
        lines = extra[facts.OUTPUT_LINES]
        cut = extra.get(facts.OUTPUT_CUT_BYTES)
        kept = f", {_size(cut)} of it cut from the middle" if cut else ""
        notes.append(
            f"    output: {lines:,} line{'' if lines == 1 else 's'}"
            f" ({_size(extra[facts.OUTPUT_BYTES])}{kept}) in "
            + (
                shown_path(Path(run_dir) / extra[facts.OUTPUT_LOG])
                if run_dir
                else extra[facts.OUTPUT_LOG]
            )
        )
    if extra.get(facts.PRINTED_DURING_TIMING_BYTES):
        notes.append(
            f"    warning: the step printed {_size(extra[facts.PRINTED_DURING_TIMING_BYTES])} while it"
            " was timed: its time includes writing that output"
        )
    return notes


def load_notes(load_output: dict[str, Any] | None, run_dir: Path) -> list[str]:
    """The terminal's note about what the scenario printed while it was imported (the `extra`
    that `LoadedScenario.keep` returns); nothing when it printed nothing."""
    if not load_output:
        return []
    notes = output_notes(load_output, run_dir)
    return [note.replace("    output:", "    scenario import output:") for note in notes]


def print_load_tail(err: BaseException) -> None:
    """What the scenario printed before its load failed (`scenario_capture.printed_tail`), on
    stderr before the error itself."""
    tail = getattr(err, "printed_tail", None)
    if tail:
        print(tail, file=sys.stderr)
