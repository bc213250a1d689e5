"""`perfbench history`: the command line over the store (argparse stays here, not below).

    perfbench history SCENARIO [--point AXIS=V] [--across-machines] [--html FILE]
                               [--fail-on-regression [PCT]] [--history PATH|URL]
    perfbench history import RUN_DIR... [--history PATH|URL]

Exit status: 0; 1 when --fail-on-regression finds a regression; 2 for a usage error or a
store that cannot be opened.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from perfbench.history import findings, gate, record, store, trend
from perfbench.history.fingerprint import scenario_key


def _err(message: str) -> int:
    print(f"perfbench history: {message}", file=sys.stderr)
    return 2


def history_main(args: argparse.Namespace) -> int:
    url = record.resolve_url(args.history or None)
    if url is None:
        return _err(f"history is off (${record.ENV_VAR}); name a store with --history")
    try:
        if args.target[0] == "import":
            return _import(url, [Path(p) for p in args.target[1:]])
        if len(args.target) != 1:
            return _err("give one SCENARIO (or: import RUN_DIR...)")
        filters = []
        for item in args.point:
            axis, sep, value = item.partition("=")
            if not sep or not axis:
                return _err(f"--point {item!r}: expected AXIS=V")
            filters.append((axis.strip(), value.strip()))
        return _show(url, args.target[0], filters, args)
    except store.HistoryError as err:
        return _err(str(err))
    except SQLAlchemyError as err:  # a store that fails mid-way: name it, no traceback
        return _err(f"history store {url!r}: {type(err).__name__}: {err}")


def _import(url: str, run_dirs: list[Path]) -> int:
    if not run_dirs:
        return _err("import: name at least one RUN_DIR")
    engine = store.open_store(url)
    code = 0
    for run_dir in run_dirs:
        try:
            run, rows = record.run_records(run_dir, live=False)
        except (OSError, ValueError) as err:
            print(f"perfbench history: {run_dir}: not imported: {err}", file=sys.stderr)
            code = 2
            continue
        added = store.insert_run(engine, run, rows)
        note = f"{added} records" if added else "already recorded, nothing added"
        print(f"{run_dir}: {note}")
    n_runs, n_recs = store.count(engine)
    print(f"history {engine.url!r}: {n_runs} runs, {n_recs} records")
    engine.dispose()
    return code


def _keys(engine: Engine, given: str) -> list[str]:
    """The stored scenario keys that `given` (a file, a repository path or a name) means."""
    path = Path(given)
    stored = store.scenario_keys(engine)
    wanted = {scenario_key(path)[0]} if path.is_file() else set()
    wanted |= {given, path.as_posix()}
    keys = [k for k, name in stored if k in wanted or name == given]
    return keys or [k for k, _ in stored if k.endswith("/" + path.as_posix())]


def _show(url: str, scenario: str, filters: list[tuple[str, str]], args: argparse.Namespace) -> int:
    engine = store.open_store(url)
    try:
        keys = _keys(engine, scenario)
        recs = store.load(engine, keys) if keys else []
    finally:
        engine.dispose()
    if not recs:
        return _err(f"no records of {scenario!r} in {url}")
    histories = trend.build(recs, filters, args.across_machines)
    items = [(h, findings.summary(h)) for h in histories]
    for history, summary in items:
        print(*format_history(history, summary), sep="\n")
    if args.html:
        from perfbench.history.page import write_page

        print(f"page: {write_page(args.html, scenario, items)}")
    if args.fail_on_regression is None:
        return 0
    lines = gate.gate(histories, args.fail_on_regression)
    print(f"gate (--fail-on-regression {args.fail_on_regression:g}):")
    for line in lines:
        print(f"  {line.point}: {line.text}")
    return 1 if any(line.failed for line in lines) else 0


def _cell(history: trend.PointHistory, pos: trend.Position, backend: str) -> str:
    recs = [r for r in pos.records if r["backend"] == backend]
    if not recs:
        return "-"
    good = [trend.metric_value(r) for r in recs if trend.caveat(r) is None]
    good = [v for v in good if v is not None]
    flags = sorted({trend.caveat(r) or "" for r in recs} - {""})
    if not good:
        return "no evidence (" + "; ".join(f[:60] for f in flags) + ")"
    mid = math.exp(statistics.mean(map(math.log, good)))
    span = f" [{min(good):.3g}-{max(good):.3g}]" if len(good) > 1 else ""
    verdicts = sorted({r.get("verdict") or "" for r in recs if backend != "eager"} - {""})
    text = f"{mid:.4g}{span} n={len(good)}" + (f" {'/'.join(verdicts)}" if verdicts else "")
    return text + (f" (+{len(recs) - len(good)} caveated)" if len(good) < len(recs) else "")


def format_history(history: trend.PointHistory, summary: dict) -> list[str]:
    """The terminal table of one point: a row per position, a column per backend."""
    heads = ["commit"] + [
        "eager median ms" if b == "eager" else f"{b} speedup" for b in history.backends
    ]
    rows = [[p.label] + [_cell(history, p, b) for b in history.backends] for p in history.positions]
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
    out = [f"== {history.scenario}: {history.label}", f"   basis: {history.basis}"]
    out += [
        "   " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
        for r in [heads, *rows]
    ]
    for step in summary["steps"]:
        out.append("   STEP " + step.describe())
        out += [f"     $ {c}" for c in step.commands]
    out += [f"   status change: {c}" for c in summary["status_changes"]]
    if not summary["steps"]:
        out.append("   no step flagged")
    return out
