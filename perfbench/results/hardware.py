"""The hardware facts that decide a verdict: which instruction set extensions the CPU has (they
decide whether bf16, fp16 and int8 can be fast at all), how many physical cores there are (threads
above that only share them), and on CUDA the compute capability, SM count, memory and clocks.

Why both the OS and torch: /proc/cpuinfo lists what the CPU and kernel offer; torch's own queries
(`torch.cpu.get_capabilities()`, `torch.cpu._is_*_supported()`, `torch.backends.cpu.
get_cpu_capability()`) say what torch detected and will dispatch to. Where the two disagree (a
hypervisor hiding AMX state, `ATEN_CPU_CAPABILITY` capping the kernels) torch's answer is what the
timings saw, so it wins, and the disagreement is kept in `disagree`.

Everything here is JSON-able for run.json (`environment.hardware`) and nothing raises: a fact that
cannot be read is None, never a guess.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class Extension:
    """One instruction set extension: our key, its usual name, the /proc/cpuinfo flag, the key in
    `torch.cpu.get_capabilities()`, and what it decides."""

    key: str
    name: str
    proc_flag: str
    torch_key: str
    decides: str


EXTENSIONS: tuple[Extension, ...] = (
    Extension("avx2", "AVX2", "avx2", "avx2", "float32 vector width (256-bit)"),
    Extension("avx512f", "AVX-512", "avx512f", "avx512_f", "float32 vector width (512-bit)"),
    Extension("avx512_bf16", "AVX512-BF16", "avx512_bf16", "avx512_bf16", "native bf16 dot products"),
    Extension("avx512_fp16", "AVX512-FP16", "avx512_fp16", "avx512_fp16", "native fp16 arithmetic"),
    Extension("avx_vnni", "AVX-VNNI", "avx_vnni", "avx_vnni", "int8 dot products (256-bit)"),
    Extension("avx512_vnni", "AVX512-VNNI", "avx512_vnni", "avx512_vnni", "int8 dot products (512-bit)"),
    Extension("amx_tile", "AMX", "amx_tile", "amx_tile", "matrix tiles (needed by AMX-BF16/INT8)"),
    Extension("amx_bf16", "AMX-BF16", "amx_bf16", "amx_bf16", "bf16 matrix multiply in tiles"),
    Extension("amx_int8", "AMX-INT8", "amx_int8", "amx_int8", "int8 matrix multiply in tiles"),
    Extension("amx_fp16", "AMX-FP16", "amx_fp16", "amx_fp16", "fp16 matrix multiply in tiles"),
)  # fmt: skip
BY_KEY = {e.key: e for e in EXTENSIONS}

# Which extensions make a low-precision type native on a CPU (any one of them suffices). Without
# them, bf16/fp16 math is converted to float32 and back around every op (slower than float32), and
# int8 matmuls fall back to slower widening paths.
NATIVE_CPU = {
    "bf16": ("avx512_bf16", "amx_bf16"),
    "fp16": ("avx512_fp16", "amx_fp16"),
    "int8": ("avx512_vnni", "avx_vnni", "amx_int8"),
}

# torch's private per-extension queries (torch >= 2.3); each is tried, a missing one is skipped
_TORCH_QUERIES = {
    "avx2": "_is_avx2_supported",
    "avx512f": "_is_avx512_supported",
    "avx512_bf16": "_is_avx512_bf16_supported",
    "avx512_vnni": "_is_vnni_supported",
    "amx_tile": "_is_amx_tile_supported",
    "amx_fp16": "_is_amx_fp16_supported",
}


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model, vendor, flags and core counts from the text of /proc/cpuinfo (x86 layout).

    Physical cores are the distinct (physical id, core id) pairs; logical cores the `processor`
    entries. A field the text lacks (ARM, containers that trim it) gives None."""
    model = vendor = None
    flags: set[str] = set()
    logical = 0
    cores: set[tuple[str, str]] = set()
    phys_id = core_id = None
    for line in [*text.splitlines(), ""]:
        if not line.strip():  # end of one processor's block
            if core_id is not None:
                cores.add((phys_id or "0", core_id))
            phys_id = core_id = None
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            logical += 1
        elif key == "model name" and model is None:
            model = value
        elif key == "vendor_id" and vendor is None:
            vendor = value
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key == "physical id":
            phys_id = value
        elif key == "core id":
            core_id = value
    return {
        "model": model,
        "vendor": vendor,
        "flags": flags,
        "logical_cores": logical or None,
        "physical_cores": len(cores) or None,
    }


def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def torch_cpu_queries() -> dict[str, Any]:
    """What torch itself detected: `get_capabilities()` (a mapping, torch >= 2.8), the private
    `_is_*_supported()` queries, the ATen kernel level in use and oneDNN's low-precision support."""
    out: dict[str, Any] = {"capabilities": None, "queries": {}}
    caps = getattr(torch.cpu, "get_capabilities", None)
    if caps is not None:
        try:
            out["capabilities"] = dict(caps())
        except Exception as err:  # a query is a fact source, never a reason to fail a run
            out["capabilities_error"] = f"{type(err).__name__}: {err}"
    for key, name in _TORCH_QUERIES.items():
        fn = getattr(torch.cpu, name, None)
        if fn is not None:
            try:
                out["queries"][key] = bool(fn())
            except Exception:
                pass
    try:
        out["aten_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:
        out["aten_cpu_capability"] = None
    for dtype in ("bf16", "fp16"):
        fn = getattr(torch.ops.mkldnn, f"_is_mkldnn_{dtype}_supported", None)
        try:
            out[f"onednn_{dtype}"] = bool(fn()) if fn is not None else None
        except Exception:
            out[f"onednn_{dtype}"] = None
    return out


def cpu_facts(
    cpuinfo_text: str | None = None, torch_info: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """CPU model, cores and the extensions that decide low-precision and int8 speed.

    `features[key]` is torch's answer where torch has one, else the /proc/cpuinfo flag, else None
    (unknown). Arguments exist for tests; by default both sources are read from this machine."""
    info = parse_cpuinfo(_read_cpuinfo() if cpuinfo_text is None else cpuinfo_text)
    tq = dict(torch_cpu_queries() if torch_info is None else torch_info)
    caps = tq.get("capabilities") or {}
    queries = tq.get("queries") or {}
    flags: set[str] = info["flags"]
    features: dict[str, bool | None] = {}
    disagree: list[str] = []
    for ext in EXTENSIONS:
        os_says = (ext.proc_flag in flags) if flags else None
        torch_says = caps.get(ext.torch_key, queries.get(ext.key))
        torch_says = None if torch_says is None else bool(torch_says)
        features[ext.key] = torch_says if torch_says is not None else os_says
        if os_says is not None and torch_says is not None and os_says != torch_says:
            disagree.append(f"{ext.name}: /proc/cpuinfo {os_says}, torch {torch_says}")
    logical = info["logical_cores"] or caps.get("num_logical_cores") or os.cpu_count()
    physical = info["physical_cores"] or caps.get("num_physical_cores")
    return {
        "model": info["model"] or caps.get("cpu_name") or platform.processor() or None,
        "vendor": info["vendor"],
        "architecture": platform.machine(),
        "logical_cores": logical,
        "physical_cores": physical,
        "sockets": caps.get("num_sockets"),
        "l1d_cache_bytes": caps.get("l1d_cache_size"),
        "l2_cache_bytes": caps.get("l2_cache_size"),
        "features": features,
        "native": {kind: native_cpu(features, kind)[0] for kind in NATIVE_CPU},
        "aten_cpu_capability": tq.get("aten_cpu_capability"),
        "onednn_bf16": tq.get("onednn_bf16"),
        "onednn_fp16": tq.get("onednn_fp16"),
        "disagree": disagree,
        "sources": "torch.cpu.get_capabilities / torch.cpu._is_*_supported, else /proc/cpuinfo",
    }


def native_cpu(features: Mapping[str, Any], kind: str) -> tuple[bool | None, list[str]]:
    """(whether `kind` in NATIVE_CPU runs natively, the names of the extensions that would make it
    native). None when none of those extensions is known either way."""
    keys = NATIVE_CPU[kind]
    known = [features.get(k) for k in keys if features.get(k) is not None]
    names = [BY_KEY[k].name for k in keys]
    if not known:
        return None, names
    return any(known), names


def _nvml_facts(index: int) -> dict[str, Any]:
    """Clocks, power limit and memory bus width from NVML, or {"nvml": why not}."""
    try:
        import pynvml
    except ImportError:
        return {"nvml": "nvidia-ml-py (pynvml) is not installed"}
    try:
        pynvml.nvmlInit()
    except Exception as err:
        return {"nvml": f"nvmlInit failed: {err}"}
    out: dict[str, Any] = {}
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        queries = {
            "max_sm_clock_mhz": lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "max_mem_clock_mhz": lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            "sm_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
            "power_limit_w": lambda: pynvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000,
            "memory_bus_width_bits": lambda: pynvml.nvmlDeviceGetMemoryBusWidth(handle),
        }  # fmt: skip
        for key, query in queries.items():
            try:
                out[key] = query()
            except Exception:
                out[key] = None
    finally:
        pynvml.nvmlShutdown()
    return out


def cuda_facts() -> list[dict[str, Any]]:
    """Per visible GPU: name, compute capability, SM count, memory, bf16 and tensor-core support,
    and NVML clocks where the driver answers. Empty without CUDA."""
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        try:
            nvml_index = int(torch.cuda._get_nvml_device_index(i))
        except Exception:  # CUDA_VISIBLE_DEVICES unreadable: NVML's order
            nvml_index = i
        out.append(
            {
                "index": i,
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "sm_count": props.multi_processor_count,
                "total_memory_bytes": props.total_memory,
                "tensor_cores": props.major >= 7,
                "bf16_native": props.major >= 8,  # Ampere and later have bf16 tensor cores
                "tf32_matmul_allowed": bool(torch.backends.cuda.matmul.allow_tf32),
                **_nvml_facts(nvml_index),
            }
        )
    return out


def capture_hardware() -> dict[str, Any]:
    """The `hardware` section of run.json: {"cpu": cpu_facts(), "cuda": cuda_facts()}."""
    return {"cpu": cpu_facts(), "cuda": cuda_facts()}


def _names(features: Mapping[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [BY_KEY[k].name for k in keys if features.get(k)]


def summary_line(hardware: Mapping[str, Any] | None) -> str:
    """One line for a human: "Intel Xeon, 2 logical / 2 physical cores, AVX2, AVX-512 (torch
    kernels: AVX512), native bf16 (AVX512-BF16, AMX-BF16), int8 (AVX512-VNNI, ...)"; plus a
    clause per GPU. Says "unknown" rather than guessing where a fact is missing."""
    if not hardware:
        return "hardware facts not recorded (run.json from an older perfbench)"
    parts: list[str] = []
    cpu = hardware.get("cpu") or {}
    if cpu:
        feats = cpu.get("features") or {}
        cores = f"{cpu.get('logical_cores') or '?'} logical / {cpu.get('physical_cores') or '?'} physical cores"
        vec = _names(feats, ("avx2", "avx512f")) or ["no AVX2"]
        if feats.get("avx2") and feats.get("avx512f") is False:
            vec.append("no AVX-512")
        if cpu.get("aten_cpu_capability"):
            vec[-1] += f" (torch kernels: {cpu['aten_cpu_capability']})"
        text = [cpu.get("model") or "unknown CPU", cores, ", ".join(vec)]
        for kind in ("bf16", "fp16", "int8"):
            native, names = native_cpu(feats, kind)
            if native is None:
                text.append(f"{kind} support unknown")
            elif native:
                text.append(f"native {kind} ({', '.join(_names(feats, NATIVE_CPU[kind]))})")
            else:
                text.append(f"no native {kind} ({'/'.join(names)} absent)")
        parts.append(", ".join(text))
    parts += [_gpu_clause(gpu) for gpu in hardware.get("cuda") or []]
    return "; ".join(parts) or "no hardware facts"


def _gpu_clause(gpu: Mapping[str, Any]) -> str:
    """ "GPU 0: NVIDIA H100, sm_90, 132 SMs, 80 GiB, max SM clock 1980 MHz"."""
    text = [f"GPU {gpu.get('index')}: {gpu.get('name')}"]
    if gpu.get("capability"):
        text.append(f"sm_{str(gpu['capability']).replace('.', '')}")
    if gpu.get("sm_count"):
        text.append(f"{gpu['sm_count']} SMs")
    if gpu.get("total_memory_bytes"):
        text.append(f"{gpu['total_memory_bytes'] / 2**30:.0f} GiB")
    if gpu.get("max_sm_clock_mhz"):
        text.append(f"max SM clock {gpu['max_sm_clock_mhz']} MHz")
    if gpu.get("bf16_native") is False:
        text.append("no bf16 tensor cores")
    return ", ".join(text)
