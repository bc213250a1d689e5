"""Issue 22's measurement: do a run's speedup intervals hold when the run is repeated in a fresh
process? Runs one comparison group N times, each a separate `perfbench run` (a fresh parent and
fresh worker processes, as a user's rerun would be), and reports per arm:

- the within-run 95% half-width (median over runs), as `perfbench run` reports it;
- the between-process spread of the estimates: the standard deviation of ln(speedup) over the N
  runs, and 1.96 times it (the half-width an interval needs to cover a rerun's estimate);
- coverage: how many of the N intervals cover the median of all N estimates (the best stand-in
  for the true ratio a rerun scatters around). `95%` recomputes each run's interval at 95% from
  its estimate (the `extra.estimate` record, else the reported interval and its level); `shown`
  is the interval results.csv reports (Holm-adjusted, so at 97.5% for two comparisons);
- the processes each run used (`extra.processes.count`; 1 before issue 22's change) and the
  median wall time of one run.

Cases: `ms` is scenarios/mlp.py at batch 8 (a millisecond step), `us` is scripts/audit_tiny.py
(a ~10-20 µs step); both at threads=1 with eager, compile and fx, the A/A control on, default
budget. Each run's folder is kept under --out, and a run whose results.csv exists is reused, so
the audit can be stopped and extended.

    python scripts/process_audit.py --runs 20 --cases ms,us --out /tmp/audit --processes 1
    python scripts/process_audit.py --runs 20 --cases ms,us --out /tmp/audit-after

It prints a markdown table (and --json writes the per-run numbers).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from perfbench.stats.student_t import t_ppf  # noqa: E402

CASES = {
    "ms": ("scenarios/mlp.py", ["batch_size=8", "threads=1", "backend=eager,compile,fx"]),
    "us": ("scripts/audit_tiny.py", ["batch_size=2", "threads=1", "backend=eager,compile,fx"]),
}
ARMS = ("compile", "fx", "control")
# the CLI of the perfbench that `python` imports here (run from a copy's scripts/ with that copy on
# PYTHONPATH to audit other code: cwd is the copy's root)
_MAIN = "import sys; from perfbench.cli.main import main; sys.exit(main())"


def run_once(case: str, out: Path, processes: int | None) -> float:
    """One `perfbench run` of the case into `out`; returns its wall time (0 when reused)."""
    if (out / "results.csv").exists() and (out / "wall_s").exists():
        return float((out / "wall_s").read_text())
    scenario, sets = CASES[case]
    cmd = [sys.executable, "-c", _MAIN, "run", str(ROOT / scenario), "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    if processes is not None:
        cmd += ["--processes", str(processes)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}")
    (out / "wall_s").write_text(f"{wall:.3f}")
    return wall


def estimates(out: Path) -> dict[str, dict[str, Any]]:
    """Per arm: ln(speedup), its 95% half-width on the log scale, the shown interval, k."""
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    got: dict[str, dict[str, Any]] = {}
    aa: dict[str, Any] = {}
    for row in rows:
        if row["backend"] == "eager":
            aa = json.loads(row.get("extra") or "{}").get("aa_control") or {}
    for row in rows:
        extra = json.loads(row.get("extra") or "{}")
        k = (extra.get("processes") or {}).get("count", 1)
        shown = (_floats(row.get("speedup_ci_low")), _floats(row.get("speedup_ci_high")))
        low, high = shown
        if extra.get("too_noisy") and aa:  # undo verdict.widen_by_control: the raw interval
            low, high = low * max(aa["ci_high"], 1.0), high * min(aa["ci_low"], 1.0)
        if row["backend"] == "eager":
            aa = extra.get("aa_control") or {}
            if aa:
                got["control"] = _arm(aa["speedup"], aa["ci_low"], aa["ci_high"], 0.95, aa, k)
        elif row["status"] == "ok" and row["speedup_vs_eager"]:
            level = float(extra.get("speedup_ci_level", 0.95))
            got[row["backend"]] = _arm(
                float(row["speedup_vs_eager"]),
                low,
                high,
                level,
                extra.get("estimate") or {},
                k,
                shown,
            )
            got[row["backend"]]["median_ms"] = float(row["median_ms"])
    return got


def _floats(value: str | None) -> float:
    return float(value) if value else math.nan


def _arm(
    speedup: float,
    low: float,
    high: float,
    level: float,
    est: dict[str, Any],
    k: int,
    shown: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """`low`/`high`: the raw interval at `level` (`shown`: as results.csv shows it, if other)."""
    theta = math.log(speedup)
    if est.get("se") is not None and est.get("df"):
        h95 = t_ppf(0.975, float(est["df"])) * float(est["se"])
    else:  # back out the standard error from the shown interval and its level (df >= 4)
        df = float(est.get("df") or 9)
        h95 = (math.log(high) - math.log(low)) / 2 * t_ppf(0.975, df) / t_ppf(0.5 + level / 2, df)
    df = float(est.get("df") or 9)
    s_low, s_high = shown or (low, high)
    return {
        "theta": theta,
        "h95": h95,
        "se": h95 / t_ppf(0.975, df),
        "df": df,
        "low": math.log(s_low),
        "high": math.log(s_high),
        "k": k,
    }


def summarize(runs: list[dict[str, dict[str, Any]]], walls: list[float]) -> list[dict[str, Any]]:
    out = []
    for arm in ARMS:
        got = [r[arm] for r in runs if arm in r]
        if len(got) < 2:
            continue
        thetas = [g["theta"] for g in got]
        mid = statistics.median(thetas)
        sd = statistics.stdev(thetas)
        out.append(
            {
                "arm": arm,
                "runs": len(got),
                "processes": statistics.median(g["k"] for g in got),
                "speedup": math.exp(mid),
                "within_hw95": math.expm1(statistics.median(g["h95"] for g in got)),
                "between_sd": math.expm1(sd),
                "between_hw95": math.expm1(1.96 * sd),
                "cover95": sum(abs(g["theta"] - mid) <= g["h95"] for g in got),
                "cover_shown": sum(g["low"] <= mid <= g["high"] for g in got),
                "wall_s": statistics.median(walls) if walls else math.nan,
            }
        )
    return out


def recombined(runs: list[dict[str, dict[str, Any]]], k: int) -> list[dict[str, Any]]:
    """What k = `k` would have said, from one-process runs: every k-subset of the runs combined
    by `perfbench.stats.two_level.combine` (each run is a fresh process with the full budget, which is
    what the combination consumes); coverage of the median of all runs, over all subsets (they
    overlap, so they are not independent) and over disjoint ones."""
    from perfbench.stats.speedup import PairedEstimate
    from perfbench.stats.two_level import combine

    out = []
    for arm in ARMS:
        got = [r[arm] for r in runs if arm in r and r[arm]["k"] == 1]
        if len(got) < k:
            continue
        mid = statistics.median(g["theta"] for g in got)

        def covers(sub: tuple[dict[str, Any], ...], mid: float = mid) -> tuple[bool, float]:
            c = combine([PairedEstimate(g["theta"], g["se"], int(g["df"]) + 1, 0) for g in sub])
            lo, hi = c.log_interval(0.95)
            return lo <= mid <= hi, (hi - lo) / 2

        every = [covers(sub) for sub in itertools.combinations(got, k)]
        disjoint = [covers(tuple(got[i : i + k])) for i in range(0, len(got) - k + 1, k)]
        out.append(
            {
                "arm": arm,
                "k": k,
                "subsets": len(every),
                "cover_all": sum(c for c, _ in every) / len(every),
                "disjoint": f"{sum(c for c, _ in disjoint)}/{len(disjoint)}",
                "hw_median": math.expm1(statistics.median(h for _, h in every)),
            }
        )
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| case | arm | runs | k | speedup (median) | within-run ±95% (median) | between-process "
        "SD | 1.96·SD | covers median (95%) | covers median (shown) | wall/run |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['arm']} | {r['runs']} | {r['processes']:g} | {r['speedup']:.3f} "
            f"| ±{r['within_hw95']:.1%} | {r['between_sd']:.1%} | ±{r['between_hw95']:.1%} "
            f"| {r['cover95']}/{r['runs']} | {r['cover_shown']}/{r['runs']} "
            f"| {r['wall_s']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cases", default="ms,us")
    ap.add_argument("--out", type=Path, required=True, help="folder for the runs' folders")
    ap.add_argument("--processes", type=int, default=None, help="passed to perfbench run")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--report-only", action="store_true", help="summarize the runs already there")
    ap.add_argument(
        "--recombine",
        type=int,
        default=0,
        metavar="K",
        help="also: K-subsets of one-process runs combined (two_level)",
    )
    args = ap.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; known: {sorted(CASES)}")
    rows, per_run = [], {}
    for case in cases:
        runs, walls = [], []
        for i in range(args.runs):
            out = args.out / f"{case}-{i:02d}"
            if args.report_only and not (out / "wall_s").exists():
                continue
            walls.append(run_once(case, out, args.processes))
            runs.append(estimates(out))
            print(f"{case} run {i + 1}/{args.runs}: {walls[-1]:.0f} s", file=sys.stderr, flush=True)
        rows += [{"case": case, **r} for r in summarize(runs, walls)]
        per_run[case] = runs
        if args.recombine:
            for r in recombined(runs, args.recombine):
                print(
                    f"{case} {r['arm']}: k={r['k']} recombined from one-process runs: "
                    f"{r['cover_all']:.1%} of {r['subsets']} subsets cover the median "
                    f"(disjoint {r['disjoint']}), median ±{r['hw_median']:.1%}"
                )
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"summary": rows, "runs": per_run}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
