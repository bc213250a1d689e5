"""A damaged results.csv (issue 19, item 3): every intact row kept, every damaged line named, never a
traceback. Real run folders (the golden fixture, and one with a multi-line error cell) are cut and
corrupted at random offsets by hypothesis; a row counts as intact when none of its bytes, nor the
line end before it, was touched."""

from __future__ import annotations

import csv
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from perfbench.results.reader import DamagedRowsWarning, _Lines, _split_lines, read_results_csv
from perfbench.results.row import Row
from perfbench.results.rundir import RunDir

GOLDEN = Path(__file__).parents[1] / "report" / "data" / "mlp_run"


def _multiline_folder(path: Path) -> Path:
    """The golden rows in a fresh folder, plus a failed row whose error spans lines and quotes."""
    run = RunDir.create(path)
    rows = RunDir(GOLDEN).read_rows()
    for row in rows[:6]:
        run.append_row(row)
    run.append_row(
        Row(
            point_id=6,
            backend="fx",
            status="failed",
            error='Traceback:\n  File "model.py", line 3, in forward\nValueError: "bad", shape',
            extra={"note": 'a "quoted", text'},
        )
    )
    for row in rows[6:]:
        run.append_row(row)
    return path / "results.csv"


@pytest.fixture(scope="module")
def sources(
    tmp_path_factory: pytest.TempPathFactory,
) -> list[tuple[bytes, list[tuple[int, int, Row]]]]:
    """Per real results.csv: its bytes and each record's byte span with its clean Row."""
    multi = _multiline_folder(tmp_path_factory.mktemp("multi") / "run")
    out = []
    for path in (GOLDEN / "results.csv", multi):
        raw = path.read_bytes()
        clean = read_results_csv(path, warn=False)
        assert not clean.damaged
        out.append((raw, list(zip(*_spans(raw), clean.rows, strict=True))))
    return out


def _spans(raw: bytes) -> tuple[list[int], list[int]]:
    """Start and end byte offset of every record after the header (the end includes its \\r\\n)."""
    lines = _split_lines(raw)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len((line or "").encode()))
    feed = _Lines(lines)
    feed.pos = 1
    starts, ends = [], []
    reader = csv.reader(feed)
    while feed.pos < len(lines):
        first = feed.pos
        next(reader)
        starts.append(offsets[first])
        ends.append(offsets[feed.pos])
    return starts, ends


# one damage: (kind, offset as a fraction of the body, length, bytes)
# `where`: a fraction of the body, or of the body's quotes, line ends or commas plus a small step
# (where damage to the CSV structure is likeliest)
WHERE = st.tuples(
    st.sampled_from([None, b'"', b"\n", b","]),
    st.floats(0, 1, exclude_max=True),
    st.integers(-3, 3),
)
DAMAGE = st.tuples(
    st.sampled_from(["cut", "overwrite", "insert", "delete"]),
    WHERE,
    st.integers(1, 40),
    st.binary(min_size=1, max_size=8)
    | st.sampled_from([b'"', b",", b"\n", b"\r\n", b"{", b"\xff\xfe", b"\x00"]),
)


def _offset(data: bytearray, body: int, where: tuple[bytes | None, float, int]) -> int:
    anchor, fraction, step = where
    if anchor is None:
        return body + int(fraction * (len(data) - body))
    hits = [i for i in range(body, len(data)) if data[i] == anchor[0]] or [body]
    return min(max(body, hits[int(fraction * len(hits))] + step), len(data) - 1)


def _damage(
    raw: bytes, body: int, ops: list[tuple[str, Any, int, bytes]]
) -> tuple[bytes, set[int]]:
    """Apply the damage to the body (after the header); returns the bytes and the original byte
    offsets it touched (an insertion touches the byte it lands before)."""
    data = bytearray(raw)
    position = list(range(len(raw)))  # position[i]: the original offset now at index i
    touched: set[int] = set()
    for kind, where, length, blob in ops:
        size = len(data) - body
        if size <= 0:
            break
        at = _offset(data, body, where)
        if kind == "cut":
            touched.update(position[at:])
            touched.add(len(raw))
            del data[at:], position[at:]
        elif kind == "overwrite":
            stop = min(at + len(blob), len(data))
            touched.update(position[at:stop])
            data[at:stop] = blob[: stop - at]
        elif kind == "insert":
            touched.add(position[at])
            data[at:at] = blob
            position[at:at] = [position[at]] * len(blob)
        else:
            touched.update(position[at : at + length])
            del data[at : at + length], position[at : at + length]
    return bytes(data), touched


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(which=st.integers(0, 1), ops=st.lists(DAMAGE, min_size=1, max_size=4))
# always tried: a row's closing quote lost, so its cell runs on into the intact rows below it
@example(which=0, ops=[("overwrite", (b"\n", 0.0, -2), 1, b"x")])
@example(which=1, ops=[("delete", (b"\n", 0.5, -2), 1, b"x")])
def test_damaged_results_keep_every_intact_row(
    sources: list[tuple[bytes, list[tuple[int, int, Row]]]],
    tmp_path: Path,
    which: int,
    ops: list[tuple[str, Any, int, bytes]],
) -> None:
    raw, records = sources[which]
    body = records[0][0]
    damaged_bytes, touched = _damage(raw, body, ops)
    path = tmp_path / "results.csv"
    path.write_bytes(damaged_bytes)
    found = read_results_csv(path, warn=False)  # must not raise, whatever the damage
    intact = [row for start, end, row in records if not touched & set(range(start - 1, end))]
    kept = list(found.rows)
    for row in intact:
        assert row in kept, f"intact row {row.point_id} was dropped; damage {ops}"
        kept.remove(row)
    # a damaged record is named, never silently read as a row (a whole line deleted leaves no trace)
    assert len(found.rows) <= len(records) + damaged_bytes.count(b"\n")
    for damage in found.damaged:
        assert damage.path == path and damage.line >= 2 and damage.what


def test_a_row_cut_before_its_end_is_named_not_accepted(tmp_path: Path) -> None:
    """The crash case: the last row cut at a field boundary (fewer fields, or no line end)."""
    raw = (GOLDEN / "results.csv").read_bytes()
    last = raw.rstrip(b"\r\n").rfind(b"\n") + 1
    row = raw[last:]
    for cut in (row.rfind(b",") + 1, row.rfind(b","), len(row) - 2):
        path = tmp_path / "results.csv"
        path.write_bytes(raw[: last + cut])
        with pytest.warns(DamagedRowsWarning, match=r"results.csv:13: "):
            found = read_results_csv(path)
        assert len(found.rows) == 11 and [d.line for d in found.damaged] == [13]


def test_damaged_header_says_no_row_can_be_read(tmp_path: Path) -> None:
    raw = (GOLDEN / "results.csv").read_bytes()
    path = tmp_path / "results.csv"
    path.write_bytes(raw.replace(b"status", b"stXtus", 1))
    found = read_results_csv(path, warn=False)
    assert found.rows == [] and "header lacks status" in found.damaged[0].what


def _damaged_copy(tmp_path: Path, name: str) -> Path:
    run = tmp_path / name
    shutil.copytree(GOLDEN, run)
    lines = (run / "results.csv").read_bytes().split(b"\n")
    lines[3] = lines[3][: len(lines[3]) // 2]  # cut inside a row (it swallows nothing: the reader
    lines[5] = lines[5].replace(b'"{', b'"{{', 1)  # restarts), bad JSON in `extra`
    (run / "results.csv").write_bytes(b"\n".join(lines))
    return run


def test_report_and_compare_of_a_damaged_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end through the CLI: the report is built with a visible notice naming each line,
    and compare says how many rows of each side it could not read."""
    from perfbench.cli.main import main

    run = _damaged_copy(tmp_path, "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the CLI shows them as lines, never as Python warnings
        assert main(["report", str(run)]) == 0
    err = capsys.readouterr().err
    assert "perfbench: warning: 2 damaged line(s) in results.csv" in err
    assert "results.csv:4: not valid CSV" in err and "results.csv:6: column 'extra'" in err
    html = (run / "report.html").read_text()
    assert 'id="damaged"' in html and "results.csv:6: column &#39;extra&#39;" in html
    assert "10 intact rows below are shown" in html
    assert main(["compare", str(GOLDEN), str(run)]) == 0
    out = capsys.readouterr().out
    assert "B: 2 row(s) of results.csv could not be read (damaged line(s) 4, 6)" in out
    assert "Traceback" not in out
