"""`perfbench diff RUN_A RUN_B [--point AXIS=V ...]`: the op-level diff of one point across two
runs (the other half of `compare`, which matches every point by its median alone).

The point is chosen in RUN_A with `--point` filters (parsed like `--set`: `--point backend=compile
--point batch_size=64`); it must be the only profiled ok point that matches, and RUN_B must have a
profiled ok point with the same axes. Both traces come from the `--profile` pass. Prints the ops
that vanished, appeared, or moved beyond their noise floor; `--csv PATH` writes the whole table.
Register it in the CLI with `add_diff_parser(subparsers)` and dispatch to `diff_command(args)`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from perfbench.results import facts

EXIT_OK, EXIT_USAGE = 0, 2


def add_diff_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "diff", help="op-level diff of one profiled point between two runs (what changed, and why)"
    )
    p.add_argument("run_a", type=Path, help="baseline run folder")
    p.add_argument("run_b", type=Path, help="run folder to compare (may be RUN_A itself)")
    p.add_argument(
        "--point",
        dest="points",
        action="append",
        default=[],
        metavar="AXIS=V",
        help="choose the point in RUN_A (repeatable: all must match), e.g. --point backend=compile",
    )
    p.add_argument(
        "--against",
        dest="against",
        action="append",
        default=[],
        metavar="AXIS=V",
        help="in RUN_B, take the point with these axes changed (e.g. --against backend=eager "
        "diffs a backend against eager inside one run)",
    )
    p.add_argument(
        "--side", choices=("host", "device"), default="host", help="CPU ops or GPU kernels"
    )
    p.add_argument("--csv", type=Path, help="write the whole diff table here")
    p.add_argument("-n", type=int, default=15, help="rows to print (default 15)")
    return p


def _filters(texts: list[str], flag: str) -> dict[str, str]:
    from perfbench.results.axes import AXES

    out = {}
    for text in texts:
        axis, sep, value = text.partition("=")
        if not sep or axis not in AXES:
            raise ValueError(
                f"{flag} {text}: expected AXIS=VALUE with AXIS one of {', '.join(AXES)}"
            )
        out[axis] = value.strip().lower()
    return out


def _profiled(run_dir: Path) -> list[dict[str, Any]]:
    from perfbench.report.data import load_results
    from perfbench.results.rundir import RunDir

    run = RunDir(run_dir)
    if not run.results_csv.exists():
        raise ValueError(f"{run_dir} is not a run folder (no results.csv)")
    df = load_results(run)
    rows = df[df["status"] == "ok"].to_dict("records")
    return [r for r in rows if isinstance((r["extra"].get(facts.PROFILE) or {}).get("trace"), str)]


def _match(row: dict[str, Any], want: dict[str, str]) -> bool:
    from perfbench.advisor.data import axis_text

    return all(axis_text(row.get(axis)) == value for axis, value in want.items())


def pick_points(
    run_a: Path, run_b: Path, points: list[str], against: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (A, B) rows the diff is about; ValueError with a message naming the candidates."""
    from perfbench.advisor.data import axis_text
    from perfbench.results.axes import AXES

    want = _filters(points, "--point")
    rows_a = [r for r in _profiled(run_a) if _match(r, want)]
    if len(rows_a) != 1:
        labels = "; ".join(r["label"] for r in rows_a) or "none"
        raise ValueError(
            f"--point must pick exactly one profiled ok point of {run_a}, got {len(rows_a)}: "
            f"{labels} (add --point AXIS=V filters)"
        )
    a = rows_a[0]
    target = {axis: axis_text(a.get(axis)) for axis in AXES} | _filters(against, "--against")
    rows_b = [r for r in _profiled(run_b) if _match(r, target)]
    if not rows_b:
        raise ValueError(f"{run_b} has no profiled ok point with the axes {target}")
    return a, rows_b[0]


def diff_command(args: argparse.Namespace) -> int:
    """Print the diff of one point between two runs; 2 on a usage error (the message says why)."""
    from perfbench.profiling.op_diff import diff_ops, op_steps, totals

    try:
        a, b = pick_points(args.run_a, args.run_b, args.points, args.against)
        steps_a = op_steps(args.run_a / a["extra"][facts.PROFILE]["trace"], args.side)
        steps_b = op_steps(args.run_b / b["extra"][facts.PROFILE]["trace"], args.side)
    except (ValueError, OSError) as err:
        print(f"perfbench diff: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    diff = diff_ops(steps_a, steps_b)
    if args.csv:
        diff.to_csv(args.csv, index=False, float_format="%.6g")
    print(
        format_diff(
            diff,
            totals(steps_a, steps_b),
            f"{args.run_a}: {a['label']}",
            f"{args.run_b}: {b['label']}",
            args.n,
        )
    )
    return EXIT_OK


def format_diff(diff: Any, tot: dict[str, float], a: str, b: str, n: int = 15) -> str:
    """Plain-text table of the changed ops (vanished, appeared, slower, faster), largest first."""
    lines = [
        f"A {a}",
        f"B {b}",
        f"profiled step: A {tot['a_step_ms']:.3f} ms over {tot['a_steps']} steps, "
        f"B {tot['b_step_ms']:.3f} ms over {tot['b_steps']} steps (profiler on: slower than timed)",
        "status counts: " + ", ".join(f"{k} {v}" for k, v in diff["status"].value_counts().items()),
        f"{'op':<48} {'status':<9} {'A ms':>9} {'B ms':>9} {'diff':>9} {'floor':>8}  fused",
    ]
    changed = diff[diff["status"] != "same"]
    for r in changed.head(n).to_dict("records"):
        fused = (
            f"from {r['fused_from']}"
            if r["fused_from"]
            else (f"into {r['fused_into']}" if r["fused_into"] else "")
        )
        lines.append(
            f"{r['op'][:48]:<48} {r['status']:<9} {r['a_ms_per_step']:>9.4f} "
            f"{r['b_ms_per_step']:>9.4f} {r['diff_ms_per_step']:>+9.4f} {r['noise_floor_ms']:>8.4f}  {fused}"
        )
    if len(changed) > n:
        lines.append(f"... {len(changed) - n} more changed ops (--csv PATH writes all)")
    return "\n".join(lines)
