"""The scenario loaded with fds 1 and 2 captured: what it, or a library it imports, prints goes
to RUN_DIR/logs/load.log, not the terminal (the command line shows a note about it:
perfbench.cli.capture). Prints nothing; nothing here imports torch at import time."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfbench.measure.worker_output import OutputCapture, PointOutput, log_path
from perfbench.results import facts

# Importing a scenario (and its first make_batch) is bounded by --timeout when given, else this.
DEFAULT_LOAD_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LoadedScenario:
    """A scenario loaded by `load_capturing_output`, with what it printed while loading."""

    scenario: Any
    output: PointOutput
    log: bytes  # logs/load.log's content (the run folder did not exist while loading)

    def keep(self, run_dir: Path, write: bool = True) -> dict[str, Any] | None:
        """Write logs/load.log into the run folder (logs/load-2.log ... when an earlier run in
        the folder left one: nothing is overwritten); returns what it holds, as a point row's
        `extra` describes output (perfbench.cli.capture.load_notes), None when it is empty."""
        if not self.log:
            return None
        path = Path(run_dir) / self.output.log
        n = 1
        while path.exists():
            n += 1
            path = path.with_name(f"load-{n}.log")
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.log)
        extra = self.output.facts()
        extra[facts.OUTPUT_LOG] = path.relative_to(run_dir).as_posix()
        return extra


def load_limit(timeout: float | None) -> tuple[float, str]:
    """Seconds allowed for importing the scenario, and where that number came from."""
    if timeout is not None:
        return timeout, "--timeout"
    return DEFAULT_LOAD_TIMEOUT_S, "the default limit; --timeout sets it"


def load_capturing_output(
    path: str, timeout: float | None, end_process_on_hang: bool = True
) -> LoadedScenario:
    """Load the scenario within `load_limit(timeout)`, fds 1 and 2 captured. Raises
    `ScenarioError` as loading does, with the last lines of what it printed as the exception's
    `printed_tail` (the command line shows them first: perfbench.cli.capture.print_load_tail).
    `end_process_on_hang`: the command line's last resort for a hang in C code (ends the
    process); the Python API passes False, since ending a notebook's kernel is worse."""
    from perfbench.scenario.bounded_load import load_bounded, load_for_command

    with tempfile.TemporaryDirectory(prefix="perfbench-load-") as tmp:
        log = log_path(tmp, "load")
        capture = OutputCapture.install()
        capture.begin(tmp, "load")
        try:
            limit, limit_from = load_limit(timeout)
            if end_process_on_hang:
                scenario = load_for_command(path, limit, limit_from, capture.terminal_fds[1])
            else:
                scenario = load_bounded(path, limit, limit_from)
        except BaseException as err:  # what it printed before failing travels with the error
            output = capture.end()
            capture.restore()
            if output.bytes:
                lines = log.read_text(errors="replace").splitlines()[-20:]
                err.printed_tail = "\n".join(  # type: ignore[attr-defined]
                    [
                        f"perfbench: what the scenario printed while loading (last {len(lines)} "
                        f"of {output.lines:,} lines):",
                        *lines,
                    ]
                )
            raise
        output = capture.end()  # the terminal comes back
        capture.restore()
        return LoadedScenario(scenario, output, log.read_bytes() if log.exists() else b"")
