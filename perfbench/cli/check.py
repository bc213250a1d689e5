"""`perfbench check SCENARIO`: load the scenario, run the sanity ladder, print its table.

The ladder itself (perfbench/check/) never prints; this is the terminal side. What the scenario,
the model or a library prints while the ladder runs (torchao's warning about its .so, a model's own
prints) is captured like `perfbench run` captures it, into a log file the table's last line names:
the terminal shows the ladder and nothing else.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from perfbench.check.ladder import run_check
from perfbench.scenario.loading import ScenarioError

# where check's captured output goes (there is no run folder): one log per check, kept
CHECK_LOGS = Path(tempfile.gettempdir()) / "perfbench-check"


def check_main(
    scenario_path: str,
    backends: list[str],
    quiet: bool = False,
    load_timeout_s: float | None = None,
) -> int:
    """Load (within `load_timeout_s`, default `scenario_capture.DEFAULT_LOAD_TIMEOUT_S`), run the ladder,
    print its table. Exit 0 if no rung failed, 1 if one did, 2 if the scenario cannot be loaded
    (message on stderr)."""
    from perfbench.cli.capture import output_notes
    from perfbench.execute.scenario_capture import DEFAULT_LOAD_TIMEOUT_S
    from perfbench.measure.worker_output import OutputCapture, log_path
    from perfbench.scenario.bounded_load import load_for_command

    if load_timeout_s is None:
        limit = (DEFAULT_LOAD_TIMEOUT_S, "the default limit; --timeout sets it")
    else:
        limit = (load_timeout_s, "--timeout")
    name = f"{Path(scenario_path).stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    capture = OutputCapture.install()
    capture.begin(CHECK_LOGS, name)
    error = report = None
    try:
        scenario = load_for_command(scenario_path, *limit, capture.terminal_fds[1])
        report = run_check(scenario, backends=backends)
    except ScenarioError as err:
        error = err
    finally:  # the terminal comes back whatever happened
        output = capture.end()
        capture.restore()
    notes = output_notes(output.facts(), CHECK_LOGS)
    notes = [n.replace("    output:", "scenario and library output:") for n in notes]
    if error is not None or report is None:
        print(f"error: {error}", file=sys.stderr)
        if output.bytes:
            lines = log_path(CHECK_LOGS, name).read_text(errors="replace").splitlines()[-20:]
            print(*notes, *lines, sep="\n", file=sys.stderr)
        return 2
    print(report.format_text(quiet=quiet))
    if notes and not quiet:
        print(*notes, sep="\n")
    return 0 if report.ok else 1
