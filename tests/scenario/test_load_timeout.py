"""A scenario that hangs while it is imported (or in its first make_batch) stops loading after the
limit with a message naming the file and line, in-process and from `perfbench run` / `check`."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from perfbench.scenario.bounded_load import load_bounded
from perfbench.scenario.loading import ScenarioError
from tests.conftest import TINY_MLP

LOOP_AT_IMPORT = TINY_MLP + "\nwhile True:  # never ends\n    pass\n"
SWALLOWING_SLEEP = (
    TINY_MLP
    + """
import time
while True:
    try:
        time.sleep(10)
    except Exception:  # must not swallow the limit
        pass
"""
)
HANGING_MAKE_BATCH = TINY_MLP + (
    "\nimport time\n\ndef make_batch(batch_size):\n    time.sleep(60)\n    return torch.randn(1)\n"
)


def _line(path, text: str) -> int:
    return next(n for n, t in enumerate(path.read_text().splitlines(), 1) if text in t)


@pytest.mark.parametrize(
    ("source", "marker"),
    [(LOOP_AT_IMPORT, "while True"), (SWALLOWING_SLEEP, "time.sleep(10)")],
    ids=["loop", "swallowing-sleep"],
)
def test_import_that_hangs_stops_at_the_limit(write_scenario, source: str, marker: str) -> None:
    path = write_scenario(source)
    loaded_before = {m for m in sys.modules if m.startswith("perfbench_scenario_scenario_")}
    start = time.monotonic()
    with pytest.raises(ScenarioError) as info:
        load_bounded(path, 0.5, "--timeout")
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert message.startswith(
        f"{path}:{_line(path, marker)}: did not finish importing within 0.5 s"
    )
    assert "(--timeout)" in message
    # the half-imported module is not left behind (scenarios loaded by earlier tests may be)
    left = {m for m in sys.modules if m.startswith("perfbench_scenario_scenario_")}
    assert not left - loaded_before


def test_hanging_make_batch_is_named(write_scenario) -> None:
    path = write_scenario(HANGING_MAKE_BATCH)
    with pytest.raises(
        ScenarioError, match=r"make_batch\(2\), called once after importing, did not"
    ):
        load_bounded(path, 0.5, "--timeout")


def test_a_scenario_that_loads_leaves_no_alarm_behind(write_scenario) -> None:
    import signal

    before = signal.getsignal(signal.SIGALRM)
    scenario = load_bounded(write_scenario(TINY_MLP), 5, "--timeout")
    assert scenario.name == "scenario"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before


def _cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perfbench.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("command", ["run", "check"])
def test_cli_stops_a_hanging_import_with_timeout(write_scenario, tmp_path, command: str) -> None:
    path = write_scenario(
        LOOP_AT_IMPORT.replace("\nwhile True", "\nprint('about to loop')\nwhile True")
    )
    extra = ["--out", str(tmp_path / "run")] if command == "run" else []
    proc = _cli(command, str(path), "--timeout", "1", *extra)
    assert proc.returncode == 2, proc.stderr
    line = _line(path, "while True")
    assert f"{path}:{line}: did not finish importing within 1 s (--timeout)" in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing was started
    if command == "run":  # the import's output was captured: shown with the error, not lost
        shown = "what the scenario printed while loading (last 1 of 1 lines):\nabout to loop\n"
        assert shown in proc.stderr


@pytest.mark.slow
def test_hang_the_alarm_cannot_interrupt_ends_the_process(write_scenario) -> None:
    """SIGALRM blocked in the main thread (as a C call that never returns to Python would leave
    it): the hard deadline, limit + 5 s, ends the process with status 2 and says so."""
    path = write_scenario(
        TINY_MLP
        + "\nimport signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
        "time.sleep(120)\n"
    )
    proc = _cli("run", str(path), "--timeout", "1")  # its stderr is captured while loading
    assert proc.returncode == 2
    assert "did not finish importing within 1 s (--timeout)" in proc.stderr
    assert "could not interrupt it" in proc.stderr
