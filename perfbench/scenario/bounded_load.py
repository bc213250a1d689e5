"""Load a scenario within a time limit, so a file that hangs while it is imported (a module-level
loop, a blocking call) stops `perfbench run` and `perfbench check` with a message that names it,
instead of hanging them forever with nothing printed.

In-process, so a scenario that loads fine costs nothing extra (a subprocess would pay torch's
import again, seconds here): a SIGALRM timer interrupts the import, and the traceback it leaves
says which line of the scenario was running. That covers Python loops, sleeps and lock waits.
Signals reach the main thread only; from another thread the load is not bounded. A hang inside C
code that never returns to Python cannot be interrupted by a signal handler: `hard_deadline` is
the command line's last resort for that case (it ends the process).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from perfbench.scenario.loading import (
    Scenario,
    ScenarioError,
    load_scenario,
    probe_scenario,
    user_frame_line,
)


class _LoadTimeout(BaseException):
    """Raised by the alarm inside the scenario's code: a BaseException, so a scenario's own
    `except Exception` cannot swallow it."""


def load_bounded(path: str | Path, limit_s: float, limit_from: str) -> Scenario:
    """`load_scenario` + `probe_scenario` (one `make_batch` call), stopped after `limit_s` seconds
    with a `ScenarioError` saying which of the two did not finish, at which line, and where the
    limit came from (`limit_from`, e.g. "--timeout" or "the default; set it with --timeout")."""
    path = Path(path)
    if threading.current_thread() is not threading.main_thread():
        scenario = load_scenario(path)
        probe_scenario(scenario)
        return scenario
    phase = "import"

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if phase != "done":
            raise _LoadTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        scenario = load_scenario(path)
        phase = "probe"
        probe_scenario(scenario)
        phase = "done"
        return scenario
    except _LoadTimeout as stop:
        _forget_module(path)
        what = (
            "did not finish importing"
            if phase == "import"
            else "make_batch(2), called once after importing, did not return"
        )
        # file:line in front of the message is the line that was running when it was stopped
        line = user_frame_line(path, stop)
        raise ScenarioError(
            path, f"{what} within {limit_s:g} s ({limit_from})", line=line
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _forget_module(path: Path) -> None:
    """Drop the half-imported scenario module that load_scenario registered in sys.modules."""
    resolved = path.resolve()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name.startswith("perfbench_scenario_") and file and Path(file).resolve() == resolved:
            del sys.modules[name]


HARD_GRACE_S = 5.0  # after the alarm's limit, how long a C-level hang gets before the process ends


def load_for_command(
    path: str | Path, limit_s: float, limit_from: str, message_fd: int = 2
) -> Scenario:
    """`load_bounded` under a `hard_deadline` of limit + HARD_GRACE_S: for `perfbench run` and
    `perfbench check`, which end with status 2 when a scenario cannot be loaded anyway.
    `message_fd` is the terminal's stderr (fd 2 may be captured while the scenario loads)."""
    message = (
        f"perfbench: scenario error: {path}: did not finish importing within {limit_s:g} s "
        f"({limit_from}), and the alarm could not interrupt it for {HARD_GRACE_S:g} s more "
        "(stuck in C code?): stopped"
    )
    with hard_deadline(limit_s + HARD_GRACE_S, message, fd=message_fd):
        return load_bounded(path, limit_s, limit_from)


@contextmanager
def hard_deadline(limit_s: float, message: str, exit_code: int = 2, fd: int = 2) -> Iterator[None]:
    """For command-line entries only: if the block is still running after `limit_s`, write
    `message` to `fd` (stderr) and end the process with `exit_code`. The last resort for a
    scenario stuck in C code that the alarm in `load_bounded` cannot interrupt; cancelled on exit."""
    timer = threading.Timer(limit_s, _exit_now, args=(message, exit_code, fd))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _exit_now(message: str, exit_code: int, fd: int) -> None:
    os.write(fd, (message.rstrip("\n") + "\n").encode())
    os._exit(exit_code)
