"""Hostile scenarios of issue 19 item 7 and issue 21 item 7, end to end through the command line:
int8 on a model without nn.Linear, build_model() returning a function, compare of two different
scenarios, `perfbench check` with a scenario and libraries that print."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from perfbench.cli.main import main
from perfbench.results.rundir import RunDir

FAST = ["--no-control", "--budget", "0.05"]

CONV_ONLY = """
import torch
from torch import nn

SWEEP = {"batch_size": [2]}

def build_model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())

def make_batch(batch_size):
    return torch.randn(batch_size, 3, 8, 8)
"""

RETURNS_A_FUNCTION = """
import torch
from torch import nn

SWEEP = {"batch_size": [1, 2, 3]}

def forward(x):
    return x * 2

def build_model():
    return forward  # meant: a module that does this

def make_batch(batch_size):
    return torch.randn(batch_size, 4)
"""

PRINTS = """
import sys
import torch
from torch import nn
print("SCENARIO-IMPORT-PRINT")

class Loud(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        print("MODEL-FORWARD-PRINT", file=sys.stderr)
        return self.fc(x)

def build_model():
    return Loud()

def make_batch(batch_size):
    return torch.randn(batch_size, 4)
"""


def _perfbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perfbench.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_int8_without_linear_layers_is_skipped_with_the_reason(write_scenario, tmp_path):
    out = tmp_path / "run"
    proc = _perfbench(
        "run",
        str(write_scenario(CONV_ONLY)),
        "--out",
        str(out),
        "--set",
        "backend=eager,int8",
        *FAST,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = {r["backend"]: (r["status"], r["reason"], r["error"]) for r in _rows(out)}
    assert status["eager"][0] == "ok"
    assert status["int8"][0] == "skipped" and not status["int8"][2]
    assert "int8 quantises nn.Linear layers and Sequential has none" in status["int8"][1]
    assert "skipped: int8 quantises nn.Linear" in proc.stdout


def test_build_model_returning_a_function_is_one_scenario_error(write_scenario, tmp_path):
    scenario = write_scenario(RETURNS_A_FUNCTION)
    line = scenario.read_text().splitlines().index("def build_model():") + 1
    out = tmp_path / "run"
    proc = _perfbench("run", str(scenario), "--out", str(out), "--set", "backend=eager", *FAST)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("scenario error:") == 1
    assert (
        f"{scenario}:{line}: build_model() must return a torch.nn.Module, got function 'forward'"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    rows = _rows(out)
    assert len(rows) == 1 and rows[0]["status"] == "failed"  # the run stopped at the first point
    meta = json.loads((out / "run.json").read_text())
    assert meta["state"] == "stopped" and "build_model()" in meta["problem"]


def _run_of(path: Path, scenario: str, median: float) -> Path:
    run = RunDir.create(path)
    run.write_meta(
        {"state": "complete", "scenario": {"path": scenario, "name": Path(scenario).stem}}
    )
    for repeat in range(3):
        run.append_row(
            {
                "point_id": repeat,
                "backend": "eager",
                "batch_size": 8,
                "repeat": repeat,
                "status": "ok",
                "median_ms": median * (1 + 0.01 * repeat),
                "iqr_ms": median * 0.01,
                "reps": 50,
            }
        )
    return path


def test_compare_of_two_different_scenarios_gives_no_verdicts(tmp_path, capsys):
    a = _run_of(tmp_path / "a", "scenarios/mlp.py", 10.0)
    b = _run_of(tmp_path / "b", "scenarios/convnet.py", 20.0)
    assert main(["compare", str(a), str(b), "--fail-above", "5"]) == 2
    out = capsys.readouterr().out
    assert "different scenarios (scenarios/mlp.py in A, scenarios/convnet.py in B)" in out
    assert "not comparable" in out and "--allow-different-scenarios" in out
    assert "eager" not in out and "+" not in out  # no point, no change, no verdict shown
    # said explicitly: the comparison runs, and the verdicts come back
    assert main(["compare", str(a), str(b), "--allow-different-scenarios"]) == 0
    assert "slower" in capsys.readouterr().out
    # the same source under another name is the same scenario
    for run in (a, b):
        meta = RunDir(run).read_meta()
        meta["scenario"]["sha256"] = "same-source"
        RunDir(run).write_meta(meta)
    assert main(["compare", str(a), str(b)]) == 0


def test_check_keeps_scenario_and_library_output_off_the_terminal(write_scenario):
    proc = _perfbench("check", str(write_scenario(PRINTS)), "--backends", "eager")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    both = proc.stdout + proc.stderr
    assert "SCENARIO-IMPORT-PRINT" not in both and "MODEL-FORWARD-PRINT" not in both
    note = next(x for x in proc.stdout.splitlines() if x.startswith("scenario and library output"))
    log = Path(note.rsplit(" in ", 1)[1])
    text = log.read_text()
    assert "SCENARIO-IMPORT-PRINT" in text and "MODEL-FORWARD-PRINT" in text
    log.unlink()
