"""Hardware facts: parsing /proc/cpuinfo, torch's answer winning over the OS's, the one-line
summary naming what is missing, and the section landing in run.json's environment."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from perfbench.results import hardware
from perfbench.results.environment import capture_environment

AVX2_ONLY = """processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) CPU @ 2.20GHz
physical id	: 0
core id		: 0
flags		: fpu sse sse2 avx avx2 fma f16c

processor	: 1
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) CPU @ 2.20GHz
physical id	: 0
core id		: 0
flags		: fpu sse sse2 avx avx2 fma f16c
"""

NO_TORCH = {"capabilities": None, "queries": {}, "aten_cpu_capability": "AVX2"}


def test_parse_cpuinfo_counts_hyperthreads_as_one_physical_core() -> None:
    info = hardware.parse_cpuinfo(AVX2_ONLY)
    assert info["model"] == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert info["logical_cores"] == 2
    assert info["physical_cores"] == 1
    assert "avx2" in info["flags"] and "avx512f" not in info["flags"]


@given(st.integers(1, 4), st.integers(1, 8), st.integers(1, 2))
def test_parse_cpuinfo_core_counts(sockets: int, cores: int, threads: int) -> None:
    blocks = []
    n = 0
    for s in range(sockets):
        for c in range(cores):
            for _ in range(threads):
                blocks.append(
                    f"processor\t: {n}\nphysical id\t: {s}\ncore id\t\t: {c}\nflags\t\t: avx2\n"
                )
                n += 1
    info = hardware.parse_cpuinfo("\n".join(blocks))
    assert info["logical_cores"] == sockets * cores * threads
    assert info["physical_cores"] == sockets * cores


def test_avx2_only_cpu_has_no_native_bf16_and_the_summary_names_what_is_missing() -> None:
    facts = hardware.cpu_facts(AVX2_ONLY, NO_TORCH)
    assert facts["features"]["avx2"] is True
    assert facts["features"]["avx512_bf16"] is False
    assert facts["native"] == {"bf16": False, "fp16": False, "int8": False}
    line = hardware.summary_line({"cpu": facts, "cuda": []})
    assert "2 logical / 1 physical cores" in line
    assert "no AVX-512" in line
    assert "no native bf16 (AVX512-BF16/AMX-BF16 absent)" in line


def test_torch_answer_wins_and_disagreement_is_kept() -> None:
    torch_info = {
        "capabilities": {"avx2": True, "avx512_f": False, "amx_bf16": False, "amx_tile": False},
        "queries": {},
    }
    text = AVX2_ONLY.replace("avx2 fma", "avx2 avx512f amx_bf16 amx_tile fma")
    facts = hardware.cpu_facts(text, torch_info)
    assert facts["features"]["amx_bf16"] is False  # torch does not use it: torch wins
    assert any("AMX-BF16" in d for d in facts["disagree"])


def test_unknown_when_no_source_knows() -> None:
    facts = hardware.cpu_facts("", {"capabilities": None, "queries": {}})
    assert facts["features"]["avx512_bf16"] is None
    assert facts["native"]["bf16"] is None
    assert "bf16 support unknown" in hardware.summary_line({"cpu": facts})


def test_gpu_clause() -> None:
    gpu = {"index": 0, "name": "NVIDIA H100", "capability": "9.0", "sm_count": 132,
           "total_memory_bytes": 80 * 2**30, "max_sm_clock_mhz": 1980, "bf16_native": True}  # fmt: skip
    line = hardware.summary_line({"cpu": {}, "cuda": [gpu]})
    assert line == "GPU 0: NVIDIA H100, sm_90, 132 SMs, 80 GiB, max SM clock 1980 MHz"


def test_this_machine_agrees_with_torch_and_lands_in_the_environment() -> None:
    env = capture_environment()
    cpu = env["hardware"]["cpu"]
    import torch

    caps = dict(torch.cpu.get_capabilities())
    assert cpu["features"]["avx512_bf16"] == caps["avx512_bf16"]
    assert cpu["features"]["amx_bf16"] == caps["amx_bf16"]
    assert cpu["logical_cores"] >= (cpu["physical_cores"] or 1)
    assert hardware.summary_line(env["hardware"])
