"""One results row: the columns of results.csv, their types, and the CSV round trip.

A column is added here and nowhere else: one field of `Row` with its type, default and meaning.
The CSV header, the typed read-back, the report's rule that a point which is not ok shows no
measurement (docs/design.md rule 1) and the report's results table all follow from these fields. Rare or
backend-specific facts go into `extra`, a JSON object, not into new columns.

A results.csv written by an older perfbench (fewer columns) reads with the missing columns at their
defaults; a column this version does not know is ignored. Appending to a file whose header lacks a
column is refused, since the row would not fit it.

No pandas here: the measuring worker builds rows too and imports only this (`rundir` makes tables).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from perfbench.results import facts
from perfbench.results.axes import Point

STATUSES = ("ok", "skipped", "failed", "oom", "timeout")


def _column(
    doc: str, default: Any = None, *, measured: bool = False, shown: tuple[str, str] | None = None
) -> Any:
    """A column. `measured`: holds a result, blanked in the report unless the point is ok.
    `shown=(header, format)`: a column of the report's results table, in field order."""
    return field(default=default, metadata={"doc": doc, "measured": measured, "shown": shown})


@dataclass(slots=True)
class Row:
    """One point's outcome, as results.csv stores it. `None` is an empty cell (not measured)."""

    point_id: int | None = _column("index of the point in the sweep")
    backend: str = _column("axis", "")  # the axes, in perfbench.results.axes.AXES order
    batch_size: int | None = _column("axis")
    threads: int | None = _column("axis")
    amp: str = _column("axis", "")
    pin_memory: bool | None = _column("axis")
    num_workers: int | None = _column("axis")
    mode: str = _column("axis", "")
    device: str = _column("axis", "")
    # axes added later: an older results.csv ran them at these defaults
    memory_format: str = _column("axis", "contiguous")
    shapes: str = _column("axis", "static")
    group_id: str = _column("comparison group: the values of every axis but backend", "")
    repeat: int | None = _column(
        "repetition of the sweep under --repeat N (0 .. N-1); point_id counts on across them", 0
    )
    host: str = _column(
        "host name of the machine that measured the point (empty: skipped); the worker's"
        " versions, GPU and cores are in extra.worker under --executor ray",
        "",
    )
    status: str = _column("one of STATUSES", "")
    reason: str = _column("why a point was skipped", "")
    error: str = _column("why a point failed / oom / timeout, naming the file and line", "")
    median_ms: float | None = _column(
        "steady-state step time, median over repetitions",
        measured=True,
        shown=("median ms", "{:.4g}"),
    )
    iqr_ms: float | None = _column(
        "interquartile range of the step times", measured=True, shown=("IQR ms", "{:.3g}")
    )
    p05_ms: float | None = _column("5th percentile", measured=True, shown=("p05 ms", "{:.4g}"))
    p95_ms: float | None = _column("95th percentile", measured=True, shown=("p95 ms", "{:.4g}"))
    noise: float | None = _column("iqr / median", measured=True, shown=("IQR/median", "{:.1%}"))
    reps: int | None = _column("timed repetitions", measured=True, shown=("reps", "{:.0f}"))
    throughput: float | None = _column(
        "samples/s from the median", measured=True, shown=("samples/s", "{:,.1f}")
    )
    tflops: float | None = _column(
        "achieved TFLOP/s from FLOPS(batch_size) or the flop counter",
        measured=True,
        shown=("TFLOP/s", "{:.3g}"),
    )
    rel_err: float | None = _column(
        "||out - ref|| / ||ref|| against the eager float32 reference",
        measured=True,
        shown=("rel err", "{:.1e}"),
    )
    tolerance: float | None = _column("the bound rel_err was checked against")
    cold_start_s: float | None = _column(
        "prepare (e.g. compile) + first call", measured=True, shown=("cold start s", "{:.3g}")
    )
    first_call_s: float | None = _column("first call alone", measured=True)
    peak_mem_bytes: int | None = _column(
        "CUDA: max_memory_allocated; CPU: growth of process max RSS",
        measured=True,
        shown=("peak MiB", "mib"),
    )
    data_wait_frac: float | None = _column(
        "share of step time waiting for the DataLoader (make_dataset only)",
        measured=True,
        shown=("data wait", "{:.0%}"),
    )
    timer_overhead_us: float | None = _column("cost of one empty timed call, same timer")
    timer: str = _column('"cuda_event" or "perf_counter"', "")
    correctness_only: bool | None = _column("the timing is not performance (Triton interpreter)")
    wall_s: float | None = _column("wall time spent on the point, all phases")
    speedup_vs_eager: float | None = _column(
        "eager time / this backend's time, from the group's paired interleaved rounds",
        measured=True,
    )
    speedup_ci_low: float | None = _column("95% CI of speedup_vs_eager, lower end", measured=True)
    speedup_ci_high: float | None = _column("95% CI of speedup_vs_eager, upper end", measured=True)
    verdict: str = _column(
        "faster / slower / same / inconclusive / no change / too noisy; empty for eager", ""
    )
    verdict_reason: str = _column("why the verdict is what it is, in one sentence", "")
    contended: bool | None = _column("other processes took CPU while this point was timed")
    caveat: str = _column(
        "what weakens this row's timing and verdict (oversubscribed / contended / too noisy /"
        " not quiet: ...); a call with a caveat is not a plain call (perfbench.measure.caveat)",
        "",
    )
    command: str = _column("exact command that reruns this one point", "")
    times_ms: list[float] = field(
        default_factory=list,
        metadata={
            "doc": "raw samples: ms per call of each timed sample, in order (an older run kept"
            " them in extra.times_ms; its rows read back with them here)",
            "measured": False,
        },
    )
    extra: dict[str, Any] = field(
        default_factory=dict,
        metadata={"doc": "JSON object: backend facts, profiling paths ...", "measured": False},
    )

    @classmethod
    def for_point(cls, point_id: int, point: Point, **columns: Any) -> Row:
        """A row keyed by a point: its id and axes filled in, `columns` on top."""
        return cls.from_dict({"point_id": point_id, **point.as_dict(), **columns})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Row:
        """A row from column values; a name that is not a column is an error, not a lost value."""
        _check_columns(values)
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Every column by name (`extra` is the row's own dict, not a copy)."""
        return {name: getattr(self, name) for name in COLUMNS}

    def update(self, **columns: Any) -> None:
        """Set several columns at once; a misspelt name is an error, not a new attribute."""
        _check_columns(columns)
        for name, value in columns.items():
            setattr(self, name, value)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Row))


def _check_columns(names: Mapping[str, Any]) -> None:
    unknown = set(names) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns: {sorted(unknown)}")


# measurement columns: blanked for any row whose status is not ok (rule 1), in column order
MEASURED: tuple[str, ...] = tuple(f.name for f in fields(Row) if f.metadata["measured"])
# the report's results table: (column, header, format), in column order
SHOWN: tuple[tuple[str, str, str], ...] = tuple(
    (f.name, *f.metadata["shown"]) for f in fields(Row) if f.metadata.get("shown")
)
_KIND_OF_TYPE = {
    "int | None": "int",
    "float | None": "float",
    "bool | None": "bool",
    "str": "str",
    "list[float]": "json_list",
    "dict[str, Any]": "json",
}
# how each column is stored as text: int, float, bool, str, json_list or json (an object)
KINDS: dict[str, str] = {f.name: _KIND_OF_TYPE[str(f.type)] for f in fields(Row)}


def _cell(value: Any, kind: str) -> Any:
    """One value as the csv module writes it; None is an empty cell."""
    if kind == "json":
        return json.dumps(value or {}, default=str, sort_keys=True)
    if kind == "json_list":
        return json.dumps(list(value or []))
    return "" if value is None else value


def write_header(path: Path) -> None:
    """Start results.csv with the header; an existing file is kept as it is."""
    if not path.exists():
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow(COLUMNS)


def append_row(path: Path, row: Row) -> None:
    """Append one row and force it to disk before the next point starts (docs/design.md rule 7).

    Values go in the order of the file's own header, so a file whose columns were written in
    another order still lines up; a header that lacks a column is refused."""
    if row.status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {row.status!r}")
    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    if sorted(header) != sorted(COLUMNS):
        missing = sorted(set(COLUMNS) - set(header))
        unknown = sorted(set(header) - set(COLUMNS))
        raise ValueError(
            f"{path}: header does not match this perfbench's columns (missing {missing}, "
            f"unknown {unknown}); write this run to a new folder"
        )
    values = [_cell(getattr(row, name), KINDS[name]) for name in header]
    with path.open("a", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow(values)
        fh.flush()
        os.fsync(fh.fileno())


def read_rows(path: Path) -> list[Row]:
    """Every row of a results.csv, typed; columns the file lacks keep their defaults."""
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        known = [name for name in reader.fieldnames or () if name in KINDS]
        for record in reader:
            values = {}
            for name in known:
                text = record.get(name) or ""
                try:
                    values[name] = _parse(text, KINDS[name])
                except ValueError as err:
                    raise ValueError(
                        f"{path}:{reader.line_num}: column {name!r}: {err}, got {text!r}"
                    ) from None
            rows.append(Row(**upgraded(values)))
    return rows


def upgraded(values: dict[str, Any]) -> dict[str, Any]:
    """Cell values read from a results.csv, with what an older perfbench kept elsewhere moved to
    its column now: raw samples from `extra.times_ms` (before they were a column)."""
    extra = values.get("extra")
    if not values.get("times_ms") and isinstance(extra, dict) and facts.TIMES_MS in extra:
        legacy = extra.pop(facts.TIMES_MS)
        values["times_ms"] = _samples(legacy) if isinstance(legacy, list) else []
    return values


def _parse_json(text: str, kind: str) -> Any:
    """A JSON cell: an object (`extra`) or a list of numbers (raw samples)."""
    if kind == "json_list":
        value = json.loads(text) if text else []
        if not isinstance(value, list):
            raise ValueError("expected a JSON list")
        return _samples(value)
    value = json.loads(text) if text else {}
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _samples(value: list[Any]) -> list[float]:
    """A JSON list as raw samples; ValueError unless every item is a number."""
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError("expected a JSON list of numbers")
    return [float(v) for v in value]


def _parse(text: str, kind: str) -> Any:
    """One cell back to its type; an empty cell is the column's default (None, "" or {})."""
    if kind == "str":
        return text
    if kind in ("json", "json_list"):
        return _parse_json(text, kind)
    if not text:
        return None
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError("expected True or False")
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"expected {'an integer' if kind == 'int' else 'a number'}") from None
    if kind == "float":
        return number
    if not number.is_integer():
        raise ValueError("expected an integer")
    return int(text) if text.lstrip("-").isdigit() else int(number)
