"""#19 item 2: an output that turns non-finite (or drifts) during the timed rounds fails the point
with no time shown; the determinism diagnosis names the buffer that carries state."""

from __future__ import annotations

import json

import pandas as pd
import torch
from torch import nn

from perfbench.measure.diagnose import nondeterminism
from perfbench.scenario.loading import load_scenario
from tests.cli.test_cli_run import perfbench

# bs8 only: a buffer counts the calls and the output is NaN from the 30th call on; bs4 is sound
ACCUMULATES = """
import torch
from torch import nn

SWEEP = {"backend": ["eager"], "batch_size": [4, 8], "threads": [1]}

class Accumulates(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 4)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        out = self.lin(x)
        if x.shape[0] == 8:
            self.calls += 1
            out = out * torch.where(self.calls >= 30, float("nan"), 1.0)
        return out

def build_model():
    return Accumulates()

def make_batch(batch_size):
    return torch.randn(batch_size, 16)
"""
# the output drifts (stays finite) from the 30th call: two calls agree, so only the check after
# the rounds can see it
DRIFTS = ACCUMULATES.replace('float("nan")', "1.5")
# every call differs: the determinism diagnosis sees it before any timing
GROWS = ACCUMULATES.replace('torch.where(self.calls >= 30, float("nan"), 1.0)', "(1 + self.calls)")


def _rows(out):
    df = pd.read_csv(out / "results.csv", keep_default_na=False)
    return {int(r["batch_size"]): {**r, "extra": json.loads(r["extra"] or "{}")} for r in df.to_dict("records")}  # fmt: skip


def test_output_that_turns_nan_during_the_rounds_fails_the_point(write_scenario, tmp_path):
    out = tmp_path / "run"
    proc = perfbench("run", str(write_scenario(ACCUMULATES)), "--out", str(out), "--budget", "0.1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = _rows(out)
    assert set(rows) == {4, 8}  # no row lost
    assert rows[4]["status"] == "ok" and float(rows[4]["median_ms"]) > 0
    bad = rows[8]
    assert bad["status"] == "failed" and bad["median_ms"] == ""  # no time shown
    assert bad["error"].startswith(
        "output became non-finite after the timed rounds (state carried across calls?)"
    )
    assert "buffer(s) 'calls'" in bad["error"]
    assert "output became non-finite after the timed rounds" in proc.stdout


def test_output_that_drifts_fails_with_the_tolerance_message(write_scenario, tmp_path):
    out = tmp_path / "run"
    flags = ("--budget", "0.1", "--set", "batch_size=8")
    proc = perfbench("run", str(write_scenario(DRIFTS)), "--out", str(out), *flags)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    bad = _rows(out)[8]
    assert bad["status"] == "failed" and bad["median_ms"] == ""
    assert bad["error"].startswith("output changed after the timed rounds (state carried")
    assert "exceeds tolerance" in bad["error"] and "buffer(s) 'calls'" in bad["error"]


def test_determinism_diagnosis_names_the_buffer_that_carries_state(write_scenario):
    scenario = load_scenario(str(write_scenario(GROWS)))
    model = scenario.build_model()
    found = nondeterminism(scenario, model, torch.randn(8, 16), 1e-4)
    assert found is not None and "buffer(s) 'calls'" in found
    assert nondeterminism(scenario, nn.Linear(16, 4), torch.randn(8, 16), 1e-4) is None


def test_a_point_timed_alone_is_checked_too(write_scenario, tmp_path):
    """--no-control with eager alone: the point is timed by itself, and checked after timing."""
    out = tmp_path / "run"
    flags = ("--budget", "0.1", "--set", "batch_size=8", "--no-control")
    proc = perfbench("run", str(write_scenario(ACCUMULATES)), "--out", str(out), *flags)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    bad = _rows(out)[8]
    assert bad["status"] == "failed" and bad["median_ms"] == ""
    assert bad["error"].startswith("output became non-finite after the timed rounds")
