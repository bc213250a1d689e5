"""`perfbench run SCENARIO --set backend=triton` on every shipped scenario, as a user types it.

On this CPU the kernels run in the Triton interpreter (the CLI sets TRITON_INTERPRET=1 for the
worker): each point must pass the correctness check against eager float32, report its coverage,
and be marked correctness-only in results and report. Small batches keep it to about a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.cli.test_cli_run import perfbench

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
COMMON = ["--set", "backend=triton", "--set", "threads=1", "--set", "pin_memory=false"]
COMMON += ["--set", "num_workers=0", "--budget", "0.1", "-q"]

# scenario -> (extra axes, per mode: patterns our kernels must replace)
CASES = {
    # train: bias_act has no backward, so Linear+GELU stays eager (checked below)
    "mlp": (["--set", "batch_size=2", "--set", "mode=infer,train"], {"infer": {"linear_act"}}),
    "transformer": (["--set", "batch_size=1"], {"infer": {"layer_norm"}}),
    "convnet": (["--set", "batch_size=2"], {}),  # conv + BN: no pattern of ours
    "llm_block": (
        ["--set", "batch_size=2", "--set", "mode=train"],
        {"train": {"add_rms_norm", "rms_norm", "swiglu"}},
    ),
    "input_bound": (["--set", "batch_size=2"], {}),
}


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="the CPU interpreter path; test_cuda covers CUDA"
)
@pytest.mark.parametrize("name", list(CASES))
def test_triton_backend_runs_each_shipped_scenario(name: str, tmp_path: Path) -> None:
    pytest.importorskip(
        "triton", reason="the triton backend needs triton (pip install -e '.[dev]')"
    )
    axes, must_replace = CASES[name]
    out = tmp_path / "run"
    proc = perfbench("run", str(SCENARIOS / f"{name}.py"), "--out", str(out), *COMMON, *axes)
    assert proc.returncode == 0, proc.stderr[-2000:]
    df = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert (df.status == "ok").all(), df[["status", "reason", "error"]].to_dict("records")
    for row in df.itertuples():
        extra = json.loads(row.extra)
        assert str(row.correctness_only) == "True" and "not performance" in extra["timing_note"]
        assert float(row.rel_err) <= float(row.tolerance)
        replaced = {p for p, c in extra["patterns"].items() if c["replaced"]}
        assert must_replace.get(row.mode, set()) <= replaced, (row.mode, extra["patterns"])
        cov = extra["coverage"]
        assert cov["replaced"] == sum(c["replaced"] for c in extra["patterns"].values())
        if row.mode == "train" and name == "llm_block":
            assert extra["loss_cross_entropy"].get("kernel", 0) > 0  # F.cross_entropy -> ours
        if row.mode == "train" and name == "mlp":
            assert extra["patterns"]["linear_act"]["eager_no_backward"] >= 1  # no bias_act bwd
    assert "interpreter timing, not performance" in (out / "report.html").read_text()
