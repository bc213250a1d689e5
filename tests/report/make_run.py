"""Make a realistic run folder on disk without measuring anything, so the report, compare and
browser tests run in milliseconds and cover every status and optional `extra` key."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from perfbench.results.rundir import RunDir

DATA = Path(__file__).parent / "data"
HOSTILE = "<script>alert(1)</script> & friends"


def _times(median: float, spread: float, n: int, rng: random.Random) -> list[float]:
    return [max(1e-3, rng.gauss(median, median * spread)) for _ in range(n)]


def _ok_row(
    point_id: int, axes: dict[str, Any], median: float, rng: random.Random, **extra: Any
) -> dict[str, Any]:
    times = sorted(_times(median, 0.03, 30, rng))
    q1, q3 = times[len(times) // 4], times[3 * len(times) // 4]
    flops = 2 * 3 * 1024 * 4096 * axes["batch_size"]
    return {
        "point_id": point_id,
        **axes,
        "status": "ok",
        "median_ms": median,
        "iqr_ms": q3 - q1,
        "p05_ms": times[1],
        "p95_ms": times[-2],
        "reps": len(times),
        "noise": (q3 - q1) / median,
        "throughput": axes["batch_size"] / median * 1e3,
        "tflops": flops / (median * 1e-3) / 1e12,
        "rel_err": 1e-7,
        "tolerance": 1e-4,
        "cold_start_s": 2.5 if axes["backend"] == "compile" else 0.01,
        "first_call_s": 0.005,
        "peak_mem_bytes": 12_000_000,
        "timer_overhead_us": 0.2,
        "timer": "perf_counter",
        "correctness_only": False,
        "wall_s": 1.0,
        "command": _command(axes),
        "times_ms": times,
        "extra": dict(extra),
    }


def _command(axes: dict[str, Any]) -> str:
    """A rerun command as long as the harness writes them (every axis, every setting)."""
    sets = " ".join(f"--set {k}={v}" for k, v in axes.items())
    settings = " ".join(
        f"--setting {k}" for k in ("warmup_s=0.3", "min_reps=10", "max_reps=1000", "target_ci=0.01")
    )
    return f"perfbench run scenarios/mlp.py {sets} --budget 1.0 {settings} --seed 0"


def _axes(backend: str, batch_size: int, amp: str = "off", **more: Any) -> dict[str, Any]:
    axes = {
        "backend": backend,
        "batch_size": batch_size,
        "threads": 2,
        "amp": amp,
        "pin_memory": False,
        "num_workers": 0,
        "mode": "infer",
        "device": "cpu",
    }
    axes.update(more)
    return axes


def make_run(
    path: Path,
    *,
    scale: float = 1.0,
    seed: int = 0,
    with_flamegraph: bool = True,
    with_ceilings: bool = True,
    state: str = "complete",
) -> RunDir:
    """A run folder with ok/skipped/failed/oom/timeout rows, hostile scenario text and profiling
    artefacts. `scale` multiplies every median (a second run with scale 1.2 is 20% slower)."""
    rng = random.Random(seed)
    run = RunDir.create(path)
    meta: dict[str, Any] = {
        "perfbench_version": "0.1.0",
        "scenario": {
            "path": "scenarios/mlp.py",
            "name": f"mlp {HOSTILE}",
            "doc": f"Three-layer MLP. {HOSTILE}",
        },
        "sweep": {
            "backend": ["eager", "compile"],
            "batch_size": [1, 16, 64],
            "amp": ["off", "bf16"],
        },
        "argv": ["perfbench", "run", "scenarios/mlp.py"],
        "command": "perfbench run scenarios/mlp.py",
        "seed": 0,
        "started_at": "2026-11-23T12:00:00+00:00",
        "finished_at": None if state == "running" else "2026-11-23T12:00:40+00:00",
        "state": state,
        "settings": {"budget_s": 1.0, "timeout_s": 60, "min_reps": 10, "max_reps": 1000},
        "environment": {
            "python": "3.11.9",
            "platform": "Linux-6.1-x86_64",
            "torch": "2.13.0+cpu",
            "triton": None,
            "cuda": None,
            "cpu": "Intel Xeon",
            "cpu_count": 2,
            "hostname": "ci",
            "env_vars": {"OMP_NUM_THREADS": "2", "EVIL": HOSTILE},
            "packages": {"numpy": "2.1.0"},
        },
        "points_total": 14,
    }
    if with_ceilings:
        meta["ceilings"] = {"device_name": "cpu", "copy_gbps": 8.0, "matmul_tflops": 5.0}
    run.write_meta(meta)

    pid = 0
    tb = run.artefact_dir("tb")
    (tb / "events.pt.trace.json").write_text("{}", encoding="utf-8")
    traces = run.artefact_dir("traces")
    for amp, amp_cost in (("off", 1.0), ("bf16", 5.0)):
        for bs in (1, 16, 64):
            base = (0.05 + 0.01 * bs) * amp_cost * scale
            for backend, factor in (("eager", 1.0), ("compile", 0.8)):
                pid += 1
                extra: dict[str, Any] = {}
                if backend == "compile":
                    extra["graph_breaks"] = 1
                    extra["graph_break_reasons"] = [f"call to print() {HOSTILE}"]
                if bs == 64 and amp == "off":
                    trace = traces / f"{backend}_bs64.json"
                    trace.write_text("{}", encoding="utf-8")
                    extra["profile"] = {
                        "trace": f"traces/{trace.name}",
                        "tb_dir": "tb",
                        "top_ops": [
                            {"name": "aten::addmm", "self_cpu_ms": 0.4 * factor, "calls": 3},
                            {"name": "aten::relu", "self_cpu_ms": 0.1 * factor, "calls": 2},
                        ],
                    }
                    # the sampler's own format: a CSV in gpu/ and its relative path
                    gpu_csv = run.artefact_dir("gpu") / f"{pid}.csv"
                    gpu_csv.write_text(
                        "t,util_pct,mem_used_bytes,sm_clock_mhz,power_w,temp_c\n"
                        + "".join(
                            f"{t / 10},{50 + 40 * (t % 3 == 0)},{1 << 30},1980,400,60\n"
                            for t in range(30)
                        ),
                        encoding="utf-8",
                    )
                    extra["gpu"] = {
                        "mean_util_pct": 63.0,
                        "max_util_pct": 90.0,
                        "peak_mem_used_bytes": 1 << 30,
                        "mean_power_w": 400.0,
                        "mean_sm_clock_mhz": 1980.0,
                        "timeline": f"gpu/{pid}.csv",
                    }
                    extra["input_bound_hint"] = (
                        "input-bound: the GPU idles while the DataLoader works"
                    )
                run.append_row(_ok_row(pid, _axes(backend, bs, amp), base * factor, rng, **extra))
    pid += 1
    triton_info = {
        "coverage": {"replaced": 3, "candidates": 4, "ops_in_our_kernels_pct": 37.5, "basis": "b"},
        "patterns": {
            "layer_norm": {"candidates": 2, "replaced": 2, "eager_no_backward": 0},
            "linear_act": {"candidates": 2, "replaced": 1, "eager_no_backward": 1},
        },
        "loss_cross_entropy": {"kernel": 12},
    }
    row = _ok_row(pid, _axes("triton", 64), 3.0 * scale, rng, **triton_info)
    row["correctness_only"] = True
    run.append_row(row)
    pid += 1
    run.append_row(
        {
            "point_id": pid,
            **_axes("eager", 64, "fp16"),
            "status": "skipped",
            "reason": "fp16 autocast needs CUDA",
            "command": _command(_axes("eager", 64, "fp16")),
        }
    )
    pid += 1
    run.append_row(
        {
            "point_id": pid,
            **_axes("compile", 64, "off", mode="train"),
            "status": "failed",
            "error": f"scenarios/mlp.py:12: MismatchError rel_err 3e-1 > 1e-4 {HOSTILE}",
            # a failed point's times must never be shown as a result
            "median_ms": 0.123456,
            "command": _command(_axes("compile", 64, mode="train")),
        }
    )
    pid += 1
    run.append_row(
        {
            "point_id": pid,
            **_axes("eager", 4096),
            "status": "oom",
            "error": "CUDA out of memory. Tried to allocate 2.00 GiB",
            "command": _command(_axes("eager", 4096)),
        }
    )
    pid += 1
    run.append_row(
        {
            "point_id": pid,
            **_axes("compile", 4096),
            "status": "timeout",
            "error": "exceeded --timeout 60 s",
            "command": _command(_axes("compile", 4096)),
        }
    )
    if with_flamegraph:
        # a real py-spy 0.4 flame graph (its own <script>, DOCTYPE and escaped frame names)
        fg = run.artefact_dir("flamegraphs")
        (fg / "eager_bs64.svg").write_bytes((DATA / "pyspy_flamegraph.svg").read_bytes())
    return run
