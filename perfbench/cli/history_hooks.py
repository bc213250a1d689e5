"""The history's hooks into `perfbench run`: its two flags, and recording after the rows are
written. Kept apart from perfbench.cli.history so `perfbench run --help` imports nothing
heavy (SQLAlchemy is imported only when a run is recorded)."""

from __future__ import annotations

import argparse
import sys


def add_history_flags(sub: argparse._SubParsersAction, p: argparse.ArgumentParser) -> None:
    """`--history PATH|URL` and `--no-history` on `perfbench run` (`p`), and the `history`
    subcommand on `sub` (its arguments are argparse only: nothing heavy is imported)."""
    from perfbench.cli.history_args import add_history_arguments

    add_history_arguments(sub.add_parser("history", help="trends across commits, steps, CI gate"))
    bisect = sub.add_parser(
        "bisect",
        help="find the commit where a point got slower: perfbench bisect GOOD BAD -- SCENARIO ...",
    )
    bisect.add_argument("good", help="a commit where the point was fast")
    bisect.add_argument("bad", help="a later commit where it is slow")
    bisect.add_argument(
        "--ends", type=int, default=3, help="interleaved runs of each end (default %(default)s)"
    )
    bisect.add_argument(
        "run_args",
        nargs=argparse.REMAINDER,
        help="-- then the scenario (its path in the repository) and `perfbench run` arguments",
    )
    p.add_argument(
        "--history",
        metavar="PATH|URL",
        help="record the run in this history store (SQLite path or database URL; default: "
        "$PERFBENCH_HISTORY, else history.sqlite under the user's cache folder)",
    )
    p.add_argument("--no-history", action="store_true", help="do not record the run in history")


def history_command(args: argparse.Namespace) -> int:
    """Run `perfbench history` or `perfbench bisect` (heavy imports only now)."""
    if args.command == "bisect":
        from perfbench.cli.bisect import bisect_main

        if args.ends < 2:
            print("perfbench bisect: --ends must be >= 2", file=sys.stderr)
            return 2
        return bisect_main(args.good, args.bad, list(args.run_args), args.ends)
    from perfbench.cli.history import history_main

    return history_main(args)
