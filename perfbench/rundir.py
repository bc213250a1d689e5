"""The run folder: `run.json` (what ran and where), `results.csv` (one row per point, appended and
flushed as each point finishes), and the artefacts the report links to.

Rule 7 of docs/design.md: a crash, OOM or Ctrl-C loses nothing already measured, and the report can be
rebuilt from the folder alone. So every row is written, flushed and fsynced the moment its point
ends, and nothing in the report is kept only in memory.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from perfbench.axes import AXES

STATUSES = ("ok", "skipped", "failed", "oom", "timeout")

# Column order of results.csv. Rare or backend-specific facts go into `extra` (a JSON object).
COLUMNS: tuple[str, ...] = (
    "point_id",
    *AXES,
    "status",
    "reason",  # why a point was skipped
    "error",  # why a point failed / oom / timeout: message naming the file and line
    "median_ms",  # steady-state step time, median over repetitions
    "iqr_ms",  # interquartile range of the step times
    "p05_ms",
    "p95_ms",
    "reps",  # number of timed repetitions
    "noise",  # iqr / median
    "throughput",  # samples/s from the median
    "tflops",  # achieved TFLOP/s from FLOPS(batch_size) or the flop counter
    "rel_err",  # ||out - ref|| / ||ref|| against the eager float32 reference
    "tolerance",  # the bound rel_err was checked against
    "cold_start_s",  # prepare (e.g. compile) + first call
    "first_call_s",  # first call alone
    "peak_mem_bytes",  # CUDA: max_memory_allocated; CPU: growth of process max RSS
    "data_wait_frac",  # share of step time spent waiting for the DataLoader (make_dataset only)
    "timer_overhead_us",  # cost of one empty timed call with the same timer
    "timer",  # "cuda_event" or "perf_counter"
    "correctness_only",  # true where the timing is not performance (Triton interpreter)
    "wall_s",  # wall time spent on the point, all phases
    "command",  # exact command that reruns this one point
    "extra",  # JSON object: backend facts (graph breaks, rewrites, coverage), profiling paths ...
)


@dataclass
class RunDir:
    """A run folder on disk. Create with `RunDir.create`, open an existing one with `RunDir(path)`."""

    path: Path

    @property
    def results_csv(self) -> Path:
        return self.path / "results.csv"

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"

    @classmethod
    def create(cls, path: Path) -> RunDir:
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        if not run.results_csv.exists():
            with run.results_csv.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(COLUMNS)
        return run

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Write run.json atomically (tmp file + rename), so a crash never leaves half a file."""
        tmp = self.run_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, self.run_json)

    def read_meta(self) -> dict[str, Any]:
        return json.loads(self.run_json.read_text(encoding="utf-8"))

    def append_row(self, row: dict[str, Any]) -> None:
        """Append one point's row and force it to disk before the next point starts."""
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown result columns: {sorted(unknown)}")
        if row.get("status") not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {row.get('status')!r}")
        values = []
        for col in COLUMNS:
            value = row.get(col)
            if col == "extra":
                value = json.dumps(value or {}, default=str, sort_keys=True)
            values.append("" if value is None else value)
        with self.results_csv.open("a", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow(values)
            fh.flush()
            os.fsync(fh.fileno())

    def read_results(self) -> pd.DataFrame:
        """results.csv as a DataFrame; `extra` parsed back into dicts."""
        df = pd.read_csv(self.results_csv, keep_default_na=False, na_values=[""], dtype=str)
        numeric = (
            "batch_size threads num_workers median_ms iqr_ms p05_ms p95_ms reps noise throughput "
            "tflops rel_err tolerance cold_start_s first_call_s peak_mem_bytes data_wait_frac "
            "timer_overhead_us wall_s"
        ).split()
        for col in numeric:
            if col in df:
                df[col] = pd.to_numeric(df[col], errors="coerce")
        for col in ("pin_memory", "correctness_only"):
            if col in df:
                df[col] = df[col].map({"True": True, "False": False})
        if "extra" in df:
            df["extra"] = df["extra"].map(lambda s: json.loads(s) if isinstance(s, str) else {})
        return df

    def artefact_dir(self, name: str) -> Path:
        """A subfolder for artefacts (traces/, tb/, flamegraphs/, gpu/), created on demand."""
        sub = self.path / name
        sub.mkdir(parents=True, exist_ok=True)
        return sub
