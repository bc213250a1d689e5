"""What every rule reads: the run folder's rows, run.json, the hardware facts and the op diffs,
plus the one comparison every rule uses, so no rule can call noise a finding.

`compare(a, b)` is B's step time over A's with an interval and whether it counts:
- with the verdict work's columns on B (`speedup_ci_low`, `speedup_ci_high`, `verdict`: a 95%
  confidence interval from interleaved rounds against eager, with the A/A control), and A the
  eager point at B's settings: those, and it counts only when the verdict says faster or slower
  with no caveat (`perfbench.measure.caveat`: contended, too noisy; the caveat is named in the basis);
- otherwise from each point's own spread, as the report's speedup table does: the change counts
  when it is larger than the IQR/median of both points (`timing.is_significant`), and the
  interval is the ratio of the IQR edges (B's worst against A's best, and the reverse).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from perfbench.measure.caveat import caveat_of
from perfbench.measure.timing import is_significant
from perfbench.plan.rerun_defaults import shorten
from perfbench.profiling.run_diffs import OpDiff, run_diffs
from perfbench.report.data import load_results, point_label
from perfbench.results.axes import AXES
from perfbench.results.rundir import RunDir

VERDICT_COLUMNS = ("speedup_vs_eager", "speedup_ci_low", "speedup_ci_high", "verdict")
# IQR/median above this is the harness's own noise warning (timing.Measurement.noise_warning)
NOISY = 0.10


@dataclass(frozen=True)
class PointRatio:
    """B's step time / A's (above 1: B is slower), its interval, and whether it is a change."""

    ratio: float
    low: float
    high: float
    significant: bool
    basis: str

    @property
    def speedup(self) -> float:
        return 1.0 / self.ratio if self.ratio > 0 else math.nan

    def text(self) -> str:
        """`0.36× (0.33–0.40, IQR of both points)` as a speedup of B over A."""
        lo, hi = 1.0 / self.high, 1.0 / self.low if self.low > 0 else math.inf
        return f"{self.speedup:.2f}× ({lo:.2f}–{hi:.2f}, {self.basis})"


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> PointRatio:
    """B against A; see the module docstring for the two sources of the interval."""
    if a.get("backend") == "eager" and b.get("backend") != "eager":
        lo, hi = _num(b.get("speedup_ci_low")), _num(b.get("speedup_ci_high"))
        if not math.isnan(lo) and not math.isnan(hi) and lo > 0:
            verdict = str(b.get("verdict") or "")
            speed = _num(b.get("speedup_vs_eager"))
            speed = speed if not math.isnan(speed) else math.sqrt(lo * hi)
            counts = verdict in ("faster", "slower") if verdict else (lo > 1 or hi < 1)
            caveat = caveat_of(b)  # a contended or too-noisy call is no finding's evidence
            basis = "95% CI of interleaved rounds" + (f"; caveat: {caveat}" if caveat else "")
            return PointRatio(1 / speed, 1 / hi, 1 / lo, counts and not caveat, basis)
    ma, mb = _num(a.get("median_ms")), _num(b.get("median_ms"))
    ia, ib = _num(a.get("iqr_ms")), _num(b.get("iqr_ms"))
    ia, ib = (0.0 if math.isnan(ia) else ia), (0.0 if math.isnan(ib) else ib)
    ratio = mb / ma if ma > 0 else math.nan
    low = (mb - ib / 2) / (ma + ia / 2) if ma > 0 else math.nan
    high = (mb + ib / 2) / (ma - ia / 2) if ma - ia / 2 > 0 else math.inf
    noise_a = ia / ma if ma > 0 else math.nan
    noise_b = ib / mb if mb > 0 else math.nan
    counts = is_significant(ratio, noise_a, noise_b)
    caveat = "; ".join(c for c in (caveat_of(a), caveat_of(b)) if c)
    basis = "IQR of both points" + (f"; caveat: {caveat}" if caveat else "")
    return PointRatio(ratio, low, high, counts and not caveat, basis)


@dataclass
class RunData:
    """A run folder as the rules see it. `diffs` may be passed in (the report computes them once);
    otherwise they are computed from the traces without writing any file."""

    path: Path
    df: pd.DataFrame
    meta: dict[str, Any]
    comparisons: list[OpDiff] | None = None
    _ok: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @classmethod
    def load(cls, path: Path, comparisons: list[OpDiff] | None = None) -> RunData:
        run = RunDir(Path(path))
        try:
            meta = run.read_meta()
        except (OSError, ValueError):
            meta = {}
        return cls(
            Path(path), load_results(run), meta if isinstance(meta, dict) else {}, comparisons
        )

    @cached_property
    def hardware(self) -> dict[str, Any]:
        env = self.meta.get("environment") or {}
        return env.get("hardware") or self.meta.get("hardware") or {}

    @property
    def cpu_features(self) -> dict[str, Any]:
        return (self.hardware.get("cpu") or {}).get("features") or {}

    @property
    def physical_cores(self) -> int | None:
        cores = (self.hardware.get("cpu") or {}).get("physical_cores")
        return int(cores) if cores else None

    @cached_property
    def diffs(self) -> list[OpDiff]:
        if self.comparisons is not None:
            return self.comparisons
        return run_diffs(self.df, self.path, write=False)

    def ok(self) -> list[dict[str, Any]]:
        """Rows with a result, as dicts (verdict columns kept when the run has them)."""
        if not self._ok:
            ok = self.df[(self.df["status"] == "ok") & self.df["median_ms"].notna()]
            self._ok = ok.to_dict("records")
        return self._ok

    def same_but(self, row: dict[str, Any], **axes: Any) -> dict[str, Any] | None:
        """The ok row equal to `row` on every axis except those given, which take these values."""
        want = {a: axis_text(axes.get(a, row.get(a))) for a in AXES}
        for other in self.ok():  # --repeat: from the same repetition, never another one's
            if all(axis_text(other.get(a)) == want[a] for a in AXES) and _rep(other) == _rep(row):
                return other
        return None

    def groups(self, vary: str) -> list[list[dict[str, Any]]]:
        """Ok rows that share every axis but `vary`, groups of two or more, sorted along it."""
        found: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for r in self.ok():
            key = (*(axis_text(r.get(a)) for a in AXES if a != vary), _rep(r))
            found.setdefault(key, []).append(r)
        return [sorted(g, key=lambda r: _num(r.get(vary))) for g in found.values() if len(g) > 1]

    def diff(self, a: dict[str, Any], b: dict[str, Any], side: str = "host") -> OpDiff | None:
        for c in self.diffs:
            if (
                c.a_label == a["label"]
                and c.b_label == b["label"]
                and c.side == side
                and not c.error
            ):
                return c
        return None

    @property
    def scenario(self) -> str:
        return str((self.meta.get("scenario") or {}).get("path") or "SCENARIO.py")

    def command(self, row: dict[str, Any], prefix: str = "", extra: str = "", **axes: Any) -> str:
        """`row`'s rerun command with `--set AXIS=V` replaced or added for each axis given."""
        parts = shlex.split(str(row.get("command") or "")) or ["perfbench", "run", self.scenario]
        out, i = [], 0
        while i < len(parts):
            if parts[i] == "--set" and i + 1 < len(parts) and parts[i + 1].split("=")[0] in axes:
                i += 2
                continue
            out.append(parts[i])
            i += 1
        for axis, value in axes.items():
            out += ["--set", f"{axis}={value}"]
        # only what differs from the defaults a rerun resolves to (perfbench/plan/rerun_defaults.py)
        text = shorten(shlex.join(out), (self.meta.get("scenario") or {}).get("sweep"))
        text += f" {extra}" if extra else ""
        return f"{prefix} {text}" if prefix else text


def _rep(row: dict[str, Any]) -> str:
    """The row's repetition (--repeat): rows of different repetitions are never compared."""
    return axis_text(row.get("repeat") or 0)


def axis_text(value: Any) -> str:
    """An axis value as comparable text: 64, 64.0 and "64" -> "64"; True -> "true"."""
    if isinstance(value, float) and not math.isnan(value) and value.is_integer():
        value = int(value)
    return str(value).lower()


def quiet(row: dict[str, Any]) -> bool:
    """Whether a point's own spread is below NOISY. Rules that compare points timed at different
    settings (not interleaved: batch sizes, thread counts) use only quiet points, because a busy
    machine moves whole points by more than their IQR shows."""
    noise = _num(row.get("noise"))
    if math.isnan(noise):
        med, iqr = _num(row.get("median_ms")), _num(row.get("iqr_ms"))
        noise = iqr / med if med > 0 else math.nan
    return not math.isnan(noise) and noise <= NOISY


def settings(row: dict[str, Any], without: str = "") -> str:
    """The point's settings without its backend: `bs64 t2 amp-off infer cpu`; `without` drops
    one more axis (`threads` -> `bs64 amp-off infer cpu`)."""
    text = point_label({**row, "backend": ""})
    if without:
        token = point_label({"backend": "", **{a: "" for a in AXES}, without: row.get(without)})
        text = " ".join(t for t in text.split() if t not in token.split() or not token)
    return text


def ms(value: float) -> str:
    """A step time for a sentence: `217.9 ms`, `84.1 µs`."""
    return (
        f"{value * 1e3:.1f} µs"
        if value < 1
        else f"{value:,.1f} ms"
        if value < 1e4
        else f"{value / 1e3:,.1f} s"
    )


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"
