"""What `perfbench run` prints while it runs: a line per comparison group, then per point its
result (or why it was skipped or failed) and what its step printed. Silent with -q."""

from __future__ import annotations

from typing import Any

from perfbench.cli_capture import output_notes


def _fmt_ms(ms: float) -> str:
    return f"{ms * 1e3:.1f} µs" if ms < 1 else f"{ms:.3f} ms"


class Progress:
    """Prints a line per point on stderr-free stdout; silent with -q."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if self.quiet:
            return
        if event == "group":
            group = data["group"]
            backends = ", ".join(group.backends)
            where = f" on {data['host']}" if data.get("host") else ""
            print(
                f"group {data['number']}/{data['groups']}: {group.group_id} [{backends}]{where}",
                flush=True,
            )
        elif event == "warning":
            print(f"perfbench: warning: {data['message']}", flush=True)
        elif event == "done":
            row = data["row"]
            n, total = data["index"] + 1, data["total"]
            print(f"[{n}/{total}] {data['point'].label()}", flush=True)
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
            if status == "ok" and row.get("verdict_reason"):
                print(f"    verdict: {row['verdict_reason']}", flush=True)
            if row.get("contended"):
                why = (row.get("extra") or {}).get("contention") or "other processes took CPU"
                print(f"    contended: {why}", flush=True)
            for note in output_notes(row.get("extra") or {}):
                print(note, flush=True)
        elif event == "interrupted":
            print(f"interrupted: kept {data['done']} of {data['total']} points", flush=True)
