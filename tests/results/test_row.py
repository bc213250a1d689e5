"""The results row: one definition of the columns, a lossless CSV round trip, old files still read."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfbench.results.axes import AXES, Amp, AxisError, Device, Mode, Point, point_label
from perfbench.results.row import (
    COLUMNS,
    KINDS,
    MEASURED,
    SHOWN,
    Row,
    append_row,
    read_rows,
    write_header,
)
from perfbench.results.rundir import RunDir

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"))
numbers = st.floats(allow_nan=False) | st.none()
integers = st.integers(-(2**62), 2**62) | st.none()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
points = st.builds(
    Point,
    backend=st.sampled_from(["eager", "compile", "fx", "int8"]),
    batch_size=st.integers(1, 4096),
    threads=st.integers(1, 64),
    amp=st.sampled_from(list(Amp)),
    pin_memory=st.booleans(),
    num_workers=st.integers(0, 8),
    mode=st.sampled_from(list(Mode)),
    device=st.sampled_from(list(Device)),
)


def _value(kind: str) -> st.SearchStrategy:
    return {
        "int": integers,
        "float": numbers,
        "bool": st.booleans() | st.none(),
        "str": text,
        "json": st.dictionaries(text, json_values, max_size=4),
        "json_list": st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=6),
    }[kind]


rows = st.fixed_dictionaries({name: _value(kind) for name, kind in KINDS.items()}).map(
    lambda values: Row(**{**values, "status": "ok"})
)


@settings(max_examples=60, deadline=None)
@given(written=st.lists(rows, min_size=1, max_size=4))
def test_rows_read_back_exactly_as_written(written: list[Row]) -> None:
    """Every column type, text with quotes, commas and newlines, nested extra: nothing changes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.csv"
        write_header(path)
        for row in written:
            append_row(path, row)
        assert read_rows(path) == written


@settings(max_examples=40, deadline=None)
@given(point=points, point_id=st.integers(0, 10_000))
def test_point_survives_the_csv_round_trip(point: Point, point_id: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir.create(Path(tmp) / "run")
        run.append_row(Row.for_point(point_id, point, status="skipped", reason="r"))
        (row,) = run.read_rows()
    assert Point.from_row(row) == point
    assert row.point_id == point_id
    # one label: the report's is the point's own, with spaces
    assert point_label(row.as_dict(), " ") == point.label(" ") == point.label().replace("_", " ")


def test_point_label_unchanged() -> None:
    """The names traces, NVTX ranges and the report already use."""
    assert Point().label() == "eager_bs32_t1_amp-off_infer_cpu"
    point = Point(backend="fx", batch_size=8, threads=2, pin_memory=True, num_workers=2)
    assert point.label() == "fx_bs8_t2_amp-off_infer_cpu_pin_w2"
    # a row from an older results.csv without most axes, batch size read back as a float
    assert point_label({"backend": "eager", "batch_size": 8.0}, " ") == "eager bs8 t amp-"


def test_point_from_a_row_without_an_axis_says_which() -> None:
    with pytest.raises(AxisError, match="results row 3 has no value for axis 'threads'"):
        Point.from_row(Row(point_id=3, backend="eager", batch_size=8))


def test_one_definition_of_the_columns() -> None:
    assert COLUMNS[0] == "point_id" and COLUMNS[-1] == "extra"
    assert COLUMNS[1 : 1 + len(AXES)] == AXES  # the axes, in axis order
    assert set(MEASURED) <= set(COLUMNS) and {c for c, _, _ in SHOWN} <= set(MEASURED)
    assert "tolerance" not in MEASURED and "status" not in MEASURED
    with pytest.raises(ValueError, match=r"unknown result columns: \['speed'\]"):
        Row.from_dict({"status": "ok", "speed": 3})
    with pytest.raises(ValueError, match="unknown result columns"):
        Row().update(median=1.0)


def test_raw_samples_are_a_column_and_an_older_folders_move_there(tmp_path: Path) -> None:
    """Before `times_ms` was a column the samples sat in extra.times_ms: both readers move them
    to the field, so the report, compare and --repeat read one place."""
    from perfbench.results.reader import read_results_csv

    path = tmp_path / "results.csv"
    path.write_text(
        "point_id,backend,status,median_ms,extra\r\n"
        '1,eager,ok,1.5,"{""times_ms"": [1.5, 2], ""number"": 1}"\r\n'
        '2,eager,ok,1.5,"{""times_ms"": [1, ""x""]}"\r\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="expected a JSON list of numbers"):
        read_rows(path)  # the strict reader
    got = read_results_csv(path, warn=False)  # the forgiving one names the line
    (row,) = got.rows
    assert row.times_ms == [1.5, 2.0] and row.extra == {"number": 1}
    assert [d.line for d in got.damaged] == [3] and "times_ms" in got.damaged[0].what
    assert COLUMNS[-2:] == ("times_ms", "extra")


def test_older_file_reads_with_defaults_and_unknown_columns_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(
        "point_id,backend,batch_size,status,median_ms,error,from_the_future\n"
        "1,eager,8,ok,1.5,,x\n2,compile,8.0,failed,,boom,y\n",
        encoding="utf-8",
    )
    first, second = read_rows(path)
    assert first == Row(point_id=1, backend="eager", batch_size=8, status="ok", median_ms=1.5)
    assert second.batch_size == 8 and second.error == "boom" and second.median_ms is None
    assert second.extra == {} and second.threads is None and second.amp == ""


def test_appending_follows_the_files_own_column_order(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(",".join(reversed(COLUMNS)) + "\n", encoding="utf-8")
    append_row(path, Row(point_id=4, backend="fx", status="ok", median_ms=2.5, extra={"a": 1}))
    assert read_rows(path) == [
        Row(point_id=4, backend="fx", status="ok", median_ms=2.5, extra={"a": 1})
    ]


def test_appending_to_a_file_that_lacks_a_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(",".join(c for c in COLUMNS if c != "wall_s") + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"results.csv: header .*missing \['wall_s'\]"):
        append_row(path, Row(point_id=0, status="ok"))
    assert path.read_text(encoding="utf-8").count("\n") == 1  # nothing written


@pytest.mark.parametrize(
    ("column", "cell", "message"),
    [
        ("median_ms", "fast", "expected a number"),
        ("batch_size", "8.5", "expected an integer"),
        ("pin_memory", "maybe", "expected True or False"),
        ("extra", "[1]", "expected a JSON object"),
    ],
)
def test_a_bad_cell_names_file_line_and_column(
    tmp_path: Path, column: str, cell: str, message: str
) -> None:
    path = tmp_path / "results.csv"
    path.write_text(f"point_id,status,{column}\n0,ok,\n1,ok,{cell}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"results.csv:3: column '{column}': {message}"):
        read_rows(path)


def test_table_types(tmp_path: Path) -> None:
    """Numbers come back as float columns with NaN gaps, integers stay integers when complete."""
    run = RunDir.create(tmp_path / "run")
    run.append_row(Row.for_point(0, Point(batch_size=8), status="ok", median_ms=1.0, reps=9))
    run.append_row(Row.for_point(1, Point(batch_size=64), status="failed", error="x"))
    df = run.read_results()
    assert df["batch_size"].tolist() == [8, 64] and df["batch_size"].dtype == "int64"
    assert df["median_ms"].dtype == float and math.isnan(df.loc[1, "median_ms"])
    assert df.loc[0, "reps"] == 9 and df.loc[1, "reps"] is None
    assert df["pin_memory"].tolist() == [False, False]
