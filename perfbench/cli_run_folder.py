"""`perfbench run` inside its own folder: claim it (perfbench.run_claim: the lock, the ownership
and --append rules), run the sweep, release it after the report. Apart from cli.py so the
command's flow there stays short; every refusal here is exit status 2, with nothing written.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perfbench.cli_progress import Progress

EXIT_USAGE = 2


def _refuse(message: str) -> int:
    print(f"perfbench: error: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def run_in_folder(
    out: Path,
    scenario: Any,
    plan: Any,
    loaded: Any,
    args: argparse.Namespace,
    finish: Callable[[Any, Counter[str], bool], int],
) -> int:
    """Claim `out`, run the sweep there, `finish` (report, summary, exit status), release."""
    from perfbench.executor import ExecutorError
    from perfbench.run_lock import RunFolderError
    from perfbench.rundir import RunDir
    from perfbench.runner import make_executor

    try:  # before the run folder is made: a cluster that cannot be joined is a usage error
        executor = make_executor(plan, out)
    except ExecutorError as err:
        return _refuse(str(err))
    try:  # the folder is this run's alone, or nothing is written to it
        run = RunDir.claim(out, args.append, " ".join(plan.argv))
    except RunFolderError as err:
        executor.close()
        return _refuse(str(err))
    try:
        return _run_in(run, scenario, plan, loaded, args, executor, finish)
    finally:
        run.release()


def _run_in(
    run: Any,
    scenario: Any,
    plan: Any,
    loaded: Any,
    args: argparse.Namespace,
    executor: Any,
    finish: Callable[[Any, Counter[str], bool], int],
) -> int:
    from perfbench.run_claim import start_append
    from perfbench.run_lock import RunFolderError
    from perfbench.runner import ModelStop, run_meta, run_sweep

    try:  # --append to a run that differs: refused before anything is printed or written
        run.appending = (
            start_append(run.path, run_meta(scenario, plan), plan) if run.append else None
        )
    except RunFolderError as err:
        executor.close()
        return _refuse(str(err))
    if run.lock and run.lock.took_over and not args.quiet:
        print(f"perfbench: {run.path}: {run.lock.took_over}", flush=True)
    if not args.quiet:
        print(f"perfbench: {len(plan.points)} points of {scenario.path} -> {run.path}", flush=True)
        notes = loaded.keep(run.path, write=False)  # written once the folder is known to be ours
        print(*notes, sep="\n", end="\n" if notes else "", flush=True)
    try:
        counts = run_sweep(scenario, plan, run, Progress(args.quiet, run.path), executor)
    except ModelStop as stop:  # one error for the whole run, not a failed row per point
        loaded.keep(run.path)
        return _refuse(f"scenario error: {stop} (the run stopped: no point can use this model)")
    loaded.keep(run.path)  # logs/load.log: what the scenario printed while imported
    from perfbench.history.hooks import record_after_run

    record_after_run(run.path, args)  # after the rows are written; a failure only warns
    return finish(run, counts, args.quiet)
