"""`perfbench compare RUN_A RUN_B`: prints what perfbench.analysis.compare found and returns the exit status.

Exit status: 0 = fine, 1 = a matched point slower than --fail-above (or one that lost its
result), 2 = usage error. The comparison itself is library code and prints nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from perfbench.analysis import compare as comparing
from perfbench.analysis.compare import CompareError, compare, format_table
from perfbench.analysis.compare_guard import ALLOW_FLAG
from perfbench.analysis.compare_load import BASES


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `perfbench compare` (the CLI owns the subparser; this fills it)."""
    parser.add_argument("run_a", type=Path, help="baseline run folder")
    parser.add_argument("run_b", type=Path, help="run folder to compare against the baseline")
    parser.add_argument(
        "--fail-above",
        type=float,
        metavar="PCT",
        default=None,
        help="exit 1 when a matched point is slower by more than PCT%% with 95%% confidence: "
        "where both runs were made with --repeat N (N >= 2), the whole 95%% interval of B/A "
        "lies above 1 + PCT/100; where a side has one run, a weaker test: the change exceeds "
        "PCT%% and the IQR/median of both runs. A point ok in A that lost its result in B "
        "always fails",
    )
    parser.add_argument("--html", type=Path, metavar="OUT", help="also write the table as HTML")
    parser.add_argument(
        ALLOW_FLAG,
        dest="allow_different_scenarios",
        action="store_true",
        help="compare runs of different scenario files anyway (their verdicts are then about two "
        "different programs); without it such a comparison is refused",
    )
    parser.add_argument(
        "--allow-contended",
        action="store_true",
        help="let --fail-above fail a point measured on a contended side (by default such a "
        "point is listed as not gated: others' load slows arms unequally)",
    )
    parser.add_argument(
        "--basis",
        choices=BASES,
        default="medians",
        help="medians (default): B's median against A's; speedup: each run's own speedup over "
        "eager (paired rounds, with its interval) of A against B, which a uniformly slower "
        "machine does not move",
    )


def compare_command(args: argparse.Namespace) -> int:
    """Print the comparison; 0 = fine, 1 = a regression above --fail-above, 2 = usage error."""
    try:
        found = compare(
            Path(args.run_a),
            Path(args.run_b),
            args.fail_above,
            args.html,
            allow_different_scenarios=getattr(args, "allow_different_scenarios", False),
            allow_contended=getattr(args, "allow_contended", False),
            basis=getattr(args, "basis", "medians"),
        )
    except (CompareError, ValueError) as err:
        print(f"perfbench compare: {err}")
        return 2
    print(f"A: {args.run_a}\nB: {args.run_b}\n")
    if found.mismatch:
        print(f"warning: {found.mismatch}\n")
    for note in found.notes:
        print(note)
    print(format_table(found.table, found.axes, found.text))
    if args.html:
        print(f"\nwrote {args.html}")
    if found.fail_above is None:
        return 0
    if found.exit_code == 0:
        print(f"\nno matched point slower by more than {found.fail_above:g}%")
        if found.held is not None and len(found.held):  # perfbench.analysis.compare_load
            print(f"{len(found.held)} point(s) not gated (a contended side): see the note above")
        return 0
    print(f"\n{len(found.regressed)} point(s) regressed beyond {found.fail_above:g}%:")
    print(format_table(found.regressed, found.axes, found.text))
    return found.exit_code


def compare_main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m perfbench.cli.compare A B`), same as `perfbench compare`."""
    parser = argparse.ArgumentParser(prog="perfbench compare", description=comparing.__doc__)
    add_compare_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors already; keep its code
        return int(exc.code or 0)
    return compare_command(args)


if __name__ == "__main__":  # `python -m perfbench.cli.compare A B`, as `perfbench compare`
    raise SystemExit(compare_main())
