"""`report.html`: one self-contained page per run, built from the run folder alone.

The harness calls `build_report` after every run and `perfbench report RUN_DIR` calls it on any
folder, including one whose run crashed half way (docs/design.md rule 7). Nothing is re-measured.

Self-contained means the CSS, the table's small script and the charts (inline SVG) are inside the
file and nothing is fetched: it opens offline, from a CI artefact or an e-mail attachment. All
scenario text goes through jinja2 with autoescape on; only our own matplotlib SVG is marked safe,
and a py-spy flame graph is embedded as an `<img>` with a base64 data URL: its markup cannot touch
the page and its script does not run (run inside an iframe, py-spy's script races the layout and
logs errors); the caption links the file itself for py-spy's interactive zoom and search.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shlex
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from perfbench.report import ceiling_check, charts, data, profiling_view, verdict_view, why
from perfbench.results import facts
from perfbench.results.axes import AXES, point_label
from perfbench.results.row import SHOWN
from perfbench.results.rundir import RunDir


def build_report(run_dir: Path) -> Path:
    """Write `run_dir/report.html` from results.csv and run.json; return its path."""
    run = RunDir(Path(run_dir))
    html = render_report(run)
    tmp = run.report_html.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(run.report_html)  # a reader never sees half a report
    return run.report_html


def _charts(
    df: pd.DataFrame, sp: pd.DataFrame, meta: dict[str, Any], run: RunDir
) -> list[tuple[str, str, str | None]]:
    """(title, caption, SVG or None) of every chart the page may show, in page order."""
    per_point = ceiling_check.point_ceilings(df, meta)
    stale = ceiling_check.stale_note(ceiling_check.above_ceiling(df, per_point))
    return [
        (*_throughput_caption(df), charts.throughput_chart(df)),
        (
            "Speedup over eager",
            "Eager time / backend time at equal other settings, from paired interleaved rounds, "
            "with the verdict's confidence interval."
            if sp["ci_low"].notna().any()
            else "Eager median / backend median at equal other settings, same run.",
            charts.speedup_chart(sp),
        ),
        (
            "Latency spread per point",
            "Step time distribution of every ok point.",
            charts.latency_chart(df),
        ),
        (
            "Achieved TFLOP/s against the measured ceiling",
            "Ceiling from `perfbench ceilings` on this device, at each point's thread count."
            + (f" {stale}" if stale else ""),
            charts.ceiling_chart(df, per_point),
        ),
        (
            "GPU utilisation",
            "Sampled with NVML while the point ran.",
            charts.gpu_chart(profiling_view.gpu_timelines(df, run.path)),
        ),
    ]


def render_report(run: RunDir) -> str:
    """The report as a string (what `build_report` writes)."""
    meta = _read_meta(run)
    # no results.csv yet (a run that died before its first point): an empty, typed table
    read = run.read_checked() if run.results_csv.exists() else None
    df = data.results_table(read.rows if read else [])
    sp = data.speedups(df, verdict_view.margin_of(meta))
    prof = profiling_view.profiling(df, run.path)
    chart_list = _charts(df, sp, meta, run)
    best = data.best_per_backend(df, sp)
    # axes with one value in the whole run are stated once above the table, not in every row
    varying = [a for a in AXES if a == "backend" or (a in df and df[a].astype(str).nunique() > 1)]
    # points measured on several machines (--executor ray): a host column, rows grouped by host
    by_host = len({h for h in df["host"] if h}) > 1
    if by_host:
        varying.append("host")
    # measurement columns no point filled (data wait without a DataLoader, TFLOP/s unknown) are dropped
    columns = [c for c in SHOWN if df[c[0]].notna().any()]
    if any(_flops_unknown(r) for r in df.to_dict("records")):
        columns = [c for c in SHOWN if c in columns or c[0] == "tflops"]
    env = _jinja()
    template = env.get_template("report.html.j2")
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    return template.render(
        meta=meta,
        scenario=meta.get("scenario") or {},
        environment=meta.get("environment") or {},
        settings=meta.get("settings") or {},
        ceilings=ceiling_check.listed(meta),
        counts=counts,
        n_points=len(df),
        best=_rows(best),
        best_mixed=data.settings_differ(best),
        speedups=sp.to_dict("records"),
        speedup_summary=data.speedup_summary(sp),
        not_ok=_rows(data.not_ok(df)),
        noisy=data.noisy(df),
        hints=data.hints(df),
        gpu_stats=profiling_view.gpu_stats(df),
        charts=[(title, note, svg) for title, note, svg in chart_list if svg],
        table=_table(
            df.sort_values(["host", "point_id"], kind="stable") if by_host else df, columns
        ),
        axes=varying,
        constant_axes=[(a, _pretty(df[a].iloc[0])) for a in AXES if a not in varying and len(df)],
        table_columns=columns,
        prof=prof,
        # root at the bottom (classic flame graph) opens scrolled to the bottom; py-spy's own
        # SVG is an icicle (root on top, `inverted = true` in its script) and opens at the top
        flamegraphs=[
            (path, _data_url(svg), "inverted = true" not in svg) for path, svg in prof.flamegraphs
        ],
        commands=[(r["label"], r["status"], r["command"]) for r in df.to_dict("records")],
        tensorboard=_tensorboard(run, prof.tb_dir),
        correctness_note=data.CORRECTNESS_ONLY_NOTE,
        css=_asset("report.css"),
        js=_asset("report.js"),
        controls=_controls(df),
        damaged=[f"{d.path.name}:{d.line}: {d.what}" for d in (read.damaged if read else [])],
        why=why.why_context(run, df, meta),  # hardware, advisor findings, op diffs (issue 12)
    )


def _jinja() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(lambda name: _asset(name))
    env = jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _fmt
    env.filters["pretty"] = _pretty
    env.filters["args"] = command_html
    return env


def _asset(name: str) -> str:
    return (
        resources.files("perfbench.report").joinpath("templates", name).read_text(encoding="utf-8")
    )


def _read_meta(run: RunDir) -> dict[str, Any]:
    """run.json, or a stub that says why it is missing (a report of a broken folder still opens)."""
    try:
        meta = run.read_meta()
    except FileNotFoundError:
        return {"state": "unknown", "problem": "run.json is missing from the run folder"}
    except json.JSONDecodeError as err:
        return {"state": "unknown", "problem": f"run.json is not valid JSON: {err}"}
    return meta if isinstance(meta, dict) else {"problem": "run.json is not a JSON object"}


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.to_dict("records") if len(df) else []


def _fmt(value: Any, spec: str = "{:.4g}") -> str:
    """Numbers for humans; blank for missing values so an empty cell never reads as zero."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if spec == "mib":
        return f"{value / 2**20:,.1f}"
    try:
        return spec.format(value)
    except (ValueError, TypeError):
        return str(value)


def _pretty(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def _table(df: pd.DataFrame, columns: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Rows of the results table: display text plus a raw sort key per numeric cell."""
    rows = []
    for r in df.to_dict("records"):
        cells = []
        for col, _, spec in columns:
            value = r.get(col)
            raw = "" if value is None or (isinstance(value, float) and math.isnan(value)) else value
            text = _fmt(value, spec)
            if col == "tflops" and raw == "" and _flops_unknown(r):
                text = "unknown"  # the counter met ops it cannot count: not 0, not blank
            cells.append((text, raw))
        rows.append({"r": r, "cells": cells, "note": _note(r)})
    return rows


def _controls(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The A/A control of every comparison group that had one (eager rows' `aa_control`)."""
    out = []
    for r in df[(df["backend"] == "eager") & (df["status"] == "ok")].to_dict("records"):
        control = (r.get("extra") or {}).get(facts.AA_CONTROL)
        if isinstance(control, dict):
            out.append(
                {
                    "settings": point_label({**r, "backend": ""}, " "),
                    "text": r.get("verdict_reason") or "",
                    "ok": bool(control.get("ok")),
                    "contended": r.get("contended") is True,
                    "contention": (r.get("extra") or {}).get(facts.CONTENTION, ""),
                }
            )
    return out


def _flops_unknown(r: dict[str, Any]) -> bool:
    return r["status"] == "ok" and bool((r.get("extra") or {}).get(facts.FLOPS_UNKNOWN))


def _note(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return r["error"] or r["reason"]
    if r["correctness_only"]:
        return data.CORRECTNESS_ONLY_NOTE
    notes = [r["extra"].get(k) for k in (facts.NOISE_WARNING, *data.HINT_KEYS)]
    return "; ".join(str(n) for n in notes if n)


def _data_url(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _throughput_caption(df: pd.DataFrame) -> tuple[str, str]:
    """Title and note of the throughput chart: a line chart over batch sizes, or bars for one."""
    ok = df[(df["status"] == "ok") & df["throughput"].notna() & df["batch_size"].notna()]
    sizes = sorted({int(b) for b in ok["batch_size"]})
    if len(sizes) == 1:
        return f"Throughput at batch size {sizes[0]}", "Samples/s of every ok point."
    return "Throughput against batch size", "A line per backend × amp; dashed: interpreter timing."


def _tensorboard(run: RunDir, tb_dir: str | None) -> str | None:
    """The TensorBoard command with this run folder's own path (where the report was built)."""
    if not tb_dir:
        return None
    return f"tensorboard --logdir {shlex.quote(str(run.path.resolve() / tb_dir))}"


# one shell word: unquoted text and quoted strings, glued together
_WORD = re.compile(r"""(?:[^\s'"]+|'[^']*'|"(?:\\.|[^"\\])*")+""")


def command_args(command: str) -> list[str]:
    """A command line as the units it may wrap between: each option with its value
    (`--set batch_size=8`, `--budget 0.2`), every other word alone. Joined by single spaces they
    are the command again, so a copy of the wrapped text still runs."""
    words = _WORD.findall(command)
    if " ".join(words) != " ".join(command.split()):  # unbalanced quote: plain words
        words = command.split()
    units: list[str] = []
    for word in words:
        if units and units[-1].startswith("-") and " " not in units[-1] and "=" not in units[-1]:
            if not word.startswith("-"):
                units[-1] += " " + word
                continue
        units.append(word)
    return units


def command_html(command: str) -> Markup:
    """A command as `<span class="arg">` units (escaped) that the CSS keeps on one line each."""
    return Markup(" ").join(
        Markup('<span class="arg">{}</span>').format(a) for a in command_args(str(command or ""))
    )
