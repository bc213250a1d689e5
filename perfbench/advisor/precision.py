"""Low precision that does not pay: bf16/fp16 autocast or int8 slower than float32 on a CPU (and
whether the CPU has the extensions that make it native), fp16/bf16 on a GPU that gains nothing."""

from __future__ import annotations

from typing import Any

from perfbench.advisor.data import RunData, compare, ms, settings
from perfbench.advisor.finding import Finding
from perfbench.results import facts
from perfbench.results.hardware import BY_KEY, NATIVE_CPU, native_cpu

INT8_BACKENDS = ("int8", "int8-ao")
CAST_OPS = ("aten::_to_copy", "aten::to", "aten::copy_", "aten::_autocast_to_reduced_precision")
MIN_GPU_GAIN = 1.10  # a GPU autocast point under 1.10x float32 "gains nothing" worth its error


def _grown(data: RunData, a: dict[str, Any], b: dict[str, Any], n: int = 3) -> list[dict[str, Any]]:
    """The ops that added most self time per step from A to B in the op diff (with the CSV)."""
    comp = data.diff(a, b)
    if comp is None:
        return []
    grown = comp.diff[comp.diff["status"].isin(["slower", "appeared"])]
    grown = grown.sort_values("diff_ms_per_step", ascending=False).head(n)
    return [{**r, "csv": comp.csv} for r in grown.to_dict("records")]


def _culprit_evidence(grown: list[dict[str, Any]]) -> list[str]:
    return [
        f"{r['op']}: {ms(r['a_ms_per_step'])} -> {ms(r['b_ms_per_step'])} per profiled step "
        f"({r['status']}, noise floor {ms(r['noise_floor_ms'])}"
        + (f"; inductor made it from aten {r['fused_from']}" if r["fused_from"] else "")
        + f"; {r['csv']})"
        for r in grown
    ]


def _why(native: bool | None, kind: str, grown: list[dict[str, Any]]) -> str:
    """The clause after "so": missing hardware, or where the time went (from the op diff)."""
    if native is False:
        return f"{kind} math is converted to and from float32 around every op"
    if grown:
        top = grown[0]
        return (
            f"the time is not lost to missing hardware but in {top['op']} "
            f"(+{ms(top['diff_ms_per_step'])} per profiled step, {top['status']})"
        )
    if native:
        return (
            "the time is not lost to missing hardware; rerun with --profile to see which ops grew"
        )
    return "whether the CPU runs it natively is unknown"


def _hardware_clause(data: RunData, kind: str) -> tuple[bool | None, str]:
    native, names = native_cpu(data.cpu_features, kind)
    if native is None:
        return None, "run.json has no instruction-set facts for this CPU (older perfbench)"
    if native:
        have = [BY_KEY[k].name for k in NATIVE_CPU[kind] if data.cpu_features.get(k)]
        return True, f"although this CPU has {' and '.join(have)}"
    return False, f"this CPU has no {' or '.join(names)}"


def low_precision_cpu(data: RunData) -> list[Finding]:
    """bf16/fp16 autocast slower than amp=off, or int8 slower than eager, on a CPU."""
    out = []
    for b in data.ok():
        if str(b.get("device")) != "cpu":
            continue
        if b.get("amp") in ("bf16", "fp16"):
            a, kind, what = data.same_but(b, amp="off"), str(b["amp"]), f"{b['amp']} autocast"
        elif b.get("backend") in INT8_BACKENDS and b.get("amp") == "off":
            a, kind, what = data.same_but(b, backend="eager"), "int8", f"{b['backend']} (int8)"
        else:
            continue
        if a is None:
            continue
        r = compare(a, b)
        if not (r.significant and r.ratio > 1):
            continue
        native, clause = _hardware_clause(data, kind)
        grown = _grown(data, a, b)
        why = _why(native, kind, grown)
        sentence = (
            f"{what} made {b['backend']} {r.ratio:.1f}× slower than float32 at {settings(b, without='amp')} "
            f"({ms(b['median_ms'])} vs {ms(a['median_ms'])}): {clause}, so {why}."
        )
        evidence = [
            f"step time {ms(a['median_ms'])} ({a['label']}) vs {ms(b['median_ms'])} ({b['label']}): "
            f"speedup {r.text()} [results.csv median_ms, iqr_ms]",
            f"hardware: {clause.removeprefix('although ')} [run.json environment.hardware.cpu.features]",
            *_culprit_evidence(grown),
        ]
        if native is False and kind != "int8" and native_cpu(data.cpu_features, "int8")[0]:
            command = data.command(a, backend="eager,int8", amp="off")
        else:
            command = data.command(a, backend="eager,compile", amp=f"off,{kind}", extra="--profile")
            if kind == "int8":
                command = data.command(a, backend=f"eager,{b['backend']}", extra="--profile")
        out.append(
            Finding(
                "low_precision_cpu",
                sentence,
                tuple(evidence),
                command,
                1,
                b["median_ms"] - a["median_ms"],
                (a["label"], b["label"]),
                group=f"{b['backend']}:{kind}",
            )
        )
    return out


def low_precision_gpu(data: RunData) -> list[Finding]:
    """fp16/bf16 autocast on a GPU whose speedup over amp=off is below MIN_GPU_GAIN even at the
    best end of its interval."""
    out = []
    for b in data.ok():
        if str(b.get("device")) != "cuda" or b.get("amp") not in ("bf16", "fp16"):
            continue
        a = data.same_but(b, amp="off")
        if a is None:
            continue
        r = compare(a, b)
        if r.low <= 1 / MIN_GPU_GAIN:  # the interval's best end is a real gain: nothing to say
            continue
        profile = ((a.get("extra") or {}).get(facts.PROFILE) or {}).get("summary") or {}
        steps = profile.get("steps") or {}
        evidence = [f"speedup over amp=off {r.text()} [results.csv median_ms, iqr_ms]"]
        compute = (steps.get("breakdown_pct") or {}).get("device_compute")
        if compute is not None:
            evidence.append(f"amp=off step: {compute:.0f}% device compute [profile summary]")
        if profile.get("tensor_core_pct") is not None:
            evidence.append(f"tensor-core kernels {profile['tensor_core_pct']:.0f}% of kernel time")
        gpus = data.hardware.get("cuda") or []
        if gpus and gpus[0].get("bf16_native") is False and b["amp"] == "bf16":
            evidence.append(
                f"{gpus[0].get('name')} (sm_{gpus[0].get('capability')}) has no bf16 tensor cores"
            )
        sentence = (
            f"{b['amp']} autocast gained nothing worth its rounding on {b['backend']} at "
            f"{settings(a)} ({r.speedup:.2f}×): the step is not matmul-bound, so halving the bytes "
            "of the matmuls does not shorten it."
        )
        command = data.command(
            a,
            batch_size=f"{int(a['batch_size'])},{int(a['batch_size']) * 8}",
            amp=f"off,{b['amp']}",
            backend="eager,compile",
            extra="--profile",
        )
        out.append(
            Finding(
                "low_precision_gpu",
                sentence,
                tuple(evidence),
                command,
                2,
                0.0,
                (a["label"], b["label"]),
                group=f"{b['backend']}:{b['amp']}",
            )
        )
    return out
