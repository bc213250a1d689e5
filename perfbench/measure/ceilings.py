"""`perfbench ceilings`: what this device can do at best, measured, so the report can say how far
a point is from it (achieved TFLOP/s against a measured matmul rate, not a datasheet number).

Two ceilings, as in the reference numbers of docs/design.md:
- copy bandwidth in GB/s, counting bytes read + bytes written (`dst.copy_(src)` moves 2 × nbytes);
- dense matmul rate in TFLOP/s, 2·n³ FLOPs per n×n×n product, in the dtype the device runs fastest
  (bf16 on CUDA, float32 on CPU where bf16 is often emulated and slower).

Measured like a point (`perfbench.measure.timing.measure`: warm-up, then samples until the median's 95%
confidence interval is within ±1% or the budget is spent), in several rounds. A round's figure is
the rate of its fastest tenth of samples (`CEILING_QUANTILE`), not its median, and the ceiling is
the best round, because a ceiling is what the device can do and interference only ever slows it.
Measured on the shared 2-core dev box (load 5), six 1-second rounds of a 512² float32 matmul at
1 thread: medians 0.078-0.202 TFLOP/s (a neighbour on the core slows over half the samples),
fastest tenth 0.2119-0.2141 (1% apart); copy medians 4.9-13.0 GB/s, fastest tenth 12.9-13.8.
On a quiet machine the two agree within a few percent; the ceiling sits that much above the
best median a point can reach, the safe side for an upper bound. Each round's figure is kept,
with their spread, so a user sees how well the ceiling repeats. On a CPU the samples are short
(about a millisecond: a 4 MiB chunk of a copy that cycles through twice the last-level cache, so
every chunk comes from memory; 512² and 1024² matmuls) so that many of them fall between two
deschedulings. Two consecutive single-shot runs of the old 64 MiB / 1536² version gave 8.2 and
17.4 GB/s here.

Results are cached per device in `ceilings.json` under `$PERFBENCH_CACHE_DIR` (default
`~/.cache/perfbench`), keyed by device name and, on CPU, the thread count they were measured
with: a point at 1 thread is compared with the 1-thread ceiling, never with a 2-thread one.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from perfbench.measure.timing import TimingSettings, measure

# Bumped when the way ceilings are measured changes: cached entries of another method are
# ignored (measured again) rather than compared with points measured the new way.
METHOD = 3

# CPU: 4 MiB chunks (about 1 ms each), matmuls 512² and 1024² at up to 2 threads (1024² and
# 2048² above). CUDA: one 1 GiB copy and 8192³ bf16, the sizes behind the H100 numbers in
# docs/design.md (a CUDA event timer is not disturbed by host scheduling).
SIZES: dict[str, dict[str, Any]] = {
    "cpu": {"copy_chunk_bytes": 4 << 20, "matmul_n": (512, 1024), "dtype": "float32"},
    "cuda": {"copy_chunk_bytes": 1 << 30, "matmul_n": (8192,), "dtype": "bfloat16"},
}
ROUNDS = 3
CEILING_QUANTILE = 0.1  # a round's figure: the 10th percentile of its sample times
BUDGET_S = 1.0  # timed work per measurement (one round of one size), as `--budget` of a point
MIN_COPY_WORKING_SET = 256 << 20
MAX_COPY_WORKING_SET = 2 << 30


def cache_path() -> Path:
    """Where measured ceilings are kept (PERFBENCH_CACHE_DIR overrides ~/.cache/perfbench)."""
    root = os.environ.get("PERFBENCH_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "perfbench"
    return base / "ceilings.json"


def device_key(device: str, threads: int = 1) -> str:
    """Cache key: the device's name (and on CPU the thread count), so a cache survives a moved
    run folder but never hands one GPU's ceiling to another, or a 2-thread one to 1 thread."""
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        return f"cuda:{torch.cuda.get_device_name(index)}"
    cpu = _cpu_model() or platform.processor() or platform.machine()
    return f"cpu:{cpu}:threads={threads}"


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def last_level_cache_bytes() -> int | None:
    """The largest CPU cache Linux reports (sysfs), or None where it cannot be read."""
    sizes = []
    for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = path.read_text(encoding="utf-8").strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes) if sizes else None


def copy_working_set_bytes() -> int:
    """src + dst of the CPU copy: twice the last-level cache, so each chunk comes from memory."""
    llc = last_level_cache_bytes() or 0
    return min(max(2 * llc, MIN_COPY_WORKING_SET), MAX_COPY_WORKING_SET)


def cached_ceilings(device: str = "cpu", threads: int = 1) -> dict[str, Any] | None:
    """The cached ceilings of this device and thread count, or None: cheap, for run.json."""
    try:
        cache = json.loads(cache_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    entry = cache.get(device_key(device, threads)) if isinstance(cache, dict) else None
    if not isinstance(entry, dict) or entry.get("method") != METHOD:
        return None  # absent, or measured the old single-shot way: not comparable
    return entry


def ceilings_for_run(devices: list[str], threads: list[int]) -> dict[str, Any]:
    """run.json keys for a sweep: the cached ceilings of its device, per thread count on a CPU
    (`ceilings_by_threads`; `ceilings` is the lowest thread count's, for older readers), and a
    note naming the command for each thread count not cached. Never measures: that would cost
    seconds and heat the device in the middle of a sweep."""
    if "cuda" in devices and torch.cuda.is_available():
        found = cached_ceilings("cuda")
        if found:
            return {"ceilings": found}
        return {
            "ceilings_note": "no ceilings cached for cuda: run `perfbench ceilings --device cuda`"
        }
    counts = sorted({int(t) for t in threads} or {1})
    by_threads = {str(t): c for t in counts if (c := cached_ceilings("cpu", t)) is not None}
    out: dict[str, Any] = {}
    if by_threads:
        out["ceilings"] = next(iter(by_threads.values()))
        out["ceilings_by_threads"] = by_threads
    missing = [t for t in counts if str(t) not in by_threads]
    if missing:
        commands = "; ".join(f"`perfbench ceilings --device cpu --threads {t}`" for t in missing)
        out["ceilings_note"] = f"no ceilings cached for cpu at threads {missing}: run {commands}"
    return out


def measure_ceilings(
    device: str = "cpu",
    refresh: bool = False,
    threads: int = 1,
    rounds: int = ROUNDS,
    budget_s: float = BUDGET_S,
) -> dict[str, Any]:
    """Copy GB/s and matmul TFLOP/s of `device` at `threads` (CPU), from the cache unless
    `refresh` or absent; measured with the points' stopping rule, best of `rounds`."""
    if not refresh:
        cached = cached_ceilings(device, threads)
        if cached is not None:
            return cached
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but CUDA is not available on this machine")
    if threads < 1 or rounds < 1 or budget_s <= 0:
        raise ValueError(
            f"threads, rounds and budget must be positive: {threads}, {rounds}, {budget_s}"
        )
    previous = torch.get_num_threads()
    if kind == "cpu":
        torch.set_num_threads(threads)
    try:
        result = _measure(torch.device(device), kind, threads, rounds, budget_s)
    finally:
        torch.set_num_threads(previous)
    result["device_name"] = device_key(device, threads)
    _store(result)
    return result


def _measure(
    dev: torch.device, kind: str, threads: int, rounds: int, budget_s: float
) -> dict[str, Any]:
    sizes = SIZES[kind]
    settings = TimingSettings(budget_s=budget_s, warmup_s=0.2, min_reps=7)
    chunk = int(sizes["copy_chunk_bytes"])
    working_set = copy_working_set_bytes() if kind == "cpu" else 2 * chunk
    copy_fn = _chunked_copy(dev, chunk, working_set)
    dtype = getattr(torch, sizes["dtype"])
    ns = [n * (2 if threads > 2 and kind == "cpu" else 1) for n in sizes["matmul_n"]]
    matmuls = {n: _matmul(dev, n, dtype) for n in ns}
    copy_gbps: list[float] = []
    tflops: dict[int, list[float]] = {n: [] for n in ns}
    for _ in range(rounds):  # rounds interleave the sizes, so drift hits all of them alike
        copy_gbps.append(2 * chunk / _round_s(copy_fn, dev, settings) / 1e9)
        for n, fn in matmuls.items():
            tflops[n].append(2 * n**3 / _round_s(fn, dev, settings) / 1e12)
    best_n = max(ns, key=lambda n: max(tflops[n]))
    return {
        "threads": threads if kind == "cpu" else None,
        "method": METHOD,
        "round_statistic": f"p{CEILING_QUANTILE * 100:.0f} of the sample times",
        "copy_gbps": max(copy_gbps),
        "matmul_tflops": max(tflops[best_n]),
        "matmul_n": best_n,
        "matmul_dtype": sizes["dtype"],
        "copy_chunk_bytes": chunk,
        "copy_working_set_bytes": working_set,
        "rounds": {"copy_gbps": copy_gbps, "matmul_tflops": {str(n): v for n, v in tflops.items()}},
        "spread": {"copy": _spread(copy_gbps), "matmul": _spread(tflops[best_n])},
        "budget_s": budget_s,
        "torch": torch.__version__,
        "measured_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _spread(values: list[float]) -> float:
    """(best - worst) / best over the rounds: how well the ceiling repeated."""
    best = max(values)
    return (best - min(values)) / best if best > 0 else float("nan")


def _round_s(fn: Callable[[], Any], dev: torch.device, settings: TimingSettings) -> float:
    """Seconds per call of one round: the CEILING_QUANTILE of the samples `measure` took."""
    if dev.type == "cuda":
        with torch.cuda.device(dev):
            return measure(fn, device="cuda", settings=settings).quantile(CEILING_QUANTILE)
    return measure(fn, device="cpu", settings=settings).quantile(CEILING_QUANTILE)


def _chunked_copy(dev: torch.device, chunk: int, working_set: int) -> Callable[[], Any]:
    """Each call copies the next `chunk` bytes of a src/dst pair of `working_set` bytes in all."""
    n_chunks = max(working_set // (2 * chunk), 1)
    elems = chunk // 4
    src = torch.ones(n_chunks, elems, dtype=torch.float32, device=dev)
    dst = torch.empty_like(src).fill_(0)  # touched now: page faults stay out of the timing
    state = {"i": 0}

    def copy() -> Any:
        i = state["i"]
        state["i"] = (i + 1) % n_chunks
        return dst[i].copy_(src[i])

    return copy


def _matmul(dev: torch.device, n: int, dtype: torch.dtype) -> Callable[[], Any]:
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    out = torch.empty(n, n, device=dev, dtype=dtype)
    return lambda: torch.mm(a, b, out=out)


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


def describe(result: dict[str, Any]) -> str:
    """One line for the terminal: both ceilings, how well the rounds agreed, when measured."""
    rounds = result.get("rounds") or {}
    copies = rounds.get("copy_gbps") or []
    best_n = str(result.get("matmul_n"))
    rates = (rounds.get("matmul_tflops") or {}).get(best_n) or []
    spread = result.get("spread") or {}

    def listed(values: list[float]) -> str:
        return ", ".join(f"{v:.4g}" for v in values)

    return (
        f"{result['device_name']}: copy {result['copy_gbps']:.4g} GB/s (read + write; rounds "
        f"{listed(copies)}; spread {spread.get('copy', float('nan')):.1%}), matmul "
        f"{result['matmul_tflops']:.4g} TFLOP/s ({result['matmul_dtype']}, n={best_n}; "
        f"rounds {listed(rates)}; spread {spread.get('matmul', float('nan')):.1%}); "
        f"measured {result['measured_at']}"
    )
