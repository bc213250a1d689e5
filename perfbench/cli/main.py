"""The `perfbench` command: run, report, check, compare, ceilings, history.

Exit status: 0 when every point is ok or skipped, 1 when any point failed (failed, oom, timeout),
2 for a usage or scenario-load error, 130 when interrupted with Ctrl-C (measured rows are kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from perfbench.cli.catalog import help_epilog
from perfbench.cli.history_hooks import add_history_flags, history_command
from perfbench.cli.progress import Progress
from perfbench.cli.quiet import add_wait_quiet_argument
from perfbench.execute.scenario_capture import DEFAULT_LOAD_TIMEOUT_S
from perfbench.measure.quiet import quiet_setting
from perfbench.stats.two_level import PROCESSES_HELP

if TYPE_CHECKING:
    from collections import Counter

    from perfbench.plan.run_plan import RunRequest
    from perfbench.results.rundir import RunDir

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="sweep a scenario and write a run folder with an HTML report",
        epilog=help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", help="scenario file (build_model + make_batch)")
    p.add_argument("--config", type=Path, help="TOML file with [sweep] axes and [settings]")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="AXIS=V1,V2",
        help="override one sweep axis (repeatable), e.g. --set batch_size=1,64",
    )
    p.add_argument("--out", type=Path, help="run folder (default: reports/<scenario>-<time>)")
    p.add_argument(
        "--append",
        action="store_true",
        help="add this run's points to the finished run in --out (same scenario, settings and "
        "environment, or it is refused naming what differs); fresh point ids, nothing overwritten",
    )
    p.add_argument(
        "--timeout",
        type=float,
        help="stop a point after SECONDS, record it as timeout; also the limit for importing the "
        f"scenario (default {DEFAULT_LOAD_TIMEOUT_S:g} s for that)",
    )
    p.add_argument("--budget", type=float, help="seconds of timed work per point (default 2)")
    p.add_argument("--seed", type=int, help="seed for model and batches (default 0)")
    p.add_argument(
        "--setting",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one [settings] key (repeatable), e.g. --setting min_reps=20",
    )
    add_wait_quiet_argument(p)  # --wait-quiet[=SECONDS] (perfbench.measure.quiet)
    p.add_argument(
        "--no-control",
        dest="control",
        action="store_false",
        help="no A/A control: eager is not timed against a second eager in each comparison group",
    )
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where the comparison groups are measured: local worker (default) or one Ray task "
        "per group (pip install -e '.[ray]'); rerun commands always rerun a point locally",
    )
    p.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="with --executor ray: join this cluster (auto, or host:port); default: start Ray here",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run the whole sweep N times, each in fresh workers, into one run folder; prints the "
        "run-to-run spread per point (perfbench compare uses repetitions as its unit)",
    )
    p.add_argument("--processes", type=int, default=None, metavar="K", help=PROCESSES_HELP)
    p.add_argument("--check", action="store_true", help="run the sanity ladder first")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    add_history_flags(sub, p)  # --history/--no-history here; the `history` subcommand on sub
    _add_profiling_arguments(p)


def _add_profiling_arguments(p: argparse.ArgumentParser) -> None:
    prof = p.add_argument_group(
        "profiling (separate passes or measured cost; see perfbench.profiling)"
    )
    prof.add_argument(
        "--profile",
        action="store_true",
        help="after timing, a torch.profiler pass per point: RUN_DIR/traces/*.json (Perfetto) and "
        "RUN_DIR/tb (tensorboard --logdir RUN_DIR/tb)",
    )
    prof.add_argument(
        "--profile-only",
        dest="profile_only",
        action="append",
        default=[],
        metavar="AXIS=V1,V2",
        help="profile only the points whose AXIS is one of these values (repeatable: all must "
        "match; implies --profile); every point is still timed",
    )
    prof.add_argument(
        "--flamegraph",
        action="store_true",
        help="py-spy the sweep: RUN_DIR/flamegraphs/flamegraph.svg + speedscope JSON",
    )
    prof.add_argument("--native", action="store_true", help="with --flamegraph: native frames too")
    prof.add_argument(
        "--nvtx", action="store_true", help="NVTX ranges per phase and step (cost is measured)"
    )
    prof.add_argument(
        "--nvtx-modules", action="store_true", help="also a range per module call (implies --nvtx)"
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """`command`: the subcommand about to run ("" for none; None: all). compare and ceilings
    import pandas and torch (seconds), so their arguments are only added when they run."""
    parser = argparse.ArgumentParser(
        prog="perfbench",
        description="PyTorch performance profiling and kernel-fusion workbench",
        epilog=help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)
    rep = sub.add_parser("report", help="rebuild report.html from a run folder alone")
    rep.add_argument("run_dir", type=Path)
    chk = sub.add_parser("check", help="fast sanity ladder for a scenario")
    chk.add_argument("scenario")
    chk.add_argument(
        "--backends",
        default="eager,compile",
        help="comma-separated backends that rung 6 compares with eager float32 (default: "
        "%(default)s; not every backend: name more, e.g. eager,compile,fx, to check them)",
    )
    chk.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_LOAD_TIMEOUT_S,
        help="seconds allowed for importing the scenario (default %(default)g)",
    )
    chk.add_argument("-q", "--quiet", action="store_true")
    _add_optional_commands(sub, command)
    return parser


def _add_optional_commands(sub: argparse._SubParsersAction, command: str | None) -> None:
    compare_parser = sub.add_parser(
        "compare", help="ratio of each matched point's median between two runs"
    )
    ceilings_parser = sub.add_parser(
        "ceilings", help="measure copy bandwidth and matmul rate of this device"
    )
    if command in (None, "compare"):
        from perfbench.cli.compare import add_compare_arguments

        add_compare_arguments(compare_parser)
    if command in (None, "ceilings"):
        from perfbench.cli.ceilings import add_ceilings_arguments

        add_ceilings_arguments(ceilings_parser)
    from perfbench.cli.diff import add_diff_parser  # argparse only: keeps --help fast

    add_diff_parser(sub)


def _command_word(argv: list[str]) -> str:
    """The subcommand in argv ("" when there is none): the first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), "")


def main(argv: list[str] | None = None) -> int:
    from perfbench.cli.row_warnings import damaged_rows_to

    with damaged_rows_to():  # a damaged results.csv line: one `perfbench: warning:` line each
        return _main(argv)


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_word(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command == "run":
        return run_command(args, argv)
    if args.command == "report":
        return report_command(args.run_dir)
    if args.command == "check":
        from perfbench.cli.check import check_main

        if args.timeout <= 0:
            return _usage_error("--timeout must be > 0 seconds")
        return check_main(args.scenario, _split(args.backends), args.quiet, args.timeout)
    if args.command == "compare":
        from perfbench.cli.compare import compare_command

        return compare_command(args)
    if args.command == "ceilings":
        return ceilings_command(args)
    if args.command in ("history", "bisect"):
        return history_command(args)
    if args.command == "diff":
        from perfbench.cli.diff import diff_command

        return diff_command(args)
    parser.error(f"unknown command {args.command}")  # exits 2 (NoReturn)


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _usage_error(message: str) -> int:
    print(f"perfbench: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def report_command(run_dir: Path) -> int:
    from perfbench.report.page import build_report
    from perfbench.results.rundir import RunDir

    run = RunDir(run_dir)
    if not run.results_csv.exists() or not run.run_json.exists():
        return _usage_error(f"{run_dir} is not a run folder (needs results.csv and run.json)")
    print(build_report(run_dir))
    return EXIT_OK


def ceilings_command(args: argparse.Namespace) -> int:
    """Measure (or read from the cache) and print; 2 when the device is not available."""
    import json

    from perfbench.measure.ceilings import cache_path, cached_ceilings, describe, measure_ceilings

    device = str(args.device)
    if not (device == "cpu" or device.startswith("cuda")):
        message = f"perfbench ceilings: device must be cpu or cuda[:N], got {device!r}"
        print(message, file=sys.stderr)
        return EXIT_USAGE
    from_cache = not args.refresh and cached_ceilings(device, args.threads) is not None
    try:
        result = measure_ceilings(
            device, args.refresh, threads=args.threads, rounds=args.rounds, budget_s=args.budget
        )
    except (RuntimeError, ValueError) as err:
        print(f"perfbench ceilings: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    cached = " (from the cache; --refresh measures again)" if from_cache else ""
    print(describe(result) + cached)
    print(f"cache: {cache_path()}")
    return EXIT_OK


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    """`perfbench run`: perfbench.launch does the run; this maps its errors to exit statuses and
    prints what it reports."""
    from perfbench.cli.capture import print_load_tail
    from perfbench.execute.executor import ExecutorError
    from perfbench.execute.main_guard import MainGuardError
    from perfbench.execute.runner import ModelStop
    from perfbench.launch import CheckBlocked, launch
    from perfbench.plan.sweep import ConfigError
    from perfbench.results.run_lock import RunFolderError
    from perfbench.scenario.loading import ScenarioError

    if args.timeout is not None and args.timeout <= 0:
        return _usage_error("--timeout must be > 0 seconds")
    progress = Progress(args.quiet)
    try:
        outcome = launch(
            args.scenario,
            run_request(args, argv),
            out=args.out,
            check=args.check,
            append=args.append,
            history=False if args.no_history else args.history,
            progress=progress,
            on_start=progress.start,
            on_check=lambda report: None if args.quiet else print(report.format_text(), flush=True),
        )
    except ScenarioError as err:
        print_load_tail(err)  # what the scenario printed before it failed to load
        print(f"perfbench: scenario error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, ExecutorError, MainGuardError, RunFolderError) as err:
        return _usage_error(str(err))
    except ModelStop as stop:  # one error for the whole run, not a failed row per point
        return _usage_error(
            f"scenario error: {stop} (the run stopped: no point can use this model)"
        )
    except CheckBlocked as err:
        print(f"perfbench: {err}", file=sys.stderr)
        return EXIT_FAILED
    if outcome.history_error:
        print(f"perfbench: warning: {outcome.history_error}", file=sys.stderr)
    if outcome.report_error:
        print(f"perfbench: {outcome.report_error}", file=sys.stderr)
    return _finish_run(outcome.run_dir, outcome.counts, args.quiet, outcome.report)


def run_request(args: argparse.Namespace, argv: list[str]) -> RunRequest:
    """The `perfbench run` flags as a RunRequest for perfbench.plan.run_plan."""
    from perfbench.plan.run_plan import RunRequest

    return RunRequest(
        config=args.config,
        sets=tuple(args.sets),
        settings=(*args.settings, *quiet_setting(args.wait_quiet)),
        budget_s=args.budget,
        seed=args.seed,
        timeout_s=args.timeout,
        profile=args.profile,
        profile_only=tuple(args.profile_only),
        nvtx=args.nvtx,
        nvtx_modules=args.nvtx_modules,
        flamegraph=args.flamegraph,
        native=args.native,
        control=args.control,
        executor=args.executor,
        ray_address=args.ray_address,
        repeat=args.repeat,
        processes=args.processes,
        argv=("perfbench", *argv),
    )


def _finish_run(run: RunDir, counts: Counter[str], quiet: bool, report: Path | None) -> int:
    """Print the summary, and turn the statuses into the exit status."""
    meta = (run.read_meta().get("appends") or [run.read_meta()])[-1]  # this run's own record
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"perfbench: {summary or 'no points'}", flush=True)
    if (meta.get("flamegraph") or {}).get("error"):
        print(f"perfbench: no flame graph: {meta['flamegraph']['error']}", flush=True)
    if not quiet and (meta.get("repeat") or {}).get("points"):
        from perfbench.execute.repeat import format_summary

        print(*format_summary(meta["repeat"]), sep="\n", flush=True)
    if not quiet:
        _print_findings(run.path)
    if report:
        print(f"report: {report}", flush=True)
    if meta.get("state") == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(counts[s] for s in ("failed", "oom", "timeout")) else EXIT_OK


def _print_findings(run_dir: Path, limit: int = 5) -> None:
    """The advisor's most valuable findings (the report lists them all); an advisor bug is
    reported on stderr and never changes the exit status."""
    try:
        from perfbench.advisor import advise, format_findings

        text = format_findings(advise(run_dir), limit=limit)
    except Exception as err:
        print(f"perfbench: advisor failed ({type(err).__name__}: {err})", file=sys.stderr)
        return
    if text:
        print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
