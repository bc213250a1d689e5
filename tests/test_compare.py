"""`perfbench compare`: matching by axes, the significance rule, and --fail-above exit codes."""

from __future__ import annotations

import importlib.util
import math
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfbench.cli_compare import compare_main
from perfbench.compare import compare, compare_runs, is_significant, write_compare_html
from perfbench.rundir import RunDir

_spec = importlib.util.spec_from_file_location(
    "perfbench_test_make_run", Path(__file__).parent / "report" / "make_run.py"
)
assert _spec and _spec.loader
make_run_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_run_module)
make_run = make_run_module.make_run

noise = st.floats(min_value=0.0, max_value=0.5, allow_nan=False)
ratios = st.floats(min_value=0.2, max_value=5.0, allow_nan=False)


@given(ratio=ratios, noise_a=noise, noise_b=noise)
def test_significant_iff_change_exceeds_both_noises(
    ratio: float, noise_a: float, noise_b: float
) -> None:
    sig = is_significant(ratio, noise_a, noise_b)
    assert sig == (abs(ratio - 1) > noise_a and abs(ratio - 1) > noise_b)
    # symmetric in the two runs' noise, and more noise never makes a change more significant
    assert sig == is_significant(ratio, noise_b, noise_a)
    if not is_significant(ratio, noise_a, 0.0):
        assert not sig


@given(ratio=ratios, noise_a=noise)
def test_unknown_noise_is_never_significant(ratio: float, noise_a: float) -> None:
    assert not is_significant(ratio, noise_a, math.nan)
    assert not is_significant(math.nan, noise_a, noise_a)


def _one_point_run(path: Path, median: float, rel_iqr: float) -> None:
    run = RunDir.create(path)
    run.write_meta({"state": "complete"})
    run.append_row(
        {
            "point_id": 1,
            "backend": "eager",
            "batch_size": 64,
            "status": "ok",
            "median_ms": median,
            "iqr_ms": median * rel_iqr,
        }
    )


@settings(max_examples=25, deadline=None)
@given(
    med_a=st.floats(0.01, 100.0),
    ratio=ratios,
    noise_a=st.floats(0.001, 0.3),
    noise_b=st.floats(0.001, 0.3),
)
def test_compare_runs_verdict_follows_rule(
    med_a: float, ratio: float, noise_a: float, noise_b: float
) -> None:
    """End to end through results.csv: the verdict is what the rule says, whatever the inputs."""
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        _one_point_run(a, med_a, noise_a)
        _one_point_run(b, med_a * ratio, noise_b)
        row = compare_runs(a, b).iloc[0]
    assert row["ratio"] == pytest.approx(ratio, rel=1e-9)
    # the CSV round trip may move a value sitting on the boundary by one ulp: skip exact ties
    margin = abs(abs(ratio - 1) - max(noise_a, noise_b))
    if margin < 1e-9:
        return
    expected = "same (within noise)"
    if abs(ratio - 1) > max(noise_a, noise_b):
        expected = "slower" if ratio > 1 else "faster"
    assert row["verdict"] == expected


def test_matching_statuses_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make_run(tmp_path / "base", with_flamegraph=False)
    same = make_run(tmp_path / "same", seed=1, with_flamegraph=False)
    slow = make_run(tmp_path / "slow", scale=1.25, seed=2, with_flamegraph=False)

    df = compare_runs(base.path, slow.path)
    ok = df[(df["status_a"] == "ok") & (df["status_b"] == "ok")]
    assert len(ok) == 13
    assert (ok["verdict"] == "slower").all()  # 25% against ~4% noise
    assert set(df.loc[df["status_a"] == "failed", "verdict"]) == {"no result (failed / failed)"}

    assert compare_main([str(base.path), str(same.path), "--fail-above", "5"]) == 0
    assert compare_main([str(base.path), str(slow.path), "--fail-above", "10"]) == 1
    assert compare_main([str(base.path), str(slow.path), "--fail-above", "30"]) == 0
    assert compare_main([str(base.path), str(slow.path)]) == 0  # no gate, report only
    assert compare_main([str(base.path), str(tmp_path / "nope")]) == 2
    assert compare_main([str(base.path), str(slow.path), "--fail-above", "-1"]) == 2
    assert compare_main([str(base.path)]) == 2  # argparse usage error
    out = capsys.readouterr().out
    assert "slower" in out and "not a run folder" in out
    assert "warning" not in out  # same scenario, same host


def test_mismatched_runs_are_flagged(tmp_path: Path) -> None:
    from perfbench.compare import scenario_mismatch

    a = make_run(tmp_path / "a", with_flamegraph=False)
    b = make_run(tmp_path / "b", with_flamegraph=False)
    meta = b.read_meta()
    meta["environment"]["hostname"] = "other-box"
    b.write_meta(meta)
    assert "different hosts" in (scenario_mismatch(a.path, b.path) or "")
    meta["scenario"]["path"] = "scenarios/convnet.py"
    b.write_meta(meta)
    assert "different scenarios" in (scenario_mismatch(a.path, b.path) or "")


def test_point_that_starts_failing_is_a_regression(tmp_path: Path) -> None:
    _one_point_run(tmp_path / "a", 1.0, 0.02)
    b = RunDir.create(tmp_path / "b")
    b.write_meta({})
    b.append_row(
        {"point_id": 1, "backend": "eager", "batch_size": 64, "status": "failed", "error": "NaN"}
    )
    df = compare_runs(tmp_path / "a", tmp_path / "b")
    assert df.iloc[0]["verdict"] == "regressed: failed in B"
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b"), "--fail-above", "50"]) == 1


def test_compare_html_is_escaped(tmp_path: Path) -> None:
    _one_point_run(tmp_path / "a", 1.0, 0.02)
    _one_point_run(tmp_path / "b", 2.0, 0.02)
    out = write_compare_html(
        compare_runs(tmp_path / "a", tmp_path / "b"), tmp_path / "c.html", "<script>x", "b"
    )
    html = out.read_text()
    assert "<script>x" not in html and "&lt;script&gt;x" in html
    assert "slower" in html and "+100.0%" in html


def test_compare_returns_data_and_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Library code does not print: `compare` returns what the CLI shows."""
    from perfbench.compare import CompareError, compare

    _one_point_run(tmp_path / "a", 1.0, 0.02)
    _one_point_run(tmp_path / "b", 2.0, 0.02)
    found = compare(tmp_path / "a", tmp_path / "b", fail_above=50, html=tmp_path / "c.html")
    assert list(found.table["verdict"]) == ["slower"] and found.mismatch is None
    assert len(found.regressed) == 1 and found.exit_code == 1
    assert compare(tmp_path / "a", tmp_path / "b").exit_code == 0  # no gate
    assert (tmp_path / "c.html").is_file()
    with pytest.raises(CompareError, match="not a run folder"):
        compare(tmp_path / "a", tmp_path / "nope")
    with pytest.raises(CompareError, match="--fail-above must be a percentage"):
        compare(tmp_path / "a", tmp_path / "b", fail_above=-1)
    assert capsys.readouterr() == ("", "")


def _run(path: Path, points: list[tuple[str, int, float, float]]) -> Path:
    """A run folder of ok points (backend, batch_size, median ms, IQR/median)."""
    run = RunDir.create(path)
    run.write_meta({"state": "complete"})
    for i, (backend, bs, median, rel_iqr) in enumerate(points):
        run.append_row(
            {
                "point_id": i,
                "backend": backend,
                "batch_size": bs,
                "status": "ok",
                "median_ms": median,
                "iqr_ms": median * rel_iqr,
            }
        )
    return path


def test_regression_list_names_the_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15 item 9: only compile regressed, at two batch sizes; the list still says which
    backend (the regressed rows share it, so "columns that vary in the list" would drop it)."""
    grid = [(b, bs) for b in ("eager", "compile") for bs in (8, 64)]
    a = _run(tmp_path / "a", [(b, bs, 1.0, 0.01) for b, bs in grid])
    b = _run(tmp_path / "b", [(b, bs, 1.5 if b == "compile" else 1.0, 0.01) for b, bs in grid])
    assert compare_main([str(a), str(b), "--fail-above", "10"]) == 1
    listed = capsys.readouterr().out.split("regressed beyond 10%:")[1].strip().splitlines()
    assert listed[0].split()[:2] == ["backend", "batch_size"]
    assert [line.split()[:2] for line in listed[1:]] == [["compile", "8"], ["compile", "64"]]


def test_change_within_noise_is_no_regression(tmp_path: Path) -> None:
    """A +20% change inside a 30% IQR is "same (within noise)": not a regression at 10%."""
    a = _run(tmp_path / "a", [("eager", 8, 1.0, 0.3), ("compile", 8, 1.0, 0.01)])
    b = _run(tmp_path / "b", [("eager", 8, 1.2, 0.3), ("compile", 8, 1.2, 0.01)])
    found = compare(a, b, fail_above=10)
    verdicts = dict(zip(found.table["backend"], found.table["verdict"], strict=True))
    assert verdicts == {"eager": "same (within noise)", "compile": "slower"}
    assert list(found.regressed["backend"]) == ["compile"]
    b2 = _run(tmp_path / "b2", [("eager", 8, 1.2, 0.3), ("compile", 8, 1.0, 0.01)])
    assert compare_main([str(a), str(b2), "--fail-above", "10"]) == 0


def test_missing_values_print_blank_not_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _run(tmp_path / "a", [("eager", 8, 1.0, 0.01), ("compile", 8, 0.8, 0.01)])
    b = _run(tmp_path / "b", [("eager", 8, 1.0, 0.01), ("fx", 8, 0.9, 0.01)])
    assert compare_main([str(a), str(b), "--html", str(tmp_path / "c.html")]) == 0
    out = capsys.readouterr().out
    assert "only in A" in out and "only in B" in out
    assert "nan" not in out.lower()
    assert "nan" not in (tmp_path / "c.html").read_text(encoding="utf-8").lower()


@pytest.mark.parametrize(
    ("fail_above", "first"),
    [
        (None, "No gate"),
        (60.0, "PASS: no matched point is slower by more than 60%"),
        (10.0, "FAIL: 1 of 2 point(s) regressed beyond 10%"),
    ],
)
def test_compare_page_opens_with_the_gate(
    tmp_path: Path, fail_above: float | None, first: str
) -> None:
    """The page's first line after the title is the gate's outcome; the verdict column comes right
    after the axes that name a point (backend, and those that vary)."""
    a = _run(tmp_path / "a", [("eager", 8, 1.0, 0.01), ("compile", 8, 1.0, 0.01)])
    b = _run(tmp_path / "b", [("eager", 8, 1.0, 0.01), ("compile", 8, 1.5, 0.01)])
    compare(a, b, fail_above=fail_above, html=tmp_path / "c.html")
    html = (tmp_path / "c.html").read_text(encoding="utf-8")
    after_title = html.split("</h1>", 1)[1].lstrip()
    assert after_title.startswith('<p id="gate"')
    assert after_title.split(">", 1)[1].startswith(first)
    headers = re.findall(r"<th>([^<]*)</th>", html)
    assert headers[:3] == ["backend", "verdict", "change B/A"]
