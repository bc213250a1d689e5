"""Hand-built run folders for the advisor's tests: each row's median, IQR and facts are given
exactly, so a test can put a difference just outside or just inside the noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfbench.results.hardware import cpu_facts
from perfbench.results.rundir import RunDir

AXES_DEFAULT = {
    "backend": "eager",
    "batch_size": 64,
    "threads": 2,
    "amp": "off",
    "pin_memory": False,
    "num_workers": 0,
    "mode": "infer",
    "device": "cpu",
}

AVX2_ONLY = "processor\t: 0\nmodel name\t: Test CPU\nphysical id\t: 0\ncore id\t\t: 0\nflags\t\t: avx avx2 fma\n\nprocessor\t: 1\nmodel name\t: Test CPU\nphysical id\t: 0\ncore id\t\t: 1\nflags\t\t: avx avx2 fma\n"
SAPPHIRE = AVX2_ONLY.replace(
    "avx avx2 fma", "avx avx2 fma avx512f avx512_bf16 avx512_vnni amx_tile amx_bf16 amx_int8"
)
NO_TORCH: dict[str, Any] = {"capabilities": None, "queries": {}}


def hardware(cpuinfo: str = AVX2_ONLY, gpus: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"cpu": cpu_facts(cpuinfo, NO_TORCH), "cuda": gpus or []}


def row(median: float, iqr_frac: float = 0.02, **fields: Any) -> dict[str, Any]:
    """An ok row: axes from AXES_DEFAULT overridden by `fields`, median in ms, IQR as a fraction."""
    axes = {k: fields.pop(k, v) for k, v in AXES_DEFAULT.items()}
    extra = fields.pop("extra", {})
    sets = " ".join(f"--set {k}={str(v).lower()}" for k, v in axes.items())
    out = {
        **axes,
        "status": "ok",
        "median_ms": median,
        "iqr_ms": median * iqr_frac,
        "noise": iqr_frac,
        "reps": 30,
        "cold_start_s": 0.01,
        "peak_mem_bytes": 100 * 2**20,
        "command": f"perfbench run scenarios/test.py {sets}",
        "extra": extra,
    }
    out.update(fields)
    return out


def write_run(path: Path, rows: list[dict[str, Any]], hw: dict[str, Any] | None = None) -> Path:
    run = RunDir.create(path)
    run.write_meta(
        {
            "scenario": {"path": "scenarios/test.py", "name": "test"},
            "state": "complete",
            "environment": {"hardware": hw if hw is not None else hardware()},
        }
    )
    for i, r in enumerate(rows):
        run.append_row({"point_id": i, **r})
    return path
