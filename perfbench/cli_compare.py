"""`perfbench compare RUN_A RUN_B`: prints what perfbench.compare found and returns the exit status.

Exit status: 0 = fine, 1 = a matched point slower than --fail-above (or one that lost its
result), 2 = usage error. The comparison itself is library code and prints nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from perfbench.compare import CompareError, add_compare_arguments, compare, format_table
from perfbench.compare import __doc__ as COMPARE_DOC


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
        if found.held is not None and len(found.held):  # perfbench.compare_load
            print(f"{len(found.held)} point(s) not gated (a contended side): see the note above")
        return 0
    print(f"\n{len(found.regressed)} point(s) regressed beyond {found.fail_above:g}%:")
    print(format_table(found.regressed, found.axes, found.text))
    return found.exit_code


def compare_main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m perfbench.compare A B`), same as `perfbench compare`."""
    parser = argparse.ArgumentParser(prog="perfbench compare", description=COMPARE_DOC)
    add_compare_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors already; keep its code
        return int(exc.code or 0)
    return compare_command(args)
