"""`perfbench bisect GOOD BAD -- SCENARIO [run args]`: the commit where a point got slower.

The two ends are measured first, interleaved (good, bad, good, bad ...), each a `perfbench run`
of the scenario in a temporary git worktree checked out at that commit; their levels must differ
by more than their own run-to-run spread, or there is nothing to bisect and it says so. Then a
binary search over the commits on the ancestry path GOOD..BAD: each probe is measured and called
good or bad by which end's level (geometric mean of eager's medians over the point's records) it
is nearer on a log scale. Last, the last good and first bad commits are rerun interleaved and the
answer is their ratio with a 95% t interval over those runs (the rule of `perfbench compare` with
runs as the unit) -- a step that the final interleaved reruns do not confirm is reported as such.

The measuring is a callable (`Measure`), so the search is tested without timing anything.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from perfbench.history.steps import find_shifts
from perfbench.results.rundir import RunDir

Measure = Callable[[str], float]  # commit -> log of eager's median (one run)


@dataclass(frozen=True)
class BisectResult:
    """The first bad commit with the interleaved confirmation of the step."""

    last_good: str
    first_bad: str
    ratio: float
    low: float
    high: float
    confirmed: bool
    probes: int


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if out.returncode:
        raise ValueError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


def commit_path(repo: Path, good: str, bad: str) -> list[str]:
    """GOOD, then every commit on the ancestry path to BAD, oldest first."""
    good_sha, bad_sha = _git(repo, "rev-parse", good), _git(repo, "rev-parse", bad)
    between = _git(repo, "rev-list", "--ancestry-path", "--reverse", f"{good_sha}..{bad_sha}")
    if not between:
        raise ValueError(f"{bad} is not a descendant of {good}: nothing to bisect")
    return [good_sha, *between.split()]


def _interleaved(measure: Measure, a: str, b: str, n: int) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for _ in range(n):
        xs.append(measure(a))
        ys.append(measure(b))
    return xs, ys


def bisect(commits: Sequence[str], measure: Measure, ends: int = 3) -> BisectResult:
    """The first bad commit of `commits` (good first, bad last)."""
    good_runs, bad_runs = _interleaved(measure, commits[0], commits[-1], ends)
    shifts = find_shifts([good_runs, bad_runs], 0.0)
    if not shifts:
        raise ValueError(
            f"{commits[0][:10]} and {commits[-1][:10]} do not differ beyond their run-to-run "
            "spread: nothing to bisect (more --ends runs, or a quieter machine)"
        )
    good_level, bad_level = sum(good_runs) / ends, sum(bad_runs) / ends
    lo, hi, probes = 0, len(commits) - 1, 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        value, probes = measure(commits[mid]), probes + 1
        if abs(value - bad_level) < abs(value - good_level):
            hi = mid
        else:
            lo = mid
    xs, ys = _interleaved(measure, commits[lo], commits[hi], ends)
    (shift,) = find_shifts([xs, ys], 0.0) or [None]
    if shift is None:
        diff = sum(ys) / len(ys) - sum(xs) / len(xs)
        return BisectResult(commits[lo], commits[hi], math.exp(diff), 0, math.inf, False, probes)
    return BisectResult(commits[lo], commits[hi], shift.ratio, shift.low, shift.high, True, probes)


def run_measure(repo: Path, run_args: list[str], out: Path) -> Measure:
    """A Measure that runs `perfbench run` in a worktree of `repo` checked out at each commit."""
    tree = out / "worktree"
    _git(repo, "worktree", "add", "--detach", str(tree), "HEAD")
    scenario, *rest = run_args
    count = [0]

    def measure(commit: str) -> float:
        _git(tree, "checkout", "-q", "--detach", commit)
        count[0] += 1
        run_dir = out / f"{count[0]:03d}-{commit[:10]}"
        argv = [sys.executable, "-m", "perfbench.cli.main", "run", str(tree / scenario), *rest]
        argv += ["--no-history", "-q", "--out", str(run_dir)]
        subprocess.run(argv, capture_output=True, text=True, check=False)
        medians = [
            r.median_ms
            for r in RunDir(run_dir).read_rows()
            if r.backend == "eager" and r.status == "ok" and r.median_ms
        ]
        if not medians:
            raise ValueError(f"{run_dir}: no ok eager point at {commit[:10]}: cannot bisect")
        return sum(math.log(m) for m in medians) / len(medians)

    return measure
