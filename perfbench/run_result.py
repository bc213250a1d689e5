"""`Run`: a run folder read back for a notebook or a script (`perfbench.run()`, `perfbench.load()`).

Everything comes from the folder alone (results.csv, run.json), as the report does, so a `Run` of
a folder written yesterday or by the command line reads the same as one just measured. Imports
nothing heavy at import time: `import perfbench` stays fast; pandas, matplotlib and the advisor
are imported by the property that needs them.
"""

from __future__ import annotations

from pathlib import Path  # html, json, pandas and the report's modules: imported where used
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from perfbench.advisor.finding import Finding
    from perfbench.analysis.compare import RunComparison

_TONE_COLOURS = {"good": "#1a7f37", "bad": "#cf222e", "muted": "#57606a"}


class Run:
    """One run folder: `df` (results.csv), `verdicts` (each backend against eager), `findings`
    (the advisor's), `report_path`, `compare(other)`. Shown in Jupyter as the verdict summary
    and the speedup chart (`_repr_html_`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        for name in ("results.csv", "run.json"):
            if not (self.path / name).is_file():
                raise FileNotFoundError(
                    f"{self.path} is not a perfbench run folder: it has no {name} "
                    "(a run folder is what `perfbench run` or perfbench.run() writes)"
                )

    def __repr__(self) -> str:
        return f"perfbench.Run({str(self.path)!r})"

    @property
    def meta(self) -> dict[str, Any]:
        """run.json: what ran (scenario, sweep, settings, command), where, and how it ended."""
        import json

        meta: dict[str, Any] = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        return meta

    @property
    def state(self) -> str:
        """ "complete", "interrupted" (Ctrl-C: the measured rows are kept) or "running"."""
        return str(self.meta.get("state", "unknown"))

    @property
    def df(self) -> pd.DataFrame:
        """results.csv as a DataFrame, one typed column per results column (`perfbench.results.row`):
        numbers float with NaN for an empty cell (int64 when every cell holds one), text ""
        when empty, `extra` as dicts. Read from disk on each access."""
        from perfbench.results.rundir import RunDir

        return RunDir(self.path).read_results()

    @property
    def verdicts(self) -> pd.DataFrame:
        """Each ok backend point against the ok eager point at equal other settings, as the
        report's speedup table: speedup (eager time / backend time), its interval, the verdict
        and its sentence (`verdict_text`), and `tone` (good, bad, muted)."""
        from perfbench.report.data import load_results, speedups
        from perfbench.results.rundir import RunDir

        return speedups(load_results(RunDir(self.path)))

    @property
    def findings(self) -> list[Finding]:
        """The advisor's findings for this run, most valuable first (the report lists them)."""
        from perfbench.advisor import advise

        return advise(self.path)

    @property
    def report_path(self) -> Path:
        """report.html of this folder (rebuilt from the folder by `perfbench report`)."""
        return self.path / "report.html"

    def compare(self, other: Run | str | Path, fail_above: float | None = None) -> RunComparison:
        """This run (A) against `other` (B), as `perfbench compare A B`: see perfbench.analysis.compare."""
        from perfbench.analysis.compare import compare as compare_folders

        b = other.path if isinstance(other, Run) else Path(other)
        return compare_folders(self.path, b, fail_above=fail_above)

    def _repr_html_(self) -> str:
        """The verdict summary table and the speedup chart, for a Jupyter cell."""
        import html

        from perfbench.report import charts

        sp = self.verdicts
        parts = [f"<p><b>perfbench run</b> <code>{html.escape(str(self.path))}</code> "]
        parts.append(f"({html.escape(self.state)}; {_status_text(self.df)})</p>")
        if sp.empty:
            parts.append("<p>No backend could be compared with eager in this run.</p>")
        else:
            parts.append(verdict_table_html(sp))
            chart = charts.speedup_chart(sp)
            if chart:  # scaled to the cell's width (the report's CSS does this for its page)
                parts.append(chart.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1))
        if self.report_path.is_file():
            link = html.escape(str(self.report_path))
            parts.append(f'<p>Full report: <a href="{link}" target="_blank">{link}</a></p>')
        return "".join(parts)


def _status_text(df: pd.DataFrame) -> str:
    counts = df["status"].value_counts()
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or "no points"


def verdict_table_html(sp: pd.DataFrame) -> str:
    """The verdicts as an HTML table: backend, settings, speedup with its interval, verdict
    sentence coloured by tone (green faster, red slower, grey otherwise); every cell escaped."""
    import html

    head = "".join(f"<th>{h}</th>" for h in ("backend", "settings", "speedup", "verdict"))
    rows = []
    for r in sp.to_dict("records"):
        colour = _TONE_COLOURS.get(str(r["tone"]), _TONE_COLOURS["muted"])
        rows.append(
            "<tr>"
            f"<td>{html.escape(str(r['backend']))}</td>"
            f"<td>{html.escape(str(r['settings']).strip())}</td>"
            f"<td>{html.escape(_speedup_text(r))}</td>"
            f'<td style="color:{colour}">{html.escape(str(r["verdict_text"]))}</td>'
            "</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _speedup_text(r: dict[str, Any]) -> str:
    import math

    speedup, low, high = (float(r[k]) for k in ("speedup", "ci_low", "ci_high"))
    text = f"{speedup:.2f}×"
    if not (math.isnan(low) or math.isnan(high)):
        text += f" ({low:.2f}–{high:.2f})"
    return text
