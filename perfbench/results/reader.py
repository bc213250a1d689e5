"""results.csv as a crash or a damaged disk leaves it: every intact row kept, every damaged line named.

A row is appended, flushed and fsynced as its point ends (perfbench.results.row), so a crash mid-write
leaves at most the last line cut; a disk, an editor or a copy can damage any line. Why not stop at
the first bad line: the rows around it were measured and are still true, and the report must be
rebuilt from what the folder holds (docs/design.md rule 7). So the reader checks every record
(field count, every cell's type, a known status, a point id, the line end the writer always
writes) and, on damage, names the line (`results.csv:7: ...`) and starts again on the next
physical line: a stray quote that swallowed the following lines into one bad record cannot take
them with it. What it found goes to a `DamagedRowsWarning` and to the caller (`ReadResult.damaged`)
so the report and `perfbench compare` can say it where the user looks.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path

from perfbench.results.row import KINDS, STATUSES, Row, upgraded
from perfbench.results.row import _parse as parse_cell


class DamagedRowsWarning(UserWarning):
    """results.csv holds lines that could not be read; the intact rows were kept."""


@dataclass(frozen=True)
class Damage:
    """One damaged record: where it starts and what was wrong with it."""

    path: Path
    line: int  # 1-based physical line where the record starts
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


@dataclass(frozen=True)
class ReadResult:
    """The intact rows of a results.csv, in file order, and the records that were not."""

    rows: list[Row]
    damaged: list[Damage]


class _Lines:
    """Physical lines fed to csv.reader one at a time, so the reader's position is known."""

    def __init__(self, lines: list[str | None]) -> None:
        self.lines, self.pos = lines, 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        line = self.lines[self.pos]
        if line is None:  # not UTF-8: ends the record being read here
            raise csv.Error("the line is not valid UTF-8")
        self.pos += 1
        return line


def _split_lines(raw: bytes) -> list[str | None]:
    """Lines with their line ends (the writer's \\r\\n); None for a line that is not UTF-8."""
    parts = raw.split(b"\n")
    chunks = [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    out: list[str | None] = []
    for chunk in chunks:
        try:
            out.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(None)
    return out


def read_results_csv(path: Path, warn: bool = True) -> ReadResult:
    """Every intact row of `path`, and each damaged record named by file:line; never raises on
    content (an unreadable file is still an OSError). `warn`: also a DamagedRowsWarning."""
    path = Path(path)
    lines = _split_lines(path.read_bytes())
    rows: list[Row] = []
    damaged: list[Damage] = []
    header = _header(path, lines, damaged)
    feed = _Lines(lines)
    feed.pos = 1
    while header is not None and feed.pos < len(lines):
        start = feed.pos
        try:
            fields = next(csv.reader(feed, strict=True))
            row = _row(header, fields, lines[feed.pos - 1] or "")
        except StopIteration:
            break
        except csv.Error as err:
            damaged.append(Damage(path, start + 1, f"not valid CSV: {err}"))
            feed.pos = start + 1
            continue
        except ValueError as err:
            damaged.append(Damage(path, start + 1, str(err)))
            feed.pos = start + 1  # what the bad record swallowed is read again, line by line
            continue
        rows.append(row)
    if warn and damaged:
        warnings.warn(DamagedRowsWarning(describe(damaged, len(rows))), stacklevel=2)
    return ReadResult(rows, damaged)


def _header(path: Path, lines: list[str | None], damaged: list[Damage]) -> list[str] | None:
    """The column names, or None (and the damage named) when no row can be matched to them."""
    first = lines[0] if lines else ""
    if first is None:
        damaged.append(Damage(path, 1, "the header is not valid UTF-8: no row can be read"))
        return None
    header = next(csv.reader([first]), [])
    missing = [name for name in ("point_id", "status") if name not in header]
    if lines and missing:
        damaged.append(
            Damage(path, 1, f"the header lacks {', '.join(missing)}: no row can be read")
        )
        return None
    return header


def _row(header: list[str], fields: list[str], last_line: str) -> Row:
    """One record as a Row; ValueError naming what is wrong with it."""
    if len(fields) != len(header):
        raise ValueError(
            f"{len(fields)} fields where the header has {len(header)} (the row was cut or "
            "corrupted)"
        )
    if not last_line.endswith("\n"):
        raise ValueError("no line end: the row was cut while it was written")
    values = {}
    for name, text in zip(header, fields, strict=True):
        if name not in KINDS:
            continue  # a column this version does not know is ignored (perfbench.results.row)
        try:
            values[name] = parse_cell(text, KINDS[name])
        except ValueError as err:
            raise ValueError(f"column {name!r}: {err}, got {_short(text)}") from None
    if header[-1] == "extra" and not fields[-1]:
        raise ValueError("`extra` is empty (perfbench writes at least {}): the row was cut")
    if values.get("point_id") is None:
        raise ValueError("no point_id")
    if values.get("status") not in STATUSES:
        raise ValueError(f"status {_short(values.get('status'))} is not one of {STATUSES}")
    try:
        return Row(**upgraded(values))
    except ValueError as err:
        raise ValueError(f"column 'extra': times_ms: {err}") from None


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(damaged: list[Damage], kept: int) -> str:
    """One paragraph for a warning or a notice: how many, and each line with what was wrong."""
    head = (
        f"{len(damaged)} damaged line(s) in {damaged[0].path.name} could not be read "
        f"({kept} intact row(s) kept):"
    )
    return "\n".join([head, *(f"  {d}" for d in damaged)])
