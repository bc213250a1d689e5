"""Charts of the report as inline SVG strings, drawn with matplotlib on the machine that builds the
report (no JavaScript chart library, nothing fetched by the browser).

Why matplotlib SVG: it is already a dependency, the output is static (the report looks the same in
any browser, in a CI artefact viewer or printed), text stays text (`svg.fonttype = none`), a chart
is tens of kB, and nothing in it can make a network request or log a console error.
"""

from __future__ import annotations

import io
import math
import re

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from perfbench.report.data import OTHER_AXES
from perfbench.report.verdict_view import COLOURS

# Same look in every run and no timestamps in the file: a rebuilt report diffs cleanly.
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "perfbench",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
MAX_BARS = 40  # beyond this a bar chart stops being readable; the table has every point
# Figure width in inches: the page's content column at 1400 px is 1352 px, and an SVG inch is
# 96 px, so a 14 in figure is drawn at about its own size (text at 9 pt, not scaled) and the CSS
# stretches it to the column (width: 100%) at any window size.
WIDTH_IN = 14.0


def _svg(fig: Figure, name: str) -> str:
    """Serialise a figure and make its ids unique within the page (several SVGs are inlined)."""
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    prefix = f"{name}-"  # stable across rebuilds, so a rebuilt report is byte-identical
    text = re.sub(r'id="([^"]+)"', rf'id="{prefix}\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", text)
    text = re.sub(r'((?:xlink:)?href)="#([^"]+)"', rf'\1="#{prefix}\2"', text)
    return text.replace("<svg ", '<svg role="img" ', 1)


def _plain_log_ticks(axis: object) -> None:
    """Log axis labelled 1, 2, 5 × 10^k in plain digits (mathtext 3×10² reads badly in a table-ish chart)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # type: ignore[attr-defined]
    axis.set_minor_locator(NullLocator())  # type: ignore[attr-defined]
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}"))  # type: ignore[attr-defined]


# 1-2-5 labels a log axis spanning decades; within one decade it leaves one or two ticks (a
# chart of two batch sizes: 250 to 1,300 samples/s showed only 500 and 1,000), so denser
# mantissas are tried until at least MIN_TICKS fall inside the data
LOG_SUBS = ((1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0, 7.0), tuple(float(i) for i in range(1, 10)),
            (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0))  # fmt: skip
MIN_TICKS = 4


def log_subs(lo: float, hi: float) -> tuple[float, ...]:
    """The sparsest LOG_SUBS that puts MIN_TICKS ticks between lo and hi (the densest if none)."""
    if not (lo > 0 and hi > 0):
        return LOG_SUBS[0]
    lo, hi = min(lo, hi) / 1.05, max(lo, hi) * 1.05
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for subs in LOG_SUBS:
        ticks = [m * 10.0**e for e in range(first, last + 1) for m in subs]
        if sum(lo <= t <= hi for t in ticks) >= MIN_TICKS:
            return subs
    return LOG_SUBS[-1]


def _readable_log_ticks(axis: object, lo: float, hi: float) -> None:
    """`_plain_log_ticks` with mantissas dense enough for the data range (see LOG_SUBS)."""
    _plain_log_ticks(axis)
    axis.set_major_locator(LogLocator(base=10, subs=log_subs(lo, hi)))  # type: ignore[attr-defined]


def _truncated(ax: object, total: int) -> None:
    """Say so when a chart shows only the first MAX_BARS points (the table has all of them)."""
    if total > MAX_BARS:
        ax.set_title(f"first {MAX_BARS} of {total} points; the results table has all", fontsize=8)  # type: ignore[attr-defined]


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def _varying(df: pd.DataFrame, axes: tuple[str, ...]) -> list[str]:
    return [a for a in axes if a in df and df[a].astype(str).nunique() > 1]


def throughput_chart(df: pd.DataFrame) -> str | None:
    """Throughput against batch size, one line per backend × amp, one panel per other setting.

    With a single batch size a line chart is lone dots in an empty panel: then it is a bar per
    point instead (`throughput_bars`)."""
    ok = df[(df["status"] == "ok") & df["throughput"].notna() & df["batch_size"].notna()]
    if ok.empty:
        return None
    if ok["batch_size"].nunique() < 2:
        return throughput_bars(ok)
    group_axes = tuple(a for a in OTHER_AXES if a not in ("batch_size", "amp"))
    facets = _varying(ok, group_axes)
    groups = list(ok.groupby(facets, sort=True)) if facets else [((), ok)]
    groups = groups[:6]
    with matplotlib.rc_context(_RC):
        fig = _figure(WIDTH_IN, 3.6 * len(groups))
        axs = fig.subplots(len(groups), 1, squeeze=False)[:, 0]
        for ax, (key, sub) in zip(axs, groups, strict=True):
            for (backend, amp), line in sub.groupby(["backend", "amp"], sort=True):
                line = line.sort_values("batch_size")
                style = "--" if line["correctness_only"].any() else "-"
                ax.plot(
                    line["batch_size"],
                    line["throughput"],
                    style,
                    marker="o",
                    label=f"{backend} · {amp}",
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            sizes = sorted(sub["batch_size"].astype(int).unique())
            ax.set_xticks(sizes, [str(b) for b in sizes])
            ax.xaxis.set_minor_locator(NullLocator())
            _readable_log_ticks(ax.yaxis, sub["throughput"].min(), sub["throughput"].max())
            ax.set_xlabel("batch size")
            ax.set_ylabel("samples / s")
            if facets:
                values = key if isinstance(key, tuple) else (key,)
                ax.set_title(
                    ", ".join(f"{a}={v}" for a, v in zip(facets, values, strict=True)), fontsize=9
                )
            ax.legend(fontsize=8, frameon=False, loc="best")
        return _svg(fig, "tp")


def throughput_bars(ok: pd.DataFrame) -> str | None:
    """Samples/s per ok point as horizontal bars (one batch size: nothing to draw a line over).

    Interpreter timings are grey and labelled so: they are not performance."""
    total = len(ok)
    ok = ok.head(MAX_BARS).iloc[::-1]
    interp = ok["correctness_only"].to_numpy(dtype=bool)
    with matplotlib.rc_context(_RC):
        fig = _figure(WIDTH_IN, 0.9 + 0.26 * len(ok))
        ax = fig.subplots()
        ax.barh(range(len(ok)), ok["throughput"], color=np.where(interp, "#999", "#47a"))
        ax.set_yticks(range(len(ok)), ok["label"], fontsize=8)
        for i, (t, grey) in enumerate(zip(ok["throughput"], interp, strict=True)):
            text = f"{t:,.4g}" + (" (interpreter timing)" if grey else "")
            ax.annotate(text, (t, i), xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=7)  # fmt: skip
        ax.set_xlim(0, float(ok["throughput"].max()) * 1.2)
        ax.set_xlabel("samples / s (grey: interpreter timing, not performance)")
        _truncated(ax, total)
        return _svg(fig, "tp")


def speedup_chart(sp: pd.DataFrame) -> str | None:
    """Horizontal bars of the speedup over eager; the 1× line is eager itself.

    A bar's colour is its verdict's (`data.speedups` column `tone`, the rule the tables use):
    green only for faster, red only for slower, amber for a call with a caveat (contended, too
    noisy), grey for everything else. Where the run recorded
    a confidence interval it is drawn as a whisker on the bar."""
    if sp.empty:
        return None
    total = len(sp)
    sp = sp.head(MAX_BARS).iloc[::-1]
    with matplotlib.rc_context(_RC):
        fig = _figure(WIDTH_IN, 0.9 + 0.26 * len(sp))
        ax = fig.subplots()
        colors = [COLOURS[t] for t in sp["tone"]]
        # bars grow from the 1× line: right is faster than eager, left is slower
        ax.barh(range(len(sp)), sp["speedup"] - 1.0, left=1.0, color=colors)
        has_ci = sp["ci_low"].notna() & sp["ci_high"].notna()
        if has_ci.any():
            ys = np.arange(len(sp))[has_ci.to_numpy()]
            ci = sp[has_ci]
            err = [ci["speedup"] - ci["ci_low"], ci["ci_high"] - ci["speedup"]]
            ax.errorbar(ci["speedup"], ys, xerr=err, fmt="none", ecolor="#222", elinewidth=1,
                        capsize=3)  # fmt: skip
        ax.set_yticks(range(len(sp)), sp["label"], fontsize=8)
        ax.axvline(1.0, color="#333", lw=1)
        ax.set_xscale("log")
        values = pd.concat([sp["speedup"], sp["ci_low"].dropna(), sp["ci_high"].dropna()])
        lo = min(float(values.min()), 1.0) / 1.15
        hi = max(float(values.max()), 1.0) * 1.3
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(FixedLocator(_speedup_ticks(lo, hi)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.set_xlabel(
            "speedup over eager at equal settings (log scale, >1 is faster; green: faster, "
            "red: slower, "
            + ("amber: a call with a caveat, " if (sp["tone"] == "caveat").any() else "")
            + "grey: no call or interpreter timing"
            + ("; whisker: confidence interval)" if has_ci.any() else ")")
        )
        # the label sits right of whatever reaches furthest right: the bar, its whisker, the 1× line
        right = np.fmax(np.fmax(sp["speedup"], sp["ci_high"].fillna(1.0)), 1.0)
        for i, (s, verdict, x) in enumerate(zip(sp["speedup"], sp["verdict"], right, strict=True)):
            ax.annotate(f"{s:.2f}× {verdict}", (x, i), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=7)  # fmt: skip
        _truncated(ax, total)
        return _svg(fig, "sp")


def _speedup_ticks(lo: float, hi: float) -> list[float]:
    """Ticks of a log speedup axis: 1× always, then 1-2-5 values, then finer ones (0.9×, 1.1×,
    1.5× ...), each only when it is at least a tenth of the axis away from every tick taken."""
    major = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 2, 5, 10, 20, 50, 100)
    minor = (0.25, 0.75, 0.9, 1.1, 1.25, 1.5, 3)
    gap = math.log(hi / lo) / 10
    ticks = [1.0]
    for t in (*major, *minor):
        if lo <= t <= hi and all(abs(math.log(t / x)) >= gap for x in ticks):
            ticks.append(t)
    return sorted(ticks)


def latency_chart(df: pd.DataFrame) -> str | None:
    """Step-time spread per point: a box plot of the raw times where the run kept them
    (the `times_ms` column), else median, IQR and p05–p95 from the CSV columns."""
    ok = df[(df["status"] == "ok") & df["median_ms"].notna()]
    total = len(ok)
    ok = ok.head(MAX_BARS)
    if ok.empty:
        return None
    stats = []
    for r in ok.to_dict("records"):
        times = r.get("times_ms")
        if isinstance(times, list) and len(times) >= 4:
            q = np.percentile(np.asarray(times, dtype=float), [50, 25, 75, 5, 95])
            stat = dict(zip(("med", "q1", "q3", "whislo", "whishi"), q.tolist(), strict=True))
        else:
            med, iqr = r["median_ms"], r.get("iqr_ms")
            iqr = 0.0 if iqr is None or math.isnan(iqr) else iqr
            lo, hi = r.get("p05_ms"), r.get("p95_ms")
            stat = {
                "med": med,
                "q1": med - iqr / 2,  # quartiles not recorded: an IQR-wide box around the median
                "q3": med + iqr / 2,
                "whislo": med if lo is None or math.isnan(lo) else lo,
                "whishi": med if hi is None or math.isnan(hi) else hi,
            }
        stat["label"] = r["label"]
        stat["fliers"] = []
        stats.append(stat)
    stats = stats[::-1]
    with matplotlib.rc_context(_RC):
        fig = _figure(WIDTH_IN, 0.8 + 0.24 * len(stats))
        ax = fig.subplots()
        ax.bxp(stats, orientation="horizontal", showfliers=False, widths=0.6)
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
        ax.set_xlabel("step time, ms (log scale; box = IQR, whiskers = p05–p95)")
        ax.tick_params(axis="y", labelsize=8)
        _truncated(ax, total)
        return _svg(fig, "lat")


def ceiling_chart(df: pd.DataFrame, ceilings: pd.Series) -> str | None:
    """Achieved TFLOP/s per point against the measured matmul ceiling of its device and threads.

    A full roofline needs bytes moved per step, which the run does not record; the matmul ceiling
    alone already says how far a point is from what the device can do. `ceilings` is aligned
    with `df` (NaN: no ceiling for that point). A point above its ceiling is drawn in red: the
    ceiling is stale, and its percentage is no result.
    """
    if "tflops" not in df:
        return None
    keep = (df["status"] == "ok") & df["tflops"].notna() & ~df["correctness_only"]
    keep &= ceilings.notna()
    ok = df[keep].assign(_ceiling=ceilings[keep])
    total = len(ok)
    ok = ok.head(MAX_BARS)
    if ok.empty:
        return None
    ok = ok.iloc[::-1]
    above = ok["tflops"] > ok["_ceiling"]
    with matplotlib.rc_context(_RC):
        fig = _figure(WIDTH_IN, 0.9 + 0.24 * len(ok))
        ax = fig.subplots()
        ax.barh(range(len(ok)), ok["tflops"], color=np.where(above, "#c44", "#47a"))
        ax.set_yticks(range(len(ok)), ok["label"], fontsize=8)
        peaks = ok["_ceiling"].unique()
        if len(peaks) == 1:
            label = f"measured matmul ceiling {peaks[0]:.3g} TFLOP/s"
            ax.axvline(peaks[0], color="#222", lw=1.5, ls="--", label=label)
        else:  # one tick per bar: each point against the ceiling of its own thread count
            ys = np.arange(len(ok))
            ax.vlines(ok["_ceiling"], ys - 0.45, ys + 0.45, color="#222", lw=2)
            ax.plot([], [], color="#222", lw=2, label="measured matmul ceiling at its threads")
        for i, (t, peak, over) in enumerate(zip(ok["tflops"], ok["_ceiling"], above, strict=True)):
            text = f"{100 * t / peak:.0f}%" + (" > ceiling: stale ceiling" if over else "")
            ax.annotate(text, (t, i), xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=7, color="#c44" if over else "black")  # fmt: skip
        ax.set_xlabel("achieved TFLOP/s (label: % of ceiling; red: above it, the ceiling is stale)")
        fig.legend(fontsize=8, frameon=False, loc="outside lower center")  # never over a bar
        _truncated(ax, total)
        return _svg(fig, "ceil")


def gpu_chart(timelines: list[tuple[str, list[float], list[float]]]) -> str | None:
    """GPU utilisation over each profiled point's run, from the harness's sampler."""
    if not timelines:
        return None
    with matplotlib.rc_context(_RC):
        fig = _figure(WIDTH_IN, 2.8)
        ax = fig.subplots()
        for label, ts, us in timelines[:8]:
            ax.plot(ts, us, lw=1.2, label=label)
        ax.set_ylim(0, 105)
        ax.set_xlabel("seconds")
        ax.set_ylabel("GPU utilisation %")
        ax.legend(fontsize=7, frameon=False, loc="lower right")
        return _svg(fig, "gpu")
