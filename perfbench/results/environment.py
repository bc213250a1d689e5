"""Capture what is needed to reproduce a measurement (rule 6): versions, device, driver, CPU,
threads and the environment variables that change performance."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from perfbench.results.hardware import capture_hardware

# Environment variables that change how fast (or how) PyTorch code runs.
PERF_ENV_PREFIXES = (
    "OMP_",
    "MKL_",
    "KMP_",
    "GOMP_",
    "OPENBLAS_",
    "CUDA_",
    "CUBLAS_",
    "CUDNN_",
    "NCCL_",
    "NVIDIA_",
    "PYTORCH_",
    "TORCH",
    "TRITON_",
    "LD_PRELOAD",
)
PACKAGES = (
    "torch",
    "triton",
    "numpy",
    "torchao",
    "nvtx",
    "nvidia-ml-py",
    "py-spy",
    "pandas",
    "pytest-benchmark",
    "perfbench",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _gpus() -> list[dict[str, Any]]:
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        out.append(
            {
                "index": i,
                "name": props.name,
                "total_memory_bytes": props.total_memory,
                "capability": f"{props.major}.{props.minor}",
                "multiprocessors": props.multi_processor_count,
            }
        )
    return out


def _driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else str(version)
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None


def _git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def capture_environment(scenario_dir: Path | None = None) -> dict[str, Any]:
    """A JSON-able description of this machine and software, for run.json."""
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "driver": _driver_version() if torch.cuda.is_available() else None,
        "gpus": _gpus(),
        "packages": _package_versions(),
        "env_vars": {
            k: v for k, v in sorted(os.environ.items()) if k.startswith(PERF_ENV_PREFIXES)
        },
        "git_commit": _git_commit(scenario_dir) if scenario_dir else None,
        # instruction set extensions, cores, GPU capability and clocks: what decides a verdict
        "hardware": capture_hardware(),
    }
