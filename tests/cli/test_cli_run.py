"""End to end: `perfbench run` and `perfbench report` as a user types them, in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import TINY_MLP

EVERY_STATUS = (
    TINY_MLP
    + """
import os, time

SWEEP = {"batch_size": [1, 2, 3, 4, 5], "amp": ["off", "fp16"]}

def forward(model, batch):
    n = batch.shape[0]
    if n == 2:
        raise ValueError("batch of two is not supported")
    if n == 3:
        os._exit(3)  # the worker dies: the sweep must go on in a new one
    if n == 4:
        time.sleep(120)  # hangs: --timeout must stop it
    return model(batch)
"""
)


def perfbench(*args: str, timeout: float = 240, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perfbench.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def test_every_status_in_one_sweep(write_scenario, tmp_path):
    scenario = write_scenario(EVERY_STATUS)
    out = tmp_path / "run"
    proc = perfbench("run", str(scenario), "--out", str(out), "--timeout", "10", "--budget", "0.05")
    assert proc.returncode == 1, proc.stderr  # some points failed
    df = pd.read_csv(out / "results.csv", keep_default_na=False)
    status = {(r.batch_size, r.amp): r.status for r in df.itertuples()}
    assert status[(1, "off")] == "ok" and status[(5, "off")] == "ok"
    assert status[(2, "off")] == "failed"
    assert status[(3, "off")] == "failed"
    assert status[(4, "off")] == "timeout"
    assert all(status[(b, "fp16")] == "skipped" for b in range(1, 6))
    errors = dict(zip(df.batch_size[df.amp == "off"], df.error[df.amp == "off"], strict=True))
    line = (
        scenario.read_text()
        .splitlines()
        .index('        raise ValueError("batch of two is not supported")')
        + 1
    )
    assert f"{scenario}:{line}: ValueError: batch of two is not supported" in errors[2]
    assert "worker process died (exit code 3)" in errors[3]
    assert "exceeded --timeout 10 s" in errors[4]
    assert (df.reason[df.amp == "fp16"].str.contains("fp16 autocast on CPU")).all()
    assert (df.median_ms[df.status != "ok"] == "").all()  # no time shown for a failed point
    # progress on the terminal: a line per point and per result
    assert "[1/10]" in proc.stdout and "[10/10]" in proc.stdout
    assert "timeout: point stopped" in proc.stdout
    meta = json.loads((out / "run.json").read_text())
    assert meta["state"] == "complete" and meta["points_total"] == 10
    assert meta["environment"]["torch"] and meta["seed"] == 0
    assert meta["argv"][:2] == ["perfbench", "run"]
    assert (out / "report.html").exists()
    rerun = df.command[df.batch_size == 1].iloc[0]
    assert "--set batch_size=1" in rerun and "--budget 0.05" in rerun


def test_usage_errors_exit_2_with_clear_messages(write_scenario, tmp_path):
    scenario = write_scenario(TINY_MLP)
    proc = perfbench("run", str(scenario), "--set", "backend=eagre", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "'eagre' is not one of: eager, compile" in proc.stderr
    assert not (tmp_path / "r").exists()  # nothing ran

    broken = write_scenario("import torch\ndef build_model(\n", name="broken.py")
    proc = perfbench("run", str(broken))
    assert proc.returncode == 2
    assert f"{broken}:2: syntax error" in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = perfbench("run", str(scenario), "--set", "amp=fp8")
    assert proc.returncode == 2 and "off, bf16, fp16" in proc.stderr

    proc = perfbench("report", str(tmp_path))
    assert proc.returncode == 2 and "not a run folder" in proc.stderr


def test_quiet_run_prints_only_the_summary_and_report(write_scenario, tmp_path):
    scenario = write_scenario(TINY_MLP)
    out = tmp_path / "run"
    proc = perfbench("run", str(scenario), "--out", str(out), "--budget", "0.05", "-q")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines == ["perfbench: 1 ok", f"report: {out / 'report.html'}"]


def test_ctrl_c_keeps_measured_points_and_report_rebuilds(write_scenario, tmp_path):
    scenario = write_scenario(
        TINY_MLP
        + "\nimport time\nSWEEP = {'batch_size': [1, 2]}\n"
        + "def forward(model, batch):\n"
        + "    if batch.shape[0] == 2:\n        time.sleep(120)\n    return model(batch)\n"
    )
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perfbench.cli.main",
            "run",
            str(scenario),
            "--out",
            str(out),
            "--budget",
            "0.05",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            csv = out / "results.csv"
            if csv.exists() and len(csv.read_text().splitlines()) >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the first point never finished")
        time.sleep(1.0)  # the second point is now hanging inside the worker
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted: kept 1 of 2 points" in stdout
    df = pd.read_csv(out / "results.csv")
    assert list(df.status) == ["ok"]
    assert json.loads((out / "run.json").read_text())["state"] == "interrupted"
    # the report is rebuilt from the folder alone
    (out / "report.html").unlink(missing_ok=True)
    again = perfbench("report", str(out))
    assert again.returncode == 0, again.stderr
    assert (out / "report.html").exists()


def test_config_file_and_set_precedence_end_to_end(write_scenario, tmp_path):
    scenario = write_scenario(TINY_MLP + "\nSWEEP = {'batch_size': [1, 2, 3]}\n")
    config = tmp_path / "sweep.toml"
    config.write_text(
        '[sweep]\nbatch_size = [4, 5]\nmode = ["infer", "train"]\n[settings]\nbudget_s = 0.05\n'
    )
    out = tmp_path / "run"
    proc = perfbench(
        "run",
        str(scenario),
        "--config",
        str(config),
        "--set",
        "batch_size=6",
        "--out",
        str(out),
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out / "results.csv")
    assert sorted(zip(df.batch_size, df["mode"], strict=True)) == [(6, "infer"), (6, "train")]
    assert json.loads((out / "run.json").read_text())["settings"]["budget_s"] == 0.05


@pytest.mark.skipif(os.environ.get("PERFBENCH_SKIP_DEFAULT_RUN") == "1", reason="disabled by env")
def test_readme_default_run_of_the_mlp_scenario(tmp_path):
    """The README's main job, as typed, on the shipped default scenario (torch.compile included)."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "run"
    start = time.monotonic()
    proc = perfbench("run", "scenarios/mlp.py", "--out", str(out), cwd=root, timeout=300)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"report: {out / 'report.html'}"
    df = pd.read_csv(out / "results.csv")
    assert set(df.backend) >= {"eager", "compile"}
    assert (df.status == "ok").all()
    print(f"default run took {elapsed:.1f} s")


def test_dataloader_workers_start_inside_the_measuring_worker(write_scenario, tmp_path):
    """num_workers > 0 forks DataLoader workers from the (spawned) measuring process."""
    scenario = write_scenario(
        TINY_MLP
        + """
SWEEP = {"num_workers": [0, 2]}

class Items(torch.utils.data.Dataset):
    def __len__(self):
        return 256

    def __getitem__(self, i):
        return torch.randn(16)

def make_dataset():
    return Items()
"""
    )
    out = tmp_path / "run"
    proc = perfbench("run", str(scenario), "--out", str(out), "--budget", "0.1", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    df = pd.read_csv(out / "results.csv")
    assert list(df.status) == ["ok", "ok"], df.error.tolist()
    assert df.data_wait_frac.between(0, 1).all()
    assert all("throughput_basis" in json.loads(e) for e in df.extra)
