"""`perfbench ceilings`: plausible numbers, cached per device under PERFBENCH_CACHE_DIR."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfbench import ceilings, cli


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PERFBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(
        ceilings.SIZES,
        "cpu",
        {"copy_bytes": 8 << 20, "matmul_n": 256, "dtype": "float32", "reps": 3},
    )
    return tmp_path / "cache" / "ceilings.json"


def test_measure_and_cache(small: Path) -> None:
    first = ceilings.measure_ceilings("cpu")
    assert 0.1 < first["copy_gbps"] < 10_000  # any CPU of this decade
    assert 1e-4 < first["matmul_tflops"] < 1_000
    cache = json.loads(small.read_text())
    assert cache[ceilings.device_key("cpu")]["copy_gbps"] == first["copy_gbps"]
    # the second call reads the cache: same dict, same measured_at
    assert ceilings.measure_ceilings("cpu") == first
    assert ceilings.cached_ceilings("cpu") == first


def test_command(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ceilings", "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"device_name", "copy_gbps", "matmul_tflops"}
    assert cli.main(["ceilings", "--device", "tpu"]) == 2


@pytest.mark.skipif(ceilings.torch.cuda.is_available(), reason="checks the no-CUDA error path")
def test_cuda_absent_is_usage_error(small: Path) -> None:
    assert cli.main(["ceilings", "--device", "cuda"]) == 2
