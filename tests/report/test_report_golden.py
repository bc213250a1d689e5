"""A report rebuilt from a committed run folder is the page that was committed with it.

`data/mlp_run` is a real run, kept: `perfbench run scenarios/mlp.py --set backend=eager,fx,int8
--set batch_size=1,4 --set amp=off,fp16 --budget 0.2 --profile-only backend=eager` on the 2-core dev
CPU (6 ok, 6 skipped, two profiled). Its traces/ and tb/ were left out: the page links them but
never reads them. Its results.csv predates the verdict columns, so this page is also the proof that
an older run still renders with the fallback verdicts (IQR rule). `report.html` beside it was
regenerated for issue 15 (chart width, verdict column, commands, GPU-only content); that commit's
message says what changed.

The page carries no build time, so it is compared byte for byte, with one normalisation: the
TensorBoard command names the run folder's own path (where the report is built), here the
checkout's, so it is replaced by `/path/to/mlp_run`. Charts are matplotlib SVG: another matplotlib
version may lay text out differently, which shows up here first. To accept a deliberate change to
the page, rerun with PERFBENCH_UPDATE_GOLDEN=1 and review the diff of report.html like any other
change.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from perfbench.report.page import render_report
from perfbench.results.rundir import RunDir

RUN = Path(__file__).parent / "data" / "mlp_run"
GOLDEN = RUN / "report.html"


def test_rebuilt_report_matches_the_golden_page() -> None:
    # the TensorBoard command names the folder where the report is built: the checkout's path
    page = render_report(RunDir(RUN)).replace(str(RUN.resolve()), "/path/to/mlp_run")
    if os.environ.get("PERFBENCH_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(page, encoding="utf-8")
    golden = GOLDEN.read_text(encoding="utf-8")
    if page != golden:
        diff = difflib.unified_diff(
            golden.splitlines(), page.splitlines(), "golden report.html", "rebuilt", lineterm=""
        )
        raise AssertionError(
            "rebuilt report differs from the golden page:\n" + "\n".join(list(diff)[:60])
        )
