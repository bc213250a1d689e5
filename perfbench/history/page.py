"""`perfbench history --html FILE`: one offline page, a small-multiple SVG chart per point.

Each chart plots one metric over the positions (commits): every record as a dot (hollow and grey
with its caveat in the tooltip when it is not evidence: contended, too noisy, failed), the
positions' geometric means joined by a line, and each position's 95% intervals drawn as a band
(eager: the records' median confidence intervals; a backend: its speedup intervals), on a log
scale, since steps are ratios. A flagged
step is a red dashed line between its two positions, labelled with its size. Every dot links to
its run folder's report.html. Plain SVG and CSS, no script and nothing fetched: it opens offline.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perfbench.history.findings import Step
from perfbench.history.trend import PointHistory, caveat, metric_value

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 460, 190, 56, 12, 22, 38
CSS = """body{font-family:system-ui,sans-serif;margin:16px;color:#222}
.grid{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #ccc;border-radius:6px;padding:8px}
h1{font-size:20px}h2{font-size:14px;margin:2px 0}p.basis{font-size:11px;color:#666;margin:2px 0}
ul.steps{font-size:12px;color:#b00}svg text{font-size:10px}"""


def _interval(rec: dict[str, Any]) -> tuple[float, float] | None:
    keys = ("median_ci_low_ms", "median_ci_high_ms")
    if rec["backend"] != "eager":
        keys = ("speedup_ci_low", "speedup_ci_high")
    low, high = rec.get(keys[0]), rec.get(keys[1])
    return (low, high) if low and high and high >= low > 0 else None


def _marks(history: PointHistory, backend: str) -> list[dict[str, Any]]:
    """Per position: its records' values and caveats, mean of the evidence, band."""
    out = []
    for x, pos in enumerate(history.positions):
        recs = [r for r in pos.records if r["backend"] == backend]
        dots = [(metric_value(r), caveat(r), r) for r in recs if metric_value(r) is not None]
        good = [v for v, c, _ in dots if c is None]
        bands = [_interval(r) for r in recs if caveat(r) is None and _interval(r)]
        out.append(
            {
                "x": x,
                "dots": dots,
                "mean": math.exp(sum(map(math.log, good)) / len(good)) if good else None,
                "band": (min(b[0] for b in bands), max(b[1] for b in bands)) if bands else None,
            }
        )
    return out


def _scale(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    return low - pad, high + pad


def _svg(history: PointHistory, backend: str, steps: Sequence[Step]) -> str:
    marks = _marks(history, backend)
    values = [v for m in marks for v, _, _ in m["dots"]] + [
        b for m in marks if m["band"] for b in m["band"]
    ]
    if not values:
        return ""
    y0, y1 = _scale([math.log(v) for v in values])  # log scale: steps are ratios
    n = max(len(marks), 2)

    def px(x: float) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * x / (n - 1)

    def py(v: float) -> float:
        return PAD_T + (H - PAD_T - PAD_B) * (1 - (math.log(v) - y0) / (y1 - y0))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">']
    parts.append(_axes(history, y0, y1, px, py))
    banded = [m for m in marks if m["band"]]
    if banded:
        top = " ".join(f"{px(m['x']):.1f},{py(m['band'][1]):.1f}" for m in banded)
        bottom = " ".join(f"{px(m['x']):.1f},{py(m['band'][0]):.1f}" for m in reversed(banded))
        parts.append(
            f'<polygon class="band" points="{top} {bottom}" fill="#9ecae1" opacity="0.5"/>'
        )
    line = " ".join(f"{px(m['x']):.1f},{py(m['mean']):.1f}" for m in marks if m["mean"])
    parts.append(f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
    for m in marks:
        for value, why, rec in m["dots"]:
            parts.append(_dot(px(m["x"]), py(value), value, why, rec))
    for step in steps:
        parts.append(_step_mark(history, step, px))
    parts.append("</svg>")
    return "".join(parts)


def _axes(history: PointHistory, y0: float, y1: float, px: Any, py: Any) -> str:
    out = [f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="#888"/>']
    for k in range(3):
        v = math.exp(y0 + (y1 - y0) * (k + 0.5) / 3)
        out.append(f'<text x="{PAD_L - 4}" y="{py(v) + 3:.1f}" text-anchor="end">{v:.3g}</text>')
    every = max(1, len(history.positions) // 6)
    for x, pos in enumerate(history.positions):
        if x % every == 0:
            label = html.escape(pos.label[:12])
            out.append(
                f'<text x="{px(x):.1f}" y="{H - PAD_B + 14}" text-anchor="middle">{label}</text>'
            )
    return "".join(out)


def _dot(x: float, y: float, value: float, why: str | None, rec: dict[str, Any]) -> str:
    tip = html.escape(f"{value:.4g}" + (f" -- not evidence: {why}" if why else ""))
    style = 'fill="#fff" stroke="#999"' if why else 'fill="#1f77b4"'
    href = html.escape(Path(rec["run_path"], "report.html").as_uri(), quote=True)
    return (
        f'<a href="{href}"><circle class="{"caveat" if why else "rec"}" cx="{x:.1f}" '
        f'cy="{y:.1f}" r="3.5" {style}><title>{tip}</title></circle></a>'
    )


def _step_mark(history: PointHistory, step: Step, px: Any) -> str:
    xs = [i for i, p in enumerate(history.positions) if p is step.before or p is step.after]
    x = px(sum(xs) / len(xs)) if xs else PAD_L
    size = "" if math.isnan(step.ratio) else f" x{step.ratio:.2f}"
    label = html.escape(("regression" if step.regression else "improvement") + size)
    return (
        f'<line class="step" x1="{x:.1f}" y1="{PAD_T}" x2="{x:.1f}" y2="{H - PAD_B}" '
        f'stroke="#d62728" stroke-width="2" stroke-dasharray="5,3"/>'
        f'<text x="{x + 3:.1f}" y="{PAD_T - 6}" fill="#d62728">{label}</text>'
    )


def _card(history: PointHistory, summary: dict[str, Any]) -> str:
    parts = [f'<div class="card"><h2>{html.escape(history.label)}</h2>']
    parts.append(f'<p class="basis">{html.escape(history.basis)}</p>')
    for backend in history.backends:
        steps = [s for s in summary["steps"] if s.backend == backend]
        title = "eager median ms" if backend == "eager" else f"{backend}: speedup vs eager"
        chart = _svg(history, backend, steps)
        if chart:
            parts.append(f'<p class="basis">{html.escape(title)}</p>{chart}')
    items = [html.escape(s.describe()) for s in summary["steps"]]
    items += [html.escape("status: " + c) for c in summary["status_changes"]]
    if items:
        parts.append('<ul class="steps">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
    return "".join(parts) + "</div>"


def write_page(
    path: Path, scenario: str, items: Sequence[tuple[PointHistory, dict[str, Any]]]
) -> Path:
    """Write the page (atomically) and return its path."""
    cards = "".join(_card(h, s) for h, s in items) or "<p>No records.</p>"
    text = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>history: '
        f"{html.escape(scenario)}</title><style>{CSS}</style></head><body>"
        f"<h1>perfbench history: {html.escape(scenario)}</h1>"
        f'<div class="grid">{cards}</div></body></html>'
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
