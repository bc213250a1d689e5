"""The report on a run folder written by the real harness (`perfbench run`), profiling included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from perfbench.report.page import build_report

TINY = '''"""Tiny scenario for the report test <b>bold?</b>"""
import torch
from torch import nn

SWEEP = {"backend": ["eager"], "batch_size": [2, 8]}

def build_model():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

def make_batch(batch_size):
    return torch.randn(batch_size, 16)
'''


@pytest.mark.slow
def test_report_of_a_real_run(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.py"
    scenario.write_text(TINY, encoding="utf-8")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "perfbench.cli.main", "run", str(scenario), "--out", str(out)]
    cmd += ["--budget", "0.2", "--profile", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    first = (out / "report.html").read_text(encoding="utf-8")
    assert "<b>bold?</b>" not in first and "&lt;b&gt;bold?&lt;/b&gt;" in first
    assert first.count('data-status="ok"') == 2
    assert "<svg" in first and "Top operators" in first
    # issue 15 item 7: the run's own TensorBoard path, and no GPU-only content on a CPU run
    assert f'<span class="arg">--logdir {out.resolve()}/tb</span>' in first
    assert "RUN_DIR" not in first
    assert "Where a profiled step's time goes" in first and "cpu_host" in first
    assert "device_compute" not in first and "Nsight" not in first and "--trace=cuda" not in first
    (out / "report.html").unlink()
    assert build_report(out).read_text(encoding="utf-8") == first  # rebuilt from the folder alone
