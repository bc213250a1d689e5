"""The device rule of the launchers, and the poisoning helper the other tests rely on."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from perfbench_kernels._launch import (
    check_device,
    interpreter_active,
    num_warps_bwd,
    row_block,
    row_programs,
)

from tests.kernels.common import poisoned


def test_interpreter_flag(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert interpreter_active()
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert not interpreter_active()
    monkeypatch.setenv("TRITON_INTERPRET", "false")
    assert not interpreter_active()
    monkeypatch.delenv("TRITON_INTERPRET")
    assert not interpreter_active()


def test_cpu_tensors_need_the_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    check_device("op", torch.zeros(2, device="cpu"))
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(AssertionError, match=r"need CUDA tensors.*TRITON_INTERPRET=1"):
        check_device("op", torch.zeros(2, device="cpu"))


def test_mixed_devices_rejected():
    meta = torch.empty(2, device="meta")
    with pytest.raises(AssertionError, match="same device"):
        check_device("op", torch.zeros(2, device="cpu"), meta)


def test_launch_helpers():
    assert row_block(300, 2) == 512
    assert row_block(32768, 2) == 32768  # bf16: one 64 KiB block, single pass
    assert row_block(32768, 4) == 16384  # fp32: loop of two blocks
    assert row_block(300, 4, block_n=64) == 64
    assert row_programs(10, torch.device("cpu")) == (4, 3)  # 4 programs x 3 rows cover 10
    assert row_programs(1, torch.device("cpu")) == (1, 1)
    assert row_programs(0, torch.device("cpu")) == (0, 1)
    assert [num_warps_bwd(b) for b in (64, 1024, 4096, 8192, 32768)] == [4, 4, 16, 32, 32]


def test_poisoned_allocations_are_nan():
    with poisoned():
        a, b = torch.empty(3), torch.empty_like(torch.zeros(2, 2))  # default device
        i = torch.empty(2, dtype=torch.long)
    assert torch.isnan(a).all() and torch.isnan(b).all() and i.dtype == torch.long
    assert not torch.isnan(torch.empty(3).fill_(0)).any()  # restored


def test_importing_the_package_does_no_work():
    """`import perfbench_kernels` must not pull in triton (nothing runs at import time)."""
    code = (
        "import sys, perfbench_kernels, perfbench_kernels._launch; print('triton' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
