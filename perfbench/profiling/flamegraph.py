"""py-spy flame graphs of a running process (the sweep's worker, or the whole sweep).

One py-spy process samples once, writing speedscope JSON (its richest format: per-thread sample
sequences in time order, opens at https://www.speedscope.app offline-capable). The SVG flame graph
is rendered here from that same file, so both views show exactly the same samples; running a
second py-spy on the same pid for py-spy's own SVG was tried and works, but doubles the pauses of
the sampled process and the two sample sets differ ("Errors: 3" from lock contention here).

py-spy reads another process's memory with ptrace / process_vm_readv. Where that is refused
(Yama ptrace_scope, a container without CAP_SYS_PTRACE) or py-spy is missing, the result says why
and nothing raises: the sweep goes on without a flame graph.
"""

from __future__ import annotations

import html
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any

from perfbench.results import layout

_AVAILABLE: dict[str, tuple[bool, str | None]] = {}  # per binary path: the check costs ~1 s


def _last_lines(text: str, n: int = 3) -> str:
    """py-spy's own error line when there is one (its Rust backtrace is noise), else the tail."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error")]
    return " | ".join(errors[:n] if errors else lines[-n:])


def _ptrace_hint() -> str:
    try:
        scope = Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip()
    except OSError:
        return "ptrace not permitted"
    return (
        f"ptrace not permitted (kernel.yama.ptrace_scope={scope}; run as root, add CAP_SYS_PTRACE"
        " to the container, or set ptrace_scope to 0)"
    )


def py_spy_available() -> tuple[bool, str | None]:
    """(True, None) when py-spy exists and may sample a sibling process, else (False, why).

    Checked for real: a 1-second record of a sleeping child of this process, the same relation
    py-spy has to the worker it samples in a sweep (not a child of py-spy, so Yama scope 1
    refuses it unless privileged)."""
    binary = shutil.which("py-spy")
    if binary is None:
        return False, "py-spy not found on PATH (pip install py-spy)"
    if binary in _AVAILABLE:
        return _AVAILABLE[binary]
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "probe.txt"
            cmd = [binary, "record", "--pid", str(child.pid), "-d", "1", "-r", "20", "--idle"]
            cmd += ["-f", "raw", "-o", str(out)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            except subprocess.TimeoutExpired:
                result: tuple[bool, str | None] = (False, "py-spy probe did not finish in 20 s")
            else:
                if proc.returncode == 0 and out.exists() and out.stat().st_size > 0:
                    result = (True, None)
                else:
                    msg = _last_lines(proc.stderr + proc.stdout)
                    denied = "permission" in msg.lower() or "operation not permitted" in msg.lower()
                    why = _ptrace_hint() if denied else "py-spy could not sample a test process"
                    result = (False, f"{why}: {msg or f'exit code {proc.returncode}'}")
    finally:
        child.kill()
        child.wait()
    _AVAILABLE[binary] = result
    return result


class FlameGraphRecorder:
    """Sample `pid` (and its subprocesses) with py-spy from `start()` to `stop()`.

    Writes `out_dir/flamegraphs/profile.speedscope.json` and `flamegraph.svg`; `result()` gives
    paths relative to `out_dir` (the run folder), or the reason there are none.
    """

    def __init__(self, pid: int, out_dir: Path, native: bool = False, rate: int = 100) -> None:
        self.pid = pid
        self.out_dir = Path(out_dir)
        self.native = native
        self.rate = rate
        self.dir = self.out_dir / layout.FLAMEGRAPHS
        self.speedscope_path = self.dir / "profile.speedscope.json"
        self.svg_path = self.dir / "flamegraph.svg"
        self.log_path = self.dir / "py-spy.log"
        self.command: list[str] = []
        self.error: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._elapsed = 0.0

    def start(self, attach_timeout_s: float = 10.0) -> FlameGraphRecorder:
        """Launch py-spy and wait until it has attached (or failed), so no early work is missed."""
        binary = shutil.which("py-spy")
        if binary is None:
            self.error = "py-spy not found on PATH (pip install py-spy)"
            return self
        self.dir.mkdir(parents=True, exist_ok=True)
        self.command = [binary, "record", "--pid", str(self.pid), "--subprocesses"]
        self.command += ["--rate", str(self.rate), "--format", "speedscope"]
        self.command += ["--output", str(self.speedscope_path)]
        if self.native:
            self.command.append("--native")
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        self._started = time.perf_counter()
        deadline = time.monotonic() + attach_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._fail_from_log(f"py-spy exited at start (code {self._proc.returncode})")
                self._proc = None
                return self
            if b"Sampling process" in self.log_path.read_bytes():
                break
            time.sleep(0.02)
        return self

    def _fail_from_log(self, what: str) -> None:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        msg = _last_lines(text)
        if "permission" in msg.lower() or "operation not permitted" in msg.lower():
            what = f"{_ptrace_hint()}; {what}"
        self.error = f"{what}: {msg}" if msg else what

    def stop(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """Stop sampling (SIGINT makes py-spy write its file), then render the SVG."""
        proc, self._proc = self._proc, None
        if proc is not None:
            self._elapsed = time.perf_counter() - self._started
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.error = f"py-spy did not stop within {timeout_s:g} s after SIGINT; killed"
            if self.error is None and not self._has_output():
                self._fail_from_log(f"py-spy wrote no profile (exit code {proc.returncode})")
            if self._has_output() and not self.svg_path.exists():
                try:
                    render_svg(self.speedscope_path, self.svg_path)
                except (ValueError, KeyError, OSError) as err:
                    self.error = f"could not render the SVG: {type(err).__name__}: {err}"
        return self.result()

    def _has_output(self) -> bool:
        return self.speedscope_path.exists() and self.speedscope_path.stat().st_size > 0

    def result(self) -> dict[str, Any]:
        """{"svg", "speedscope": relative paths or None, "error": why not or None, ...}."""

        def rel(p: Path) -> str | None:
            return p.relative_to(self.out_dir).as_posix() if p.exists() else None

        return {
            "svg": rel(self.svg_path),
            "speedscope": rel(self.speedscope_path) if self._has_output() else None,
            "error": self.error,
            "native": self.native,
            "rate": self.rate,
            "seconds": round(self._elapsed, 3),
            "command": " ".join(self.command) if self.command else None,
        }

    def __enter__(self) -> FlameGraphRecorder:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- SVG rendering from speedscope ---------------------------------------------------------------

_ROW_PX, _WIDTH_PX, _MIN_FRAC = 16, 1200, 0.001


def _frame_label(frame: dict[str, Any]) -> str:
    name = " ".join(str(frame.get("name", "?")).split())[:160]
    file, line = frame.get("file"), frame.get("line")
    return f"{name} ({Path(file).name}:{line})" if file else name


def _color(label: str) -> str:
    h = zlib.crc32(label.encode())
    return f"rgb({205 + h % 50},{80 + (h >> 8) % 120},{(h >> 16) % 60})"


def render_svg(speedscope_path: Path, svg_path: Path, title: str = "py-spy flame graph") -> Path:
    """A static flame graph (root at the bottom, width = share of samples, hover for details)
    from py-spy's speedscope file; frames under 0.1% of the samples are left out."""
    data = json.loads(Path(speedscope_path).read_text(encoding="utf-8"))
    labels = [_frame_label(f) for f in data["shared"]["frames"]]
    root: dict[str, Any] = {"n": 0.0, "kids": {}}
    samples = 0
    for prof in data["profiles"]:
        weights = prof.get("weights") or [1.0] * len(prof["samples"])
        for stack, w in zip(prof["samples"], weights, strict=False):
            samples += 1
            node = root
            node["n"] += w
            for idx in stack:  # speedscope stacks run root first
                node = node["kids"].setdefault(labels[idx], {"n": 0.0, "kids": {}})
                node["n"] += w
    total = root["n"]
    if total <= 0:
        raise ValueError(f"{speedscope_path} holds no samples")
    rects: list[tuple[str, float, float, int]] = []
    max_depth = 0

    def walk(node: dict[str, Any], x: float, depth: int) -> None:
        nonlocal max_depth
        for label, kid in sorted(node["kids"].items()):
            frac = kid["n"] / total
            if frac >= _MIN_FRAC:
                max_depth = max(max_depth, depth)
                rects.append((label, x, frac, depth))
                walk(kid, x, depth + 1)
            x += frac

    walk(root, 0.0, 0)
    height = (max_depth + 1) * _ROW_PX + 40
    body = "".join(_rect(*r, base_y=height - 4) for r in rects)
    head = html.escape(f"{title}: {samples} samples")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH_PX}" height="{height}" '
        f'font-family="monospace" font-size="11">'
        f'<rect width="100%" height="100%" fill="#fafafa"/>'
        f'<text x="4" y="14" font-size="13">{head}</text>{body}</svg>'
    )
    Path(svg_path).write_text(svg, encoding="utf-8")
    return Path(svg_path)


def _rect(label: str, x: float, frac: float, depth: int, base_y: int) -> str:
    px, w = x * _WIDTH_PX, frac * _WIDTH_PX
    y = base_y - (depth + 1) * _ROW_PX
    fits = int((w - 4) / 6.6)
    text = label if len(label) <= fits else (label[: fits - 2] + ".." if fits > 4 else "")
    tip = html.escape(f"{label} — {frac * 100:.1f}% of samples")
    inner = (
        f'<text x="{px + 2:.1f}" y="{y + _ROW_PX - 4}">{html.escape(text)}</text>' if text else ""
    )
    return (
        f'<g><title>{tip}</title><rect x="{px:.1f}" y="{y}" width="{max(w - 0.5, 0.5):.1f}" '
        f'height="{_ROW_PX - 1}" fill="{_color(label)}"/>{inner}</g>'
    )
