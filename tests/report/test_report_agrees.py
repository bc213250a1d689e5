"""The report agrees with itself (issue 21 item 6): best points compared at equal settings, one
consistent pair of numbers where the paired speedup and the medians disagree, a compact backend
facts table, readable y ticks on a two-batch-size chart. Crafted rows, rendered without a browser
(tests/report/test_browser.py covers Chromium)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from perfbench.report import charts
from perfbench.report import data as report_data
from perfbench.report.page import render_report
from perfbench.results.rundir import RunDir

AXES = {"threads": 2, "amp": "off", "pin_memory": False, "num_workers": 0, "mode": "infer",
        "device": "cpu", "memory_format": "contiguous", "shapes": "static"}  # fmt: skip


def ok(backend: str, batch: int, median: float, **fields: Any) -> dict[str, Any]:
    return {
        "backend": backend,
        "batch_size": batch,
        **AXES,
        "status": "ok",
        "median_ms": median,
        "iqr_ms": median * 0.02,
        "noise": 0.02,
        "reps": 30,
        "throughput": batch / median * 1e3,
        "command": f"perfbench run s.py --set backend={backend} --set batch_size={batch}",
        **fields,
    }


def paired(
    backend: str, batch: int, median: float, s: float, lo: float, hi: float, word: str, **kw: Any
) -> dict[str, Any]:
    return ok(
        backend,
        batch,
        median,
        speedup_vs_eager=s,
        speedup_ci_low=lo,
        speedup_ci_high=hi,
        verdict=word,
        **kw,
    )


def write(path: Path, rows: list[dict[str, Any]]) -> RunDir:
    run = RunDir.create(path)
    run.write_meta({"scenario": {"path": "s.py", "name": "s"}, "state": "complete"})
    for i, r in enumerate(rows):
        run.append_row({"point_id": i, **r})
    return run


def test_best_points_are_compared_at_equal_settings(tmp_path: Path) -> None:
    # issue 21: onnxruntime's best at bs4 (71 ms) was set against eager's best at bs16 (730 ms)
    rows = [
        ok("eager", 4, 200.0),
        ok("eager", 16, 730.0),
        paired("onnxruntime", 4, 71.0, 2.8, 2.5, 3.1, "faster"),
        paired("onnxruntime", 16, 400.0, 1.8, 1.6, 2.0, "faster"),
    ]
    run = write(tmp_path / "r", rows)
    df = report_data.load_results(run)
    best = report_data.best_per_backend(df, report_data.speedups(df)).set_index("backend")
    assert best.loc["onnxruntime", "batch_size"] == 4 and best.loc["eager", "batch_size"] == 16
    assert best.loc["onnxruntime", "eager_ms"] == 200.0  # eager at bs4, not eager's best (bs16)
    assert best.loc["onnxruntime", "speedup"] == 2.8
    assert report_data.settings_differ(best.reset_index())
    page = render_report(run)
    section = page[page.index("Best point per backend") : page.index("Speedup over eager at")]
    assert "these best points are at different settings, so compare samples/s" in section
    assert section.index("samples/s") < section.index("median ms")
    same = write(tmp_path / "s", rows[:1] + rows[2:3])
    assert "at different settings" not in render_report(same)


def test_paired_speedup_and_medians_show_one_consistent_pair(tmp_path: Path) -> None:
    # issue 21: paired 0.98x while the medians say compile 36.99 ms < eager 37.36 ms
    rows = [
        ok("eager", 8, 37.36),
        paired("compile", 8, 36.99, 0.98, 0.95, 1.01, "same"),
        paired("fx", 8, 30.0, 1.25, 1.2, 1.3, "faster"),
    ]
    run = write(tmp_path / "r", rows)
    sp = report_data.speedups(report_data.load_results(run)).set_index("backend")
    assert math.isclose(sp.loc["compile", "shown_ms"], 37.36 / 0.98)
    assert "36.99 ms against eager's 37.36 ms, points the other way" in sp.loc["compile", "ms_note"]
    assert sp.loc["fx", "shown_ms"] == 30.0 and sp.loc["fx", "ms_note"] == ""  # they agree
    page = render_report(run)
    cell = re.search(
        r'<td class="num" title="eager&#39;s median ÷ the paired speedup 0.98×[^"]*">([\d.]+)&thinsp;†',
        page,
    )
    assert cell and float(cell.group(1)) > 37.36  # slower than eager, as 0.98x says


def test_backend_facts_are_a_compact_formatted_table(tmp_path: Path) -> None:
    bookkeeping = {
        "aa_control": {"ci_low": 0.9271429486961614, "ok": False, "speedup": 1.0556},
        "interleaved": {"arms": ["a", "b"], "rounds": 20},
        "contended": True, "contention": "other processes used 1.30 cores", "others_cores": 1.304,
        "changes": None, "changes_what": "", "recompiled_during_timing": False,
        "too_noisy": True, "speedup_ci_level": 0.9875,
        "step_bytes": {"weights": 100, "batch": 4, "last_level_cache": None},
    }  # fmt: skip
    facts = {"ort_version": "1.32.0", "ort_spinning": False, "onnx_export_s": 2.6412345}
    rows = [ok("eager", 8, 10.0, extra=bookkeeping)] + [
        ok("onnxruntime", b, 5.0, extra={**bookkeeping, **facts, "onnx_export_s": 2.6412345 * b})
        for b in (8, 64)
    ]
    page = render_report(write(tmp_path / "r", rows))
    section = page[page.index("<h3>Backend facts</h3>") :]
    section = section[: section.index("</table>")]
    for raw in (
        "None",
        "False",
        "True",
        "{",
        "0.9271429486961614",
        "aa_control",
        "interleaved",
        "others_cores",
    ):
        assert raw not in section, raw
    assert "onnxruntime (all 2 points)</td><td>ort spinning no · ort version 1.32.0<" in section
    assert "bs8 t2 amp-off infer cpu</td><td>onnx export s 21.13<" in section  # 4 digits
    assert "bs64 t2 amp-off infer cpu</td><td>onnx export s 169<" in section
    assert section.count("<tr>") == 4  # header, the backend's shared facts, a line per point


def test_two_batch_sizes_get_readable_log_ticks() -> None:
    """Within a decade, 1-2-5 leaves one or two ticks: denser mantissas until four fit."""
    for lo, hi in ((250, 1300), (340, 1300), (22, 56), (700, 900)):
        subs = charts.log_subs(lo, hi)
        e0, e1 = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1
        inside = [m * 10.0**e for e in range(e0, e1) for m in subs if lo <= m * 10.0**e <= hi]
        assert len(inside) >= 3, (lo, hi, subs)
    assert charts.log_subs(1, 1000) == (1.0, 2.0, 5.0)  # decades apart: 1-2-5 is enough
    rows = [
        ok(b, n, m)
        for b, n, m in (("eager", 8, 31.0), ("eager", 64, 49.0), ("fx", 8, 23.0), ("fx", 64, 48.0))
    ]
    svg = charts.throughput_chart(report_data.results_table([_row(r) for r in rows]))
    labels = set(re.findall(r"<text[^>]*>([\d,]+)</text>", svg or "")) | set(
        re.findall(r"<!-- ([\d,]+) -->", svg or "")
    )
    assert {"300", "500", "700"} <= labels or {"400", "600", "800"} <= labels, labels


def _row(values: dict[str, Any]) -> Any:
    from perfbench.results.row import Row

    return Row.from_dict({"point_id": 0, **values})
