"""What the page shows where (issue 15 items 6 and 7): a throughput chart that fits the data,
reproduce commands that wrap only between arguments, and GPU-only content only for GPU points."""

from __future__ import annotations

import shlex
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from perfbench.report.data import results_table
from perfbench.report.page import command_args, command_html, render_report
from perfbench.report.profiling_view import GPU_CATEGORIES, profiling
from perfbench.results.row import Row
from perfbench.results.rundir import RunDir
from tests.conftest import ok_row


def test_one_batch_size_gets_bars_not_lone_dots(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    run.write_meta({"state": "complete"})
    for i, backend in enumerate(("eager", "compile", "fx")):
        run.append_row({**ok_row(i, backend, 10.0 + i, 0.1), "throughput": 800.0 - 100 * i})
    html = render_report(run)
    assert "Throughput at batch size 8" in html and "Throughput against batch size" not in html
    tp = html[html.index('id="tp-') :]
    tp = tp[: tp.index("</svg>")]
    for label in ("eager bs8", "compile bs8", "fx bs8"):  # a labelled bar per point
        assert label in tp
    assert "eager · off" not in tp  # no line-chart legend


option = st.sampled_from(["--set", "--setting", "--budget", "--seed", "-o"])
value = st.from_regex(r"[a-z_]{1,8}=[a-z0-9,.]{1,8}|[0-9.]{1,5}", fullmatch=True)


@given(
    env=st.sampled_from(["", "TRITON_INTERPRET=1 "]),
    pairs=st.lists(st.tuples(option, value), max_size=12),
    flags=st.lists(st.sampled_from(["--profile", "--nvtx", "--no-control"]), max_size=3),
)
def test_command_wraps_only_between_arguments(
    env: str, pairs: list[tuple[str, str]], flags: list[str]
) -> None:
    """Each option stays with its value, and the units joined by spaces are the command again
    (a copy of the wrapped text still runs)."""
    command = env + "perfbench run scenarios/mlp.py " + " ".join(f"{o} {v}" for o, v in pairs)
    command = (command + " " + " ".join(flags)).strip()
    units = command_args(command)
    assert " ".join(units) == " ".join(command.split())
    for o, v in pairs:
        assert f"{o} {v}" in units
    assert shlex.split(" ".join(units)) == shlex.split(command)


def test_command_html_escapes_and_marks_units() -> None:
    html = str(command_html("perfbench run 'a b.py' --set x=<b> --profile"))
    assert html == (
        '<span class="arg">perfbench</span> <span class="arg">run</span> '
        '<span class="arg">&#39;a b.py&#39;</span> <span class="arg">--set x=&lt;b&gt;</span> '
        '<span class="arg">--profile</span>'
    )


def _profiled(point_id: int, device: str) -> dict:
    pct = {"device_compute": 0.0, "device_memcpy": 0.0, "device_memset": 0.0, "runtime": 0.0,
           "data_wait": 0.0, "cpu_host": 99.0, "idle": 1.0}  # fmt: skip
    return {
        **ok_row(point_id, "eager", 10.0, 0.1),
        "device": device,
        "extra": {
            "profile": {"summary": {"steps": {"breakdown_pct": pct}}},
            "nsys_command": f"nsys profile --trace=cuda,nvtx -o p{point_id} perfbench run s.py",
        },
    }


def test_gpu_only_content_only_for_gpu_points(tmp_path: Path) -> None:
    cpu_only = profiling(results_table([Row.from_dict(_profiled(0, "cpu"))]), tmp_path)
    assert cpu_only.nsys == []  # nsys --trace=cuda records nothing of a CPU point
    assert cpu_only.breakdown_columns == ["data_wait", "cpu_host", "idle"]
    rows = [Row.from_dict(_profiled(0, "cpu")), Row.from_dict(_profiled(1, "cuda"))]
    mixed = profiling(results_table(rows), tmp_path)
    assert [label.split()[-1] for label, _ in mixed.nsys] == ["cuda"]
    cpu_pct, cuda_pct = (pct for _, pct in mixed.breakdown)
    assert not set(GPU_CATEGORIES) & set(cpu_pct)  # the CPU row leaves its cells blank
    assert set(GPU_CATEGORIES) <= set(cuda_pct) and set(GPU_CATEGORIES) <= set(
        mixed.breakdown_columns
    )


def test_cpu_run_page_has_no_device_columns_and_the_real_tensorboard_path(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run dir")
    run.write_meta({"state": "complete"})
    row = _profiled(0, "cpu")
    row["extra"]["profile"]["tb_dir"] = "tb"
    run.append_row(row)
    html = render_report(run)
    assert "Where a profiled step" in html and "cpu_host" in html
    assert "device_compute" not in html and "Nsight" not in html
    # a path with a space is quoted, so the command can be pasted as it is
    quoted = shlex.quote(str((tmp_path / "run dir" / "tb").resolve())).replace("'", "&#39;")
    assert f'<span class="arg">--logdir {quoted}</span>' in html


def test_gpu_throttle_facts_are_not_shown_as_backend_facts(tmp_path: Path) -> None:
    """The throttle check's facts are contention bookkeeping (the caveat says it), not what the
    backend did: the facts line keeps the backend's own keys only."""
    row = _profiled(1, "cuda")
    row["extra"].update(
        sm_clock_mhz=[1980, 1410], gpu_throttle_reasons=["hw_slowdown"], gpu_throttled=True
    )
    row["extra"]["rewrites"] = {"linear_act": 2}
    shown = profiling(results_table([Row.from_dict(row)]), tmp_path).point_facts
    assert [list(f) for _, _, f in shown] == [["rewrites"]]
