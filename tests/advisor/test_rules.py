"""Each advisor rule on a run folder that triggers it and on one that does not; none fires on a
difference inside the noise floor."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfbench.advisor import advise, format_findings
from tests.advisor.runs import SAPPHIRE, hardware, row, write_run


def rules(path: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in advise(path):
        out.setdefault(f.rule, []).append(f)
    return out


# -- low precision -------------------------------------------------------------------------------


def test_bf16_slower_on_avx2_only_cpu_names_the_missing_extension(tmp_path: Path) -> None:
    run = write_run(tmp_path, [row(217.9), row(599.9, amp="bf16")])
    [f] = rules(run)["low_precision_cpu"]
    assert "2.8× slower than float32" in f.sentence
    assert "no AVX512-BF16 or AMX-BF16" in f.sentence
    assert any("599.9 ms" in e and "217.9 ms" in e for e in f.evidence)
    assert "--set amp=off" in f.command or "amp=off" in f.command
    assert f.priority == 1


def test_bf16_slower_with_native_bf16_says_the_hardware_is_there(tmp_path: Path) -> None:
    run = write_run(tmp_path, [row(217.9), row(599.9, amp="bf16")], hardware(SAPPHIRE))
    [f] = rules(run)["low_precision_cpu"]
    assert "although this CPU has AVX512-BF16 and AMX-BF16" in f.sentence
    assert "no AVX512-BF16" not in f.sentence


def test_int8_slower_without_vnni(tmp_path: Path) -> None:
    run = write_run(tmp_path, [row(40.0), row(400.0, backend="int8")])
    [f] = rules(run)["low_precision_cpu"]
    assert "int8" in f.sentence and "no AVX512-VNNI or AVX-VNNI or AMX-INT8" in f.sentence


def test_bf16_within_noise_does_not_fire(tmp_path: Path) -> None:
    run = write_run(tmp_path, [row(100.0, 0.08), row(105.0, 0.08, amp="bf16")])
    assert "low_precision_cpu" not in rules(run)


def test_bf16_on_gpu_that_gains_nothing(tmp_path: Path) -> None:
    gpu = [{"index": 0, "name": "T4", "capability": "7.5", "bf16_native": False}]
    rows = [row(10.0, device="cuda"), row(9.9, device="cuda", amp="bf16")]
    [f] = rules(write_run(tmp_path / "a", rows, hardware(gpus=gpu)))["low_precision_gpu"]
    assert "gained nothing" in f.sentence and any("no bf16 tensor cores" in e for e in f.evidence)
    faster = [row(10.0, device="cuda"), row(4.0, device="cuda", amp="bf16")]
    assert "low_precision_gpu" not in rules(write_run(tmp_path / "b", faster))


# -- backends that changed nothing, graph breaks, recompiles, break-even -------------------------


def test_no_change(tmp_path: Path) -> None:
    fx0 = {"rewrites": {"fold_bn": 0, "linear_act": 0}, "note": "no rewrite fired"}
    run = write_run(tmp_path / "a", [row(50.0), row(49.5, backend="fx", extra=fx0)])
    [f] = rules(run)["no_change"]
    assert "fx changed nothing" in f.sentence and "no rewrite fired" in f.sentence
    fx2 = {"rewrites": {"fold_bn": 0, "linear_act": 2}}
    assert "no_change" not in rules(
        write_run(tmp_path / "b", [row(50.0), row(40.0, backend="fx", extra=fx2)])
    )


def test_graph_breaks_cite_file_and_line(tmp_path: Path) -> None:
    reason = "Data-dependent branching (at branchy.py:17 in forward)"
    extra = {
        "compile_mode": "default",
        "graph_breaks": 1,
        "graphs": 2,
        "graph_break_reasons": [reason],
    }
    run = write_run(tmp_path / "a", [row(50.0), row(60.0, backend="compile", extra=extra)])
    [f] = rules(run)["graph_breaks"]
    assert "branchy.py:17" in f.sentence and "into 2 graph(s)" in f.sentence
    assert f.command.startswith("TORCH_LOGS=graph_breaks perfbench run")
    clean = {"compile_mode": "default", "graph_breaks": 0, "graphs": 1}
    assert "graph_breaks" not in rules(
        write_run(tmp_path / "b", [row(50.0), row(40.0, backend="compile", extra=clean)])
    )


def test_break_reason_without_count_fires_and_quotes_the_scenario_line(tmp_path: Path) -> None:
    scenario = tmp_path / "tagger.py"
    scenario.write_text("import torch\n\n\n    out, _ = self.lstm(h)  # the LSTM\n")
    extra = {
        "compile_mode": "default",
        "graph_breaks": 0,
        "graphs": 1,
        "graph_break_reasons": ["step_unsupported (at tagger.py:4 in forward)"],
    }
    run = write_run(tmp_path / "run", [row(50.0), row(50.0, backend="compile", extra=extra)])
    meta = json.loads((run / "run.json").read_text())
    meta["scenario"]["path"] = str(scenario)
    (run / "run.json").write_text(json.dumps(meta))
    [f] = rules(run)["graph_breaks"]
    assert "could not trace this call" in f.sentence and "tagger.py:4" in f.sentence
    assert "(`out, _ = self.lstm(h)`)" in f.sentence


def test_recompiles(tmp_path: Path) -> None:
    extra = {"compile_mode": "default", "recompiles": 1, "compile_ids": ["0/0", "0/1"]}
    [f] = rules(write_run(tmp_path / "a", [row(10.0, backend="compile", extra=extra)]))[
        "recompiles"
    ]
    assert "recompiled 1 time" in f.sentence and "0/1" in f.evidence[0]
    quiet = {"compile_mode": "default", "recompiles": 0, "compile_ids": ["0/0"]}
    assert "recompiles" not in rules(
        write_run(tmp_path / "b", [row(10.0, backend="compile", extra=quiet)])
    )


def test_break_even_counts_steps_and_says_the_cache_missed(tmp_path: Path) -> None:
    extra = {
        "compile_mode": "default",
        "inductor_cache": {"state": "miss", "fxgraph_cache_miss": 1},
    }
    rows = [row(50.0), row(40.0, backend="compile", cold_start_s=10.0, extra=extra)]
    [f] = rules(write_run(tmp_path, rows))["compile_break_even"]
    assert "after 1,000 steps" in f.sentence  # 10 s / (50 - 40) ms
    assert "cache miss" in f.sentence
    assert f.command == rows[1]["command"]  # rerun as is: the cache is warm the second time


def test_break_even_never_pays_back_when_slower(tmp_path: Path) -> None:
    extra = {"compile_mode": "default", "inductor_cache": {"state": "hit", "fxgraph_cache_hit": 1}}
    rows = [row(50.0), row(80.0, backend="compile", cold_start_s=17.0, extra=extra)]
    [f] = rules(write_run(tmp_path, rows))["compile_break_even"]
    assert "never pays back" in f.sentence and "cache was warm" in f.sentence and f.priority == 1


def test_break_even_needs_a_compiled_point(tmp_path: Path) -> None:
    assert "compile_break_even" not in rules(
        write_run(tmp_path, [row(50.0), row(40.0, backend="fx")])
    )


# -- scaling -------------------------------------------------------------------------------------


def test_overhead_bound(tmp_path: Path) -> None:
    # weights that fit in the cache: the fixed cost is not memory traffic (advisor/bound.py)
    small = {"step_bytes": {"weights": 2**20, "weight_tensors": 4, "last_level_cache": 2**25}}
    flat = [row(10.0, batch_size=8, extra=small), row(11.0, batch_size=64, extra=small)]
    [f] = rules(write_run(tmp_path / "a", flat))["overhead_bound"]
    assert "is overhead-bound at batch 8" in f.sentence and "batch_size=8,128" in f.command
    for kind in ("overhead_bound", "memory_bound", "fixed_cost"):
        linear = [row(10.0, batch_size=8), row(80.0, batch_size=64)]
        assert kind not in rules(write_run(tmp_path / f"b{kind}", linear))
        noisy = [row(10.0, 0.3, batch_size=8), row(11.0, 0.3, batch_size=64)]
        assert kind not in rules(write_run(tmp_path / f"c{kind}", noisy))


def test_thread_scaling(tmp_path: Path) -> None:
    poor = [row(100.0, threads=1), row(95.0, threads=2)]
    [f] = rules(write_run(tmp_path / "a", poor))["thread_scaling"]
    assert "1 -> 2 threads gave 1.05×" in f.sentence
    good = [row(100.0, threads=1), row(52.0, threads=2)]
    assert "thread_scaling" not in rules(write_run(tmp_path / "b", good))


def test_threads_above_physical_cores(tmp_path: Path) -> None:
    rows = [row(50.0, threads=2), row(55.0, threads=4)]
    [f] = rules(write_run(tmp_path / "a", rows))["threads_above_cores"]
    assert "2 physical cores" in f.sentence and "--set threads=2" in f.command
    assert "threads_above_cores" not in rules(write_run(tmp_path / "b", [row(50.0, threads=2)]))


# -- resources -----------------------------------------------------------------------------------


def test_input_bound(tmp_path: Path) -> None:
    loader = {"throughput_basis": "mean step time", "timed_calls": 40}
    # a loader's steps are bimodal (stall, ready, ready...): a huge IQR must not hide the wait
    rows = [
        row(40.0, 5.0, data_wait_frac=0.8, throughput=64 / 0.05, extra=loader),
        row(12.0, 1.0, num_workers=2, data_wait_frac=0.1, throughput=64 / 0.012, extra=loader),
    ]
    found = rules(write_run(tmp_path / "a", rows))["input_bound"]
    assert len(found) == 1 and "80% of the time" in found[0].sentence
    assert "of a mean 50.0 ms step" in found[0].evidence[0]
    assert any("num_workers=2" in e for e in found[0].evidence)
    assert "num_workers=0,2" in found[0].command
    assert "input_bound" not in rules(write_run(tmp_path / "b", [row(40.0, data_wait_frac=0.05)]))
    few = {"throughput_basis": "mean step time", "timed_calls": 3}
    lucky = [row(40.0, data_wait_frac=0.9, reps=3, extra=few)]
    assert "input_bound" not in rules(write_run(tmp_path / "c", lucky))


def test_memory_peak(tmp_path: Path) -> None:
    big = [row(50.0), row(40.0, backend="compile", peak_mem_bytes=500 * 2**20)]
    [f] = rules(write_run(tmp_path / "a", big))["memory_peak"]
    assert "5.0× eager's peak memory" in f.sentence
    close = [row(50.0), row(40.0, backend="compile", peak_mem_bytes=130 * 2**20)]
    assert "memory_peak" not in rules(write_run(tmp_path / "b", close))


# -- noise, ordering, text -----------------------------------------------------------------------


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.floats(1.0, 1000.0),
    noise=st.floats(0.01, 0.09),
    inside=st.floats(-0.95, 0.95),
)
def test_no_timing_rule_fires_inside_the_noise(
    tmp_path: Path, base: float, noise: float, inside: float
) -> None:
    """B differs from A by less than their IQR/median: no rule may call it a change."""
    other = base * (1 + inside * noise)
    rows = [
        row(base, noise),
        row(other, noise, amp="bf16"),
        row(other, noise, backend="int8"),
        row(base, noise, threads=1, batch_size=32),
        row(base / 2 * (1 + inside * noise), noise, threads=2, batch_size=32),
    ]
    found = rules(write_run(tmp_path / f"r{abs(hash((base, noise, inside)))}", rows))
    assert not {"low_precision_cpu", "slower_ops", "thread_scaling"} & set(found)


def test_findings_are_ranked_and_formatted(tmp_path: Path) -> None:
    rows = [row(217.9), row(599.9, amp="bf16"), row(50.0, threads=4)]
    found = advise(write_run(tmp_path, rows))
    assert [f.priority for f in found] == sorted(f.priority for f in found)
    text = format_findings(found)
    assert text.splitlines()[1].startswith(" 1. [act] bf16 autocast")
    assert "try: " in text
    assert format_findings([]) == ""
