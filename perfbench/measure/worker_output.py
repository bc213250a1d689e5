"""The measuring worker's stdout and stderr, captured per point at the file-descriptor level.

Why: a scenario printing 200 KB per step put 2.8 GB on the terminal in one small sweep, and
libraries write to file descriptor 2 directly, past `sys.stderr` (torchao's "Failed to load
..._C_mxfp8...so", a pytree warning, kineto's `USDT: ... profiler_start` lines). The worker points
fds 1 and 2 at a pipe (`os.dup2`), so whatever it, its C++ code and its child processes
(DataLoader workers, compile workers) write goes into the pipe; a reader thread copies it into
`RUN_DIR/logs/<point_id>.log`, keeping the first and the last MiB and a note of what was cut
between them. Output written between points goes to `RUN_DIR/logs/worker.log`. The terminal keeps
perfbench's own lines; the command line shows each point's line count and log.

The reader thread blocks in `poll()` without the GIL until bytes arrive, so a step that prints
nothing pays nothing. Bytes written while a point is timed are counted exactly (bytes read plus
bytes still in the pipe, under the reader's lock) and recorded in the row: printing is part of the
measured time. A worker killed on timeout keeps the log's head and its tail as of the last second.
"""

from __future__ import annotations

import atexit
import collections
import ctypes
import fcntl
import os
import select
import struct
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfbench.results import facts

if TYPE_CHECKING:
    from perfbench.results.row import Row

HEAD_BYTES = TAIL_BYTES = 1 << 20  # kept from the start and from the end of one point's output
CHUNK = 1 << 16
FLUSH_EVERY_S = 1.0  # how stale the tail on disk may get while output keeps coming

_ACTIVE: OutputCapture | None = None  # the capture installed in this process, if any


def _fresh(path: Path) -> Path:
    """`path`, or worker-2.log, worker-3.log ... when a worker before this one (an earlier
    repetition, an appended run) left it: a log is never overwritten."""
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{path.stem.rsplit('-', 1)[0]}-{n}{path.suffix}")
    return path


def log_path(run_dir: str | Path, point_id: int | str) -> Path:
    return Path(run_dir) / "logs" / f"{point_id}.log"


def output_note(run_dir: str | Path, point_id: int) -> str:
    """For the parent's message about a worker that died or timed out: where its output went."""
    path = log_path(run_dir, point_id)
    return f"; its output: {Path('logs') / path.name}" if path.exists() else ""


class BoundedLog:
    """A log file holding the first `head` and the last `tail` bytes written to it, with a note
    where the middle was cut. The file is created by the first byte: silence leaves no file."""

    def __init__(self, path: Path, head: int = HEAD_BYTES, tail: int = TAIL_BYTES) -> None:
        self.path = path
        self.head, self.tail = head, tail
        self.total = 0
        self.lines = 0
        self._kept_head = 0
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_len = 0
        self._file: Any = None
        self._dirty = False
        self._flushed_at = time.monotonic()

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.total += len(data)
        self.lines += data.count(b"\n")
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("wb")
        room = self.head - self._kept_head
        if room > 0:
            self._file.write(data[:room])
            self._kept_head += min(room, len(data))
            data = data[room:]
        if data:
            self._tail.append(data)
            self._tail_len += len(data)
            while self._tail_len - len(self._tail[0]) >= self.tail:  # whole chunks out of reach
                self._tail_len -= len(self._tail.popleft())
            self._dirty = True
        if time.monotonic() - self._flushed_at > FLUSH_EVERY_S:
            self.flush()

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def cut(self) -> int:
        """Bytes written but not kept (the middle of the output)."""
        return self.total - self._kept_head - min(self._tail_len, self.tail)

    def flush(self) -> None:
        """Rewrite the tail after the head, with the cut note: the file is whole at any moment."""
        self._flushed_at = time.monotonic()
        if self._file is None:
            return
        if self._dirty:
            tail = b"".join(self._tail)[-self.tail :]
            self._file.seek(self._kept_head)
            if self.cut:
                self._file.write(
                    f"\n[perfbench: {self.cut:,} bytes cut here; this log keeps the first "
                    f"{self.head:,} and the last {self.tail:,} bytes of {self.total:,}]\n".encode()
                )
            self._file.write(tail)
            self._file.truncate()
            self._dirty = False
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()


@dataclass(frozen=True)
class PointOutput:
    """What one point wrote to stdout and stderr: facts for the row's `extra`."""

    log: str  # relative to the run folder
    bytes: int
    lines: int
    cut_bytes: int

    def facts(self) -> dict[str, Any]:
        """What a row's `extra` says of the output: empty when the point wrote nothing."""
        if not self.bytes:
            return {}
        out: dict[str, Any] = {
            facts.OUTPUT_LOG: self.log,
            facts.OUTPUT_BYTES: self.bytes,
            facts.OUTPUT_LINES: self.lines,
        }
        if self.cut_bytes:
            out[facts.OUTPUT_CUT_BYTES] = self.cut_bytes
        return out

    def annotate(self, row: Row) -> Row:
        """Add the facts to `row.extra` when the point wrote anything; returns the row."""
        row.extra.update(self.facts())
        return row


class OutputCapture:
    """This process's fds 1 and 2 -> a pipe -> the current point's `BoundedLog`."""

    def __init__(self) -> None:
        flush_stdio()
        read_fd, write_fd = os.pipe()
        self.terminal_fds = (os.dup(1), os.dup(2))  # where fds 1 and 2 pointed before
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._read_fd = read_fd
        self._lock = threading.Lock()
        self._read = 0
        self._log: BoundedLog | None = None  # the current point's
        self._outside: BoundedLog | None = None  # RUN_DIR/logs/worker.log, between points
        self._early = bytearray()  # before the first point names the run folder
        self._thread = threading.Thread(target=self._pump, name="perfbench-output", daemon=True)
        self._thread.start()

    @classmethod
    def install(cls) -> OutputCapture:
        """Redirect this process's output (once); `TimedOutput` then counts what a step prints."""
        global _ACTIVE
        if _ACTIVE is None:
            _ACTIVE = cls()
            atexit.register(_ACTIVE.close)
        return _ACTIVE

    def begin(self, run_dir: str | Path, point_id: int | str) -> None:
        """From now on, output belongs to this point."""
        self._drain()
        with self._lock:
            if self._outside is None:
                self._outside = BoundedLog(_fresh(Path(run_dir) / "logs" / "worker.log"))
                self._outside.write(bytes(self._early[-TAIL_BYTES:]))
                self._early.clear()
            self._outside.flush()
            self._log = BoundedLog(log_path(run_dir, point_id))

    def end(self) -> PointOutput:
        """Wait until the pipe holds nothing of this point, close its log and say what it got."""
        self._drain()
        with self._lock:
            log, self._log = self._log, None
        if log is None:
            return PointOutput("", 0, 0, 0)
        log.close()
        rel = Path("logs") / log.path.name
        return PointOutput(rel.as_posix(), log.total, log.lines, log.cut)

    def written(self) -> int:
        """Bytes written to fds 1 and 2 since the capture began: read, plus still in the pipe."""
        flush_stdio()
        with self._lock:
            return self._read + _pipe_pending(self._read_fd)

    def close(self) -> None:
        self._drain()
        with self._lock:
            for log in (self._log, self._outside):
                if log is not None:
                    log.close()
            self._log = self._outside = None

    def restore(self) -> None:
        """Point fds 1 and 2 back where they were and stop: for a capture of a short phase."""
        global _ACTIVE
        self.close()
        for fd, saved in zip((1, 2), self.terminal_fds, strict=True):
            os.dup2(saved, fd)  # the pipe's last write end is gone: the reader sees EOF
            os.close(saved)
        self._thread.join(2)
        os.close(self._read_fd)
        atexit.unregister(self.close)
        if _ACTIVE is self:
            _ACTIVE = None

    def _drain(self, timeout_s: float = 2.0) -> None:
        """Flush the stdio buffers, then wait (bounded) until the reader has emptied the pipe."""
        flush_stdio()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if _pipe_pending(self._read_fd) == 0:
                    return
            time.sleep(0.001)

    def _pump(self) -> None:
        poller = select.poll()
        poller.register(self._read_fd, select.POLLIN)
        while True:
            with self._lock:
                dirty = any(log is not None and log.dirty for log in (self._log, self._outside))
            # blocks without the GIL; wakes once a second only while a log's tail is unwritten
            if not poller.poll(FLUSH_EVERY_S * 1000 if dirty else None):
                with self._lock:
                    for log in (self._log, self._outside):
                        if log is not None:
                            log.flush()
                continue
            with self._lock:  # reads happen under the lock: `written()` and `_drain` are exact
                data = os.read(self._read_fd, CHUNK)
                if not data:
                    return
                self._read += len(data)
                sink = self._log or self._outside
                if sink is not None:
                    sink.write(data)
                elif len(self._early) < 2 * TAIL_BYTES:
                    self._early += data


class TimedOutput:
    """How many bytes this process wrote to stdout/stderr between `start()` and `stop()` (the
    timed phase of a point). Nothing is counted where no `OutputCapture` is installed."""

    def __init__(self) -> None:
        self._capture = _ACTIVE
        self._start: int | None = None
        self.bytes = 0

    def start(self) -> None:
        if self._capture is not None:
            self._start = self._capture.written()

    def stop(self) -> None:
        if self._capture is not None and self._start is not None:
            self.bytes = self._capture.written() - self._start

    def facts(self) -> dict[str, Any]:
        """For the row's `extra`: the flag, only when the step printed while it was timed."""
        return {facts.PRINTED_DURING_TIMING_BYTES: self.bytes} if self.bytes else {}


def _pipe_pending(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


_LIBC: Any = None


def flush_stdio() -> None:
    """Python's and C's stdio buffers out to their file descriptors (C++ printf to a pipe is
    block-buffered: without fflush it would land in the next point's log)."""
    global _LIBC
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(None)
        except OSError:
            _LIBC = False
    if _LIBC:
        _LIBC.fflush(None)
