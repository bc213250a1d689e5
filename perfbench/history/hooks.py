"""The history's hooks into `perfbench run`: its two flags, and recording after the rows are
written. Kept apart from perfbench.history.command so `perfbench run --help` imports nothing
heavy (SQLAlchemy is imported only when a run is recorded)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def add_history_flags(sub: argparse._SubParsersAction, p: argparse.ArgumentParser) -> None:
    """`--history PATH|URL` and `--no-history` on `perfbench run` (`p`), and the `history`
    subcommand on `sub` (its arguments are argparse only: nothing heavy is imported)."""
    from perfbench.history.command_args import add_history_arguments

    add_history_arguments(sub.add_parser("history", help="trends across commits, steps, CI gate"))
    p.add_argument(
        "--history",
        metavar="PATH|URL",
        help="record the run in this history store (SQLite path or database URL; default: "
        "$PERFBENCH_HISTORY, else history.sqlite under the user's cache folder)",
    )
    p.add_argument("--no-history", action="store_true", help="do not record the run in history")


def record_after_run(run_dir: Path, args: argparse.Namespace) -> None:
    """Record the finished run; a history failure is a warning on stderr: the run folder is
    complete on disk already and the exit status stays the run's own."""
    if getattr(args, "no_history", False):
        return
    try:
        from perfbench.history import record_run

        record_run(run_dir, getattr(args, "history", None))
    except Exception as err:  # the store must never break a run
        print(
            f"perfbench: warning: run not recorded in history ({type(err).__name__}: {err}); "
            f"retry with: perfbench history import {shlex.quote(str(run_dir))}",
            file=sys.stderr,
        )


def history_command(args: argparse.Namespace) -> int:
    """Run `perfbench history` (imports SQLAlchemy only now)."""
    from perfbench.history.command import history_main

    return history_main(args)
