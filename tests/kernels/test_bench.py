"""The benchmark script's CPU-checkable parts: the no-CUDA exit, ideal bytes, the check/measure
plumbing (on the interpreter with a stand-in timer; its numbers mean nothing)."""

from __future__ import annotations

import pytest
import torch
from perfbench_kernels import bench
from perfbench_kernels.softmax import softmax, softmax_ref


def test_without_cuda_exits_2_with_a_reason(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--out", str(tmp_path / "b")]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_ideal_bytes():
    m, n = 16384, 8192
    assert bench.ideal_bytes("softmax", m, n) == 2 * m * n * 2  # read x, write y, bf16
    assert bench.ideal_bytes("bias_gelu", m, n) == 2 * m * n * 2 + n * 2
    assert bench.ideal_bytes("layer_norm", m, n) == 2 * m * n * 2 + 2 * n * 2
    assert bench.ideal_bytes("rms_norm", m, n) == 2 * m * n * 2 + n * 2
    assert bench.ideal_bytes("add_rms_norm", m, n) == 4 * m * n * 2 + n * 2
    assert bench.ideal_bytes("swiglu", m, n) == 3 * m * n * 2
    assert bench.ideal_bytes("cross_entropy", 8192, 32768) == 8192 * 32768 * 2 + 8 * 8192 + 2
    assert bench.ideal_bytes("cross_entropy_fwd_bwd", 2, 3, 4) == 2 * 2 * 3 * 4 + 16
    with pytest.raises(KeyError, match="known"):
        bench.ideal_bytes("conv", 1, 1)
    assert bench.linear_bytes(8, 4, 2) == (8 * 4 + 2 * 4 + 2 + 8 * 2) * 2
    assert bench.gb_per_s(3 * 10**9, 1000.0) == pytest.approx(3.0)


def test_every_case_has_its_formula():
    ops = [c.op for c in bench._cases(torch.device("cpu"), small=True)]
    assert len(set(ops)) == len(ops) == 9
    for op in ops:
        if op != "linear_gelu":  # a matmul: linear_bytes
            bench.ideal_bytes(op, 1, 1)


def _fake_cuda(monkeypatch):
    import triton.testing

    monkeypatch.setattr(triton.testing, "do_bench", lambda fn, **kw: (fn(), 2.0)[1])
    monkeypatch.setattr(torch, "compile", lambda fn: fn)
    for name in ("synchronize", "reset_peak_memory_stats", "empty_cache"):
        monkeypatch.setattr(torch.cuda, name, lambda *a: None)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 0)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 3 * 2**20)


def test_run_case_checks_before_timing(monkeypatch):
    _fake_cuda(monkeypatch)
    x = torch.randn(4, 50).to(torch.bfloat16)
    case = bench.Case(
        "softmax", "4x50", lambda: (x,), softmax, softmax_ref, 10**9, track_memory=True
    )
    rows = list(bench._run_case(case, copy_gbs=1.0))
    assert [r["impl"] for r in rows] == ["ours", "eager", "compile"]
    assert all(r["status"] == "ok" and r["median_ms"] == 2.0 for r in rows), rows
    assert rows[0]["gb_per_s"] == pytest.approx(500.0)  # 1 GB in 2 ms
    assert rows[0]["peak_mib"] == 3.0

    wrong = bench.Case("softmax", "4x50", lambda: (x,), lambda t: softmax(t) * 2, softmax_ref, 1000)
    rows = list(bench._run_case(wrong, copy_gbs=1.0))
    assert rows[0]["status"].startswith("failed check") and "median_ms" not in rows[0]
    md = bench.markdown(rows, {"copy_gb_per_s": 1.0, "matmul_tflop_per_s": 2.0}, "cpu")
    assert "| softmax | ours | 4x50 | failed check" in md


def test_run_case_gradient_path(monkeypatch):
    from perfbench_kernels.cross_entropy import cross_entropy, cross_entropy_ref

    _fake_cuda(monkeypatch)
    logits, target = torch.randn(3, 70).to(torch.bfloat16), torch.randint(0, 70, (3,))
    case = bench.Case(
        "ce", "3x70", lambda: (logits, target), cross_entropy, cross_entropy_ref, 10, grad=True
    )
    rows = list(bench._run_case(case, copy_gbs=1.0))
    assert all(r["status"] == "ok" for r in rows), rows


def test_tune_rows_run_ours_under_each_warp_count(monkeypatch):
    from perfbench_kernels import _launch as _device

    _fake_cuda(monkeypatch)
    seen: list[int] = []
    real_softmax = softmax

    def spy(t):
        seen.append(_device.launch_warps(-1))
        return real_softmax(t)

    x = torch.randn(4, 50).to(torch.bfloat16)
    case = bench.Case("softmax", "4x50", lambda: (x,), spy, softmax_ref, 10**9)
    rows = list(bench._run_case(case, copy_gbs=1.0, tune_warps=(2, 8)))
    assert [r["impl"] for r in rows] == ["ours", "eager", "compile", "ours w=2", "ours w=8"]
    assert all(r["status"] == "ok" for r in rows), rows
    assert set(seen) == {-1, 2, 8}  # the default outside the override, each count inside
    matmul = bench.Case("m", "1", lambda: (x,), spy, softmax_ref, 1, flops=1)
    assert len(list(bench._run_case(matmul, copy_gbs=1.0, tune_warps=(2,)))) == 3  # autotuned


def test_warps_override_is_scoped_and_checked():
    from perfbench_kernels._launch import launch_warps, warps_override

    assert launch_warps(4) == 4
    with warps_override(16):
        assert launch_warps(4) == 16
        with warps_override(None):
            assert launch_warps(8) == 8
    assert launch_warps(4) == 4
    with pytest.raises(AssertionError, match="power of two"), warps_override(3):
        pass
