"""The advisor on real runs of models written to trigger it (slow: each runs `perfbench run`).

Only findings that do not depend on how fast this shared machine is are asserted: graph breaks
with their file:line, data wait of a loader that sleeps, threads above the physical cores. The
timing findings of these runs (bf16, thread scaling) are in the closing note of issue 12.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perfbench.advisor import advise
from perfbench.cli.main import main
from perfbench.results.hardware import cpu_facts

HERE = Path(__file__).parent / "scenarios"
FAST = ["--budget", "0.2", "-q"]


def _run(tmp_path: Path, scenario: str, *sets: str) -> list:
    out = tmp_path / "run"
    args = ["run", str(HERE / scenario), "--out", str(out), *FAST]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return advise(out)


@pytest.mark.slow
@pytest.mark.parametrize(
    "scenario, where, what",
    [
        ("lstm_tagger.py", "lstm_tagger.py:19", "`out, _ = self.lstm(h)`"),
        ("branchy.py", "branchy.py:18", ""),
    ],
)
def test_graph_breaks_name_the_line(tmp_path: Path, scenario: str, where: str, what: str) -> None:
    found = [f for f in _run(tmp_path, scenario) if f.rule == "graph_breaks"]
    assert len(found) == 1, [f.sentence for f in found]
    text = found[0].sentence + " ".join(found[0].evidence)
    assert where in text and what in text


@pytest.mark.slow
def test_sleeping_loader_is_input_bound(tmp_path: Path) -> None:
    found = [f for f in _run(tmp_path, "slow_loader.py") if f.rule == "input_bound"]
    assert len(found) == 1 and "waits for the DataLoader" in found[0].sentence
    assert "num_workers=0," in found[0].command


@pytest.mark.slow
def test_threads_above_physical_cores(tmp_path: Path) -> None:
    cores = cpu_facts()["physical_cores"]
    found = _run(tmp_path, "small_mlp.py", f"threads={cores},{cores + 1}")
    above = [f for f in found if f.rule == "threads_above_cores"]
    assert len(above) == 1 and f"{cores} physical cores" in above[0].sentence
