"""The `perfbench` command: run, report, check, compare, ceilings.

Exit status: 0 when every point is ok or skipped, 1 when any point failed (failed, oom, timeout),
2 for a usage or scenario-load error, 130 when interrupted with Ctrl-C (measured rows are kept).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perfbench.profiling.instruments import ProfileFilter

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _fmt_ms(ms: float) -> str:
    return f"{ms * 1e3:.1f} µs" if ms < 1 else f"{ms:.3f} ms"


class Progress:
    """Prints a line per point on stderr-free stdout; silent with -q."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if self.quiet:
            return
        if event == "start":
            n, total = data["index"] + 1, data["total"]
            print(
                f"[{n}/{total}] {data['point'].label()} ({total - n} left after this)", flush=True
            )
        elif event == "done":
            row = data["row"]
            status = row["status"]
            if status == "ok":
                line = (
                    f"    ok  median {_fmt_ms(row['median_ms'])}  IQR {_fmt_ms(row['iqr_ms'])}"
                    f"  {row['throughput']:,.0f} samples/s  rel_err {row['rel_err']:.1e}"
                    f"  cold start {row['cold_start_s']:.2f} s"
                )
                if row.get("correctness_only"):
                    line += "  (interpreter: not performance)"
            elif status == "skipped":
                line = f"    skipped: {row.get('reason')}"
            else:
                line = f"    {status}: {row.get('error')}"
            print(line, flush=True)
        elif event == "interrupted":
            print(f"interrupted: kept {data['done']} of {data['total']} points", flush=True)


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="sweep a scenario and write a run folder with an HTML report")
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
    p.add_argument("--timeout", type=float, help="stop a point after SECONDS, record it as timeout")
    p.add_argument("--budget", type=float, help="seconds of timed work per point (default 2)")
    p.add_argument("--seed", type=int, help="seed for model and batches (default 0)")
    p.add_argument("--check", action="store_true", help="run the sanity ladder first")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfbench", description="PyTorch performance profiling and kernel-fusion workbench"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)
    rep = sub.add_parser("report", help="rebuild report.html from a run folder alone")
    rep.add_argument("run_dir", type=Path)
    chk = sub.add_parser("check", help="fast sanity ladder for a scenario")
    chk.add_argument("scenario")
    chk.add_argument(
        "--backends", default="eager,compile", help="comma-separated backends to compare"
    )
    chk.add_argument("-q", "--quiet", action="store_true")
    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub: argparse._SubParsersAction) -> None:
    from perfbench import ceilings, compare

    compare.add_compare_arguments(
        sub.add_parser("compare", help="ratio of each matched point's median between two runs")
    )
    ceilings.add_ceilings_arguments(
        sub.add_parser("ceilings", help="measure copy bandwidth and matmul rate of this device")
    )
    from perfbench.cli_diff import add_diff_parser

    add_diff_parser(sub)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command == "run":
        return run_command(args, argv)
    if args.command == "report":
        return report_command(args.run_dir)
    if args.command == "check":
        from perfbench.check.ladder import check_main

        return check_main(args.scenario, _split(args.backends), args.quiet)
    if args.command == "compare":
        from perfbench.compare import compare_command

        return compare_command(args)
    if args.command == "ceilings":
        from perfbench.ceilings import ceilings_command

        return ceilings_command(args)
    if args.command == "diff":
        from perfbench.cli_diff import diff_command

        return diff_command(args)
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _usage_error(message: str) -> int:
    print(f"perfbench: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def report_command(run_dir: Path) -> int:
    from perfbench.report.page import build_report
    from perfbench.rundir import RunDir

    run = RunDir(run_dir)
    if not run.results_csv.exists() or not run.run_json.exists():
        return _usage_error(f"{run_dir} is not a run folder (needs results.csv and run.json)")
    print(build_report(run_dir))
    return EXIT_OK


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    from perfbench.backends import backend_names
    from perfbench.profiling.instruments import ProfileOptions
    from perfbench.rundir import RunDir
    from perfbench.runner import RunOptions, default_run_dir, run_sweep
    from perfbench.scenario import ScenarioError, load_scenario, probe_scenario
    from perfbench.sweep import ConfigError, expand, load_config, parse_set, resolve_sweep

    try:
        scenario = load_scenario(args.scenario)
        probe_scenario(scenario)
    except ScenarioError as err:
        print(f"perfbench: scenario error: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        layers: list[tuple[str, dict[str, list[Any]]]] = [
            (f"{scenario.path} SWEEP", scenario.sweep)
        ]
        settings: dict[str, Any] = {}
        if args.config:
            config_sweep, settings = load_config(args.config)
            layers.append((str(args.config), config_sweep))
        for text in args.sets:
            axis, values = parse_set(text)
            layers.append((f"--set {text}", {axis: values}))
        sweep = resolve_sweep(layers, backend_names())
        profile_only = _profile_filters(args.profile_only, sweep, backend_names())
        timing, seed, timeout = _settings(settings, args)
    except ConfigError as err:
        return _usage_error(str(err))
    points = expand(sweep)

    worker_env: dict[str, str] = {}
    if "triton" in sweep["backend"] and "TRITON_INTERPRET" not in os.environ:
        import torch

        if not torch.cuda.is_available():
            # Triton runs on CPU only in its interpreter: correct, slow; the report marks it so.
            os.environ["TRITON_INTERPRET"] = "1"
            worker_env["TRITON_INTERPRET"] = "1"

    if args.native and not args.flamegraph:
        return _usage_error("--native only applies with --flamegraph")

    if args.check:
        code = _run_check(scenario, sweep["backend"], args.quiet)
        if code is not None:
            return code

    run = RunDir.create(args.out or default_run_dir(scenario))
    progress = Progress(args.quiet)
    if not args.quiet:
        print(f"perfbench: {len(points)} points of {scenario.path} -> {run.path}", flush=True)
    rerun_args = []
    if args.budget is not None:
        rerun_args += ["--budget", f"{args.budget:g}"]
    options = RunOptions(
        seed=seed,
        timeout_s=timeout,
        timing=timing,
        argv=["perfbench", *argv],
        rerun_args=rerun_args,
        worker_env=worker_env,
        profiling=ProfileOptions(
            profile=args.profile or bool(profile_only),
            profile_only=profile_only,
            nvtx=args.nvtx or args.nvtx_modules,
            nvtx_modules=args.nvtx_modules,
        ),
        flamegraph=args.flamegraph,
        native=args.native,
    )
    counts = run_sweep(scenario, sweep, points, run, options, progress)
    report = _build_report_safely(run.path)
    meta = run.read_meta()
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"perfbench: {summary or 'no points'}", flush=True)
    if (meta.get("flamegraph") or {}).get("error"):
        print(f"perfbench: no flame graph: {meta['flamegraph']['error']}", flush=True)
    if not args.quiet:
        _print_findings(run.path)
    if report:
        print(f"report: {report}", flush=True)
    if meta.get("state") == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_FAILED if any(counts[s] for s in ("failed", "oom", "timeout")) else EXIT_OK


def _profile_filters(
    texts: list[str], sweep: dict[str, list[Any]], valid_backends: tuple[str, ...]
) -> ProfileFilter:
    """`--profile-only AXIS=V1,V2` texts -> ((axis, typed values), ...), parsed and validated as
    `--set` is; an axis given twice keeps the values both allow. A filter that leaves no point of
    the sweep is a usage error: a run asked to profile would otherwise silently profile nothing."""
    from perfbench.axes import plain
    from perfbench.sweep import ConfigError, parse_axis_values, parse_set

    only: dict[str, tuple[Any, ...]] = {}
    for text in texts:
        axis, raw = parse_set(text, flag="--profile-only")
        values = parse_axis_values(axis, raw, valid_backends, f"--profile-only {text}")
        earlier = axis in only
        left = only.get(axis, tuple(sweep[axis]))  # the sweep's, or what earlier filters left
        only[axis] = tuple(v for v in left if v in values)
        if not only[axis]:
            have = ", ".join(str(plain(v)) for v in left)
            source = "the earlier --profile-only filters leave" if earlier else "the sweep has"
            raise ConfigError(
                f"--profile-only {text}: matches no point of the sweep; "
                f"for {axis} {source} only: {have}"
            )
    return tuple(only.items())


def _settings(settings: dict[str, Any], args: argparse.Namespace) -> tuple[Any, int, float | None]:
    from perfbench.sweep import ConfigError
    from perfbench.timing import TimingSettings

    allowed = set(TimingSettings.__dataclass_fields__) | {"seed", "timeout_s"}
    unknown = set(settings) - allowed
    if unknown:
        raise ConfigError(f"[settings]: unknown key(s) {sorted(unknown)}; valid: {sorted(allowed)}")
    fields = {k: settings[k] for k in TimingSettings.__dataclass_fields__ if k in settings}
    if args.budget is not None:
        fields["budget_s"] = args.budget
    try:
        timing = TimingSettings(**fields)
    except TypeError as err:
        raise ConfigError(f"[settings]: {err}") from None
    if timing.budget_s <= 0:
        raise ConfigError("budget must be > 0 seconds")
    seed = args.seed if args.seed is not None else int(settings.get("seed", 0))
    timeout = args.timeout if args.timeout is not None else settings.get("timeout_s")
    if timeout is not None and timeout <= 0:
        raise ConfigError("--timeout must be > 0 seconds")
    return timing, seed, timeout


def _run_check(scenario: Any, backends: list[str], quiet: bool) -> int | None:
    """Run the sanity ladder; refuse to time a scenario failing rung 1 or 6 (exit 1)."""
    from perfbench.check.ladder import run_check

    report = run_check(scenario, backends=tuple(backends))
    if not quiet:
        print(report.format_text(), flush=True)
    if report.blocks_timing:
        print(
            "perfbench: the sanity check failed a blocking rung (1 or 6): not timing",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return None


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


def _build_report_safely(run_dir: Path) -> Path | None:
    """Build the report; a report bug must not hide that the measurements are safe on disk."""
    try:
        from perfbench.report.page import build_report

        return build_report(run_dir)
    except Exception as err:
        print(
            f"perfbench: could not build the report ({type(err).__name__}: {err}); results are in "
            f"{run_dir / 'results.csv'}; retry with: perfbench report {shlex.quote(str(run_dir))}",
            file=sys.stderr,
        )
        return None


if __name__ == "__main__":
    sys.exit(main())
