"""End to end through the installed `perfbench` console script: check, run --check, compare,
ceilings (run and report are in test_cli_run.py)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess

import pandas as pd
import pytest

from perfbench.results.rundir import RunDir
from tests.conftest import TINY_MLP, ok_row

pytestmark = pytest.mark.skipif(
    shutil.which("perfbench") is None, reason="the perfbench console script is not installed"
)

UNSTABLE_DTYPE = (
    TINY_MLP
    + """
def forward(model, batch):
    out = model(batch)
    return out.double() if batch.shape[0] % 2 else out  # dtype depends on the batch size
"""
)


def perfbench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["perfbench", *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_check_passes_a_healthy_scenario(write_scenario):
    proc = perfbench("check", str(write_scenario(TINY_MLP)), "--backends", "eager")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split()[0] for line in proc.stdout.splitlines() if line[:3].strip().isdigit()]
    assert rows == ["1", "2", "3", "4", "5", "6"]
    assert "result: no rung failed" in proc.stdout


def test_run_with_check_refuses_to_time_a_scenario_failing_rung_1(write_scenario, tmp_path):
    out = tmp_path / "run"
    proc = perfbench("run", str(write_scenario(UNSTABLE_DTYPE)), "--check", "--out", str(out))
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout
    assert "not timing" in proc.stderr
    assert not out.exists()


def _fake_run(path, median_ms: float, iqr_ms: float) -> None:
    run = RunDir.create(path)
    run.write_meta({"scenario": {"name": "mlp", "path": "mlp.py"}, "state": "complete"})
    run.append_row(ok_row(0, "eager", median_ms, iqr_ms))


def test_compare_gates_on_a_slowdown(tmp_path):
    _fake_run(tmp_path / "a", 10.0, 0.1)
    _fake_run(tmp_path / "b", 12.0, 0.1)
    html = tmp_path / "cmp.html"
    proc = perfbench("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--html", str(html))
    assert proc.returncode == 0, proc.stderr
    assert "+20.0%" in proc.stdout and "slower" in proc.stdout and html.exists()
    proc = perfbench("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--fail-above", "10")
    assert proc.returncode == 1
    proc = perfbench("compare", str(tmp_path / "a"), str(tmp_path / "missing"))
    assert proc.returncode == 2


def test_ceilings_measures_and_caches(tmp_path):
    import os

    env = {**os.environ, "PERFBENCH_CACHE_DIR": str(tmp_path)}
    proc = perfbench("ceilings", "--json", "--rounds", "1", "--budget", "0.05", env=env)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["copy_gbps"] > 0 and found["matmul_tflops"] > 0
    assert list(tmp_path.glob("*.json"))


@pytest.mark.slow
def test_rerun_command_reproduces_a_point_of_a_configured_run(write_scenario, tmp_path):
    """Rule 6: a point's recorded command, run as typed in a shell, reruns it with the same
    settings and seed from a config file it never names, and under the same worker environment
    (the Triton interpreter on a CPU: set by the backend, not by the caller's shell)."""
    scenario = write_scenario(TINY_MLP)
    config = tmp_path / "settings.toml"
    config.write_text(
        "[sweep]\nbackend = ['eager', 'triton']\nbatch_size = [2]\n"
        "[settings]\nbudget_s = 0.05\nmin_reps = 3\nwarmup_s = 0.01\nseed = 11\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    first = tmp_path / "first"
    proc = perfbench(
        "run", str(scenario), "--config", str(config), "--out", str(first), "-q", env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = pd.read_csv(first / "results.csv", keep_default_na=False)
    command = rows.command[rows.backend == "triton"].iloc[0]
    assert "--config" not in command and "--seed 11" in command
    config.write_text("[settings]\nbudget_s = 9.0\nseed = 1\n")  # a later edit must not matter
    second = tmp_path / "second"
    proc = subprocess.run(
        f"{command} --out {shlex.quote(str(second))} -q",
        shell=True,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    before, after = (json.loads((d / "run.json").read_text()) for d in (first, second))
    assert after["settings"] == before["settings"] and before["settings"]["budget_s"] == 0.05
    assert after["seed"] == before["seed"] == 11
    assert after["worker_env"] == before["worker_env"]
    if not torch_has_cuda():
        assert before["worker_env"] == {"TRITON_INTERPRET": "1"}
        assert command.startswith("TRITON_INTERPRET=1 perfbench run ")
    again = pd.read_csv(second / "results.csv", keep_default_na=False)
    assert list(again.status) == ["ok"], again.error.tolist()
    assert again.command.iloc[0] == command  # the rerun would rerun itself the same way


def torch_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
