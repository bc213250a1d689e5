"""`--profile-only AXIS=V1,V2`: the whole sweep is timed, the profiler pass runs where it matches."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from perfbench.cli.main import main
from perfbench.profiling.instruments import ProfileOptions, profile_selects
from perfbench.results.axes import Amp, Point
from perfbench.results.rundir import RunDir
from tests.conftest import TINY_MLP


def test_point_matches_only_when_every_filtered_axis_lists_its_value() -> None:
    point = Point(backend="eager", batch_size=4, amp=Amp.OFF)
    assert profile_selects(point, ())  # no filter: every point
    assert profile_selects(point, (("batch_size", (2, 4)),))
    assert profile_selects(point, (("batch_size", (4,)), ("amp", (Amp.OFF,))))
    assert not profile_selects(point, (("batch_size", (2,)),))
    assert not profile_selects(point, (("batch_size", (4,)), ("backend", ("compile",))))
    options = ProfileOptions(profile=True, profile_only=(("batch_size", (4,)),))
    assert options.for_point(point) is options
    assert options.for_point(point.replace(batch_size=2)).profile is False
    assert ProfileOptions().for_point(point).profile is False  # never turns profiling on


def test_run_profiles_only_the_matching_point(
    write_scenario: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    argv = ["run", str(write_scenario(TINY_MLP)), "--out", str(out), "--budget", "0.05", "-q"]
    argv += ["--set", "batch_size=2,4", "--set", "backend=eager", "--set", "threads=1"]
    assert main([*argv, "--profile-only", "batch_size=4"]) == 0  # implies --profile
    rows = RunDir(out).read_results()
    assert list(rows["status"]) == ["ok", "ok"]  # both points timed
    extra = dict(zip(rows["batch_size"], rows["extra"], strict=True))
    assert "profile" not in extra[2]
    assert (out / extra[4]["profile"]["trace"]).is_file()
    assert [p.name for p in (out / "traces").glob("*.json")] == [
        Path(extra[4]["profile"]["trace"]).name
    ]
    meta = json.loads((out / "run.json").read_text())
    assert meta["profiling"]["profile"] is True
    assert meta["profiling"]["profile_only"] == {"batch_size": [4]}
    html = (out / "report.html").read_text()
    assert extra[4]["profile"]["trace"] in html and "traces/000-" not in html


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (["nope=1"], "--profile-only 'nope=1': unknown axis 'nope'"),
        (["batch_size=x"], "--profile-only batch_size=x: axis 'batch_size': expected an integer"),
        (["batch_size=8"], "for batch_size the sweep has only: 2, 4"),
        (["amp=bf16"], "for amp the sweep has only: off"),
        (["batch_size=2", "batch_size=4"], "for batch_size the earlier --profile-only filters"),
    ],
)
def test_bad_filter_is_a_usage_error(
    filters: list[str],
    message: str,
    write_scenario: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    argv = ["run", str(write_scenario(TINY_MLP)), "--out", str(out), "--set", "batch_size=2,4"]
    for text in filters:
        argv += ["--profile-only", text]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing ran
