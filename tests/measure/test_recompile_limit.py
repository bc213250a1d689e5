"""#19 item 4: dynamo's recompile limit is not hidden. A forward that branches on a Python counter
recompiles on every call until dynamo gives up and runs it eagerly; compile facts cover the timed
rounds, the limit is its own finding with file:line and the fix, and the verdict and the terminal
say the timed code was partly eager.

To keep the test fast the scenario lowers torch._dynamo.config.recompile_limit to 2 (default 8):
each recompile costs seconds on a loaded 2-core box."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from perfbench.measure.compile_watch import CompileWatch, parse_hit, partly_eager
from tests.cli.test_cli_run import perfbench

COUNTER = """
import torch
from torch import nn

torch._dynamo.config.recompile_limit = 2  # the default 8 would take minutes here

SWEEP = {"backend": ["eager", "compile"], "batch_size": [4], "threads": [1]}

class Counts(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls % 2:  # a Python value dynamo guards on: a new guard every call
            return self.lin(x)
        return self.lin(x) + 0.0

def build_model():
    return Counts()

def make_batch(batch_size):
    return torch.randn(batch_size, 16)
"""


@pytest.mark.slow  # torch.compile: about a minute on the loaded 2-core box
def test_recompile_limit_is_a_finding_and_the_verdict_says_partly_eager(write_scenario, tmp_path):
    out = tmp_path / "run"
    path = write_scenario(COUNTER)
    flags = ("--budget", "0.1", "--no-control")
    proc = perfbench("run", str(path), "--out", str(out), *flags, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    df = pd.read_csv(out / "results.csv", keep_default_na=False)
    rows = {r["backend"]: {**r, "extra": json.loads(r["extra"] or "{}")} for r in df.to_dict("records")}  # fmt: skip
    assert set(rows) == {"eager", "compile"} and all(r["status"] == "ok" for r in rows.values())
    compiled = rows["compile"]
    hit = compiled["extra"]["recompile_limit"]
    assert hit["limit"] == "recompile_limit" and hit["value"] == 2
    lines = path.read_text().splitlines()
    guard = lines.index("        self.calls += 1") + 1
    assert hit["where"] == f"{path}:{guard}"  # the user's line behind the failing guard
    assert f"({path}:{guard - 1})" in hit["function"]  # dynamo names forward's def line
    assert "the timed code was partly eager" in compiled["verdict_reason"]
    assert "verdict: compile" in proc.stdout  # the terminal says it on the verdict line
    assert "; the timed code was partly eager: torch.compile hit recompile_limit" in proc.stdout
    # the findings printed at the end: its own finding, with the fix
    assert "hit torch._dynamo's recompile_limit (2)" in proc.stdout
    assert "mark the value dynamic" in proc.stdout and "make it a tensor" in proc.stdout


def test_parse_hit_reads_dynamos_warning_and_ignores_others():
    record = logging.LogRecord(
        "torch._dynamo.convert_frame", logging.WARNING, "x.py", 1,
        "torch._dynamo hit config.%s (%s)\n   function: %s\n   last reason: %s\n%s",
        ("recompile_limit", 8, "'forward' (/m.py:7)",
         '0/7: self.n == 7\nUser stack trace:\n  File "/m.py", line 9, in forward\n    x', "url"),
        None,
    )  # fmt: skip
    hit = parse_hit(record, 3)
    assert hit is not None and (hit.value, hit.where, hit.point_id) == (8, "/m.py:9", 3)
    assert hit.reason == "0/7: self.n == 7"
    assert "partly eager" in partly_eager(hit.as_dict()) and "/m.py:9" in partly_eager(
        hit.as_dict()
    )
    other = logging.LogRecord("x", logging.WARNING, "x.py", 1, "something %s", ("else",), None)
    assert parse_hit(other, 3) is None


def test_compiles_after_the_build_are_added_to_the_arms_facts():
    watch = CompileWatch()
    watch.ids = {5: ["0/1", "0/2", "0/3"]}  # 0/1: seen while it was built, not again
    facts = {"compiles": 2, "recompiles": 1, "compile_ids": ["0/0", "0/1"]}
    watch.merge_into(5, facts, compiled=True)
    assert (
        facts["compiles"] == 4 and facts["recompiles"] == 3 and facts["compiled_while_timed"] == 2
    )
    assert "recompile_limit" not in facts  # no hit, nothing claimed
