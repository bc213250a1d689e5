"""`perfbench ceilings`: what this device can do at best, measured, so the report can say how far
a point is from it (achieved TFLOP/s against a measured matmul rate, not a datasheet number).

Two ceilings, as in docs/design.md's reference numbers:
- copy bandwidth in GB/s, counting bytes read + bytes written (`dst.copy_(src)` moves 2 × nbytes);
- dense matmul rate in TFLOP/s, 2·n³ FLOPs per n×n×n product, in the dtype the device runs fastest
  (bf16 on CUDA, float32 on CPU where bf16 is often emulated and slower).

Results are cached per device in `ceilings.json` under `$PERFBENCH_CACHE_DIR` (default
`~/.cache/perfbench`), keyed by device name and, on CPU, thread count: a number measured with 2
threads is not the ceiling of a 16-thread run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# Sizes: large enough to leave every cache and to amortise launch overhead, small enough that
# the CPU measurement ends in a few seconds on 2 cores (64 MiB copy: 16 ms at the 8.4 GB/s
# measured here; 1536³ fp32 matmul: 7.2 GFLOP, 0.19 s at the 38 GFLOP/s measured here, 7 calls).
# On CUDA: 1 GiB copy and 8192³ bf16, the sizes behind H100 numbers in docs/design.md.
SIZES = {
    "cpu": {"copy_bytes": 64 << 20, "matmul_n": 1536, "dtype": "float32", "reps": 5},
    "cuda": {"copy_bytes": 1 << 30, "matmul_n": 8192, "dtype": "bfloat16", "reps": 20},
}


def cache_path() -> Path:
    """Where measured ceilings are kept (PERFBENCH_CACHE_DIR overrides ~/.cache/perfbench)."""
    root = os.environ.get("PERFBENCH_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "perfbench"
    return base / "ceilings.json"


def device_key(device: str) -> str:
    """Cache key: the device's name (and CPU threads), so a cache survives a moved run folder but
    never hands one GPU's ceiling to another."""
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        return f"cuda:{torch.cuda.get_device_name(index)}"
    cpu = _cpu_model() or platform.processor() or platform.machine()
    return f"cpu:{cpu}:threads={torch.get_num_threads()}"


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cached_ceilings(device: str = "cpu") -> dict[str, Any] | None:
    """The cached ceilings of this device, or None: cheap, for the harness to put in run.json."""
    try:
        cache = json.loads(cache_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    entry = cache.get(device_key(device)) if isinstance(cache, dict) else None
    return entry if isinstance(entry, dict) else None


def measure_ceilings(device: str = "cpu", refresh: bool = False) -> dict[str, Any]:
    """Copy GB/s and matmul TFLOP/s of `device`, from the cache unless `refresh` or absent."""
    if not refresh:
        cached = cached_ceilings(device)
        if cached is not None:
            return cached
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but CUDA is not available on this machine")
    sizes = SIZES[kind]
    dev = torch.device(device)
    timer = _cuda_timer(dev) if kind == "cuda" else _host_timer
    copy_s = _copy_seconds(dev, sizes["copy_bytes"], sizes["reps"], timer)
    n = sizes["matmul_n"]
    matmul_s = _matmul_seconds(dev, n, getattr(torch, sizes["dtype"]), sizes["reps"], timer)
    result = {
        "device_name": device_key(device),
        "copy_gbps": 2 * sizes["copy_bytes"] / copy_s / 1e9,
        "matmul_tflops": 2 * n**3 / matmul_s / 1e12,
        "copy_bytes": sizes["copy_bytes"],
        "matmul_n": n,
        "matmul_dtype": sizes["dtype"],
        "torch": torch.__version__,
        "measured_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    _store(result)
    return result


def _store(result: dict[str, Any]) -> None:
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(cache, dict):
            cache = {}
    except (FileNotFoundError, json.JSONDecodeError):
        cache = {}
    cache[result["device_name"]] = result
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(cache, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


Timer = Callable[[Callable[[], Any]], float]


def _host_timer(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cuda_timer(device: torch.device) -> Timer:
    """CUDA events around the call; the host waits on the end event (rule 3)."""

    def timer(fn: Callable[[], Any]) -> float:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        with torch.cuda.device(device):
            start.record()
            fn()
            end.record()
            end.synchronize()
        return start.elapsed_time(end) / 1e3

    return timer


def _best_median(fn: Callable[[], Any], reps: int, timer: Timer) -> float:
    """Median of `reps` timed calls after two warm-up calls (first-touch page faults, cuBLAS
    heuristics and allocator growth all land in the warm-up)."""
    for _ in range(2):
        timer(fn)
    return statistics.median(timer(fn) for _ in range(reps))


def _copy_seconds(device: torch.device, nbytes: int, reps: int, timer: Timer) -> float:
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return _best_median(lambda: dst.copy_(src), reps, timer)


def _matmul_seconds(
    device: torch.device, n: int, dtype: torch.dtype, reps: int, timer: Timer
) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    return _best_median(lambda: torch.mm(a, b, out=out), reps, timer)


def add_ceilings_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `perfbench ceilings` (the CLI owns the subparser; this fills it)."""
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu or cuda[:N] (default: cuda when available)",
    )
    parser.add_argument(
        "--refresh", action="store_true", help="measure again even when the cache has this device"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def ceilings_command(args: argparse.Namespace) -> int:
    """Measure (or read from the cache) and print; 2 when the device is not available."""
    device = str(args.device)
    if not (device == "cpu" or device.startswith("cuda")):
        print(f"perfbench ceilings: device must be cpu or cuda[:N], got {device!r}")
        return 2
    from_cache = not args.refresh and cached_ceilings(device) is not None
    try:
        result = measure_ceilings(device, refresh=args.refresh)
    except RuntimeError as err:
        print(f"perfbench ceilings: {err}")
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['device_name']}: copy {result['copy_gbps']:.4g} GB/s (read + write), "
            f"matmul {result['matmul_tflops']:.4g} TFLOP/s ({result['matmul_dtype']}, "
            f"n={result['matmul_n']}); measured {result['measured_at']}"
            + (" (from the cache; --refresh measures again)" if from_cache else "")
            + f"; cache: {cache_path()}"
        )
    return 0


def ceilings_main(argv: list[str] | None = None) -> int:
    """Standalone entry, the same as `perfbench ceilings`."""
    parser = argparse.ArgumentParser(prog="perfbench ceilings", description=__doc__)
    add_ceilings_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return ceilings_command(args)


if __name__ == "__main__":
    raise SystemExit(ceilings_main())
