"""`perfbench compare`: matching by axes, the significance rule, and --fail-above exit codes."""

from __future__ import annotations

import importlib.util
import math
import random
import re
import statistics
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfbench.analysis.compare import compare, compare_runs, is_significant, write_compare_html
from perfbench.cli.compare import compare_main
from perfbench.results.rundir import RunDir
from perfbench.stats.runs_ratio import runs_ratio

_spec = importlib.util.spec_from_file_location(
    "perfbench_test_make_run", Path(__file__).parents[1] / "report" / "make_run.py"
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
    from perfbench.analysis.compare import scenario_mismatch

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
    from perfbench.analysis.compare import CompareError, compare

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


# --- runs as the unit (both runs made with --repeat) -----------------------------------------


def _repeated_run(path: Path, medians: dict[str, list[float]], failed: int | None = None) -> Path:
    """A run folder made with --repeat len(medians[..]): per backend, one ok row per repetition
    (30 samples of ±1% around its median); `failed`: that repetition of compile failed."""
    run = RunDir.create(path)
    run.write_meta({"state": "complete", "settings": {"margin": 0.03}})
    rng = random.Random(0)
    n_reps = len(next(iter(medians.values())))
    for k in range(n_reps):
        for i, (backend, meds) in enumerate(medians.items()):
            row: dict = {"point_id": k * len(medians) + i, "backend": backend, "batch_size": 8}
            row["repeat"] = k
            if backend == "compile" and failed == k:
                run.append_row({**row, "status": "failed", "error": "NaN"})
                continue
            times = [meds[k] * (1 + rng.uniform(-0.01, 0.01)) for _ in range(30)]
            run.append_row({**row, "status": "ok", "median_ms": meds[k], "times_ms": times})
    return path


@settings(max_examples=30, deadline=None)
@given(
    a=st.lists(st.floats(0.1, 10.0), min_size=2, max_size=6),
    b=st.lists(st.floats(0.1, 10.0), min_size=2, max_size=6),
    scale=st.floats(0.01, 100.0),
)
def test_runs_ratio_is_scale_free_and_antisymmetric(
    a: list[float], b: list[float], scale: float
) -> None:
    est = runs_ratio(a, b)
    low, high = est.interval()
    assert low <= est.ratio <= high
    scaled = runs_ratio([x * scale for x in a], [x * scale for x in b])
    assert scaled.ratio == pytest.approx(est.ratio, rel=1e-9)
    back_low, back_high = runs_ratio(b, a).interval()
    assert (back_low, back_high) == pytest.approx((1 / high, 1 / low), rel=1e-9)


def test_runs_ratio_covers_at_its_level() -> None:
    """Welch on the log scale with 3 repetitions a side, unequal run-to-run noise (3% and 5%),
    no true change: the 95% interval covers 1 in 93-97.5% of 1,000 seeded trials (measured
    95.6%). A plain bootstrap over the three repetitions covered about 80% (perfbench.execute.repeat)."""
    rng = random.Random(3)
    covered = 0
    for _ in range(1000):
        a = [math.exp(rng.gauss(0, 0.03)) for _ in range(3)]
        b = [math.exp(rng.gauss(0, 0.05)) for _ in range(3)]
        low, high = runs_ratio(a, b).interval()
        covered += low <= 1.0 <= high
    assert 930 <= covered <= 975
    with pytest.raises(ValueError, match=">= 2 repetitions a side"):
        runs_ratio([1.0], [1.0, 1.1])


def test_runs_as_the_unit_gate_needs_the_whole_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _repeated_run(tmp_path / "a", {"eager": [1.0, 1.01, 0.99], "compile": [1.0, 1.0, 1.0]})
    # eager: 25% slower, consistently; compile: +21% on average but all over the place
    b = _repeated_run(tmp_path / "b", {"eager": [1.25, 1.26, 1.24], "compile": [1.05, 1.40, 1.20]})
    table = compare_runs(a, b)
    rows = {r["backend"]: r for r in table.to_dict("records")}
    eager, comp = rows["eager"], rows["compile"]
    assert eager["basis"] == comp["basis"] == "runs" and eager["runs"] == "3/3"
    assert eager["ratio"] == pytest.approx(
        statistics.geometric_mean([1.25, 1.26, 1.24]) / statistics.geometric_mean([1, 1.01, 0.99])
    )
    assert eager["verdict"] == "slower" and 1.15 < eager["ci_low"] < 1.25 < eager["ci_high"]
    assert comp["ci_low"] < 1.10 < comp["change_pct"] / 100 + 1  # +21%, interval from below 10%
    assert comp["verdict"] == "inconclusive"
    found = compare(a, b, fail_above=10)
    assert list(found.regressed["backend"]) == ["eager"]  # compile's interval reaches below 10%
    assert compare(a, b, fail_above=30).exit_code == 0  # eager's whole interval is below 30%
    assert compare_main([str(a), str(b), "--fail-above", "10"]) == 1
    out = capsys.readouterr().out
    assert "2 point(s) with runs as the unit (A: 3, B: 3 repetitions)" in out
    assert "Welch t-interval" in out and "95% CI" not in out.split("\n")[0]
    header = next(line for line in out.splitlines() if line.startswith("backend"))
    assert header.split()[:6] == [
        "backend",
        "median_a_ms",
        "median_b_ms",
        "runs",
        "change_pct",
        "change_ci",
    ]


def test_one_run_on_a_side_falls_back_to_the_iqr_rule_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _repeated_run(tmp_path / "a", {"eager": [1.0, 1.01, 0.99]})
    b = _run(tmp_path / "b", [("eager", 8, 1.25, 0.01)])
    (row,) = compare_runs(a, b).to_dict("records")
    assert row["basis"] == "IQR" and row["runs"] == "3/1" and row["verdict"] == "slower"
    assert row["median_a_ms"] == pytest.approx(1.0) and math.isnan(row["ci_low"])
    assert compare_main([str(a), str(b), "--fail-above", "10"]) == 1
    out = capsys.readouterr().out
    assert "single run on a side" in out and "weaker" in out and "--repeat 3" in out
    assert "change_ci" not in out  # no interval column where no point has one


def test_a_repetition_that_failed_in_b_is_a_regression(tmp_path: Path) -> None:
    a = _repeated_run(tmp_path / "a", {"eager": [1.0, 1.0, 1.0], "compile": [1.0, 1.0, 1.0]})
    b = _repeated_run(
        tmp_path / "b", {"eager": [1.0, 1.0, 1.0], "compile": [1.0, 1.0, 1.0]}, failed=1
    )
    found = compare(a, b, fail_above=50)
    (row,) = found.regressed.to_dict("records")
    assert row["backend"] == "compile"
    assert row["verdict"] == "regressed: failed in B (1 of 3 repetitions)"


def test_compare_page_with_runs_as_the_unit(tmp_path: Path) -> None:
    a = _repeated_run(tmp_path / "a", {"eager": [1.0, 1.01, 0.99]})
    b = _repeated_run(tmp_path / "b", {"eager": [1.0, 1.01, 1.0]})
    compare(a, b, fail_above=5, html=tmp_path / "c.html")
    html = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert "PASS: no matched point is slower by more than 5% (with 95% confidence)." in html
    assert "runs as the unit" in html and "Welch" in html
    headers = re.findall(r"<th>([^<]*)</th>", html)
    assert headers[:4] == ["backend", "verdict", "change B/A", "95% CI of change"]
    assert "repetitions A/B" in headers and "nan" not in html.lower()
