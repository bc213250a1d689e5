"""The report's speedup verdicts (issue 15 item 6, issue 11 item 7): the harness's verdict columns
drive the text and the colours where a run has them; older runs fall back to the IQR rule; and the
chart colours a bar exactly as the table does: green only for `faster`, red only for `slower`."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_hex

from perfbench.report import charts
from perfbench.report.data import results_table, speedup_summary, speedups
from perfbench.report.verdict_view import COLOURS
from perfbench.results.row import Row
from tests.conftest import ok_row

GREEN, RED = to_hex(COLOURS["good"]), to_hex(COLOURS["bad"])
VERDICTS = ("faster", "slower", "same", "inconclusive", "no change", "too noisy")


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return results_table([Row.from_dict(r) for r in rows])


def _pair(
    i: int, backend: str, verdict: str, speedup: float, low: float, high: float, **more: Any
) -> list[dict[str, Any]]:
    """An eager point and a backend point at batch size `i`, the backend carrying a verdict."""
    eager = {**ok_row(2 * i, "eager", 10.0, 0.2), "batch_size": i}
    other = {
        **ok_row(2 * i + 1, backend, 10.0 / speedup, 0.2),
        "batch_size": i,
        "speedup_vs_eager": speedup,
        "speedup_ci_low": low,
        "speedup_ci_high": high,
        "verdict": verdict,
        **more,
    }
    return [eager, other]


def _fills(svg: str, colour: str) -> int:
    return svg.count(f"fill: {colour}")


def test_fallback_chart_greys_what_the_table_greys() -> None:
    """An older run (no verdict columns): a 5% gain inside eager's 10% IQR is "within noise" in the
    table, and its bar is grey, not green; the interpreter timing is grey too."""
    rows = [
        ok_row(0, "eager", 10.0, 1.0),
        ok_row(1, "compile", 9.5, 0.1),  # 1.05x: inside eager's noise
        ok_row(2, "fx", 5.0, 0.1),  # 2x: real
        {**ok_row(3, "triton", 20.0, 0.1), "correctness_only": True},
    ]
    sp = speedups(_table(rows))
    svg = charts.speedup_chart(sp) or ""
    assert _fills(svg, GREEN) == 1 and _fills(svg, RED) == 0  # fx only
    sp = sp.set_index("backend")
    assert sp.loc["compile", "verdict"] == "within noise" and sp.loc["compile", "tone"] == "muted"
    assert sp.loc["fx", "verdict"] == "faster" and sp.loc["fx", "tone"] == "good"
    assert sp.loc["triton", "tone"] == "muted"


def test_verdict_columns_drive_the_text() -> None:
    rows = [
        *_pair(1, "compile", "faster", 1.31, 1.22, 1.40),
        *_pair(2, "fx", "same", 1.00, 0.98, 1.02),
        *_pair(3, "int8", "inconclusive", 0.99, 0.93, 1.08),
        *_pair(4, "triton", "slower", 0.8, 0.75, 0.85),
        *_pair(5, "fx", "no change", 1.01, 0.97, 1.05, verdict_reason="fx made no rewrite"),
        *_pair(
            6, "compile", "inconclusive", 1.5, 1.3, 1.7,
            verdict_reason="too noisy: A/A control 0.90–1.10 does not cover 1",
        ),
    ]  # fmt: skip
    sp = speedups(_table(rows))
    text = dict(zip(sp["settings"].str.split().str[0], sp["verdict_text"], strict=True))
    assert text["bs1"] == "compile 1.31× faster (95% CI 1.22–1.40)"
    assert text["bs2"] == "fx same within ±3% (0.98–1.02)"
    assert text["bs3"] == "int8 inconclusive (0.93–1.08)"
    assert text["bs4"] == "triton 1.25× slower (speedup 0.80, 95% CI 0.75–0.85)"
    assert text["bs5"] == "fx no change: fx made no rewrite"
    assert text["bs6"].startswith("compile inconclusive (1.30–1.70), too noisy: A/A control")
    # the paired speedup is shown, not the ratio of medians
    assert math.isclose(float(sp.loc[sp["backend"] == "compile", "speedup"].iloc[0]), 1.31)
    # a 1.5x that the verdict does not call faster is grey, in the chart as in the table
    assert list(sp["tone"]) == ["good", "muted", "muted", "bad", "muted", "muted"]
    svg = charts.speedup_chart(sp) or ""
    assert _fills(svg, GREEN) == 1 and _fills(svg, RED) == 1
    assert "1.50× inconclusive" in svg  # the bar's label says what the verdict says
    assert (
        speedups(_table(rows), margin=0.05)["verdict_text"].iloc[1].startswith("fx same within ±5%")
    )


def test_a_sentence_written_by_the_harness_is_shown_once() -> None:
    """group_timing writes the whole sentence into verdict_reason (the terminal prints it as
    is); the report must not repeat the verdict in front of it."""
    sentence = "compile inconclusive (0.61–0.67), too noisy: A/A control 0.99–1.05 is wider"
    rows = [*_pair(1, "compile", "inconclusive", 0.64, 0.61, 0.67, verdict_reason=sentence)]
    assert speedups(_table(rows))["verdict_text"].iloc[0] == sentence


def test_summary_is_green_only_with_a_faster_call() -> None:
    rows = [
        *_pair(1, "compile", "same", 1.02, 1.00, 1.03),
        *_pair(2, "compile", "same", 1.02, 1.0, 1.03),
    ]
    (summary,) = speedup_summary(speedups(_table(rows)))
    assert summary["geomean"] > 1 and summary["tone"] == "muted"
    assert summary["verdicts"] == "2 same"
    # one setting faster, one inconclusive at 1.5x: the mean of both is no call either
    rows = [
        *_pair(1, "compile", "faster", 1.3, 1.2, 1.4),
        *_pair(2, "compile", "inconclusive", 1.5, 0.9, 2.5),
    ]
    (summary,) = speedup_summary(speedups(_table(rows)))
    assert summary["tone"] == "muted" and summary["verdicts"] == "1 faster, 1 inconclusive"
    rows = [
        *_pair(1, "compile", "faster", 1.3, 1.2, 1.4),
        *_pair(2, "compile", "faster", 1.5, 1.4, 1.6),
    ]
    assert speedup_summary(speedups(_table(rows)))[0]["tone"] == "good"


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from((*VERDICTS, "")),
            st.floats(0.3, 3.0),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_bar_colour_is_the_verdicts(cases: list[tuple[str, float, bool]]) -> None:
    """Whatever the verdicts and speedups: a bar is green exactly when its verdict is faster and
    red exactly when slower (interpreter timings never), and the table's tone says the same.
    An empty verdict (older run) falls back to the IQR rule with the same colours."""
    rows = []
    for i, (verdict, speedup, interp) in enumerate(cases, start=1):
        low, high = speedup * 0.95, speedup * 1.05
        rows += _pair(i, "compile", verdict, speedup, low, high, correctness_only=interp)
    sp = speedups(_table(rows))
    assert len(sp) == len(cases)
    for (_, r), (verdict, _, interp) in zip(sp.iterrows(), cases, strict=True):
        want = "muted" if interp else {"faster": "good", "slower": "bad"}.get(r["verdict"], "muted")
        assert r["tone"] == want
        if verdict:
            assert interp or r["verdict"] == verdict
    svg = charts.speedup_chart(sp) or ""
    assert _fills(svg, GREEN) == int((sp["tone"] == "good").sum())
    assert _fills(svg, RED) == int((sp["tone"] == "bad").sum())


def test_the_a_a_control_of_each_group_is_shown() -> None:
    """Issue 11 item 3: the control's interval is recorded and shown in the report, per group;
    a run without controls (older, or --no-control) shows no such section."""
    from perfbench.report.page import _controls

    rows = _pair(1, "compile", "faster", 1.3, 1.2, 1.4) + _pair(2, "fx", "same", 1.0, 0.99, 1.01)
    rows[0]["extra"] = {"aa_control": {"ok": True, "ci_low": 0.99, "ci_high": 1.01}}
    rows[0]["verdict_reason"] = "A/A control 0.99–1.01 ok"
    rows[2]["extra"] = {"aa_control": {"ok": False}, "contention": "other processes used 1.5 cores"}
    rows[2]["verdict_reason"] = "too noisy: A/A control 0.95–1.06 is wider than the ±3% margin"
    rows[2]["contended"] = True
    shown = _controls(_table(rows))
    assert [(c["settings"].split()[0], c["ok"], c["contended"]) for c in shown] == [
        ("bs1", True, False),
        ("bs2", False, True),
    ]
    assert shown[1]["text"].startswith("too noisy: A/A control 0.95–1.06")
    assert _controls(_table(_pair(3, "compile", "same", 1.0, 0.99, 1.01))) == []
