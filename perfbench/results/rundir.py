"""The run folder: `run.json` (what ran and where), `results.csv` (one row per point, appended and
flushed as each point finishes), and the artefacts the report links to.

Rule 7 of docs/design.md: a crash, OOM or Ctrl-C loses nothing already measured, and the report can be
rebuilt from the folder alone. So every row is written, flushed and fsynced the moment its point
ends, and nothing in the report is kept only in memory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from perfbench.results import layout
from perfbench.results.reader import ReadResult, read_results_csv
from perfbench.results.row import COLUMNS, KINDS, Row, append_row, write_header
from perfbench.results.run_claim import AppendStart, check_folder
from perfbench.results.run_lock import RunFolderError, RunLock


@dataclass
class RunDir:
    """A run folder on disk. A run takes it with `RunDir.claim` (perfbench.results.run_claim: the lock and
    the ownership rules); `RunDir.create` only lays it out; `RunDir(path)` opens one to read."""

    path: Path
    lock: RunLock | None = field(default=None, compare=False, repr=False)
    append: bool = False  # --append: add points to the run the folder holds
    appending: AppendStart | None = field(default=None, compare=False, repr=False)

    @property
    def results_csv(self) -> Path:
        return self.path / layout.RESULTS_CSV

    @property
    def run_json(self) -> Path:
        return self.path / layout.RUN_JSON

    @property
    def report_html(self) -> Path:
        return self.path / layout.REPORT_HTML

    # Artefact folders (perfbench.results.layout): paths only, created by whoever writes into them.
    @property
    def traces_dir(self) -> Path:
        return self.path / layout.TRACES

    @property
    def tb_dir(self) -> Path:
        return self.path / layout.TB

    @property
    def gpu_dir(self) -> Path:
        return self.path / layout.GPU

    @property
    def flamegraphs_dir(self) -> Path:
        return self.path / layout.FLAMEGRAPHS

    @classmethod
    def create(cls, path: Path) -> RunDir:
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        write_header(run.results_csv)
        return run

    @classmethod
    def claim(cls, path: Path, append: bool = False, command: str = "") -> RunDir:
        """Take the folder for a run: its lock, then the ownership rules (RunFolderError, with
        nothing written, when they refuse). `release()` when the run and its report are done."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"{path} is a file, not a folder: choose another --out")
        path.mkdir(parents=True, exist_ok=True)
        lock = RunLock.acquire(path, command)
        try:
            check_folder(path, lock, append)
        except BaseException:
            lock.release()
            raise
        run = cls(path, lock, append)
        write_header(run.results_csv)
        return run

    def release(self) -> None:
        """Let go of the folder's lock (a no-op for a folder opened without `claim`)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Write run.json atomically (tmp file + rename), so a crash never leaves half a file.
        An appended run (`appending`) keeps the first run's record and writes itself as the last
        entry of its `appends`."""
        if self.appending is not None:
            base = self.appending.base_meta
            meta = {**base, "appends": [*(base.get("appends") or []), meta]}
        tmp = self.run_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, self.run_json)

    def read_meta(self) -> dict[str, Any]:
        return json.loads(self.run_json.read_text(encoding="utf-8"))

    def append_row(self, row: Row | Mapping[str, Any]) -> None:
        """Append one point's row and force it to disk before the next point starts.

        A run's rows arrive as `Row`s; a hand-built mapping (a test's or a script's) is checked
        column by column on the way."""
        append_row(self.results_csv, row if isinstance(row, Row) else Row.from_dict(row))

    def read_rows(self) -> list[Row]:
        """results.csv as typed rows; columns an older perfbench did not write keep defaults.
        Damaged lines are left out and named in a DamagedRowsWarning (perfbench.results.reader)."""
        return read_results_csv(self.results_csv).rows

    def read_checked(self) -> ReadResult:
        """The intact rows and each damaged line (file:line, what was wrong), for a notice."""
        return read_results_csv(self.results_csv)

    def read_results(self) -> pd.DataFrame:
        """results.csv as a DataFrame, one column per `Row` column (`extra` as dicts)."""
        return rows_frame(self.read_rows())

    def artefact_dir(self, name: str) -> Path:
        """A subfolder for artefacts (layout.ARTEFACT_DIRS: traces/, tb/, gpu/, flamegraphs/),
        created on demand."""
        sub = self.path / name
        sub.mkdir(parents=True, exist_ok=True)
        return sub


def rows_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """Rows as a table. Numbers are float with NaN where a cell is empty (int64 where every cell
    holds an integer); an empty int or bool cell is None; text is "" where empty."""
    return pd.DataFrame(
        {name: _series([getattr(r, name) for r in rows], KINDS[name]) for name in COLUMNS},
        columns=list(COLUMNS),
    )


def _series(values: list[Any], kind: str) -> pd.Series:
    if kind == "float":
        return pd.Series([math.nan if v is None else v for v in values], dtype=float)
    if kind in ("int", "bool") and all(v is not None for v in values):
        return pd.Series(values, dtype="int64" if kind == "int" else bool)
    return pd.Series(values, dtype=object)
