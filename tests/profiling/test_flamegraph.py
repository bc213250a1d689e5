"""py-spy flame graphs: a real recording of a busy child where ptrace is allowed, and the
missing-binary path, which must explain itself and never raise."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.dom.minidom
from pathlib import Path

import pytest

from perfbench.profiling import flamegraph
from perfbench.profiling.flamegraph import FlameGraphRecorder, py_spy_available, render_svg

BUSY = "import time\ndef spin():\n    t = time.time()\n    while time.time() - t < 8: sum(range(500))\nspin()\n"


@pytest.mark.parametrize("native", [False, True], ids=["python", "native"])
def test_records_svg_and_speedscope_of_a_busy_child(tmp_path: Path, native: bool) -> None:
    ok, reason = py_spy_available()
    if not ok:
        pytest.skip(f"py-spy cannot sample here: {reason}")
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        with FlameGraphRecorder(child.pid, tmp_path, native=native, rate=50) as rec:
            time.sleep(1.0)
    finally:
        child.kill()
        child.wait()
    result = rec.result()
    assert result["error"] is None, result
    assert result["svg"] == "flamegraphs/flamegraph.svg"
    assert result["speedscope"] == "flamegraphs/profile.speedscope.json"
    xml.dom.minidom.parse(str(tmp_path / result["svg"]))  # well-formed SVG
    svg = (tmp_path / result["svg"]).read_text()
    assert "spin" in svg
    data = json.loads((tmp_path / result["speedscope"]).read_text())
    assert sum(len(p["samples"]) for p in data["profiles"]) > 10
    assert "--subprocesses" in result["command"]
    assert ("--native" in result["command"]) is native and result["native"] is native


def test_missing_py_spy_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(flamegraph.shutil, "which", lambda name: None)
    ok, reason = py_spy_available()
    assert not ok and "py-spy not found" in (reason or "")
    with FlameGraphRecorder(12345, tmp_path) as rec:
        pass
    result = rec.result()
    assert result["svg"] is None and result["speedscope"] is None
    assert "py-spy not found" in result["error"]


def test_refused_attach_is_explained(tmp_path: Path) -> None:
    """A pid that does not exist: py-spy exits at once, the reason comes from its own output."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: its pid is free and not ours to sample
    if flamegraph.shutil.which("py-spy") is None:
        pytest.skip("py-spy not installed")
    rec = FlameGraphRecorder(proc.pid, tmp_path).start()
    result = rec.stop()
    assert result["svg"] is None and "No python processes found" in result["error"]


def test_render_svg_from_speedscope(tmp_path: Path) -> None:
    frames = [
        {"name": "main", "file": "/x/app.py", "line": 1},
        {"name": "work", "file": "/x/app.py", "line": 5},
        {"name": "idle <wait>", "file": "/x/app.py", "line": 9},
    ]
    data = {
        "shared": {"frames": frames},
        "profiles": [
            {"type": "sampled", "samples": [[0, 1], [0, 1], [0, 2]], "weights": [0.01] * 3}
        ],
    }
    src = tmp_path / "p.json"
    src.write_text(json.dumps(data))
    out = render_svg(src, tmp_path / "f.svg")
    svg = out.read_text()
    xml.dom.minidom.parseString(svg)
    assert "work (app.py:5) — 66.7% of samples" in svg
    assert "idle &lt;wait&gt;" in svg and "3 samples" in svg
    src.write_text(json.dumps({"shared": {"frames": []}, "profiles": []}))
    with pytest.raises(ValueError, match="no samples"):
        render_svg(src, tmp_path / "g.svg")
