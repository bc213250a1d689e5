"""Verdicts end to end: `perfbench run` in a subprocess, as a user types it. Interleaved
comparison groups write verdict columns for backends and the A/A control for eager, print the
verdict lines, keep `--no-control` in rerun commands, and survive a point that hangs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.test_cli_run import perfbench

VERDICTS = {"faster", "slower", "same", "inconclusive"}
# fx folds the BatchNorm into the Linear before it (a real rewrite, no Triton involved)
FOLDABLE = """
import torch
from torch import nn

SWEEP = {"backend": ["eager", "fx"], "batch_size": [4], "threads": [1]}

def build_model():
    return nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.Linear(32, 4))

def make_batch(batch_size):
    return torch.randn(batch_size, 16)
"""
# nothing for the fx passes to rewrite
PLAIN = FOLDABLE.replace("nn.BatchNorm1d(32), ", "")
# the fx arm hangs once it is past its build (first call, own pass): in the warm-up or rounds
HANGS = (
    FOLDABLE
    + """
import time
calls = 0

def forward(model, batch):
    global calls
    if isinstance(model, torch.fx.GraphModule):
        calls += 1
        if calls > 20:
            time.sleep(600)
    return model(batch)
"""
)


def run(write_scenario, tmp_path: Path, source: str, *flags: str, timeout: float = 240):
    out = tmp_path / "run"
    proc = perfbench(
        "run", str(write_scenario(source)), "--out", str(out), "--budget", "0.1", *flags,
        timeout=timeout,
    )  # fmt: skip
    df = pd.read_csv(out / "results.csv", keep_default_na=False)
    rows = {
        r["backend"]: {**r, "extra": json.loads(r["extra"] or "{}")} for r in df.to_dict("records")
    }
    return proc, rows


def verdict_lines(stdout: str) -> list[str]:
    """The verdict lines and eager's A/A control line, in terminal order."""
    found = re.finditer(r"^\s+(?:verdict|control): (.*)$", stdout, re.MULTILINE)
    return [m.group(1) for m in found]


def test_backend_verdict_in_results_and_on_the_terminal(write_scenario, tmp_path):
    proc, rows = run(write_scenario, tmp_path, FOLDABLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    eager, fx = rows["eager"], rows["fx"]
    assert fx["status"] == "ok" and fx["verdict"] in VERDICTS
    assert (
        float(fx["speedup_ci_low"]) <= float(fx["speedup_vs_eager"]) <= float(fx["speedup_ci_high"])
    )
    assert fx["extra"]["changes"] == 1 and fx["verdict_reason"].startswith("fx ")
    # nothing for eager: no verdict, no speedup; the control's interval instead
    assert eager["status"] == "ok"
    assert eager["verdict"] == eager["speedup_vs_eager"] == eager["speedup_ci_low"] == ""
    aa = eager["extra"]["aa_control"]
    assert aa["ci_low"] <= aa["speedup"] <= aa["ci_high"]
    assert eager["verdict_reason"].startswith(("A/A control", "too noisy"))
    # the terminal shows both lines exactly as results.csv has them
    assert verdict_lines(proc.stdout) == [eager["verdict_reason"], fx["verdict_reason"]]
    for row in rows.values():
        assert "--no-control" not in row["command"]


def test_no_change_and_no_control(write_scenario, tmp_path):
    proc, rows = run(write_scenario, tmp_path, PLAIN, "--no-control")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fx, eager = rows["fx"], rows["eager"]
    assert fx["verdict"] == "no change"
    reason = "fx no change: the fx passes made no rewrite: the model ran unchanged"
    assert fx["verdict_reason"] == reason
    assert verdict_lines(proc.stdout) == [reason]  # eager prints no control line
    assert "aa_control" not in eager["extra"] and eager["verdict_reason"] == ""
    assert len(fx["extra"]["interleaved"]["arms"]) == 2
    for row in rows.values():
        assert " --no-control" in row["command"]


@pytest.mark.slow
def test_point_that_hangs_in_a_group_times_out_alone(write_scenario, tmp_path):
    """The worker blames the hang on the arm whose step runs; the runner reruns the group
    without it, so eager still gets its row, control included."""
    proc, rows = run(write_scenario, tmp_path, HANGS, "--timeout", "5")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    fx, eager = rows["fx"], rows["eager"]
    assert fx["status"] == "timeout" and "exceeded --timeout 5 s" in fx["error"]
    assert fx["median_ms"] == "" and fx["verdict"] == ""
    assert eager["status"] == "ok" and float(eager["median_ms"]) > 0
    assert "aa_control" in eager["extra"]
    assert eager["extra"]["interleaved"]["arms"] == [
        "eager_bs4_t1_amp-off_infer_cpu",
        "eager (A/A control)",
    ]
    assert "timeout: point stopped" in proc.stdout
