"""The worker's stdout/stderr go to a bounded per-point log at the file-descriptor level (Python,
C and child-process output alike), and bytes printed while a point is timed are counted exactly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from perfbench.measure.worker_output import BoundedLog


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=0, max_size=40), max_size=30),
    head=st.integers(0, 50),
    tail=st.integers(1, 50),
    flush_at=st.integers(0, 30),
)
def test_bounded_log_keeps_head_and_tail_and_says_what_was_cut(
    tmp_path_factory, chunks: list[bytes], head: int, tail: int, flush_at: int
) -> None:
    path = tmp_path_factory.mktemp("log") / "0.log"
    log = BoundedLog(path, head=head, tail=tail)
    for i, chunk in enumerate(chunks):
        log.write(chunk)
        if i == flush_at:
            log.flush()  # a flush midway (as the reader does each second) changes nothing
    log.close()
    data = b"".join(chunks)
    assert (log.total, log.lines) == (len(data), data.count(b"\n"))
    if not data:
        assert not path.exists()  # silence leaves no file
        return
    text = path.read_bytes()
    if len(data) <= head + tail:
        assert text == data and log.cut == 0
    else:
        cut = len(data) - head - tail
        note = (
            f"\n[perfbench: {cut:,} bytes cut here; this log keeps the first {head:,} and the "
            f"last {tail:,} bytes of {len(data):,}]\n"
        ).encode()
        assert text == data[:head] + note + data[-tail:]
        assert log.cut == cut


CAPTURE_SCRIPT = r"""
import ctypes, json, os, subprocess, sys
from perfbench.measure.worker_output import OutputCapture, TimedOutput

run_dir = sys.argv[1]
capture = OutputCapture.install()
capture.begin(run_dir, 7)
print("from python before timing")
timed = TimedOutput()
timed.start()
os.write(2, b"fd2 during timing\n")           # 18 bytes
ctypes.CDLL(None).printf(b"C printf %d\n", 42)  # 12 bytes, block-buffered in C stdio
subprocess.run(["echo", "child process"])      # 14 bytes, from another process
timed.stop()
print("x" * 5000)                              # after timing: not counted
quiet = TimedOutput()
quiet.start()
quiet.stop()
out = capture.end()
capture.restore()
print(json.dumps({"timed": timed.bytes, "quiet": quiet.bytes, "facts": timed.facts(),
                  "row": out.facts(), "none": quiet.facts()}))
"""


def test_capture_catches_python_c_and_child_output_and_counts_timed_bytes(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CAPTURE_SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    result = json.loads(proc.stdout.strip().splitlines()[-1])  # after restore: the terminal
    assert len(proc.stdout.strip().splitlines()) == 1  # nothing else reached it
    assert result["timed"] == 18 + 12 + 14
    assert result["facts"] == {"printed_during_timing_bytes": 44}
    assert result["quiet"] == 0 and result["none"] == {}
    log = (tmp_path / "logs" / "7.log").read_text()
    for text in ("from python before timing", "fd2 during timing", "C printf 42", "child process"):
        assert text in log
    assert result["row"] == {
        "output_log": "logs/7.log",
        "output_bytes": len(log),
        "output_lines": log.count("\n"),
    }
